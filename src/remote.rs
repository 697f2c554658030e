//! Timeouts and retry budgets of every remote call, so that a run never waits forever on a
//! store or a catalog that does not answer.
//!
//! - **Object stores** (S3, Azure Blob / ADLS, GCS) and the credential endpoints object_store
//!   calls for them (instance metadata, STS, managed identities, OAuth token endpoints; it
//!   uses the same client settings, with a 1 s connect timeout for metadata endpoints) take
//!   object_store's own options from `[storage_options]`: [`with_defaults`] fills in
//!   [`STORAGE_DEFAULTS`] for the ones the job file does not set.
//! - **Unity Catalog** (`uc://` names: the table lookup and the credential vending) takes
//!   `[engine] unity_catalog_*` ([`UnityCatalogTimeouts`], used by `storage`).
//!
//! Whatever a remote call does within these budgets, `[engine] deadline_minutes` bounds the
//! whole run ([`crate::deadline`]).

use std::collections::HashMap;
use std::time::Duration;

/// One of this project's defaults for an object_store option.
#[derive(Debug, Clone, Copy)]
pub struct StorageDefault {
    /// The option's key in `[storage_options]`.
    pub key: &'static str,
    /// The default value, in object_store's syntax (`10s`, `3m`, `10`).
    pub value: &'static str,
    /// Other spellings of the same option that object_store accepts (prefixed per store).
    aliases: &'static [&'static str],
    /// A duration (`true`) or a count.
    duration: bool,
}

/// The object-store defaults, chosen for a nightly batch job: patient enough that a slow or
/// briefly throttled store does not fail a run that would succeed a minute later, bounded so
/// that a store that stops answering fails the call within about four minutes
/// (`retry_timeout` + `timeout` + one backoff), instead of holding the cluster.
///
/// - `connect_timeout = 10s`: establishing a connection (TCP and TLS) to an endpoint that
///   answers takes milliseconds; a refused connection fails at once. This only bounds an
///   endpoint that swallows the connection attempt (a firewall dropping packets).
/// - `timeout = 60s`: one request attempt from connecting to the end of its body. A data-file
///   range read of tens of MiB needs well under that; a stalled or trickling answer is cut.
/// - `max_retries = 10`, `retry_timeout = 3m`: transient failures (no connection, timeouts,
///   5xx, 429 / SlowDown) are retried with exponential backoff (100 ms doubling up to 15 s)
///   for at most 10 retries and no retry starts after 3 minutes.
pub const STORAGE_DEFAULTS: [StorageDefault; 4] = [
    StorageDefault {
        key: "connect_timeout",
        value: "10s",
        aliases: &["aws_connect_timeout", "azure_connect_timeout", "google_connect_timeout"],
        duration: true,
    },
    StorageDefault {
        key: "timeout",
        value: "60s",
        aliases: &["aws_timeout", "azure_timeout", "google_timeout"],
        duration: true,
    },
    StorageDefault { key: "max_retries", value: "10", aliases: &[], duration: false },
    StorageDefault { key: "retry_timeout", value: "3m", aliases: &[], duration: true },
];

/// Other object_store options about time that a job file may set; their values are checked.
const OTHER_DURATIONS: [&str; 4] = ["pool_idle_timeout", "init_backoff", "max_backoff", "http2_keep_alive_timeout"];

/// The job file's `[storage_options]` with [`STORAGE_DEFAULTS`] added where it does not set
/// them (in any of object_store's spellings), the timing keys lower-cased (object_store reads
/// `max_retries` and `retry_timeout` only in lower case) and their values checked, so that a
/// typo is a configuration error rather than a failure in the middle of a run.
pub fn with_defaults(options: HashMap<String, String>) -> Result<HashMap<String, String>, String> {
    let timing: Vec<&str> = STORAGE_DEFAULTS
        .iter()
        .flat_map(|d| std::iter::once(d.key).chain(d.aliases.iter().copied()))
        .chain(OTHER_DURATIONS)
        .collect();
    let mut out = HashMap::with_capacity(options.len() + STORAGE_DEFAULTS.len());
    for (key, value) in options {
        let lower = key.to_ascii_lowercase();
        let key = if timing.contains(&lower.as_str()) { lower } else { key };
        if out.contains_key(&key) {
            return Err(format!("`storage_options.{key}` is given twice (keys are not case-sensitive)"));
        }
        out.insert(key, value);
    }
    for default in &STORAGE_DEFAULTS {
        let given: Vec<&String> =
            out.keys().filter(|k| *k == default.key || default.aliases.contains(&k.as_str())).collect();
        match given.as_slice() {
            [] => {
                out.insert(default.key.to_string(), default.value.to_string());
            }
            [key] => check_value(key, &out[*key], default.duration)?,
            _ => {
                let mut names: Vec<&str> = given.iter().map(|k| k.as_str()).collect();
                names.sort_unstable();
                return Err(format!("`storage_options` sets {} more than once: {}", default.key, names.join(", ")));
            }
        }
    }
    for key in OTHER_DURATIONS {
        if let Some(value) = out.get(key) {
            check_value(key, value, true)?;
        }
    }
    Ok(out)
}

