//! What the report shows, read from the output tables of the window: aggregates only (per
//! date, team, model, endpoint, hour, check), never the tables' rows, so a large window gives a
//! small page. Nothing here reads an input table, a request or a response.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use deltalake::datafusion::prelude::SessionContext;

use super::rows::{Usd, query};
use crate::config::JobConfig;
use crate::error::Result;
use crate::ledger::{Ledger, LedgerEntry};
use crate::query::{AbsentTable, register_outputs};
use crate::window::RunWindow;

/// How many teams or models the spend charts show before grouping the rest.
pub const TOP_SERIES: usize = 8;
/// How many requesters and teams the ranking tables show.
pub const TOP_RANKED: usize = 10;
/// Windows longer than this are charted per month, not per day.
pub const MAX_DAILY_BARS: i64 = 62;
/// Windows up to this many days get one heatmap row per endpoint and date.
pub const MAX_HEATMAP_DAYS: i64 = 7;
/// Heatmap and latency charts show at most this many endpoints (by requests).
pub const MAX_ENDPOINTS: usize = 25;
/// Windows up to this many days chart latency per hour; longer ones per day (worst hour).
pub const MAX_HOURLY_LATENCY_DAYS: i64 = 14;
/// The alerts table lists at most this many alerts (newest first).
pub const MAX_ALERTS: usize = 200;
/// The rate-limit section lists at most this many changes.
pub const MAX_CHANGES: usize = 100;

/// Everything the page shows.
#[derive(Debug)]
pub struct ReportData {
    /// The window.
    pub window: RunWindow,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
    /// The job's output location (without credentials).
    pub output_location: String,
    /// Output tables not found (with the reason).
    pub absent: Vec<AbsentTable>,
    /// The ledger row of each date of the window (`None`: never computed).
    pub ledger: Vec<(NaiveDate, Option<LedgerEntry>)>,
    /// Distinct `price_version`s of the window's `daily_spend` rows.
    pub price_versions: Vec<String>,
    /// Spend charts and rankings.
    pub spend: Option<Spend>,
    /// Error and 429 heatmaps.
    pub errors: Option<Heatmaps>,
    /// Latency charts.
    pub latency: Option<Latency>,
    /// The window's alerts.
    pub alerts: Option<Alerts>,
    /// Proposed rate-limit changes.
    pub limits: Option<Limits>,
    /// Trace coverage and orphans.
    pub traces: Option<Traces>,
    /// Data-quality counts.
    pub quality: Option<Quality>,
}

/// A spend chart's bucket: a date, or a month for long windows.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bucket {
    /// First date of the bucket.
    pub start: NaiveDate,
    /// Its label (`2026-11-01`, or `2026-11` for a month).
    pub label: String,
}

/// One series of a stacked chart (a team, a model, or the rest).
#[derive(Debug, Clone)]
pub struct Series {
    /// Its name.
    pub name: String,
    /// Its amount per bucket.
    pub values: Vec<Usd>,
    /// Its total over the window.
    pub total: Usd,
}

/// A stacked bar chart of cost per bucket.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The largest series by window cost, then one for the rest (if any).
    pub series: Vec<Series>,
    /// Each bucket's total (of every series).
    pub totals: Vec<Usd>,
}

/// A requester's or team's window cost, share and trend.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// The requester or team.
    pub name: String,
    /// Cost over the window.
    pub cost: Usd,
    /// Requests over the window.
    pub requests: i64,
    /// Cost per date of the window.
    pub per_date: Vec<Usd>,
}

/// Spend of the window.
#[derive(Debug)]
pub struct Spend {
    /// The chart buckets.
    pub buckets: Vec<Bucket>,
    /// The window's dates (for trends).
    pub dates: Vec<NaiveDate>,
    /// Total cost.
    pub total: Usd,
    /// Total requests.
    pub requests: i64,
    /// Requests with tokens and no price (not in the costs).
    pub unpriced_requests: i64,
    /// Whether costs were estimated (payload-only mode).
    pub estimated: bool,
    /// Distinct requesters.
    pub requesters: i64,
    /// Distinct teams.
    pub teams: i64,
    /// Cost per bucket by team.
    pub by_team: Stack,
    /// Cost per bucket by model (served entity).
    pub by_model: Stack,
    /// The requesters with the largest cost.
    pub top_requesters: Vec<Ranked>,
    /// The teams with the largest cost.
    pub top_teams: Vec<Ranked>,
}

