//! Administration (upstream `Admin` resource): accounts, roles, custom roles,
//! disabling, password resets, other users' tokens, revoke-all and the
//! server configuration. Each takes JSON with the `Authorization` header or a
//! form with the session cookie, and answers JSON. Who may do what is the
//! permission table's decision; the grant and reset rules are the domain's.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorEnvelope};
use super::pages::{self, Nav};
use super::permissions;
use super::permissions::Action;
use super::request::{Body, Input, JsonObject, RequestContext, any_token, required_header_token};
use super::tokens::{no_content_clearing_cookie, owned_token, revoke_token};
use super::{AppState, Caller, views};
use crate::app::roles::{self, RolesChange};
use crate::app::{admin, policies};
use crate::domain::PolicyId;
use crate::domain::names::{check_length, is_blank, parse_role_description};
use crate::domain::server_config::{ConfigChange, DAY_MS, ProviderSwitches, RedirectKind, RedirectUrls};
use crate::domain::token::RevocationReason;

use crate::app::accounts::{self, NewLocalAccount};
use crate::domain::{AuthError, CustomRoleId, DisplayName, EmailAddress, ErrorType, Role, TokenKind, UserName};
use crate::projections::UserRecord;
use crate::projections::user_directory::SearchSpec;

/// The calling administrator, checked for `action`.
pub(super) fn administrator(state: &AppState, context: &RequestContext, action: Action) -> Result<Caller, ApiError> {
    let token = any_token(&context.headers)?;
    state.login_caller(&token, Some(action))
}

/// The named user (404 `No such user: <name>` when absent).
pub(super) fn target(state: &AppState, name: &UserName) -> Result<UserRecord, ApiError> {
    Ok(admin::user(&state.ledger, name)?)
}

pub(super) fn parse_user(raw: &str) -> Result<UserName, ApiError> {
    Ok(UserName::parse(Some(raw))?)
}

/// Members of `POST /admin/localaccount/create`'s body (JSON or form).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct LocalAccountRequest {
    /// The new account's user name.
    user: String,
    display: String,
    email: String,
}

/// The local account made, with its temporary password (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct LocalAccountCreated {
    /// The user name, display name and email as given.
    pub user: String,
    pub display: String,
    pub email: String,
    /// The temporary password, to be changed at the first login.
    pub pwd: String,
}

