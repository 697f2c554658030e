//! The new AI Gateway (Beta) tables from the same simulated world: `system.ai_gateway.usage`
//! (one row per invocation) and a model service's `<prefix>_payload` table
//! (docs/OUTPUTS.md#the-two-gateways; column types as its "Sources" paragraph gives them,
//! every column nullable).
//!
//! The day's serving-endpoint traffic ([`super::traffic::simulate_day`]) is replayed through
//! model services named after the endpoints (same principals, times, statuses and tokens), with
//! what only the new gateway has: fallback chains of 1 to 3 attempts when a destination answers
//! 429 or 5xx, request tags (some empty values, some NULL or `{}` maps), coding-agent sessions
//! with subagents (a fifth of them from old agent builds that send no session id, only a
//! user agent), MCP tool calls (NULL or 0 tokens, NULL `endpoint_name`), rows whose model
//! reported no token counts, and input and output guardrail blocks (status 400). The payload
//! table has what a reconciliation meets (`payload_faults`): Anthropic-shaped bodies (input
//! outside the cache counts), bodies whose counts differ from the usage row, deliveries
//! duplicated, rows without `invocation_id`, and rows whose usage row never arrived.

use std::sync::Arc;

use deltalake::arrow::array::RecordBatch;
use deltalake::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use deltalake::arrow::error::ArrowError;
use serde_json::{Value, json};

use super::rng::Rng;
use super::traffic::Request;
use super::world::World;

/// A destination of a model service: its routing name and the model it serves (the price key).
struct Destination {
    name: &'static str,
    model: &'static str,
}

const LLAMA: Destination =
    Destination { name: "llama-3-3-70b", model: "system.ai.databricks-meta-llama-3-3-70b-instruct" };
const CLAUDE: Destination = Destination { name: "claude-sonnet-4-5", model: "system.ai.databricks-claude-sonnet-4-5" };
const GPT5: Destination = Destination { name: "gpt-5", model: "gpt-5" };
const GTE: Destination = Destination { name: "gte-large-en", model: "system.ai.databricks-gte-large-en" };
const RANKER: Destination = Destination { name: "ranker", model: "main.ml.ranker" };

/// The model service that replaces a serving endpoint, and its destinations in routing order
/// (the first is the primary, the rest the fallbacks).
fn model_service(endpoint: &str) -> (&'static str, &'static [Destination]) {
    match endpoint {
        "chat-prod" => ("main.gateway.chat_prod", &[LLAMA, CLAUDE]),
        "claude-agents" => ("main.gateway.claude_agents", &[CLAUDE, GPT5, LLAMA]),
        "gpt-reasoning" => ("main.gateway.gpt_reasoning", &[GPT5, CLAUDE]),
        "embeddings" => ("main.gateway.embeddings", &[GTE]),
        _ => ("main.gateway.ranker", &[RANKER]),
    }
}

/// The MCP services: UC name and server type, with their tools.
const MCP_SERVICES: [(&str, &str, &[&str]); 3] = [
    ("main.tools.github_mcp", "EXTERNAL", &["search_issues", "get_pull_request", "create_comment"]),
    ("main.tools.uc_functions", "MANAGED", &["lookup_customer", "run_sql"]),
    ("main.tools.jira", "CUSTOM", &["create_ticket", "search_tickets"]),
];

/// What the generator writes for one invocation: a usage row and the payload rows logged with
/// it (none, one, a duplicated delivery, or a row of another request whose usage row is lost).
pub struct Invocation {
    usage: Value,
    payload: Vec<Value>,
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC")))
}

fn string_map() -> DataType {
    let entries =
        Fields::from(vec![Field::new("key", DataType::Utf8, false), Field::new("value", DataType::Utf8, true)]);
    DataType::Map(Arc::new(Field::new("key_value", DataType::Struct(entries), false)), false)
}

fn strings(names: &[&str]) -> Fields {
    names.iter().map(|n| Field::new(*n, DataType::Utf8, true)).collect()
}

fn nullable(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, true)
}

