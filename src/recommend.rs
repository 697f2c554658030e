//! `gateway-analytics recommend`: the proposed rate-limit changes with their evidence, for a
//! person to review before applying, for each gateway the job reads: the serving endpoints'
//! (`rate_limit_recommendations`) and the new AI Gateway's (Beta) model services'
//! (`ai_gateway_rate_limit_recommendations`). Computes the same rows as those outputs and the
//! same patches as `run`, and writes nothing.

use std::io::Write;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::util::pretty::pretty_format_batches;
use deltalake::datafusion::prelude::SessionContext;

use crate::ai_gateway::rate_limits::{self as gateway_limits, GatewayRecommendation};
use crate::config::JobConfig;
use crate::engine::session_within;
use crate::error::{Error, Result};
use crate::outputs::{self, ComputedOutput, OutputSelection, OutputTable};
use crate::patches::{self, AI_GATEWAY_PATCH_FOLDER, PATCH_FOLDER};
use crate::plan::{self, PlanInputs, RunPlan};
use crate::progress::Progress;
use crate::rate_limits::{self, Recommendation};
use crate::segment::compute_segment;
use crate::sql_params::lookback_start;
use crate::window::RunWindow;

/// What `recommend` shows: one section per gateway the job reads.
#[derive(Debug)]
pub struct Review {
    /// Header line: the as-of date and the lookback.
    pub heading: String,
    /// The serving endpoints' section first, then the new AI Gateway's.
    pub sections: Vec<Section>,
}

/// The review of one gateway's recommendations.
#[derive(Debug)]
pub struct Section {
    /// The section's heading: the gateway and the output its rows come from.
    pub title: String,
    /// The rows that change a limit, as a table.
    pub evidence: Vec<RecordBatch>,
    /// One patch per endpoint or service that needs a change.
    pub patches: Vec<ProposedPatch>,
    /// Configured limits the recommendations do not evaluate (kept as they are), one line each.
    pub not_evaluated: Vec<String>,
    /// Where `run` writes the patch files of this as-of date.
    pub patch_folder: String,
    /// Where the patch files of the latest as-of date are (what to apply).
    pub latest_folder: String,
    /// The job file's input of current limits (`inputs.rate_limits`, `inputs.gateway_rate_limits`).
    pub limits_input: &'static str,
    /// Whether that input is configured (without it `run` writes no patch files).
    pub has_current_limits: bool,
    /// What a patch changes: `endpoint` or `service`.
    pub target: &'static str,
}

/// One patch file `run` would write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProposedPatch {
    /// The endpoint or service.
    pub name: String,
    /// The file's name in the patch folder.
    pub file: String,
    /// One line per change, for people.
    pub changes: Vec<String>,
    /// Problems a reviewer must know.
    pub warnings: Vec<String>,
}

/// The evidence columns of both gateways' rows, from the `recommendations` table.
macro_rules! evidence_select {
    () => {
        "\
SELECT endpoint_name, requester, action,
       current_calls_per_minute AS current, current_calls_rule AS current_rule,
       recommended_calls_per_minute AS recommended, p99_calls_per_minute AS p99,
       peak_calls_per_minute AS peak, rate_limited AS refused_429,
       throttled_under_current AS refused_at_current, throttled_under_recommended AS refused_at_recommended
FROM recommendations
"
    };
}

/// The serving endpoints' rows that change a rule.
const EVIDENCE_SQL: &str = concat!(
    evidence_select!(),
    "\
WHERE endpoint_name <> '(unknown)'
  AND (action = 'raise'
       OR (action IN ('lower', 'add') AND (requester = '(endpoint)' OR current_calls_rule = 'principal')))
ORDER BY endpoint_name, requester"
);

/// The new AI Gateway's rows that change a limit, in the same layout: exactly the rows
/// [`gateway_limits::build_patches`] turns into a change.
const AI_GATEWAY_EVIDENCE_SQL: &str = concat!(
    evidence_select!(),
    "\
WHERE endpoint_name <> '(unknown)' AND recommended_calls_per_minute IS NOT NULL
  AND ((action = 'raise' AND current_calls_rule IN ('user_default', 'principal'))
       OR (action = 'lower' AND current_calls_rule = 'principal')
       OR (requester = '(service)'
           AND ((action IN ('raise', 'lower') AND current_calls_rule = 'service')
                OR (action = 'add' AND current_calls_rule IS NULL))))
ORDER BY endpoint_name, requester"
);

