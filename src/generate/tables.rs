//! Arrow schemas of the Databricks tables (schemas notes §1.1, §2.1, §2.2) and the batches the
//! generator writes into them.

use std::sync::Arc;

use chrono::NaiveDate;
use deltalake::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, ListBuilder, MapBuilder, MapFieldNames,
    RecordBatch, StringArray, StringBuilder, StructArray, TimestampMicrosecondArray,
};
use deltalake::arrow::buffer::NullBuffer;
use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::error::ArrowError;

use super::traffic::Request;
use super::world::World;

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

fn map_field_names() -> MapFieldNames {
    MapFieldNames { entry: "key_value".into(), key: "key".into(), value: "value".into() }
}

fn string_map() -> DataType {
    let entries =
        Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)]);
    DataType::Map(Arc::new(Field::new("key_value", DataType::Struct(entries), false)), false)
}

/// `system.serving.endpoint_usage`.
pub fn usage_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("account_id", DataType::Utf8, true),
        Field::new("workspace_id", DataType::Utf8, true),
        Field::new("client_request_id", DataType::Utf8, true),
        Field::new("databricks_request_id", DataType::Utf8, true),
        Field::new("requester", DataType::Utf8, true),
        Field::new("status_code", DataType::Int32, true),
        Field::new("request_time", timestamp(), true),
        Field::new("input_token_count", DataType::Int64, true),
        Field::new("output_token_count", DataType::Int64, true),
        Field::new("input_character_count", DataType::Int64, true),
        Field::new("output_character_count", DataType::Int64, true),
        Field::new("usage_context", string_map(), true),
        Field::new("request_streaming", DataType::Boolean, true),
        Field::new("served_entity_id", DataType::Utf8, true),
    ]))
}

/// The AI Gateway inference table `<prefix>_payload` (12 columns).
pub fn payload_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("databricks_request_id", DataType::Utf8, true),
        Field::new("request_date", DataType::Date32, true),
        Field::new("client_request_id", DataType::Utf8, true),
        Field::new("request_time", timestamp(), true),
        Field::new("status_code", DataType::Int32, true),
        Field::new("sampling_fraction", DataType::Float64, true),
        Field::new("execution_duration_ms", DataType::Int64, true),
        Field::new("request", DataType::Utf8, true),
        Field::new("response", DataType::Utf8, true),
        Field::new("logging_error_codes", DataType::List(Arc::new(Field::new("element", DataType::Utf8, true))), true),
        Field::new("served_entity_id", DataType::Utf8, true),
        Field::new("requester", DataType::Utf8, true),
    ]))
}

fn concurrency_fields() -> Fields {
    Fields::from(vec![
        Field::new("min_concurrency", DataType::Int64, true),
        Field::new("max_concurrency", DataType::Int64, true),
        Field::new("compute_type", DataType::Utf8, true),
    ])
}

fn external_model_fields() -> Fields {
    Fields::from(vec![
        Field::new("provider", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("task", DataType::Utf8, true),
    ])
}

fn foundation_model_fields() -> Fields {
    Fields::from(vec![
        Field::new("min_provisioned_throughput", DataType::Int64, true),
        Field::new("max_provisioned_throughput", DataType::Int64, true),
    ])
}

/// `system.serving.served_entities`.
pub fn served_entities_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("served_entity_id", DataType::Utf8, true),
        Field::new("account_id", DataType::Utf8, true),
        Field::new("workspace_id", DataType::Utf8, true),
        Field::new("created_by", DataType::Utf8, true),
        Field::new("endpoint_name", DataType::Utf8, true),
        Field::new("endpoint_id", DataType::Utf8, true),
        Field::new("served_entity_name", DataType::Utf8, true),
        Field::new("entity_type", DataType::Utf8, true),
        Field::new("entity_name", DataType::Utf8, true),
        Field::new("entity_version", DataType::Utf8, true),
        Field::new("endpoint_config_version", DataType::Int64, true),
        Field::new("task", DataType::Utf8, true),
        Field::new("external_model_config", DataType::Struct(external_model_fields()), true),
        Field::new("foundation_model_config", DataType::Struct(foundation_model_fields()), true),
        Field::new("custom_model_config", DataType::Struct(concurrency_fields()), true),
        Field::new("feature_spec_config", DataType::Struct(concurrency_fields()), true),
        Field::new("change_time", timestamp(), true),
        Field::new("endpoint_delete_time", timestamp(), true),
    ]))
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

