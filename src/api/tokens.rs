//! The caller's own tokens and session (upstream `Tokens`, `Logout`, `Me`):
//! listing, developer/service tokens, revocation, logout, and dropping one's
//! own roles. The token comes from the `Authorization` header or the session
//! cookie.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use uuid::Uuid;

use super::error::ApiError;
use super::pages;
use super::permissions::{self, Action};
use super::request::{
    Body, Input, RequestContext, any_token, cookie_token, header_token, parse_context_string, removed_session_cookie,
};
use super::{AppState, require_login, views};
use crate::app::tokens::{self, NewToken};
use crate::domain::User;
use crate::domain::names::parse_custom_context;
use crate::domain::token::{Mfa, RevocationReason};
use crate::domain::{AuthError, ErrorType, TokenKind, TokenName, UserCommand, UserName};
use crate::projections::TokenView;

pub async fn list(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    require_login(&view)?;
    let mut others = state.ledger.model.read().tokens.tokens_of(&user.name, state.now());
    others.retain(|t| t.id != view.id);
    let dev = permissions::allows(Action::CreateDevToken, &user.roles);
    let service = permissions::allows(Action::CreateServToken, &user.roles);
    if context.wants_html() {
        let list = pages::account::TokenList { user: &user, current: &view, others: &others, dev, service };
        return pages::account::tokens(list);
    }
    let others: Vec<Value> = others.iter().map(views::ui_token).collect();
    Ok(Json(json!({
        "current": views::ui_token(&view),
        "tokens": others,
        "dev": dev,
        "service": service,
        "user": user.name,
        "createurl": "tokens",
        "revokeurl": "tokens/revoke/",
        "revokeallurl": "tokens/revokeall",
    }))
    .into_response())
}

pub async fn create(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    let input = body.input()?;
    input.reject_unexpected(&["name", "type", "customcontext"])?;
    let token = any_token(&context.headers)?;
    let custom = match &input {
        Input::Form(form) => parse_context_string(form.get("customcontext"))?,
        Input::Json(json) => json.string_map("customcontext")?.unwrap_or_default(),
    };
    let custom = parse_custom_context(&custom)?;
    let name = TokenName::parse(input.string("name")?.as_deref())?;
    let kind = if input.string("type")?.as_deref() == Some("service") { TokenKind::Serv } else { TokenKind::Dev };
    let caller = state.login_caller(&token, None)?;
    let needed = if kind == TokenKind::Serv { Action::CreateServToken } else { Action::CreateDevToken };
    if !permissions::allows(needed, &caller.user.roles) {
        return Err(AuthError::unauthorized(format!(
            "User {} is not authorized to create the {} token type.",
            caller.name(),
            kind.description()
        ))
        .into());
    }
    let ignore_ip = state.ignore_ip();
    let grant = NewToken {
        user: caller.name().clone(),
        kind,
        name: Some(name),
        custom,
        client: context.client_info(ignore_ip),
        mfa: Mfa::Unknown,
    };
    let (value, view) = tokens::issue(&state.ledger, grant, &context.metadata(caller.name(), ignore_ip)).await?;
    if context.wants_html() {
        return pages::account::token_created(&caller.user, &value, &view);
    }
    Ok(Json(views::new_ui_token(&view, &value)).into_response())
}

/// The user's valid token with this id, if any.
pub fn owned_token(state: &AppState, user: &UserName, id: &str) -> Result<TokenView, ApiError> {
    let no_such = || AuthError::new(ErrorType::NoSuchToken, format!("No token {id} for user {user} exists"));
    let id = Uuid::parse_str(id).map_err(|_| ApiError::framework(StatusCode::NOT_FOUND, true))?;
    let tokens = state.ledger.model.read().tokens.tokens_of(user, state.now());
    tokens.into_iter().find(|t| t.id == id).ok_or_else(|| no_such().into())
}

pub async fn revoke_token(
    state: &AppState,
    token: &TokenView,
    by: &UserName,
    reason: RevocationReason,
    context: &RequestContext,
) -> Result<(), ApiError> {
    let metadata = context.metadata(by, state.ignore_ip());
    Ok(tokens::revoke(&state.ledger, token.id, by, reason, &metadata).await?)
}

pub async fn revoke(
    State(state): State<AppState>,
    context: RequestContext,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    require_login(&view)?;
    let target = owned_token(&state, &view.user, &id)?;
    revoke_token(&state, &target, &view.user, RevocationReason::Revoked, &context).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn revoke_all(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    require_login(&view)?;
    let metadata = context.metadata(&view.user, state.ignore_ip());
    state
        .ledger
        .execute::<User>(&view.user, UserCommand::RevokeAllTokens { by: view.user.clone(), at: state.now() }, &metadata)
        .await?;
    Ok(no_content_clearing_cookie(&context))
}

/// 204, removing the session cookie when the request came with it.
pub fn no_content_clearing_cookie(context: &RequestContext) -> Response {
    if header_token(&context.headers).is_none() && cookie_token(&context.headers).is_some() {
        return (StatusCode::NO_CONTENT, [(header::SET_COOKIE, removed_session_cookie())]).into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /logout`: the confirmation page (JSON: `{"user": name}`).
pub async fn logout_page(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    if context.wants_html() {
        return pages::account::logout(&user);
    }
    Ok(Json(json!({ "user": user.name })).into_response())
}

/// Revokes the token used; never fails on an invalid one (`{"user": null}`).
pub async fn logout(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let user = match state.token_view(&token) {
        Ok(view) => {
            revoke_token(&state, &view, &view.user, RevocationReason::Logout, &context).await?;
            // The user's links under way end with the session (a failure
            // leaves them to expire; the logout itself is done).
            if let Err(error) = state.sign_in.forget_user(view.user.as_str()).await {
                tracing::warn!(%error, user = %view.user, "cannot drop the links under way of a user who logged out");
            }
            Some(view.user)
        }
        Err(_) => None,
    };
    let mut answer = match context.wants_html() {
        true => pages::account::logged_out(user.as_ref().map(UserName::as_str))?,
        false => Json(json!({ "user": user })).into_response(),
    };
    if header_token(&context.headers).is_none() {
        let cleared =
            HeaderValue::from_str(&removed_session_cookie()).map_err(|e| ApiError::internal(e.to_string()))?;
        answer.headers_mut().append(header::SET_COOKIE, cleared);
        let in_process = [
            super::login::removed_cookie(super::login::LOGIN_TOKEN_COOKIE, "no token", "/login"),
            super::login::removed_cookie(super::link::LINK_TOKEN_COOKIE, "no token", "/link"),
        ];
        super::login::append_cookies(&mut answer, in_process.into());
    }
    Ok(answer)
}