/// The new AI Gateway's configured limits the recommendations do not evaluate.
const NOT_EVALUATED_SQL: &str = "\
SELECT endpoint_name, requester, current_calls_rule, not_evaluated_reason
FROM recommendations
WHERE action = 'not_evaluated'
ORDER BY endpoint_name, requester, current_calls_rule";

/// Computes the recommendations as of `window.to` for each gateway the job reads and the
/// patches they imply.
pub async fn review(job: &JobConfig, window: RunWindow) -> Result<Review> {
    let serving = &outputs::RATE_LIMIT_RECOMMENDATIONS;
    let beta = &crate::ai_gateway::AI_GATEWAY_RATE_LIMIT_RECOMMENDATIONS;
    let wanted: Vec<&'static OutputTable> =
        [serving, beta].into_iter().filter(|t| outputs::skip_reason(job, t).is_none()).collect();
    if wanted.is_empty() {
        return Err(Error::Usage("the job reads no gateway usage table: there is nothing to recommend".into()));
    }
    let selection = OutputSelection::Only(wanted.clone());
    let plan = RunPlan::build(job, window, &selection, plan::new_run_id(), PlanInputs::load(job).await?).await?;
    let ctx = session_within(&job.settings.engine)?;
    let mut computed: Vec<ComputedOutput> = Vec::new();
    for segment in &plan.segments {
        let outputs = compute_segment(&ctx, job, &plan, segment, &[], &wanted, &Progress::hidden()).await?.outputs;
        for output in outputs {
            // The last segment's rows: those of the as-of date.
            computed.retain(|c| c.table.name != output.table.name);
            computed.push(output);
        }
    }
    let mut take = |table: &OutputTable| -> Option<ComputedOutput> {
        let index = computed.iter().position(|c| c.table.name == table.name)?;
        Some(computed.remove(index))
    };
    let mut sections = Vec::new();
    if wanted.iter().any(|t| t.name == serving.name) {
        let rows = take(serving).ok_or_else(|| no_rows(serving, window))?;
        let patches = rate_limits::build_patches(
            &plan.reference.rate_limits,
            &Recommendation::from_batches(&rows.rows.read_all()?)?,
        )
        .into_iter()
        .map(|p| ProposedPatch {
            file: rate_limits::patch_file_name(&p.endpoint_name),
            name: p.endpoint_name,
            changes: p.changes,
            warnings: p.warnings,
        })
        .collect();
        let (evidence, _) = evidence(rows, EVIDENCE_SQL, None).await?;
        sections.push(Section {
            title: "Serving endpoints (rate_limit_recommendations)".into(),
            evidence,
            patches,
            not_evaluated: Vec::new(),
            patch_folder: job.output.child(&patches::folder_of(window.to)).to_string(),
            latest_folder: job.output.child(&format!("{PATCH_FOLDER}/{}", patches::LATEST)).to_string(),
            limits_input: "inputs.rate_limits",
            has_current_limits: job.rate_limits.is_some(),
            target: "endpoint",
        });
    }
    if wanted.iter().any(|t| t.name == beta.name) {
        let rows = take(beta).ok_or_else(|| no_rows(beta, window))?;
        let recommendations = GatewayRecommendation::from_batches(&rows.rows.read_all()?)?;
        let patches = gateway_limits::build_patches(&plan.reference.gateway_rate_limits, &recommendations)
            .into_iter()
            .map(|p| ProposedPatch {
                file: rate_limits::patch_file_name(&p.service),
                name: p.service,
                changes: p.changes,
                warnings: Vec::new(),
            })
            .collect();
        let (evidence, not_evaluated) = evidence(rows, AI_GATEWAY_EVIDENCE_SQL, Some(NOT_EVALUATED_SQL)).await?;
        sections.push(Section {
            title: "New AI Gateway (Beta) model services (ai_gateway_rate_limit_recommendations)".into(),
            evidence,
            patches,
            not_evaluated: not_evaluated_lines(&not_evaluated)?,
            patch_folder: job.output.child(&patches::ai_gateway_folder_of(window.to)).to_string(),
            latest_folder: job.output.child(&format!("{AI_GATEWAY_PATCH_FOLDER}/{}", patches::LATEST)).to_string(),
            limits_input: "inputs.gateway_rate_limits",
            has_current_limits: job.gateway_rate_limits.is_some(),
            target: "service",
        });
    }
    Ok(Review {
        heading: format!(
            "Rate-limit recommendations as of {} (demand from {} to {}, UTC; headroom x{})",
            window.to,
            lookback_start(&window, &job.settings),
            window.to,
            job.settings.recommendations.headroom
        ),
        sections,
    })
}

