//! Accounts as an administrator sees them: creating local accounts, the
//! user page, roles and custom roles, disabling, password resets and
//! unlocking.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::api::caller::{administrator, parse_user, target};
use crate::api::error::{ApiError, ErrorEnvelope};
use crate::api::pages::{self, Nav};
use crate::api::permissions;
use crate::api::permissions::Action;
use crate::api::request::{
    Body, Deferred, Form, FormBody, Input, JsonBody, JsonObject, RequestContext, any_token, required_header_token,
};
use crate::api::{AppState, views};
use crate::app::roles::{self, RolesChange};
use crate::app::{admin, forgetting};
use crate::domain::names::check_length;

use crate::app::accounts::{self, NewLocalAccount};
use crate::domain::{AuthError, CustomRoleId, DisplayName, EmailAddress, ErrorType, Role, UserName};

/// Members of `POST /admin/localaccount/create`'s body (JSON or form).
#[derive(ToSchema)]
pub struct LocalAccountRequest {
    /// The new account's user name.
    #[schema(value_type = String, required)]
    user: Deferred<String>,
    #[schema(value_type = String, required)]
    display: Deferred<String>,
    #[schema(value_type = String, required)]
    email: Deferred<String>,
}

impl JsonBody for LocalAccountRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // Their types answer after the token's presence, where they are used.
        Ok(Self { user: json.string("user"), display: json.string("display"), email: json.string("email") })
    }
}

impl FormBody for LocalAccountRequest {
    fn from_form(form: &Form) -> Self {
        Self { user: Ok(form.text("user")), display: Ok(form.text("display")), email: Ok(form.text("email")) }
    }
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
    request_body(content(
        (LocalAccountRequest = "application/json"),
        (LocalAccountRequest = "application/x-www-form-urlencoded"),
    )),
    responses(
        (status = 200, description = "The account and its temporary password (a page for a browser).",
            content((LocalAccountCreated = "application/json"), (String = "text/html"))),
        (status = 400, description = "A missing or illegal member, an unknown member, a taken user name.",
            body = ErrorEnvelope),
        (status = 403, description = "Not allowed to create local accounts.", body = ErrorEnvelope),
    ),
)]
pub async fn create_local_account(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Response, ApiError> {
    let input = body.input()?;
    let request: LocalAccountRequest = input.read()?;
    let token = any_token(&context.headers)?;
    let (user, display, email) = (request.user?, request.display?, request.email?);
    let name = UserName::parse(user.as_deref())?;
    let created = name.clone();
    let display_name = DisplayName::parse(display.as_deref())?;
    let email_address = EmailAddress::parse(email.as_deref())?;
    let caller = state.login_caller(&token, Some(Action::CreateLocalAccount))?;
    let account = NewLocalAccount { user: name, display: display_name, email: email_address };
    let temporary = accounts::create_local_account(&state.ledger, account, &caller.acting(&context)).await?;
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
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 200, description = "The account (a page for a browser).",
            content((views::AdminUserView = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal user name.", body = ErrorEnvelope),
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
pub struct RolesRequest {
    /// The built-in role ids the user should hold (`Root` never changes here).
    #[schema(value_type = Option<Vec<String>>)]
    roles: Option<Vec<Option<String>>>,
}

impl JsonBody for RolesRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { roles: json.string_list("roles")? })
    }
}

/// The built-in roles a body asks for: `{"roles": [...]}` or form keys named after roles.
fn requested_roles(input: &Input) -> Result<BTreeSet<Role>, ApiError> {
    match input {
        Input::Json(json) => {
            let request: RolesRequest = json.read()?;
            let mut roles = BTreeSet::new();
            for id in request.roles.unwrap_or_default() {
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
    params(("user" = String, Path, description = "The user name.")),
    request_body(
        description = "JSON: `roles`, a list of role ids. A form: each wanted role id as a key (values ignored).",
        content((RolesRequest = "application/json"), (BTreeMap<String, String> = "application/x-www-form-urlencoded")),
    ),
    responses(
        (status = 204, description = "The roles are set."),
        (status = 400, description = "An illegal user name, an unknown role or member.",
            body = ErrorEnvelope),
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

impl JsonBody for UserRolesChange {
    /// Each list's null items refused.
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            add_roles: json.strings("addRoles")?,
            remove_roles: json.strings("removeRoles")?,
            add_custom_roles: json.strings("addCustomRoles")?,
            remove_custom_roles: json.strings("removeCustomRoles")?,
        })
    }
}

/// Adds and removes a user's built-in and custom roles in one step (auth2's
/// develop line), by the rules of the two role endpoints.
#[utoipa::path(
    post,
    path = "/api/V2/admin/users/{user}/roles",
    // The JSON API: the header token only, not the session cookie of the admin pages.
    security(("token" = [])),
    tag = "admin",
    params(("user" = String, Path, description = "The user name.")),
    request_body(content = UserRolesChange, content_type = "application/json"),
    responses(
        (status = 204, description = "Changed (one event per kind of change), or nothing to change."),
        (status = 400, description = "An illegal user name, an unknown role, a role both added and removed, an \
            unknown member.", body = ErrorEnvelope),
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
    let request: UserRolesChange = body.read()?;
    let role = |id: String| Role::from_id(&id).ok_or_else(|| ApiError::from(AuthError::new(ErrorType::NoSuchRole, id)));
    let custom = |id: String| CustomRoleId::parse(Some(&id)).map_err(ApiError::from);
    let ids = |ids: Option<Vec<String>>| ids.unwrap_or_default().into_iter();
    let change = RolesChange {
        add: ids(request.add_roles).map(role).collect::<Result<_, _>>()?,
        remove: ids(request.remove_roles).map(role).collect::<Result<_, _>>()?,
        add_custom: ids(request.add_custom_roles).map(custom).collect::<Result<_, _>>()?,
        remove_custom: ids(request.remove_custom_roles).map(custom).collect::<Result<_, _>>()?,
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
pub struct CustomRolesRequest {
    /// The custom role ids the user should hold.
    #[schema(value_type = Option<Vec<String>>)]
    customroles: Option<Vec<Option<String>>>,
}

impl JsonBody for CustomRolesRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { customroles: json.string_list("customroles")? })
    }
}

/// Replaces the user's custom roles with the requested set.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/customroles",
    tag = "admin",
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
        (status = 400, description = "An illegal user name or role id, an unknown role or member.",
            body = ErrorEnvelope),
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
            let request: CustomRolesRequest = json.read()?;
            let mut wanted = BTreeSet::new();
            for id in request.customroles.unwrap_or_default() {
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

/// Members of `POST /admin/user/{user}/disable`'s JSON body.
#[derive(ToSchema)]
pub struct DisableRequest {
    /// `true` disables the account, `false` enables it.
    #[schema(value_type = bool, required)]
    disable: Option<bool>,
    /// Why (required to disable; at most 1000 characters).
    disabledreason: Option<String>,
}

impl JsonBody for DisableRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { disable: json.boolean("disable")?, disabledreason: json.string("disabledreason")? })
    }
}

