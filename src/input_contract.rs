//! The columns each input table must have, with the Arrow types accepted for them.
//!
//! Checked before any work so that a wrong table fails fast, naming the table, the column,
//! what was expected and what was found. Extra columns are ignored.

use deltalake::arrow::datatypes::{DataType, Schema};

use crate::error::{Error, Result};

/// A family of Arrow types that a query can use interchangeably for one Databricks type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// STRING (Utf8, LargeUtf8 or Utf8View).
    String,
    /// INT / BIGINT (any signed integer width).
    Integer,
    /// DOUBLE or FLOAT.
    Float,
    /// TIMESTAMP or TIMESTAMP_NTZ (Arrow `Timestamp(_, None)`): NTZ values are UTC wall-clock
    /// times as Databricks writes them, and the queries read them as UTC (DataFusion compares
    /// and joins them with UTC timestamps as UTC; tests/integration/bad_inputs.rs).
    Timestamp,
    /// DATE.
    Date,
    /// MAP<STRING,STRING>.
    StringMap,
    /// ARRAY<STRING>.
    StringList,
    /// A STRUCT (its fields are checked by the query that reads them).
    Struct,
}

impl ColumnKind {
    /// Whether `data_type` belongs to this family.
    pub fn accepts(self, data_type: &DataType) -> bool {
        match self {
            ColumnKind::String => is_string(data_type),
            ColumnKind::Integer => {
                matches!(data_type, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64)
            }
            ColumnKind::Float => matches!(data_type, DataType::Float32 | DataType::Float64),
            ColumnKind::Timestamp => matches!(data_type, DataType::Timestamp(_, _)),
            ColumnKind::Date => matches!(data_type, DataType::Date32 | DataType::Date64),
            ColumnKind::Struct => matches!(data_type, DataType::Struct(_)),
            ColumnKind::StringList => match data_type {
                DataType::List(item) | DataType::LargeList(item) | DataType::ListView(item) => {
                    is_string(item.data_type())
                }
                _ => false,
            },
            ColumnKind::StringMap => match data_type {
                DataType::Map(entries, _) => match entries.data_type() {
                    DataType::Struct(fields) if fields.len() == 2 => {
                        is_string(fields[0].data_type()) && is_string(fields[1].data_type())
                    }
                    _ => false,
                },
                _ => false,
            },
        }
    }

    /// The Databricks SQL spelling, for messages.
    pub fn describe(self) -> &'static str {
        match self {
            ColumnKind::String => "STRING",
            ColumnKind::Integer => "INT or BIGINT",
            ColumnKind::Float => "DOUBLE",
            ColumnKind::Timestamp => "TIMESTAMP or TIMESTAMP_NTZ",
            ColumnKind::Date => "DATE",
            ColumnKind::StringMap => "MAP<STRING,STRING>",
            ColumnKind::StringList => "ARRAY<STRING>",
            ColumnKind::Struct => "STRUCT",
        }
    }
}

fn is_string(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

/// The columns one input must provide.
#[derive(Debug)]
pub struct InputContract {
    /// The input's name in the job file (`usage`, `payload`, ...).
    pub input: &'static str,
    /// Required columns and their accepted types.
    pub columns: &'static [(&'static str, ColumnKind)],
}

/// `system.serving.endpoint_usage` (schemas notes §2.1): the columns the outputs use.
pub const USAGE: InputContract = InputContract {
    input: "usage",
    columns: &[
        ("databricks_request_id", ColumnKind::String),
        ("request_time", ColumnKind::Timestamp),
        ("status_code", ColumnKind::Integer),
        ("requester", ColumnKind::String),
        ("input_token_count", ColumnKind::Integer),
        ("output_token_count", ColumnKind::Integer),
        ("usage_context", ColumnKind::StringMap),
        ("served_entity_id", ColumnKind::String),
    ],
};

/// `system.serving.served_entities` (schemas notes §2.2).
pub const SERVED_ENTITIES: InputContract = InputContract {
    input: "served_entities",
    columns: &[
        ("served_entity_id", ColumnKind::String),
        ("endpoint_name", ColumnKind::String),
        ("entity_name", ColumnKind::String),
        ("change_time", ColumnKind::Timestamp),
    ],
};

/// The AI Gateway inference table `<prefix>_payload` (schemas notes §1.1). `request` is
/// deliberately absent: no output reads it. `response` is read only for 429 rows, to tell
/// which limit refused them.
pub const PAYLOAD: InputContract = InputContract {
    input: "payload",
    columns: &[
        ("databricks_request_id", ColumnKind::String),
        ("request_date", ColumnKind::Date),
        ("request_time", ColumnKind::Timestamp),
        ("status_code", ColumnKind::Integer),
        ("sampling_fraction", ColumnKind::Float),
        ("execution_duration_ms", ColumnKind::Integer),
        ("served_entity_id", ColumnKind::String),
        ("requester", ColumnKind::String),
        ("response", ColumnKind::String),
        ("logging_error_codes", ColumnKind::StringList),
    ],
};

/// MLflow's `trace_logs_<experiment_id>` view (schemas notes §3.3): the columns the trace
/// outputs use. `request`, `response`, `spans` and `assessments` are never read.
pub const TRACES: InputContract = InputContract {
    input: "traces",
    columns: &[
        ("trace_id", ColumnKind::String),
        ("client_request_id", ColumnKind::String),
        ("request_time", ColumnKind::Timestamp),
        ("state", ColumnKind::String),
        ("execution_duration_ms", ColumnKind::Float),
        ("trace_metadata", ColumnKind::StringMap),
        ("trace_location", ColumnKind::Struct),
    ],
};

impl InputContract {
    /// Checks `schema` against the contract; `location` is only used in messages.
    pub fn check(&self, schema: &Schema, location: &str) -> Result<()> {
        for (column, kind) in self.columns {
            let Ok(field) = schema.field_with_name(column) else {
                let found: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
                return Err(Error::MissingColumn {
                    input: self.input.to_string(),
                    location: location.to_string(),
                    column: column.to_string(),
                    expected: kind.describe().to_string(),
                    found: found.join(", "),
                });
            };
            if !kind.accepts(field.data_type()) {
                return Err(Error::WrongColumnType {
                    input: self.input.to_string(),
                    location: location.to_string(),
                    column: column.to_string(),
                    expected: kind.describe().to_string(),
                    found: field.data_type().to_string(),
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::datatypes::Field;

    #[test]
    fn names_the_missing_column_and_what_exists() {
        let schema = Schema::new(vec![Field::new("served_entity_id", DataType::Utf8, true)]);
        let err = SERVED_ENTITIES.check(&schema, "/t").unwrap_err().to_string();
        assert!(err.contains("`endpoint_name`") && err.contains("served_entity_id"), "{err}");
    }

    #[test]
    fn names_expected_and_found_types() {
        let schema = Schema::new(vec![
            Field::new("served_entity_id", DataType::Utf8, true),
            Field::new("endpoint_name", DataType::Utf8, true),
            Field::new("entity_name", DataType::Int64, true),
            Field::new("change_time", DataType::Utf8, true),
        ]);
        let err = SERVED_ENTITIES.check(&schema, "/t").unwrap_err().to_string();
        assert!(err.contains("`entity_name` has type Int64, expected STRING"), "{err}");
    }
}