/// `system.ai_gateway.usage`, with every column the public sources name (docs/OUTPUTS.md#the-two-gateways).
pub fn gateway_usage_schema() -> SchemaRef {
    let attempt = Fields::from(vec![
        nullable("priority", DataType::Int32),
        nullable("action", DataType::Utf8),
        nullable("destination", DataType::Utf8),
        nullable("status_code", DataType::Int32),
        nullable("error_code", DataType::Utf8),
        nullable("latency_ms", DataType::Int64),
    ]);
    let attempts = DataType::List(Arc::new(Field::new("element", DataType::Struct(attempt), true)));
    Arc::new(Schema::new(vec![
        nullable("account_id", DataType::Utf8),
        nullable("workspace_id", DataType::Utf8),
        nullable("request_id", DataType::Utf8),
        nullable("schema_version", DataType::Int32),
        nullable("endpoint_id", DataType::Utf8),
        nullable("endpoint_name", DataType::Utf8),
        nullable("endpoint_tags", string_map()),
        nullable("endpoint_metadata", DataType::Struct(strings(&["inference_table"]))),
        nullable("event_time", timestamp()),
        nullable("latency_ms", DataType::Int64),
        nullable("time_to_first_byte_ms", DataType::Int64),
        nullable("destination_type", DataType::Utf8),
        nullable("destination_name", DataType::Utf8),
        nullable("destination_id", DataType::Utf8),
        nullable("destination_model", DataType::Utf8),
        nullable("requester", DataType::Utf8),
        nullable("requester_type", DataType::Utf8),
        nullable("auth_mode", DataType::Utf8),
        nullable("ip_address", DataType::Utf8),
        nullable("url", DataType::Utf8),
        nullable("user_agent", DataType::Utf8),
        nullable("api_type", DataType::Utf8),
        nullable("request_tags", string_map()),
        nullable("input_tokens", DataType::Int64),
        nullable("output_tokens", DataType::Int64),
        nullable("total_tokens", DataType::Int64),
        nullable(
            "token_details",
            DataType::Struct(Fields::from(vec![
                nullable("cache_read_input_tokens", DataType::Int64),
                nullable("cache_creation_input_tokens", DataType::Int64),
                nullable("output_reasoning_tokens", DataType::Int64),
            ])),
        ),
        nullable("response_content_type", DataType::Utf8),
        nullable("status_code", DataType::Int32),
        nullable("routing_information", DataType::Struct(Fields::from(vec![nullable("attempts", attempts)]))),
        nullable("invocation_id", DataType::Utf8),
        nullable("invocation_metadata", DataType::Struct(strings(&["source", "service_tier"]))),
        nullable("service_type", DataType::Utf8),
        nullable("service_id", DataType::Utf8),
        nullable("service_name", DataType::Utf8),
        nullable("service_tags", string_map()),
        nullable("mcp_metadata", DataType::Struct(strings(&["server_type", "json_rpc_method", "tool_name"]))),
        nullable(
            "session_metadata",
            DataType::Struct(strings(&[
                "coding_agent",
                "agent_version",
                "surface",
                "client_session_id",
                "client_subagent_id",
                "reasoning_effort",
                "smart_router_name",
            ])),
        ),
    ]))
}

/// A model service's Beta inference table `<prefix>_payload` (docs/OUTPUTS.md#the-two-gateways).
pub fn gateway_payload_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        nullable("request_id", DataType::Utf8),
        nullable("invocation_id", DataType::Utf8),
        nullable("request_tags", string_map()),
        nullable("event_time", timestamp()),
        nullable("status_code", DataType::Int32),
        nullable("sampling_fraction", DataType::Float64),
        nullable("latency_ms", DataType::Int64),
        nullable("time_to_first_byte_ms", DataType::Int64),
        nullable("request", DataType::Utf8),
        nullable("response", DataType::Utf8),
        nullable("destination_type", DataType::Utf8),
        nullable("destination_name", DataType::Utf8),
        nullable("destination_model", DataType::Utf8),
        nullable("api_type", DataType::Utf8),
        nullable("logging_error_codes", DataType::List(Arc::new(Field::new("element", DataType::Utf8, true)))),
        nullable("requester", DataType::Utf8),
        nullable("schema_version", DataType::Utf8),
    ]))
}

