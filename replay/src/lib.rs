//! `replay`: answers auditors' and operators' questions from an authledger
//! log, without the server. It opens the same stores through the same store
//! code — read-only, except `import`, which fills an empty store.
//!
//! - [`history`], [`user_as_of`], [`token_as_of`]: the auditor's questions (`authledger::app::history`).
//! - [`verify_chain`]: the integrity chain over the whole log.
//! - [`export`] / [`import`]: the whole log (and the password-hash table) as JSON lines,
//!   in position order with metadata, times and chain values, so a log moves between stores.

use std::io::{BufRead, Write};
use std::sync::Arc;

use authledger::clock::SystemClock;
use authledger::domain::canonical::Canonicalization;
use authledger::projections::Projections;
use authledger::store::chain::{self, ChainBreak, ChainVerifier, Redaction};
use authledger::store::{EventLog, ImportRow, SecretRow, Store, StoreError, StoreOptions, StoredEvent};
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    History(#[from] HistoryError),
    #[error(transparent)]
    App(#[from] authledger::app::AppError),
    #[error("event at position {position} cannot be read: {message}")]
    Decode { position: i64, message: String },
    #[error("{path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("{path} line {line}: {message}")]
    Format { path: String, line: usize, message: String },
    #[error("{path} does not verify: {broken}; nothing was imported")]
    Tampered { path: String, broken: ChainBreak },
}

/// Opens a store (its log, credentials and checkpoints): read-only, or (for
/// `import` and `rebuild`) creating its schema.
pub async fn open(store: &str, options: StoreOptions) -> Result<Store, ReplayError> {
    Ok(Store::open(store, options, Arc::new(SystemClock)).await?)
}

pub fn read_only() -> StoreOptions {
    StoreOptions { read_only: true, ..StoreOptions::default() }
}

pub use authledger::app::history::{
    Entry, HistoryError, LiveToken, Query, Subject, TokenAsOf, UserAsOf, history, token_as_of, user_as_of,
};

// ------------------------------------------------------------------- verify

/// Checks the integrity chain over the whole log; a forget's signature must
/// be by `witness_key` (base64) when given, else by a key the log recorded as
/// its witness's.
pub async fn verify_chain(
    log: &EventLog,
    witness_key: Option<&str>,
    progress: impl FnMut(i64),
) -> Result<Result<ChainVerifier, ChainBreak>, ReplayError> {
    Ok(log.verify_chain(witness_key.map(str::to_owned), progress).await?)
}

// -------------------------------------------------------------- checkpoints

/// Folds the whole log into fresh projections and stores them as a checkpoint
/// the server loads at start-up. Returns its position, digest and size.
pub async fn rebuild(store: &Store, rule: Canonicalization) -> Result<(i64, String, usize), ReplayError> {
    let rebuilt = rebuild_part(store, rule, Part::All).await?;
    Ok((rebuilt.position, rebuilt.digest, rebuilt.bytes))
}

/// A stored checkpoint against a fresh fold of the log up to its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckpointCheck {
    pub position: i64,
    pub stored: String,
    pub rebuilt: String,
}

impl CheckpointCheck {
    pub fn matches(&self) -> bool {
        self.stored == self.rebuilt
    }
}

/// Rebuilds every projection from scratch up to the newest checkpoint's
/// position and compares digests (`None`: there is no checkpoint to compare with).
pub async fn verify_checkpoint(store: &Store, rule: Canonicalization) -> Result<Option<CheckpointCheck>, ReplayError> {
    let Some(stored) = store.checkpoints.latest(rule.name()).await? else {
        return Ok(None);
    };
    let rebuilt = digest_at(&store.log, rule, stored.position).await?;
    Ok(Some(CheckpointCheck { position: stored.position, stored: stored.digest, rebuilt }))
}

/// The digest of every projection folded from scratch up to `position`.
pub async fn digest_at(log: &EventLog, rule: Canonicalization, position: i64) -> Result<String, ReplayError> {
    Ok(fold(log, Projections::new(rule), Some(position)).await?.checkpoint().digest())
}

/// Folds the log after `projections.position` into them, up to `until` (or the head).
async fn fold(log: &EventLog, projections: Projections, until: Option<i64>) -> Result<Projections, ReplayError> {
    let past_end = |row: &StoredEvent| until.is_some_and(|until| row.position > until);
    Ok(authledger::app::history::fold(log, projections, past_end, |_, _| {}).await?)
}

/// Which projection `rebuild --projection` rebuilds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    All,
    TokenIndex,
    UserDirectory,
    Settings,
    Access,
}

/// What a rebuild stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rebuilt {
    pub position: i64,
    pub digest: String,
    pub bytes: usize,
    /// Whether the other projections were carried forward from the previous checkpoint.
    pub carried_forward: bool,
}

