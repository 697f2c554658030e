//! The Spark path: a run's SQL as a manifest of Spark SQL statements, for a Spark cluster (or
//! local pyspark) to execute with `jobs/src/spark_runner.py` when data outgrows one machine.
//!
//! The manifest carries the very files of `queries/` with their `${name}` variables intact,
//! preceded by `SET name = value` statements (Spark's variable substitution fills them in), the
//! Delta inputs as temporary views over their tables, and the small reference tables (prices,
//! teams, rate limits, alert calendar, budgets) as inline `VALUES`. The new AI Gateway's (Beta)
//! views are the same SQL as `run`'s but one, `gateway_attempts`, whose array-to-rows step is
//! Spark's `posexplode` ([`ai_gateway::Engine`]). The calls of the two functions of this
//! project (`gateway_usage`, `trace_token_usage`) stay in the manifest; the runner rewrites each
//! into Spark SQL built-ins (`from_json` with a schema, `json_object_keys`, ...) from
//! `jobs/src/gateway_functions.py`, which give the `gateway-json` crate's results on its cases.

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::datatypes::{DataType, Schema, TimeUnit};
use deltalake::arrow::util::display::array_value_to_string;
use serde::Serialize;

use crate::ai_gateway::{self, Engine};
use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::focus_tags;
use crate::generate::ai_gateway::{gateway_payload_schema, gateway_usage_schema};
use crate::generate::tables::{payload_schema, served_entities_schema, traces_schema};
use crate::history;
use crate::inputs::{self, REFERENCE_TABLES, ReferenceData};
use crate::ledger::{self, DateStatus, InputVersions, LedgerEntry, Provenance};
use crate::location::Location;
use crate::outputs::{self, OutputSelection, OutputTable};
use crate::queries;
use crate::sql_params::{SqlParams, history_start};
use crate::window::RunWindow;

/// What a Spark session runs for one window of the job.
#[derive(Debug, Serialize)]
pub struct SparkManifest {
    /// The gateway-analytics version that wrote the manifest.
    pub generated_by: String,
    /// Spark settings the runner applies before the first statement.
    pub session_conf: Vec<(String, String)>,
    /// Statements to run in order before the outputs.
    pub statements: Vec<SparkStatement>,
    /// The output queries, in the order a run computes them.
    pub outputs: Vec<SparkOutput>,
    /// The ledger rows the run writes around its outputs.
    pub ledger: SparkLedger,
}

/// The `computed_dates` rows of a Spark run: `started` before its first output is written,
/// `finished` after its last, each replacing the window's dates, as `run` does. The Spark path
/// reads its inputs by name, so the input versions are NULL.
#[derive(Debug, Serialize)]
pub struct SparkLedger {
    /// The ledger table's name.
    pub name: &'static str,
    /// Its partition column.
    pub partition_column: &'static str,
    /// The dates the run writes.
    pub dates: Vec<String>,
    /// The rows marking the dates `started`.
    pub started: String,
    /// The rows marking the dates `finished`.
    pub finished: String,
}

/// One setup statement.
#[derive(Debug, Serialize)]
pub struct SparkStatement {
    /// `variable`, `source` (a Delta input), `reference` (an inline table), `view`, or `cache`
    /// (a view several outputs read, computed once).
    pub kind: &'static str,
    /// The variable, view or table it defines.
    pub name: String,
    /// For a `source`: the Spark table reference it reads (`catalog.schema.table` or
    /// ``delta.`uri` ``), or NULL for an input the job does not configure.
    pub table: Option<String>,
    /// The statement.
    pub sql: String,
}

/// One output query and the partitions a run replaces.
#[derive(Debug, Serialize)]
pub struct SparkOutput {
    /// The output table's name.
    pub name: &'static str,
    /// Its partition column.
    pub partition_column: &'static str,
    /// First partition date the run replaces (inclusive).
    pub replace_from: String,
    /// Last partition date the run replaces (inclusive).
    pub replace_to: String,
    /// The query, as in `queries/`.
    pub sql: &'static str,
}

