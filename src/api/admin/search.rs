//! The administration page, the administrator's user search and removing
//! policy ids.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::AppState;
use crate::api::caller::administrator;
use crate::api::error::{ApiError, ErrorEnvelope};
use crate::api::pages::{self, Nav};
use crate::api::permissions::Action;
use crate::api::request::{Body, Deferred, Form, FormBody, JsonBody, JsonObject, RequestContext, any_token};
use crate::app::policies;
use crate::domain::PolicyId;

use crate::domain::{CustomRoleId, Role};
use crate::projections::user_directory::SearchSpec;

/// The administration page: search, token lookup and the emergency measures.
///
/// `GET /admin` (any administrator).
#[utoipa::path(
    get,
    path = "/admin",
    tag = "admin",
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 403, description = "Not an administrator.", body = ErrorEnvelope),
    ),
)]
pub async fn start(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::ViewUser)?;
    pages::admin::start(&caller.user, &state.ledger.custom_roles())
}

/// A user found by the administrator's search.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSearchHit {
    pub user: String,
    pub display: String,
    pub disabled: bool,
}

/// The administrator's search results.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminSearchResults {
    pub users: Vec<AdminSearchHit>,
}

/// Users matching a prefix and holding every ticked role (disabled users included).
///
/// `POST /admin/search` (form `prefix`, boxes `username`, `displayname`, role
/// ids and `crole_<id>`): all users when the prefix is blank.
#[utoipa::path(
    post,
    path = "/admin/search",
    tag = "admin",
    request_body(
        description = "`prefix`; boxes `username` and `displayname` (the fields to search, both when neither); a key \
                       per required built-in role id, and `crole_<id>` per required custom role.",
        content((BTreeMap<String, String> = "application/x-www-form-urlencoded")),
    ),
    responses(
        (status = 200, description = "The users found (a page for a browser).",
            content((AdminSearchResults = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal prefix or custom role id.", body = ErrorEnvelope),
        (status = 403, description = "Not an administrator.", body = ErrorEnvelope),
        (status = 415, description = "Not a form.", body = ErrorEnvelope),
    ),
)]
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
    let spec = match prefix.is_empty() {
        true => None,
        false => Some(SearchSpec::parse(&prefix, Some(&fields.join(",")), state.ledger.name_rule())?),
    };
    let found = state.ledger.admin_search(spec.as_ref(), &roles, &custom_roles);
    if context.wants_html() {
        return pages::admin::search_results(Nav::of_caller(&caller), &prefix, &found);
    }
    let users = found
        .iter()
        .map(|u| AdminSearchHit { user: u.name.to_string(), display: u.display.clone(), disabled: u.is_disabled() })
        .collect();
    Ok(Json(AdminSearchResults { users }).into_response())
}

/// Members of `POST /admin/policyid`'s body (JSON or form).
#[derive(ToSchema)]
pub struct PolicyIdRequest {
    /// The policy id to remove.
    #[schema(value_type = String, required)]
    policyid: Deferred<String>,
}

impl JsonBody for PolicyIdRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // Its type answers after the token's presence, where it is used.
        Ok(Self { policyid: json.string("policyid") })
    }
}

impl FormBody for PolicyIdRequest {
    fn from_form(form: &Form) -> Self {
        Self { policyid: Ok(form.text("policyid")) }
    }
}

/// Removes a policy id from every user (an Admin).
#[utoipa::path(
    post,
    path = "/admin/policyid",
    tag = "admin",
    request_body(content(
        (PolicyIdRequest = "application/json"),
        (PolicyIdRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Removed."),
        (status = 400, description = "A missing or illegal policy id, an unknown member.",
            body = ErrorEnvelope),
        (status = 403, description = "Not allowed to remove policy ids.", body = ErrorEnvelope),
    ),
)]
pub async fn remove_policy_id(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    let request: PolicyIdRequest = input.read()?;
    let token = any_token(&context.headers)?;
    let id = PolicyId::parse(request.policyid?.as_deref())?;
    let caller = state.login_caller(&token, Some(Action::RemovePolicyId))?;
    policies::remove_policy_id(&state.ledger, &id, &caller.acting(&context)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(remove_policy_id)).routes(routes!(start)).routes(routes!(search))
}