/// The same as a form: a present `disable` disables, an absent one enables.
#[derive(ToSchema)]
pub struct DisableForm {
    /// Present (any value): disable; absent: enable.
    disable: Option<String>,
    /// Why (required to disable).
    disabledreason: Option<String>,
}

impl FormBody for DisableForm {
    fn from_form(form: &Form) -> Self {
        Self { disable: form.text("disable"), disabledreason: form.text("disabledreason") }
    }
}

/// Disables an account (a reason is required) or enables it again.
///
/// `{"disable": true, "disabledreason": "..."}` disables; `false` enables.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/disable",
    tag = "admin",
    params(("user" = String, Path, description = "The user name.")),
    request_body(content((DisableRequest = "application/json"), (DisableForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Disabled or enabled."),
        (status = 400, description = "An illegal user name, no `disable` or reason, an unknown member.",
            body = ErrorEnvelope),
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
            let request: DisableRequest = json.read()?;
            (request.disable.ok_or_else(|| AuthError::missing("disable"))?, request.disabledreason)
        }
        Input::Form(form) => {
            let request: DisableForm = form.read();
            (request.disable.is_some(), request.disabledreason)
        }
    };
    let reason = if disable { Some(check_length(reason.as_deref(), "reason", 1000)?.to_owned()) } else { None };
    let caller = administrator(&state, &context, Action::DisableOrEnableUser)?;
    admin::disable(&state.ledger, &caller.acting(&context), &name, reason).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Members of `POST /admin/user/{user}/forget`'s JSON body.
#[derive(ToSchema)]
pub struct ForgetRequest {
    /// Why (required; at most 1000 characters). Kept in the log with the forget.
    #[schema(value_type = String, required)]
    reason: Option<String>,
}

impl JsonBody for ForgetRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { reason: json.string("reason")? })
    }
}

