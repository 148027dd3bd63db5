//! The in-flight store of flows: provider logins and links: what a login or link
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
//!
//! A flood of unauthenticated starts degrades only the flooders: every bound
//! keeps the newest flows — a client address (an IPv6 /64) keeps its newest
//! [`MAX_FLOWS_PER_CLIENT`], a network (an IPv4 /24, an IPv6 /48) its newest
//! [`MAX_FLOWS_PER_PREFIX`], a signed-in user the newest
//! [`MAX_FLOWS_PER_USER`] links — and a full store makes room by dropping the
//! oldest flow of the network that holds the most. A new start is never
//! refused, and a browser from outside the flood keeps its flow. Each bound
//! is counted and the flow inserted in one transaction (serialized across
//! servers on PostgreSQL by a transaction-scoped advisory lock), so
//! concurrent starts cannot pass a bound.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

use sqlx::sqlite::SqliteSynchronous;

use super::side::{SidePool as Pool, SideStore};
use super::sql::Dialect;
use super::{StoreError, StoreOptions};

/// Binds `args` in order to a query of either engine and any kind (their
/// query types differ; their `bind` is the same).
macro_rules! bound {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::Text(text) => query.bind(text),
                Arg::Int(int) => query.bind(int),
            };
        }
        query
    }};
}

/// At most this many flows of people not signed in are kept; when full,
/// expired ones are swept, then the oldest flow of the network holding the
/// most is dropped.
pub const MAX_FLOWS: i64 = 10_000;
/// At most this many of them from one client address (an IPv6 /64): its oldest goes first.
pub const MAX_FLOWS_PER_CLIENT: i64 = 100;
/// At most this many from one network (an IPv4 /24, an IPv6 /48): its oldest goes first.
pub const MAX_FLOWS_PER_PREFIX: i64 = 1_000;
/// At most this many links under way per signed-in user (links are not
/// counted against [`MAX_FLOWS`]: a flood of provider logins cannot touch them).
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
    /// The network of that address (a quota above the address's).
    pub prefix: Option<String>,
    /// The provider the flow went to.
    pub provider: Option<String>,
    /// The step's data, JSON (the caller's to shape); stored sealed.
    pub data: String,
    pub created_at: i64,
    /// Gone after this instant (epoch ms).
    pub expires_at: i64,
}

/// The in-flight store.
pub struct Flows {
    pool: Pool,
    lock: String,
    put: String,
    take: String,
    peek: String,
    sweep: String,
    count: String,
    count_anonymous: String,
    count_client: String,
    count_prefix: String,
    count_user: String,
    drop_oldest_client: String,
    drop_oldest_prefix: String,
    drop_oldest_user: String,
    fullest_prefix: String,
    drop_user: String,
    limits: FlowLimits,
}

/// The bounds of a flows store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowLimits {
    /// Flows of people not signed in, in all.
    pub all: i64,
    pub per_client: i64,
    pub per_prefix: i64,
    /// Links under way per signed-in user.
    pub per_user: i64,
}

impl Default for FlowLimits {
    fn default() -> Self {
        Self {
            all: MAX_FLOWS,
            per_client: MAX_FLOWS_PER_CLIENT,
            per_prefix: MAX_FLOWS_PER_PREFIX,
            per_user: MAX_FLOWS_PER_USER,
        }
    }
}

/// What keeping a flow made room by dropping (each its oldest flows).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Evicted {
    pub client: u64,
    pub prefix: u64,
    pub user: u64,
    /// Of the fullest network, to make room in a full store.
    pub fullest: u64,
    /// Expired flows swept to make room.
    pub expired: u64,
}

type Row = (String, Option<String>, Option<String>, Option<String>, String, i64, i64, Option<String>);

