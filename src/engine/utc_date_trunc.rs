//! `date_trunc` with arithmetic for UTC timestamps: the same function as DataFusion's, faster
//! on the columns this job truncates most.
//!
//! DataFusion 55's `date_trunc` truncates to the hour or the day with plain arithmetic only for
//! timestamps without a time zone; for a `Timestamp(_, "UTC")` column (every Delta timestamp
//! reads as one) it converts each value to a calendar date and back through `chrono`. At 10M
//! usage rows that took 1.6 s of CPU in `usage_enriched`'s `date_trunc('hour', request_time)`
//! alone (docs/PERFORMANCE.md). In UTC every hour and day has the same length, so the result is
//! the value rounded down to a multiple of it; [`UtcDateTrunc`] computes that for an `hour` or
//! `day` granularity over a UTC timestamp array and hands every other call (other zones, other
//! granularities, scalars, `Time` and `NULL` arguments, values outside the nanosecond range, on
//! which DataFusion's function returns an error) to DataFusion's function unchanged.
//! The SQL files keep calling `date_trunc`, so Spark SQL runs its own.

use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use deltalake::arrow::datatypes::{
    ArrowTimestampType, DataType, FieldRef, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use deltalake::datafusion::common::{Result, ScalarValue};
use deltalake::datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use deltalake::datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};
use deltalake::datafusion::prelude::SessionContext;

/// Replaces the session's `date_trunc` with [`UtcDateTrunc`].
pub fn register(ctx: &SessionContext) {
    ctx.register_udf(ScalarUDF::new_from_impl(UtcDateTrunc::new()));
}

/// DataFusion's `date_trunc`, with hour and day truncation of UTC timestamp arrays done by
/// arithmetic; see the module documentation.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct UtcDateTrunc {
    builtin: Arc<ScalarUDF>,
}

impl UtcDateTrunc {
    /// Wraps the `date_trunc` of this DataFusion version.
    pub fn new() -> Self {
        UtcDateTrunc { builtin: deltalake::datafusion::functions::datetime::date_trunc() }
    }
}

impl Default for UtcDateTrunc {
    fn default() -> Self {
        Self::new()
    }
}

/// Whether a timestamp's zone is UTC, spelled as Delta and Arrow write it (and as chrono-tz and
/// arrow's offset parser read it: `Z` is neither, so DataFusion's function rejects it, and so
/// do we by handing it over).
fn is_utc(zone: &str) -> bool {
    matches!(zone, "UTC" | "+00:00" | "Etc/UTC")
}

/// The length of an hour or a day in `unit`, for the granularities truncated here, and the
/// nanoseconds in one `unit`.
fn period(granularity: &str, unit: TimeUnit) -> Option<(i64, i64)> {
    let seconds = match granularity.to_ascii_lowercase().as_str() {
        "hour" => 3_600,
        "day" => 86_400,
        _ => return None,
    };
    let per_second = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    Some((seconds * per_second, 1_000_000_000 / per_second))
}

/// `values` rounded down to multiples of `period` (towards the past, also before 1970), NULLs
/// kept, the time zone kept; `None` when a value or its result lies outside what a nanosecond
/// timestamp holds (1677-09-21 to 2262-04-11), where DataFusion's function, which computes in
/// nanoseconds, returns an error: the caller hands such arrays to it.
fn truncate<T: ArrowTimestampType>(values: &dyn Array, period: i64, nanos_per_unit: i64) -> Option<ArrayRef> {
    let values: &PrimitiveArray<T> = values.as_primitive();
    let truncated: PrimitiveArray<T> = values
        .try_unary(|v| {
            let truncated = v.checked_sub(v.rem_euclid(period)).ok_or(())?;
            v.checked_mul(nanos_per_unit).ok_or(())?;
            truncated.checked_mul(nanos_per_unit).ok_or(())?;
            Ok::<i64, ()>(truncated)
        })
        .ok()?;
    Some(Arc::new(truncated.with_timezone_opt(values.timezone().map(Arc::<str>::from))))
}

/// The truncated array when this call is one [`UtcDateTrunc`] computes itself.
fn truncate_utc(args: &[ColumnarValue]) -> Option<ArrayRef> {
    let [ColumnarValue::Scalar(granularity), ColumnarValue::Array(values)] = args else {
        return None;
    };
    let granularity = match granularity {
        ScalarValue::Utf8(Some(g)) | ScalarValue::Utf8View(Some(g)) | ScalarValue::LargeUtf8(Some(g)) => g,
        _ => return None,
    };
    let DataType::Timestamp(unit, Some(zone)) = values.data_type() else {
        return None;
    };
    if !is_utc(zone) {
        return None;
    }
    let (period, nanos_per_unit) = period(granularity, *unit)?;
    match unit {
        TimeUnit::Second => truncate::<TimestampSecondType>(values, period, nanos_per_unit),
        TimeUnit::Millisecond => truncate::<TimestampMillisecondType>(values, period, nanos_per_unit),
        TimeUnit::Microsecond => truncate::<TimestampMicrosecondType>(values, period, nanos_per_unit),
        TimeUnit::Nanosecond => truncate::<TimestampNanosecondType>(values, period, nanos_per_unit),
    }
}

impl ScalarUDFImpl for UtcDateTrunc {
    fn name(&self) -> &str {
        self.builtin.name()
    }

    fn aliases(&self) -> &[String] {
        self.builtin.aliases()
    }

