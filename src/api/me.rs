//! The signed-in person's own account (upstream `Me` and `CustomRoles`):
//! the profile page and its forms, dropping one's own roles, and the custom
//! role list. JSON with the `Authorization` header; a page for a browser
//! with the session cookie.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorEnvelope};
use super::pages::{self, Nav};
use super::request::{Body, Deferred, Form, FormBody, Input, JsonBody, JsonObject, RequestContext, any_token};
use super::{AppState, views};
use crate::app::accounts;
use crate::domain::names::is_blank;
use crate::domain::{AuthError, DisplayName, EmailAddress, ErrorType, Role};

/// The caller's account as `GET /me` shows it: the user and the forms' URLs.
#[derive(Debug, Serialize, ToSchema)]
pub struct MeView {
    #[serde(flatten)]
    pub user: views::UserView,
    /// Where the profile form posts (relative).
    pub userupdateurl: &'static str,
    /// Where an identity is unlinked (relative; the identity's id appended).
    pub unlinkurl: &'static str,
    /// Where the caller's own roles are dropped (relative).
    pub roleurl: &'static str,
    /// Whether the caller holds any built-in role.
    pub hasroles: bool,
    /// Whether the caller may unlink an identity.
    pub unlink: bool,
}

/// Members of `POST /me/roles`'s JSON body (other members are ignored).
#[derive(ToSchema)]
pub struct DropOwnRolesRequest {
    /// Ids of built-in roles the caller holds and drops.
    #[schema(value_type = Option<Vec<String>>)]
    roles: Option<Vec<Option<String>>>,
}

impl JsonBody for DropOwnRolesRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { roles: json.string_list("roles")? })
    }
}

/// The caller's account: the profile page, or the user JSON with the forms' URLs.
#[utoipa::path(
    get,
    path = "/me",
    operation_id = "show_me",
    tag = "account",
    responses(
        (status = 200, description = "The caller's account (a page for a browser).",
            content((MeView = "application/json"), (String = "text/html"))),
        (status = 403, description = "A disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn show(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    if context.wants_html() {
        return pages::account::me(&user);
    }
    let out = MeView {
        user: views::UserView::of(&user),
        userupdateurl: "me",
        unlinkurl: "me/unlink",
        roleurl: "me/roles",
        hasroles: !user.roles.is_empty(),
        unlink: pages::account::may_unlink(&user),
    };
    Ok(Json(out).into_response())
}

/// Changes the caller's display name and email (`POST` for the form, `PUT` for JSON; both take either).
#[utoipa::path(
    method(post, put),
    path = "/me",
    operation_id = "update_profile",
    tag = "account",
    request_body(content((ProfileUpdate = "application/json"), (ProfileUpdate = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Changed (or nothing to change)."),
        (status = 400, description = "An illegal display name or email, an unknown member.", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, or a disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let request: ProfileUpdate = body.input()?.read()?;
    let token = any_token(&context.headers)?;
    change_profile(&state, &context, &token, request).await
}

/// Members of a profile change (`PUT /api/V2/me`, `POST /me`) (a blank member is left as it is).
#[derive(ToSchema)]
pub struct ProfileUpdate {
    #[schema(value_type = Option<String>)]
    display: Deferred<String>,
    #[schema(value_type = Option<String>)]
    email: Deferred<String>,
}

impl JsonBody for ProfileUpdate {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // Their types answer after the token's presence, where they are used.
        Ok(Self { display: json.string("display"), email: json.string("email") })
    }
}

impl FormBody for ProfileUpdate {
    fn from_form(form: &Form) -> Self {
        Self { display: Ok(form.text("display")), email: Ok(form.text("email")) }
    }
}

/// Sets the caller's display name and email; a blank field is left as it is
/// (shared with `PUT /api/V2/me`). The fields are checked before the token.
pub async fn change_profile(
    state: &AppState,
    context: &RequestContext,
    token: &str,
    request: ProfileUpdate,
) -> Result<StatusCode, ApiError> {
    let (display, email) = (request.display?, request.email?);
    let display = if is_blank(display.as_deref()) { None } else { Some(DisplayName::parse(display.as_deref())?) };
    let email = if is_blank(email.as_deref()) { None } else { Some(EmailAddress::parse(email.as_deref())?) };
    let caller = state.login_caller(token, None)?;
    accounts::update_profile(&state.ledger, &caller.acting(context), display, email).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Drops roles the caller holds (`{"roles": [...]}`, or a form whose keys are role ids).
#[utoipa::path(
    post,
    path = "/me/roles",
    operation_id = "remove_own_roles",
    tag = "account",
    request_body(content(
        (DropOwnRolesRequest = "application/json"),
        (BTreeMap<String, String> = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Dropped."),
        (status = 400, description = "No such role (JSON).", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, or a disabled account.", body = ErrorEnvelope),
    ),
)]
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
            // Other members are ignored, never refused.
            let request = DropOwnRolesRequest::from_json(json)?;
            for id in request.roles.unwrap_or_default() {
                let id = id.unwrap_or_default();
                remove.insert(Role::from_id(&id).ok_or_else(|| AuthError::new(ErrorType::NoSuchRole, id.clone()))?);
            }
        }
        Input::Form(form) => remove.extend(form.keys().filter_map(Role::from_id)),
    }
    let caller = state.login_caller(&token, None)?;
    accounts::drop_own_roles(&state.ledger, &caller.acting(&context), remove).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every custom role, for any Login token.
#[utoipa::path(
    get,
    path = "/customroles",
    operation_id = "list_custom_roles",
    tag = "account",
    responses(
        (status = 200, description = "The custom roles (a page for a browser).",
            content((views::CustomRoles = "application/json"), (String = "text/html"))),
        (status = 403, description = "Not a login token, or a disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn custom_roles(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let token = any_token(&context.headers)?;
    let user = state.login_caller(&token, None)?.user;
    let roles = state.ledger.custom_roles();
    if context.wants_html() {
        return pages::account::custom_roles(Nav::of(&user), roles.iter(), false);
    }
    Ok(Json(views::CustomRoles::of(&roles)).into_response())
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(show, update)).routes(routes!(custom_roles)).routes(routes!(remove_roles))
}
