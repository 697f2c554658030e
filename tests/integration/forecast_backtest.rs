//! The measurement that chose the method of `spend_forecast` (queries/spend_forecast.sql:
//! `seasonal_trend`, with `linear` as its fallback) and that gives its prediction intervals:
//! candidate methods backtested on generated months with a weekday pattern, growth and a step
//! change, against the linear projection (month to date / days elapsed x days in the month). Error per horizon (days left in the month) is the absolute
//! error of the month's total as a share of it. The results are in docs/OUTPUTS.md
//! (#forecasting-month-end-spend); run with `--nocapture` to print them.

use gateway_analytics::forecast;

/// A deterministic generator of uniform numbers in [0, 1) (64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A generated series: 56 days of history, then a 30-day month; day 0 of the month is a Monday
/// when `offset` is 0.
struct Scenario {
    name: &'static str,
    /// Weekend days cost this share of a weekday.
    weekend: f64,
    /// Daily growth factor.
    growth: f64,
    /// From this day of the month on, costs are multiplied by `step`.
    step_day: usize,
    step: f64,
    /// Noise: each day is multiplied by 1 +- this.
    noise: f64,
}

const HISTORY: usize = 56;
const MONTH: usize = 30;

fn series(s: &Scenario, seed: u64) -> Vec<f64> {
    let mut rng = Lcg(seed);
    let offset = (seed % 7) as usize;
    (0..HISTORY + MONTH)
        .map(|i| {
            let weekday = (i + offset) % 7;
            let season = if weekday >= 5 { s.weekend } else { 1.0 };
            let day_of_month = i as i64 - HISTORY as i64;
            let step = if day_of_month >= s.step_day as i64 { s.step } else { 1.0 };
            let noise = 1.0 + s.noise * (2.0 * rng.next() - 1.0);
            100.0 * season * s.growth.powi(i as i32) * step * noise
        })
        .collect()
}

/// Today's projection: month to date / days elapsed x days in the month.
fn linear(days: &[f64], elapsed: usize) -> f64 {
    let month_to_date: f64 = days[HISTORY..HISTORY + elapsed].iter().sum();
    month_to_date / elapsed as f64 * MONTH as f64
}

/// Weekday factors from the 28 days before `end` (each day-of-week's mean over the overall mean).
fn weekday_factors(days: &[f64], end: usize) -> [f64; 7] {
    let window = &days[end - 28..end];
    let mean = window.iter().sum::<f64>() / 28.0;
    let mut factors = [0.0; 7];
    for (i, value) in window.iter().enumerate() {
        factors[(end - 28 + i) % 7] += value / 4.0 / mean;
    }
    factors
}

/// Seasonal level: the last 7 days, deseasonalised, averaged; the remaining days are that level
/// times their weekday's factor.
fn seasonal(days: &[f64], elapsed: usize) -> f64 {
    let end = HISTORY + elapsed;
    let factors = weekday_factors(days, end);
    let level = (end - 7..end).map(|i| days[i] / factors[i % 7]).sum::<f64>() / 7.0;
    let known: f64 = days[HISTORY..end].iter().sum();
    known + (end..HISTORY + MONTH).map(|i| level * factors[i % 7]).sum::<f64>()
}

/// Seasonal level and trend: a least-squares line through the last 14 deseasonalised days,
/// continued (its slope halved, a damped trend) and re-seasonalised.
fn seasonal_trend(days: &[f64], elapsed: usize) -> f64 {
    let end = HISTORY + elapsed;
    let factors = weekday_factors(days, end);
    let points: Vec<(f64, f64)> = (end - 14..end).map(|i| (i as f64, days[i] / factors[i % 7])).collect();
    let n = points.len() as f64;
    let (mx, my) = (points.iter().map(|p| p.0).sum::<f64>() / n, points.iter().map(|p| p.1).sum::<f64>() / n);
    let slope = points.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum::<f64>()
        / points.iter().map(|p| (p.0 - mx).powi(2)).sum::<f64>();
    let known: f64 = days[HISTORY..end].iter().sum();
    let last = (end - 1) as f64;
    let at_last = my + slope * (last - mx);
    known
        + (end..HISTORY + MONTH)
            .map(|i| ((at_last + 0.5 * slope * (i as f64 - last)).max(0.0)) * factors[i % 7])
            .sum::<f64>()
}

type Method = fn(&[f64], usize) -> f64;
const METHODS: [(&str, Method); 3] = [("linear", linear), ("seasonal", seasonal), ("seasonal+trend", seasonal_trend)];
/// Horizons (days left in the month) grouped as the docs report them.
const BUCKETS: [(usize, usize); 4] = [(1, 7), (8, 14), (15, 21), (22, 29)];

