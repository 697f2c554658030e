//! The SQL of every view, output and check, compiled in from `queries/` (the single source of
//! each computation; the same files are meant to run on Spark SQL).

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::prelude::SessionContext;

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

/// Views that do not read `usage`, in dependency order (registered first, so that in
/// payload-only mode `usage` can be defined over `payload_parsed`). They read the input views `usage`, `payload`,
/// `served_entities`, `prices`, `teams`, `rate_limit_rules`, `alert_calendar` and
/// `team_budgets` that [`crate::inputs`] registers.
pub const BASE_VIEWS: [Query; 3] = [
    query_file!("latest_served_entities", "views/latest_served_entities.sql"),
    query_file!("price_periods", "views/price_periods.sql"),
    query_file!("payload_parsed", "views/payload_parsed.sql"),
];

/// Views over the `usage` view (and the base views), in dependency order.
pub const VIEWS: [Query; 5] = [
    query_file!("usage_enriched", "views/usage_enriched.sql"),
    query_file!("usage_costed", "views/usage_costed.sql"),
    query_file!("payload_rate_limited", "views/payload_rate_limited.sql"),
    query_file!("team_daily_cost", "views/team_daily_cost.sql"),
    query_file!("traces_window", "views/traces_window.sql"),
];

/// `queries/daily_spend.sql`.
pub const DAILY_SPEND: Query = query_file!("daily_spend", "daily_spend.sql");
/// `queries/hourly_errors.sql`.
pub const HOURLY_ERRORS: Query = query_file!("hourly_errors", "hourly_errors.sql");
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

/// Registers `views` on a session whose inputs are already registered.
pub async fn register_views(ctx: &SessionContext, views: &[Query], params: &SqlParams) -> Result<()> {
    for view in views {
        let statement = format!("CREATE VIEW {} AS\n{}", view.name, params.render(view.name, view.sql)?);
        ctx.sql(&statement).await.map_err(|e| Error::query(view.name, e))?;
    }
    Ok(())
}

/// Runs a query to completion, returning its schema (known even when no row comes back) and
/// its rows.
pub async fn collect(ctx: &SessionContext, query: &Query, params: &SqlParams) -> Result<(SchemaRef, Vec<RecordBatch>)> {
    let sql = params.render(query.name, query.sql)?;
    let frame = ctx.sql(&sql).await.map_err(|e| Error::query(query.name, e))?;
    let schema = frame.schema().inner().clone();
    let batches = frame.collect().await.map_err(|e| Error::query(query.name, e))?;
    Ok((schema, batches))
}
