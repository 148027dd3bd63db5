//! The standard API (`/api/V2`, contract §6): introspection, agent tokens,
//! the caller's profile, user lookup and search, anonymous-id translation.
//! Checks run in the contract's order, which decides which error a client sees.

use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use uuid::Uuid;

use super::caller::acting;
use super::error::{ApiError, ErrorEnvelope};
use super::me::ProfileUpdate;
use super::permissions::{self, Action};
use super::request::{Body, Deferred, FirstQuery, JsonBody, JsonObject, RequestContext, required_header_token};
use super::{AppState, views};
use crate::app::history;
use crate::app::tokens::{self, NewToken};
use crate::domain::names::{is_blank, java_trim, parse_custom_context, parse_user_list};
use crate::domain::token::Mfa;
use crate::domain::{AuthError, ErrorType, TokenKind, TokenName, UserName};
use crate::projections::{SearchSpec, hash_token};

/// The most users or anonymous ids one lookup may name.
pub const MAX_LIST: usize = 10_000;

/// Members of `POST /api/V2/token`'s body. Read member by member in the
/// contract's order; a member outside these is refused (see `members_of`).
#[derive(ToSchema)]
pub struct AgentTokenRequest {
    /// The token's name.
    #[schema(value_type = String, required)]
    name: Deferred<String>,
    /// Free key/value context stored with the token.
    customcontext: Option<BTreeMap<String, String>>,
}

impl JsonBody for AgentTokenRequest {
    fn from_json(json: &JsonObject) -> Result<Self, ApiError> {
        // The name's type answers after the token's presence, where it is used.
        Ok(Self { name: json.string("name"), customcontext: json.string_map("customcontext")? })
    }
}

/// Introspects the token the `Authorization` header carries (the token itself, no scheme word).
#[utoipa::path(
    get,
    path = "/api/V2/token",
    tag = "api",
    responses(
        (status = 200, description = "The token.", body = views::ApiToken),
        (status = 401, description = "No such token, or it expired (10020).", body = ErrorEnvelope),
    ),
)]
pub async fn introspect(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = required_header_token(&headers)?;
    let hash = hash_token(&token);
    let body = state
        .ledger
        .with_token(&hash, views::api_token_bytes)
        .ok_or_else(|| AuthError::bare(ErrorType::InvalidToken))?;
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

/// Makes an agent token for the caller (a login token).
#[utoipa::path(
    post,
    path = "/api/V2/token",
    tag = "api",
    request_body = AgentTokenRequest,
    responses(
        (status = 200, description = "The new token, with its value (shown once).", body = views::NewApiToken),
        (status = 400, description = "A missing name, or an illegal member.", body = ErrorEnvelope),
        (status = 403, description = "Not a login token, or a disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn create_agent_token(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<views::NewApiToken>, ApiError> {
    let request: AgentTokenRequest = body.read()?;
    let custom = parse_custom_context(&request.customcontext.unwrap_or_default())?;
    let token = required_header_token(&context.headers)?;
    let name = TokenName::parse(request.name?.as_deref())?;
    let caller = state.login_caller(&token, None)?;
    let grant = NewToken {
        user: caller.name().clone(),
        kind: TokenKind::Agent,
        name: Some(name),
        custom,
        client: context.client_info(),
        mfa: Mfa::Unknown,
    };
    let (value, view) = tokens::issue(&state.ledger, grant, &context.metadata(caller.name())).await?;
    Ok(Json(views::NewApiToken::of(&view, &value, state.cache_for())))
}

/// The caller's own account.
#[utoipa::path(
    get,
    path = "/api/V2/me",
    tag = "api",
    responses(
        (status = 200, description = "The caller's account.", body = views::UserView),
        (status = 403, description = "A disabled account.", body = ErrorEnvelope),
    ),
)]
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<views::UserView>, ApiError> {
    let token = required_header_token(&headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    Ok(Json(views::UserView::of(&user)))
}

/// Changes the caller's display name and email.
#[utoipa::path(
    put,
    path = "/api/V2/me",
    tag = "api",
    request_body = ProfileUpdate,
    responses(
        (status = 204, description = "Changed (or nothing to change)."),
        (status = 400, description = "An illegal display name or email, or an unknown member.", body = ErrorEnvelope),
    ),
)]
pub async fn update_me(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let request: ProfileUpdate = body.read()?;
    let token = required_header_token(&context.headers)?;
    super::me::change_profile(&state, &context, &token, request).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Comma-separated names (or anonymous ids).
    pub list: Option<String>,
}

