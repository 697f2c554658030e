//! The job file's `[ai_gateway]` section: how the new AI Gateway's (Beta) rows are attributed
//! and when a destination's fallbacks alert.

use serde::Deserialize;

/// The `[ai_gateway]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AiGatewaySettings {
    /// The request tag naming the caller's team (`request_tags[team_tag]`), tried before the
    /// teams file.
    pub team_tag: String,
    /// The tag keys `tag_spend` reports: request tags of the new gateway and `usage_context`
    /// keys of the serving-endpoint gateway.
    pub tag_keys: Vec<String>,
    /// Fewest attempts (failure share) or first attempts (rescue share) of a destination-hour
    /// before its fallback alert can fire.
    pub fallback_min_attempts: u64,
    /// A destination-hour alerts when this share of its attempts failed (0..1).
    pub fallback_failure_share: f64,
    /// A destination-hour alerts when this share of the requests it was tried first for were
    /// rescued by a fallback (0..1).
    pub fallback_rescue_share: f64,
}

impl Default for AiGatewaySettings {
    fn default() -> Self {
        AiGatewaySettings {
            team_tag: "team".into(),
            tag_keys: Vec::new(),
            fallback_min_attempts: 20,
            fallback_failure_share: 0.2,
            fallback_rescue_share: 0.1,
        }
    }
}

/// Tag keys become SQL string literals: letters, digits and `_ - . : /` only, 1 to 128 characters.
fn valid_tag_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/'))
}

impl AiGatewaySettings {
    /// Checks the section; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        for key in std::iter::once(&self.team_tag).chain(&self.tag_keys) {
            if !valid_tag_key(key) {
                return Err(format!(
                    "ai_gateway: tag key {key:?} is not allowed: use 1 to 128 letters, digits, `_`, `-`, `.`, `:` or `/`"
                ));
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        if let Some(repeated) = self.tag_keys.iter().find(|k| !seen.insert(k.as_str())) {
            return Err(format!("ai_gateway.tag_keys: {repeated:?} is listed twice"));
        }
        for (name, share) in [
            ("fallback_failure_share", self.fallback_failure_share),
            ("fallback_rescue_share", self.fallback_rescue_share),
        ] {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("ai_gateway.{name}: need a share from 0 to 1, not {share}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_keys_that_are_not_plain_names() {
        let settings = AiGatewaySettings { tag_keys: vec!["cost'centre".into()], ..Default::default() };
        assert!(settings.validate().unwrap_err().contains("cost'centre"));
        let settings = AiGatewaySettings { tag_keys: vec!["a".into(), "a".into()], ..Default::default() };
        assert!(settings.validate().unwrap_err().contains("twice"));
        let settings = AiGatewaySettings { fallback_rescue_share: 1.5, ..Default::default() };
        assert!(settings.validate().unwrap_err().contains("fallback_rescue_share"));
        AiGatewaySettings::default().validate().unwrap();
    }
}