fn timestamps(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(values.collect::<TimestampMicrosecondArray>().with_timezone("UTC"))
}

/// Usage rows for `requests` (those the usage table has).
pub fn usage_batch(world: &World, requests: &[&Request]) -> Result<RecordBatch, ArrowError> {
    let n = requests.len();
    let principal = |r: &Request| r.principal.map(|i| world.principals[i].id.as_str());
    let mut context = MapBuilder::new(Some(map_field_names()), StringBuilder::new(), StringBuilder::new());
    for r in requests {
        match &r.usage_context {
            None => context.append(false)?,
            Some(pairs) => {
                for (k, v) in pairs {
                    context.keys().append_value(k);
                    context.values().append_value(v);
                }
                context.append(true)?;
            }
        }
    }
    let columns: Vec<ArrayRef> = vec![
        strings(std::iter::repeat_n(Some(world.account_id.as_str()), n)),
        strings(std::iter::repeat_n(Some(world.workspace_id.as_str()), n)),
        strings(requests.iter().map(|r| r.client_request_id.as_deref())),
        strings(requests.iter().map(|r| Some(r.databricks_request_id.as_str()))),
        strings(requests.iter().map(|r| principal(r))),
        Arc::new(requests.iter().map(|r| Some(r.status_code)).collect::<Int32Array>()),
        timestamps(requests.iter().map(|r| Some(r.request_time_us))),
        Arc::new(requests.iter().map(|r| r.input_tokens).collect::<Int64Array>()),
        Arc::new(requests.iter().map(|r| r.output_tokens).collect::<Int64Array>()),
        Arc::new(requests.iter().map(|r| r.input_tokens.map(|t| t * 4)).collect::<Int64Array>()),
        Arc::new(requests.iter().map(|r| r.output_tokens.map(|t| t * 4)).collect::<Int64Array>()),
        Arc::new(context.finish()),
        Arc::new(requests.iter().map(|r| Some(r.streaming)).collect::<BooleanArray>()),
        strings(requests.iter().map(|r| Some(served_entity_id(world, r)))),
    ];
    RecordBatch::try_new(usage_schema(), columns)
}

fn served_entity_id<'a>(world: &'a World, request: &Request) -> &'a str {
    request.endpoint.map_or(world.orphan_served_entity_id.as_str(), |e| world.endpoints[e].served_entity_id.as_str())
}

/// Payload rows for the logged requests among `requests`.
pub fn payload_batch(world: &World, requests: &[&Request]) -> Result<RecordBatch, ArrowError> {
    let logged: Vec<&Request> = requests.iter().copied().filter(|r| r.payload.is_some()).collect();
    fn payload<'a>(r: &&'a Request) -> Option<&'a super::traffic::PayloadLog> {
        r.payload.as_ref()
    }
    let date_of = |us: i64| -> i32 { us.div_euclid(86_400_000_000) as i32 };
    let mut codes =
        ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("element", DataType::Utf8, true)));
    for r in &logged {
        match payload(r).and_then(|p| p.logging_error_codes.as_ref()) {
            None => codes.append(false),
            Some(list) => {
                for code in list {
                    codes.values().append_value(code);
                }
                codes.append(true);
            }
        }
    }
    let bodies: Vec<(Option<String>, Option<String>)> =
        logged.iter().map(|r| r.payload.as_ref().map_or((None, None), |p| p.bodies(world, r))).collect();
    let sampling = |r: &Request| r.endpoint.map_or(1.0, |e| world.endpoints[e].sampling_fraction);
    let columns: Vec<ArrayRef> = vec![
        strings(logged.iter().map(|r| Some(r.databricks_request_id.as_str()))),
        Arc::new(logged.iter().map(|r| Some(date_of(r.request_time_us))).collect::<Date32Array>()),
        strings(logged.iter().map(|r| r.client_request_id.as_deref())),
        timestamps(logged.iter().map(|r| Some(r.request_time_us))),
        Arc::new(logged.iter().map(|r| Some(r.status_code)).collect::<Int32Array>()),
        Arc::new(logged.iter().map(|r| Some(sampling(r))).collect::<Float64Array>()),
        Arc::new(logged.iter().map(|r| payload(r).and_then(|p| p.execution_duration_ms)).collect::<Int64Array>()),
        strings(bodies.iter().map(|(request, _)| request.as_deref())),
        strings(bodies.iter().map(|(_, response)| response.as_deref())),
        Arc::new(codes.finish()),
        strings(logged.iter().map(|r| Some(served_entity_id(world, r)))),
        strings(logged.iter().map(|r| r.principal.map(|i| world.principals[i].id.as_str()))),
    ];
    RecordBatch::try_new(payload_schema(), columns)
}

