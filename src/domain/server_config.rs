//! The `ServerConfig` aggregate (a single instance, id `server`): the
//! admin-editable settings of contract §9. A new log starts with
//! `ServerConfigInitialized` from the configuration file; every later change is
//! a `ServerConfigUpdated` listing only what changed.

use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::names::UserName;
use super::token::TokenKind;

pub const SERVER_CONFIG_ID: &str = "server";

pub const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// One of the four redirect URLs an administrator may configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RedirectKind {
    #[serde(rename = "allowedloginredirect")]
    AllowedLogin,
    #[serde(rename = "completeloginredirect")]
    CompleteLogin,
    #[serde(rename = "postlinkredirect")]
    PostLink,
    #[serde(rename = "completelinkredirect")]
    CompleteLink,
}

impl RedirectKind {
    pub const ALL: [RedirectKind; 4] = [Self::AllowedLogin, Self::CompleteLogin, Self::PostLink, Self::CompleteLink];

    pub fn key(self) -> &'static str {
        match self {
            Self::AllowedLogin => "allowedloginredirect",
            Self::CompleteLogin => "completeloginredirect",
            Self::PostLink => "postlinkredirect",
            Self::CompleteLink => "completelinkredirect",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct RedirectUrls {
    pub allowed_login: Option<String>,
    pub complete_login: Option<String>,
    pub post_link: Option<String>,
    pub complete_link: Option<String>,
}

impl RedirectUrls {
    pub fn get(&self, kind: RedirectKind) -> Option<&String> {
        match kind {
            RedirectKind::AllowedLogin => self.allowed_login.as_ref(),
            RedirectKind::CompleteLogin => self.complete_login.as_ref(),
            RedirectKind::PostLink => self.post_link.as_ref(),
            RedirectKind::CompleteLink => self.complete_link.as_ref(),
        }
    }

    fn slot(&mut self, kind: RedirectKind) -> &mut Option<String> {
        match kind {
            RedirectKind::AllowedLogin => &mut self.allowed_login,
            RedirectKind::CompleteLogin => &mut self.complete_login,
            RedirectKind::PostLink => &mut self.post_link,
            RedirectKind::CompleteLink => &mut self.complete_link,
        }
    }
}

/// Token lifetimes in milliseconds, by token kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenLifetimes {
    pub login: i64,
    pub agent: i64,
    pub dev: i64,
    pub serv: i64,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        Self { login: 14 * DAY_MS, agent: 7 * DAY_MS, dev: 90 * DAY_MS, serv: 100_000_000 * DAY_MS }
    }
}

impl TokenLifetimes {
    pub fn of(&self, kind: TokenKind) -> i64 {
        match kind {
            TokenKind::Login => self.login,
            TokenKind::Agent => self.agent,
            TokenKind::Dev => self.dev,
            TokenKind::Serv => self.serv,
        }
    }

    fn slot(&mut self, kind: TokenKind) -> &mut i64 {
        match kind {
            TokenKind::Login => &mut self.login,
            TokenKind::Agent => &mut self.agent,
            TokenKind::Dev => &mut self.dev,
            TokenKind::Serv => &mut self.serv,
        }
    }
}

/// An identity provider's switches (upstream's runtime provider settings):
/// all off until an administrator turns them on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderSwitches {
    /// Whether people may sign in and link through it.
    pub enabled: bool,
    /// Always show the login choice page, even for a known identity.
    pub force_login_choice: bool,
    /// Always show the link choice page.
    pub force_link_choice: bool,
}

/// The whole admin-editable configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerSettings {
    pub allow_login: bool,
    pub show_stack: bool,
    pub ignore_ip: bool,
    pub redirects: RedirectUrls,
    pub token_lifetimes: TokenLifetimes,
    /// How long clients may cache an introspection answer (`cachefor`), ms.
    pub suggested_cache_ms: i64,
    /// Switches of the identity providers an administrator has set, by
    /// provider name (a provider not listed is all off). Since
    /// `ServerConfigInitialized` v2.0.
    pub providers: BTreeMap<String, ProviderSwitches>,
    /// The redirect URLs of each alternate environment an administrator has
    /// set (the default environment's are `redirects`). Since v2.0.
    pub environments: BTreeMap<String, RedirectUrls>,
}

impl ServerSettings {
    /// A provider's switches (all off when never set).
    pub fn provider(&self, name: &str) -> ProviderSwitches {
        self.providers.get(name).copied().unwrap_or_default()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            allow_login: false,
            show_stack: false,
            ignore_ip: false,
            redirects: RedirectUrls::default(),
            token_lifetimes: TokenLifetimes::default(),
            suggested_cache_ms: 300_000,
            providers: BTreeMap::new(),
            environments: BTreeMap::new(),
        }
    }
}

