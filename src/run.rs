//! One run of the job: check inputs, compute every output for the window, then commit them.

use deltalake::arrow::array::{Array, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use deltalake::datafusion::prelude::{SessionConfig, SessionContext};

use crate::config::JobConfig;
use crate::error::{Error, Result};
use crate::inputs;
use crate::outputs::{self, OUTPUT_TABLES};
use crate::progress::Progress;
use crate::queries;
use crate::sql_params::SqlParams;
use crate::summary::{self, InputCheck, RunSummary};
use crate::window::RunWindow;

/// A DataFusion session configured for the job.
pub fn session() -> SessionContext {
    let config = SessionConfig::new().with_information_schema(false);
    SessionContext::new_with_config(config)
}

/// Recomputes `window` for every output table of `job` and writes them.
///
/// Inputs are checked before any work; every output is computed before the first commit.
pub async fn run(job: &JobConfig, window: RunWindow, progress: &Progress) -> Result<RunSummary> {
    let ctx = session();
    let params = SqlParams::new(&window, &job.settings);
    progress.stage("checking inputs");
    inputs::register(&ctx, job, &window).await?;
    queries::register_views(&ctx, &params).await?;

    let mut computed = Vec::with_capacity(OUTPUT_TABLES.len());
    for table in &OUTPUT_TABLES {
        progress.stage(&format!("computing {} for {window}", table.name));
        computed.push(outputs::compute(&ctx, table, &params).await?);
    }
    progress.stage("running input checks");
    let checks = input_checks(&ctx, &params).await?;
    for check in checks.iter().filter(|c| c.rows > 0) {
        tracing::info!(check = %check.check, rows = check.rows, "input check");
    }
    let totals = match computed.iter().find(|c| c.table.name == "daily_spend") {
        Some(daily_spend) => summary::totals(daily_spend).await?,
        None => Vec::new(),
    };

    let mut written = Vec::with_capacity(computed.len());
    for output in computed {
        progress.stage(&format!("writing {}", output.table.name));
        written.push(outputs::commit(output, &job.output, &window, &job.storage_options).await?);
    }
    progress.finish();
    Ok(RunSummary { window, totals, written, checks })
}

async fn input_checks(ctx: &SessionContext, params: &SqlParams) -> Result<Vec<InputCheck>> {
    let (_, batches) = queries::collect(ctx, &queries::INPUT_CHECKS, params).await?;
    let mut checks = Vec::new();
    for batch in &batches {
        let names = string_column(batch, 0)?;
        let counts = cast(batch.column(1), &DataType::Int64).map_err(|e| Error::query("input_checks", e.into()))?;
        let counts = counts
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| Error::query("input_checks", internal("row_count is not BIGINT")))?;
        for row in 0..batch.num_rows() {
            let rows = if counts.is_null(row) { 0 } else { counts.value(row) };
            checks.push(InputCheck { check: names.value(row).to_string(), rows });
        }
    }
    checks.sort_by(|a, b| a.check.cmp(&b.check));
    Ok(checks)
}

fn string_column(batch: &RecordBatch, index: usize) -> Result<StringArray> {
    let column = cast(batch.column(index), &DataType::Utf8).map_err(|e| Error::query("input_checks", e.into()))?;
    column
        .as_any()
        .downcast_ref::<StringArray>()
        .cloned()
        .ok_or_else(|| Error::query("input_checks", internal("check_name is not a string")))
}

fn internal(message: &str) -> deltalake::datafusion::error::DataFusionError {
    deltalake::datafusion::error::DataFusionError::Internal(message.to_string())
}