/// One cell of a heatmap.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeatCell {
    /// Requests.
    pub requests: i64,
    /// 4xx + 429 + 5xx.
    pub errors: i64,
    /// 429s.
    pub rate_limited: i64,
}

impl HeatCell {
    fn add(&mut self, other: HeatCell) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.rate_limited += other.rate_limited;
    }
}

/// One heatmap row: an endpoint (and a date, for short windows) over the 24 UTC hours.
#[derive(Debug, Clone)]
pub struct HeatRow {
    /// The endpoint.
    pub endpoint: String,
    /// The date (`None`: the whole window, per hour of day).
    pub date: Option<NaiveDate>,
    /// Per UTC hour of day.
    pub cells: [HeatCell; 24],
    /// The row's totals.
    pub total: HeatCell,
}

/// The error heatmaps' rows.
#[derive(Debug)]
pub struct Heatmaps {
    /// One row per endpoint and date (short windows), or per endpoint.
    pub rows: Vec<HeatRow>,
    /// Endpoints left out (beyond [`MAX_ENDPOINTS`]).
    pub omitted_endpoints: usize,
}

/// One latency point: p50, p95, p99 in ms.
#[derive(Debug, Clone, Copy)]
pub struct LatencyPoint {
    /// The hour (or day) it describes.
    pub at: DateTime<Utc>,
    /// p50, p95, p99.
    pub quantiles: [Option<i64>; 3],
}

/// Latency over time of one served entity of an endpoint.
#[derive(Debug, Clone)]
pub struct LatencyChart {
    /// The endpoint.
    pub endpoint: String,
    /// The served entity.
    pub entity: String,
    /// The points, in time order.
    pub points: Vec<LatencyPoint>,
    /// The highest p50, p95, p99 of the window.
    pub peaks: [Option<i64>; 3],
}

/// Latency of the window.
#[derive(Debug)]
pub struct Latency {
    /// Whether points are days (the worst hour of each) rather than hours.
    pub daily: bool,
    /// One chart per endpoint and entity with latency samples.
    pub charts: Vec<LatencyChart>,
    /// Charts left out.
    pub omitted: usize,
}

/// One alert.
#[derive(Debug, Clone)]
pub struct Alert {
    /// The hour or day it covers.
    pub window_start: Option<DateTime<Utc>>,
    /// `critical` or `warning`.
    pub severity: String,
    /// The rule.
    pub rule: String,
    /// The endpoint (`(all)` for team rules).
    pub endpoint: String,
    /// The scope (endpoint, requester, team, table).
    pub scope: String,
    /// What it is about.
    pub scope_value: String,
    /// The message (names and numbers only).
    pub message: String,
}

/// The window's alerts.
#[derive(Debug)]
pub struct Alerts {
    /// Critical alerts.
    pub critical: i64,
    /// Warnings.
    pub warning: i64,
    /// Per rule: (rule, critical, warning).
    pub by_rule: Vec<(String, i64, i64)>,
    /// The newest alerts, newest first.
    pub rows: Vec<Alert>,
}

/// One proposed change of a rate limit, with its evidence.
#[derive(Debug, Clone)]
pub struct LimitChange {
    /// The endpoint.
    pub endpoint: String,
    /// The requester, `(endpoint)` for the endpoint limit.
    pub requester: String,
    /// `calls` or `tokens` (per minute).
    pub dimension: &'static str,
    /// `raise`, `lower` or `add`.
    pub action: String,
    /// The limit that applies now.
    pub current: Option<i64>,
    /// Where it comes from (`principal`, `default_user`, `endpoint`).
    pub current_rule: Option<String>,
    /// The proposed limit.
    pub proposed: i64,
    /// Demand percentiles p50, p95, p99 and the peak (p50 and p95 only for calls).
    pub demand: [Option<i64>; 4],
    /// Active minutes of the lookback.
    pub active_minutes: i64,
    /// Calls refused with 429 over the lookback.
    pub rate_limited: i64,
    /// Calls the current limit would refuse (calls only).
    pub refused_current: Option<i64>,
    /// Calls the proposed limit would refuse (calls only).
    pub refused_proposed: Option<i64>,
}

/// Requesters of an endpoint that have no limit at all: the patch gives the endpoint a
/// default per-user rule at the largest of their recommendations.
#[derive(Debug, Clone)]
pub struct DefaultUserLimit {
    /// The endpoint.
    pub endpoint: String,
    /// Requesters without any limit.
    pub requesters: i64,
    /// The proposed default per-user calls limit.
    pub proposed: i64,
    /// The largest peak among them.
    pub peak: i64,
}

