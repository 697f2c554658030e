//! Registers the job's inputs on a DataFusion session, scoped to the run window.
//!
//! Each Delta input is registered as `<name>_source` (an absent optional input as an empty
//! table of its Databricks schema); the SQL views of `queries/inputs/` narrow them to the
//! range the outputs read, and DataFusion pushes those filters down to delta-rs, which skips
//! files by their statistics and reads only the columns a query names.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::datafusion::datasource::{MemTable, TableProvider};
use deltalake::datafusion::prelude::SessionContext;

use crate::alert_tables;
use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::generate::tables::{payload_schema, traces_schema};
use crate::input_contract::{self, InputContract};
use crate::location::Location;
use crate::prices::{self, PriceList};
use crate::rate_limits::RateLimitConfig;
use crate::reference_data;
use crate::remote::UnityCatalogTimeouts;
use crate::storage;
use crate::window::RunWindow;

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
    let catalog = &UnityCatalogTimeouts::from_engine(&job.settings.engine);
    let usage = match &job.usage {
        Some(location) => Some(open_checked(ctx, &input_contract::USAGE, location, options, catalog).await?),
        None => {
            tracing::info!("no usage table configured: spend is estimated from the payload table");
            None
        }
    };
    let served = open_checked(ctx, &input_contract::SERVED_ENTITIES, &job.served_entities, options, catalog).await?;
    let payload = match &job.payload {
        Some(location) => Some(open_checked(ctx, &input_contract::PAYLOAD, location, options, catalog).await?),
        None => None,
    };
    let traces = match &job.traces {
        Some(location) => Some(open_checked(ctx, &input_contract::TRACES, location, options, catalog).await?),
        None => {
            tracing::info!("no traces table configured: trace_coverage and trace_spend are not written");
            None
        }
    };
    // Each Delta input is registered as `<name>_source`; the views in queries/inputs narrow
    // it to the range the outputs read (see queries::view_order).
    if let Some(usage) = usage {
        register_table(ctx, "usage_source", usage)?;
    }
    register_table(ctx, "served_entities", served)?;
    let payload = match payload {
        Some(payload) => payload,
        None => {
            tracing::info!("no payload table configured: latency columns will be NULL");
            Arc::new(empty_table("payload", payload_schema())?)
        }
    };
    register_table(ctx, "payload_source", payload)?;
    let traces = match traces {
        Some(traces) => traces,
        None => Arc::new(empty_table("traces", traces_schema())?),
    };
    register_table(ctx, "traces_source", traces)?;
    register_reference(ctx, job, window).await
}

/// The small tables the queries join besides the Delta inputs, built from the job's files and
/// settings; registered under these names by [`register_reference`].
pub const REFERENCE_TABLES: [&str; 5] = ["prices", "teams", "rate_limit_rules", "alert_calendar", "team_budgets"];

/// Reads the reference files (prices, teams, rate limits) and registers the
/// [`REFERENCE_TABLES`] on `ctx`.
pub async fn register_reference(ctx: &SessionContext, job: &JobConfig, window: &RunWindow) -> Result<LoadedInputs> {
    let options = &job.storage_options;
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
    catalog: &UnityCatalogTimeouts,
) -> Result<Arc<dyn TableProvider>> {
    let provider = delta_provider_with(ctx, contract.input, location, options, catalog).await?;
    contract.check(&provider.schema(), &location.to_string())?;
    Ok(provider)
}

/// Opens the Delta table at `location` as a DataFusion table provider (deletion vectors,
/// column mapping and v2 checkpoints included), making its object store known to `ctx`.
/// `input` names the table in error messages. Unity Catalog names are resolved with the
/// default timeouts.
pub async fn delta_provider(
    ctx: &SessionContext,
    input: &str,
    location: &Location,
    options: &HashMap<String, String>,
) -> Result<Arc<dyn TableProvider>> {
    delta_provider_with(ctx, input, location, options, &UnityCatalogTimeouts::default()).await
}

/// [`delta_provider`], resolving Unity Catalog names with `catalog`'s timeouts.
pub async fn delta_provider_with(
    ctx: &SessionContext,
    input: &str,
    location: &Location,
    options: &HashMap<String, String>,
    catalog: &UnityCatalogTimeouts,
) -> Result<Arc<dyn TableProvider>> {
    let table = storage::open_table(input, location, options, catalog).await?;
    provider_of(ctx, input, location, &table).await
}

/// An opened Delta table as a DataFusion table provider, its object store made known to `ctx`.
pub async fn provider_of(
    ctx: &SessionContext,
    input: &str,
    location: &Location,
    table: &deltalake::DeltaTable,
) -> Result<Arc<dyn TableProvider>> {
    let unavailable =
        |message: String| Error::InputUnavailable { input: input.to_string(), location: location.to_string(), message };
    table.update_datafusion_session(&ctx.state()).map_err(|e| unavailable(storage::describe_delta_error(&e)))?;
    table.table_provider().await.map_err(|e| unavailable(e.to_string()))
}

/// Registers `provider` on `ctx` as `name`.
pub fn register_table(ctx: &SessionContext, name: &str, provider: Arc<dyn TableProvider>) -> Result<()> {
    ctx.register_table(name, provider).map(|_| ()).map_err(|e| Error::query(name, e))
}

/// An empty table of `schema`, standing in for an input that is not configured.
pub fn empty_table(name: &str, schema: deltalake::arrow::datatypes::SchemaRef) -> Result<MemTable> {
    MemTable::try_new(schema, vec![vec![]]).map_err(|e| Error::query(name, e))
}
