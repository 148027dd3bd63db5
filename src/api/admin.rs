//! Administration (upstream `Admin` resource): accounts, roles, custom roles,
//! disabling, password resets, other users' tokens, revoke-all and the
//! server configuration. Each takes JSON with the `Authorization` header or a
//! form with the session cookie, and answers JSON. Who may do what is the
//! permission table's decision; the grant and reset rules are the domain's.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::error::ApiError;
use super::pages::{self, Nav};
use super::permissions;
use super::permissions::Action;
use super::request::{Body, Input, RequestContext, any_token};
use super::tokens::{no_content_clearing_cookie, owned_token, revoke_token};
use super::{AppState, Caller, views};
use crate::app::policies;
use crate::domain::names::{check_length, is_blank, parse_role_description};
use crate::domain::server_config::{ConfigChange, DAY_MS, ProviderSwitches, RedirectKind};
use crate::domain::token::RevocationReason;
use crate::domain::{CustomRole, PolicyId, ServerConfig, System, User};

use crate::app::accounts::{self, NewLocalAccount};
use crate::domain::{
    Actor, AuthError, CustomRoleCommand, CustomRoleId, DisplayName, EmailAddress, ErrorType, Role, ServerConfigCommand,
    SystemCommand, TokenKind, UserCommand, UserName,
};
use crate::projections::UserRecord;
use crate::projections::user_directory::SearchSpec;

fn actor(caller: &Caller) -> Actor {
    Actor { name: caller.user.name.clone(), roles: caller.user.roles.clone() }
}

/// The calling administrator, checked for `action`.
pub(super) fn administrator(state: &AppState, context: &RequestContext, action: Action) -> Result<Caller, ApiError> {
    let token = any_token(&context.headers)?;
    state.login_caller(&token, Some(action))
}

/// The named user (404 `No such user: <name>` when absent).
pub(super) fn target(state: &AppState, name: &UserName) -> Result<UserRecord, ApiError> {
    state.ledger.model.read().users.get(name).cloned().ok_or_else(|| AuthError::no_such_user(name.as_str()).into())
}

pub(super) fn parse_user(raw: &str) -> Result<UserName, ApiError> {
    Ok(UserName::parse(Some(raw))?)
}

pub async fn create_local_account(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Response, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["user", "display", "email"])?;
    let token = any_token(&context.headers)?;
    let (user, display, email) = (input.string("user")?, input.string("display")?, input.string("email")?);
    let name = UserName::parse(user.as_deref())?;
    let created = name.clone();
    let display_name = DisplayName::parse(display.as_deref())?;
    let email_address = EmailAddress::parse(email.as_deref())?;
    let caller = state.login_caller(&token, Some(Action::CreateLocalAccount))?;
    let account = NewLocalAccount { user: name, display: display_name, email: email_address };
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    let temporary = accounts::create_local_account(&state.ledger, account, caller.name(), &metadata).await?;
    if context.wants_html() {
        let display = display.unwrap_or_default();
        return pages::admin::account_created(Nav::of_caller(&caller), created.as_str(), &display, &temporary);
    }
    Ok(Json(json!({ "user": user, "display": display, "email": email, "pwd": temporary })).into_response())
}

pub async fn user(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ViewUser)?;
    let record = target(&state, &name)?;
    if !context.wants_html() {
        return Ok(Json(views::admin_user(&record)).into_response());
    }
    let model = state.ledger.model.read();
    let roles = &caller.user.roles;
    // Certificates only for those who may list them through the API too.
    let certificates = match permissions::allows(Action::ViewCertificates, roles) {
        true => Some(model.access.user_certificates(&name, MAX_CERTIFICATES_SHOWN)),
        false => None,
    };
    let facts = pages::admin::UserFacts {
        reset_required: model.users.reset_required(&record),
        custom_roles: model.users.custom_roles(),
        certificates,
        now: state.now(),
    };
    pages::admin::user(&caller.user, &record, facts)
}

/// The user page lists at most this many certificates, newest first.
const MAX_CERTIFICATES_SHOWN: usize = 50;

