//! Storage, on embedded SQLite (the default) or PostgreSQL, as three
//! separate concerns opened together ([`Store::open`]):
//!
//! - [`EventLog`]: an append-only table of events with a global position that
//!   is consistent with commit order. Appends go through one group-committing
//!   writer per process; each batch takes the log's write lock, checks every
//!   request's expected aggregate sequence (the optimistic lock), numbers the
//!   events densely from the current head and commits once. Reads never lock.
//! - [`Credentials`]: the credentials store (`secrets` table) — password
//!   hashes, TOTP seeds, CA keys — referenced from events by id, so the
//!   immutable log never holds a secret and a replaced one can be forgotten;
//!   every row is sealed under a key kept outside the database ([`keyring`]).
//! - [`Checkpoints`]: stored states of the projections (what they mean is the
//!   projections' business: `projections::checkpoint`).
//!
//! Each engine implements the three backend traits; their SQL is written once
//! (`sql`).

pub mod chain;
pub mod flows;
pub mod forget;
pub mod forget_journal;
pub mod keyring;
pub mod new_log;
mod postgres;
mod repository;
mod side;
mod sql;
mod sqlite;
pub mod throttle;
pub mod witness;
mod writer;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::persist::SerializedEvent;
use uuid::Uuid;

use crate::clock::SharedClock;

pub(crate) use repository::COMMITTED;
pub use repository::LogRepository;

/// An event as it lies in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub position: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The event's JSON, exactly as written.
    pub payload: String,
    /// The command's metadata JSON, exactly as written.
    pub metadata: String,
    /// Epoch milliseconds at which the writer committed the event.
    pub recorded_at: i64,
    /// The integrity chain's value at this row, hex (see [`chain`]).
    pub chain: Option<String>,
}

/// Who caused an event and from where; copied onto every event of a command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventMetadata {
    pub actor: Option<String>,
    /// The call id of the request (stored under its first name, `request_id`).
    pub call_id: Option<String>,
    pub client_addr: Option<String>,
    pub user_agent: Option<String>,
    pub reason: Option<String>,
}

impl EventMetadata {
    pub fn actor(actor: impl Into<String>) -> Self {
        Self { actor: Some(actor.into()), ..Self::default() }
    }

    /// The same request's metadata, for events caused by `actor`.
    pub fn acting_as(self, actor: impl Into<String>) -> Self {
        Self { actor: Some(actor.into()), ..self }
    }

    pub fn into_map(self) -> HashMap<String, String> {
        let mut map = HashMap::new();
        let pairs = [
            ("actor", self.actor),
            ("request_id", self.call_id),
            ("client_addr", self.client_addr),
            ("user_agent", self.user_agent),
            ("reason", self.reason),
        ];
        for (key, value) in pairs {
            if let Some(value) = value {
                map.insert(key.to_owned(), value);
            }
        }
        map
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported store URL {0:?}: expected sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    #[error("cannot open the store at {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("cannot create the data directory {path}: {source}")]
    DataDir { path: String, source: std::io::Error },
    #[error("the store's schema version {found} is newer than this authledger understands ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error(
        "the store's schema version {found} is older than {supported}: start `authledger serve` on it once to upgrade"
    )]
    SchemaTooOld { found: i64, supported: i64 },
    #[error("there is no authledger log at {0}")]
    NoLog(String),
    #[error("store error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("the log writer has stopped")]
    WriterGone,
    #[error("appending failed: {0}")]
    Failed(String),
    /// Another forget was written (at this position) while one read the log:
    /// nothing was rewritten; the forget must read the log again.
    #[error("another forget (position {0}) was written while this one read the log: nothing was rewritten")]
    ForgetRaced(i64),
    #[error("the target log is not empty ({events} events, {secrets} secrets): import only into an empty store")]
    NotEmpty { events: i64, secrets: i64 },
    #[error("the import stopped: {0}")]
    Import(String),
    /// The secrets key is missing, unreadable, or not the one the store's secrets need.
    #[error("{0}")]
    SecretsKey(String),
    #[error(transparent)]
    Keyring(#[from] keyring::KeyringError),
}

/// Why an append did not happen.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another command wrote to the same aggregate first.
    #[error("optimistic lock conflict")]
    Conflict,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a scrub did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scrubbed {
    /// The tables vacuumed.
    pub tables: Vec<String>,
    /// Transactions older than the forget still open when the wait for them
    /// ended: what they can see was not dropped (their server's next vacuum does).
    pub still_open: i64,
}

