//! Registers the job's inputs on a DataFusion session, scoped to the run window.
//!
//! Each Delta input is registered as `<name>_source`, and a view `<name>` filters it to the
//! window with literals of the column's own type, so DataFusion and delta-rs can skip files by
//! their statistics and only the columns a query names are read.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::arrow::datatypes::{DataType, Schema};
use deltalake::datafusion::common::ScalarValue;
use deltalake::datafusion::datasource::{MemTable, TableProvider};
use deltalake::datafusion::prelude::{Expr, SessionContext, cast, col, lit};

use crate::alert_tables;
use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::generate::tables::{payload_schema, traces_schema, usage_schema};
use crate::input_contract::{self, InputContract};
use crate::location::Location;
use crate::prices::{self, PriceList};
use crate::rate_limits::RateLimitConfig;
use crate::reference_data;
use crate::sql_params;
use crate::storage;
use crate::window::{RunWindow, date_value};

/// A Delta input opened and checked against its contract.
struct CheckedInput {
    provider: Arc<dyn TableProvider>,
    schema: Arc<Schema>,
}

/// What registering the inputs read besides tables.
#[derive(Debug)]
pub struct LoadedInputs {
    /// The rate-limit configuration (empty when none is configured); the patches build on it.
    pub rate_limits: RateLimitConfig,
    /// The version of the price list (`none` without one).
    pub price_version: String,
}

/// Opens every input, checks its columns, and registers the views the queries read. Fails
/// before any computation if an input is missing or has the wrong shape.
pub async fn register(ctx: &SessionContext, job: &JobConfig, window: &RunWindow) -> Result<LoadedInputs> {
    let options = &job.storage_options;
    let usage = match &job.usage {
        Some(location) => Some(open_checked(ctx, &input_contract::USAGE, location, options).await?),
        None => {
            tracing::info!("no usage table configured: spend is estimated from the payload table");
            None
        }
    };
    let served = open_checked(ctx, &input_contract::SERVED_ENTITIES, &job.served_entities, options).await?;
    let payload = match &job.payload {
        Some(location) => Some(open_checked(ctx, &input_contract::PAYLOAD, location, options).await?),
        None => None,
    };
    let traces = match &job.traces {
        Some(location) => Some(open_checked(ctx, &input_contract::TRACES, location, options).await?),
        None => {
            tracing::info!("no traces table configured: trace_coverage and trace_spend are not written");
            None
        }
    };
    let prices = match &job.prices {
        Some(location) => prices::load(location, options, &job.settings.prices).await?,
        None => PriceList::default(),
    };
    let teams = match &job.teams {
        Some(location) => reference_data::load_teams(location, options).await?,
        None => Vec::new(),
    };
    let rate_limits = match &job.rate_limits {
        Some(location) => {
            let bytes = storage::read_file(location, options, "rate_limits").await?;
            RateLimitConfig::parse(&bytes, &location.to_string())?
        }
        None => RateLimitConfig::default(),
    };

    // Outputs that read history (spend baselines, budgets, demand lookback) need earlier days;
    // each query narrows to its own range, which DataFusion pushes down to the scan.
    let usage_range = RunWindow::new(sql_params::history_start(window, &job.settings), window.to)?;
    if let Some(usage) = usage {
        register_table(ctx, "usage_source", usage.provider)?;
        let usage_filter = time_window(&usage.schema, "request_time", &usage_range)?;
        // Every usage-table row is one request, known exactly.
        let frame = ctx.table("usage_source").await.map_err(|e| Error::query("usage", e))?;
        let view = frame
            .filter(usage_filter)
            .and_then(|f| f.with_column("row_weight", lit(1i64)))
            .and_then(|f| f.with_column("estimated", lit(false)))
            .map_err(|e| Error::query("usage", e))?
            .into_view();
        register_table(ctx, "usage", view)?;
    }

    register_table(ctx, "served_entities", served.provider)?;

    match payload {
        Some(payload) => {
            register_table(ctx, "payload_source", payload.provider)?;
            // request_time decides membership; request_date (the clustering key) only prunes
            // files, with a day of slack so a row whose two columns disagree is never lost.
            // The same range as usage: costs of history days split tokens into categories from
            // their payload rows too.
            let filter = time_window(&payload.schema, "request_time", &usage_range)?.and(date_range(
                &payload.schema,
                "request_date",
                usage_range.from - chrono::Duration::days(1),
                usage_range.to + chrono::Duration::days(1),
            )?);
            register_view(ctx, "payload", "payload_source", filter).await?;
        }
        None => {
            tracing::info!("no payload table configured: latency columns will be NULL");
            register_table(ctx, "payload", Arc::new(empty_table("payload", payload_schema())?))?;
        }
    }
    match traces {
        Some(traces) => {
            register_table(ctx, "traces_source", traces.provider)?;
            // Traces are matched to requests with a day of slack on either side.
            let slack = RunWindow::new(window.from - chrono::Duration::days(1), window.to + chrono::Duration::days(1))?;
            let filter = time_window(&traces.schema, "request_time", &slack)?;
            register_view(ctx, "traces", "traces_source", filter).await?;
        }
        None => {
            register_table(ctx, "traces", Arc::new(empty_table("traces", traces_schema())?))?;
        }
    }
    register_table(ctx, "prices", Arc::new(prices::prices_table(&prices.rows)?))?;
    register_table(ctx, "teams", Arc::new(reference_data::teams_table(&teams)?))?;
    register_table(ctx, "rate_limit_rules", Arc::new(rate_limits.rules_table()?))?;
    register_table(ctx, "alert_calendar", Arc::new(alert_tables::alert_calendar(window)?))?;
    register_table(ctx, "team_budgets", Arc::new(alert_tables::team_budgets(&job.settings)?))?;
    Ok(LoadedInputs { rate_limits, price_version: prices.version })
}

