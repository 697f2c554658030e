//! The endpoints' current AI Gateway rate limits (input) and the patches that apply the
//! recommended ones (output).
//!
//! The input is the JSON the serving-endpoints API returns:
//! `{"endpoints":[{"name": "...", "ai_gateway": {"rate_limits": [{"key", "principal",
//! "renewal_period", "calls", "tokens"}]}}]}`. Fields of an endpoint or of `ai_gateway` other
//! than those are kept untouched and written back in the patch, because
//! `PUT /api/2.0/serving-endpoints/{name}/ai-gateway` replaces the whole AI Gateway config.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use deltalake::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use deltalake::arrow::datatypes::{DataType, Field, Schema};
use deltalake::datafusion::datasource::MemTable;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::columns;
use crate::error::{Error, Result};

/// Who a rule limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    /// Each user; with a principal, one user.
    User,
    /// The endpoint as a whole.
    Endpoint,
    /// A user group (shared by its members).
    UserGroup,
    /// One service principal.
    ServicePrincipal,
}

impl RateLimitKey {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RateLimitKey::User => "user",
            RateLimitKey::Endpoint => "endpoint",
            RateLimitKey::UserGroup => "user_group",
            RateLimitKey::ServicePrincipal => "service_principal",
        }
    }
}

/// The renewal period; the API supports only `minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewalPeriod {
    /// Per minute.
    Minute,
}

/// One rule, with exactly the API's fields.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitRule {
    /// Who is limited.
    pub key: RateLimitKey,
    /// A user email, group name or service principal application id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub principal: Option<String>,
    /// Always `minute`.
    pub renewal_period: RenewalPeriod,
    /// Calls allowed per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<i64>,
    /// Tokens allowed per period.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<i64>,
}

/// One endpoint's AI Gateway configuration as read.
#[derive(Debug, Clone)]
pub struct EndpointLimits {
    /// Endpoint name.
    pub name: String,
    /// Its rules, in the configured order.
    pub rules: Vec<RateLimitRule>,
    /// The rest of its `ai_gateway` object, kept for the patch.
    pub other_ai_gateway_fields: Map<String, Value>,
}

/// The whole rate-limit configuration.
#[derive(Debug, Clone, Default)]
pub struct RateLimitConfig {
    /// Endpoints by name.
    pub endpoints: BTreeMap<String, EndpointLimits>,
}

/// The API's limits on one endpoint's rules.
pub const MAX_RULES_PER_ENDPOINT: usize = 20;
/// The API's limit on group rules per endpoint.
pub const MAX_GROUP_RULES_PER_ENDPOINT: usize = 5;

fn config_error(location: &str, message: String) -> Error {
    Error::ReferenceData { input: "rate_limits".into(), location: location.into(), line: 0, message }
}

impl RateLimitConfig {
    /// Parses and validates the JSON; `location` is for messages.
    pub fn parse(bytes: &[u8], location: &str) -> Result<Self> {
        let root: Value =
            serde_json::from_slice(bytes).map_err(|e| config_error(location, format!("not valid JSON: {e}")))?;
        let endpoints = root
            .get("endpoints")
            .and_then(Value::as_array)
            .ok_or_else(|| config_error(location, "expected an object with an `endpoints` array".into()))?;
        let mut config = RateLimitConfig::default();
        for (index, endpoint) in endpoints.iter().enumerate() {
            let name = endpoint
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| config_error(location, format!("endpoints[{index}] has no `name`")))?
                .to_string();
            let mut ai_gateway = match endpoint.get("ai_gateway") {
                None | Some(Value::Null) => Map::new(),
                Some(Value::Object(map)) => map.clone(),
                Some(_) => {
                    return Err(config_error(location, format!("endpoint `{name}`: `ai_gateway` must be an object")));
                }
            };
            let rules_json = ai_gateway.remove("rate_limits").unwrap_or(Value::Array(Vec::new()));
            let Value::Array(rules_json) = rules_json else {
                return Err(config_error(location, format!("endpoint `{name}`: `rate_limits` must be an array")));
            };
            let mut rules = Vec::with_capacity(rules_json.len());
            for (i, rule) in rules_json.into_iter().enumerate() {
                let rule: RateLimitRule = serde_json::from_value(rule)
                    .map_err(|e| config_error(location, format!("endpoint `{name}`, rate_limits[{i}]: {e}")))?;
                rules.push(rule);
            }
            validate_rules(&name, &rules).map_err(|m| config_error(location, m))?;
            let entry = EndpointLimits { name: name.clone(), rules, other_ai_gateway_fields: ai_gateway };
            if config.endpoints.insert(name.clone(), entry).is_some() {
                return Err(config_error(location, format!("endpoint `{name}` is listed twice")));
            }
        }
        Ok(config)
    }

    /// The `rate_limit_rules` table the recommendations query reads: one row per rule.
    pub fn rules_table(&self) -> Result<MemTable> {
        let rows: Vec<(&str, &RateLimitRule)> =
            self.endpoints.values().flat_map(|e| e.rules.iter().map(move |r| (e.name.as_str(), r))).collect();
        let schema = Arc::new(Schema::new(vec![
            Field::new("endpoint_name", DataType::Utf8, false),
            Field::new("key", DataType::Utf8, false),
            Field::new("principal", DataType::Utf8, true),
            Field::new("calls", DataType::Int64, true),
            Field::new("tokens", DataType::Int64, true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|(e, _)| *e))),
            Arc::new(StringArray::from_iter_values(rows.iter().map(|(_, r)| r.key.as_str()))),
            Arc::new(rows.iter().map(|(_, r)| r.principal.as_deref()).collect::<StringArray>()),
            Arc::new(rows.iter().map(|(_, r)| r.calls).collect::<Int64Array>()),
            Arc::new(rows.iter().map(|(_, r)| r.tokens).collect::<Int64Array>()),
        ];
        columns::in_memory_table("rate_limit_rules", schema, columns)
    }
}

