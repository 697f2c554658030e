//! The new AI Gateway's (Beta) tables as the queries read them: the columns each must have,
//! the documented variants accepted for each, and the SQL that turns whatever variant a table
//! has into one canonical shape (views `gateway_usage_source`, `gateway_attempts_source`,
//! `gateway_payload_source`).
//!
//! Public sources agree on these tables' column names but give most nested types only from one
//! source (docs/OUTPUTS.md#the-two-gateways), and later schema versions added columns. So columns are
//! read by name; a column that is optional (absent from some documented schema version) reads
//! as NULL when missing; a column present with a type outside its documented variants, or a
//! required column missing, stops the run naming the column (`token_details.cache_read_input_tokens`,
//! `routing_information.attempts[].status_code`), never turning into wrong numbers.
//!
//! The views' SQL is accepted by DataFusion and Spark SQL alike (the Spark path runs it too,
//! `src/spark_sql.rs`): STRUCT fields as `column.field`, `STRING` for text, `cardinality` for
//! an array's length, and no quoted identifiers (the contract's names are plain).

use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema};

use crate::error::{Error, Result};

/// The Databricks types a column may have, as Arrow type families.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// STRING.
    String,
    /// INT or BIGINT (any signed integer width).
    Integer,
    /// INT, BIGINT or a STRING of digits (types the notes mark uncertain).
    IntegerOrString,
    /// BIGINT or DOUBLE (a latency the notes only guess the type of).
    Number,
    /// TIMESTAMP or TIMESTAMP_NTZ.
    Timestamp,
    /// MAP<STRING,STRING>.
    StringMap,
}

impl Kind {
    fn accepts(self, data_type: &DataType) -> bool {
        let string = matches!(data_type, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        let integer = matches!(data_type, DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64);
        match self {
            Kind::String => string,
            Kind::Integer => integer,
            Kind::IntegerOrString => integer || string,
            Kind::Number => integer || matches!(data_type, DataType::Float32 | DataType::Float64),
            Kind::Timestamp => matches!(data_type, DataType::Timestamp(_, _)),
            Kind::StringMap => crate::input_contract::ColumnKind::StringMap.accepts(data_type),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Kind::String => "STRING",
            Kind::Integer => "INT or BIGINT",
            Kind::IntegerOrString => "INT, BIGINT or STRING",
            Kind::Number => "BIGINT or DOUBLE",
            Kind::Timestamp => "TIMESTAMP or TIMESTAMP_NTZ",
            Kind::StringMap => "MAP<STRING,STRING>",
        }
    }

    /// The canonical SQL type the view casts to (`None`: kept as it is).
    fn sql_type(self) -> Option<&'static str> {
        match self {
            Kind::String => Some("STRING"),
            Kind::Integer | Kind::IntegerOrString | Kind::Number => Some("BIGINT"),
            Kind::Timestamp | Kind::StringMap => None,
        }
    }
}

/// One column the queries read: where it is in the table (`parent.child` for a STRUCT field),
/// the name the canonical view gives it, its accepted types, and whether it may be missing.
#[derive(Debug)]
pub struct Column {
    /// Top-level column, or `struct_column.field`.
    pub path: &'static str,
    /// Name in the canonical view.
    pub alias: &'static str,
    /// Accepted types.
    pub kind: Kind,
    /// Whether a table without it is read with NULLs (it is missing from some documented
    /// schema version) rather than refused.
    pub optional: bool,
}

const fn required(path: &'static str, alias: &'static str, kind: Kind) -> Column {
    Column { path, alias, kind, optional: false }
}

const fn optional(path: &'static str, alias: &'static str, kind: Kind) -> Column {
    Column { path, alias, kind, optional: true }
}

/// A Beta input: its job-file key and the columns read.
#[derive(Debug)]
pub struct Contract {
    /// The job-file key (`gateway_usage`, `gateway_payload`).
    pub input: &'static str,
    /// The columns, in the canonical view's order.
    pub columns: &'static [Column],
}

