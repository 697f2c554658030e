//! How `uc://` reads authenticate to the Databricks workspace: its host and one credential,
//! taken as the Databricks CLI and SDKs take them (environment variables, then a profile of
//! the CLI's configuration file), the credential chosen in this order:
//!
//! 1. **OAuth machine-to-machine**: a service principal's `client_id` and `client_secret`,
//!    exchanged for a short-lived token at `<host>/oidc/v1/token` (renewed before it expires);
//! 2. **a Databricks CLI login** (`auth_type = databricks-cli` in the profile, written by
//!    `databricks auth login`): the token `databricks auth token` prints;
//! 3. **a personal access token** (`token`), last.
//!
//! Each setting is read from `DATABRICKS_<SETTING>` first, then from the profile named by
//! `DATABRICKS_CONFIG_PROFILE` (else `DEFAULT`) in `DATABRICKS_CONFIG_FILE` (else
//! `~/.databrickscfg`). Nothing here logs or shows a secret.

use std::collections::HashMap;
use std::path::PathBuf;

/// The workspace to call and how to authenticate to it.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkspaceAuth {
    /// The workspace URL (`https://...`), without a trailing slash.
    pub host: String,
    /// The credential.
    pub credential: Credential,
    /// Where the settings came from, for messages: `environment` or `profile ci in ~/.databrickscfg`.
    pub source: String,
}

/// One way of authenticating (secrets are never shown by `Debug`).
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// OAuth machine-to-machine: a service principal's OAuth secret.
    OAuthM2M {
        /// The service principal's application (client) id.
        client_id: String,
        /// Its OAuth secret.
        client_secret: String,
    },
    /// A bearer token: from `databricks auth token` or a personal access token.
    Token(String),
}

impl Credential {
    /// The method's name for messages.
    pub fn method(&self) -> &'static str {
        match self {
            Credential::OAuthM2M { .. } => "OAuth machine-to-machine (client id and secret)",
            Credential::Token(_) => "a token",
        }
    }
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.method())
    }
}

impl std::fmt::Debug for WorkspaceAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkspaceAuth")
            .field("host", &self.host)
            .field("method", &self.credential.method())
            .field("source", &self.source)
            .finish()
    }
}

/// The settings read, by their names in the CLI's configuration file (`host`, `token`,
/// `client_id`, `client_secret`, `auth_type`).
type Settings = HashMap<String, String>;

const KEYS: [&str; 5] = ["host", "token", "client_id", "client_secret", "auth_type"];

/// The workspace and credential from the process environment and the CLI's configuration file.
pub fn from_environment() -> Result<WorkspaceAuth, String> {
    let env: HashMap<String, String> = std::env::vars().collect();
    let home = std::env::var_os("HOME").map(PathBuf::from);
    resolve(&env, home.as_deref(), &run_databricks_cli)
}

/// How the token of a Databricks CLI login is fetched: `(host, profile) -> token`.
type CliToken = dyn Fn(&str, Option<&str>) -> Result<String, String>;