/// The event log's side of a storage engine. Both engines own their schema.
#[async_trait]
pub(crate) trait LogBackend: Send + Sync + 'static {
    /// Appends every request of the batch that does not conflict, in one
    /// transaction under the log's write lock. Per request: the position of its
    /// last event, or `None` when its first sequence was already taken.
    async fn append_batch(
        &self,
        batch: &[&[SerializedEvent]],
        recorded_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError>;
    /// The events of one aggregate after `after_sequence`, in sequence order.
    async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, StoreError>;
    /// All events of one aggregate type, in position order.
    async fn load_type(&self, aggregate_type: &str) -> Result<Vec<SerializedEvent>, StoreError>;
    /// Up to `limit` events after `position`, in position order.
    async fn read_after(&self, position: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError>;
    /// The position of the newest event (0 for an empty log).
    async fn head(&self) -> Result<i64, StoreError>;
    /// Every forget's commitments to the rows it rewrote, by position.
    async fn redactions(&self) -> Result<Vec<chain::Redaction>, StoreError>;
    /// Carries out a forget in one transaction under the log's write lock:
    /// `planned` holds the rewrites of the rows up to `scanned` (whose chain
    /// value is `scanned_chain`), planned without the lock; the rows after it
    /// are read, checked on by `verifier` (which checked the scanned ones)
    /// and planned here. Rewrites the rows, records their
    /// redactions, deletes every checkpoint (each holds projections folded
    /// from the rows as they were) and appends the forget's event, recorded
    /// no earlier than `now` nor than the newest row; then scrubs what the
    /// engine can at once.
    async fn forget(
        &self,
        planned: Vec<forget::Planned>,
        scanned: (i64, [u8; 32]),
        verifier: chain::ChainVerifier,
        forgetting: &dyn forget::Forgetting,
        now: i64,
    ) -> Result<forget::Forgot, StoreError>;
    /// Makes the engine drop what a forget left of the old rows in the
    /// store's files, once every server's older snapshots are gone (see
    /// docs/design/forgetting.md §2); SQLite did at the forget (its WAL is
    /// truncated and freed pages are overwritten).
    async fn scrub(&self, _forget_position: i64) -> Result<Scrubbed, StoreError> {
        Ok(Scrubbed::default())
    }
    /// Writes exported rows verbatim (positions, times and chain values kept)
    /// into an empty store — events and secrets — in one transaction; refused
    /// when the store is not empty.
    async fn import(
        &self,
        rows: &mut (dyn Iterator<Item = Result<ImportRow, String>> + Send),
    ) -> Result<u64, StoreError>;
    /// Deletes rows of an expiring log, in one transaction; returns how many.
    async fn purge(&self, purge: &Purge) -> Result<u64, StoreError>;
    /// Closes the engine's connections (every concern's).
    async fn close(&self);
    /// Tells `heard` of commits made to this log by any process, as they
    /// happen (`Some(position)`), and `None` whenever some may have been
    /// missed (the signal's connection was lost and is back). `None` where
    /// the engine has no such signal (SQLite: the runner's poll is it).
    fn listen(&self, _heard: CommitSignal) -> Option<tokio::task::JoinHandle<()>> {
        None
    }
    /// Takes the log's duty lease if no other process holds it (see
    /// [`DutyLease`]); `Ok(None)` when another does.
    async fn try_lead(&self) -> Result<Option<Box<dyn DutyLease>>, StoreError>;
}

/// The lease of a process that is alone on its log (SQLite).
pub(crate) struct SoleProcess;

#[async_trait]
impl DutyLease for SoleProcess {
    /// Always: nothing else shares the log.
    async fn alive(&mut self) -> bool {
        true
    }
}

/// Hears of commits (see [`LogBackend::listen`]).
pub type CommitSignal = Arc<dyn Fn(Option<i64>) + Send + Sync>;

/// The right to run the duties that must run in one process only (writing
/// checkpoints, signing heads, sweeps), held by one process of those sharing
/// a log: on PostgreSQL a session advisory lock on a connection of its own,
/// released when the process or its connection goes; on SQLite (one
/// process per file) always this process's.
#[async_trait]
pub trait DutyLease: Send {
    /// Whether the lease is still held (false once its connection is gone).
    async fn alive(&mut self) -> bool;
}

/// The credentials store's side of a storage engine.
#[async_trait]
pub(crate) trait CredentialBackend: Send + Sync + 'static {
    /// Stores a secret under a new id.
    async fn put_secret(&self, id: Uuid, kind: &str, secret: &str, created_at: i64) -> Result<(), StoreError>;
    /// The kind and stored text of the secret under `id`, if any.
    async fn get_secret(&self, id: Uuid) -> Result<Option<(String, String)>, StoreError>;
    /// Replaces stored texts in one transaction, each only where the row still
    /// holds the text it was read with; returns how many rows changed.
    async fn reseal_secrets(&self, rows: &[Resealed]) -> Result<u64, StoreError>;
    /// The distinct key ids the rows are sealed under ("" for a plaintext row).
    async fn secret_key_ids(&self) -> Result<Vec<String>, StoreError>;
    /// Forgets the secret stored under `id` (overwritten in SQLite's file: `secure_delete`).
    async fn delete_secret(&self, id: Uuid) -> Result<(), StoreError>;
    /// The ids of the secrets of `kind` stored before `created_before`.
    async fn secret_ids(&self, kind: &str, created_before: i64) -> Result<Vec<Uuid>, StoreError>;
    /// Every stored secret (for export).
    async fn secrets(&self) -> Result<Vec<SecretRow>, StoreError>;
}

