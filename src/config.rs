//! The job file (TOML): which inputs to read and where to write the outputs.
//!
//! Relative paths in a job file are resolved against the job file's own folder, so a job file
//! works from any working directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ai_gateway::settings::AiGatewaySettings;
use crate::error::{Error, Result};
use crate::location::Location;
use crate::prices::PriceSettings;
use crate::settings::{AlertSettings, EngineSettings, RecommendationSettings, Settings};

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
    #[serde(default)]
    engine: EngineSettings,
    #[serde(default)]
    ai_gateway: AiGatewaySettings,
    #[serde(default)]
    focus: crate::focus::FocusSettings,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InputsFile {
    usage: Option<String>,
    served_entities: Option<String>,
    payload: Option<String>,
    inference_table: Option<InferenceTableFile>,
    traces: Option<String>,
    prices: Option<String>,
    teams: Option<String>,
    rate_limits: Option<String>,
    gateway_rate_limits: Option<String>,
    gateway_usage: Option<String>,
    gateway_payload: Option<String>,
}

/// The endpoint's `inference_table_config`, as the AI Gateway API takes it; names the payload
/// table `uc://<catalog_name>.<schema_name>.<table_name_prefix>_payload`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct InferenceTableFile {
    catalog_name: String,
    schema_name: String,
    table_name_prefix: String,
}

impl InferenceTableFile {
    /// The payload table's URI, after the checks the serving-endpoints API makes.
    fn payload_table(&self) -> std::result::Result<String, String> {
        for (key, value) in [
            ("catalog_name", &self.catalog_name),
            ("schema_name", &self.schema_name),
            ("table_name_prefix", &self.table_name_prefix),
        ] {
            check_unity_catalog_identifier(key, value)?;
        }
        let prefix = &self.table_name_prefix;
        if prefix.ends_with('_') {
            return Err(format!(
                "`table_name_prefix = \"{prefix}\"` ends with an underscore; Databricks appends `_payload` to the \
                 prefix itself (the table is `<prefix>_payload`), so write \"{}\"",
                prefix.trim_end_matches('_')
            ));
        }
        if let Some(stem) = prefix.strip_suffix("_payload") {
            return Err(format!(
                "`table_name_prefix = \"{prefix}\"` is a table name, not a prefix; Databricks appends `_payload` \
                 itself, so write \"{stem}\""
            ));
        }
        Ok(format!("uc://{}.{}.{prefix}_payload", self.catalog_name, self.schema_name))
    }
}

/// Unity Catalog names cannot be empty or hold periods, spaces, slashes or control characters
/// (and are at most 255 characters).
fn check_unity_catalog_identifier(key: &str, value: &str) -> std::result::Result<(), String> {
    let bad = value.chars().find(|c| matches!(c, '.' | ' ' | '/' | '`') || c.is_control());
    if value.is_empty() || value.chars().count() > 255 || bad.is_some() {
        return Err(format!(
            "`{key} = {value:?}` is not a Unity Catalog name: it must be 1 to 255 characters without periods, \
             spaces, slashes, backticks or control characters"
        ));
    }
    Ok(())
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
    /// The `system.serving.served_entities`-shaped Delta table; required with `usage` or
    /// `payload`, absent from a job that reads only the new AI Gateway's tables.
    pub served_entities: Option<Location>,
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
    /// The new AI Gateway's (Beta) current rate limits (JSON, the model-services API's
    /// `ModelService.config.rate_limits` shape).
    pub gateway_rate_limits: Option<Location>,
    /// The new AI Gateway's (Beta) usage table, `system.ai_gateway.usage` (or its copy).
    pub gateway_usage: Option<Location>,
    /// The new AI Gateway's (Beta) payload table of a model service, `<prefix>_payload`.
    pub gateway_payload: Option<Location>,
    /// The `[ai_gateway]` section: team tag, tag keys, fallback alert thresholds.
    pub ai_gateway: AiGatewaySettings,
    /// Folder (or object-store prefix) that holds one Delta table per output.
    pub output: Location,
    /// Extra object-store settings (endpoint, region, ...) passed to every table, with the
    /// timeout and retry defaults of [`crate::remote::STORAGE_DEFAULTS`] filled in; credentials
    /// belong in the environment, not here.
    pub storage_options: HashMap<String, String>,
    /// Alert thresholds and recommendation knobs.
    pub settings: Settings,
    /// A second price list (same formats as `prices`) that `pricing_what_if` prices every
    /// entity's tokens with; set by `run --what-if-prices`, not by the job file.
    pub what_if_prices: Option<Location>,
}

