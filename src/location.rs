//! Where a table or file lives: a local path or an object-store URI, and how to show it safely.

use std::path::Path;

use url::Url;

/// A resolved storage location (always a URL: `file://` for local paths).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    url: Url,
}

impl Location {
    /// Resolves `raw` from a job file: a URI with a scheme (`s3://`, `abfss://`, `gs://`,
    /// `file://`) is taken as is; anything else is a local path, relative to `base_dir`.
    pub fn resolve(raw: &str, base_dir: &Path) -> Result<Self, String> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Err("location is empty".to_string());
        }
        if raw.contains("://") {
            let url = Url::parse(raw).map_err(|e| format!("`{}` is not a valid URI: {e}", redact(raw)))?;
            if url.scheme() == "uc" {
                check_unity_catalog_name(&url)?;
            }
            return Ok(Location { url });
        }
        let path = base_dir.join(raw);
        let absolute =
            std::path::absolute(&path).map_err(|e| format!("cannot resolve local path {}: {e}", path.display()))?;
        let normalized = normalize(&absolute);
        let url = Url::from_directory_path(&normalized)
            .map_err(|_| format!("cannot turn {} into a file URL", normalized.display()))?;
        Ok(Location { url })
    }

    /// The `catalog.schema.table` name of a Unity Catalog table (`uc://catalog.schema.table`).
    pub fn unity_catalog_name(&self) -> Option<&str> {
        if self.url.scheme() == "uc" { self.url.host_str() } else { None }
    }

    /// The location as a URL for deltalake and object_store.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// A child location (`<self>/<name>`), used for output tables.
    pub fn child(&self, name: &str) -> Self {
        let mut url = self.url.clone();
        if !url.path().ends_with('/') {
            let with_slash = format!("{}/", url.path());
            url.set_path(&with_slash);
        }
        let joined = url.join(&format!("{name}/")).unwrap_or(url);
        Location { url: joined }
    }

    /// The local filesystem path, when this is a `file://` location.
    pub fn local_path(&self) -> Option<std::path::PathBuf> {
        if self.url.scheme() == "file" { self.url.to_file_path().ok() } else { None }
    }

    /// The location as a string for deltalake: local paths without the trailing slash.
    pub fn as_table_uri(&self) -> String {
        self.url.as_str().trim_end_matches('/').to_string()
    }
}

impl std::fmt::Display for Location {
    /// Shows the location without user info, query string or fragment, where credentials
    /// (passwords, SAS tokens, signed-URL parameters) could hide.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.local_path() {
            Some(path) => write!(f, "{}", path.display()),
            None => f.write_str(&redact(self.url.as_str())),
        }
    }
}

/// A `uc://` location names one table: `uc://catalog.schema.table`, nothing more.
fn check_unity_catalog_name(url: &Url) -> Result<(), String> {
    let name = url.host_str().unwrap_or_default();
    let parts: Vec<&str> = name.split('.').collect();
    let plain = url.path().trim_matches('/').is_empty() && url.query().is_none() && url.username().is_empty();
    if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) || !plain {
        return Err(format!(
            "`{}` is not a Unity Catalog table name: write uc://<catalog>.<schema>.<table>",
            redact(url.as_str())
        ));
    }
    Ok(())
}

/// Removes user info, query and fragment from a URI-like string. In `abfs(s)://` and `az://`
/// URIs the user part is the container (`abfss://<container>@<account>.dfs.core.windows.net`),
/// not a credential, so it is kept there (a password never is).
pub fn redact(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(mut url) => {
            if !matches!(url.scheme(), "abfs" | "abfss" | "az") {
                let _ = url.set_username("");
            }
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => match raw.find(['?', '#']) {
            Some(cut) => raw[..cut].to_string(),
            None => raw.to_string(),
        },
    }
}

/// Removes `.` and `..` components without touching the filesystem.
fn normalize(path: &Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for component in path.components() {
        match component {
            std::path::Component::CurDir => {}
            std::path::Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_credentials_from_uris() {
        let shown = redact("s3://AKIA:secret@bucket/path?X-Amz-Signature=abc#frag");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("AKIA"), "{shown}");
        assert!(!shown.contains("Signature"), "{shown}");
        assert!(shown.starts_with("s3://bucket/path"), "{shown}");
    }

    #[test]
    fn keeps_the_container_of_azure_uris() {
        let uri = "abfss://lake@account.dfs.core.windows.net/gateway/usage";
        assert_eq!(redact(uri), uri);
        let shown = redact("abfss://lake:secret@account.dfs.core.windows.net/t?sig=abc");
        assert_eq!(shown, "abfss://lake@account.dfs.core.windows.net/t");
    }

    #[test]
    fn resolves_relative_paths_against_the_job_file() {
        let loc = Location::resolve("../fixtures/demo/usage", Path::new("/repo/jobs")).unwrap();
        assert_eq!(loc.url().as_str(), "file:///repo/fixtures/demo/usage/");
        assert_eq!(loc.child("daily_spend").url().as_str(), "file:///repo/fixtures/demo/usage/daily_spend/");
        assert_eq!(loc.as_table_uri(), "file:///repo/fixtures/demo/usage");
    }

    #[test]
    fn unity_catalog_tables_have_three_part_names() {
        let table = Location::resolve("uc://main.serving.chat_payload", Path::new("/x")).unwrap();
        assert_eq!(table.unity_catalog_name(), Some("main.serving.chat_payload"));
        assert_eq!(table.as_table_uri(), "uc://main.serving.chat_payload");
        for bad in ["uc://main.serving", "uc://main.serving.t/extra", "uc://a..b"] {
            let err = Location::resolve(bad, Path::new("/x")).unwrap_err();
            assert!(err.contains("uc://<catalog>.<schema>.<table>"), "{bad}: {err}");
        }
    }

    #[test]
    fn keeps_object_store_uris() {
        let loc = Location::resolve("s3://bucket/out", Path::new("/x")).unwrap();
        assert_eq!(loc.child("alerts").as_table_uri(), "s3://bucket/out/alerts");
    }
}
