//! Token usage and error codes from the response bodies the AI Gateway logs in the payload
//! table's `response` column (schemas notes §5).
//!
//! One parse per body, no panics on any input (malformed, truncated, empty, deeply nested or
//! huge), and nothing of the body's text is kept except a bounded error code. Two readers give
//! the same results: a fast scanner ([`scan_body`]) that decides the well-formed bodies, and
//! the serde_json reader ([`parse_body_with_serde`]) that decides the rest; [`parse_body`] asks
//! the first, then the second.
//!
//! # Convention
//! Every shape is normalised to one convention:
//! - `input_tokens` counts every prompt token, cached reads and cache writes included;
//! - `output_tokens` counts every generated token, reasoning included;
//! - `cache_read_tokens`, `cache_write_tokens` and `reasoning_tokens` are the parts of those
//!   totals in each category, so a biller charges `input - cache_read - cache_write` at the
//!   input rate, the categories at theirs, and never counts a token twice.
//!
//! | shape | input_tokens | output_tokens | cache_read | cache_write | reasoning |
//! |---|---|---|---|---|---|
//! | OpenAI chat/completions/embeddings (`usage.prompt_tokens`) | `prompt_tokens` | `completion_tokens` (0 for embeddings) | `prompt_tokens_details.cached_tokens` | 0 | `completion_tokens_details.reasoning_tokens` |
//! | Anthropic messages (`usage.input_tokens`) | `input_tokens + cache_read_input_tokens + cache_creation_input_tokens` | `output_tokens` | `cache_read_input_tokens` | `cache_creation_input_tokens` | 0 |

mod fields;
mod scan;

pub use scan::scan_body;

use fields::{Count, Fields, Text, Usage};

use serde::Deserialize;
use serde::de::{Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// What a response body turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// An OpenAI-compatible body with a `usage` block.
    OpenAi,
    /// An Anthropic Messages body with a `usage` block.
    Anthropic,
    /// A Databricks error envelope (`error_code`, `message`).
    Error,
    /// Valid JSON without a usable `usage` block (streamed without usage, custom models).
    NoUsage,
    /// A `usage` block whose counts are not non-negative integers, or whose parts exceed the
    /// totals.
    InvalidUsage,
    /// Not a JSON object: malformed, truncated, nested deeper than the parser allows, or a
    /// bare value.
    InvalidJson,
    /// The empty string (or only whitespace).
    Empty,
}

impl BodyKind {
    /// The label used in SQL results and data-quality checks.
    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::OpenAi => "openai",
            BodyKind::Anthropic => "anthropic",
            BodyKind::Error => "error",
            BodyKind::NoUsage => "no_usage",
            BodyKind::InvalidUsage => "invalid_usage",
            BodyKind::InvalidJson => "invalid_json",
            BodyKind::Empty => "empty",
        }
    }
}

/// Token counts normalised to the crate's convention.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// All prompt tokens (cache reads and writes included).
    pub input_tokens: u64,
    /// All generated tokens (reasoning included).
    pub output_tokens: u64,
    /// Prompt tokens read from the cache.
    pub cache_read_tokens: u64,
    /// Prompt tokens written to the cache.
    pub cache_write_tokens: u64,
    /// Generated tokens spent on reasoning.
    pub reasoning_tokens: u64,
}

/// The result of reading one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedBody {
    /// What the body was.
    pub kind: BodyKind,
    /// Its usage, for [`BodyKind::OpenAi`] and [`BodyKind::Anthropic`].
    pub usage: Option<TokenUsage>,
    /// The `error_code` of an error envelope (at most [`MAX_ERROR_CODE_LEN`] characters of
    /// `[A-Z0-9_]`; anything else is reported as `OTHER`).
    pub error_code: Option<String>,
    /// For a `REQUEST_LIMIT_EXCEEDED` envelope, which limit refused the call.
    pub limit_source: Option<LimitSource>,
}

/// Longest error code kept; error codes are short upper-case identifiers.
pub const MAX_ERROR_CODE_LEN: usize = 64;

/// Which limit refused a rate-limited call, read from a `REQUEST_LIMIT_EXCEEDED` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitSource {
    /// A limit set in the endpoint's AI Gateway (the message says "User defined rate limit").
    UserDefined,
    /// The workspace's or the model provider's limit (any other `REQUEST_LIMIT_EXCEEDED`).
    WorkspaceOrProvider,
}

impl LimitSource {
    /// The label used in SQL results.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitSource::UserDefined => "user_defined",
            LimitSource::WorkspaceOrProvider => "workspace_or_provider",
        }
    }
}

/// The three top-level fields a body is read for; every other field is skipped.
struct Body {
    usage: Option<serde_json::Value>,
    error_code: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum Field {
    Usage,
    ErrorCode,
    Message,
    #[serde(other)]
    Other,
}

impl<'de> Deserialize<'de> for Body {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(BodyVisitor)
    }
}