    fn signature(&self) -> &Signature {
        self.builtin.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.builtin.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.builtin.return_field_from_args(args)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match truncate_utc(&args.args) {
            Some(truncated) => Ok(ColumnarValue::Array(truncated)),
            None => self.builtin.invoke_with_args(args),
        }
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> Result<SortProperties> {
        self.builtin.output_ordering(inputs)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.builtin.documentation()
    }
}

#[cfg(test)]
mod tests {
    use deltalake::arrow::array::{Int64Array, TimestampMicrosecondArray, TimestampNanosecondArray};
    use deltalake::arrow::compute::cast;
    use deltalake::arrow::datatypes::Field;
    use deltalake::datafusion::config::ConfigOptions;

    use super::*;

    /// What DataFusion's own `date_trunc` and ours give for the same call: both an array, equal,
    /// or both an error. Returns whether ours computed it itself.
    fn assert_same(granularity: &str, values: ArrayRef) -> bool {
        let call = || ScalarFunctionArgs {
            args: vec![
                ColumnarValue::Scalar(ScalarValue::Utf8(Some(granularity.into()))),
                ColumnarValue::Array(values.clone()),
            ],
            arg_fields: vec![
                Arc::new(Field::new("g", DataType::Utf8, false)),
                Arc::new(Field::new("t", values.data_type().clone(), true)),
            ],
            number_rows: values.len(),
            return_field: Arc::new(Field::new("date_trunc", values.data_type().clone(), true)),
            config_options: Arc::new(ConfigOptions::default()),
        };
        let array = |value: ColumnarValue| value.into_array(values.len()).expect("an array");
        let ours = UtcDateTrunc::new();
        let what = format!("{granularity} of {}", values.data_type());
        match (ours.builtin.invoke_with_args(call()), ours.invoke_with_args(call())) {
            (Ok(builtin), Ok(mine)) => assert_eq!(array(builtin).as_ref(), array(mine).as_ref(), "{what}"),
            (Err(_), Err(_)) => {}
            (builtin, mine) => panic!("{what}: the built-in gave {builtin:?}, ours {mine:?}"),
        }
        truncate_utc(&call().args).is_some()
    }

    /// Microsecond timestamps from 1900 to 2200 in irregular steps, around 1970, and NULLs.
    fn sample() -> Vec<Option<i64>> {
        let mut values: Vec<Option<i64>> =
            vec![None, Some(0), Some(-1), Some(1), Some(i64::from(i32::MIN) * 1_000_000)];
        let mut v: i64 = -2_208_988_800_000_000; // 1900-01-01
        while v < 7_258_118_400_000_000 {
            values.push(Some(v));
            values.push(None);
            v += 3_600_000_000 * 37 + 1_234_567_891; // a bit over 37 hours
        }
        values
    }

    fn micros(values: Vec<Option<i64>>, zone: Option<&str>) -> ArrayRef {
        Arc::new(TimestampMicrosecondArray::from(values).with_timezone_opt(zone.map(Arc::<str>::from)))
    }

    fn in_unit(values: &ArrayRef, unit: TimeUnit, zone: &str) -> ArrayRef {
        cast(values, &DataType::Timestamp(unit, Some(zone.into()))).expect("a timestamp cast")
    }

    #[test]
    fn hours_and_days_of_utc_timestamps_match_the_builtin_in_every_unit() {
        for zone in ["UTC", "+00:00", "Etc/UTC"] {
            let values = micros(sample(), Some(zone));
            for unit in [TimeUnit::Second, TimeUnit::Millisecond, TimeUnit::Microsecond, TimeUnit::Nanosecond] {
                let values = in_unit(&values, unit, zone);
                for granularity in ["hour", "HOUR", "day", "Day"] {
                    assert!(assert_same(granularity, values.clone()), "{granularity} in {zone} computed by ours");
                }
            }
        }
    }

    #[test]
    fn values_a_nanosecond_timestamp_cannot_hold_get_the_builtins_answer() {
        // Year 3000 in microseconds, and the first hour of the nanosecond range (its day starts
        // before the range): the built-in's errors, not numbers of ours.
        let year_3000 = micros(vec![Some(32_503_680_000_000_000)], Some("UTC"));
        assert!(!assert_same("hour", year_3000));
        let first_hour: ArrayRef =
            Arc::new(TimestampNanosecondArray::from(vec![Some(i64::MIN + 1), Some(0)]).with_timezone_opt(Some("UTC")));
        assert!(!assert_same("day", first_hour.clone()));
        assert!(!assert_same("hour", first_hour));
    }

    #[test]
    fn other_zones_and_granularities_go_to_the_builtin() {
        let cases = [
            ("hour", Some("Asia/Kathmandu")), // +05:45: hours do not start at multiples of an hour
            ("day", Some("America/New_York")),
            ("hour", Some("Z")), // not a zone to arrow or chrono-tz: the built-in's error
            ("hour", None),
            ("month", Some("UTC")),
            ("minute", Some("UTC")),
        ];
        for (granularity, zone) in cases {
            assert!(!assert_same(granularity, micros(sample(), zone)), "{granularity} in {zone:?} is the built-in's");
        }
        let numbers: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        let hour = ColumnarValue::Scalar(ScalarValue::Utf8(Some("hour".into())));
        assert!(truncate_utc(&[hour, ColumnarValue::Array(numbers)]).is_none());
    }

    #[test]
    fn the_session_calls_ours_by_both_names() {
        let ctx = SessionContext::new();
        register(&ctx);
        let state = ctx.state();
        for name in ["date_trunc", "datetrunc"] {
            let udf = state.scalar_functions().get(name).unwrap_or_else(|| panic!("{name} registered"));
            assert!(udf.inner().is::<UtcDateTrunc>(), "{name} is ours");
        }
    }
}
