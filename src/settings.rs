//! Thresholds and knobs of the alert rules and rate-limit recommendations (the job file's
//! `[alerts]` and `[recommendations]` sections), validated and turned into SQL variables.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::prices::PriceSettings;
use crate::remote::UnityCatalogTimeouts;

/// A rule that compares a share of rows with two thresholds.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ShareRule {
    /// Groups with fewer rows never fire.
    pub min_requests: u64,
    /// Groups with fewer matching rows (429s, 5xx) never fire: one error among 20 requests is
    /// 5%, and at the background rates of a healthy endpoint such groups are common.
    #[serde(default = "default_min_count")]
    pub min_count: u64,
    /// Share (0..1) at which the rule fires as a warning.
    pub warning: f64,
    /// Share (0..1) at which it fires as critical.
    pub critical: f64,
}

fn default_min_count() -> u64 {
    5
}

/// A known condition silenced until a date (`[alerts] mute = [...]`): its alerts are still
/// written, marked `muted`, and send no pipeline event that would page.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Mute {
    /// The rule (`rate_limited_share`, `spend_spike`, ...).
    pub rule: String,
    /// The endpoint (`(all)` for the team and table rules); any endpoint when absent.
    pub endpoint: Option<String>,
    /// The requester, team, endpoint or `table.check`; any when absent.
    pub scope_value: Option<String>,
    /// The last UTC date (inclusive) of windows the mute silences.
    pub until: chrono::NaiveDate,
}

/// The rules of the `alerts` output.
pub const ALERT_RULES: [&str; 10] = [
    "rate_limited_share",
    "error_rate",
    "spend_spike",
    "budget_burn",
    "data_quality",
    "logging_gap",
    "ai_gateway_rate_limited_share",
    "ai_gateway_error_rate",
    "fallback_failure_share",
    "fallback_rescue_share",
];

/// `spend_spike`: a team's daily cost against the median of its previous 7 days.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SpendSpike {
    /// Cost / median ratio for a warning.
    pub warning_ratio: f64,
    /// Cost / median ratio for critical.
    pub critical_ratio: f64,
    /// Days cheaper than this (USD) never fire.
    pub min_daily_cost_usd: f64,
}

/// `budget_burn`: month-to-date cost and its linear projection against monthly budgets.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BudgetBurn {
    /// Share of the budget the projected month-end cost must reach for a warning.
    pub warning_share: f64,
    /// Monthly budget in USD per team; teams not listed have no budget.
    #[serde(default)]
    pub monthly_budgets_usd: BTreeMap<String, f64>,
}

/// Every check of the `data_quality` output (`table.check`), as `queries/data_quality.sql`
/// computes them (a test holds the two together).
pub const DATA_QUALITY_CHECKS: [&str; 19] = [
    "payload.duplicate_request_id",
    "payload.invalid_sampling_fraction",
    "payload.missing_request_id",
    "payload.not_a_latency_sample",
    "payload.not_logged_for_size",
    "payload.null_request_time",
    "payload.null_status_code",
    "payload.outside_usage_groups",
    "payload.unparseable_response",
    "payload.without_usage_row",
    "usage.duplicate_request_id",
    "usage.missing_request_id",
    "usage.negative_tokens",
    "usage.null_request_time",
    "usage.null_requester",
    "usage.null_status_code",
    "usage.unknown_served_entity",
    "usage.unpriced_tokens",
    "usage.without_payload_row",
];

/// The thresholds of one data-quality check, in place of the rule's own.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CheckThresholds {
    /// Days with fewer rows in the table never fire.
    pub min_rows: u64,
    /// Share of failing rows for a warning (0: any failing row).
    pub warning: f64,
    /// Share of failing rows for critical.
    pub critical: f64,
}

/// Checks that find rows which should never exist and that change or hide what is billed:
/// any such row is a warning, 1% of the day's rows critical.
const STRICT_CHECKS: [&str; 7] = [
    "usage.negative_tokens",
    "usage.null_request_time",
    "usage.null_status_code",
    "usage.duplicate_request_id",
    "payload.null_request_time",
    "payload.null_status_code",
    "payload.invalid_sampling_fraction",
];