struct BodyVisitor;

impl<'de> Visitor<'de> for BodyVisitor {
    type Value = Body;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Body, A::Error> {
        // `Some(None)` is a field present as `null`: seen (a repeat is an error), but absent.
        let (mut usage, mut error_code, mut message) = (None, None, None);
        while let Some(field) = map.next_key::<Field>()? {
            let (slot, name) = match field {
                Field::Usage => (&mut usage, "usage"),
                Field::ErrorCode => (&mut error_code, "error_code"),
                Field::Message => (&mut message, "message"),
                Field::Other => {
                    map.next_value::<Skipped>()?;
                    continue;
                }
            };
            if slot.is_some() {
                return Err(A::Error::duplicate_field(name));
            }
            *slot = Some(map.next_value::<Option<serde_json::Value>>()?);
        }
        Ok(Body { usage: usage.flatten(), error_code: error_code.flatten(), message: message.flatten() })
    }
}

/// Walks a value without keeping it. Unlike serde's `IgnoredAny` (which serde_json skips
/// without a nesting limit) it goes through `deserialize_any`, so serde_json's depth limit
/// applies to skipped fields too: a body nested too deeply is invalid wherever the nesting is.
struct Skipped;

impl<'de> Deserialize<'de> for Skipped {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SkippedVisitor)
    }
}

struct SkippedVisitor;

