//! One run of the job: take the output location's lease, make the plan, compute every
//! segment's outputs, then commit them between the ledger's `started` and `finished` marks.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use deltalake::arrow::array::RecordBatch;
use deltalake::datafusion::prelude::SessionContext;

use crate::ai_gateway::rate_limits as gateway_limits;
use crate::columns;
use crate::config::JobConfig;
use crate::deadline::Deadline;
use crate::engine::scan_log::ScanLog;
use crate::engine::session_logging;
use crate::error::{Error, Result};
use crate::heartbeat;
use crate::history::HistorySource;
use crate::lease::{Lease, LeaseHolder};
use crate::ledger::{self, DateStatus};
use crate::outputs::{self, ComputedOutput, OutputSelection, OutputTable, WrittenOutput};
use crate::patches;
use crate::plan::{self, PlanInputs, RunPlan};
use crate::progress::Progress;
use crate::rate_limits::{self, EndpointPatch, Recommendation};
use crate::segment::{SegmentOutputs, compute_segment};
use crate::summary::{self, QualityCheck, RunSummary};
use crate::window::RunWindow;

/// How `run` behaves beyond its window and outputs.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// How long to wait for another run's lease on the output location (`--wait`).
    pub wait: Duration,
    /// Replace dates that have outputs even when their inputs are empty (`--allow-empty`).
    pub allow_empty: bool,
    /// When the run must stop (`--deadline`, `[engine] deadline_minutes`); commits begin only
    /// with time left and stop before the next one once it has passed. The caller also bounds
    /// the whole run with [`Deadline::bound`].
    pub deadline: Deadline,
}

/// Recomputes `window` (and the earlier dates whose inputs changed) for the `selected` output
/// tables of `job` and writes them, then (when the recommendations are selected) the rate-limit
/// patch files.
///
/// The run holds the output location's lease throughout. Inputs are checked and the plan made
/// before any work; every output of every date is computed before the first commit; the ledger
/// marks the dates `started` before the first commit and `finished` after the last.
pub async fn run(
    job: &JobConfig,
    window: RunWindow,
    selected: &OutputSelection,
    options: &RunOptions,
    progress: &Progress,
) -> Result<RunSummary> {
    progress.stage("checking inputs");
    let inputs = PlanInputs::load(job).await?;
    progress.stage("taking the lease on the output location");
    let run_id = plan::new_run_id();
    let holder = LeaseHolder::this_process(&run_id, &window.to_string(), job.settings.engine.lease_ttl_seconds);
    let lease = Lease::acquire(job, holder, options.wait).await?;
    let outcome = run_leased(job, window, selected, options, progress, &lease, run_id, inputs).await;
    // A run that failed cleanly releases its lease too; its ledger rows say what to heal.
    let released = lease.release().await;
    let summary = outcome?;
    released?;
    Ok(summary)
}

