//! What a login site owes the browser: cross-site request refusal for
//! cookie-authenticated writes, and the security headers of every answer.
//!
//! A request that carries the session cookie and no `Authorization` header is
//! a browser's; if it is unsafe (not GET/HEAD/OPTIONS) it must come from this
//! server's own origin — its `Origin` (or, without one, its `Referer`) must be
//! the public URL's origin or the origin the request was addressed to (`Host`).
//! So must an unsafe request with a body another site's form can send
//! (urlencoded, multipart, text), cookie or not: a form login or an
//! invitation's completion posted from elsewhere would sign the victim into
//! the attacker's account. Anything else is refused with 403 and the envelope
//! before a handler runs. Requests with an `Authorization` header (API
//! clients), JSON without the cookie, or without either header (non-browser
//! clients) are not affected. GETs that record something (the auditor's
//! pages) refuse navigations another site started ([`check_same_site_read`]).

use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::Response;
use url::Url;

use super::error::ApiError;
use super::request::{cookie_token, header_token};
use crate::domain::AuthError;

/// No scripts, no framing, forms and images from this origin only (the
/// invitation's QR code is a `data:` image).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; img-src 'self' data:; style-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The policy of a page whose forms may end, after a redirect, at these
/// other origins (a browser checks a form's redirects against
/// `form-action` too): the login page's provider, the post-login redirect.
pub fn content_security_policy(form_targets: &[String]) -> String {
    match form_targets {
        [] => CONTENT_SECURITY_POLICY.to_owned(),
        targets => {
            CONTENT_SECURITY_POLICY.replace("form-action 'self'", &format!("form-action 'self' {}", targets.join(" ")))
        }
    }
}

/// Whether an unsafe cookie-authenticated request comes from this server's
/// own origin (see the module's notes); the refusal otherwise. Checked by the
/// error envelope's middleware (`middleware::render_errors`) before any handler.
pub fn check_origin(method: &Method, headers: &HeaderMap, public_url: &str) -> Result<(), ApiError> {
    let safe = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || header_token(headers).is_some() || (cookie_token(headers).is_none() && !is_form_body(headers)) {
        return Ok(());
    }
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .map(|v| v.to_str().map(origin_of).unwrap_or(None));
    let Some(claimed) = claimed else {
        // Neither header: not a browser's cross-site request.
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let own = [
        origin_of(public_url),
        host.and_then(|h| origin_of(&format!("http://{h}"))),
        host.and_then(|h| origin_of(&format!("https://{h}"))),
    ];
    match claimed {
        Some(origin) if own.iter().flatten().any(|o| *o == origin) => Ok(()),
        _ => Err(AuthError::unauthorized(
            "Cross-site request refused: a request authenticated by the session cookie must come from this server's own pages",
        )
        .into()),
    }
}

/// A body type a page on another site can post without asking (CORS "simple").
fn is_form_body(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let media = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        matches!(media.as_str(), "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain")
    })
}

/// For a GET that records something in the caller's name (reading the audit
/// trail is itself audited): refused when the browser says another site
/// started it (`Sec-Fetch-Site: cross-site`) and the session cookie is its
/// only credential — a link elsewhere must not make an auditor "read".
pub fn check_same_site_read(headers: &HeaderMap) -> Result<(), ApiError> {
    let cross_site = headers.get("sec-fetch-site").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if cross_site && header_token(headers).is_none() {
        return Err(
            AuthError::unauthorized("Cross-site request refused: open this page from this server's own pages").into()
        );
    }
    Ok(())
}

/// The most header bytes (names and values) a request may carry; more is 431.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// 431 with the envelope for a request whose headers are too large. (The
/// request target has no limit of ours: user lists of 10,000 names are
/// valid. Requests beyond what the HTTP server parses at all — a target over
/// 64 KiB, more than 100 headers, a head over ~400 KiB — are refused by it,
/// 414 or 431, before any of this runs, without a body.)
pub fn check_size(headers: &HeaderMap) -> Result<(), ApiError> {
    let header_bytes: usize = headers.iter().map(|(name, value)| name.as_str().len() + value.len()).sum();
    if header_bytes > MAX_HEADER_BYTES {
        return Err(ApiError::framework(axum::http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, false));
    }
    Ok(())
}

