//! The legacy endpoints (contract §7) that old KBase and Globus clients call,
//! against the main log or, under `/testmode`, against test mode's. The same
//! handlers serve both; a [`Realm`] says which log a request reads.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::request::{Body, FirstQuery, Form};
use super::{AppState, test_mode};
use crate::domain::names::java_trim;
use crate::domain::{AuthError, ErrorType, UserName};
use crate::projections::TokenView;

/// Which log a legacy request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Realm {
    Main,
    Test,
}

/// A user as the legacy endpoints show one.
struct LegacyUser {
    name: UserName,
    display: String,
    email: Option<String>,
}

/// The valid token with this value: 401 10020 when there is none; in the
/// test realm, 400 70000 first when test mode is off.
fn find_token(state: &AppState, realm: Realm, token: &str) -> Result<TokenView, ApiError> {
    match realm {
        Realm::Main => state.token_view(token),
        Realm::Test => test_mode::token_view(state, token),
    }
}

/// The token's owner. Main log: a disabled owner is 403 20010. Test mode: an
/// owner whose hour is over is 404.
fn owner(state: &AppState, realm: Realm, token: &TokenView) -> Result<LegacyUser, ApiError> {
    match realm {
        Realm::Main => {
            let user = state.user_of(token)?;
            Ok(LegacyUser { name: user.name, display: user.display, email: user.email })
        }
        Realm::Test => lookup(state, realm, &token.user),
    }
}

/// Another user: 404 when missing or disabled.
fn lookup(state: &AppState, realm: Realm, name: &UserName) -> Result<LegacyUser, ApiError> {
    match realm {
        Realm::Main => {
            let model = state.ledger.model.read();
            let user = model.users.get(name).filter(|u| !u.is_disabled()).ok_or_else(|| no_such_user(name))?;
            Ok(LegacyUser { name: user.name.clone(), display: user.display.clone(), email: user.email.clone() })
        }
        Realm::Test => {
            let ledger = test_mode::ledger(state)?;
            let now = state.now();
            let model = ledger.model.read();
            let user = model.user(name, now).ok_or_else(|| no_such_user(name))?;
            Ok(LegacyUser { name: user.name.clone(), display: user.display.to_string(), email: None })
        }
    }
}

fn no_such_user(name: &UserName) -> ApiError {
    AuthError::no_such_user(name.as_str()).into()
}

/// Globus answers 403 where the rest of the API answers 401 or 400.
fn forbidden(kind: ErrorType, detail: Option<&str>) -> ApiError {
    let error = match detail {
        Some(detail) => AuthError::new(kind, detail),
        None => AuthError::bare(kind),
    };
    ApiError { status: StatusCode::FORBIDDEN, ..error.into() }
}

/// A Globus lookup's token error: an invalid token is a 403 "Authentication failed" (`detail`).
fn globus_token(state: &AppState, realm: Realm, token: &str, detail: &str) -> Result<TokenView, ApiError> {
    find_token(state, realm, token).map_err(|error| match error.kind {
        Some(ErrorType::InvalidToken) => forbidden(ErrorType::InvalidToken, Some(detail)),
        _ => error,
    })
}

const KBASE_GET_TEXT: &str = "This GET method is just here for compatibility with the old java client and does \
                              nothing useful. Here's the compatibility part: \"user_id\": null";

/// Whether the `Accept` header admits HTML (absent: anything goes).
fn accepts_html(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).peekable();
    if values.peek().is_none() {
        return true;
    }
    values.flat_map(|v| v.split(',')).any(|item| {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let refused = parts.any(|p| p.trim().strip_prefix("q=").is_some_and(|q| q.trim().parse::<f32>() == Ok(0.0)));
        !refused && matches!(media.as_str(), "text/html" | "text/*" | "*/*")
    })
}