/// Rebuilds `part` from the log and stores a checkpoint. For one projection,
/// the others are carried forward from the newest usable checkpoint (folded on
/// to the same position); without one, everything is rebuilt.
pub async fn rebuild_part(store: &Store, rule: Canonicalization, part: Part) -> Result<Rebuilt, ReplayError> {
    let log = &store.log;
    let now = authledger::clock::Clock::now_ms(&SystemClock);
    let previous = match part {
        Part::All => None,
        _ => authledger::projections::checkpoint::load_checkpoint(log, &store.checkpoints, rule).await,
    };
    let fresh = fold(log, Projections::new(rule), None).await?;
    let carried_forward = previous.is_some();
    let projections = match previous {
        None => fresh,
        Some(previous) => {
            let mut kept = fold(log, previous, Some(fresh.position)).await?;
            match part {
                Part::TokenIndex => kept.tokens = fresh.tokens,
                Part::UserDirectory => kept.users = fresh.users,
                Part::Settings => kept.config = fresh.config,
                Part::Access => kept.access = fresh.access,
                // `previous` is only read for a single projection.
                Part::All => kept = fresh,
            }
            kept
        }
    };
    let checkpoint = projections.checkpoint();
    let (digest, bytes) =
        authledger::projections::checkpoint::store_checkpoint(log, &store.checkpoints, &checkpoint, now).await?;
    Ok(Rebuilt { position: checkpoint.position, digest, bytes, carried_forward })
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
    /// A forget's commitment to a row it rewrote (hex chain values).
    Redaction { position: i64, forget_position: i64, previous: String, content: String },
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
    fn into_row(self) -> Result<ImportRow, String> {
        Ok(match self {
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
            Line::Redaction { position, forget_position, previous, content } => {
                match (chain::decode(&previous), chain::decode(&content)) {
                    (Some(previous), Some(content)) => {
                        ImportRow::Redaction(Redaction { position, forget_position, previous, content })
                    }
                    _ => return Err(format!("the redaction of position {position} is not hex chain values")),
                }
            }
        })
    }
}

/// What an export or import moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Moved {
    pub events: u64,
    pub secrets: u64,
    /// The key ids the moved secrets are sealed under (`""`: a plaintext
    /// row from before sealing): the key file the target's servers need.
    pub keys: std::collections::BTreeSet<String>,
    /// Whether the log records that its heads are witnessed (`LogWitnessed`):
    /// the target's servers need its witness file too.
    pub witnessed: bool,
    /// Rows of the redactions table (what forgets committed to).
    pub redactions: u64,
}

impl Moved {
    fn event(&mut self, event_type: &str) {
        self.events += 1;
        self.witnessed |= event_type == "LogWitnessed";
    }

    /// What the target's servers need of the witness, in a line.
    pub fn witness_needed(&self) -> Option<String> {
        self.witnessed.then(|| {
            "the log records that its heads are witnessed: copy the source's witness file to the target's \
             witness_file (its signed head holds there too), or its servers refuse writes until an operator \
             runs `authledger witness accept --reason ...`"
                .to_owned()
        })
    }

    fn secret(&mut self, secret: &str) {
        self.secrets += 1;
        self.keys.insert(authledger::store::keyring::sealed_key_id(secret).unwrap_or_default().to_owned());
    }

    /// What the target's servers need to open the moved secrets, in a line.
    pub fn key_needed(&self) -> Option<String> {
        let sealed: Vec<&str> = self.keys.iter().map(String::as_str).filter(|k| !k.is_empty()).collect();
        let plain = self.keys.contains("");
        match (sealed.is_empty(), plain) {
            (true, false) => None,
            (true, true) => Some("the secrets are not sealed yet (a log from before sealing): the first server started on the target seals them under its key".into()),
            (false, _) => Some(format!(
                "the secrets are sealed under key {}: give the target's servers that key file as {}",
                sealed.join(", "),
                authledger::store::SECRETS_KEY_SETTING
            )),
        }
    }
}

/// Writes the whole log, then the secrets table, as JSON lines.
pub async fn export(store: &Store, out: &mut impl Write, mut progress: impl FnMut(i64)) -> Result<Moved, ReplayError> {
    let log = &store.log;
    let mut moved = Moved::default();
    let io = |source| ReplayError::File { path: "the export file".into(), source };
    log.scan(0, |rows| {
        for row in rows {
            let line = serde_json::to_string(&Line::from_event(row)?).unwrap_or_default();
            writeln!(out, "{line}").map_err(io)?;
            moved.event(&row.event_type);
        }
        progress(rows.last().map_or(0, |r| r.position));
        Ok::<bool, ReplayError>(true)
    })
    .await?;
    for secret in store.credentials.all().await? {
        moved.secret(&secret.secret);
        let line = Line::Secret {
            id: secret.id,
            secret_kind: secret.kind,
            secret: secret.secret,
            created_at: secret.created_at,
        };
        writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default()).map_err(io)?;
    }
    for redaction in log.redactions().await? {
        let line = Line::Redaction {
            position: redaction.position,
            forget_position: redaction.forget_position,
            previous: chain::encode(&redaction.previous),
            content: chain::encode(&redaction.content),
        };
        writeln!(out, "{}", serde_json::to_string(&line).unwrap_or_default()).map_err(io)?;
        moved.redactions += 1;
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
        let format = |message: String| ReplayError::Format { path: owned.clone(), line: n + 1, message };
        Some(
            serde_json::from_str::<Line>(&line)
                .map_err(|e| format(e.to_string()))
                .and_then(|l| l.into_row().map_err(format))
                .map(|row| (n + 1, row)),
        )
    }))
}

