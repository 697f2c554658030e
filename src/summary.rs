//! The run summary printed to stdout: per date and endpoint totals, the tables written and the
//! data-quality totals, alert counts and the rate-limit patch files written (both gateways'), as
//! a table, CSV or JSON.

use std::io::Write;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::util::pretty::pretty_format_batches;
use deltalake::datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::ai_gateway::rate_limits::ServicePatch;
use crate::engine::scan_log::TableScan;
use crate::error::{Error, Result};
use crate::history::HistorySource;
use crate::outputs::{ComputedOutput, WrittenOutput};
use crate::patches::{AI_GATEWAY_PATCH_FOLDER, PATCH_FOLDER};
use crate::plan::PlanReport;
use crate::rate_limits::{EndpointPatch, patch_file_name};
use crate::window::RunWindow;

/// How the summary is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SummaryFormat {
    /// An aligned text table for people.
    Table,
    /// CSV of the per-date, per-endpoint totals, with a header.
    Csv,
    /// One JSON document: window, totals, outputs written, data-quality totals, alerts and
    /// proposed rate-limit changes.
    Json,
    /// Print nothing.
    None,
}

/// A data-quality check's failing rows over the window (the `data_quality` output, summed).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct QualityCheck {
    /// `table.check`.
    pub check: String,
    /// Rows failing it.
    pub rows: i64,
}

impl QualityCheck {
    /// What a person reading the summary must know besides the count: rows with a NULL
    /// `request_time` belong to no date and are left out of every other output.
    pub fn note(&self) -> &'static str {
        if self.check.ends_with(".null_request_time") {
            " (NULL request_time: in no other output; counted on the window's last date or the row's request_date)"
        } else {
            ""
        }
    }
}

/// Everything a run reports.
#[derive(Debug)]
pub struct RunSummary {
    /// The window recomputed.
    pub window: RunWindow,
    /// Per date and endpoint totals (from daily_spend).
    pub totals: Vec<RecordBatch>,
    /// Tables written.
    pub written: Vec<WrittenOutput>,
    /// Data-quality checks.
    pub checks: Vec<QualityCheck>,
    /// The alert records of every date written (rows of the `alerts` output).
    pub alerts: Vec<RecordBatch>,
    /// The teams the baseline rules lacked history for, per date.
    pub lacking_history: Vec<crate::alerts::LackingHistory>,
    /// Rate-limit changes proposed (one per endpoint that needs a change), each written as a
    /// patch file.
    pub patches: Vec<EndpointPatch>,
    /// The new AI Gateway's rate-limit changes (one per service that needs a change), each
    /// written as a patch file.
    pub gateway_patches: Vec<ServicePatch>,
    /// Files and bytes read per table.
    pub scanned: Vec<TableScan>,
    /// Which history days of the window came from earlier outputs.
    pub history: HistorySource,
    /// The run's id, the dates recomputed besides the window and why, and stale dates.
    pub plan: PlanReport,
}

/// Rolls the computed daily_spend rows up to one row per (usage_date, endpoint_name).
const TOTALS_SQL: &str = "\
SELECT usage_date, endpoint_name,
       SUM(requests) AS requests, SUM(succeeded) AS succeeded, SUM(rate_limited) AS rate_limited,
       SUM(failed) AS failed, SUM(input_tokens) AS input_tokens, SUM(output_tokens) AS output_tokens,
       CAST(SUM(cost_usd) AS DECIMAL(38, 6)) AS cost_usd, SUM(unpriced_requests) AS unpriced_requests
FROM daily_spend
GROUP BY usage_date, endpoint_name
ORDER BY usage_date, endpoint_name";

/// Computes the per-date, per-endpoint totals from the computed daily_spend output.
pub async fn totals(daily_spend: &ComputedOutput) -> Result<Vec<RecordBatch>> {
    let ctx = SessionContext::new();
    ctx.register_table("daily_spend", daily_spend.rows.table()?).map_err(|e| Error::query("summary", e))?;
    let frame = ctx.sql(TOTALS_SQL).await.map_err(|e| Error::query("summary", e))?;
    frame.collect().await.map_err(|e| Error::query("summary", e))
}

