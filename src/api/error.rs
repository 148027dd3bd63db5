//! The error envelope (contract §2): every error, application or framework,
//! answers `{"error": {...}}` — or the HTML error page when the request
//! explicitly prefers HTML (a browser). One rule for every endpoint that has
//! both forms ([`wants_html`]): JSON unless `text/html` is preferred; no
//! Accept, `*/*` and `application/*` get JSON. Handlers return `ApiError`;
//! the pipeline (`middleware::render_errors`), which sees the request, picks the media
//! type, stamps the call id and the time, and writes the body — also for the
//! errors the HTTP layer makes itself (no route, wrong method or media type, a
//! body too large, a path that is not UTF-8, a target or headers too large).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use crate::app::AppError;
use crate::domain::{AuthError, ErrorType};

/// An error on its way to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub kind: Option<ErrorType>,
    pub message: String,
    /// Routing failures (no resource method matched) carry no call id.
    pub routed: bool,
    /// Diagnostic detail, shown only when the `showstack` setting is on.
    pub exception: Option<String>,
    /// Seconds after which a retry may succeed (`Retry-After`, with 503).
    pub retry_after: Option<u64>,
}

/// The HTTP status of an application error type (contract §2).
pub fn status_of(kind: ErrorType) -> StatusCode {
    use ErrorType::*;
    match kind {
        AuthenticationFailed
        | InvalidToken
        | PasswordMismatch
        | NoSuchIdentityProvider
        | IdentityRetrievalFailed
        | IdentityProviderError => StatusCode::UNAUTHORIZED,
        Unauthorized | DisabledUser => StatusCode::FORBIDDEN,
        NoSuchUser | NoSuchLocalUser | NoSuchToken | NoSuchHost => StatusCode::NOT_FOUND,
        NoTokenProvided
        | MissingParameter
        | IllegalParameter
        | IllegalUserName
        | IllegalEmailAddress
        | IllegalPassword
        | UserAlreadyExists
        | IdentityAlreadyLinked
        | NoSuchIdentity
        | NoSuchRole
        | NoSuchEnvironment
        | LinkFailed
        | UnlinkFailed
        | UnsupportedOperation => StatusCode::BAD_REQUEST,
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        Self {
            status: status_of(error.kind),
            kind: Some(error.kind),
            message: error.to_string(),
            routed: true,
            exception: None,
            retry_after: None,
        }
    }
}

/// Whose fault it is decides the status: a rule's refusal is the caller's
/// (4xx), a busy record is a 503 with `Retry-After`, anything else is the
/// server's own (500, logged here, detail shown only with `showstack`).
impl From<AppError> for ApiError {
    fn from(error: AppError) -> Self {
        match error {
            AppError::Rejected(e) => e.into(),
            busy if busy.retry_after().is_some() => {
                tracing::warn!(error = %busy, "answered 503: busy, nothing written");
                let seconds = busy.retry_after().map_or(1, |d| d.as_secs());
                Self::unavailable(busy.to_string(), seconds)
            }
            other => {
                tracing::error!(error = %other, "request failed on the server's side");
                Self::internal(other.to_string())
            }
        }
    }
}

impl ApiError {
    /// JSON that parses but does not fit the request (no appcode, like a mapping error upstream).
    pub fn unreadable(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            kind: None,
            message: message.into(),
            routed: true,
            exception: None,
            retry_after: None,
        }
    }

    /// 503 with `Retry-After` (at least a second): nothing was written, a retry may succeed.
    pub fn unavailable(message: String, retry_after_seconds: u64) -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: None,
            message,
            routed: true,
            exception: None,
            retry_after: Some(retry_after_seconds.max(1)),
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            kind: None,
            message: "Internal Server Error".into(),
            routed: true,
            exception: Some(detail.into()),
            retry_after: None,
        }
    }

    /// A framework error: "HTTP 404 Not Found" and the like.
    pub fn framework(status: StatusCode, routed: bool) -> Self {
        let reason = status.canonical_reason().unwrap_or("Error");
        Self {
            status,
            kind: None,
            message: format!("HTTP {} {reason}", status.as_u16()),
            routed,
            exception: None,
            retry_after: None,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut response = status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

/// The fallback for paths no route matches.
pub async fn not_found() -> ApiError {
    ApiError::framework(StatusCode::NOT_FOUND, false)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MediaType {
    Json,
    Html,
}

/// The first of JSON and HTML in the client's Accept list, by q-value.
pub(super) fn accepted_of<'a>(values: impl Iterator<Item = &'a HeaderValue>) -> Option<MediaType> {
    let mut entries: Vec<(f32, usize, MediaType)> = Vec::new();
    for (index, item) in values.filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).enumerate() {
        let mut parts = item.split(';');
        let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q =
            parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        let kind = match media.as_str() {
            "application/json" => MediaType::Json,
            "text/html" => MediaType::Html,
            _ => continue,
        };
        if q > 0.0 {
            entries.push((q, index, kind));
        }
    }
    entries.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    entries.first().map(|e| e.2)
}

/// Whether the request explicitly prefers HTML to JSON (a browser's Accept
/// header): the one rule for every answer with both forms. No Accept, `*/*`,
/// `application/*` — and JSON preferred — all mean JSON.
pub fn wants_html(headers: &axum::http::HeaderMap) -> bool {
    accepted_of(headers.get_all(header::ACCEPT).iter()) == Some(MediaType::Html)
}

/// The error envelope (contract §2): what every JSON error answers.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    pub error: ErrorBody,
}

/// The envelope's contents.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The HTTP status code.
    pub httpcode: u16,
    /// The HTTP status's reason phrase.
    pub httpstatus: &'static str,
    /// The application's error code (for example 10020 for an invalid token), when it is one of the application's errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub appcode: Option<u32>,
    /// The application error's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apperror: Option<&'static str>,
    pub message: String,
    /// The request's call id (also in the server's log); absent when no route matched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callid: Option<String>,
    /// Epoch milliseconds.
    pub time: i64,
    /// Diagnostic detail, only with the `showstack` setting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<String>,
}

pub(super) fn envelope(error: &ApiError, call_id: Option<&str>, now: i64, show_stack: bool) -> ErrorBody {
    ErrorBody {
        httpcode: error.status.as_u16(),
        httpstatus: error.status.canonical_reason().unwrap_or("Error"),
        appcode: error.kind.map(|kind| kind.appcode()),
        apperror: error.kind.map(|kind| kind.name()),
        message: error.message.clone(),
        callid: call_id.map(str::to_owned),
        time: now,
        exception: if show_stack { error.exception.clone() } else { None },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    fn accepted(headers: &HeaderMap) -> Option<MediaType> {
        accepted_of(headers.get_all(header::ACCEPT).iter())
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")));
        headers
    }

    #[test]
    fn the_best_q_of_json_and_html_wins() {
        assert_eq!(accepted(&accept("application/json")), Some(MediaType::Json));
        assert_eq!(accepted(&accept("text/html;q=0.5, application/json")), Some(MediaType::Json));
        assert_eq!(accepted(&accept("application/json;q=0.1, text/html")), Some(MediaType::Html));
        assert_eq!(accepted(&accept("*/*")), None);
        assert_eq!(accepted(&HeaderMap::new()), None);
    }

    #[test]
    fn call_ids_are_sixteen_digits() {
        let id = crate::app::new_call_id();
        assert_eq!(id.len(), 16);
        assert!(id.chars().all(|c| c.is_ascii_digit()));
    }
}