/// `system.ai_gateway.usage` (docs/OUTPUTS.md#the-two-gateways). Present in every documented version:
/// the ids, times, destination, requester, tokens, `token_details` and `request_tags`;
/// `routing_information` (read separately, see [`ATTEMPT_FIELDS`]), the `service_*`,
/// `invocation_*`, `mcp_metadata` and `session_metadata` columns are missing from older ones.
pub const GATEWAY_USAGE: Contract = Contract {
    input: "gateway_usage",
    columns: &[
        required("request_id", "request_id", Kind::String),
        optional("invocation_id", "invocation_id", Kind::String),
        required("event_time", "event_time", Kind::Timestamp),
        required("status_code", "status_code", Kind::Integer),
        required("latency_ms", "latency_ms", Kind::Integer),
        optional("time_to_first_byte_ms", "time_to_first_byte_ms", Kind::Integer),
        required("endpoint_name", "endpoint_name", Kind::String),
        optional("service_name", "service_name", Kind::String),
        optional("service_type", "service_type", Kind::String),
        required("destination_name", "destination_name", Kind::String),
        required("destination_model", "destination_model", Kind::String),
        required("requester", "requester", Kind::String),
        optional("user_agent", "user_agent", Kind::String),
        required("request_tags", "request_tags", Kind::StringMap),
        required("input_tokens", "input_tokens", Kind::Integer),
        required("output_tokens", "output_tokens", Kind::Integer),
        optional("token_details.cache_read_input_tokens", "cache_read_input_tokens", Kind::Integer),
        optional("token_details.cache_creation_input_tokens", "cache_creation_input_tokens", Kind::Integer),
        optional("token_details.output_reasoning_tokens", "output_reasoning_tokens", Kind::Integer),
        optional("invocation_metadata.source", "source", Kind::String),
        optional("session_metadata.coding_agent", "coding_agent", Kind::String),
        optional("session_metadata.agent_version", "agent_version", Kind::String),
        optional("session_metadata.surface", "surface", Kind::String),
        optional("session_metadata.client_session_id", "client_session_id", Kind::String),
        optional("session_metadata.client_subagent_id", "client_subagent_id", Kind::String),
        optional("mcp_metadata.server_type", "mcp_server_type", Kind::String),
        optional("mcp_metadata.json_rpc_method", "mcp_method", Kind::String),
        optional("mcp_metadata.tool_name", "mcp_tool_name", Kind::String),
    ],
};

/// The fields of one `routing_information.attempts[]` element read by `fallbacks`; all but
/// `destination` and `status_code` may be missing (their types are the notes' guesses).
pub const ATTEMPT_FIELDS: &[Column] = &[
    optional("action", "action", Kind::String),
    required("destination", "destination", Kind::String),
    required("status_code", "status_code", Kind::IntegerOrString),
    optional("latency_ms", "latency_ms", Kind::Number),
];

/// A model service's Beta payload table `<prefix>_payload` (docs/OUTPUTS.md#the-two-gateways). `request` is
/// never read; `response` only for the guardrail block reason.
pub const GATEWAY_PAYLOAD: Contract = Contract {
    input: "gateway_payload",
    columns: &[
        required("request_id", "request_id", Kind::String),
        optional("invocation_id", "invocation_id", Kind::String),
        required("event_time", "event_time", Kind::Timestamp),
        required("status_code", "status_code", Kind::Integer),
        optional("latency_ms", "latency_ms", Kind::Integer),
        optional("time_to_first_byte_ms", "time_to_first_byte_ms", Kind::Integer),
        required("response", "response", Kind::String),
    ],
};

/// Columns of the serving-endpoint tables: found instead of the Beta ones, they say which
/// table was named by mistake.
const SERVING_ENDPOINT_COLUMNS: [&str; 3] = ["databricks_request_id", "request_time", "served_entity_id"];

fn field<'a>(fields: &'a Fields, name: &str) -> Option<&'a Field> {
    fields.iter().find(|f| f.name() == name).map(|f| f.as_ref())
}

fn missing(input: &str, location: &str, column: &str, kind: Kind, found: &Fields) -> Error {
    let names: Vec<&str> = found.iter().map(|f| f.name().as_str()).collect();
    let hint = if column.contains('.') || !names.iter().any(|n| SERVING_ENDPOINT_COLUMNS.contains(n)) {
        String::new()
    } else {
        " (this looks like a serving-endpoint table: name it as `inputs.usage` or `inputs.payload`)".into()
    };
    Error::MissingColumn {
        input: input.to_string(),
        location: location.to_string(),
        column: column.to_string(),
        expected: kind.describe().to_string(),
        found: format!("{}{hint}", names.join(", ")),
    }
}

fn wrong_type(input: &str, location: &str, column: &str, kind: Kind, found: &DataType) -> Error {
    Error::WrongColumnType {
        input: input.to_string(),
        location: location.to_string(),
        column: column.to_string(),
        expected: kind.describe().to_string(),
        found: found.to_string(),
    }
}