/// How many alert records a run wrote, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct AlertCounts {
    /// Firing, not muted, critical.
    pub critical: usize,
    /// Firing, not muted, warning.
    pub warning: usize,
    /// Firing and muted.
    pub muted: usize,
    /// Resolved records.
    pub resolved: usize,
    /// Records that send a pipeline event (`notify`: `trigger` or `resolve`).
    pub events: usize,
}

impl RunSummary {
    /// Numbers of critical and warning alerts fired (firing and not muted) on the dates written.
    pub fn alert_counts(&self) -> Result<(usize, usize)> {
        let counts = self.alert_kinds()?;
        Ok((counts.critical, counts.warning))
    }

    /// The alert records by kind.
    pub fn alert_kinds(&self) -> Result<AlertCounts> {
        let mut counts = AlertCounts::default();
        for record in crate::alerts::records(&self.alerts)? {
            match (record.status.as_str(), record.muted, record.severity.as_str()) {
                ("firing", false, "critical") => counts.critical += 1,
                ("firing", false, _) => counts.warning += 1,
                ("firing", true, _) => counts.muted += 1,
                _ => counts.resolved += 1,
            }
            counts.events += usize::from(record.notify.is_some());
        }
        Ok(counts)
    }

    /// The patch file of the serving endpoint `endpoint`, relative to the output location.
    pub fn patch_file(&self, endpoint: &str) -> String {
        format!("{PATCH_FOLDER}/{}/{}", self.window.to, patch_file_name(endpoint))
    }

    /// The new AI Gateway's patch file of `service`, relative to the output location.
    pub fn gateway_patch_file(&self, service: &str) -> String {
        format!("{AI_GATEWAY_PATCH_FOLDER}/{}/{}", self.window.to, patch_file_name(service))
    }