/// Mean absolute percentage error of the month's total per method and horizon bucket.
fn backtest(scenario: &Scenario, seeds: u64) -> Vec<[f64; 4]> {
    let mut errors = vec![[0.0; 4]; METHODS.len()];
    let mut counts = [0usize; 4];
    for seed in 1..=seeds {
        let days = series(scenario, seed);
        let actual: f64 = days[HISTORY..].iter().sum();
        for elapsed in 1..MONTH {
            let horizon = MONTH - elapsed;
            let Some(bucket) = BUCKETS.iter().position(|(lo, hi)| (*lo..=*hi).contains(&horizon)) else { continue };
            counts[bucket] += 1;
            for (m, (_, method)) in METHODS.iter().enumerate() {
                errors[m][bucket] += (method(&days, elapsed) - actual).abs() / actual;
            }
        }
    }
    for row in &mut errors {
        for (bucket, value) in row.iter_mut().enumerate() {
            *value = 100.0 * *value / counts[bucket] as f64;
        }
    }
    errors
}

const SCENARIOS: [Scenario; 4] = [
    Scenario { name: "weekday pattern", weekend: 0.3, growth: 1.0, step_day: 99, step: 1.0, noise: 0.1 },
    Scenario { name: "weekday + 1%/day growth", weekend: 0.3, growth: 1.01, step_day: 99, step: 1.0, noise: 0.1 },
    Scenario { name: "weekday + step x1.8 on day 12", weekend: 0.3, growth: 1.0, step_day: 12, step: 1.8, noise: 0.1 },
    Scenario { name: "flat (no pattern)", weekend: 1.0, growth: 1.0, step_day: 99, step: 1.0, noise: 0.1 },
];

/// Nearest-rank quantile `q` of `values` (sorted here).
fn quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// The ratios realised month total / forecast month total of `method` over every scenario, seed
/// and day of the month, per horizon bucket.
fn ratios(method: Method) -> Vec<Vec<f64>> {
    let mut ratios = vec![Vec::new(); BUCKETS.len()];
    for scenario in &SCENARIOS {
        for seed in 1..=40 {
            let days = series(scenario, seed);
            let actual: f64 = days[HISTORY..].iter().sum();
            for elapsed in 1..MONTH {
                let horizon = MONTH - elapsed;
                let Some(bucket) = BUCKETS.iter().position(|(lo, hi)| (*lo..=*hi).contains(&horizon)) else { continue };
                ratios[bucket].push(actual / method(&days, elapsed));
            }
        }
    }
    ratios
}

/// spend_forecast's intervals (gateway_analytics::forecast::INTERVALS) are these quantiles:
/// a change of method or scenarios that moves them fails here until the constants follow.
#[test]
fn the_prediction_intervals_are_the_backtests_ratio_quantiles() {
    let production = [(forecast::LINEAR, linear as Method), (forecast::SEASONAL_TREND, seasonal_trend as Method)];
    for (name, method) in production {
        for (bucket, mut values) in ratios(method).into_iter().enumerate() {
            let (low, high) = (quantile(&mut values, 0.05), quantile(&mut values, 0.95));
            println!("{name} {:?} days left: 90% of realised/forecast in [{low:.3}, {high:.3}]", BUCKETS[bucket]);
            let (from, _) = BUCKETS[bucket];
            let Some(interval) = forecast::INTERVALS.iter().find(|i| i.0 == name && i.1 as usize == from) else {
                panic!("no interval for {name} from {from} days left");
            };
            assert!((interval.3 - low).abs() < 0.0006 && (interval.4 - high).abs() < 0.0006, "{name} {interval:?}");
        }
    }
}

#[test]
fn the_seasonal_forecast_beats_the_linear_projection_where_weekdays_matter() {
    for scenario in &SCENARIOS {
        let errors = backtest(scenario, 40);
        println!("{}: mean absolute % error of the month total, days left 1-7 | 8-14 | 15-21 | 22-29", scenario.name);
        for ((name, _), row) in METHODS.iter().zip(&errors) {
            println!("  {name:15} {:6.2} {:6.2} {:6.2} {:6.2}", row[0], row[1], row[2], row[3]);
        }
        let mean = |row: &[f64; 4]| row.iter().sum::<f64>() / 4.0;
        let (linear, seasonal, trend) = (mean(&errors[0]), mean(&errors[1]), mean(&errors[2]));
        if scenario.weekend < 1.0 {
            assert!(seasonal.min(trend) < linear, "{}: no better than linear", scenario.name);
        }
        if scenario.growth > 1.0 {
            assert!(trend < seasonal, "{}: the trend should help under growth", scenario.name);
        }
    }
}
