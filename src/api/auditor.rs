//! The auditor API (Admin role): the audit trail, paged by position, and a
//! user's state as of a moment — the same answers as the `replay` tool, from
//! the live log. Every read is itself recorded (`Audit` events).

use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::error::{ApiError, ErrorEnvelope};
use super::openapi::{Access, behind};
use super::pages::{self, Nav};
use super::permissions::{self, Action};
use super::request::{FirstQuery, RequestContext, any_token, required_header_token};
use super::{AppState, guard};
use crate::app::EventMetadata;
use crate::app::history::{self, Subject};
use crate::app::witness::SignedHead;
use crate::domain::names::{is_blank, java_trim};
use crate::domain::server_config::DAY_MS;
use crate::domain::{AuthError, UserName};
use crate::projections::UserRecord;

/// The longest `actor` or `type` filter (a user name or `host:ID`; an event type).
const MAX_FILTER_LENGTH: usize = 120;

/// At most this many events per page.
pub const MAX_PAGE: usize = 1_000;
const DEFAULT_PAGE: usize = 100;

#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only this user's events and those of its tokens (not with `token`).
    user: Option<String>,
    /// Only this token's events (its id) and those that ended it (not with `user`).
    token: Option<String>,
    /// Only events caused by this actor (a user name or `host:ID`).
    actor: Option<String>,
    /// Only events of this type (`RolesGranted`, ...).
    #[serde(rename = "type")]
    event_type: Option<String>,
    /// Only events recorded at or after this instant: epoch milliseconds or RFC 3339.
    since: Option<String>,
    /// Only events recorded at or before this instant: epoch milliseconds or RFC 3339.
    until: Option<String>,
    /// At most this many events (1 to 1000; default 100).
    limit: Option<String>,
    /// Only events after this log position (a page's `next`).
    after: Option<String>,
}

/// A read of the audit trail: which events, and which page of them.
struct TrailRead {
    query: history::Query,
    limit: usize,
    after: i64,
}

fn filled(value: Option<&str>) -> Option<String> {
    value.map(java_trim).filter(|v| !v.is_empty()).map(str::to_owned)
}

impl AuditQuery {
    /// The read this query asks for (checked before the caller, like every input).
    fn parse(&self) -> Result<TrailRead, ApiError> {
        let subject = match (filled(self.user.as_deref()), filled(self.token.as_deref())) {
            (Some(_), Some(_)) => return Err(AuthError::illegal("Give user or token, not both").into()),
            (Some(user), None) => Subject::User(UserName::parse(Some(&user))?),
            (None, Some(token)) => Subject::Token(
                Uuid::parse_str(&token).map_err(|_| AuthError::illegal(format!("Illegal token id: {token}")))?,
            ),
            (None, None) => Subject::All,
        };
        let since = time_param("since", self.since.as_deref())?;
        let until = time_param("until", self.until.as_deref())?;
        let limit =
            count_param("limit", self.limit.as_deref(), 1..=MAX_PAGE as i64)?.map_or(DEFAULT_PAGE, |n| n as usize);
        let after = count_param("after", self.after.as_deref(), 0..=i64::MAX)?.unwrap_or(0);
        // Recorded with the read, in the immutable log: bounded.
        let actor = filled(self.actor.as_deref());
        let event_type = filled(self.event_type.as_deref());
        for (name, value) in [("actor", &actor), ("type", &event_type)] {
            if value.as_ref().is_some_and(|v| v.chars().count() > MAX_FILTER_LENGTH) {
                return Err(AuthError::illegal(format!("{name} is longer than {MAX_FILTER_LENGTH} characters")).into());
            }
        }
        Ok(TrailRead { query: history::Query { subject, since, until, actor, event_type }, limit, after })
    }

    /// The filters as typed, for the timeline's form.
    fn filter(&self) -> pages::audit::AuditFilter {
        let text = |v: &Option<String>| v.as_deref().map(java_trim).unwrap_or_default().to_owned();
        pages::audit::AuditFilter {
            user: text(&self.user),
            token: text(&self.token),
            actor: text(&self.actor),
            event_type: text(&self.event_type),
            since: text(&self.since),
            until: text(&self.until),
        }
    }