/// Builds the manifest of `job` over `window`. Reads the job's reference files (prices, teams,
/// rate limits) but not its Delta tables, which the Spark session reads itself.
pub async fn manifest(job: &JobConfig, window: &RunWindow) -> Result<SparkManifest> {
    let ctx = crate::engine::session()?;
    let reference = ReferenceData::load(job).await?;
    inputs::register_reference(&ctx, job, &reference, window)?;
    // Spark reads all history from the inputs: no earlier outputs.
    let params = SqlParams::new(window, &job.settings, &reference.prices.version, history_start(window, &job.settings));

    let mut statements: Vec<SparkStatement> = params
        .values()
        .map(|(name, value)| SparkStatement {
            kind: "variable",
            name: name.to_string(),
            table: None,
            sql: format!("SET {name} = {value}"),
        })
        .collect();

    let mut sources = vec![("served_entities", job.served_entities.as_ref(), Some(served_entities_schema()))];
    if let Some(usage) = &job.usage {
        sources.push(("usage_source", Some(usage), None));
    }
    sources.push(("payload_source", job.payload.as_ref(), Some(payload_schema())));
    sources.push(("traces_source", job.traces.as_ref(), Some(traces_schema())));
    // The new AI Gateway's (Beta) tables, as `run` registers them (an absent one empty).
    sources.push(("gateway_usage_raw", job.gateway_usage.as_ref(), Some(gateway_usage_schema())));
    sources.push(("gateway_payload_raw", job.gateway_payload.as_ref(), Some(gateway_payload_schema())));
    // Spark reads all history from the inputs (the default of SqlParams): no earlier outputs.
    sources.push((history::SPEND_HISTORY, None, Some(history::spend_history_schema())));
    sources.push((history::DEMAND_HISTORY, None, Some(history::demand_history_schema())));
    // The previous day's alerts (the lifecycle's state): empty here; the Databricks runner
    // reads them from the schema's alerts table when it has them.
    sources.push((history::ALERT_HISTORY, None, Some(history::alert_history_schema())));
    for (name, location, empty_schema) in sources {
        let table = location.map(spark_table);
        let body = match (&table, empty_schema) {
            (Some(table), _) => format!("SELECT * FROM {table}"),
            (None, Some(schema)) => empty_select(&schema)?,
            (None, None) => continue,
        };
        statements.push(SparkStatement { kind: "source", name: name.to_string(), table, sql: temp_view(name, &body) });
    }

    // The new gateway's rate limits too (empty without `inputs.gateway_rate_limits`).
    for name in REFERENCE_TABLES.into_iter().chain([ai_gateway::rate_limits::RULES_TABLE]) {
        let frame = ctx.table(name).await.map_err(|e| Error::query(name, e))?;
        let schema = frame.schema().inner().clone();
        let batches = frame.collect().await.map_err(|e| Error::query(name, e))?;
        let body = values_select(name, &schema, &batches)?;
        statements.push(SparkStatement {
            kind: "reference",
            name: name.to_string(),
            table: None,
            sql: temp_view(name, &body),
        });
    }

    for view in queries::view_order(job.usage.is_some()) {
        statements.push(view_statement(view.name, view.sql.to_string()));
    }
    statements.extend(gateway_views(job)?);
    let tagged = focus_tags::tagged_usage_view(&focus_tags::context_keys(job));
    statements.push(view_statement(focus_tags::TAGGED_USAGE_VIEW, tagged));
    for view in &queries::RECOMMENDATION_VIEWS {
        statements.push(view_statement(view.name, view.sql.to_string()));
    }
    // Both recommendations outputs read the lookback's minutes four times each (`run`
    // materialises them).
    statements.push(cache_statement(queries::RECOMMENDATION_VIEWS[0].name));

    let selected = outputs::selected(job, &OutputSelection::All);
    // An output another one reads but the job does not write (the new gateway's, read by the
    // alerts, in a job without its tables): a view over the empty input, as `run` computes it.
    let mut unwritten_reads: Vec<&OutputTable> = Vec::new();
    for read in selected.iter().flat_map(|table| table.reads.iter().copied()) {
        let written = selected.iter().any(|t| t.name == read.name);
        if !written && !unwritten_reads.iter().any(|t| t.name == read.name) {
            unwritten_reads.push(read);
        }
    }
    for read in unwritten_reads {
        statements.push(view_statement(read.name, read.query.sql.to_string()));
    }
    let outputs: Vec<SparkOutput> = reads_first(&selected)
        .into_iter()
        .map(|table| {
            let from = match table.partitioning {
                outputs::Partitioning::WindowDates => window.from,
                outputs::Partitioning::AsOfDate => window.to,
            };
            let to = window.to;
            SparkOutput {
                name: table.name,
                partition_column: table.partitioning.column(),
                replace_from: from.to_string(),
                replace_to: to.to_string(),
                sql: table.query.sql,
            }
        })
        .collect();

    Ok(SparkManifest {
        generated_by: format!("gateway-analytics {}", env!("CARGO_PKG_VERSION")),
        session_conf: vec![("spark.sql.session.timeZone".into(), "UTC".into())],
        statements,
        ledger: spark_ledger(job, window, &reference, &selected)?,
        outputs,
    })
}

