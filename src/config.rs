//! Configuration: an optional TOML file, overridden by environment variables,
//! overridden by command-line flags; every setting has a default, so
//! `authledger serve` needs none of them.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use crate::app::providers::{Endpoints, Environments, ProviderKind, ProviderSettings};
use crate::app::ssh::{SshOptions, StaticToken};
use crate::domain::ServerSettings;
use crate::domain::canonical::Canonicalization;
use crate::domain::server_config::{DAY_MS, RedirectUrls, TokenLifetimes};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_STORE: &str = "sqlite://./authledger-data/events.db";

/// The configuration file's contents. Unknown keys are an error, so a typo is not silently ignored.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub listen: Option<String>,
    pub store: Option<String>,
    /// `"full"` (default: acknowledged writes survive power loss) or `"normal"`.
    pub sqlite_synchronous: Option<String>,
    /// `"0.6.0"` (default) or `"pre-0.6.0"`: the display-name rule user search folds with.
    pub display_name_rule: Option<Canonicalization>,
    /// Serve test mode (contract §8): off unless set.
    pub test_mode_enabled: Option<bool>,
    /// Static provisioning tokens for hosts, `ROLE[,ROLE]:VALUE` (roles: node, proxy, auth); no expiry.
    #[serde(default)]
    pub static_tokens: Vec<String>,
    /// The base URL of invitation links (default: the server's own address).
    pub public_url: Option<String>,
    /// The longest validity of a user certificate, e.g. `"30h"` (default 30h).
    pub max_user_cert_ttl: Option<String>,
    /// The validity of a host certificate, e.g. `"30d"` (default 30 days).
    pub host_cert_ttl: Option<String>,
    /// The cluster's name (default: this machine's host name): host ids and
    /// principals must be inside it, and clients trust the host CA for it only.
    pub cluster_name: Option<String>,
    /// The hosts clients should trust the host CA for, in known_hosts pattern
    /// syntax (default `*.{cluster_name},{cluster_name}`); setting it lets
    /// hosts join under any name.
    pub known_hosts_pattern: Option<String>,
    /// The settings a new log starts with; later changes are events (`POST /admin/config`).
    #[serde(default)]
    pub initial: InitialSettings,
    /// Identity providers, one table each (`[providers.Google]`); the table's
    /// name is the provider's name in every URL and answer.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderTable>,
    /// The header naming the environment at the start of a provider login or link
    /// (`X-...`); the form field `environment` otherwise.
    pub environment_header: Option<String>,
    /// Alternate environments (`[environments.ci]`), each with its own public
    /// URL (the providers' redirect URIs go through it; default: `public_url`).
    #[serde(default)]
    pub environments: BTreeMap<String, EnvironmentTable>,
    /// A forced password reset (one user's, or everyone's) also ends the
    /// sessions: the users' tokens are revoked with it (default false, as upstream).
    #[serde(default)]
    pub forcereset_revokes: bool,
    /// The key file that seals stored secrets (password hashes, TOTP seeds, CA
    /// keys). Default with SQLite: `<stem>.secrets.key` beside the log,
    /// created at first start; required with PostgreSQL.
    pub secrets_key_file: Option<std::path::PathBuf>,
    /// Where the witness keeps the newest signed head of the log, outside the
    /// database (default with SQLite: `<stem>.witness.json` beside the log;
    /// none with PostgreSQL unless set).
    pub witness_file: Option<std::path::PathBuf>,
    /// The server writes a checkpoint of its projections every this many
    /// events and at shutdown (default 100000; 0: never), so a restart folds
    /// only what came after it. With several servers, the duty-lease holder writes them.
    pub checkpoint_every: Option<i64>,
    /// Hear other servers' commits as they happen (PostgreSQL LISTEN/NOTIFY;
    /// default true). Off behind a pooler that cannot LISTEN (PgBouncer in
    /// transaction mode): commits by other servers are then seen within the
    /// 250 ms poll, or at once by a request that misses.
    pub listen_for_commits: Option<bool>,
    /// The proxies whose `X-Forwarded-For` / `X-Real-IP` name the client:
    /// addresses or networks (`"10.0.0.0/8"`). Default: loopback only. A
    /// request from any other peer is counted by the peer's own address.
    pub trusted_proxies: Option<Vec<String>>,
    /// argon2 runs (password checks) at once (default: two per core, at
    /// most an eighth of the available memory at 19 MiB each).
    pub password_checks_at_once: Option<usize>,
    /// Password checks that may wait for a run (default: 16 per run); more are answered 503.
    pub password_check_queue: Option<usize>,
    /// How long a password check waits for a run before it is answered 503 (default `"2s"`).
    pub password_check_wait: Option<String>,
    /// How long a check a throttle refused waits before it is answered (default `"250ms"`).
    pub password_refusal_delay: Option<String>,
}