/// `data_quality`: a data-quality check failing on a share of a table's rows. Keys left out
/// keep their defaults.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataQualityRule {
    /// Days with fewer rows in the table never fire.
    pub min_rows: u64,
    /// Share of failing rows for a warning.
    pub warning: f64,
    /// Share of failing rows for critical.
    pub critical: f64,
    /// Checks (`table.check`) that never alert.
    pub disabled: Vec<String>,
    /// Thresholds of single checks (`table.check`), over the built-in ones of
    /// [`DataQualityRule::check_thresholds`].
    pub checks: BTreeMap<String, CheckThresholds>,
}

impl Default for DataQualityRule {
    fn default() -> Self {
        // Usage rows without a payload row are expected wherever the payload table samples.
        DataQualityRule {
            min_rows: 20,
            warning: 0.05,
            critical: 0.25,
            disabled: vec!["usage.without_payload_row".into()],
            checks: BTreeMap::new(),
        }
    }
}

impl DataQualityRule {
    /// The checks with thresholds of their own: the built-in strict ones (any row warns, 1% is
    /// critical: see docs/OUTPUTS.md#data_quality), replaced or joined by the job file's
    /// `checks`. Every other check uses the rule's `min_rows`, `warning` and `critical`.
    pub fn check_thresholds(&self) -> BTreeMap<String, CheckThresholds> {
        let strict = CheckThresholds { min_rows: 1, warning: 0.0, critical: 0.01 };
        let mut thresholds: BTreeMap<String, CheckThresholds> =
            STRICT_CHECKS.iter().map(|check| (check.to_string(), strict.clone())).collect();
        thresholds.extend(self.checks.clone());
        thresholds
    }
}

/// The `[alerts]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AlertSettings {
    /// Days among the 7 before a day (for `spend_spike`), or of its month up to it (for
    /// `budget_burn`'s projection), on which the gateway must have been logging for the rule to
    /// judge that day: fewer, and it stays silent (the run summary names the teams).
    pub min_history_days: u32,
    /// Known conditions silenced until a date.
    pub mute: Vec<Mute>,
    /// 429 share per endpoint-hour and per requester-hour.
    pub rate_limited_share: ShareRule,
    /// 5xx share per endpoint-hour.
    pub error_rate: ShareRule,
    /// Team daily cost spikes.
    pub spend_spike: SpendSpike,
    /// Monthly team budgets.
    pub budget_burn: BudgetBurn,
    /// Data-quality checks.
    pub data_quality: DataQualityRule,
}

impl Default for AlertSettings {
    fn default() -> Self {
        AlertSettings {
            min_history_days: 5,
            mute: Vec::new(),
            rate_limited_share: ShareRule { min_requests: 20, min_count: 5, warning: 0.05, critical: 0.20 },
            error_rate: ShareRule { min_requests: 20, min_count: 5, warning: 0.02, critical: 0.10 },
            spend_spike: SpendSpike { warning_ratio: 2.0, critical_ratio: 4.0, min_daily_cost_usd: 10.0 },
            budget_burn: BudgetBurn { warning_share: 0.8, monthly_budgets_usd: BTreeMap::new() },
            data_quality: DataQualityRule::default(),
        }
    }
}

/// The `[recommendations]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RecommendationSettings {
    /// Days of demand read, ending with the run's last date.
    pub lookback_days: u32,
    /// Recommended limit = ceil(p99 per-minute demand * headroom).
    pub headroom: f64,
    /// A limit above `lower_factor` times the peak minute is proposed for lowering.
    pub lower_factor: f64,
}

impl Default for RecommendationSettings {
    fn default() -> Self {
        RecommendationSettings { lookback_days: 14, headroom: 1.25, lower_factor: 4.0 }
    }
}

