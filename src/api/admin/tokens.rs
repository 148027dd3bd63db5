//! Other users' tokens: listing and revoking them, revoking every token of
//! the service, and looking up a token by its value.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::caller::{administrator, parse_user};
use crate::api::error::{ApiError, ErrorEnvelope};
use crate::api::pages::{self, Nav};
use crate::api::permissions::Action;
use crate::api::request::{Body, Form, FormBody, JsonBody, JsonObject, RequestContext};
use crate::api::tokens::{no_content_clearing_cookie, owned_token, revoke_token};
use crate::api::{AppState, views};
use crate::app::admin;
use crate::domain::names::is_blank;
use crate::domain::token::RevocationReason;

use crate::domain::AuthError;

/// A user's live tokens.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserTokens {
    pub user: String,
    pub tokens: Vec<views::UiToken>,
}

/// A user's live tokens.
#[utoipa::path(
    get,
    path = "/admin/user/{user}/tokens",
    tag = "admin",
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 200, description = "The user's tokens (a page for a browser).",
            content((UserTokens = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal user name.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to view users' tokens.", body = ErrorEnvelope),
    ),
)]
pub async fn user_tokens(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ViewUserTokens)?;
    let tokens = state.ledger.tokens_of(&name);
    if context.wants_html() {
        return pages::admin::user_tokens(Nav::of_caller(&caller), name.as_str(), &tokens);
    }
    let tokens = tokens.iter().map(views::UiToken::of).collect();
    Ok(Json(UserTokens { user: name.to_string(), tokens }).into_response())
}

/// Revokes one of a user's tokens.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/tokens/revoke/{id}",
    tag = "admin",
    params(
        ("user" = String, Path, description = "The user name."),
        ("id" = String, Path, description = "The token's id."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 400, description = "An illegal user name.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to revoke users' tokens.", body = ErrorEnvelope),
        (status = 404, description = "The user has no such token (or the id is not a UUID).", body = ErrorEnvelope),
    ),
)]
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

/// Revokes every token of a user (nothing to do for an unknown user).
#[utoipa::path(
    post,
    path = "/admin/user/{user}/tokens/revokeall",
    tag = "admin",
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 204, description = "Revoked (or no such user)."),
        (status = 400, description = "An illegal user name.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to revoke users' tokens.", body = ErrorEnvelope),
    ),
)]
pub async fn revoke_user_tokens(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::RevokeUserTokens)?;
    admin::revoke_tokens_of(&state.ledger, &caller.acting(&context), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Invalidates every token of every user (one event), the caller's included.
#[utoipa::path(
    post,
    path = "/admin/revokeall",
    tag = "admin",
    responses(
        (status = 204, description = "Revoked; a caller using the session cookie has it removed."),
        (status = 303, description = "A browser's form post: on to the login page when its session cookie was used (that session ended too), else back to `/admin`."),
        (status = 403, description = "Not allowed to revoke every token.", body = ErrorEnvelope),
    ),
)]
pub async fn revoke_all(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::RevokeAllTokens)?;
    admin::revoke_all_tokens(&state.ledger, &caller.acting(&context)).await?;
    Ok(no_content_clearing_cookie(&context))
}

/// Members of `POST /admin/token`'s body (JSON or form).
#[derive(ToSchema)]
pub struct ViewTokenRequest {
    /// The token to look up (its value).
    #[schema(value_type = String, required)]
    token: Option<String>,
}

impl JsonBody for ViewTokenRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { token: json.string("token")? })
    }
}

impl FormBody for ViewTokenRequest {
    fn from_form(form: &Form) -> Self {
        Self { token: form.text("token") }
    }
}

/// Looks a token up by its value.
#[utoipa::path(
    post,
    path = "/admin/token",
    tag = "admin",
    request_body(content(
        (ViewTokenRequest = "application/json"),
        (ViewTokenRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The token (a page for a browser).",
            content((views::UiToken = "application/json"), (String = "text/html"))),
        (status = 400, description = "A missing token, an unknown member, or no token of the caller's.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid caller's token, or no such token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to view tokens.", body = ErrorEnvelope),
    ),
)]
pub async fn view_token(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Response, ApiError> {
    let input = body.input()?;
    let request: ViewTokenRequest = input.read()?;
    let token = request.token;
    if is_blank(token.as_deref()) {
        return Err(AuthError::missing("token").into());
    }
    let caller = administrator(&state, &context, Action::ViewToken)?;
    let view = state.token_view(crate::domain::names::java_trim(token.as_deref().unwrap_or_default()))?;
    if context.wants_html() {
        return pages::admin::token(Nav::of_caller(&caller), &view);
    }
    Ok(Json(views::UiToken::of(&view)).into_response())
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(user_tokens))
        .routes(routes!(revoke_user_token))
        .routes(routes!(revoke_user_tokens))
        .routes(routes!(revoke_all))
        .routes(routes!(view_token))
}