/// Rejects rules the recommendations could not interpret unambiguously.
fn validate_rules(endpoint: &str, rules: &[RateLimitRule]) -> std::result::Result<(), String> {
    // A principal's own limit may be written as a `user` or a `service_principal` rule: both
    // count as the same limit when checking for duplicates.
    let mut seen: HashMap<(RateLimitKey, Option<&str>, &str), usize> = HashMap::new();
    for (i, rule) in rules.iter().enumerate() {
        let at = format!("endpoint `{endpoint}`, rate_limits[{i}]");
        if rule.calls.is_none() && rule.tokens.is_none() {
            return Err(format!("{at}: a rule needs `calls` or `tokens`"));
        }
        if rule.calls.is_some_and(|c| c < 0) || rule.tokens.is_some_and(|t| t < 0) {
            return Err(format!("{at}: limits cannot be negative"));
        }
        match (rule.key, rule.principal.as_deref()) {
            (RateLimitKey::Endpoint, Some(_)) => return Err(format!("{at}: an `endpoint` rule takes no principal")),
            (RateLimitKey::UserGroup | RateLimitKey::ServicePrincipal, None) => {
                return Err(format!("{at}: a `{}` rule needs a principal", rule.key.as_str()));
            }
            _ => {}
        }
        for (dimension, present) in [("calls", rule.calls.is_some()), ("tokens", rule.tokens.is_some())] {
            let key = match (rule.key, &rule.principal) {
                (RateLimitKey::ServicePrincipal, Some(_)) => RateLimitKey::User,
                (key, _) => key,
            };
            if present && let Some(first) = seen.insert((key, rule.principal.as_deref(), dimension), i) {
                return Err(format!(
                    "{at}: repeats the {dimension} limit of rate_limits[{first}] for the same key and principal"
                ));
            }
        }
    }
    Ok(())
}

/// One row of `rate_limit_recommendations`, as far as patches need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    /// Endpoint.
    pub endpoint_name: String,
    /// Requester, or `(endpoint)` for the endpoint-wide row.
    pub requester: String,
    /// `raise`, `lower`, `add` or `keep` for calls.
    pub action: String,
    /// Which rule gives the current calls limit: `principal`, `default_user`, `endpoint` or none.
    pub current_calls_rule: Option<String>,
    /// The recommended calls per minute.
    pub recommended_calls_per_minute: i64,
    /// `raise`, `lower` or `keep` for tokens, where a tokens rule applies.
    pub tokens_action: Option<String>,
    /// Which rule gives the current tokens limit.
    pub current_tokens_rule: Option<String>,
    /// The recommended tokens per minute, where a tokens rule applies.
    pub recommended_tokens_per_minute: Option<i64>,
    /// Calls the recommended calls limit would have refused over the lookback.
    pub throttled_under_recommended: i64,
}

