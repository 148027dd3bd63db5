//! The web pages: server-rendered HTML (askama templates under `templates/`,
//! compiled into the binary, every interpolation HTML-escaped) for the
//! requests that prefer HTML. A handler decides *what* to show and calls one
//! builder here; this module decides *how* it looks. Pages work without
//! JavaScript: forms post to the upstream endpoints with the upstream field
//! names, and a successful form post that answers 204 is redirected back to
//! its page ([`page_after_post`], applied by the one middleware).

pub mod account;
pub mod admin;
pub mod audit;
mod chart;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ApiError;
use super::permissions::{self, Action};
use super::request::cookie_token;
use super::{AppState, Caller};
use crate::domain::Role;
use crate::projections::{TokenView, UserRecord};

/// The stylesheet, served at `/static/style.css` (the only style source the CSP allows).
pub const STYLESHEET: &str = include_str!("../../../static/style.css");

/// The pages' stylesheet.
#[utoipa::path(
    get,
    path = "/static/style.css",
    tag = "pages",
    responses((status = 200, description = "The stylesheet.", content_type = "text/css", body = String)),
)]
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// Who the page is for: the navigation bar's links and name.
#[derive(Debug, Clone, Default)]
pub struct Nav {
    pub user: Option<String>,
    /// Holds a role that opens the administration pages.
    pub admin: bool,
    /// May read the audit trail.
    pub auditor: bool,
}

impl Nav {
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn of(user: &UserRecord) -> Self {
        Self {
            user: Some(user.name.to_string()),
            admin: permissions::allows(Action::ViewUser, &user.roles),
            auditor: permissions::allows(Action::ReadAuditTrail, &user.roles),
        }
    }

    pub fn of_caller(caller: &Caller) -> Self {
        Self::of(&caller.user)
    }

    /// The session cookie's user, if it holds a valid token of an enabled
    /// user (pages that need no login still show who is logged in).
    pub fn from_cookie(state: &AppState, headers: &axum::http::HeaderMap) -> Self {
        cookie_token(headers)
            .and_then(|token| state.token_view(&token).ok())
            .and_then(|view| state.user_of(&view).ok())
            .map_or_else(Self::anonymous, |user| Self::of(&user))
    }
}

/// The page, as a 200 answer that no cache keeps.
pub fn render(page: &impl Template) -> Result<Response, ApiError> {
    render_with(StatusCode::OK, page)
}

pub fn render_with(status: StatusCode, page: &impl Template) -> Result<Response, ApiError> {
    let html = page.render().map_err(|e| ApiError::internal(format!("rendering a page failed: {e}")))?;
    Ok((status, [(header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], Html(html)).into_response())
}

/// The page, whose forms may end (after a redirect) at `form_targets` — origins besides this server's.
pub fn render_posting_to(page: &impl Template, form_targets: &[String]) -> Result<Response, ApiError> {
    let mut response = render(page)?;
    let policy = super::guard::content_security_policy(form_targets);
    let value = HeaderValue::from_str(&policy).map_err(|e| ApiError::internal(format!("a page's policy: {e}")))?;
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, value);
    Ok(response)
}

/// The origin of `url`, if it has one (a form's redirect target to allow).
pub fn origin_of(url: &str) -> Option<String> {
    let origin = url::Url::parse(url).ok()?.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// Where a browser goes after a form post to `path` that succeeded with no
/// content (post/redirect/get): the page the form is on. `None` for posts
/// that have no page of their own.
pub fn page_after_post(path: &str, session_cleared: bool) -> Option<String> {
    if session_cleared {
        return Some("/localaccount/login".to_owned());
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    let page = match segments.as_slice() {
        ["me"] | ["me", "roles"] => "/me".to_owned(),
        ["login", "cancel"] => "/login".to_owned(),
        ["link", "cancel"] | ["me", "unlink", _] => "/me".to_owned(),
        ["admin", "policyid"] => "/admin".to_owned(),
        ["tokens", "revoke", _] | ["tokens", "revokeall"] => "/tokens".to_owned(),
        ["admin", "forcereset"] | ["admin", "revokeall"] => "/admin".to_owned(),
        ["admin", "customroles", "set" | "delete"] => "/admin/customroles".to_owned(),
        ["admin", "config", "basic" | "token" | "reset" | "provider" | "environment"] => "/admin/config".to_owned(),
        ["admin", "user", user, "tokens", "revoke", _] | ["admin", "user", user, "tokens", "revokeall"] => {
            format!("/admin/user/{user}/tokens")
        }
        // The account is gone: back to the search.
        ["admin", "user", _, "forget"] => "/admin".to_owned(),
        ["admin", "user", user, "roles" | "customroles" | "disable" | "forcereset" | "logins"] => {
            format!("/admin/user/{user}")
        }
        _ => return None,
    };
    Some(page)
}

/// An instant as people read it (UTC, to the second).
pub fn at(ms: i64) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| ms.to_string())
}

