//! The auditor API (Admin role): the audit trail, paged by position, and a
//! user's state as of a moment — the same answers as the `replay` tool, from
//! the live log. Every read is itself recorded (`Audit` events).

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::AppState;
use super::error::ApiError;
use super::permissions::{self, Action};
use super::request::{FirstQuery, RequestContext, required_header_token};
use crate::app::history::{self, AuditError, Subject};
use crate::domain::Audit;
use crate::domain::names::{is_blank, java_trim};
use crate::domain::{AuditCommand, AuditSubject, AuthError, UserName};
use crate::projections::UserRecord;

/// At most this many events per page.
pub const MAX_PAGE: usize = 1_000;
const DEFAULT_PAGE: usize = 100;

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    user: Option<String>,
    token: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    after: Option<String>,
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

fn audit_failed(error: AuditError) -> ApiError {
    tracing::error!(%error, "reading the log for an audit failed");
    ApiError::internal(error.to_string())
}

/// The caller, if it may read the audit trail (token, enabled user, Admin).
fn auditor(state: &AppState, token: &str) -> Result<UserRecord, ApiError> {
    let view = state.token_view(token)?;
    let user = state.user_of(&view)?;
    permissions::check(Action::ReadAuditTrail, &user.roles)?;
    Ok(user)
}

/// `GET /api/V2/admin/audit?user=&token=&since=&until=&limit=&after=`:
/// `{"events": [...], "next": position or null}` in commit order.
pub async fn audit_trail(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let subject = match (query.user.as_deref(), query.token.as_deref()) {
        (Some(user), Some(token)) if !is_blank(Some(user)) && !is_blank(Some(token)) => {
            return Err(AuthError::illegal("Give user or token, not both").into());
        }
        (Some(user), _) if !is_blank(Some(user)) => Subject::User(UserName::parse(Some(user))?),
        (_, Some(token)) if !is_blank(Some(token)) => Subject::Token(
            Uuid::parse_str(java_trim(token))
                .map_err(|_| AuthError::illegal(format!("Illegal token id: {}", java_trim(token))))?,
        ),
        _ => Subject::All,
    };
    let since = time_param("since", query.since.as_deref())?;
    let until = time_param("until", query.until.as_deref())?;
    let limit = count_param("limit", query.limit.as_deref(), 1..=MAX_PAGE as i64)?.map_or(DEFAULT_PAGE, |n| n as usize);
    let after = count_param("after", query.after.as_deref(), 0..=i64::MAX)?.unwrap_or(0);
    let token = required_header_token(&context.headers)?;
    let reader = auditor(&state, &token)?;
    let recorded = match &subject {
        Subject::All => AuditSubject::All,
        Subject::User(user) => AuditSubject::User(user.clone()),
        Subject::Token(id) => AuditSubject::Token(*id),
    };
    let command = AuditCommand::ReadAuditTrail { subject: recorded, since, until, at: state.now() };
    state.ledger.execute::<Audit>(&reader.name, command, &context.metadata(&reader.name, state.ignore_ip())).await?;
    let query = history::Query { subject, since, until };
    let (events, next) =
        history::history_page(&state.ledger.log, &query, after, limit, |_| {}).await.map_err(audit_failed)?;
    Ok(Json(json!({ "events": events, "next": next })))
}

#[derive(Debug, Deserialize)]
pub struct AsOfQuery {
    user: Option<String>,
    at: Option<String>,
}

/// `GET /api/V2/admin/asof?user=U&at=T`: the user's profile, roles, disabled
/// state and live tokens at `T`.
pub async fn as_of(
    State(state): State<AppState>,
    context: RequestContext,
    FirstQuery(query): FirstQuery<AsOfQuery>,
) -> Result<Json<Value>, ApiError> {
    if is_blank(query.user.as_deref()) {
        return Err(AuthError::missing("user").into());
    }
    let user = UserName::parse(query.user.as_deref())?;
    let at = time_param("at", query.at.as_deref())?.ok_or_else(|| AuthError::missing("at"))?;
    let token = required_header_token(&context.headers)?;
    let reader = auditor(&state, &token)?;
    let command = AuditCommand::ReadStateAsOf { user: user.clone(), as_of: at, at: state.now() };
    state.ledger.execute::<Audit>(&reader.name, command, &context.metadata(&reader.name, state.ignore_ip())).await?;
    let found = history::user_as_of(&state.ledger.log, &user, at).await.map_err(audit_failed)?;
    let found = found.ok_or_else(|| AuthError::no_such_user(user.as_str()))?;
    Ok(Json(serde_json::to_value(found).unwrap_or_default()))
}

/// `GET /api/V2/admin/digest`: the live projections' position and digest, to
/// compare with a rebuild from the log (`replay verify --server`).
pub async fn digest(State(state): State<AppState>, context: RequestContext) -> Result<Json<Value>, ApiError> {
    let token = required_header_token(&context.headers)?;
    auditor(&state, &token)?;
    let checkpoint = state.ledger.model.read().checkpoint();
    Ok(Json(json!({
        "position": checkpoint.position,
        "rule": checkpoint.rule.name(),
        "digest": checkpoint.digest(),
    })))
}
