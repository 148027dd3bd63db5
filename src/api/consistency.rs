//! Read-your-writes through a load balancer (see `app::consistency`), as
//! HTTP: a request that wrote is answered with [`POSITION_HEADER`], the
//! position its last command committed; a request carrying that header is
//! served only once this server holds the position; a write whose token
//! this server does not know first catches up with the log's head, and a
//! read answered 404 or 401 for an unknown token catches up and is served
//! again, once.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::request::{cookie_token, header_token};
use crate::app::consistency::recording_writes;
use crate::domain::{AuthError, ErrorType};
use crate::projections::hash_token;

/// The position a write committed at; a later request may carry it back.
pub const POSITION_HEADER: &str = "x-authledger-position";

/// The middleware (outside the handlers, inside the error envelope).
pub async fn read_your_writes(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let wanted = wanted_position(request.headers());
    // Test mode has its own log: nothing to catch up with in this one.
    let main_log = !request.uri().path().starts_with("/testmode");
    let rerunnable = main_log && is_rerunnable(&request);
    // An API read is checked after it answers (no cost when its token is
    // known: introspection is the hottest path); a write, and a browser's page
    // (an unknown session cookie is sent to the login page, not refused), before.
    let token = main_log
        .then(|| match header_token(request.headers()) {
            Some(token) if !rerunnable => Some(token),
            Some(_) => None,
            None => cookie_token(request.headers()),
        })
        .flatten();
    match catch_up_before(&state, wanted, token).await {
        Ok(caught_up) => {
            let again = (rerunnable && !caught_up).then(|| {
                let mut copy = Request::new(Body::empty());
                *copy.method_mut() = request.method().clone();
                *copy.uri_mut() = request.uri().clone();
                *copy.version_mut() = request.version();
                *copy.headers_mut() = request.headers().clone();
                *copy.extensions_mut() = request.extensions().clone();
                copy
            });
            let before = state.ledger.position();
            let (mut response, mut written) = recording_writes(next.clone().run(request)).await;
            // A read that recorded something (an auditor's read is an event) is not served twice.
            if let Some(again) = again
                && written.is_none()
                && is_miss(&response)
                && state.ledger.catch_up().await.is_ok_and(|_| state.ledger.position() > before)
            {
                (response, written) = recording_writes(next.run(again)).await;
            }
            if let Some(position) = written {
                response.headers_mut().insert(POSITION_HEADER, HeaderValue::from(position));
            }
            response
        }
        Err(error) => error.into_response(),
    }
}

/// An answer that may only mean this server has not folded something yet:
/// 404, or 401 for an unknown token.
fn is_miss(response: &Response) -> bool {
    response.status() == StatusCode::NOT_FOUND
        || response.extensions().get::<ApiError>().is_some_and(|e| e.kind == Some(ErrorType::InvalidToken))
}

/// Waits for a position the client names, or catches up when the token of a
/// write or a page is unknown here; whether the server has caught up with the head.
async fn catch_up_before(
    state: &AppState,
    wanted: Result<Option<i64>, ApiError>,
    token: Option<String>,
) -> Result<bool, ApiError> {
    let ledger = &state.ledger;
    if let Some(position) = wanted? {
        return match ledger.reach(position).await {
            Ok(true) => Ok(true),
            Ok(false) => Err(AuthError::new(
                ErrorType::IllegalParameter,
                format!("{POSITION_HEADER} {position} is beyond the end of the log"),
            )
            .into()),
            Err(error) => {
                tracing::warn!(%error, position, "could not reach a position a client asked for");
                Err(ApiError::unavailable(format!("this server has not reached position {position} yet"), 1))
            }
        };
    }
    let unknown = token.is_some_and(|token| !ledger.is_valid_token(&hash_token(&token)));
    if !unknown {
        return Ok(false);
    }
    match ledger.catch_up().await {
        Ok(_) => Ok(true),
        Err(error) => {
            // Answer from what this server holds (the token is refused), rather than not at all.
            tracing::warn!(%error, "could not catch up with the log for an unknown token");
            Ok(false)
        }
    }
}

/// The client's `X-Authledger-Position`, if it sent one (400 if it is not a position).
fn wanted_position(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get(POSITION_HEADER) else {
        return Ok(None);
    };
    match value.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()) {
        Some(position) if position > 0 => Ok(Some(position)),
        _ => Err(AuthError::new(
            ErrorType::IllegalParameter,
            format!("{POSITION_HEADER} must be a position the server answered a write with"),
        )
        .into()),
    }
}

/// A read without a body, which may be served a second time.
fn is_rerunnable(request: &Request) -> bool {
    matches!(*request.method(), Method::GET | Method::HEAD)
        && request.headers().get(header::CONTENT_LENGTH).is_none_or(|length| length == "0")
        && !request.headers().contains_key(header::TRANSFER_ENCODING)
}
