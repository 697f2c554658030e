//! MLflow traces, token reconciliation, data quality, price sources and payload-only mode.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use gateway_analytics::columns::{ints, strings};
use gateway_analytics::config::JobConfig;
use gateway_analytics::prices::price_version;

use super::common::{csv_text, demo, demo_job, demo_window, job_text, query_table, read_table, repo, run_job};

fn job_from(text: &str) -> JobConfig {
    JobConfig::parse(text, &repo().join("jobs/test.toml")).unwrap()
}

#[tokio::test]
async fn trace_coverage_reconciliation_and_quality_match_reviewed_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    for table in ["trace_coverage", "reconciliation", "data_quality"] {
        insta::assert_snapshot!(table, csv_text(&read_table(&dir.path().join(table)).await));
    }
    let spend = query_table(
        &dir.path().join("trace_spend"),
        "SELECT usage_date, endpoint_name, state, COUNT(*) AS traces, SUM(requests) AS requests, SUM(input_tokens) AS input_tokens, \
         SUM(cost_usd) AS cost_usd, MIN(price_version) AS price_version FROM t GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
    )
    .await;
    insta::assert_snapshot!("trace_spend_totals", csv_text(&spend));
}

#[tokio::test]
async fn trace_coverage_agrees_with_an_independent_count() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    let usage = read_table(&demo().join("endpoint_usage")).await;
    let traces = read_table(&demo().join("trace_logs")).await;
    let gateway_ids: HashSet<String> =
        usage.iter().flat_map(|b| strings(b, "databricks_request_id").unwrap()).flatten().collect();
    let trace_ids: HashSet<String> =
        traces.iter().flat_map(|b| strings(b, "client_request_id").unwrap()).flatten().collect();
    let successful_traced = usage
        .iter()
        .flat_map(|b| {
            let ids = strings(b, "databricks_request_id").unwrap();
            let statuses = ints(b, "status_code").unwrap();
            ids.into_iter().zip(statuses).collect::<Vec<_>>()
        })
        .filter(|(id, status)| {
            status.is_some_and(|s| (200..=299).contains(&s)) && id.as_ref().is_some_and(|id| trace_ids.contains(id))
        })
        .count() as i64;
    let orphans = trace_ids.iter().filter(|id| !gateway_ids.contains(*id)).count() as i64;

    let totals = query_table(
        &dir.path().join("trace_coverage"),
        "SELECT SUM(traced) AS traced, SUM(orphan_traces) AS orphans FROM t",
    )
    .await;
    assert_eq!(ints(&totals[0], "traced").unwrap()[0], Some(successful_traced));
    assert_eq!(ints(&totals[0], "orphans").unwrap()[0], Some(orphans));
    assert!(orphans > 0 && successful_traced > 0);
    let named = query_table(
        &dir.path().join("trace_coverage"),
        "SELECT SUM(orphan_traces) AS n FROM t WHERE endpoint_name = '(none)'",
    )
    .await;
    assert!(ints(&named[0], "n").unwrap()[0].unwrap_or(0) > 0, "orphans naming no endpoint must show as (none)");
}

#[tokio::test]
async fn payload_reconciliation_agrees_with_an_independent_comparison() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    let mut payload: HashMap<String, (u64, u64)> = HashMap::new();
    for batch in read_table(&demo().join("gateway_payload")).await {
        let (ids, responses) =
            (strings(&batch, "databricks_request_id").unwrap(), strings(&batch, "response").unwrap());
        for (id, response) in ids.into_iter().zip(responses) {
            if let (Some(id), Some(u)) = (id, response.and_then(|r| gateway_json::parse_body(&r).usage)) {
                payload.insert(id, (u.input_tokens, u.output_tokens));
            }
        }
    }
    let (mut matched, mut differing, mut input_difference) = (0i64, 0i64, 0i64);
    for batch in read_table(&demo().join("endpoint_usage")).await {
        let ids = strings(&batch, "databricks_request_id").unwrap();
        let inputs = ints(&batch, "input_token_count").unwrap();
        let outputs = ints(&batch, "output_token_count").unwrap();
        for i in 0..batch.num_rows() {
            if let Some((p_in, p_out)) = ids[i].as_ref().and_then(|id| payload.get(id)) {
                let (u_in, u_out) = (inputs[i].unwrap_or(0), outputs[i].unwrap_or(0));
                matched += 1;
                input_difference += *p_in as i64 - u_in;
                differing += i64::from(*p_in as i64 != u_in || *p_out as i64 != u_out);
            }
        }
    }
    let totals = query_table(
        &dir.path().join("reconciliation"),
        "SELECT SUM(payload_matched_requests) AS m, SUM(payload_requests_with_difference) AS d, SUM(payload_input_difference) AS i FROM t",
    )
    .await;
    assert_eq!(ints(&totals[0], "m").unwrap()[0], Some(matched));
    assert_eq!(ints(&totals[0], "d").unwrap()[0], Some(differing));
    assert_eq!(ints(&totals[0], "i").unwrap()[0], Some(input_difference));
    assert!(differing > 0 && differing < matched, "the fixtures carry a few disagreeing bodies");
}

#[tokio::test]
async fn broken_bodies_are_counted_and_their_requests_still_billed() {
    let dir = tempfile::tempdir().unwrap();
    run_job(&demo_job(dir.path()), demo_window()).await.unwrap();
    let broken = query_table(
        &dir.path().join("data_quality"),
        "SELECT SUM(failed_rows) AS n FROM t WHERE table_name = 'payload' AND check_name = 'unparseable_response'",
    )
    .await;
    assert!(ints(&broken[0], "n").unwrap()[0].unwrap_or(0) > 0);
    let usage_rows: i64 = read_table(&demo().join("endpoint_usage")).await.iter().map(|b| b.num_rows() as i64).sum();
    let spend = query_table(&dir.path().join("daily_spend"), "SELECT SUM(requests) AS n FROM t").await;
    assert_eq!(ints(&spend[0], "n").unwrap()[0], Some(usage_rows), "every usage row is counted");
}