fn decode(schema: SchemaRef, rows: &[&Value]) -> Result<RecordBatch, ArrowError> {
    let mut text = String::new();
    for row in rows {
        text.push_str(&row.to_string());
        text.push('\n');
    }
    let mut reader = deltalake::arrow::json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.len().max(1))
        .build(std::io::Cursor::new(text.into_bytes()))?;
    match reader.next() {
        Some(batch) => batch,
        None => Ok(RecordBatch::new_empty(schema)),
    }
}

/// The usage rows of `invocations` as a batch of [`gateway_usage_schema`].
pub fn gateway_usage_batch(invocations: &[Invocation]) -> Result<RecordBatch, ArrowError> {
    decode(gateway_usage_schema(), &invocations.iter().map(|i| &i.usage).collect::<Vec<_>>())
}

/// The payload rows of `invocations` (those logged) as a batch of [`gateway_payload_schema`].
pub fn gateway_payload_batch(invocations: &[Invocation]) -> Result<RecordBatch, ArrowError> {
    decode(gateway_payload_schema(), &invocations.iter().flat_map(|i| &i.payload).collect::<Vec<_>>())
}

/// One try of a routed request.
struct Attempt {
    destination: &'static Destination,
    status: i32,
    latency_ms: i64,
}

/// Everything one invocation row needs beyond the shared defaults.
struct Call<'a> {
    time_us: i64,
    principal: Option<usize>,
    service: &'static str,
    endpoint_name: Option<&'a str>,
    attempts: Vec<Attempt>,
    /// The row holds no `routing_information` (NULL or empty `attempts`).
    unrouted: bool,
    tokens: Option<(i64, i64)>,
    cache_read: i64,
    cache_write: i64,
    reasoning: i64,
    tags: Value,
    user_agent: &'a str,
    session: Value,
    mcp: Value,
    service_type: &'static str,
    guardrail_block: Option<&'static str>,
}

/// Simulates one day of the new gateway's traffic: the serving-endpoint `requests` replayed
/// through model services, plus coding-agent sessions and MCP calls.
pub fn simulate_day(
    world: &World,
    seed: u64,
    day_index: u32,
    day_start_us: i64,
    requests: &[Request],
) -> Vec<Invocation> {
    let mut rng = Rng::new(seed, 5000 + u64::from(day_index));
    let mut out = Vec::with_capacity(requests.len() + requests.len() / 4);
    for request in requests.iter().filter(|r| r.in_usage) {
        out.push(replay(&mut rng, world, request));
    }
    let sessions = (requests.len() / 60).max(3);
    for _ in 0..sessions {
        coding_session(&mut rng, world, day_start_us, &mut out);
    }
    let mcp_calls = (requests.len() / 25).max(10);
    for _ in 0..mcp_calls {
        out.push(mcp_call(&mut rng, world, day_start_us));
    }
    // A stream of its own, so that the usage rows are the same with or without these.
    payload_faults(&mut Rng::new(seed, 6000 + u64::from(day_index)), &mut out);
    out
}

/// The successful payload row's response body for `input` and `output` tokens: an Anthropic
/// message (input outside the cache counts) for Claude, else an OpenAI chat completion.
fn success_body(rng: &mut Rng, anthropic: bool, input: Option<i64>, output: Option<i64>, cache: (i64, i64)) -> String {
    let id = rng.hex(8);
    match (anthropic, input) {
        (true, Some(input)) => {
            let read = cache.0.clamp(0, input);
            let write = cache.1.clamp(0, input - read);
            json!({"id": format!("msg_{id}"), "type": "message", "role": "assistant",
                "content": [{"type": "text", "text": "(generated answer)"}],
                "usage": {"input_tokens": input - read - write, "cache_read_input_tokens": read,
                          "cache_creation_input_tokens": write, "output_tokens": output}})
        }
        _ => json!({"id": format!("chatcmpl-{id}"), "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "(generated answer)"}}],
            "usage": {"prompt_tokens": input, "completion_tokens": output}}),
    }
    .to_string()
}

