//! The integration-test harness: a real server on a real store (a fresh
//! SQLite file, or fresh tables in PostgreSQL), a real HTTP client, and
//! helpers for the flows most tests start with.
//!
//! PostgreSQL: `AUTHLEDGER_TEST_PG` names the database (default
//! `postgres://postgres@127.0.0.1:5432/postgres`). When it cannot be reached
//! the PostgreSQL variants are skipped with a loud message — unless
//! `AUTHLEDGER_REQUIRE_PG=1` (CI), where that is a failure.
#![allow(dead_code)]

pub mod oidc;

use std::sync::Arc;

use authledger::app::ledger::LedgerOptions;
use authledger::app::root_account::set_root_password;
use authledger::clock::{Clock, ManualClock, SystemClock};
use authledger::server::{Server, ServerOptions};
use authledger::store::SecretsKey;
use reqwest::StatusCode;
use serde_json::{Value, json};

pub const ROOT: &str = "***ROOT***";
pub const ROOT_PASSWORD: &str = "the root of all passphrases 2024!";
pub const USER_PASSWORD: &str = "correct horse battery staple 77";
/// The cluster test servers' hosts join (`web-1.example.org`).
pub const TEST_CLUSTER: &str = "example.org";
/// Where a test's manual clock starts: 2024-06-11T08:40:00Z.
pub const TEST_EPOCH: i64 = 1_718_095_200_000;

/// Tees a spawned `authledger serve`'s standard error into `log` and waits
/// (up to a minute) for the line announcing its address; returns its base URL.
pub fn announced_base(child: &mut std::process::Child, log: &std::path::Path) -> String {
    use std::io::{BufRead, Write};
    let mut log_file = std::fs::File::create(log).expect("a log file");
    let stderr = child.stderr.take().expect("stderr piped");
    let (found, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut announced = false;
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = writeln!(log_file, "{line}");
            if !announced && let Some(addr) = line.strip_prefix("authledger listening on ") {
                let _ = found.send(addr.to_owned());
                announced = true;
            }
        }
    });
    receiver.recv_timeout(std::time::Duration::from_secs(60)).expect("the server announces its address")
}

/// Where a test's events live.
#[derive(Clone)]
pub enum TestStore {
    Sqlite {
        dir: Arc<tempfile::TempDir>,
    },
    /// `keys` holds the key file that seals this store's secrets (PostgreSQL has no default).
    Postgres {
        url: String,
        prefix: String,
        keys: Arc<tempfile::TempDir>,
    },
}

/// A backup of a test store's log database ([`TestStore::backup`]).
pub enum Backup {
    Sqlite { _dir: tempfile::TempDir, file: std::path::PathBuf },
    Postgres,
}

/// The log's tables a PostgreSQL backup copies.
const BACKED_UP: [&str; 5] = ["events", "secrets", "schema_version", "checkpoints", "redactions"];

impl TestStore {
    pub fn sqlite() -> Self {
        Self::Sqlite { dir: Arc::new(tempfile::tempdir().expect("a temporary directory")) }
    }

    /// Fresh tables in the test database, or None (after saying so loudly) when it is unreachable and not required.
    pub async fn postgres() -> Option<Self> {
        let url = std::env::var("AUTHLEDGER_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let required = std::env::var("AUTHLEDGER_REQUIRE_PG").is_ok_and(|v| v == "1");
        match sqlx::PgPool::connect(&url).await {
            Ok(pool) => {
                pool.close().await;
                let prefix = format!("t{}_", uuid::Uuid::new_v4().simple());
                let keys = Arc::new(tempfile::tempdir().expect("a temporary directory"));
                authledger::app::secrets::new_key(&keys.path().join("secrets.key")).expect("a key file");
                Some(Self::Postgres { url, prefix, keys })
            }
            Err(error) if required => {
                panic!("PostgreSQL is required (AUTHLEDGER_REQUIRE_PG=1) but {url} is unreachable: {error}")
            }
            Err(error) => {
                eprintln!(
                    "\n!!!!! SKIPPING a PostgreSQL test: {url} is unreachable ({error}). Set AUTHLEDGER_TEST_PG. !!!!!\n"
                );
                None
            }
        }
    }

    /// The options of a server on this store: its ledger's, the test cluster, the witness file.
    pub fn server_options(&self) -> ServerOptions {
        let mut options = ServerOptions::new(self.options());
        options.ssh.cluster_name = TEST_CLUSTER.into();
        if let Self::Postgres { keys, .. } = self {
            options.witness_file = Some(keys.path().join("witness.json"));
        }
        options
    }

    /// The options of a ledger on this store.
    pub fn options(&self) -> LedgerOptions {
        match self {
            Self::Sqlite { dir } => LedgerOptions::new(format!("sqlite://{}", dir.path().join("events.db").display())),
            Self::Postgres { url, prefix, keys } => {
                let mut options = LedgerOptions::new(url.clone());
                options.store.table_prefix = prefix.clone();
                options.store.secrets_key = SecretsKey::File(keys.path().join("secrets.key"));
                options
            }
        }
    }

    pub fn url(&self) -> String {
        self.options().store_url
    }

    /// A new, empty store on the same engine.
    pub async fn another(&self) -> Self {
        match self {
            Self::Sqlite { .. } => Self::sqlite(),
            Self::Postgres { .. } => Self::postgres().await.expect("PostgreSQL, as for the first store"),
        }
    }

    /// A copy of the log's database as it is now, as an operator's backup
    /// takes it (the server may be running): `VACUUM INTO` a file apart for
    /// SQLite, copies of the log's tables (outside this store's prefix) for PostgreSQL.
    pub async fn backup(&self) -> Backup {
        match self {
            Self::Sqlite { dir } => {
                let apart = tempfile::tempdir().expect("a temporary directory");
                let file = apart.path().join("backup.db");
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open the SQLite file");
                sqlx::query(&format!("VACUUM INTO '{}'", file.display())).execute(&pool).await.expect("a backup");
                pool.close().await;
                Backup::Sqlite { _dir: apart, file }
            }
            Self::Postgres { url, prefix, .. } => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                for table in BACKED_UP {
                    let sql = format!("CREATE TABLE bk_{prefix}{table} AS SELECT * FROM {prefix}{table}");
                    sqlx::query(&sql).execute(&pool).await.expect("a backup");
                }
                pool.close().await;
                Backup::Postgres
            }
        }
    }

