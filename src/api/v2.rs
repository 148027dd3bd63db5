//! The standard API (`/api/V2`, contract §6): introspection, agent tokens,
//! the caller's profile, user lookup and search, anonymous-id translation.
//! Checks run in the contract's order, which decides which error a client sees.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::error::ApiError;
use super::permissions::{self, Action};
use super::request::{Body, FirstQuery, RequestContext, required_header_token};
use super::{AppState, views};
use crate::app::tokens::{self, NewToken};
use crate::domain::Audit;
use crate::domain::names::{is_blank, java_trim, parse_custom_context, parse_user_list};
use crate::domain::token::Mfa;
use crate::domain::{AuditCommand, AuthError, ErrorType, TokenKind, TokenName, UserName};
use crate::projections::{SearchSpec, hash_token};

/// The most users or anonymous ids one lookup may name.
pub const MAX_LIST: usize = 10_000;

pub async fn introspect(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = required_header_token(&headers)?;
    let hash = hash_token(&token);
    let now = state.now();
    let model = state.ledger.model.read();
    let cache_for = model.config.suggested_cache_ms;
    let body = model
        .tokens
        .with_token(&hash, now, |found| views::api_token_bytes(found, cache_for))
        .ok_or_else(|| AuthError::bare(ErrorType::InvalidToken))?;
    drop(model);
    Ok(([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

pub async fn create_agent_token(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = body.json()?;
    body.reject_unexpected(&["name", "customcontext"])?;
    let custom = parse_custom_context(&body.string_map("customcontext")?.unwrap_or_default())?;
    let token = required_header_token(&context.headers)?;
    let name = TokenName::parse(body.string("name")?.as_deref())?;
    let caller = state.login_caller(&token, None)?;
    let ignore_ip = state.ignore_ip();
    let grant = NewToken {
        user: caller.name().clone(),
        kind: TokenKind::Agent,
        name: Some(name),
        custom,
        client: context.client_info(ignore_ip),
        mfa: Mfa::Unknown,
    };
    let (value, view) = tokens::issue(&state.ledger, grant, &context.metadata(caller.name(), ignore_ip)).await?;
    Ok(Json(views::new_api_token(&view, &value, state.cache_for())))
}

pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let token = required_header_token(&headers)?;
    let view = state.token_view(&token)?;
    let user = state.user_of(&view)?;
    Ok(Json(views::user(&user)))
}

pub async fn update_me(
    State(state): State<AppState>,
    context: RequestContext,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let body = body.json()?;
    body.reject_unexpected(&["display", "email"])?;
    let token = required_header_token(&context.headers)?;
    super::me::change_profile(&state, &context, &token, body.string("display")?, body.string("email")?).await
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
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

pub async fn users(
    State(state): State<AppState>,
    headers: HeaderMap,
    FirstQuery(query): FirstQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let names = lookup_names(query.list.as_deref(), &headers, |token| state.token_view(token).map(drop))?;
    let model = state.ledger.model.read();
    let found: Map<String, Value> = names
        .iter()
        .filter_map(|name| model.users.get(name))
        .filter(|u| !u.is_disabled() && !u.name.is_root())
        .map(|u| (u.name.to_string(), json!(u.display)))
        .collect();
    Ok(Json(Value::Object(found)))
}

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    fields: Option<String>,
}

pub async fn search(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(prefix): Path<String>,
    FirstQuery(query): FirstQuery<SearchQuery>,
) -> Result<Json<Value>, ApiError> {
    let token = required_header_token(&headers)?;
    let rule = state.ledger.model.read().users.rule();
    let spec = SearchSpec::parse(&prefix, query.fields.as_deref(), rule)?;
    let view = state.token_view(&token)?;
    state.user_of(&view)?;
    let model = state.ledger.model.read();
    let found: Map<String, Value> =
        model.users.search(&spec).into_iter().map(|u| (u.name.to_string(), json!(u.display))).collect();
    Ok(Json(Value::Object(found)))
}

pub async fn anon_ids(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<ListQuery>,
) -> Result<Json<Value>, ApiError> {
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
    if !ids.is_empty() {
        // Unmasking anonymous ids is recorded: who translated which.
        let command = AuditCommand::TranslateAnonIds { anon_ids: ids.clone(), at: state.now() };
        state.ledger.execute::<Audit>(&user.name, command, &context.metadata(&user.name, state.ignore_ip())).await?;
    }
    let model = state.ledger.model.read();
    let found: BTreeMap<String, Value> = ids
        .iter()
        .filter_map(|id| model.users.by_anon_id(id))
        .filter(|u| !u.is_disabled() && !u.name.is_root())
        .map(|u| (u.anon_id.to_string(), json!(u.name)))
        .collect();
    Ok(Json(json!(found)))
}
