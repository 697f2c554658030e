//! Guardrail blocks on the serving-endpoint gateway: payload rows with status 400 whose
//! response says input_guardrail_triggered / output_guardrail_triggered are counted in
//! hourly_errors' guardrail_blocked_input / guardrail_blocked_output, not in http_4xx
//! (docs/OUTPUTS.md#hourly_errors). The payload is the demo's, with every status-400 body
//! replaced by the block body the research notes record (the detail a JSON string inside
//! `message`).

use std::collections::{BTreeMap, HashSet};

use gateway_analytics::config::JobConfig;
use gateway_analytics::engine::session;
use gateway_analytics::inputs::delta_provider;
use gateway_analytics::location::Location;

use super::common::{demo, demo_window, job_text, read_table, repo, run_job, write_delta};
use super::oracle::{ints, raw_at, strings};

const INPUT_BODY: &str = r#"{"error_code":"BAD_REQUEST","message":"{\"usage\":{\"prompt_tokens\":0,\"total_tokens\":0},\"input_guardrail\":[{\"flagged\":false,\"pii_detection\":true}],\"finishReason\":\"input_guardrail_triggered\"}"}"#;
const OUTPUT_BODY: &str = r#"{"error_code":"BAD_REQUEST","message":"{\"output_guardrail\":[{\"flagged\":true}],\"finishReason\":\"output_guardrail_triggered\"}"}"#;

/// Per hour: (http_4xx, blocked input, blocked output, error_rate sum).
async fn per_hour(output: &std::path::Path) -> BTreeMap<i64, (i64, i64, i64)> {
    let mut out = BTreeMap::new();
    for batch in read_table(&output.join("hourly_errors")).await {
        let index = |name: &str| batch.schema().index_of(name).unwrap();
        let (hours, http_4xx) = (ints(&batch, index("hour")), ints(&batch, index("http_4xx")));
        let (input, output) =
            (ints(&batch, index("guardrail_blocked_input")), ints(&batch, index("guardrail_blocked_output")));
        for r in 0..batch.num_rows() {
            let e: &mut (i64, i64, i64) = out.entry(hours[r].unwrap()).or_default();
            e.0 += http_4xx[r].unwrap();
            e.1 += input[r].unwrap();
            e.2 += output[r].unwrap();
        }
    }
    out
}

#[tokio::test]
async fn guardrail_blocks_are_counted_apart_from_other_4xx() {
    let dir = tempfile::tempdir().unwrap();
    let payload = dir.path().join("payload");
    let ctx = session().unwrap();
    let source =
        Location::resolve(&demo().join("gateway_payload").display().to_string(), std::path::Path::new("/")).unwrap();
    ctx.register_table("p", delta_provider(&ctx, "p", &source, &Default::default()).await.unwrap()).unwrap();
    let select = format!(
        "SELECT databricks_request_id, request_date, client_request_id, request_time, status_code, sampling_fraction, \
         execution_duration_ms, request, CASE WHEN status_code = 400 THEN CASE WHEN right(databricks_request_id, 1) < '8' \
         THEN '{INPUT_BODY}' ELSE '{OUTPUT_BODY}' END ELSE response END AS response, logging_error_codes, \
         served_entity_id, requester FROM p"
    );
    write_delta(&payload, ctx.sql(&select).await.unwrap().collect().await.unwrap()).await;

    let plain = dir.path().join("plain");
    let blocked = dir.path().join("blocked");
    let job = |payload: &std::path::Path, output: &std::path::Path| {
        JobConfig::parse(&job_text(Some(payload), output), &repo().join("jobs/test.toml")).unwrap()
    };
    run_job(&job(&demo().join("gateway_payload"), &plain), demo_window()).await.unwrap();
    run_job(&job(&payload, &blocked), demo_window()).await.unwrap();

    // Independently: the usage rows with status 400 whose request has such a payload row.
    let (start, end) = (
        demo_window().from.and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros(),
        demo_window().end_exclusive().and_time(chrono::NaiveTime::MIN).and_utc().timestamp_micros(),
    );
    let mut input_ids = HashSet::new();
    let mut output_ids = HashSet::new();
    for batch in raw_at(&payload, "databricks_request_id, status_code, response, request_time").await {
        let (ids, statuses, responses, times) =
            (strings(&batch, 0), ints(&batch, 1), strings(&batch, 2), ints(&batch, 3));
        for r in 0..batch.num_rows() {
            let (Some(id), Some(body)) = (&ids[r], &responses[r]) else { continue };
            if statuses[r] != Some(400) || !times[r].is_some_and(|t| t >= start && t < end) {
                continue;
            }
            if body.contains("input_guardrail_triggered") {
                input_ids.insert(id.clone());
            } else if body.contains("output_guardrail_triggered") {
                output_ids.insert(id.clone());
            }
        }
    }
    let mut expected: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    for batch in raw_at(&demo().join("endpoint_usage"), "databricks_request_id, status_code, request_time").await {
        let (ids, statuses, times) = (strings(&batch, 0), ints(&batch, 1), ints(&batch, 2));
        for r in 0..batch.num_rows() {
            let (Some(id), Some(t)) = (&ids[r], times[r]) else { continue };
            if statuses[r] != Some(400) || t < start || t >= end {
                continue;
            }
            let e = expected.entry(t - t.rem_euclid(3_600_000_000)).or_default();
            e.0 += i64::from(input_ids.contains(id));
            e.1 += i64::from(output_ids.contains(id));
        }
    }
    let (before, after) = (per_hour(&plain).await, per_hour(&blocked).await);
    let (mut inputs, mut outputs) = (0, 0);
    for (hour, (http_4xx, input, output)) in &after {
        let (want_input, want_output) = expected.get(hour).copied().unwrap_or_default();
        assert_eq!((*input, *output), (want_input, want_output), "hour {hour}");
        assert_eq!(before[hour], (http_4xx + input + output, 0, 0), "hour {hour}: blocks move out of http_4xx");
        inputs += input;
        outputs += output;
    }
    assert!(inputs > 0 && outputs > 0, "the demo has 400s of both kinds: {inputs} {outputs}");
}
