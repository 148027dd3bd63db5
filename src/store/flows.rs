//! The in-flight store of provider sign-ins and links: what a login or link
//! under way needs between its requests (the OAuth2 state's hash, the PKCE
//! verifier, the nonce; then the identities awaiting a choice). It is
//! short-lived, single use and bounded, and kept out of the immutable log —
//! what *happened* goes into the log; this is only a flow's scratch pad. On
//! SQLite it is its own file beside the log (`<stem>.flows.db`, so flows never
//! wait on the log's write lock), on PostgreSQL its own table in the same
//! database. Records are found by the SHA-256 of the random token the flow's
//! cookie carries, never by the token itself, and each record's data is
//! sealed (XChaCha20-Poly1305) under a key derived from that token: the
//! store alone — a copy of the database — reads no verifier, nonce or
//! identity of a flow under way.

use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use super::sql::Dialect;
use super::{StoreError, StoreKind, StoreOptions};

/// At most this many flows of people not signed in are kept; when full,
/// expired ones are swept and a new flow is refused if none were (a flood of
/// unauthenticated starts cannot grow the store without bound).
pub const MAX_FLOWS: i64 = 10_000;
/// At most this many of them started from one client address (so one client
/// cannot take the whole store from everyone else).
pub const MAX_FLOWS_PER_CLIENT: i64 = 100;
/// At most this many links under way per signed-in user (links are not
/// counted against [`MAX_FLOWS`]: a flood of sign-ins cannot stop them).
pub const MAX_FLOWS_PER_USER: i64 = 10;

/// Which step a flow is at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowStep {
    /// A login sent to the provider, waiting for it to come back.
    LoginStarted,
    /// A login back from the provider, its identities waiting for a choice.
    LoginChoice,
    /// A link sent to the provider.
    LinkStarted,
    /// A link back from the provider, waiting for a choice.
    LinkChoice,
    /// A flow that failed at the provider; the error waits to be shown.
    Failed,
}

impl FlowStep {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LoginStarted => "LOGINSTART",
            Self::LoginChoice => "LOGINIDENTS",
            Self::LinkStarted => "LINKSTART",
            Self::LinkChoice => "LINKIDENTS",
            Self::Failed => "ERROR",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::LoginStarted, Self::LoginChoice, Self::LinkStarted, Self::LinkChoice, Self::Failed]
            .into_iter()
            .find(|step| step.as_str() == text)
    }
}

/// One flow's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flow {
    pub step: FlowStep,
    /// The signed-in user a link belongs to (logout drops their flows).
    pub user: Option<String>,
    /// The client address that started a flow of someone not signed in.
    pub client: Option<String>,
    /// The provider the flow went to.
    pub provider: Option<String>,
    /// The step's data, JSON (the caller's to shape); stored sealed.
    pub data: String,
    pub created_at: i64,
    /// Gone after this instant (epoch ms).
    pub expires_at: i64,
}

/// Why a flow could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("too many sign-ins are under way; try again shortly")]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The in-flight store.
pub struct Flows {
    pool: Pool,
    put: String,
    take: String,
    peek: String,
    sweep: String,
    count: String,
    count_anonymous: String,
    count_client: String,
    count_user: String,
    drop_user: String,
    /// The most flows of people not signed in ([`MAX_FLOWS`] unless set otherwise).
    limit: i64,
    /// The most of them from one client ([`MAX_FLOWS_PER_CLIENT`] unless set otherwise).
    per_client: i64,
}

type Row = (String, Option<String>, Option<String>, Option<String>, String, i64, i64);

