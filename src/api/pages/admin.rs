//! The administrators' pages: the start page (search, token lookup,
//! emergency measures), local accounts, a user's record and tokens, and the
//! server configuration.

use std::collections::BTreeMap;

use askama::Template;
use axum::response::Response;

use super::account::{CustomRoleRow, grantable_roles};
use super::{Nav, Profile, RoleRow, TokenRow, at, render};
use crate::api::error::ApiError;
use crate::api::permissions::{self, Action};
use crate::app::providers::Providers;
use crate::domain::CertificateEvent;
use crate::domain::CustomRoleId;
use crate::domain::server_config::{DAY_MS, ProviderSwitches, RedirectKind, RedirectUrls, ServerSettings};
use crate::domain::throttle::PasswordThrottle;
use crate::projections::access::CertificateRecord;
use crate::projections::user_directory::MAX_SEARCH_RESULTS;
use crate::projections::{TokenView, UserRecord};

#[derive(Template)]
#[template(path = "admin.html")]
struct AdminPage {
    nav: Nav,
    roles: Vec<RoleRow>,
    custom_roles: Vec<CustomRoleRow>,
    /// The Admin role's measures: custom roles, configuration, token lookup, revoke all.
    admin: bool,
    create_accounts: bool,
    force_resets: bool,
}

/// `GET /admin`, with the sections `viewer` may use.
pub fn start(viewer: &UserRecord, custom_roles: &BTreeMap<CustomRoleId, String>) -> Result<Response, ApiError> {
    let may = |action| permissions::allows(action, &viewer.roles);
    render(&AdminPage {
        nav: Nav::of(viewer),
        admin: may(Action::ViewConfig),
        create_accounts: may(Action::CreateLocalAccount),
        force_resets: may(Action::ForceAllPasswordResets),
        roles: grantable_roles(&Default::default()),
        custom_roles: custom_roles
            .iter()
            .map(|(id, desc)| CustomRoleRow { id: id.to_string(), desc: desc.clone() })
            .collect(),
    })
}

pub struct UserSummary {
    pub name: String,
    pub display: String,
    pub disabled: bool,
}

#[derive(Template)]
#[template(path = "search_results.html")]
struct SearchResultsPage {
    nav: Nav,
    prefix: String,
    users: Vec<UserSummary>,
    /// The most results a search lists.
    limit: usize,
}

/// The answer to `POST /admin/search`.
pub fn search_results(nav: Nav, prefix: &str, users: &[UserRecord]) -> Result<Response, ApiError> {
    let users = users
        .iter()
        .map(|u| UserSummary { name: u.name.to_string(), display: u.display.clone(), disabled: u.is_disabled() })
        .collect();
    render(&SearchResultsPage { nav, prefix: prefix.to_owned(), users, limit: MAX_SEARCH_RESULTS })
}

#[derive(Template)]
#[template(path = "admin_token.html")]
struct AdminTokenPage {
    nav: Nav,
    user: String,
    token: TokenRow,
}

/// The answer to `POST /admin/token`.
pub fn token(nav: Nav, token: &TokenView) -> Result<Response, ApiError> {
    render(&AdminTokenPage { nav, user: token.user.to_string(), token: TokenRow::of(token) })
}

#[derive(Template)]
#[template(path = "localaccount.html")]
struct LocalAccountPage {
    nav: Nav,
}

/// `GET /admin/localaccount`.
pub fn local_account(nav: Nav) -> Result<Response, ApiError> {
    render(&LocalAccountPage { nav })
}

#[derive(Template)]
#[template(path = "password_issued.html")]
struct PasswordIssuedPage<'a> {
    nav: Nav,
    heading: &'a str,
    user: &'a str,
    display: Option<&'a str>,
    password: &'a str,
}

/// A new account's temporary password, shown this once.
pub fn account_created(nav: Nav, user: &str, display: &str, password: &str) -> Result<Response, ApiError> {
    render(&PasswordIssuedPage { nav, heading: "Account created", user, display: Some(display), password })
}

/// A reset account's temporary password, shown this once.
pub fn password_reset(nav: Nav, user: &str, password: &str) -> Result<Response, ApiError> {
    render(&PasswordIssuedPage { nav, heading: "Password reset", user, display: None, password })
}

