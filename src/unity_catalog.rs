//! Unity Catalog names (`uc://catalog.schema.table`): where the table lives and short-lived
//! credentials to read it, from the workspace's two REST calls (table lookup, credential
//! vending), made here with timeouts and a bounded retry ([`UnityCatalogTimeouts`]).
//!
//! deltalake can open `uc://` URLs itself, but not safely: its `uc://` object-store factory
//! runs these calls while `deltalake::logstore::logstore_for` holds a read guard on the global
//! registry of object-store factories, and the first credential vending of a process
//! registers the `s3://` handlers into that same registry (`INIT_AWS` in
//! deltalake-catalog-unity's `models.rs`). When `s3://` or `s3a://` hashes to the registry
//! shard that holds `uc://` (DashMap's hasher is seeded per process: about one run in four
//! with 8 shards), the thread waits on its own lock for ever, silently. Its HTTP client also
//! has no timeouts, and it blocks a runtime thread (`block_in_place`) while it waits. So this
//! module resolves the name first, outside any registry lock, as ordinary async code with
//! timeouts, and `storage` opens the table at its storage location through an object store of
//! [`crate::vended_store`], which maps each cloud's vended credentials itself and renews them
//! before they expire: the factory is never used. The workspace and the way to authenticate
//! come from [`crate::databricks_auth`].

use std::collections::HashMap;
use std::sync::Arc;

use deltalake::logstore::object_store::ObjectStore;
use deltalake::unity_catalog::UnityCatalogError;
use deltalake::unity_catalog::client::ClientOptions;
use deltalake::unity_catalog::client::backoff::BackoffConfig;
use deltalake::unity_catalog::client::retry::RetryConfig;
use deltalake::unity_catalog::models::GetTableResponse;
use deltalake::unity_catalog::{UnityCatalog, UnityCatalogBuilder};

use crate::databricks_auth::{self, Credential, WorkspaceAuth};
use crate::location::{Location, redact};
use crate::remote::UnityCatalogTimeouts;
use crate::vended_store::{self, VendError, Vending};

/// A table resolved through Unity Catalog.
pub struct ResolvedTable {
    /// Where its files are (`s3://...`, `abfss://...`, `gs://...`).
    pub storage: Location,
    /// The object store that reads them with the credentials Unity Catalog vends (renewed before
    /// they expire; see [`crate::vended_store`]).
    pub store: Arc<dyn ObjectStore>,
}

impl std::fmt::Debug for ResolvedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResolvedTable").field("storage", &self.storage.to_string()).finish_non_exhaustive()
    }
}

/// Why a name could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// The workspace answered no (unknown table, refused token, no external access) or the
    /// client is not configured: fix the job or its grants.
    Refused(String),
    /// The workspace could not be reached, did not answer in time or broke off its answer,
    /// even after the retries: a rerun may succeed.
    Unreachable(String),
}

/// The HTTP client's settings: timeouts per attempt and retries with exponential backoff.
fn client_options(timeouts: &UnityCatalogTimeouts) -> ClientOptions {
    ClientOptions::builder()
        .connect_timeout(timeouts.connect)
        .timeout(timeouts.request)
        .retry_config(RetryConfig {
            backoff: BackoffConfig {
                init_backoff: UnityCatalogTimeouts::INIT_BACKOFF,
                max_backoff: UnityCatalogTimeouts::MAX_BACKOFF,
                base: 2.0,
            },
            max_retries: timeouts.max_retries as usize,
            // Not used by deltalake's client (its backoff counts retries only); the request
            // timeout and the retry count bound each call: UnityCatalogTimeouts::worst_case.
            retry_timeout: timeouts.worst_case(),
        })
        .build()
}

/// The Unity Catalog client for `auth`: OAuth machine-to-machine (its token fetched from
/// `<host>/oidc/v1/token` and renewed by the client before it expires) or a bearer token.
fn client(auth: &WorkspaceAuth, timeouts: &UnityCatalogTimeouts) -> Result<UnityCatalog, String> {
    let mut settings: Vec<(&str, String)> = vec![("databricks_host", auth.host.clone())];
    match &auth.credential {
        Credential::OAuthM2M { client_id, client_secret } => {
            settings.push(("databricks_client_id", client_id.clone()));
            settings.push(("databricks_client_secret", client_secret.clone()));
        }
        Credential::Token(token) => settings.push(("databricks_token", token.clone())),
    }
    // Plain http only when asked for (a local stand-in in the tests).
    if let Ok(allow) = std::env::var("UNITY_ALLOW_HTTP_URL") {
        settings.push(("unity_allow_http_url", allow));
    }
    UnityCatalogBuilder::builder()
        .client_options(client_options(timeouts))
        .build()
        .try_with_options(settings)
        .and_then(|builder| builder.build())
        .map_err(|e| format!("the Unity Catalog client is not configured ({e})"))
}

