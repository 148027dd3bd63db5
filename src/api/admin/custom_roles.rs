//! The catalogue of custom roles: listing, setting and deleting them.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::caller::administrator;
use crate::api::error::{ApiError, ErrorEnvelope};
use crate::api::pages::{self, Nav};
use crate::api::permissions;
use crate::api::permissions::Action;
use crate::api::request::{Body, Form, FormBody, JsonBody, JsonObject, RequestContext};
use crate::api::{AppState, views};
use crate::app::admin;
use crate::domain::names::{is_blank, parse_role_description};

use crate::domain::{AuthError, CustomRoleId};

/// The custom roles.
#[utoipa::path(
    get,
    path = "/admin/customroles",
    tag = "admin",
    responses(
        (status = 200, description = "The custom roles (a page for a browser).",
            content((views::CustomRoles = "application/json"), (String = "text/html"))),
        (status = 403, description = "Not allowed to list custom roles.", body = ErrorEnvelope),
    ),
)]
pub async fn custom_roles(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::ListCustomRoles)?;
    let roles = state.ledger.custom_roles();
    if context.wants_html() {
        let manage = permissions::allows(Action::SetCustomRole, &caller.user.roles);
        return pages::account::custom_roles(Nav::of_caller(&caller), roles.iter(), manage);
    }
    Ok(Json(views::CustomRoles::of(&roles)).into_response())
}

/// Members of `POST /admin/customroles/set`'s body (JSON or form).
#[derive(ToSchema)]
pub struct CustomRoleRequest {
    /// The custom role's id.
    #[schema(value_type = String, required)]
    id: Option<String>,
    /// Its description.
    #[schema(value_type = String, required)]
    desc: Option<String>,
}

impl JsonBody for CustomRoleRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { id: json.string("id")?, desc: json.string("desc")? })
    }
}

impl FormBody for CustomRoleRequest {
    fn from_form(form: &Form) -> Self {
        Self { id: form.text("id"), desc: form.text("desc") }
    }
}

/// Creates a custom role, or changes its description.
#[utoipa::path(
    post,
    path = "/admin/customroles/set",
    tag = "admin",
    request_body(content(
        (CustomRoleRequest = "application/json"),
        (CustomRoleRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "The role is set."),
        (status = 400, description = "A missing or illegal id or description, an unknown member.",
            body = ErrorEnvelope),
        (status = 403, description = "Not allowed to set custom roles.", body = ErrorEnvelope),
    ),
)]
pub async fn set_custom_role(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    let request: CustomRoleRequest = input.read()?;
    let id = CustomRoleId::parse(request.id.as_deref())?;
    let description = parse_role_description(request.desc.as_deref())?;
    let caller = administrator(&state, &context, Action::SetCustomRole)?;
    admin::set_custom_role(&state.ledger, &caller.acting(&context), &id, description).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of `POST /admin/customroles/delete`'s body (JSON or form).
#[derive(ToSchema)]
pub struct CustomRoleDeleteRequest {
    /// The custom role's id.
    #[schema(value_type = String, required)]
    id: Option<String>,
}

impl JsonBody for CustomRoleDeleteRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { id: json.string("id")? })
    }
}

impl FormBody for CustomRoleDeleteRequest {
    fn from_form(form: &Form) -> Self {
        Self { id: form.text("id") }
    }
}

/// Deletes a custom role (and takes it from every user).
#[utoipa::path(
    post,
    path = "/admin/customroles/delete",
    tag = "admin",
    request_body(content(
        (CustomRoleDeleteRequest = "application/json"),
        (CustomRoleDeleteRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "The role is deleted."),
        (status = 400, description = "A missing or illegal id, an unknown role or member.",
            body = ErrorEnvelope),
        (status = 403, description = "Not allowed to delete custom roles.", body = ErrorEnvelope),
    ),
)]
pub async fn delete_custom_role(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    let request: CustomRoleDeleteRequest = input.read()?;
    let raw = request.id;
    if is_blank(raw.as_deref()) {
        return Err(AuthError::missing("roleId cannot be null or empty").into());
    }
    let caller = administrator(&state, &context, Action::DeleteCustomRole)?;
    let id = CustomRoleId::parse(raw.as_deref())?;
    admin::delete_custom_role(&state.ledger, &caller.acting(&context), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(custom_roles))
        .routes(routes!(set_custom_role))
        .routes(routes!(delete_custom_role))
}