/// The SQL expression reading `column` from a row of `fields` (a top-level schema or a STRUCT's
/// fields), with `prefix` the expression of that row: checked against the contract. `None` when
/// an optional column (or its STRUCT) is missing.
fn read(
    contract: &str,
    location: &str,
    fields: &Fields,
    prefix: Option<&str>,
    column: &Column,
    label: &str,
) -> Result<Option<String>> {
    let (parent, child) = match column.path.split_once('.') {
        Some((parent, child)) => (Some(parent), child),
        None => (None, column.path),
    };
    let (fields, base) = match parent {
        None => (fields.clone(), prefix.map(str::to_string)),
        Some(parent) => match field(fields, parent) {
            None if column.optional => return Ok(None),
            None => return Err(missing(contract, location, parent, Kind::String, fields)),
            Some(f) => match f.data_type() {
                DataType::Struct(inner) => (inner.clone(), Some(parent.to_string())),
                other => {
                    return Err(Error::WrongColumnType {
                        input: contract.to_string(),
                        location: location.to_string(),
                        column: parent.to_string(),
                        expected: "STRUCT".into(),
                        found: other.to_string(),
                    });
                }
            },
        },
    };
    let Some(found) = field(&fields, child) else {
        if column.optional {
            return Ok(None);
        }
        return Err(missing(contract, location, label, column.kind, &fields));
    };
    if !column.kind.accepts(found.data_type()) {
        return Err(wrong_type(contract, location, label, column.kind, found.data_type()));
    }
    Ok(Some(match base {
        Some(base) => format!("{base}.{child}"),
        None => child.to_string(),
    }))
}

fn select_item(expression: Option<String>, column: &Column) -> String {
    let value = match (expression, column.kind.sql_type()) {
        (Some(e), Some(t)) => format!("CAST({e} AS {t})"),
        (Some(e), None) => e,
        (None, Some(t)) => format!("CAST(NULL AS {t})"),
        (None, None) => "NULL".into(),
    };
    format!("{value} AS {}", column.alias)
}

/// Checks `schema` against `contract` and returns the SQL of its canonical view over `table`:
/// one column per contract column, cast to the canonical type, NULL where an optional column
/// is missing. `location` is only for messages.
pub fn canonical_select(contract: &Contract, schema: &Schema, table: &str, location: &str) -> Result<String> {
    let mut items = Vec::with_capacity(contract.columns.len() + 1);
    for column in contract.columns {
        let expression = read(contract.input, location, schema.fields(), None, column, column.path)?;
        items.push(select_item(expression, column));
    }
    if contract.input == GATEWAY_USAGE.input {
        let attempts = attempts_expression(schema, location)?;
        let (list, count) = match &attempts {
            // Not COALESCE(cardinality(..), 0): Spark's cardinality of NULL is -1.
            Some(a) => (a.clone(), format!("CAST(CASE WHEN {a} IS NULL THEN 0 ELSE cardinality({a}) END AS BIGINT)")),
            None => ("CAST(NULL AS STRING)".into(), "CAST(0 AS BIGINT)".into()),
        };
        items.push(format!("{list} AS attempts"));
        items.push(format!("{count} AS attempt_count"));
    }
    Ok(format!("SELECT\n  {}\nFROM {table}", items.join(",\n  ")))
}

/// The expression of `routing_information.attempts` after checking its element fields; `None`
/// when the table has no `routing_information` (an older schema version: no row was routed).
fn attempts_expression(schema: &Schema, location: &str) -> Result<Option<String>> {
    let input = GATEWAY_USAGE.input;
    let Some(routing) = field(schema.fields(), "routing_information") else { return Ok(None) };
    let DataType::Struct(routing_fields) = routing.data_type() else {
        return Err(Error::WrongColumnType {
            input: input.into(),
            location: location.into(),
            column: "routing_information".into(),
            expected: "STRUCT<attempts: ARRAY<STRUCT>>".into(),
            found: routing.data_type().to_string(),
        });
    };
    let Some(attempts) = field(routing_fields, "attempts") else {
        return Err(missing(input, location, "routing_information.attempts", Kind::String, routing_fields));
    };
    let element = match attempts.data_type() {
        DataType::List(item) | DataType::LargeList(item) => match item.data_type() {
            DataType::Struct(fields) => fields.clone(),
            other => return Err(attempts_type_error(location, other)),
        },
        other => return Err(attempts_type_error(location, other)),
    };
    for column in ATTEMPT_FIELDS {
        let label = format!("routing_information.attempts[].{}", column.path);
        read(input, location, &element, Some("a"), column, &label)?;
    }
    Ok(Some("routing_information.attempts".into()))
}

fn attempts_type_error(location: &str, found: &DataType) -> Error {
    Error::WrongColumnType {
        input: GATEWAY_USAGE.input.into(),
        location: location.into(),
        column: "routing_information.attempts".into(),
        expected: "ARRAY<STRUCT<action, destination, status_code, latency_ms>>".into(),
        found: found.to_string(),
    }
}