impl Flows {
    /// Opens (creating if needed) the flows of the log at `url`.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let table = super::Tables::new(&options.table_prefix).flows;
        // Losing a flow to a crash only restarts it; a flow's bytes are gone from the file once it ends.
        let side = SideStore { name: "flows", synchronous: SqliteSynchronous::Normal, postgres_connections: 4 };
        let (pool, dialect) = side.open(url).await?;
        let q = |statement: String| dialect.numbered(&statement);
        let columns = "step, user_name, client, provider, sealed, created_at, expires_at";
        // The oldest `n` rows matching `filter` (`{1}` its key, `{2}` the number).
        let oldest = |filter: &str| {
            q(format!(
                "DELETE FROM {table} WHERE token_hash IN
                 (SELECT token_hash FROM {table} WHERE {filter} = $1 ORDER BY created_at, token_hash LIMIT $2)"
            ))
        };
        let flows = Self {
            lock: match dialect {
                Dialect::Sqlite => String::new(),
                Dialect::Postgres => format!("SELECT pg_advisory_xact_lock(hashtext('{table}'))"),
            },
            put: q(format!(
                "INSERT INTO {table} (token_hash, {columns}, prefix) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
            )),
            take: q(format!("DELETE FROM {table} WHERE token_hash = $1 RETURNING {columns}, prefix")),
            peek: q(format!("SELECT {columns}, prefix FROM {table} WHERE token_hash = $1")),
            sweep: q(format!("DELETE FROM {table} WHERE expires_at < $1")),
            count: format!("SELECT COUNT(*) FROM {table}"),
            count_anonymous: format!("SELECT COUNT(*) FROM {table} WHERE user_name IS NULL"),
            count_client: q(format!(
                "SELECT COUNT(*) FROM {table} WHERE user_name IS NULL AND client = $1 AND expires_at >= $2"
            )),
            count_prefix: q(format!(
                "SELECT COUNT(*) FROM {table} WHERE user_name IS NULL AND prefix = $1 AND expires_at >= $2"
            )),
            count_user: q(format!("SELECT COUNT(*) FROM {table} WHERE user_name = $1 AND expires_at >= $2")),
            drop_oldest_client: oldest("user_name IS NULL AND client"),
            drop_oldest_prefix: oldest("user_name IS NULL AND prefix"),
            drop_oldest_user: oldest("user_name"),
            fullest_prefix: format!(
                "SELECT prefix FROM {table} WHERE user_name IS NULL AND prefix IS NOT NULL
                 GROUP BY prefix ORDER BY COUNT(*) DESC, MIN(created_at) LIMIT 1"
            ),
            drop_user: q(format!("DELETE FROM {table} WHERE user_name = $1")),
            limits: FlowLimits::default(),
            pool,
        };
        // A table from before flows recorded their network is dropped: it
        // holds only flows under way, which then start again.
        if flows.execute(&format!("SELECT prefix FROM {table} LIMIT 0"), Vec::new()).await.is_err() {
            flows.execute(&format!("DROP TABLE IF EXISTS {table}"), Vec::new()).await?;
        }
        let create = [
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (token_hash TEXT PRIMARY KEY, step TEXT NOT NULL, user_name TEXT,
                 client TEXT, prefix TEXT, provider TEXT, sealed TEXT NOT NULL, created_at BIGINT NOT NULL,
                 expires_at BIGINT NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {table}_expires ON {table} (expires_at)"),
            format!("CREATE INDEX IF NOT EXISTS {table}_user ON {table} (user_name, created_at)"),
            format!("CREATE INDEX IF NOT EXISTS {table}_client ON {table} (client, created_at)"),
            format!("CREATE INDEX IF NOT EXISTS {table}_prefix ON {table} (prefix, created_at)"),
        ];
        for statement in create {
            flows.execute(&statement, Vec::new()).await?;
        }
        Ok(flows)
    }

    /// The same store under other bounds (tests, and operators who size it).
    pub fn with_limits(mut self, limits: FlowLimits) -> Self {
        self.limits = limits;
        self
    }

