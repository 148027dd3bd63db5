//! The throttle store: wrong-password counts the log must not keep — per
//! client address over every name, and per name that is no account (an
//! account's counts are events on its stream). Its rows are short-lived
//! state, swept once quiet, and shared by every server on one database, so a
//! limit holds across servers: a reservation reads and rewrites its row in
//! one transaction that holds the row against them.
//!
//! On SQLite it is its own file beside the log (`<stem>.throttle.db`), on
//! PostgreSQL a table in the same database. Each write says how durable it
//! must be ([`Durability`]): a name that is no account pays the same durable
//! write for its reservation as an account's event does, so timing does not
//! tell the two apart; a client address's count, which every check pays
//! alike, is not synced (a power cut forgets a few guesses, no more). A row
//! holds its state as JSON (the caller's to shape).

use serde::Serialize;
use serde::de::DeserializeOwned;
use sqlx::sqlite::SqliteSynchronous;

use super::side::{SidePool as Pool, SideStore};
use super::sql::Dialect;
use super::{StoreError, StoreOptions};

/// At most about this many rows are kept: past it, a sweep forgets the quietest.
pub const MAX_ROWS: i64 = 200_000;

/// How durable a write must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// As durable as the log's own appends (SQLite at the log's
    /// `synchronous`; PostgreSQL's `synchronous_commit`).
    AsTheLog,
    /// Committed without waiting for the disk (SQLite `synchronous=NORMAL`;
    /// PostgreSQL `synchronous_commit = off`): survives a crash of the
    /// process, maybe not a power cut.
    Relaxed,
}

/// The throttle store.
pub struct Throttles {
    pool: Pool,
    /// SQLite's `synchronous` for [`Durability::AsTheLog`].
    log_sync: &'static str,
    create: String,
    lock: String,
    write: String,
    sweep_quiet: String,
    sweep_oldest: String,
    count: String,
    remove: String,
}