/// What a reconciliation of the payload table against the usage table meets, on the logged
/// rows: Claude's successful bodies in the Anthropic shape (same totals once the cache counts
/// are added back); 4% of successful bodies with counts that differ from the usage row's; 4% of
/// rows delivered twice; 2% without `invocation_id` (an older schema version); and, after 1%
/// of rows, a successful row of another request whose usage row never arrived.
fn payload_faults(rng: &mut Rng, invocations: &mut [Invocation]) {
    for invocation in invocations.iter_mut() {
        let Some(mut row) = invocation.payload.pop() else { continue };
        let usage = &invocation.usage;
        let tokens = |name: &str| usage[name].as_i64();
        let detail = |name: &str| usage["token_details"][name].as_i64().unwrap_or(0);
        let anthropic = usage["destination_name"] == json!(CLAUDE.name);
        if usage["status_code"] == json!(200) {
            let (mut input, mut output) = (tokens("input_tokens"), tokens("output_tokens"));
            if input.is_some() && rng.chance(0.04) {
                // The model's own count against the gateway's estimate (docs/OUTPUTS.md#ai_gateway_reconciliation).
                if rng.chance(0.5) {
                    input = input.map(|i| i + rng.range(1, 200));
                } else {
                    output = output.map(|o| o + rng.range(1, 40));
                }
            }
            let cache = (detail("cache_read_input_tokens"), detail("cache_creation_input_tokens"));
            row["response"] = success_body(rng, anthropic, input, output, cache).into();
        }
        if rng.chance(0.02) {
            row["invocation_id"] = Value::Null;
        }
        let twice = rng.chance(0.04);
        let lost_usage = rng.chance(0.01);
        if twice {
            invocation.payload.push(row.clone());
        }
        if lost_usage {
            let mut other = row.clone();
            other["request_id"] = rng.uuid().into();
            other["invocation_id"] = rng.uuid().into();
            other["status_code"] = 200.into();
            let (input, output) = (rng.skewed(40, 6_000), rng.skewed(10, 2_000));
            other["response"] = success_body(rng, false, Some(input), Some(output), (0, 0)).into();
            invocation.payload.push(other);
        }
        invocation.payload.insert(0, row);
    }
}

/// A destination's chain of attempts for a request whose primary answered `status`: on a 429
/// or 5xx the fallbacks are tried in order until one succeeds or all failed.
fn attempts(rng: &mut Rng, destinations: &'static [Destination], status: i32, success_ms: i64) -> Vec<Attempt> {
    let failed = |s: i32| s == 429 || (500..=599).contains(&s);
    let mut chain = vec![Attempt {
        destination: &destinations[0],
        status,
        latency_ms: if failed(status) { rng.range(15, 900) } else { success_ms },
    }];
    for destination in &destinations[1..] {
        if !failed(chain.last().map_or(200, |a| a.status)) {
            break;
        }
        let status = match rng.unit() {
            r if r < 0.75 => 200,
            r if r < 0.88 => 429,
            _ => 503,
        };
        let latency_ms = if failed(status) { rng.range(15, 900) } else { success_ms };
        chain.push(Attempt { destination, status, latency_ms });
    }
    chain
}

fn success_latency(rng: &mut Rng, output_tokens: i64) -> i64 {
    (180 + output_tokens * rng.range(6, 14) / 1000) + rng.skewed(0, 500)
}

fn request_tags(rng: &mut Rng, world: &World, principal: Option<usize>) -> Value {
    let Some(p) = principal.map(|i| &world.principals[i]) else { return Value::Null };
    if p.is_service_principal {
        return match p.context_team {
            Some(team) => json!({"team": team, "project": format!("{team}-pipeline"), "env": "prod"}),
            None => json!({}),
        };
    }
    match p.context_team {
        Some(_) if rng.chance(0.15) => json!({"team": "", "env": "dev"}),
        Some(team) => json!({"team": team, "project": format!("{team}-assistant"), "env": ""}),
        None if rng.chance(0.6) => Value::Null,
        None if rng.chance(0.5) => json!({}),
        None => json!({"project": "adhoc", "env": "dev"}),
    }
}