    /// The timeline of the last day, with the same filters otherwise (the
    /// trail reads oldest first).
    fn recent_link(&self, now: i64) -> String {
        let filter = self.filter();
        let since = time::OffsetDateTime::from_unix_timestamp((now - DAY_MS) / 1000)
            .ok()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_default();
        let mut pairs: Vec<(&str, String)> = vec![
            ("user", filter.user),
            ("token", filter.token),
            ("actor", filter.actor),
            ("type", filter.event_type),
            ("since", since),
        ];
        pairs.retain(|(_, value)| !value.is_empty());
        format!("/admin/audit?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
    }

    /// The link to the page after `next`, with the same filters.
    fn next_page(&self, path: &str, next: i64) -> String {
        let filter = self.filter();
        let mut pairs: Vec<(&str, String)> = vec![
            ("user", filter.user),
            ("token", filter.token),
            ("actor", filter.actor),
            ("type", filter.event_type),
            ("since", filter.since),
            ("until", filter.until),
        ];
        pairs.extend(filled(self.limit.as_deref()).map(|limit| ("limit", limit)));
        page_link(path, pairs, next)
    }
}

/// `path?` the non-empty `pairs` and `after=next`: the link to the next page.
fn page_link(path: &str, mut pairs: Vec<(&str, String)>, next: i64) -> String {
    pairs.retain(|(_, value)| !value.is_empty());
    pairs.push(("after", next.to_string()));
    format!("{path}?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
}

/// A time parameter: epoch milliseconds or RFC 3339.
fn time_param(name: &str, value: Option<&str>) -> Result<Option<i64>, AuthError> {
    let Some(value) = value.map(java_trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = value.parse::<i64>() {
        return Ok(Some(ms));
    }
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
        .map(|t| Some((t.unix_timestamp_nanos() / 1_000_000) as i64))
        .map_err(|_| AuthError::illegal(format!("{name} must be epoch milliseconds or an RFC 3339 time: {value}")))
}

fn count_param(
    name: &str,
    value: Option<&str>,
    range: std::ops::RangeInclusive<i64>,
) -> Result<Option<i64>, AuthError> {
    let Some(value) = value.map(java_trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    match value.parse::<i64>() {
        Ok(n) if range.contains(&n) => Ok(Some(n)),
        _ => Err(AuthError::illegal(format!(
            "{name} must be an integer from {} to {}: {value}",
            range.start(),
            range.end()
        ))),
    }
}

/// The caller, if it may read the audit trail (token, enabled user, Admin).
fn auditor(state: &AppState, token: &str) -> Result<UserRecord, ApiError> {
    let view = state.token_view(token)?;
    let user = state.user_of(&view)?;
    permissions::check(Action::ReadAuditTrail, &user.roles)?;
    Ok(user)
}

/// The auditor holding `token` and the metadata its recorded reads carry. A
/// read started by another site with only the session cookie is refused
/// (an API call brings its token in the header, which always passes).
fn reading(state: &AppState, context: &RequestContext, token: &str) -> Result<(UserRecord, EventMetadata), ApiError> {
    let reader = auditor(state, token)?;
    guard::check_same_site_read(&context.headers)?;
    let metadata = context.metadata(&reader.name);
    Ok((reader, metadata))
}

/// A page of the audit trail, in commit order.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuditPage {
    pub events: Vec<history::Entry>,
    /// The position to ask for the next page `after`; `null` on the last page.
    pub next: Option<i64>,
}

/// The audit trail, a page at a time (filtered by the query).
///
/// `GET /api/V2/admin/audit?user=&token=&actor=&type=&since=&until=&limit=&after=`:
/// `{"events": [...], "next": position or null}` in commit order.
#[utoipa::path(
    get,
    path = "/api/V2/admin/audit",
    tag = "auditor",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of events.", body = AuditPage),
        (status = 400, description = "An illegal filter, limit or position.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to read the audit trail.", body = ErrorEnvelope),
    ),
)]
pub async fn audit_trail(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    let read = query.parse()?;
    let token = required_header_token(&context.headers)?;
    let (reader, metadata) = reading(&state, &context, &token)?;
    let (events, next) =
        history::read_trail(&state.ledger, &reader.name, &metadata, &read.query, read.after, read.limit).await?;
    Ok(Json(AuditPage { events, next }))
}

