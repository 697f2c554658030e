//! The SQL of every view, output and check, compiled in from `queries/` (the single source of
//! each computation; the same files are meant to run on Spark SQL).

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::physical_plan::ExecutionPlan;
use deltalake::datafusion::physical_plan::display::DisplayableExecutionPlan;
use deltalake::datafusion::prelude::{DataFrame, SessionContext};

use futures::StreamExt as _;

use crate::engine::scan_log::ScanLog;
use crate::error::{Error, Result};
use crate::sql_params::SqlParams;

/// One SQL file from `queries/`.
#[derive(Debug)]
pub struct Query {
    /// The file stem: the view or output table it defines.
    pub name: &'static str,
    /// The file's text.
    pub sql: &'static str,
}

macro_rules! query_file {
    ($name:literal, $path:literal) => {
        Query { name: $name, sql: include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/queries/", $path)) }
    };
}

/// The `usage` input view over `usage_source` (when the job has a usage table).
pub const USAGE_INPUT: Query = query_file!("usage", "inputs/usage.sql");
/// The `payload` input view.
pub const PAYLOAD_INPUT: Query = query_file!("payload", "inputs/payload.sql");
/// The `traces` input view.
pub const TRACES_INPUT: Query = query_file!("traces", "inputs/traces.sql");
/// In payload-only mode, `usage` estimated from `payload_parsed` (registered after it).
pub const USAGE_FROM_PAYLOAD: Query = query_file!("usage", "inputs/usage_from_payload.sql");
/// `usage_undated`: the usage rows with a NULL `request_time` (counted by data_quality only).
pub const USAGE_UNDATED: Query = query_file!("usage_undated", "inputs/usage_undated.sql");
/// In payload-only mode, `usage_undated` without rows (the payload check counts those rows).
pub const USAGE_UNDATED_FROM_PAYLOAD: Query = query_file!("usage_undated", "inputs/usage_undated_from_payload.sql");
/// `payload_undated`: the payload rows with a NULL `request_time` (counted by data_quality only).
pub const PAYLOAD_UNDATED: Query = query_file!("payload_undated", "inputs/payload_undated.sql");

/// Views that do not read `usage`, in dependency order (registered first, so that in
/// payload-only mode `usage` can be defined over `payload_parsed`). They read the input views
/// and the tables [`crate::inputs`] registers (`served_entities`, `prices`, `teams`, ...).
pub const BASE_VIEWS: [Query; 3] = [
    query_file!("latest_served_entities", "views/latest_served_entities.sql"),
    query_file!("price_periods", "views/price_periods.sql"),
    query_file!("payload_parsed", "views/payload_parsed.sql"),
];

/// Views over the `usage` view (and the base views), in dependency order.
pub const VIEWS: [Query; 10] = [
    query_file!("usage_enriched", "views/usage_enriched.sql"),
    query_file!("usage_costed", "views/usage_costed.sql"),
    query_file!("per_minute_demand", "views/per_minute_demand.sql"),
    query_file!("payload_rate_limited", "views/payload_rate_limited.sql"),
    query_file!("team_daily_cost", "views/team_daily_cost.sql"),
    query_file!("endpoint_daily_cost", "views/endpoint_daily_cost.sql"),
    query_file!("observed_days", "views/observed_days.sql"),
    query_file!("team_baselines", "views/team_baselines.sql"),
    query_file!("budget_month_to_date", "views/budget_month_to_date.sql"),
    query_file!("traces_window", "views/traces_window.sql"),
];

/// Views over both gateways' views, registered after the new AI Gateway's (Beta) views: the
/// rate-limit recommendations' per-minute demand and decisions, which `rate_limit_recommendations`
/// and `ai_gateway_rate_limit_recommendations` each read for their gateway.
pub const RECOMMENDATION_VIEWS: [Query; 2] = [
    query_file!("lookback_minute_demand", "views/lookback_minute_demand.sql"),
    query_file!("rate_limit_decisions", "views/rate_limit_decisions.sql"),
];

/// `queries/daily_spend.sql`.
pub const DAILY_SPEND: Query = query_file!("daily_spend", "daily_spend.sql");
/// `queries/hourly_errors.sql`.
pub const HOURLY_ERRORS: Query = query_file!("hourly_errors", "hourly_errors.sql");
/// `queries/spend_forecast.sql`.
pub const SPEND_FORECAST: Query = query_file!("spend_forecast", "spend_forecast.sql");
/// `queries/alerts.sql`.
pub const ALERTS: Query = query_file!("alerts", "alerts.sql");
/// `queries/rate_limit_recommendations.sql`.
pub const RATE_LIMIT_RECOMMENDATIONS: Query =
    query_file!("rate_limit_recommendations", "rate_limit_recommendations.sql");
/// `queries/trace_coverage.sql`.
pub const TRACE_COVERAGE: Query = query_file!("trace_coverage", "trace_coverage.sql");
/// `queries/trace_spend.sql`.
pub const TRACE_SPEND: Query = query_file!("trace_spend", "trace_spend.sql");
/// `queries/reconciliation.sql`.
pub const RECONCILIATION: Query = query_file!("reconciliation", "reconciliation.sql");
/// `queries/data_quality.sql`.
pub const DATA_QUALITY: Query = query_file!("data_quality", "data_quality.sql");
/// `queries/minute_demand.sql`.
pub const MINUTE_DEMAND: Query = query_file!("minute_demand", "minute_demand.sql");
/// `queries/focus_costs.sql`.
pub const FOCUS_COSTS: Query = query_file!("focus_costs", "focus_costs.sql");
/// `queries/pricing_what_if.sql`.
pub const PRICING_WHAT_IF: Query = query_file!("pricing_what_if", "pricing_what_if.sql");
/// `queries/cache_savings.sql`.
pub const CACHE_SAVINGS: Query = query_file!("cache_savings", "cache_savings.sql");

/// Every view of a run, in dependency order: the input views (with the undated rows the
/// data-quality checks count), the base views, in
/// payload-only mode (`has_usage_table` false) `usage` estimated from the payload, then the
/// views over `usage`. The Spark path creates the same views in the same order.
pub fn view_order(has_usage_table: bool) -> Vec<&'static Query> {
    let mut order: Vec<&'static Query> = Vec::new();
    if has_usage_table {
        order.extend([&USAGE_INPUT, &USAGE_UNDATED]);
    } else {
        order.push(&USAGE_UNDATED_FROM_PAYLOAD);
    }
    order.extend([&PAYLOAD_INPUT, &TRACES_INPUT, &PAYLOAD_UNDATED]);
    order.extend(BASE_VIEWS.iter());
    if !has_usage_table {
        order.push(&USAGE_FROM_PAYLOAD);
    }
    order.extend(VIEWS.iter());
    order
}

