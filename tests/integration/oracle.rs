//! An independent implementation of the daily_spend and hourly_errors definitions in plain
//! Rust (no SQL beyond reading raw columns), compared with the job's output on the demo data
//! (and, in bad_inputs.rs, on a usage table with bad rows).
//! Latency weights here are plain f64 1/sampling_fraction, as a naive reimplementation would.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use deltalake::arrow::array::{Array, AsArray, MapArray, RecordBatch, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::{DataType, Float64Type, Int64Type};
use gateway_analytics::engine::session;
use gateway_analytics::inputs::delta_provider;
use gateway_analytics::location::Location;
use gateway_analytics::prices::parse_csv;
use gateway_analytics::reference_data::parse_teams;

use super::common::{demo, demo_job, demo_window, read_table, run_job};

const DAY_US: i64 = 86_400_000_000;
const HOUR_US: i64 = 3_600_000_000;

async fn raw(table: &str, columns: &str) -> Vec<RecordBatch> {
    raw_at(&demo().join(table), columns).await
}

pub(super) async fn raw_at(table: &Path, columns: &str) -> Vec<RecordBatch> {
    let ctx = session().unwrap();
    let location = Location::resolve(&table.display().to_string(), Path::new("/")).unwrap();
    ctx.register_table("t", delta_provider(&ctx, "oracle", &location, &Default::default()).await.unwrap()).unwrap();
    ctx.sql(&format!("SELECT {columns} FROM t")).await.unwrap().collect().await.unwrap()
}

pub(super) fn strings(batch: &RecordBatch, i: usize) -> Vec<Option<String>> {
    let column = cast(batch.column(i), &DataType::Utf8).unwrap();
    let column = column.as_any().downcast_ref::<StringArray>().unwrap();
    (0..column.len()).map(|r| (!column.is_null(r)).then(|| column.value(r).to_string())).collect()
}

pub(super) fn ints(batch: &RecordBatch, i: usize) -> Vec<Option<i64>> {
    let column = match batch.column(i).data_type() {
        DataType::Timestamp(_, _) => cast(
            &cast(batch.column(i), &DataType::Timestamp(deltalake::arrow::datatypes::TimeUnit::Microsecond, None))
                .unwrap(),
            &DataType::Int64,
        )
        .unwrap(),
        _ => cast(batch.column(i), &DataType::Int64).unwrap(),
    };
    let column = column.as_primitive::<Int64Type>();
    (0..column.len()).map(|r| (!column.is_null(r)).then(|| column.value(r))).collect()
}

pub(super) fn floats(batch: &RecordBatch, i: usize) -> Vec<Option<f64>> {
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
    (0..keys.len())
        .find(|&k| keys.value(k) == "team")
        .and_then(|k| (!values.is_null(k)).then(|| values.value(k).to_string()))
}

pub(super) fn date_string(us: i64) -> String {
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
    (epoch + chrono::Duration::days(us.div_euclid(DAY_US))).to_string()
}

/// Decimal text (as Arrow prints it) to units of 10^-12.
pub(super) fn decimal_units(text: &str) -> i128 {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    format!("{whole}{fraction:0<12}").parse().unwrap()
}

type Names = HashMap<String, (Option<i64>, Option<String>, Option<String>)>;

/// served_entities: the latest change per id; ties go to the greatest names.
async fn latest_names() -> Names {
    let mut names: Names = HashMap::new();
    for batch in raw("served_entities", "served_entity_id, change_time, endpoint_name, entity_name").await {
        let (ids, times, endpoints, entities) =
            (strings(&batch, 0), ints(&batch, 1), strings(&batch, 2), strings(&batch, 3));
        for r in 0..batch.num_rows() {
            let Some(id) = ids[r].clone() else { continue };
            let candidate = (times[r], endpoints[r].clone(), entities[r].clone());
            if names.get(&id).is_none_or(|current| candidate > *current) {
                names.insert(id, candidate);
            }
        }
    }
    names
}