/// The audit timeline page, or the audit trail's JSON.
///
/// `GET /admin/audit` (the same query as `/api/V2/admin/audit`); the session
/// cookie or the header.
#[utoipa::path(
    get,
    path = "/admin/audit",
    tag = "auditor",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of events (the timeline for a browser).",
            content((AuditPage = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal filter, limit or position.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to read the audit trail, or a cross-site read with the cookie.",
            body = ErrorEnvelope),
    ),
)]
pub async fn timeline(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<AuditQuery>,
) -> Result<Response, ApiError> {
    let read = query.parse()?;
    let token = any_token(&context.headers)?;
    let (reader, metadata) = reading(&state, &context, &token)?;
    let (events, next) =
        history::read_trail(&state.ledger, &reader.name, &metadata, &read.query, read.after, read.limit).await?;
    if !context.wants_html() {
        return Ok(Json(AuditPage { events, next }).into_response());
    }
    let links = pages::audit::TimelineLinks {
        next_page: next.map(|n| query.next_page("/admin/audit", n)),
        last_day: query.recent_link(state.now()),
    };
    pages::audit::timeline(Nav::of(&reader), &query.filter(), &events, links)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Also the user's state at this instant: epoch milliseconds or RFC 3339.
    at: Option<String>,
    /// Only events after this log position (a page's `next`).
    after: Option<String>,
}

/// A page of a user's history, and with `at` its state then.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserHistoryPage {
    pub events: Vec<history::Entry>,
    /// The position to ask for the next page `after`; `null` on the last page.
    pub next: Option<i64>,
    /// Only with `at`: the user's state then (`null`: the account did not exist yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<history::UserAsOf>)]
    pub asof: Option<Option<history::UserAsOf>>,
}

/// A user's history: its events, and with `at` its state at that instant.
///
/// `GET /admin/user/{u}/history?at=&after=`: the user's events (a page of
/// them, after `after`), the activity chart, and with `at` the user's state
/// at that instant. JSON: `{"events", "next", "asof"}` (`asof` is absent
/// without `at`, `null` when the account did not exist then).
#[utoipa::path(
    get,
    path = "/admin/user/{user}/history",
    tag = "auditor",
    params(("user" = String, Path, description = "The user name."), HistoryQuery),
    responses(
        (status = 200, description = "A page of the user's events (the history page for a browser).",
            content((UserHistoryPage = "application/json"), (String = "text/html"))),
        (status = 400, description = "An illegal user name, instant or position.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to read the audit trail, or a cross-site read with the cookie.",
            body = ErrorEnvelope),
        (status = 404, description = "No such user.", body = ErrorEnvelope),
    ),
)]
pub async fn user_history(
    State(state): State<AppState>,
    context: RequestContext,
    Path(user): Path<String>,
    FirstQuery(query): FirstQuery<HistoryQuery>,
) -> Result<Response, ApiError> {
    let name = UserName::parse(Some(&user))?;
    let at = time_param("at", query.at.as_deref())?;
    let after = count_param("after", query.after.as_deref(), 0..=i64::MAX)?.unwrap_or(0);
    let token = any_token(&context.headers)?;
    let (reader, metadata) = reading(&state, &context, &token)?;
    let found = history::user_history(&state.ledger, &reader.name, &metadata, &name, at).await?;
    let all = &found.events;
    let start = all.partition_point(|e| e.position <= after);
    let shown = &all[start..all.len().min(start + DEFAULT_PAGE)];
    let next = (start + DEFAULT_PAGE < all.len()).then(|| shown.last().map(|e| e.position)).flatten();
    if !context.wants_html() {
        let out = UserHistoryPage { events: shown.to_vec(), next, asof: found.as_of.map(|(_, then)| then) };
        return Ok(Json(out).into_response());
    }
    let at_input = query.at.as_deref().map(java_trim).unwrap_or_default();
    let path = format!("/admin/user/{name}/history");
    let history = pages::audit::UserHistory {
        user: name.as_str(),
        all,
        shown,
        next_page: next.map(|n| page_link(&path, vec![("at", at_input.to_owned())], n)),
        at_input,
        as_of: found.as_of.as_ref().map(|(at, then)| pages::audit::AsOfView::of(*at, then.as_ref())),
        now: state.now(),
    };
    pages::audit::user_history(Nav::of(&reader), history)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AsOfQuery {
    /// The user name.
    #[param(required = true)]
    user: Option<String>,
    /// The instant: epoch milliseconds or RFC 3339.
    #[param(required = true)]
    at: Option<String>,
}

/// A user's profile, roles, disabled state and live tokens at an instant.
///
/// `GET /api/V2/admin/asof?user=U&at=T`.
#[utoipa::path(
    get,
    path = "/api/V2/admin/asof",
    tag = "auditor",
    params(AsOfQuery),
    responses(
        (status = 200, description = "The user as it stood then.", body = history::UserAsOf),
        (status = 400, description = "A missing or illegal user or instant.", body = ErrorEnvelope),
        (status = 403, description = "Not allowed to read the audit trail.", body = ErrorEnvelope),
        (status = 404, description = "No such user (then or ever).", body = ErrorEnvelope),
    ),
)]
pub async fn as_of(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<AsOfQuery>,
) -> Result<Json<history::UserAsOf>, ApiError> {
    if is_blank(query.user.as_deref()) {
        return Err(AuthError::missing("user").into());
    }
    let user = UserName::parse(query.user.as_deref())?;
    let at = time_param("at", query.at.as_deref())?.ok_or_else(|| AuthError::missing("at"))?;
    let token = required_header_token(&context.headers)?;
    let (reader, metadata) = reading(&state, &context, &token)?;
    let found = history::read_state_as_of(&state.ledger, &reader.name, &metadata, &user, at).await?;
    let found = found.ok_or_else(|| AuthError::no_such_user(user.as_str()))?;
    Ok(Json(found))
}

