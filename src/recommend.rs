//! `gateway-analytics recommend`: the proposed rate-limit changes with their evidence, for a
//! person to review before applying. Computes the same rows as the `rate_limit_recommendations`
//! output and the same patches as `run`, and writes nothing.

use std::io::Write;
use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::util::pretty::pretty_format_batches;
use deltalake::datafusion::datasource::MemTable;
use deltalake::datafusion::prelude::SessionContext;

use crate::config::JobConfig;
use crate::engine::session_within;
use crate::error::{Error, Result};
use crate::outputs::{self, OutputSelection};
use crate::patches::{self, PATCH_FOLDER};
use crate::plan::{self, PlanInputs, RunPlan};
use crate::progress::Progress;
use crate::rate_limits::{self, EndpointPatch, Recommendation};
use crate::segment::compute_segment;
use crate::sql_params::lookback_start;
use crate::window::RunWindow;

/// What `recommend` shows.
#[derive(Debug)]
pub struct Review {
    /// Header line: the as-of date and the lookback.
    pub heading: String,
    /// The rows that change a rule, as a table.
    pub evidence: Vec<RecordBatch>,
    /// One patch per endpoint that needs a change.
    pub patches: Vec<EndpointPatch>,
    /// Where `run` writes the patch files of this as-of date.
    pub patch_folder: String,
    /// Where the patches of the latest as-of date are (what to apply).
    pub latest_folder: String,
    /// Whether current limits were configured.
    pub has_current_limits: bool,
}

/// The rows of the review table: those whose action changes a rule.
const EVIDENCE_SQL: &str = "\
SELECT endpoint_name, requester, action,
       current_calls_per_minute AS current, current_calls_rule AS current_rule,
       recommended_calls_per_minute AS recommended, p99_calls_per_minute AS p99,
       peak_calls_per_minute AS peak, rate_limited AS refused_429,
       throttled_under_current AS refused_at_current, throttled_under_recommended AS refused_at_recommended
FROM recommendations
WHERE endpoint_name <> '(unknown)'
  AND (action = 'raise'
       OR (action IN ('lower', 'add') AND (requester = '(endpoint)' OR current_calls_rule = 'principal')))
ORDER BY endpoint_name, requester";

/// Computes the recommendations as of `window.to` and the patches they imply.
pub async fn review(job: &JobConfig, window: RunWindow) -> Result<Review> {
    let table = &outputs::RATE_LIMIT_RECOMMENDATIONS;
    let selection = OutputSelection::Only(vec![table]);
    let plan = RunPlan::build(job, window, &selection, plan::new_run_id(), PlanInputs::load(job).await?).await?;
    let ctx = session_within(&job.settings.engine);
    let mut computed = Vec::new();
    for segment in &plan.segments {
        computed.extend(compute_segment(&ctx, job, &plan, segment, &[], &[table], &Progress::hidden()).await?.outputs);
    }
    let Some(computed) = computed.pop() else {
        return Err(Error::Usage(format!("no recommendations computed for {window}")));
    };
    let config = &plan.reference.rate_limits;
    let patches = rate_limits::build_patches(config, &Recommendation::from_batches(&computed.batches)?);

    let evidence_ctx = SessionContext::new();
    let table =
        MemTable::try_new(computed.schema.clone(), vec![computed.batches]).map_err(|e| Error::query("recommend", e))?;
    evidence_ctx.register_table("recommendations", Arc::new(table)).map_err(|e| Error::query("recommend", e))?;
    let evidence = evidence_ctx
        .sql(EVIDENCE_SQL)
        .await
        .map_err(|e| Error::query("recommend", e))?
        .collect()
        .await
        .map_err(|e| Error::query("recommend", e))?;
    Ok(Review {
        heading: format!(
            "Rate-limit recommendations as of {} (demand from {} to {}, UTC; headroom x{})",
            window.to,
            lookback_start(&window, &job.settings),
            window.to,
            job.settings.recommendations.headroom
        ),
        evidence,
        patches,
        patch_folder: job.output.child(&patches::folder_of(window.to)).to_string(),
        latest_folder: job.output.child(&format!("{PATCH_FOLDER}/{}", patches::LATEST)).to_string(),
        has_current_limits: job.rate_limits.is_some(),
    })
}

impl Review {
    /// Prints the review for a person.
    pub fn print(&self, out: &mut dyn Write) -> Result<()> {
        let io = |source| Error::Io { context: "writing the review".into(), source };
        writeln!(out, "{}\n", self.heading).map_err(io)?;
        if !self.has_current_limits {
            writeln!(out, "No inputs.rate_limits in the job file: every limit is taken as absent.\n").map_err(io)?;
        }
        let table = pretty_format_batches(&self.evidence).map_err(|e| Error::query("recommend", e.into()))?;
        writeln!(out, "Evidence (calls per minute; refused_* count calls over the lookback):\n{table}\n")
            .map_err(io)?;
        if self.patches.is_empty() {
            writeln!(out, "No endpoint needs a change.").map_err(io)?;
        } else {
            writeln!(
                out,
                "`run` writes these patches to {} and, unless a later as-of date is there, to {}:",
                self.patch_folder.trim_end_matches('/'),
                self.latest_folder.trim_end_matches('/')
            )
            .map_err(io)?;
        }
        for patch in &self.patches {
            writeln!(
                out,
                "{}: {} change(s) ({})",
                patch.endpoint_name,
                patch.changes.len(),
                rate_limits::patch_file_name(&patch.endpoint_name)
            )
            .map_err(io)?;
            for change in &patch.changes {
                writeln!(out, "  - {change}").map_err(io)?;
            }
            for warning in &patch.warnings {
                writeln!(out, "  ! {warning}").map_err(io)?;
            }
        }
        Ok(())
    }
}