impl JobConfig {
    /// Whether the job names a serving-endpoint gateway table (`usage` or `payload`); a job
    /// without one reads only the new AI Gateway's tables and writes only their outputs.
    pub fn has_serving_endpoint_tables(&self) -> bool {
        self.usage.is_some() || self.payload.is_some()
    }

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
        let payload = match (&file.inputs.payload, &file.inputs.inference_table) {
            (Some(_), Some(_)) => {
                return Err(config_error(
                    "give the payload table either as `inputs.payload` or as `inputs.inference_table`, not both".into(),
                ));
            }
            (Some(raw), None) => Some(resolve("inputs.payload", raw)?),
            (None, Some(table)) => {
                let uri = table.payload_table().map_err(|m| config_error(format!("`inputs.inference_table`: {m}")))?;
                Some(resolve("inputs.inference_table", &uri)?)
            }
            (None, None) => None,
        };
        let output = resolve("output.location", &file.output.location)?;
        if output.unity_catalog_name().is_some() {
            return Err(config_error(
                "`output.location` must be a storage location (s3://, abfss://, gs:// or a folder): delta-rs cannot \
                 create Unity Catalog tables; write the outputs to an external location and register them as \
                 tables (the Databricks bundle's register_outputs task does)"
                    .into(),
            ));
        }
        let serving_endpoint = file.inputs.usage.is_some() || payload.is_some();
        if !serving_endpoint && file.inputs.gateway_usage.is_none() {
            return Err(config_error(
                "`inputs` needs `usage` (system.serving.endpoint_usage) or `payload` (an inference table), or both, \
                 or `gateway_usage` (system.ai_gateway.usage) for the new AI Gateway alone"
                    .into(),
            ));
        }
        if serving_endpoint && file.inputs.served_entities.is_none() {
            return Err(config_error(
                "`inputs.served_entities` (system.serving.served_entities) is required with `inputs.usage` or \
                 `inputs.payload`: it names the serving endpoints' entities"
                    .into(),
            ));
        }
        let settings = Settings {
            alerts: file.alerts,
            recommendations: file.recommendations,
            prices: file.prices,
            engine: file.engine,
            focus: file.focus,
        };
        settings.validate().map_err(config_error)?;
        file.ai_gateway.validate().map_err(config_error)?;
        if file.inputs.gateway_payload.is_some() && file.inputs.gateway_usage.is_none() {
            return Err(config_error(
                "`inputs.gateway_payload` needs `inputs.gateway_usage` (system.ai_gateway.usage): the payload table \
                 has no token counts"
                    .into(),
            ));
        }
        Ok(JobConfig {
            source: path.to_path_buf(),
            usage: resolve_optional("inputs.usage", &file.inputs.usage)?,
            served_entities: resolve_optional("inputs.served_entities", &file.inputs.served_entities)?,
            payload,
            traces: resolve_optional("inputs.traces", &file.inputs.traces)?,
            prices: resolve_optional("inputs.prices", &file.inputs.prices)?,
            teams: resolve_optional("inputs.teams", &file.inputs.teams)?,
            rate_limits: resolve_optional("inputs.rate_limits", &file.inputs.rate_limits)?,
            gateway_rate_limits: resolve_optional("inputs.gateway_rate_limits", &file.inputs.gateway_rate_limits)?,
            gateway_usage: resolve_optional("inputs.gateway_usage", &file.inputs.gateway_usage)?,
            gateway_payload: resolve_optional("inputs.gateway_payload", &file.inputs.gateway_payload)?,
            ai_gateway: file.ai_gateway,
            output,
            storage_options: crate::remote::with_defaults(file.storage_options).map_err(config_error)?,
            settings,
            what_if_prices: None,
        })
    }
}

/// Words that, anywhere in a storage option key, make it a credential: every object_store
/// 0.13 alias of a secret contains one (keys, tokens, passwords, SAS, client secrets, the Azure
/// master key, the S3 SSE-C customer key, the GCS service-account key), and so do some keys
/// that only point at a credential (`*_token_file`, `application_credentials`,
/// `container_credentials_*_uri`), which are rejected too: the credential chains read them
/// from the environment.
const SECRET_WORDS: [&str; 11] = [
    "secret",
    "password",
    "token",
    "access_key",
    "account_key",
    "master_key",
    "customer_key",
    "private_key",
    "sas",
    "credential",
    "bearer",
];

