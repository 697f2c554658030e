//! The report's charts, drawn as inline SVG by this code (no script, no library): stacked bars,
//! heatmaps, latency lines, rate-limit bullets, horizontal bars and sparklines.
//!
//! Nothing relies on colour alone: every series has a hatch pattern besides its hue and a name
//! in the legend, heatmap cells carry their value as text, latency lines differ by dash, and
//! every total is written next to what it totals. A labelled total is a `<text class="total">`
//! (or an HTML element with that class) whose `data-key` names what it totals and whose
//! `data-value` holds the exact number the label rounds; the browser test compares them with
//! the output tables.

use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};

use super::data::{Bucket, HeatRow, LatencyChart, LimitChange, Stack};
use super::rows::{Usd, count};

/// Hues of the series (Okabe and Ito's colour-blind safe palette), the last for "the rest".
const HUES: [&str; 9] =
    ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#7F7F7F", "#BBBBBB"];

/// The hatch drawn over each hue (in `HUES` order).
const HATCHES: [&str; 9] = [
    "",
    "<path d='M0,8 L8,0' />",
    "<path d='M0,0 L8,8' />",
    "<path d='M0,4 H8' />",
    "<path d='M4,0 V8' />",
    "<path d='M0,8 L8,0 M0,0 L8,8' />",
    "<circle cx='4' cy='4' r='1.4' />",
    "<path d='M0,4 H8 M4,0 V8' />",
    "<path d='M0,2 H8 M0,6 H8' />",
];

/// HTML-escapes text for element content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The `<defs>` with one pattern per series style, shared by every chart of the page.
pub fn pattern_defs() -> String {
    let mut out = String::from("<svg class='defs' width='0' height='0' aria-hidden='true' focusable='false'><defs>");
    for (i, (hue, hatch)) in HUES.iter().zip(HATCHES).enumerate() {
        let _ = write!(
            out,
            "<pattern id='series-{i}' patternUnits='userSpaceOnUse' width='8' height='8'>\
             <rect width='8' height='8' fill='{hue}'/>\
             <g stroke='#000' stroke-opacity='0.55' stroke-width='1.3' fill='#000' fill-opacity='0.55'>{hatch}</g>\
             </pattern>"
        );
    }
    out.push_str("</defs></svg>");
    out
}

/// The fill of series `i` (the last style for "the rest").
pub fn series_fill(i: usize, is_rest: bool) -> String {
    let style = if is_rest { HUES.len() - 1 } else { i.min(HUES.len() - 2) };
    format!("url(#series-{style})")
}

/// A small swatch of a series' fill, for legends.
pub fn swatch(fill: &str) -> String {
    format!(
        "<svg class='swatch' width='18' height='12' aria-hidden='true'><rect width='18' height='12' fill='{fill}' \
         stroke='#333' stroke-width='0.6'/></svg>"
    )
}

/// A round upper bound for an axis (1, 2 or 5 times a power of ten) and its tick step.
pub fn nice_scale(max: f64, ticks: usize) -> (f64, f64) {
    if !max.is_finite() || max <= 0.0 {
        return (1.0, 1.0 / ticks.max(1) as f64);
    }
    let raw = max / ticks.max(1) as f64;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(raw);
    ((max / step).ceil() * step, step)
}

fn money_axis(value: f64) -> String {
    if value >= 1000.0 {
        format!("${}", count(value.round() as i64))
    } else if value >= 10.0 || value == 0.0 {
        format!("${value:.0}")
    } else {
        format!("${value:.2}")
    }
}

/// Horizontal grid lines from 0 to `y_max` every `step`, each labelled left of the plot by
/// `label` (`(dx, dy)`: the label's distance left of the plot and below the line).
fn y_grid(
    out: &mut String,
    (left, right): (f64, f64),
    (dx, dy): (f64, f64),
    step: f64,
    y_max: f64,
    y: impl Fn(f64) -> f64,
    label: impl Fn(f64) -> String,
) {
    let mut tick = 0.0;
    while tick <= y_max + step / 2.0 {
        let ty = y(tick);
        let _ = write!(
            out,
            "<line x1='{left}' x2='{right}' y1='{ty:.1}' y2='{ty:.1}' class='grid'/>\
             <text x='{}' y='{:.1}' class='axis' text-anchor='end'>{}</text>",
            left - dx,
            ty + dy,
            label(tick)
        );
        tick += step;
    }
}

