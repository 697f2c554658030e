//! pricing_what_if and cache_savings against an independent computation in plain Rust: from
//! daily_spend's token categories (which oracle.rs checks against the raw tables) and the two
//! price files, in exact integer picodollars. A day on which a price involved changes is only
//! checked for its row being there (its requests straddle two prices, which daily_spend's
//! totals cannot split).

use std::collections::{BTreeMap, BTreeSet};

use deltalake::arrow::array::{Array, StringArray};
use deltalake::arrow::compute::cast;
use deltalake::arrow::datatypes::DataType;
use gateway_analytics::config::JobConfig;
use gateway_analytics::location::Location;
use gateway_analytics::prices::{PriceRow, parse_csv};

use super::common::{demo, demo_job, demo_window, query_table, run_only};

const WHAT_IF: &str = "entity_name,effective_from,input_usd_per_million,output_usd_per_million,\
cache_read_usd_per_million,cache_write_usd_per_million,reasoning_usd_per_million
gpt-5,2026-01-01,1.00,8.00,0.10,,2.5
system.ai.databricks-claude-sonnet-4-5,2026-11-02,2.00,10.00,,4.00,
";

/// Every column of `sql`'s rows as text.
pub async fn rows(table: &std::path::Path, sql: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for batch in query_table(table, sql).await {
        let columns: Vec<StringArray> = batch
            .columns()
            .iter()
            .map(|c| cast(c, &DataType::Utf8).unwrap().as_any().downcast_ref::<StringArray>().unwrap().clone())
            .collect();
        for r in 0..batch.num_rows() {
            out.push(
                columns.iter().map(|c| if c.is_null(r) { String::new() } else { c.value(r).to_string() }).collect(),
            );
        }
    }
    out
}

/// Decimal text to units of 10^-12.
pub fn units(text: &str) -> i128 {
    let negative = text.starts_with('-');
    let text = text.trim_start_matches('-');
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let value: i128 = format!("{whole}{fraction:0<12}").parse().unwrap();
    if negative { -value } else { value }
}

/// The price row of `entity` in effect throughout `date` (UTC), if one is; `Err` when the
/// price changes during the day.
fn day_price<'a>(prices: &'a [PriceRow], entity: &str, date: &str) -> Result<Option<&'a PriceRow>, ()> {
    let day: chrono::NaiveDate = date.parse().unwrap();
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros();
    let end = start + 86_400_000_000 - 1;
    let at = |t: i64| {
        prices
            .iter()
            .filter(|p| p.entity_name == entity && p.effective_from_us <= t)
            .max_by_key(|p| p.effective_from_us)
    };
    let (first, last) = (at(start), at(end));
    if first.map(|p| p.effective_from_us) != last.map(|p| p.effective_from_us) { Err(()) } else { Ok(first) }
}

/// (date, entity, scenario, priced_as), or (date, endpoint, entity, team).
type Key = (String, String, String, String);

/// Token parts of a daily_spend row: plain input, cache read, cache write, plain output, reasoning.
type Parts = [i128; 5];

fn cost(parts: &Parts, p: &PriceRow) -> i128 {
    parts[0] * p.input
        + parts[1] * p.cache_read.unwrap_or(p.input)
        + parts[2] * p.cache_write.unwrap_or(p.input)
        + parts[3] * p.output
        + parts[4] * p.reasoning.unwrap_or(p.output)
}

