//! Test mode's endpoints (contract §8): creating throw-away users, tokens and
//! custom roles without credentials, and reading them back through the
//! test-mode mirrors of the standard API. Request validation runs first; only
//! then does a disabled test mode answer 400 70000, as upstream orders it.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::{ApiError, ErrorEnvelope};
use super::openapi::{Access, behind};
use super::request::{Body, FirstQuery, JsonBody, JsonObject, required_header_token};
use super::v2::{ListQuery, lookup_names};
use super::{AppState, root, views};
use crate::app::test_mode::TestLedger;
use crate::app::tokens::NewToken;
use crate::domain::names::parse_role_description;
use crate::domain::token::{ClientInfo, Mfa};
use crate::domain::{AuthError, CustomRoleId, DisplayName, ErrorType, Role, TokenKind, TokenName, UserName};
use crate::projections::{TokenView, hash_token};

/// The test-mode ledger; 400 70000 when test mode is off.
pub fn ledger(state: &AppState) -> Result<&Arc<TestLedger>, ApiError> {
    state
        .test_mode
        .as_ref()
        .ok_or_else(|| AuthError::new(ErrorType::UnsupportedOperation, "Test mode is not enabled").into())
}

/// The valid test token with this value (after the test-mode check).
pub fn token_view(state: &AppState, token: &str) -> Result<TokenView, ApiError> {
    ledger(state)?.token(&hash_token(token)).ok_or_else(|| AuthError::bare(ErrorType::InvalidToken).into())
}

/// The live test user as the user JSON (no email, never logged in; the
/// custom roles that still exist); 404 when there is none.
fn user_answer(ledger: &TestLedger, name: &UserName) -> Result<Json<views::UserView>, ApiError> {
    let (user, custom) = ledger.user_with_custom_roles(name).ok_or_else(|| AuthError::no_such_user(name.as_str()))?;
    let custom_roles = custom.iter().map(ToString::to_string).collect();
    let view =
        views::UserView::bare(&user.name, user.anon_id, user.display.as_str(), user.created, &user.roles, custom_roles);
    Ok(Json(view))
}

/// Test mode's root document (works with test mode off).
#[utoipa::path(
    get,
    path = "/testmode",
    operation_id = "testmode_root",
    tag = "testmode",
    responses((status = 200, description = "The root document.", body = root::RootDocument)),
)]
pub async fn root(State(state): State<AppState>) -> Json<root::RootDocument> {
    Json(root::root_document(&state))
}

/// Members of `POST /testmode/api/V2/testmodeonly/user`'s body.
#[derive(ToSchema)]
pub struct CreateTestUserRequest {
    /// The user name.
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// The display name.
    #[schema(value_type = String, required)]
    display: Option<String>,
}

impl JsonBody for CreateTestUserRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { user: json.string("user")?, display: json.string("display")? })
    }
}

/// Creates a test user (it lives for an hour).
#[utoipa::path(
    post,
    path = "/testmode/api/V2/testmodeonly/user",
    operation_id = "testmode_create_user",
    tag = "testmode",
    request_body = CreateTestUserRequest,
    responses(
        (status = 200, description = "The new test user.", body = views::UserView),
        (status = 400, description = "An illegal user or display name, an unknown member, an existing user, or test mode is off.", body = ErrorEnvelope),
    ),
)]
pub async fn create_user(State(state): State<AppState>, body: Body) -> Result<Json<views::UserView>, ApiError> {
    // Members are read (and type-checked) first, as Jackson maps the whole body before anything else.
    let request: CreateTestUserRequest = body.json()?.read_types_first()?;
    let name = UserName::parse(request.user.as_deref())?;
    let display = DisplayName::parse(request.display.as_deref())?;
    let ledger = ledger(&state)?;
    ledger.create_user(&name, display).await?;
    user_answer(ledger, &name)
}