/// The checkpoint store's side of a storage engine.
#[async_trait]
pub(crate) trait CheckpointBackend: Send + Sync + 'static {
    /// Stores a checkpoint of the projections (replacing one at the same position and rule).
    async fn put_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError>;
    /// The newest checkpoint made with this display-name rule.
    async fn latest_checkpoint(&self, rule: &str) -> Result<Option<StoredCheckpoint>, StoreError>;
    /// Deletes all but the newest `keep` checkpoints made with this rule; how many went.
    async fn prune_checkpoints(&self, rule: &str, keep: i64) -> Result<u64, StoreError>;
}

/// A row of the `checkpoints` table: the projections' state at `position`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub position: i64,
    /// The display-name rule the state was folded with.
    pub rule: String,
    /// The log's chain value at `position`: a checkpoint only applies to the log it was made from.
    pub chain: Option<String>,
    pub digest: String,
    pub created_at: i64,
    pub data: Vec<u8>,
}

/// A row of the `secrets` table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SecretRow {
    pub id: String,
    pub kind: String,
    pub secret: String,
    pub created_at: i64,
}

/// A secret's row sealed anew: the text it held and the text replacing it.
#[derive(Debug, Clone)]
pub struct Resealed {
    pub id: String,
    pub stored: String,
    pub sealed: String,
}

/// One row of an exported log.
#[derive(Debug, Clone, PartialEq)]
pub enum ImportRow {
    Event(StoredEvent),
    Secret(SecretRow),
    /// A forget's commitment to a row it rewrote (see [`chain::Redaction`]).
    Redaction(chain::Redaction),
}

/// Rows an expiring log (test mode's) deletes. The main log never deletes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Purge {
    /// Only rows below this position are touched, so the newest row (the head,
    /// from which positions continue) always stays.
    pub below: i64,
    /// Every row below this position goes (what a clear left behind).
    pub everything_below: Option<i64>,
    /// These aggregates' events go, through a sequence: (type, id, sequence).
    pub aggregates: Vec<(String, String, i64)>,
}

/// Which engine a store URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Sqlite { path: String },
    Postgres { url: String },
}

impl StoreKind {
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() {
                return Err(StoreError::UnsupportedUrl(url.to_owned()));
            }
            Ok(Self::Sqlite { path: path.to_owned() })
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres { url: url.to_owned() })
        } else {
            Err(StoreError::UnsupportedUrl(url.to_owned()))
        }
    }

    /// The URL of a store kept beside the log at `url`: on SQLite its own
    /// file next to the log's (`<stem>.<name>.db`, so the two never wait on
    /// each other's write lock); on PostgreSQL the same database (the caller
    /// gives it its own tables).
    pub fn beside(url: &str, name: &str) -> String {
        match Self::file_beside(url, &format!("{name}.db")) {
            Some(path) => format!("sqlite://{}", path.display()),
            None => url.to_owned(),
        }
    }

    /// The file `<stem>.<suffix>` next to an SQLite log's file (`None` for
    /// PostgreSQL, or a URL that names no store): where the side stores, the
    /// secrets key and the witness file live by default.
    pub fn file_beside(url: &str, suffix: &str) -> Option<PathBuf> {
        let Ok(Self::Sqlite { path }) = Self::parse(url) else {
            return None;
        };
        let path = std::path::Path::new(&path);
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "events".into());
        Some(path.with_file_name(format!("{stem}.{suffix}")))
    }
}

/// Tuning of the store that is not part of its identity.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// SQLite `synchronous=FULL` (durable acknowledged writes) when true, `NORMAL` otherwise.
    pub sqlite_full_sync: bool,
    /// Table-name prefix; a separate log lives beside the main one under another prefix.
    pub table_prefix: String,
    /// Whether rows may be deleted ([`EventLog::purge`]): only test mode's log, whose records expire.
    pub expiring: bool,
    /// Open an existing log without creating, upgrading or writing anything (tools that only read).
    pub read_only: bool,
    /// Which key seals the secrets table.
    pub secrets_key: SecretsKey,
    /// Accept rows stored in the clear by an older version, for the
    /// operator's `authledger secrets seal` to seal them; otherwise such rows
    /// refuse the store.
    pub seal_plaintext: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            sqlite_full_sync: true,
            table_prefix: String::new(),
            expiring: false,
            read_only: false,
            secrets_key: SecretsKey::None,
            seal_plaintext: false,
        }
    }
}