#[tokio::test]
async fn what_if_and_cache_savings_agree_with_an_independent_computation() {
    let dir = tempfile::tempdir().unwrap();
    let what_if_path = dir.path().join("what_if.csv");
    std::fs::write(&what_if_path, WHAT_IF).unwrap();
    let out = dir.path().join("out");
    let mut job: JobConfig = demo_job(&out);
    job.what_if_prices = Some(Location::resolve(&what_if_path.display().to_string(), dir.path()).unwrap());
    run_only(&job, demo_window(), &["pricing_what_if", "cache_savings", "daily_spend"]).await.unwrap();

    let prices = parse_csv(&std::fs::read(demo().join("prices.csv")).unwrap(), "prices").unwrap();
    let what_if = parse_csv(WHAT_IF.as_bytes(), "what_if").unwrap();
    // The task from the price list: does the entity's latest price charge for output tokens?
    let generates = |entity: &str| {
        prices.iter().filter(|p| p.entity_name == entity).max_by_key(|p| p.effective_from_us).map(|p| p.output > 0)
    };
    let entities: BTreeSet<String> = prices.iter().map(|p| p.entity_name.clone()).collect();

    // daily_spend, summed per (date, endpoint, entity, team) and per (date, entity).
    let spend = rows(
        &out.join("daily_spend"),
        "SELECT CAST(usage_date AS STRING), endpoint_name, entity_name, team, input_tokens, output_tokens, \
         cache_read_tokens, cache_write_tokens, reasoning_tokens, cost_usd, requests FROM t",
    )
    .await;
    let mut by_team: BTreeMap<Key, Parts> = BTreeMap::new();
    let mut by_entity: BTreeMap<(String, String), (Parts, i128, i128)> = BTreeMap::new();
    for row in &spend {
        let n = |i: usize| row[i].parse::<i128>().unwrap();
        let parts: Parts = [n(4) - n(6) - n(7), n(6), n(7), n(5) - n(8), n(8)];
        let add = |into: &mut Parts| (0..5).for_each(|i| into[i] += parts[i]);
        add(by_team.entry((row[0].clone(), row[1].clone(), row[2].clone(), row[3].clone())).or_default());
        let entry = by_entity.entry((row[0].clone(), row[2].clone())).or_default();
        add(&mut entry.0);
        entry.1 += units(&row[9]);
        entry.2 += n(10);
    }

    // cache_savings.
    let mut expected: BTreeMap<Key, Option<[i128; 4]>> = BTreeMap::new();
    for (key, parts) in &by_team {
        if parts[1] + parts[2] == 0 || !entities.contains(&key.2) {
            continue;
        }
        let value = day_price(&prices, &key.2, &key.0).ok().flatten().map(|p| {
            let uncached = parts[1] * p.input;
            let reads = parts[1] * p.cache_read.unwrap_or(p.input);
            let premium = parts[2] * (p.cache_write.unwrap_or(p.input) - p.input);
            [uncached, reads, premium, uncached - reads - premium]
        });
        expected.insert(key.clone(), value);
    }
    let got = rows(
        &out.join("cache_savings"),
        "SELECT CAST(usage_date AS STRING), endpoint_name, entity_name, team, uncached_cost_usd, \
         cache_read_cost_usd, cache_write_premium_usd, net_savings_usd, CAST(month AS STRING) FROM t",
    )
    .await;
    let got: BTreeMap<_, _> = got
        .iter()
        .map(|r| {
            assert_eq!(r[8], format!("{}01", &r[0][..8]), "month of {}", r[0]);
            (
                (r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()),
                [units(&r[4]), units(&r[5]), units(&r[6]), units(&r[7])],
            )
        })
        .collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>());
    let checked = expected
        .iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .inspect(|(k, v)| assert_eq!(&got[*k], v, "{k:?}"))
        .count();
    assert!(checked >= 10, "only {checked} cache_savings rows checked");
    assert!(got.values().any(|v| v[2] > 0) && got.values().any(|v| v[3] > 0), "premium and savings occur");

    // pricing_what_if.
    let got = rows(
        &out.join("pricing_what_if"),
        "SELECT CAST(usage_date AS STRING), entity_name, scenario, priced_as, actual_cost_usd, what_if_cost_usd, \
         difference_usd, what_if_unpriced_requests, requests FROM t",
    )
    .await;
    let got: BTreeMap<Key, (i128, i128, i128, i64, i64)> = got
        .iter()
        .map(|r| {
            let value = (units(&r[4]), units(&r[5]), units(&r[6]), r[7].parse().unwrap(), r[8].parse().unwrap());
            ((r[0].clone(), r[1].clone(), r[2].clone(), r[3].clone()), value)
        })
        .collect();
    let mut keys = BTreeSet::new();
    let mut checked = 0;
    for ((date, entity), (parts, actual, requests)) in &by_entity {
        let Some(own) = generates(entity) else { continue };
        let mut scenarios: Vec<(&str, &str, &[PriceRow])> = entities
            .iter()
            .filter(|alt| *alt != entity && generates(alt) == Some(own))
            .map(|alt| ("entity", alt.as_str(), prices.as_slice()))
            .collect();
        if what_if.iter().any(|p| &p.entity_name == entity) {
            scenarios.push(("price_file", entity.as_str(), what_if.as_slice()));
        }
        for (scenario, priced_as, list) in scenarios {
            let key = (date.clone(), entity.clone(), scenario.to_string(), priced_as.to_string());
            let row = got.get(&key).unwrap_or_else(|| panic!("no row {key:?}"));
            keys.insert(key.clone());
            assert_eq!((row.0, row.4), (*actual, *requests as i64), "{key:?}: actual cost and requests");
            assert_eq!(row.2, row.1 - row.0, "{key:?}: difference");
            if let (Ok(price), Ok(_)) = (day_price(list, priced_as, date), day_price(&prices, entity, date)) {
                let expected = price.map_or(0, |p| cost(parts, p));
                let unpriced = if price.is_some() { 0 } else { *requests as i64 };
                assert_eq!((row.1, row.3), (expected, unpriced), "{key:?}: what-if cost, unpriced requests");
                checked += 1;
            }
        }
    }
    assert_eq!(keys.len(), got.len(), "rows without an expected scenario");
    assert!(checked >= 10, "only {checked} what-if rows checked");
    assert!(
        got.iter().any(|(k, v)| k.2 == "price_file" && v.3 > 0),
        "a what-if price list that starts late leaves requests unpriced"
    );
}