/// The ledger rows of a Spark run over `window` writing `outputs` (listed in run order, as `run`
/// lists them).
fn spark_ledger(
    job: &JobConfig,
    window: &RunWindow,
    reference: &ReferenceData,
    outputs: &[&'static OutputTable],
) -> Result<SparkLedger> {
    let now = chrono::Utc::now();
    let run_id = crate::plan::new_run_id();
    let names: Vec<&str> = outputs.iter().map(|t| t.name).collect();
    let entries = |status: DateStatus| -> Vec<LedgerEntry> {
        window
            .dates()
            .map(|date| LedgerEntry {
                date,
                status,
                run_id: run_id.clone(),
                outputs: names.join(","),
                reason: "requested window".into(),
                provenance: Provenance {
                    price_version: reference.prices.version.clone(),
                    teams_version: reference.teams_version.clone(),
                    mode: crate::plan::mode_of(job).into(),
                    definitions_version: outputs::definitions_version(),
                },
                versions: InputVersions::default(),
                recommendations_as_of: date == window.to,
                computed_at: now,
                checked_at: now,
            })
            .collect()
    };
    let rows = |status| -> Result<String> {
        let batch = ledger::batch(&entries(status))?;
        values_select(ledger::LEDGER, &batch.schema(), &[batch])
    };
    Ok(SparkLedger {
        name: ledger::LEDGER,
        partition_column: "usage_date",
        dates: window.dates().map(|d| d.to_string()).collect(),
        started: rows(DateStatus::Started)?,
        finished: rows(DateStatus::Finished)?,
    })
}

fn view_statement(name: &str, sql: String) -> SparkStatement {
    SparkStatement { kind: "view", name: name.to_string(), sql: temp_view(name, &sql), table: None }
}

/// Computes the view `name` once, for the several outputs that read it.
fn cache_statement(name: &str) -> SparkStatement {
    SparkStatement { kind: "cache", name: name.to_string(), sql: format!("CACHE TABLE {name}"), table: None }
}

/// The new AI Gateway's views, as `run` registers them (`ai_gateway::register_inputs` and
/// `register_views`). The binary does not open the Delta tables here (Spark reads them), so
/// their canonical views read the documented schema of each (the generator's, the current
/// version): a table of an older version, without an optional column, stops Spark's analysis
/// naming the column. `gateway_usage` is cached: every Beta output reads it (`run`
/// materialises it).
fn gateway_views(job: &JobConfig) -> Result<Vec<SparkStatement>> {
    let mut statements = Vec::new();
    for (name, contract, location, schema) in [
        ("gateway_usage", &ai_gateway::GATEWAY_USAGE, &job.gateway_usage, gateway_usage_schema()),
        ("gateway_payload", &ai_gateway::GATEWAY_PAYLOAD, &job.gateway_payload, gateway_payload_schema()),
    ] {
        let shown = location.as_ref().map_or_else(|| "(none)".to_string(), ToString::to_string);
        let select = ai_gateway::contract::canonical_select(contract, &schema, &format!("{name}_raw"), &shown)?;
        statements.push(view_statement(&format!("{name}_source"), select));
    }
    statements.push(view_statement("ai_gateway_settings", ai_gateway::settings_view(job)));
    statements.push(view_statement(ai_gateway::GATEWAY_USAGE_VIEW.name, ai_gateway::usage_view_sql(job)));
    if job.gateway_usage.is_some() {
        statements.push(cache_statement(ai_gateway::GATEWAY_USAGE_VIEW.name));
    }
    let fields = ai_gateway::contract::attempt_fields(&gateway_usage_schema(), "(documented schema)")?;
    statements.push(view_statement("gateway_attempts", ai_gateway::attempts_view(fields.as_ref(), Engine::Spark)));
    let tag_values = ai_gateway::tag_values_view(&job.ai_gateway.tag_keys, job.usage.is_some());
    statements.push(view_statement("gateway_tag_values", tag_values));
    Ok(statements)
}

fn temp_view(name: &str, body: &str) -> String {
    format!("CREATE OR REPLACE TEMPORARY VIEW {name} AS\n{body}")
}

/// How Spark names a Delta input: a Unity Catalog table by its three-part name, anything else
/// by its storage URI.
fn spark_table(location: &Location) -> String {
    match location.unity_catalog_name() {
        Some(name) => name.split('.').map(|part| format!("`{part}`")).collect::<Vec<_>>().join("."),
        None => format!("delta.`{}`", location.as_table_uri().replace('`', "``")),
    }
}

/// A query with `schema`'s columns and no rows.
fn empty_select(schema: &Schema) -> Result<String> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| Ok(format!("CAST(NULL AS {}) AS {}", spark_type(f.data_type())?, f.name())))
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("SELECT {} WHERE false", columns.join(", ")))
}