/// An SSH certificate, as the user pages list it.
pub struct CertRow {
    pub serial: String,
    pub principals: String,
    pub valid_after: String,
    pub valid_before: String,
}

impl CertRow {
    /// A user certificate as recorded (host certificates are not listed on user pages).
    pub fn of(record: &CertificateRecord) -> Self {
        let cert = record.event.cert();
        let principals: Vec<String> = match &record.event {
            CertificateEvent::UserCertIssued { principals, .. } => principals.iter().map(ToString::to_string).collect(),
            CertificateEvent::HostCertIssued { host_id, .. } => vec![host_id.to_string()],
        };
        Self::new(cert.serial, &principals, cert.valid_after, cert.valid_before)
    }

    pub fn new(serial: impl ToString, principals: &[String], valid_after: i64, valid_before: i64) -> Self {
        Self {
            serial: serial.to_string(),
            principals: principals.join(", "),
            valid_after: at(valid_after),
            valid_before: at(valid_before),
        }
    }
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct AdminUserPage {
    nav: Nav,
    profile: Profile,
    locked: String,
    /// "none", or how many in a row and until when no password is checked.
    password_throttle: String,
    /// Whether there is anything to clear.
    may_unlock: bool,
    reset_required: bool,
    disabled: bool,
    disabled_reason: Option<String>,
    /// "by NAME on TIME".
    enable_state: Option<String>,
    roles: Vec<RoleRow>,
    custom_roles: Vec<RoleRow>,
    logins: String,
    /// `None` when the viewer may not list certificates.
    certificates: Option<Vec<CertRow>>,
    powers: Powers,
}

/// Which of the user page's forms the viewer may use (the others are not shown).
pub struct Powers {
    pub change_custom_roles: bool,
    pub change_logins: bool,
    pub view_tokens: bool,
    /// Not for the root account, which cannot be forgotten.
    pub forget: bool,
}

/// What `/admin/user/{u}` shows besides the record itself.
pub struct UserFacts<'a> {
    pub reset_required: bool,
    pub custom_roles: &'a BTreeMap<CustomRoleId, String>,
    /// `None` when the viewer may not list certificates.
    pub certificates: Option<Vec<CertificateRecord>>,
    pub now: i64,
}

/// An account's wrong-password counts as an administrator reads them.
fn describe_throttle(throttle: &PasswordThrottle, now: i64) -> String {
    if throttle.is_clear() {
        return "none".to_owned();
    }
    let unmarked = throttle.unmarked.at(now).failures;
    let devices = throttle.sources.iter().filter(|(s, c)| !s.is_unmarked() && c.at(now).failures > 0).count();
    let mut parts = vec![format!("{unmarked} from clients without a device mark")];
    if devices > 0 {
        parts.push(format!("{devices} known device(s) with wrong passwords"));
    }
    let waiting = throttle.sources_waiting(now);
    if waiting > 0 {
        parts.push(format!("{waiting} client(s) waiting"));
    }
    if let Some(until) = throttle.unmarked.waiting(now) {
        parts.push(format!("every client without a device mark waits until {}", at(until)));
    }
    parts.join("; ")
}

/// `GET /admin/user/{u}`, as `viewer` may use it.
pub fn user(viewer: &UserRecord, user: &UserRecord, facts: UserFacts<'_>) -> Result<Response, ApiError> {
    let nav = Nav::of(viewer);
    let viewer_may = |action| permissions::allows(action, &viewer.roles);
    let locked = match user.locked_until {
        Some(until) if until > facts.now => format!("until {}", at(until)),
        _ => "no".to_owned(),
    };
    let password_throttle = describe_throttle(&user.password_throttle, facts.now);
    let may_unlock = !user.password_throttle.is_clear() || user.locked_until.is_some_and(|until| until > facts.now);
    render(&AdminUserPage {
        nav,
        profile: Profile::of(user),
        locked,
        password_throttle,
        may_unlock,
        reset_required: facts.reset_required,
        disabled: user.is_disabled(),
        disabled_reason: user.disabled_reason.clone(),
        enable_state: user.enable_toggle.as_ref().map(|(when, by)| format!("by {by} on {}", at(*when))),
        roles: grantable_roles(&user.roles),
        custom_roles: facts
            .custom_roles
            .iter()
            .map(|(id, desc)| RoleRow { id: id.to_string(), desc: desc.clone(), held: user.custom_roles.contains(id) })
            .collect(),
        logins: user.effective_logins().iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
        certificates: facts.certificates.map(|list| list.iter().map(CertRow::of).collect()),
        powers: Powers {
            change_custom_roles: viewer_may(Action::ChangeCustomRolesOfUser),
            change_logins: viewer_may(Action::ChangeLogins),
            view_tokens: viewer_may(Action::ViewUserTokens),
            forget: viewer_may(Action::ForgetUser) && !user.name.is_root(),
        },
    })
}

