//! Views computed once per run into scratch Parquet files.
//!
//! Several outputs read `payload_parsed`, `usage_costed` and `per_minute_demand`. As plain
//! views each output would scan and join the inputs again and parse every response body again;
//! materialising them once means each input row is read and each body parsed once per run,
//! with memory bounded (the rows go to disk, not to an in-memory table outside the memory pool).

use std::path::Path;
use std::sync::Arc;

use deltalake::arrow::datatypes::SchemaRef;
use deltalake::datafusion::physical_plan::{ExecutionPlan, displayable, execute_stream_partitioned};
use deltalake::datafusion::prelude::{ParquetReadOptions, SessionContext};
use deltalake::parquet::arrow::AsyncArrowWriter;
use deltalake::parquet::basic::{Compression, ZstdLevel};
use deltalake::parquet::file::properties::WriterProperties;
use futures::StreamExt;

use crate::engine::scan_log::ScanLog;
use crate::engine::work_folder::WorkFolder;
use crate::error::{Error, Result};

/// Views materialised right after they are registered (later views and outputs then read the
/// files): each response body is parsed once, usage is joined to names, teams, prices and
/// token categories once (`usage_enriched` is only read by `usage_costed`, which every output
/// reads instead), per-minute demand (read by minute_demand and the recommendations) is
/// counted once, and so is each team's daily cost (a few rows a day, read by every alert rule
/// with a baseline and the logged days). (`segment` also materialises the recommendations'
/// `lookback_minute_demand` when it computes a recommendations output.)
pub const MATERIALIZED_VIEWS: [&str; 4] = ["payload_parsed", "usage_costed", "per_minute_demand", "team_daily_cost"];

/// A segment's scratch folder (in the session's [`WorkFolder`]), removed when dropped.
#[derive(Debug)]
pub struct Scratch {
    folder: tempfile::TempDir,
}

impl Scratch {
    /// Creates an empty scratch folder in `ctx`'s work folder.
    pub fn new(ctx: &SessionContext) -> Result<Self> {
        let work = WorkFolder::of(ctx)?;
        let folder = tempfile::Builder::new().prefix("views-").tempdir_in(work.path()).map_err(|source| Error::Io {
            context: format!("creating a scratch folder in {}", work.path().display()),
            source,
        })?;
        Ok(Scratch { folder })
    }

    /// Computes the registered view `name` into Parquet files (one per partition of its plan,
    /// written in parallel) and replaces the view with a table over them.
    pub async fn materialize(&self, ctx: &SessionContext, name: &str) -> Result<()> {
        let folder = self.folder.path().join(name);
        std::fs::create_dir_all(&folder)
            .map_err(|source| Error::Io { context: format!("creating {}", folder.display()), source })?;
        let frame = ctx.table(name).await.map_err(|e| Error::query(name, e))?;
        // The view's own schema, so that types stay exactly as the SQL made them.
        let schema = frame.schema().as_arrow().clone();
        let plan = frame.create_physical_plan().await.map_err(|e| Error::query(name, e))?;
        tracing::debug!("plan of {name}:\n{}", displayable(plan.as_ref()).indent(true));
        if let Some(log) = ScanLog::of(ctx) {
            log.start(&plan);
        }
        write_partitions(ctx, name, &plan, &folder).await?;
        crate::queries::log_metrics(name, plan.as_ref());
        if let Some(log) = ScanLog::of(ctx) {
            log.record(&plan);
        }
        ctx.deregister_table(name).map_err(|e| Error::query(name, e))?;
        let path = format!("{}/", folder.display());
        ctx.register_parquet(name, &path, ParquetReadOptions::default().schema(&schema))
            .await
            .map_err(|e| Error::query(name, e))
    }
}

/// Executes `plan`, writing each output partition to `folder/part-<n>.parquet`, each on its own
/// task so that partitions run (and encode) in parallel on the runtime's threads.
async fn write_partitions(
    ctx: &SessionContext,
    name: &str,
    plan: &Arc<dyn ExecutionPlan>,
    folder: &Path,
) -> Result<()> {
    let streams = execute_stream_partitioned(plan.clone(), ctx.task_ctx()).map_err(|e| Error::query(name, e))?;
    let mut writers = tokio::task::JoinSet::new();
    for (n, mut stream) in streams.into_iter().enumerate() {
        let path = folder.join(format!("part-{n:05}.parquet"));
        let schema = plan.schema();
        let name = name.to_string();
        writers.spawn(async move {
            let mut writer = open_writer(&path, schema).await?;
            while let Some(batch) = stream.next().await {
                let batch = batch.map_err(|e| Error::query(&name, e))?;
                writer.write(&batch).await.map_err(|e| scratch_error(&path, e))?;
            }
            writer.close().await.map_err(|e| scratch_error(&path, e))?;
            Ok::<(), Error>(())
        });
    }
    // The first failure stops the run; dropping the set aborts the other writers.
    while let Some(written) = writers.join_next().await {
        written
            .map_err(|e| Error::Io { context: format!("materialising {name}"), source: std::io::Error::other(e) })??;
    }
    Ok(())
}

async fn open_writer(path: &Path, schema: SchemaRef) -> Result<AsyncArrowWriter<tokio::fs::File>> {
    let file = tokio::fs::File::create(path)
        .await
        .map_err(|source| Error::Io { context: format!("creating {}", path.display()), source })?;
    // Scratch files are read a few times and then deleted, but they stay on disk for the whole
    // run: zstd at level 1 (its fastest) holds a 10M-request day in 38% fewer bytes than LZ4
    // (request ids are random hex, which LZ4 cannot shrink) for no measurable time
    // (docs/PERFORMANCE.md, "2026-12-03 (evening)"). Row groups of 64K rows bound what each
    // writer buffers before flushing.
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(1).map_err(|e| scratch_error(path, e))?))
        .set_max_row_group_row_count(Some(1 << 16))
        .build();
    AsyncArrowWriter::try_new(file, schema, Some(properties)).map_err(|e| scratch_error(path, e))
}

fn scratch_error(path: &Path, error: impl std::fmt::Display) -> Error {
    Error::Io { context: format!("writing {}", path.display()), source: std::io::Error::other(error.to_string()) }
}