/// Where the key that seals the secrets table comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretsKey {
    /// No key: the secrets are neither opened nor written (tools that move
    /// ciphertext as it is, logs without secrets).
    None,
    /// The server's default: a key file beside an SQLite log
    /// (`<stem>.secrets.key`, created at first start); PostgreSQL has no
    /// default and refuses to start.
    Beside,
    /// This key file, which must exist (`secrets_key_file`).
    File(PathBuf),
}

/// The setting that names the key file, as operators write it.
pub const SECRETS_KEY_SETTING: &str = "secrets_key_file (or AUTHLEDGER_SECRETS_KEY_FILE)";

impl SecretsKey {
    /// The key file for the store at `url` (`None`: no key is used).
    pub fn path(&self, url: &str) -> Result<Option<PathBuf>, StoreError> {
        match (self, StoreKind::parse(url)?) {
            (Self::None, _) => Ok(None),
            (Self::File(path), _) => Ok(Some(path.clone())),
            (Self::Beside, StoreKind::Sqlite { .. }) => Ok(StoreKind::file_beside(url, "secrets.key")),
            (Self::Beside, StoreKind::Postgres { .. }) => Err(StoreError::SecretsKey(format!(
                "{SECRETS_KEY_SETTING} is required with PostgreSQL: the key that seals stored secrets is kept outside \
                 the database (create one with `authledger secrets new-key --file PATH`)"
            ))),
        }
    }

    /// Opens the keyring for the store at `url`: a given file must exist; the
    /// default one beside an SQLite log is created at first start — but never
    /// for a store that already holds sealed secrets (`sealed_under`: the key
    /// ids they need), whose key was lost or moved: a new key would open none.
    fn keyring(&self, url: &str, sealed_under: &[String]) -> Result<Option<keyring::Keyring>, StoreError> {
        let Some(path) = self.path(url)? else {
            return Ok(None);
        };
        let sealed: Vec<&str> = sealed_under.iter().map(String::as_str).filter(|id| !id.is_empty()).collect();
        if matches!(self, Self::Beside) && !path.exists() && !sealed.is_empty() {
            return Err(StoreError::SecretsKey(format!(
                "{SECRETS_KEY_SETTING}: the key file {} is missing, but this store's secrets are sealed under key {}: \
                 restore that key file (it is not in the database), or point {SECRETS_KEY_SETTING} at it",
                path.display(),
                sealed.join(", ")
            )));
        }
        let opened = match self {
            Self::Beside if !path.exists() => {
                let created = keyring::Keyring::create(&path, None);
                if created.is_ok() {
                    tracing::info!(path = %path.display(), "created the secrets key file; back it up apart from the database");
                }
                created
            }
            _ => keyring::Keyring::open(&path),
        };
        opened.map(Some).map_err(|e| StoreError::SecretsKey(format!("{SECRETS_KEY_SETTING}: {e}")))
    }
}

/// One store's three concerns, over one engine's connections.
#[derive(Clone)]
pub struct Store {
    pub log: EventLog,
    pub credentials: Credentials,
    pub checkpoints: Checkpoints,
}

impl Store {
    /// Opens (creating if needed) the store at `url` and its schema.
    /// With a secrets key ([`StoreOptions::secrets_key`]), every stored
    /// secret must be sealed under a key the key file holds (otherwise the
    /// store is refused with a line naming the setting), and rows not sealed
    /// under its current key (plaintext from before sealing, or an older key
    /// after a rotation) are sealed anew.
    pub async fn open(url: &str, options: StoreOptions, clock: SharedClock) -> Result<Self, StoreError> {
        // Without a key, PostgreSQL is refused before connecting.
        options.secrets_key.path(url)?;
        let mut store = match StoreKind::parse(url)? {
            StoreKind::Sqlite { path } => {
                let engine = Arc::new(sqlite::SqliteBackend::open(&path, &options).await?);
                Self::over(engine, "sqlite", &options, clock)
            }
            StoreKind::Postgres { url } => {
                let engine = Arc::new(postgres::PostgresBackend::open(&url, &options).await?);
                Self::over(engine, "postgres", &options, clock)
            }
        };
        // The default key file is made once the log's directory exists (and
        // only for a store that holds no sealed secret yet).
        let keyed = match store.credentials.sealed_under().await {
            Ok(sealed) => match options.secrets_key.keyring(url, &sealed) {
                Ok(keyring) => {
                    store.credentials.keyring = keyring.map(Arc::new);
                    store.credentials.check_key(options.seal_plaintext).await
                }
                Err(error) => Err(error),
            },
            Err(error) => Err(error),
        };
        if let Err(error) = keyed {
            store.log.close().await;
            return Err(error);
        }
        if !options.read_only {
            let resealed = store.credentials.reseal(false).await?;
            if resealed > 0 {
                tracing::info!(secrets = resealed, key = %store.credentials.key_id().unwrap_or_default(), "sealed stored secrets under the current key");
            }
        }
        Ok(store)
    }

