//! The server's configuration: viewing it, and changing its basic
//! settings, token lifetimes, providers' switches and environments'
//! redirect URLs, or resetting it to the settings the server started with.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::caller::administrator;
use crate::api::error::{ApiError, ErrorEnvelope};
use crate::api::pages::{self, Nav};
use crate::api::permissions::Action;
use crate::api::request::{Body, Deferred, Form, FormBody, Input, JsonBody, JsonObject, RequestContext};
use crate::api::{AppState, Caller};
use crate::app::admin;
use crate::domain::names::is_blank;
use crate::domain::server_config::{ConfigChange, DAY_MS, ProviderSwitches, RedirectKind, RedirectUrls};

use crate::domain::{AuthError, ErrorType, TokenKind};

/// The four redirect URL settings (`null`: none), named as
/// [`RedirectKind::key`] names them.
#[derive(Debug, Serialize, ToSchema)]
pub struct RedirectUrlsView {
    /// The prefix a login's redirect URL must start with.
    pub allowedloginredirect: Option<String>,
    /// Where a login that needs a choice continues.
    pub completeloginredirect: Option<String>,
    /// Where a finished link goes.
    pub postlinkredirect: Option<String>,
    /// Where a link that needs a choice continues.
    pub completelinkredirect: Option<String>,
}

impl RedirectUrlsView {
    fn of(urls: &RedirectUrls) -> Self {
        let url = |kind| urls.get(kind).cloned();
        Self {
            allowedloginredirect: url(RedirectKind::AllowedLogin),
            completeloginredirect: url(RedirectKind::CompleteLogin),
            postlinkredirect: url(RedirectKind::PostLink),
            completelinkredirect: url(RedirectKind::CompleteLink),
        }
    }
}

/// An identity provider's switches.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderSwitchesView {
    pub enabled: bool,
    pub forceloginchoice: bool,
    pub forcelinkchoice: bool,
}

/// The server's configuration as `GET /admin/config` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ServerConfigView {
    pub allowlogin: bool,
    pub showstack: bool,
    pub ignoreip: bool,
    /// The suggested token cache time, in minutes.
    pub tokensugcache: i64,
    /// Token lifetimes, in days.
    pub tokenlogin: i64,
    pub tokenagent: i64,
    pub tokendev: i64,
    pub tokenserv: i64,
    #[serde(flatten)]
    pub redirects: RedirectUrlsView,
    /// Each configured identity provider's switches, by name.
    pub providers: BTreeMap<String, ProviderSwitchesView>,
    /// Each configured alternate environment's redirect URLs, by name.
    pub environments: BTreeMap<String, RedirectUrlsView>,
}