/// A stacked bar chart of cost per bucket. Each bucket's total is labelled above its bar
/// (`data-key` the bucket label, `data-value` the exact total). `flagged` buckets (dates whose
/// outputs are not from one finished run) get a warning mark under their label.
pub fn stacked_bars(title: &str, stack: &Stack, buckets: &[Bucket], flagged: &[bool]) -> String {
    let (left, right, top) = (64.0, 12.0, 26.0);
    let width = 1000.0;
    let band = (width - left - right) / buckets.len().max(1) as f64;
    let rotate = band < 64.0;
    let bottom = if rotate { 70.0 } else { 30.0 };
    let height = 290.0 + bottom;
    let plot_h = height - top - bottom;
    let max = stack.totals.iter().map(|t| t.as_f64()).fold(0.0, f64::max);
    let (y_max, step) = nice_scale(max, 5);
    let y = |value: f64| top + plot_h - value / y_max * plot_h;
    let bar = (band * 0.62).min(90.0);
    let mut out = String::new();
    let _ =
        write!(out, "<svg viewBox='0 0 {width} {height}' class='chart-svg' role='img' aria-label='{}'>", esc(title));
    y_grid(&mut out, (left, width - right), (6.0, 4.0), step, y_max, y, money_axis);
    for (b, bucket) in buckets.iter().enumerate() {
        let x = left + band * b as f64 + (band - bar) / 2.0;
        let mut base = 0.0;
        for (s, series) in stack.series.iter().enumerate() {
            let value = series.values[b].as_f64();
            if value <= 0.0 {
                continue;
            }
            let is_rest = s + 1 == stack.series.len() && series.name.contains(" (");
            let (y0, y1) = (y(base), y(base + value));
            let _ = write!(
                out,
                "<rect x='{x:.1}' y='{y1:.2}' width='{bar:.1}' height='{:.2}' fill='{}' stroke='#fff' \
                 stroke-width='0.6'><title>{} · {}: {}</title></rect>",
                (y0 - y1).max(0.0),
                series_fill(s, is_rest),
                esc(&series.name),
                esc(&bucket.label),
                series.values[b].dollars()
            );
            base += value;
        }
        let total = stack.totals[b];
        let cx = x + bar / 2.0;
        let ty = y(total.as_f64()) - 5.0;
        if rotate {
            let _ = write!(
                out,
                "<text class='total' x='{cx:.1}' y='{ty:.1}' transform='rotate(-90 {cx:.1} {ty:.1})' \
                 text-anchor='start' dy='4' data-key='{}' data-value='{}'>{}</text>",
                esc(&bucket.label),
                total.exact(),
                total.dollars()
            );
        } else {
            let _ = write!(
                out,
                "<text class='total' x='{cx:.1}' y='{ty:.1}' text-anchor='middle' data-key='{}' \
                 data-value='{}'>{}</text>",
                esc(&bucket.label),
                total.exact(),
                total.dollars()
            );
        }
        let ly = top + plot_h + 16.0;
        let mark = if flagged.get(b).copied().unwrap_or(false) { " ⚠" } else { "" };
        if rotate {
            let _ = write!(
                out,
                "<text x='{cx:.1}' y='{ly:.1}' class='axis' text-anchor='end' transform='rotate(-45 {cx:.1} {ly:.1})'>\
                 {}{mark}</text>",
                esc(&bucket.label)
            );
        } else {
            let _ = write!(
                out,
                "<text x='{cx:.1}' y='{ly:.1}' class='axis' text-anchor='middle'>{}{mark}</text>",
                esc(&bucket.label)
            );
        }
    }
    let _ = write!(
        out,
        "<line x1='{left}' x2='{}' y1='{:.1}' y2='{:.1}' class='baseline'/></svg>",
        width - right,
        top + plot_h,
        top + plot_h
    );
    out
}

