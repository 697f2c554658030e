//! The query engine: DataFusion sessions set up for this job, and the physical pieces that
//! keep its queries within the memory budget. Business modules (prices, alerts,
//! recommendations) sit outside; they run SQL on a session made here.
//!
//! - [`session_within`]: a session with the job's memory budget (a fair spilling pool), this
//!   project's JSON functions ([`json_functions`]), a `date_trunc` that truncates UTC
//!   timestamps by arithmetic ([`utc_date_trunc`]) and the [`request_id_buckets`] rule, which
//!   runs large joins and groupings on request ids in buckets on disk ([`grace_join`],
//!   [`grace_aggregate`], over [`grace_buckets`]).
//! - [`scratch`]: the views several outputs read, computed once per run into scratch files.
//! - [`row_files`]: computed outputs kept in files on local disk until the run commits them.
//! - [`scan_log`]: what a run's plans read, per table, for the summary and the heartbeat.
//! - [`work_folder`]: the session's locked folder under `TMPDIR` holding all of the above and
//!   DataFusion's spill files; folders of killed runs are removed by the next session.
//!
//! Why each piece exists and what it costs: docs/PERFORMANCE.md.

pub mod grace_aggregate;
pub mod grace_buckets;
pub mod grace_join;
pub mod json_functions;
pub mod request_id_buckets;
pub mod row_files;
pub mod scan_log;
pub mod scratch;
pub mod utc_date_trunc;
pub mod work_folder;

use std::num::NonZeroUsize;
use std::sync::Arc;

use deltalake::datafusion::common::config::SpillCompression;
use deltalake::datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use deltalake::datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
use deltalake::datafusion::execution::runtime_env::RuntimeEnvBuilder;
use deltalake::datafusion::execution::session_state::SessionStateBuilder;
use deltalake::datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::{Error, Result};
use crate::settings::EngineSettings;
use request_id_buckets::RequestIdBuckets;
use scan_log::ScanLog;
use work_folder::WorkFolder;

/// A DataFusion session with the default memory budget (`[engine]`).
pub fn session() -> Result<SessionContext> {
    session_within(&EngineSettings::default())
}

/// A DataFusion session whose queries share a memory budget: a fair spilling pool, so sorts
/// and aggregations spill to the temporary folder instead of exceeding it, and an error that
/// names the largest consumers when an operator cannot spill. Its files on disk go to a new
/// [`WorkFolder`], removed with the session.
pub fn session_within(engine: &EngineSettings) -> Result<SessionContext> {
    session_logging(engine, Arc::new(ScanLog::default()))
}

/// [`session_within`], recording what its plans scan into `log`.
pub fn session_logging(engine: &EngineSettings, log: Arc<ScanLog>) -> Result<SessionContext> {
    let work = WorkFolder::create()?;
    let spill = work.path().join("spill");
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        // Off: this rule pushes `body['kind']` below the join and inlines `body`, so
        // `gateway_usage(response)` ran once per field access (8 parses per body), apache/datafusion#23655.
        .set_bool("datafusion.optimizer.enable_leaf_expression_pushdown", false)
        .with_extension(log)
        .with_extension(work)
        .with_extension(Arc::new(grace_buckets::SplitTurns::default()));
    // Spill and bucket files LZ4-compressed: uncompressed, the bucket files of a five-day
    // 50M-request run took 20 GB of temporary disk (docs/PERFORMANCE.md#50-million-requests).
    config.options_mut().execution.spill_compression = SpillCompression::Lz4Frame;
    let pool = TrackConsumersPool::new(FairSpillPool::new(engine.pool_bytes()), NonZeroUsize::MIN.saturating_add(2));
    let runtime = RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .with_disk_manager_builder(
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![spill.clone()])),
        )
        .build_arc()
        .map_err(|e| Error::Io {
            context: format!("creating {}", spill.display()),
            source: std::io::Error::other(e),
        })?;
    let state = SessionStateBuilder::new().with_config(config).with_default_features().with_runtime_env(runtime);
    // Right after join selection, so that the later rules plan around the bucketed operators.
    let mut rules = PhysicalOptimizer::new().rules;
    let after = rules.iter().position(|rule| rule.name() == "join_selection").map_or(0, |at| at + 1);
    rules.insert(after, Arc::new(RequestIdBuckets::new(engine.hash_join_limit_bytes())));
    let ctx = SessionContext::new_with_state(state.with_physical_optimizer_rules(rules).build());
    json_functions::register(&ctx);
    utc_date_trunc::register(&ctx);
    Ok(ctx)
}
