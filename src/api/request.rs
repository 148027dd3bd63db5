//! Reading requests: bodies (strict JSON objects or forms, size-limited),
//! tokens (the whole `Authorization` header, or the session cookie), and the
//! request's context (call id, client address, user agent) that goes into
//! event metadata and token records.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use utoipa::PartialSchema;
use utoipa::openapi::{RefOr, Schema};

use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde_json::{Map, Value};

use super::AppState;
use super::error::ApiError;
use crate::app::EventMetadata;
use crate::app::client_address::{self, Forwarded};
use crate::app::throttle::PasswordClient;
use crate::domain::names::java_trim;
use crate::domain::token::ClientInfo;
use crate::domain::{AuthError, ErrorType, UserName};

/// Request bodies larger than this are refused (413).
pub const BODY_LIMIT: usize = 1 << 20;

/// The session cookie's name (contract §9).
pub const SESSION_COOKIE: &str = "kbase_session";

/// A request body and what its `Content-Type` says it is.
pub struct Body {
    pub kind: BodyKind,
    pub bytes: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Form,
    /// No `Content-Type` header.
    Unspecified,
    Other,
}

impl<S: Send + Sync> FromRequest<S> for Body {
    type Rejection = ApiError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, ApiError> {
        let kind = match request.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) {
            None => BodyKind::Unspecified,
            Some(value) => {
                let media = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
                match media.as_str() {
                    "application/json" => BodyKind::Json,
                    "application/x-www-form-urlencoded" => BodyKind::Form,
                    _ => BodyKind::Other,
                }
            }
        };
        let bytes = axum::body::to_bytes(request.into_body(), BODY_LIMIT)
            .await
            .map_err(|_| ApiError::framework(StatusCode::PAYLOAD_TOO_LARGE, true))?;
        Ok(Self { kind, bytes })
    }
}

impl Body {
    /// The body as `T`, for endpoints that take only JSON (see [`JsonBody`]).
    pub fn read<T: JsonBody>(&self) -> Result<T, ApiError> {
        self.json()?.read()
    }

    /// The body as a JSON object, for endpoints that take only JSON.
    pub fn json(&self) -> Result<JsonObject, ApiError> {
        match self.kind {
            // No endpoint consumes that media type: refused before one is chosen.
            BodyKind::Form | BodyKind::Other => Err(ApiError::framework(StatusCode::UNSUPPORTED_MEDIA_TYPE, false)),
            // A body without a content type is octet-stream to upstream, which no endpoint reads.
            BodyKind::Unspecified if !self.bytes.is_empty() => {
                Err(ApiError::framework(StatusCode::UNSUPPORTED_MEDIA_TYPE, true))
            }
            _ => JsonObject::parse(&self.bytes),
        }
    }

    /// The body as a form, for endpoints only a page's form posts to (JSON: 415).
    pub fn form(&self) -> Result<Form, ApiError> {
        match self.input()? {
            Input::Form(form) => Ok(form),
            Input::Json(_) => Err(ApiError::framework(StatusCode::UNSUPPORTED_MEDIA_TYPE, true)),
        }
    }

    /// The body as JSON or as a form, whichever its content type says.
    pub fn input(&self) -> Result<Input, ApiError> {
        match self.kind {
            BodyKind::Form => Ok(Input::Form(Form::parse(&self.bytes)?)),
            BodyKind::Json => Ok(Input::Json(JsonObject::parse(&self.bytes)?)),
            BodyKind::Unspecified if self.bytes.iter().all(u8::is_ascii_whitespace) => Ok(Input::Form(Form::default())),
            BodyKind::Unspecified => Ok(Input::Json(JsonObject::parse(&self.bytes)?)),
            BodyKind::Other => Err(ApiError::framework(StatusCode::UNSUPPORTED_MEDIA_TYPE, false)),
        }
    }
}