/// Registers one view on a session whose inputs (and earlier views) are registered.
pub async fn register_view(ctx: &SessionContext, view: &Query, params: &SqlParams) -> Result<()> {
    create_view(ctx, view.name, &params.render(view.name, view.sql)?).await
}

/// Creates the view `name` over `sql` (its variables already rendered) on `ctx`.
pub async fn create_view(ctx: &SessionContext, name: &str, sql: &str) -> Result<()> {
    ctx.sql(&format!("CREATE VIEW {name} AS\n{sql}")).await.map_err(|e| Error::query(name, e))?;
    Ok(())
}

/// Runs a query to completion, returning its schema (known even when no row comes back) and
/// its rows.
pub async fn collect(ctx: &SessionContext, query: &Query, params: &SqlParams) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let mut batches = Vec::new();
    let schema = for_each_batch(ctx, query, params, |_, batch| {
        batches.push(batch);
        Ok(())
    })
    .await?;
    Ok((schema, batches))
}

/// Runs a query to completion, handing each batch of its rows, in order, to `each` as it comes
/// with the query's schema (rather than holding them all); returns that schema.
pub async fn for_each_batch(
    ctx: &SessionContext,
    query: &Query,
    params: &SqlParams,
    mut each: impl FnMut(&SchemaRef, RecordBatch) -> Result<()>,
) -> Result<SchemaRef> {
    let sql = params.render(query.name, query.sql)?;
    let frame = ctx.sql(&sql).await.map_err(|e| Error::query(query.name, e))?;
    let schema = frame.schema().inner().clone();
    execute_into(ctx, query.name, frame, |batch| each(&schema, batch)).await?;
    Ok(schema)
}

/// Runs a planned query to completion, adding what it scanned to the session's [`ScanLog`].
pub async fn execute(ctx: &SessionContext, name: &str, frame: DataFrame) -> Result<Vec<RecordBatch>> {
    let mut batches = Vec::new();
    execute_into(ctx, name, frame, |batch| {
        batches.push(batch);
        Ok(())
    })
    .await?;
    Ok(batches)
}

/// [`execute`], handing each batch to `each` in order as it comes.
async fn execute_into(
    ctx: &SessionContext,
    name: &str,
    frame: DataFrame,
    mut each: impl FnMut(RecordBatch) -> Result<()>,
) -> Result<()> {
    let plan = frame.create_physical_plan().await.map_err(|e| Error::query(name, e))?;
    if let Some(log) = ScanLog::of(ctx) {
        log.start(&plan);
    }
    let mut stream = deltalake::datafusion::physical_plan::execute_stream(plan.clone(), ctx.task_ctx())
        .map_err(|e| Error::query(name, e))?;
    while let Some(batch) = stream.next().await {
        each(batch.map_err(|e| Error::query(name, e))?)?;
    }
    drop(stream);
    log_metrics(name, plan.as_ref());
    if let Some(log) = ScanLog::of(ctx) {
        log.record(&plan);
    }
    Ok(())
}

/// Logs (at debug level) an executed plan with each operator's metrics: rows, time, spills.
pub fn log_metrics(name: &str, plan: &dyn ExecutionPlan) {
    tracing::debug!("metrics of {name}:\n{}", DisplayableExecutionPlan::with_metrics(plan).indent(true));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Spark SQL reads `'it''s'` as two adjacent literals (`its`), DataFusion as `it's`: the
    /// shared files never escape a quote inside a string literal.
    #[test]
    fn no_doubled_quotes_inside_string_literals() {
        let outputs = crate::outputs::all_tables().map(|t| t.query);
        let views = view_order(true).into_iter().chain(view_order(false)).chain(RECOMMENDATION_VIEWS.iter());
        for query in views.chain(outputs) {
            for line in query.sql.lines().filter(|l| !l.trim_start().starts_with("--")) {
                let doubled = line.match_indices("''").any(|(i, _)| {
                    let before = line[..i].chars().next_back().is_some_and(char::is_alphanumeric);
                    let after = line[i + 2..].chars().next().is_some_and(char::is_alphanumeric);
                    before || after
                });
                assert!(!doubled, "{}: a doubled quote inside a literal: {line}", query.name);
            }
        }
    }
}
