//! A store kept beside the log, for state that is not history (sign-ins in
//! flight, throttles): an SQLite file next to the log's, or tables in the
//! log's PostgreSQL database. Each side store opens its pool here.

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqliteSynchronous};

use super::sql::Dialect;
use super::{StoreError, StoreKind};

/// A side store's connections, on the log's engine.
pub enum SidePool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// How one side store is opened.
pub struct SideStore {
    /// The file's suffix beside an SQLite log (`<stem>.<name>.db`).
    pub name: &'static str,
    pub synchronous: SqliteSynchronous,
    pub postgres_connections: u32,
}

impl SideStore {
    /// Opens (creating the SQLite file if needed) this side store of the log at `url`.
    /// On SQLite it has one connection: this process's writers take turns, and it
    /// is the only process on an SQLite log. Freed pages are overwritten
    /// (`secure_delete`): what a deleted row held is gone from the file, and,
    /// after [`SidePool::scrub`], from its write-ahead log too.
    pub async fn open(&self, url: &str) -> Result<(SidePool, Dialect), StoreError> {
        match StoreKind::parse(&StoreKind::beside(url, self.name))? {
            StoreKind::Sqlite { path } => {
                let file = std::path::PathBuf::from(path);
                let failed = |source| StoreError::Connect { url: file.display().to_string(), source };
                let connect = SqliteConnectOptions::from_str("sqlite:")
                    .map_err(failed)?
                    .filename(&file)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(self.synchronous)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("secure_delete", "on");
                let pool =
                    super::sqlite::sqlite_pool().max_connections(1).connect_with(connect).await.map_err(failed)?;
                Ok((SidePool::Sqlite(pool), Dialect::Sqlite))
            }
            StoreKind::Postgres { url } => {
                let pool = PgPoolOptions::new()
                    .max_connections(self.postgres_connections)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&url)
                    .await
                    .map_err(|source| StoreError::Connect { url: super::postgres::redact(&url), source })?;
                Ok((SidePool::Postgres(pool), Dialect::Postgres))
            }
        }
    }
}

impl SidePool {
    /// Makes what deleted rows held unreadable from the files too, after a
    /// sweep: SQLite copies the write-ahead log into the (securely deleting)
    /// database file and truncates it, where the old pages' images would
    /// otherwise stay until overwritten. On PostgreSQL dead rows are the
    /// autovacuum's; its WAL, like a backup, is the operator's (docs/security.md).
    pub async fn scrub(&self) -> Result<(), StoreError> {
        if let Self::Sqlite(pool) = self {
            let (busy, _, _): (i64, i64, i64) =
                sqlx::query_as("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(pool).await?;
            if busy != 0 {
                tracing::debug!("the side store's write-ahead log was in use: truncated at the next sweep");
            }
        }
        Ok(())
    }
}

/// How often `needle` stands in the files of `dir` (tests: what a sweep left behind).
#[cfg(test)]
pub(crate) fn occurrences(dir: &std::path::Path, needle: &str) -> usize {
    let needle = needle.as_bytes();
    let entries = std::fs::read_dir(dir).map(|entries| entries.flatten().collect::<Vec<_>>()).unwrap_or_default();
    entries
        .iter()
        .filter_map(|entry| std::fs::read(entry.path()).ok())
        .map(|bytes| bytes.windows(needle.len()).filter(|window| *window == needle).count())
        .sum()
}
