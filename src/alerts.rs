//! Alerts for pipelines: the window's alert records read from the `alerts` table, written as JSON
//! Lines or as pipeline events (`alert_events`), the `--fail-on` severity check, and the teams the
//! baseline rules lacked history for.

use std::io::Write;

use deltalake::arrow::array::{Array, AsArray, RecordBatch};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Float64Type};
use deltalake::arrow::json::LineDelimitedWriter;
use deltalake::arrow::json::writer::WriterBuilder;
use serde_json::{Map, Value};

use crate::columns;
use crate::error::{Error, Result};
use crate::window::RunWindow;

/// Alert severities, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Severity {
    /// Worth a look today.
    Warning,
    /// Act now.
    Critical,
}

impl Severity {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// What `run --alerts-jsonl PATH` writes, one JSON object a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AlertsFormat {
    /// Every alert record of the run (the `alerts` table's columns).
    #[default]
    Jsonl,
    /// The requested window's pipeline events as PagerDuty Events API v2 bodies, for
    /// `POST https://events.pagerduty.com/v2/enqueue` once the pipeline adds its `routing_key`.
    Pagerduty,
    /// The requested window's pipeline events as Opsgenie Alert API requests: `method`, `path`
    /// (create, or close by alias) and `body`, for the pipeline to send with its API key.
    Opsgenie,
}

/// The `source` of the events and the `client` of PagerDuty's.
pub const EVENT_SOURCE: &str = "gateway-analytics";

/// One alert record, as the pipeline formats read it.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRecord {
    /// `alert_id`.
    pub alert_id: String,
    /// `rule`.
    pub rule: String,
    /// `severity`.
    pub severity: String,
    /// `endpoint_name`.
    pub endpoint_name: String,
    /// `scope`.
    pub scope: String,
    /// `scope_value`.
    pub scope_value: String,
    /// `window_start`, RFC 3339 UTC.
    pub window_start: String,
    /// `window_end`, RFC 3339 UTC.
    pub window_end: String,
    /// `observed`.
    pub observed: Option<f64>,
    /// `threshold`.
    pub threshold: Option<f64>,
    /// `baseline`.
    pub baseline: Option<f64>,
    /// `requests`.
    pub requests: Option<i64>,
    /// `message`.
    pub message: String,
    /// `status`: `firing` or `resolved`.
    pub status: String,
    /// `incident_id`: the events' deduplication key.
    pub incident_id: String,
    /// `incident_start`, RFC 3339 UTC.
    pub incident_start: String,
    /// `grouped_under`.
    pub grouped_under: Option<String>,
    /// `top_requesters`.
    pub top_requesters: Option<String>,
    /// `muted`.
    pub muted: bool,
    /// `notify`: `trigger`, `resolve` or none.
    pub notify: Option<String>,
    /// `usage_date`.
    pub usage_date: Option<chrono::NaiveDate>,
}

impl AlertRecord {
    /// Whether the record counts as a fired alert: firing and not muted (`--fail-on`, counts).
    pub fn fired(&self) -> bool {
        self.status == "firing" && !self.muted
    }

    /// The affected system, as PagerDuty's `source` and Opsgenie's `entity`: the endpoint (the
    /// new gateway's service), or the team or table of the team and table rules.
    pub(crate) fn entity(&self) -> String {
        match self.scope.as_str() {
            "endpoint" | "requester" | "destination" => self.endpoint_name.clone(),
            scope => format!("{scope} {}", self.scope_value),
        }
    }

    /// A one-line title: rule, severity and what it is about.
    pub(crate) fn title(&self) -> String {
        match self.scope.as_str() {
            "requester" => format!(
                "{} {}: requester {} on endpoint {}",
                self.rule, self.severity, self.scope_value, self.endpoint_name
            ),
            "destination" => format!(
                "{} {}: destination {} of service {}",
                self.rule, self.severity, self.scope_value, self.endpoint_name
            ),
            scope => format!("{} {}: {scope} {}", self.rule, self.severity, self.scope_value),
        }
    }

    /// The record's fields as event details.
    pub(crate) fn details(&self) -> Map<String, Value> {
        let mut details = Map::new();
        let mut put = |key: &str, value: Value| {
            if !value.is_null() {
                details.insert(key.to_string(), value);
            }
        };
        put("alert_id", self.alert_id.clone().into());
        put("rule", self.rule.clone().into());
        put("severity", self.severity.clone().into());
        put("endpoint_name", self.endpoint_name.clone().into());
        put("scope", self.scope.clone().into());
        put("scope_value", self.scope_value.clone().into());
        put("window_start", self.window_start.clone().into());
        put("window_end", self.window_end.clone().into());
        put("observed", self.observed.into());
        put("threshold", self.threshold.into());
        put("baseline", self.baseline.into());
        put("requests", self.requests.into());
        put("incident_id", self.incident_id.clone().into());
        put("incident_start", self.incident_start.clone().into());
        put("top_requesters", self.top_requesters.clone().into());
        details
    }
}

