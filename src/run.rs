//! One run of the job: check inputs, compute every output for the window, then commit them.

use deltalake::arrow::array::RecordBatch;
use std::num::NonZeroUsize;
use std::sync::Arc;

use deltalake::datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
use deltalake::datafusion::execution::session_state::SessionStateBuilder;
use deltalake::datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};

use crate::columns;
use crate::config::JobConfig;
use crate::deadline::Deadline;
use crate::error::{Error, Result};
use crate::heartbeat;
use crate::history::{self, HistorySource};
use crate::inputs;
use crate::outputs::{self, OUTPUT_TABLES, OutputSelection, OutputTable};
use crate::progress::Progress;
use crate::queries;
use crate::rate_limits::{self, EndpointPatch, RateLimitConfig, Recommendation};
use crate::request_id_buckets::RequestIdBuckets;
use crate::scan_log::ScanLog;
use crate::scratch::{self, Scratch};
use crate::settings::EngineSettings;
use crate::sql_params::SqlParams;
use crate::storage;
use crate::summary::{self, QualityCheck, RunSummary};
use crate::window::RunWindow;

/// A DataFusion session with the default memory budget (`[engine]`).
pub fn session() -> SessionContext {
    session_within(&EngineSettings::default())
}

/// A DataFusion session whose queries share a memory budget: a fair spilling pool, so sorts
/// and aggregations spill to the temporary folder instead of exceeding it, and an error that
/// names the largest consumers when an operator cannot spill.
pub fn session_within(engine: &EngineSettings) -> SessionContext {
    session_logging(engine, ScanLog::default())
}

/// [`session_within`], recording what its plans scan into `log`.
pub fn session_logging(engine: &EngineSettings, log: ScanLog) -> SessionContext {
    let config = SessionConfig::new()
        .with_information_schema(false)
        // Off: this rule pushes `body['kind']` below the join and inlines `body`, so
        // `gateway_usage(response)` ran once per field access (8 parses per body), apache/datafusion#23655.
        .set_bool("datafusion.optimizer.enable_leaf_expression_pushdown", false)
        .with_extension(Arc::new(log));
    let pool =
        TrackConsumersPool::new(FairSpillPool::new(engine.memory_limit_bytes()), NonZeroUsize::MIN.saturating_add(2));
    let runtime = RuntimeEnvBuilder::new().with_memory_pool(Arc::new(pool)).build_arc();
    let mut state = SessionStateBuilder::new().with_config(config).with_default_features();
    if let Ok(runtime) = runtime {
        state = state.with_runtime_env(runtime);
    }
    // Right after join selection, so that the later rules plan around the bucketed operators.
    let mut rules = PhysicalOptimizer::new().rules;
    let after = rules.iter().position(|rule| rule.name() == "join_selection").map_or(0, |at| at + 1);
    rules.insert(after, Arc::new(RequestIdBuckets::new(engine.hash_join_limit_bytes())));
    let ctx = SessionContext::new_with_state(state.with_physical_optimizer_rules(rules).build());
    crate::json_functions::register(&ctx);
    ctx
}

/// What [`prepare`] loaded: the inputs, and the scratch folder holding the materialised views
/// (keep it alive while queries run).
#[derive(Debug)]
pub struct Prepared {
    /// The inputs.
    pub inputs: inputs::LoadedInputs,
    /// The scratch folder of [`scratch::MATERIALIZED_VIEWS`].
    pub scratch: Scratch,
    /// Which history days came from earlier outputs.
    pub history: HistorySource,
}

/// Registers the inputs and every view on `ctx`, materialising the views several outputs
/// read, and sets the price version in `params`.
pub async fn prepare(
    ctx: &SessionContext,
    job: &JobConfig,
    window: &RunWindow,
    params: &mut SqlParams,
) -> Result<Prepared> {
    let loaded = inputs::register(ctx, job, window).await?;
    params.set_price_version(&loaded.price_version);
    let history = history::register(ctx, job, window, params).await?;
    let scratch = Scratch::new()?;
    for view in queries::view_order(job.usage.is_some()) {
        queries::register_view(ctx, view, params).await?;
        if scratch::MATERIALIZED_VIEWS.contains(&view.name) {
            scratch.materialize(ctx, view.name).await?;
        }
    }
    Ok(Prepared { inputs: loaded, scratch, history })
}

/// The folder under the output location that holds the rate-limit patch files.
pub const PATCH_FOLDER: &str = "recommendations";

/// Recomputes `window` for the `selected` output tables of `job` and writes them, then (when
/// the recommendations are selected) the rate-limit patch files.
///
/// Inputs are checked before any work; every output is computed before the first commit.
pub async fn run(
    job: &JobConfig,
    window: RunWindow,
    selected: &OutputSelection,
    progress: &Progress,
) -> Result<RunSummary> {
    run_within(job, window, selected, progress, &Deadline::none()).await
}

