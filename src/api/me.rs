//! The signed-in person's own account (upstream `Me` and `CustomRoles`):
//! the profile page and its forms, dropping one's own roles, and the custom
//! role list. JSON with the `Authorization` header; a page for a browser
//! with the session cookie.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::pages::{self, Nav};
use super::request::{Body, Input, RequestContext, any_token};
use super::{AppState, views};
use crate::domain::names::is_blank;
use crate::domain::{Actor, AuthError, DisplayName, EmailAddress, ErrorType, Role, User, UserCommand};

/// `GET /me`: the profile page, or the user JSON with the forms' URLs.
pub async fn show(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    if context.wants_html() {
        return pages::account::me(&user);
    }
    let mut out = views::user(&user);
    out["userupdateurl"] = json!("me");
    out["unlinkurl"] = json!("me/unlink");
    out["roleurl"] = json!("me/roles");
    out["hasroles"] = json!(!user.roles.is_empty());
    out["unlink"] = json!(pages::account::may_unlink(&user));
    Ok(Json(out).into_response())
}

/// `POST /me` (form) and `PUT /me` (JSON): display name and email.
pub async fn update(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["display", "email"])?;
    let token = any_token(&context.headers)?;
    change_profile(&state, &context, &token, input.string("display")?, input.string("email")?).await
}

/// Sets the caller's display name and email; a blank field is left as it is
/// (shared with `PUT /api/V2/me`). The fields are checked before the token.
pub async fn change_profile(
    state: &AppState,
    context: &RequestContext,
    token: &str,
    display: Option<String>,
    email: Option<String>,
) -> Result<StatusCode, ApiError> {
    let display = if is_blank(display.as_deref()) { None } else { Some(DisplayName::parse(display.as_deref())?) };
    let email = if is_blank(email.as_deref()) { None } else { Some(EmailAddress::parse(email.as_deref())?) };
    let user = state.login_caller(token, None)?.user;
    if display.is_some() || email.is_some() {
        let metadata = context.metadata(&user.name, state.ignore_ip());
        state.ledger.execute::<User>(&user.name, UserCommand::UpdateProfile { display, email }, &metadata).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /me/roles`: drops roles the caller holds (`{"roles": [...]}` or a
/// form whose keys are role ids).
pub async fn remove_roles(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    let token = any_token(&context.headers)?;
    let mut remove = BTreeSet::new();
    match &input {
        Input::Json(json) => {
            for id in json.string_list("roles")?.unwrap_or_default() {
                let id = id.unwrap_or_default();
                remove.insert(Role::from_id(&id).ok_or_else(|| AuthError::new(ErrorType::NoSuchRole, id.clone()))?);
            }
        }
        Input::Form(form) => remove.extend(form.keys().filter_map(Role::from_id)),
    }
    let user = state.login_caller(&token, None)?.user;
    let actor = Actor { name: user.name.clone(), roles: user.roles.clone() };
    let metadata = context.metadata(&user.name, state.ignore_ip());
    let command = UserCommand::UpdateRoles { add: BTreeSet::new(), remove, actor, at: state.now() };
    state.ledger.execute::<User>(&user.name, command, &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /customroles`: every custom role, for any Login token.
pub async fn custom_roles(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let user = state.login_caller(&token, None)?.user;
    let model = state.ledger.model.read();
    let roles = model.users.custom_roles();
    if context.wants_html() {
        return pages::account::custom_roles(Nav::of(&user), roles.iter(), false);
    }
    Ok(Json(views::custom_roles(roles)).into_response())
}
