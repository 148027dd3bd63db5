//! Test mode's endpoints (contract §8): creating throw-away users, tokens and
//! custom roles without credentials, and reading them back through the
//! test-mode mirrors of the standard API. Request validation runs first; only
//! then does a disabled test mode answer 400 70000, as upstream orders it.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::request::{Body, FirstQuery, required_header_token};
use super::v2::{ListQuery, lookup_names};
use super::{AppState, root, views};
use crate::app::test_mode::TestLedger;
use crate::app::tokens::NewToken;
use crate::domain::names::parse_role_description;
use crate::domain::test_mode::{TestCustomRole, TestUser};
use crate::domain::test_mode::{TestCustomRoleCommand, TestUserCommand};
use crate::domain::token::{ClientInfo, Mfa};
use crate::domain::{AuthError, CustomRoleId, DisplayName, ErrorType, Role, TokenKind, TokenName, UserName};
use crate::projections::test_mode::TestUserRecord;
use crate::projections::{TestProjections, TokenView, hash_token};

/// The test-mode ledger; 400 70000 when test mode is off.
pub fn ledger(state: &AppState) -> Result<&Arc<TestLedger>, ApiError> {
    state
        .test_mode
        .as_ref()
        .ok_or_else(|| AuthError::new(ErrorType::UnsupportedOperation, "Test mode is not enabled").into())
}

/// The valid test token with this value (after the test-mode check).
pub fn token_view(state: &AppState, token: &str) -> Result<TokenView, ApiError> {
    let ledger = ledger(state)?;
    let now = state.now();
    ledger
        .model
        .read()
        .tokens
        .find(&hash_token(token), now)
        .ok_or_else(|| AuthError::bare(ErrorType::InvalidToken).into())
}

/// A test user as the user JSON: no email, never logged in; custom roles that still exist.
fn user_json(model: &TestProjections, user: &TestUserRecord, now: i64) -> Value {
    views::UserJson {
        name: &user.name,
        anon_id: user.anon_id,
        display: user.display.as_str(),
        email: None,
        created: user.created,
        last_login: None,
        roles: &user.roles,
        custom_roles: model.custom_roles_of(user, now),
        local: true,
        identities: Value::Array(Vec::new()),
        policy_ids: Value::Array(Vec::new()),
    }
    .render()
}

/// The live test user as JSON; 404 when there is none.
fn user_answer(ledger: &TestLedger, name: &UserName, now: i64) -> Result<Json<Value>, ApiError> {
    let model = ledger.model.read();
    let user = model.user(name, now).ok_or_else(|| AuthError::no_such_user(name.as_str()))?;
    Ok(Json(user_json(&model, user, now)))
}

/// `GET /testmode` (works with test mode off).
pub async fn root(State(state): State<AppState>) -> Json<Value> {
    Json(root::root_document(&state))
}

/// `POST /testmode/api/V2/testmodeonly/user` `{"user", "display"}`.
pub async fn create_user(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = body.json()?;
    // Members are read (and type-checked) first, as Jackson maps the whole body before anything else.
    let (name, display) = (body.string("user")?, body.string("display")?);
    body.reject_unexpected(&["user", "display"])?;
    let name = UserName::parse(name.as_deref())?;
    let display = DisplayName::parse(display.as_deref())?;
    let ledger = ledger(&state)?;
    ledger.create_user(&name, display).await?;
    user_answer(ledger, &name, state.now())
}

/// `GET /testmode/api/V2/testmodeonly/user/{name}`.
pub async fn get_user(State(state): State<AppState>, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let name = UserName::parse(Some(&name))?;
    let ledger = ledger(&state)?;
    user_answer(ledger, &name, state.now())
}

/// `POST /testmode/api/V2/testmodeonly/token` `{"user", "type", "name"?, "mfa"?}`
/// (`mfa`: `Used`, `NotUsed` or `Unknown`, the default).
pub async fn create_token(State(state): State<AppState>, body: Body) -> Result<Json<Value>, ApiError> {
    let body = body.json()?;
    let (user, name, kind) = (body.string("user")?, body.string("name")?, body.string("type")?);
    let mfa = body.string("mfa")?;
    body.reject_unexpected(&["user", "name", "type", "mfa"])?;
    let user = UserName::parse(user.as_deref())?;
    let name = match name {
        Some(name) => Some(TokenName::parse(Some(&name))?),
        None => None,
    };
    let kind = kind
        .as_deref()
        .and_then(TokenKind::from_id)
        .ok_or_else(|| AuthError::illegal(format!("Invalid token type: {}", kind.as_deref().unwrap_or("null"))))?;
    let mfa = match mfa.as_deref() {
        None => Mfa::Unknown,
        Some(text) => Mfa::parse(text).ok_or_else(|| AuthError::illegal(format!("Invalid MFA status: {text}")))?,
    };
    let grant = NewToken { user, kind, name, custom: Default::default(), client: ClientInfo::default(), mfa };
    let (value, view) = ledger(&state)?.create_token(grant).await?;
    Ok(Json(views::new_api_token(&view, &value, state.cache_for())))
}