/// The names of a display-name lookup, checked in the contract's order: the
/// list, the token's presence, the token (`check_token`), the list's size.
pub fn lookup_names(
    list: Option<&str>,
    headers: &HeaderMap,
    check_token: impl FnOnce(&str) -> Result<(), ApiError>,
) -> Result<Vec<UserName>, ApiError> {
    let names = parse_user_list(list)?;
    check_token(&required_header_token(headers)?)?;
    if names.len() > MAX_LIST {
        return Err(AuthError::illegal(format!("User count exceeds maximum of {MAX_LIST}")).into());
    }
    Ok(names)
}

/// Display names of the named users (disabled users and root left out).
#[utoipa::path(
    get,
    path = "/api/V2/users",
    tag = "api",
    params(ListQuery),
    responses(
        (status = 200, description = "User name to display name.", body = BTreeMap<String, String>),
        (status = 400, description = "An illegal name, or too many.", body = ErrorEnvelope),
    ),
)]
pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    FirstQuery(query): FirstQuery<ListQuery>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let names = lookup_names(query.list.as_deref(), &headers, |token| state.token_view(token).map(drop))?;
    Ok(Json(state.ledger.display_names(&names)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Comma-separated fields to search: `username`, `displayname` (default both).
    fields: Option<String>,
}

/// Users whose name or display name starts with the prefix.
#[utoipa::path(
    get,
    path = "/api/V2/users/search/{prefix}",
    tag = "api",
    params(("prefix" = String, Path, description = "What the names start with."), SearchQuery),
    responses(
        (status = 200, description = "User name to display name.", body = BTreeMap<String, String>),
        (status = 400, description = "An illegal prefix or field.", body = ErrorEnvelope),
    ),
)]
pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(prefix): Path<String>,
    FirstQuery(query): FirstQuery<SearchQuery>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let token = required_header_token(&headers)?;
    let rule = state.ledger.name_rule();
    let spec = SearchSpec::parse(&prefix, query.fields.as_deref(), rule)?;
    let view = state.token_view(&token)?;
    state.user_of(&view)?;
    Ok(Json(state.ledger.search_users(&spec)))
}

/// User names behind anonymous ids (an administrator's lookup; recorded).
#[utoipa::path(
    get,
    path = "/api/V2/admin/anonids",
    tag = "api",
    params(ListQuery),
    responses(
        (status = 200, description = "Anonymous id to user name.", body = BTreeMap<String, String>),
        (status = 400, description = "An illegal id, or too many.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to see anonymous ids.", body = ErrorEnvelope),
    ),
)]
pub async fn anon_ids(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<ListQuery>,
) -> Result<Json<BTreeMap<String, String>>, ApiError> {
    let headers = &context.headers;
    let mut ids = Vec::new();
    if !is_blank(query.list.as_deref()) {
        for element in query.list.as_deref().unwrap_or_default().split(',') {
            let trimmed = java_trim(element);
            let id = Uuid::parse_str(trimmed).map_err(|_| {
                AuthError::illegal(format!("Illegal anonymous user ID [{trimmed}]: Invalid UUID string: {trimmed}"))
            })?;
            ids.push(id);
        }
    }
    let token = required_header_token(headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    permissions::check(Action::ViewAnonIds, &user.roles)?;
    if ids.len() > MAX_LIST {
        return Err(AuthError::illegal(format!("Anonymous ID count exceeds maximum of {MAX_LIST}")).into());
    }
    let found = history::translate_anon_ids(&state.ledger, &acting(&user, &context), ids).await?;
    Ok(Json(found))
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(introspect, create_agent_token))
        .routes(routes!(me, update_me))
        .routes(routes!(users))
        .routes(routes!(search))
        .routes(routes!(anon_ids))
}
