//! `replay`: answers auditors' and operators' questions from an authledger
//! log, without the server. It opens the same stores through the same store
//! code — read-only, except `import`, which fills an empty store.
//!
//! - [`history`]: every event touching a user, a token, or everything, in commit order.
//! - [`verify_chain`]: the integrity chain over the whole log.
//! - [`export`] / [`import`]: the whole log (and the password-hash table) as JSON lines,
//!   in position order with metadata, times and chain values, so a log moves between stores.

use std::io::{BufRead, Write};
use std::sync::Arc;

use authledger::clock::SystemClock;
use authledger::domain::{LedgerEvent, LogEvent, TokenEvent, UserEvent, UserName, upcasters};
use authledger::domain::{SystemEvent, token::TokenIssued};
use authledger::projections::{Fold, Projections};
use authledger::store::chain::{ChainBreak, ChainVerifier};
use authledger::store::{EventLog, ImportRow, SecretRow, StoreError, StoreOptions, StoredEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// How many rows one read fetches.
const BATCH: i64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event at position {position} cannot be read: {message}")]
    Decode { position: i64, message: String },
    #[error("{path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("{path} line {line}: {message}")]
    Format { path: String, line: usize, message: String },
    #[error("{path} does not verify: {broken}; nothing was imported")]
    Tampered { path: String, broken: ChainBreak },
}

/// Opens a log: read-only, or (for `import`) creating its schema.
pub async fn open(store: &str, options: StoreOptions) -> Result<EventLog, ReplayError> {
    Ok(EventLog::open(store, options, Arc::new(SystemClock)).await?)
}

pub fn read_only() -> StoreOptions {
    StoreOptions { read_only: true, ..StoreOptions::default() }
}

/// Reads the whole log in position order, handing each batch to `each`.
async fn scan(
    log: &EventLog,
    mut each: impl FnMut(&[StoredEvent]) -> Result<(), ReplayError>,
) -> Result<(), ReplayError> {
    let mut after = 0;
    loop {
        let rows = log.read_after(after, BATCH).await?;
        let Some(last) = rows.last() else {
            return Ok(());
        };
        after = last.position;
        each(&rows)?;
    }
}

// ------------------------------------------------------------------ history

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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    pub request_id: Option<String>,
    pub description: String,
}

/// Who asked for history, and which part of it.
#[derive(Debug, Clone)]
pub struct Query {
    pub subject: Subject,
    pub since: Option<i64>,
    pub until: Option<i64>,
}

/// Decides, in position order, which events concern the subject.
struct Selector {
    subject: Subject,
    /// Tokens issued to the user (user history).
    tokens: std::collections::HashSet<String>,
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
        request_id: field("request_id"),
        description: event.describe(&row.aggregate_id),
    }
}

/// The events of `query`, in commit order; `progress` hears the position reached.
pub async fn history(log: &EventLog, query: &Query, mut progress: impl FnMut(i64)) -> Result<Vec<Entry>, ReplayError> {
    let upcasters = upcasters();
    let mut selector = Selector { subject: query.subject.clone(), tokens: Default::default(), token: None };
    let mut entries = Vec::new();
    scan(log, |rows| {
        for row in rows {
            let event =
                LedgerEvent::decode(&row.aggregate_type, &row.event_type, &row.event_version, &row.payload, &upcasters)
                    .map_err(|e| ReplayError::Decode { position: row.position, message: e.to_string() })?;
            let in_window =
                query.since.is_none_or(|t| row.recorded_at >= t) && query.until.is_none_or(|t| row.recorded_at <= t);
            // The selector sees every event (a token issued before `since` is still followed).
            if selector.wants(row, &event) && in_window {
                entries.push(entry(row, &event));
            }
        }
        progress(rows.last().map_or(0, |r| r.position));
        Ok(())
    })
    .await?;
    Ok(entries)
}

// -------------------------------------------------------------------- as-of

/// A user as it stood at a moment.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Folds the log as committed by `at` into the server's own projections.
async fn fold_until(
    log: &EventLog,
    at: i64,
    mut each: impl FnMut(&StoredEvent, &LedgerEvent),
) -> Result<Projections, ReplayError> {
    let upcasters = upcasters();
    let mut projections = Projections::new(Default::default());
    let mut after = 0;
    'scan: loop {
        let rows = log.read_after(after, BATCH).await?;
        let Some(last) = rows.last() else {
            break;
        };
        after = last.position;
        for row in &rows {
            if row.recorded_at > at {
                break 'scan;
            }
            let event =
                LedgerEvent::decode(&row.aggregate_type, &row.event_type, &row.event_version, &row.payload, &upcasters)
                    .map_err(|e| ReplayError::Decode { position: row.position, message: e.to_string() })?;
            projections.apply(row.position, row.recorded_at, &row.aggregate_id, row.sequence, &event);
            each(row, &event);
        }
    }
    Ok(projections)
}

fn live(view: &authledger::projections::TokenView) -> LiveToken {
    LiveToken {
        id: view.id,
        kind: view.kind.description().to_owned(),
        name: view.name.clone(),
        created: view.created,
        expires: view.expires,
    }
}

/// The user as it stood at `at` (`None`: it did not exist yet).
pub async fn user_as_of(log: &EventLog, user: &UserName, at: i64) -> Result<Option<UserAsOf>, ReplayError> {
    let projections = fold_until(log, at, |_, _| {}).await?;
    let Some(record) = projections.users.get(user) else {
        return Ok(None);
    };
    Ok(Some(UserAsOf {
        at,
        user: record.name.to_string(),
        display: record.display.clone(),
        email: record.email.clone(),
        roles: record.roles.iter().map(|r| r.id().to_owned()).collect(),
        custom_roles: record.custom_roles.iter().map(ToString::to_string).collect(),
        disabled: record.disabled_reason.clone(),
        tokens: projections.tokens.tokens_of(user, at).iter().map(live).collect(),
    }))
}

