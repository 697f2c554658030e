//! The new AI Gateway's (Beta) current rate limits (`[inputs] gateway_rate_limits`) and the
//! patches that apply the recommended ones.
//!
//! The input is the `ModelService.config.rate_limits` shape of the Unity Catalog
//! model-services API: `{"model_services": [{"name": "<catalog>.<schema>.<service>", "config":
//! {"rate_limits": [{"key", "renewal_period", "principal", "request_tag_key",
//! "request_tag_value", "requests", "tokens"}]}}]}` (docs/OUTPUTS.md#ai_gateway_rate_limit_recommendations).
//! Other fields of a service or of its `config` (routing, ...) are ignored: the patch,
//! `PATCH /api/2.1/unity-catalog/model-services/{name}?update_mask=config.rate_limits`,
//! replaces only the list of limits.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::datasource::MemTable;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::columns;
use crate::error::{Error, Result};

/// The name of the rules table the recommendations query reads.
pub const RULES_TABLE: &str = "gateway_rate_limit_rules";

/// Who a limit applies to (`RATE_LIMIT_KEY_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum LimitKey {
    /// The service as a whole (a global maximum).
    #[serde(rename = "RATE_LIMIT_KEY_SERVICE")]
    Service,
    /// One user (`principal` is the email).
    #[serde(rename = "RATE_LIMIT_KEY_USER")]
    User,
    /// Every user without a limit of their own.
    #[serde(rename = "RATE_LIMIT_KEY_USER_DEFAULT")]
    UserDefault,
    /// A user group.
    #[serde(rename = "RATE_LIMIT_KEY_USER_GROUP")]
    UserGroup,
    /// One service principal (`principal` is its application id).
    #[serde(rename = "RATE_LIMIT_KEY_SERVICE_PRINCIPAL")]
    ServicePrincipal,
    /// Requests carrying a request tag (possibly withdrawn from the API).
    #[serde(rename = "RATE_LIMIT_KEY_REQUEST_TAG")]
    RequestTag,
}

impl LimitKey {
    /// The key without its `RATE_LIMIT_KEY_` prefix, lower case, as in the output.
    pub fn short(self) -> &'static str {
        match self {
            LimitKey::Service => "service",
            LimitKey::User => "user",
            LimitKey::UserDefault => "user_default",
            LimitKey::UserGroup => "user_group",
            LimitKey::ServicePrincipal => "service_principal",
            LimitKey::RequestTag => "request_tag",
        }
    }
}

/// How often a limit renews.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
pub enum Renewal {
    /// Per minute.
    #[serde(rename = "RATE_LIMIT_RENEWAL_PERIOD_MINUTE")]
    Minute,
    /// Per hour.
    #[serde(rename = "RATE_LIMIT_RENEWAL_PERIOD_HOUR")]
    Hour,
}

/// A count the API may send as a JSON number or, as protobuf JSON does for 64-bit integers,
/// as a string of digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count(pub i64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(i64),
            Text(String),
        }
        let value = match Raw::deserialize(deserializer)? {
            Raw::Number(n) => n,
            Raw::Text(text) => {
                text.parse::<i64>().map_err(|_| serde::de::Error::custom(format!("`{text}` is not a whole number")))?
            }
        };
        if value < 0 {
            return Err(serde::de::Error::custom(format!("{value} is negative")));
        }
        Ok(Count(value))
    }
}

impl Serialize for Count {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0)
    }
}

/// One `RateLimit`, with exactly the API's fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayRateLimit {
    /// Who is limited.
    pub key: LimitKey,
    /// The renewal period.
    pub renewal_period: Renewal,
    /// User email, group name or service principal application id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// The request tag's key (REQUEST_TAG only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_tag_key: Option<String>,
    /// The request tag's value; unset means every value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_tag_value: Option<String>,
    /// Requests allowed per period; unset means no limit on requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<Count>,
    /// Tokens allowed per period; unset means no limit on tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<Count>,
}

impl GatewayRateLimit {
    /// Why the recommendations do not evaluate this limit (`None`: they do).
    pub fn not_evaluated_reason(&self) -> Option<&'static str> {
        match (self.key, self.renewal_period) {
            (LimitKey::UserGroup, _) => {
                Some("group limits are not evaluated: the usage table does not say which group a requester belongs to")
            }
            (LimitKey::RequestTag, _) => Some(
                "request-tag limits are not evaluated: the key may have been withdrawn from the API \
                 (an SDK changelog removes RATE_LIMIT_KEY_REQUEST_TAG) and request_tags are not populated on every route",
            ),
            (_, Renewal::Hour) => {
                Some("per-hour limits are not evaluated: the recommendations compare per-minute demand")
            }
            _ => None,
        }
    }
}

