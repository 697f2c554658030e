//! The job's inputs: its Delta tables, opened and checked once per run at the versions the run
//! reads ([`OpenedInputs`]), and its reference files ([`ReferenceData`]); both registered on
//! each DataFusion session of the run.
//!
//! Each Delta input is registered as `<name>_source` (an absent optional input as an empty
//! table of its Databricks schema); the SQL views of `queries/inputs/` narrow them to the
//! range the outputs read, and DataFusion pushes those filters down to delta-rs, which skips
//! files by their statistics and reads only the columns a query names.

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::DeltaTable;
use deltalake::datafusion::datasource::{MemTable, TableProvider};
use deltalake::datafusion::prelude::SessionContext;

use crate::ai_gateway;
use crate::ai_gateway::rate_limits::{GatewayRateLimits, RULES_TABLE};
use crate::alert_tables;
use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::forecast;
use crate::generate::tables::{payload_schema, served_entities_schema, traces_schema};
use crate::input_contract::{self, InputContract};
use crate::location::Location;
use crate::prices::{self, PriceList};
use crate::rate_limits::RateLimitConfig;
use crate::reference_data;
use crate::remote::UnityCatalogTimeouts;
use crate::storage;
use crate::window::RunWindow;

/// The job's Delta inputs, opened and checked at the versions a run reads. A run reads these
/// very versions, however many commits land on the tables while it runs, and records them in
/// the ledger.
#[derive(Debug)]
pub struct OpenedInputs {
    /// `system.serving.endpoint_usage` (or its copy); `None` in payload-only mode.
    pub usage: Option<DeltaTable>,
    /// `system.serving.served_entities` (or its copy); `None` in a job of the new AI Gateway alone.
    pub served_entities: Option<DeltaTable>,
    /// The inference (payload) table.
    pub payload: Option<DeltaTable>,
    /// The MLflow traces table.
    pub traces: Option<DeltaTable>,
    /// The new AI Gateway's (Beta) usage table, `system.ai_gateway.usage`.
    pub gateway_usage: Option<DeltaTable>,
    /// The new AI Gateway's (Beta) payload table.
    pub gateway_payload: Option<DeltaTable>,
}

impl OpenedInputs {
    /// Opens every configured input at its latest version and checks its columns. Fails
    /// before any computation if an input is missing or has the wrong shape.
    pub async fn open(job: &JobConfig) -> Result<Self> {
        let options = &job.storage_options;
        let catalog = &job.settings.engine.unity_catalog_timeouts();
        let open = |contract, location| open_checked(contract, location, options, catalog);
        let usage = match &job.usage {
            Some(location) => Some(open(&input_contract::USAGE, location).await?),
            None => None,
        };
        let served_entities = match &job.served_entities {
            Some(location) => Some(open(&input_contract::SERVED_ENTITIES, location).await?),
            None => None,
        };
        let payload = match &job.payload {
            Some(location) => Some(open(&input_contract::PAYLOAD, location).await?),
            None => None,
        };
        let traces = match &job.traces {
            Some(location) => Some(open(&input_contract::TRACES, location).await?),
            None => None,
        };
        let gateway_usage = match &job.gateway_usage {
            Some(location) => {
                Some(ai_gateway::open_checked(&ai_gateway::GATEWAY_USAGE, location, options, catalog).await?)
            }
            None => None,
        };
        let gateway_payload = match &job.gateway_payload {
            Some(location) => {
                Some(ai_gateway::open_checked(&ai_gateway::GATEWAY_PAYLOAD, location, options, catalog).await?)
            }
            None => None,
        };
        Ok(OpenedInputs { usage, served_entities, payload, traces, gateway_usage, gateway_payload })
    }

    /// The versions opened.
    pub fn versions(&self) -> InputVersions {
        let version = |table: &DeltaTable| table.version().and_then(|v| i64::try_from(v).ok());
        InputVersions {
            usage: self.usage.as_ref().and_then(version),
            payload: self.payload.as_ref().and_then(version),
            traces: self.traces.as_ref().and_then(version),
            served_entities: self.served_entities.as_ref().and_then(version),
            gateway_usage: self.gateway_usage.as_ref().and_then(version),
            gateway_payload: self.gateway_payload.as_ref().and_then(version),
        }
    }

