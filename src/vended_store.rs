//! Object stores that read a Unity Catalog table with the credentials Unity Catalog vends for
//! it, in each cloud's shape, renewed before they expire:
//!
//! - **AWS** (`aws_temp_credentials`): access key, secret key and session token. Unity Catalog
//!   gives no region: it is taken from `[storage_options]` (`AWS_REGION`), else the environment
//!   (`AWS_REGION`, `AWS_DEFAULT_REGION`), else asked of S3 for the bucket (an anonymous
//!   request that S3 answers with the bucket's region).
//! - **Azure** (`azure_user_delegation_sas`): a SAS token for the table's container.
//! - **GCP** (`gcp_oauth_token`): an OAuth access token, sent as the bearer token of each request.
//!
//! deltalake's own mapping is not used: it needs the Unity Catalog crate built with each cloud's
//! feature (the Azure and GCP ones are not, so their credentials were dropped) and hands the GCP
//! token to object_store as a credentials *file path*. The other `[storage_options]` (timeouts,
//! retries, endpoints) apply as for any table.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use deltalake::logstore::object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey, AwsCredential};
use deltalake::logstore::object_store::azure::{AzureConfigKey, AzureCredential, MicrosoftAzureBuilder};
use deltalake::logstore::object_store::gcp::{GcpCredential, GoogleCloudStorageBuilder, GoogleConfigKey};
use deltalake::logstore::object_store::{self, ClientOptions, CredentialProvider, ObjectStore, RetryConfig};
use deltalake::unity_catalog::models::{TableTempCredentialsResponse, TemporaryTableCredentials};
use deltalake::unity_catalog::{UnityCatalog, UnityCatalogError};

/// The longest a credential is used before its expiry: it is renewed when less than this (or
/// half its lifetime, if shorter) remains, so that a request and its retries
/// (`[storage_options] retry_timeout`, 3 minutes by default) finish with a valid credential.
pub const RENEW_BEFORE_EXPIRY: Duration = Duration::from_secs(5 * 60);

/// One table's read credentials, asked of Unity Catalog again when they near their expiry.
pub struct Vending {
    client: Arc<UnityCatalog>,
    /// `catalog`, `schema`, `table`.
    name: [String; 3],
    /// The workspace, for messages.
    host: String,
    current: tokio::sync::Mutex<Vended>,
}

/// Credentials and when they were vended.
#[derive(Clone)]
struct Vended {
    credentials: TemporaryTableCredentials,
    vended_at: DateTime<Utc>,
}

impl std::fmt::Debug for Vending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vending").field("table", &self.name.join(".")).field("host", &self.host).finish()
    }
}

/// Whether credentials vended at `vended_at` that expire at `expires` must be renewed at `now`.
pub fn needs_renewal(now: DateTime<Utc>, vended_at: DateTime<Utc>, expires: DateTime<Utc>) -> bool {
    let lifetime = (expires - vended_at).max(TimeDelta::zero());
    let margin = (lifetime / 2).min(TimeDelta::from_std(RENEW_BEFORE_EXPIRY).unwrap_or(TimeDelta::MAX));
    now + margin >= expires
}

/// Why no usable credentials were vended.
#[derive(Debug)]
pub enum VendError {
    /// Unity Catalog answered, but not with usable credentials (refused, or already expired).
    Refused(String),
    /// The call failed (no answer, timeout, bad answer); a rerun may succeed.
    Call(UnityCatalogError),
}

/// Asks Unity Catalog for read credentials for `catalog.schema.table`. Refuses credentials that
/// have already expired, naming their expiry.
pub async fn vend(
    client: &UnityCatalog,
    name: &[String; 3],
    host: &str,
) -> Result<TemporaryTableCredentials, VendError> {
    let full = name.join(".");
    let [catalog, schema, table] = name;
    let credentials = match client
        .get_temp_table_credentials(catalog.as_str(), schema.as_str(), table.as_str())
        .await
        .map_err(VendError::Call)?
    {
        TableTempCredentialsResponse::Success(credentials) => credentials,
        TableTempCredentialsResponse::Error(e) => {
            return Err(VendError::Refused(format!(
                "Unity Catalog at {host} vended no credentials for `{full}`: {}: {} (the principal needs SELECT on \
                 the table and EXTERNAL USE SCHEMA on its schema, and the metastore external data access)",
                e.error_code, e.message
            )));
        }
    };
    let now = Utc::now();
    if credentials.expiration_time <= now {
        return Err(VendError::Refused(format!(
            "Unity Catalog at {host} vended credentials for `{full}` that expired at {} (it is now {}): check this \
             machine's clock, or the workspace's",
            credentials.expiration_time.format("%Y-%m-%d %H:%M:%S UTC"),
            now.format("%Y-%m-%d %H:%M:%S UTC"),
        )));
    }
    Ok(credentials)
}

