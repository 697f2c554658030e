//! SQL functions that read JSON once per row, on top of the `gateway-json` crate:
//!
//! - `gateway_usage(response)`: a struct with the body's `kind` (`openai`, `anthropic`,
//!   `error`, `no_usage`, `invalid_usage`, `invalid_json`, `empty`; NULL for a NULL body), the
//!   normalised `input_tokens`, `output_tokens`, `cache_read_tokens`, `cache_write_tokens`,
//!   `reasoning_tokens` (NULL unless the body carries usage), the `error_code` of an error
//!   envelope and, for `REQUEST_LIMIT_EXCEEDED`, its `limit_source` (`user_defined` or
//!   `workspace_or_provider`).
//! - `trace_token_usage(json)`: a struct with `input_tokens` and `output_tokens` from MLflow's
//!   `mlflow.trace.tokenUsage` metadata, NULL when absent or unreadable.
//!
//! These are this project's functions, not Spark's: the Spark path defines the same views with
//! `from_json` (see docs/OUTPUTS.md).

use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, Int64Builder, StringBuilder, StructArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Field, Fields};
use deltalake::datafusion::common::Result as DfResult;
use deltalake::datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use deltalake::datafusion::prelude::SessionContext;
use gateway_json::{TokenUsage, parse_body, parse_trace_token_usage};

fn usage_fields() -> Fields {
    Fields::from(vec![
        Field::new("kind", DataType::Utf8, true),
        Field::new("input_tokens", DataType::Int64, true),
        Field::new("output_tokens", DataType::Int64, true),
        Field::new("cache_read_tokens", DataType::Int64, true),
        Field::new("cache_write_tokens", DataType::Int64, true),
        Field::new("reasoning_tokens", DataType::Int64, true),
        Field::new("error_code", DataType::Utf8, true),
        Field::new("limit_source", DataType::Utf8, true),
    ])
}

fn trace_fields() -> Fields {
    Fields::from(vec![
        Field::new("input_tokens", DataType::Int64, true),
        Field::new("output_tokens", DataType::Int64, true),
    ])
}

/// Token counts as BIGINT (saturating: a count beyond i64 is not a real count).
fn bigint(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Calls `read` with every value of the only argument (scalar or array), reading the strings
/// where they are: a string-view column (what the Parquet reader gives) is not copied.
fn for_each_text(args: &ScalarFunctionArgs, read: impl FnMut(Option<&str>)) -> DfResult<()> {
    let array = match args.args.first() {
        Some(ColumnarValue::Array(array)) => array.clone(),
        Some(ColumnarValue::Scalar(scalar)) => scalar.to_array_of_size(args.number_rows)?,
        None => return Err(deltalake::datafusion::error::DataFusionError::Plan("expected one argument".into())),
    };
    match array.data_type() {
        DataType::Utf8View => array.as_string_view().iter().for_each(read),
        DataType::LargeUtf8 => array.as_string::<i64>().iter().for_each(read),
        DataType::Utf8 => array.as_string::<i32>().iter().for_each(read),
        _ => cast(&array, &DataType::Utf8)?.as_string::<i32>().iter().for_each(read),
    }
    Ok(())
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct GatewayUsage {
    signature: Signature,
}

impl ScalarUDFImpl for GatewayUsage {
    fn name(&self) -> &str {
        "gateway_usage"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Struct(usage_fields()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let rows = args.number_rows;
        let mut kind = StringBuilder::with_capacity(rows, rows * 8);
        let mut counts: Vec<Int64Builder> = (0..5).map(|_| Int64Builder::with_capacity(rows)).collect();
        let mut error_code = StringBuilder::new();
        let mut limit_source = StringBuilder::new();
        for_each_text(&args, |text| {
            let Some(text) = text else {
                kind.append_null();
                counts.iter_mut().for_each(Int64Builder::append_null);
                error_code.append_null();
                limit_source.append_null();
                return;
            };
            let parsed = parse_body(text);
            kind.append_value(parsed.kind.as_str());
            append_usage(&mut counts, parsed.usage);
            error_code.append_option(parsed.error_code);
            limit_source.append_option(parsed.limit_source.map(|s| s.as_str()));
        })?;
        let mut columns: Vec<ArrayRef> = vec![Arc::new(kind.finish())];
        columns.extend(counts.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
        columns.push(Arc::new(error_code.finish()));
        columns.push(Arc::new(limit_source.finish()));
        Ok(ColumnarValue::Array(Arc::new(StructArray::try_new(usage_fields(), columns, None)?)))
    }
}

fn append_usage(counts: &mut [Int64Builder], usage: Option<TokenUsage>) {
    let values =
        usage.map(|u| [u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens]);
    for (slot, builder) in counts.iter_mut().enumerate() {
        builder.append_option(values.map(|v| bigint(v[slot])));
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct TraceTokenUsage {
    signature: Signature,
}

impl ScalarUDFImpl for TraceTokenUsage {
    fn name(&self) -> &str {
        "trace_token_usage"
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Struct(trace_fields()))
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let mut input = Int64Builder::with_capacity(args.number_rows);
        let mut output = Int64Builder::with_capacity(args.number_rows);
        for_each_text(&args, |text| {
            let usage = text.and_then(parse_trace_token_usage);
            input.append_option(usage.map(|u| bigint(u.input_tokens)));
            output.append_option(usage.map(|u| bigint(u.output_tokens)));
        })?;
        let columns: Vec<ArrayRef> = vec![Arc::new(input.finish()), Arc::new(output.finish())];
        Ok(ColumnarValue::Array(Arc::new(StructArray::try_new(trace_fields(), columns, None)?)))
    }
}

/// Registers `gateway_usage` and `trace_token_usage` on a session.
pub fn register(ctx: &SessionContext) {
    let signature = || Signature::string(1, Volatility::Immutable);
    ctx.register_udf(ScalarUDF::new_from_impl(GatewayUsage { signature: signature() }));
    ctx.register_udf(ScalarUDF::new_from_impl(TraceTokenUsage { signature: signature() }));
}