/// The current limits of every model or MCP service named in the input.
#[derive(Debug, Clone, Default)]
pub struct GatewayRateLimits {
    /// Each service's limits, in the configured order, by full name.
    pub services: BTreeMap<String, Vec<GatewayRateLimit>>,
}

fn input_error(location: &str, message: String) -> Error {
    Error::ReferenceData { input: "gateway_rate_limits".into(), location: location.into(), line: 0, message }
}

impl GatewayRateLimits {
    /// Parses and validates the JSON; `location` is for messages, which name the service, the
    /// limit's index and the field.
    pub fn parse(bytes: &[u8], location: &str) -> Result<Self> {
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| input_error(location, format!("not valid JSON: {e}")))?;
        let services = root
            .get("model_services")
            .and_then(Value::as_array)
            .ok_or_else(|| input_error(location, "expected an object with a `model_services` array".into()))?;
        let mut parsed = GatewayRateLimits::default();
        for (index, service) in services.iter().enumerate() {
            let name = service
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| input_error(location, format!("model_services[{index}] has no `name`")))?
                .to_string();
            let limits = match service.get("config").and_then(|c| c.get("rate_limits")) {
                None | Some(Value::Null) => Vec::new(),
                Some(Value::Array(limits)) => limits.clone(),
                Some(_) => {
                    return Err(input_error(
                        location,
                        format!("service `{name}`: `config.rate_limits` must be an array"),
                    ));
                }
            };
            let mut rules = Vec::with_capacity(limits.len());
            for (i, limit) in limits.into_iter().enumerate() {
                let rule: GatewayRateLimit = serde_json::from_value(limit)
                    .map_err(|e| input_error(location, format!("service `{name}`, config.rate_limits[{i}]: {e}")))?;
                rules.push(rule);
            }
            validate(&name, &rules).map_err(|m| input_error(location, m))?;
            if parsed.services.insert(name.clone(), rules).is_some() {
                return Err(input_error(location, format!("service `{name}` is listed twice")));
            }
        }
        Ok(parsed)
    }

    /// The [`RULES_TABLE`] the recommendations query reads: one row per limit.
    pub fn rules_table(&self) -> Result<MemTable> {
        let rows: Vec<(&str, usize, &GatewayRateLimit)> = self
            .services
            .iter()
            .flat_map(|(name, rules)| rules.iter().enumerate().map(move |(i, r)| (name.as_str(), i, r)))
            .collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("endpoint_name", DataType::Utf8, false),
            Field::new("rule_index", DataType::Int64, false),
            Field::new("key", DataType::Utf8, false),
            Field::new("renewal_period", DataType::Utf8, false),
            Field::new("principal", DataType::Utf8, true),
            Field::new("request_tag_key", DataType::Utf8, true),
            Field::new("request_tag_value", DataType::Utf8, true),
            Field::new("requests", DataType::Int64, true),
            Field::new("tokens", DataType::Int64, true),
            Field::new("not_evaluated_reason", DataType::Utf8, true),
        ]));
        let period = |r: &GatewayRateLimit| match r.renewal_period {
            Renewal::Minute => "minute",
            Renewal::Hour => "hour",
        };
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|(n, _, _)| *n))),
            Arc::new(rows.iter().map(|(_, i, _)| i64::try_from(*i).ok()).collect::<Int64Array>()),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, _, r)| r.key.short()))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, _, r)| period(r)))),
            Arc::new(rows.iter().map(|(_, _, r)| r.principal.as_deref()).collect::<StringArray>()),
            Arc::new(rows.iter().map(|(_, _, r)| r.request_tag_key.as_deref()).collect::<StringArray>()),
            Arc::new(rows.iter().map(|(_, _, r)| r.request_tag_value.as_deref()).collect::<StringArray>()),
            Arc::new(rows.iter().map(|(_, _, r)| r.requests.map(|c| c.0)).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|(_, _, r)| r.tokens.map(|c| c.0)).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|(_, _, r)| r.not_evaluated_reason()).collect::<StringArray>()),
        ];
        columns::in_memory_table(RULES_TABLE, schema, columns)
    }
}