/// Looks up `name` (`catalog.schema.table`) in the workspace and credential of
/// [`databricks_auth::from_environment`] (OAuth machine-to-machine, a Databricks CLI login, a
/// token), asks for read credentials for its storage location and opens that location with
/// them. Nothing here is logged with the credentials.
pub async fn resolve(
    name: &str,
    options: &HashMap<String, String>,
    timeouts: &UnityCatalogTimeouts,
) -> Result<ResolvedTable, ResolveError> {
    let mut parts = name.splitn(3, '.');
    let (Some(catalog), Some(schema), Some(table)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(ResolveError::Refused(format!("`{name}` is not a catalog.schema.table name")));
    };
    let auth = databricks_auth::from_environment().map_err(ResolveError::Refused)?;
    let host = redact(&auth.host);
    let described = |error: UnityCatalogError| describe(error, &host, timeouts);
    let client = Arc::new(client(&auth, timeouts).map_err(ResolveError::Refused)?);
    tracing::debug!(table = name, workspace = %host, auth = auth.credential.method(), source = %auth.source,
        "looking up the table in Unity Catalog");
    let storage = match client.get_table(catalog, schema, table).await.map_err(described)? {
        GetTableResponse::Success(found) => found.storage_location.ok_or_else(|| {
            ResolveError::Refused(format!(
                "Unity Catalog at {host} has no storage location for it (a {:?}, not a Delta table)",
                found.table_type
            ))
        })?,
        GetTableResponse::Error(e) => {
            return Err(ResolveError::Refused(format!(
                "Unity Catalog at {host} refused the lookup: {}: {}",
                e.error_code, e.message
            )));
        }
    };
    // Never a local path: a location without a scheme would be read from this machine's disk.
    let storage = Some(storage.as_str())
        .filter(|s| s.contains("://"))
        .ok_or_else(|| "it has no scheme".to_string())
        .and_then(|s| Location::resolve(s, std::path::Path::new("/")))
        .map_err(|e| {
            ResolveError::Refused(format!("Unity Catalog at {host} gave a storage location that is not a URI: {e}"))
        })?;
    // Read credentials only: the inputs are never written.
    let parts = [catalog.to_string(), schema.to_string(), table.to_string()];
    let first = vended_store::vend(&client, &parts, &host).await.map_err(|e| match e {
        VendError::Refused(message) => ResolveError::Refused(message),
        VendError::Call(error) => described(error),
    })?;
    let expires = first.expiration_time;
    let vending = Arc::new(Vending::new(client, parts, host.clone(), first.clone()));
    let store =
        vended_store::store_for(storage.url(), options, vending, &first).await.map_err(ResolveError::Refused)?;
    tracing::debug!(table = name, storage = %storage, credentials_expire = %expires, "resolved through Unity Catalog");
    Ok(ResolvedTable { storage, store })
}

/// A one-line description of a failed call: what happened, where, and the settings that bound
/// it. Never the request's headers (the token).
fn describe(error: UnityCatalogError, host: &str, timeouts: &UnityCatalogTimeouts) -> ResolveError {
    let transport =
        matches!(error, UnityCatalogError::RequestError { .. } | UnityCatalogError::RequestMiddlewareError { .. });
    if !transport {
        return ResolveError::Refused(format!("Unity Catalog at {host}: {error}"));
    }
    let chain = error_chain(&error);
    let text = chain.join(": ");
    let retries = retries_in(&text).unwrap_or(0);
    let attempts = retries + 1;
    // The innermost cause names what happened without the URL.
    let cause = chain.last().cloned().unwrap_or_default();
    let budget = format!(
        "{attempts} attempt{} (`[engine] unity_catalog_timeout_seconds = {}`, `unity_catalog_connect_timeout_seconds \
         = {}`, `unity_catalog_max_retries = {}`)",
        if attempts == 1 { "" } else { "s" },
        timeouts.request.as_secs(),
        timeouts.connect.as_secs(),
        timeouts.max_retries,
    );
    let what = if text.contains("timed out") {
        format!("Unity Catalog at {host} did not answer in time")
    } else if text.contains("error trying to connect") || text.contains("Connection refused") {
        format!("could not connect to Unity Catalog at {host}")
    } else if text.contains("decoding response body") || text.contains("body") || text.contains("closed") {
        format!("Unity Catalog at {host} broke off its answer")
    } else {
        format!("the request to Unity Catalog at {host} failed")
    };
    ResolveError::Unreachable(format!("{what} ({cause}) after {budget}"))
}

/// The messages of `error` and its sources, outermost first, with URLs removed (they carry no
/// secret, but are long and repeat the workspace).
fn error_chain(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        let text = match text.split_once(" for url (") {
            Some((head, rest)) => format!("{head}{}", rest.split_once(')').map_or("", |(_, tail)| tail)),
            None => text,
        };
        if out.last() != Some(&text) {
            out.push(text);
        }
        next = e.source();
    }
    out
}

/// The retry count in the retry middleware's "Request failed after N retries" (absent when the
/// first attempt's failure was not worth a retry).
fn retries_in(text: &str) -> Option<u32> {
    let (_, rest) = text.split_once("failed after ")?;
    let (count, rest) = rest.split_once(' ')?;
    if rest.starts_with("retries") { count.parse().ok() } else { None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_counts_are_read_from_the_retry_middleware_message() {
        assert_eq!(retries_in("Request failed after 3 retries: operation timed out"), Some(3));
        assert_eq!(retries_in("Request failed after a while"), None);
    }

    #[tokio::test]
    async fn a_name_without_three_parts_is_refused_before_any_call() {
        let err = resolve("main.only", &HashMap::new(), &UnityCatalogTimeouts::default()).await.unwrap_err();
        assert!(matches!(err, ResolveError::Refused(ref m) if m.contains("catalog.schema.table")), "{err:?}");
    }
}