fn lookup_names(names: &Names, id: &Option<String>) -> (String, String) {
    match id.as_ref().and_then(|id| names.get(id)) {
        Some((_, endpoint, entity)) => {
            (endpoint.clone().unwrap_or("(unknown)".into()), entity.clone().unwrap_or("(unknown)".into()))
        }
        None => ("(unknown)".into(), "(unknown)".into()),
    }
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
    categories: [i64; 3],
    with_categories: i64,
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
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    spend_and_errors_agree(&demo().join("endpoint_usage"), dir.path()).await;
}

/// Compares the daily_spend and hourly_errors a run of the demo window wrote in `output` (the
/// demo job with the usage table at `usage`) with the definitions computed here. A negative
/// token count bills as 0, a row without a request_time is in no output, a NULL status is a
/// request in no status class, and rows sharing a request id are billed as rows of their own.
pub async fn spend_and_errors_agree(usage: &Path, output: &Path) {
    let (from, to) = (demo_window().from, demo_window().to);
    let start = from.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let end = (to + chrono::Duration::days(1)).and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();

    let names = latest_names().await;
    let lookup = |id: &Option<String>| lookup_names(&names, id);
    let teams: HashMap<String, String> =
        parse_teams(&std::fs::read(demo().join("teams.csv")).unwrap(), "teams").unwrap().into_iter().collect();
    let prices = parse_csv(&std::fs::read(demo().join("prices.csv")).unwrap(), "prices").unwrap();
    // Token categories of the requests the payload table logged with a usage block.
    let mut categories: HashMap<String, [i64; 3]> = HashMap::new();
    for batch in raw("gateway_payload", "databricks_request_id, response").await {
        let (ids, responses) = (strings(&batch, 0), strings(&batch, 1));
        for r in 0..batch.num_rows() {
            let (Some(id), Some(response)) = (&ids[r], &responses[r]) else { continue };
            if let Some(u) = gateway_json::parse_body(response).usage {
                let entry = categories.entry(id.clone()).or_insert([0; 3]);
                for (slot, value) in
                    [u.cache_read_tokens, u.cache_write_tokens, u.reasoning_tokens].into_iter().enumerate()
                {
                    entry[slot] = entry[slot].max(value as i64);
                }
            }
        }
    }

    let mut spend: BTreeMap<(String, String, String, String, String), Spend> = BTreeMap::new();
    let mut errors: BTreeMap<(i64, String, String), Errors> = BTreeMap::new();
    let usage_columns = "request_time, status_code, requester, input_token_count, output_token_count, \
                         served_entity_id, usage_context, databricks_request_id";
    for batch in raw_at(usage, usage_columns).await {
        let (times, statuses, requesters) = (ints(&batch, 0), ints(&batch, 1), strings(&batch, 2));
        let (inputs, outputs, entity_ids) = (ints(&batch, 3), ints(&batch, 4), strings(&batch, 5));
        let contexts = batch.column(6).as_any().downcast_ref::<MapArray>().unwrap();
        let request_ids = strings(&batch, 7);
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
            let (input, output) = (inputs[r].unwrap_or(0).max(0), outputs[r].unwrap_or(0).max(0));
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
            let known = request_ids[r].as_ref().and_then(|id| categories.get(id));
            let [cache_read, cache_write, reasoning] = known.copied().unwrap_or([0; 3]);
            let cache_read = cache_read.max(0).min(input.max(0));
            let cache_write = cache_write.max(0).min(input.max(0) - cache_read);
            let reasoning = reasoning.max(0).min(output.max(0));
            s.categories[0] += cache_read;
            s.categories[1] += cache_write;
            s.categories[2] += reasoning;
            s.with_categories += i64::from(known.is_some());
            match price {
                Some(p) => {
                    let uncached = i128::from(input - cache_read - cache_write);
                    let plain_output = i128::from(output - reasoning);
                    s.cost_units += uncached * p.input
                        + i128::from(cache_read) * p.cache_read.unwrap_or(p.input)
                        + i128::from(cache_write) * p.cache_write.unwrap_or(p.input)
                        + plain_output * p.output
                        + i128::from(reasoning) * p.reasoning.unwrap_or(p.output)
                }
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
    for batch in
        raw("gateway_payload", "request_time, status_code, execution_duration_ms, sampling_fraction, served_entity_id")
            .await
    {
        let (times, statuses, durations, fractions, entity_ids) =
            (ints(&batch, 0), ints(&batch, 1), ints(&batch, 2), floats(&batch, 3), strings(&batch, 4));
        for r in 0..batch.num_rows() {
            let Some(t) = times[r].filter(|t| *t >= start && *t < end) else { continue };
            let ok = statuses[r].is_some_and(|s| (200..=299).contains(&s));
            let (Some(duration), Some(fraction)) = (durations[r], fractions[r]) else { continue };
            if !ok || duration < 0 || !(1e-9..=1.0).contains(&fraction) {
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
                e.latency[slot] = points
                    .iter()
                    .find(|(_, w)| {
                        cumulative += w;
                        cumulative >= q * total
                    })
                    .map(|(d, _)| *d);
            }
        }
    }

    // The job's outputs, read back.
    let mut job_spend = BTreeMap::new();
    for batch in read_table(&output.join("daily_spend")).await {
        let key_columns: Vec<_> = (0..5).map(|i| strings(&batch, i)).collect();
        let counts: Vec<_> = [
            "requests",
            "succeeded",
            "rate_limited",
            "failed",
            "input_tokens",
            "output_tokens",
            "unpriced_requests",
            "cache_read_tokens",
            "cache_write_tokens",
            "reasoning_tokens",
            "requests_with_categories",
        ]
        .iter()
        .map(|name| gateway_analytics::columns::ints(&batch, name).unwrap())
        .collect();
        let costs = gateway_analytics::columns::strings(&batch, "cost_usd").unwrap();
        for r in 0..batch.num_rows() {
            let key = (0..5).map(|i| key_columns[i][r].clone().unwrap()).collect::<Vec<_>>();
            let value = |i: usize| counts[i][r].unwrap();
            job_spend.insert(
                (key[0].clone(), key[1].clone(), key[2].clone(), key[3].clone(), key[4].clone()),
                Spend {
                    requests: value(0),
                    succeeded: value(1),
                    rate_limited: value(2),
                    failed: value(3),
                    input: value(4),
                    output: value(5),
                    cost_units: decimal_units(costs[r].as_deref().unwrap()),
                    unpriced: value(6),
                    categories: [value(7), value(8), value(9)],
                    with_categories: value(10),
                },
            );
        }
    }
    assert_eq!(job_spend.len(), spend.len());
    for (key, expected) in &spend {
        assert_eq!(job_spend.get(key), Some(expected), "daily_spend row {key:?}");
    }

    let mut job_errors = BTreeMap::new();
    for batch in read_table(&output.join("hourly_errors")).await {
        let (hours, endpoints, entities) = (ints(&batch, 1), strings(&batch, 2), strings(&batch, 3));
        let counts: Vec<_> = (4..8).map(|i| ints(&batch, i)).collect();
        // 8, 9: guardrail blocks (tests/integration/guardrails.rs; none in the demo).
        let rates = floats(&batch, 10);
        let latencies: Vec<_> = (11..14).map(|i| ints(&batch, i)).collect();
        for r in 0..batch.num_rows() {
            job_errors.insert(
                (hours[r].unwrap(), endpoints[r].clone().unwrap(), entities[r].clone().unwrap()),
                Errors {
                    requests: counts[0][r].unwrap(),
                    http_4xx: counts[1][r].unwrap(),
                    http_429: counts[2][r].unwrap(),
                    http_5xx: counts[3][r].unwrap(),
                    error_rate: rates[r].unwrap(),
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

/// Per-minute demand of one (endpoint, requester) or one endpoint: minute -> (calls, tokens, 429s).
type Minutes = BTreeMap<i64, (i64, i64, i64)>;

/// The ceil(q/100 * n)-th smallest value (nearest rank).
pub(super) fn nearest_rank(sorted: &[i64], q: usize) -> i64 {
    let rank = (q * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

#[derive(Debug, PartialEq)]
struct Recommended {
    action: String,
    active_minutes: i64,
    calls: i64,
    rate_limited: i64,
    quantiles: [i64; 3],
    peak: i64,
    current: Option<i64>,
    recommended: i64,
    throttled: [i64; 2],
    p99_tokens: i64,
    current_tokens: Option<i64>,
    recommended_tokens: Option<i64>,
}

#[tokio::test]
async fn recommendations_and_rate_alerts_agree_with_an_independent_implementation() {
    use gateway_analytics::rate_limits::{RateLimitConfig, RateLimitKey};

    let as_of_end = demo_window().end_exclusive().and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let lookback_start = as_of_end - 14 * DAY_US;
    let window_start = demo_window().from.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let names = latest_names().await;
    let config = RateLimitConfig::parse(&std::fs::read(demo().join("rate_limits.json")).unwrap(), "limits").unwrap();

    let mut demand: BTreeMap<(String, String), Minutes> = BTreeMap::new();
    // (endpoint, scope, scope value, hour) -> (requests, 429s, 5xx)
    type HourKey = (String, &'static str, String, i64);
    let mut hours: BTreeMap<HourKey, (i64, i64, i64)> = BTreeMap::new();
    for batch in raw(
        "endpoint_usage",
        "request_time, status_code, requester, input_token_count, output_token_count, served_entity_id",
    )
    .await
    {
        let (times, statuses, requesters) = (ints(&batch, 0), ints(&batch, 1), strings(&batch, 2));
        let (inputs, outputs, entity_ids) = (ints(&batch, 3), ints(&batch, 4), strings(&batch, 5));
        for r in 0..batch.num_rows() {
            let Some(t) = times[r].filter(|t| *t >= lookback_start && *t < as_of_end) else { continue };
            let (endpoint, _) = lookup_names(&names, &entity_ids[r]);
            let requester = requesters[r].clone().unwrap_or("(unknown)".into());
            let limited = i64::from(statuses[r] == Some(429));
            let server_error = i64::from(statuses[r].is_some_and(|s| (500..=599).contains(&s)));
            let tokens = inputs[r].unwrap_or(0).max(0) + outputs[r].unwrap_or(0).max(0);
            for who in [requester.clone(), "(endpoint)".to_string()] {
                let minute =
                    demand.entry((endpoint.clone(), who)).or_default().entry(t - t.rem_euclid(60_000_000)).or_default();
                minute.0 += 1;
                minute.1 += tokens;
                minute.2 += limited;
            }
            if t >= window_start {
                let hour = t - t.rem_euclid(HOUR_US);
                for (scope, value) in [("endpoint", endpoint.clone()), ("requester", requester.clone())] {
                    let h = hours.entry((endpoint.clone(), scope, value, hour)).or_default();
                    h.0 += 1;
                    h.1 += limited;
                    h.2 += server_error;
                }
            }
        }
    }

    let mut expected = BTreeMap::new();
    for ((endpoint, requester), minutes) in &demand {
        let mut calls: Vec<i64> = minutes.values().map(|m| m.0).collect();
        let mut tokens: Vec<i64> = minutes.values().map(|m| m.1).collect();
        calls.sort_unstable();
        tokens.sort_unstable();
        let rules = config.endpoints.get(endpoint).map(|e| e.rules.clone()).unwrap_or_default();
        let find = |key: RateLimitKey, principal: Option<&str>, tokens: bool| {
            rules
                .iter()
                .find(|r| {
                    r.key == key
                        && r.principal.as_deref() == principal
                        && if tokens { r.tokens.is_some() } else { r.calls.is_some() }
                })
                .and_then(|r| if tokens { r.tokens } else { r.calls })
        };
        let limit = |tokens: bool| {
            if requester == "(endpoint)" {
                find(RateLimitKey::Endpoint, None, tokens)
            } else {
                find(RateLimitKey::User, Some(requester), tokens)
                    .or_else(|| find(RateLimitKey::ServicePrincipal, Some(requester), tokens))
                    .or_else(|| find(RateLimitKey::User, None, tokens))
            }
        };
        let (current, current_tokens) = (limit(false), limit(true));
        let p99 = nearest_rank(&calls, 99);
        let recommended = ((p99 * 125 + 99) / 100).max(1);
        let p99_tokens = nearest_rank(&tokens, 99);
        let peak = *calls.last().unwrap();
        let rate_limited: i64 = minutes.values().map(|m| m.2).sum();
        let over = |limit: i64| minutes.values().map(|m| (m.0 - limit).max(0)).sum::<i64>();
        let action = match current {
            Some(c) if rate_limited > 0 && c < recommended => "raise",
            Some(c) if c > 4 * peak => "lower",
            None => "add",
            _ => "keep",
        };
        expected.insert(
            (endpoint.clone(), requester.clone()),
            Recommended {
                action: action.into(),
                active_minutes: calls.len() as i64,
                calls: calls.iter().sum(),
                rate_limited,
                quantiles: [nearest_rank(&calls, 50), nearest_rank(&calls, 95), p99],
                peak,
                current,
                recommended,
                throttled: [current.map_or(0, over), over(recommended)],
                p99_tokens,
                current_tokens,
                recommended_tokens: current_tokens.map(|_| ((p99_tokens * 125 + 99) / 100).max(1)),
            },
        );
    }

    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    let mut actual = BTreeMap::new();
    for batch in read_table(&dir.path().join("rate_limit_recommendations")).await {
        let text = |name: &str| gateway_analytics::columns::strings(&batch, name).unwrap();
        let number = |name: &str| gateway_analytics::columns::ints(&batch, name).unwrap();
        let (endpoint, requester, action) = (text("endpoint_name"), text("requester"), text("action"));
        let cols: Vec<Vec<Option<i64>>> = [
            "active_minutes",
            "calls",
            "rate_limited",
            "p50_calls_per_minute",
            "p95_calls_per_minute",
            "p99_calls_per_minute",
            "peak_calls_per_minute",
            "current_calls_per_minute",
            "recommended_calls_per_minute",
            "throttled_under_current",
            "throttled_under_recommended",
            "p99_tokens_per_minute",
            "current_tokens_per_minute",
            "recommended_tokens_per_minute",
        ]
        .iter()
        .map(|c| number(c))
        .collect();
        for r in 0..batch.num_rows() {
            let v = |i: usize| cols[i][r];
            actual.insert(
                (endpoint[r].clone().unwrap(), requester[r].clone().unwrap()),
                Recommended {
                    action: action[r].clone().unwrap(),
                    active_minutes: v(0).unwrap(),
                    calls: v(1).unwrap(),
                    rate_limited: v(2).unwrap(),
                    quantiles: [v(3).unwrap(), v(4).unwrap(), v(5).unwrap()],
                    peak: v(6).unwrap(),
                    current: v(7),
                    recommended: v(8).unwrap(),
                    throttled: [v(9).unwrap(), v(10).unwrap()],
                    p99_tokens: v(11).unwrap(),
                    current_tokens: v(12),
                    recommended_tokens: v(13),
                },
            );
        }
    }
    assert_eq!(actual.len(), expected.len());
    for (key, row) in &expected {
        assert_eq!(actual.get(key), Some(row), "recommendation {key:?}");
    }

    // rate_limited_share (both scopes) and error_rate, with the default thresholds (at least 20
    // requests and 5 matching rows), as firing records; then their lifecycle: consecutive
    // firing hours are one incident whose id is the alert_id of its first record, and the hour
    // after an incident's last one (when inside the window) has a resolved record.
    let window_end = demo_window().end_exclusive().and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let mut expected_alerts = BTreeSet::new();
    for ((endpoint, scope, value, hour), (requests, limited, errors)) in &hours {
        let severity = |hits: i64, warning: i64, critical: i64| {
            if hits < 5 {
                None
            } else if hits * 1_000_000 >= requests * critical {
                Some("critical")
            } else if hits * 1_000_000 >= requests * warning {
                Some("warning")
            } else {
                None
            }
        };
        if *requests >= 20 {
            if let Some(s) = severity(*limited, 50_000, 200_000) {
                expected_alerts.insert((
                    "rate_limited_share".to_string(),
                    endpoint.clone(),
                    scope.to_string(),
                    value.clone(),
                    *hour,
                    s.to_string(),
                ));
            }
            if *scope == "endpoint"
                && let Some(s) = severity(*errors, 20_000, 100_000)
            {
                expected_alerts.insert((
                    "error_rate".to_string(),
                    endpoint.clone(),
                    scope.to_string(),
                    value.clone(),
                    *hour,
                    s.to_string(),
                ));
            }
        }
    }
    // (rule, endpoint, scope, value) -> firing hours, in order.
    type Condition = (String, String, String, String);
    let mut conditions: BTreeMap<Condition, Vec<(i64, String)>> = BTreeMap::new();
    for (rule, endpoint, scope, value, hour, severity) in &expected_alerts {
        conditions
            .entry((rule.clone(), endpoint.clone(), scope.clone(), value.clone()))
            .or_default()
            .push((*hour, severity.clone()));
    }
    // Expected records: (rule, endpoint, scope, value, hour, status, severity, first hour of the incident).
    let mut expected_records = BTreeSet::new();
    for ((rule, endpoint, scope, value), firing) in &conditions {
        let mut first = firing[0].0;
        for (index, (hour, severity)) in firing.iter().enumerate() {
            if index > 0 && firing[index - 1].0 != hour - HOUR_US {
                first = *hour;
            }
            let record = (rule.clone(), endpoint.clone(), scope.clone(), value.clone());
            expected_records.insert((record.clone(), *hour, "firing".to_string(), severity.clone(), first));
            let continues = firing.get(index + 1).is_some_and(|(next, _)| *next == hour + HOUR_US);
            if !continues && hour + HOUR_US < window_end {
                expected_records.insert((record, hour + HOUR_US, "resolved".to_string(), severity.clone(), first));
            }
        }
    }
    let mut actual_records = BTreeSet::new();
    let mut first_ids: BTreeMap<(Condition, i64), String> = BTreeMap::new();
    let mut incident_ids = Vec::new();
    for batch in read_table(&dir.path().join("alerts")).await {
        let text = |name: &str| gateway_analytics::columns::strings(&batch, name).unwrap();
        let (rule, endpoint, scope, value, severity) =
            (text("rule"), text("endpoint_name"), text("scope"), text("scope_value"), text("severity"));
        let (status, alert_id, incident_id) = (text("status"), text("alert_id"), text("incident_id"));
        let starts = ints(&batch, batch.schema().index_of("window_start").unwrap());
        let incident_starts = ints(&batch, batch.schema().index_of("incident_start").unwrap());
        for r in 0..batch.num_rows() {
            if !matches!(rule[r].as_deref(), Some("rate_limited_share" | "error_rate")) {
                continue;
            }
            let record = (
                rule[r].clone().unwrap(),
                endpoint[r].clone().unwrap(),
                scope[r].clone().unwrap(),
                value[r].clone().unwrap(),
            );
            let first = incident_starts[r].unwrap();
            if status[r].as_deref() == Some("firing") && starts[r] == Some(first) {
                first_ids.insert((record.clone(), first), alert_id[r].clone().unwrap());
            }
            incident_ids.push(((record.clone(), first), incident_id[r].clone().unwrap()));
            actual_records.insert((
                record,
                starts[r].unwrap(),
                status[r].clone().unwrap(),
                severity[r].clone().unwrap(),
                first,
            ));
        }
    }
    assert_eq!(actual_records, expected_records);
    for (incident, id) in incident_ids {
        assert_eq!(first_ids.get(&incident), Some(&id), "incident {incident:?}: its id is its first record's alert_id");
    }
    assert!(expected_records.iter().any(|r| r.2 == "resolved"), "the demo window has incidents that end");
}
