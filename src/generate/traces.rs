//! MLflow traces for the simulated agent endpoints: most successful calls on `claude-agents`
//! and `chat-prod` are traced with `client_request_id` = the gateway's databricks_request_id,
//! and a few orphan traces match no gateway request (calls that bypassed the gateway, some
//! naming a serving endpoint in their metadata and some not).

use serde_json::{Value, json};

use super::rng::Rng;
use super::traffic::Request;
use super::world::World;

/// The MLflow experiment the traces are logged to.
pub const EXPERIMENT_ID: &str = "3141592653589793";

fn rfc3339(us: i64) -> String {
    chrono::DateTime::from_timestamp_micros(us)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
        .unwrap_or_default()
}

fn trace_line(
    rng: &mut Rng,
    start_us: i64,
    client_request_id: &str,
    endpoint: Option<&str>,
    tokens: Option<(i64, i64)>,
    duration_ms: f64,
) -> String {
    let trace_id = format!("tr-{}", rng.hex(32));
    let ok = rng.chance(0.95);
    let mut metadata = json!({ "mlflow.trace_schema.version": "3", "mlflow.modelId": format!("m-{}", rng.hex(12)) });
    if let Some(endpoint) = endpoint {
        metadata["mlflow.databricks.modelServingEndpointName"] = json!(endpoint);
    }
    if let Some((input, output)) = tokens {
        metadata["mlflow.trace.tokenUsage"] = json!(
            json!({ "input_tokens": input, "output_tokens": output, "total_tokens": input + output }).to_string()
        );
    }
    let end_us = start_us + (duration_ms * 1000.0) as i64;
    let root = rng.hex(16);
    let assessments: Vec<Value> = if rng.chance(0.1) {
        vec![json!({
            "assessment_id": format!("a-{}", rng.hex(16)), "trace_id": trace_id, "assessment_name": "relevance",
            "source": { "source_id": "judge", "source_type": "LLM_JUDGE" },
            "create_time": rfc3339(end_us + 60_000_000), "last_update_time": rfc3339(end_us + 60_000_000),
            "expectation": null, "feedback": { "value": "yes", "error": null }, "rationale": "on topic",
            "metadata": {}, "span_id": root,
        })]
    } else {
        Vec::new()
    };
    json!({
        "trace_id": trace_id,
        "client_request_id": client_request_id,
        "request_time": rfc3339(start_us),
        "state": if ok { "OK" } else { "ERROR" },
        "execution_duration_ms": duration_ms,
        "request": "{\"messages\": [{\"role\": \"user\", \"content\": \"[preview]\"}]}",
        "response": "{\"choices\": [{\"message\": {\"content\": \"[preview]\"}}]}",
        "trace_metadata": metadata,
        "tags": { "mlflow.traceName": "agent_run" },
        "trace_location": { "type": "MLFLOW_EXPERIMENT", "mlflow_experiment": { "experiment_id": EXPERIMENT_ID }, "inference_table": null },
        "assessments": assessments,
        "spans": [{
            "span_id": root, "trace_id": trace_id, "parent_id": null, "start_time": rfc3339(start_us), "end_time": rfc3339(end_us),
            "status_code": if ok { "OK" } else { "ERROR" }, "status_message": "", "name": "agent_run",
            "attributes": { "mlflow.spanType": "AGENT" }, "events": [],
        }],
    })
    .to_string()
}

/// The traces of one day's requests, as JSON lines in the `trace_logs` shape.
pub fn traces_for_day(world: &World, seed: u64, day_index: u32, requests: &[Request]) -> Vec<String> {
    let mut rng = Rng::new(seed, 5000 + u64::from(day_index));
    let traced_endpoints: Vec<Option<usize>> =
        ["claude-agents", "chat-prod"].iter().map(|n| world.endpoints.iter().position(|e| e.name == *n)).collect();
    let mut lines = Vec::new();
    for request in requests {
        if !(200..=299).contains(&request.status_code)
            || !traced_endpoints.contains(&request.endpoint)
            || request.endpoint.is_none()
        {
            continue;
        }
        if !rng.chance(0.6) {
            continue;
        }
        let endpoint = request.endpoint.map(|e| world.endpoints[e].name);
        let usage = request.input_tokens.zip(request.output_tokens);
        // The trace sums its LLM spans; now and then a retried span makes it disagree with the gateway.
        let tokens = if rng.chance(0.03) { usage.map(|(i, o)| (i + rng.range(10, 500), o)) } else { usage };
        let tokens = if rng.chance(0.1) { None } else { tokens };
        let duration = request.payload.as_ref().and_then(|p| p.execution_duration_ms).unwrap_or(500) as f64
            + rng.range(5, 400) as f64
            + 0.25;
        let start = request.request_time_us - rng.range(1_000, 50_000);
        lines.push(trace_line(&mut rng, start, &request.databricks_request_id, endpoint, tokens, duration));
    }
    // Orphans: traced LLM calls with no gateway request behind them.
    let day_start = requests.first().map_or(0, |r| r.request_time_us - r.request_time_us.rem_euclid(86_400_000_000));
    for i in 0..(lines.len() / 40).max(2) {
        let time = day_start + rng.range(0, 86_399_999_999);
        let endpoint = if i % 2 == 0 { Some("claude-agents") } else { None };
        let id = rng.uuid();
        let tokens = Some((rng.range(100, 4000), rng.range(10, 800)));
        let duration = rng.range(100, 9000) as f64;
        lines.push(trace_line(&mut rng, time, &id, endpoint, tokens, duration));
    }
    lines
}