#[derive(Template)]
#[template(path = "user_tokens.html")]
struct UserTokensPage {
    nav: Nav,
    user: String,
    tokens: Vec<TokenRow>,
    revoke_base: String,
}

/// `GET /admin/user/{u}/tokens`.
pub fn user_tokens(nav: Nav, user: &str, tokens: &[TokenView]) -> Result<Response, ApiError> {
    render(&UserTokensPage {
        nav,
        user: user.to_owned(),
        tokens: tokens.iter().map(TokenRow::of).collect(),
        revoke_base: format!("/admin/user/{user}/tokens/revoke/"),
    })
}

/// A configured provider and its switches, as the configuration page shows it.
pub struct ProviderRow {
    pub name: String,
    pub switches: ProviderSwitches,
}

pub struct RedirectRow {
    pub key: &'static str,
    pub label: &'static str,
    pub url: String,
}

#[derive(Template)]
#[template(path = "config.html")]
struct ConfigPage {
    nav: Nav,
    allow_login: bool,
    show_stack: bool,
    ignore_ip: bool,
    redirects: Vec<RedirectRow>,
    cache_minutes: i64,
    login_days: i64,
    agent_days: i64,
    dev_days: i64,
    serv_days: i64,
    providers: Vec<ProviderRow>,
    environments: Vec<EnvironmentRow>,
}

/// An alternate environment and its redirect URLs.
pub struct EnvironmentRow {
    pub name: String,
    pub redirects: Vec<RedirectRow>,
}

fn redirect_label(kind: RedirectKind) -> &'static str {
    match kind {
        RedirectKind::AllowedLogin => "Allowed post-login redirect URL prefix",
        RedirectKind::CompleteLogin => "Login completion page",
        RedirectKind::PostLink => "Page after linking",
        RedirectKind::CompleteLink => "Link completion page",
    }
}

/// The redirect URL fields of one environment's set.
fn redirect_rows(urls: &RedirectUrls) -> Vec<RedirectRow> {
    RedirectKind::ALL
        .into_iter()
        .map(|kind| RedirectRow {
            key: kind.key(),
            label: redirect_label(kind),
            url: urls.get(kind).map(ToString::to_string).unwrap_or_default(),
        })
        .collect()
}

/// `GET /admin/config`, with the configured providers' switches and the
/// environments' URLs.
pub fn config(nav: Nav, config: &ServerSettings, configured: &Providers) -> Result<Response, ApiError> {
    let lifetimes = &config.token_lifetimes;
    render(&ConfigPage {
        nav,
        allow_login: config.allow_login,
        show_stack: config.show_stack,
        ignore_ip: config.ignore_ip,
        redirects: redirect_rows(&config.redirects),
        cache_minutes: config.suggested_cache_ms / 60_000,
        login_days: lifetimes.login / DAY_MS,
        agent_days: lifetimes.agent / DAY_MS,
        dev_days: lifetimes.dev / DAY_MS,
        serv_days: lifetimes.serv / DAY_MS,
        providers: configured
            .names()
            .map(|name| ProviderRow { name: name.to_owned(), switches: config.provider(name) })
            .collect(),
        environments: configured
            .environments
            .names()
            .map(|name| EnvironmentRow {
                name: name.to_owned(),
                redirects: redirect_rows(&config.environments.get(name).cloned().unwrap_or_default()),
            })
            .collect(),
    })
}
