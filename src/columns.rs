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

/// The values of a date column.
pub fn dates(batch: &RecordBatch, name: &str) -> Result<Vec<Option<chrono::NaiveDate>>> {
    let column = column_as(batch, name, &DataType::Date32)?;
    let column = column.as_primitive::<deltalake::arrow::datatypes::Date32Type>();
    Ok(column.iter().map(|v| v.map(crate::window::date_of_date32)).collect())
}

/// The dates among `among` for which `table` has rows in its date column `column`.
pub async fn distinct_dates(
    ctx: &deltalake::datafusion::prelude::SessionContext,
    table: Arc<dyn deltalake::datafusion::datasource::TableProvider>,
    column: &str,
    among: &[chrono::NaiveDate],
) -> Result<Vec<chrono::NaiveDate>> {
    use deltalake::datafusion::prelude::{col, lit};
    let values = among.iter().map(|d| lit(crate::window::date_value(*d))).collect();
    let batches = ctx
        .read_table(table)
        .and_then(|f| f.filter(col(column).in_list(values, false)))
        .and_then(|f| f.select(vec![col(column)]))
        .and_then(|f| f.distinct())
        .map_err(|e| Error::query(column, e))?
        .collect()
        .await
        .map_err(|e| Error::query(column, e))?;
    let mut found: Vec<chrono::NaiveDate> = Vec::new();
    for batch in &batches {
        found.extend(dates(batch, column)?.into_iter().flatten());
    }
    found.sort();
    Ok(found)
}

/// A one-batch in-memory table named `name` (for messages).
pub fn in_memory_table(name: &str, schema: Arc<Schema>, columns: Vec<ArrayRef>) -> Result<MemTable> {
    let batch = RecordBatch::try_new(schema.clone(), columns).map_err(|e| Error::query(name, e.into()))?;
    MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| Error::query(name, e))
}