    /// Prints the summary to `out` in `format`.
    pub fn print(&self, format: SummaryFormat, out: &mut dyn Write) -> Result<()> {
        let io_error = |source| Error::Io { context: "writing the summary".to_string(), source };
        match format {
            SummaryFormat::None => Ok(()),
            SummaryFormat::Table => {
                let table = pretty_format_batches(&self.totals).map_err(|e| Error::query("summary", e.into()))?;
                writeln!(out, "gateway-analytics run {} (run {})", self.window, self.plan.run_id).map_err(io_error)?;
                for skip in &self.plan.skipped {
                    writeln!(out, "skipped {}: {}", skip.table, skip.reason).map_err(io_error)?;
                }
                for date in &self.plan.recomputed {
                    writeln!(out, "recomputed {}: {}", date.date, date.reasons.join("; ")).map_err(io_error)?;
                }
                for date in &self.plan.stale {
                    writeln!(
                        out,
                        "stale {} (beyond recompute_horizon_days = {}; backfill it): {}",
                        date.date,
                        self.plan.recompute_horizon_days,
                        date.reasons.join("; ")
                    )
                    .map_err(io_error)?;
                }
                writeln!(out, "{table}").map_err(io_error)?;
                for written in &self.written {
                    writeln!(out, "wrote {:<26} {:>7} rows (version {})", written.table, written.rows, written.version)
                        .map_err(io_error)?;
                }
                for check in self.checks.iter().filter(|c| c.rows > 0) {
                    writeln!(out, "check {:<34} {:>7} rows{}", check.check, check.rows, check.note())
                        .map_err(io_error)?;
                }
                if let Some(history) = Some(self.history).filter(|h| h.inputs_from > h.history_from) {
                    writeln!(
                        out,
                        "history {} to {} read from earlier outputs",
                        history.history_from,
                        history.inputs_from - chrono::Duration::days(1)
                    )
                    .map_err(io_error)?;
                }
                for scan in &self.scanned {
                    writeln!(out, "read  {:<34} {:>7} files {:>14} bytes", scan.table, scan.files, scan.bytes)
                        .map_err(io_error)?;
                }
                let counts = self.alert_kinds()?;
                writeln!(
                    out,
                    "alerts: {} critical, {} warning; {} muted, {} resolved; {} pipeline events",
                    counts.critical, counts.warning, counts.muted, counts.resolved, counts.events
                )
                .map_err(io_error)?;
                for lacking in &self.lacking_history {
                    let days = lacking.observed_days;
                    let what = match lacking.rule.as_str() {
                        "spend_spike" => format!("{days} of the previous 7 days"),
                        _ if days == 1 => "1 day of the month so far".to_string(),
                        _ => format!("{days} days of the month so far"),
                    };
                    writeln!(
                        out,
                        "lacking history {} {}: teams {} not judged, the gateway logged {what} \
                         (fewer than [alerts] min_history_days)",
                        lacking.date,
                        lacking.rule,
                        lacking.teams.join(", ")
                    )
                    .map_err(io_error)?;
                }
                for patch in &self.patches {
                    writeln!(
                        out,
                        "rate limits: {} change(s) proposed for {} ({})",
                        patch.changes.len(),
                        patch.endpoint_name,
                        self.patch_file(&patch.endpoint_name)
                    )
                    .map_err(io_error)?;
                }
                for patch in &self.gateway_patches {
                    writeln!(
                        out,
                        "rate limits (new AI Gateway): {} change(s) proposed for {} ({})",
                        patch.changes.len(),
                        patch.service,
                        self.gateway_patch_file(&patch.service)
                    )
                    .map_err(io_error)?;
                }
                Ok(())
            }
            SummaryFormat::Csv => {
                let mut writer = deltalake::arrow::csv::WriterBuilder::new().with_header(true).build(out);
                for batch in &self.totals {
                    writer.write(batch).map_err(|e| Error::query("summary", e.into()))?;
                }
                Ok(())
            }
            SummaryFormat::Json => {
                let document = serde_json::json!({
                    "window": { "from": self.window.from.to_string(), "to": self.window.to.to_string() },
                    "totals": batches_to_json(&self.totals)?,
                    "outputs": self.written,
                    "skipped": self.plan.skipped,
                    "checks": self.checks,
                    "history": self.history,
                    "run_id": self.plan.run_id,
                    "recomputed": self.plan.recomputed,
                    "stale": self.plan.stale,
                    "checked_dates": self.plan.checked_dates,
                    "scanned": self.scanned,
                    "alerts": self.alert_kinds()?,
                    "lacking_history": self.lacking_history,
                    "rate_limit_changes": self.patches.iter().map(|p| serde_json::json!({
                        "endpoint_name": p.endpoint_name,
                        "file": self.patch_file(&p.endpoint_name),
                        "changes": p.changes,
                        "warnings": p.warnings,
                    })).collect::<Vec<_>>(),
                    "ai_gateway_rate_limit_changes": self.gateway_patches.iter().map(|p| serde_json::json!({
                        "service": p.service,
                        "file": self.gateway_patch_file(&p.service),
                        "changes": p.changes,
                    })).collect::<Vec<_>>(),
                });
                serde_json::to_writer_pretty(&mut *out, &document).map_err(|e| io_error(std::io::Error::other(e)))?;
                writeln!(out).map_err(io_error)
            }
        }
    }
}

fn batches_to_json(batches: &[RecordBatch]) -> Result<serde_json::Value> {
    let mut buffer = Vec::new();
    {
        let mut writer = deltalake::arrow::json::ArrayWriter::new(&mut buffer);
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        writer.write_batches(&refs).map_err(|e| Error::query("summary", e.into()))?;
        writer.finish().map_err(|e| Error::query("summary", e.into()))?;
    }
    if buffer.is_empty() {
        return Ok(serde_json::Value::Array(Vec::new()));
    }
    serde_json::from_slice(&buffer).map_err(|e| Error::Io { context: "summary JSON".to_string(), source: e.into() })
}