/// The alert records among `alerts` (rows of the `alerts` output), in their order.
pub fn records(alerts: &[RecordBatch]) -> Result<Vec<AlertRecord>> {
    let mut records = Vec::new();
    for batch in alerts {
        let text = |name: &str| columns::strings(batch, name);
        let (alert_id, rule, severity, endpoint) =
            (text("alert_id")?, text("rule")?, text("severity")?, text("endpoint_name")?);
        let (scope, scope_value, message, status) =
            (text("scope")?, text("scope_value")?, text("message")?, text("status")?);
        let (incident_id, grouped_under, top_requesters, notify) =
            (text("incident_id")?, text("grouped_under")?, text("top_requesters")?, text("notify")?);
        let (window_start, window_end, incident_start) = (
            timestamps(batch, "window_start")?,
            timestamps(batch, "window_end")?,
            timestamps(batch, "incident_start")?,
        );
        let (observed, threshold, baseline) =
            (floats(batch, "observed")?, floats(batch, "threshold")?, floats(batch, "baseline")?);
        let requests = columns::ints(batch, "requests")?;
        let muted = bools(batch, "muted")?;
        let dates = match batch.schema().index_of("usage_date") {
            Ok(_) => columns::dates(batch, "usage_date")?,
            Err(_) => vec![None; batch.num_rows()],
        };
        let value = |column: &[Option<String>], row: usize| column[row].clone().unwrap_or_default();
        for row in 0..batch.num_rows() {
            records.push(AlertRecord {
                alert_id: value(&alert_id, row),
                rule: value(&rule, row),
                severity: value(&severity, row),
                endpoint_name: value(&endpoint, row),
                scope: value(&scope, row),
                scope_value: value(&scope_value, row),
                window_start: value(&window_start, row),
                window_end: value(&window_end, row),
                observed: observed[row],
                threshold: threshold[row],
                baseline: baseline[row],
                requests: requests[row],
                message: value(&message, row),
                status: value(&status, row),
                incident_id: value(&incident_id, row),
                incident_start: value(&incident_start, row),
                grouped_under: grouped_under[row].clone(),
                top_requesters: top_requesters[row].clone(),
                muted: muted[row].unwrap_or(false),
                notify: notify[row].clone(),
                usage_date: dates[row],
            });
        }
    }
    Ok(records)
}

fn floats(batch: &RecordBatch, name: &str) -> Result<Vec<Option<f64>>> {
    let index = batch.schema().index_of(name).map_err(|e| Error::query(name, e.into()))?;
    let column = cast(batch.column(index), &DataType::Float64).map_err(|e| Error::query(name, e.into()))?;
    let column = column.as_primitive::<Float64Type>();
    Ok((0..column.len()).map(|i| (!column.is_null(i)).then(|| column.value(i))).collect())
}

fn bools(batch: &RecordBatch, name: &str) -> Result<Vec<Option<bool>>> {
    let index = batch.schema().index_of(name).map_err(|e| Error::query(name, e.into()))?;
    let column = cast(batch.column(index), &DataType::Boolean).map_err(|e| Error::query(name, e.into()))?;
    let column = column.as_boolean();
    Ok((0..column.len()).map(|i| (!column.is_null(i)).then(|| column.value(i))).collect())
}

/// A timestamp column as RFC 3339 UTC text (`2026-11-02T10:00:00Z`).
fn timestamps(batch: &RecordBatch, name: &str) -> Result<Vec<Option<String>>> {
    let index = batch.schema().index_of(name).map_err(|e| Error::query(name, e.into()))?;
    let micros =
        cast(batch.column(index), &DataType::Timestamp(deltalake::arrow::datatypes::TimeUnit::Microsecond, None))
            .and_then(|c| cast(&c, &DataType::Int64))
            .map_err(|e| Error::query(name, e.into()))?;
    let micros = micros.as_primitive::<deltalake::arrow::datatypes::Int64Type>();
    Ok((0..micros.len())
        .map(|i| {
            (!micros.is_null(i)).then(|| {
                chrono::DateTime::from_timestamp_micros(micros.value(i))
                    .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
                    .unwrap_or_default()
            })
        })
        .collect())
}