/// The server's configuration.
#[utoipa::path(
    get,
    path = "/admin/config",
    tag = "admin",
    responses(
        (status = 200, description = "The configuration (a page for a browser).",
            content((ServerConfigView = "application/json"), (String = "text/html"))),
        (status = 403, description = "Not allowed to view the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn config(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::ViewConfig)?;
    let config = state.ledger.settings();
    if context.wants_html() {
        return pages::admin::config(Nav::of_caller(&caller), &config, &state.provider_flows.providers);
    }
    let providers = state
        .provider_flows
        .providers
        .names()
        .map(|name| {
            let switches = config.provider(name);
            let shown = ProviderSwitchesView {
                enabled: switches.enabled,
                forceloginchoice: switches.force_login_choice,
                forcelinkchoice: switches.force_link_choice,
            };
            (name.to_owned(), shown)
        })
        .collect();
    let environments = state
        .provider_flows
        .providers
        .environments
        .names()
        .map(|name| {
            let urls = config.environments.get(name).cloned().unwrap_or_default();
            (name.to_owned(), RedirectUrlsView::of(&urls))
        })
        .collect();
    let out = ServerConfigView {
        allowlogin: config.allow_login,
        showstack: config.show_stack,
        ignoreip: config.ignore_ip,
        tokensugcache: config.suggested_cache_ms / 60_000,
        tokenlogin: config.token_lifetimes.login / DAY_MS,
        tokenagent: config.token_lifetimes.agent / DAY_MS,
        tokendev: config.token_lifetimes.dev / DAY_MS,
        tokenserv: config.token_lifetimes.serv / DAY_MS,
        redirects: RedirectUrlsView::of(&config.redirects),
        providers,
        environments,
    };
    Ok(Json(out).into_response())
}

/// Records `changes` to the server's configuration by `caller` (204).
async fn record_config_changes(
    state: &AppState,
    context: &RequestContext,
    caller: &Caller,
    changes: Vec<ConfigChange>,
) -> Result<StatusCode, ApiError> {
    admin::change_config(&state.ledger, &caller.acting(context), changes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A redirect URL setting: blank is none; else an http(s) URL with a host.
fn redirect_url(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(text) = raw.map(crate::domain::names::java_trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(Some(text.to_owned())),
        _ => Err(AuthError::illegal(format!("Illegal URL: {text}")).into()),
    }
}

/// The four redirect URL members with their kinds, in [`RedirectKind::ALL`]'s order.
fn by_kind<T>(allowed_login: T, complete_login: T, post_link: T, complete_link: T) -> [(RedirectKind, T); 4] {
    [
        (RedirectKind::AllowedLogin, allowed_login),
        (RedirectKind::CompleteLogin, complete_login),
        (RedirectKind::PostLink, post_link),
        (RedirectKind::CompleteLink, complete_link),
    ]
}

/// Members of `POST /admin/config`'s body: an absent member is unchanged.
#[derive(ToSchema)]
pub struct ConfigRequest {
    allowlogin: Option<bool>,
    #[schema(value_type = Option<bool>)]
    showstack: Deferred<bool>,
    #[schema(value_type = Option<bool>)]
    ignoreip: Deferred<bool>,
    /// Settings to remove (a redirect URL, `ignoreip` or `showstack`), by member name.
    #[schema(value_type = Option<Vec<String>>)]
    remove: Option<Vec<Option<String>>>,
    /// An http(s) URL; blank leaves it as it is.
    #[schema(value_type = Option<String>)]
    allowedloginredirect: Deferred<String>,
    #[schema(value_type = Option<String>)]
    completeloginredirect: Deferred<String>,
    #[schema(value_type = Option<String>)]
    postlinkredirect: Deferred<String>,
    #[schema(value_type = Option<String>)]
    completelinkredirect: Deferred<String>,
}

impl JsonBody for ConfigRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // A setting `remove` names is never read (its type never answers); the
        // others' types answer in turn, each with its URL's check.
        let url = |kind: RedirectKind| json.string(kind.key());
        Ok(Self {
            allowlogin: json.boolean("allowlogin")?,
            showstack: json.boolean("showstack"),
            ignoreip: json.boolean("ignoreip"),
            remove: json.string_list("remove")?,
            allowedloginredirect: url(RedirectKind::AllowedLogin),
            completeloginredirect: url(RedirectKind::CompleteLogin),
            postlinkredirect: url(RedirectKind::PostLink),
            completelinkredirect: url(RedirectKind::CompleteLink),
        })
    }
}

/// Sets, or removes, the server's switches and redirect URLs.
///
/// `POST /admin/config` (JSON only, the header token only).
#[utoipa::path(
    post,
    path = "/admin/config",
    tag = "admin",
    security(("token" = [])),
    request_body = ConfigRequest,
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "An illegal URL or value, an unknown member.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn update_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let request: ConfigRequest = body.read()?;
    let remove: Vec<String> = request.remove.unwrap_or_default().into_iter().flatten().collect();
    let removing = |key: &str| remove.iter().any(|r| r == key);
    let mut changes = Vec::new();
    let urls = by_kind(
        request.allowedloginredirect,
        request.completeloginredirect,
        request.postlinkredirect,
        request.completelinkredirect,
    );
    for (kind, url) in urls {
        if removing(kind.key()) {
            changes.push(ConfigChange::RedirectUrl { which: kind, url: None });
        } else if let Some(url) = redirect_url(url?.as_deref())? {
            changes.push(ConfigChange::RedirectUrl { which: kind, url: Some(url) });
        }
    }
    let switches = [
        ("ignoreip", request.ignoreip, ConfigChange::IgnoreIp as fn(bool) -> ConfigChange),
        ("showstack", request.showstack, ConfigChange::ShowStack),
    ];
    for (key, value, change) in switches {
        if removing(key) {
            changes.push(change(false));
        } else if let Some(value) = value? {
            changes.push(change(value));
        }
    }
    if let Some(allow) = request.allowlogin {
        changes.push(ConfigChange::AllowLogin(allow));
    }
    let token = crate::api::request::required_header_token(&context.headers)?;
    let caller = state.login_caller(&token, Some(Action::ChangeConfig))?;
    record_config_changes(&state, &context, &caller, changes).await
}