/// One changed setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConfigChange {
    AllowLogin(bool),
    ShowStack(bool),
    IgnoreIp(bool),
    RedirectUrl {
        which: RedirectKind,
        url: Option<String>,
    },
    TokenLifetime {
        kind: TokenKind,
        ms: i64,
    },
    SuggestedCacheTime {
        ms: i64,
    },
    /// An identity provider's switches (since `ServerConfigUpdated` v1.1).
    Provider {
        name: String,
        switches: ProviderSwitches,
    },
    /// One redirect URL of an alternate environment (since v1.1).
    EnvironmentRedirect {
        environment: String,
        which: RedirectKind,
        url: Option<String>,
    },
}

impl ServerSettings {
    /// The changes that turn `current` into these settings (a reset to the
    /// defaults is `ServerSettings::default().changes_from(&current)`);
    /// ineffective ones are dropped when recorded.
    pub fn changes_from(&self, current: &ServerSettings) -> Vec<ConfigChange> {
        let mut changes = vec![
            ConfigChange::AllowLogin(self.allow_login),
            ConfigChange::ShowStack(self.show_stack),
            ConfigChange::IgnoreIp(self.ignore_ip),
            ConfigChange::SuggestedCacheTime { ms: self.suggested_cache_ms },
        ];
        for which in RedirectKind::ALL {
            changes.push(ConfigChange::RedirectUrl { which, url: self.redirects.get(which).cloned() });
        }
        for kind in [TokenKind::Login, TokenKind::Agent, TokenKind::Dev, TokenKind::Serv] {
            changes.push(ConfigChange::TokenLifetime { kind, ms: self.token_lifetimes.of(kind) });
        }
        for name in current.providers.keys().chain(self.providers.keys()) {
            changes.push(ConfigChange::Provider { name: name.clone(), switches: self.provider(name) });
        }
        for environment in current.environments.keys().chain(self.environments.keys()) {
            let urls = self.environments.get(environment).cloned().unwrap_or_default();
            for which in RedirectKind::ALL {
                let url = urls.get(which).cloned();
                changes.push(ConfigChange::EnvironmentRedirect { environment: environment.clone(), which, url });
            }
        }
        changes
    }

    /// The fold shared by the aggregate and the projection.
    pub fn apply(&mut self, change: &ConfigChange) {
        match change {
            ConfigChange::AllowLogin(v) => self.allow_login = *v,
            ConfigChange::ShowStack(v) => self.show_stack = *v,
            ConfigChange::IgnoreIp(v) => self.ignore_ip = *v,
            ConfigChange::RedirectUrl { which, url } => *self.redirects.slot(*which) = url.clone(),
            ConfigChange::TokenLifetime { kind, ms } => *self.token_lifetimes.slot(*kind) = *ms,
            ConfigChange::SuggestedCacheTime { ms } => self.suggested_cache_ms = *ms,
            ConfigChange::Provider { name, switches } if *switches == ProviderSwitches::default() => {
                self.providers.remove(name);
            }
            ConfigChange::Provider { name, switches } => {
                self.providers.insert(name.clone(), *switches);
            }
            ConfigChange::EnvironmentRedirect { environment, which, url } => {
                let urls = self.environments.entry(environment.clone()).or_default();
                *urls.slot(*which) = url.clone();
                if *urls == RedirectUrls::default() {
                    self.environments.remove(environment);
                }
            }
        }
    }