/// A query returning `batches` as inline `VALUES`, each column cast to its type.
fn values_select(name: &str, schema: &Schema, batches: &[RecordBatch]) -> Result<String> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|column| literal(column.as_ref(), row).map_err(|e| Error::query(name, e.into())))
                .collect::<Result<Vec<_>>>()?;
            rows.push(format!("({})", values.join(", ")));
        }
    }
    if rows.is_empty() {
        return empty_select(schema);
    }
    let aliases: Vec<String> = (0..schema.fields().len()).map(|i| format!("c{i}")).collect();
    let columns = schema
        .fields()
        .iter()
        .zip(&aliases)
        .map(|(f, alias)| Ok(format!("CAST({alias} AS {}) AS {}", spark_type(f.data_type())?, f.name())))
        .collect::<Result<Vec<_>>>()?;
    Ok(format!("SELECT {}\nFROM VALUES\n  {}\n  AS t({})", columns.join(", "), rows.join(",\n  "), aliases.join(", ")))
}

/// One value as a SQL string literal (the enclosing CAST gives it its type), or NULL.
fn literal(column: &dyn Array, row: usize) -> std::result::Result<String, deltalake::arrow::error::ArrowError> {
    if column.is_null(row) {
        return Ok("NULL".to_string());
    }
    let text = match column.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let micros = column.as_primitive::<deltalake::arrow::datatypes::TimestampMicrosecondType>().value(row);
            chrono::DateTime::from_timestamp_micros(micros)
                .map(|t| t.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
                .unwrap_or_default()
        }
        _ => array_value_to_string(column, row)?,
    };
    Ok(format!("'{}'", text.replace('\'', "''")))
}