    async fn execute(&self, statement: &str, args: Vec<Arg<'_>>) -> Result<u64, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => bound!(sqlx::query(statement), args).execute(pool).await?.rows_affected(),
            Pool::Postgres(pool) => bound!(sqlx::query(statement), args).execute(pool).await?.rows_affected(),
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

    /// Keeps `flow` for the holder of `token` (the random value its cookie
    /// carries), making room first (see the module documentation): the
    /// oldest flows over its user's, client's or network's bound are dropped,
    /// and in a full store the oldest of the fullest network. Counted and
    /// inserted in one transaction. Answers what was dropped.
    pub async fn put(&self, token: &str, flow: &Flow, now: i64) -> Result<Evicted, StoreError> {
        let sealed = seal(token, &flow.data)?;
        let hash = lookup_hash(token);
        let insert = vec![
            Arg::Text(Some(&hash)),
            Arg::Text(Some(flow.step.as_str())),
            Arg::Text(flow.user.as_deref()),
            Arg::Text(flow.client.as_deref()),
            Arg::Text(flow.provider.as_deref()),
            Arg::Text(Some(&sealed)),
            Arg::Int(flow.created_at),
            Arg::Int(flow.expires_at),
            Arg::Text(flow.prefix.as_deref()),
        ];
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
                let evicted = self.make_room(Tx::Sqlite(&mut tx), flow, now).await?;
                bound!(sqlx::query(&self.put), insert).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(evicted)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                sqlx::query(&self.lock).execute(&mut *tx).await?;
                let evicted = self.make_room(Tx::Postgres(&mut tx), flow, now).await?;
                bound!(sqlx::query(&self.put), insert).execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(evicted)
            }
        }
    }

    /// Drops what must go for `flow` to fit, inside the caller's transaction.
    async fn make_room(&self, mut tx: Tx<'_>, flow: &Flow, now: i64) -> Result<Evicted, StoreError> {
        let mut evicted = Evicted::default();
        let limits = self.limits;
        if let Some(user) = &flow.user {
            evicted.user = tx.drop_over(&self.count_user, &self.drop_oldest_user, user, now, limits.per_user).await?;
            return Ok(evicted);
        }
        let client = flow.client.as_deref().unwrap_or("unknown");
        evicted.client =
            tx.drop_over(&self.count_client, &self.drop_oldest_client, client, now, limits.per_client).await?;
        if let Some(prefix) = &flow.prefix {
            evicted.prefix =
                tx.drop_over(&self.count_prefix, &self.drop_oldest_prefix, prefix, now, limits.per_prefix).await?;
        }
        if tx.count(&self.count_anonymous, Vec::new()).await? >= limits.all {
            evicted.expired = tx.run(&self.sweep, vec![Arg::Int(now)]).await?;
            let over = tx.count(&self.count_anonymous, Vec::new()).await? - limits.all + 1;
            if over > 0
                && let Some(fullest) = tx.text(&self.fullest_prefix).await?
            {
                let args = vec![Arg::Text(Some(&fullest)), Arg::Int(over)];
                evicted.fullest = tx.run(&self.drop_oldest_prefix, args).await?;
            }
        }
        Ok(evicted)
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

    /// Drops the flows that expired before `now`, then leaves no byte of any
    /// flow that is gone in the files ([`Pool::scrub`]); how many.
    pub async fn sweep(&self, now: i64) -> Result<u64, StoreError> {
        let swept = self.execute(&self.sweep, vec![Arg::Int(now)]).await?;
        self.pool.scrub().await;
        Ok(swept)
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
    let Some((step, user, client, provider, sealed, created_at, expires_at, prefix)) = row else {
        return Ok(None);
    };
    if expires_at < now {
        return Ok(None);
    }
    let Some(step) = FlowStep::parse(&step) else {
        return Ok(None);
    };
    let data = unseal(token, &sealed).ok_or_else(|| StoreError::Failed("a flow's data cannot be opened".into()))?;
    Ok(Some(Flow { step, user, client, prefix, provider, data, created_at, expires_at }))
}

enum Arg<'a> {
    Text(Option<&'a str>),
    Int(i64),
}

/// A flows transaction under way, on either engine.
enum Tx<'a> {
    Sqlite(&'a mut sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(&'a mut sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx<'_> {
    async fn run(&mut self, statement: &str, args: Vec<Arg<'_>>) -> Result<u64, StoreError> {
        Ok(match self {
            Self::Sqlite(tx) => bound!(sqlx::query(statement), args).execute(&mut ***tx).await?.rows_affected(),
            Self::Postgres(tx) => bound!(sqlx::query(statement), args).execute(&mut ***tx).await?.rows_affected(),
        })
    }

    async fn count(&mut self, statement: &str, args: Vec<Arg<'_>>) -> Result<i64, StoreError> {
        Ok(match self {
            Self::Sqlite(tx) => bound!(sqlx::query_scalar::<_, i64>(statement), args).fetch_one(&mut ***tx).await?,
            Self::Postgres(tx) => bound!(sqlx::query_scalar::<_, i64>(statement), args).fetch_one(&mut ***tx).await?,
        })
    }

    async fn text(&mut self, statement: &str) -> Result<Option<String>, StoreError> {
        Ok(match self {
            Self::Sqlite(tx) => sqlx::query_scalar(statement).fetch_optional(&mut ***tx).await?,
            Self::Postgres(tx) => sqlx::query_scalar(statement).fetch_optional(&mut ***tx).await?,
        })
    }

    /// Drops the oldest flows of `key` (by `drop`) so that, counted by
    /// `count` at `now`, one more fits within `bound`; how many.
    async fn drop_over(&mut self, count: &str, drop: &str, key: &str, now: i64, bound: i64) -> Result<u64, StoreError> {
        let over = self.count(count, vec![Arg::Text(Some(key)), Arg::Int(now)]).await? - bound + 1;
        if over <= 0 {
            return Ok(0);
        }
        self.run(drop, vec![Arg::Text(Some(key)), Arg::Int(over)]).await
    }
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

    #[tokio::test]
    async fn a_swept_flow_leaves_no_byte_of_whose_it_was_in_the_files() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let flows = Flows::open(&url, &StoreOptions::default()).await.expect("opens");
        let flow = |user: &str, expires_at: i64| Flow {
            step: FlowStep::LinkStarted,
            user: Some(user.to_owned()),
            client: None,
            prefix: None,
            provider: Some("google".to_owned()),
            data: "{}".to_owned(),
            created_at: 1,
            expires_at,
        };
        for i in 0..100 {
            flows.put(&format!("TOKEN-{i}"), &flow(&format!("kept{i}"), 1_000), 1).await.expect("kept");
        }
        let marker = "marker-user-5512";
        flows.put("TOKEN-M", &flow(marker, 10), 1).await.expect("written");
        assert!(crate::store::side::occurrences(dir.path(), marker) > 0, "the user is in the files");
        assert_eq!(flows.sweep(50).await.expect("swept"), 1);
        assert_eq!(
            crate::store::side::occurrences(dir.path(), marker),
            0,
            "no copy in the file, its free pages or the WAL"
        );
        assert_eq!(flows.count().await.expect("counted"), 100);
    }
}
