//! Query results as rows with typed accessors, and exact USD amounts.
//!
//! Every column is cast once to a canonical type (Int64, Float64, Utf8, Decimal128(38,12),
//! Date32, microsecond UTC timestamps, Boolean), so the report's code reads cells without
//! caring which integer or string type DataFusion produced.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{
    DataType, Date32Type, Decimal128Type, Float64Type, Int64Type, TimeUnit, TimestampMicrosecondType,
};
use deltalake::datafusion::prelude::SessionContext;

use crate::error::{Error, Result};
use crate::window::date_of_date32;

/// The scale of every money amount: 12 decimal places, as the outputs store `cost_usd`.
const SCALE: u32 = 12;

/// An exact amount of US dollars, in units of 1e-12 USD (the outputs' DECIMAL(38,12)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Usd(pub i128);

impl Usd {
    /// The sum of two amounts.
    pub fn plus(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    /// The amount as a float, for chart geometry only (never for a printed number).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 10f64.powi(SCALE as i32)
    }

    /// The exact decimal, without trailing zeros (`46.544902245`, `0`, `-1.5`).
    pub fn exact(self) -> String {
        let negative = self.0 < 0;
        let magnitude = self.0.unsigned_abs();
        let unit = 10u128.pow(SCALE);
        let whole = magnitude / unit;
        let fraction = format!("{:012}", magnitude % unit);
        let fraction = fraction.trim_end_matches('0');
        let sign = if negative { "-" } else { "" };
        if fraction.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") }
    }

    /// Rounded to cents, half away from zero, with thousands separators: `$1,234.57`.
    pub fn dollars(self) -> String {
        let cents_unit = 10i128.pow(SCALE - 2);
        let half = cents_unit / 2;
        let cents = if self.0 >= 0 { (self.0 + half) / cents_unit } else { (self.0 - half) / cents_unit };
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.unsigned_abs();
        format!("{sign}${}.{:02}", group_digits(&(cents / 100).to_string()), cents % 100)
    }
}

/// `1234567` as `1,234,567`.
pub fn group_digits(digits: &str) -> String {
    let (sign, digits) = digits.strip_prefix('-').map_or(("", digits), |d| ("-", d));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

/// An integer with thousands separators.
pub fn count(value: i64) -> String {
    group_digits(&value.to_string())
}

/// The rows of a query, every column cast to its canonical type.
#[derive(Debug, Default)]
pub struct Rows {
    batches: Vec<RecordBatch>,
}

/// One row of [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    batch: &'a RecordBatch,
    index: usize,
}

/// Runs `sql` on `ctx`; `name` names the query in errors.
pub async fn query(ctx: &SessionContext, name: &str, sql: &str) -> Result<Rows> {
    let frame = ctx.sql(sql).await.map_err(|e| Error::query(name, e))?;
    let batches = frame.collect().await.map_err(|e| Error::query(name, e))?;
    Rows::new(batches).map_err(|e| Error::query(name, e.into()))
}

fn canonical(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => Some(DataType::Int64),
        DataType::Float16 | DataType::Float32 => Some(DataType::Float64),
        DataType::Utf8View | DataType::LargeUtf8 | DataType::Dictionary(_, _) => Some(DataType::Utf8),
        DataType::Decimal32(_, _) | DataType::Decimal64(_, _) | DataType::Decimal128(_, _) => {
            Some(DataType::Decimal128(38, SCALE as i8))
        }
        DataType::Timestamp(_, _) => Some(DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))),
        DataType::Date64 => Some(DataType::Date32),
        _ => None,
    }
}