/// `scheme://host[:port]` of a URL (default ports dropped); `None` for `null` or garbage.
fn origin_of(url: &str) -> Option<String> {
    let parsed = Url::parse(url.trim()).ok()?;
    let origin = parsed.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

/// The security headers on `response` (kept where a handler set its own), and
/// `Secure` on every cookie when `secure_cookie`.
pub fn with_security_headers(mut response: Response, secure_cookie: bool) -> Response {
    let headers = response.headers_mut();
    let defaults = [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        // The origin, never the path (an invitation's URL holds its token).
        // Not `no-referrer`: under it a browser sends `Origin: null` with the
        // server's own form posts, which the cross-site check must refuse.
        (header::REFERRER_POLICY, "strict-origin"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    ];
    for (name, value) in defaults {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if secure_cookie && headers.contains_key(header::SET_COOKIE) {
        let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
        headers.remove(header::SET_COOKIE);
        for cookie in cookies {
            let secured = match cookie.to_str() {
                Ok(text) if !text.contains("; Secure") => {
                    HeaderValue::from_str(&format!("{text}; Secure")).unwrap_or(cookie)
                }
                _ => cookie,
            };
            headers.append(header::SET_COOKIE, secured);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn post_with(pairs: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("kbase_session=ABCDEFGH"));
        headers.insert(header::HOST, HeaderValue::from_static("auth.example.org"));
        for (name, value) in pairs {
            headers.insert(name.clone(), HeaderValue::from_str(value).unwrap_or(HeaderValue::from_static("")));
        }
        headers
    }

    #[test]
    fn a_cookie_post_from_another_site_is_refused() {
        let public = "https://auth.example.org";
        let refused = |h: &HeaderMap| check_origin(&Method::POST, h, public).is_err();
        assert!(refused(&post_with(&[(header::ORIGIN, "https://evil.example")])));
        assert!(refused(&post_with(&[(header::ORIGIN, "null")])));
        assert!(refused(&post_with(&[(header::REFERER, "https://evil.example/page")])));
        assert!(!refused(&post_with(&[(header::ORIGIN, "https://auth.example.org")])));
        assert!(!refused(&post_with(&[(header::REFERER, "https://auth.example.org/me")])));
        assert!(!refused(&post_with(&[(header::ORIGIN, "http://auth.example.org")])), "the Host it was sent to");
        assert!(!refused(&post_with(&[])), "no Origin nor Referer: not a browser");
        let mut api = post_with(&[(header::ORIGIN, "https://evil.example")]);
        api.insert(header::AUTHORIZATION, HeaderValue::from_static("TOKEN"));
        assert!(!refused(&api), "header-authenticated calls are not the browser's ambient credential");
        assert!(check_origin(&Method::GET, &post_with(&[(header::ORIGIN, "https://evil.example")]), public).is_ok());
    }

    #[test]
    fn a_login_form_posted_from_another_site_is_refused() {
        let public = "https://auth.example.org";
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("auth.example.org"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/x-www-form-urlencoded"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(check_origin(&Method::POST, &headers, public).is_err(), "no cookie, still a browser's form");
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://auth.example.org"));
        assert!(check_origin(&Method::POST, &headers, public).is_ok());
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(header::ORIGIN, HeaderValue::from_static("https://evil.example"));
        assert!(
            check_origin(&Method::POST, &headers, public).is_ok(),
            "JSON without a cookie needs CORS, which we never grant"
        );
    }

    #[test]
    fn a_recorded_read_started_by_another_site_is_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("kbase_session=ABCDEFGH"));
        assert!(check_same_site_read(&headers).is_ok());
        headers.insert("sec-fetch-site", HeaderValue::from_static("same-origin"));
        assert!(check_same_site_read(&headers).is_ok());
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(check_same_site_read(&headers).is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("TOKEN"));
        assert!(check_same_site_read(&headers).is_ok(), "an API client's own request");
    }
}