    fn over<E>(engine: Arc<E>, kind: &'static str, options: &StoreOptions, clock: SharedClock) -> Self
    where
        E: LogBackend + CredentialBackend + CheckpointBackend,
    {
        let backend: Arc<dyn LogBackend> = engine.clone();
        let writer = writer::spawn(backend.clone(), clock, if options.expiring { "testmode" } else { "main" });
        Self {
            log: EventLog { backend, writer, kind, expiring: options.expiring, forgets: Arc::default() },
            credentials: Credentials { backend: engine.clone(), keyring: None },
            checkpoints: Checkpoints { backend: engine },
        }
    }
}

/// The credentials store: secrets referenced from events by id, sealed
/// under the keyring's current key.
#[derive(Clone)]
pub struct Credentials {
    backend: Arc<dyn CredentialBackend>,
    keyring: Option<Arc<keyring::Keyring>>,
}

impl Credentials {
    fn keyring(&self) -> Result<&keyring::Keyring, StoreError> {
        self.keyring
            .as_deref()
            .ok_or_else(|| StoreError::SecretsKey("this store was opened without a secrets key".into()))
    }

    /// The id of the key that seals new secrets (`None`: opened without a key).
    pub fn key_id(&self) -> Option<String> {
        self.keyring.as_ref().map(|k| k.current_id())
    }

    /// Stores `secret` of `kind` under `id`, sealed.
    pub async fn put(&self, id: Uuid, kind: &str, secret: &str, created_at: i64) -> Result<(), StoreError> {
        let sealed = self.keyring()?.seal(&id.to_string(), kind, secret)?;
        self.backend.put_secret(id, kind, &sealed, created_at).await
    }

    /// `secret` of `kind` sealed as a row for [`EventLog::import`], not yet stored.
    pub fn sealed_row(&self, id: Uuid, kind: &str, secret: &str, created_at: i64) -> Result<SecretRow, StoreError> {
        let sealed = self.keyring()?.seal(&id.to_string(), kind, secret)?;
        Ok(SecretRow { id: id.to_string(), kind: kind.to_owned(), secret: sealed, created_at })
    }

    /// The secret stored under `id`, if any, opened.
    pub async fn get(&self, id: Uuid) -> Result<Option<String>, StoreError> {
        let Some((kind, stored)) = self.backend.get_secret(id).await? else {
            return Ok(None);
        };
        Ok(Some(self.keyring()?.open_secret(&id.to_string(), &kind, &stored)?))
    }

    /// The key ids the stored secrets are sealed under, sorted (`""` stands
    /// for plaintext rows from before sealing).
    pub async fn sealed_under(&self) -> Result<Vec<String>, StoreError> {
        let mut ids = self.backend.secret_key_ids().await?;
        ids.sort();
        Ok(ids)
    }

    /// Refuses a keyring that cannot open every stored secret, and rows in
    /// the clear unless `plaintext_ok` (the operator's `secrets seal`).
    async fn check_key(&self, plaintext_ok: bool) -> Result<(), StoreError> {
        let Some(keyring) = &self.keyring else {
            return Ok(());
        };
        let sealed_under = self.sealed_under().await?;
        if !plaintext_ok && sealed_under.iter().any(String::is_empty) {
            return Err(StoreError::SecretsKey(
                "some stored secrets are in the clear (written by a version before sealing, or planted): \
                 run `authledger secrets seal` once with this configuration, then start again"
                    .into(),
            ));
        }
        let missing: Vec<String> = sealed_under.into_iter().filter(|id| !id.is_empty() && !keyring.holds(id)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(StoreError::SecretsKey(format!(
            "{SECRETS_KEY_SETTING}: {} holds key {} but this store's secrets are sealed under {}: give the key file they were written with",
            keyring.path().display(),
            keyring.key_ids().join(", "),
            missing.join(", ")
        )))
    }

    /// Seals anew, in one transaction, every row not sealed under the
    /// current key (rows under an older key, and with `plaintext` rows in the
    /// clear); a row changed meanwhile is left as it is. Returns how many rows
    /// were sealed.
    pub async fn reseal(&self, plaintext: bool) -> Result<u64, StoreError> {
        let Some(keyring) = &self.keyring else {
            return Ok(0);
        };
        let current = keyring.current_id();
        let mut rows = Vec::new();
        for row in self.backend.secrets().await? {
            match keyring::sealed_key_id(&row.secret) {
                Some(id) if id == current => continue,
                None if !plaintext => continue,
                _ => {}
            }
            let plain = keyring.open_or_plain(&row.id, &row.kind, &row.secret)?;
            let sealed = keyring.seal(&row.id, &row.kind, &plain)?;
            rows.push(Resealed { id: row.id, stored: row.secret, sealed });
        }
        if rows.is_empty() {
            return Ok(0);
        }
        self.backend.reseal_secrets(&rows).await
    }

    /// Rotates the key: creates the key file `new_key_file` with a new key
    /// followed by the current file's keys (so servers not yet restarted on it
    /// can still open what they meet), then seals every secret under the new
    /// key in one transaction. Returns the new keyring; before the commit,
    /// everything stays under the old key.
    pub async fn rotate(&self, new_key_file: &std::path::Path) -> Result<(Arc<keyring::Keyring>, u64), StoreError> {
        let new = Arc::new(keyring::Keyring::create(new_key_file, Some(self.keyring()?))?);
        let rotated = Self { backend: self.backend.clone(), keyring: Some(new.clone()) };
        let resealed = rotated.reseal(false).await?;
        Ok((new, resealed))
    }

    /// Forgets the secret stored under `id` (nothing when there is none).
    pub async fn delete(&self, id: Uuid) -> Result<(), StoreError> {
        self.backend.delete_secret(id).await
    }

    /// The ids of the secrets of `kind` stored before `created_before` (epoch ms).
    pub async fn ids_older_than(&self, kind: &str, created_before: i64) -> Result<Vec<Uuid>, StoreError> {
        self.backend.secret_ids(kind, created_before).await
    }

    /// Every stored secret (export).
    pub async fn all(&self) -> Result<Vec<SecretRow>, StoreError> {
        self.backend.secrets().await
    }
}

/// The checkpoint store: projection states by position and display-name rule.
#[derive(Clone)]
pub struct Checkpoints {
    backend: Arc<dyn CheckpointBackend>,
}

impl Checkpoints {
    /// Stores a checkpoint (replacing one at the same position and rule).
    pub async fn put(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        self.backend.put_checkpoint(checkpoint).await
    }