/// Whether token `id` was valid at `at`, and what ended it if it was not.
pub async fn token_as_of(log: &EventLog, id: Uuid, at: i64) -> Result<TokenAsOf, ReplayError> {
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
    let hash = authledger::projections::token_index::decode_hash(&grant.token_hash);
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

// ------------------------------------------------------------------- verify

/// Checks the integrity chain over the whole log.
pub async fn verify_chain(
    log: &EventLog,
    progress: impl FnMut(i64),
) -> Result<Result<ChainVerifier, ChainBreak>, ReplayError> {
    Ok(log.verify_chain(progress).await?)
}

// ----------------------------------------------------------- export/import

/// One line of an export file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Line {
    Event {
        position: i64,
        aggregate_type: String,
        aggregate_id: String,
        sequence: i64,
        event_type: String,
        event_version: String,
        payload: Value,
        metadata: Value,
        recorded_at: i64,
        chain: Option<String>,
    },
    /// A password hash referenced by a `PasswordChanged` event.
    Secret { id: String, secret_kind: String, secret: String, created_at: i64 },
}

impl Line {
    fn from_event(row: &StoredEvent) -> Result<Self, ReplayError> {
        let parse = |text: &str| {
            serde_json::from_str(text)
                .map_err(|e| ReplayError::Decode { position: row.position, message: e.to_string() })
        };
        Ok(Self::Event {
            position: row.position,
            aggregate_type: row.aggregate_type.clone(),
            aggregate_id: row.aggregate_id.clone(),
            sequence: row.sequence,
            event_type: row.event_type.clone(),
            event_version: row.event_version.clone(),
            payload: parse(&row.payload)?,
            metadata: parse(&row.metadata)?,
            recorded_at: row.recorded_at,
            chain: row.chain.clone(),
        })
    }

    /// The row as stored (payload and metadata in their stored text form).
    fn into_row(self) -> ImportRow {
        match self {
            Line::Event {
                position,
                aggregate_type,
                aggregate_id,
                sequence,
                event_type,
                event_version,
                payload,
                metadata,
                recorded_at,
                chain,
            } => ImportRow::Event(StoredEvent {
                position,
                aggregate_type,
                aggregate_id,
                sequence,
                event_type,
                event_version,
                payload: payload.to_string(),
                metadata: metadata.to_string(),
                recorded_at,
                chain,
            }),
            Line::Secret { id, secret_kind, secret, created_at } => {
                ImportRow::Secret(SecretRow { id, kind: secret_kind, secret, created_at })
            }
        }
    }
}

/// What an export or import moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    pub events: u64,
    pub secrets: u64,
}

/// Writes the whole log, then the secrets table, as JSON lines.
pub async fn export(log: &EventLog, out: &mut impl Write, mut progress: impl FnMut(i64)) -> Result<Moved, ReplayError> {
    let mut moved = Moved::default();
    let io = |source| ReplayError::File { path: "the export file".into(), source };
    scan(log, |rows| {
        for row in rows {
            let line = serde_json::to_string(&Line::from_event(row)?).unwrap_or_default();
            writeln!(out, "{line}").map_err(io)?;
            moved.events += 1;
        }
        progress(rows.last().map_or(0, |r| r.position));
        Ok(())
    })
    .await?;
    for secret in log.secrets().await? {
        let line = Line::Secret {
            id: secret.id,
            secret_kind: secret.kind,
            secret: secret.secret,
            created_at: secret.created_at,
        };
        writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default()).map_err(io)?;
        moved.secrets += 1;
    }
    out.flush().map_err(io)?;
    Ok(moved)
}

/// The rows of an export file, parsed one line at a time.
fn lines(path: &str) -> Result<impl Iterator<Item = Result<(usize, ImportRow), ReplayError>>, ReplayError> {
    let file = std::fs::File::open(path).map_err(|source| ReplayError::File { path: path.into(), source })?;
    let owned = path.to_owned();
    Ok(std::io::BufReader::new(file).lines().enumerate().filter_map(move |(n, line)| {
        let line = match line {
            Ok(line) if line.trim().is_empty() => return None,
            Ok(line) => line,
            Err(source) => return Some(Err(ReplayError::File { path: owned.clone(), source })),
        };
        Some(serde_json::from_str::<Line>(&line).map(|l| (n + 1, l.into_row())).map_err(|e| ReplayError::Format {
            path: owned.clone(),
            line: n + 1,
            message: e.to_string(),
        }))
    }))
}

/// Checks an export file's chain without writing anything; returns its counts.
pub fn verify_file(path: &str) -> Result<Moved, ReplayError> {
    let mut verifier = ChainVerifier::default();
    let mut moved = Moved::default();
    for row in lines(path)? {
        match row?.1 {
            ImportRow::Event(event) => {
                verifier.check(&event).map_err(|broken| ReplayError::Tampered { path: path.into(), broken })?;
                moved.events += 1;
            }
            ImportRow::Secret(_) => moved.secrets += 1,
        }
    }
    Ok(moved)
}

/// Imports an export file into an empty log: the file's chain is verified
/// first, then every row is written verbatim in one transaction.
pub async fn import(path: &str, log: &EventLog) -> Result<Moved, ReplayError> {
    let moved = verify_file(path)?;
    let mut rows = lines(path)?.map(|row| row.map(|(_, r)| r).map_err(|e| e.to_string()));
    log.import(&mut rows).await?;
    Ok(moved)
}