/// What a heatmap shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatMetric {
    /// (4xx + 429 + 5xx) / requests.
    ErrorRate,
    /// 429 / requests.
    RateLimited,
}

impl HeatMetric {
    fn count(self, cell: &super::data::HeatCell) -> i64 {
        match self {
            HeatMetric::ErrorRate => cell.errors,
            HeatMetric::RateLimited => cell.rate_limited,
        }
    }

    /// The id used in `data-chart` and `data-key`s.
    pub fn id(self) -> &'static str {
        match self {
            HeatMetric::ErrorRate => "error-rate",
            HeatMetric::RateLimited => "rate-limited",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            HeatMetric::ErrorRate => "errors",
            HeatMetric::RateLimited => "429s",
        }
    }
}

/// The fill of a heatmap cell at `rate` (0..1): a light-to-dark ramp of one hue (square root,
/// saturating at 50%), and whether its text should be white.
fn ramp(rate: f64) -> (String, bool) {
    let t = (rate / 0.5).clamp(0.0, 1.0).sqrt();
    let (from, to) = ([255.0, 247.0, 236.0], [127.0, 39.0, 4.0]);
    let c: Vec<u8> = from.iter().zip(to).map(|(a, b)| (a + (b - a) * t).round() as u8).collect();
    (format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2]), t > 0.62)
}

/// A cell's text: the rate in whole percent (`<1` below half a percent but above 0).
fn percent_label(count: i64, requests: i64) -> String {
    if requests == 0 {
        return "–".into();
    }
    let percent = count as f64 * 100.0 / requests as f64;
    if count > 0 && percent < 0.5 { "<1".into() } else { format!("{percent:.0}") }
}

/// An endpoint × UTC-hour heatmap of `metric`, every cell labelled with its rate in percent and
/// every row with its totals (`data-key` `endpoint|date`, `data-count`, `data-requests`).
pub fn heatmap(title: &str, rows: &[HeatRow], metric: HeatMetric) -> String {
    let (label_w, cell_w, cell_h, total_w, top) = (200.0, 29.0, 19.0, 190.0, 22.0);
    let width = label_w + cell_w * 24.0 + total_w;
    let height = top + cell_h * rows.len() as f64 + 6.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg viewBox='0 0 {width} {height:.0}' class='chart-svg heatmap' role='img' aria-label='{}'>",
        esc(title)
    );
    for hour in 0..24 {
        let _ = write!(
            out,
            "<text x='{:.1}' y='14' class='axis' text-anchor='middle'>{hour:02}</text>",
            label_w + cell_w * hour as f64 + cell_w / 2.0
        );
    }
    let _ = write!(out, "<text x='{:.1}' y='14' class='axis'>window total</text>", label_w + cell_w * 24.0 + 8.0);
    let mut previous: Option<&str> = None;
    for (r, row) in rows.iter().enumerate() {
        let y = top + cell_h * r as f64;
        if previous.is_some_and(|p| p != row.endpoint) {
            let _ = write!(out, "<line x1='0' x2='{width}' y1='{y:.1}' y2='{y:.1}' class='separator'/>");
        }
        let label = match row.date {
            Some(date) if previous == Some(row.endpoint.as_str()) => format!("  {}", date.format("%m-%d")),
            Some(date) => format!("{} · {}", row.endpoint, date.format("%m-%d")),
            None => row.endpoint.clone(),
        };
        previous = Some(row.endpoint.as_str());
        let _ = write!(
            out,
            "<text x='{:.1}' y='{:.1}' class='row-label' text-anchor='end' xml:space='preserve'>{}</text>",
            label_w - 6.0,
            y + cell_h - 5.0,
            esc(&label)
        );
        for (hour, cell) in row.cells.iter().enumerate() {
            let x = label_w + cell_w * hour as f64;
            let n = metric.count(cell);
            let (fill, white) =
                if cell.requests == 0 { ("#eeeeee".to_string(), false) } else { ramp(n as f64 / cell.requests as f64) };
            let text_class = if white {
                "cell light"
            } else if n == 0 {
                "cell zero"
            } else {
                "cell"
            };
            let _ = write!(
                out,
                "<rect x='{x:.1}' y='{y:.1}' width='{cell_w}' height='{cell_h}' fill='{fill}' class='heat'>\
                 <title>{} {}{:02}:00 UTC: {} of {} requests</title></rect>\
                 <text x='{:.1}' y='{:.1}' class='{text_class}' text-anchor='middle'>{}</text>",
                esc(&row.endpoint),
                row.date.map(|d| format!("{d} ")).unwrap_or_default(),
                hour,
                count(n),
                count(cell.requests),
                x + cell_w / 2.0,
                y + cell_h - 5.5,
                percent_label(n, cell.requests)
            );
        }
        let n = metric.count(&row.total);
        let share = if row.total.requests > 0 {
            format!(" ({:.1}%)", n as f64 * 100.0 / row.total.requests as f64)
        } else {
            String::new()
        };
        let key = format!("{}|{}", row.endpoint, row.date.map(|d| d.to_string()).unwrap_or_default());
        let _ = write!(
            out,
            "<text x='{:.1}' y='{:.1}' class='total' data-key='{}' data-count='{n}' data-requests='{}'>{} of {}{share}</text>",
            label_w + cell_w * 24.0 + 8.0,
            y + cell_h - 5.0,
            esc(&key),
            row.total.requests,
            count(n),
            count(row.total.requests),
        );
    }
    out.push_str("</svg>");
    let _ = write!(
        out,
        "<p class='legend-line'>Each cell: {} as a percentage of the hour's requests (– no requests, \
         &lt;1 under half a percent); darker is higher. Hours are UTC.</p>",
        metric.noun()
    );
    out.push_str(&ramp_legend());
    out
}