/// `GET /api/legacy/KBase/Sessions/Login`: always 401, with a fixed text — an
/// HTML-only endpoint, so a client that accepts no HTML gets 406.
pub async fn kbase_get(headers: HeaderMap) -> Response {
    if !accepts_html(&headers) {
        return ApiError::framework(StatusCode::NOT_ACCEPTABLE, false).into_response();
    }
    (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/html")], KBASE_GET_TEXT).into_response()
}

/// `POST /api/legacy/KBase/Sessions/Login` with the form `token`, `fields`.
pub async fn kbase_login(state: State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    kbase(&state, Realm::Main, &headers, &body)
}

pub async fn test_kbase_login(state: State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<Value>, ApiError> {
    kbase(&state, Realm::Test, &headers, &body)
}

fn kbase(state: &AppState, realm: Realm, headers: &HeaderMap, body: &Body) -> Result<Json<Value>, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let media = content_type.map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    let missing_token = || ApiError::from(AuthError::missing("token"));
    let form = match (content_type, media.as_deref()) {
        // Upstream compares the whole media type, so a charset parameter is "no token".
        (Some(value), Some("application/x-www-form-urlencoded")) if !value.contains(';') => Form::parse(&body.bytes)?,
        (Some(_), Some("application/x-www-form-urlencoded")) => return Err(missing_token()),
        // No content type: an empty body reads as no form; any other is octet-stream, which nothing reads.
        (None, _) if body.bytes.is_empty() => return Err(missing_token()),
        (None, _) => return Err(ApiError::framework(StatusCode::UNSUPPORTED_MEDIA_TYPE, true)),
        _ => return Err(ApiError::framework(StatusCode::UNSUPPORTED_MEDIA_TYPE, false)),
    };
    let token = java_trim(form.get("token").unwrap_or_default());
    if token.is_empty() {
        return Err(missing_token());
    }
    let mut answer = Map::new();
    let (mut name, mut email) = (false, false);
    for field in form.get("fields").unwrap_or_default().split(',').map(java_trim) {
        match field {
            "name" => name = true,
            "email" => email = true,
            "token" => {
                answer.insert("token".into(), json!(token));
            }
            _ => {}
        }
    }
    let view = find_token(state, realm, token)?;
    if name || email {
        let user = owner(state, realm, &view)?;
        if name {
            answer.insert("name".into(), json!(user.display));
        }
        if email {
            answer.insert("email".into(), json!(user.email));
        }
        answer.insert("user_id".into(), json!(user.name));
    } else {
        answer.insert("user_id".into(), json!(view.user));
    }
    Ok(Json(Value::Object(answer)))
}

#[derive(Debug, Deserialize)]
pub struct GrantQuery {
    grant_type: Option<String>,
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The Globus token headers: `globus-goauthtoken`, else `x-globus-goauthtoken`; 403 10010 when neither.
fn globus_header_token(headers: &HeaderMap, preferred: Option<String>) -> Result<String, ApiError> {
    let present = |t: &Option<String>| t.as_deref().is_some_and(|t| !java_trim(t).is_empty());
    let token = if present(&preferred) {
        preferred
    } else {
        Some(header_text(headers, "x-globus-goauthtoken").unwrap_or_default().to_owned())
    };
    match token {
        Some(token) if !java_trim(&token).is_empty() => Ok(java_trim(&token).to_owned()),
        _ => Err(forbidden(ErrorType::NoTokenProvided, None)),
    }
}

/// `GET /api/legacy/globus/goauth/token?grant_type=client_credentials`.
pub async fn globus_token_endpoint(
    state: State<AppState>,
    headers: HeaderMap,
    FirstQuery(query): FirstQuery<GrantQuery>,
) -> Result<Json<Value>, ApiError> {
    globus_token_answer(&state, Realm::Main, &headers, &query)
}

pub async fn test_globus_token_endpoint(
    state: State<AppState>,
    headers: HeaderMap,
    FirstQuery(query): FirstQuery<GrantQuery>,
) -> Result<Json<Value>, ApiError> {
    globus_token_answer(&state, Realm::Test, &headers, &query)
}

fn globus_token_answer(
    state: &AppState,
    realm: Realm,
    headers: &HeaderMap,
    query: &GrantQuery,
) -> Result<Json<Value>, ApiError> {
    if query.grant_type.as_deref() != Some("client_credentials") {
        let got = query.grant_type.as_deref().unwrap_or("null");
        return Err(AuthError::new(
            ErrorType::UnsupportedOperation,
            format!("Only client_credentials grant_type supported. Got {got}"),
        )
        .into());
    }
    let token = globus_header_token(headers, header_text(headers, "globus-goauthtoken").map(str::to_owned))?;
    let view = globus_token(state, realm, &token, "Authentication failed")?;
    let seconds = |ms: i64| ms.div_euclid(1000);
    let (created, expires) = (seconds(view.created), seconds(view.expires));
    Ok(Json(json!({
        "access_token": token,
        "client_id": view.user,
        "expires_in": expires - seconds(state.now()),
        "expiry": expires,
        "issued_on": created,
        "lifetime": expires - created,
        "refresh_token": "",
        "scopes": [],
        "token_id": view.id,
        "token_type": "Bearer",
        "user_name": view.user,
    })))
}

/// `GET /api/legacy/globus/users/{user}`.
pub async fn globus_user(
    state: State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    globus_user_answer(&state, Realm::Main, &headers, &user)
}

pub async fn test_globus_user(
    state: State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<Json<Value>, ApiError> {
    globus_user_answer(&state, Realm::Test, &headers, &user)
}

fn globus_user_answer(
    state: &AppState,
    realm: Realm,
    headers: &HeaderMap,
    user: &str,
) -> Result<Json<Value>, ApiError> {
    // `Authorization: <scheme> <token>`: exactly two whitespace-separated parts.
    let authorization = match header_text(headers, header::AUTHORIZATION.as_str()) {
        Some(value) => {
            let parts: Vec<&str> = java_trim(value).split_ascii_whitespace().collect();
            if parts.len() != 2 {
                return Err(forbidden(ErrorType::NoTokenProvided, Some("Invalid authorization header")));
            }
            Some(parts[1].to_owned())
        }
        None => None,
    };
    let token = globus_header_token(headers, authorization)?;
    let target = UserName::parse(Some(user))?;
    let view = globus_token(state, realm, &token, "Authentication failed.")?;
    let requester = owner(state, realm, &view)?;
    let found = lookup(state, realm, &target)?;
    let email = if requester.name == found.name { found.email.clone() } else { None };
    Ok(Json(json!({
        "username": found.name,
        "email_validated": false,
        "ssh_pubkeys": [],
        "resource_type": "users",
        "full_name": found.display,
        "organization": null,
        "fullname": found.display,
        "user_name": found.name,
        "email": email,
        "custom_fields": {},
    })))
}
