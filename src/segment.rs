//! One segment of a run's plan computed on a session: its inputs, history and views
//! registered ([`prepare_segment`]), then its output queries run in order
//! ([`compute_segment`]). Writes nothing; `run` commits, `recommend` only shows.

use deltalake::datafusion::prelude::SessionContext;

use crate::config::JobConfig;
use crate::engine::scratch::{self, Scratch};
use crate::error::Result;
use crate::history;
use crate::inputs;
use crate::outputs::{self, ComputedOutput, OutputTable};
use crate::plan::{RunPlan, Segment};
use crate::progress::Progress;
use crate::queries;
use crate::sql_params::SqlParams;
use crate::window::RunWindow;

/// The outputs one segment of the plan computed.
#[derive(Debug)]
pub struct SegmentOutputs {
    /// The segment's dates.
    pub window: RunWindow,
    /// Its outputs, in run order.
    pub outputs: Vec<ComputedOutput>,
    /// With the alerts: the teams their baseline rules lacked history for.
    pub lacking_history: Vec<crate::alerts::LackingHistory>,
}

/// A segment's session, ready for output queries: its SQL variables, and the scratch folder
/// holding its materialised views (keep it alive while queries run).
#[derive(Debug)]
pub struct PreparedSegment {
    /// The segment's SQL variables.
    pub params: SqlParams,
    /// The scratch folder of [`scratch::MATERIALIZED_VIEWS`].
    pub scratch: Scratch,
}

/// Registers on `ctx` what one `segment` of `plan` reads: the inputs at the plan's versions,
/// the reference tables, the history (stored outputs and the `earlier` segments' rows) and
/// every view, materialising the views several outputs read (each a stage of `progress`); the
/// recommendations' minute demand only when `tables` holds a recommendations output.
pub async fn prepare_segment(
    ctx: &SessionContext,
    job: &JobConfig,
    plan: &RunPlan,
    segment: &Segment,
    earlier: &[SegmentOutputs],
    tables: &[&'static OutputTable],
    progress: &Progress,
) -> Result<PreparedSegment> {
    let window = segment.run_window();
    progress.stage(&format!("registering the inputs and history for {window}"));
    plan.opened.register(ctx, job).await?;
    inputs::register_reference(ctx, job, &plan.reference, &segment.run_window())?;
    history::register(ctx, job, segment, earlier).await?;
    let params = segment.params(job, &plan.price_version);
    let scratch = Scratch::new(ctx)?;
    for view in queries::view_order(job.usage.is_some()) {
        queries::register_view(ctx, view, &params).await?;
        if scratch::MATERIALIZED_VIEWS.contains(&view.name) {
            progress.stage(&format!("materialising {} for {window}", view.name));
            scratch.materialize(ctx, view.name).await?;
        }
    }
    crate::focus_tags::register_view(ctx, job, &params).await?;
    progress.stage(&format!("preparing the new AI Gateway's views for {window}"));
    crate::ai_gateway::register_views(ctx, job, &params, &scratch).await?;
    register_recommendation_views(ctx, &params, &scratch, tables, progress, &window).await?;
    Ok(PreparedSegment { params, scratch })
}

/// Registers [`queries::RECOMMENDATION_VIEWS`]. Each recommendations output reads the
/// lookback's minutes four times (the new gateway's counted from its usage table), so when
/// `tables` holds one, `lookback_minute_demand` is materialised first (a view holds the plans of
/// the views it reads), with only the gateway(s) whose output is computed.
async fn register_recommendation_views(
    ctx: &SessionContext,
    params: &SqlParams,
    scratch: &Scratch,
    tables: &[&'static OutputTable],
    progress: &Progress,
    window: &RunWindow,
) -> Result<()> {
    let [demand, decisions] = &queries::RECOMMENDATION_VIEWS;
    let computes = |output: &OutputTable| tables.iter().any(|t| t.name == output.name);
    let serving = computes(&outputs::RATE_LIMIT_RECOMMENDATIONS);
    let beta = computes(&crate::ai_gateway::AI_GATEWAY_RATE_LIMIT_RECOMMENDATIONS);
    let sql = params.render(demand.name, demand.sql)?;
    // Only the computed gateways' rows: the other branch's `ai_gateway` is a constant, so the
    // filter is false there and its scans read nothing.
    let sql = match (serving, beta) {
        (true, false) => format!("SELECT * FROM ({sql}) WHERE NOT ai_gateway"),
        (false, true) => format!("SELECT * FROM ({sql}) WHERE ai_gateway"),
        _ => sql,
    };
    queries::create_view(ctx, demand.name, &sql).await?;
    if serving || beta {
        progress.stage(&format!("materialising {} for {window}", demand.name));
        scratch.materialize(ctx, demand.name).await?;
    }
    queries::register_view(ctx, decisions, params).await
}

/// Computes `tables` for one `segment` of `plan` on `ctx` ([`prepare_segment`], then each
/// output query in order). Writes nothing.
pub async fn compute_segment(
    ctx: &SessionContext,
    job: &JobConfig,
    plan: &RunPlan,
    segment: &Segment,
    earlier: &[SegmentOutputs],
    tables: &[&'static OutputTable],
    progress: &Progress,
) -> Result<SegmentOutputs> {
    let window = segment.run_window();
    let prepared = prepare_segment(ctx, job, plan, segment, earlier, tables, progress).await?;
    let mut computed: Vec<ComputedOutput> = Vec::with_capacity(tables.len());
    let mut registered: Vec<&str> = Vec::with_capacity(tables.len());
    for table in tables {
        // The outputs a query reads are computed first (alerts read data_quality, spend_forecast
        // and the new gateway's hourly errors and fallbacks); one the run does not write (the job lacks its
        // input, so it is computed over an empty one) is only registered.
        for output in table.reads.iter().copied().chain([*table]) {
            if registered.contains(&output.name) {
                continue;
            }
            progress.stage(&format!("computing {} for {window}", output.name));
            let rows = outputs::compute(ctx, output, &prepared.params).await?;
            rows.register(ctx)?;
            registered.push(output.name);
            if tables.iter().any(|t| t.name == output.name) {
                computed.push(rows);
            }
        }
    }
    // In run order, whatever order the reads asked for.
    computed.sort_by_key(|c| tables.iter().position(|t| t.name == c.table.name));
    let lacking_history = if tables.iter().any(|t| t.name == outputs::ALERTS.name) {
        crate::alerts::lacking_history(ctx, &prepared.params).await?
    } else {
        Vec::new()
    };
    drop(prepared);
    Ok(SegmentOutputs { window, outputs: computed, lacking_history })
}