/// The proposed rate-limit changes as of the window's last as-of date.
#[derive(Debug)]
pub struct Limits {
    /// The as-of date of the recommendations shown.
    pub as_of: Option<NaiveDate>,
    /// The changes, by endpoint and requester.
    pub changes: Vec<LimitChange>,
    /// Changes left out.
    pub omitted: usize,
    /// Default per-user rules proposed.
    pub default_user: Vec<DefaultUserLimit>,
    /// Recommendation rows in all (requesters and endpoints with traffic in the lookback).
    pub rows: i64,
}

/// Trace coverage of one endpoint over the window.
#[derive(Debug, Clone)]
pub struct TraceRow {
    /// The endpoint (`(none)` for orphans that name none).
    pub endpoint: String,
    /// Successful requests.
    pub requests: i64,
    /// Those with a trace.
    pub traced: i64,
    /// Traces that match no request.
    pub orphans: i64,
}

/// Trace coverage and cost of traced runs.
#[derive(Debug)]
pub struct Traces {
    /// Per endpoint.
    pub rows: Vec<TraceRow>,
    /// Traced agent runs (trace_spend rows), if the table is there.
    pub runs: Option<i64>,
    /// Their cost.
    pub runs_cost: Usd,
}

/// A data-quality check over the window.
#[derive(Debug, Clone)]
pub struct QualityRow {
    /// `usage` or `payload`.
    pub table: String,
    /// The check.
    pub check: String,
    /// Failing rows (summed over dates; for `null_request_time`, the last date's count).
    pub failed: i64,
    /// The table's rows (the same way).
    pub rows: i64,
    /// The worst day's share.
    pub worst_share: f64,
    /// A standing count (`null_request_time`): not summed over dates.
    pub standing: bool,
}

/// Data-quality counts.
#[derive(Debug)]
pub struct Quality {
    /// Per check, by table and check.
    pub rows: Vec<QualityRow>,
}

fn window_filter(column: &str, window: &RunWindow) -> String {
    format!("{column} BETWEEN DATE '{}' AND DATE '{}'", window.from, window.to)
}

/// Reads everything the report shows from the job's output tables.
pub async fn load(job: &JobConfig, window: RunWindow) -> Result<ReportData> {
    let ctx = crate::engine::session_within(&job.settings.engine)?;
    let (registered, absent) = register_outputs(&ctx, job).await?;
    let has = |name: &str| registered.iter().any(|t| t.name == name);
    let ledger = Ledger::read(job).await?;
    let dates: Vec<NaiveDate> = window.dates().collect();
    let ledger_days = dates.iter().map(|d| (*d, ledger.get(*d).cloned())).collect();
    let price_versions = if has("daily_spend") {
        let sql = format!(
            "SELECT DISTINCT price_version FROM daily_spend WHERE {} ORDER BY price_version",
            window_filter("usage_date", &window)
        );
        query(&ctx, "report: price versions", &sql).await?.iter().map(|r| r.str("price_version")).collect()
    } else {
        Vec::new()
    };
    Ok(ReportData {
        window,
        generated_at: Utc::now(),
        output_location: job.output.to_string(),
        absent,
        ledger: ledger_days,
        price_versions,
        spend: if has("daily_spend") { Some(spend(&ctx, &window).await?) } else { None },
        errors: if has("hourly_errors") { Some(heatmaps(&ctx, &window).await?) } else { None },
        latency: if has("hourly_errors") { Some(latency(&ctx, &window).await?) } else { None },
        alerts: if has("alerts") { Some(alerts(&ctx, &window).await?) } else { None },
        limits: if has("rate_limit_recommendations") { Some(limits(&ctx, &window).await?) } else { None },
        traces: if has("trace_coverage") { Some(traces(&ctx, &window, has("trace_spend")).await?) } else { None },
        quality: if has("data_quality") { Some(quality(&ctx, &window).await?) } else { None },
    })
}

fn buckets(window: &RunWindow) -> Vec<Bucket> {
    let monthly = window.days() > MAX_DAILY_BARS;
    let mut out: Vec<Bucket> = Vec::new();
    for date in window.dates() {
        let bucket = bucket_of(date, monthly);
        if out.last() != Some(&bucket) {
            out.push(bucket);
        }
    }
    out
}