/// A request body as one type that both documents it (its OpenAPI schema)
/// and reads it. Reading does what Jackson does upstream before a handler
/// runs: each member to its type, and a member the schema does not have
/// refused (30001). What the contract checks after that — which members are
/// required, lengths, names, the order of its messages — stays with the
/// handler, on the typed value.
pub trait JsonBody: PartialSchema + Sized {
    /// The members of `json` as this type (only type errors here).
    fn from_json(json: &JsonObject) -> Result<Self, ApiError>;
}

/// A member read to its type, its type error kept for the handler to raise
/// where the contract's order puts it: after a check that comes first (the
/// caller's token, a flow's cookie, a rule on another member), or only where
/// the member is used at all. `Ok(None)`: absent or `null`. A form's field is
/// always `Ok`, unless the type reads it as a number.
pub type Deferred<T> = Result<Option<T>, ApiError>;

/// A form body as one type that documents and reads it (see [`JsonBody`]);
/// a form's members are text, so reading one never fails on a type.
pub trait FormBody: PartialSchema + Sized {
    /// The fields of `form` as this type.
    fn from_form(form: &Form) -> Self;
}

/// A JSON request body: an object whose members are read with the contract's checks.
#[derive(Debug, Default)]
pub struct JsonObject(Map<String, Value>);

fn wrong_type(key: &str, expected: &str) -> ApiError {
    ApiError::unreadable(format!("Unable to read the request body: {key} must be {expected}"))
}