fn ramp_legend() -> String {
    let mut out = String::from("<div class='ramp' aria-hidden='true'>");
    for percent in [0, 1, 2, 5, 10, 20, 50] {
        let (fill, white) = ramp(percent as f64 / 100.0);
        let color = if white { "#fff" } else { "#000" };
        let _ = write!(
            out,
            "<span style='background:{fill};color:{color}'>{percent}%{}</span>",
            if percent == 50 { "+" } else { "" }
        );
    }
    out.push_str("</div>");
    out
}

/// An axis label of milliseconds: `250 ms`, or seconds when the axis reaches 10 s (`40 s`, `2.5 s`).
fn duration_axis(ms: f64, axis_max: f64) -> String {
    if axis_max >= 10_000.0 {
        let seconds = ms / 1000.0;
        if seconds.fract() == 0.0 { format!("{seconds:.0} s") } else { format!("{seconds:.1} s") }
    } else {
        format!("{} ms", count(ms.round() as i64))
    }
}

/// Dash patterns of the p50, p95, p99 lines.
pub const QUANTILE_DASHES: [&str; 3] = ["", "6 3", "2 2.5"];
/// Stroke colours of the p50, p95, p99 lines.
pub const QUANTILE_COLOURS: [&str; 3] = ["#0072B2", "#E69F00", "#D55E00"];
const QUANTILE_NAMES: [&str; 3] = ["p50", "p95", "p99"];