/// Fields of the user page's forget form.
#[derive(ToSchema)]
pub struct ForgetForm {
    /// Why (required; at most 1000 characters).
    #[schema(value_type = String, required)]
    reason: Option<String>,
    /// The user name typed again: a browser's forget is refused unless it
    /// names the account it forgets.
    #[schema(value_type = String, required)]
    confirm: Option<String>,
}

impl FormBody for ForgetForm {
    fn from_form(form: &Form) -> Self {
        Self { reason: form.text("reason"), confirm: form.text("confirm") }
    }
}

/// Forgets a person: every row of the log that names them is rewritten to a
/// pseudonym (the chain still verifies), their tokens and secrets go, and
/// nothing resolves them any more. Answers once this server is done.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/forget",
    tag = "admin",
    params(("user" = String, Path, description = "The user name.")),
    request_body(content((ForgetRequest = "application/json"), (ForgetForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 204, description = "Forgotten."),
        (status = 400, description = "An illegal user name, no reason, an unknown member; a form whose `confirm` \
            is not the user name.", body = ErrorEnvelope),
        (status = 403, description = "Not an Admin, or the root account.", body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn forget(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = parse_user(&user)?;
    let reason = match body.input()? {
        Input::Json(json) => json.read::<ForgetRequest>()?.reason,
        Input::Form(form) => {
            let request: ForgetForm = form.read();
            if request.confirm.as_deref().map(str::trim) != Some(name.as_str()) {
                return Err(AuthError::illegal(format!("type the user name {name} to confirm the forget")).into());
            }
            request.reason
        }
    };
    let reason = check_length(reason.as_deref(), "reason", 1000)?.to_owned();
    let caller = administrator(&state, &context, Action::ForgetUser)?;
    let acting = caller.acting(&context);
    // A client that goes away drops its handler's future: the forget runs on
    // in its own task, so the steps after the log's transaction (secrets,
    // flows, the vacuum, the journal) are never cut off halfway.
    let state = state.clone();
    tokio::spawn(async move { forgetting::forget(&state.forgetter(), &acting, &name, &reason).await })
        .await
        .map_err(|e| crate::app::AppError::internal(format!("the forget's task ended: {e}")))??;
    Ok(StatusCode::NO_CONTENT)
}

/// Requires the user to change the password at the next login.
#[utoipa::path(
    post,
    path = "/admin/user/{user}/forcereset",
    tag = "admin",
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 204, description = "The reset is required."),
        (status = 400, description = "An illegal user name.", body = ErrorEnvelope),
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
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 204, description = "Unlocked."),
        (status = 400, description = "An illegal user name.", body = ErrorEnvelope),
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
    responses(
        (status = 204, description = "The resets are required."),
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
    params(("user" = String, Path, description = "The user name.")),
    responses(
        (status = 200, description = "The temporary password (a page for a browser).",
            content((TemporaryPassword = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal user name.", body = ErrorEnvelope),
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

/// The form that creates a local account.
#[utoipa::path(
    get,
    path = "/admin/localaccount",
    tag = "admin",
    responses(
        (status = 200, description = "The page.", content_type = "text/html", body = String),
        (status = 403, description = "Not allowed to create local accounts.", body = ErrorEnvelope),
    ),
)]
pub async fn local_account_page(State(state): State<AppState>, context: RequestContext) -> Result<Response, ApiError> {
    let caller = administrator(&state, &context, Action::CreateLocalAccount)?;
    pages::admin::local_account(Nav::of_caller(&caller))
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(local_account_page))
        .routes(routes!(create_local_account))
        .routes(routes!(user))
        .routes(routes!(set_roles))
        .routes(routes!(set_custom_roles))
        .routes(routes!(change_user_roles))
        .routes(routes!(disable))
        .routes(routes!(forget))
        .routes(routes!(force_reset))
        .routes(routes!(unlock))
        .routes(routes!(reset_password))
        .routes(routes!(force_reset_all))
}
