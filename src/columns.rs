//! Reading named columns of query results into plain Rust values.

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Int64Type};

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