/// One alternate environment's table.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EnvironmentTable {
    pub public_url: Option<String>,
}

/// One identity provider's table (its `Debug` never shows the secret).
#[derive(Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ProviderTable {
    /// `"oidc"` (any OpenID Connect provider, by discovery from `issuer`),
    /// `"google"`, `"globus"` or `"orcid"`.
    pub kind: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    /// A file holding the client secret (instead of `client_secret`).
    pub client_secret_file: Option<std::path::PathBuf>,
    /// The issuer to discover the provider from (a preset's default otherwise).
    pub issuer: Option<String>,
    /// Scopes (OpenID Connect: besides `openid`, default `email`, `profile`;
    /// Globus and ORCID: instead of the preset's).
    pub scopes: Option<Vec<String>>,
    /// Globus, ORCID: where the browser signs in (the preset's otherwise).
    pub authorize_url: Option<String>,
    /// Globus, ORCID: where the code is exchanged.
    pub token_url: Option<String>,
    /// Globus, ORCID: the base URL of the provider's API.
    pub api_url: Option<String>,
    /// Globus: only the identity the person signed in with, not those linked
    /// to it at Globus (upstream's custom key `ignore-secondary-identities`).
    pub ignore_secondary_identities: Option<bool>,
    /// ORCID: do not ask for an ID token, so logins never say whether a second
    /// factor was used (upstream's custom key `disable-mfa`).
    #[serde(alias = "disable-mfa")]
    pub disable_mfa: Option<bool>,
}

impl std::fmt::Debug for ProviderTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderTable")
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "(hidden)"))
            .field("client_secret_file", &self.client_secret_file)
            .field("issuer", &self.issuer)
            .field("scopes", &self.scopes)
            .field("authorize_url", &self.authorize_url)
            .field("token_url", &self.token_url)
            .field("api_url", &self.api_url)
            .field("ignore_secondary_identities", &self.ignore_secondary_identities)
            .field("disable_mfa", &self.disable_mfa)
            .finish()
    }
}

/// Whether a URL's host is this machine (`localhost`, 127.0.0.0/8, ::1).
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The provider kinds this build speaks.
pub const PROVIDER_KINDS: [&str; 4] = ["oidc", "google", "globus", "orcid"];

