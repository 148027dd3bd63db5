//! The caller's own tokens and session (upstream `Tokens`, `Logout`):
//! listing, developer/service tokens, revocation, revoke-all and logout, as
//! JSON or pages. The token comes from the `Authorization` header or the
//! session cookie.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorEnvelope};
use super::pages;
use super::permissions::{self, Action};
use super::request::{
    Body, Deferred, Form, FormBody, Input, JsonBody, JsonObject, RequestContext, any_token, cookie_token, header_token,
    parse_context_string, removed_session_cookie,
};
use super::{AppState, require_login, views};
use crate::app::tokens::{self, NewToken};
use crate::domain::names::parse_custom_context;
use crate::domain::token::{Mfa, RevocationReason};
use crate::domain::{AuthError, ErrorType, TokenKind, TokenName, UserName};
use crate::projections::TokenView;

/// The caller's tokens as `GET /tokens` lists them, with the forms' URLs.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyTokens {
    /// The token of this request.
    pub current: views::UiToken,
    /// The caller's other valid tokens.
    pub tokens: Vec<views::UiToken>,
    /// Whether the caller may create developer tokens.
    pub dev: bool,
    /// Whether the caller may create service tokens.
    pub service: bool,
    pub user: String,
    pub createurl: &'static str,
    pub revokeurl: &'static str,
    pub revokeallurl: &'static str,
}

/// `{"user": name}`: whose session a logout ends (`null` when the token was not valid).
#[derive(Debug, Serialize, ToSchema)]
pub struct LogoutView {
    pub user: Option<String>,
}

/// Members of `POST /tokens`'s JSON body.
#[derive(ToSchema)]
pub struct DevTokenRequest {
    /// The token's name.
    #[schema(value_type = String, required)]
    name: Deferred<String>,
    /// `service` for a service token; anything else (or nothing) makes a developer token.
    #[schema(rename = "type", value_type = Option<String>)]
    kind: Deferred<String>,
    /// Free key/value context stored with the token.
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    customcontext: Deferred<BTreeMap<String, String>>,
}

impl JsonBody for DevTokenRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // Their types answer after the token's presence, where they are used.
        Ok(Self {
            name: json.string("name"),
            kind: json.string("type"),
            customcontext: json.string_map("customcontext"),
        })
    }
}

/// The fields of `POST /tokens`'s form (the JSON body's, with the context as text).
#[derive(ToSchema)]
pub struct DevTokenForm {
    /// The token's name.
    #[schema(value_type = String, required)]
    name: Option<String>,
    /// `service` for a service token; anything else (or nothing) makes a developer token.
    #[schema(rename = "type")]
    kind: Option<String>,
    /// Key/value pairs: `k1, v1; k2, v2`.
    customcontext: Option<String>,
}

impl FormBody for DevTokenForm {
    fn from_form(form: &Form) -> Self {
        Self { name: form.text("name"), kind: form.text("type"), customcontext: form.text("customcontext") }
    }
}