/// The built-in roles a body asks for: `{"roles": [...]}` or form keys named after roles.
fn requested_roles(input: &Input) -> Result<BTreeSet<Role>, ApiError> {
    match input {
        Input::Json(json) => {
            json.reject_unexpected(&["roles"])?;
            let mut roles = BTreeSet::new();
            for id in json.string_list("roles")?.unwrap_or_default() {
                let id = id.ok_or_else(|| AuthError::illegal("Null item in roles"))?;
                roles.insert(Role::from_id(&id).ok_or_else(|| AuthError::new(ErrorType::NoSuchRole, id))?);
            }
            Ok(roles)
        }
        Input::Form(form) => Ok(form.keys().filter_map(Role::from_id).filter(|r| *r != Role::Root).collect()),
    }
}

/// Replaces the user's built-in roles with the requested set (Root never changes here).
pub async fn set_roles(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let wanted = requested_roles(&body.input()?)?;
    let caller = administrator(&state, &context, Action::ChangeRoles)?;
    let current = target(&state, &name)?.roles;
    let add: BTreeSet<Role> = wanted.difference(&current).copied().collect();
    let remove: BTreeSet<Role> = current.difference(&wanted).copied().filter(|r| *r != Role::Root).collect();
    let command = UserCommand::UpdateRoles { add, remove, actor: actor(&caller), at: state.now() };
    state.ledger.execute::<User>(&name, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replaces the user's custom roles with the requested set.
pub async fn set_custom_roles(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let input = body.input()?;
    let existing = state.ledger.model.read().users.custom_roles().clone();
    let wanted: BTreeSet<CustomRoleId> = match &input {
        Input::Json(json) => {
            json.reject_unexpected(&["customroles"])?;
            let mut wanted = BTreeSet::new();
            for id in json.string_list("customroles")?.unwrap_or_default() {
                let id = id.ok_or_else(|| AuthError::illegal("Null item in custom roles"))?;
                wanted.insert(CustomRoleId::parse(Some(&id))?);
            }
            wanted
        }
        Input::Form(form) => existing.keys().filter(|id| form.has(id.as_str())).cloned().collect(),
    };
    let caller = administrator(&state, &context, Action::ChangeCustomRolesOfUser)?;
    if let Some(missing) = wanted.iter().find(|id| !existing.contains_key(*id)) {
        return Err(AuthError::new(ErrorType::NoSuchRole, missing.as_str()).into());
    }
    let current = target(&state, &name)?.custom_roles;
    let add = wanted.difference(&current).cloned().collect();
    let remove = current.difference(&wanted).cloned().collect();
    let command = UserCommand::UpdateCustomRoles { add, remove, by: caller.name().clone(), at: state.now() };
    state.ledger.execute::<User>(&name, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn custom_roles(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::ListCustomRoles)?;
    let model = state.ledger.model.read();
    let roles = model.users.custom_roles();
    if context.wants_html() {
        let manage = permissions::allows(Action::SetCustomRole, &caller.user.roles);
        return pages::account::custom_roles(Nav::of_caller(&caller), roles.iter(), manage);
    }
    Ok(Json(views::custom_roles(roles)).into_response())
}

pub async fn set_custom_role(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["id", "desc"])?;
    let id = CustomRoleId::parse(input.string("id")?.as_deref())?;
    let description = parse_role_description(input.string("desc")?.as_deref())?;
    let caller = administrator(&state, &context, Action::SetCustomRole)?;
    let command = CustomRoleCommand::Set { id: id.clone(), description, by: caller.name().clone(), at: state.now() };
    state.ledger.execute::<CustomRole>(&id, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn delete_custom_role(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["id"])?;
    let raw = input.string("id")?;
    if is_blank(raw.as_deref()) {
        return Err(AuthError::missing("roleId cannot be null or empty").into());
    }
    let caller = administrator(&state, &context, Action::DeleteCustomRole)?;
    let id = CustomRoleId::parse(raw.as_deref())?;
    let command = CustomRoleCommand::Delete { id: id.clone(), by: caller.name().clone(), at: state.now() };
    state.ledger.execute::<CustomRole>(&id, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `{"disable": true, "disabledreason": "..."}` disables (the reason is required); `false` enables.
pub async fn disable(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let input = body.input()?;
    let (disable, reason) = match &input {
        Input::Json(json) => {
            json.reject_unexpected(&["disable", "disabledreason"])?;
            let disable = json.boolean("disable")?.ok_or_else(|| AuthError::missing("disable"))?;
            (disable, json.string("disabledreason")?)
        }
        Input::Form(form) => (form.has("disable"), form.get("disabledreason").map(str::to_owned)),
    };
    let reason = if disable { Some(check_length(reason.as_deref(), "reason", 1000)?.to_owned()) } else { None };
    let caller = administrator(&state, &context, Action::DisableOrEnableUser)?;
    target(&state, &name)?;
    let at = state.now();
    // The reason is the event's, and the request's too (auditors filter on metadata).
    let mut metadata = context.metadata(caller.name(), state.ignore_ip());
    metadata.reason = reason.clone();
    let command = match reason {
        Some(reason) => UserCommand::Disable { reason, actor: actor(&caller), at },
        None => UserCommand::Enable { actor: actor(&caller), at },
    };
    state.ledger.execute::<User>(&name, command, &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn force_reset(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ForcePasswordReset)?;
    target(&state, &name)?;
    let end_sessions = state.ledger.force_reset_ends_sessions();
    let command = UserCommand::ForceReset { actor: actor(&caller), at: state.now(), end_sessions };
    state.ledger.execute::<User>(&name, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /admin/user/{u}/unlock`: clears the account's wrong-password count,
/// its throttle and a second-factor lock (Admin).
pub async fn unlock(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ClearLoginThrottle)?;
    target(&state, &name)?;
    let command = UserCommand::ClearLoginThrottle { by: caller.name().clone(), at: state.now() };
    state.ledger.execute::<User>(&name, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn force_reset_all(State(state): State<AppState>, context: RequestContext) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ForceAllPasswordResets)?;
    let end_sessions = state.ledger.force_reset_ends_sessions();
    let command = SystemCommand::ForceAllPasswordResets { by: caller.name().clone(), at: state.now(), end_sessions };
    state.ledger.execute::<System>((), command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets a new temporary password, which must be changed at the next login.
pub async fn reset_password(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ResetPassword)?;
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    let temporary = accounts::reset_to_temporary(&state.ledger, &actor(&caller), &name, &metadata).await?;
    if context.wants_html() {
        return pages::admin::password_reset(Nav::of_caller(&caller), name.as_str(), &temporary);
    }
    Ok(Json(json!({ "user": name, "pwd": temporary })).into_response())
}

pub async fn user_tokens(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ViewUserTokens)?;
    let tokens = state.ledger.model.read().tokens.tokens_of(&name, state.now());
    if context.wants_html() {
        return pages::admin::user_tokens(Nav::of_caller(&caller), name.as_str(), &tokens);
    }
    let tokens: Vec<Value> = tokens.iter().map(views::ui_token).collect();
    Ok(Json(json!({ "user": name, "tokens": tokens })).into_response())
}

pub async fn revoke_user_token(
    State(state): State<AppState>,
    context: RequestContext,
    Path((user, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::RevokeUserTokens)?;
    let token = owned_token(&state, &name, &id)?;
    revoke_token(&state, &token, caller.name(), RevocationReason::Administrator, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn revoke_user_tokens(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::RevokeUserTokens)?;
    if state.ledger.model.read().users.get(&name).is_some() {
        let command = UserCommand::RevokeAllTokens { by: caller.name().clone(), at: state.now() };
        state.ledger.execute::<User>(&name, command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Invalidates every token of every user (one event), the caller's included.
pub async fn revoke_all(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::RevokeAllTokens)?;
    let command = SystemCommand::RevokeAllTokens { by: caller.name().clone(), at: state.now() };
    state.ledger.execute::<System>((), command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(no_content_clearing_cookie(&context))
}

pub async fn view_token(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Response, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["token"])?;
    let token = input.string("token")?;
    if is_blank(token.as_deref()) {
        return Err(AuthError::missing("token").into());
    }
    let caller = administrator(&state, &context, Action::ViewToken)?;
    let view = state.token_view(crate::domain::names::java_trim(token.as_deref().unwrap_or_default()))?;
    if context.wants_html() {
        return pages::admin::token(Nav::of_caller(&caller), &view);
    }
    Ok(Json(views::ui_token(&view)).into_response())
}

pub async fn config(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::ViewConfig)?;
    let config = state.ledger.model.read().config.clone();
    if context.wants_html() {
        return pages::admin::config(Nav::of_caller(&caller), &config, &state.sign_in.providers);
    }
    let mut out = json!({
        "allowlogin": config.allow_login,
        "showstack": config.show_stack,
        "ignoreip": config.ignore_ip,
        "tokensugcache": config.suggested_cache_ms / 60_000,
        "tokenlogin": config.token_lifetimes.login / DAY_MS,
        "tokenagent": config.token_lifetimes.agent / DAY_MS,
        "tokendev": config.token_lifetimes.dev / DAY_MS,
        "tokenserv": config.token_lifetimes.serv / DAY_MS,
    });
    for kind in RedirectKind::ALL {
        out[kind.key()] = json!(config.redirects.get(kind));
    }
    let providers: serde_json::Map<String, Value> = state
        .sign_in
        .providers
        .names()
        .map(|name| {
            let switches = config.provider(name);
            let shown = json!({
                "enabled": switches.enabled,
                "forceloginchoice": switches.force_login_choice,
                "forcelinkchoice": switches.force_link_choice,
            });
            (name.to_owned(), shown)
        })
        .collect();
    out["providers"] = Value::Object(providers);
    let environments: serde_json::Map<String, Value> = state
        .sign_in
        .providers
        .environments
        .names()
        .map(|name| {
            let urls = config.environments.get(name).cloned().unwrap_or_default();
            let shown: serde_json::Map<String, Value> =
                RedirectKind::ALL.iter().map(|k| (k.key().to_owned(), json!(urls.get(*k)))).collect();
            (name.to_owned(), Value::Object(shown))
        })
        .collect();
    out["environments"] = Value::Object(environments);
    Ok(Json(out).into_response())
}

/// Records a change of the server's configuration by `caller` (204).
async fn record_config(
    state: &AppState,
    context: &RequestContext,
    caller: &Caller,
    command: ServerConfigCommand,
) -> Result<StatusCode, ApiError> {
    state.ledger.execute::<ServerConfig>((), command, &context.metadata(caller.name(), state.ignore_ip())).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Records `changes` to the server's configuration (those that alter nothing are dropped).
async fn record_config_changes(
    state: &AppState,
    context: &RequestContext,
    caller: &Caller,
    changes: Vec<ConfigChange>,
) -> Result<StatusCode, ApiError> {
    let command = ServerConfigCommand::Update { changes, by: caller.name().clone(), at: state.now() };
    record_config(state, context, caller, command).await
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

/// `POST /admin/config` (JSON): set, or `remove`, the switches and redirect URLs.
pub async fn update_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = body.json()?;
    let mut keys: Vec<&str> = vec!["allowlogin", "showstack", "ignoreip", "remove"];
    keys.extend(RedirectKind::ALL.iter().map(|k| k.key()));
    body.reject_unexpected(&keys)?;
    let remove: Vec<String> = body.string_list("remove")?.unwrap_or_default().into_iter().flatten().collect();
    let removing = |key: &str| remove.iter().any(|r| r == key);
    let mut changes = Vec::new();
    for kind in RedirectKind::ALL {
        if removing(kind.key()) {
            changes.push(ConfigChange::RedirectUrl { which: kind, url: None });
        } else if let Some(url) = redirect_url(body.string(kind.key())?.as_deref())? {
            changes.push(ConfigChange::RedirectUrl { which: kind, url: Some(url) });
        }
    }
    for (key, change) in
        [("ignoreip", ConfigChange::IgnoreIp as fn(bool) -> ConfigChange), ("showstack", ConfigChange::ShowStack)]
    {
        if removing(key) {
            changes.push(change(false));
        } else if let Some(value) = body.boolean(key)? {
            changes.push(change(value));
        }
    }
    if let Some(allow) = body.boolean("allowlogin")? {
        changes.push(ConfigChange::AllowLogin(allow));
    }
    let token = super::request::required_header_token(&context.headers)?;
    let caller = state.login_caller(&token, Some(Action::ChangeConfig))?;
    record_config_changes(&state, &context, &caller, changes).await
}

/// `POST /admin/config/token`: cache time in minutes, lifetimes in days, each at least 1.
pub async fn update_token_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["tokensugcache", "tokenlogin", "tokenagent", "tokendev", "tokenserv"])?;
    let number = |key: &str| -> Result<i64, ApiError> {
        match &input {
            Input::Json(json) => Ok(json.integer(key)?.unwrap_or(0)),
            Input::Form(form) => match form.get(key).map(str::trim).filter(|v| !v.is_empty()) {
                None => Ok(0),
                Some(v) => v
                    .parse()
                    .map_err(|_| ApiError::unreadable(format!("Unable to read the form: {key} must be a number"))),
            },
        }
    };
    let fields = [
        ("tokensugcache", "Suggested token cache time", None),
        ("tokenlogin", "Login token expiration time", Some(TokenKind::Login)),
        ("tokenagent", "Agent token expiration time", Some(TokenKind::Agent)),
        ("tokendev", "Developer token expiration time", Some(TokenKind::Dev)),
        ("tokenserv", "Server token expiration time", Some(TokenKind::Serv)),
    ];
    let mut changes = Vec::new();
    for (key, label, kind) in fields {
        let value = number(key)?;
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

/// `POST /admin/config/basic` (the configuration page's form): a ticked box
/// turns a switch on, an unticked one off; a blank URL removes it.
pub async fn update_basic_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    // A form only: its unticked boxes are absent, which means off (JSON
    // clients use `POST /admin/config`, where absent means unchanged).
    let form = body.form()?;
    let mut changes = vec![
        ConfigChange::AllowLogin(form.has("allowlogin")),
        ConfigChange::ShowStack(form.has("showstack")),
        ConfigChange::IgnoreIp(form.has("ignoreip")),
    ];
    for kind in RedirectKind::ALL {
        changes.push(ConfigChange::RedirectUrl { which: kind, url: redirect_url(form.get(kind.key()))? });
    }
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    record_config_changes(&state, &context, &caller, changes).await
}

/// `POST /admin/config/provider`: a configured provider's switches — a form
/// (`provider`, and boxes `enabled`, `forceloginchoice`, `forcelinkchoice`,
/// on when present and not blank) or the same as JSON booleans.
pub async fn update_provider_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["provider", "enabled", "forceloginchoice", "forcelinkchoice"])?;
    let name = input.string("provider")?;
    if is_blank(name.as_deref()) {
        return Err(AuthError::missing("provider").into());
    }
    let on = |key: &str| -> Result<bool, ApiError> {
        match &input {
            Input::Form(form) => Ok(form.get(key).is_some_and(|v| !is_blank(Some(v)))),
            Input::Json(json) => Ok(json.boolean(key)?.unwrap_or(false)),
        }
    };
    let switches = ProviderSwitches {
        enabled: on("enabled")?,
        force_login_choice: on("forceloginchoice")?,
        force_link_choice: on("forcelinkchoice")?,
    };
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    let name = crate::domain::names::java_trim(name.as_deref().unwrap_or_default()).to_owned();
    if state.sign_in.providers.get(&name).is_none() {
        return Err(AuthError::new(ErrorType::NoSuchIdentityProvider, name).into());
    }
    let changes = vec![ConfigChange::Provider { name, switches }];
    record_config_changes(&state, &context, &caller, changes).await
}

/// `POST /admin/config/environment`: an alternate environment's four
/// redirect URLs (form or JSON: `environment` and the URL fields; a blank or
/// absent URL removes it, so each post replaces the whole set). The
/// environment is checked before the caller, as upstream.
pub async fn update_environment_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    let mut keys: Vec<&str> = vec!["environment"];
    keys.extend(RedirectKind::ALL.iter().map(|k| k.key()));
    input.reject_unexpected(&keys)?;
    let environment = input.string("environment")?;
    if is_blank(environment.as_deref()) {
        return Err(AuthError::missing("environment").into());
    }
    let environment = crate::domain::names::java_trim(environment.as_deref().unwrap_or_default()).to_owned();
    if !state.sign_in.providers.environments.contains(&environment) {
        return Err(AuthError::new(ErrorType::NoSuchEnvironment, environment).into());
    }
    let mut changes = Vec::new();
    for which in RedirectKind::ALL {
        let url = redirect_url(input.string(which.key())?.as_deref())?;
        changes.push(ConfigChange::EnvironmentRedirect { environment: environment.clone(), which, url });
    }
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    record_config_changes(&state, &context, &caller, changes).await
}

/// `POST /admin/config/reset`: every setting back to what this server starts
/// a new log with (the built-in defaults, or the operator's `[initial]`).
pub async fn reset_config(State(state): State<AppState>, context: RequestContext) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    let to = Box::new(state.ledger.initial_settings().clone());
    let command = ServerConfigCommand::Reset { to, by: caller.name().clone(), at: state.now() };
    record_config(&state, &context, &caller, command).await
}

/// `GET /admin`: search, token lookup and the emergency measures (any administrator).
pub async fn start(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::ViewUser)?;
    let model = state.ledger.model.read();
    pages::admin::start(&caller.user, model.users.custom_roles())
}

/// `POST /admin/search` (form `prefix`, boxes `username`, `displayname`, role
/// ids and `crole_<id>`): users matching the prefix — all users when it is
/// blank — holding every ticked role; disabled users included.
pub async fn search(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let form = body.form()?;
    let prefix = form.get("prefix").map(crate::domain::names::java_trim).unwrap_or_default().to_owned();
    let roles: BTreeSet<Role> = form.keys().filter_map(Role::from_id).filter(|r| *r != Role::Root).collect();
    let mut custom_roles = BTreeSet::new();
    for id in form.keys().filter_map(|k| k.strip_prefix("crole_")) {
        custom_roles.insert(CustomRoleId::parse(Some(id))?);
    }
    let fields: Vec<&str> = ["username", "displayname"].into_iter().filter(|f| form.has(f)).collect();
    let caller = administrator(&state, &context, Action::ViewUser)?;
    let model = state.ledger.model.read();
    let spec = match prefix.is_empty() {
        true => None,
        false => Some(SearchSpec::parse(&prefix, Some(&fields.join(",")), model.users.rule())?),
    };
    let found = model.users.admin_search(spec.as_ref(), &roles, &custom_roles);
    if context.wants_html() {
        return pages::admin::search_results(Nav::of_caller(&caller), &prefix, &found);
    }
    let users: Vec<Value> =
        found.iter().map(|u| json!({"user": u.name, "display": u.display, "disabled": u.is_disabled()})).collect();
    Ok(Json(json!({ "users": users })).into_response())
}

/// `GET /admin/localaccount`: the form that creates a local account.
pub async fn local_account_page(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::CreateLocalAccount)?;
    pages::admin::local_account(Nav::of_caller(&caller))
}

/// `POST /admin/policyid` (form `policyid`, or JSON): removes a policy id from every user (an Admin).
pub async fn remove_policy_id(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["policyid"])?;
    let token = any_token(&context.headers)?;
    let id = PolicyId::parse(input.string("policyid")?.as_deref())?;
    let caller = state.login_caller(&token, Some(Action::RemovePolicyId))?;
    let metadata = context.metadata(caller.name(), state.ignore_ip());
    policies::remove_policy_id(&state.ledger, &id, caller.name(), &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}
