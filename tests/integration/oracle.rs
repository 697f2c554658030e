//! An independent implementation of the daily_spend and hourly_errors definitions in plain
//! Rust (no SQL beyond reading raw columns), compared with the job's output on the demo data.
//! Latency weights here are plain f64 1/sampling_fraction, as a naive reimplementation would.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use deltalake::arrow::array::{Array, AsArray, MapArray, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Float64Type, Int64Type};
use gateway_analytics::inputs::delta_provider;
use gateway_analytics::location::Location;
use gateway_analytics::reference_data::{parse_prices, parse_teams};
use gateway_analytics::run::session;

use super::common::{demo, demo_job, demo_window, read_table, run_job};

const DAY_US: i64 = 86_400_000_000;
const HOUR_US: i64 = 3_600_000_000;

async fn raw(table: &str, columns: &str) -> Vec<RecordBatch> {
    let ctx = session();
    let location = Location::resolve(&demo().join(table).display().to_string(), Path::new("/")).unwrap();
    ctx.register_table("t", delta_provider(&ctx, table, &location, &Default::default()).await.unwrap()).unwrap();
    ctx.sql(&format!("SELECT {columns} FROM t")).await.unwrap().collect().await.unwrap()
}

fn strings(batch: &RecordBatch, i: usize) -> Vec<Option<String>> {
    let column = cast(batch.column(i), &DataType::Utf8).unwrap();
    let column = column.as_any().downcast_ref::<StringArray>().unwrap();
    (0..column.len()).map(|r| (!column.is_null(r)).then(|| column.value(r).to_string())).collect()
}

fn ints(batch: &RecordBatch, i: usize) -> Vec<Option<i64>> {
    let column = match batch.column(i).data_type() {
        DataType::Timestamp(_, _) => cast(&cast(batch.column(i), &DataType::Timestamp(deltalake::arrow::datatypes::TimeUnit::Microsecond, None)).unwrap(), &DataType::Int64).unwrap(),
        _ => cast(batch.column(i), &DataType::Int64).unwrap(),
    };
    let column = column.as_primitive::<Int64Type>();
    (0..column.len()).map(|r| (!column.is_null(r)).then(|| column.value(r))).collect()
}

fn floats(batch: &RecordBatch, i: usize) -> Vec<Option<f64>> {
    let column = cast(batch.column(i), &DataType::Float64).unwrap();
    let column = column.as_primitive::<Float64Type>();
    (0..column.len()).map(|r| (!column.is_null(r)).then(|| column.value(r))).collect()
}

fn team_in_context(map: &MapArray, row: usize) -> Option<String> {
    if map.is_null(row) {
        return None;
    }
    let entries = map.value(row);
    let keys = entries.column(0).as_any().downcast_ref::<StringArray>().unwrap();
    let values = entries.column(1).as_any().downcast_ref::<StringArray>().unwrap();
    (0..keys.len()).find(|&k| keys.value(k) == "team").and_then(|k| (!values.is_null(k)).then(|| values.value(k).to_string()))
}

fn date_string(us: i64) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    (epoch + chrono::Duration::days(us.div_euclid(DAY_US))).to_string()
}

/// Decimal text (as Arrow prints it) to units of 10^-12.
fn decimal_units(text: &str) -> i128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    format!("{whole}{fraction:0<12}").parse().unwrap()
}

#[derive(Default, Debug, PartialEq)]
struct Spend {
    requests: i64,
    succeeded: i64,
    rate_limited: i64,
    failed: i64,
    input: i64,
    output: i64,
    cost_units: i128,
    unpriced: i64,
}

#[derive(Default, Debug, PartialEq)]
struct Errors {
    requests: i64,
    http_4xx: i64,
    http_429: i64,
    http_5xx: i64,
    error_rate: f64,
    latency: [Option<i64>; 3],
}