/// The caller's tokens: the current one and the others (a page for a browser).
#[utoipa::path(
    get,
    path = "/tokens",
    operation_id = "list_tokens",
    tag = "tokens",
    responses(
        (status = 200, description = "The caller's tokens (a page for a browser).",
            content((MyTokens = "application/json"), (String = "text/html"))),
        (status = 403, description = "Not a login token, or a disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn list(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    require_login(&view)?;
    let mut others = state.ledger.tokens_of(&user.name);
    others.retain(|t| t.id != view.id);
    let dev = permissions::allows(Action::CreateDevToken, &user.roles);
    let service = permissions::allows(Action::CreateServToken, &user.roles);
    if context.wants_html() {
        let list = pages::account::TokenList { user: &user, current: &view, others: &others, dev, service };
        return pages::account::tokens(list);
    }
    let out = MyTokens {
        current: views::UiToken::of(&view),
        tokens: others.iter().map(views::UiToken::of).collect(),
        dev,
        service,
        user: user.name.to_string(),
        createurl: "tokens",
        revokeurl: "tokens/revoke/",
        revokeallurl: "tokens/revokeall",
    };
    Ok(Json(out).into_response())
}

/// Makes a developer or service token for the caller.
#[utoipa::path(
    post,
    path = "/tokens",
    operation_id = "create_token",
    tag = "tokens",
    request_body(content((DevTokenRequest = "application/json"), (DevTokenForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The new token, with its value (shown once; a page for a browser).",
            content((views::NewUiToken = "application/json"), (String = "text/html"))),
        (status = 400, description = "A missing or illegal name or context, an unknown member.", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, a disabled account, or not allowed this token type.", body = ErrorEnvelope),
    ),
)]
pub async fn create(State(state): State<AppState>, context: RequestContext, body: Body) -> Result<Response, ApiError> {
    // The form's fields as the JSON body's members: what is wrong with the context (its
    // type, or a form's bad pair) and the name's and type's types answer after the token's presence.
    let request = match body.input()? {
        Input::Json(json) => json.read()?,
        Input::Form(form) => {
            let form: DevTokenForm = form.read();
            let custom = parse_context_string(form.customcontext.as_deref()).map(Some).map_err(ApiError::from);
            DevTokenRequest { name: Ok(form.name), kind: Ok(form.kind), customcontext: custom }
        }
    };
    let token = any_token(&context.headers)?;
    let custom = parse_custom_context(&request.customcontext?.unwrap_or_default())?;
    let name = TokenName::parse(request.name?.as_deref())?;
    let kind = if request.kind?.as_deref() == Some("service") { TokenKind::Serv } else { TokenKind::Dev };
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
    let grant = NewToken {
        user: caller.name().clone(),
        kind,
        name: Some(name),
        custom,
        client: context.client_info(),
        mfa: Mfa::Unknown,
    };
    let (value, view) = tokens::issue(&state.ledger, grant, &context.metadata(caller.name())).await?;
    if context.wants_html() {
        return pages::account::token_created(&caller.user, &value, &view);
    }
    Ok(Json(views::NewUiToken::of(&view, &value)).into_response())
}

/// The user's valid token with this id, if any.
pub fn owned_token(state: &AppState, user: &UserName, id: &str) -> Result<TokenView, ApiError> {
    let no_such = || AuthError::new(ErrorType::NoSuchToken, format!("No token {id} for user {user} exists"));
    let id = Uuid::parse_str(id).map_err(|_| ApiError::framework(StatusCode::NOT_FOUND, true))?;
    let tokens = state.ledger.tokens_of(user);
    tokens.into_iter().find(|t| t.id == id).ok_or_else(|| no_such().into())
}

pub async fn revoke_token(
    state: &AppState,
    token: &TokenView,
    by: &UserName,
    reason: RevocationReason,
    context: &RequestContext,
) -> Result<(), ApiError> {
    let metadata = context.metadata(by);
    Ok(tokens::revoke(&state.ledger, token.id, by, reason, &metadata).await?)
}

/// Revokes one of the caller's tokens.
#[utoipa::path(
    method(post, delete),
    path = "/tokens/revoke/{id}",
    operation_id = "revoke_own_token",
    tag = "tokens",
    params(("id" = String, Path, description = "The token's id.")),
    responses(
        (status = 204, description = "Revoked."),
        (status = 403, description = "Not a login token.", body = ErrorEnvelope),
        (status = 404, description = "The caller has no such token.", body = ErrorEnvelope),
    ),
)]
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

/// Revokes every token of the caller (this one included).
#[utoipa::path(
    method(post, delete),
    path = "/tokens/revokeall",
    operation_id = "revoke_all_own_tokens",
    tag = "tokens",
    responses(
        (status = 204, description = "Revoked (the session cookie removed when it was used)."),
        (status = 303, description = "A browser's form post: on to the login page when its session cookie was used (the session ended), else back to `/tokens`."),
        (status = 403, description = "Not a login token.", body = ErrorEnvelope),
    ),
)]
pub async fn revoke_all(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    require_login(&view)?;
    tokens::revoke_all_own(&state.ledger, &view.user, &context.metadata(&view.user)).await?;
    Ok(no_content_clearing_cookie(&context))
}

/// 204, removing the session cookie when the request came with it.
pub fn no_content_clearing_cookie(context: &RequestContext) -> Response {
    if header_token(&context.headers).is_none() && cookie_token(&context.headers).is_some() {
        return (StatusCode::NO_CONTENT, [(header::SET_COOKIE, removed_session_cookie())]).into_response();
    }
    StatusCode::NO_CONTENT.into_response()
}

/// The logout confirmation page (JSON: `{"user": name}`).
#[utoipa::path(
    get,
    path = "/logout",
    operation_id = "logout_page",
    tag = "tokens",
    responses(
        (status = 200, description = "Whose session it is (a page for a browser).",
            content((LogoutView = "application/json"), (String = "text/html"))),
        (status = 403, description = "A disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn logout_page(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    if context.wants_html() {
        return pages::account::logout(&user);
    }
    Ok(Json(LogoutView { user: Some(user.name.to_string()) }).into_response())
}

/// Revokes the token used; never fails on an invalid one (`{"user": null}`).
#[utoipa::path(
    post,
    path = "/logout",
    operation_id = "logout",
    tag = "tokens",
    responses(
        (status = 200, description = "Logged out; the session and flow cookies removed when the token came from the cookie (a page for a browser).",
            content((LogoutView = "application/json"), (String = "text/html"))),
    ),
)]
pub async fn logout(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let user = match state.token_view(&token) {
        Ok(view) => {
            revoke_token(&state, &view, &view.user, RevocationReason::Logout, &context).await?;
            // The user's links under way end with the session (a failure
            // leaves them to expire; the logout itself is done).
            if let Err(error) = state.provider_flows.forget_user(view.user.as_str()).await {
                tracing::warn!(%error, user = %view.user, "cannot drop the links under way of a user who logged out");
            }
            Some(view.user)
        }
        Err(_) => None,
    };
    let mut answer = match context.wants_html() {
        true => pages::account::logged_out(user.as_ref().map(UserName::as_str))?,
        false => Json(LogoutView { user: user.as_ref().map(ToString::to_string) }).into_response(),
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

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
        .routes(routes!(revoke_all))
        .routes(routes!(logout_page, logout))
}