/// The most severe alert fired among `alerts` (firing and not muted), if any.
pub fn highest_severity(alerts: &[RecordBatch]) -> Result<Option<Severity>> {
    Ok(records(alerts)?.iter().filter(|r| r.fired()).filter_map(|r| Severity::parse(&r.severity)).max())
}

/// Writes the run's alerts to `out` in `format`: every record as JSON Lines, or the pipeline
/// events of the records of `window` (the requested dates) in a vendor's shape.
pub fn write(alerts: &[RecordBatch], format: AlertsFormat, window: &RunWindow, out: &mut dyn Write) -> Result<()> {
    match format {
        AlertsFormat::Jsonl => write_jsonl(alerts, out),
        AlertsFormat::Pagerduty | AlertsFormat::Opsgenie => {
            let io = |source| Error::Io { context: "writing the alert events".into(), source };
            for event in crate::alert_events::events(&records(alerts)?, format, window) {
                serde_json::to_writer(&mut *out, &event).map_err(|e| io(e.into()))?;
                writeln!(out).map_err(io)?;
            }
            Ok(())
        }
    }
}

/// Writes one JSON object per alert, with the `alerts` table's columns (without the
/// `usage_date` partition column) and explicit nulls; timestamps are RFC 3339 in UTC.
pub fn write_jsonl(alerts: &[RecordBatch], out: &mut dyn Write) -> Result<()> {
    let json_error = |e: deltalake::arrow::error::ArrowError| Error::query("alerts JSON Lines", e.into());
    let mut writer: LineDelimitedWriter<&mut dyn Write> = WriterBuilder::new().with_explicit_nulls(true).build(out);
    for batch in alerts {
        let mut batch = batch.clone();
        if let Ok(index) = batch.schema().index_of("usage_date") {
            batch.remove_column(index);
        }
        writer.write(&batch).map_err(json_error)?;
    }
    writer.finish().map_err(json_error)
}

/// Teams a baseline rule did not judge on a date for lack of history: fewer than
/// `[alerts] min_history_days` observed days among the 7 before (`spend_spike`, teams whose
/// cost reached `min_daily_cost_usd`) or in the month so far (`budget_burn`'s projection, teams
/// with spend this month and still within budget).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LackingHistory {
    /// The window date.
    pub date: chrono::NaiveDate,
    /// `spend_spike` or `budget_burn`.
    pub rule: String,
    /// Observed days the rule had (of the previous 7, or of the month so far).
    pub observed_days: i64,
    /// The teams, sorted.
    pub teams: Vec<String>,
}

/// Lists the teams of [`LackingHistory`], from the views the alert rules read.
const LACKING_HISTORY_SQL: &str = "\
SELECT usage_date, 'spend_spike' AS rule, observed_days, team
FROM team_baselines
WHERE observed_days < ${min_history_days} AND cost_usd * 1000000 >= ${spend_spike_min_daily_cost_micros}
UNION ALL
SELECT usage_date, 'budget_burn' AS rule, observed_days, team
FROM budget_month_to_date
WHERE observed_days < ${min_history_days} AND month_to_date > 0 AND month_to_date <= monthly_budget_usd
ORDER BY usage_date, rule, team";

/// The teams the baseline rules lacked history for, on a session where a segment's views are
/// registered (see [`LackingHistory`]).
pub async fn lacking_history(
    ctx: &deltalake::datafusion::prelude::SessionContext,
    params: &crate::sql_params::SqlParams,
) -> Result<Vec<LackingHistory>> {
    let query = crate::queries::Query { name: "lacking_history", sql: LACKING_HISTORY_SQL };
    let (_, batches) = crate::queries::collect(ctx, &query, params).await?;
    let mut lacking: Vec<LackingHistory> = Vec::new();
    for batch in &batches {
        let dates = columns::dates(batch, "usage_date")?;
        let rules = columns::strings(batch, "rule")?;
        let observed = columns::ints(batch, "observed_days")?;
        let teams = columns::strings(batch, "team")?;
        for row in 0..batch.num_rows() {
            let (Some(date), Some(rule)) = (dates[row], rules[row].clone()) else { continue };
            let observed_days = observed[row].unwrap_or(0);
            let team = teams[row].clone().unwrap_or_default();
            match lacking.last_mut() {
                Some(last) if last.date == date && last.rule == rule => last.teams.push(team),
                _ => lacking.push(LackingHistory { date, rule, observed_days, teams: vec![team] }),
            }
        }
    }
    Ok(lacking)
}