/// The Spark SQL name of an Arrow type.
fn spark_type(data_type: &DataType) -> Result<String> {
    Ok(match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP_NTZ".into(),
        DataType::Decimal128(precision, scale) => format!("DECIMAL({precision}, {scale})"),
        DataType::Binary | DataType::LargeBinary => "BINARY".into(),
        DataType::List(item) | DataType::LargeList(item) => format!("ARRAY<{}>", spark_type(item.data_type())?),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => {
                format!("MAP<{}, {}>", spark_type(fields[0].data_type())?, spark_type(fields[1].data_type())?)
            }
            other => return Err(unsupported(other)),
        },
        DataType::Struct(fields) => {
            let parts = fields
                .iter()
                .map(|f| Ok(format!("{}: {}", f.name(), spark_type(f.data_type())?)))
                .collect::<Result<Vec<_>>>()?;
            format!("STRUCT<{}>", parts.join(", "))
        }
        other => return Err(unsupported(other)),
    })
}

fn unsupported(data_type: &DataType) -> Error {
    Error::query(
        "spark-sql",
        deltalake::datafusion::error::DataFusionError::NotImplemented(format!("no Spark type for {data_type}")),
    )
}

/// `tables` in an order where every output comes after the outputs it reads (the Spark runner
/// registers each output as a view for the queries after it), otherwise in run order.
fn reads_first(tables: &[&'static OutputTable]) -> Vec<&'static OutputTable> {
    let mut ordered: Vec<&'static OutputTable> = Vec::with_capacity(tables.len());
    for table in tables {
        for read in table.reads.iter().copied().chain([*table]) {
            let selected = tables.iter().any(|t| t.name == read.name);
            if selected && !ordered.iter().any(|t| t.name == read.name) {
                ordered.push(read);
            }
        }
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::arrow::datatypes::Field;
    use std::path::Path;

    #[test]
    fn spark_types_of_the_databricks_schemas() {
        assert!(empty_select(&traces_schema()).is_ok());
        let text = empty_select(&payload_schema()).unwrap();
        assert!(text.contains("CAST(NULL AS TIMESTAMP) AS request_time"), "{text}");
        let map = DataType::Map(
            std::sync::Arc::new(Field::new(
                "entries",
                DataType::Struct(
                    vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)].into(),
                ),
                false,
            )),
            false,
        );
        assert_eq!(spark_type(&map).unwrap(), "MAP<STRING, STRING>");
    }

    #[test]
    fn unity_catalog_names_and_uris() {
        let uc = Location::resolve("uc://main.serving.chat_payload", Path::new("/")).unwrap();
        assert_eq!(spark_table(&uc), "`main`.`serving`.`chat_payload`");
        let s3 = Location::resolve("s3://bucket/usage", Path::new("/")).unwrap();
        assert_eq!(spark_table(&s3), "delta.`s3://bucket/usage`");
    }

    #[test]
    fn the_beta_views_use_no_datafusion_only_sql() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/ai_gateway.toml")).unwrap();
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/jobs/ai_gateway.toml"));
        let job = JobConfig::parse(&text, path).unwrap();
        let statements = gateway_views(&job).unwrap();
        let names: Vec<&str> = statements.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "gateway_usage_source",
                "gateway_payload_source",
                "ai_gateway_settings",
                "gateway_usage",
                "gateway_usage",
                "gateway_attempts",
                "gateway_tag_values"
            ]
        );
        for statement in &statements {
            for datafusion_only in
                ["get_field", "unnest", "generate_series", "array_element", "array_length", "VARCHAR", "\""]
            {
                assert!(!statement.sql.contains(datafusion_only), "{datafusion_only} in {}", statement.sql);
            }
        }
        assert!(statements[5].sql.contains("posexplode(g.attempts)"), "{}", statements[5].sql);
        assert!(statements[3].sql.contains("request_tags['team']"), "{}", statements[3].sql);
    }
}