/// [`from_environment`] with the environment, home folder and CLI call given (for tests).
fn resolve(
    env: &HashMap<String, String>,
    home: Option<&std::path::Path>,
    cli_token: &CliToken,
) -> Result<WorkspaceAuth, String> {
    let mut settings: Settings = KEYS
        .iter()
        .filter_map(|key| {
            let value = env.get(&format!("DATABRICKS_{}", key.to_ascii_uppercase()))?;
            Some((key.to_string(), value.trim().to_string())).filter(|(_, v)| !v.is_empty())
        })
        .collect();
    let mut source = "environment".to_string();
    let named = env.get("DATABRICKS_CONFIG_PROFILE").filter(|p| !p.trim().is_empty()).map(|p| p.trim().to_string());
    let file = match env.get("DATABRICKS_CONFIG_FILE").filter(|f| !f.is_empty()) {
        Some(file) => Some(PathBuf::from(file)),
        None => home.map(|h| h.join(".databrickscfg")),
    };
    let has_credential =
        |s: &Settings| s.contains_key("token") || (s.contains_key("client_id") && s.contains_key("client_secret"));
    // The profile fills in what the environment does not set; it is read when one is named or
    // when the environment alone is not enough.
    if named.is_some() || !(settings.contains_key("host") && has_credential(&settings)) {
        let profile = named.clone().unwrap_or_else(|| "DEFAULT".to_string());
        match file.as_ref().map(|f| (f, std::fs::read_to_string(f))) {
            Some((path, Ok(text))) => match profile_settings(&text, &profile) {
                Some(found) => {
                    let mut used = false;
                    for (key, value) in found {
                        if KEYS.contains(&key.as_str()) && !settings.contains_key(&key) {
                            settings.insert(key, value);
                            used = true;
                        }
                    }
                    if used {
                        source = format!("profile {profile} in {}", path.display());
                    }
                }
                None if named.is_some() => {
                    return Err(format!(
                        "DATABRICKS_CONFIG_PROFILE names profile `{profile}`, which {} does not have",
                        path.display()
                    ));
                }
                None => {}
            },
            Some((path, Err(e))) if named.is_some() => {
                return Err(format!(
                    "DATABRICKS_CONFIG_PROFILE names profile `{profile}`, but {} cannot be read: {e}",
                    path.display()
                ));
            }
            _ => {}
        }
    }
    let host = settings.get("host").map(|h| h.trim_end_matches('/').to_string()).ok_or_else(|| {
        "no Databricks workspace is configured: set DATABRICKS_HOST (and DATABRICKS_CLIENT_ID / \
         DATABRICKS_CLIENT_SECRET), or name a Databricks CLI profile with DATABRICKS_CONFIG_PROFILE"
            .to_string()
    })?;
    let host = if host.contains("://") { host } else { format!("https://{host}") };
    let credential = match (settings.get("client_id"), settings.get("client_secret")) {
        (Some(id), Some(secret)) => Credential::OAuthM2M { client_id: id.clone(), client_secret: secret.clone() },
        (Some(_), None) | (None, Some(_)) if !settings.contains_key("token") => {
            return Err(format!(
                "{source} sets only one of the OAuth client id and client secret \
                 (DATABRICKS_CLIENT_ID, DATABRICKS_CLIENT_SECRET): set both"
            ));
        }
        _ if settings.get("auth_type").is_some_and(|t| t == "databricks-cli") => {
            Credential::Token(cli_token(&host, named.as_deref())?)
        }
        _ => match settings.get("token") {
            Some(token) => Credential::Token(token.clone()),
            None => {
                return Err(format!(
                    "no credential for the Databricks workspace {host} ({source}): set DATABRICKS_CLIENT_ID and \
                     DATABRICKS_CLIENT_SECRET (a service principal's OAuth secret), log in with `databricks auth \
                     login` and name the profile in DATABRICKS_CONFIG_PROFILE, or set DATABRICKS_TOKEN"
                ));
            }
        },
    };
    Ok(WorkspaceAuth { host, credential, source })
}