/// A serving-endpoint request replayed through the endpoint's model service.
fn replay(rng: &mut Rng, world: &World, request: &Request) -> Invocation {
    let endpoint = request.endpoint.map_or("retired", |e| world.endpoints[e].name);
    let (service, destinations) = model_service(endpoint);
    let mut status = request.status_code;
    // Provider throttling the serving-endpoint gateway never saw: the primary answers 429.
    if status == 200 && destinations.len() > 1 && rng.chance(0.03) {
        status = 429;
    }
    let mut tokens = request.input_tokens.zip(request.output_tokens);
    let chain = attempts(rng, destinations, status, 0);
    let final_status = chain.last().map_or(status, |a| a.status);
    if final_status == 200 && status != 200 {
        tokens = Some((rng.skewed(40, 6_000), rng.skewed(10, 2_000)));
    }
    let output = tokens.map_or(0, |t| t.1);
    let success_ms = success_latency(rng, output);
    let chain: Vec<Attempt> = chain
        .into_iter()
        .map(|a| Attempt {
            latency_ms: if a.status == 200 || a.status == 201 { success_ms } else { a.latency_ms },
            ..a
        })
        .collect();
    // The OpenAI-compatible route logs no tokens for some models (a user report; docs/OUTPUTS.md#the-two-gateways).
    if final_status == 200 && rng.chance(0.01) {
        tokens = None;
    }
    // Every 400 of a model service is a guardrail block, most of them on the input.
    let guardrail_block = (final_status == 400)
        .then(|| if rng.chance(0.6) { "input_guardrail_triggered" } else { "output_guardrail_triggered" });
    let call = Call {
        time_us: request.request_time_us,
        principal: request.principal,
        service,
        endpoint_name: Some(service),
        unrouted: chain.len() == 1 && rng.chance(0.5),
        attempts: chain,
        tokens,
        cache_read: request.cache_read_tokens,
        cache_write: request.cache_write_tokens,
        reasoning: request.reasoning_tokens,
        tags: request_tags(rng, world, request.principal),
        user_agent: "OpenAI/Python 1.82.0",
        session: Value::Null,
        mcp: Value::Null,
        service_type: "MODEL_SERVICE",
        guardrail_block,
    };
    invocation(rng, world, call)
}

/// One coding-agent session: a user's burst of agent calls with subagents; a fifth come from
/// old builds that send no session id (and no agent name), to be rebuilt from the idle gap.
fn coding_session(rng: &mut Rng, world: &World, day_start_us: i64, out: &mut Vec<Invocation>) {
    let users: Vec<usize> =
        (0..world.principals.len()).filter(|&i| !world.principals[i].is_service_principal).collect();
    let principal = users[rng.range(0, 11) as usize % users.len()];
    let codex = rng.chance(0.35);
    let (agent, version, service, user_agent) = if codex {
        ("codex", "0.46.0", "main.gateway.gpt_reasoning", "codex_exec/0.46.0 (Linux; x86_64)")
    } else {
        ("claude-code", "2.0.14", "main.gateway.claude_agents", "claude-cli/2.0.14 (external, cli)")
    };
    let without_id = rng.chance(0.2);
    let empty_id = without_id && rng.chance(0.5);
    let session_id = rng.uuid();
    let surface = if rng.chance(0.3) { "cli vscode" } else { "cli" };
    let calls = rng.range(4, 30);
    let mut time = day_start_us + rng.range(7 * 3600, 19 * 3600) * 1_000_000;
    let destinations = model_service(if codex { "gpt-reasoning" } else { "claude-agents" }).1;
    for i in 0..calls {
        // A long pause inside some sessions: with an id it stays one session, rebuilt without.
        time += if i == calls / 2 && rng.chance(0.25) { 40 * 60_000_000 } else { rng.range(2_000_000, 240_000_000) };
        let subagent = (i > 1 && rng.chance(0.3)).then(|| format!("subagent-{}", rng.range(1, 3)));
        let status = match rng.unit() {
            r if r < 0.04 => 429,
            r if r < 0.06 => 500,
            _ => 200,
        };
        let chain = attempts(rng, destinations, status, 0);
        let final_status = chain.last().map_or(status, |a| a.status);
        let (input, output) =
            if final_status == 200 { (rng.skewed(2_000, 60_000), rng.skewed(50, 4_000)) } else { (0, 0) };
        let success_ms = success_latency(rng, output);
        let chain: Vec<Attempt> = chain
            .into_iter()
            .map(|a| Attempt { latency_ms: if a.status == 200 { success_ms } else { a.latency_ms }, ..a })
            .collect();
        let cache_read = if final_status == 200 { input * rng.range(50, 90) / 100 } else { 0 };
        let cache_write = if final_status == 200 && rng.chance(0.2) { (input - cache_read) / 3 } else { 0 };
        let reasoning = if codex && final_status == 200 { output * rng.range(20, 60) / 100 } else { 0 };
        let session = if without_id {
            json!({"coding_agent": null, "agent_version": null, "surface": null,
                   "client_session_id": if empty_id { json!("") } else { Value::Null },
                   "client_subagent_id": null, "reasoning_effort": null, "smart_router_name": null})
        } else {
            json!({"coding_agent": agent, "agent_version": version, "surface": surface,
                   "client_session_id": session_id, "client_subagent_id": subagent,
                   "reasoning_effort": if codex { "Medium" } else { "high" }, "smart_router_name": null})
        };
        let tags = if rng.chance(0.5) {
            json!({"team": world.principals[principal].home_team, "project": "coding"})
        } else {
            Value::Null
        };
        let call = Call {
            time_us: time,
            principal: Some(principal),
            service,
            endpoint_name: Some(service),
            unrouted: false,
            attempts: chain,
            tokens: Some((input, output)),
            cache_read,
            cache_write,
            reasoning,
            tags,
            user_agent,
            session,
            mcp: Value::Null,
            service_type: "MODEL_SERVICE",
            guardrail_block: None,
        };
        out.push(invocation(rng, world, call));
    }
}