#[allow(clippy::too_many_arguments)]
async fn run_leased(
    job: &JobConfig,
    window: RunWindow,
    selected: &OutputSelection,
    options: &RunOptions,
    progress: &Progress,
    lease: &Lease,
    run_id: String,
    inputs: PlanInputs,
) -> Result<RunSummary> {
    progress.stage("planning");
    let plan = RunPlan::build(job, window, selected, run_id, inputs).await?;
    let tables = outputs::selected(job, selected);
    let log = Arc::new(scan_log_for(job));
    let _heartbeat = heartbeat::start(progress.stages(), Some(log.clone()));
    let mut segments: Vec<SegmentOutputs> = Vec::with_capacity(plan.segments.len());
    for segment in &plan.segments {
        let ctx = session_logging(&job.settings.engine, log.clone())?;
        segments.push(compute_segment(&ctx, job, &plan, segment, &segments, &tables, progress).await?);
    }
    let lacking_history = segments.iter().flat_map(|s| s.lacking_history.iter().cloned()).collect();
    if !options.allow_empty {
        refuse_empty_inputs(job, &plan, &segments).await?;
    }
    let patches = plan_patches(job, &plan, selected, &segments)?;
    let gateway_patches = plan_gateway_patches(job, &plan, selected, &segments)?;
    let gateway_files = gateway_patches.as_deref().map(gateway_limits::patch_files).transpose()?;
    let merged = merge_segments(&tables, &plan, segments);
    let totals = match merged.iter().find(|c| c.table.name == outputs::DAILY_SPEND.name) {
        Some(daily_spend) => summary::totals(daily_spend).await?,
        None => Vec::new(),
    };
    let alerts = rows_of(&merged, &outputs::ALERTS)?;
    let checks = quality_totals(&rows_of(&merged, &outputs::DATA_QUALITY)?)?;
    for check in checks.iter().filter(|c| c.rows > 0) {
        tracing::info!(check = %check.check, rows = check.rows, "data quality");
    }

    // Commits: the ledger first marks the dates started (or partial), then each table, the
    // patches, and the ledger marks the dates finished. Before each: the lease is still this
    // run's and the deadline has not passed.
    let write_patches = job.rate_limits.is_some() && selected.includes(&outputs::RATE_LIMIT_RECOMMENDATIONS);
    if job.rate_limits.is_none() {
        tracing::info!("no rate_limits input configured: recommendations are written, patch files are not");
    }
    let deadline = &options.deadline;
    let planned = [STARTED_MARK].into_iter().chain(merged.iter().map(|c| c.table.name));
    let planned = planned.chain(write_patches.then_some(patches::PATCH_FOLDER));
    let planned = planned.chain(gateway_files.is_some().then_some(patches::AI_GATEWAY_PATCH_FOLDER));
    deadline.begin_commits(planned.chain(plan.full_run.then_some(FINISHED_MARK)))?;
    before_commit(lease, deadline, STARTED_MARK).await?;
    let status = if plan.full_run { DateStatus::Started } else { DateStatus::Partial };
    progress.stage("marking the dates started in computed_dates");
    ledger::write(job, &plan.ledger, &plan.ledger_entries(status), &plan.run_id).await?;
    failpoint("after_ledger_started");
    let mut written = Vec::with_capacity(merged.len() + 1);
    for output in merged {
        let name = output.table.name;
        before_commit(lease, deadline, name).await?;
        progress.stage(&format!("writing {name}"));
        let dates = plan.replaced_dates(output.table.partitioning);
        written.push(outputs::commit(output, &job.output, &dates, &plan.run_id, &job.storage_options).await?);
        failpoint(&format!("after_commit:{name}"));
    }
    if write_patches {
        before_commit(lease, deadline, patches::PATCH_FOLDER).await?;
        progress.stage("writing rate-limit patches");
        patches::write(job, plan.requested.to, &plan.reference.rate_limits, &patches).await?;
    }
    if let Some(files) = &gateway_files {
        before_commit(lease, deadline, patches::AI_GATEWAY_PATCH_FOLDER).await?;
        progress.stage("writing the new AI Gateway's rate-limit patches");
        patches::write_ai_gateway(job, plan.requested.to, files).await?;
    }
    if plan.full_run {
        before_commit(lease, deadline, FINISHED_MARK).await?;
        progress.stage("marking the dates finished in computed_dates");
        let mut entries = plan.ledger_entries(DateStatus::Finished);
        let finished_rows = entries.len();
        entries.extend(plan.checked_entries());
        let version = ledger::write(job, &plan.ledger, &entries, &plan.run_id).await?;
        written.push(WrittenOutput { table: ledger::LEDGER.to_string(), rows: finished_rows, version });
    }
    progress.finish();
    let scanned = log.totals();
    for scan in &scanned {
        tracing::info!(table = %scan.table, files = scan.files, bytes = scan.bytes, "scanned");
    }
    let history = plan
        .window_segment()
        .map_or(HistorySource { history_from: window.from, inputs_from: window.from }, HistorySource::of);
    Ok(RunSummary {
        window,
        totals,
        written,
        checks,
        alerts,
        lacking_history,
        patches,
        gateway_patches: gateway_patches.unwrap_or_default(),
        scanned,
        history,
        plan: plan.report(),
    })
}

/// The ledger commits' names in deadline messages.
const STARTED_MARK: &str = "computed_dates (started)";
const FINISHED_MARK: &str = "computed_dates (finished)";

/// Before each commit: the deadline has not passed and this run still holds the lease.
async fn before_commit(lease: &Lease, deadline: &Deadline, name: &str) -> Result<()> {
    deadline.before_commit(name)?;
    lease.ensure_held().await
}