fn bucket_of(date: NaiveDate, monthly: bool) -> Bucket {
    if monthly {
        let start = date.with_day0(0).unwrap_or(date);
        Bucket { start, label: start.format("%Y-%m").to_string() }
    } else {
        Bucket { start: date, label: date.to_string() }
    }
}

/// Groups (date, name, cost) rows into the [`TOP_SERIES`] largest series and the rest.
fn stack(rows: &[(NaiveDate, String, Usd)], buckets: &[Bucket], monthly: bool, rest: &str) -> Stack {
    let index: BTreeMap<NaiveDate, usize> = buckets.iter().enumerate().map(|(i, b)| (b.start, i)).collect();
    let mut totals_by_name: BTreeMap<&str, Usd> = BTreeMap::new();
    for (_, name, cost) in rows {
        let total = totals_by_name.entry(name.as_str()).or_default();
        *total = total.plus(*cost);
    }
    let mut ranked: Vec<(&str, Usd)> = totals_by_name.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    // Grouping a single series into "the rest" would hide a name for nothing.
    let shown = if ranked.len() <= TOP_SERIES + 1 { ranked.len() } else { TOP_SERIES };
    let mut series: Vec<Series> = ranked[..shown]
        .iter()
        .map(|(name, total)| Series { name: name.to_string(), values: vec![Usd(0); buckets.len()], total: *total })
        .collect();
    let others = ranked.len() - shown;
    if others > 0 {
        let total = ranked[shown..].iter().fold(Usd(0), |sum, (_, c)| sum.plus(*c));
        series.push(Series { name: format!("{rest} ({others})"), values: vec![Usd(0); buckets.len()], total });
    }
    let position: BTreeMap<&str, usize> =
        ranked.iter().enumerate().map(|(i, (name, _))| (*name, i.min(shown))).collect();
    let mut totals = vec![Usd(0); buckets.len()];
    for (date, name, cost) in rows {
        let Some(&b) = index.get(&bucket_of(*date, monthly).start) else { continue };
        let s = position[name.as_str()];
        series[s].values[b] = series[s].values[b].plus(*cost);
        totals[b] = totals[b].plus(*cost);
    }
    Stack { series, totals }
}

async fn spend(ctx: &SessionContext, window: &RunWindow) -> Result<Spend> {
    let filter = window_filter("usage_date", window);
    let totals = query(
        ctx,
        "report: spend totals",
        &format!(
            "SELECT SUM(cost_usd) AS cost, SUM(requests) AS requests, SUM(unpriced_requests) AS unpriced, \
             BOOL_OR(estimated) AS estimated, COUNT(DISTINCT requester) AS requesters, COUNT(DISTINCT team) AS teams \
             FROM daily_spend WHERE {filter}"
        ),
    )
    .await?;
    let first = totals.first();
    let grouped = |column: &str| {
        format!(
            "SELECT usage_date, {column} AS name, SUM(cost_usd) AS cost, SUM(requests) AS requests \
             FROM daily_spend WHERE {filter} GROUP BY usage_date, {column}"
        )
    };
    let read = |rows: &super::rows::Rows| -> Vec<(NaiveDate, String, Usd, i64)> {
        rows.iter()
            .filter_map(|r| Some((r.date("usage_date")?, r.str("name"), r.usd("cost"), r.i64("requests"))))
            .collect()
    };
    let teams = read(&query(ctx, "report: spend by team", &grouped("team")).await?);
    let models = read(&query(ctx, "report: spend by model", &grouped("entity_name")).await?);
    let bucket_list = buckets(window);
    let monthly = window.days() > MAX_DAILY_BARS;
    let costs = |rows: &[(NaiveDate, String, Usd, i64)]| -> Vec<(NaiveDate, String, Usd)> {
        rows.iter().map(|(d, n, c, _)| (*d, n.clone(), *c)).collect()
    };
    let by_team = stack(&costs(&teams), &bucket_list, monthly, "other teams");
    let by_model = stack(&costs(&models), &bucket_list, monthly, "other models");

    let dates: Vec<NaiveDate> = window.dates().collect();
    let top_requesters = query(
        ctx,
        "report: top requesters",
        &format!(
            "WITH per_day AS (SELECT requester AS name, usage_date, SUM(cost_usd) AS cost, SUM(requests) AS requests \
                              FROM daily_spend WHERE {filter} GROUP BY requester, usage_date), \
                  top AS (SELECT name, SUM(cost) AS total FROM per_day GROUP BY name \
                          ORDER BY total DESC, name LIMIT {TOP_RANKED}) \
             SELECT per_day.name, per_day.usage_date, per_day.cost, per_day.requests FROM per_day JOIN top \
             ON per_day.name = top.name"
        ),
    )
    .await?;
    let requester_rows: Vec<(NaiveDate, String, Usd, i64)> = top_requesters
        .iter()
        .filter_map(|r| Some((r.date("usage_date")?, r.str("name"), r.usd("cost"), r.i64("requests"))))
        .collect();
    Ok(Spend {
        buckets: bucket_list,
        total: first.map(|r| r.usd("cost")).unwrap_or_default(),
        requests: first.map(|r| r.i64("requests")).unwrap_or_default(),
        unpriced_requests: first.map(|r| r.i64("unpriced")).unwrap_or_default(),
        estimated: first.is_some_and(|r| r.bool("estimated")),
        requesters: first.map(|r| r.i64("requesters")).unwrap_or_default(),
        teams: first.map(|r| r.i64("teams")).unwrap_or_default(),
        by_team,
        by_model,
        top_requesters: ranked(&requester_rows, &dates),
        top_teams: ranked(&teams, &dates).into_iter().take(TOP_RANKED).collect(),
        dates,
    })
}

