//! The new AI Gateway (Beta, "Unity AI Gateway"): its tables as inputs (`[inputs]
//! gateway_usage`, `gateway_payload`), the views over them and the outputs only they allow
//! (`fallbacks`, `agent_sessions`, `agent_daily`, `mcp_usage`, `tag_spend`), beside the
//! counterparts of the serving-endpoint outputs (`ai_gateway_daily_spend`, ...,
//! `ai_gateway_reconciliation`).
//!
//! The tables' shapes are known only in part (docs/OUTPUTS.md#the-two-gateways, with its
//! sources), so [`contract`] reads each column by name, accepts every documented variant
//! and turns the table into a canonical view; the views and outputs are SQL files under
//! `queries/ai_gateway/` and `queries/`, except the two views whose SQL depends on the job
//! (the attempts of each row, the tag keys), which are built here.

pub mod contract;
pub mod rate_limits;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::datafusion::prelude::SessionContext;

pub use contract::{GATEWAY_PAYLOAD, GATEWAY_USAGE};

use crate::config::JobConfig;
use crate::engine::scratch::Scratch;
use crate::error::{Error, Result};
use crate::generate::ai_gateway::{gateway_payload_schema, gateway_usage_schema};
use crate::inputs::{empty_table, register_table};
use crate::location::Location;
use crate::outputs::{OutputTable, Partitioning};
use crate::queries::{Query, create_view};
use crate::remote::UnityCatalogTimeouts;
use crate::sql_params::SqlParams;
use crate::storage;