/// Checks a duration (`30s`, `2m 30s`, more than zero) or a count.
fn check_value(key: &str, value: &str, duration: bool) -> Result<(), String> {
    if duration {
        match humantime::parse_duration(value.trim()) {
            Ok(d) if !d.is_zero() => Ok(()),
            _ => Err(format!(
                "`storage_options.{key} = {value:?}` is not a duration greater than zero, like \"30s\" or \"2m\""
            )),
        }
    } else {
        value
            .trim()
            .parse::<u32>()
            .map(|_| ())
            .map_err(|_| format!("`storage_options.{key} = {value:?}` is not a whole number of retries, like \"10\""))
    }
}

/// The budget of one object-store call as configured by `options` (after [`with_defaults`]),
/// for messages: `timeout = 60s, max_retries = 10, retry_timeout = 3m`.
pub fn storage_budget(options: &HashMap<String, String>) -> String {
    STORAGE_DEFAULTS
        .iter()
        .filter(|d| d.key != "connect_timeout")
        .map(|d| {
            let value = std::iter::once(d.key)
                .chain(d.aliases.iter().copied())
                .find_map(|k| options.get(k))
                .map_or(d.value, String::as_str);
            format!("{} = {}", d.key, value)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// How long the Unity Catalog client waits and how often it retries (`[engine]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnityCatalogTimeouts {
    /// Establishing a connection, per attempt.
    pub connect: Duration,
    /// One request attempt, from connecting to the end of the answer's body.
    pub request: Duration,
    /// Retries of a transiently failed request (no connection, timed out, 429, 5xx).
    pub max_retries: u32,
}

impl UnityCatalogTimeouts {
    /// First wait between two attempts; it doubles (with jitter) up to [`Self::MAX_BACKOFF`].
    pub const INIT_BACKOFF: Duration = Duration::from_millis(500);
    /// Longest wait between two attempts.
    pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

    /// The longest one Unity Catalog call can take before it fails: every attempt timing out,
    /// with the longest backoff between them.
    pub fn worst_case(&self) -> Duration {
        let attempts = self.max_retries + 1;
        self.request.saturating_mul(attempts).saturating_add(Self::MAX_BACKOFF.saturating_mul(self.max_retries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn fills_in_the_defaults_the_job_file_does_not_set() {
        let out = with_defaults(options(&[("AWS_REGION", "eu-west-1")])).unwrap();
        assert_eq!(out["AWS_REGION"], "eu-west-1");
        assert_eq!(out["connect_timeout"], "10s");
        assert_eq!(out["timeout"], "60s");
        assert_eq!(out["max_retries"], "10");
        assert_eq!(out["retry_timeout"], "3m");
        assert_eq!(storage_budget(&out), "timeout = 60s, max_retries = 10, retry_timeout = 3m");
    }

    #[test]
    fn keeps_what_the_job_file_sets_in_any_spelling() {
        let out =
            with_defaults(options(&[("AWS_TIMEOUT", "5s"), ("MAX_RETRIES", "2"), ("Retry_Timeout", "20s")])).unwrap();
        assert_eq!(out["aws_timeout"], "5s");
        assert!(!out.contains_key("timeout"), "a default next to aws_timeout would race with it");
        assert_eq!(out["max_retries"], "2");
        assert_eq!(out["retry_timeout"], "20s");
        assert_eq!(out["connect_timeout"], "10s");
        assert_eq!(storage_budget(&out), "timeout = 5s, max_retries = 2, retry_timeout = 20s");
    }

    #[test]
    fn rejects_bad_values_and_duplicates_naming_the_key() {
        for (key, value, expected) in [
            ("timeout", "soon", "storage_options.timeout"),
            ("connect_timeout", "0s", "greater than zero"),
            ("max_retries", "-1", "whole number"),
            ("pool_idle_timeout", "5 parsecs", "storage_options.pool_idle_timeout"),
        ] {
            let err = with_defaults(options(&[(key, value)])).unwrap_err();
            assert!(err.contains(expected), "{key} = {value}: {err}");
        }
        let err = with_defaults(options(&[("timeout", "5s"), ("azure_timeout", "6s")])).unwrap_err();
        assert!(err.contains("azure_timeout, timeout"), "{err}");
        let err = with_defaults(options(&[("timeout", "5s"), ("TIMEOUT", "6s")])).unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn unity_catalog_budget_is_bounded() {
        let timeouts = UnityCatalogTimeouts::default();
        assert_eq!(timeouts.request, Duration::from_secs(30));
        assert_eq!(timeouts.connect, Duration::from_secs(10));
        assert_eq!(timeouts.worst_case(), Duration::from_secs(4 * 30 + 3 * 10));
    }
}