impl JsonObject {
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(AuthError::missing("JSON body missing").into());
        }
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            Ok(Value::Null) => Err(AuthError::missing("JSON body missing").into()),
            Ok(_) => Err(ApiError::unreadable("Unable to read the request body: expected a JSON object")),
            Err(e) => Err(ApiError::unreadable(format!("Unable to parse the request body as JSON: {e}"))),
        }
    }

    /// The body as `T`: a member outside `T`'s schema refused, then each member read to its type.
    pub fn read<T: JsonBody>(&self) -> Result<T, ApiError> {
        self.reject_unexpected_of::<T>()?;
        T::from_json(self)
    }

    /// The body as `T` in the order Jackson maps it: each member to its type
    /// first, then a member outside `T`'s schema refused (a wrong type beats
    /// an unexpected member).
    pub fn read_types_first<T: JsonBody>(&self) -> Result<T, ApiError> {
        let body = T::from_json(self)?;
        self.reject_unexpected_of::<T>()?;
        Ok(body)
    }

    /// Refuses members outside `allowed` (30001, sorted, comma-joined).
    pub fn reject_unexpected(&self, allowed: &[&str]) -> Result<(), ApiError> {
        let mut unexpected: Vec<&str> = self.0.keys().map(String::as_str).filter(|k| !allowed.contains(k)).collect();
        if unexpected.is_empty() {
            return Ok(());
        }
        unexpected.sort_unstable();
        Err(AuthError::illegal(format!("Unexpected parameters in request: {}", unexpected.join(", "))).into())
    }

    /// Refuses members the documented request type does not have (see [`members_of`]).
    pub fn reject_unexpected_of<T: PartialSchema>(&self) -> Result<(), ApiError> {
        let members = members_of::<T>();
        let allowed: Vec<&str> = members.iter().map(String::as_str).collect();
        self.reject_unexpected(&allowed)
    }

    /// A member as it is.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A string member; numbers and booleans are read as their text (as Jackson does).
    pub fn string(&self, key: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(Value::Bool(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(wrong_type(key, "a string")),
        }
    }

    pub fn boolean(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s == "true" => Ok(Some(true)),
            Some(Value::String(s)) if s == "false" => Ok(Some(false)),
            Some(_) => Err(wrong_type(key, "a boolean")),
        }
    }

    pub fn integer(&self, key: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| wrong_type(key, "an integer")),
            Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| wrong_type(key, "an integer")),
            Some(_) => Err(wrong_type(key, "an integer")),
        }
    }

    /// A list of strings; a JSON `null` element is kept as `None`.
    pub fn string_list(&self, key: &str) -> Result<Option<Vec<Option<String>>>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|item| match item {
                    Value::Null => Ok(None),
                    Value::String(s) => Ok(Some(s.clone())),
                    // As Jackson reads a list of strings: scalars become their text.
                    Value::Number(n) => Ok(Some(n.to_string())),
                    Value::Bool(b) => Ok(Some(b.to_string())),
                    _ => Err(wrong_type(key, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(_) => Err(wrong_type(key, "a list of strings")),
        }
    }

    /// A list of strings in which a `null` is refused (`Null item in <key>`).
    pub fn strings(&self, key: &str) -> Result<Option<Vec<String>>, ApiError> {
        let Some(items) = self.string_list(key)? else {
            return Ok(None);
        };
        let items = items.into_iter().map(|item| item.ok_or_else(|| AuthError::illegal(format!("Null item in {key}"))));
        Ok(Some(items.collect::<Result<Vec<_>, _>>()?))
    }

    /// An object of string values.
    pub fn string_map(&self, key: &str) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        match self.0.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(members)) => members
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(wrong_type(key, "an object of strings")),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(_) => Err(wrong_type(key, "an object of strings")),
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`); the first value of a field wins.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(bytes: &[u8]) -> Result<Self, ApiError> {
        serde_urlencoded::from_bytes(bytes)
            .map(Self)
            .map_err(|e| ApiError::unreadable(format!("Unable to parse the form: {e}")))
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn has(&self, key: &str) -> bool {
        self.0.iter().any(|(k, _)| k == key)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(k, _)| k.as_str())
    }

    /// The form as `T`.
    pub fn read<T: FormBody>(&self) -> T {
        T::from_form(self)
    }

    /// A field's text, owned.
    pub fn text(&self, key: &str) -> Option<String> {
        self.get(key).map(str::to_owned)
    }
}

/// A body that may be JSON or a form.
pub enum Input {
    Json(JsonObject),
    Form(Form),
}

impl Input {
    /// The body as `T`, whichever way it came (see [`JsonBody`], [`FormBody`]).
    pub fn read<T: JsonBody + FormBody>(&self) -> Result<T, ApiError> {
        match self {
            Input::Json(json) => json.read(),
            Input::Form(form) => Ok(form.read()),
        }
    }

    pub fn is_form(&self) -> bool {
        matches!(self, Input::Form(_))
    }
}

/// The members of a request body as its OpenAPI schema documents them. A
/// body is read as its documented type ([`JsonBody`]), which refuses any
/// member outside this list: what the document says a body may hold is, by
/// construction, what the handler accepts.
pub fn members_of<T: PartialSchema>() -> Vec<String> {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object.properties.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Query parameters as upstream reads them: the first value of a repeated
/// name wins, and a query that does not parse is a 400 in the envelope.
pub struct FirstQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for FirstQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let unreadable = |e: &dyn std::fmt::Display| ApiError::unreadable(format!("Unable to read the query: {e}"));
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(parts.uri.query().unwrap_or_default()).map_err(|e| unreadable(&e))?;
        let mut seen = std::collections::HashSet::new();
        let first: Vec<(String, String)> = pairs.into_iter().filter(|(k, _)| seen.insert(k.clone())).collect();
        let encoded = serde_urlencoded::to_string(&first).map_err(|e| unreadable(&e))?;
        serde_urlencoded::from_str(&encoded).map(FirstQuery).map_err(|e| unreadable(&e))
    }
}

/// Parses the form encoding of a custom context: `k1, v1; k2, v2`.
pub fn parse_context_string(text: Option<&str>) -> Result<BTreeMap<String, String>, AuthError> {
    let mut context = BTreeMap::new();
    for item in text.unwrap_or_default().split(';').map(java_trim).filter(|i| !i.is_empty()) {
        let parts: Vec<&str> = item.split(',').collect();
        if parts.len() != 2 {
            return Err(AuthError::illegal(format!("Bad key/value pair in custom context: {item}")));
        }
        context.insert(java_trim(parts[0]).to_owned(), java_trim(parts[1]).to_owned());
    }
    Ok(context)
}

/// The token in the `Authorization` header: the whole value, trimmed.
pub fn header_token(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = java_trim(value);
    (!token.is_empty()).then(|| token.to_owned())
}

/// The token in the session cookie.
pub fn cookie_token(headers: &HeaderMap) -> Option<String> {
    cookie(headers, SESSION_COOKIE).filter(|t| t != "no token")
}

/// The value of cookie `name` (quotes and blanks trimmed); `None` when absent or blank.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(cookie, _)| *cookie == name)
        .map(|(_, value)| java_trim(value.trim_matches('"')).to_owned())
        .filter(|t| !t.is_empty())
}

/// The header token, else the cookie token; 400 10010 when neither is there.
pub fn any_token(headers: &HeaderMap) -> Result<String, ApiError> {
    header_token(headers).or_else(|| cookie_token(headers)).ok_or_else(no_token)
}

/// The header token; 400 10010 when absent.
pub fn required_header_token(headers: &HeaderMap) -> Result<String, ApiError> {
    header_token(headers).ok_or_else(no_token)
}

pub fn no_token() -> ApiError {
    AuthError::new(ErrorType::NoTokenProvided, "No user token provided").into()
}

/// A `Set-Cookie` value for the session cookie.
pub fn session_cookie(token: &str, max_age_secs: Option<i64>) -> String {
    match max_age_secs {
        Some(age) => format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={age}; SameSite=Lax"),
        None => format!("{SESSION_COOKIE}={token}; Path=/; SameSite=Lax"),
    }
}

/// The cookie of the device marks a client's password logins earned (see `app::device_marks`).
pub const DEVICE_COOKIE: &str = "authledger_device";

/// A `Set-Cookie` value for the device marks: sent only where passwords are
/// checked, never to scripts, for a year.
pub fn device_cookie(marks: &str) -> String {
    let age = crate::app::device_marks::LIFETIME_MS / 1000;
    format!("{DEVICE_COOKIE}={marks}; Path=/localaccount; Max-Age={age}; HttpOnly; SameSite=Strict")
}

/// A `Set-Cookie` value that removes the session cookie.
pub fn removed_session_cookie() -> String {
    format!("{SESSION_COOKIE}=\"no token\"; Path=/; Max-Age=0; SameSite=Lax")
}

/// The most bytes of a `User-Agent` that events and token records keep.
pub const MAX_USER_AGENT: usize = 256;
/// What a value cut to its bound ends with.
pub const TRUNCATED: &str = "…[truncated]";

/// `text` as a record keeps it: at most `limit` bytes (cut at a character
/// boundary), marked with [`TRUNCATED`] when cut.
pub fn bounded(text: String, limit: usize) -> String {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit.saturating_sub(TRUNCATED.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATED}", &text[..end])
}

/// Who is calling and from where.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub call_id: String,
    /// The client's address, as [`client_address::resolve`] decides it.
    pub client: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub headers: HeaderMap,
}

impl FromRequestParts<AppState> for RequestContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
        let forwarded = Forwarded {
            peer: parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()),
            forwarded_for: parts.headers.get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect(),
            real_ip: header("x-real-ip"),
        };
        let client = client_address::resolve(&forwarded, &state.trusted_proxies, state.ignore_ip());
        Ok(Self {
            call_id: parts.extensions.get::<CallId>().map(|c| c.get().to_owned()).unwrap_or_default(),
            client,
            // Bounded, as every value an event or a token record keeps from a request.
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| bounded(ua.to_owned(), MAX_USER_AGENT)),
            headers: parts.headers.clone(),
        })
    }
}

impl RequestContext {
    /// Whether the answer should be a page (see [`super::error::wants_html`]).
    pub fn wants_html(&self) -> bool {
        super::error::wants_html(&self.headers)
    }

    /// The client's address as the log and token records keep it.
    pub fn client_ip(&self) -> Option<String> {
        self.client.map(|ip| ip.to_string())
    }

    /// Whom a bound on unauthenticated state counts this request against
    /// (see [`client_address::quota_key`]).
    pub fn quota_key(&self) -> String {
        client_address::quota_key(self.client)
    }

    /// Who a password check of this request comes from: its quota address and device marks.
    pub fn password_client(&self) -> PasswordClient {
        PasswordClient { quota: self.quota_key(), marks: cookie(&self.headers, DEVICE_COOKIE) }
    }

    /// Metadata for the events this request causes.
    pub fn metadata(&self, actor: &UserName) -> EventMetadata {
        self.metadata_of(actor.as_str())
    }

    /// Metadata of this request before its actor is known (the application names it).
    pub fn anonymous_metadata(&self) -> EventMetadata {
        EventMetadata { actor: None, ..self.metadata_of("") }
    }

    /// Metadata for events caused by an actor that is not a user (a joining host: `host:ID`).
    pub fn metadata_of(&self, actor: &str) -> EventMetadata {
        EventMetadata {
            actor: Some(actor.to_owned()),
            call_id: Some(self.call_id.clone()),
            client_addr: self.client_ip(),
            user_agent: self.user_agent.clone(),
            reason: None,
        }
    }

    /// The client as a token records it: address and parsed user agent.
    pub fn client_info(&self) -> ClientInfo {
        let known = |s: &str| (!s.is_empty() && s != woothee::woothee::VALUE_UNKNOWN).then(|| s.to_owned());
        let parsed = self.user_agent.as_deref().and_then(|ua| woothee::parser::Parser::new().parse(ua));
        ClientInfo {
            ip: self.client_ip(),
            os: parsed.as_ref().and_then(|p| known(p.os)),
            osver: parsed.as_ref().and_then(|p| known(&p.os_version)),
            agent: parsed.as_ref().and_then(|p| known(p.name)),
            agentver: parsed.as_ref().and_then(|p| known(p.version)),
            device: parsed.as_ref().and_then(|p| known(p.category)),
        }
    }
}

/// The call id of the current request, drawn when first needed (an error, or
/// an event's metadata) so that answering successfully costs nothing.
#[derive(Debug, Clone, Default)]
pub struct CallId(std::sync::Arc<std::sync::OnceLock<String>>);

impl CallId {
    pub fn get(&self) -> &str {
        self.0.get_or_init(crate::app::new_call_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_members_are_listed_sorted() {
        let body = JsonObject::parse(br#"{"name":"x","zz":1,"aa":2}"#).unwrap_or_default();
        let error = body.reject_unexpected(&["name"]).expect_err("refused");
        assert_eq!(error.message, "30001 Illegal input parameter: Unexpected parameters in request: aa, zz");
    }

    #[test]
    fn empty_and_null_bodies_are_missing() {
        for body in [&b""[..], b"  ", b"null"] {
            let error = JsonObject::parse(body).expect_err("missing");
            assert_eq!(error.message, "30000 Missing input parameter: JSON body missing");
        }
        assert_eq!(JsonObject::parse(b"[1]").expect_err("not an object").kind, None);
        assert_eq!(JsonObject::parse(b"{bad").expect_err("syntax").status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn the_form_custom_context_is_pairs() {
        let ctx = parse_context_string(Some(" a, 1; b ,2 ;")).unwrap_or_default();
        assert_eq!(ctx.get("a").map(String::as_str), Some("1"));
        assert_eq!(ctx.get("b").map(String::as_str), Some("2"));
        let error = parse_context_string(Some("a, 1, 2")).expect_err("bad pair");
        assert_eq!(error.to_string(), "30001 Illegal input parameter: Bad key/value pair in custom context: a, 1, 2");
    }

    #[test]
    fn a_long_value_is_cut_at_a_character_and_marked() {
        assert_eq!(bounded("short".into(), 256), "short");
        let cut = bounded("é".repeat(1000), 256);
        assert!(cut.len() <= 256 && cut.ends_with(TRUNCATED), "{cut}");
        assert!(cut.trim_end_matches(TRUNCATED).chars().all(|c| c == 'é'));
    }

    #[test]
    fn the_cookie_token_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, "a=b; kbase_session=TOKEN123; c=d".parse().expect("header"));
        assert_eq!(cookie_token(&headers).as_deref(), Some("TOKEN123"));
    }
}