/// The API's rules on which fields a key takes (O-sdk), and no limit given twice.
fn validate(service: &str, rules: &[GatewayRateLimit]) -> std::result::Result<(), String> {
    let mut seen = HashSet::new();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("service `{service}`, config.rate_limits[{i}]");
        let key = rule.key;
        let needs_principal = matches!(key, LimitKey::User | LimitKey::UserGroup | LimitKey::ServicePrincipal);
        match (&rule.principal, needs_principal) {
            (None, true) => return Err(format!("{at}: field `principal` is required for {key:?} limits")),
            (Some(_), false) if key != LimitKey::UserDefault && key != LimitKey::Service => {
                return Err(format!("{at}: field `principal` must not be set for {key:?} limits"));
            }
            (Some(_), false) => return Err(format!("{at}: field `principal` is not taken by {key:?} limits")),
            _ => {}
        }
        match (&rule.request_tag_key, key) {
            (None, LimitKey::RequestTag) => {
                return Err(format!("{at}: field `request_tag_key` is required for RequestTag limits"));
            }
            (Some(_), k) if k != LimitKey::RequestTag => {
                return Err(format!("{at}: field `request_tag_key` is only for RequestTag limits"));
            }
            _ => {}
        }
        if rule.request_tag_value.is_some() && key != LimitKey::RequestTag {
            return Err(format!("{at}: field `request_tag_value` is only for RequestTag limits"));
        }
        if rule.requests.is_none() && rule.tokens.is_none() {
            return Err(format!("{at}: a limit needs field `requests` or `tokens`"));
        }
        let identity = (key, rule.renewal_period, &rule.principal, &rule.request_tag_key, &rule.request_tag_value);
        if !seen.insert(identity) {
            return Err(format!("{at}: repeats an earlier limit with the same key, principal and period"));
        }
    }
    Ok(())
}

/// One service's patch: the request line and its body, the whole new list of limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePatch {
    /// The service's full name.
    pub service: String,
    /// The new list, in the configured order, changed limits in place and added ones last.
    pub rate_limits: Vec<GatewayRateLimit>,
    /// One line per change, for people.
    pub changes: Vec<String>,
}

impl ServicePatch {
    /// `PATCH /api/2.1/unity-catalog/model-services/{name}?update_mask=config.rate_limits`.
    pub fn request_line(&self) -> String {
        format!("PATCH /api/2.1/unity-catalog/model-services/{}?update_mask=config.rate_limits", self.service)
    }

    /// The body: `{"config": {"rate_limits": [...]}}`.
    pub fn body(&self) -> Value {
        serde_json::json!({ "config": { "rate_limits": self.rate_limits } })
    }

    /// The patch file: the request line (`method`, `path`) and the body.
    pub fn file(&self) -> Value {
        serde_json::json!({
            "method": "PATCH",
            "path": format!("/api/2.1/unity-catalog/model-services/{}", self.service),
            "query": { "update_mask": "config.rate_limits" },
            "body": self.body(),
        })
    }
}

/// One row of `ai_gateway_rate_limit_recommendations` the patches need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayRecommendation {
    /// The service.
    pub endpoint_name: String,
    /// The requester, or `(service)`.
    pub requester: String,
    /// `raise`, `lower`, `add`, `keep` or `not_evaluated`.
    pub action: String,
    /// The rule the current limit came from (`principal`, `user_default`, `service`).
    pub current_calls_rule: Option<String>,
    /// The recommended requests per minute.
    pub recommended_calls_per_minute: Option<i64>,
}