/// Each output's rows of every segment, as one output per table (in run order); as-of tables
/// only from the segments that write their as-of date.
fn merge_segments(
    tables: &[&'static OutputTable],
    plan: &RunPlan,
    segments: Vec<SegmentOutputs>,
) -> Vec<ComputedOutput> {
    let mut merged: Vec<ComputedOutput> = Vec::with_capacity(tables.len());
    for (segment, computed) in plan.segments.iter().zip(segments) {
        for output in computed.outputs {
            if output.table.partitioning == outputs::Partitioning::AsOfDate && !segment.writes_as_of {
                continue;
            }
            match merged.iter_mut().find(|m| m.table.name == output.table.name) {
                Some(existing) => existing.rows.append(output.rows),
                None => merged.push(output),
            }
        }
    }
    merged
}

/// The patches of the requested window's last date (its segment's recommendations); none when
/// the run does not write them.
fn plan_patches(
    job: &JobConfig,
    plan: &RunPlan,
    selected: &OutputSelection,
    segments: &[SegmentOutputs],
) -> Result<Vec<EndpointPatch>> {
    if job.rate_limits.is_none() || !selected.includes(&outputs::RATE_LIMIT_RECOMMENDATIONS) {
        return Ok(Vec::new());
    }
    let Some(segment) = segments.iter().find(|s| s.window.to == plan.requested.to) else {
        return Ok(Vec::new());
    };
    let rows = rows_of(&segment.outputs, &outputs::RATE_LIMIT_RECOMMENDATIONS)?;
    let recommendations = Recommendation::from_batches(&rows)?;
    Ok(rate_limits::build_patches(&plan.reference.rate_limits, &recommendations))
}

/// The new AI Gateway's patches of the requested window's last date: `None` when the run does
/// not write them (no `gateway_rate_limits` input, the output not selected or not written), else
/// one per service whose limits change (possibly none), each written as one file.
fn plan_gateway_patches(
    job: &JobConfig,
    plan: &RunPlan,
    selected: &OutputSelection,
    segments: &[SegmentOutputs],
) -> Result<Option<Vec<gateway_limits::ServicePatch>>> {
    let table = &crate::ai_gateway::AI_GATEWAY_RATE_LIMIT_RECOMMENDATIONS;
    if job.gateway_rate_limits.is_none() || !selected.includes(table) || !crate::ai_gateway::is_written(job, table) {
        return Ok(None);
    }
    let Some(segment) = segments.iter().find(|s| s.window.to == plan.requested.to) else {
        return Ok(None);
    };
    let rows = rows_of(&segment.outputs, table)?;
    let recommendations = gateway_limits::GatewayRecommendation::from_batches(&rows)?;
    Ok(Some(gateway_limits::build_patches(&plan.reference.gateway_rate_limits, &recommendations)))
}

/// The rows computed for `table` among `outputs` (none when it was not computed).
fn rows_of(outputs: &[ComputedOutput], table: &OutputTable) -> Result<Vec<RecordBatch>> {
    outputs.iter().find(|o| o.table.name == table.name).map_or(Ok(Vec::new()), |o| o.rows.read_all())
}

/// Fails, before anything is written, when a date that already has outputs would be replaced
/// by the outputs of empty inputs: no usage (or payload-only, or new AI Gateway usage) rows
/// that day, or an empty served_entities table.
async fn refuse_empty_inputs(job: &JobConfig, plan: &RunPlan, segments: &[SegmentOutputs]) -> Result<()> {
    // The spend table of the job's gateway: the new AI Gateway's in a job of it alone.
    let spend = if job.has_serving_endpoint_tables() {
        &outputs::DAILY_SPEND
    } else {
        &crate::ai_gateway::AI_GATEWAY_DAILY_SPEND
    };
    let mut with_rows: BTreeSet<NaiveDate> = BTreeSet::new();
    let mut computed_spend = false;
    for output in segments.iter().flat_map(|s| &s.outputs).filter(|o| o.table.name == spend.name) {
        computed_spend = true;
        for batch in &output.rows.read_all()? {
            with_rows.extend(columns::dates(batch, "usage_date")?.into_iter().flatten());
        }
    }
    let ctx = SessionContext::new();
    let Some(stored) = outputs::open_stored(&ctx, job, spend.name).await? else {
        return Ok(());
    };
    let stored_dates = columns::distinct_dates(&ctx, stored, "usage_date", &plan.dates()).await?;
    if stored_dates.is_empty() {
        return Ok(());
    }
    let served_rows = plan
        .opened
        .served_entities
        .as_ref()
        .and_then(|t| t.snapshot().ok())
        .map(|s| s.log_data().iter().map(|f| f.num_records().unwrap_or(1)).sum::<usize>());
    let list = |dates: &[NaiveDate]| dates.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ");
    if served_rows == Some(0) {
        return Err(Error::EmptyInputs { what: "served_entities is empty".into(), dates: list(&stored_dates) });
    }
    let empty: Vec<NaiveDate> = stored_dates.into_iter().filter(|d| computed_spend && !with_rows.contains(d)).collect();
    if !empty.is_empty() {
        let input = match plan::mode_of(job) {
            "usage_table" => "the usage table",
            "payload_only" => "the payload table",
            _ => "the new AI Gateway's usage table (gateway_usage)",
        };
        return Err(Error::EmptyInputs { what: format!("{input} has no rows"), dates: list(&empty) });
    }
    Ok(())
}

/// Exits the process at the named point, as a killed run would (debug builds only; set
/// `GATEWAY_ANALYTICS_FAILPOINT` to `after_ledger_started` or `after_commit:<table>`), so tests
/// can check that the next run heals what it left.
fn failpoint(name: &str) {
    #[cfg(debug_assertions)]
    if std::env::var("GATEWAY_ANALYTICS_FAILPOINT").as_deref() == Ok(name) {
        eprintln!("failpoint {name}: exiting without cleaning up, as a killed run would");
        std::process::exit(86);
    }
    #[cfg(not(debug_assertions))]
    let _ = name;
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
    let inputs = [
        ("served_entities", &job.served_entities),
        ("gateway_usage", &job.gateway_usage),
        ("gateway_payload", &job.gateway_payload),
    ];
    for (name, location) in inputs {
        if let Some(location) = location {
            tables.push((name.into(), folder(location)));
        }
    }
    // The history outputs, and the alerts whose previous day the lifecycle reads.
    for output in outputs::HISTORY_TABLES.into_iter().chain([&outputs::ALERTS]) {
        tables.push((format!("{} (earlier output)", output.name), folder(&job.output.child(output.name))));
    }
    let temp = std::env::temp_dir().join(crate::engine::work_folder::FOLDER_PREFIX);
    tables.push(("scratch (materialised views)".into(), temp.display().to_string()));
    ScanLog::new(tables)
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