    /// Puts `backup` back in place of the log's database (no server running on it).
    pub async fn restore(&self, backup: Backup) {
        match (self, backup) {
            (Self::Sqlite { dir }, Backup::Sqlite { file, .. }) => {
                for stale in ["events.db-wal", "events.db-shm"] {
                    let _ = std::fs::remove_file(dir.path().join(stale));
                }
                std::fs::copy(&file, dir.path().join("events.db")).expect("restored");
            }
            (Self::Postgres { url, prefix, .. }, Backup::Postgres) => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                for table in BACKED_UP {
                    for sql in [
                        format!("DELETE FROM {prefix}{table}"),
                        format!("INSERT INTO {prefix}{table} SELECT * FROM bk_{prefix}{table}"),
                        format!("DROP TABLE bk_{prefix}{table}"),
                    ] {
                        sqlx::query(&sql).execute(&pool).await.expect("restored");
                    }
                }
                pool.close().await;
            }
            _ => panic!("a backup of another engine"),
        }
    }

    /// Drops this test's PostgreSQL tables.
    pub async fn cleanup(&self) {
        if let Self::Postgres { url, prefix, .. } = self
            && let Ok(pool) = sqlx::PgPool::connect(url).await
        {
            for table in ["events", "secrets", "schema_version", "checkpoints", "redactions", "flows", "throttle"] {
                let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {prefix}{table}")).execute(&pool).await;
                let _ = sqlx::query(&format!("DROP TABLE IF EXISTS {prefix}testmode_{table}")).execute(&pool).await;
            }
            pool.close().await;
        }
    }

    /// The raw bytes of an SQLite store's files (WAL included), as text; empty for PostgreSQL.
    pub fn raw_files(&self) -> String {
        self.raw_sqlite_files("events.db")
    }

    /// The raw bytes of the SQLite database `name` beside the log (`events.flows.db`,
    /// `events.testmode.db`, …) and of its WAL, as text; empty for PostgreSQL.
    pub fn raw_sqlite_files(&self, name: &str) -> String {
        let Self::Sqlite { dir } = self else { return String::new() };
        [name.to_owned(), format!("{name}-wal")]
            .iter()
            .filter_map(|name| std::fs::read(dir.path().join(name)).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .collect()
    }

    /// Everything the in-flight store holds, as text: its SQLite files (WAL
    /// included), or its PostgreSQL table's rows.
    pub async fn raw_flows(&self) -> String {
        match self {
            Self::Sqlite { .. } => self.raw_sqlite_files("events.flows.db"),
            Self::Postgres { url, prefix, .. } => {
                let pool = sqlx::PgPool::connect(url).await.expect("PostgreSQL");
                let sql = format!("SELECT token_hash || step || sealed FROM {prefix}flows");
                let rows: Vec<String> = sqlx::query_scalar(&sql).fetch_all(&pool).await.expect("the flows");
                pool.close().await;
                rows.concat()
            }
        }
    }

    /// The rows of the test-mode log: (aggregate type, aggregate id, event type), in position order.
    pub async fn test_log_rows(&self) -> Vec<(String, String, String)> {
        let sql = "SELECT aggregate_type, aggregate_id, event_type FROM {table} ORDER BY position";
        match self {
            Self::Sqlite { dir } => {
                let url = format!("sqlite://{}", dir.path().join("events.testmode.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open the test-mode SQLite file");
                let rows = sqlx::query_as(&sql.replace("{table}", "testmode_events"))
                    .fetch_all(&pool)
                    .await
                    .expect("test-mode events");
                pool.close().await;
                rows
            }
            Self::Postgres { url, prefix, .. } => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                let rows = sqlx::query_as(&sql.replace("{table}", &format!("{prefix}testmode_events")))
                    .fetch_all(&pool)
                    .await
                    .expect("test-mode events");
                pool.close().await;
                rows
            }
        }
    }

    /// Runs SQL on the main log's database directly (tampering, downgrades):
    /// `{events}`, `{schema}`, `{checkpoints}`, `{secrets}` and `{redactions}` name this log's tables.
    pub async fn execute(&self, sql: &str) {
        match self {
            Self::Sqlite { dir } => {
                let sql = sql
                    .replace("{events}", "events")
                    .replace("{schema}", "schema_version")
                    .replace("{checkpoints}", "checkpoints")
                    .replace("{secrets}", "secrets")
                    .replace("{redactions}", "redactions");
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open the SQLite file");
                sqlx::raw_sql(&sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                pool.close().await;
            }
            Self::Postgres { url, prefix, .. } => {
                let sql = sql
                    .replace("{events}", &format!("{prefix}events"))
                    .replace("{schema}", &format!("{prefix}schema_version"))
                    .replace("{checkpoints}", &format!("{prefix}checkpoints"))
                    .replace("{secrets}", &format!("{prefix}secrets"))
                    .replace("{redactions}", &format!("{prefix}redactions"));
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                sqlx::raw_sql(&sql).execute(&pool).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
                pool.close().await;
            }
        }
    }

    /// How many rows the main log holds.
    pub async fn main_log_len(&self) -> i64 {
        self.rows("events").await
    }

    /// How many rows one of the main store's tables (`events`, `checkpoints`, …) holds.
    pub async fn rows(&self, table: &str) -> i64 {
        match self {
            Self::Sqlite { dir } => {
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open the SQLite file");
                let n =
                    sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&pool).await.expect("count");
                pool.close().await;
                n
            }
            Self::Postgres { url, prefix, .. } => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {prefix}{table}"))
                    .fetch_one(&pool)
                    .await
                    .expect("count");
                pool.close().await;
                n
            }
        }
    }

    /// The payloads of the main log's events of `event_type`, in position order.
    pub async fn payloads(&self, event_type: &str) -> Vec<Value> {
        let sql = "SELECT payload FROM {table} WHERE event_type = $1 ORDER BY position";
        let rows: Vec<String> = match self {
            Self::Sqlite { dir } => {
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open the SQLite file");
                let rows = sqlx::query_scalar(&sql.replace("{table}", "events").replace("$1", "?"))
                    .bind(event_type)
                    .fetch_all(&pool)
                    .await
                    .expect("events");
                pool.close().await;
                rows
            }
            Self::Postgres { url, prefix, .. } => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                let rows = sqlx::query_scalar(&sql.replace("{table}", &format!("{prefix}events")))
                    .bind(event_type)
                    .fetch_all(&pool)
                    .await
                    .expect("events");
                pool.close().await;
                rows
            }
        };
        rows.iter().map(|p| serde_json::from_str::<Value>(p).expect("JSON")[event_type].clone()).collect()
    }

    /// The witness file of this store's log.
    pub fn witness_file(&self) -> std::path::PathBuf {
        let options = self.server_options();
        authledger::store::witness::witness_path(&options.ledger.store_url, options.witness_file.as_deref())
            .expect("a witness file")
    }

    /// The key file that seals this store's secrets.
    pub fn key_file(&self) -> std::path::PathBuf {
        let options = self.options();
        options.store.secrets_key.path(&options.store_url).expect("a key file").expect("a key file")
    }

    /// The secrets table's rows: (id, kind, stored text), oldest first.
    pub async fn secret_rows(&self) -> Vec<(String, String, String)> {
        let sql = "SELECT id, kind, secret FROM {table} ORDER BY created_at, id";
        match self {
            Self::Sqlite { dir } => {
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open the SQLite file");
                let rows = sqlx::query_as(&sql.replace("{table}", "secrets")).fetch_all(&pool).await.expect("secrets");
                pool.close().await;
                rows
            }
            Self::Postgres { url, prefix, .. } => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                let rows = sqlx::query_as(&sql.replace("{table}", &format!("{prefix}secrets")))
                    .fetch_all(&pool)
                    .await
                    .expect("secrets");
                pool.close().await;
                rows
            }
        }
    }

    /// Every byte this store keeps, as text, for a search: for SQLite every
    /// file in its directory (databases, WALs, free pages, key and witness
    /// files); for PostgreSQL every row of every table of this test, whole.
    pub async fn everything(&self) -> String {
        match self {
            Self::Sqlite { dir } => std::fs::read_dir(dir.path())
                .map(|entries| entries.flatten().filter_map(|e| std::fs::read(e.path()).ok()).collect::<Vec<_>>())
                .unwrap_or_default()
                .iter()
                .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
                .collect(),
            Self::Postgres { url, prefix, .. } => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                let tables: Vec<(String,)> =
                    sqlx::query_as("SELECT tablename FROM pg_tables WHERE starts_with(tablename, $1)")
                        .bind(prefix)
                        .fetch_all(&pool)
                        .await
                        .expect("tables");
                let mut out = String::new();
                for (table,) in tables {
                    let rows: Vec<(String,)> =
                        sqlx::query_as(&format!("SELECT t::text FROM {table} t")).fetch_all(&pool).await.expect("rows");
                    rows.into_iter().for_each(|(row,)| out.push_str(&row));
                }
                pool.close().await;
                out
            }
        }
    }

    /// The bytes of this PostgreSQL store's relation files (its tables, their
    /// indexes, TOAST tables and TOAST indexes), as text, after a
    /// `CHECKPOINT` wrote every dirty page out; `None` for SQLite, or (said
    /// loudly) when the data directory cannot be read from here, unless
    /// PostgreSQL is required (`AUTHLEDGER_REQUIRE_PG=1`, CI), where it fails.
    pub async fn relation_files(&self) -> Option<String> {
        let Self::Postgres { url, prefix, .. } = self else { return None };
        let pool = sqlx::PgPool::connect(url).await.expect("connect");
        sqlx::query("CHECKPOINT").execute(&pool).await.expect("a checkpoint (the test role is a superuser)");
        let data: String = sqlx::query_scalar("SELECT current_setting('data_directory')")
            .fetch_one(&pool)
            .await
            .expect("the data directory");
        let files: Vec<(String, String)> = sqlx::query_as(
            "WITH own AS (SELECT oid, reltoastrelid FROM pg_class WHERE starts_with(relname, $1) AND relkind IN ('r', 'i')),
                  rels AS (SELECT oid FROM own
                           UNION SELECT reltoastrelid FROM own WHERE reltoastrelid <> 0
                           UNION SELECT indexrelid FROM pg_index WHERE indrelid IN (SELECT reltoastrelid FROM own))
             SELECT pg_relation_filepath(oid), oid::regclass::text FROM rels",
        )
        .bind(prefix)
        .fetch_all(&pool)
        .await
        .expect("the relation files");
        pool.close().await;
        let mut out = String::new();
        for (file, relation) in &files {
            let path = std::path::Path::new(&data).join(file);
            match std::fs::read(&path) {
                Ok(bytes) => out.push_str(&String::from_utf8_lossy(&bytes)),
                Err(error) if std::env::var("AUTHLEDGER_REQUIRE_PG").is_ok_and(|v| v == "1") => {
                    panic!("cannot read PostgreSQL's relation file {} ({relation}): {error}", path.display())
                }
                Err(error) => {
                    eprintln!(
                        "\n!!!!! SKIPPING a byte search of PostgreSQL's files: {} ({error}) !!!!!\n",
                        path.display()
                    );
                    return None;
                }
            }
            // Relations over 1 GiB continue in numbered segments.
            for segment in 1.. {
                let Ok(bytes) = std::fs::read(format!("{}.{segment}", path.display())) else { break };
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        assert!(files.len() >= 8, "the log's tables and their indexes: {files:?}");
        Some(out)
    }

    /// Every stored text of this log (events and secrets, as rows), for scans.
    pub async fn dump(&self) -> String {
        let mut out = String::new();
        match self {
            Self::Sqlite { dir } => {
                let url = format!("sqlite://{}", dir.path().join("events.db").display());
                let pool = sqlx::SqlitePool::connect(&url).await.expect("open the SQLite file");
                let rows: Vec<(String, String)> =
                    sqlx::query_as("SELECT payload, metadata FROM events").fetch_all(&pool).await.expect("events");
                for (p, m) in rows {
                    out.push_str(&p);
                    out.push_str(&m);
                }
                let secrets: Vec<(String,)> =
                    sqlx::query_as("SELECT secret FROM secrets").fetch_all(&pool).await.expect("secrets");
                for (s,) in secrets {
                    out.push_str(&s);
                }
                pool.close().await;
            }
            Self::Postgres { url, prefix, .. } => {
                let pool = sqlx::PgPool::connect(url).await.expect("connect");
                let rows: Vec<(String, String)> =
                    sqlx::query_as(&format!("SELECT payload, metadata FROM {prefix}events"))
                        .fetch_all(&pool)
                        .await
                        .expect("events");
                for (p, m) in rows {
                    out.push_str(&p);
                    out.push_str(&m);
                }
                let secrets: Vec<(String,)> = sqlx::query_as(&format!("SELECT secret FROM {prefix}secrets"))
                    .fetch_all(&pool)
                    .await
                    .expect("secrets");
                for (s,) in secrets {
                    out.push_str(&s);
                }
                pool.close().await;
            }
        }
        out
    }
}

/// What Chromium sends when it navigates.
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,*/*;q=0.8";

/// A client that shows redirects instead of following them (form posts answer 303).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("a client")
}

/// A running server and a client for it.
pub struct Harness {
    pub store: TestStore,
    pub server: Server,
    pub http: reqwest::Client,
    pub base: String,
    clock: Arc<dyn Clock>,
    /// The clock, when the test controls it.
    pub manual: Option<Arc<ManualClock>>,
    test_mode: bool,
}

/// A decoded answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// Asserts an error envelope with this status and message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message: &str) {
        assert_eq!(self.status.as_u16(), status, "status of {}", self.text);
        let body = self.json();
        assert_eq!(body["error"]["message"], json!(message), "message of {}", self.text);
        assert_eq!(body["error"]["httpcode"], json!(status));
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
    }
}

impl Harness {
    pub async fn start(store: TestStore) -> Self {
        Self::start_with(store, Arc::new(SystemClock), |_| {}).await
    }

    pub async fn start_with(store: TestStore, clock: Arc<dyn Clock>, tune: impl FnOnce(&mut ServerOptions)) -> Self {
        let mut options = store.server_options();
        tune(&mut options);
        let test_mode = options.test_mode;
        let server = Server::start(options, clock.clone(), "127.0.0.1:0").await.expect("the server starts");
        let base = format!("http://{}", server.addr);
        Self { store, server, http: reqwest::Client::new(), base, clock, manual: None, test_mode }
    }

    /// A port for a server to come, and the two public URLs it answers on
    /// (`http://127.0.0.1:PORT`, `http://localhost:PORT`): a test tells
    /// providers its redirect URIs before it starts ([`Self::start_on`]).
    pub async fn bind() -> (tokio::net::TcpListener, [String; 2]) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let port = listener.local_addr().expect("its address").port();
        (listener, [format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")])
    }

    /// A server on `listener` (from [`Self::bind`]) with these providers and one
    /// alternate environment, `env1` (header `X-Auth-Env`, public URL
    /// `http://localhost:PORT`: the same server by another name).
    pub async fn start_on(
        store: TestStore,
        listener: tokio::net::TcpListener,
        providers: Vec<authledger::app::providers::ProviderSettings>,
    ) -> Self {
        Self::start_on_with_clock(store, listener, providers, Arc::new(SystemClock), |_| {}).await
    }

    /// [`Self::start_on`], on `clock`.
    pub async fn start_on_with_clock(
        store: TestStore,
        listener: tokio::net::TcpListener,
        providers: Vec<authledger::app::providers::ProviderSettings>,
        clock: Arc<dyn Clock>,
        tune: impl FnOnce(&mut ServerOptions),
    ) -> Self {
        let port = listener.local_addr().expect("its address").port();
        let bases = [format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")];
        let mut options = store.server_options();
        options.providers = providers;
        options.environments = authledger::app::providers::Environments {
            header: Some("X-Auth-Env".into()),
            public_urls: [("env1".to_owned(), Some(bases[1].clone()))].into(),
        };
        options.public_url = Some(bases[0].clone());
        tune(&mut options);
        let server = Server::start_on(options, clock.clone(), listener).await.expect("the server starts");
        Self {
            store,
            server,
            http: reqwest::Client::new(),
            base: bases[0].clone(),
            clock,
            manual: None,
            test_mode: false,
        }
    }

    /// A server whose one identity provider, `OIDC`, is a real one
    /// ([`oidc::Peer`], returned too: it lives as long as it is held), with
    /// `env1` as [`Self::start_on`] sets it. `None` when the peer cannot run
    /// here (see [`oidc::Peer::start`]).
    pub async fn with_provider(store: TestStore) -> Option<(Self, oidc::Peer)> {
        Self::with_provider_on(store, Arc::new(SystemClock), |_| {}).await
    }

    /// [`Self::with_provider`] with the in-flight store under `limits`.
    pub async fn with_provider_and_limits(
        store: TestStore,
        limits: authledger::store::flows::FlowLimits,
    ) -> Option<(Self, oidc::Peer)> {
        Self::with_provider_on(store, Arc::new(SystemClock), |o| o.flow_limits = limits).await
    }

    /// [`Self::with_provider`] on a clock the test moves (starting now: the
    /// provider's tokens carry real times).
    pub async fn with_provider_and_manual_clock(store: TestStore) -> Option<(Self, oidc::Peer)> {
        let manual = ManualClock::new(SystemClock.now_ms());
        let (mut harness, peer) = Self::with_provider_on(store, manual.clone(), |_| {}).await?;
        harness.manual = Some(manual);
        Some((harness, peer))
    }

    async fn with_provider_on(
        store: TestStore,
        clock: Arc<dyn Clock>,
        tune: impl FnOnce(&mut ServerOptions),
    ) -> Option<(Self, oidc::Peer)> {
        let (listener, bases) = Self::bind().await;
        let redirects: Vec<String> = bases
            .iter()
            .flat_map(|base| ["login", "link"].map(|flow| format!("{base}/{flow}/complete/OIDC")))
            .collect();
        let peer = oidc::Peer::start(&redirects).await?;
        let provider = authledger::app::providers::ProviderSettings {
            name: "OIDC".into(),
            kind: authledger::app::providers::ProviderKind::Oidc { issuer: peer.issuer.clone() },
            client_id: oidc::CLIENT_ID.into(),
            client_secret: oidc::CLIENT_SECRET.into(),
            scopes: vec!["email".into(), "profile".into()],
            extra_params: Vec::new(),
        };
        Some((Self::start_on_with_clock(store, listener, vec![provider], clock, tune).await, peer))
    }

    /// A server with test mode on and a clock the test moves (starting at [`TEST_EPOCH`]).
    pub async fn test_mode(store: TestStore) -> Self {
        let manual = ManualClock::new(TEST_EPOCH);
        let clock: Arc<dyn Clock> = manual.clone();
        let mut harness = Self::start_with(store, clock, |o| o.test_mode = true).await;
        harness.manual = Some(manual);
        harness
    }

    /// Moves the test's clock on.
    pub fn advance(&self, ms: i64) {
        self.manual.as_ref().expect("a harness with a manual clock").advance(ms);
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub async fn sqlite() -> Self {
        Self::start(TestStore::sqlite()).await
    }

    /// Stops the server and starts a new one on the same store.
    pub async fn restart(self) -> Self {
        self.restart_with(|_| {}).await
    }

    /// Stops the server and starts a new one on the same store, with changed options.
    pub async fn restart_with(self, tune: impl FnOnce(&mut ServerOptions)) -> Self {
        let store = self.store.clone();
        let clock = self.clock.clone();
        let (manual, test_mode) = (self.manual.clone(), self.test_mode);
        self.server.stop().await.expect("the server stops");
        let mut harness = Self::start_with(store, clock, |o| {
            o.test_mode = test_mode;
            tune(o);
        })
        .await;
        harness.manual = manual;
        harness
    }

    pub async fn finish(self) {
        let store = self.store.clone();
        self.server.stop().await.expect("the server stops");
        store.cleanup().await;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the request is answered");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("a body");
        Answer { status, headers, text }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.http.get(self.url(path)).header("Accept", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        self.send(request).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.json_request(reqwest::Method::POST, path, token, body).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Answer {
        self.json_request(reqwest::Method::PUT, path, token, body).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Answer {
        let mut request = self.http.delete(self.url(path)).header("Accept", "application/json");
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        self.send(request).await
    }

    pub async fn json_request(&self, method: reqwest::Method, path: &str, token: Option<&str>, body: Value) -> Answer {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("Accept", "application/json")
            .header("Content-Type", "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        self.send(request).await
    }

    pub async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: &str,
    ) -> Answer {
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("Accept", "application/json")
            .header("Content-Type", content_type)
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        self.send(request).await
    }

    /// A POST with this body and content type (none when `None`).
    pub async fn post_as(&self, path: &str, content_type: Option<&str>, body: &str) -> Answer {
        let mut request = self.http.post(self.url(path)).header("Accept", "application/json").body(body.to_owned());
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        self.send(request).await
    }

    /// A GET with these headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Answer {
        let mut request = self.http.get(self.url(path)).header("Accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request).await
    }

    /// Creates root (if needed) and logs it in; returns a Login token.
    pub async fn root_token(&self) -> String {
        set_root_password(&self.server.ledger, ROOT_PASSWORD.into()).await.expect("root's password is set");
        self.login(ROOT, ROOT_PASSWORD).await
    }

    pub async fn login(&self, user: &str, password: &str) -> String {
        let answer = self.post("/localaccount/login", None, json!({"user": user, "pwd": password})).await;
        assert_eq!(answer.status, StatusCode::OK, "login of {user}: {}", answer.text);
        answer.json()["token"].as_str().expect("a token").to_owned()
    }

    /// An administrator holding CreateAdmin and Admin, made the upstream way
    /// (root grants CreateAdmin; a CreateAdmin grants Admin), with non-admin
    /// login enabled. Returns its Login token.
    pub async fn admin_token(&self, root: &str) -> String {
        let created = self
            .post(
                "/admin/localaccount/create",
                Some(root),
                json!({"user": "admin", "display": "The Admin", "email": "admin@example.org"}),
            )
            .await;
        assert_eq!(created.status, StatusCode::OK, "create admin: {}", created.text);
        let granted = self.post("/admin/user/admin/roles", Some(root), json!({"roles": ["CreateAdmin"]})).await;
        assert_eq!(granted.status, 204, "{}", granted.text);
        let temporary = created.json()["pwd"].as_str().expect("a temporary password").to_owned();
        let reset = self
            .post("/localaccount/reset", None, json!({"user": "admin", "pwdold": temporary, "pwdnew": USER_PASSWORD}))
            .await;
        assert_eq!(reset.status, StatusCode::NO_CONTENT, "reset admin: {}", reset.text);
        let token = self.login("admin", USER_PASSWORD).await;
        let granted =
            self.post("/admin/user/admin/roles", Some(&token), json!({"roles": ["CreateAdmin", "Admin"]})).await;
        assert_eq!(granted.status, 204, "{}", granted.text);
        let allowed = self.post("/admin/config", Some(&token), json!({"allowlogin": true})).await;
        assert_eq!(allowed.status, 204, "{}", allowed.text);
        token
    }

    /// Root's and the administrator's Login tokens.
    pub async fn administrators(&self) -> (String, String) {
        let root = self.root_token().await;
        let admin = self.admin_token(&root).await;
        (root, admin)
    }

    /// Creates a local account (through `admin`) and sets its password to [`USER_PASSWORD`].
    pub async fn user_with_password(&self, admin: &str, name: &str) {
        let created = self
            .post(
                "/admin/localaccount/create",
                Some(admin),
                json!({"user": name, "display": format!("User {name}"), "email": format!("{name}@example.org")}),
            )
            .await;
        assert_eq!(created.status, StatusCode::OK, "create {name}: {}", created.text);
        let temporary = created.json()["pwd"].as_str().expect("a temporary password").to_owned();
        let reset = self
            .post("/localaccount/reset", None, json!({"user": name, "pwdold": temporary, "pwdnew": USER_PASSWORD}))
            .await;
        assert_eq!(reset.status, StatusCode::NO_CONTENT, "reset {name}: {}", reset.text);
    }

    /// A logged-in ordinary user; returns its Login token.
    pub async fn user_token(&self, admin: &str, name: &str) -> String {
        self.user_with_password(admin, name).await;
        self.login(name, USER_PASSWORD).await
    }

    /// Invites a user through `admin` (`invite` is the invitation's body), opens
    /// the invitation and completes it with `password` and a valid code.
    /// Returns the session token and the enrolled TOTP.
    pub async fn invited_user(&self, admin: &str, invite: Value, password: &str) -> (String, totp_rs::Totp) {
        let issued = self.post("/api/V2/admin/invites", Some(admin), invite).await;
        assert_eq!(issued.status, StatusCode::OK, "invite: {}", issued.text);
        let token = issued.json()["token"].as_str().expect("an invitation token").to_owned();
        let totp = self.open_invitation(&token).await;
        let code = totp.generate(u64::try_from(self.now() / 1000).unwrap_or(0)).to_string();
        let body = json!({"invite_token": token, "pass": password, "second_factor_token": code});
        let completed = self.post("/api/V2/invites/complete", None, body).await;
        assert_eq!(completed.status, StatusCode::OK, "complete: {}", completed.text);
        (completed.json()["token"].as_str().expect("a session token").to_owned(), totp)
    }

    /// Opens an invitation (`GET /web/newuser/{token}`, JSON) and returns the TOTP it offers.
    pub async fn open_invitation(&self, token: &str) -> totp_rs::Totp {
        let opened = self.get(&format!("/web/newuser/{token}"), None).await;
        assert_eq!(opened.status, StatusCode::OK, "open: {}", opened.text);
        let uri = opened.json()["second_factor"]["otpauth_uri"].as_str().expect("an otpauth URI").to_owned();
        totp_rs::Totp::from_url(&uri).expect("a TOTP URI")
    }

    /// The current code of `totp` by the server's clock.
    pub fn code(&self, totp: &totp_rs::Totp) -> String {
        totp.generate(u64::try_from(self.now() / 1000).unwrap_or(0)).to_string()
    }

    /// The whole `Set-Cookie` of a form login of `user` as a browser does it
    /// (answered 303 with the cookie).
    pub async fn form_login(&self, user: &str) -> String {
        let fields = [("user", user), ("pwd", USER_PASSWORD)];
        let answer = self.send(no_redirects().post(self.url("/localaccount/login")).form(&fields)).await;
        assert_eq!(answer.status, 303, "{}", answer.text);
        answer.header("set-cookie").expect("a session cookie")
    }

    /// `user`'s session cookie (`kbase_session=TOKEN`), from a form login.
    pub async fn session_cookie(&self, user: &str) -> String {
        self.form_login(user).await.split(';').next().expect("name=value").to_owned()
    }

    /// A page as a browser asks for it, with the session cookie when given.
    pub async fn page(&self, path: &str, cookie: Option<&str>) -> Answer {
        let mut request = no_redirects().get(self.url(path)).header("Accept", BROWSER_ACCEPT);
        if let Some(cookie) = cookie {
            request = request.header("Cookie", cookie);
        }
        self.send(request).await
    }

    /// A form posted from one of the server's own pages (redirects not followed).
    pub async fn form(&self, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Answer {
        let request = no_redirects()
            .post(self.url(path))
            .header("Accept", BROWSER_ACCEPT)
            .header("Cookie", cookie)
            .header("Origin", &self.base)
            .form(fields);
        self.send(request).await
    }

    /// A provider round trip as a browser makes it: `path` (`/login/start` or
    /// `/link/start`) posted with `fields`, `who` signing in at the provider
    /// (renamed `name` there, if given), the way back; the way back's answer
    /// and the cookies after it (a `Cookie` header's value).
    pub async fn through_provider(
        &self,
        peer: &oidc::Peer,
        path: &str,
        fields: &[(&str, &str)],
        who: &str,
        name: Option<&str>,
    ) -> (Answer, String) {
        let mut cookies = std::collections::BTreeMap::new();
        let keep = |answer: &Answer, cookies: &mut std::collections::BTreeMap<String, String>| {
            for cookie in answer.headers.get_all("set-cookie").iter().filter_map(|c| c.to_str().ok()) {
                if let Some((k, v)) = cookie.split(';').next().and_then(|p| p.split_once('=')) {
                    if cookie.contains("Max-Age=0") {
                        cookies.remove(k);
                    } else {
                        cookies.insert(k.to_owned(), v.to_owned());
                    }
                }
            }
        };
        let started =
            self.send(no_redirects().post(self.url(path)).header("Accept", "application/json").form(fields)).await;
        assert_eq!(started.status, 303, "{}", started.text);
        keep(&started, &mut cookies);
        let authorize = started.header("location").expect("the provider");
        let back = peer.log_in_named(&authorize, who, "pwd", name).await;
        let header = |cookies: &std::collections::BTreeMap<String, String>| {
            cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
        };
        let done = self
            .send(no_redirects().get(back).header("Accept", "application/json").header("Cookie", header(&cookies)))
            .await;
        keep(&done, &mut cookies);
        (done, header(&cookies))
    }

    /// An Agent token for the holder of `login`.
    pub async fn agent_token(&self, login: &str, name: &str) -> String {
        let answer = self.post("/api/V2/token", Some(login), json!({"name": name})).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
        answer.json()["token"].as_str().expect("a token").to_owned()
    }
}

/// Runs an async test body against SQLite and against PostgreSQL, as two tests
/// (`test_mode`: with test mode on and a manual clock).
#[macro_export]
macro_rules! on_both_stores {
    ($case:ident, test_mode) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let harness = $crate::common::Harness::test_mode($crate::common::TestStore::sqlite()).await;
                let harness = super::$case(harness).await;
                harness.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(store) = $crate::common::TestStore::postgres().await else {
                    return;
                };
                let harness = $crate::common::Harness::test_mode(store).await;
                let harness = super::$case(harness).await;
                harness.finish().await;
            }
        }
    };
    ($case:ident) => {
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let harness = $crate::common::Harness::start($crate::common::TestStore::sqlite()).await;
                let harness = super::$case(harness).await;
                harness.finish().await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some(store) = $crate::common::TestStore::postgres().await else {
                    return;
                };
                let harness = $crate::common::Harness::start(store).await;
                let harness = super::$case(harness).await;
                harness.finish().await;
            }
        }
    };
}

/// Runs `case(store)` — a test that builds its own server from the store
/// (with a provider, a clock, options) — on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! on_both_stores_from_store {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$case($crate::common::TestStore::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(store) = $crate::common::TestStore::postgres().await {
                    super::$case(store).await;
                }
            }
        }
    )*};
}