/// Checks an export file's chain without writing anything; returns its counts.
/// Rows a forget rewrote are checked against the file's redactions (which
/// follow the events), and each forget against the witness key the file's
/// log recorded.
pub fn verify_file(path: &str) -> Result<Moved, ReplayError> {
    let mut redactions = Vec::new();
    for row in lines(path)? {
        if let ImportRow::Redaction(redaction) = row?.1 {
            redactions.push(redaction);
        }
    }
    let mut verifier = ChainVerifier::new(redactions, None);
    let tampered = |broken| ReplayError::Tampered { path: path.into(), broken };
    let mut moved = Moved::default();
    for row in lines(path)? {
        match row?.1 {
            ImportRow::Event(event) => {
                verifier.check(&event).map_err(tampered)?;
                moved.event(&event.event_type);
            }
            ImportRow::Secret(secret) => moved.secret(&secret.secret),
            ImportRow::Redaction(_) => moved.redactions += 1,
        }
    }
    verifier.finish().map_err(tampered)?;
    Ok(moved)
}

/// Imports an export file into an empty log: the file's chain is verified
/// first, then every row is written verbatim in one transaction.
pub async fn import(path: &str, store: &Store) -> Result<Moved, ReplayError> {
    let moved = verify_file(path)?;
    let mut rows = lines(path)?.map(|row| row.map(|(_, r)| r).map_err(|e| e.to_string()));
    store.log.import(&mut rows).await?;
    Ok(moved)
}

/// One head the log was checked against, and what the check found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HeadReport {
    /// Where the head came from: the witness file's path, or `--head`.
    pub source: String,
    /// The signature's problem, for a witness file whose head does not verify.
    pub signature: Option<String>,
    /// For a witness file: whether its key was pinned (`--witness-key`); an
    /// unpinned head is only checked under the key the file itself names.
    pub pinned: Option<bool>,
    pub check: authledger::store::witness::HeadCheck,
}

impl HeadReport {
    pub fn holds(&self) -> bool {
        self.signature.is_none() && self.check.holds()
    }
}

/// Checks the log against the signed head of a witness file (its signature,
/// under `pinned_key` when given) and against an auditor's own `head`
/// (`POSITION:CHAIN`): a log shorter than a head is truncated, a different
/// chain value there means it was rewritten.
pub async fn check_heads(
    log: &EventLog,
    witness: Option<&std::path::Path>,
    pinned_key: Option<&str>,
    head: Option<(i64, String)>,
) -> Result<Vec<HeadReport>, ReplayError> {
    use authledger::store::witness::{HeadCheck, SignedHead, check_head};
    let log_head = log.head().await?;
    let mut reports = Vec::new();
    let witnessed = authledger::app::witness::witnessed_under(log).await?;
    // (source, signature problem, pinned, position, chain)
    type Head = (String, Option<String>, Option<bool>, i64, String);
    let mut heads: Vec<Head> = Vec::new();
    if let Some(path) = witness {
        let signed = SignedHead::read(path).map_err(|e| ReplayError::File {
            path: path.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        let mut signature = signed.verify(pinned_key).err().map(|e| e.to_string());
        if signature.is_none() && !witnessed.is_empty() && !witnessed.contains(&signed.public_key) {
            signature = Some("signed by a key this log never recorded as its witness's".to_owned());
        }
        let source = format!("witness {} (key {})", path.display(), signed.public_key);
        heads.push((source, signature, Some(pinned_key.is_some()), signed.position, signed.chain));
    }
    if let Some((position, chain)) = head {
        heads.push(("--head".to_owned(), None, None, position, chain));
    }
    for (source, signature, pinned, position, chain) in heads {
        let found = log.chain_at(position).await?;
        reports.push(HeadReport { source, signature, pinned, check: check_head(position, &chain, log_head, found) });
    }
    if witness.is_none()
        && let Some(public_key) = witnessed.last()
    {
        let check = HeadCheck::WitnessMissing { public_key: public_key.clone() };
        reports.push(HeadReport { source: "the log's LogWitnessed".to_owned(), signature: None, pinned: None, check });
    }
    Ok(reports)
}

/// Parses an auditor's pinned head, `POSITION:CHAIN`.
pub fn parse_head(text: &str) -> Result<(i64, String), String> {
    let (position, chain) = text.split_once(':').ok_or_else(|| format!("{text:?} is not POSITION:CHAIN"))?;
    let position =
        position.parse::<i64>().ok().filter(|p| *p >= 1).ok_or_else(|| format!("{position:?} is not a position"))?;
    if chain.len() != 64 || !chain.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{chain:?} is not a chain value (64 hex digits)"));
    }
    Ok((position, chain.to_ascii_lowercase()))
}
