//! The report page: one HTML document with its styles inline and its charts as inline SVG,
//! no script and no external resource, so it opens from disk without a network, prints, and
//! reads without colour.

use std::fmt::Write;

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};

use super::data::{
    Alerts, Heatmaps, Latency, LimitChange, Limits, MAX_ALERTS, Quality, Ranked, ReportData, Spend, Traces,
};
use super::rows::{Usd, count};
use super::svg::{self, HeatMetric, esc};
use crate::ledger::{DateStatus, LedgerEntry};

const STYLE: &str = r#"
:root { --ink: #1b1b1b; --muted: #5a5a5a; --rule: #d4d4d4; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1200px; margin: 0 auto; padding: 18px 28px 48px; }
h1 { font-size: 24px; margin: 0 0 4px; }
h2 { font-size: 19px; margin: 0 0 8px; padding-bottom: 4px; border-bottom: 2px solid var(--ink); }
h3 { font-size: 15px; margin: 16px 0 6px; }
p { margin: 6px 0; }
.muted, .note { color: var(--muted); }
.note { font-size: 12.5px; }
code { font: 12.5px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: #f3f3f3; padding: 0 3px; }
nav.toc { margin: 10px 0 6px; font-size: 13px; }
nav.toc a { margin-right: 14px; color: #0b57a4; }
section { margin-top: 30px; }
.figures { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.figure { border: 1px solid var(--rule); padding: 8px 12px; min-width: 150px; }
.figure .value { font-size: 20px; font-weight: 700; font-variant-numeric: tabular-nums; }
.figure .label { font-size: 12px; color: var(--muted); }
.banner { border: 2px solid #000; background: #fff4c2; padding: 8px 12px; margin: 12px 0; }
.banner strong { font-size: 15px; }
figure.chart { margin: 10px 0 22px; break-inside: avoid; page-break-inside: avoid; }
figcaption { font-weight: 600; margin: 0 0 6px; }
.chart-svg { width: 100%; height: auto; display: block; }
.chart-svg text { font-size: 11px; fill: #222; }
.chart-svg .axis { fill: #444; font-size: 10.5px; }
.chart-svg .row-label { font-size: 10.5px; }
.chart-svg .grid { stroke: #e4e4e4; stroke-width: 1; }
.chart-svg .baseline { stroke: #333; stroke-width: 1; }
.chart-svg .separator { stroke: #777; stroke-width: 1; }
.chart-svg .total, .total { font-weight: 650; }
.heatmap .heat { stroke: #fff; stroke-width: 0.5; }
.heatmap .cell { font-size: 9.5px; fill: #111; }
.heatmap .cell.light { fill: #fff; }
.heatmap .cell.zero { fill: #9a9a9a; }
.legend { list-style: none; padding: 0; margin: 6px 0 0; display: flex; flex-wrap: wrap; gap: 4px 18px; font-size: 12.5px; }
.legend li { display: flex; align-items: center; gap: 6px; }
.legend-line { font-size: 12.5px; color: var(--muted); margin: 4px 0; }
.bullet-legend { display: flex; flex-wrap: wrap; gap: 4px 16px; align-items: center; }
.bullet-legend .key { display: inline-flex; align-items: center; gap: 5px; }
.ramp { display: flex; font-size: 11px; margin: 2px 0 0; }
.ramp span { padding: 1px 8px; border: 1px solid #fff; }
.swatch { flex: none; }
table.data { border-collapse: collapse; width: 100%; font-size: 13px; font-variant-numeric: tabular-nums; margin: 6px 0 10px; }
table.data th { text-align: left; font-weight: 600; border-bottom: 1.5px solid var(--ink); padding: 4px 8px; vertical-align: bottom; }
table.data td { border-bottom: 1px solid #e2e2e2; padding: 4px 8px; vertical-align: top; }
table.data tfoot td { border-top: 1.5px solid var(--ink); font-weight: 650; }
table.data tfoot td.plain { font-weight: normal; }
table.data .num { text-align: right; white-space: nowrap; }
table.data tr.zero td { color: #8a8a8a; }
table.data tr.unfinished td { background: #fff4c2; }
.small-multiples { display: grid; grid-template-columns: repeat(auto-fill, minmax(470px, 1fr)); gap: 6px 18px; }
.small-multiples figure.chart { margin: 4px 0 10px; }
.badge { display: inline-block; padding: 0 6px; border: 1.5px solid #000; font-size: 12px; white-space: nowrap; }
.badge.critical { background: #000; color: #fff; font-weight: 700; }
.badge.warning { background: #fff; color: #000; }
.status { white-space: nowrap; font-weight: 600; }
.meter { width: 160px; height: 12px; vertical-align: middle; margin-right: 6px; }
.spark { width: 120px; height: 22px; vertical-align: middle; }
.bullet { width: 100%; max-width: 900px; height: auto; display: block; }
tr.change td { border-bottom: none; padding-bottom: 0; }
tr.evidence td { padding-top: 0; }
.id { font-size: 12px; white-space: nowrap; }
.nowrap { white-space: nowrap; }
td.about { min-width: 17em; }
td.about .id { white-space: normal; overflow-wrap: anywhere; }
.wrap { overflow-wrap: anywhere; }
footer { margin-top: 36px; border-top: 1px solid var(--rule); padding-top: 8px; font-size: 12px; color: var(--muted); }
@page { size: A4 landscape; margin: 12mm; }
@media print {
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  body { font-size: 11.5px; }
  section { break-before: page; margin-top: 0; }
  section#spend { break-before: auto; }
  tr, .figure { break-inside: avoid; }
  a { color: inherit; text-decoration: none; }
}
@media (max-width: 720px) { main { padding: 12px; } .small-multiples { grid-template-columns: 1fr; } }
"#;

/// The sections of the page, in order: (id, title).
pub const SECTIONS: [(&str, &str); 9] = [
    ("spend", "Spend"),
    ("top", "Top requesters and teams"),
    ("errors", "Errors and rate limiting"),
    ("latency", "Latency"),
    ("alerts", "Alerts"),
    ("rate-limits", "Rate-limit changes"),
    ("traces", "Trace coverage"),
    ("data-quality", "Data quality"),
    ("provenance", "Window and provenance"),
];

fn percent(part: f64, whole: f64) -> String {
    if whole > 0.0 { format!("{:.1}%", part * 100.0 / whole) } else { "–".into() }
}

fn status_label(entry: Option<&LedgerEntry>) -> (&'static str, &'static str) {
    match entry.map(|e| e.status) {
        Some(DateStatus::Finished) => ("✓ finished", "finished"),
        Some(DateStatus::Started) => ("⚠ started (unfinished)", "unfinished"),
        Some(DateStatus::Partial) => ("◐ partial (run --only)", "unfinished"),
        None => ("✗ never computed", "unfinished"),
    }
}

/// Renders the page.
pub fn render(data: &ReportData) -> String {
    let mut page = String::with_capacity(256 * 1024);
    let window = &data.window;
    let days = window.days();
    let title = format!("AI Gateway report {} to {}", window.from, window.to);
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>\
         <meta name='viewport' content='width=device-width, initial-scale=1'>\
         <meta name='generator' content='gateway-analytics {}'>\
         <title>{}</title><style>{STYLE}</style></head><body>{}<main>",
        env!("CARGO_PKG_VERSION"),
        esc(&title),
        svg::pattern_defs()
    );
    let _ = write!(
        page,
        "<header><h1>{}</h1><p class='muted'>{} UTC {} ({} to {} inclusive), from the output tables at <code>{}</code>.</p>",
        esc(&title),
        days,
        if days == 1 { "day" } else { "days" },
        window.from,
        window.to,
        esc(&data.output_location)
    );
    key_figures(&mut page, data);
    unfinished_banner(&mut page, data);
    page.push_str("<nav class='toc' aria-label='sections'>");
    for (id, name) in SECTIONS {
        let _ = write!(page, "<a href='#{id}'>{name}</a>");
    }
    page.push_str("</nav></header>");

    let absent = |table: &str| {
        data.absent.iter().find(|a| a.name == table).map(|a| a.why.clone()).unwrap_or_else(|| "absent".into())
    };
    let flagged: Vec<bool> =
        data.ledger.iter().map(|(_, entry)| entry.as_ref().is_none_or(|e| e.status != DateStatus::Finished)).collect();

    section(&mut page, "spend", |out| match &data.spend {
        Some(spend) => spend_section(out, spend, &flagged, days),
        None => missing(out, "daily_spend", &absent("daily_spend")),
    });
    section(&mut page, "top", |out| match &data.spend {
        Some(spend) => top_section(out, spend),
        None => missing(out, "daily_spend", &absent("daily_spend")),
    });
    section(&mut page, "errors", |out| match &data.errors {
        Some(errors) => errors_section(out, errors),
        None => missing(out, "hourly_errors", &absent("hourly_errors")),
    });
    section(&mut page, "latency", |out| match &data.latency {
        Some(latency) => latency_section(out, latency, data),
        None => missing(out, "hourly_errors", &absent("hourly_errors")),
    });
    section(&mut page, "alerts", |out| match &data.alerts {
        Some(alerts) => alerts_section(out, alerts),
        None => missing(out, "alerts", &absent("alerts")),
    });
    section(&mut page, "rate-limits", |out| match &data.limits {
        Some(limits) => limits_section(out, limits),
        None => missing(out, "rate_limit_recommendations", &absent("rate_limit_recommendations")),
    });
    section(&mut page, "traces", |out| match &data.traces {
        Some(traces) => traces_section(out, traces),
        None => missing(out, "trace_coverage", &absent("trace_coverage")),
    });
    section(&mut page, "data-quality", |out| match &data.quality {
        Some(quality) => quality_section(out, quality),
        None => missing(out, "data_quality", &absent("data_quality")),
    });
    section(&mut page, "provenance", |out| provenance_section(out, data));
    let _ = writeln!(
        page,
        "<footer>Made by gateway-analytics {} at {} UTC. The page carries aggregates of the output tables \
         (docs/OUTPUTS.md defines every column), never their rows, and no request or response text.</footer>\
         </main></body></html>",
        env!("CARGO_PKG_VERSION"),
        data.generated_at.format("%Y-%m-%d %H:%M:%S")
    );
    page
}

fn section(page: &mut String, id: &str, body: impl FnOnce(&mut String)) {
    let name = SECTIONS.iter().find(|(i, _)| *i == id).map_or(id, |(_, n)| n);
    let _ = write!(page, "<section id='{id}' data-section='{id}'><h2>{name}</h2>");
    body(page);
    page.push_str("</section>");
}

fn missing(out: &mut String, table: &str, why: &str) {
    let _ =
        write!(out, "<p class='note'>Not shown: the output table <code>{table}</code> is absent ({}).</p>", esc(why));
}

fn key_figures(page: &mut String, data: &ReportData) {
    page.push_str("<div class='figures' data-chart='key-figures'>");
    let mut figure = |label: &str, key: &str, value: String, shown: String| {
        let _ = write!(
            page,
            "<div class='figure'><div class='value total' data-key='{key}' data-value='{value}'>{shown}</div>\
             <div class='label'>{label}</div></div>"
        );
    };
    if let Some(spend) = &data.spend {
        figure("cost (daily_spend)", "cost", spend.total.exact(), spend.total.dollars());
        figure("requests", "requests", spend.requests.to_string(), count(spend.requests));
    }
    if let Some(alerts) = &data.alerts {
        figure("critical alerts", "critical", alerts.critical.to_string(), count(alerts.critical));
        figure("warnings", "warning", alerts.warning.to_string(), count(alerts.warning));
    }
    if let Some(limits) = &data.limits {
        let changes = limits.changes.len() + limits.omitted + limits.default_user.len();
        figure("proposed rate-limit changes", "changes", changes.to_string(), count(changes as i64));
    }
    page.push_str("</div>");
}

/// Consecutive dates whose ledger rows say the same thing (all but the date, `checked_at` and
/// `recommendations_as_of`), as one range each: a long window lists its runs, not its dates.
fn ledger_ranges(ledger: &[(NaiveDate, Option<LedgerEntry>)]) -> Vec<(NaiveDate, NaiveDate, Option<&LedgerEntry>)> {
    let same = |a: Option<&LedgerEntry>, b: Option<&LedgerEntry>| match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            (a.status, &a.run_id, &a.outputs, &a.reason, &a.provenance, &a.versions, a.computed_at)
                == (b.status, &b.run_id, &b.outputs, &b.reason, &b.provenance, &b.versions, b.computed_at)
        }
        _ => false,
    };
    let mut ranges: Vec<(NaiveDate, NaiveDate, Option<&LedgerEntry>)> = Vec::new();
    for (date, entry) in ledger {
        match ranges.last_mut() {
            Some(last) if same(last.2, entry.as_ref()) && last.1.succ_opt() == Some(*date) => last.1 = *date,
            _ => ranges.push((*date, *date, entry.as_ref())),
        }
    }
    ranges
}

fn date_range(from: NaiveDate, to: NaiveDate) -> String {
    if from == to { from.to_string() } else { format!("{from} to {to}") }
}

fn unfinished_banner(page: &mut String, data: &ReportData) {
    let mut dates = 0;
    let not_finished: Vec<String> = ledger_ranges(&data.ledger)
        .into_iter()
        .filter(|(_, _, entry)| entry.is_none_or(|e| e.status != DateStatus::Finished))
        .map(|(from, to, entry)| {
            dates += (to - from).num_days() + 1;
            let (is, was) = if from == to { ("is", "was") } else { ("are", "were") };
            match entry {
                Some(e) => {
                    format!("{} {is} <b>{}</b> (run {})", date_range(from, to), e.status.as_str(), esc(&e.run_id))
                }
                None => format!("{} {was} <b>never computed</b>", date_range(from, to)),
            }
        })
        .collect();
    if not_finished.is_empty() {
        return;
    }
    let _ = write!(
        page,
        "<div class='banner' role='alert' data-unfinished='{dates}'><strong>⚠ Not every date of the window is from one \
         finished run.</strong> {}. Their outputs may be half-written or from different runs, and the numbers \
         below include them as they are (charts mark them ⚠). A full run of the window \
         (<code>gateway-analytics run --from {} --to {}</code>) recomputes them.</div>",
        not_finished.join("; "),
        data.window.from,
        data.window.to
    );
}

fn legend(out: &mut String, chart: &str, stack: &super::data::Stack) {
    let _ = write!(out, "<ul class='legend' data-legend='{chart}'>");
    for (i, series) in stack.series.iter().enumerate() {
        let is_rest = i + 1 == stack.series.len() && series.name.ends_with(')') && series.name.contains(" (");
        let _ = write!(
            out,
            "<li>{} <span>{}</span> <span class='total' data-key='series:{}' data-value='{}'>{}</span></li>",
            svg::swatch(&svg::series_fill(i, is_rest)),
            esc(&series.name),
            esc(&series.name),
            series.total.exact(),
            series.total.dollars()
        );
    }
    out.push_str("</ul>");
}

fn spend_section(out: &mut String, spend: &Spend, flagged: &[bool], days: i64) {
    let _ = write!(
        out,
        "<p>{} over {} requests from {} requesters in {} teams{}. Costs are exact sums of <code>daily_spend.cost_usd</code>, \
         rounded to cents here.</p>",
        spend.total.dollars(),
        count(spend.requests),
        count(spend.requesters),
        count(spend.teams),
        if spend.estimated { " (estimated from the sampled payload table: payload-only mode)" } else { "" }
    );
    if spend.unpriced_requests > 0 {
        let _ = write!(
            out,
            "<p class='note'>{} requests had tokens but no price and add nothing to these costs \
             (<code>unpriced_requests</code>; add their models to the price file).</p>",
            count(spend.unpriced_requests)
        );
    }
    let per = if spend.buckets.len() as i64 == days { "day" } else { "month" };
    let flags: Vec<bool> = if per == "day" { flagged.to_vec() } else { Vec::new() };
    for (chart, what, stack) in
        [("spend-by-team", "team", &spend.by_team), ("spend-by-model", "model (served entity)", &spend.by_model)]
    {
        let caption = format!("Cost per {per} by {what}; the label on each bar is its total");
        let _ = write!(out, "<figure class='chart' data-chart='{chart}'><figcaption>{}</figcaption>", esc(&caption));
        out.push_str(&svg::stacked_bars(&caption, stack, &spend.buckets, &flags));
        legend(out, chart, stack);
        out.push_str("</figure>");
    }
}

fn trend(values: &[Usd]) -> String {
    let (Some(first), Some(last)) = (values.first(), values.last()) else { return String::new() };
    if values.len() < 2 {
        return String::new();
    }
    let (first, last) = (first.as_f64(), last.as_f64());
    if first <= 0.0 {
        return if last > 0.0 { "new since the first day".into() } else { String::new() };
    }
    let change = (last - first) / first * 100.0;
    let arrow = if change > 0.5 {
        "▲"
    } else if change < -0.5 {
        "▼"
    } else {
        "="
    };
    format!("{arrow} {:+.0}% last vs. first day", change)
}

fn ranking(out: &mut String, chart: &str, who: &str, ranked: &[Ranked], total: Usd, of: i64) {
    let _ = write!(
        out,
        "<figure class='chart' data-chart='{chart}'><figcaption>The {} {who}s with the largest cost (of {})</figcaption>\
         <table class='data'><thead><tr><th>#</th><th>{who}</th><th class='num'>cost</th><th class='num'>share of the window's cost</th>\
         <th class='num'>requests</th><th>cost per day</th><th>trend</th></tr></thead><tbody>",
        ranked.len(),
        count(of)
    );
    for (i, row) in ranked.iter().enumerate() {
        let share = if total.0 > 0 { row.cost.as_f64() / total.as_f64() } else { 0.0 };
        let _ = write!(
            out,
            "<tr><td class='num'>{}</td><td class='wrap'>{}</td>\
             <td class='num total' data-key='{}' data-value='{}'>{}</td>\
             <td class='num'>{}{:.1}%</td><td class='num'>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            esc(&row.name),
            esc(&row.name),
            row.cost.exact(),
            row.cost.dollars(),
            svg::meter(share, "#0072B2"),
            share * 100.0,
            count(row.requests),
            svg::sparkline(&row.per_date),
            trend(&row.per_date)
        );
    }
    out.push_str("</tbody></table></figure>");
}

fn top_section(out: &mut String, spend: &Spend) {
    out.push_str(
        "<p class='note'>Share: of the window's total cost. Cost per day: one bar per date of the window. \
         Trend: the last day's cost against the first day's.</p>",
    );
    ranking(out, "top-requesters", "requester", &spend.top_requesters, spend.total, spend.requesters);
    ranking(out, "top-teams", "team", &spend.top_teams, spend.total, spend.teams);
}

fn errors_section(out: &mut String, errors: &Heatmaps) {
    let per_date = errors.rows.iter().any(|r| r.date.is_some());
    let rows = if per_date {
        "one row per endpoint and date"
    } else {
        "one row per endpoint, each hour of day summed over the window's dates"
    };
    for (metric, caption) in [
        (HeatMetric::ErrorRate, "Error rate (HTTP 4xx, 429 and 5xx) per endpoint and UTC hour"),
        (HeatMetric::RateLimited, "Rate-limited share (HTTP 429) per endpoint and UTC hour"),
    ] {
        let _ = write!(
            out,
            "<figure class='chart' data-chart='{}'><figcaption>{caption}: {rows}</figcaption>",
            metric.id()
        );
        out.push_str(&svg::heatmap(caption, &errors.rows, metric));
        out.push_str("</figure>");
    }
    if errors.omitted_endpoints > 0 {
        let _ = write!(
            out,
            "<p class='note'>{} endpoints with fewer requests are not shown.</p>",
            errors.omitted_endpoints
        );
    }
    out.push_str(
        "<p class='note'>From <code>hourly_errors</code> (the usage table: every request, not a sample). \
         The alerts below name the hours that crossed a threshold.</p>",
    );
}

fn latency_section(out: &mut String, latency: &Latency, data: &ReportData) {
    let window = &data.window;
    let from = DateTime::<Utc>::from_naive_utc_and_offset(window.from.and_time(NaiveTime::MIN), Utc);
    let to = DateTime::<Utc>::from_naive_utc_and_offset(window.end_exclusive().and_time(NaiveTime::MIN), Utc);
    let step = if latency.daily { Duration::days(1) } else { Duration::hours(1) };
    let _ = write!(
        out,
        "<p>p50, p95 and p99 of model execution time of successful requests, sampling-weighted, {} \
         (<code>hourly_errors</code>, from the payload table). Lines break where there was no sample. Each chart's \
         legend gives the highest value of each line.</p>",
        if latency.daily { "per day (each day's slowest hour)" } else { "per UTC hour" }
    );
    if latency.charts.is_empty() {
        out.push_str("<p class='note'>No latency samples in the window (no payload table, or no successful logged requests).</p>");
        return;
    }
    out.push_str("<div class='small-multiples'>");
    for chart in &latency.charts {
        let _ = write!(
            out,
            "<figure class='chart' data-chart='latency'><figcaption>{} <span class='muted'>· {}</span></figcaption>{}</figure>",
            esc(&chart.endpoint),
            esc(&chart.entity),
            svg::latency_chart(chart, from, to, step)
        );
    }
    out.push_str("</div>");
    if latency.omitted > 0 {
        let _ = write!(out, "<p class='note'>{} more endpoints are not shown.</p>", latency.omitted);
    }
}

fn alerts_section(out: &mut String, alerts: &Alerts) {
    if alerts.by_rule.is_empty() {
        out.push_str("<p>No alert fired in the window.</p>");
        return;
    }
    out.push_str(
        "<figure class='chart' data-chart='alert-counts'><figcaption>Alerts per rule</figcaption><table class='data'>\
         <thead><tr><th>rule</th><th class='num'>▲ critical</th><th class='num'>△ warning</th></tr></thead><tbody>",
    );
    for (rule, critical, warning) in &alerts.by_rule {
        let _ = write!(
            out,
            "<tr><td>{}</td><td class='num total' data-key='{}|critical' data-value='{critical}'>{}</td>\
             <td class='num total' data-key='{}|warning' data-value='{warning}'>{}</td></tr>",
            esc(rule),
            esc(rule),
            count(*critical),
            esc(rule),
            count(*warning)
        );
    }
    let _ = write!(
        out,
        "</tbody><tfoot><tr><td>all rules</td><td class='num'>{}</td><td class='num'>{}</td></tr></tfoot></table></figure>",
        count(alerts.critical),
        count(alerts.warning)
    );
    let total = alerts.critical + alerts.warning;
    let _ = write!(
        out,
        "<h3>The alerts, newest first{}</h3><table class='data' data-chart='alerts'><thead><tr><th>hour or day (UTC)</th>\
         <th>severity</th><th>rule</th><th>endpoint</th><th>about</th><th>message</th></tr></thead><tbody>",
        if total as usize > alerts.rows.len() {
            format!(" (the newest {MAX_ALERTS} of {})", count(total))
        } else {
            String::new()
        }
    );
    for alert in &alerts.rows {
        let badge = if alert.severity == "critical" { "▲ critical" } else { "△ warning" };
        let _ = write!(
            out,
            "<tr><td class='num'>{}</td><td><span class='badge {}'>{badge}</span></td><td>{}</td>\
             <td class='nowrap'>{}</td><td class='about'><span class='muted'>{}</span><br><span class='id'>{}</span></td>\
             <td>{}</td></tr>",
            alert.window_start.map(|t| t.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default(),
            esc(&alert.severity),
            esc(&alert.rule),
            esc(&alert.endpoint),
            esc(&alert.scope),
            esc(&alert.scope_value),
            esc(&alert.message)
        );
    }
    out.push_str("</tbody></table>");
}

fn optional(value: Option<i64>) -> String {
    value.map(count).unwrap_or_else(|| "–".into())
}

fn change_row(out: &mut String, change: &LimitChange) {
    let who = if change.requester == "(endpoint)" { "endpoint limit".to_string() } else { change.requester.clone() };
    let key = format!("{}|{}|{}", change.endpoint, change.requester, change.dimension);
    let current = match (&change.current, &change.current_rule) {
        (Some(limit), Some(rule)) => format!("{}<br><span class='muted'>{}</span>", count(*limit), esc(rule)),
        (Some(limit), None) => count(*limit),
        (None, _) => "none".into(),
    };
    let refused = match (change.refused_current, change.refused_proposed) {
        (Some(current), Some(proposed)) => format!(
            "<span class='total' data-key='{}|refused' data-value='{current}|{proposed}'>{} → {}</span>",
            esc(&key),
            count(current),
            count(proposed)
        ),
        _ => "–".into(),
    };
    let [p50, p95, p99, peak] = change.demand;
    let who = if change.requester == "(endpoint)" { who } else { format!("<span class='id'>{}</span>", esc(&who)) };
    let _ = write!(
        out,
        "<tr class='change'><td class='nowrap'>{}</td><td>{who}</td><td class='nowrap'><b>{}</b> {}/min</td>\
         <td class='num'>{}</td><td class='num'>{}</td><td class='num'>{}</td><td class='num'>{}</td>\
         <td class='num'>{current}</td>\
         <td class='num total' data-key='{}' data-value='{}'>{}</td><td class='num'>{refused}</td>\
         <td class='num'>{}</td></tr><tr class='evidence'><td></td><td colspan='10'>{}</td></tr>",
        esc(&change.endpoint),
        esc(&change.action),
        change.dimension,
        optional(p50),
        optional(p95),
        optional(p99),
        optional(peak),
        esc(&key),
        change.proposed,
        count(change.proposed),
        count(change.rate_limited),
        svg::bullet(change)
    );
}

fn limits_section(out: &mut String, limits: &Limits) {
    let Some(as_of) = limits.as_of else {
        out.push_str("<p>No rate-limit recommendations as of a date of the window.</p>");
        return;
    };
    let _ = write!(
        out,
        "<p>As of {as_of} (<code>rate_limit_recommendations</code>, {} rows: every endpoint and requester with traffic \
         in the lookback). Demand is calls (or tokens) per minute over the minutes with traffic; \
         <i>would refuse</i> counts the calls over the lookback that the current limit, then the proposed one, \
         would have refused. These are the changes of the patch files <code>run</code> wrote \
         (<code>recommendations/{as_of}/</code>; <code>gateway-analytics recommend</code> prints them).</p>",
        count(limits.rows)
    );
    if limits.changes.is_empty() && limits.default_user.is_empty() {
        out.push_str("<p>No limit needs a change.</p>");
        return;
    }
    if !limits.changes.is_empty() {
        out.push_str(
            "<figure class='chart' data-chart='rate-limit-changes'><figcaption>Proposed changes with their evidence</figcaption>",
        );
        out.push_str(&svg::bullet_legend());
        out.push_str(
            "<table class='data'><thead><tr><th>endpoint</th><th>requester</th><th>action</th>\
             <th class='num'>p50</th><th class='num'>p95</th><th class='num'>p99</th><th class='num'>peak</th>\
             <th class='num'>current</th><th class='num'>proposed</th><th class='num'>would refuse:<br>current → proposed</th>\
             <th class='num'>429s</th></tr></thead><tbody>",
        );
        for change in &limits.changes {
            change_row(out, change);
        }
        out.push_str("</tbody></table></figure>");
        if limits.omitted > 0 {
            let _ = write!(
                out,
                "<p class='note'>{} more changes are not listed: <code>gateway-analytics recommend --as-of {as_of}</code> \
                 prints them all.</p>",
                limits.omitted
            );
        }
    }
    if !limits.default_user.is_empty() {
        out.push_str(
            "<h3>Requesters without any limit</h3><table class='data' data-chart='default-user-limits'><thead><tr>\
             <th>endpoint</th><th class='num'>requesters without a limit</th><th class='num'>their busiest minute</th>\
             <th class='num'>proposed default per-user limit</th></tr></thead><tbody>",
        );
        for row in &limits.default_user {
            let _ = write!(
                out,
                "<tr><td>{}</td><td class='num total' data-key='{}' data-value='{}'>{}</td><td class='num'>{}</td>\
                 <td class='num'>{} calls/min</td></tr>",
                esc(&row.endpoint),
                esc(&row.endpoint),
                row.requesters,
                count(row.requesters),
                count(row.peak),
                count(row.proposed)
            );
        }
        out.push_str(
            "</tbody></table><p class='note'>The patch gives such an endpoint a default per-user rule at the largest \
             of their recommended limits, so none of them would have been refused (when it has no default rule yet).</p>",
        );
    }
}

fn traces_section(out: &mut String, traces: &Traces) {
    out.push_str(
        "<figure class='chart' data-chart='trace-coverage'><figcaption>Successful gateway requests with an MLflow trace, \
         and traces that match no request</figcaption><table class='data'><thead><tr><th>endpoint</th>\
         <th class='num'>successful requests</th><th class='num'>traced</th><th>coverage</th>\
         <th class='num'>orphan traces</th></tr></thead><tbody>",
    );
    let (mut requests, mut traced, mut orphans) = (0, 0, 0);
    for row in &traces.rows {
        requests += row.requests;
        traced += row.traced;
        orphans += row.orphans;
        let fraction = if row.requests > 0 { row.traced as f64 / row.requests as f64 } else { 0.0 };
        let endpoint = if row.endpoint == "(none)" {
            "(none): traces outside Model Serving".to_string()
        } else {
            row.endpoint.clone()
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class='num'>{}</td><td class='num total' data-key='{}|traced' data-value='{}'>{}</td>\
             <td>{}{}</td><td class='num total' data-key='{}|orphans' data-value='{}'>{}</td></tr>",
            esc(&endpoint),
            count(row.requests),
            esc(&row.endpoint),
            row.traced,
            count(row.traced),
            svg::meter(fraction, "#009E73"),
            percent(row.traced as f64, row.requests as f64),
            esc(&row.endpoint),
            row.orphans,
            count(row.orphans)
        );
    }
    let _ = write!(
        out,
        "</tbody><tfoot><tr><td>all endpoints</td><td class='num'>{}</td><td class='num total' data-key='(all)|traced' \
         data-value='{traced}'>{}</td><td>{}</td><td class='num total' data-key='(all)|orphans' data-value='{orphans}'>{}</td>\
         </tr></tfoot></table></figure>",
        count(requests),
        count(traced),
        percent(traced as f64, requests as f64),
        count(orphans)
    );
    if let Some(runs) = traces.runs {
        let _ = write!(
            out,
            "<p>{} traced agent runs matched gateway requests, costing {} in all (<code>trace_spend</code>).</p>",
            count(runs),
            traces.runs_cost.dollars()
        );
    }
    out.push_str(
        "<p class='note'>An orphan trace that names a serving endpoint is an LLM call traced by an agent on it whose \
         gateway record is missing (usage tracking off or late); one that names none, <code>(none)</code>, came from \
         code outside Model Serving and bypassed the gateway: its cost is not in <code>daily_spend</code>.</p>",
    );
}

fn quality_section(out: &mut String, quality: &Quality) {
    out.push_str(
        "<figure class='chart' data-chart='data-quality'><figcaption>Rows failing each check over the window \
         (counts only, never values)</figcaption><table class='data'><thead><tr><th>check</th>\
         <th class='num'>failing rows</th><th class='num'>of rows</th><th>share</th><th class='num'>worst day</th>\
         </tr></thead><tbody>",
    );
    for row in &quality.rows {
        let name = format!("{}.{}", row.table, row.check);
        let share = if row.rows > 0 { row.failed as f64 / row.rows as f64 } else { 0.0 };
        let _ = write!(
            out,
            "<tr{}><td>{}{}</td><td class='num total' data-key='{}' data-value='{}'>{}</td><td class='num'>{}</td>\
             <td>{}{}</td><td class='num'>{:.1}%</td></tr>",
            if row.failed == 0 { " class='zero'" } else { "" },
            esc(&name),
            if row.standing { " <span class='muted'>(standing count, last date)</span>" } else { "" },
            esc(&name),
            row.failed,
            count(row.failed),
            count(row.rows),
            svg::meter(share, "#D55E00"),
            percent(row.failed as f64, row.rows as f64),
            row.worst_share * 100.0
        );
    }
    out.push_str(
        "</tbody></table></figure><p class='note'>From <code>data_quality</code>: each check is defined in \
         docs/OUTPUTS.md#data_quality. <code>null_request_time</code> counts the undated rows the tables hold when \
         a date is computed, so it is shown for the last date rather than summed.</p>",
    );
}

fn provenance_section(out: &mut String, data: &ReportData) {
    let versions = if data.price_versions.is_empty() {
        "–".to_string()
    } else {
        data.price_versions.iter().map(|v| format!("<code>{}</code>", esc(v))).collect::<Vec<_>>().join(", ")
    };
    let _ = write!(
        out,
        "<p>Window {} to {} (UTC dates, inclusive). Prices: {}{}. Outputs read from <code>{}</code>; this page was made \
         at {} UTC.</p>",
        data.window.from,
        data.window.to,
        versions,
        if data.price_versions.len() > 1 {
            " <b>(more than one price list: the dates were priced differently)</b>"
        } else {
            ""
        },
        esc(&data.output_location),
        data.generated_at.format("%Y-%m-%d %H:%M:%S")
    );
    // Teams file, mode and query definitions are usually the same for every date: said once.
    let entries: Vec<&LedgerEntry> = data.ledger.iter().filter_map(|(_, e)| e.as_ref()).collect();
    let uniform = entries.windows(2).all(|w| {
        let (a, b) = (&w[0].provenance, &w[1].provenance);
        (&a.teams_version, &a.mode, &a.definitions_version) == (&b.teams_version, &b.mode, &b.definitions_version)
    });
    out.push_str(
        "<table class='data' data-chart='ledger'><thead><tr><th>dates</th><th>status</th><th>computed at (UTC)</th>\
         <th>run</th><th>price version</th><th>input versions</th>",
    );
    if !uniform {
        out.push_str("<th>teams · mode · queries</th>");
    }
    out.push_str("<th>why computed</th></tr></thead><tbody>");
    for (from, to, entry) in ledger_ranges(&data.ledger) {
        let (status, class) = status_label(entry);
        let dates = date_range(from, to);
        match entry {
            Some(e) => {
                let v = |name: &str, version: Option<i64>| version.map(|v| format!("{name} v{v}"));
                let inputs: Vec<String> = [
                    v("usage", e.versions.usage),
                    v("payload", e.versions.payload),
                    v("traces", e.versions.traces),
                    v("served_entities", e.versions.served_entities),
                ]
                .into_iter()
                .flatten()
                .map(|text| format!("<span class='nowrap'>{}</span>", esc(&text)))
                .collect();
                let provenance = if uniform {
                    String::new()
                } else {
                    format!(
                        "<td><span class='id'>{}</span><br>{}<br><span class='id'>{}</span></td>",
                        esc(&e.provenance.teams_version),
                        esc(&e.provenance.mode),
                        esc(&e.provenance.definitions_version)
                    )
                };
                let _ = write!(
                    out,
                    "<tr class='{class}' data-from='{from}' data-to='{to}' data-status='{}'><td class='nowrap'>{dates}</td>\
                     <td class='status'>{status}</td><td class='num'>{}</td><td><span class='id'>{}</span></td>\
                     <td><span class='id'>{}</span></td><td>{}</td>{provenance}<td>{}</td></tr>",
                    e.status.as_str(),
                    e.computed_at.format("%Y-%m-%d %H:%M:%S"),
                    esc(&e.run_id),
                    esc(&e.provenance.price_version),
                    inputs.join(", "),
                    esc(&e.reason)
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<tr class='{class}' data-from='{from}' data-to='{to}' data-status='none'><td class='nowrap'>{dates}</td>\
                     <td class='status'>{status}</td><td colspan='{}'>no row in <code>computed_dates</code>: no run \
                     has written these dates</td></tr>",
                    if uniform { 5 } else { 6 }
                );
            }
        }
    }
    if uniform && let Some(e) = entries.first() {
        let _ = write!(
            out,
            "</tbody><tfoot><tr><td colspan='7' class='muted plain'>Every date: teams file <code>{}</code>, mode \
             <code>{}</code>, query definitions <code>{}</code>.</td></tr></tfoot><tbody>",
            esc(&e.provenance.teams_version),
            esc(&e.provenance.mode),
            esc(&e.provenance.definitions_version)
        );
    }
    out.push_str(
        "</tbody></table><p class='note'>From the ledger <code>computed_dates</code>: <i>finished</i> means every output \
         of the date was written by that run, which finished; <i>started</i>, a run began writing and did not finish \
         (outputs may be half-written); <i>partial</i>, <code>run --only</code> rewrote some tables. Input versions are \
         the Delta versions of the input tables the date's outputs are current with.</p>",
    );
    if !data.absent.is_empty() {
        out.push_str("<p class='note'>Absent output tables: ");
        let names: Vec<String> =
            data.absent.iter().map(|a| format!("<code>{}</code> ({})", esc(&a.name), esc(&a.why))).collect();
        out.push_str(&names.join("; "));
        out.push_str(".</p>");
    }
}
