//! The request pipeline: the one middleware around every route (one
//! layer, so introspection pays for one). In order: cross-site cookie
//! writes and oversized headers are refused ([`guard`]); the request gets
//! its call id; the handler runs; a browser's successful form post is sent
//! back to its page (post/redirect/get); every error response becomes the
//! envelope, JSON or a page as the client prefers; every answer gets the
//! security headers.

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};

use super::consistency::POSITION_HEADER;
use super::error::{ApiError, ErrorBody, ErrorEnvelope, MediaType, accepted_of, envelope};
use super::request::{CallId, SESSION_COOKIE};
use super::{AppState, guard, pages};

/// The one middleware around every route (one layer, so introspection pays
/// for one): refuses cross-site cookie writes ([`guard`]), gives each request
/// a call id, turns every error response into the envelope, sends a browser
/// whose form post succeeded back to its page, and adds the security headers
/// to every answer.
pub async fn render_errors(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    // Kept aside unparsed: only an error (or a browser's form post) needs it.
    let accept: Vec<HeaderValue> = request.headers().get_all(header::ACCEPT).iter().cloned().collect();
    let form_post = (request.method() == Method::POST).then(|| request.uri().path().to_owned());
    let call_id = CallId::default();
    request.extensions_mut().insert(call_id.clone());
    // Every line logged for this request names it (when the request's span is on).
    let span = tracing::Span::current();
    if !span.is_disabled() {
        span.record("call_id", call_id.get());
    }
    let checked = guard::check_size(request.headers())
        .and_then(|()| guard::check_origin(request.method(), request.headers(), &state.public_url));
    let response = match checked {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    };
    let response = match form_post {
        Some(path) if response.status() == StatusCode::NO_CONTENT => back_to_page(&accept, &path, response),
        _ => response,
    };
    let secure_cookie = state.public_url.starts_with("https://");
    guard::with_security_headers(render(&state, &accept, &call_id, response).await, secure_cookie)
}

/// Post/redirect/get: a browser's successful form post (204) is answered
/// with 303 to the form's page ([`pages::page_after_post`]); API clients
/// keep their 204.
fn back_to_page(accept: &[HeaderValue], path: &str, response: Response) -> Response {
    if accepted_of(accept.iter()) != Some(MediaType::Html) {
        return response;
    }
    let cleared = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|c| c.to_str().is_ok_and(|c| c.starts_with(SESSION_COOKIE) && c.contains("Max-Age=0")));
    let Some(page) = pages::page_after_post(path, cleared) else {
        return response;
    };
    let Ok(location) = HeaderValue::from_str(&page) else {
        return response;
    };
    let (mut parts, body) = response.into_parts();
    parts.status = StatusCode::SEE_OTHER;
    parts.headers.insert(header::LOCATION, location);
    Response::from_parts(parts, body)
}

/// The envelope of an error response (others pass unchanged).
async fn render(state: &AppState, accept: &[HeaderValue], call_id: &CallId, response: Response) -> Response {
    let status = response.status();
    let (response, error) = match response.extensions().get::<ApiError>() {
        Some(error) => {
            let error = error.clone();
            (response, error)
        }
        None if status == StatusCode::METHOD_NOT_ALLOWED
            || status == StatusCode::UNSUPPORTED_MEDIA_TYPE
            || status == StatusCode::PAYLOAD_TOO_LARGE =>
        {
            (response, ApiError::framework(status, false))
        }
        None if is_plain_rejection(&response) => rejection(response).await,
        None => return response,
    };
    let media = accepted_of(accept.iter()).unwrap_or(MediaType::Json);
    let show_stack = state.ledger.show_stack();
    let body = envelope(&error, error.routed.then(|| call_id.get()), state.ledger.now(), show_stack);
    let mut rendered = match media {
        MediaType::Json => (error.status, Json(ErrorEnvelope { error: body })).into_response(),
        MediaType::Html => (error.status, Html(html_page(&error, &body))).into_response(),
    };
    if let Some(seconds) = error.retry_after {
        rendered.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if let Some(allow) = response.headers().get(header::ALLOW) {
        rendered.headers_mut().insert(header::ALLOW, allow.clone());
    }
    // A refusal that recorded something (an auditor's read) still says where.
    if let Some(position) = response.headers().get(POSITION_HEADER) {
        rendered.headers_mut().insert(POSITION_HEADER, position.clone());
    }
    for cookie in response.headers().get_all(header::SET_COOKIE) {
        rendered.headers_mut().append(header::SET_COOKIE, cookie.clone());
    }
    if media == MediaType::Json {
        rendered.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    rendered
}

/// A plain-text client error from the framework's extractors (a path segment
/// that is not UTF-8 or does not parse): it gets the envelope like any other.
fn is_plain_rejection(response: &Response) -> bool {
    response.status().is_client_error()
        && response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/plain"))
}

/// The rejection's own text as the envelope's message (the first 1 KiB of it).
async fn rejection(response: Response) -> (Response, ApiError) {
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 1024).await.map(|b| String::from_utf8_lossy(&b).into_owned());
    let status = parts.status;
    let message = text
        .ok()
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or("Error")));
    let error = ApiError { status, kind: None, message, routed: true, exception: None, retry_after: None };
    (Response::from_parts(parts, axum::body::Body::empty()), error)
}

/// The error page: the envelope in the site's layout, every field escaped.
fn html_page(error: &ApiError, body: &ErrorBody) -> String {
    let page = pages::ErrorPage {
        nav: pages::Nav::anonymous(),
        code: body.httpcode,
        status: body.httpstatus,
        message: &body.message,
        appcode: body.appcode.map(i64::from),
        apperror: body.apperror.unwrap_or_default(),
        call_id: body.callid.as_deref(),
        time: pages::at(body.time),
        exception: body.exception.as_deref(),
    };
    askama::Template::render(&page).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the error page did not render");
        format!("{} {}", error.status.as_u16(), error.status.canonical_reason().unwrap_or("Error"))
    })
}