/// One endpoint's (and served entity's) latency quantiles over the window; each line's peak is
/// labelled (`data-key` `endpoint|entity|pNN`, `data-value` in ms).
pub fn latency_chart(chart: &LatencyChart, from: DateTime<Utc>, to: DateTime<Utc>, step: Duration) -> String {
    let (width, height) = (500.0, 190.0);
    let (left, right, top, bottom) = (54.0, 10.0, 40.0, 24.0);
    let plot_w = width - left - right;
    let plot_h = height - top - bottom;
    let max = chart.peaks.iter().flatten().copied().max().unwrap_or(1) as f64;
    let (y_max, y_step) = nice_scale(max, 4);
    let span = (to - from).num_seconds().max(1) as f64;
    let x = |at: DateTime<Utc>| left + (at - from).num_seconds() as f64 / span * plot_w;
    let y = |value: f64| top + plot_h - value / y_max * plot_h;
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg viewBox='0 0 {width} {height}' class='chart-svg' role='img' aria-label='latency of {}'>",
        esc(&chart.endpoint)
    );
    y_grid(&mut out, (left, width - right), (4.0, 3.5), y_step, y_max, y, |tick| duration_axis(tick, y_max));
    // A tick per day (at most 8 labels).
    let days = (to - from).num_days().max(1);
    let every = (days as f64 / 8.0).ceil().max(1.0) as i64;
    let mut day = 0;
    while day < days {
        let at = from + Duration::days(day);
        let tx = x(at);
        let _ = write!(
            out,
            "<line x1='{tx:.1}' x2='{tx:.1}' y1='{top}' y2='{:.1}' class='grid'/>\
             <text x='{:.1}' y='{:.1}' class='axis'>{}</text>",
            top + plot_h,
            tx + 2.0,
            height - 8.0,
            at.format("%m-%d")
        );
        day += every;
    }
    for q in 0..3 {
        // Lines break where an hour (or day) has no sample.
        let mut segments: Vec<Vec<(f64, f64)>> = Vec::new();
        let mut last: Option<DateTime<Utc>> = None;
        for point in &chart.points {
            let Some(value) = point.quantiles[q] else {
                last = None;
                continue;
            };
            let xy = (x(point.at + step / 2), y(value as f64));
            match (last, segments.last_mut()) {
                (Some(previous), Some(segment)) if point.at - previous <= step => segment.push(xy),
                _ => segments.push(vec![xy]),
            }
            last = Some(point.at);
        }
        for segment in &segments {
            if segment.len() == 1 {
                let (px, py) = segment[0];
                let _ = write!(out, "<circle cx='{px:.1}' cy='{py:.1}' r='1.8' fill='{}'/>", QUANTILE_COLOURS[q]);
                continue;
            }
            let points: Vec<String> = segment.iter().map(|(px, py)| format!("{px:.1},{py:.1}")).collect();
            let dash = if QUANTILE_DASHES[q].is_empty() {
                String::new()
            } else {
                format!(" stroke-dasharray='{}'", QUANTILE_DASHES[q])
            };
            let _ = write!(
                out,
                "<polyline points='{}' fill='none' stroke='{}' stroke-width='{}'{dash}/>",
                points.join(" "),
                QUANTILE_COLOURS[q],
                if q == 2 { 1.8 } else { 1.4 }
            );
        }
    }
    // The legend doubles as the labelled peaks.
    for q in 0..3 {
        let lx = 4.0 + q as f64 * 165.0;
        let dash = if QUANTILE_DASHES[q].is_empty() {
            String::new()
        } else {
            format!(" stroke-dasharray='{}'", QUANTILE_DASHES[q])
        };
        let value = chart.peaks[q];
        let key = format!("{}|{}|{}", chart.endpoint, chart.entity, QUANTILE_NAMES[q]);
        let _ = write!(
            out,
            "<line x1='{lx:.1}' x2='{:.1}' y1='12' y2='12' stroke='{}' stroke-width='2'{dash}/>\
             <text x='{:.1}' y='16' class='total' data-key='{}' data-value='{}'>{} peak {}</text>",
            lx + 22.0,
            QUANTILE_COLOURS[q],
            lx + 26.0,
            esc(&key),
            value.map(|v| v.to_string()).unwrap_or_default(),
            QUANTILE_NAMES[q],
            value.map(|v| format!("{} ms", count(v))).unwrap_or_else(|| "–".into())
        );
    }
    let _ = write!(
        out,
        "<line x1='{left}' x2='{}' y1='{:.1}' y2='{:.1}' class='baseline'/></svg>",
        width - right,
        top + plot_h,
        top + plot_h
    );
    out
}