/// The `[engine]` section: the memory and time a run may use, and the Unity Catalog client's
/// timeouts.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EngineSettings {
    /// The run's memory budget in MiB, for its peak resident memory: the queries' pool gets
    /// three quarters ([`EngineSettings::pool_bytes`]). Sorts and aggregations spill to the
    /// temporary folder (`TMPDIR`) beyond the pool; an operator that cannot spill fails the run
    /// with a message naming this setting.
    pub memory_limit_mib: u64,
    /// Take history days (spend baselines, budgets, the recommendations' lookback) from
    /// earlier runs' outputs when the `computed_dates` ledger covers them, so a run reads only
    /// its own days of input. `false` reads all history from the inputs (after changing the
    /// teams file or the served-entity names, say).
    pub history_from_outputs: bool,
    /// How much, in MiB, the hash tables of one query's joins and groupings on request ids may
    /// hold together (estimated from the rows they read); beyond it the largest of them run in
    /// buckets split on disk by request id, one bucket at a time per core (default: half of
    /// the queries' pool, 3/8 of `memory_limit_mib`).
    pub hash_join_limit_mib: Option<u64>,
    /// How many days before the window a run looks for input rows that changed since the
    /// dates were computed (late rows, deletions) and recomputes those dates. Keep it at least
    /// the bundle's `late_arrival_days`.
    pub recompute_horizon_days: u32,
    /// How long a run's lease on the output location lasts without renewal: a run killed
    /// without releasing it blocks other runs for at most this long. Renewed every fifth of it.
    pub lease_ttl_seconds: u64,
    /// Minutes a `run` may take; a run that passes them stops with exit code 5 and commits
    /// nothing more (`run --deadline` overrides it; default: no deadline). See
    /// [`crate::deadline`].
    pub deadline_minutes: Option<u64>,
    /// Seconds a Unity Catalog request (table lookup, credential vending) may take from
    /// connecting to the end of its answer, per attempt.
    pub unity_catalog_timeout_seconds: u64,
    /// Seconds to establish a connection to the Unity Catalog workspace, per attempt.
    pub unity_catalog_connect_timeout_seconds: u64,
    /// Retries of a Unity Catalog request that failed transiently (no connection, timed out,
    /// 429 or 5xx), with exponential backoff between them.
    pub unity_catalog_max_retries: u32,
}

/// The defaults of `[engine]`.
impl Default for UnityCatalogTimeouts {
    fn default() -> Self {
        EngineSettings::default().unity_catalog_timeouts()
    }
}

impl Default for EngineSettings {
    fn default() -> Self {
        EngineSettings {
            memory_limit_mib: 2048,
            history_from_outputs: true,
            hash_join_limit_mib: None,
            recompute_horizon_days: 30,
            lease_ttl_seconds: 300,
            deadline_minutes: None,
            unity_catalog_timeout_seconds: 30,
            unity_catalog_connect_timeout_seconds: 10,
            unity_catalog_max_retries: 3,
        }
    }
}

impl EngineSettings {
    /// The Unity Catalog calls' timeouts and retries of these settings.
    pub fn unity_catalog_timeouts(&self) -> UnityCatalogTimeouts {
        UnityCatalogTimeouts {
            connect: std::time::Duration::from_secs(self.unity_catalog_connect_timeout_seconds),
            request: std::time::Duration::from_secs(self.unity_catalog_timeout_seconds),
            max_retries: self.unity_catalog_max_retries,
        }
    }

    /// The memory budget in bytes.
    pub fn memory_limit_bytes(&self) -> usize {
        mib_to_bytes(self.memory_limit_mib)
    }

    /// The queries' memory pool, in bytes: three quarters of the budget. The rest is for what
    /// the pool does not track (the readers' and writers' buffers, Parquet and Delta metadata,
    /// the allocator's overhead), so that the run's resident memory, not only the pool, stays
    /// within `memory_limit_mib`.
    pub fn pool_bytes(&self) -> usize {
        self.memory_limit_bytes() / 4 * 3
    }

    /// What one query's request-id hash tables may hold together, in bytes (see
    /// `hash_join_limit_mib`).
    pub fn hash_join_limit_bytes(&self) -> usize {
        match self.hash_join_limit_mib {
            Some(mib) => mib_to_bytes(mib),
            None => self.pool_bytes() / 2,
        }
    }
}

/// MiB to bytes, saturating at `usize::MAX`.
fn mib_to_bytes(mib: u64) -> usize {
    usize::try_from(mib.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX)
}