/// [`run`], committing only within `deadline` (see [`crate::deadline`]).
pub async fn run_within(
    job: &JobConfig,
    window: RunWindow,
    selected: &OutputSelection,
    progress: &Progress,
    deadline: &Deadline,
) -> Result<RunSummary> {
    let ctx = session_logging(&job.settings.engine, scan_log_for(job));
    let _heartbeat = heartbeat::start(progress.stages(), ScanLog::of(&ctx));
    let mut params = SqlParams::new(&window, &job.settings);
    progress.stage("checking inputs");
    let prepared = prepare(&ctx, job, &window, &mut params).await?;
    let rate_limits = prepared.inputs.rate_limits;

    let mut computed = Vec::with_capacity(OUTPUT_TABLES.len());
    let tables =
        OUTPUT_TABLES.into_iter().filter(|t| selected.includes(t) && (job.traces.is_some() || !t.needs_traces));
    for table in tables {
        progress.stage(&format!("computing {} for {window}", table.name));
        let output = outputs::compute(&ctx, table, &params).await?;
        // Later outputs may read earlier ones (alerts read data_quality) instead of recomputing.
        output.register(&ctx)?;
        computed.push(output);
    }
    let batches_of = |table: &OutputTable| -> Vec<RecordBatch> {
        computed.iter().find(|c| c.table.name == table.name).map(|c| c.batches.clone()).unwrap_or_default()
    };
    let totals = match computed.iter().find(|c| c.table.name == outputs::DAILY_SPEND.name) {
        Some(daily_spend) => summary::totals(daily_spend).await?,
        None => Vec::new(),
    };
    let alerts = batches_of(&outputs::ALERTS);
    let checks = quality_totals(&batches_of(&outputs::DATA_QUALITY))?;
    for check in checks.iter().filter(|c| c.rows > 0) {
        tracing::info!(check = %check.check, rows = check.rows, "data quality");
    }
    let write_patches_too = job.rate_limits.is_some() && selected.includes(&outputs::RATE_LIMIT_RECOMMENDATIONS);
    if job.rate_limits.is_none() {
        tracing::info!("no rate_limits input configured: recommendations are written, patch files are not");
    }
    let patches = if write_patches_too {
        let recommendations = Recommendation::from_batches(&batches_of(&outputs::RATE_LIMIT_RECOMMENDATIONS))?;
        rate_limits::build_patches(&rate_limits, &recommendations)
    } else {
        Vec::new()
    };

    let mut written = Vec::with_capacity(computed.len());
    deadline.begin_commits(computed.iter().map(|c| c.table.name).chain(write_patches_too.then_some(PATCH_FOLDER)))?;
    for output in computed {
        progress.stage(&format!("writing {}", output.table.name));
        deadline.before_commit(output.table.name)?;
        written.push(outputs::commit(output, &job.output, &window, &job.storage_options).await?);
    }
    if write_patches_too {
        progress.stage("writing rate-limit patches");
        deadline.before_commit(PATCH_FOLDER)?;
        write_patches(job, &rate_limits, &patches).await?;
    }
    progress.finish();
    let scanned = ScanLog::of(&ctx).map(|log| log.totals()).unwrap_or_default();
    for scan in &scanned {
        tracing::info!(table = %scan.table, files = scan.files, bytes = scan.bytes, "scanned");
    }
    let history = prepared.history;
    Ok(RunSummary { window, totals, written, checks, alerts, patches, scanned, history })
}

/// A scan log naming the job's tables and the run's scratch files.
fn scan_log_for(job: &JobConfig) -> ScanLog {
    let folder = |location: &crate::location::Location| format!("{}/", location.url().path().trim_end_matches('/'));
    let mut tables: Vec<(String, String)> = Vec::new();
    let inputs = [("usage", &job.usage), ("payload", &job.payload), ("traces", &job.traces)];
    for (name, location) in inputs {
        if let Some(location) = location {
            tables.push((name.into(), folder(location)));
        }
    }
    tables.push(("served_entities".into(), folder(&job.served_entities)));
    for output in [&outputs::DAILY_SPEND, &outputs::MINUTE_DEMAND, &outputs::COMPUTED_DATES] {
        tables.push((format!("{} (earlier output)", output.name), folder(&job.output.child(output.name))));
    }
    let temp = std::env::temp_dir().join(scratch::FOLDER_PREFIX);
    tables.push(("scratch (materialised views)".into(), temp.display().to_string()));
    ScanLog::new(tables)
}

/// Writes `recommendations/<endpoint>.json` for each patch and removes the files of endpoints
/// that no longer need a change.
async fn write_patches(job: &JobConfig, config: &RateLimitConfig, patches: &[EndpointPatch]) -> Result<()> {
    let mut files = Vec::with_capacity(patches.len());
    for patch in patches {
        let body = serde_json::to_vec_pretty(&patch.body(config))
            .map_err(|e| Error::Io { context: "serialising a patch".into(), source: e.into() })?;
        files.push((rate_limits::patch_file_name(&patch.endpoint_name), body));
    }
    storage::replace_json_files(&job.output, PATCH_FOLDER, &files, &job.storage_options).await.map_err(|message| {
        Error::Output { table: PATCH_FOLDER.into(), location: job.output.child(PATCH_FOLDER).to_string(), message }
    })
}

/// The window's data-quality failures per `table.check`, summed over its days.
fn quality_totals(data_quality: &[RecordBatch]) -> Result<Vec<QualityCheck>> {
    let mut totals: std::collections::BTreeMap<String, i64> = std::collections::BTreeMap::new();
    for batch in data_quality {
        let tables = columns::strings(batch, "table_name")?;
        let checks = columns::strings(batch, "check_name")?;
        let failed = columns::ints(batch, "failed_rows")?;
        for ((table, check), rows) in tables.into_iter().zip(checks).zip(failed) {
            let name = format!("{}.{}", table.unwrap_or_default(), check.unwrap_or_default());
            *totals.entry(name).or_default() += rows.unwrap_or(0);
        }
    }
    Ok(totals.into_iter().map(|(check, rows)| QualityCheck { check, rows }).collect())
}