/// A test user.
#[utoipa::path(
    get,
    path = "/testmode/api/V2/testmodeonly/user/{name}",
    operation_id = "testmode_get_user",
    tag = "testmode",
    params(("name" = String, Path, description = "The user's name.")),
    responses(
        (status = 200, description = "The test user.", body = views::UserView),
        (status = 400, description = "An illegal user name, or test mode is off.", body = ErrorEnvelope),
        (status = 404, description = "No such test user (or its hour is over).", body = ErrorEnvelope),
    ),
)]
pub async fn get_user(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<views::UserView>, ApiError> {
    let name = UserName::parse(Some(&name))?;
    let ledger = ledger(&state)?;
    user_answer(ledger, &name)
}

/// Members of `POST /testmode/api/V2/testmodeonly/token`'s body.
#[derive(ToSchema)]
pub struct CreateTestTokenRequest {
    /// The token's owner (a test user).
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// The token's name.
    name: Option<String>,
    /// `Login`, `Agent`, `Dev` or `Serv`.
    #[serde(rename = "type")]
    #[schema(value_type = String, required)]
    kind: Option<String>,
    /// `Used`, `NotUsed` or `Unknown` (the default).
    mfa: Option<String>,
}

impl JsonBody for CreateTestTokenRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            user: json.string("user")?,
            name: json.string("name")?,
            kind: json.string("type")?,
            mfa: json.string("mfa")?,
        })
    }
}

/// Creates a test token.
#[utoipa::path(
    post,
    path = "/testmode/api/V2/testmodeonly/token",
    operation_id = "testmode_create_token",
    tag = "testmode",
    request_body = CreateTestTokenRequest,
    responses(
        (status = 200, description = "The new token, with its value.", body = views::NewApiToken),
        (status = 400, description = "An illegal user name, token name, type or MFA status, an unknown member, or test mode is off.", body = ErrorEnvelope),
        (status = 404, description = "No such test user.", body = ErrorEnvelope),
    ),
)]
pub async fn create_token(State(state): State<AppState>, body: Body) -> Result<Json<views::NewApiToken>, ApiError> {
    let request: CreateTestTokenRequest = body.json()?.read_types_first()?;
    let (kind, mfa) = (request.kind, request.mfa);
    let user = UserName::parse(request.user.as_deref())?;
    let name = match request.name {
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
    Ok(Json(views::NewApiToken::of(&view, &value, state.cache_for())))
}

/// The caller's test token.
#[utoipa::path(
    get,
    path = "/testmode/api/V2/token",
    operation_id = "testmode_introspect",
    tag = "testmode",
    responses(
        (status = 200, description = "The token.", body = views::ApiToken),
        (status = 400, description = "No token, or test mode is off.", body = ErrorEnvelope),
        (status = 401, description = "No such test token, or it expired.", body = ErrorEnvelope),
    ),
)]
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<views::ApiToken>, ApiError> {
    let token = required_header_token(&headers)?;
    let view = token_view(&state, &token)?;
    Ok(Json(views::ApiToken::of(&view, state.cache_for())))
}

/// The test token's owner.
#[utoipa::path(
    get,
    path = "/testmode/api/V2/me",
    operation_id = "testmode_me",
    tag = "testmode",
    responses(
        (status = 200, description = "The token's owner.", body = views::UserView),
        (status = 400, description = "No token, or test mode is off.", body = ErrorEnvelope),
        (status = 401, description = "An invalid test token.", body = ErrorEnvelope),
        (status = 404, description = "The owner's hour is over.", body = ErrorEnvelope),
    ),
)]
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<views::UserView>, ApiError> {
    let token = required_header_token(&headers)?;
    let view = token_view(&state, &token)?;
    user_answer(ledger(&state)?, &view.user)
}

/// Display names of live test users.
#[utoipa::path(
    get,
    path = "/testmode/api/V2/users",
    operation_id = "testmode_users",
    tag = "testmode",
    params(ListQuery),
    responses(
        (status = 200, description = "User name to display name.", body = BTreeMap<String, String>),
        (status = 400, description = "An illegal name, too many, no token, or test mode is off.", body = ErrorEnvelope),
        (status = 401, description = "An invalid test token.", body = ErrorEnvelope),
    ),
)]
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    FirstQuery(query): FirstQuery<ListQuery>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let names = lookup_names(query.list.as_deref(), &headers, |token| token_view(&state, token).map(drop))?;
    Ok(Json(ledger(&state)?.display_names(&names)))
}

/// Members of `POST /testmode/api/V2/testmodeonly/customroles`'s body.
#[derive(ToSchema)]
pub struct TestCustomRoleRequest {
    /// The role's id.
    #[schema(value_type = String, required)]
    id: Option<String>,
    /// The role's description.
    #[schema(value_type = String, required)]
    desc: Option<String>,
}

impl JsonBody for TestCustomRoleRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self { id: json.string("id")?, desc: json.string("desc")? })
    }
}