    /// Registers each input on `ctx` as `<name>_source` (an absent optional input as an empty
    /// table of its Databricks schema); the views in `queries/inputs` narrow them to the range
    /// the outputs read (see `queries::view_order`).
    pub async fn register(&self, ctx: &SessionContext, job: &JobConfig) -> Result<()> {
        if let (Some(table), Some(location)) = (&self.usage, &job.usage) {
            register_table(ctx, "usage_source", storage::provider_of(ctx, "usage", location, table).await?)?;
        }
        let served = match (&self.served_entities, &job.served_entities) {
            (Some(table), Some(location)) => storage::provider_of(ctx, "served_entities", location, table).await?,
            _ => Arc::new(empty_table("served_entities", served_entities_schema())?),
        };
        register_table(ctx, "served_entities", served)?;
        let payload = match (&self.payload, &job.payload) {
            (Some(table), Some(location)) => storage::provider_of(ctx, "payload", location, table).await?,
            _ => Arc::new(empty_table("payload", payload_schema())?),
        };
        register_table(ctx, "payload_source", payload)?;
        let traces = match (&self.traces, &job.traces) {
            (Some(table), Some(location)) => storage::provider_of(ctx, "traces", location, table).await?,
            _ => Arc::new(empty_table("traces", traces_schema())?),
        };
        register_table(ctx, "traces_source", traces)?;
        ai_gateway::register_inputs(ctx, job, self.gateway_usage.as_ref(), self.gateway_payload.as_ref()).await
    }
}

/// The Delta version of each input table (`None`: the job has no such input).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputVersions {
    /// `system.serving.endpoint_usage` (or its copy).
    pub usage: Option<i64>,
    /// The inference (payload) table.
    pub payload: Option<i64>,
    /// The MLflow traces table.
    pub traces: Option<i64>,
    /// `system.serving.served_entities` (or its copy).
    pub served_entities: Option<i64>,
    /// The new AI Gateway's usage table, `system.ai_gateway.usage`.
    pub gateway_usage: Option<i64>,
    /// The new AI Gateway's payload table.
    pub gateway_payload: Option<i64>,
}

impl InputVersions {
    /// Whether the same inputs are configured in both (their versions may differ).
    pub fn same_inputs(&self, other: &InputVersions) -> bool {
        self.usage.is_some() == other.usage.is_some()
            && self.payload.is_some() == other.payload.is_some()
            && self.traces.is_some() == other.traces.is_some()
            && self.served_entities.is_some() == other.served_entities.is_some()
            && self.gateway_usage.is_some() == other.gateway_usage.is_some()
            && self.gateway_payload.is_some() == other.gateway_payload.is_some()
    }
}

/// The small tables the queries join besides the Delta inputs, built from the job's files and
/// settings; registered under these names by [`register_reference`].
pub const REFERENCE_TABLES: [&str; 10] = [
    "prices",
    "teams",
    "rate_limit_rules",
    "alert_calendar",
    "team_budgets",
    "data_quality_thresholds",
    "alert_mutes",
    "what_if_prices",
    "forecast_calendar",
    "forecast_intervals",
];

/// The job's reference files, read once per run.
#[derive(Debug, Clone, Default)]
pub struct ReferenceData {
    /// The price list and its version (`none` without one).
    pub prices: PriceList,
    /// (principal, team) pairs of the teams file.
    pub teams: Vec<(String, String)>,
    /// The teams file's version: a content hash of its pairs, `none` without a teams file.
    pub teams_version: String,
    /// The current rate limits (empty when none are configured); the patches build on them.
    pub rate_limits: RateLimitConfig,
    /// The second price list of `run --what-if-prices` (empty without one).
    pub what_if_prices: PriceList,
    /// The new AI Gateway's current rate limits (empty when none are configured).
    pub gateway_rate_limits: GatewayRateLimits,
}