/// Members of `POST /admin/config/token`'s body (JSON or form): each at least 1.
#[derive(ToSchema)]
pub struct TokenConfigRequest {
    /// The suggested token cache time, in minutes.
    #[schema(value_type = i64, required)]
    tokensugcache: Deferred<i64>,
    /// Login token lifetime, in days.
    #[schema(value_type = i64, required)]
    tokenlogin: Deferred<i64>,
    /// Agent token lifetime, in days.
    #[schema(value_type = i64, required)]
    tokenagent: Deferred<i64>,
    /// Developer token lifetime, in days.
    #[schema(value_type = i64, required)]
    tokendev: Deferred<i64>,
    /// Service token lifetime, in days.
    #[schema(value_type = i64, required)]
    tokenserv: Deferred<i64>,
}

impl JsonBody for TokenConfigRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // Each value's type answers in turn with its bound, as a form's (any text) must.
        Ok(Self {
            tokensugcache: json.integer("tokensugcache"),
            tokenlogin: json.integer("tokenlogin"),
            tokenagent: json.integer("tokenagent"),
            tokendev: json.integer("tokendev"),
            tokenserv: json.integer("tokenserv"),
        })
    }
}

impl FormBody for TokenConfigRequest {
    fn from_form(form: &Form) -> Self {
        let number = |key: &str| -> Deferred<i64> {
            match form.get(key).map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => v
                    .parse()
                    .map(Some)
                    .map_err(|_| ApiError::unreadable(format!("Unable to read the form: {key} must be a number"))),
            }
        };
        Self {
            tokensugcache: number("tokensugcache"),
            tokenlogin: number("tokenlogin"),
            tokenagent: number("tokenagent"),
            tokendev: number("tokendev"),
            tokenserv: number("tokenserv"),
        }
    }
}

/// Sets the suggested cache time (minutes) and the token lifetimes (days).
///
/// `POST /admin/config/token`: each at least 1.
#[utoipa::path(
    post,
    path = "/admin/config/token",
    tag = "admin",
    request_body(content(
        (TokenConfigRequest = "application/json"),
        (TokenConfigRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "A value missing, not a number or below 1, an unknown member.",
            body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn update_token_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let request: TokenConfigRequest = body.input()?.read()?;
    let fields = [
        (request.tokensugcache, "Suggested token cache time", None),
        (request.tokenlogin, "Login token expiration time", Some(TokenKind::Login)),
        (request.tokenagent, "Agent token expiration time", Some(TokenKind::Agent)),
        (request.tokendev, "Developer token expiration time", Some(TokenKind::Dev)),
        (request.tokenserv, "Server token expiration time", Some(TokenKind::Serv)),
    ];
    let mut changes = Vec::new();
    for (value, label, kind) in fields {
        let value = value?.unwrap_or(0);
        if value < 1 {
            return Err(AuthError::illegal(format!("{label} must be at least 1")).into());
        }
        changes.push(match kind {
            None => ConfigChange::SuggestedCacheTime { ms: value.saturating_mul(60_000) },
            Some(kind) => ConfigChange::TokenLifetime { kind, ms: value.saturating_mul(DAY_MS) },
        });
    }
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    record_config_changes(&state, &context, &caller, changes).await
}

/// The configuration page's form of `POST /admin/config/basic`.
#[derive(ToSchema)]
pub struct BasicConfigForm {
    /// A checkbox: present is on, absent is off.
    allowlogin: Option<String>,
    /// A checkbox: present is on, absent is off.
    showstack: Option<String>,
    /// A checkbox: present is on, absent is off.
    ignoreip: Option<String>,
    /// An http(s) URL; blank or absent removes it.
    allowedloginredirect: Option<String>,
    completeloginredirect: Option<String>,
    postlinkredirect: Option<String>,
    completelinkredirect: Option<String>,
}

impl FormBody for BasicConfigForm {
    fn from_form(form: &Form) -> Self {
        let url = |kind: RedirectKind| form.text(kind.key());
        Self {
            allowlogin: form.text("allowlogin"),
            showstack: form.text("showstack"),
            ignoreip: form.text("ignoreip"),
            allowedloginredirect: url(RedirectKind::AllowedLogin),
            completeloginredirect: url(RedirectKind::CompleteLogin),
            postlinkredirect: url(RedirectKind::PostLink),
            completelinkredirect: url(RedirectKind::CompleteLink),
        }
    }
}

/// Sets the switches and redirect URLs from the configuration page's form.
///
/// `POST /admin/config/basic`: a ticked box turns a switch on, an unticked
/// one off; a blank URL removes it.
#[utoipa::path(
    post,
    path = "/admin/config/basic",
    tag = "admin",
    request_body(content((BasicConfigForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "An illegal URL.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
        (status = 415, description = "Not a form.", body = ErrorEnvelope),
    ),
)]
pub async fn update_basic_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    // A form only: its unticked boxes are absent, which means off (JSON
    // clients use `POST /admin/config`, where absent means unchanged).
    let form: BasicConfigForm = body.form()?.read();
    let mut changes = vec![
        ConfigChange::AllowLogin(form.allowlogin.is_some()),
        ConfigChange::ShowStack(form.showstack.is_some()),
        ConfigChange::IgnoreIp(form.ignoreip.is_some()),
    ];
    let urls = by_kind(
        form.allowedloginredirect,
        form.completeloginredirect,
        form.postlinkredirect,
        form.completelinkredirect,
    );
    for (kind, url) in urls {
        changes.push(ConfigChange::RedirectUrl { which: kind, url: redirect_url(url.as_deref())? });
    }
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    record_config_changes(&state, &context, &caller, changes).await
}

/// Members of `POST /admin/config/provider`'s JSON body (an absent switch is off).
#[derive(ToSchema)]
pub struct ProviderConfigRequest {
    /// The configured identity provider's name.
    #[schema(value_type = String, required)]
    provider: Option<String>,
    enabled: Option<bool>,
    forceloginchoice: Option<bool>,
    forcelinkchoice: Option<bool>,
}

impl JsonBody for ProviderConfigRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            provider: json.string("provider")?,
            enabled: json.boolean("enabled")?,
            forceloginchoice: json.boolean("forceloginchoice")?,
            forcelinkchoice: json.boolean("forcelinkchoice")?,
        })
    }
}