/// Whether a provider URL may carry the client's secrets and codes: https,
/// or http on this machine (tests, a local provider).
fn is_safe_provider_url(text: &str) -> bool {
    match url::Url::parse(text) {
        Ok(url) if url.scheme() == "https" && url.host_str().is_some() => true,
        Ok(url) => url.scheme() == "http" && is_loopback(&url),
        Err(_) => false,
    }
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct InitialSettings {
    pub allow_login: Option<bool>,
    pub show_stack: Option<bool>,
    pub ignore_ip: Option<bool>,
    pub token_cache_minutes: Option<i64>,
    pub login_token_days: Option<i64>,
    pub agent_token_days: Option<i64>,
    pub dev_token_days: Option<i64>,
    pub serv_token_days: Option<i64>,
    pub allowed_login_redirect: Option<String>,
    pub complete_login_redirect: Option<String>,
    pub post_link_redirect: Option<String>,
    pub complete_link_redirect: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("the configuration file {path} is not valid: {source}")]
    Parse { path: String, source: Box<toml::de::Error> },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.display().to_string(), source })?;
        Self::parse(&text)
            .map_err(|source| ConfigError::Parse { path: path.display().to_string(), source: Box::new(source) })
    }

    pub fn parse(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn sqlite_full_sync(&self) -> Result<bool, ConfigError> {
        match self.sqlite_synchronous.as_deref() {
            None | Some("full") => Ok(true),
            Some("normal") => Ok(false),
            Some(other) => Err(ConfigError::Invalid {
                key: "sqlite_synchronous",
                reason: format!("{other:?} is not \"full\" or \"normal\""),
            }),
        }
    }

    /// The identity providers, checked: names (letters and digits, starting
    /// with a letter, unique whatever their case), kinds, credentials (the
    /// secret read from its file), issuers.
    pub fn provider_settings(&self) -> Result<Vec<ProviderSettings>, ConfigError> {
        let invalid =
            |name: &str, reason: String| ConfigError::Invalid { key: "providers", reason: format!("{name}: {reason}") };
        let mut seen = std::collections::BTreeSet::new();
        let mut providers = Vec::new();
        for (name, table) in &self.providers {
            let well_formed = name.len() <= 50
                && name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric());
            if !well_formed {
                return Err(invalid(name, "a provider's name is letters and digits, starting with a letter".into()));
            }
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(invalid(name, "another provider has this name in another case".into()));
            }
            let client_secret = match (&table.client_secret, &table.client_secret_file) {
                (Some(secret), None) => secret.trim().to_owned(),
                (None, Some(file)) => std::fs::read_to_string(file)
                    .map_err(|e| invalid(name, format!("cannot read client_secret_file {}: {e}", file.display())))?
                    .trim()
                    .to_owned(),
                _ => return Err(invalid(name, "give client_secret or client_secret_file (one of them)".into())),
            };
            if client_secret.is_empty() || table.client_id.trim().is_empty() {
                return Err(invalid(name, "client_id and the client secret must not be blank".into()));
            }
            if table.ignore_secondary_identities.is_some() && table.kind != "globus" {
                return Err(invalid(name, "ignore_secondary_identities is for globus".into()));
            }
            if table.disable_mfa.is_some() && table.kind != "orcid" {
                return Err(invalid(name, "disable_mfa is for orcid".into()));
            }
            let endpoints_given = table.authorize_url.is_some() || table.token_url.is_some() || table.api_url.is_some();
            let (kind, extra_params) = match table.kind.as_str() {
                "oidc" | "google" if endpoints_given => {
                    return Err(invalid(
                        name,
                        "authorize_url, token_url and api_url are for globus and orcid (OpenID Connect discovers them)"
                            .into(),
                    ));
                }
                "oidc" => match &table.issuer {
                    Some(issuer) => (ProviderKind::Oidc { issuer: issuer.trim().to_owned() }, Vec::new()),
                    None => return Err(invalid(name, "kind \"oidc\" needs an issuer".into())),
                },
                "google" => (
                    ProviderKind::Oidc {
                        issuer: table.issuer.as_deref().unwrap_or("https://accounts.google.com").trim().to_owned(),
                    },
                    vec![("prompt".to_owned(), "select_account".to_owned())],
                ),
                "globus" | "orcid" if table.issuer.is_some() => {
                    return Err(invalid(
                        name,
                        "globus and orcid take authorize_url, token_url, api_url, not an issuer".into(),
                    ));
                }
                "globus" | "orcid" => {
                    let preset = if table.kind == "globus" { Endpoints::globus() } else { Endpoints::orcid() };
                    let endpoints = Endpoints {
                        authorize_url: table.authorize_url.clone().unwrap_or(preset.authorize_url).trim().to_owned(),
                        token_url: table.token_url.clone().unwrap_or(preset.token_url).trim().to_owned(),
                        api_url: table.api_url.clone().unwrap_or(preset.api_url).trim().to_owned(),
                    };
                    let kind = match table.kind.as_str() {
                        "globus" => ProviderKind::Globus {
                            endpoints,
                            secondary_identities: !table.ignore_secondary_identities.unwrap_or(false),
                        },
                        _ => ProviderKind::Orcid { endpoints, mfa: !table.disable_mfa.unwrap_or(false) },
                    };
                    (kind, Vec::new())
                }
                other => {
                    return Err(invalid(name, format!("kind {other:?} is not one of {}", PROVIDER_KINDS.join(", "))));
                }
            };
            // Discovery, the keys, the codes and the client secret travel to these URLs.
            let urls: Vec<&str> = match &kind {
                ProviderKind::Oidc { issuer } => vec![issuer],
                ProviderKind::Globus { endpoints: e, .. } | ProviderKind::Orcid { endpoints: e, .. } => {
                    vec![&e.authorize_url, &e.token_url, &e.api_url]
                }
            };
            if let Some(unsafe_url) = urls.into_iter().find(|u| !is_safe_provider_url(u)) {
                return Err(invalid(name, format!("{unsafe_url:?} is not an https URL (http only on loopback)")));
            }
            // Upstream hashes its fixed names into identity ids: another name
            // here gives ids that do not match an auth2 deployment's data.
            let upstream = match table.kind.as_str() {
                "google" => Some("Google"),
                "globus" => Some("Globus"),
                "orcid" => Some("OrcID"),
                _ => None,
            };
            if let Some(upstream) = upstream.filter(|u| u != name) {
                tracing::warn!(
                    provider = %name,
                    upstream,
                    "identity ids are hashed from the provider's name: name the table {upstream} for ids that match KBase auth2's"
                );
            }
            let default_scopes = match kind {
                ProviderKind::Oidc { .. } => vec!["email".into(), "profile".into()],
                _ => Vec::new(),
            };
            providers.push(ProviderSettings {
                name: name.clone(),
                kind,
                client_id: table.client_id.trim().to_owned(),
                client_secret,
                scopes: table.scopes.clone().unwrap_or(default_scopes),
                extra_params,
            });
        }
        Ok(providers)
    }

    /// The environments: the header that names one, and each alternate
    /// environment's public URL (checked: names of letters, digits, `_` and
    /// `-`; a header `X-` and letters, digits and `-`; http(s) URLs).
    pub fn environments(&self) -> Result<Environments, ConfigError> {
        let invalid = |reason: String| ConfigError::Invalid { key: "environments", reason };
        let header = match &self.environment_header {
            None => None,
            Some(header) => {
                let header = header.trim();
                let well_formed = header.len() > 2
                    && header[..2].eq_ignore_ascii_case("x-")
                    && header.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
                if !well_formed {
                    return Err(ConfigError::Invalid {
                        key: "environment_header",
                        reason: format!("{header:?} is not X- followed by letters, digits and hyphens"),
                    });
                }
                Some(header.to_owned())
            }
        };
        let mut public_urls = BTreeMap::new();
        for (name, table) in &self.environments {
            let well_formed = !name.is_empty()
                && name.len() <= 50
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !well_formed {
                return Err(invalid(format!("{name:?}: an environment's name is letters, digits, _ and -")));
            }
            if let Some(url) = &table.public_url {
                match url::Url::parse(url) {
                    Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => {}
                    _ => return Err(invalid(format!("{name}: public_url {url:?} is not an http(s) URL"))),
                }
            }
            public_urls.insert(name.clone(), table.public_url.as_ref().map(|u| u.trim_end_matches('/').to_owned()));
        }
        Ok(Environments { header, public_urls })
    }

    /// The SSH side's settings; a malformed static token stops start-up with an error naming it.
    pub fn ssh_options(&self) -> Result<SshOptions, ConfigError> {
        let defaults = SshOptions::default();
        let static_tokens = self
            .static_tokens
            .iter()
            .enumerate()
            .map(|(i, entry)| {
                StaticToken::parse(entry).map_err(|reason| ConfigError::Invalid {
                    key: "static_tokens",
                    reason: format!("entry {}: {reason}", i + 1),
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let duration = |key: &'static str, value: &Option<String>, default: i64| -> Result<i64, ConfigError> {
            match value {
                None => Ok(default),
                Some(text) => match parse_duration_ms(text) {
                    Ok(ms) if ms >= 60_000 => Ok(ms),
                    Ok(_) => Err(ConfigError::Invalid { key, reason: format!("{text:?} is shorter than a minute") }),
                    Err(reason) => Err(ConfigError::Invalid { key, reason }),
                },
            }
        };
        let known_hosts_pattern = self.known_hosts_pattern.clone();
        if let Some(pattern) = &known_hosts_pattern
            && (pattern.is_empty() || pattern.chars().any(char::is_whitespace))
        {
            return Err(ConfigError::Invalid {
                key: "known_hosts_pattern",
                reason: format!("{pattern:?} is not a known_hosts pattern list (comma-separated, no spaces)"),
            });
        }
        let cluster_name = match &self.cluster_name {
            Some(name) => {
                crate::domain::HostId::parse(name).map_err(|_| ConfigError::Invalid {
                    key: "cluster_name",
                    reason: format!("{name:?} is not a host name (A-Z a-z 0-9 . - _)"),
                })?;
                name.to_ascii_lowercase()
            }
            None => defaults.cluster_name,
        };
        Ok(SshOptions {
            cluster_name,
            known_hosts_pattern,
            static_tokens,
            max_user_cert_ttl_ms: duration(
                "max_user_cert_ttl",
                &self.max_user_cert_ttl,
                defaults.max_user_cert_ttl_ms,
            )?,
            host_cert_ttl_ms: duration("host_cert_ttl", &self.host_cert_ttl, defaults.host_cert_ttl_ms)?,
        })
    }

    /// The service's public base URL, checked (no trailing slash).
    pub fn public_url(&self) -> Result<Option<String>, ConfigError> {
        match &self.public_url {
            Some(url) if url::Url::parse(url).is_err() => {
                Err(ConfigError::Invalid { key: "public_url", reason: format!("{url:?} is not a URL") })
            }
            url => Ok(url.as_ref().map(|u| u.trim_end_matches('/').to_owned())),
        }
    }

    /// The bounds of argon2 work, checked (defaults: see `PasswordWorkSettings`).
    pub fn password_work(&self) -> Result<crate::app::passwords::PasswordWorkSettings, ConfigError> {
        let mut settings = crate::app::passwords::PasswordWorkSettings::default();
        if let Some(at_once) = self.password_checks_at_once {
            if at_once == 0 {
                return Err(ConfigError::Invalid {
                    key: "password_checks_at_once",
                    reason: "0 would check none".into(),
                });
            }
            settings.at_once = at_once;
            settings.queue = 16 * at_once;
        }
        if let Some(queue) = self.password_check_queue {
            settings.queue = queue;
        }
        if let Some(wait) = &self.password_check_wait {
            let ms = parse_duration_ms(wait)
                .map_err(|reason| ConfigError::Invalid { key: "password_check_wait", reason })?;
            settings.wait = std::time::Duration::from_millis(ms.max(0) as u64);
        }
        if let Some(delay) = &self.password_refusal_delay {
            let ms = parse_duration_ms(delay)
                .map_err(|reason| ConfigError::Invalid { key: "password_refusal_delay", reason })?;
            settings.refusal_delay = std::time::Duration::from_millis(ms.max(0) as u64);
        }
        Ok(settings)
    }

    /// The trusted proxies, checked (default: loopback only).
    pub fn trusted_proxies(&self) -> Result<Vec<ipnet::IpNet>, ConfigError> {
        match &self.trusted_proxies {
            None => Ok(crate::app::client_address::loopback()),
            Some(entries) => entries
                .iter()
                .map(|entry| crate::app::client_address::parse_proxy(entry))
                .collect::<Result<_, _>>()
                .map_err(|reason| ConfigError::Invalid { key: "trusted_proxies", reason }),
        }
    }

    /// The starting settings of a new log.
    pub fn initial_settings(&self) -> Result<ServerSettings, ConfigError> {
        let i = &self.initial;
        let defaults = ServerSettings::default();
        let positive = |key: &'static str, value: Option<i64>, unit: i64, default: i64| -> Result<i64, ConfigError> {
            match value {
                None => Ok(default),
                Some(v) if v >= 1 => Ok(v.saturating_mul(unit)),
                Some(v) => Err(ConfigError::Invalid { key, reason: format!("{v} is less than 1") }),
            }
        };
        let lifetimes = TokenLifetimes::default();
        Ok(ServerSettings {
            allow_login: i.allow_login.unwrap_or(defaults.allow_login),
            show_stack: i.show_stack.unwrap_or(defaults.show_stack),
            ignore_ip: i.ignore_ip.unwrap_or(defaults.ignore_ip),
            redirects: RedirectUrls {
                allowed_login: i.allowed_login_redirect.clone(),
                complete_login: i.complete_login_redirect.clone(),
                post_link: i.post_link_redirect.clone(),
                complete_link: i.complete_link_redirect.clone(),
            },
            token_lifetimes: TokenLifetimes {
                login: positive("initial.login_token_days", i.login_token_days, DAY_MS, lifetimes.login)?,
                agent: positive("initial.agent_token_days", i.agent_token_days, DAY_MS, lifetimes.agent)?,
                dev: positive("initial.dev_token_days", i.dev_token_days, DAY_MS, lifetimes.dev)?,
                serv: positive("initial.serv_token_days", i.serv_token_days, DAY_MS, lifetimes.serv)?,
            },
            suggested_cache_ms: positive(
                "initial.token_cache_minutes",
                i.token_cache_minutes,
                60_000,
                defaults.suggested_cache_ms,
            )?,
            // Providers start switched off, as upstream; an administrator turns them on.
            providers: Default::default(),
            environments: Default::default(),
        })
    }
}

/// A duration such as `15m`, `30h` or `2d 4h`, in milliseconds.
pub fn parse_duration_ms(text: &str) -> Result<i64, String> {
    let duration = humantime::parse_duration(text.trim()).map_err(|e| format!("{text:?} is not a duration: {e}"))?;
    i64::try_from(duration.as_millis()).map_err(|_| format!("{text:?} is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_every_default() {
        let config = FileConfig::parse("").unwrap_or_default();
        assert_eq!(config.initial_settings().ok(), Some(ServerSettings::default()));
        assert!(config.sqlite_full_sync().unwrap_or(false));
    }

    #[test]
    fn settings_are_read_and_checked() {
        let config =
            FileConfig::parse("store = \"postgres://x/y\"\n[initial]\nallow_login = true\nagent_token_days = 2\n")
                .unwrap_or_default();
        let settings = config.initial_settings().unwrap_or_default();
        assert!(settings.allow_login);
        assert_eq!(settings.token_lifetimes.agent, 2 * DAY_MS);
        assert!(FileConfig::parse("unknown_key = 1").is_err());
        let bad = FileConfig::parse("[initial]\nlogin_token_days = 0").unwrap_or_default();
        assert!(bad.initial_settings().is_err());
    }

    #[test]
    fn providers_are_read_in_the_issues_shape_and_checked() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let secret_file = dir.path().join("google");
        std::fs::write(&secret_file, "from-a-file\n").unwrap_or_else(|e| panic!("{e}"));
        let text = format!(
            "public_url = \"https://auth.example.org\"\n\
             [providers.Google]\nkind = \"google\"\nclient_id = \"g-id\"\nclient_secret_file = {:?}\n\
             [providers.Corp]\nkind = \"oidc\"\nissuer = \"https://id.corp.example\"\nclient_id = \"c\"\n\
             client_secret = \"s\"\nscopes = [\"email\"]\n",
            secret_file.display().to_string()
        );
        let config = FileConfig::parse(&text).unwrap_or_else(|e| panic!("{e}"));
        let providers = config.provider_settings().unwrap_or_else(|e| panic!("{e}"));
        let google = providers.iter().find(|p| p.name == "Google").unwrap_or_else(|| panic!("Google"));
        assert_eq!(google.client_secret, "from-a-file");
        assert_eq!(google.kind, ProviderKind::Oidc { issuer: "https://accounts.google.com".into() });
        assert_eq!(google.extra_params, vec![("prompt".to_owned(), "select_account".to_owned())]);
        let corp = providers.iter().find(|p| p.name == "Corp").unwrap_or_else(|| panic!("Corp"));
        assert_eq!(corp.kind, ProviderKind::Oidc { issuer: "https://id.corp.example".into() });
        assert_eq!(corp.scopes, vec!["email".to_owned()]);
        let refused =
            |text: &str| FileConfig::parse(text).ok().and_then(|c| c.provider_settings().err()).map(|e| e.to_string());
        let plain = "[providers.X]\nkind = \"oidc\"\nissuer = \"http://id.example\"\nclient_id = \"a\"\nclient_secret = \"b\"\n";
        assert!(refused(plain).is_some_and(|e| e.contains("not an https URL")), "http off loopback");
        let local = "[providers.X]\nkind = \"oidc\"\nissuer = \"http://127.0.0.1:9\"\nclient_id = \"a\"\nclient_secret = \"b\"\n";
        assert_eq!(refused(local), None, "http on loopback");
        let shown = format!("{:?}", FileConfig::parse(local).unwrap_or_default());
        assert!(shown.contains("(hidden)") && !shown.contains("\"b\""), "{shown}");
        let no_issuer = refused("[providers.X]\nkind = \"oidc\"\nclient_id = \"a\"\nclient_secret = \"b\"\n");
        assert!(no_issuer.is_some_and(|e| e.contains("X: kind \"oidc\" needs an issuer")));
        let kind = refused("[providers.X]\nkind = \"saml\"\nclient_id = \"a\"\nclient_secret = \"b\"\n");
        assert!(kind.is_some_and(|e| e.contains("\"saml\" is not one of oidc, google")));
        let both =
            "[providers.X]\nkind = \"google\"\nclient_id = \"a\"\nclient_secret = \"b\"\nclient_secret_file = \"/f\"\n";
        assert!(refused(both).is_some_and(|e| e.contains("one of them")));
        let case = "[providers.Google]\nkind = \"google\"\nclient_id = \"a\"\nclient_secret = \"b\"\n\
                    [providers.google]\nkind = \"google\"\nclient_id = \"a\"\nclient_secret = \"b\"\n";
        assert!(refused(case).is_some_and(|e| e.contains("another case")));
        let name = "[providers.\"my-idp\"]\nkind = \"google\"\nclient_id = \"a\"\nclient_secret = \"b\"\n";
        assert!(refused(name).is_some_and(|e| e.contains("letters and digits")));
        let endpoints =
            "[providers.X]\nkind = \"google\"\nclient_id = \"a\"\nclient_secret = \"b\"\nauthorize_url = \"x\"\n";
        assert!(refused(endpoints).is_some_and(|e| e.contains("are for globus and orcid")));
        assert!(FileConfig::parse("[providers.X]\nkind = \"google\"\nclient_id = \"a\"\nwhat = \"x\"\n").is_err());
    }

    #[test]
    fn globus_and_orcid_have_presets_that_a_table_overrides() {
        let text = "[providers.Globus]\nkind = \"globus\"\nclient_id = \"g\"\nclient_secret = \"s\"\n\
                    [providers.OrcID]\nkind = \"orcid\"\nclient_id = \"o\"\nclient_secret = \"s\"\n\
                    token_url = \"http://127.0.0.1:9/token\"\n";
        let config = FileConfig::parse(text).unwrap_or_else(|e| panic!("{e}"));
        let providers = config.provider_settings().unwrap_or_else(|e| panic!("{e}"));
        let globus = ProviderKind::Globus { endpoints: Endpoints::globus(), secondary_identities: true };
        assert_eq!(providers[0].kind, globus);
        let orcid = Endpoints { token_url: "http://127.0.0.1:9/token".into(), ..Endpoints::orcid() };
        assert_eq!(providers[1].kind, ProviderKind::Orcid { endpoints: orcid, mfa: true });
        let plain = "[providers.X]\nkind = \"orcid\"\nclient_id = \"o\"\nclient_secret = \"s\"\napi_url = \"http://pub.orcid.org\"\n";
        let refused = FileConfig::parse(plain).ok().and_then(|c| c.provider_settings().err()).map(|e| e.to_string());
        assert!(refused.is_some_and(|e| e.contains("not an https URL")), "the API's URL too");
        // auth2's own key turns the second-factor check off; it is for ORCID only.
        let off = "[providers.OrcID]\nkind = \"orcid\"\nclient_id = \"o\"\nclient_secret = \"s\"\ndisable-mfa = true\n";
        let providers = FileConfig::parse(off).unwrap_or_default().provider_settings().unwrap_or_default();
        assert_eq!(providers[0].kind, ProviderKind::Orcid { endpoints: Endpoints::orcid(), mfa: false });
        let misplaced =
            "[providers.G]\nkind = \"globus\"\nclient_id = \"o\"\nclient_secret = \"s\"\ndisable_mfa = true\n";
        let refused =
            FileConfig::parse(misplaced).ok().and_then(|c| c.provider_settings().err()).map(|e| e.to_string());
        assert!(refused.is_some_and(|e| e.contains("disable_mfa is for orcid")));
    }

    #[test]
    fn environments_are_read_and_checked() {
        let text = "environment_header = \"X-Environment\"\n[environments.ci]\npublic_url = \"https://ci.example.org/\"\n[environments.next]\n";
        let environments = FileConfig::parse(text).unwrap_or_default().environments().unwrap_or_default();
        assert_eq!(environments.header.as_deref(), Some("X-Environment"));
        assert_eq!(environments.public_urls.get("ci"), Some(&Some("https://ci.example.org".to_owned())));
        assert_eq!(environments.public_urls.get("next"), Some(&None));
        let refused =
            |text: &str| FileConfig::parse(text).ok().and_then(|c| c.environments().err()).map(|e| e.to_string());
        assert!(refused("environment_header = \"Environment\"").is_some_and(|e| e.contains("environment_header")));
        assert!(refused("[environments.\"a b\"]").is_some_and(|e| e.contains("letters, digits")));
        assert!(
            refused("[environments.ci]\npublic_url = \"ftp://x\"").is_some_and(|e| e.contains("not an http(s) URL"))
        );
    }

    #[test]
    fn a_malformed_static_token_is_named() {
        let config =
            FileConfig::parse("static_tokens = [\"node:aaaaaaaaaaaaaaaa\", \"nodes:bbbb\"]").unwrap_or_default();
        assert_eq!(
            config.ssh_options().err().map(|e| e.to_string()).as_deref(),
            Some(
                "invalid setting static_tokens: entry 2: static token \"nodes:…\": Unknown host role \"nodes\": expected one of node, proxy, auth"
            )
        );
        let config = FileConfig::parse("static_tokens = [\"node,proxy:aaaaaaaaaaaaaaaa\"]\nmax_user_cert_ttl = \"8h\"")
            .unwrap_or_default();
        let options = config.ssh_options().unwrap_or_default();
        assert_eq!(options.static_tokens.len(), 1);
        assert_eq!(options.max_user_cert_ttl_ms, 8 * 3_600_000);
    }
}