#[tokio::test]
async fn litellm_prices_bill_like_the_csv_and_carry_their_own_version() {
    let dir = tempfile::tempdir().unwrap();
    let csv_out = dir.path().join("csv");
    let litellm_out = dir.path().join("litellm");
    run_job(&demo_job(&csv_out), demo_window()).await.unwrap();
    let text =
        job_text(Some(&demo().join("gateway_payload")), &litellm_out).replace("prices.csv", "litellm_prices.json");
    run_job(&job_from(&text), demo_window()).await.unwrap();
    let costs = |out: &Path| {
        let out = out.to_path_buf();
        async move {
            let rows = query_table(
                &out.join("daily_spend"),
                "SELECT endpoint_name, CAST(SUM(cost_usd) AS STRING) AS cost, MIN(price_version) AS v FROM t \
                 WHERE endpoint_name IN ('claude-agents', 'gpt-reasoning') GROUP BY 1 ORDER BY 1",
            )
            .await;
            let names = strings(&rows[0], "endpoint_name").unwrap();
            let costs = strings(&rows[0], "cost").unwrap();
            let versions = strings(&rows[0], "v").unwrap();
            (names.into_iter().zip(costs).collect::<Vec<_>>(), versions[0].clone().unwrap())
        }
    };
    let (csv_costs, csv_version) = costs(&csv_out).await;
    let (litellm_costs, litellm_version) = costs(&litellm_out).await;
    assert_eq!(csv_costs, litellm_costs, "the same per-token prices, cache included, give the same exact cost");
    assert_eq!(csv_version, price_version(&std::fs::read(demo().join("prices.csv")).unwrap()));
    assert_eq!(litellm_version, price_version(&std::fs::read(demo().join("litellm_prices.json")).unwrap()));
    assert_ne!(csv_version, litellm_version);
}

#[tokio::test]
async fn without_traces_the_trace_outputs_are_skipped_and_the_rest_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let with = dir.path().join("with");
    let without = dir.path().join("without");
    run_job(&demo_job(&with), demo_window()).await.unwrap();
    let text: String = job_text(Some(&demo().join("gateway_payload")), &without)
        .lines()
        .filter(|l| !l.starts_with("traces ="))
        .collect::<Vec<_>>()
        .join("\n");
    let summary = run_job(&job_from(&text), demo_window()).await.unwrap();
    assert!(summary.written.iter().all(|w| !w.table.starts_with("trace_")));
    assert!(!without.join("trace_coverage").exists());
    for table in ["daily_spend", "hourly_errors", "alerts"] {
        assert_eq!(
            csv_text(&read_table(&with.join(table)).await),
            csv_text(&read_table(&without.join(table)).await),
            "{table}"
        );
    }
    let reconciliation =
        query_table(&without.join("reconciliation"), "SELECT SUM(trace_matched_requests) AS n FROM t").await;
    assert_eq!(ints(&reconciliation[0], "n").unwrap()[0], Some(0));
}

#[tokio::test]
async fn payload_only_mode_weights_sampled_rows_and_marks_spend_estimated() {
    let dir = tempfile::tempdir().unwrap();
    let text: String = job_text(Some(&demo().join("gateway_payload")), dir.path())
        .lines()
        .filter(|l| !l.starts_with("usage ="))
        .collect::<Vec<_>>()
        .join("\n");
    run_job(&job_from(&text), demo_window()).await.unwrap();
    // Expected requests per endpoint: each payload row of the window counts round(1 / sampling_fraction).
    let names = gateway_analytics::generate::World::new(7);
    let endpoint_of: HashMap<&str, &str> =
        names.endpoints.iter().map(|e| (e.served_entity_id.as_str(), e.name)).collect();
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for batch in read_table(&demo().join("gateway_payload")).await {
        let ids = strings(&batch, "served_entity_id").unwrap();
        let fractions = gateway_analytics::columns::strings(&batch, "sampling_fraction").unwrap();
        for (id, fraction) in ids.into_iter().zip(fractions) {
            let endpoint = id.as_deref().and_then(|id| endpoint_of.get(id)).copied().unwrap_or("(unknown)");
            let weight = (1.0 / fraction.unwrap().parse::<f64>().unwrap()).round() as i64;
            *expected.entry(endpoint.to_string()).or_default() += weight;
        }
    }
    let rows = query_table(
        &dir.path().join("daily_spend"),
        "SELECT endpoint_name, SUM(requests) AS requests, BOOL_AND(estimated) AS estimated FROM t GROUP BY 1 ORDER BY 1",
    )
    .await;
    let endpoints = strings(&rows[0], "endpoint_name").unwrap();
    let requests = ints(&rows[0], "requests").unwrap();
    let actual: BTreeMap<String, i64> = endpoints.into_iter().flatten().zip(requests.into_iter().flatten()).collect();
    assert_eq!(actual, expected);
    assert_eq!(
        strings(&rows[0], "estimated").unwrap().iter().flatten().collect::<HashSet<_>>(),
        HashSet::from([&"true".to_string()])
    );
    assert!(expected["gpt-reasoning"] % 4 == 0, "the 0.25-sampled endpoint counts four requests per logged row");
}
