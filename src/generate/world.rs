//! The simulated workspace: endpoints and their served entities, principals, teams and prices.

use chrono::{Duration, NaiveDate};

use super::rng::{Rng, Weighted};

/// The request/response body family an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// OpenAI-compatible chat completions.
    OpenAiChat,
    /// OpenAI-compatible chat with reasoning tokens (and cached prompt tokens).
    OpenAiReasoning,
    /// Anthropic Messages, with prompt caching.
    AnthropicMessages,
    /// OpenAI-compatible embeddings (no output tokens).
    Embeddings,
    /// A custom model (`predictions`), billed by compute, not tokens.
    CustomModel,
}

/// One serving endpoint with its current served entity.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// Endpoint name.
    pub name: &'static str,
    /// Endpoint id.
    pub endpoint_id: String,
    /// The served entity id that usage and payload rows carry.
    pub served_entity_id: String,
    /// Underlying model name (what prices are keyed by).
    pub entity_name: &'static str,
    /// The entity name before the last configuration change, when it changed.
    pub previous_entity_name: Option<&'static str>,
    /// `FOUNDATION_MODEL`, `EXTERNAL_MODEL` or `CUSTOM_MODEL`.
    pub entity_type: &'static str,
    /// External provider, for external models.
    pub provider: Option<&'static str>,
    /// `llm/v1/chat`, `llm/v1/embeddings`, ...
    pub task: &'static str,
    /// Body family.
    pub body: BodyKind,
    /// Fraction of requests the inference table logs.
    pub sampling_fraction: f64,
    /// Share of the workspace's traffic.
    pub traffic_share: f64,
    /// Whether calls may stream.
    pub streams: bool,
}

/// A user or service principal.
#[derive(Debug, Clone)]
pub struct Principal {
    /// Email (users) or application id (service principals).
    pub id: String,
    /// Service principals send usage_context and bursts.
    pub is_service_principal: bool,
    /// The team the principal belongs to.
    pub home_team: &'static str,
    /// Whether teams.csv lists the principal.
    pub in_teams_csv: bool,
    /// The team it puts in usage_context (may disagree with `home_team`), if it sends one.
    pub context_team: Option<&'static str>,
    /// Sends bursts that trip its rate limit.
    pub bursty: bool,
}

/// Teams of the workspace.
pub const TEAMS: [&str; 6] = ["search", "support-bot", "data-science", "finance-ai", "platform", "growth"];

/// The per-minute calls limit bursty principals run into.
pub const BURST_LIMIT_PER_MINUTE: i64 = 60;

const FIRST_NAMES: [&str; 20] = [
    "ana", "ben", "chen", "dara", "eli", "fatima", "gus", "hana", "ivan", "jo", "kofi", "lena", "mateo", "nia", "omar",
    "priya", "quinn", "rosa", "sam", "tariq",
];
const LAST_NAMES: [&str; 16] = [
    "silva", "okafor", "nguyen", "muller", "rossi", "kim", "garcia", "smith", "haddad", "ito", "novak", "costa",
    "berg", "singh", "moreau", "walsh",
];

/// The whole simulated workspace.
#[derive(Debug, Clone)]
pub struct World {
    /// Endpoints, with index = position.
    pub endpoints: Vec<Endpoint>,
    /// A served entity id that usage rows carry but served_entities does not know.
    pub orphan_served_entity_id: String,
    /// Users and service principals.
    pub principals: Vec<Principal>,
    /// Skewed popularity of principals.
    pub principal_popularity: Weighted,
    /// Endpoint choice by traffic share.
    pub endpoint_mix: Weighted,
    /// Account and workspace ids.
    pub account_id: String,
    /// Workspace id.
    pub workspace_id: String,
}