/// Everything tunable about alerts and recommendations.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// `[alerts]`.
    #[serde(default)]
    pub alerts: AlertSettings,
    /// `[recommendations]`.
    #[serde(default)]
    pub recommendations: RecommendationSettings,
    /// `[prices]`: how a LiteLLM price file is read.
    #[serde(default)]
    pub prices: PriceSettings,
    /// `[engine]`: the memory budget.
    #[serde(default)]
    pub engine: EngineSettings,
    /// `[focus]`: the names of the FOCUS export (`focus_costs`).
    #[serde(default)]
    pub focus: crate::focus::FocusSettings,
}

/// `value` in millionths, when it has at most 6 decimal places.
pub fn to_millionths(value: f64) -> Option<i64> {
    let scaled = value * 1_000_000.0;
    let rounded = scaled.round();
    ((scaled - rounded).abs() < 1e-6 && rounded.abs() < 9e15).then_some(rounded as i64)
}

/// A SQL list literal of check names; never empty, so `x NOT IN (...)` is valid.
fn disabled_list(checks: &[String]) -> String {
    let names: Vec<String> = checks.iter().map(|c| format!("'{c}'")).collect();
    if names.is_empty() { "('')".into() } else { format!("({})", names.join(", ")) }
}

fn double(value: f64) -> String {
    format!("CAST({value:?} AS DOUBLE)")
}

impl Settings {
    /// Checks ranges and precision; the message names the setting.
    pub fn validate(&self) -> Result<(), String> {
        self.focus.validate()?;
        if !(1..=1 << 20).contains(&self.engine.memory_limit_mib) {
            return Err("engine.memory_limit_mib: need 1 to 1048576 (MiB)".into());
        }
        if self.engine.recompute_horizon_days > 366 {
            return Err("engine.recompute_horizon_days: need 0 to 366 (days)".into());
        }
        if !(10..=86_400).contains(&self.engine.lease_ttl_seconds) {
            return Err("engine.lease_ttl_seconds: need 10 to 86400 (seconds)".into());
        }
        let e = &self.engine;
        if e.deadline_minutes.is_some_and(|m| !(1..=10_080).contains(&m)) {
            return Err("engine.deadline_minutes: need 1 to 10080 (a week)".into());
        }
        if !(1..=3600).contains(&e.unity_catalog_timeout_seconds)
            || !(1..=3600).contains(&e.unity_catalog_connect_timeout_seconds)
        {
            return Err(
                "engine.unity_catalog_timeout_seconds and unity_catalog_connect_timeout_seconds: need 1 to 3600".into(),
            );
        }
        if e.unity_catalog_max_retries > 20 {
            return Err("engine.unity_catalog_max_retries: need 0 to 20".into());
        }
        let a = &self.alerts;
        let dq = &a.data_quality;
        if !(1..=7).contains(&a.min_history_days) {
            return Err("alerts.min_history_days: need 1 to 7 (days)".into());
        }
        for (index, mute) in a.mute.iter().enumerate() {
            if !ALERT_RULES.contains(&mute.rule.as_str()) {
                return Err(format!(
                    "alerts.mute[{index}]: no rule `{}` (rules: {})",
                    mute.rule,
                    ALERT_RULES.join(", ")
                ));
            }
        }
        let shares = [
            ("rate_limited_share", a.rate_limited_share.warning, a.rate_limited_share.critical),
            ("error_rate", a.error_rate.warning, a.error_rate.critical),
            ("data_quality", dq.warning, dq.critical),
        ];
        for (name, warning, critical) in shares {
            if !(0.0..=1.0).contains(&warning) || !(0.0..=1.0).contains(&critical) || warning > critical {
                return Err(format!("alerts.{name}: need 0 <= warning <= critical <= 1"));
            }
        }
        for check in &dq.disabled {
            if !check.chars().all(|c| c.is_ascii_lowercase() || c == '_' || c == '.') {
                return Err(format!(
                    "alerts.data_quality.disabled: `{check}` is not a check name like `payload.unparseable_response`"
                ));
            }
        }
        for (check, t) in &dq.checks {
            let name = format!("alerts.data_quality.checks.\"{check}\"");
            if !DATA_QUALITY_CHECKS.contains(&check.as_str()) {
                return Err(format!("{name}: no such check (checks: {})", DATA_QUALITY_CHECKS.join(", ")));
            }
            if !(0.0..=1.0).contains(&t.warning) || !(0.0..=1.0).contains(&t.critical) || t.warning > t.critical {
                return Err(format!("{name}: need 0 <= warning <= critical <= 1"));
            }
            if to_millionths(t.warning).is_none() || to_millionths(t.critical).is_none() {
                return Err(format!("{name}: the shares have more than 6 decimal places"));
            }
        }
        let s = &a.spend_spike;
        if s.warning_ratio < 1.0 || s.warning_ratio > s.critical_ratio || s.min_daily_cost_usd < 0.0 {
            return Err(
                "alerts.spend_spike: need 1 <= warning_ratio <= critical_ratio and min_daily_cost_usd >= 0".into()
            );
        }
        if !(0.0..=10.0).contains(&a.budget_burn.warning_share) {
            return Err("alerts.budget_burn.warning_share must be between 0 and 10".into());
        }
        for (team, budget) in &a.budget_burn.monthly_budgets_usd {
            if budget.is_nan() || *budget <= 0.0 || to_millionths(*budget).is_none() {
                return Err(format!(
                    "alerts.budget_burn.monthly_budgets_usd.{team}: need a positive amount with at most 6 decimals"
                ));
            }
        }
        if !(self.prices.usd_per_dbu.is_finite() && self.prices.usd_per_dbu >= 0.0) {
            return Err("prices.usd_per_dbu must be a non-negative number".into());
        }
        let r = &self.recommendations;
        if !(1..=90).contains(&r.lookback_days) {
            return Err("recommendations.lookback_days must be between 1 and 90".into());
        }
        if !(1.0..=100.0).contains(&r.headroom) || !(1.0..=1000.0).contains(&r.lower_factor) {
            return Err("recommendations: need 1 <= headroom <= 100 and 1 <= lower_factor <= 1000".into());
        }
        let precise = [
            ("alerts.rate_limited_share.warning", a.rate_limited_share.warning),
            ("alerts.rate_limited_share.critical", a.rate_limited_share.critical),
            ("alerts.error_rate.warning", a.error_rate.warning),
            ("alerts.error_rate.critical", a.error_rate.critical),
            ("alerts.spend_spike.warning_ratio", s.warning_ratio),
            ("alerts.spend_spike.critical_ratio", s.critical_ratio),
            ("alerts.spend_spike.min_daily_cost_usd", s.min_daily_cost_usd),
            ("alerts.budget_burn.warning_share", a.budget_burn.warning_share),
            ("alerts.data_quality.warning", dq.warning),
            ("alerts.data_quality.critical", dq.critical),
            ("recommendations.headroom", r.headroom),
            ("recommendations.lower_factor", r.lower_factor),
        ];
        for (name, value) in precise {
            if to_millionths(value).is_none() {
                return Err(format!("{name} = {value} has more than 6 decimal places"));
            }
        }
        Ok(())
    }

