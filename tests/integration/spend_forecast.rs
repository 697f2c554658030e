//! spend_forecast against the method applied by hand in plain Rust (docs/OUTPUTS.md
//! #spend_forecast), from daily_spend's rows (which oracle.rs checks against the raw tables): on
//! 35 generated days crossing a month's end, every row's month to date is daily_spend's sum to the
//! picodollar, the days before 28 were logged fall back to the linear projection and the later
//! ones are forecast by weekday factors and a damped trend. Reruns, and a nightly run reading its
//! history from the stored outputs, give the very same rows.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Duration, NaiveDate};
use gateway_analytics::config::JobConfig;
use gateway_analytics::forecast::{INTERVALS, LINEAR, SEASONAL_TREND};
use gateway_analytics::generate::{GenerateOptions, generate};
use gateway_analytics::progress::Progress;
use gateway_analytics::window::RunWindow;

use super::common::{date, run_job};
use super::what_if::{rows, units};

const FORECAST_SQL: &str = "SELECT CAST(usage_date AS STRING), CAST(month AS STRING), scope, scope_value, days_elapsed, \
     days_in_month, observed_days, CAST(month_to_date_usd AS STRING), history_days, logged_history_days, method, \
     CAST(forecast_usd AS STRING), CAST(forecast_low_usd AS STRING), CAST(forecast_high_usd AS STRING), \
     CAST(linear_usd AS STRING) FROM t ORDER BY 1, 3, 4";

/// (scope, scope value) -> date -> cost in picodollars, from daily_spend; and the observed days.
type Daily = BTreeMap<(String, String), BTreeMap<NaiveDate, i128>>;

async fn daily(out: &std::path::Path) -> (Daily, BTreeSet<NaiveDate>) {
    let mut daily: Daily = BTreeMap::new();
    let mut observed = BTreeSet::new();
    let sql = "SELECT CAST(usage_date AS STRING), endpoint_name, team, CAST(cost_usd AS STRING) FROM t";
    for row in rows(&out.join("daily_spend"), sql).await {
        let day: NaiveDate = row[0].parse().unwrap();
        observed.insert(day);
        for key in [("endpoint".to_string(), row[1].clone()), ("team".to_string(), row[2].clone())] {
            *daily.entry(key).or_default().entry(day).or_default() += units(&row[3]);
        }
    }
    (daily, observed)
}

fn days_in_month(day: NaiveDate) -> i64 {
    let first = day.with_day(1).unwrap();
    let next = if first.month() == 12 {
        NaiveDate::from_ymd_opt(first.year() + 1, 1, 1).unwrap()
    } else {
        NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1).unwrap()
    };
    (next - first).num_days()
}

/// What a row should say, by hand.
struct Expected {
    month_to_date: i128,
    observed_days: i64,
    history_days: i64,
    logged: i64,
    method: &'static str,
    forecast: f64,
    linear: f64,
}

fn by_hand(costs: &BTreeMap<NaiveDate, i128>, observed: &BTreeSet<NaiveDate>, as_of: NaiveDate) -> Expected {
    let month_start = as_of.with_day(1).unwrap();
    let in_month: Vec<NaiveDate> = month_start.iter_days().take_while(|d| *d <= as_of).collect();
    let month_to_date: i128 = in_month.iter().filter_map(|d| costs.get(d)).sum();
    let observed_days = in_month.iter().filter(|d| observed.contains(d)).count() as i64;
    let history: Vec<NaiveDate> = (0..28).rev().map(|back| as_of - Duration::days(back)).collect();
    let logged = history.iter().filter(|d| observed.contains(d)).count() as i64;
    let history_days = match history.iter().position(|d| costs.contains_key(d)) {
        Some(first) => history[first..].iter().filter(|d| observed.contains(d)).count() as i64,
        None => 0,
    };
    let dollars = |d: &NaiveDate| costs.get(d).copied().unwrap_or(0) as f64 / 1e12;
    let mtd = month_to_date as f64 / 1e12;
    let length = days_in_month(as_of);
    let linear = mtd * length as f64 / observed_days as f64;

    // Weekday factors: each weekday's cost over the mean day of the 28.
    let total: f64 = history.iter().map(dollars).sum();
    let mut factors = [0.0f64; 7];
    for day in &history {
        factors[day.weekday().num_days_from_monday() as usize] += dollars(day);
    }
    for f in &mut factors {
        *f = if *f > 0.0 { *f * 7.0 / total } else { 0.0 };
    }
    // A least-squares line through the last 14 deseasonalised days, continued at half its slope.
    let points: Vec<(f64, f64)> = history[14..]
        .iter()
        .filter(|d| factors[d.weekday().num_days_from_monday() as usize] > 0.0)
        .map(|d| ((*d - as_of).num_days() as f64, dollars(d) / factors[d.weekday().num_days_from_monday() as usize]))
        .collect();
    let n = points.len() as f64;
    let (mx, my) = if points.is_empty() {
        (0.0, 0.0)
    } else {
        (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n)
    };
    let spread: f64 = points.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let slope = if spread > 0.0 { points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>() / spread } else { 0.0 };
    let at_as_of = my - slope * mx;
    let remaining: f64 = (1..=length - i64::from(as_of.day()))
        .map(|k| {
            let day = as_of + Duration::days(k);
            (at_as_of + 0.5 * slope * k as f64).max(0.0) * factors[day.weekday().num_days_from_monday() as usize]
        })
        .sum();
    let seasonal = logged == 28 && history_days >= 22;
    Expected {
        month_to_date,
        observed_days,
        history_days,
        logged,
        method: if seasonal { SEASONAL_TREND } else { LINEAR },
        forecast: if seasonal { mtd + remaining } else { linear },
        linear,
    }
}