/// Creates or replaces a test custom role, whose hour starts again.
#[utoipa::path(
    post,
    path = "/testmode/api/V2/testmodeonly/customroles",
    operation_id = "testmode_set_custom_role",
    tag = "testmode",
    request_body = TestCustomRoleRequest,
    responses(
        (status = 204, description = "The role is set."),
        (status = 400, description = "An illegal id or description, an unknown member, or test mode is off.", body = ErrorEnvelope),
    ),
)]
pub async fn set_custom_role(State(state): State<AppState>, body: Body) -> Result<StatusCode, ApiError> {
    let request: TestCustomRoleRequest = body.json()?.read_types_first()?;
    let id = CustomRoleId::parse(request.id.as_deref())?;
    let description = parse_role_description(request.desc.as_deref())?;
    ledger(&state)?.set_custom_role(&id, description).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The live test custom roles.
#[utoipa::path(
    get,
    path = "/testmode/api/V2/testmodeonly/customroles",
    operation_id = "testmode_custom_roles",
    tag = "testmode",
    responses(
        (status = 200, description = "The test custom roles.", body = views::CustomRoles),
        (status = 400, description = "Test mode is off.", body = ErrorEnvelope),
    ),
)]
pub async fn custom_roles(State(state): State<AppState>) -> Result<Json<views::CustomRoles>, ApiError> {
    Ok(Json(views::CustomRoles::of(&ledger(&state)?.custom_roles())))
}

/// Reads a role list member where `null` items are refused with `message`.
fn list_without_nulls(items: Option<Vec<Option<String>>>, message: &str) -> Result<Vec<String>, ApiError> {
    items.unwrap_or_default().into_iter().map(|item| item.ok_or_else(|| AuthError::illegal(message).into())).collect()
}

/// Members of `PUT /testmode/api/V2/testmodeonly/userroles`'s body.
#[derive(ToSchema)]
pub struct TestUserRolesRequest {
    /// The test user.
    #[schema(value_type = String, required)]
    user: Option<String>,
    /// Built-in role ids (none when absent).
    #[schema(value_type = Option<Vec<String>>)]
    roles: Option<Vec<Option<String>>>,
    /// Test custom role ids (none when absent).
    #[schema(value_type = Option<Vec<String>>)]
    customroles: Option<Vec<Option<String>>>,
}

impl JsonBody for TestUserRolesRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        Ok(Self {
            user: json.string("user")?,
            roles: json.string_list("roles")?,
            customroles: json.string_list("customroles")?,
        })
    }
}

/// Replaces a test user's roles (absent lists mean none).
#[utoipa::path(
    put,
    path = "/testmode/api/V2/testmodeonly/userroles",
    operation_id = "testmode_set_user_roles",
    tag = "testmode",
    request_body = TestUserRolesRequest,
    responses(
        (status = 204, description = "The roles are replaced."),
        (status = 400, description = "An illegal user name, an unknown role or custom role, a null item, an unknown member, or test mode is off.", body = ErrorEnvelope),
        (status = 404, description = "No such test user.", body = ErrorEnvelope),
    ),
)]
pub async fn set_user_roles(State(state): State<AppState>, body: Body) -> Result<StatusCode, ApiError> {
    let request: TestUserRolesRequest = body.json()?.read_types_first()?;
    let roles = list_without_nulls(request.roles, "Null item in roles")?;
    let custom = list_without_nulls(request.customroles, "Null item in custom roles")?;
    let user = UserName::parse(request.user.as_deref())?;
    let mut built_in = BTreeSet::new();
    for id in &roles {
        // Root is not a role a test user can hold (upstream: a 500 from its storage layer).
        match Role::from_id(id).filter(|r| *r != Role::Root) {
            Some(role) => built_in.insert(role),
            None => return Err(AuthError::illegal(format!("Invalid role id: {id}")).into()),
        };
    }
    ledger(&state)?.replace_roles(&user, built_in, &custom).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forgets all test data (204 even with test mode off).
#[utoipa::path(
    delete,
    path = "/testmode/api/V2/testmodeonly/clear",
    operation_id = "testmode_clear",
    tag = "testmode",
    responses((status = 204, description = "All test data is gone.")),
)]
pub async fn clear(State(state): State<AppState>) -> Result<StatusCode, ApiError> {
    if let Some(ledger) = &state.test_mode {
        ledger.clear().await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(root))
        .routes(routes!(create_user))
        .routes(routes!(get_user))
        .routes(routes!(create_token))
        .routes(routes!(custom_roles, set_custom_role))
        .routes(routes!(set_user_roles))
        .routes(routes!(clear))
        .merge(behind(
            Access::Token,
            OpenApiRouter::new().routes(routes!(introspect)).routes(routes!(me)).routes(routes!(users)),
        ))
}