    /// Would applying `change` alter anything?
    pub fn changes(&self, change: &ConfigChange) -> bool {
        let mut next = self.clone();
        next.apply(change);
        next != *self
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum ServerConfigEvent {
    ServerConfigInitialized { settings: ServerSettings },
    ServerConfigUpdated { changes: Vec<ConfigChange>, by: UserName, at: i64 },
}

domain_event!(ServerConfigEvent, |event| match event {
    Self::ServerConfigInitialized { .. } => SERVER_CONFIG_INITIALIZED_VERSION,
    // 1.1: the `Provider` change (additive: every 1.0 payload reads as it is).
    Self::ServerConfigUpdated { .. } => "1.1",
});

/// `ServerConfigInitialized` 2.0 added the providers' switches; see
/// [`upcast_server_config_initialized_v1`].
pub const SERVER_CONFIG_INITIALIZED_VERSION: &str = "2.0";

/// `ServerConfigInitialized` 1.0 → 2.0: a log started before providers had
/// switches and environments their URLs started with none set.
pub fn upcast_server_config_initialized_v1(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(settings) = payload
        .get_mut("ServerConfigInitialized")
        .and_then(|e| e.get_mut("settings"))
        .and_then(serde_json::Value::as_object_mut)
    {
        settings.entry("providers").or_insert_with(|| serde_json::json!({}));
        settings.entry("environments").or_insert_with(|| serde_json::json!({}));
    }
    payload
}

#[derive(Debug, Clone, PartialEq)]
pub enum ServerConfigCommand {
    /// Records the starting settings of a new log; does nothing on an initialized one.
    Initialize(ServerSettings),
    /// Records the changes that alter something; nothing when none do.
    Update { changes: Vec<ConfigChange>, by: UserName, at: i64 },
    /// Sets every setting to `to`'s, against the settings as recorded (a
    /// change made meanwhile by another request or server is reset too).
    Reset { to: Box<ServerSettings>, by: UserName, at: i64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ServerConfig {
    settings: Option<ServerSettings>,
}

impl Aggregate for ServerConfig {
    const TYPE: &'static str = "ServerConfig";
    type Command = ServerConfigCommand;
    type Event = ServerConfigEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: ServerConfigCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let mut current = self.settings.clone().unwrap_or_default();
        let (changes, by, at) = match command {
            ServerConfigCommand::Initialize(settings) => {
                if self.settings.is_none() {
                    sink.write(ServerConfigEvent::ServerConfigInitialized { settings }, self).await;
                }
                return Ok(());
            }
            ServerConfigCommand::Reset { to, by, at } => (to.changes_from(&current), by, at),
            ServerConfigCommand::Update { changes, by, at } => (changes, by, at),
        };
        let mut effective = Vec::new();
        for change in changes {
            if current.changes(&change) {
                current.apply(&change);
                effective.push(change);
            }
        }
        if !effective.is_empty() {
            sink.write(ServerConfigEvent::ServerConfigUpdated { changes: effective, by, at }, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: ServerConfigEvent) {
        match event {
            ServerConfigEvent::ServerConfigInitialized { settings } => self.settings = Some(settings),
            ServerConfigEvent::ServerConfigUpdated { changes, .. } => {
                let settings = self.settings.get_or_insert_with(ServerSettings::default);
                for change in &changes {
                    settings.apply(change);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    #[test]
    fn a_log_started_before_provider_switches_reads_with_none() {
        use crate::domain::{LedgerEvent, LogEvent};
        let event = ServerConfigEvent::ServerConfigInitialized { settings: ServerSettings::default() };
        let mut v1 = serde_json::to_value(&event).unwrap_or_default();
        if let Some(settings) = v1["ServerConfigInitialized"]["settings"].as_object_mut() {
            settings.remove("providers");
            settings.remove("environments");
        }
        let decoded = LedgerEvent::decode(
            "ServerConfig",
            "ServerConfigInitialized",
            "1.0",
            &v1.to_string(),
            &crate::domain::upcasters(),
        );
        assert_eq!(decoded.ok(), Some(LedgerEvent::ServerConfig(event)));
    }

    #[test]
    fn a_settings_changes_rebuild_it_from_any_other() {
        let mut changed = ServerSettings { allow_login: true, ignore_ip: true, ..ServerSettings::default() };
        changed.redirects.post_link = Some("https://example.org/linked".into());
        changed.token_lifetimes.dev = 3 * DAY_MS;
        changed.suggested_cache_ms = 60_000;
        let on = ProviderSwitches { enabled: true, ..ProviderSwitches::default() };
        changed.providers.insert("Google".into(), on);
        let ci = RedirectUrls { post_link: Some("https://ci.example.org/linked".into()), ..RedirectUrls::default() };
        changed.environments.insert("ci".into(), ci);
        let mut reset = changed.clone();
        for change in ServerSettings::default().changes_from(&changed) {
            reset.apply(&change);
        }
        assert_eq!(reset, ServerSettings::default(), "the provider is switched off too");
        let mut back = ServerSettings::default();
        for change in changed.changes_from(&ServerSettings::default()) {
            back.apply(&change);
        }
        assert_eq!(back, changed);
    }

    #[tokio::test]
    async fn initializing_twice_records_once() {
        TestFramework::<ServerConfig>::with(())
            .given(vec![ServerConfigEvent::ServerConfigInitialized { settings: ServerSettings::default() }])
            .when_async(ServerConfigCommand::Initialize(ServerSettings::default()))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn only_effective_changes_are_recorded() {
        TestFramework::<ServerConfig>::with(())
            .given(vec![ServerConfigEvent::ServerConfigInitialized { settings: ServerSettings::default() }])
            .when_async(ServerConfigCommand::Update {
                changes: vec![ConfigChange::AllowLogin(true), ConfigChange::ShowStack(false)],
                by: UserName::root(),
                at: 1,
            })
            .await
            .then_expect_events(vec![ServerConfigEvent::ServerConfigUpdated {
                changes: vec![ConfigChange::AllowLogin(true)],
                by: UserName::root(),
                at: 1,
            }]);
    }
}