    /// The newest checkpoint made with display-name rule `rule`.
    pub async fn latest(&self, rule: &str) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.backend.latest_checkpoint(rule).await
    }

    /// Keeps the newest `keep` checkpoints made with `rule` and deletes the rest; how many went.
    pub async fn prune(&self, rule: &str, keep: i64) -> Result<u64, StoreError> {
        self.backend.prune_checkpoints(rule, keep).await
    }
}

/// The log, shared by the command side, the projection runner and tools.
#[derive(Clone)]
pub struct EventLog {
    backend: Arc<dyn LogBackend>,
    writer: writer::WriterHandle,
    kind: &'static str,
    expiring: bool,
    /// How many forgets this process has seen (made, or read in the log):
    /// what this process keeps of streams (aggregate snapshots) is stale after one.
    forgets: Arc<std::sync::atomic::AtomicU64>,
}

impl EventLog {
    /// "sqlite" or "postgres".
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Appends the events of one command atomically; returns the position of the last one.
    pub async fn append(&self, events: Vec<SerializedEvent>) -> Result<i64, AppendError> {
        self.writer.append(events).await
    }

    pub async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        self.backend.load(aggregate_type, aggregate_id, after_sequence).await
    }

    pub async fn read_after(&self, position: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        self.backend.read_after(position, limit).await
    }

    pub async fn head(&self) -> Result<i64, StoreError> {
        self.backend.head().await
    }

    /// Reads the log after `after` in position order, a batch at a time,
    /// until the log ends or `each` returns false (tools that read it all).
    pub async fn scan<E: From<StoreError>>(
        &self,
        after: i64,
        mut each: impl FnMut(&[StoredEvent]) -> Result<bool, E>,
    ) -> Result<(), E> {
        const BATCH: i64 = 10_000;
        let mut after = after;
        loop {
            let rows = self.read_after(after, BATCH).await?;
            let Some(last) = rows.last() else {
                return Ok(());
            };
            after = last.position;
            if !each(&rows)? {
                return Ok(());
            }
        }
    }

    /// Checks the integrity chain over the whole log, in position order, with
    /// the rows forgets rewrote checked against their commitments (a forget
    /// must be signed by `pinned_key` when given, else by a key the log
    /// recorded as its witness's); `progress` hears how many rows have been
    /// checked so far.
    pub async fn verify_chain(
        &self,
        pinned_key: Option<String>,
        mut progress: impl FnMut(i64),
    ) -> Result<Result<chain::ChainVerifier, chain::ChainBreak>, StoreError> {
        let mut verifier = chain::ChainVerifier::new(self.backend.redactions().await?, pinned_key);
        let mut broken = None;
        self.scan(0, |rows| {
            broken = rows.iter().find_map(|row| verifier.check(row).err());
            progress(verifier.checked());
            Ok::<bool, StoreError>(broken.is_none())
        })
        .await?;
        Ok(match broken.map_or_else(|| verifier.finish(), Err) {
            Err(broken) => Err(broken),
            Ok(()) => Ok(verifier),
        })
    }