/// The live projections' position and digest.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProjectionDigest {
    /// The position of the last event folded in.
    pub position: i64,
    /// The display-name rule the user directory was folded with.
    pub rule: &'static str,
    /// The digest of the projections' checkpoint.
    pub digest: String,
}

/// The live projections' position and digest, to compare with a rebuild.
///
/// `GET /api/V2/admin/digest`: compare with a rebuild from the log
/// (`replay verify --server`).
#[utoipa::path(
    get,
    path = "/api/V2/admin/digest",
    tag = "auditor",
    responses(
        (status = 200, description = "The position and digest.", body = ProjectionDigest),
        (status = 403, description = "Not allowed to read the audit trail.", body = ErrorEnvelope),
    ),
)]
pub async fn digest(
    State(state): State<AppState>,
    context: RequestContext,
) -> Result<Json<ProjectionDigest>, ApiError> {
    let token = required_header_token(&context.headers)?;
    auditor(&state, &token)?;
    let checkpoint = state.ledger.checkpoint();
    Ok(Json(ProjectionDigest {
        position: checkpoint.position,
        rule: checkpoint.rule.name(),
        digest: checkpoint.digest(),
    }))
}

/// The newest signed head and the witness's public key.
#[derive(Debug, Serialize, ToSchema)]
pub struct WitnessHead {
    /// `null` when no head is signed yet.
    pub head: Option<SignedHead>,
    /// The witness's Ed25519 public key (base64).
    pub public_key: String,
}

/// The newest signed head of the log and the witness's public key.
///
/// `GET /api/V2/admin/head` (see `Witness::current`), for auditors to pin
/// (`replay verify --head POSITION:CHAIN`, `--witness FILE`).
#[utoipa::path(
    get,
    path = "/api/V2/admin/head",
    tag = "auditor",
    responses(
        (status = 200, description = "The signed head.", body = WitnessHead),
        (status = 403, description = "Not allowed to read the audit trail.", body = ErrorEnvelope),
    ),
)]
pub async fn signed_head(
    State(state): State<AppState>,
    context: RequestContext,
) -> Result<Json<WitnessHead>, ApiError> {
    let token = required_header_token(&context.headers)?;
    auditor(&state, &token)?;
    let head = state.witness.current(&state.ledger).await?;
    Ok(Json(WitnessHead { head, public_key: state.witness.public_key() }))
}

/// This module's routes, each with its entry in the OpenAPI document.
pub fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(audit_trail))
        .routes(routes!(as_of))
        .routes(routes!(digest))
        .routes(routes!(signed_head));
    let pages = OpenApiRouter::new().routes(routes!(timeline)).routes(routes!(user_history));
    behind(Access::Token, api).merge(behind(Access::TokenOrSession, pages))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(value: impl Serialize) -> serde_json::Value {
        serde_json::to_value(value).unwrap_or_default()
    }

    #[test]
    fn asof_is_absent_without_at_and_null_for_no_account() {
        let page = |asof| json(UserHistoryPage { events: Vec::new(), next: None, asof });
        assert_eq!(page(None), serde_json::json!({"events": [], "next": null}));
        assert_eq!(page(Some(None)), serde_json::json!({"events": [], "next": null, "asof": null}));
    }
}