/// The same as a form: each switch is a checkbox.
#[derive(ToSchema)]
pub struct ProviderConfigForm {
    /// The configured identity provider's name.
    #[schema(value_type = String, required)]
    provider: Option<String>,
    /// A checkbox: on when present and not blank.
    enabled: Option<String>,
    /// A checkbox: on when present and not blank.
    forceloginchoice: Option<String>,
    /// A checkbox: on when present and not blank.
    forcelinkchoice: Option<String>,
}

impl FormBody for ProviderConfigForm {
    fn from_form(form: &Form) -> Self {
        Self {
            provider: form.text("provider"),
            enabled: form.text("enabled"),
            forceloginchoice: form.text("forceloginchoice"),
            forcelinkchoice: form.text("forcelinkchoice"),
        }
    }
}

/// Sets a configured identity provider's switches.
///
/// `POST /admin/config/provider`: a form (`provider`, and boxes `enabled`,
/// `forceloginchoice`, `forcelinkchoice`, on when present and not blank) or
/// the same as JSON booleans.
#[utoipa::path(
    post,
    path = "/admin/config/provider",
    tag = "admin",
    request_body(content(
        (ProviderConfigRequest = "application/json"),
        (ProviderConfigForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "A missing provider, an unknown member.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token, or no such identity provider (50020).", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn update_provider_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let (name, switches) = match body.input()? {
        Input::Json(json) => {
            let request: ProviderConfigRequest = json.read()?;
            let on = |switch: Option<bool>| switch.unwrap_or(false);
            let switches = ProviderSwitches {
                enabled: on(request.enabled),
                force_login_choice: on(request.forceloginchoice),
                force_link_choice: on(request.forcelinkchoice),
            };
            (request.provider, switches)
        }
        Input::Form(form) => {
            let request: ProviderConfigForm = form.read();
            let on = |checkbox: Option<String>| !is_blank(checkbox.as_deref());
            let switches = ProviderSwitches {
                enabled: on(request.enabled),
                force_login_choice: on(request.forceloginchoice),
                force_link_choice: on(request.forcelinkchoice),
            };
            (request.provider, switches)
        }
    };
    if is_blank(name.as_deref()) {
        return Err(AuthError::missing("provider").into());
    }
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    let name = crate::domain::names::java_trim(name.as_deref().unwrap_or_default()).to_owned();
    if state.provider_flows.providers.get(&name).is_none() {
        return Err(AuthError::new(ErrorType::NoSuchIdentityProvider, name).into());
    }
    let changes = vec![ConfigChange::Provider { name, switches }];
    record_config_changes(&state, &context, &caller, changes).await
}

/// Members of `POST /admin/config/environment`'s body (JSON or form): a
/// blank or absent URL removes it.
#[derive(ToSchema)]
pub struct EnvironmentConfigRequest {
    /// The configured alternate environment's name.
    #[schema(value_type = String, required)]
    environment: Option<String>,
    /// An http(s) URL.
    allowedloginredirect: Option<String>,
    completeloginredirect: Option<String>,
    postlinkredirect: Option<String>,
    completelinkredirect: Option<String>,
}

impl JsonBody for EnvironmentConfigRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        let url = |kind: RedirectKind| json.string(kind.key());
        Ok(Self {
            environment: json.string("environment")?,
            allowedloginredirect: url(RedirectKind::AllowedLogin)?,
            completeloginredirect: url(RedirectKind::CompleteLogin)?,
            postlinkredirect: url(RedirectKind::PostLink)?,
            completelinkredirect: url(RedirectKind::CompleteLink)?,
        })
    }
}

