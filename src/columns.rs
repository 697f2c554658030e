//! Moving values between Arrow and plain Rust: reading named columns of query results, and
//! building the small in-memory tables the queries join.

use std::sync::Arc;

use deltalake::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type, Schema};
use deltalake::datafusion::datasource::MemTable;

use crate::error::{Error, Result};

fn column_as(batch: &RecordBatch, name: &str, data_type: &DataType) -> Result<std::sync::Arc<dyn Array>> {
    let index = batch.schema().index_of(name).map_err(|e| Error::query(name, e.into()))?;
    cast(batch.column(index), data_type).map_err(|e| Error::query(name, e.into()))
}

/// The values of a string-like column.
pub fn strings(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let column = column_as(batch, name, &DataType::Utf8)?;
    let column = column.as_string::<i32>();
    Ok((0..column.len()).map(|i| (!column.is_null(i)).then(|| column.value(i).to_string())).collect())
}

/// The values of an integer column.
pub fn ints(batch: &RecordBatch, name: &str) -> Result<Vec<Option<i64>>> {
    let column = column_as(batch, name, &DataType::Int64)?;
    let column = column.as_primitive::<Int64Type>();
    Ok((0..column.len()).map(|i| (!column.is_null(i)).then(|| column.value(i))).collect())
}

/// A one-batch in-memory table named `name` (for messages).
pub fn in_memory_table(name: &str, schema: Arc<Schema>, columns: Vec<ArrayRef>) -> Result<MemTable> {
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::query(name, e.into()))?;
    MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| Error::query(name, e))
}