/// Whether a storage option key names a secret (keys, tokens, passwords, SAS, client secrets,
/// customer keys). Case and `-` versus `_` do not matter.
fn looks_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase().replace('-', "_");
    SECRET_WORDS.iter().any(|word| key.contains(word))
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
        assert_eq!(job.served_entities.unwrap().url().as_str(), "s3://bucket/served_entities");
        assert!(job.payload.is_none());
    }

    #[test]
    fn rejects_unknown_keys_with_the_key_named() {
        let text = MINIMAL.replace("usage =", "usgae =");
        let err = JobConfig::parse(&text, Path::new("job.toml")).unwrap_err().to_string();
        assert!(err.contains("usgae"), "{err}");
    }

    fn with_inference_table(prefix: &str) -> Result<JobConfig> {
        let text = MINIMAL.replace(
            "[output]",
            &format!(
                "[inputs.inference_table]\ncatalog_name = \"main\"\nschema_name = \"serving\"\n\
                 table_name_prefix = \"{prefix}\"\n[output]"
            ),
        );
        JobConfig::parse(&text, Path::new("job.toml"))
    }

    #[test]
    fn inference_table_names_the_payload_table_like_databricks() {
        let job = with_inference_table("chat").unwrap();
        assert_eq!(job.payload.unwrap().unity_catalog_name(), Some("main.serving.chat_payload"));
        let err = with_inference_table("chat_").unwrap_err().to_string();
        assert!(err.contains("appends `_payload`") && err.contains("write \"chat\""), "{err}");
        let err = with_inference_table("chat_payload").unwrap_err().to_string();
        assert!(err.contains("not a prefix") && err.contains("write \"chat\""), "{err}");
        let err = with_inference_table("my.chat").unwrap_err().to_string();
        assert!(err.contains("not a Unity Catalog name"), "{err}");
    }

    #[test]
    fn outputs_cannot_be_unity_catalog_names() {
        let text = MINIMAL.replace("location = \"out\"", "location = \"uc://main.gateway.outputs\"");
        let err = JobConfig::parse(&text, Path::new("job.toml")).unwrap_err().to_string();
        assert!(err.contains("storage location"), "{err}");
    }

    /// Every alias object_store 0.13 accepts for a secret (`aws`, `azure` and `gcp` builders'
    /// `FromStr`), and every other alias, which must stay allowed unless it only points at a
    /// credential.
    #[test]
    fn every_object_store_secret_alias_is_rejected() {
        let secrets = [
            // S3: access key id and secret, session token, SSE-C customer key.
            "aws_access_key_id",
            "access_key_id",
            "aws_secret_access_key",
            "secret_access_key",
            "aws_session_token",
            "aws_token",
            "session_token",
            "token",
            "aws_sse_customer_key_base64",
            "sse_customer_key_base64",
            // Azure: account (master) key, client secret, SAS, bearer and Fabric session tokens.
            "azure_storage_account_key",
            "azure_storage_access_key",
            "azure_storage_master_key",
            "master_key",
            "account_key",
            "access_key",
            "azure_storage_client_secret",
            "azure_client_secret",
            "client_secret",
            "azure_storage_sas_key",
            "azure_storage_sas_token",
            "sas_key",
            "sas_token",
            "azure_storage_token",
            "bearer_token",
            "azure_fabric_session_token",
            "fabric_session_token",
            // GCS: the service-account key itself.
            "google_service_account_key",
            "service_account_key",
        ];
        // Not secrets, but where one is found (a file, a service): rejected all the same.
        let pointers = [
            "aws_web_identity_token_file",
            "web_identity_token_file",
            "aws_container_authorization_token_file",
            "container_authorization_token_file",
            "azure_federated_token_file",
            "federated_token_file",
            "azure_fabric_token_service_url",
            "fabric_token_service_url",
            "google_application_credentials",
            "application_credentials",
            "aws_container_credentials_relative_uri",
            "container_credentials_relative_uri",
            "aws_container_credentials_full_uri",
            "container_credentials_full_uri",
        ];
        let allowed = [
            "aws_default_region",
            "default_region",
            "aws_region",
            "region",
            "aws_bucket",
            "aws_bucket_name",
            "bucket_name",
            "bucket",
            "aws_endpoint_url",
            "aws_endpoint",
            "endpoint_url",
            "endpoint",
            "aws_endpoint_url_s3",
            "aws_virtual_hosted_style_request",
            "virtual_hosted_style_request",
            "aws_s3_express",
            "s3_express",
            "aws_imdsv1_fallback",
            "imdsv1_fallback",
            "aws_metadata_endpoint",
            "metadata_endpoint",
            "aws_unsigned_payload",
            "unsigned_payload",
            "aws_checksum_algorithm",
            "checksum_algorithm",
            "aws_role_arn",
            "role_arn",
            "aws_role_session_name",
            "role_session_name",
            "aws_endpoint_url_sts",
            "endpoint_url_sts",
            "aws_skip_signature",
            "skip_signature",
            "aws_copy_if_not_exists",
            "copy_if_not_exists",
            "aws_conditional_put",
            "conditional_put",
            "aws_disable_tagging",
            "disable_tagging",
            "aws_request_payer",
            "request_payer",
            "aws_allow_http",
            "aws_server_side_encryption",
            "server_side_encryption",
            "aws_sse_kms_key_id",
            "sse_kms_key_id",
            "aws_sse_bucket_key_enabled",
            "sse_bucket_key_enabled",
            "azure_storage_account_name",
            "account_name",
            "azure_storage_client_id",
            "azure_client_id",
            "client_id",
            "azure_storage_tenant_id",
            "azure_storage_authority_id",
            "azure_tenant_id",
            "azure_authority_id",
            "tenant_id",
            "authority_id",
            "azure_storage_authority_host",
            "azure_authority_host",
            "authority_host",
            "azure_storage_use_emulator",
            "use_emulator",
            "azure_storage_endpoint",
            "azure_endpoint",
            "azure_msi_endpoint",
            "azure_identity_endpoint",
            "identity_endpoint",
            "msi_endpoint",
            "azure_object_id",
            "object_id",
            "azure_msi_resource_id",
            "msi_resource_id",
            "azure_use_fabric_endpoint",
            "use_fabric_endpoint",
            "azure_use_azure_cli",
            "use_azure_cli",
            "azure_container_name",
            "container_name",
            "azure_fabric_workload_host",
            "fabric_workload_host",
            "azure_fabric_cluster_identifier",
            "fabric_cluster_identifier",
            "azure_allow_http",
            "google_service_account",
            "service_account",
            "google_service_account_path",
            "service_account_path",
            "google_bucket",
            "google_bucket_name",
            "google_base_url",
            "base_url",
            "google_skip_signature",
            // Client options shared by the three stores.
            "allow_http",
            "allow_invalid_certificates",
            "connect_timeout",
            "default_content_type",
            "http1_only",
            "http2_only",
            "pool_idle_timeout",
            "proxy_url",
            "proxy_ca_certificate",
            "proxy_excludes",
            "timeout",
            "user_agent",
        ];
        for key in secrets.iter().chain(&pointers) {
            for spelling in [key.to_string(), key.to_ascii_uppercase(), key.replace('_', "-")] {
                assert!(looks_secret(&spelling), "`{spelling}` names a credential and must be rejected");
            }
        }
        for key in allowed {
            assert!(!looks_secret(key), "`{key}` is not a credential");
        }
        let text = format!("{MINIMAL}\n[storage_options]\nAZURE_STORAGE_MASTER_KEY = \"x\"\n");
        assert!(JobConfig::parse(&text, Path::new("job.toml")).is_err());
    }

    #[test]
    fn storage_options_get_timeouts_unless_the_job_file_sets_them() {
        let job = JobConfig::parse(MINIMAL, Path::new("job.toml")).unwrap();
        assert_eq!(job.storage_options["timeout"], "60s");
        let text = format!("{MINIMAL}\n[storage_options]\nTIMEOUT = \"5s\"\nmax_retries = \"two\"\n");
        let err = JobConfig::parse(&text, Path::new("job.toml")).unwrap_err().to_string();
        assert!(err.contains("job file job.toml") && err.contains("storage_options.max_retries"), "{err}");
    }

    #[test]
    fn rejects_credentials_in_the_job_file() {
        let text = format!("{MINIMAL}\n[storage_options]\nAWS_SECRET_ACCESS_KEY = \"x\"\n");
        let err = JobConfig::parse(&text, Path::new("job.toml")).unwrap_err().to_string();
        assert!(err.contains("environment variable"), "{err}");
        assert!(!err.contains("\"x\""));
    }
}