impl Rows {
    fn new(batches: Vec<RecordBatch>) -> std::result::Result<Self, deltalake::arrow::error::ArrowError> {
        let mut out = Vec::with_capacity(batches.len());
        for batch in batches {
            let mut fields = Vec::new();
            let mut columns: Vec<ArrayRef> = Vec::new();
            for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
                let target = canonical(field.data_type());
                let column = match &target {
                    Some(target) if target != field.data_type() => cast(column, target)?,
                    _ => column.clone(),
                };
                fields.push(field.as_ref().clone().with_data_type(column.data_type().clone()));
                columns.push(column);
            }
            let schema = Arc::new(deltalake::arrow::datatypes::Schema::new(fields));
            out.push(RecordBatch::try_new(schema, columns)?);
        }
        Ok(Rows { batches: out })
    }

    /// Every row, in order.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.batches.iter().flat_map(|batch| (0..batch.num_rows()).map(move |index| Row { batch, index }))
    }

    /// The first row, if any.
    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }
}

impl<'a> Row<'a> {
    fn column(&self, name: &str) -> &'a ArrayRef {
        match self.batch.schema().index_of(name) {
            Ok(i) => self.batch.column(i),
            // The report's own queries name their columns: a typo is a bug, found by the tests.
            Err(_) => panic!("report query has no column `{name}`"),
        }
    }

    /// A string cell; NULL as `None`.
    pub fn opt_str(&self, name: &str) -> Option<String> {
        let column = self.column(name);
        (!column.is_null(self.index)).then(|| column.as_string::<i32>().value(self.index).to_string())
    }

    /// A string cell; NULL as the empty string.
    pub fn str(&self, name: &str) -> String {
        self.opt_str(name).unwrap_or_default()
    }

    /// An integer cell; NULL as `None`.
    pub fn opt_i64(&self, name: &str) -> Option<i64> {
        let column = self.column(name);
        (!column.is_null(self.index)).then(|| column.as_primitive::<Int64Type>().value(self.index))
    }

    /// An integer cell; NULL as 0.
    pub fn i64(&self, name: &str) -> i64 {
        self.opt_i64(name).unwrap_or(0)
    }

    /// A float cell; NULL as `None`.
    pub fn opt_f64(&self, name: &str) -> Option<f64> {
        let column = self.column(name);
        (!column.is_null(self.index)).then(|| column.as_primitive::<Float64Type>().value(self.index))
    }

    /// A DECIMAL cell as exact USD; NULL as 0.
    pub fn usd(&self, name: &str) -> Usd {
        let column = self.column(name);
        if column.is_null(self.index) {
            return Usd(0);
        }
        Usd(column.as_primitive::<Decimal128Type>().value(self.index))
    }

    /// A DATE cell.
    pub fn date(&self, name: &str) -> Option<NaiveDate> {
        let column = self.column(name);
        (!column.is_null(self.index)).then(|| date_of_date32(column.as_primitive::<Date32Type>().value(self.index)))
    }

    /// A TIMESTAMP cell.
    pub fn timestamp(&self, name: &str) -> Option<DateTime<Utc>> {
        let column = self.column(name);
        if column.is_null(self.index) {
            return None;
        }
        DateTime::from_timestamp_micros(column.as_primitive::<TimestampMicrosecondType>().value(self.index))
    }

    /// A BOOLEAN cell; NULL as false.
    pub fn bool(&self, name: &str) -> bool {
        let column = self.column(name);
        !column.is_null(self.index) && column.as_boolean().value(self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_is_exact_and_rounds_half_away_from_zero() {
        let usd = |s: &str| {
            let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
            let fraction = format!("{fraction:0<12}");
            Usd(format!("{whole}{fraction}").parse::<i128>().unwrap())
        };
        assert_eq!(usd("46.544902245").exact(), "46.544902245");
        assert_eq!(usd("46.544902245").dollars(), "$46.54");
        assert_eq!(usd("0.005").dollars(), "$0.01");
        assert_eq!(usd("0.004999999999").dollars(), "$0.00");
        assert_eq!(usd("1234567.125").dollars(), "$1,234,567.13");
        assert_eq!(usd("-2.5").exact(), "-2.5");
        assert_eq!(Usd(0).exact(), "0");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(-1234567), "-1,234,567");
        assert_eq!(count(12), "12");
    }
}