/// The `key = value` pairs of `[profile]` in an INI-style configuration file, or `None` when the
/// file has no such section.
fn profile_settings(text: &str, profile: &str) -> Option<Settings> {
    let mut current: Option<&str> = None;
    let mut found: Option<Settings> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = Some(name.trim());
            if current == Some(profile) {
                found.get_or_insert_with(Settings::new);
            }
            continue;
        }
        if current == Some(profile)
            && let Some((key, value)) = line.split_once('=')
            && let Some(settings) = found.as_mut()
        {
            settings.insert(key.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    found
}

/// The access token of a `databricks auth login` session: `databricks auth token` prints it
/// (refreshing it first when needed) as JSON.
fn run_databricks_cli(host: &str, profile: Option<&str>) -> Result<String, String> {
    let mut command = std::process::Command::new("databricks");
    command.args(["auth", "token"]);
    match profile {
        Some(profile) => command.args(["--profile", profile]),
        None => command.args(["--host", host]),
    };
    let output = command.output().map_err(|e| {
        format!("the profile uses `auth_type = databricks-cli`, but the Databricks CLI could not be started ({e})")
    })?;
    if !output.status.success() {
        // The CLI's own message says what to do (`databricks auth login ...`); it holds no token.
        let said = String::from_utf8_lossy(&output.stderr);
        return Err(format!(
            "`databricks auth token` failed ({}): {}",
            output.status,
            said.lines().find(|l| !l.trim().is_empty()).unwrap_or("no message")
        ));
    }
    let parsed: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|_| "`databricks auth token` did not print JSON with an access_token".to_string())?;
    parsed
        .get("access_token")
        .and_then(|t| t.as_str())
        .map(str::to_string)
        .ok_or_else(|| "`databricks auth token` did not print an access_token".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn no_cli(_: &str, _: Option<&str>) -> Result<String, String> {
        Err("the CLI must not be called".to_string())
    }

    #[test]
    fn oauth_m2m_comes_before_a_token() {
        let e = env(&[
            ("DATABRICKS_HOST", "https://adb-1.azuredatabricks.net/"),
            ("DATABRICKS_TOKEN", "dapi-x"),
            ("DATABRICKS_CLIENT_ID", "app-id"),
            ("DATABRICKS_CLIENT_SECRET", "dose-secret"),
        ]);
        let auth = resolve(&e, None, &no_cli).unwrap();
        assert_eq!(auth.host, "https://adb-1.azuredatabricks.net");
        assert!(matches!(auth.credential, Credential::OAuthM2M { ref client_id, .. } if client_id == "app-id"));
        let shown = format!("{auth:?}");
        assert!(!shown.contains("dose-secret") && !shown.contains("dapi-x"), "{shown}");
    }

    #[test]
    fn a_named_profile_fills_in_what_the_environment_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cfg");
        std::fs::write(
            &file,
            "[DEFAULT]\nhost = https://default.cloud.databricks.com\ntoken = dapi-default\n\n\
             ; the CI principal\n[ci]\nhost = dbc-1.cloud.databricks.com\nclient_id = ci-app\nclient_secret = ci-secret\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let auth =
            resolve(&env(&[("DATABRICKS_CONFIG_FILE", path), ("DATABRICKS_CONFIG_PROFILE", "ci")]), None, &no_cli)
                .unwrap();
        assert_eq!(auth.host, "https://dbc-1.cloud.databricks.com");
        assert!(matches!(auth.credential, Credential::OAuthM2M { ref client_id, .. } if client_id == "ci-app"));
        assert!(auth.source.contains("profile ci"), "{}", auth.source);
        // Without a profile named, DEFAULT; the environment's host wins over the profile's.
        let auth = resolve(
            &env(&[("DATABRICKS_CONFIG_FILE", path), ("DATABRICKS_HOST", "https://env.example")]),
            None,
            &no_cli,
        )
        .unwrap();
        assert_eq!(auth.host, "https://env.example");
        assert_eq!(auth.credential, Credential::Token("dapi-default".to_string()));
        let err =
            resolve(&env(&[("DATABRICKS_CONFIG_FILE", path), ("DATABRICKS_CONFIG_PROFILE", "prod")]), None, &no_cli)
                .unwrap_err();
        assert!(err.contains("profile `prod`"), "{err}");
    }

    #[test]
    fn a_cli_login_profile_asks_the_cli_for_its_token() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".databrickscfg"),
            "[DEFAULT]\nhost = https://h.example\nauth_type = databricks-cli\n",
        )
        .unwrap();
        let cli = |host: &str, profile: Option<&str>| -> Result<String, String> {
            assert_eq!((host, profile), ("https://h.example", None));
            Ok("cli-token".to_string())
        };
        let auth = resolve(&HashMap::new(), Some(dir.path()), &cli).unwrap();
        assert_eq!(auth.credential, Credential::Token("cli-token".to_string()));
    }

    #[test]
    fn missing_settings_say_what_to_set() {
        let err = resolve(&HashMap::new(), None, &no_cli).unwrap_err();
        assert!(err.contains("DATABRICKS_HOST"), "{err}");
        let err = resolve(&env(&[("DATABRICKS_HOST", "https://h"), ("DATABRICKS_CLIENT_ID", "a")]), None, &no_cli)
            .unwrap_err();
        assert!(err.contains("set both"), "{err}");
        let err = resolve(&env(&[("DATABRICKS_HOST", "https://h")]), None, &no_cli).unwrap_err();
        assert!(err.contains("DATABRICKS_CLIENT_SECRET"), "{err}");
    }
}