/// Ranks (date, name, cost, requests) rows by window cost, largest first (ties by name).
fn ranked(rows: &[(NaiveDate, String, Usd, i64)], dates: &[NaiveDate]) -> Vec<Ranked> {
    let position: BTreeMap<NaiveDate, usize> = dates.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let mut by_name: BTreeMap<&str, Ranked> = BTreeMap::new();
    for (date, name, cost, requests) in rows {
        let entry = by_name.entry(name.as_str()).or_insert_with(|| Ranked {
            name: name.clone(),
            cost: Usd(0),
            requests: 0,
            per_date: vec![Usd(0); dates.len()],
        });
        entry.cost = entry.cost.plus(*cost);
        entry.requests += requests;
        if let Some(&i) = position.get(date) {
            entry.per_date[i] = entry.per_date[i].plus(*cost);
        }
    }
    let mut out: Vec<Ranked> = by_name.into_values().collect();
    out.sort_by(|a, b| b.cost.cmp(&a.cost).then(a.name.cmp(&b.name)));
    out
}

async fn heatmaps(ctx: &SessionContext, window: &RunWindow) -> Result<Heatmaps> {
    let rows = query(
        ctx,
        "report: error heatmap",
        &format!(
            "SELECT endpoint_name, usage_date, CAST(date_part('hour', hour) AS BIGINT) AS hour_of_day, \
                    SUM(requests) AS requests, SUM(http_4xx + http_429 + http_5xx) AS errors, \
                    SUM(http_429) AS rate_limited \
             FROM hourly_errors WHERE {} GROUP BY endpoint_name, usage_date, date_part('hour', hour)",
            window_filter("usage_date", window)
        ),
    )
    .await?;
    let per_date = window.days() <= MAX_HEATMAP_DAYS;
    let mut grid: BTreeMap<(String, Option<NaiveDate>), HeatRow> = BTreeMap::new();
    let mut endpoint_requests: BTreeMap<String, i64> = BTreeMap::new();
    for row in rows.iter() {
        let endpoint = row.str("endpoint_name");
        let date = if per_date { row.date("usage_date") } else { None };
        let cell = HeatCell {
            requests: row.i64("requests"),
            errors: row.i64("errors"),
            rate_limited: row.i64("rate_limited"),
        };
        *endpoint_requests.entry(endpoint.clone()).or_default() += cell.requests;
        let entry = grid.entry((endpoint.clone(), date)).or_insert_with(|| HeatRow {
            endpoint,
            date,
            cells: [HeatCell::default(); 24],
            total: HeatCell::default(),
        });
        let hour = usize::try_from(row.i64("hour_of_day")).unwrap_or(0).min(23);
        entry.cells[hour].add(cell);
        entry.total.add(cell);
    }
    let kept = busiest(&endpoint_requests);
    // Short windows: every date of every kept endpoint, so a quiet day shows as an empty row.
    if per_date {
        for endpoint in &kept {
            for date in window.dates() {
                grid.entry((endpoint.clone(), Some(date))).or_insert_with(|| HeatRow {
                    endpoint: endpoint.clone(),
                    date: Some(date),
                    cells: [HeatCell::default(); 24],
                    total: HeatCell::default(),
                });
            }
        }
    }
    let rows = grid.into_values().filter(|row| kept.contains(&row.endpoint)).collect();
    Ok(Heatmaps { rows, omitted_endpoints: endpoint_requests.len() - kept.len() })
}