impl Recommendation {
    /// Reads the rows of computed `rate_limit_recommendations` batches.
    pub fn from_batches(batches: &[RecordBatch]) -> Result<Vec<Recommendation>> {
        let mut rows = Vec::new();
        for batch in batches {
            let endpoint = columns::strings(batch, "endpoint_name")?;
            let requester = columns::strings(batch, "requester")?;
            let action = columns::strings(batch, "action")?;
            let calls_rule = columns::strings(batch, "current_calls_rule")?;
            let recommended = columns::ints(batch, "recommended_calls_per_minute")?;
            let tokens_action = columns::strings(batch, "tokens_action")?;
            let tokens_rule = columns::strings(batch, "current_tokens_rule")?;
            let recommended_tokens = columns::ints(batch, "recommended_tokens_per_minute")?;
            let throttled = columns::ints(batch, "throttled_under_recommended")?;
            for i in 0..batch.num_rows() {
                rows.push(Recommendation {
                    endpoint_name: endpoint[i].clone().unwrap_or_default(),
                    requester: requester[i].clone().unwrap_or_default(),
                    action: action[i].clone().unwrap_or_default(),
                    current_calls_rule: calls_rule[i].clone(),
                    recommended_calls_per_minute: recommended[i].unwrap_or(1),
                    tokens_action: tokens_action[i].clone(),
                    current_tokens_rule: tokens_rule[i].clone(),
                    recommended_tokens_per_minute: recommended_tokens[i],
                    throttled_under_recommended: throttled[i].unwrap_or(0),
                });
            }
        }
        Ok(rows)
    }
}

/// The file name of an endpoint's patch (`recommendations/<endpoint>.json`); characters
/// outside `[A-Za-z0-9._-]` become `_`.
pub fn patch_file_name(endpoint: &str) -> String {
    let safe: String = endpoint
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') { c } else { '_' })
        .collect();
    format!("{safe}.json")
}

/// The requester value of the endpoint-wide recommendation row.
pub const ENDPOINT_ROW: &str = "(endpoint)";
/// The name the outputs give an unknown endpoint or requester; never patched.
const UNKNOWN: &str = "(unknown)";

/// A new rule list for one endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct EndpointPatch {
    /// Endpoint.
    pub endpoint_name: String,
    /// The complete new rule list.
    pub rules: Vec<RateLimitRule>,
    /// One line per change, for people.
    pub changes: Vec<String>,
    /// Problems a reviewer must know (for example more rules than the API allows).
    pub warnings: Vec<String>,
}

impl EndpointPatch {
    /// The body for `PUT /api/2.0/serving-endpoints/{name}/ai-gateway`: the endpoint's
    /// AI Gateway config as read, with `rate_limits` replaced.
    pub fn body(&self, config: &RateLimitConfig) -> Value {
        let mut body =
            config.endpoints.get(&self.endpoint_name).map(|e| e.other_ai_gateway_fields.clone()).unwrap_or_default();
        body.insert("rate_limits".into(), serde_json::to_value(&self.rules).unwrap_or(Value::Array(Vec::new())));
        Value::Object(body)
    }
}

/// A service principal is named by its application id (a UUID); users by email.
fn principal_key(principal: &str) -> RateLimitKey {
    let hex_and_dashes = principal.chars().all(|c| c.is_ascii_hexdigit() || c == '-');
    if principal.len() == 36 && hex_and_dashes { RateLimitKey::ServicePrincipal } else { RateLimitKey::User }
}

fn own_rule_index(rules: &[RateLimitRule], principal: &str, tokens: bool) -> Option<usize> {
    rules.iter().position(|r| {
        matches!(r.key, RateLimitKey::User | RateLimitKey::ServicePrincipal)
            && r.principal.as_deref() == Some(principal)
            && if tokens { r.tokens.is_some() } else { r.calls.is_some() }
    })
}

fn shared_rule_index(rules: &[RateLimitRule], key: RateLimitKey, tokens: bool) -> Option<usize> {
    rules.iter().position(|r| {
        r.key == key && r.principal.is_none() && if tokens { r.tokens.is_some() } else { r.calls.is_some() }
    })
}