impl Vending {
    /// Starts with credentials just vended for `name`.
    pub fn new(client: Arc<UnityCatalog>, name: [String; 3], host: String, first: TemporaryTableCredentials) -> Self {
        let current = tokio::sync::Mutex::new(Vended { credentials: first, vended_at: Utc::now() });
        Vending { client, name, host, current }
    }

    /// Valid credentials: the current ones, or new ones when they near their expiry.
    async fn credentials(&self) -> Result<TemporaryTableCredentials, String> {
        let mut current = self.current.lock().await;
        if needs_renewal(Utc::now(), current.vended_at, current.credentials.expiration_time) {
            let full = self.name.join(".");
            tracing::debug!(table = %full, "renewing the credentials Unity Catalog vended");
            let renewed = vend(&self.client, &self.name, &self.host).await.map_err(|e| {
                let why = match e {
                    VendError::Refused(message) => message,
                    VendError::Call(e) => format!("Unity Catalog at {} could not renew them: {e}", self.host),
                };
                format!(
                    "the credentials vended for `{full}` expire at {} and could not be renewed: {why}",
                    current.credentials.expiration_time.format("%Y-%m-%d %H:%M:%S UTC")
                )
            })?;
            *current = Vended { credentials: renewed, vended_at: Utc::now() };
        }
        Ok(current.credentials.clone())
    }
}

/// A credential provider of one cloud's shape over a [`Vending`].
struct Provider<C> {
    vending: Arc<Vending>,
    shape: fn(&TemporaryTableCredentials) -> Option<Result<C, String>>,
}

impl<C> std::fmt::Debug for Provider<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.vending, f)
    }
}

impl<C: Send + Sync + 'static> CredentialProvider for Provider<C> {
    type Credential = C;

    // object_store declares the trait with `async_trait`; this is the signature it expands to.
    fn get_credential<'life0, 'async_trait>(
        &'life0 self,
    ) -> Pin<Box<dyn Future<Output = object_store::Result<Arc<C>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        Box::pin(async move {
            let generic =
                |message: String| object_store::Error::Generic { store: "UnityCatalog", source: message.into() };
            let credentials = self.vending.credentials().await.map_err(generic)?;
            let shaped = (self.shape)(&credentials).unwrap_or_else(|| {
                Err(format!(
                    "Unity Catalog renewed the credentials for `{}` in another cloud's shape",
                    self.vending.name.join(".")
                ))
            });
            shaped.map(Arc::new).map_err(generic)
        })
    }
}

fn aws_shape(c: &TemporaryTableCredentials) -> Option<Result<AwsCredential, String>> {
    let aws = c.aws_temp_credentials.as_ref()?;
    Some(Ok(AwsCredential {
        key_id: aws.access_key_id.clone(),
        secret_key: aws.secret_access_key.clone(),
        token: aws.session_token.clone(),
    }))
}

fn azure_shape(c: &TemporaryTableCredentials) -> Option<Result<AzureCredential, String>> {
    let sas = c.azure_user_delegation_sas.as_ref()?;
    Some(sas_pairs(&sas.sas_token).map(AzureCredential::SASToken))
}

fn gcp_shape(c: &TemporaryTableCredentials) -> Option<Result<GcpCredential, String>> {
    let token = c.gcp_oauth_token.as_ref()?;
    Some(Ok(GcpCredential { bearer: token.oauth_token.clone() }))
}

/// The query pairs of a SAS token (`sv=...&sig=...`, with or without a leading `?`), decoded.
/// The message on error never holds the token.
pub fn sas_pairs(sas: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for part in sas.trim().trim_start_matches('?').split('&').filter(|p| !p.trim().is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| "the SAS token Unity Catalog vended is not a list of key=value pairs".to_string())?;
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        pairs.push((decode(key), decode(value)));
    }
    if pairs.is_empty() {
        return Err("the SAS token Unity Catalog vended is empty".to_string());
    }
    Ok(pairs)
}

/// The object_store retry settings of `[storage_options]` (`max_retries`, `retry_timeout`),
/// already checked by `remote::with_defaults`.
fn retry_config(options: &HashMap<String, String>) -> RetryConfig {
    let mut retry = RetryConfig::default();
    if let Some(n) = options.get("max_retries").and_then(|v| v.trim().parse().ok()) {
        retry.max_retries = n;
    }
    if let Some(d) = options.get("retry_timeout").and_then(|v| humantime::parse_duration(v.trim()).ok()) {
        retry.retry_timeout = d;
    }
    retry
}