/// A bullet chart of one rate-limit change: demand percentiles (up to p50 darkest, to p95, to
/// p99 with a diamond at p99, to the peak minute lightest), the current limit (solid line) and
/// the proposed one (dashed line), with the p99, the peak and both limits labelled.
pub fn bullet(change: &LimitChange) -> String {
    let (width, height) = (900.0, 50.0);
    let (left, right, bar_y, bar_h) = (8.0, 8.0, 17.0, 14.0);
    let [p50, p95, p99, peak] = change.demand;
    let max = [peak, p99, change.current, Some(change.proposed)].into_iter().flatten().max().unwrap_or(1).max(1);
    let scale = (width - left - right) / max as f64;
    let x = |v: i64| left + v as f64 * scale;
    // A label at `at` reads towards the middle of the chart near either edge, else `preferred`.
    let anchor = |at: f64, preferred: &'static str| -> (&'static str, f64) {
        let chosen = if at < 110.0 {
            "start"
        } else if at > width - 110.0 {
            "end"
        } else {
            preferred
        };
        let shift = match chosen {
            "start" => 4.0,
            "end" => -4.0,
            _ => 0.0,
        };
        (chosen, at + shift)
    };
    let unit = if change.dimension == "tokens" { "tokens per minute" } else { "calls per minute" };
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg viewBox='0 0 {width} {height}' class='bullet' role='img' aria-label='demand against the limits, {unit}'>\
         <rect x='{left}' y='{bar_y}' width='{:.1}' height='{bar_h}' fill='#f1f1f1' stroke='#bbb' stroke-width='0.5'/>",
        width - left - right
    );
    for (value, fill) in [(peak, "#d9d9d9"), (p99, "#a6a6a6"), (p95, "#595959"), (p50, "#262626")] {
        if let Some(value) = value {
            let _ = write!(
                out,
                "<rect x='{left}' y='{bar_y}' width='{:.1}' height='{bar_h}' fill='{fill}'/>",
                (x(value) - left).max(1.0)
            );
        }
    }
    // Labels above the bar: p99 and the peak (the peak's only when it does not sit on p99's).
    if let Some(p99) = p99 {
        let px = x(p99);
        let (side, tx) = anchor(px, "middle");
        let _ = write!(
            out,
            "<path d='M{px:.1},{bar_y} l5,{h} l-5,{h} l-5,-{h} z' fill='#fff' stroke='#000' stroke-width='1'/>\
             <text x='{tx:.1}' y='12' class='axis' text-anchor='{side}'>p99 {}</text>",
            count(p99),
            h = bar_h / 2.0
        );
    }
    if let Some(peak) = peak
        && p99.is_none_or(|p99| x(peak) - x(p99) > 80.0)
    {
        let (side, tx) = anchor(x(peak), "middle");
        let _ = write!(out, "<text x='{tx:.1}' y='12' class='axis' text-anchor='{side}'>peak {}</text>", count(peak));
    }
    // Below the bar: the limits, each label on the side away from the other limit.
    let proposed_x = x(change.proposed);
    let current_x = change.current.map(x);
    if let (Some(current), Some(cx)) = (change.current, current_x) {
        let (side, tx) = anchor(cx, if cx < proposed_x { "end" } else { "start" });
        let _ = write!(
            out,
            "<line x1='{cx:.1}' x2='{cx:.1}' y1='{}' y2='{}' stroke='#000' stroke-width='2.4'/>\
             <text x='{tx:.1}' y='46' class='axis' text-anchor='{side}'>current {}</text>",
            bar_y - 4.0,
            bar_y + bar_h + 4.0,
            count(current)
        );
    }
    let (side, tx) = anchor(proposed_x, if current_x.is_some_and(|c| c < proposed_x) { "start" } else { "end" });
    let _ = write!(
        out,
        "<line x1='{proposed_x:.1}' x2='{proposed_x:.1}' y1='{}' y2='{}' stroke='#0072B2' stroke-width='2.4' \
         stroke-dasharray='4 2'/><text x='{tx:.1}' y='46' class='axis' text-anchor='{side}' fill='#0b4f7a'>proposed {}</text>\
         </svg>",
        bar_y - 4.0,
        bar_y + bar_h + 4.0,
        count(change.proposed),
    );
    out
}