/// The patches the recommendations imply, one per service with a change: `raise` changes the
/// limit that applies (a principal's own or the service's; a requester under the default
/// limit gets an own limit rather than a raised default); `lower` changes only a principal's
/// own or the service's limit; `add` adds a service limit (never one per requester: absent
/// per-user limits stay absent). The key of an added own limit is `USER` for requesters that
/// look like emails and `SERVICE_PRINCIPAL` otherwise. Limits not evaluated are kept as they are.
pub fn build_patches(current: &GatewayRateLimits, rows: &[GatewayRecommendation]) -> Vec<ServicePatch> {
    let mut by_service: BTreeMap<&str, Vec<&GatewayRecommendation>> = BTreeMap::new();
    for row in rows.iter().filter(|r| r.endpoint_name != "(unknown)") {
        by_service.entry(row.endpoint_name.as_str()).or_default().push(row);
    }
    let mut patches = Vec::new();
    for (service, rows) in by_service {
        let mut limits = current.services.get(service).cloned().unwrap_or_default();
        let mut changes = Vec::new();
        for row in rows {
            let Some(recommended) = row.recommended_calls_per_minute else { continue };
            let service_row = row.requester == "(service)";
            let rule = row.current_calls_rule.as_deref();
            let change = match (row.action.as_str(), rule) {
                ("raise", Some("user_default")) | ("raise" | "lower", Some("principal")) => {
                    Some(Target::Own(&row.requester))
                }
                ("raise" | "lower", Some("service")) | ("add", None) if service_row => Some(Target::Service),
                _ => None,
            };
            let Some(target) = change else { continue };
            let found = limits.iter_mut().find(|l| {
                l.renewal_period == Renewal::Minute
                    && match target {
                        Target::Service => l.key == LimitKey::Service,
                        Target::Own(who) => {
                            matches!(l.key, LimitKey::User | LimitKey::ServicePrincipal)
                                && l.principal.as_deref() == Some(who)
                        }
                    }
            });
            match found {
                Some(limit) => {
                    let before = limit.requests.map_or_else(|| "none".to_string(), |c| c.0.to_string());
                    limit.requests = Some(Count(recommended));
                    changes.push(format!("{}: requests per minute {before} -> {recommended}", target.describe()));
                }
                None => {
                    let (key, principal) = match target {
                        Target::Service => (LimitKey::Service, None),
                        Target::Own(who) if who.contains('@') => (LimitKey::User, Some(who.to_string())),
                        Target::Own(who) => (LimitKey::ServicePrincipal, Some(who.to_string())),
                    };
                    limits.push(GatewayRateLimit {
                        key,
                        renewal_period: Renewal::Minute,
                        principal,
                        request_tag_key: None,
                        request_tag_value: None,
                        requests: Some(Count(recommended)),
                        tokens: None,
                    });
                    changes.push(format!("{}: add a limit of {recommended} requests per minute", target.describe()));
                }
            }
        }
        if !changes.is_empty() {
            patches.push(ServicePatch { service: service.to_string(), rate_limits: limits, changes });
        }
    }
    patches
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Service,
    Own(&'a str),
}

impl Target<'_> {
    fn describe(self) -> String {
        match self {
            Target::Service => "the service limit".to_string(),
            Target::Own(who) => format!("{who}'s own limit"),
        }
    }
}

/// A patch file: its name and its content.
pub type PatchFile = (String, Vec<u8>);

/// The patch files (name, pretty JSON) of `patches`: `<service>.json` holding the request
/// ([`ServicePatch::file`]).
pub fn patch_files(patches: &[ServicePatch]) -> Result<Vec<PatchFile>> {
    patches
        .iter()
        .map(|p| {
            let body = serde_json::to_vec_pretty(&p.file()).map_err(|e| Error::Generate(e.to_string()))?;
            Ok((crate::rate_limits::patch_file_name(&p.service), body))
        })
        .collect()
}