impl World {
    /// Builds the workspace for a seed.
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed, 1);
        let mut served = || format!("se-{}", rng.hex(24));
        let endpoints = vec![
            Endpoint {
                name: "chat-prod",
                endpoint_id: String::new(),
                served_entity_id: served(),
                entity_name: "system.ai.databricks-meta-llama-3-3-70b-instruct",
                previous_entity_name: Some("system.ai.databricks-meta-llama-3-1-70b-instruct"),
                entity_type: "FOUNDATION_MODEL",
                provider: None,
                task: "llm/v1/chat",
                body: BodyKind::OpenAiChat,
                sampling_fraction: 1.0,
                traffic_share: 0.40,
                streams: true,
            },
            Endpoint {
                name: "claude-agents",
                endpoint_id: String::new(),
                served_entity_id: served(),
                entity_name: "system.ai.databricks-claude-sonnet-4-5",
                previous_entity_name: None,
                entity_type: "FOUNDATION_MODEL",
                provider: None,
                task: "llm/v1/chat",
                body: BodyKind::AnthropicMessages,
                sampling_fraction: 1.0,
                traffic_share: 0.25,
                streams: true,
            },
            Endpoint {
                name: "gpt-reasoning",
                endpoint_id: String::new(),
                served_entity_id: served(),
                entity_name: "gpt-5",
                previous_entity_name: None,
                entity_type: "EXTERNAL_MODEL",
                provider: Some("openai"),
                task: "llm/v1/chat",
                body: BodyKind::OpenAiReasoning,
                sampling_fraction: 0.25,
                traffic_share: 0.13,
                streams: true,
            },
            Endpoint {
                name: "embeddings",
                endpoint_id: String::new(),
                served_entity_id: served(),
                entity_name: "system.ai.databricks-gte-large-en",
                previous_entity_name: None,
                entity_type: "FOUNDATION_MODEL",
                provider: None,
                task: "llm/v1/embeddings",
                body: BodyKind::Embeddings,
                sampling_fraction: 1.0,
                traffic_share: 0.16,
                streams: false,
            },
            Endpoint {
                name: "custom-ranker",
                endpoint_id: String::new(),
                served_entity_id: served(),
                entity_name: "main.ml.ranker",
                previous_entity_name: None,
                entity_type: "CUSTOM_MODEL",
                provider: None,
                task: "llm/v1/completions",
                body: BodyKind::CustomModel,
                sampling_fraction: 1.0,
                traffic_share: 0.06,
                streams: false,
            },
        ];
        let orphan_served_entity_id = served();
        let mut rng = Rng::new(seed, 2);
        let endpoints: Vec<Endpoint> = endpoints
            .into_iter()
            .map(|mut e| {
                e.endpoint_id = rng.hex(32);
                e
            })
            .collect();
        let principals = principals(&mut rng);
        let popularity: Vec<f64> = principals
            .iter()
            .enumerate()
            .map(|(rank, p)| if p.is_service_principal { 6.0 } else { 12.0 / (rank as f64 + 1.0) + 0.05 })
            .collect();
        let shares: Vec<f64> = endpoints.iter().map(|e| e.traffic_share).collect();
        World {
            endpoint_mix: Weighted::new(&shares),
            endpoints,
            orphan_served_entity_id,
            principal_popularity: Weighted::new(&popularity),
            principals,
            account_id: rng.uuid(),
            workspace_id: format!("{}", 1_000_000_000_000_000 + rng.range(0, 999_999_999_999)),
        }
    }

    /// The prices CSV for a data set starting on `start`: one price change falls at noon of
    /// the second day, and `main.ml.ranker` has no price.
    pub fn prices_csv(start: NaiveDate) -> String {
        let change = (start + Duration::days(1)).format("%Y-%m-%dT12:00:00Z");
        format!(
            "entity_name,effective_from,input_usd_per_million,output_usd_per_million,\
             cache_read_usd_per_million,cache_write_usd_per_million,reasoning_usd_per_million\n\
             system.ai.databricks-meta-llama-3-3-70b-instruct,2026-01-01,0.50,1.50,,,\n\
             system.ai.databricks-meta-llama-3-3-70b-instruct,{change},0.45,1.35,,,\n\
             system.ai.databricks-claude-sonnet-4-5,2026-01-01,3.00,15.00,0.30,3.75,\n\
             gpt-5,2026-01-01,1.25,10.00,0.125,,\n\
             system.ai.databricks-gte-large-en,2026-01-01,0.13,0,,,\n"
        )
    }

    /// The same prices as a LiteLLM `model_prices_and_context_window.json` excerpt: dollar
    /// fields for the chat models, DBU fields only for the embedding model, keys in LiteLLM's
    /// `databricks/<endpoint>` and bare forms.
    pub fn litellm_prices_json() -> String {
        let document = serde_json::json!({
            "sample_spec": { "input_cost_per_token": 0, "output_cost_per_token": 0, "litellm_provider": "one of" },
            "databricks/databricks-meta-llama-3-3-70b-instruct": {
                "input_cost_per_token": 5e-07, "output_cost_per_token": 1.5e-06,
                "input_dbu_cost_per_token": 7.143e-06, "output_dbu_cost_per_token": 2.1429e-05,
                "litellm_provider": "databricks", "mode": "chat"
            },
            "databricks/databricks-claude-sonnet-4-5": {
                "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
                "cache_read_input_token_cost": 3e-07, "cache_creation_input_token_cost": 3.75e-06,
                "litellm_provider": "databricks", "mode": "chat"
            },
            "gpt-5": {
                "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
                "cache_read_input_token_cost": 1.25e-07, "output_cost_per_reasoning_token": 1e-05,
                "litellm_provider": "openai", "mode": "chat"
            },
            "databricks/databricks-gte-large-en": {
                "input_dbu_cost_per_token": 1.857e-06, "output_dbu_cost_per_token": 0,
                "litellm_provider": "databricks", "mode": "embedding"
            }
        });
        serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
    }

    /// The user who runs the last day's evaluation batch: the first data-science user listed
    /// in teams.csv who tags no team in usage_context.
    pub fn evaluation_user(&self) -> Option<usize> {
        self.principals.iter().position(|p| {
            !p.is_service_principal
                && !p.bursty
                && p.in_teams_csv
                && p.context_team.is_none()
                && p.home_team == "data-science"
        })
    }

    /// The endpoints' current AI Gateway rate limits, in the serving-endpoints API's shape,
    /// chosen so the recommendations show every action: raise (a bursty service principal's
    /// own limit, and one held by the default per-user limit), lower (an over-generous own
    /// limit, an idle endpoint limit), keep and add (endpoints with no limits).
    pub fn rate_limits_json(&self) -> String {
        let sp = |i: usize| self.principals[i].id.clone();
        let per_minute = |key: &str, principal: Option<String>, calls: Option<i64>, tokens: Option<i64>| {
            let mut rule = serde_json::json!({ "key": key, "renewal_period": "minute" });
            if let Some(p) = principal {
                rule["principal"] = p.into();
            }
            if let Some(c) = calls {
                rule["calls"] = c.into();
            }
            if let Some(t) = tokens {
                rule["tokens"] = t.into();
            }
            rule
        };
        let gateway = |rules: Vec<serde_json::Value>| {
            serde_json::json!({
                "usage_tracking_config": { "enabled": true },
                "inference_table_config": { "enabled": true, "catalog_name": "main", "schema_name": "gateway", "table_name_prefix": "gateway" },
                "rate_limits": rules,
            })
        };
        let document = serde_json::json!({ "endpoints": [
            { "name": "chat-prod", "ai_gateway": gateway(vec![
                per_minute("endpoint", None, Some(200), None),
                per_minute("user", None, Some(BURST_LIMIT_PER_MINUTE), None),
                per_minute("service_principal", Some(sp(3)), Some(BURST_LIMIT_PER_MINUTE), None),
                per_minute("service_principal", Some(sp(1)), Some(1000), None),
                per_minute("service_principal", Some(sp(2)), Some(4), None),
            ]) },
            { "name": "claude-agents", "ai_gateway": gateway(vec![
                per_minute("user", None, None, Some(100_000)),
            ]) },
            { "name": "gpt-reasoning", "ai_gateway": gateway(vec![
                per_minute("endpoint", None, Some(BURST_LIMIT_PER_MINUTE / 2), None),
                per_minute("user_group", Some("data-science".into()), Some(20), None),
            ]) },
            { "name": "custom-ranker", "ai_gateway": gateway(vec![
                per_minute("endpoint", None, Some(100), None),
            ]) },
        ] });
        serde_json::to_string_pretty(&document).unwrap_or_default() + "\n"
    }

    /// The teams CSV: every principal listed there, with its home team.
    pub fn teams_csv(&self) -> String {
        let mut csv = String::from("principal,team\n");
        for p in self.principals.iter().filter(|p| p.in_teams_csv) {
            csv.push_str(&format!("{},{}\n", p.id, p.home_team));
        }
        csv
    }
}