/// Creates a local account with a temporary password.
#[utoipa::path(
    post,
    path = "/admin/localaccount/create",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    request_body(content(
        (LocalAccountRequest = "application/json"),
        (LocalAccountRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The account and its temporary password (a page for a browser).",
            content((LocalAccountCreated = "application/json"), (String = "text/html"))),
        (status = 400, description = "A missing or illegal member, an unknown member, a taken user name, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to create local accounts.", body = ErrorEnvelope),
    ),
)]
pub async fn create_local_account(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Response, ApiError> {
    let input = body.input()?;
    input.reject_unexpected_of::<LocalAccountRequest>()?;
    let token = any_token(&context.headers)?;
    let (user, display, email) = (input.string("user")?, input.string("display")?, input.string("email")?);
    let name = UserName::parse(user.as_deref())?;
    let created = name.clone();
    let display_name = DisplayName::parse(display.as_deref())?;
    let email_address = EmailAddress::parse(email.as_deref())?;
    let caller = state.login_caller(&token, Some(Action::CreateLocalAccount))?;
    let account = NewLocalAccount { user: name, display: display_name, email: email_address };
    let metadata = context.metadata(caller.name());
    let temporary = accounts::create_local_account(&state.ledger, account, caller.name(), &metadata).await?;
    if context.wants_html() {
        let display = display.unwrap_or_default();
        return pages::admin::account_created(Nav::of_caller(&caller), created.as_str(), &display, &temporary);
    }
    // All three parsed above, so present: as given, untrimmed.
    let created = LocalAccountCreated {
        user: user.unwrap_or_default(),
        display: display.unwrap_or_default(),
        email: email.unwrap_or_default(),
        pwd: temporary,
    };
    Ok(Json(created).into_response())
}

/// A user's account as an administrator sees it.
#[utoipa::path(
    get,
    path = "/admin/user/{user}",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 200, description = "The account (a page for a browser).",
            content((views::AdminUserView = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal user name, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to view users.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn user(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ViewUser)?;
    let record = target(&state, &name)?;
    if !context.wants_html() {
        return Ok(Json(views::AdminUserView::of(&record)).into_response());
    }
    let roles = &caller.user.roles;
    // Certificates only for those who may list them through the API too.
    let certificates = match permissions::allows(Action::ViewCertificates, roles) {
        true => Some(state.ledger.user_certificates(&name, MAX_CERTIFICATES_SHOWN)),
        false => None,
    };
    let custom_roles = state.ledger.custom_roles();
    let facts = pages::admin::UserFacts {
        reset_required: state.ledger.reset_required(&record),
        custom_roles: &custom_roles,
        certificates,
        now: state.now(),
    };
    pages::admin::user(&caller.user, &record, facts)
}

/// The user page lists at most this many certificates, newest first.
const MAX_CERTIFICATES_SHOWN: usize = 50;

/// Members of `POST /admin/user/{user}/roles`'s JSON body (a form instead
/// names each wanted role as a key).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct RolesRequest {
    /// The built-in role ids the user should hold (`Root` never changes here).
    roles: Option<Vec<String>>,
}

/// The built-in roles a body asks for: `{"roles": [...]}` or form keys named after roles.
fn requested_roles(input: &Input) -> Result<BTreeSet<Role>, ApiError> {
    match input {
        Input::Json(json) => {
            json.reject_unexpected_of::<RolesRequest>()?;
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
#[utoipa::path(
    post,
    path = "/admin/user/{user}/roles",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    request_body(
        description = "JSON: `roles`, a list of role ids. A form: each wanted role id as a key (values ignored).",
        content((RolesRequest = "application/json"), (BTreeMap<String, String> = "application/x-www-form-urlencoded")),
    ),
    responses(
        (status = 204, description = "The roles are set."),
        (status = 303, description = "A browser's form post: back to the user's page."),
        (status = 400, description = "An illegal user name, an unknown role or member, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to grant or remove these roles.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn set_roles(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let wanted = requested_roles(&body.input()?)?;
    let caller = administrator(&state, &context, Action::ChangeRoles)?;
    admin::set_roles(&state.ledger, &caller.acting(&context), &name, wanted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/V2/admin/users/{user}/roles`'s body: roles to add and remove.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct UserRolesChange {
    /// Built-in role ids to grant.
    #[schema(rename = "addRoles")]
    add_roles: Option<Vec<String>>,
    /// Built-in role ids to remove.
    #[schema(rename = "removeRoles")]
    remove_roles: Option<Vec<String>>,
    /// Custom role ids to grant.
    #[schema(rename = "addCustomRoles")]
    add_custom_roles: Option<Vec<String>>,
    /// Custom role ids to remove.
    #[schema(rename = "removeCustomRoles")]
    remove_custom_roles: Option<Vec<String>>,
}

/// The role ids of `key` (null items refused).
fn role_ids(json: &JsonObject, key: &str) -> Result<Vec<String>, ApiError> {
    Ok(json.strings(key)?.unwrap_or_default())
}

/// Adds and removes a user's built-in and custom roles in one step (auth2's
/// develop line), by the rules of the two role endpoints.
#[utoipa::path(
    post,
    path = "/api/V2/admin/users/{user}/roles",
    tag = "admin",
    security(("token" = [])),
    params(("user" = String, Path, description = "The user name.")),
    request_body(content = UserRolesChange, content_type = "application/json"),
    responses(
        (status = 204, description = "Changed (one event per kind of change), or nothing to change."),
        (status = 400, description = "An illegal user name, an unknown role, a role both added and removed, an \
            unknown member, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change these roles.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn change_user_roles(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let json = body.json()?;
    json.reject_unexpected_of::<UserRolesChange>()?;
    let role = |id: String| Role::from_id(&id).ok_or_else(|| ApiError::from(AuthError::new(ErrorType::NoSuchRole, id)));
    let custom = |id: String| CustomRoleId::parse(Some(&id)).map_err(ApiError::from);
    let change = RolesChange {
        add: role_ids(&json, "addRoles")?.into_iter().map(role).collect::<Result<_, _>>()?,
        remove: role_ids(&json, "removeRoles")?.into_iter().map(role).collect::<Result<_, _>>()?,
        add_custom: role_ids(&json, "addCustomRoles")?.into_iter().map(custom).collect::<Result<_, _>>()?,
        remove_custom: role_ids(&json, "removeCustomRoles")?.into_iter().map(custom).collect::<Result<_, _>>()?,
    };
    let caller = state.login_caller(&required_header_token(&context.headers)?, None)?;
    if change.touches_roles() {
        permissions::check(Action::ChangeRoles, &caller.user.roles)?;
    }
    if change.touches_custom_roles() {
        permissions::check(Action::ChangeCustomRolesOfUser, &caller.user.roles)?;
    }
    roles::change_roles(&state.ledger, &caller.acting(&context), &name, change).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of `POST /admin/user/{user}/customroles`'s JSON body (a form
/// instead names each wanted custom role as a key).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CustomRolesRequest {
    /// The custom role ids the user should hold.
    customroles: Option<Vec<String>>,
}

/// Replaces the user's custom roles with the requested set.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/customroles",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    request_body(
        description = "JSON: `customroles`, a list of custom role ids. A form: each wanted custom role id as a key \
                       (values ignored).",
        content(
            (CustomRolesRequest = "application/json"),
            (BTreeMap<String, String> = "application/x-www-form-urlencoded"),
        ),
    ),
    responses(
        (status = 204, description = "The custom roles are set."),
        (status = 303, description = "A browser's form post: back to the user's page."),
        (status = 400, description = "An illegal user name or role id, an unknown role or member, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change custom roles.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn set_custom_roles(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let input = body.input()?;
    let wanted: BTreeSet<CustomRoleId> = match &input {
        Input::Json(json) => {
            json.reject_unexpected_of::<CustomRolesRequest>()?;
            let mut wanted = BTreeSet::new();
            for id in json.string_list("customroles")?.unwrap_or_default() {
                let id = id.ok_or_else(|| AuthError::illegal("Null item in custom roles"))?;
                wanted.insert(CustomRoleId::parse(Some(&id))?);
            }
            wanted
        }
        // A form names each wanted role as a key: those that are custom roles.
        Input::Form(form) => {
            admin::custom_role_ids(&state.ledger).into_iter().filter(|id| form.has(id.as_str())).collect()
        }
    };
    let caller = administrator(&state, &context, Action::ChangeCustomRolesOfUser)?;
    admin::set_custom_roles(&state.ledger, &caller.acting(&context), &name, wanted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The custom roles.
#[utoipa::path(
    get,
    path = "/admin/customroles",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The custom roles (a page for a browser).",
            content((views::CustomRoles = "application/json"), (String = "text/html"))),
        (status = 400, description = "No token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
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
#[allow(dead_code)]
pub struct CustomRoleRequest {
    /// The custom role's id.
    id: String,
    /// Its description.
    desc: String,
}

/// Creates a custom role, or changes its description.
#[utoipa::path(
    post,
    path = "/admin/customroles/set",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    request_body(content(
        (CustomRoleRequest = "application/json"),
        (CustomRoleRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "The role is set."),
        (status = 303, description = "A browser's form post: back to the custom roles page."),
        (status = 400, description = "A missing or illegal id or description, an unknown member, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to set custom roles.", body = ErrorEnvelope),
    ),
)]
pub async fn set_custom_role(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected_of::<CustomRoleRequest>()?;
    let id = CustomRoleId::parse(input.string("id")?.as_deref())?;
    let description = parse_role_description(input.string("desc")?.as_deref())?;
    let caller = administrator(&state, &context, Action::SetCustomRole)?;
    admin::set_custom_role(&state.ledger, &caller.acting(&context), &id, description).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of `POST /admin/customroles/delete`'s body (JSON or form).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct CustomRoleDeleteRequest {
    /// The custom role's id.
    id: String,
}

/// Deletes a custom role (and takes it from every user).
#[utoipa::path(
    post,
    path = "/admin/customroles/delete",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    request_body(content(
        (CustomRoleDeleteRequest = "application/json"),
        (CustomRoleDeleteRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "The role is deleted."),
        (status = 303, description = "A browser's form post: back to the custom roles page."),
        (status = 400, description = "A missing or illegal id, an unknown role or member, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to delete custom roles.", body = ErrorEnvelope),
    ),
)]
pub async fn delete_custom_role(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected_of::<CustomRoleDeleteRequest>()?;
    let raw = input.string("id")?;
    if is_blank(raw.as_deref()) {
        return Err(AuthError::missing("roleId cannot be null or empty").into());
    }
    let caller = administrator(&state, &context, Action::DeleteCustomRole)?;
    let id = CustomRoleId::parse(raw.as_deref())?;
    admin::delete_custom_role(&state.ledger, &caller.acting(&context), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of `POST /admin/user/{user}/disable`'s JSON body.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DisableRequest {
    /// `true` disables the account, `false` enables it.
    disable: bool,
    /// Why (required to disable; at most 1000 characters).
    disabledreason: Option<String>,
}

/// The same as a form: a present `disable` disables, an absent one enables.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct DisableForm {
    /// Present (any value): disable; absent: enable.
    disable: Option<String>,
    /// Why (required to disable).
    disabledreason: Option<String>,
}

/// Disables an account (a reason is required) or enables it again.
///
/// `{"disable": true, "disabledreason": "..."}` disables; `false` enables.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/disable",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    request_body(content((DisableRequest = "application/json"), (DisableForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Disabled or enabled."),
        (status = 303, description = "A browser's form post: back to the user's page."),
        (status = 400, description = "An illegal user name, no `disable` or reason, an unknown member, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to disable this user.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
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
            json.reject_unexpected_of::<DisableRequest>()?;
            let disable = json.boolean("disable")?.ok_or_else(|| AuthError::missing("disable"))?;
            (disable, json.string("disabledreason")?)
        }
        Input::Form(form) => (form.has("disable"), form.get("disabledreason").map(str::to_owned)),
    };
    let reason = if disable { Some(check_length(reason.as_deref(), "reason", 1000)?.to_owned()) } else { None };
    let caller = administrator(&state, &context, Action::DisableOrEnableUser)?;
    admin::disable(&state.ledger, &caller.acting(&context), &name, reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Requires the user to change the password at the next login.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/forcereset",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 204, description = "The reset is required."),
        (status = 303, description = "A browser's form post: back to the user's page."),
        (status = 400, description = "An illegal user name, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to force password resets.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn force_reset(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ForcePasswordReset)?;
    admin::force_reset(&state.ledger, &caller.acting(&context), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Clears the account's wrong-password count, throttle and second-factor lock.
///
/// `POST /admin/user/{u}/unlock` (Admin).
#[utoipa::path(
    post,
    path = "/admin/user/{user}/unlock",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 204, description = "Unlocked."),
        (status = 400, description = "An illegal user name, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to unlock accounts.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn unlock(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ClearLoginThrottle)?;
    admin::unlock(&state.ledger, &caller.acting(&context), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Requires every local user to change the password at the next login.
#[utoipa::path(
    post,
    path = "/admin/forcereset",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    responses(
        (status = 204, description = "The resets are required."),
        (status = 303, description = "A browser's form post: back to the administration page."),
        (status = 400, description = "No token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to force every password reset.", body = ErrorEnvelope),
    ),
)]
pub async fn force_reset_all(State(state): State<AppState>, context: RequestContext) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ForceAllPasswordResets)?;
    admin::force_reset_all(&state.ledger, &caller.acting(&context)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A user name and the temporary password set for it (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct TemporaryPassword {
    pub user: String,
    /// To be changed at the next login.
    pub pwd: String,
}

/// Sets a new temporary password, which must be changed at the next login.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/reset",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 200, description = "The temporary password (a page for a browser).",
            content((TemporaryPassword = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal user name, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to reset passwords.", body = ErrorEnvelope),
        (status = 404, description = "No such user, or not a local user.", body = ErrorEnvelope),
    ),
)]
pub async fn reset_password(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
) -> Result<Response, ApiError> {
    let name = parse_user(&user)?;
    let caller = administrator(&state, &context, Action::ResetPassword)?;
    let temporary = accounts::reset_to_temporary(&state.ledger, &caller.acting(&context), &name).await?;
    if context.wants_html() {
        return pages::admin::password_reset(Nav::of_caller(&caller), name.as_str(), &temporary);
    }
    Ok(Json(TemporaryPassword { user: name.to_string(), pwd: temporary }).into_response())
}

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
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 200, description = "The user's tokens (a page for a browser).",
            content((UserTokens = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal user name, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
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
    security(("token" = []), ("session" = [])),
    params(
        ("user" = String, Path, description = "The user name."),
        ("id" = String, Path, description = "The token's id."),
    ),
    responses(
        (status = 204, description = "Revoked."),
        (status = 303, description = "A browser's form post: back to the user's tokens page."),
        (status = 400, description = "An illegal user name, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
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
    security(("token" = []), ("session" = [])),
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 204, description = "Revoked (or no such user)."),
        (status = 303, description = "A browser's form post: back to the user's tokens page."),
        (status = 400, description = "An illegal user name, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
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
    security(("token" = []), ("session" = [])),
    responses(
        (status = 204, description = "Revoked; a caller using the session cookie has it removed."),
        (status = 303, description = "A browser's form post: to the login page (its session ended too)."),
        (status = 400, description = "No token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
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
#[allow(dead_code)]
pub struct ViewTokenRequest {
    /// The token to look up (its value).
    token: String,
}

/// Looks a token up by its value.
#[utoipa::path(
    post,
    path = "/admin/token",
    tag = "admin",
    security(("token" = []), ("session" = [])),
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
    input.reject_unexpected_of::<ViewTokenRequest>()?;
    let token = input.string("token")?;
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
    security(("token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The configuration (a page for a browser).",
            content((ServerConfigView = "application/json"), (String = "text/html"))),
        (status = 400, description = "No token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to view the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn config(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::ViewConfig)?;
    let config = state.ledger.settings();
    if context.wants_html() {
        return pages::admin::config(Nav::of_caller(&caller), &config, &state.sign_in.providers);
    }
    let providers = state
        .sign_in
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
        .sign_in
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

/// Members of `POST /admin/config`'s body: an absent member is unchanged.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ConfigRequest {
    allowlogin: Option<bool>,
    showstack: Option<bool>,
    ignoreip: Option<bool>,
    /// Settings to remove (a redirect URL, `ignoreip` or `showstack`), by member name.
    remove: Option<Vec<String>>,
    /// An http(s) URL; blank leaves it as it is.
    allowedloginredirect: Option<String>,
    completeloginredirect: Option<String>,
    postlinkredirect: Option<String>,
    completelinkredirect: Option<String>,
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
        (status = 400, description = "An illegal URL or value, an unknown member, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn update_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = body.json()?;
    body.reject_unexpected_of::<ConfigRequest>()?;
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

/// Members of `POST /admin/config/token`'s body (JSON or form): each at least 1.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct TokenConfigRequest {
    /// The suggested token cache time, in minutes.
    tokensugcache: i64,
    /// Login token lifetime, in days.
    tokenlogin: i64,
    /// Agent token lifetime, in days.
    tokenagent: i64,
    /// Developer token lifetime, in days.
    tokendev: i64,
    /// Service token lifetime, in days.
    tokenserv: i64,
}

/// Sets the suggested cache time (minutes) and the token lifetimes (days).
///
/// `POST /admin/config/token`: each at least 1.
#[utoipa::path(
    post,
    path = "/admin/config/token",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    request_body(content(
        (TokenConfigRequest = "application/json"),
        (TokenConfigRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Changed."),
        (status = 303, description = "A browser's form post: back to the configuration page."),
        (status = 400, description = "A value missing, not a number or below 1, an unknown member, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn update_token_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected_of::<TokenConfigRequest>()?;
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

/// The configuration page's form of `POST /admin/config/basic`.
#[derive(ToSchema)]
#[allow(dead_code)]
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

/// Sets the switches and redirect URLs from the configuration page's form.
///
/// `POST /admin/config/basic`: a ticked box turns a switch on, an unticked
/// one off; a blank URL removes it.
#[utoipa::path(
    post,
    path = "/admin/config/basic",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    request_body(content((BasicConfigForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Changed."),
        (status = 303, description = "A browser's form post: back to the configuration page."),
        (status = 400, description = "An illegal URL, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
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

/// Members of `POST /admin/config/provider`'s JSON body (an absent switch is off).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProviderConfigRequest {
    /// The configured identity provider's name.
    provider: String,
    enabled: Option<bool>,
    forceloginchoice: Option<bool>,
    forcelinkchoice: Option<bool>,
}

/// The same as a form: each switch is a checkbox.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ProviderConfigForm {
    /// The configured identity provider's name.
    provider: String,
    /// A checkbox: on when present and not blank.
    enabled: Option<String>,
    /// A checkbox: on when present and not blank.
    forceloginchoice: Option<String>,
    /// A checkbox: on when present and not blank.
    forcelinkchoice: Option<String>,
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
    security(("token" = []), ("session" = [])),
    request_body(content(
        (ProviderConfigRequest = "application/json"),
        (ProviderConfigForm = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Changed."),
        (status = 303, description = "A browser's form post: back to the configuration page."),
        (status = 400, description = "A missing provider, an unknown member, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token, or no such identity provider (50020).", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn update_provider_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected_of::<ProviderConfigRequest>()?;
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

/// Members of `POST /admin/config/environment`'s body (JSON or form): a
/// blank or absent URL removes it.
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct EnvironmentConfigRequest {
    /// The configured alternate environment's name.
    environment: String,
    /// An http(s) URL.
    allowedloginredirect: Option<String>,
    completeloginredirect: Option<String>,
    postlinkredirect: Option<String>,
    completelinkredirect: Option<String>,
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
    security(("token" = []), ("session" = [])),
    request_body(content(
        (EnvironmentConfigRequest = "application/json"),
        (EnvironmentConfigRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Changed."),
        (status = 303, description = "A browser's form post: back to the configuration page."),
        (status = 400, description = "A missing or unknown environment, an illegal URL or member, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn update_environment_config(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected_of::<EnvironmentConfigRequest>()?;
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

/// Sets every setting back to what this server starts a new log with.
///
/// `POST /admin/config/reset`: the built-in defaults, or the operator's `[initial]`.
#[utoipa::path(
    post,
    path = "/admin/config/reset",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    responses(
        (status = 204, description = "Reset."),
        (status = 303, description = "A browser's form post: back to the configuration page."),
        (status = 400, description = "No token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to change the configuration.", body = ErrorEnvelope),
    ),
)]
pub async fn reset_config(State(state): State<AppState>, context: RequestContext) -> Result<StatusCode, ApiError> {
    let caller = administrator(&state, &context, Action::ChangeConfig)?;
    admin::reset_config(&state.ledger, &caller.acting(&context)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The administration page: search, token lookup and the emergency measures.
///
/// `GET /admin` (any administrator).
#[utoipa::path(
    get,
    path = "/admin",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 400, description = "No token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
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
    security(("token" = []), ("session" = [])),
    request_body(
        description = "`prefix`; boxes `username` and `displayname` (the fields to search, both when neither); a key \
                       per required built-in role id, and `crole_<id>` per required custom role.",
        content((BTreeMap<String, String> = "application/x-www-form-urlencoded")),
    ),
    responses(
        (status = 200, description = "The users found (a page for a browser).",
            content((AdminSearchResults = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal prefix or custom role id, or no token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
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

/// The form that creates a local account.
#[utoipa::path(
    get,
    path = "/admin/localaccount",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 400, description = "No token.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to create local accounts.", body = ErrorEnvelope),
    ),
)]
pub async fn local_account_page(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::CreateLocalAccount)?;
    pages::admin::local_account(Nav::of_caller(&caller))
}

/// Members of `POST /admin/policyid`'s body (JSON or form).
#[derive(ToSchema)]
#[allow(dead_code)]
pub struct PolicyIdRequest {
    /// The policy id to remove.
    policyid: String,
}

/// Removes a policy id from every user (an Admin).
#[utoipa::path(
    post,
    path = "/admin/policyid",
    tag = "admin",
    security(("token" = []), ("session" = [])),
    request_body(content(
        (PolicyIdRequest = "application/json"),
        (PolicyIdRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 204, description = "Removed."),
        (status = 303, description = "A browser's form post: back to the administration page."),
        (status = 400, description = "A missing or illegal policy id, an unknown member, or no token.",
            body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to remove policy ids.", body = ErrorEnvelope),
    ),
)]
pub async fn remove_policy_id(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let input = body.input()?;
    input.reject_unexpected_of::<PolicyIdRequest>()?;
    let token = any_token(&context.headers)?;
    let id = PolicyId::parse(input.string("policyid")?.as_deref())?;
    let caller = state.login_caller(&token, Some(Action::RemovePolicyId))?;
    let metadata = context.metadata(caller.name());
    policies::remove_policy_id(&state.ledger, &id, caller.name(), &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(remove_policy_id))
        .routes(routes!(start))
        .routes(routes!(search))
        .routes(routes!(local_account_page))
        .routes(routes!(create_local_account))
        .routes(routes!(user))
        .routes(routes!(set_roles))
        .routes(routes!(set_custom_roles))
        .routes(routes!(change_user_roles))
        .routes(routes!(disable))
        .routes(routes!(force_reset))
        .routes(routes!(unlock))
        .routes(routes!(reset_password))
        .routes(routes!(user_tokens))
        .routes(routes!(revoke_user_token))
        .routes(routes!(revoke_user_tokens))
        .routes(routes!(custom_roles))
        .routes(routes!(set_custom_role))
        .routes(routes!(delete_custom_role))
        .routes(routes!(force_reset_all))
        .routes(routes!(revoke_all))
        .routes(routes!(view_token))
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