/// The [`MAX_ENDPOINTS`] endpoints with the most requests.
fn busiest(requests: &BTreeMap<String, i64>) -> BTreeSet<String> {
    let mut ranked: Vec<(&String, &i64)> = requests.iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    ranked.into_iter().take(MAX_ENDPOINTS).map(|(name, _)| name.clone()).collect()
}

async fn latency(ctx: &SessionContext, window: &RunWindow) -> Result<Latency> {
    let daily = window.days() > MAX_HOURLY_LATENCY_DAYS;
    let filter = window_filter("usage_date", window);
    let sql = if daily {
        format!(
            "SELECT endpoint_name, entity_name, CAST(usage_date AS TIMESTAMP) AS at, MAX(p50_latency_ms) AS p50, \
                    MAX(p95_latency_ms) AS p95, MAX(p99_latency_ms) AS p99 \
             FROM hourly_errors WHERE {filter} AND p50_latency_ms IS NOT NULL \
             GROUP BY endpoint_name, entity_name, usage_date ORDER BY endpoint_name, entity_name, at"
        )
    } else {
        format!(
            "SELECT endpoint_name, entity_name, hour AS at, p50_latency_ms AS p50, p95_latency_ms AS p95, \
                    p99_latency_ms AS p99 \
             FROM hourly_errors WHERE {filter} AND p50_latency_ms IS NOT NULL \
             ORDER BY endpoint_name, entity_name, at"
        )
    };
    let rows = query(ctx, "report: latency", &sql).await?;
    let mut charts: Vec<LatencyChart> = Vec::new();
    for row in rows.iter() {
        let (endpoint, entity) = (row.str("endpoint_name"), row.str("entity_name"));
        if charts.last().is_none_or(|c| c.endpoint != endpoint || c.entity != entity) {
            charts.push(LatencyChart { endpoint, entity, points: Vec::new(), peaks: [None; 3] });
        }
        let Some(at) = row.timestamp("at") else { continue };
        let quantiles = [row.opt_i64("p50"), row.opt_i64("p95"), row.opt_i64("p99")];
        if let Some(chart) = charts.last_mut() {
            for (peak, value) in chart.peaks.iter_mut().zip(quantiles) {
                *peak = (*peak).max(value);
            }
            chart.points.push(LatencyPoint { at, quantiles });
        }
    }
    let omitted = charts.len().saturating_sub(MAX_ENDPOINTS);
    charts.truncate(MAX_ENDPOINTS);
    Ok(Latency { daily, charts, omitted })
}

async fn alerts(ctx: &SessionContext, window: &RunWindow) -> Result<Alerts> {
    let filter = window_filter("usage_date", window);
    let counts = query(
        ctx,
        "report: alert counts",
        &format!(
            "SELECT rule, SUM(CASE WHEN severity = 'critical' THEN 1 ELSE 0 END) AS critical, \
                    SUM(CASE WHEN severity = 'critical' THEN 0 ELSE 1 END) AS warning \
             FROM alerts WHERE {filter} GROUP BY rule ORDER BY rule"
        ),
    )
    .await?;
    let by_rule: Vec<(String, i64, i64)> =
        counts.iter().map(|r| (r.str("rule"), r.i64("critical"), r.i64("warning"))).collect();
    let rows = query(
        ctx,
        "report: alerts",
        &format!(
            "SELECT window_start, severity, rule, endpoint_name, scope, scope_value, message FROM alerts \
             WHERE {filter} \
             ORDER BY window_start DESC, CASE WHEN severity = 'critical' THEN 0 ELSE 1 END, rule, endpoint_name, \
                      scope, scope_value LIMIT {MAX_ALERTS}"
        ),
    )
    .await?;
    Ok(Alerts {
        critical: by_rule.iter().map(|r| r.1).sum(),
        warning: by_rule.iter().map(|r| r.2).sum(),
        by_rule,
        rows: rows
            .iter()
            .map(|r| Alert {
                window_start: r.timestamp("window_start"),
                severity: r.str("severity"),
                rule: r.str("rule"),
                endpoint: r.str("endpoint_name"),
                scope: r.str("scope"),
                scope_value: r.str("scope_value"),
                message: r.str("message"),
            })
            .collect(),
    })
}

