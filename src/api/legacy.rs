//! The legacy endpoints (contract §7) that old KBase and Globus clients call,
//! against the main log or, under `/testmode`, against test mode's. The same
//! handlers serve both; a [`Realm`] says which log a request reads.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorEnvelope};
use super::request::{Body, FirstQuery, Form, FormBody};
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
            let user = state.ledger.user(name).filter(|u| !u.is_disabled()).ok_or_else(|| no_such_user(name))?;
            Ok(LegacyUser { name: user.name, display: user.display, email: user.email })
        }
        Realm::Test => {
            let user = test_mode::ledger(state)?.user(name).ok_or_else(|| no_such_user(name))?;
            Ok(LegacyUser { name: user.name, display: user.display.to_string(), email: None })
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

/// The legacy KBase login's GET: always 401, with a fixed text.
///
/// An HTML-only endpoint, so a client that accepts no HTML gets 406.
#[utoipa::path(
    get,
    path = "/api/legacy/KBase/Sessions/Login",
    tag = "legacy",
    responses(
        (status = 401, description = "Always: a fixed text, for compatibility with the old Java client.",
            content_type = "text/html", body = String),
        (status = 406, description = "The client accepts no HTML.", body = ErrorEnvelope),
    ),
)]
pub async fn kbase_get(headers: HeaderMap) -> Response {
    if !accepts_html(&headers) {
        return ApiError::framework(StatusCode::NOT_ACCEPTABLE, false).into_response();
    }
    (StatusCode::UNAUTHORIZED, [(header::CONTENT_TYPE, "text/html")], KBASE_GET_TEXT).into_response()
}

/// The legacy KBase login's GET under test mode: always 401, with a fixed text.
///
/// An HTML-only endpoint, so a client that accepts no HTML gets 406.
#[utoipa::path(
    get,
    path = "/testmode/api/legacy/KBase/Sessions/Login",
    tag = "legacy",
    responses(
        (status = 401, description = "Always: a fixed text, for compatibility with the old Java client.",
            content_type = "text/html", body = String),
        (status = 406, description = "The client accepts no HTML.", body = ErrorEnvelope),
    ),
)]
pub async fn test_kbase_get(headers: HeaderMap) -> Response {
    kbase_get(headers).await
}

/// The legacy KBase login's form. Only `application/x-www-form-urlencoded`
/// with no parameters (a `charset` reads as no token).
#[derive(ToSchema)]
pub struct KBaseLoginForm {
    /// The token to look up.
    #[schema(value_type = String, required)]
    token: Option<String>,
    /// Comma-separated extra members to answer: `name`, `email`, `token`.
    fields: Option<String>,
}

impl FormBody for KBaseLoginForm {
    fn from_form(form: &Form) -> Self {
        Self { token: form.text("token"), fields: form.text("fields") }
    }
}

/// The legacy KBase login's answer: `user_id`, and the members `fields` asked for.
#[derive(Debug, Serialize, ToSchema)]
pub struct KBaseLogin {
    /// The token, when `fields` names `token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// The display name, when `fields` names `name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The email address (`null` when there is none), when `fields` names `email`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// The token's owner.
    #[schema(value_type = String)]
    pub user_id: UserName,
}