/// One MCP call: no tokens (NULL or 0), no endpoint name, JSON-RPC method and tool.
fn mcp_call(rng: &mut Rng, world: &World, day_start_us: i64) -> Invocation {
    let (service, server_type, tools) = MCP_SERVICES[rng.range(0, 2) as usize];
    let (method, tool) = match rng.unit() {
        r if r < 0.8 => ("tools/call", Some(tools[rng.range(0, tools.len() as i64 - 1) as usize])),
        r if r < 0.93 => ("tools/list", None),
        _ => ("initialize", None),
    };
    let status = match rng.unit() {
        r if r < 0.03 => 403,
        r if r < 0.05 => 429,
        r if r < 0.07 => 500,
        r if r < 0.08 => 504,
        _ => 200,
    };
    let principal = Some(world.principal_popularity.pick(rng));
    let zero_tokens = rng.chance(0.3);
    let call = Call {
        time_us: day_start_us + rng.range(0, 86_399_999_999),
        principal,
        service,
        endpoint_name: None,
        unrouted: true,
        attempts: vec![Attempt { destination: &RANKER, status, latency_ms: rng.skewed(20, 3_000) }],
        tokens: zero_tokens.then_some((0, 0)),
        cache_read: 0,
        cache_write: 0,
        reasoning: 0,
        tags: request_tags(rng, world, principal),
        user_agent: "mcp-remote/0.1.18",
        session: Value::Null,
        mcp: json!({"server_type": server_type, "json_rpc_method": method, "tool_name": tool}),
        service_type: "MCP_SERVICE",
        guardrail_block: None,
    };
    invocation(rng, world, call)
}

/// The guardrail block's response body (docs/OUTPUTS.md#hourly_errors): the detail is a JSON string
/// inside `message`.
fn guardrail_body(reason: &str) -> String {
    let side = if reason.starts_with("input") { "input_guardrail" } else { "output_guardrail" };
    let inner = json!({"usage": {"prompt_tokens": 0, "total_tokens": 0},
        side: [{"flagged": false, "categories": null, "category_scores": null, "pii_detection": true}],
        "finishReason": reason});
    json!({"error_code": "BAD_REQUEST", "message": inner.to_string()}).to_string()
}

