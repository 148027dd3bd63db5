//! Answers for auditors, folded from the log: the history of a user, a token
//! or everything (with who, when, from where, why, and a one-line
//! description), and state as of a moment — folded with the server's own
//! projections, so it is what the server would have answered then. Used by
//! the `replay` tool and the auditor API.

use std::collections::{BTreeMap, HashSet};

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::acting::Acting;
use super::ledger::Ledger;
use super::{AppError, EventMetadata};
use crate::domain::audit::TrailRead;
use crate::domain::token::TokenIssued;
use crate::domain::{Audit, AuditCommand, AuditSubject, AuthError};
use crate::domain::{
    CertificateEvent, InviteEvent, LedgerEvent, LogEvent, SystemEvent, TokenEvent, UserEvent, UserName, upcasters,
};
use crate::projections::{Fold, Projections, TokenView};
use crate::store::{EventLog, StoreError, StoredEvent};

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event at position {position} cannot be read: {message}")]
    Decode { position: i64, message: String },
}

/// A history that cannot be read is the server's fault (its log).
impl From<HistoryError> for AppError {
    fn from(error: HistoryError) -> Self {
        match error {
            HistoryError::Store(e) => Self::Store(e),
            decode => Self::internal(decode),
        }
    }
}

fn decode(
    row: &StoredEvent,
    upcasters: &[Box<dyn cqrs_es::persist::EventUpcaster>],
) -> Result<LedgerEvent, HistoryError> {
    LedgerEvent::decode(&row.aggregate_type, &row.event_type, &row.event_version, &row.payload, upcasters)
        .map_err(|e| HistoryError::Decode { position: row.position, message: e.to_string() })
}

/// Whose history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    All,
    /// The user's own events and those of the tokens issued to it.
    User(UserName),
    /// The token's events and every later event that ended its validity
    /// (its owner's revoke-all, disable or re-enable; a server-wide revoke-all).
    Token(Uuid),
}

/// One event as history shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = AuditEntry)]
pub struct Entry {
    pub position: i64,
    /// Epoch milliseconds at which the event was committed.
    pub recorded_at: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub actor: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub reason: Option<String>,
    /// The call id of the request that caused it (stored as `request_id`).
    #[serde(rename = "request_id")]
    pub call_id: Option<String>,
    pub description: String,
}

/// Who asked for history, and which part of it.
#[derive(Debug, Clone)]
pub struct Query {
    pub subject: Subject,
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Only events caused by this user (the metadata's actor).
    pub actor: Option<String>,
    /// Only events of this type (`RolesGranted`, ...).
    pub event_type: Option<String>,
}

impl Query {
    /// All of the subject's events.
    pub fn of(subject: Subject) -> Self {
        Self { subject, since: None, until: None, actor: None, event_type: None }
    }