macro_rules! query_file {
    ($name:literal, $path:literal) => {
        Query { name: $name, sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/queries/", $path)) }
    };
}

/// `queries/ai_gateway/gateway_usage.sql`: the window's invocations with names, team, agent,
/// token categories and cost.
pub const GATEWAY_USAGE_VIEW: Query = query_file!("gateway_usage", "ai_gateway/gateway_usage.sql");

/// The `ai_gateway_daily_spend` output: `daily_spend` for the new gateway.
pub const AI_GATEWAY_DAILY_SPEND: OutputTable = OutputTable {
    name: "ai_gateway_daily_spend",
    query: &query_file!("ai_gateway_daily_spend", "ai_gateway_daily_spend.sql"),
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The `ai_gateway_hourly_errors` output: `hourly_errors` for the new gateway, with time to
/// first byte and guardrail blocks.
pub const AI_GATEWAY_HOURLY_ERRORS: OutputTable = OutputTable {
    name: "ai_gateway_hourly_errors",
    query: &query_file!("ai_gateway_hourly_errors", "ai_gateway_hourly_errors.sql"),
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The `fallbacks` output.
pub const FALLBACKS: OutputTable = OutputTable {
    name: "fallbacks",
    query: &query_file!("fallbacks", "fallbacks.sql"),
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The `agent_sessions` output.
pub const AGENT_SESSIONS: OutputTable = OutputTable {
    name: "agent_sessions",
    query: &query_file!("agent_sessions", "agent_sessions.sql"),
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The `agent_daily` output (over `agent_sessions`).
pub const AGENT_DAILY: OutputTable = OutputTable {
    name: "agent_daily",
    query: &query_file!("agent_daily", "agent_daily.sql"),
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[&AGENT_SESSIONS],
};
/// The `mcp_usage` output.
pub const MCP_USAGE: OutputTable = OutputTable {
    name: "mcp_usage",
    query: &query_file!("mcp_usage", "mcp_usage.sql"),
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};
/// The `tag_spend` output.
pub const TAG_SPEND: OutputTable = OutputTable {
    name: "tag_spend",
    query: &query_file!("tag_spend", "tag_spend.sql"),
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};

/// The `ai_gateway_rate_limit_recommendations` output: `rate_limit_recommendations` for the
/// new gateway, against `[inputs] gateway_rate_limits`.
pub const AI_GATEWAY_RATE_LIMIT_RECOMMENDATIONS: OutputTable = OutputTable {
    name: "ai_gateway_rate_limit_recommendations",
    query: &query_file!("ai_gateway_rate_limit_recommendations", "ai_gateway_rate_limit_recommendations.sql"),
    partitioning: Partitioning::AsOfDate,
    needs_traces: false,
    reads: &[],
};

/// The `ai_gateway_reconciliation` output: `reconciliation` for the new gateway, the usage
/// table's token counts against the Beta payload table's response bodies.
pub const AI_GATEWAY_RECONCILIATION: OutputTable = OutputTable {
    name: "ai_gateway_reconciliation",
    query: &query_file!("ai_gateway_reconciliation", "ai_gateway_reconciliation.sql"),
    partitioning: Partitioning::WindowDates,
    needs_traces: false,
    reads: &[],
};

/// The outputs computed only from the new gateway's tables: a job without `gateway_usage`
/// does not write them.
pub const OUTPUTS: [&OutputTable; 9] = [
    &AI_GATEWAY_DAILY_SPEND,
    &AI_GATEWAY_HOURLY_ERRORS,
    &FALLBACKS,
    &AGENT_SESSIONS,
    &AGENT_DAILY,
    &MCP_USAGE,
    &TAG_SPEND,
    &AI_GATEWAY_RECONCILIATION,
    &AI_GATEWAY_RATE_LIMIT_RECOMMENDATIONS,
];

/// Whether `table` is one of the outputs of this module ([`OUTPUTS`]).
pub fn needs_gateway_usage(table: &OutputTable) -> bool {
    OUTPUTS.iter().any(|t| t.name == table.name)
}

/// Whether a run of `job` writes `table`: every output but these; these with
/// `inputs.gateway_usage`; `tag_spend` also with `[ai_gateway] tag_keys` alone (then from the
/// serving-endpoint usage table's `usage_context`).
pub fn is_written(job: &JobConfig, table: &OutputTable) -> bool {
    !needs_gateway_usage(table)
        || job.gateway_usage.is_some()
        || (table.name == TAG_SPEND.name && !job.ai_gateway.tag_keys.is_empty() && job.usage.is_some())
}

/// Opens a Beta table and checks it against `contract` (and, for the usage table, the shape of
/// its routing attempts) before any work.
pub async fn open_checked(
    contract: &contract::Contract,
    location: &Location,
    options: &HashMap<String, String>,
    catalog: &UnityCatalogTimeouts,
) -> Result<DeltaTable> {
    let table = storage::open_table(contract.input, location, options, catalog).await?;
    let provider = storage::provider_of(&SessionContext::new(), contract.input, location, &table).await?;
    let schema = provider.schema();
    contract::canonical_select(contract, &schema, "t", &location.to_string())?;
    Ok(table)
}

/// Registers the Beta inputs as `gateway_usage_raw` / `gateway_payload_raw` (an absent one as
/// an empty table of its documented schema) and their canonical views `gateway_usage_source`
/// and `gateway_payload_source`.
pub async fn register_inputs(
    ctx: &SessionContext,
    job: &JobConfig,
    usage: Option<&DeltaTable>,
    payload: Option<&DeltaTable>,
) -> Result<()> {
    for (name, table, location, schema, contract) in [
        ("gateway_usage", usage, job.gateway_usage.as_ref(), gateway_usage_schema(), &GATEWAY_USAGE),
        ("gateway_payload", payload, job.gateway_payload.as_ref(), gateway_payload_schema(), &GATEWAY_PAYLOAD),
    ] {
        let raw = format!("{name}_raw");
        let provider = match (table, location) {
            (Some(table), Some(location)) => storage::provider_of(ctx, name, location, table).await?,
            _ => Arc::new(empty_table(name, schema)?),
        };
        let shown = location.map_or_else(|| "(none)".to_string(), ToString::to_string);
        let select = contract::canonical_select(contract, &provider.schema(), &raw, &shown)?;
        register_table(ctx, &raw, provider)?;
        create_view(ctx, &format!("{name}_source"), &select).await?;
    }
    Ok(())
}

/// A tag key or team tag as a SQL string literal (the settings allow no quotes in them).
fn literal(key: &str) -> String {
    format!("'{key}'")
}

/// The SQL engine a view is written for. The Beta views and outputs are SQL both engines
/// accept, except one thing: turning an array into rows (`gateway_attempts`), which DataFusion
/// writes as `unnest` and Spark as `posexplode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// DataFusion (`run`).
    DataFusion,
    /// Spark SQL (`spark-sql`'s manifest).
    Spark,
}

/// The SQL of the `ai_gateway_settings` view: the fallback alert thresholds, one row.
pub fn settings_view(job: &JobConfig) -> String {
    let settings = &job.ai_gateway;
    format!(
        "SELECT CAST({} AS BIGINT) AS fallback_min_attempts, CAST({:.6} AS DOUBLE) AS fallback_failure_share, \
         CAST({:.6} AS DOUBLE) AS fallback_rescue_share",
        settings.fallback_min_attempts, settings.fallback_failure_share, settings.fallback_rescue_share
    )
}

/// `queries/ai_gateway/gateway_usage.sql` with the `[ai_gateway]` variable `${team_tag}`
/// replaced; the run's variables are left in.
pub fn usage_view_sql(job: &JobConfig) -> String {
    GATEWAY_USAGE_VIEW.sql.replace("${team_tag}", &literal(&job.ai_gateway.team_tag))
}

/// Registers the Beta views of a computation: `ai_gateway_settings` (the fallback alert
/// thresholds, one row), `gateway_usage` (the window's invocations, materialised in `scratch`),
/// `gateway_attempts` (their routing attempts) and `gateway_tag_values` (one row per
/// invocation and configured tag key, and per serving-endpoint usage row and key).
pub async fn register_views(
    ctx: &SessionContext,
    job: &JobConfig,
    params: &SqlParams,
    scratch: &Scratch,
) -> Result<()> {
    create_view(ctx, "ai_gateway_settings", &settings_view(job)).await?;
    let usage = params.render(GATEWAY_USAGE_VIEW.name, &usage_view_sql(job))?;
    create_view(ctx, GATEWAY_USAGE_VIEW.name, &usage).await?;
    // Every output reads it: computed once, into the segment's scratch folder.
    if job.gateway_usage.is_some() {
        scratch.materialize(ctx, GATEWAY_USAGE_VIEW.name).await?;
    }
    let raw = ctx.table_provider("gateway_usage_raw").await.map_err(|e| Error::query("gateway_attempts", e))?;
    let shown = job.gateway_usage.as_ref().map_or_else(|| "(none)".to_string(), ToString::to_string);
    let fields = contract::attempt_fields(&raw.schema(), &shown)?;
    create_view(ctx, "gateway_attempts", &attempts_view(fields.as_ref(), Engine::DataFusion)).await?;
    let tag_values = tag_values_view(&job.ai_gateway.tag_keys, job.usage.is_some());
    create_view(ctx, "gateway_tag_values", &params.render("gateway_tag_values", &tag_values)?).await
}

/// One row per routing attempt of the window's model-service invocations that have
/// `routing_information.attempts` (numbered from 1), with the invocation's keys and outcome;
/// `fields` are the attempt elements' fields (`None`: the table has no routing information).
pub fn attempts_view(fields: Option<&deltalake::arrow::datatypes::Fields>, engine: Engine) -> String {
    let columns = "usage_date, hour, endpoint_name, request_id, invocation_id, attempt_count, \
                   status_code AS final_status";
    let Some(fields) = fields else {
        return format!(
            "SELECT {columns}, CAST(NULL AS BIGINT) AS attempt_number, CAST(NULL AS STRING) AS destination, \
             CAST(NULL AS BIGINT) AS attempt_status, CAST(NULL AS BIGINT) AS attempt_latency_ms \
             FROM gateway_usage WHERE false"
        );
    };
    let has_latency = fields.iter().any(|f| f.name() == "latency_ms");
    let routed = "FROM gateway_usage g WHERE attempt_count > 0 AND service_type <> 'MCP_SERVICE'";
    // The attempt number (from 1), the n-th attempt's field, and the rows: one per attempt.
    let (number, field, rows): (&str, fn(&str) -> String, String) = match engine {
        Engine::DataFusion => (
            "attempt_number",
            |name| format!("get_field(array_element(attempts, attempt_number), '{name}')"),
            format!("FROM (SELECT g.*, unnest(generate_series(1, attempt_count)) AS attempt_number\n      {routed})"),
        ),
        Engine::Spark => (
            "position + 1",
            |name| format!("attempt.{name}"),
            format!("FROM (SELECT g.*, posexplode(g.attempts) AS (position, attempt)\n      {routed})"),
        ),
    };
    let latency = if has_latency {
        format!("CAST({} AS BIGINT)", field("latency_ms"))
    } else {
        "CAST(NULL AS BIGINT)".to_string()
    };
    format!(
        "SELECT {columns}, CAST({number} AS BIGINT) AS attempt_number,\n  \
         CAST({destination} AS STRING) AS destination,\n  \
         CAST({status} AS BIGINT) AS attempt_status,\n  \
         {latency} AS attempt_latency_ms\n\
         {rows}",
        destination = field("destination"),
        status = field("status_code"),
    )
}

/// One row per invocation of `gateway_usage` and tag key of `keys` (none without keys):
/// `tag_value` is the request tag's value, `''` when empty and NULL when the key is absent;
/// with a serving-endpoint usage table (`has_usage_table`), also one row per usage row of the
/// window (`usage_costed`) and key, its `usage_context` value (rows sharing a request id and
/// request time take the greatest value, so no row counts twice).
pub fn tag_values_view(keys: &[String], has_usage_table: bool) -> String {
    let none = "SELECT CAST(NULL AS DATE) AS usage_date, CAST(NULL AS STRING) AS gateway, \
                CAST(NULL AS STRING) AS tag_key, CAST(NULL AS STRING) AS tag_value, \
                CAST(NULL AS STRING) AS request_id, CAST(NULL AS BIGINT) AS input_tokens, \
                CAST(NULL AS BIGINT) AS output_tokens, CAST(NULL AS DECIMAL(28, 12)) AS cost_usd, \
                CAST(NULL AS BOOLEAN) AS unpriced WHERE false";
    if keys.is_empty() {
        return none.into();
    }
    let mut parts: Vec<String> = keys
        .iter()
        .map(|key| {
            let key = literal(key);
            format!(
                "SELECT usage_date, 'ai_gateway' AS gateway, {key} AS tag_key, request_tags[{key}] AS tag_value, \
                 request_id, input_tokens, output_tokens, cost_usd, \
                 (NOT priced AND input_tokens + output_tokens > 0) AS unpriced FROM gateway_usage"
            )
        })
        .collect();
    if has_usage_table {
        parts.extend(keys.iter().map(|key| {
            let key = literal(key);
            format!(
                "SELECT c.usage_date, 'serving_endpoint' AS gateway, {key} AS tag_key, t.tag_value, \
                 c.databricks_request_id AS request_id, c.input_tokens, c.output_tokens, c.cost_usd, \
                 (NOT c.priced AND c.input_tokens + c.output_tokens > 0) AS unpriced \
                 FROM usage_costed c LEFT JOIN (\
                   SELECT databricks_request_id, request_time, MAX(usage_context[{key}]) AS tag_value FROM usage \
                   WHERE request_time >= ${{window_start}} AND request_time < ${{window_end}} \
                   GROUP BY databricks_request_id, request_time) t \
                 ON (t.databricks_request_id IS NOT DISTINCT FROM c.databricks_request_id) \
                 AND t.request_time = c.request_time \
                 WHERE c.request_time >= ${{window_start}} AND c.request_time < ${{window_end}}"
            )
        }));
    }
    parts.join("\nUNION ALL\n")
}