    /// Forgets: rewrites every row `forgetting` asks for, keeping each row's
    /// chain value, and appends its event committing to them (see
    /// [`forget`]). The log is read once without the write lock; only the
    /// rows appended meanwhile are read under it.
    pub async fn forget(&self, forgetting: &dyn forget::Forgetting, now: i64) -> Result<forget::Forgot, StoreError> {
        let mut planned = Vec::new();
        let mut scanned = (0, chain::GENESIS);
        // A forget committed while this one reads would make its plan stale.
        let opened = self.head().await?;
        // The forget signs what the rows hold: it must hold what was appended (and forgotten) before.
        let mut verifier = chain::ChainVerifier::new(self.backend.redactions().await?, None);
        self.scan(0, |rows| {
            forget::refuse_forgets_after(rows, opened)?;
            forget::verified(&mut verifier, rows)?;
            scanned.1 = forget::plan(rows, scanned.1, forgetting, &mut planned)?;
            scanned.0 = rows.last().map_or(scanned.0, |r| r.position);
            Ok::<bool, StoreError>(true)
        })
        .await?;
        let forgot = self.backend.forget(planned, scanned, verifier, forgetting, now).await?;
        self.note_forget();
        Ok(forgot)
    }

    /// After the forget at `forget_position` and the side stores' deletions:
    /// drops the old row versions from the store's files where the engine
    /// keeps them (PostgreSQL's vacuum).
    pub async fn scrub(&self, forget_position: i64) -> Result<Scrubbed, StoreError> {
        self.backend.scrub(forget_position).await
    }

    /// Every forget's commitments to the rows it rewrote (for exports).
    pub async fn redactions(&self) -> Result<Vec<chain::Redaction>, StoreError> {
        self.backend.redactions().await
    }

    /// Marks that a forget happened: streams may have been renamed under what this process keeps.
    pub fn note_forget(&self) {
        self.forgets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// How many forgets this process has seen.
    pub fn forgets_seen(&self) -> u64 {
        self.forgets.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The chain value of the event at `position`, if there is such an event.
    pub async fn chain_at(&self, position: i64) -> Result<Option<String>, StoreError> {
        let rows = self.read_after(position - 1, 1).await?;
        Ok(rows.into_iter().find(|r| r.position == position).and_then(|r| r.chain))
    }

    /// Writes exported rows (events and secrets) verbatim into this store, which must be empty.
    pub async fn import(
        &self,
        rows: &mut (dyn Iterator<Item = Result<ImportRow, String>> + Send),
    ) -> Result<u64, StoreError> {
        self.backend.import(rows).await
    }

    /// Deletes expired rows of an expiring log; refused on any other log.
    pub async fn purge(&self, purge: &Purge) -> Result<u64, StoreError> {
        if !self.expiring {
            return Err(StoreError::Failed("this log is append-only: nothing in it is ever deleted".into()));
        }
        self.backend.purge(purge).await
    }

    /// Starts telling `heard` of commits by any process (see [`LogBackend::listen`]).
    pub fn listen(&self, heard: CommitSignal) -> Option<tokio::task::JoinHandle<()>> {
        self.backend.listen(heard)
    }

    /// Takes the duty lease if no other process holds it (see [`DutyLease`]).
    pub async fn try_lead(&self) -> Result<Option<Box<dyn DutyLease>>, StoreError> {
        self.backend.try_lead().await
    }

    pub(crate) fn backend(&self) -> &Arc<dyn LogBackend> {
        &self.backend
    }

    /// Stops the writer and closes the engine's connections (the credentials
    /// and checkpoint stores opened with this log close with it).
    pub async fn close(&self) {
        self.writer.stop().await;
        self.backend.close().await;
    }
}

/// The SQL both engines share, with the table prefix applied.
#[derive(Debug, Clone)]
pub(crate) struct Tables {
    pub events: String,
    pub checkpoints: String,
    pub secrets: String,
    pub schema: String,
    /// What each forget committed to about the rows it rewrote (see `chain::Redaction`).
    pub redactions: String,
    /// The side stores' tables on PostgreSQL (SQLite keeps each in its own file).
    pub flows: String,
    pub throttle: String,
}

impl Tables {
    pub fn new(prefix: &str) -> Self {
        Self {
            events: format!("{prefix}events"),
            checkpoints: format!("{prefix}checkpoints"),
            secrets: format!("{prefix}secrets"),
            schema: format!("{prefix}schema_version"),
            redactions: format!("{prefix}redactions"),
            flows: format!("{prefix}flows"),
            throttle: format!("{prefix}throttle"),
        }
    }
}

/// Checks, without changing anything, that a log opened read-only has this build's schema.
pub(crate) fn check_schema(found: Option<i64>, location: &str) -> Result<(), StoreError> {
    match found {
        None => Err(StoreError::NoLog(location.to_owned())),
        Some(found) if found > SCHEMA_VERSION => Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION }),
        Some(found) if found < SCHEMA_VERSION => Err(StoreError::SchemaTooOld { found, supported: SCHEMA_VERSION }),
        Some(_) => Ok(()),
    }
}