#[tokio::test]
async fn outputs_agree_with_an_independent_implementation() {
    let (from, to) = (demo_window().from, demo_window().to);
    let start = from.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let end = (to + chrono::Duration::days(1)).and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();

    // served_entities: the latest change per id; ties go to the greatest names.
    let mut names: HashMap<String, (Option<i64>, Option<String>, Option<String>)> = HashMap::new();
    for batch in raw("served_entities", "served_entity_id, change_time, endpoint_name, entity_name").await {
        let (ids, times, endpoints, entities) = (strings(&batch, 0), ints(&batch, 1), strings(&batch, 2), strings(&batch, 3));
        for r in 0..batch.num_rows() {
            let Some(id) = ids[r].clone() else { continue };
            let candidate = (times[r], endpoints[r].clone(), entities[r].clone());
            let keep = names.get(&id).is_none_or(|current| candidate > *current);
            if keep {
                names.insert(id, candidate);
            }
        }
    }
    let lookup = |id: &Option<String>| -> (String, String) {
        match id.as_ref().and_then(|id| names.get(id)) {
            Some((_, endpoint, entity)) => (
                endpoint.clone().unwrap_or("(unknown)".into()),
                entity.clone().unwrap_or("(unknown)".into()),
            ),
            None => ("(unknown)".into(), "(unknown)".into()),
        }
    };
    let teams: HashMap<String, String> = parse_teams(&std::fs::read(demo().join("teams.csv")).unwrap(), "teams").unwrap().into_iter().collect();
    let prices = parse_prices(&std::fs::read(demo().join("prices.csv")).unwrap(), "prices").unwrap();

    let mut spend: BTreeMap<(String, String, String, String, String), Spend> = BTreeMap::new();
    let mut errors: BTreeMap<(i64, String, String), Errors> = BTreeMap::new();
    let usage_columns = "request_time, status_code, requester, input_token_count, output_token_count, served_entity_id, usage_context";
    for batch in raw("endpoint_usage", usage_columns).await {
        let (times, statuses, requesters) = (ints(&batch, 0), ints(&batch, 1), strings(&batch, 2));
        let (inputs, outputs, entity_ids) = (ints(&batch, 3), ints(&batch, 4), strings(&batch, 5));
        let contexts = batch.column(6).as_any().downcast_ref::<MapArray>().unwrap();
        for r in 0..batch.num_rows() {
            let Some(t) = times[r] else { continue };
            if t < start || t >= end {
                continue;
            }
            let (endpoint, entity) = lookup(&entity_ids[r]);
            let requester = requesters[r].clone().unwrap_or("(unknown)".into());
            let team = team_in_context(contexts, r)
                .filter(|t| !t.is_empty())
                .or_else(|| requesters[r].as_ref().and_then(|p| teams.get(p)).filter(|t| !t.is_empty()).cloned())
                .unwrap_or("unattributed".into());
            let (input, output) = (inputs[r].unwrap_or(0), outputs[r].unwrap_or(0));
            let price = prices
                .iter()
                .filter(|p| p.entity_name == entity && p.effective_from_us <= t)
                .max_by_key(|p| p.effective_from_us);
            let status = statuses[r];
            let in_range = |lo: i64, hi: i64| status.is_some_and(|s| s >= lo && s <= hi);

            let s = spend.entry((date_string(t), endpoint.clone(), entity.clone(), requester, team)).or_default();
            s.requests += 1;
            s.succeeded += i64::from(in_range(200, 299));
            s.rate_limited += i64::from(status == Some(429));
            s.failed += i64::from(status.is_some_and(|s| s >= 400 && s != 429));
            s.input += input;
            s.output += output;
            match price {
                Some(p) => s.cost_units += i128::from(input) * p.input_micros_per_million + i128::from(output) * p.output_micros_per_million,
                None => s.unpriced += i64::from(input + output > 0),
            }

            let e = errors.entry((t - t.rem_euclid(HOUR_US), endpoint, entity)).or_default();
            e.requests += 1;
            e.http_4xx += i64::from(in_range(400, 499) && status != Some(429));
            e.http_429 += i64::from(status == Some(429));
            e.http_5xx += i64::from(in_range(500, 599));
        }
    }

    // Latency samples per group: (duration, 1/sampling_fraction).
    let mut samples: HashMap<(i64, String, String), Vec<(i64, f64)>> = HashMap::new();
    for batch in raw("gateway_payload", "request_time, status_code, execution_duration_ms, sampling_fraction, served_entity_id").await {
        let (times, statuses, durations, fractions, entity_ids) =
            (ints(&batch, 0), ints(&batch, 1), ints(&batch, 2), floats(&batch, 3), strings(&batch, 4));
        for r in 0..batch.num_rows() {
            let Some(t) = times[r].filter(|t| *t >= start && *t < end) else { continue };
            let ok = statuses[r].is_some_and(|s| (200..=299).contains(&s));
            let (Some(duration), Some(fraction)) = (durations[r], fractions[r]) else { continue };
            if !ok || duration < 0 || fraction < 1e-9 || fraction > 1.0 {
                continue;
            }
            let (endpoint, entity) = lookup(&entity_ids[r]);
            samples.entry((t - t.rem_euclid(HOUR_US), endpoint, entity)).or_default().push((duration, 1.0 / fraction));
        }
    }
    for (key, e) in errors.iter_mut() {
        e.error_rate = (e.http_4xx + e.http_429 + e.http_5xx) as f64 / e.requests as f64;
        if let Some(points) = samples.get_mut(key) {
            points.sort_by_key(|(d, _)| *d);
            let total: f64 = points.iter().map(|(_, w)| w).sum();
            for (slot, q) in [0.50, 0.95, 0.99].into_iter().enumerate() {
                let mut cumulative = 0.0;
                e.latency[slot] = points.iter().find(|(_, w)| {
                    cumulative += w;
                    cumulative >= q * total
                }).map(|(d, _)| *d);
            }
        }
    }

    // The job's outputs, read back.
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    let mut job_spend = BTreeMap::new();
    for batch in read_table(&dir.path().join("daily_spend")).await {
        let key_columns: Vec<_> = (0..5).map(|i| strings(&batch, i)).collect();
        let counts: Vec<_> = [5, 6, 7, 8, 9, 10, 12].iter().map(|&i| ints(&batch, i)).collect();
        let costs = strings(&batch, 11);
        for r in 0..batch.num_rows() {
            let key = (0..5).map(|i| key_columns[i][r].clone().unwrap()).collect::<Vec<_>>();
            let value = |i: usize| counts[i][r].unwrap();
            job_spend.insert(
                (key[0].clone(), key[1].clone(), key[2].clone(), key[3].clone(), key[4].clone()),
                Spend {
                    requests: value(0), succeeded: value(1), rate_limited: value(2), failed: value(3),
                    input: value(4), output: value(5), cost_units: decimal_units(costs[r].as_deref().unwrap()), unpriced: value(6),
                },
            );
        }
    }
    assert_eq!(job_spend.len(), spend.len());
    for (key, expected) in &spend {
        assert_eq!(job_spend.get(key), Some(expected), "daily_spend row {key:?}");
    }

    let mut job_errors = BTreeMap::new();
    for batch in read_table(&dir.path().join("hourly_errors")).await {
        let (hours, endpoints, entities) = (ints(&batch, 1), strings(&batch, 2), strings(&batch, 3));
        let counts: Vec<_> = (4..8).map(|i| ints(&batch, i)).collect();
        let rates = floats(&batch, 8);
        let latencies: Vec<_> = (9..12).map(|i| ints(&batch, i)).collect();
        for r in 0..batch.num_rows() {
            job_errors.insert(
                (hours[r].unwrap(), endpoints[r].clone().unwrap(), entities[r].clone().unwrap()),
                Errors {
                    requests: counts[0][r].unwrap(), http_4xx: counts[1][r].unwrap(), http_429: counts[2][r].unwrap(),
                    http_5xx: counts[3][r].unwrap(), error_rate: rates[r].unwrap(),
                    latency: [latencies[0][r], latencies[1][r], latencies[2][r]],
                },
            );
        }
    }
    assert_eq!(job_errors.len(), errors.len());
    for (key, expected) in &errors {
        assert_eq!(job_errors.get(key), Some(expected), "hourly_errors row {key:?}");
    }
    assert!(errors.values().any(|e| e.latency[0].is_none()), "the fixtures should have groups without latency");
    assert!(spend.values().any(|s| s.unpriced > 0) && spend.values().any(|s| s.cost_units > 0));
}