/// Builds the patch of every endpoint whose rules the recommendations change.
///
/// - the `(endpoint)` row's raise/lower/add sets (or adds) the `endpoint` calls rule;
/// - a requester's `raise` sets its own rule, or adds one when only the endpoint's default
///   `user` rule limited it; its `lower` changes only its own rule (a shared default is not
///   lowered for one requester);
/// - requesters with `add` (no limit at all) give the endpoint a default `user` rule at the
///   largest of their recommendations, so none of them would have been refused;
/// - tokens rules follow `tokens_action` the same way; no tokens rule is ever created.
pub fn build_patches(config: &RateLimitConfig, recommendations: &[Recommendation]) -> Vec<EndpointPatch> {
    let mut by_endpoint: BTreeMap<&str, Vec<&Recommendation>> = BTreeMap::new();
    for r in recommendations.iter().filter(|r| r.endpoint_name != UNKNOWN) {
        by_endpoint.entry(r.endpoint_name.as_str()).or_default().push(r);
    }
    let mut patches = Vec::new();
    for (endpoint, rows) in by_endpoint {
        let original = config.endpoints.get(endpoint).map(|e| e.rules.clone()).unwrap_or_default();
        let mut rules = original.clone();
        let mut changes = Vec::new();
        let mut added: Vec<RateLimitRule> = Vec::new();
        let mut default_user_calls: Option<i64> = None;
        for row in &rows {
            let is_endpoint_row = row.requester == ENDPOINT_ROW;
            let recommended = row.recommended_calls_per_minute;
            let refused = |what: &str| match row.throttled_under_recommended {
                0 => String::new(),
                n => format!(" (over the lookback it would have refused {n} calls {what})"),
            };
            match (row.action.as_str(), row.current_calls_rule.as_deref()) {
                ("raise" | "lower" | "add", _) if is_endpoint_row => {
                    match shared_rule_index(&original, RateLimitKey::Endpoint, false) {
                        Some(i) => rules[i].calls = Some(recommended),
                        None => added.push(RateLimitRule {
                            key: RateLimitKey::Endpoint,
                            principal: None,
                            renewal_period: RenewalPeriod::Minute,
                            calls: Some(recommended),
                            tokens: None,
                        }),
                    }
                    changes.push(format!(
                        "{} endpoint limit: {recommended} calls/min{}",
                        row.action,
                        refused("to the endpoint")
                    ));
                }
                ("raise" | "lower", Some("principal")) if row.requester != UNKNOWN => {
                    if let Some(i) = own_rule_index(&original, &row.requester, false) {
                        rules[i].calls = Some(recommended);
                        changes.push(format!(
                            "{} {}: {recommended} calls/min{}",
                            row.action,
                            row.requester,
                            refused("of theirs")
                        ));
                    }
                }
                ("raise", Some("default_user")) if row.requester != UNKNOWN => {
                    added.push(RateLimitRule {
                        key: principal_key(&row.requester),
                        principal: Some(row.requester.clone()),
                        renewal_period: RenewalPeriod::Minute,
                        calls: Some(recommended),
                        tokens: None,
                    });
                    changes.push(format!(
                        "add a limit for {}: {recommended} calls/min (above the default)",
                        row.requester
                    ));
                }
                ("add", None) if !is_endpoint_row => {
                    default_user_calls = Some(default_user_calls.map_or(recommended, |c| c.max(recommended)));
                }
                _ => {}
            }
            if let (Some(action @ ("raise" | "lower")), Some(tokens)) =
                (row.tokens_action.as_deref(), row.recommended_tokens_per_minute)
            {
                let index = match row.current_tokens_rule.as_deref() {
                    Some("principal") => own_rule_index(&original, &row.requester, true),
                    Some("endpoint") if is_endpoint_row => shared_rule_index(&original, RateLimitKey::Endpoint, true),
                    _ => None,
                };
                if let Some(i) = index {
                    rules[i].tokens = Some(tokens);
                    changes.push(format!("{action} tokens for {}: {tokens} tokens/min", row.requester));
                } else if action == "raise"
                    && row.current_tokens_rule.as_deref() == Some("default_user")
                    && !is_endpoint_row
                    && row.requester != UNKNOWN
                {
                    added.push(RateLimitRule {
                        key: principal_key(&row.requester),
                        principal: Some(row.requester.clone()),
                        renewal_period: RenewalPeriod::Minute,
                        calls: None,
                        tokens: Some(tokens),
                    });
                    changes.push(format!(
                        "add a tokens limit for {}: {tokens} tokens/min (above the default)",
                        row.requester
                    ));
                }
            }
        }
        if let Some(calls) = default_user_calls
            && shared_rule_index(&original, RateLimitKey::User, false).is_none()
        {
            added.push(RateLimitRule {
                key: RateLimitKey::User,
                principal: None,
                renewal_period: RenewalPeriod::Minute,
                calls: Some(calls),
                tokens: None,
            });
            changes.push(format!("add a default per-user limit: {calls} calls/min"));
        }
        added.sort_by(|a, b| {
            (a.key.as_str(), &a.principal, a.calls, a.tokens).cmp(&(b.key.as_str(), &b.principal, b.calls, b.tokens))
        });
        rules.extend(added);
        if rules == original {
            continue;
        }
        let mut warnings = Vec::new();
        if rules.len() > MAX_RULES_PER_ENDPOINT {
            warnings.push(format!("{} rules exceed the API's limit of {MAX_RULES_PER_ENDPOINT} per endpoint; merge principals into groups before applying", rules.len()));
        }
        let groups = rules.iter().filter(|r| r.key == RateLimitKey::UserGroup).count();
        if groups > MAX_GROUP_RULES_PER_ENDPOINT {
            warnings.push(format!("{groups} group rules exceed the API's limit of {MAX_GROUP_RULES_PER_ENDPOINT}"));
        }
        patches.push(EndpointPatch { endpoint_name: endpoint.to_string(), rules, changes, warnings });
    }
    patches
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"{"endpoints": [
        {"name": "chat", "ai_gateway": {"usage_tracking_config": {"enabled": true}, "rate_limits": [
            {"key": "endpoint", "renewal_period": "minute", "calls": 1000},
            {"key": "user", "renewal_period": "minute", "calls": 60},
            {"key": "user", "principal": "ana@example.com", "renewal_period": "minute", "calls": 500},
            {"key": "user_group", "principal": "data-science", "renewal_period": "minute", "calls": 50}
        ]}},
        {"name": "embed", "ai_gateway": null}
    ]}"#;

    fn rec(endpoint: &str, requester: &str, action: &str, rule: Option<&str>, recommended: i64) -> Recommendation {
        Recommendation {
            endpoint_name: endpoint.into(),
            requester: requester.into(),
            action: action.into(),
            current_calls_rule: rule.map(String::from),
            recommended_calls_per_minute: recommended,
            tokens_action: None,
            current_tokens_rule: None,
            recommended_tokens_per_minute: None,
            throttled_under_recommended: 0,
        }
    }

    #[test]
    fn rejects_unknown_keys_and_periods() {
        for (bad, needle) in [
            (r#"{"key": "team", "renewal_period": "minute", "calls": 1}"#, "unknown variant `team`"),
            (r#"{"key": "user", "renewal_period": "hour", "calls": 1}"#, "unknown variant `hour`"),
            (r#"{"key": "user", "renewal_period": "minute", "calls": 1, "burst": 2}"#, "unknown field `burst`"),
            (r#"{"key": "user", "renewal_period": "minute"}"#, "needs `calls` or `tokens`"),
            (r#"{"key": "service_principal", "renewal_period": "minute", "calls": 1}"#, "needs a principal"),
        ] {
            let json = format!(r#"{{"endpoints": [{{"name": "x", "ai_gateway": {{"rate_limits": [{bad}]}}}}]}}"#);
            let err = RateLimitConfig::parse(json.as_bytes(), "limits.json").unwrap_err().to_string();
            assert!(err.contains(needle) && err.contains("endpoint `x`, rate_limits[0]"), "{err}");
        }
    }

    #[test]
    fn patches_keep_unchanged_rules_and_other_config() {
        let config = RateLimitConfig::parse(CONFIG.as_bytes(), "limits.json").unwrap();
        let patches = build_patches(
            &config,
            &[
                rec("chat", "ana@example.com", "raise", Some("principal"), 900),
                rec("chat", "bo@example.com", "raise", Some("default_user"), 80),
                rec("chat", "cy@example.com", "lower", Some("default_user"), 5),
                rec("chat", ENDPOINT_ROW, "keep", Some("endpoint"), 700),
                rec("embed", "dee@example.com", "add", None, 12),
                rec("embed", "eve@example.com", "add", None, 30),
                rec("embed", ENDPOINT_ROW, "add", None, 90),
            ],
        );
        assert_eq!(patches.len(), 2);
        let chat = &patches[0];
        let body = chat.body(&config);
        assert_eq!(body["usage_tracking_config"]["enabled"], true);
        let rules = body["rate_limits"].as_array().unwrap();
        assert_eq!(rules.len(), 5, "{body}");
        assert_eq!(rules[0]["calls"], 1000, "the endpoint rule is kept");
        assert_eq!(rules[1]["calls"], 60, "a shared default is not lowered for one user");
        assert_eq!(rules[2]["calls"], 900);
        assert_eq!(rules[3]["key"], "user_group");
        assert_eq!(
            rules[4],
            serde_json::json!({"key": "user", "principal": "bo@example.com", "renewal_period": "minute", "calls": 80})
        );
        let embed = patches[1].body(&config);
        assert_eq!(
            embed["rate_limits"],
            serde_json::json!([
                {"key": "endpoint", "renewal_period": "minute", "calls": 90},
                {"key": "user", "renewal_period": "minute", "calls": 30},
            ])
        );
    }

    #[test]
    fn no_patch_when_nothing_changes() {
        let config = RateLimitConfig::parse(CONFIG.as_bytes(), "limits.json").unwrap();
        assert!(build_patches(&config, &[rec("chat", "x@example.com", "keep", Some("default_user"), 50)]).is_empty());
    }
}