fn close(found: &str, expected: f64, what: &str) {
    let found: f64 = found.parse().unwrap();
    assert!((found - expected).abs() <= 2e-6 + 1e-9 * expected.abs(), "{what}: {found} by SQL, {expected} by hand");
}

async fn forecast_rows(out: &std::path::Path) -> Vec<Vec<String>> {
    rows(&out.join("spend_forecast"), FORECAST_SQL).await
}

#[tokio::test]
async fn spend_forecast_is_the_backtested_method_applied_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let start = date("2026-10-01");
    let options = GenerateOptions {
        seed: 19,
        days: 35,
        start,
        requests_per_day: 250,
        request_bytes: 100,
        lean: true,
        incidents: false,
        ai_gateway: false,
        traces: false,
    };
    generate(&options, &data, &Progress::hidden()).await.unwrap();
    let text = "[inputs]\nusage = \"data/endpoint_usage\"\nserved_entities = \"data/served_entities\"\n\
                payload = \"data/gateway_payload\"\nprices = \"data/prices.csv\"\nteams = \"data/teams.csv\"\n\
                [output]\nlocation = \"out\"\n";
    let job = JobConfig::parse(text, &dir.path().join("job.toml")).unwrap();
    let out = dir.path().join("out");
    let window = RunWindow::new(start, date("2026-11-04")).unwrap();
    run_job(&job, window).await.unwrap();

    let (daily, observed) = daily(&out).await;
    let found = forecast_rows(&out).await;
    let mut keys = BTreeSet::new();
    let mut methods: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for row in &found {
        let as_of: NaiveDate = row[0].parse().unwrap();
        let key = (row[2].clone(), row[3].clone());
        let what = format!("{} {} {}", row[0], row[2], row[3]);
        let expected = by_hand(&daily[&key], &observed, as_of);
        assert_eq!(row[1], as_of.with_day(1).unwrap().to_string(), "{what}: month");
        assert_eq!(row[4], as_of.day().to_string(), "{what}: days_elapsed");
        assert_eq!(row[5], days_in_month(as_of).to_string(), "{what}: days_in_month");
        assert_eq!(row[6], expected.observed_days.to_string(), "{what}: observed_days");
        assert_eq!(units(&row[7]), expected.month_to_date, "{what}: month_to_date_usd to the picodollar");
        assert_eq!(row[8], expected.history_days.to_string(), "{what}: history_days");
        assert_eq!(row[9], expected.logged.to_string(), "{what}: logged_history_days");
        assert_eq!(row[10], expected.method, "{what}: method");
        close(&row[11], expected.forecast, &format!("{what}: forecast_usd"));
        close(&row[14], expected.linear, &format!("{what}: linear_usd"));
        // The interval: the backtest's ratios for the method and the days left, never below the
        // month to date.
        let left = days_in_month(as_of) as i32 - as_of.day() as i32;
        let forecast: f64 = row[11].parse().unwrap();
        let (low, high) = match INTERVALS.iter().find(|i| i.0 == expected.method && (i.1..=i.2).contains(&left)) {
            Some(i) => ((forecast * i.3).max(expected.month_to_date as f64 / 1e12), forecast * i.4),
            None => (forecast, forecast),
        };
        close(&row[12], low, &format!("{what}: forecast_low_usd"));
        close(&row[13], high, &format!("{what}: forecast_high_usd"));
        keys.insert((as_of, key.clone()));
        *methods.entry((expected.method, key.0.clone())).or_default() += 1;
    }
    // One row per (day, scope) with a usage row in the month up to the day, and no other.
    let mut wanted = BTreeSet::new();
    for (key, costs) in &daily {
        for as_of in window.from.iter_days().take_while(|d| *d <= window.to) {
            if costs.keys().any(|d| d.month() == as_of.month() && *d <= as_of) {
                wanted.insert((as_of, key.clone()));
            }
        }
    }
    assert_eq!(keys, wanted);
    assert_eq!(keys.len(), found.len(), "one row per (day, scope, scope value)");
    // Both methods for both scopes: the 27 first days have too little history.
    for scope in ["team", "endpoint"] {
        assert!(methods.get(&(SEASONAL_TREND, scope.to_string())).is_some_and(|n| *n >= 5), "{methods:?}");
        assert!(methods.get(&(LINEAR, scope.to_string())).is_some_and(|n| *n >= 27), "{methods:?}");
    }
    let short = found.iter().filter(|r| r[0] == "2026-10-27").collect::<Vec<_>>();
    assert!(!short.is_empty() && short.iter().all(|r| r[10] == LINEAR && r[9] == "27"));
    let month_end = found.iter().filter(|r| r[0] == "2026-10-31" && r[10] == SEASONAL_TREND).collect::<Vec<_>>();
    assert!(!month_end.is_empty(), "seasonal forecasts on the last day of the month");
    // On the month's last day the forecast is the month to date (to the micro-dollar it is rounded to).
    assert!(
        month_end.iter().all(|r| (units(&r[11]) - units(&r[7])).abs() <= 500_000 && r[12] == r[11] && r[13] == r[11])
    );

    // A rerun of the window gives the same rows; so does a nightly run of its last day, which
    // reads its 28 days of team and endpoint history from the stored daily_spend.
    run_job(&job, window).await.unwrap();
    assert_eq!(forecast_rows(&out).await, found, "a rerun");
    let last = RunWindow::new(date("2026-11-04"), date("2026-11-04")).unwrap();
    let summary = run_job(&job, last).await.unwrap();
    assert_eq!(summary.history.history_from, date("2026-10-08"), "28 days of history");
    assert_eq!(summary.history.inputs_from, last.from, "the history came from the stored outputs");
    assert_eq!(forecast_rows(&out).await, found, "a nightly run with history from the outputs");
}