/// The legend of [`bullet`].
pub fn bullet_legend() -> String {
    "<p class='legend-line bullet-legend'>\
     <span class='key'><svg width='26' height='12' aria-hidden='true'><rect width='26' height='12' fill='#262626'/></svg> up to p50</span>\
     <span class='key'><svg width='26' height='12' aria-hidden='true'><rect width='26' height='12' fill='#595959'/></svg> to p95</span>\
     <span class='key'><svg width='26' height='12' aria-hidden='true'><rect width='26' height='12' fill='#a6a6a6'/><path d='M13,0 l4,6 l-4,6 l-4,-6 z' fill='#fff' stroke='#000'/></svg> to p99 (◇)</span>\
     <span class='key'><svg width='26' height='12' aria-hidden='true'><rect width='26' height='12' fill='#d9d9d9'/></svg> to the peak minute</span>\
     <span class='key'><svg width='14' height='14' aria-hidden='true'><line x1='7' x2='7' y1='0' y2='14' stroke='#000' stroke-width='2.2'/></svg> current limit</span>\
     <span class='key'><svg width='14' height='14' aria-hidden='true'><line x1='7' x2='7' y1='0' y2='14' stroke='#0072B2' stroke-width='2.2' stroke-dasharray='3 2'/></svg> proposed limit</span>\
     <span>(per minute, in the unit of the row's action; each bar starts at 0)</span>\
     </p>"
        .into()
}

/// A horizontal bar of `fraction` (0..1) of the track, for tables.
pub fn meter(fraction: f64, fill: &str) -> String {
    let fraction = if fraction.is_finite() { fraction.clamp(0.0, 1.0) } else { 0.0 };
    format!(
        "<svg class='meter' viewBox='0 0 160 12' aria-hidden='true'><rect width='160' height='12' fill='#f1f1f1' \
         stroke='#999' stroke-width='0.5'/><rect width='{:.1}' height='12' fill='{fill}'/></svg>",
        160.0 * fraction
    )
}

/// A tiny bar chart of amounts per date, for trend columns.
pub fn sparkline(values: &[Usd]) -> String {
    let max = values.iter().map(|v| v.as_f64()).fold(0.0, f64::max);
    let (width, height) = (120.0, 22.0);
    let band = width / values.len().max(1) as f64;
    let mut out = format!("<svg class='spark' viewBox='0 0 {width} {height}' aria-hidden='true'>");
    for (i, value) in values.iter().enumerate() {
        let h = if max > 0.0 { value.as_f64() / max * (height - 2.0) } else { 0.0 };
        let _ = write!(
            out,
            "<rect x='{:.1}' y='{:.1}' width='{:.1}' height='{h:.1}' fill='#555'/>",
            i as f64 * band + band * 0.15,
            height - h,
            band * 0.7
        );
    }
    let _ = write!(out, "<line x1='0' x2='{width}' y1='{height}' y2='{height}' stroke='#999'/></svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(duration_axis(40_000.0, 50_000.0), "40 s");
        assert_eq!(duration_axis(2_500.0, 10_000.0), "2.5 s");
        assert_eq!(duration_axis(250.0, 600.0), "250 ms");
        assert_eq!(nice_scale(46.5, 5), (50.0, 10.0));
        assert_eq!(nice_scale(0.0, 5).0, 1.0);
        assert_eq!(nice_scale(2340.0, 4), (3000.0, 1000.0));
        assert_eq!(nice_scale(9.0, 4), (10.0, 2.5));
        assert_eq!(percent_label(0, 10), "0");
        assert_eq!(percent_label(1, 1000), "<1");
        assert_eq!(percent_label(5, 10), "50");
        assert_eq!(percent_label(0, 0), "–");
        assert_eq!(esc("<a href='x'>&\"</a>"), "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;");
    }
}