/// The rows of `rate_limit_recommendations` whose action changes a rule of the patch files,
/// by the rules of `rate_limits::build_patches` (docs/OUTPUTS.md#patch-files): the endpoint
/// row's raise/lower/add; a requester's raise or lower of its own rule; a requester's raise
/// above the default per-user rule; the same for tokens. Rows of `(unknown)` never change.
const CHANGE_FILTER: &str = "\
endpoint_name <> '(unknown)' AND requester <> '(unknown)' AND (
  (requester = '(endpoint)' AND action IN ('raise', 'lower', 'add'))
  OR (requester <> '(endpoint)' AND action IN ('raise', 'lower') AND current_calls_rule = 'principal')
  OR (requester <> '(endpoint)' AND action = 'raise' AND current_calls_rule = 'default_user')
  OR (tokens_action IN ('raise', 'lower') AND recommended_tokens_per_minute IS NOT NULL AND (
        current_tokens_rule = 'principal' OR (current_tokens_rule = 'endpoint' AND requester = '(endpoint)')
        OR (tokens_action = 'raise' AND current_tokens_rule = 'default_user' AND requester <> '(endpoint)'))))";

async fn limits(ctx: &SessionContext, window: &RunWindow) -> Result<Limits> {
    let as_of = query(
        ctx,
        "report: recommendations as of",
        &format!(
            "SELECT MAX(as_of_date) AS as_of FROM rate_limit_recommendations WHERE {}",
            window_filter("as_of_date", window)
        ),
    )
    .await?
    .first()
    .and_then(|r| r.date("as_of"));
    let Some(as_of) = as_of else {
        return Ok(Limits { as_of: None, changes: Vec::new(), omitted: 0, default_user: Vec::new(), rows: 0 });
    };
    let on = format!("as_of_date = DATE '{as_of}'");
    let rows = query(
        ctx,
        "report: recommendation rows",
        &format!("SELECT COUNT(*) AS n FROM rate_limit_recommendations WHERE {on}"),
    )
    .await?
    .first()
    .map(|r| r.i64("n"))
    .unwrap_or_default();
    let evidence = query(
        ctx,
        "report: rate-limit changes",
        &format!(
            "SELECT * FROM rate_limit_recommendations WHERE {on} AND {CHANGE_FILTER} \
             ORDER BY endpoint_name, CASE WHEN requester = '(endpoint)' THEN 0 ELSE 1 END, requester"
        ),
    )
    .await?;
    let calls_change = |action: &str, requester: &str, rule: Option<&str>| match action {
        "raise" => requester == "(endpoint)" || matches!(rule, Some("principal" | "default_user")),
        "lower" => requester == "(endpoint)" || rule == Some("principal"),
        "add" => requester == "(endpoint)",
        _ => false,
    };
    let tokens_change = |action: Option<&str>, requester: &str, rule: Option<&str>| match (action, rule) {
        (Some("raise" | "lower"), Some("principal")) => true,
        (Some("raise" | "lower"), Some("endpoint")) => requester == "(endpoint)",
        (Some("raise"), Some("default_user")) => requester != "(endpoint)",
        _ => false,
    };
    let mut changes = Vec::new();
    for row in evidence.iter() {
        let (endpoint, requester) = (row.str("endpoint_name"), row.str("requester"));
        let action = row.str("action");
        let rule = row.opt_str("current_calls_rule");
        if calls_change(&action, &requester, rule.as_deref()) {
            changes.push(LimitChange {
                endpoint: endpoint.clone(),
                requester: requester.clone(),
                dimension: "calls",
                action: action.clone(),
                current: row.opt_i64("current_calls_per_minute"),
                current_rule: rule,
                proposed: row.i64("recommended_calls_per_minute"),
                demand: [
                    row.opt_i64("p50_calls_per_minute"),
                    row.opt_i64("p95_calls_per_minute"),
                    row.opt_i64("p99_calls_per_minute"),
                    row.opt_i64("peak_calls_per_minute"),
                ],
                active_minutes: row.i64("active_minutes"),
                rate_limited: row.i64("rate_limited"),
                refused_current: Some(row.i64("throttled_under_current")),
                refused_proposed: Some(row.i64("throttled_under_recommended")),
            });
        }
        let tokens_action = row.opt_str("tokens_action");
        let tokens_rule = row.opt_str("current_tokens_rule");
        if let Some(proposed) = row.opt_i64("recommended_tokens_per_minute")
            && tokens_change(tokens_action.as_deref(), &requester, tokens_rule.as_deref())
        {
            changes.push(LimitChange {
                endpoint,
                requester,
                dimension: "tokens",
                action: tokens_action.unwrap_or_default(),
                current: row.opt_i64("current_tokens_per_minute"),
                current_rule: tokens_rule,
                proposed,
                demand: [None, None, row.opt_i64("p99_tokens_per_minute"), row.opt_i64("peak_tokens_per_minute")],
                active_minutes: row.i64("active_minutes"),
                rate_limited: row.i64("rate_limited"),
                refused_current: None,
                refused_proposed: None,
            });
        }
    }
    let omitted = changes.len().saturating_sub(MAX_CHANGES);
    changes.truncate(MAX_CHANGES);
    let default_user = query(
        ctx,
        "report: default per-user limits",
        &format!(
            "SELECT endpoint_name, COUNT(*) AS requesters, MAX(recommended_calls_per_minute) AS proposed, \
                    MAX(peak_calls_per_minute) AS peak \
             FROM rate_limit_recommendations \
             WHERE {on} AND action = 'add' AND current_calls_rule IS NULL AND requester <> '(endpoint)' \
               AND endpoint_name <> '(unknown)' \
             GROUP BY endpoint_name ORDER BY endpoint_name"
        ),
    )
    .await?
    .iter()
    .map(|r| DefaultUserLimit {
        endpoint: r.str("endpoint_name"),
        requesters: r.i64("requesters"),
        proposed: r.i64("proposed"),
        peak: r.i64("peak"),
    })
    .collect();
    Ok(Limits { as_of: Some(as_of), changes, omitted, default_user, rows })
}