/// The fields of a `routing_information.attempts[]` element of `schema` (checked), `None`
/// without `routing_information`.
pub fn attempt_fields(schema: &Schema, location: &str) -> Result<Option<Fields>> {
    if attempts_expression(schema, location)?.is_none() {
        return Ok(None);
    }
    let element = field(schema.fields(), "routing_information").and_then(|routing| match routing.data_type() {
        DataType::Struct(fields) => field(fields, "attempts").and_then(|attempts| match attempts.data_type() {
            DataType::List(item) | DataType::LargeList(item) => match item.data_type() {
                DataType::Struct(fields) => Some(fields.clone()),
                _ => None,
            },
            _ => None,
        }),
        _ => None,
    });
    Ok(element)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::ai_gateway::{gateway_payload_schema, gateway_usage_schema};
    use std::sync::Arc;

    #[test]
    fn the_generated_tables_pass_their_contracts() {
        canonical_select(&GATEWAY_USAGE, &gateway_usage_schema(), "t", "/t").unwrap();
        assert_eq!(attempt_fields(&gateway_usage_schema(), "/t").unwrap().unwrap().len(), 6);
        canonical_select(&GATEWAY_PAYLOAD, &gateway_payload_schema(), "t", "/t").unwrap();
    }

    fn without(schema: &Schema, name: &str) -> Schema {
        Schema::new(schema.fields().iter().filter(|f| f.name() != name).cloned().collect::<Vec<_>>())
    }

    fn replaced(schema: &Schema, name: &str, data_type: DataType) -> Schema {
        Schema::new(
            schema
                .fields()
                .iter()
                .map(|f| {
                    if f.name() == name {
                        Arc::new(f.as_ref().clone().with_data_type(data_type.clone()))
                    } else {
                        f.clone()
                    }
                })
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn an_older_schema_version_without_optional_columns_reads_nulls() {
        let schema = gateway_usage_schema();
        let old = ["session_metadata", "mcp_metadata", "service_name", "routing_information", "invocation_id"]
            .iter()
            .fold(schema.as_ref().clone(), |s, name| without(&s, name));
        let sql = canonical_select(&GATEWAY_USAGE, &old, "t", "/t").unwrap();
        assert!(sql.contains("CAST(NULL AS STRING) AS coding_agent"), "{sql}");
        assert!(sql.contains("CAST(0 AS BIGINT) AS attempt_count"), "{sql}");
        assert!(attempt_fields(&old, "/t").unwrap().is_none());
    }

    #[test]
    fn a_wrong_guess_names_the_nested_column() {
        let schema = gateway_usage_schema();
        let token_details =
            DataType::Struct(Fields::from(vec![Field::new("cache_read_input_tokens", DataType::Utf8, true)]));
        let bad = replaced(&schema, "token_details", token_details);
        let err = canonical_select(&GATEWAY_USAGE, &bad, "t", "/t").unwrap_err().to_string();
        assert!(err.contains("`token_details.cache_read_input_tokens` has type Utf8"), "{err}");

        let attempt = Fields::from(vec![Field::new("destination", DataType::Utf8, true)]);
        let attempts = DataType::List(Arc::new(Field::new("element", DataType::Struct(attempt), true)));
        let routing = DataType::Struct(Fields::from(vec![Field::new("attempts", attempts, true)]));
        let bad = replaced(&schema, "routing_information", routing);
        let err = canonical_select(&GATEWAY_USAGE, &bad, "t", "/t").unwrap_err().to_string();
        assert!(err.contains("routing_information.attempts[].status_code"), "{err}");
    }

    #[test]
    fn the_serving_endpoint_usage_table_is_named_as_such() {
        let schema = crate::generate::tables::usage_schema();
        let err = canonical_select(&GATEWAY_USAGE, &schema, "t", "/t").unwrap_err().to_string();
        assert!(err.contains("`request_id`") && err.contains("inputs.usage"), "{err}");
    }

    #[test]
    fn documented_type_variants_are_accepted() {
        let schema = gateway_usage_schema();
        let attempt = Fields::from(vec![
            Field::new("destination", DataType::Utf8, true),
            Field::new("status_code", DataType::Utf8, true),
            Field::new("latency_ms", DataType::Float64, true),
        ]);
        let attempts = DataType::List(Arc::new(Field::new("element", DataType::Struct(attempt), true)));
        let routing = DataType::Struct(Fields::from(vec![Field::new("attempts", attempts, true)]));
        let variant = replaced(&schema, "routing_information", routing);
        let variant = replaced(
            &variant,
            "event_time",
            DataType::Timestamp(deltalake::arrow::datatypes::TimeUnit::Microsecond, None),
        );
        let variant = replaced(&variant, "status_code", DataType::Int64);
        canonical_select(&GATEWAY_USAGE, &variant, "t", "/t").unwrap();
        assert_eq!(attempt_fields(&variant, "/t").unwrap().unwrap().len(), 3);
    }
}