/// The legacy KBase login: who a token belongs to.
#[utoipa::path(
    post,
    path = "/api/legacy/KBase/Sessions/Login",
    tag = "legacy",
    request_body(content((KBaseLoginForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The token's owner, and the members asked for.", body = KBaseLogin),
        (status = 400, description = "No token (also a form with a charset parameter), or an unreadable form.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 403, description = "A disabled account.", body = ErrorEnvelope),
        (status = 415, description = "A body that is not a form.", body = ErrorEnvelope),
    ),
)]
pub async fn kbase_login(state: State<AppState>, headers: HeaderMap, body: Body) -> Result<Json<KBaseLogin>, ApiError> {
    kbase(&state, Realm::Main, &headers, &body)
}

/// The legacy KBase login against test mode's tokens.
#[utoipa::path(
    post,
    path = "/testmode/api/legacy/KBase/Sessions/Login",
    tag = "legacy",
    request_body(content((KBaseLoginForm = "application/x-www-form-urlencoded"))),
    responses(
        (status = 200, description = "The token's owner, and the members asked for.", body = KBaseLogin),
        (status = 400, description = "No token (also a form with a charset parameter), an unreadable form, or test mode is off.", body = ErrorEnvelope),
        (status = 401, description = "An invalid token.", body = ErrorEnvelope),
        (status = 404, description = "The token's owner is gone (its hour is over).", body = ErrorEnvelope),
        (status = 415, description = "A body that is not a form.", body = ErrorEnvelope),
    ),
)]
pub async fn test_kbase_login(
    state: State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<KBaseLogin>, ApiError> {
    kbase(&state, Realm::Test, &headers, &body)
}

fn kbase(state: &AppState, realm: Realm, headers: &HeaderMap, body: &Body) -> Result<Json<KBaseLogin>, ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok());
    let media = content_type.map(|v| v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase());
    let missing_token = || ApiError::from(AuthError::missing("token"));
    let form: KBaseLoginForm = match (content_type, media.as_deref()) {
        // Upstream compares the whole media type, so a charset parameter is "no token".
        (Some(value), Some("application/x-www-form-urlencoded")) if !value.contains(';') => {
            Form::parse(&body.bytes)?.read()
        }
        (Some(_), Some("application/x-www-form-urlencoded")) => return Err(missing_token()),
        // No content type: an empty body reads as no form; any other is octet-stream, which nothing reads.
        (None, _) if body.bytes.is_empty() => return Err(missing_token()),
        (None, _) => return Err(ApiError::framework(StatusCode::UNSUPPORTED_MEDIA_TYPE, true)),
        _ => return Err(ApiError::framework(StatusCode::UNSUPPORTED_MEDIA_TYPE, false)),
    };
    let token = java_trim(form.token.as_deref().unwrap_or_default());
    if token.is_empty() {
        return Err(missing_token());
    }
    let (mut name, mut email, mut echo) = (false, false, false);
    for field in form.fields.as_deref().unwrap_or_default().split(',').map(java_trim) {
        match field {
            "name" => name = true,
            "email" => email = true,
            "token" => echo = true,
            _ => {}
        }
    }
    let token_member = echo.then(|| token.to_owned());
    let view = find_token(state, realm, token)?;
    let answer = if name || email {
        let user = owner(state, realm, &view)?;
        KBaseLogin {
            token: token_member,
            name: name.then_some(user.display),
            email: email.then_some(user.email),
            user_id: user.name,
        }
    } else {
        KBaseLogin { token: token_member, name: None, email: None, user_id: view.user }
    };
    Ok(Json(answer))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GrantQuery {
    /// Must be `client_credentials` (anything else, or none, is a 400).
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

/// The Globus token answer: the token's owner and lifetime.
#[derive(Debug, Serialize, ToSchema)]
pub struct GlobusToken {
    /// The token, as given.
    pub access_token: String,
    #[schema(value_type = String)]
    pub client_id: UserName,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// When it expires (epoch seconds).
    pub expiry: i64,
    /// When it was made (epoch seconds).
    pub issued_on: i64,
    /// Seconds from made to expiry.
    pub lifetime: i64,
    /// Always empty.
    pub refresh_token: &'static str,
    /// Always empty.
    pub scopes: Vec<String>,
    pub token_id: Uuid,
    /// Always `Bearer`.
    pub token_type: &'static str,
    #[schema(value_type = String)]
    pub user_name: UserName,
}

/// The legacy Globus token endpoint: the token in the Globus headers, described.
#[utoipa::path(
    get,
    path = "/api/legacy/globus/goauth/token",
    tag = "legacy",
    params(
        GrantQuery,
        ("globus-goauthtoken" = Option<String>, Header, description = "The token."),
        ("x-globus-goauthtoken" = Option<String>, Header, description = "The token, when `globus-goauthtoken` is absent or blank."),
    ),
    responses(
        (status = 200, description = "The token.", body = GlobusToken),
        (status = 400, description = "A grant type other than `client_credentials`.", body = ErrorEnvelope),
        (status = 403, description = "No token, or an invalid one.", body = ErrorEnvelope),
    ),
)]
pub async fn globus_token_endpoint(
    state: State<AppState>,
    headers: HeaderMap,
    FirstQuery(query): FirstQuery<GrantQuery>,
) -> Result<Json<GlobusToken>, ApiError> {
    globus_token_answer(&state, Realm::Main, &headers, &query)
}

/// The legacy Globus token endpoint against test mode's tokens.
#[utoipa::path(
    get,
    path = "/testmode/api/legacy/globus/goauth/token",
    tag = "legacy",
    params(
        GrantQuery,
        ("globus-goauthtoken" = Option<String>, Header, description = "The token."),
        ("x-globus-goauthtoken" = Option<String>, Header, description = "The token, when `globus-goauthtoken` is absent or blank."),
    ),
    responses(
        (status = 200, description = "The token.", body = GlobusToken),
        (status = 400, description = "A grant type other than `client_credentials`, or test mode is off.", body = ErrorEnvelope),
        (status = 403, description = "No token, or an invalid one.", body = ErrorEnvelope),
    ),
)]
pub async fn test_globus_token_endpoint(
    state: State<AppState>,
    headers: HeaderMap,
    FirstQuery(query): FirstQuery<GrantQuery>,
) -> Result<Json<GlobusToken>, ApiError> {
    globus_token_answer(&state, Realm::Test, &headers, &query)
}