fn invocation(rng: &mut Rng, world: &World, call: Call<'_>) -> Invocation {
    let request_id = rng.uuid();
    let invocation_id = rng.uuid();
    let final_attempt = call.attempts.last();
    let status = final_attempt.map_or(200, |a| a.status);
    let mcp = call.service_type == "MCP_SERVICE";
    let latency: i64 = call.attempts.iter().map(|a| a.latency_ms).sum::<i64>() + rng.range(1, 12);
    let ttfb = if status == 200 && !mcp {
        latency.min(call.attempts.iter().rev().skip(1).map(|a| a.latency_ms).sum::<i64>() + rng.range(60, 700))
    } else {
        latency
    };
    let served = (!mcp).then(|| final_attempt.map(|a| a.destination)).flatten();
    let attempts_json: Value = if call.unrouted {
        if rng.chance(0.5) { Value::Null } else { json!({"attempts": []}) }
    } else {
        Value::Array(
            call.attempts
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let failed = a.status != 200;
                    json!({"priority": i, "action": if i == 0 { "INITIAL_ATTEMPT" } else { "FALLBACK" },
                           "destination": a.destination.name, "status_code": a.status,
                           "error_code": if a.status == 429 { json!("RATE_LIMIT_EXCEEDED") } else if failed { json!("UPSTREAM_ERROR") } else { Value::Null },
                           "latency_ms": a.latency_ms})
                })
                .collect(),
        )
    };
    let routing = if attempts_json.is_array() { json!({"attempts": attempts_json}) } else { attempts_json };
    let (input, output) = match call.tokens {
        Some((i, o)) if status == 200 || status == 201 => (Some(i), Some(o)),
        Some(_) if mcp => (Some(0), Some(0)),
        Some(_) => (Some(0), Some(0)),
        None => (None, None),
    };
    let billed = input.is_some() && status == 200;
    let token_details = if mcp || input.is_none() {
        Value::Null
    } else {
        json!({"cache_read_input_tokens": if billed { call.cache_read.min(input.unwrap_or(0)) } else { 0 },
               "cache_creation_input_tokens": if billed { call.cache_write } else { 0 },
               "output_reasoning_tokens": if billed { call.reasoning.min(output.unwrap_or(0)) } else { 0 }})
    };
    let requester = call.principal.map(|p| world.principals[p].id.clone());
    let requester_type =
        call.principal.map(|p| if world.principals[p].is_service_principal { "SERVICE_PRINCIPAL" } else { "USER" });
    let time = call.time_us;
    let event_time =
        chrono::DateTime::from_timestamp_micros(time).map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true));
    let usage = json!({
        "account_id": world.account_id,
        "workspace_id": world.workspace_id,
        "request_id": request_id,
        "schema_version": 1,
        "endpoint_id": rng.uuid(),
        "endpoint_name": call.endpoint_name,
        "endpoint_tags": {"cost_center": "cc-1042"},
        "endpoint_metadata": {"inference_table": if mcp { Value::Null } else { json!(format!("{}_payload", call.service)) }},
        "event_time": event_time,
        "latency_ms": latency,
        "time_to_first_byte_ms": ttfb,
        "destination_type": served.map(|d| if d.model.starts_with("system.ai.") { "PAY_PER_TOKEN_FOUNDATION_MODEL" } else { "EXTERNAL_MODEL" }),
        "destination_name": served.map(|d| d.name),
        "destination_id": served.map(|d| format!("dest-{}", d.name)),
        "destination_model": served.map(|d| d.model),
        "requester": requester,
        "requester_type": requester_type,
        "auth_mode": "PAT",
        "ip_address": "10.0.0.1",
        "url": if mcp { format!("/ai-gateway/mcp-services/{}", call.service) } else { "/ai-gateway/mlflow/v1/chat/completions".into() },
        "user_agent": call.user_agent,
        "api_type": if mcp { Value::Null } else { json!("mlflow/v1/chat/completions") },
        "request_tags": call.tags,
        "input_tokens": input,
        "output_tokens": output,
        "total_tokens": input.zip(output).map(|(i, o)| i + o),
        "token_details": token_details,
        "response_content_type": "application/json",
        "status_code": status,
        "routing_information": routing,
        "invocation_id": invocation_id,
        "invocation_metadata": {"source": "EXTERNAL_CLIENT", "service_tier": null},
        "service_type": call.service_type,
        "service_id": format!("svc-{}", call.service.rsplit('.').next().unwrap_or("service")),
        "service_name": call.service,
        "service_tags": {"owner": "platform"},
        "mcp_metadata": call.mcp,
        "session_metadata": call.session,
    });
    // Guardrail blocks are always in the payload table (as observed; docs/OUTPUTS.md#hourly_errors); other rows in 60%.
    let logged = !mcp && status != 429 && (call.guardrail_block.is_some() || rng.chance(0.6));
    let payload = logged.then(|| {
        let response = match call.guardrail_block {
            Some(reason) => guardrail_body(reason),
            None if status == 200 => success_body(rng, false, input, output, (0, 0)),
            None => json!({"error_code": "UPSTREAM_ERROR", "message": format!("status {status}")}).to_string(),
        };
        json!({
            "request_id": usage["request_id"], "invocation_id": usage["invocation_id"],
            "request_tags": usage["request_tags"], "event_time": usage["event_time"],
            "status_code": usage["status_code"], "sampling_fraction": 1.0,
            "latency_ms": latency, "time_to_first_byte_ms": ttfb,
            "request": json!({"messages": [{"role": "user", "content": "(generated prompt)"}]}).to_string(),
            "response": response,
            "destination_type": usage["destination_type"], "destination_name": usage["destination_name"],
            "destination_model": usage["destination_model"], "api_type": usage["api_type"],
            "logging_error_codes": [], "requester": usage["requester"], "schema_version": "1",
        })
    });
    Invocation { usage, payload: payload.into_iter().collect() }
}