fn principals(rng: &mut Rng) -> Vec<Principal> {
    let mut out = Vec::new();
    // Service principals first: the automated callers.
    let sp_teams = ["search", "support-bot", "platform", "data-science", "finance-ai", "growth", "search", "platform"];
    for (i, team) in sp_teams.iter().enumerate() {
        out.push(Principal {
            id: rng.uuid(),
            is_service_principal: true,
            home_team: team,
            in_teams_csv: i < 6,
            // SP 2 reports a different team in usage_context than teams.csv says.
            context_team: match i {
                2 => Some("growth"),
                7 => None,
                _ => Some(team),
            },
            bursty: i == 0 || i == 3,
        });
    }
    let mut seen = std::collections::HashSet::new();
    while out.len() < 8 + 320 {
        let first = FIRST_NAMES[rng.range(0, FIRST_NAMES.len() as i64 - 1) as usize];
        let last = LAST_NAMES[rng.range(0, LAST_NAMES.len() as i64 - 1) as usize];
        let mut id = format!("{first}.{last}@example.com");
        if !seen.insert(id.clone()) {
            id = format!("{first}.{last}{}@example.com", rng.range(2, 99));
            if !seen.insert(id.clone()) {
                continue;
            }
        }
        let home_team = TEAMS[rng.range(0, TEAMS.len() as i64 - 1) as usize];
        let context_team = if rng.chance(0.12) {
            // Some users tag their calls; a few tag another team's project.
            Some(if rng.chance(0.3) { TEAMS[rng.range(0, TEAMS.len() as i64 - 1) as usize] } else { home_team })
        } else {
            None
        };
        let user_index = out.len() - 8;
        out.push(Principal {
            id,
            is_service_principal: false,
            home_team,
            in_teams_csv: rng.chance(0.75),
            context_team,
            bursty: user_index == 1,
        });
    }
    out
}