impl Throttles {
    /// Opens (creating if needed) the throttle store of the log at `url`.
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let table = super::Tables::new(&options.table_prefix).throttle;
        let synchronous = if options.sqlite_full_sync { SqliteSynchronous::Full } else { SqliteSynchronous::Normal };
        let side = SideStore { name: "throttle", synchronous, postgres_connections: 8 };
        let (pool, dialect) = side.open(url).await?;
        let q = |statement: String| dialect.numbered(&statement);
        let throttles = Self {
            log_sync: if options.sqlite_full_sync { "FULL" } else { "NORMAL" },
            create: q(format!(
                "INSERT INTO {table} (key, state, last_at) VALUES ($1, 'null', $2) ON CONFLICT (key) DO NOTHING"
            )),
            lock: match dialect {
                Dialect::Sqlite => q(format!("SELECT state FROM {table} WHERE key = $1")),
                Dialect::Postgres => q(format!("SELECT state FROM {table} WHERE key = $1 FOR UPDATE")),
            },
            write: q(format!("UPDATE {table} SET state = $1, last_at = $2 WHERE key = $3")),
            sweep_quiet: q(format!("DELETE FROM {table} WHERE last_at < $1")),
            sweep_oldest: q(format!(
                "DELETE FROM {table} WHERE key IN (SELECT key FROM {table} ORDER BY last_at LIMIT $1)"
            )),
            count: format!("SELECT COUNT(*) FROM {table}"),
            remove: q(format!("DELETE FROM {table} WHERE key = $1")),
            pool,
        };
        let ddl = [
            format!(
                "CREATE TABLE IF NOT EXISTS {table} (key TEXT PRIMARY KEY, state TEXT NOT NULL, last_at BIGINT NOT NULL)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {table}_last ON {table} (last_at)"),
        ];
        for statement in ddl {
            throttles.execute(&statement, &[]).await?;
        }
        Ok(throttles)
    }

    async fn execute(&self, statement: &str, ints: &[i64]) -> Result<u64, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => {
                let mut query = sqlx::query(statement);
                for int in ints {
                    query = query.bind(*int);
                }
                query.execute(pool).await?.rows_affected()
            }
            Pool::Postgres(pool) => {
                let mut query = sqlx::query(statement);
                for int in ints {
                    query = query.bind(*int);
                }
                query.execute(pool).await?.rows_affected()
            }
        })
    }

    /// Reads the state kept under `key` (`None` when there is none) and lets
    /// `decide` answer what to keep instead (`None`: nothing changes) and what
    /// to return — in one transaction holding the row against every other
    /// server, so two reservations of one key never both count from one state.
    pub async fn update<T, R>(
        &self,
        key: &str,
        now: i64,
        durability: Durability,
        decide: impl FnOnce(Option<T>) -> (Option<T>, R),
    ) -> Result<R, StoreError>
    where
        T: Serialize + DeserializeOwned,
    {
        let read = |text: Option<String>| text.and_then(|t| serde_json::from_str::<Option<T>>(&t).ok()).flatten();
        let encode = |state: &T| serde_json::to_string(state).map_err(|e| StoreError::Failed(e.to_string()));
        match &self.pool {
            Pool::Sqlite(pool) => {
                let mut connection = pool.acquire().await?;
                let sync = match durability {
                    Durability::AsTheLog => self.log_sync,
                    Durability::Relaxed => "NORMAL",
                };
                sqlx::query(&format!("PRAGMA synchronous = {sync}")).execute(&mut *connection).await?;
                let mut tx = sqlx::Connection::begin_with(&mut *connection, "BEGIN IMMEDIATE").await?;
                let found: Option<String> = sqlx::query_scalar(&self.lock).bind(key).fetch_optional(&mut *tx).await?;
                let (keep, outcome) = decide(read(found.clone()));
                if let Some(state) = keep {
                    let state = encode(&state)?;
                    if found.is_none() {
                        sqlx::query(&self.create).bind(key).bind(now).execute(&mut *tx).await?;
                    }
                    sqlx::query(&self.write).bind(state).bind(now).bind(key).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(outcome)
            }
            Pool::Postgres(pool) => {
                let mut tx = pool.begin().await?;
                if durability == Durability::Relaxed {
                    sqlx::query("SET LOCAL synchronous_commit = off").execute(&mut *tx).await?;
                }
                // The row exists before it is locked: two first reservations of a key queue on it too.
                sqlx::query(&self.create).bind(key).bind(now).execute(&mut *tx).await?;
                let found: Option<String> = sqlx::query_scalar(&self.lock).bind(key).fetch_optional(&mut *tx).await?;
                let (keep, outcome) = decide(read(found));
                if let Some(state) = keep {
                    sqlx::query(&self.write).bind(encode(&state)?).bind(now).bind(key).execute(&mut *tx).await?;
                }
                tx.commit().await?;
                Ok(outcome)
            }
        }
    }

    /// Forgets rows last written before `quiet_before`, then the quietest
    /// beyond [`MAX_ROWS`], then leaves no byte of their keys (client
    /// addresses, names) in the files ([`Pool::scrub`]); how many.
    pub async fn sweep(&self, quiet_before: i64) -> Result<u64, StoreError> {
        let mut swept = self.execute(&self.sweep_quiet, &[quiet_before]).await?;
        let excess = self.count().await? - MAX_ROWS;
        if excess > 0 {
            swept += self.execute(&self.sweep_oldest, &[excess]).await?;
        }
        self.pool.scrub().await;
        Ok(swept)
    }

    /// Drops the row kept under `key` (a forgotten person's name) and leaves
    /// no byte of it in the files ([`Pool::scrub`]); whether there was one.
    pub async fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let removed = match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(&self.remove).bind(key).execute(pool).await?.rows_affected(),
            Pool::Postgres(pool) => sqlx::query(&self.remove).bind(key).execute(pool).await?.rows_affected(),
        };
        self.pool.scrub().await;
        Ok(removed > 0)
    }

    /// How many rows are kept.
    pub async fn count(&self) -> Result<i64, StoreError> {
        Ok(match &self.pool {
            Pool::Sqlite(pool) => sqlx::query_scalar(&self.count).fetch_one(pool).await?,
            Pool::Postgres(pool) => sqlx::query_scalar(&self.count).fetch_one(pool).await?,
        })
    }

    /// Closes the connections.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_row_is_read_and_rewritten_in_one_step_and_swept_once_quiet() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = Throttles::open(&url, &StoreOptions::default()).await.expect("opens");
        let bump = |found: Option<u32>| {
            let next = found.unwrap_or(0) + 1;
            (Some(next), next)
        };
        assert_eq!(store.update("a", 10, Durability::AsTheLog, bump).await.expect("first"), 1);
        assert_eq!(store.update("a", 20, Durability::Relaxed, bump).await.expect("second"), 2);
        let read = store.update::<u32, _>("a", 30, Durability::Relaxed, |found| (None, found)).await;
        assert_eq!(read.expect("read"), Some(2));
        assert_eq!(store.update("b", 40, Durability::AsTheLog, bump).await.expect("other"), 1);
        assert_eq!(store.sweep(25).await.expect("swept"), 1, "a was last written at 20");
        assert_eq!(store.count().await.expect("counted"), 1);
        assert!(dir.path().join("events.throttle.db").exists());
    }

    #[tokio::test]
    async fn a_swept_row_leaves_no_byte_of_its_key_in_the_files() {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = Throttles::open(&url, &StoreOptions::default()).await.expect("opens");
        let marker = "address:198.51.100.77";
        let set = |_: Option<u32>| (Some(1), ());
        for i in 0..200 {
            store.update(&format!("address:192.0.2.{i}"), 100, Durability::AsTheLog, set).await.expect("kept");
        }
        store.update(marker, 10, Durability::AsTheLog, set).await.expect("written");
        assert!(crate::store::side::occurrences(dir.path(), marker) > 0, "the key is in the files");
        assert_eq!(store.sweep(50).await.expect("swept"), 1);
        assert_eq!(
            crate::store::side::occurrences(dir.path(), marker),
            0,
            "no copy in the file, its free pages or the WAL"
        );
        assert_eq!(store.count().await.expect("counted"), 200);
    }
}