/// The object store for a table at `storage`, reading with the credentials of `vending`
/// (`first` are the ones just vended: they tell the cloud). `options` are the job's
/// `[storage_options]`; settings the environment gives (endpoints, emulators) apply too.
pub async fn store_for(
    storage: &url::Url,
    options: &HashMap<String, String>,
    vending: Arc<Vending>,
    first: &TemporaryTableCredentials,
) -> Result<Arc<dyn ObjectStore>, String> {
    let scheme = storage.scheme();
    let built = |e: object_store::Error| format!("cannot open {storage} with the vended credentials: {e}");
    if first.aws_temp_credentials.is_some() {
        check_scheme(storage, &["s3", "s3a"], "AWS")?;
        let mut builder = AmazonS3Builder::from_env().with_url(storage.as_str()).with_retry(retry_config(options));
        for (key, value) in options {
            if let Ok(key) = key.to_ascii_lowercase().parse::<AmazonS3ConfigKey>() {
                builder = builder.with_config(key, value.clone());
            }
        }
        if builder.get_config_value(&AmazonS3ConfigKey::Region).is_none()
            && builder.get_config_value(&AmazonS3ConfigKey::Endpoint).is_none()
        {
            let bucket = storage.host_str().unwrap_or_default();
            let client = ClientOptions::new().with_timeout(Duration::from_secs(30));
            let region = object_store::aws::resolve_bucket_region(bucket, &client).await.map_err(|e| {
                format!(
                    "Unity Catalog vends no region for s3://{bucket} and S3 did not tell it ({e}): set AWS_REGION \
                     (or `[storage_options] AWS_REGION`) to the bucket's region"
                )
            })?;
            tracing::info!(bucket, region = %region, "S3 bucket region found (set AWS_REGION to skip this lookup)");
            builder = builder.with_region(region);
        }
        let provider = Provider { vending, shape: aws_shape };
        return Ok(Arc::new(builder.with_credentials(Arc::new(provider)).build().map_err(built)?));
    }
    if first.azure_user_delegation_sas.is_some() {
        check_scheme(storage, &["abfss", "abfs", "az", "azure", "adl", "https"], "Azure")?;
        let mut builder =
            MicrosoftAzureBuilder::from_env().with_url(storage.as_str()).with_retry(retry_config(options));
        for (key, value) in options {
            if let Ok(key) = key.to_ascii_lowercase().parse::<AzureConfigKey>() {
                builder = builder.with_config(key, value.clone());
            }
        }
        let provider = Provider { vending, shape: azure_shape };
        return Ok(Arc::new(builder.with_credentials(Arc::new(provider)).build().map_err(built)?));
    }
    if first.gcp_oauth_token.is_some() {
        check_scheme(storage, &["gs"], "GCP")?;
        let mut builder =
            GoogleCloudStorageBuilder::from_env().with_url(storage.as_str()).with_retry(retry_config(options));
        for (key, value) in options {
            if let Ok(key) = key.to_ascii_lowercase().parse::<GoogleConfigKey>() {
                builder = builder.with_config(key, value.clone());
            }
        }
        let provider = Provider { vending, shape: gcp_shape };
        return Ok(Arc::new(builder.with_credentials(Arc::new(provider)).build().map_err(built)?));
    }
    Err(format!(
        "Unity Catalog vended credentials for {scheme}:// storage in a shape this build cannot use (only AWS keys, \
         Azure SAS tokens and GCP OAuth tokens are supported; R2 is not)"
    ))
}

fn check_scheme(storage: &url::Url, schemes: &[&str], cloud: &str) -> Result<(), String> {
    if schemes.contains(&storage.scheme()) {
        Ok(())
    } else {
        Err(format!(
            "Unity Catalog vended {cloud} credentials for a table stored at {storage}, which is not {cloud} storage"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn credentials_are_renewed_five_minutes_before_they_expire() {
        let vended = at("2026-11-02T05:30:00Z");
        let expires = at("2026-11-02T06:30:00Z");
        assert!(!needs_renewal(at("2026-11-02T06:24:59Z"), vended, expires));
        assert!(needs_renewal(at("2026-11-02T06:25:00Z"), vended, expires));
        assert!(needs_renewal(at("2026-11-02T07:00:00Z"), vended, expires));
    }

    #[test]
    fn short_lived_credentials_are_renewed_half_way() {
        let vended = at("2026-11-02T05:30:00Z");
        let expires = at("2026-11-02T05:34:00Z");
        assert!(!needs_renewal(at("2026-11-02T05:31:59Z"), vended, expires));
        assert!(needs_renewal(at("2026-11-02T05:32:00Z"), vended, expires));
    }

    #[test]
    fn sas_tokens_split_into_decoded_pairs() {
        let pairs = sas_pairs("?sv=2023-11-03&sp=rl&sig=a%2Bb%3D").unwrap();
        assert_eq!(
            pairs,
            vec![("sv".into(), "2023-11-03".into()), ("sp".into(), "rl".into()), ("sig".into(), "a+b=".into())]
        );
        let err = sas_pairs("secret-without-pairs").unwrap_err();
        assert!(!err.contains("secret"), "{err}");
        assert!(sas_pairs("").is_err());
    }
}