impl<'de> Visitor<'de> for SkippedVisitor {
    type Value = Skipped;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_unit<E>(self) -> Result<Skipped, E> {
        Ok(Skipped)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skipped, A::Error> {
        while seq.next_element::<Skipped>()?.is_some() {}
        Ok(Skipped)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skipped, A::Error> {
        while map.next_entry::<IgnoredAny, Skipped>()?.is_some() {}
        Ok(Skipped)
    }
}

impl ParsedBody {
    /// A body of `kind` with no usage, error code or limit source.
    pub(crate) fn only(kind: BodyKind) -> ParsedBody {
        ParsedBody { kind, usage: None, error_code: None, limit_source: None }
    }
}

/// Reads one response body: the fast scanner ([`scan_body`]) when it is sure of the body, else
/// [`parse_body_with_serde`]; both give the same result on every body the scanner decides.
pub fn parse_body(text: &str) -> ParsedBody {
    scan::scan_body(text).unwrap_or_else(|| parse_body_with_serde(text))
}

/// Reads one response body with serde_json: the reference reader, which decides every body
/// (the fast scanner hands it the ones it is not sure of, and the tests compare the two).
pub fn parse_body_with_serde(text: &str) -> ParsedBody {
    if text.trim().is_empty() {
        return ParsedBody::only(BodyKind::Empty);
    }
    let Ok(body) = serde_json::from_str::<Body>(text) else {
        return ParsedBody::only(BodyKind::InvalidJson);
    };
    Fields {
        usage: body.usage.as_ref().filter(|u| u.is_object()).map(Usage::of),
        error_code: Text::of(body.error_code.as_ref()),
        message: Text::of(body.message.as_ref()),
    }
    .parsed()
}

/// Reads MLflow's `mlflow.trace.tokenUsage` trace metadata (`{"input_tokens", "output_tokens",
/// "total_tokens"}`, optionally `cache_read_input_tokens` and `cache_creation_input_tokens`).
/// When the cache keys are present they are taken as Anthropic-style counts outside
/// `input_tokens` and added to it, so the result follows the crate's convention. `None` for
/// anything that is not such an object with non-negative integer counts.
pub fn parse_trace_token_usage(text: &str) -> Option<TokenUsage> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if !value.is_object() || value.get("input_tokens").is_none() && value.get("output_tokens").is_none() {
        return None;
    }
    let get = |key: &str| Count::of(value.get(key)).value().ok();
    let cache_read = get("cache_read_input_tokens")?;
    let cache_write = get("cache_creation_input_tokens")?;
    Some(TokenUsage {
        input_tokens: get("input_tokens")?.checked_add(cache_read)?.checked_add(cache_write)?,
        output_tokens: get("output_tokens")?,
        cache_read_tokens: cache_read,
        cache_write_tokens: cache_write,
        reasoning_tokens: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(text: &str) -> TokenUsage {
        parse_body(text).usage.expect("usage")
    }

    #[test]
    fn openai_chat_with_cache_and_reasoning() {
        let parsed = usage(
            r#"{"id":"x","choices":[{"message":{"content":"hi"}}],"usage":{"prompt_tokens":100,"completion_tokens":40,
               "total_tokens":140,"prompt_tokens_details":{"cached_tokens":30},"completion_tokens_details":{"reasoning_tokens":25}}}"#,
        );
        assert_eq!(
            parsed,
            TokenUsage {
                input_tokens: 100,
                output_tokens: 40,
                cache_read_tokens: 30,
                cache_write_tokens: 0,
                reasoning_tokens: 25
            }
        );
    }

    #[test]
    fn openai_embeddings_have_no_completion_tokens() {
        let parsed = usage(r#"{"object":"list","data":[],"usage":{"prompt_tokens":12,"total_tokens":12}}"#);
        assert_eq!((parsed.input_tokens, parsed.output_tokens), (12, 0));
    }

    #[test]
    fn anthropic_input_includes_cache_reads_and_writes() {
        let parsed = usage(
            r#"{"type":"message","usage":{"input_tokens":10,"output_tokens":5,"cache_read_input_tokens":70,"cache_creation_input_tokens":20}}"#,
        );
        assert_eq!(
            parsed,
            TokenUsage {
                input_tokens: 100,
                output_tokens: 5,
                cache_read_tokens: 70,
                cache_write_tokens: 20,
                reasoning_tokens: 0
            }
        );
    }

    #[test]
    fn error_envelopes_keep_only_a_clean_code() {
        let parsed =
            parse_body(r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"User defined rate limit(s) exceeded"}"#);
        assert_eq!((parsed.kind, parsed.error_code.as_deref()), (BodyKind::Error, Some("REQUEST_LIMIT_EXCEEDED")));
        let parsed = parse_body(r#"{"error_code":"my prompt was: tell me a secret","message":"x"}"#);
        assert_eq!(parsed.error_code.as_deref(), Some("OTHER"));
    }

    #[test]
    fn bad_bodies_are_classified_not_fatal() {
        assert_eq!(parse_body("").kind, BodyKind::Empty);
        assert_eq!(parse_body("   ").kind, BodyKind::Empty);
        assert_eq!(parse_body(r#"{"usage":{"prompt_tokens":1"#).kind, BodyKind::InvalidJson);
        assert_eq!(parse_body("not json").kind, BodyKind::InvalidJson);
        assert_eq!(parse_body(&"[".repeat(100_000)).kind, BodyKind::InvalidJson);
        assert_eq!(parse_body(r#"{"usage":{"prompt_tokens":-3}}"#).kind, BodyKind::InvalidUsage);
        assert_eq!(parse_body(r#"{"usage":{"prompt_tokens":"12"}}"#).kind, BodyKind::InvalidUsage);
        assert_eq!(
            parse_body(r#"{"usage":{"prompt_tokens":5,"prompt_tokens_details":{"cached_tokens":9}}}"#).kind,
            BodyKind::InvalidUsage
        );
        assert_eq!(
            parse_body(r#"{"usage":{"input_tokens":18446744073709551615,"cache_read_input_tokens":1}}"#).kind,
            BodyKind::InvalidUsage
        );
        assert_eq!(parse_body(r#"{"predictions":[1]}"#).kind, BodyKind::NoUsage);
        assert_eq!(parse_body(r#"{"usage":null}"#).kind, BodyKind::NoUsage);
        assert_eq!(parse_body("42").kind, BodyKind::InvalidJson);
    }

    #[test]
    fn rate_limit_sources() {
        let user = parse_body(
            r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"User defined rate limit(s) exceeded for endpoint: x"}"#,
        );
        assert_eq!(user.limit_source, Some(LimitSource::UserDefined));
        let workspace =
            parse_body(r#"{"error_code":"REQUEST_LIMIT_EXCEEDED","message":"Exceeded workspace rate limit for m"}"#);
        assert_eq!(workspace.limit_source, Some(LimitSource::WorkspaceOrProvider));
        assert_eq!(parse_body(r#"{"error_code":"BAD_REQUEST","message":"x"}"#).limit_source, None);
    }

    #[test]
    fn trace_token_usage() {
        let usage = parse_trace_token_usage(r#"{"input_tokens": 12, "output_tokens": 4, "total_tokens": 16}"#).unwrap();
        assert_eq!((usage.input_tokens, usage.output_tokens), (12, 4));
        let cached =
            parse_trace_token_usage(r#"{"input_tokens": 2, "output_tokens": 4, "cache_read_input_tokens": 10}"#)
                .unwrap();
        assert_eq!((cached.input_tokens, cached.cache_read_tokens), (12, 10));
        assert_eq!(parse_trace_token_usage(r#"{"input_tokens": -1}"#), None);
        assert_eq!(parse_trace_token_usage("{}"), None);
        assert_eq!(parse_trace_token_usage("nope"), None);
    }

    #[test]
    fn huge_bodies_are_read() {
        let content = "x".repeat(5_000_000);
        let text = format!(
            r#"{{"choices":[{{"message":{{"content":"{content}"}}}}],"usage":{{"prompt_tokens":7,"completion_tokens":3}}}}"#
        );
        assert_eq!(usage(&text).input_tokens, 7);
    }
}