    fn admits(&self, entry: &Entry) -> bool {
        self.actor.as_ref().is_none_or(|a| entry.actor.as_ref() == Some(a))
            && self.event_type.as_ref().is_none_or(|t| *t == entry.event_type)
    }
}

/// Decides, in position order, which events concern the subject.
struct Selector {
    subject: Subject,
    /// Tokens issued to the user (user history).
    tokens: HashSet<String>,
    /// Invitations of the user (user history).
    invites: HashSet<String>,
    /// The token's owner and expiry, once issued (token history).
    token: Option<(UserName, i64)>,
}

impl Selector {
    fn wants(&mut self, row: &StoredEvent, event: &LedgerEvent) -> bool {
        match &self.subject {
            Subject::All => true,
            Subject::User(user) => match event {
                LedgerEvent::User(_) => row.aggregate_id == user.as_str(),
                LedgerEvent::Token(TokenEvent::TokenIssued(TokenIssued { user: owner, .. })) if owner == user => {
                    self.tokens.insert(row.aggregate_id.clone());
                    true
                }
                LedgerEvent::Token(_) => self.tokens.contains(&row.aggregate_id),
                LedgerEvent::Certificate(CertificateEvent::UserCertIssued { user: subject, .. }) => subject == user,
                LedgerEvent::Invite(InviteEvent::InviteIssued { user: invited, .. }) if invited == user => {
                    self.invites.insert(row.aggregate_id.clone());
                    true
                }
                LedgerEvent::Invite(_) => self.invites.contains(&row.aggregate_id),
                _ => false,
            },
            Subject::Token(id) => {
                if row.aggregate_type == "Token" && row.aggregate_id == id.to_string() {
                    if let LedgerEvent::Token(TokenEvent::TokenIssued(grant)) = event {
                        self.token = Some((grant.user.clone(), grant.expires));
                    }
                    return true;
                }
                let Some((owner, expires)) = &self.token else {
                    return false;
                };
                if row.recorded_at >= *expires {
                    return false;
                }
                match event {
                    LedgerEvent::User(
                        UserEvent::UserTokensRevoked { .. }
                        | UserEvent::UserDisabled { .. }
                        | UserEvent::UserEnabled { .. },
                    ) => row.aggregate_id == owner.as_str(),
                    LedgerEvent::System(SystemEvent::AllTokensRevoked { .. }) => true,
                    _ => false,
                }
            }
        }
    }
}

fn entry(row: &StoredEvent, event: &LedgerEvent) -> Entry {
    let metadata: Value = serde_json::from_str(&row.metadata).unwrap_or(Value::Null);
    let field = |key: &str| metadata.get(key).and_then(Value::as_str).map(str::to_owned);
    Entry {
        position: row.position,
        recorded_at: row.recorded_at,
        aggregate_type: row.aggregate_type.clone(),
        aggregate_id: row.aggregate_id.clone(),
        event_type: row.event_type.clone(),
        actor: field("actor"),
        client_addr: field("client_addr"),
        user_agent: field("user_agent"),
        reason: field("reason"),
        call_id: field("request_id"),
        description: event.describe(&row.aggregate_id),
    }
}

/// The events of `query`, in commit order; `progress` hears the position reached.
pub async fn history(log: &EventLog, query: &Query, progress: impl FnMut(i64)) -> Result<Vec<Entry>, HistoryError> {
    Ok(history_page(log, query, 0, usize::MAX, progress).await?.0)
}

/// Up to `limit` events of `query` after position `after`, and the position
/// to continue after when there are more.
pub async fn history_page(
    log: &EventLog,
    query: &Query,
    after: i64,
    limit: usize,
    mut progress: impl FnMut(i64),
) -> Result<(Vec<Entry>, Option<i64>), HistoryError> {
    let upcasters = upcasters();
    let mut selector = Selector {
        subject: query.subject.clone(),
        tokens: Default::default(),
        invites: Default::default(),
        token: None,
    };
    let mut entries = Vec::new();
    let mut more = false;
    log.scan(0, |rows| {
        for row in rows {
            let event = decode(row, &upcasters)?;
            let in_window = row.position > after
                && query.since.is_none_or(|t| row.recorded_at >= t)
                && query.until.is_none_or(|t| row.recorded_at <= t);
            // The selector sees every event (a token issued before the window is still followed).
            if selector.wants(row, &event) && in_window {
                let entry = entry(row, &event);
                if !query.admits(&entry) {
                    continue;
                }
                if entries.len() == limit {
                    more = true;
                    return Ok(false);
                }
                entries.push(entry);
            }
        }
        progress(rows.last().map_or(0, |r| r.position));
        Ok::<bool, HistoryError>(true)
    })
    .await?;
    let next = if more { entries.last().map(|e| e.position) } else { None };
    Ok((entries, next))
}

// ------------------------------------------------------ reads, recorded

/// Records that `reader` read the trail of `query` (an `Audit` event: reading
/// is itself audited), then reads one page of it (see [`history_page`]).
pub async fn read_trail(
    ledger: &Ledger,
    reader: &UserName,
    metadata: &EventMetadata,
    query: &Query,
    after: i64,
    limit: usize,
) -> Result<(Vec<Entry>, Option<i64>), AppError> {
    let subject = match &query.subject {
        Subject::All => AuditSubject::All,
        Subject::User(user) => AuditSubject::User(user.clone()),
        Subject::Token(id) => AuditSubject::Token(*id),
    };
    let command = AuditCommand::ReadAuditTrail(TrailRead {
        subject,
        since: query.since,
        until: query.until,
        actor: query.actor.clone(),
        event_type: query.event_type.clone(),
        at: ledger.now(),
    });
    ledger.execute::<Audit>(reader, command, metadata).await?;
    Ok(history_page(&ledger.log, query, after, limit, |_| {}).await?)
}

/// Records that `reader` asked for `user`'s state at `at`, then folds it
/// (`None`: the account did not exist then).
pub async fn read_state_as_of(
    ledger: &Ledger,
    reader: &UserName,
    metadata: &EventMetadata,
    user: &UserName,
    at: i64,
) -> Result<Option<UserAsOf>, AppError> {
    let command = AuditCommand::ReadStateAsOf { user: user.clone(), as_of: at, at: ledger.now() };
    ledger.execute::<Audit>(reader, command, metadata).await?;
    Ok(user_as_of(&ledger.log, user, at).await?)
}

/// What a user's history page shows: every event of the user, and with `at`
/// the user's state at that instant — each read recorded.
pub struct UserHistory {
    pub events: Vec<Entry>,
    /// The instant asked for, and the state then (`None`: no account yet).
    pub as_of: Option<(i64, Option<UserAsOf>)>,
}

/// The history of an existing user (404 otherwise), read by `reader`.
pub async fn user_history(
    ledger: &Ledger,
    reader: &UserName,
    metadata: &EventMetadata,
    user: &UserName,
    at: Option<i64>,
) -> Result<UserHistory, AppError> {
    if ledger.projections.read().users.get(user).is_none() {
        return Err(AuthError::no_such_user(user.as_str()).into());
    }
    let query = Query::of(Subject::User(user.clone()));
    let (events, _) = read_trail(ledger, reader, metadata, &query, 0, usize::MAX).await?;
    let as_of = match at {
        Some(at) => Some((at, read_state_as_of(ledger, reader, metadata, user, at).await?)),
        None => None,
    };
    Ok(UserHistory { events, as_of })
}

// -------------------------------------------------------------------- as-of

/// A user as it stood at a moment.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UserAsOf {
    pub at: i64,
    pub user: String,
    pub display: String,
    pub email: Option<String>,
    pub roles: Vec<String>,
    pub custom_roles: Vec<String>,
    /// The reason, when the account was disabled at that moment.
    pub disabled: Option<String>,
    /// The user's tokens that were valid at that moment.
    pub tokens: Vec<LiveToken>,
    /// The logins (SSH principals) the user's new certificates would have carried.
    pub logins: Vec<String>,
    pub second_factor: bool,
    /// The user's SSH certificates that were valid at that moment.
    pub certificates: Vec<LiveCertificate>,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiveCertificate {
    pub serial: String,
    pub principals: Vec<String>,
    pub key_fingerprint: String,
    pub valid_after: i64,
    pub valid_before: i64,
    /// The fingerprint of the key that signed it.
    pub ca_fingerprint: String,
    /// Whether its signing key was still trusted at that instant (a
    /// rotation's standby, or an immediate rotation, drops the old key).
    pub trusted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LiveToken {
    pub id: Uuid,
    pub kind: String,
    pub name: Option<String>,
    pub created: i64,
    pub expires: i64,
}

/// Whether a token was valid at a moment, and if not, why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenAsOf {
    pub at: i64,
    pub id: Uuid,
    pub valid: bool,
    /// Owner, kind, creation and expiry, once issued.
    pub token: Option<LiveToken>,
    pub user: Option<String>,
    /// Why it was not valid: the event that ended it, its expiry, or that it did not exist yet.
    pub because: Option<String>,
    /// The event that ended it, when one did.
    pub ended_by: Option<Entry>,
}

/// Folds the log after `projections.position` into them, in position order,
/// until `stop` says a row is past the end; `each` sees every folded event.
pub async fn fold(
    log: &EventLog,
    mut projections: Projections,
    stop: impl Fn(&StoredEvent) -> bool,
    mut each: impl FnMut(&StoredEvent, &LedgerEvent),
) -> Result<Projections, HistoryError> {
    let upcasters = upcasters();
    log.scan(projections.position, |rows| {
        for row in rows {
            if stop(row) {
                return Ok(false);
            }
            let event = decode(row, &upcasters)?;
            projections.apply(row.position, row.recorded_at, &row.aggregate_id, row.sequence, &event);
            each(row, &event);
        }
        Ok::<bool, HistoryError>(true)
    })
    .await?;
    Ok(projections)
}

/// Folds the log as committed by `at` into the server's own projections.
async fn fold_until(
    log: &EventLog,
    at: i64,
    each: impl FnMut(&StoredEvent, &LedgerEvent),
) -> Result<Projections, HistoryError> {
    fold(log, Projections::new(Default::default()), |row| row.recorded_at > at, each).await
}

fn live(view: &TokenView) -> LiveToken {
    LiveToken {
        id: view.id,
        kind: view.kind.description().to_owned(),
        name: view.name.clone(),
        created: view.created,
        expires: view.expires,
    }
}

/// The user as it stood at `at` (`None`: it did not exist yet).
pub async fn user_as_of(log: &EventLog, user: &UserName, at: i64) -> Result<Option<UserAsOf>, HistoryError> {
    let projections = fold_until(log, at, |_, _| {}).await?;
    let Some(record) = projections.users.get(user) else {
        return Ok(None);
    };
    let user_ca = projections.access.authority(crate::domain::CaKind::User);
    Ok(Some(UserAsOf {
        at,
        user: record.name.to_string(),
        display: record.display.clone(),
        email: record.email.clone(),
        roles: record.roles.iter().map(|r| r.id().to_owned()).collect(),
        custom_roles: record.custom_roles.iter().map(ToString::to_string).collect(),
        disabled: record.disabled_reason.clone(),
        tokens: projections.tokens.tokens_of(user, at).iter().map(live).collect(),
        logins: record.effective_logins().iter().map(ToString::to_string).collect(),
        second_factor: record.second_factor.is_some(),
        certificates: projections
            .access
            .certificates()
            .iter()
            .filter_map(|r| match &r.event {
                CertificateEvent::UserCertIssued { user: subject, principals, cert, .. }
                    if subject == user && cert.valid_after <= at && at < cert.valid_before =>
                {
                    Some(LiveCertificate {
                        serial: cert.serial.to_string(),
                        principals: principals.iter().map(ToString::to_string).collect(),
                        key_fingerprint: cert.key_fingerprint.clone(),
                        valid_after: cert.valid_after,
                        valid_before: cert.valid_before,
                        ca_fingerprint: cert.ca_fingerprint.clone(),
                        trusted: user_ca.is_some_and(|ca| ca.trusts(&cert.ca_fingerprint)),
                    })
                }
                _ => None,
            })
            .collect(),
    }))
}

/// Whether token `id` was valid at `at`, and what ended it if it was not.
pub async fn token_as_of(log: &EventLog, id: Uuid, at: i64) -> Result<TokenAsOf, HistoryError> {
    let key = id.to_string();
    let mut issued: Option<TokenIssued> = None;
    let mut ended: Option<Entry> = None;
    let projections = fold_until(log, at, |row, event| {
        if ended.is_some() {
            return;
        }
        if row.aggregate_type == "Token" && row.aggregate_id == key {
            match event {
                LedgerEvent::Token(TokenEvent::TokenIssued(grant)) => issued = Some(grant.clone()),
                LedgerEvent::Token(TokenEvent::TokenRevoked(_)) => ended = Some(entry(row, event)),
                _ => {}
            }
            return;
        }
        let Some(grant) = &issued else {
            return;
        };
        let ends = match event {
            LedgerEvent::User(UserEvent::UserTokensRevoked { .. } | UserEvent::UserDisabled { .. }) => {
                row.aggregate_id == grant.user.as_str()
            }
            LedgerEvent::System(SystemEvent::AllTokensRevoked { .. }) => true,
            _ => false,
        };
        if ends && row.recorded_at < grant.expires {
            ended = Some(entry(row, event));
        }
    })
    .await?;
    let Some(grant) = issued else {
        return Ok(TokenAsOf {
            at,
            id,
            valid: false,
            token: None,
            user: None,
            because: Some("no such token had been issued by then".into()),
            ended_by: None,
        });
    };
    let hash = crate::projections::token_index::decode_hash(&grant.token_hash);
    let view = hash.and_then(|h| projections.tokens.find(&h, at));
    let token = LiveToken {
        id,
        kind: grant.kind.description().to_owned(),
        name: grant.name.as_ref().map(ToString::to_string),
        created: grant.created,
        expires: grant.expires,
    };
    let because = match (&view, &ended) {
        (Some(_), _) => None,
        (None, Some(event)) => {
            Some(format!("{} at position {}: {}", event.event_type, event.position, event.description))
        }
        (None, None) if grant.expires <= at => Some(format!("it expired at {}", grant.expires)),
        (None, None) => Some("its owner was disabled".into()),
    };
    Ok(TokenAsOf {
        at,
        id,
        valid: view.is_some(),
        token: Some(token),
        user: Some(grant.user.to_string()),
        because,
        ended_by: if view.is_some() { None } else { ended },
    })
}

/// The users behind anonymous ids, as `anon id → user name` (disabled users
/// and root are never revealed); the translation is itself recorded: who
/// unmasked which ids.
pub async fn translate_anon_ids(
    ledger: &Ledger,
    reader: &Acting,
    ids: Vec<Uuid>,
) -> Result<BTreeMap<String, String>, AppError> {
    if ids.is_empty() {
        return Ok(BTreeMap::new());
    }
    let command = AuditCommand::TranslateAnonIds { anon_ids: ids.clone(), at: ledger.now() };
    ledger.execute::<Audit>(reader.name(), command, &reader.metadata).await?;
    let projections = ledger.projections.read();
    Ok(ids
        .iter()
        .filter_map(|id| projections.users.by_anon_id(id))
        .filter(|u| !u.is_disabled() && !u.name.is_root())
        .map(|u| (u.anon_id.to_string(), u.name.to_string()))
        .collect())
}
