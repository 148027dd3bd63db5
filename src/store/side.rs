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
    /// Makes what deleted rows held unreadable from the files too; every
    /// sweep ends with it, so rows a sweep did not delete (a flow taken, a
    /// user's links dropped, an eviction) leave the files by the next sweep.
    /// SQLite copies the write-ahead log into the (securely deleting) database
    /// file and truncates it, where the old pages' images would otherwise stay
    /// until overwritten. Best effort: a failure or a busy log is logged and
    /// left to the next sweep. On PostgreSQL dead rows are the autovacuum's;
    /// its WAL, like a backup, is the operator's (docs/security.md).
    pub async fn scrub(&self) {
        if let Self::Sqlite(pool) = self {
            truncate_wal(pool).await;
        }
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` on `executor`, best effort (see [`SidePool::scrub`]).
pub(crate) async fn truncate_wal<'c>(executor: impl sqlx::SqliteExecutor<'c>) {
    match sqlx::query_as::<_, (i64, i64, i64)>("PRAGMA wal_checkpoint(TRUNCATE)").fetch_one(executor).await {
        Ok((0, _, _)) => {}
        Ok(_) => tracing::debug!("the write-ahead log was in use: the next sweep truncates it"),
        Err(error) => tracing::warn!(%error, "truncating the write-ahead log failed"),
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