async fn open_checked(
    ctx: &SessionContext,
    contract: &InputContract,
    location: &Location,
    options: &HashMap<String, String>,
) -> Result<CheckedInput> {
    let provider = delta_provider(ctx, contract.input, location, options).await?;
    let schema = provider.schema();
    contract.check(&schema, &location.to_string())?;
    Ok(CheckedInput { provider, schema })
}

/// Opens the Delta table at `location` as a DataFusion table provider (deletion vectors,
/// column mapping and v2 checkpoints included), making its object store known to `ctx`.
/// `input` names the table in error messages.
pub async fn delta_provider(
    ctx: &SessionContext,
    input: &str,
    location: &Location,
    options: &HashMap<String, String>,
) -> Result<Arc<dyn TableProvider>> {
    let table = storage::open_table(input, location, options).await?;
    let unavailable =
        |message: String| Error::InputUnavailable { input: input.to_string(), location: location.to_string(), message };
    table.update_datafusion_session(&ctx.state()).map_err(|e| unavailable(storage::describe_delta_error(&e)))?;
    table.table_provider().await.map_err(|e| unavailable(e.to_string()))
}

fn register_table(ctx: &SessionContext, name: &str, provider: Arc<dyn TableProvider>) -> Result<()> {
    ctx.register_table(name, provider).map(|_| ()).map_err(|e| Error::query(name, e))
}

async fn register_view(ctx: &SessionContext, name: &str, source: &str, filter: Expr) -> Result<()> {
    let frame = ctx.table(source).await.map_err(|e| Error::query(name, e))?;
    let view = frame.filter(filter).map_err(|e| Error::query(name, e))?.into_view();
    register_table(ctx, name, view)
}

/// `column >= window start AND column < window end`, literals typed like the column.
fn time_window(schema: &Schema, column: &str, window: &RunWindow) -> Result<Expr> {
    let start = window.from.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let end = window.end_exclusive().and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let column_type = schema.field_with_name(column).map_err(|e| Error::query(column, e.into()))?.data_type();
    let typed = |micros: i64| -> Result<Expr> {
        let utc = ScalarValue::TimestampMicrosecond(Some(micros), Some(Arc::from("UTC")));
        let naive = ScalarValue::TimestampMicrosecond(Some(micros), None);
        let value = match column_type {
            DataType::Timestamp(_, Some(_)) => utc,
            _ => naive,
        };
        let value = value.cast_to(column_type).map_err(|e| Error::query(column, e))?;
        Ok(lit(value))
    };
    Ok(col(column).gt_eq(typed(start)?).and(col(column).lt(typed(end)?)))
}

/// `column BETWEEN from AND to` for a DATE column.
fn date_range(schema: &Schema, column: &str, from: chrono::NaiveDate, to: chrono::NaiveDate) -> Result<Expr> {
    let column_type = schema.field_with_name(column).map_err(|e| Error::query(column, e.into()))?.data_type();
    let typed = |date: chrono::NaiveDate| -> Result<Expr> {
        let value = date_value(date).cast_to(column_type).map_err(|e| Error::query(column, e))?;
        Ok(lit(value))
    };
    Ok(col(column).between(typed(from)?, typed(to)?))
}

/// An empty table with a Databricks schema, standing in for an input that is not configured.
fn empty_table(name: &str, schema: deltalake::arrow::datatypes::SchemaRef) -> Result<MemTable> {
    MemTable::try_new(schema, vec![vec![]]).map_err(|e| Error::query(name, e))
}

/// In payload-only mode, the `usage` view the queries read: one row per payload row (read
/// through `payload_parsed`), tokens from its response body, weighted by round(1 /
/// sampling_fraction) and marked estimated. Registered after `payload_parsed`.
pub async fn register_usage_from_payload(ctx: &SessionContext) -> Result<()> {
    let error = |e| Error::query("usage (from payload)", e);
    let context_type =
        usage_schema().field_with_name("usage_context").map_err(|e| error(e.into()))?.data_type().clone();
    let no_context = ScalarValue::try_from(&context_type).map_err(error)?;
    let frame = ctx.table("payload_parsed").await.map_err(error)?;
    let weight = deltalake::datafusion::functions::expr_fn::round(vec![col("sample_weight")]);
    let view = frame
        .select(vec![
            col("databricks_request_id"),
            col("request_time"),
            col("status_code"),
            col("requester_raw").alias("requester"),
            col("input_tokens").alias("input_token_count"),
            col("output_tokens").alias("output_token_count"),
            lit(no_context).alias("usage_context"),
            col("served_entity_id"),
            cast(weight, DataType::Int64).alias("row_weight"),
            lit(true).alias("estimated"),
        ])
        .map_err(error)?
        .into_view();
    register_table(ctx, "usage", view)
}