pub fn at_or(ms: Option<i64>, none: &str) -> String {
    ms.map_or_else(|| none.to_owned(), at)
}

/// What the profile and the administrator's user page both say of a user.
pub struct Profile {
    pub name: String,
    pub display: String,
    pub email: String,
    pub anon_id: String,
    pub created: String,
    pub last_login: String,
    pub second_factor: bool,
}

impl Profile {
    pub fn of(user: &UserRecord) -> Self {
        Self {
            name: user.name.to_string(),
            display: user.display.clone(),
            email: user.email.clone().unwrap_or_default(),
            anon_id: user.anon_id.to_string(),
            created: at(user.created),
            last_login: at_or(user.last_login, "never"),
            second_factor: user.second_factor.is_some(),
        }
    }
}

/// A role as a checkbox: its id (the form field's name), what it allows, and whether it is held.
pub struct RoleRow {
    pub id: String,
    pub desc: String,
    pub held: bool,
}

impl RoleRow {
    pub fn of(role: Role, held: bool) -> Self {
        Self { id: role.id().to_owned(), desc: role.description().to_owned(), held }
    }
}

/// A token as the token tables show it.
pub struct TokenRow {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub created: String,
    pub expires: String,
    /// Agent, system, device and address it was created from.
    pub client: String,
    pub custom: String,
    /// Whether the login behind it used a second factor.
    pub mfa: &'static str,
}

impl TokenRow {
    pub fn of(token: &TokenView) -> Self {
        let client = &token.client;
        let joined = |a: &Option<String>, b: &Option<String>| {
            [a.as_deref(), b.as_deref()].into_iter().flatten().collect::<Vec<_>>().join(" ")
        };
        let from: Vec<String> = [
            joined(&client.agent, &client.agentver),
            joined(&client.os, &client.osver),
            client.device.clone().unwrap_or_default(),
            client.ip.clone().unwrap_or_default(),
        ]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect();
        Self {
            id: token.id.to_string(),
            kind: token.kind.description().to_owned(),
            name: token.name.clone().unwrap_or_default(),
            created: at(token.created),
            expires: at(token.expires),
            client: from.join(", "),
            custom: token.custom.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
            mfa: token.mfa.label(),
        }
    }
}

/// The error page: the envelope, rendered.
#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub nav: Nav,
    pub code: u16,
    pub status: &'a str,
    pub message: &'a str,
    pub appcode: Option<i64>,
    pub apperror: &'a str,
    pub call_id: Option<&'a str>,
    pub time: String,
    pub exception: Option<&'a str>,
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(stylesheet))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_form_post_returns_to_its_page() {
        let after = |path| page_after_post(path, false);
        assert_eq!(after("/me").as_deref(), Some("/me"));
        assert_eq!(after("/me/roles").as_deref(), Some("/me"));
        assert_eq!(after("/tokens/revoke/5f0e").as_deref(), Some("/tokens"));
        assert_eq!(after("/admin/user/alice/roles").as_deref(), Some("/admin/user/alice"));
        assert_eq!(after("/admin/user/alice/tokens/revokeall").as_deref(), Some("/admin/user/alice/tokens"));
        assert_eq!(after("/admin/user/alice/forget").as_deref(), Some("/admin"), "the account is gone");
        assert_eq!(after("/admin/config/basic").as_deref(), Some("/admin/config"));
        assert_eq!(after("/admin/customroles/delete").as_deref(), Some("/admin/customroles"));
        assert_eq!(after("/api/V2/me"), None, "the API is not a page");
        assert_eq!(page_after_post("/tokens/revokeall", true).as_deref(), Some("/localaccount/login"));
    }

    #[test]
    fn instants_read_as_utc() {
        assert_eq!(at(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(at(1_764_495_000_123), "2025-11-30 09:30:00 UTC");
    }
}