fn no_rows(table: &OutputTable, window: RunWindow) -> Error {
    Error::Usage(format!("no {} computed for {window}", table.name))
}

/// The evidence rows (`sql` over the computed output, registered as `recommendations`) and the
/// rows of `extra_sql`, if any.
async fn evidence(
    rows: ComputedOutput,
    sql: &str,
    extra_sql: Option<&str>,
) -> Result<(Vec<RecordBatch>, Vec<RecordBatch>)> {
    let failed = |e| Error::query("recommend", e);
    let ctx = SessionContext::new();
    ctx.register_table("recommendations", rows.rows.table()?).map_err(failed)?;
    let evidence = ctx.sql(sql).await.map_err(failed)?.collect().await.map_err(failed)?;
    let extra = match extra_sql {
        Some(extra) => ctx.sql(extra).await.map_err(failed)?.collect().await.map_err(failed)?,
        None => Vec::new(),
    };
    Ok((evidence, extra))
}

/// `<service> <requester> [<key> limit]: <reason>` for each not-evaluated row.
fn not_evaluated_lines(batches: &[RecordBatch]) -> Result<Vec<String>> {
    let mut lines = Vec::new();
    for batch in batches {
        let service = crate::columns::strings(batch, "endpoint_name")?;
        let requester = crate::columns::strings(batch, "requester")?;
        let rule = crate::columns::strings(batch, "current_calls_rule")?;
        let reason = crate::columns::strings(batch, "not_evaluated_reason")?;
        for i in 0..batch.num_rows() {
            let text = |column: &[Option<String>]| column[i].clone().unwrap_or_default();
            lines.push(format!("{} {} [{} limit]: {}", text(&service), text(&requester), text(&rule), text(&reason)));
        }
    }
    Ok(lines)
}

impl Review {
    /// Prints the review for a person.
    pub fn print(&self, out: &mut dyn Write) -> Result<()> {
        let io = |source| Error::Io { context: "writing the review".into(), source };
        writeln!(out, "{}", self.heading).map_err(io)?;
        for section in &self.sections {
            writeln!(out, "\n== {} ==\n", section.title).map_err(io)?;
            section.print(out).map_err(io)?;
        }
        Ok(())
    }
}

impl Section {
    fn print(&self, out: &mut dyn Write) -> std::io::Result<()> {
        if !self.has_current_limits {
            writeln!(out, "No {} in the job file: every limit is taken as absent.\n", self.limits_input)?;
        }
        let table = pretty_format_batches(&self.evidence).map_err(std::io::Error::other)?;
        writeln!(out, "Evidence (calls per minute; refused_* count calls over the lookback):\n{table}\n")?;
        if !self.not_evaluated.is_empty() {
            writeln!(out, "Configured limits not evaluated (kept as they are):")?;
            for line in &self.not_evaluated {
                writeln!(out, "  - {line}")?;
            }
            writeln!(out)?;
        }
        let (folder, latest) = (self.patch_folder.trim_end_matches('/'), self.latest_folder.trim_end_matches('/'));
        match (self.patches.is_empty(), self.has_current_limits) {
            (true, _) => writeln!(out, "No {} needs a change.", self.target)?,
            (false, true) => writeln!(
                out,
                "`run` writes these patches to {folder} and, unless a later as-of date is there, to {latest}:"
            )?,
            (false, false) => writeln!(
                out,
                "`run` writes no patch files without {}; against absent limits they would be:",
                self.limits_input
            )?,
        }
        for patch in &self.patches {
            writeln!(out, "{}: {} change(s) ({})", patch.name, patch.changes.len(), patch.file)?;
            for change in &patch.changes {
                writeln!(out, "  - {change}")?;
            }
            for warning in &patch.warnings {
                writeln!(out, "  ! {warning}")?;
            }
        }
        Ok(())
    }
}