/// The model services' current rate limits in the model-services API's
/// `ModelService.config.rate_limits` shape (`gateway_rate_limits.json`): the serving endpoints'
/// limits of the same world (`rate_limits_json`) on the services that replace them (`endpoint`
/// as `SERVICE`, a default `user` rule as `USER_DEFAULT`, own rules as `USER` or
/// `SERVICE_PRINCIPAL`, groups as `USER_GROUP`), plus one limit of each kind the
/// recommendations do not evaluate: a group, a request tag and a per-hour limit.
pub fn gateway_rate_limits_json(serving_endpoint_limits: &str) -> std::result::Result<String, String> {
    use serde_json::{Value, json};
    let root: Value = serde_json::from_str(serving_endpoint_limits).map_err(|e| e.to_string())?;
    let minute = "RATE_LIMIT_RENEWAL_PERIOD_MINUTE";
    let mut services = Vec::new();
    for endpoint in root["endpoints"].as_array().into_iter().flatten() {
        let Some(name) = endpoint["name"].as_str() else { continue };
        let (service, _) = model_service(name);
        let mut limits = Vec::new();
        for rule in endpoint["ai_gateway"]["rate_limits"].as_array().into_iter().flatten() {
            let principal = rule.get("principal").and_then(Value::as_str);
            let key = match (rule["key"].as_str(), principal) {
                (Some("endpoint"), _) => "RATE_LIMIT_KEY_SERVICE",
                (Some("user"), None) => "RATE_LIMIT_KEY_USER_DEFAULT",
                (Some("user"), Some(_)) => "RATE_LIMIT_KEY_USER",
                (Some("service_principal"), _) => "RATE_LIMIT_KEY_SERVICE_PRINCIPAL",
                _ => "RATE_LIMIT_KEY_USER_GROUP",
            };
            let mut limit = json!({ "key": key, "renewal_period": minute });
            if let Some(p) = principal {
                limit["principal"] = p.into();
            }
            for (from, to) in [("calls", "requests"), ("tokens", "tokens")] {
                if let Some(n) = rule.get(from).and_then(Value::as_i64) {
                    limit[to] = n.into();
                }
            }
            limits.push(limit);
        }
        if service == "main.gateway.chat_prod" {
            limits.push(json!({ "key": "RATE_LIMIT_KEY_USER_GROUP", "principal": "analysts", "renewal_period": minute, "requests": 30 }));
            limits.push(json!({ "key": "RATE_LIMIT_KEY_REQUEST_TAG", "request_tag_key": "project", "renewal_period": minute, "requests": 50 }));
            limits.push(json!({ "key": "RATE_LIMIT_KEY_SERVICE", "renewal_period": "RATE_LIMIT_RENEWAL_PERIOD_HOUR", "requests": 6000 }));
        }
        services.push(json!({ "name": service, "config": { "rate_limits": limits } }));
    }
    serde_json::to_string_pretty(&json!({ "model_services": services })).map(|t| t + "\n").map_err(|e| e.to_string())
}
