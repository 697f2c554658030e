//! Request and response JSON bodies in the shapes the gateway logs (schemas notes §5): OpenAI
//! chat and embeddings, Anthropic Messages, custom-model predictions and error envelopes. The
//! text is filler from a fixed word list; it never reaches an output.

use serde_json::{Value, json};

use super::rng::Rng;
use super::traffic::{RateLimitSource, Request};
use super::world::BodyKind;

const WORDS: [&str; 32] = [
    "quarterly",
    "summary",
    "customer",
    "ticket",
    "refund",
    "policy",
    "invoice",
    "latency",
    "dashboard",
    "pipeline",
    "forecast",
    "region",
    "account",
    "contract",
    "renewal",
    "churn",
    "feature",
    "release",
    "incident",
    "review",
    "draft",
    "email",
    "table",
    "schema",
    "metric",
    "budget",
    "team",
    "report",
    "search",
    "ranking",
    "answer",
    "context",
];

/// Filler text of about `bytes` bytes.
fn filler(rng: &mut Rng, bytes: usize) -> String {
    let mut text = String::with_capacity(bytes + 16);
    while text.len() < bytes {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(WORDS[rng.range(0, WORDS.len() as i64 - 1) as usize]);
    }
    text
}

/// The request body for a call, about `approx_bytes` long.
pub fn request_body(rng: &mut Rng, kind: BodyKind, approx_bytes: usize, request: &Request) -> String {
    let size = rng.range(approx_bytes as i64 / 2, approx_bytes as i64 * 3 / 2).max(16) as usize;
    let mut body = match kind {
        BodyKind::Embeddings => json!({ "input": [filler(rng, size)] }),
        BodyKind::CustomModel => {
            json!({ "dataframe_records": [{ "query": filler(rng, size / 2), "candidates": filler(rng, size / 2) }] })
        }
        BodyKind::AnthropicMessages => json!({
            "model": "databricks-claude-sonnet-4-5",
            "max_tokens": 2048,
            "system": filler(rng, size / 3),
            "messages": [{ "role": "user", "content": filler(rng, size * 2 / 3) }],
            "stream": request.streaming,
        }),
        BodyKind::OpenAiChat | BodyKind::OpenAiReasoning => json!({
            "messages": [
                { "role": "system", "content": filler(rng, size / 3) },
                { "role": "user", "content": filler(rng, size * 2 / 3) },
            ],
            "max_tokens": 2048,
            "temperature": 0.2,
            "stream": request.streaming,
        }),
    };
    if let (Some(id), Some(object)) = (&request.client_request_id, body.as_object_mut()) {
        object.insert("client_request_id".into(), Value::String(id.clone()));
    }
    body.to_string()
}

/// The response body for a call: the model's answer with its usage block, or an error
/// envelope for a non-2xx status.
pub fn response_body(rng: &mut Rng, kind: BodyKind, request: &Request, model: &str, endpoint: &str) -> String {
    if !(200..=299).contains(&request.status_code) {
        return error_body(request, model, endpoint);
    }
    // A few bodies arrive broken: cut off mid-stream, or empty.
    let broken = rng.unit();
    if broken < 0.002 {
        return String::new();
    }
    let truncate = broken < 0.006;
    // The usage table estimates some counts itself; a few logged bodies disagree with it.
    let input = request.input_tokens.unwrap_or(0) + if rng.chance(0.01) { rng.range(1, 9) } else { 0 };
    let output = request.output_tokens.unwrap_or(0);
    let answer_bytes = (output as usize * 4).clamp(8, 2_000);
    // Streamed calls are logged as one aggregated body; half of them carry no usage block.
    let with_usage = !request.streaming || rng.chance(0.5);
    let created = request.request_time_us / 1_000_000;
    let mut body = match kind {
        BodyKind::Embeddings => json!({
            "object": "list",
            "model": model,
            "data": [{ "object": "embedding", "index": 0, "embedding": [0.0123, -0.0456, 0.0789, 0.0012] }],
            "usage": { "prompt_tokens": input, "total_tokens": input },
        }),
        BodyKind::CustomModel => json!({ "predictions": [{ "score": 0.87, "label": filler(rng, 12) }] }),
        BodyKind::AnthropicMessages => {
            let uncached = input - request.cache_read_tokens - request.cache_write_tokens;
            json!({
                "id": format!("msg_{}", rng.hex(24)),
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": [{ "type": "text", "text": filler(rng, answer_bytes) }],
                "stop_reason": "end_turn",
                "usage": {
                    "input_tokens": uncached,
                    "output_tokens": output,
                    "cache_read_input_tokens": request.cache_read_tokens,
                    "cache_creation_input_tokens": request.cache_write_tokens,
                },
            })
        }
        BodyKind::OpenAiChat | BodyKind::OpenAiReasoning => {
            let mut usage = json!({
                "prompt_tokens": input,
                "completion_tokens": output,
                "total_tokens": input + output,
            });
            if request.cache_read_tokens > 0 {
                usage["prompt_tokens_details"] = json!({ "cached_tokens": request.cache_read_tokens });
            }
            if kind == BodyKind::OpenAiReasoning {
                usage["completion_tokens_details"] = json!({ "reasoning_tokens": request.reasoning_tokens });
            }
            json!({
                "id": format!("chatcmpl-{}", rng.hex(24)),
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": { "role": "assistant", "content": filler(rng, answer_bytes) },
                    "finish_reason": "stop",
                }],
                "usage": usage,
            })
        }
    };
    if !with_usage && let Some(object) = body.as_object_mut() {
        object.remove("usage");
    }
    let text = body.to_string();
    if truncate { text.chars().take(text.chars().count() / 2).collect() } else { text }
}

/// The Databricks error envelope `{"error_code", "message"}` for a failed call.
fn error_body(request: &Request, model: &str, endpoint: &str) -> String {
    let short_model = model.rsplit('.').next().unwrap_or(model);
    let (code, message) = match (request.status_code, request.rate_limit) {
        (429, Some(RateLimitSource::UserDefined)) => (
            "REQUEST_LIMIT_EXCEEDED",
            format!(
                "User defined rate limit(s) exceeded for endpoint: {endpoint}. Requests-per-minute (RPM) limit reached."
            ),
        ),
        (429, _) => (
            "REQUEST_LIMIT_EXCEEDED",
            format!("REQUEST_LIMIT_EXCEEDED: Exceeded workspace rate limit for {short_model}"),
        ),
        (400, _) => ("BAD_REQUEST", "Invalid request: 'messages' must not be empty".to_string()),
        (401, _) => ("UNAUTHENTICATED", "Invalid access token".to_string()),
        (403, _) => ("PERMISSION_DENIED", format!("User does not have permission to query endpoint {endpoint}")),
        (404, _) => ("RESOURCE_DOES_NOT_EXIST", format!("Endpoint {endpoint} does not exist")),
        (503, _) => ("TEMPORARILY_UNAVAILABLE", "The service is temporarily unavailable".to_string()),
        (504, _) => ("DEADLINE_EXCEEDED", "The model did not respond in time".to_string()),
        _ => ("INTERNAL_ERROR", "The model returned an internal error".to_string()),
    };
    json!({ "error_code": code, "message": message }).to_string()
}