    /// The settings as SQL literals (see `queries/alerts.sql` and
    /// `queries/views/rate_limit_decisions.sql` for where each is used). Thresholds come as
    /// exact integers in millionths (`*_ppm`) for comparisons and as DOUBLE for display.
    pub fn sql_values(&self) -> Vec<(&'static str, String)> {
        let a = &self.alerts;
        let r = &self.recommendations;
        let ppm = |v: f64| to_millionths(v).unwrap_or_default().to_string();
        vec![
            ("min_history_days", a.min_history_days.to_string()),
            ("rate_limited_min_requests", a.rate_limited_share.min_requests.to_string()),
            ("rate_limited_min_count", a.rate_limited_share.min_count.to_string()),
            ("rate_limited_warning_ppm", ppm(a.rate_limited_share.warning)),
            ("rate_limited_critical_ppm", ppm(a.rate_limited_share.critical)),
            ("rate_limited_warning", double(a.rate_limited_share.warning)),
            ("rate_limited_critical", double(a.rate_limited_share.critical)),
            ("error_rate_min_requests", a.error_rate.min_requests.to_string()),
            ("error_rate_min_count", a.error_rate.min_count.to_string()),
            ("error_rate_warning_ppm", ppm(a.error_rate.warning)),
            ("error_rate_critical_ppm", ppm(a.error_rate.critical)),
            ("error_rate_warning", double(a.error_rate.warning)),
            ("error_rate_critical", double(a.error_rate.critical)),
            ("spend_spike_warning_ppm", ppm(a.spend_spike.warning_ratio)),
            ("spend_spike_critical_ppm", ppm(a.spend_spike.critical_ratio)),
            ("spend_spike_warning_ratio", double(a.spend_spike.warning_ratio)),
            ("spend_spike_critical_ratio", double(a.spend_spike.critical_ratio)),
            ("spend_spike_min_daily_cost_micros", ppm(a.spend_spike.min_daily_cost_usd)),
            ("budget_warning_ppm", ppm(a.budget_burn.warning_share)),
            ("budget_warning_share", double(a.budget_burn.warning_share)),
            ("dq_min_rows", a.data_quality.min_rows.to_string()),
            ("dq_warning_ppm", ppm(a.data_quality.warning)),
            ("dq_critical_ppm", ppm(a.data_quality.critical)),
            ("dq_warning", double(a.data_quality.warning)),
            ("dq_critical", double(a.data_quality.critical)),
            ("dq_disabled", disabled_list(&a.data_quality.disabled)),
            ("headroom_ppm", ppm(r.headroom)),
            ("lower_factor_ppm", ppm(r.lower_factor)),
            ("headroom", double(r.headroom)),
            ("lower_factor", double(r.lower_factor)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_exact() {
        let settings = Settings::default();
        settings.validate().unwrap();
        let values: BTreeMap<_, _> = settings.sql_values().into_iter().collect();
        assert_eq!(values["rate_limited_warning_ppm"], "50000");
        assert_eq!(values["headroom_ppm"], "1250000");
        assert_eq!(values["rate_limited_warning"], "CAST(0.05 AS DOUBLE)");
    }

    #[test]
    fn the_queries_pool_leaves_a_quarter_of_the_budget_to_untracked_buffers() {
        let engine = EngineSettings { memory_limit_mib: 2048, ..Default::default() };
        assert_eq!(engine.pool_bytes(), 1536 << 20);
        assert_eq!(engine.hash_join_limit_bytes(), 768 << 20);
        let set = EngineSettings { hash_join_limit_mib: Some(100), ..engine };
        assert_eq!(set.hash_join_limit_bytes(), 100 << 20);
    }

    #[test]
    fn strict_checks_are_built_in_and_can_be_replaced() {
        let mut rule = Settings::default().alerts.data_quality;
        let built_in = rule.check_thresholds();
        assert_eq!(built_in.len(), STRICT_CHECKS.len());
        assert!(built_in.keys().all(|check| DATA_QUALITY_CHECKS.contains(&check.as_str())));
        assert_eq!(built_in["usage.negative_tokens"], CheckThresholds { min_rows: 1, warning: 0.0, critical: 0.01 });
        let relaxed = CheckThresholds { min_rows: 20, warning: 0.05, critical: 0.25 };
        rule.checks.insert("usage.negative_tokens".into(), relaxed.clone());
        rule.checks.insert("payload.unparseable_response".into(), relaxed.clone());
        let merged = rule.check_thresholds();
        assert_eq!(merged["usage.negative_tokens"], relaxed);
        assert_eq!(merged["payload.unparseable_response"], relaxed);
        assert_eq!(merged.len(), STRICT_CHECKS.len() + 1);

        let mut settings = Settings::default();
        settings.alerts.data_quality.checks.insert("usage.negative_token".into(), relaxed.clone());
        assert!(settings.validate().unwrap_err().contains("no such check"));
        let mut settings = Settings::default();
        let inverted = CheckThresholds { min_rows: 1, warning: 0.5, critical: 0.1 };
        settings.alerts.data_quality.checks.insert("usage.negative_tokens".into(), inverted);
        assert!(settings.validate().unwrap_err().contains("usage.negative_tokens"));
    }

    #[test]
    fn rejects_inverted_thresholds_and_excess_precision() {
        let mut settings = Settings::default();
        settings.alerts.error_rate.warning = 0.5;
        assert!(settings.validate().unwrap_err().contains("alerts.error_rate"));
        let mut settings = Settings::default();
        settings.recommendations.headroom = 1.1234567;
        assert!(settings.validate().unwrap_err().contains("recommendations.headroom"));
    }
}