/// served_entities rows: each endpoint created 30 days before `start`, then reconfigured;
/// chat-prod's model changes at noon of the first day, so history and names disagree.
pub fn served_entities_batch(world: &World, start: NaiveDate) -> Result<RecordBatch, ArrowError> {
    struct Row<'a> {
        endpoint: &'a super::world::Endpoint,
        entity_name: &'a str,
        version: i64,
        change_us: i64,
    }
    let day = 86_400_000_000i64;
    let start_us = start.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let mut rows = Vec::new();
    for (i, endpoint) in world.endpoints.iter().enumerate() {
        let created = start_us - 30 * day + i as i64 * 3_600_000_000;
        rows.push(Row {
            endpoint,
            entity_name: endpoint.previous_entity_name.unwrap_or(endpoint.entity_name),
            version: 1,
            change_us: created,
        });
        let second_change =
            if endpoint.previous_entity_name.is_some() { start_us + day / 2 } else { created + 7 * day };
        rows.push(Row { endpoint, entity_name: endpoint.entity_name, version: 2, change_us: second_change });
    }
    let is_external = |r: &Row| r.endpoint.entity_type == "EXTERNAL_MODEL";
    let is_foundation = |r: &Row| r.endpoint.entity_type == "FOUNDATION_MODEL";
    let is_custom = |r: &Row| r.endpoint.entity_type == "CUSTOM_MODEL";
    let n = rows.len();
    let external = StructArray::try_new(
        external_model_fields(),
        vec![
            strings(rows.iter().map(|r| r.endpoint.provider)),
            strings(rows.iter().map(|r| is_external(r).then_some(r.entity_name))),
            strings(rows.iter().map(|r| is_external(r).then_some(r.endpoint.task))),
        ],
        Some(NullBuffer::from(rows.iter().map(is_external).collect::<Vec<_>>())),
    )?;
    let foundation = StructArray::try_new(
        foundation_model_fields(),
        vec![
            Arc::new(rows.iter().map(|r| is_foundation(r).then_some(0)).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| is_foundation(r).then_some(0)).collect::<Int64Array>()),
        ],
        Some(NullBuffer::from(rows.iter().map(is_foundation).collect::<Vec<_>>())),
    )?;
    let custom = StructArray::try_new(
        concurrency_fields(),
        vec![
            Arc::new(rows.iter().map(|r| is_custom(r).then_some(4)).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|r| is_custom(r).then_some(16)).collect::<Int64Array>()),
            strings(rows.iter().map(|r| is_custom(r).then_some("CPU"))),
        ],
        Some(NullBuffer::from(rows.iter().map(is_custom).collect::<Vec<_>>())),
    )?;
    let feature_spec = StructArray::new_null(concurrency_fields(), n);
    let served_name = |r: &Row| r.entity_name.rsplit('.').next().unwrap_or(r.entity_name).to_string();
    let served_names: Vec<String> = rows.iter().map(served_name).collect();
    let versions: Vec<String> = rows.iter().map(|r| r.version.to_string()).collect();
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| Some(r.endpoint.served_entity_id.as_str()))),
        strings(std::iter::repeat_n(Some(world.account_id.as_str()), n)),
        strings(std::iter::repeat_n(Some(world.workspace_id.as_str()), n)),
        strings(std::iter::repeat_n(Some("platform-admin@example.com"), n)),
        strings(rows.iter().map(|r| Some(r.endpoint.name))),
        strings(rows.iter().map(|r| Some(r.endpoint.endpoint_id.as_str()))),
        strings(served_names.iter().map(|s| Some(s.as_str()))),
        strings(rows.iter().map(|r| Some(r.endpoint.entity_type))),
        strings(rows.iter().map(|r| Some(r.entity_name))),
        strings(
            rows.iter()
                .map(|r| is_custom(r).then_some("3"))
                .zip(versions.iter())
                .map(|(custom, v)| custom.or(Some(v.as_str()))),
        ),
        Arc::new(rows.iter().map(|r| Some(r.version)).collect::<Int64Array>()),
        strings(rows.iter().map(|r| Some(r.endpoint.task))),
        Arc::new(external),
        Arc::new(foundation),
        Arc::new(custom),
        Arc::new(feature_spec),
        timestamps(rows.iter().map(|r| Some(r.change_us))),
        timestamps(rows.iter().map(|_| None)),
    ];
    RecordBatch::try_new(served_entities_schema(), columns)
}