/// `GET /testmode/api/V2/token`.
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let token = required_header_token(&headers)?;
    let view = token_view(&state, &token)?;
    Ok(Json(views::api_token(&view, state.cache_for())))
}

/// `GET /testmode/api/V2/me`: the token's owner; 404 once the owner's hour is over.
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let token = required_header_token(&headers)?;
    let view = token_view(&state, &token)?;
    user_answer(ledger(&state)?, &view.user, state.now())
}

/// `GET /testmode/api/V2/users?list=`: display names of live test users.
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    FirstQuery(query): FirstQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let names = lookup_names(query.list.as_deref(), &headers, |token| token_view(&state, token).map(drop))?;
    let now = state.now();
    let model = ledger(&state)?.model.read();
    let found: Map<String, Value> =
        names.iter().filter_map(|name| model.user(name, now)).map(|u| (u.name.to_string(), json!(u.display))).collect();
    Ok(Json(Value::Object(found)))
}

/// `POST /testmode/api/V2/testmodeonly/customroles` `{"id", "desc"}`: creates or
/// replaces a role, whose hour starts again.
pub async fn set_custom_role(State(state): State<AppState>, body: Body) -> Result<StatusCode, ApiError> {
    let body = body.json()?;
    let (id, description) = (body.string("id")?, body.string("desc")?);
    body.reject_unexpected(&["id", "desc"])?;
    let id = CustomRoleId::parse(id.as_deref())?;
    let description = parse_role_description(description.as_deref())?;
    let ledger = ledger(&state)?;
    let now = state.now();
    ledger.execute::<TestCustomRole>(&id, TestCustomRoleCommand::Set { id: id.clone(), description, now }).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /testmode/api/V2/testmodeonly/customroles`.
pub async fn custom_roles(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let ledger = ledger(&state)?;
    let now = state.now();
    let model = ledger.model.read();
    Ok(Json(views::custom_roles(model.custom_roles(now))))
}

/// Reads a role list member where `null` items are refused with `message`.
fn list_without_nulls(items: Option<Vec<Option<String>>>, message: &str) -> Result<Vec<String>, ApiError> {
    items.unwrap_or_default().into_iter().map(|item| item.ok_or_else(|| AuthError::illegal(message).into())).collect()
}

/// `PUT /testmode/api/V2/testmodeonly/userroles` `{"user", "roles"?, "customroles"?}`:
/// replaces the user's roles (absent lists mean none).
pub async fn set_user_roles(State(state): State<AppState>, body: Body) -> Result<StatusCode, ApiError> {
    let body = body.json()?;
    let (user, roles, custom) = (body.string("user")?, body.string_list("roles")?, body.string_list("customroles")?);
    body.reject_unexpected(&["user", "roles", "customroles"])?;
    let roles = list_without_nulls(roles, "Null item in roles")?;
    let custom = list_without_nulls(custom, "Null item in custom roles")?;
    let user = UserName::parse(user.as_deref())?;
    let mut built_in = BTreeSet::new();
    for id in &roles {
        // Root is not a role a test user can hold (upstream: a 500 from its storage layer).
        match Role::from_id(id).filter(|r| *r != Role::Root) {
            Some(role) => built_in.insert(role),
            None => return Err(AuthError::illegal(format!("Invalid role id: {id}")).into()),
        };
    }
    let ledger = ledger(&state)?;
    let now = state.now();
    let mut custom_roles = BTreeSet::new();
    {
        let model = ledger.model.read();
        for id in &custom {
            let known = CustomRoleId::parse(Some(id)).ok().filter(|id| model.has_custom_role(id, now));
            match known {
                Some(id) => custom_roles.insert(id),
                None => return Err(AuthError::new(ErrorType::NoSuchRole, id.as_str()).into()),
            };
        }
    }
    let command = TestUserCommand::ReplaceRoles { user: user.clone(), roles: built_in, custom_roles, now };
    ledger.execute::<TestUser>(&user, command).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /testmode/api/V2/testmodeonly/clear`: forgets all test data (204 even with test mode off).
pub async fn clear(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    if let Some(ledger) = &state.test_mode {
        ledger.clear().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}