impl Flows {
    /// Opens (creating if needed) the flows of the log at `url`.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let table = format!("{}flows", options.table_prefix);
        let (pool, dialect) = match StoreKind::parse(&StoreKind::beside(url, "flows"))? {
            StoreKind::Sqlite { path } => {
                let file = std::path::PathBuf::from(path);
                let connect = SqliteConnectOptions::from_str("sqlite:")
                    .map_err(|source| StoreError::Connect { url: file.display().to_string(), source })?
                    .filename(&file)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // Losing an in-flight sign-in to a crash only restarts it.
                    .synchronous(SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("secure_delete", "on");
                let pool = super::sqlite::sqlite_pool()
                    .max_connections(1)
                    .connect_with(connect)
                    .await
                    .map_err(|source| StoreError::Connect { url: file.display().to_string(), source })?;
                (Pool::Sqlite(pool), Dialect::Sqlite)
            }
            StoreKind::Postgres { url } => {
                let pool = PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await
                    .map_err(|source| StoreError::Connect { url: super::postgres::redact(&url), source })?;
                (Pool::Postgres(pool), Dialect::Postgres)
            }
        };
        let p = |n| dialect.p(n);
        let columns = "step, user_name, client, provider, sealed, created_at, expires_at";
        let flows = Self {
            put: format!(
                "INSERT INTO {table} (token_hash, {columns}) VALUES ({}, {}, {}, {}, {}, {}, {}, {})",
                p(1),
                p(2),
                p(3),
                p(4),
                p(5),
                p(6),
                p(7),
                p(8)
            ),
            take: format!("DELETE FROM {table} WHERE token_hash = {} RETURNING {columns}", p(1)),
            peek: format!("SELECT {columns} FROM {table} WHERE token_hash = {}", p(1)),
            sweep: format!("DELETE FROM {table} WHERE expires_at < {}", p(1)),
            count: format!("SELECT COUNT(*) FROM {table}"),
            count_anonymous: format!("SELECT COUNT(*) FROM {table} WHERE user_name IS NULL"),
            count_client: format!(
                "SELECT COUNT(*) FROM {table} WHERE user_name IS NULL AND client = {} AND expires_at >= {}",
                p(1),
                p(2)
            ),
            count_user: format!("SELECT COUNT(*) FROM {table} WHERE user_name = {} AND expires_at >= {}", p(1), p(2)),
            drop_user: format!("DELETE FROM {table} WHERE user_name = {}", p(1)),
            limit: MAX_FLOWS,
            per_client: MAX_FLOWS_PER_CLIENT,
            pool,
        };
        // A table from before flows recorded their client is dropped: it
        // holds only sign-ins under way, which then start again.
        if flows.execute(&format!("SELECT client FROM {table} LIMIT 0"), Vec::new()).await.is_err() {
            flows.execute(&format!("DROP TABLE IF EXISTS {table}"), Vec::new()).await?;
        }
        let create = [
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (token_hash TEXT PRIMARY KEY, step TEXT NOT NULL, user_name TEXT,
                 client TEXT, provider TEXT, sealed TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires_at)"),
            format!("CREATE INDEX IF NOT EXISTS {table}_user ON {table} (user_name)"),
            format!("CREATE INDEX IF NOT EXISTS {table}_client ON {table} (client)"),
        ];
        for statement in create {
            flows.execute(&statement, Vec::new()).await?;
        }
        Ok(flows)
    }

    /// The same store, keeping at most `limit` flows of people not signed
    /// in, `per_client` of them from one client.
    pub fn with_limits(mut self, limit: i64, per_client: i64) -> Self {
        self.limit = limit;
        self.per_client = per_client;
        self
    }

    async fn execute(&self, statement: &str, args: Vec<Arg<'_>>) -> Result<u64, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => bind_sqlite(sqlx::query(statement), args).execute(pool).await?.rows_affected(),
            Pool::Postgres(pool) => bind_pg(sqlx::query(statement), args).execute(pool).await?.rows_affected(),
        })
    }

    async fn fetch(&self, statement: &str, key: &str) -> Result<Option<Row>, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_as(statement).bind(key).fetch_optional(pool).await?,
            Pool::Postgres(pool) => sqlx::query_as(statement).bind(key).fetch_optional(pool).await?,
        })
    }

    /// How many flows are kept (expired ones not yet swept included).
    pub async fn count(&self) -> Result<i64, StoreError> {
        self.count_all(&self.count).await
    }

    async fn count_all(&self, statement: &str) -> Result<i64, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_scalar(statement).fetch_one(pool).await?,
            Pool::Postgres(pool) => sqlx::query_scalar(statement).fetch_one(pool).await?,
        })
    }

    async fn count_of(&self, statement: &str, key: &str, now: i64) -> Result<i64, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_scalar(statement).bind(key).bind(now).fetch_one(pool).await?,
            Pool::Postgres(pool) => sqlx::query_scalar(statement).bind(key).bind(now).fetch_one(pool).await?,
        })
    }

    /// Keeps `flow` for the holder of `token` (the random value its cookie
    /// carries). Refused when its user has [`MAX_FLOWS_PER_USER`] links under
    /// way, or — a flow of someone not signed in — its client has its share
    /// or the store is full of flows that have not expired by `now`.
    pub async fn put(&self, token: &str, flow: &Flow, now: i64) -> Result<(), FlowError> {
        match &flow.user {
            Some(user) => {
                if self.count_of(&self.count_user, user, now).await? >= MAX_FLOWS_PER_USER {
                    return Err(FlowError::Full);
                }
            }
            None => {
                let client = flow.client.as_deref().unwrap_or("unknown");
                if self.count_of(&self.count_client, client, now).await? >= self.per_client {
                    return Err(FlowError::Full);
                }
                let anonymous = || self.count_all(&self.count_anonymous);
                if anonymous().await? >= self.limit && (self.sweep(now).await? == 0 || anonymous().await? >= self.limit)
                {
                    return Err(FlowError::Full);
                }
            }
        }
        let sealed = seal(token, &flow.data)?;
        let hash = lookup_hash(token);
        let args = vec![
            Arg::Text(Some(&hash)),
            Arg::Text(Some(flow.step.as_str())),
            Arg::Text(flow.user.as_deref()),
            Arg::Text(flow.client.as_deref()),
            Arg::Text(flow.provider.as_deref()),
            Arg::Text(Some(&sealed)),
            Arg::Int(flow.created_at),
            Arg::Int(flow.expires_at),
        ];
        self.execute(&self.put, args).await?;
        Ok(())
    }

    /// Removes and answers the flow of `token` (single use); `None` when
    /// there is none, or it expired before `now`.
    pub async fn take(&self, token: &str, now: i64) -> Result<Option<Flow>, StoreError> {
        let row = self.fetch(&self.take, &lookup_hash(token)).await?;
        opened(token, row, now)
    }

    /// The flow of `token`, left in place (a choice page shown again).
    pub async fn peek(&self, token: &str, now: i64) -> Result<Option<Flow>, StoreError> {
        let row = self.fetch(&self.peek, &lookup_hash(token)).await?;
        opened(token, row, now)
    }

    /// Drops the flows that expired before `now`; how many.
    pub async fn sweep(&self, now: i64) -> Result<u64, StoreError> {
        self.execute(&self.sweep, vec![Arg::Int(now)]).await
    }

    /// Drops every flow of `user` (a logout ends the user's links under way).
    pub async fn drop_user(&self, user: &str) -> Result<u64, StoreError> {
        self.execute(&self.drop_user, vec![Arg::Text(Some(user))]).await
    }

    /// Closes the connections.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