impl FormBody for EnvironmentConfigRequest {
    fn from_form(form: &Form) -> Self {
        let url = |kind: RedirectKind| form.text(kind.key());
        Self {
            environment: form.text("environment"),
            allowedloginredirect: url(RedirectKind::AllowedLogin),
            completeloginredirect: url(RedirectKind::CompleteLogin),
            postlinkredirect: url(RedirectKind::PostLink),
            completelinkredirect: url(RedirectKind::CompleteLink),
        }
    }
}

/// Sets an alternate environment's four redirect URLs.
///
/// `POST /admin/config/environment` (form or JSON: `environment` and the URL
/// fields; a blank or absent URL removes it, so each post replaces the whole
/// set). The environment is checked before the caller, as upstream.
#[utoipa::path(
    post,
    path = "/admin/config/environment",
    tag = "admin",
    request_body(content(
        (EnvironmentConfigRequest = "application/json"),
        (EnvironmentConfigRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Changed."),
        (status = 400, description = "A missing or unknown environment, an illegal URL or member.",
            body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn update_environment_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let request: EnvironmentConfigRequest = body.input()?.read()?;
    let environment = request.environment;
    if is_blank(environment.as_deref()) {
        return Err(AuthError::missing("environment").into());
    }
    let environment = crate::domain::names::java_trim(environment.as_deref().unwrap_or_default()).to_owned();
    if !state.provider_flows.providers.environments.contains(&environment) {
        return Err(AuthError::new(ErrorType::NoSuchEnvironment, environment).into());
    }
    let mut changes = Vec::new();
    let urls = by_kind(
        request.allowedloginredirect,
        request.completeloginredirect,
        request.postlinkredirect,
        request.completelinkredirect,
    );
    for (which, url) in urls {
        let url = redirect_url(url.as_deref())?;
        changes.push(ConfigChange::EnvironmentRedirect { environment: environment.clone(), which, url });
    }
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    record_config_changes(&state, &context, &caller, changes).await
}

/// Sets every setting back to what this server starts a new log with.
///
/// `POST /admin/config/reset`: the built-in defaults, or the operator's `[initial]`.
#[utoipa::path(
    post,
    path = "/admin/config/reset",
    tag = "admin",
    responses(
        (status = 204, description = "Reset."),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn reset_config(State(state): State<AppState>, context: RequestContext) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    admin::reset_config(&state.ledger, &caller.acting(&context)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(config, update_config))
        .routes(routes!(update_basic_config))
        .routes(routes!(update_token_config))
        .routes(routes!(reset_config))
        .routes(routes!(update_provider_config))
        .routes(routes!(update_environment_config))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::request::members_of;

    #[test]
    fn the_redirect_members_are_the_redirect_keys() {
        let keys: Vec<String> = RedirectKind::ALL.iter().map(|k| k.key().to_owned()).collect();
        let has_all = |members: Vec<String>| keys.iter().all(|k| members.contains(k));
        assert!(has_all(members_of::<ConfigRequest>()));
        assert!(has_all(members_of::<BasicConfigForm>()));
        assert!(has_all(members_of::<EnvironmentConfigRequest>()));
        let shown = serde_json::to_value(RedirectUrlsView::of(&RedirectUrls::default())).unwrap_or_default();
        let shown: Vec<String> = shown.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
        assert_eq!(shown.len(), keys.len());
        assert!(has_all(shown));
    }
}