/// MLflow's `trace_logs_<experiment_id>` view (schemas notes §3.3).
pub fn traces_schema() -> SchemaRef {
    let ts = timestamp;
    let source = Fields::from(vec![
        Field::new("source_id", DataType::Utf8, true),
        Field::new("source_type", DataType::Utf8, true),
    ]);
    let feedback_error = Fields::from(vec![
        Field::new("error_code", DataType::Utf8, true),
        Field::new("error_message", DataType::Utf8, true),
    ]);
    let assessment = Fields::from(vec![
        Field::new("assessment_id", DataType::Utf8, true),
        Field::new("trace_id", DataType::Utf8, true),
        Field::new("assessment_name", DataType::Utf8, true),
        Field::new("source", DataType::Struct(source), true),
        Field::new("create_time", ts(), true),
        Field::new("last_update_time", ts(), true),
        Field::new(
            "expectation",
            DataType::Struct(Fields::from(vec![Field::new("value", DataType::Utf8, true)])),
            true,
        ),
        Field::new(
            "feedback",
            DataType::Struct(Fields::from(vec![
                Field::new("value", DataType::Utf8, true),
                Field::new("error", DataType::Struct(feedback_error), true),
            ])),
            true,
        ),
        Field::new("rationale", DataType::Utf8, true),
        Field::new("metadata", string_map(), true),
        Field::new("span_id", DataType::Utf8, true),
    ]);
    let event = Fields::from(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("timestamp", ts(), true),
        Field::new("attributes", string_map(), true),
    ]);
    let span = Fields::from(vec![
        Field::new("span_id", DataType::Utf8, true),
        Field::new("trace_id", DataType::Utf8, true),
        Field::new("parent_id", DataType::Utf8, true),
        Field::new("start_time", ts(), true),
        Field::new("end_time", ts(), true),
        Field::new("status_code", DataType::Utf8, true),
        Field::new("status_message", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("attributes", string_map(), true),
        Field::new("events", DataType::List(Arc::new(Field::new("element", DataType::Struct(event), true))), true),
    ]);
    let location = Fields::from(vec![
        Field::new("type", DataType::Utf8, true),
        Field::new(
            "mlflow_experiment",
            DataType::Struct(Fields::from(vec![Field::new("experiment_id", DataType::Utf8, true)])),
            true,
        ),
        Field::new(
            "inference_table",
            DataType::Struct(Fields::from(vec![Field::new("full_table_name", DataType::Utf8, true)])),
            true,
        ),
    ]);
    Arc::new(Schema::new(vec![
        Field::new("trace_id", DataType::Utf8, true),
        Field::new("client_request_id", DataType::Utf8, true),
        Field::new("request_time", ts(), true),
        Field::new("state", DataType::Utf8, true),
        Field::new("execution_duration_ms", DataType::Float64, true),
        Field::new("request", DataType::Utf8, true),
        Field::new("response", DataType::Utf8, true),
        Field::new("trace_metadata", string_map(), true),
        Field::new("tags", string_map(), true),
        Field::new("trace_location", DataType::Struct(location), true),
        Field::new(
            "assessments",
            DataType::List(Arc::new(Field::new("element", DataType::Struct(assessment), true))),
            true,
        ),
        Field::new("spans", DataType::List(Arc::new(Field::new("element", DataType::Struct(span), true))), true),
    ]))
}

/// Decodes JSON lines (one trace per line) into a batch with [`traces_schema`].
pub fn traces_batch(lines: &[String]) -> Result<RecordBatch, ArrowError> {
    let text = lines.join("\n");
    let mut reader = deltalake::arrow::json::ReaderBuilder::new(traces_schema())
        .with_batch_size(lines.len().max(1))
        .build(std::io::Cursor::new(text.into_bytes()))?;
    match reader.next() {
        Some(batch) => batch,
        None => Ok(RecordBatch::new_empty(traces_schema())),
    }
}