/// The key column: SHA-256 of the token, hex.
fn lookup_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The sealing key: SHA-256 of a label and the token (never stored; the
/// lookup hash is a different digest of it).
fn cipher(token: &str) -> XChaCha20Poly1305 {
    let mut digest = Sha256::new();
    digest.update(b"authledger flow data key\0");
    digest.update(token.as_bytes());
    XChaCha20Poly1305::new(&digest.finalize())
}

/// `data` sealed under `token`'s key: base64 of the nonce and the ciphertext.
fn seal(token: &str, data: &str) -> Result<String, StoreError> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let sealed = cipher(token)
        .encrypt(&nonce, data.as_bytes())
        .map_err(|_| StoreError::Failed("cannot seal a flow's data".into()))?;
    let mut bytes = nonce.to_vec();
    bytes.extend_from_slice(&sealed);
    Ok(STANDARD.encode(bytes))
}

/// `sealed` opened with `token`'s key; `None` when it is not readable with it.
fn unseal(token: &str, sealed: &str) -> Option<String> {
    let bytes = STANDARD.decode(sealed).ok()?;
    if bytes.len() < 24 {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(24);
    let plain = cipher(token).decrypt(XNonce::from_slice(nonce), ciphertext).ok()?;
    String::from_utf8(plain).ok()
}

/// A row back as `token`'s live flow (a row whose step this build does not
/// know is dropped; one its token cannot open is the store's fault).
fn opened(token: &str, row: Option<Row>, now: i64) -> Result<Option<Flow>, StoreError> {
    let Some((step, user, client, provider, sealed, created_at, expires_at)) = row else {
        return Ok(None);
    };
    if expires_at < now {
        return Ok(None);
    }
    let Some(step) = FlowStep::parse(&step) else {
        return Ok(None);
    };
    let data = unseal(token, &sealed).ok_or_else(|| StoreError::Failed("a flow's data cannot be opened".into()))?;
    Ok(Some(Flow { step, user, client, provider, data, created_at, expires_at }))
}

enum Arg<'a> {
    Text(Option<&'a str>),
    Int(i64),
}

fn bind_sqlite<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    args: Vec<Arg<'q>>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for arg in args {
        query = match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Int(int) => query.bind(int),
        };
    }
    query
}

fn bind_pg<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    args: Vec<Arg<'q>>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    for arg in args {
        query = match arg {
            Arg::Text(text) => query.bind(text),
            Arg::Int(int) => query.bind(int),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_its_token_opens_a_flow() {
        let sealed = seal("TOKEN-A", r#"{"verifier":"v"}"#).unwrap_or_default();
        assert!(!sealed.contains("verifier"));
        assert_eq!(unseal("TOKEN-A", &sealed).as_deref(), Some(r#"{"verifier":"v"}"#));
        assert_eq!(unseal("TOKEN-B", &sealed), None, "another token's key");
        assert_eq!(unseal("TOKEN-A", "not base64!"), None);
        assert_ne!(seal("TOKEN-A", "x").unwrap_or_default(), seal("TOKEN-A", "x").unwrap_or_default(), "fresh nonces");
        assert_ne!(lookup_hash("TOKEN-A"), lookup_hash("TOKEN-B"));
    }
}