impl ReferenceData {
    /// Reads the prices, teams and rate-limit files of the job.
    pub async fn load(job: &JobConfig) -> Result<Self> {
        let options = &job.storage_options;
        let prices = match &job.prices {
            Some(location) => prices::load(location, options, &job.settings.prices).await?,
            None => PriceList::default(),
        };
        let (teams, teams_version) = match &job.teams {
            Some(location) => {
                let teams = reference_data::load_teams(location, options).await?;
                let mut canonical: Vec<String> = teams.iter().map(|(p, t)| format!("{p}\t{t}")).collect();
                canonical.sort();
                let version = prices::price_version(canonical.join("\n").as_bytes());
                (teams, version)
            }
            None => (Vec::new(), "none".to_string()),
        };
        let rate_limits = match &job.rate_limits {
            Some(location) => {
                let bytes = storage::read_file(location, options, "rate_limits").await?;
                RateLimitConfig::parse(&bytes, &location.to_string())?
            }
            None => RateLimitConfig::default(),
        };
        let what_if_prices = match &job.what_if_prices {
            Some(location) => prices::load(location, options, &job.settings.prices).await?,
            None => PriceList::default(),
        };
        let gateway_rate_limits = match &job.gateway_rate_limits {
            Some(location) => {
                let bytes = storage::read_file(location, options, "gateway_rate_limits").await?;
                GatewayRateLimits::parse(&bytes, &location.to_string())?
            }
            None => GatewayRateLimits::default(),
        };
        Ok(ReferenceData { prices, teams, teams_version, rate_limits, what_if_prices, gateway_rate_limits })
    }
}

/// Registers the [`REFERENCE_TABLES`] of `reference` on `ctx` for a computation over `window`.
pub fn register_reference(
    ctx: &SessionContext,
    job: &JobConfig,
    reference: &ReferenceData,
    window: &RunWindow,
) -> Result<()> {
    register_table(ctx, "prices", Arc::new(prices::prices_table(&reference.prices.rows)?))?;
    register_table(ctx, "teams", Arc::new(reference_data::teams_table(&reference.teams)?))?;
    register_table(ctx, "rate_limit_rules", Arc::new(reference.rate_limits.rules_table()?))?;
    // The new gateway's limits: not among REFERENCE_TABLES, as its outputs do not run on Spark.
    register_table(ctx, RULES_TABLE, Arc::new(reference.gateway_rate_limits.rules_table()?))?;
    register_table(ctx, "alert_calendar", Arc::new(alert_tables::alert_calendar(window)?))?;
    register_table(ctx, "team_budgets", Arc::new(alert_tables::team_budgets(&job.settings)?))?;
    register_table(ctx, "data_quality_thresholds", Arc::new(alert_tables::data_quality_thresholds(&job.settings)?))?;
    register_table(ctx, "alert_mutes", Arc::new(alert_tables::alert_mutes(&job.settings)?))?;
    register_table(ctx, "what_if_prices", Arc::new(prices::prices_table(&reference.what_if_prices.rows)?))?;
    register_table(ctx, "forecast_calendar", Arc::new(forecast::forecast_calendar(window)?))?;
    register_table(ctx, "forecast_intervals", Arc::new(forecast::forecast_intervals()?))
}

/// Opens the Delta table at `location` and checks its columns against `contract`, on the table
/// provider the queries will read.
async fn open_checked(
    contract: &InputContract,
    location: &Location,
    options: &HashMap<String, String>,
    catalog: &UnityCatalogTimeouts,
) -> Result<DeltaTable> {
    let table = storage::open_table(contract.input, location, options, catalog).await?;
    let provider = storage::provider_of(&SessionContext::new(), contract.input, location, &table).await?;
    contract.check(&provider.schema(), &location.to_string())?;
    Ok(table)
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
    storage::provider_of(ctx, input, location, &table).await
}

/// Registers `provider` on `ctx` as `name`.
pub fn register_table(ctx: &SessionContext, name: &str, provider: Arc<dyn TableProvider>) -> Result<()> {
    ctx.register_table(name, provider).map(|_| ()).map_err(|e| Error::query(name, e))
}

/// An empty table of `schema`, standing in for an input that is not configured.
pub fn empty_table(name: &str, schema: deltalake::arrow::datatypes::SchemaRef) -> Result<MemTable> {
    MemTable::try_new(schema, vec![vec![]]).map_err(|e| Error::query(name, e))
}