/// The schema version this build writes and understands.
/// 1: the events and secrets tables. 2: the `chain` column (backfilled on upgrade).
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// A row of the redactions table as both engines read it; an error names a
/// row whose values are not 64 hex digits.
pub(crate) fn redaction(
    position: i64,
    forget_position: i64,
    previous: &str,
    content: &str,
) -> Result<chain::Redaction, StoreError> {
    match (chain::decode(previous), chain::decode(content)) {
        (Some(previous), Some(content)) => Ok(chain::Redaction { position, forget_position, previous, content }),
        _ => Err(StoreError::Failed(format!(
            "the redaction of position {position} by the forget at {forget_position} is not hex chain values"
        ))),
    }
}

/// Columns of a stored event, in the order every SELECT lists them.
pub(crate) const EVENT_COLUMNS: &str = "position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at, chain";

/// Selects the newest row's position and chain value (nothing on an empty log).
pub(crate) fn head_query(events: &str) -> String {
    format!("SELECT position, chain FROM {events} ORDER BY position DESC LIMIT 1")
}

/// A row about to be inserted, with its stored texts and its chain value.
pub(crate) struct NewRow<'a> {
    pub position: i64,
    pub event: &'a SerializedEvent,
    pub payload: String,
    pub metadata: String,
    pub chain: String,
}

/// Renders a planned batch's rows and chains them on from `previous`.
pub(crate) fn seal<'a>(rows: Vec<(i64, &'a SerializedEvent)>, previous: [u8; 32], recorded_at: i64) -> Vec<NewRow<'a>> {
    let mut previous = previous;
    rows.into_iter()
        .map(|(position, event)| {
            let payload = event.payload.to_string();
            let metadata = event.metadata.to_string();
            let value = chain::link(
                &previous,
                chain::RowRef {
                    position,
                    aggregate_type: &event.aggregate_type,
                    aggregate_id: &event.aggregate_id,
                    sequence: event.sequence as i64,
                    event_type: &event.event_type,
                    event_version: &event.event_version,
                    payload: &payload,
                    metadata: &metadata,
                    recorded_at,
                },
            );
            previous = value;
            NewRow { position, event, payload, metadata, chain: chain::encode(&value) }
        })
        .collect()
}

/// The chain values of a whole log's rows, in position order (the upgrade to schema 2).
pub(crate) fn backfill_chain(rows: &[StoredEvent]) -> Vec<(i64, String)> {
    let mut previous = chain::GENESIS;
    rows.iter()
        .map(|row| {
            previous = chain::link(&previous, chain::RowRef::from(row));
            (row.position, chain::encode(&previous))
        })
        .collect()
}

/// The distinct aggregates a batch appends to.
pub(crate) fn batch_aggregates<'a>(batch: &[&'a [SerializedEvent]]) -> Vec<(&'a str, &'a str)> {
    let mut keys: Vec<(&str, &str)> =
        batch.iter().filter_map(|r| r.first()).map(|e| (e.aggregate_type.as_str(), e.aggregate_id.as_str())).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Decides a batch under the log's write lock: a request appends when its
/// first sequence follows its aggregate's newest (counting the requests before
/// it in the batch); its events are numbered on from `next`. Returns, per
/// request, the position of its last event (or `None`: a conflict), and the
/// rows to insert.
pub(crate) fn plan_batch<'a>(
    batch: &[&'a [SerializedEvent]],
    mut newest: HashMap<(String, String), i64>,
    mut next: i64,
) -> (Vec<Option<i64>>, Vec<(i64, &'a SerializedEvent)>) {
    let mut results = Vec::with_capacity(batch.len());
    let mut rows = Vec::new();
    for request in batch {
        let Some(first) = request.first() else {
            results.push(None);
            continue;
        };
        let key = (first.aggregate_type.clone(), first.aggregate_id.clone());
        let current = newest.get(&key).copied().unwrap_or(0);
        if first.sequence as i64 != current + 1 {
            results.push(None);
            continue;
        }
        for event in request.iter() {
            rows.push((next, event));
            next += 1;
        }
        newest.insert(key, request.last().map_or(current, |e| e.sequence as i64));
        results.push(Some(next - 1));
    }
    (results, rows)
}

pub(crate) fn serialized(event: &StoredEvent) -> Result<SerializedEvent, serde_json::Error> {
    Ok(SerializedEvent::new(
        event.aggregate_id.clone(),
        event.sequence as usize,
        event.aggregate_type.clone(),
        event.event_type.clone(),
        event.event_version.clone(),
        serde_json::from_str(&event.payload)?,
        serde_json::from_str(&event.metadata)?,
    ))
}