impl GatewayRecommendation {
    /// The rows of the `ai_gateway_rate_limit_recommendations` batches.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Vec<GatewayRecommendation>> {
        let mut rows = Vec::new();
        for batch in batches {
            let endpoint = columns::strings(batch, "endpoint_name")?;
            let requester = columns::strings(batch, "requester")?;
            let action = columns::strings(batch, "action")?;
            let rule = columns::strings(batch, "current_calls_rule")?;
            let recommended = columns::ints(batch, "recommended_calls_per_minute")?;
            for i in 0..batch.num_rows() {
                rows.push(GatewayRecommendation {
                    endpoint_name: endpoint[i].clone().unwrap_or_default(),
                    requester: requester[i].clone().unwrap_or_default(),
                    action: action[i].clone().unwrap_or_default(),
                    current_calls_rule: rule[i].clone(),
                    recommended_calls_per_minute: recommended[i],
                });
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<GatewayRateLimits, String> {
        GatewayRateLimits::parse(text.as_bytes(), "limits.json").map_err(|e| e.to_string())
    }

    #[test]
    fn reads_every_key_and_counts_as_numbers_or_strings() {
        let limits = parse(
            r#"{"model_services":[{"name":"main.gateway.chat","config":{"routing":{},"rate_limits":[
              {"key":"RATE_LIMIT_KEY_SERVICE","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","requests":"100"},
              {"key":"RATE_LIMIT_KEY_USER","principal":"a@x.com","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","tokens":5000},
              {"key":"RATE_LIMIT_KEY_USER_DEFAULT","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_HOUR","requests":10},
              {"key":"RATE_LIMIT_KEY_REQUEST_TAG","request_tag_key":"project","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","requests":1}
            ]}}]}"#,
        )
        .unwrap();
        let rules = &limits.services["main.gateway.chat"];
        assert_eq!(rules[0].requests, Some(Count(100)));
        assert_eq!(rules[1].tokens, Some(Count(5000)));
        assert!(rules[0].not_evaluated_reason().is_none());
        assert!(rules[2].not_evaluated_reason().unwrap().contains("per-hour"));
        assert!(rules[3].not_evaluated_reason().unwrap().contains("request-tag"));
    }

    #[test]
    fn errors_name_the_service_the_limit_and_the_field() {
        let limit =
            |body: &str| format!(r#"{{"model_services":[{{"name":"s","config":{{"rate_limits":[{body}]}}}}]}}"#);
        let cases = [
            (
                r#"{"key":"RATE_LIMIT_KEY_USER","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","requests":1}"#,
                "`principal` is required",
            ),
            (
                r#"{"key":"RATE_LIMIT_KEY_REQUEST_TAG","principal":"p","request_tag_key":"k","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","requests":1}"#,
                "`principal` must not be set",
            ),
            (
                r#"{"key":"RATE_LIMIT_KEY_REQUEST_TAG","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","requests":1}"#,
                "`request_tag_key` is required",
            ),
            (
                r#"{"key":"RATE_LIMIT_KEY_SERVICE","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_DAY","requests":1}"#,
                "RATE_LIMIT_RENEWAL_PERIOD_DAY",
            ),
            (
                r#"{"key":"RATE_LIMIT_KEY_SERVICE","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","requests":-1}"#,
                "negative",
            ),
            (
                r#"{"key":"RATE_LIMIT_KEY_SERVICE","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","calls":1}"#,
                "unknown field `calls`",
            ),
            (
                r#"{"key":"RATE_LIMIT_KEY_SERVICE","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE"}"#,
                "`requests` or `tokens`",
            ),
        ];
        for (body, expected) in cases {
            let error = parse(&limit(body)).unwrap_err();
            assert!(error.contains("service `s`, config.rate_limits[0]") && error.contains(expected), "{error}");
        }
        assert!(parse("{}").unwrap_err().contains("`model_services`"));
    }

    #[test]
    fn patches_change_own_and_service_limits_and_keep_the_rest() {
        let current = parse(
            r#"{"model_services":[{"name":"main.g.chat","config":{"rate_limits":[
              {"key":"RATE_LIMIT_KEY_USER_GROUP","principal":"analysts","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","requests":50},
              {"key":"RATE_LIMIT_KEY_USER_DEFAULT","renewal_period":"RATE_LIMIT_RENEWAL_PERIOD_MINUTE","requests":5}
            ]}}]}"#,
        )
        .unwrap();
        let row = |requester: &str, action: &str, rule: Option<&str>, recommended: i64| GatewayRecommendation {
            endpoint_name: "main.g.chat".into(),
            requester: requester.into(),
            action: action.into(),
            current_calls_rule: rule.map(str::to_string),
            recommended_calls_per_minute: Some(recommended),
        };
        let patches = build_patches(
            &current,
            &[
                row("(service)", "add", None, 90),
                row("a@x.com", "raise", Some("user_default"), 8),
                row("b@x.com", "keep", Some("user_default"), 3),
                row("app-1", "lower", Some("user_default"), 1),
            ],
        );
        assert_eq!(patches.len(), 1);
        let body = patches[0].body();
        let limits = body["config"]["rate_limits"].as_array().unwrap();
        assert_eq!(limits.len(), 4, "{body}");
        assert_eq!(limits[0]["key"], "RATE_LIMIT_KEY_USER_GROUP");
        assert_eq!(limits[1]["requests"], 5);
        assert_eq!(limits[2]["key"], "RATE_LIMIT_KEY_SERVICE");
        assert_eq!(limits[3]["principal"], "a@x.com");
        assert_eq!(limits[3]["requests"], 8);
        assert!(patches[0].request_line().ends_with("main.g.chat?update_mask=config.rate_limits"));
    }
}