async fn traces(ctx: &SessionContext, window: &RunWindow, with_spend: bool) -> Result<Traces> {
    let filter = window_filter("usage_date", window);
    let rows = query(
        ctx,
        "report: trace coverage",
        &format!(
            "SELECT endpoint_name, SUM(requests) AS requests, SUM(traced) AS traced, SUM(orphan_traces) AS orphans \
             FROM trace_coverage WHERE {filter} GROUP BY endpoint_name ORDER BY endpoint_name"
        ),
    )
    .await?
    .iter()
    .map(|r| TraceRow {
        endpoint: r.str("endpoint_name"),
        requests: r.i64("requests"),
        traced: r.i64("traced"),
        orphans: r.i64("orphans"),
    })
    .collect();
    let (runs, runs_cost) = if with_spend {
        let spend = query(
            ctx,
            "report: trace spend",
            &format!("SELECT COUNT(*) AS runs, SUM(cost_usd) AS cost FROM trace_spend WHERE {filter}"),
        )
        .await?;
        let first = spend.first();
        (first.map(|r| r.i64("runs")), first.map(|r| r.usd("cost")).unwrap_or_default())
    } else {
        (None, Usd(0))
    };
    Ok(Traces { rows, runs, runs_cost })
}

async fn quality(ctx: &SessionContext, window: &RunWindow) -> Result<Quality> {
    let rows = query(
        ctx,
        "report: data quality",
        &format!(
            "SELECT table_name, check_name, usage_date, failed_rows, table_rows, share FROM data_quality \
             WHERE {} ORDER BY table_name, check_name, usage_date",
            window_filter("usage_date", window)
        ),
    )
    .await?;
    let mut checks: Vec<QualityRow> = Vec::new();
    for row in rows.iter() {
        let (table, check) = (row.str("table_name"), row.str("check_name"));
        if checks.last().is_none_or(|c| c.table != table || c.check != check) {
            let standing = check == "null_request_time";
            checks.push(QualityRow { table, check, failed: 0, rows: 0, worst_share: 0.0, standing });
        }
        if let Some(last) = checks.last_mut() {
            let (failed, rows) = (row.i64("failed_rows"), row.i64("table_rows"));
            if last.standing {
                // A standing count: each date counts the undated rows the table holds then.
                (last.failed, last.rows) = (failed, rows);
            } else {
                last.failed += failed;
                last.rows += rows;
            }
            last.worst_share = last.worst_share.max(row.opt_f64("share").unwrap_or(0.0));
        }
    }
    Ok(Quality { rows: checks })
}
