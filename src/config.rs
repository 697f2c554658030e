//! The job file (TOML): which inputs to read and where to write the outputs.
//!
//! Relative paths in a job file are resolved against the job file's own folder, so a job file
//! works from any working directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::location::Location;
use crate::prices::PriceSettings;
use crate::settings::{AlertSettings, RecommendationSettings, Settings};

/// The job file as written by the user.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JobFile {
    inputs: InputsFile,
    output: OutputFile,
    #[serde(default)]
    storage_options: HashMap<String, String>,
    #[serde(default)]
    alerts: AlertSettings,
    #[serde(default)]
    recommendations: RecommendationSettings,
    #[serde(default)]
    prices: PriceSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputsFile {
    usage: Option<String>,
    served_entities: String,
    payload: Option<String>,
    traces: Option<String>,
    prices: Option<String>,
    teams: Option<String>,
    rate_limits: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutputFile {
    location: String,
}

/// A validated job: every location resolved.
#[derive(Debug, Clone)]
pub struct JobConfig {
    /// The job file this came from (for messages).
    pub source: PathBuf,
    /// The `system.serving.endpoint_usage`-shaped Delta table; without it spend is estimated
    /// from the payload table.
    pub usage: Option<Location>,
    /// The `system.serving.served_entities`-shaped Delta table.
    pub served_entities: Location,
    /// The AI Gateway inference table (`<prefix>_payload`); latency figures need it.
    pub payload: Option<Location>,
    /// The MLflow `trace_logs_<experiment_id>` table (read by later outputs).
    pub traces: Option<Location>,
    /// Prices CSV: `entity_name,effective_from,input_usd_per_million,output_usd_per_million`.
    pub prices: Option<Location>,
    /// Teams CSV: `principal,team`.
    pub teams: Option<Location>,
    /// Current AI Gateway rate limits (JSON, the shape the serving-endpoints API returns).
    pub rate_limits: Option<Location>,
    /// Folder (or object-store prefix) that holds one Delta table per output.
    pub output: Location,
    /// Extra object-store settings (endpoint, region, ...) passed to every table; credentials
    /// belong in the environment, not here.
    pub storage_options: HashMap<String, String>,
    /// Alert thresholds and recommendation knobs.
    pub settings: Settings,
}

impl JobConfig {
    /// Reads and validates a job file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Config { path: path.to_path_buf(), message: format!("cannot read it: {e}") })?;
        Self::parse(&text, path)
    }

    /// Parses job-file text; `path` gives the folder relative locations are resolved against.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let config_error = |message: String| Error::Config { path: path.to_path_buf(), message };
        let file: JobFile = toml::from_str(text).map_err(|e| config_error(e.to_string()))?;
        let base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let resolve =
            |key: &str, raw: &str| Location::resolve(raw, &base_dir).map_err(|m| config_error(format!("`{key}`: {m}")));
        let resolve_optional = |key: &str, raw: &Option<String>| raw.as_deref().map(|r| resolve(key, r)).transpose();
        for key in file.storage_options.keys() {
            if looks_secret(key) {
                return Err(config_error(format!(
                    "`storage_options.{key}` looks like a credential; set it as an environment \
                     variable instead so it never sits in a job file"
                )));
            }
        }
        if file.inputs.usage.is_none() && file.inputs.payload.is_none() {
            return Err(config_error(
                "`inputs` needs `usage` (system.serving.endpoint_usage) or `payload` (an inference table), or both"
                    .into(),
            ));
        }
        let settings = Settings { alerts: file.alerts, recommendations: file.recommendations, prices: file.prices };
        settings.validate().map_err(config_error)?;
        Ok(JobConfig {
            source: path.to_path_buf(),
            usage: resolve_optional("inputs.usage", &file.inputs.usage)?,
            served_entities: resolve("inputs.served_entities", &file.inputs.served_entities)?,
            payload: resolve_optional("inputs.payload", &file.inputs.payload)?,
            traces: resolve_optional("inputs.traces", &file.inputs.traces)?,
            prices: resolve_optional("inputs.prices", &file.inputs.prices)?,
            teams: resolve_optional("inputs.teams", &file.inputs.teams)?,
            rate_limits: resolve_optional("inputs.rate_limits", &file.inputs.rate_limits)?,
            output: resolve("output.location", &file.output.location)?,
            storage_options: file.storage_options,
            settings,
        })
    }
}

/// Whether a storage option key names a secret (keys, tokens, passwords).
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["secret", "password", "token", "access_key", "account_key", "sas", "credential"]
        .iter()
        .any(|word| key.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        [inputs]
        usage = "data/usage"
        served_entities = "s3://bucket/served_entities"
        [output]
        location = "out"
    "#;

    #[test]
    fn resolves_relative_to_the_job_file() {
        let job = JobConfig::parse(MINIMAL, Path::new("/repo/jobs/demo.toml")).unwrap();
        assert_eq!(job.usage.unwrap().url().as_str(), "file:///repo/jobs/data/usage/");
        assert_eq!(job.served_entities.url().as_str(), "s3://bucket/served_entities");
        assert!(job.payload.is_none());
    }

    #[test]
    fn rejects_unknown_keys_with_the_key_named() {
        let text = MINIMAL.replace("usage =", "usgae =");
        let err = JobConfig::parse(&text, Path::new("job.toml")).unwrap_err().to_string();
        assert!(err.contains("usgae"), "{err}");
    }

    #[test]
    fn rejects_credentials_in_the_job_file() {
        let text = format!("{MINIMAL}\n[storage_options]\nAWS_SECRET_ACCESS_KEY = \"x\"\n");
        let err = JobConfig::parse(&text, Path::new("job.toml")).unwrap_err().to_string();
        assert!(err.contains("environment variable"), "{err}");
        assert!(!err.contains("\"x\""));
    }
}