fn globus_token_answer(
    state: &AppState,
    realm: Realm,
    headers: &HeaderMap,
    query: &GrantQuery,
) -> Result<Json<GlobusToken>, ApiError> {
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
    Ok(Json(GlobusToken {
        access_token: token,
        client_id: view.user.clone(),
        expires_in: expires - seconds(state.now()),
        expiry: expires,
        issued_on: created,
        lifetime: expires - created,
        refresh_token: "",
        scopes: Vec::new(),
        token_id: view.id,
        token_type: "Bearer",
        user_name: view.user,
    }))
}

/// A user as the legacy Globus API shows one.
#[derive(Debug, Serialize, ToSchema)]
pub struct GlobusUser {
    #[schema(value_type = String)]
    pub username: UserName,
    /// Always `false`.
    pub email_validated: bool,
    /// Always empty.
    pub ssh_pubkeys: Vec<String>,
    /// Always `users`.
    pub resource_type: &'static str,
    /// The display name.
    pub full_name: String,
    /// Always `null`.
    pub organization: Option<String>,
    /// The display name.
    pub fullname: String,
    #[schema(value_type = String)]
    pub user_name: UserName,
    /// Only for the token's own user; `null` otherwise (or when there is none).
    pub email: Option<String>,
    /// Always empty.
    pub custom_fields: BTreeMap<String, String>,
}

/// The legacy Globus user lookup.
///
/// The token comes in `Authorization: <scheme> <token>` (exactly two parts),
/// else in `globus-goauthtoken` or `x-globus-goauthtoken`.
#[utoipa::path(
    get,
    path = "/api/legacy/globus/users/{user}",
    tag = "legacy",
    params(
        ("user" = String, Path, description = "The user's name."),
        ("globus-goauthtoken" = Option<String>, Header, description = "The token, when there is no `Authorization` header."),
        ("x-globus-goauthtoken" = Option<String>, Header, description = "The token, when neither `Authorization` nor `globus-goauthtoken` has one."),
    ),
    responses(
        (status = 200, description = "The user.", body = GlobusUser),
        (status = 400, description = "An illegal user name.", body = ErrorEnvelope),
        (status = 403, description = "No token, a malformed `Authorization` header, an invalid token, or a disabled account.", body = ErrorEnvelope),
        (status = 404, description = "No such user (or a disabled one).", body = ErrorEnvelope),
    ),
)]
pub async fn globus_user(
    state: State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<Json<GlobusUser>, ApiError> {
    globus_user_answer(&state, Realm::Main, &headers, &user)
}

/// The legacy Globus user lookup against test mode's users.
///
/// The token comes in `Authorization: <scheme> <token>` (exactly two parts),
/// else in `globus-goauthtoken` or `x-globus-goauthtoken`.
#[utoipa::path(
    get,
    path = "/testmode/api/legacy/globus/users/{user}",
    tag = "legacy",
    params(
        ("user" = String, Path, description = "The user's name."),
        ("globus-goauthtoken" = Option<String>, Header, description = "The token, when there is no `Authorization` header."),
        ("x-globus-goauthtoken" = Option<String>, Header, description = "The token, when neither `Authorization` nor `globus-goauthtoken` has one."),
    ),
    responses(
        (status = 200, description = "The user.", body = GlobusUser),
        (status = 400, description = "An illegal user name, or test mode is off.", body = ErrorEnvelope),
        (status = 403, description = "No token, a malformed `Authorization` header, or an invalid token.", body = ErrorEnvelope),
        (status = 404, description = "No such test user (or its hour is over).", body = ErrorEnvelope),
    ),
)]
pub async fn test_globus_user(
    state: State<AppState>,
    headers: HeaderMap,
    Path(user): Path<String>,
) -> Result<Json<GlobusUser>, ApiError> {
    globus_user_answer(&state, Realm::Test, &headers, &user)
}

fn globus_user_answer(
    state: &AppState,
    realm: Realm,
    headers: &HeaderMap,
    user: &str,
) -> Result<Json<GlobusUser>, ApiError> {
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
    Ok(Json(GlobusUser {
        username: found.name.clone(),
        email_validated: false,
        ssh_pubkeys: Vec::new(),
        resource_type: "users",
        full_name: found.display.clone(),
        organization: None,
        fullname: found.display,
        user_name: found.name,
        email,
        custom_fields: BTreeMap::new(),
    }))
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(kbase_get, kbase_login))
        .routes(routes!(globus_token_endpoint))
        .routes(routes!(globus_user))
        .routes(routes!(test_kbase_get, test_kbase_login))
        .routes(routes!(test_globus_token_endpoint))
        .routes(routes!(test_globus_user))
}
