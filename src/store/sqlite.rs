//! The embedded log: one SQLite file in WAL mode. One connection writes (SQLite
//! admits one writer anyway; `BEGIN IMMEDIATE` makes the batch's write lock
//! explicit), a small pool reads concurrently. `synchronous=FULL` by default,
//! so an acknowledged write survives a power cut.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_es::persist::SerializedEvent;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{Row, SqliteConnection, SqlitePool};

use super::sql::{Dialect, Queries};
use super::{
    EVENT_COLUMNS, ImportRow, LogBackend, Purge, SCHEMA_VERSION, SecretRow, StoreError, StoreOptions, StoredEvent,
    Tables, backfill_chain, batch_aggregates, chain, check_schema, forget, plan_batch, seal, serialized,
};

pub(crate) struct SqliteBackend {
    writer: SqlitePool,
    readers: SqlitePool,
    q: Queries,
}

impl SqliteBackend {
    pub async fn open(path: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        if options.read_only && !Path::new(path).exists() {
            return Err(StoreError::NoLog(format!("sqlite://{path}")));
        }
        if let Some(parent) = Path::new(path).parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .map_err(|source| StoreError::DataDir { path: parent.display().to_string(), source })?;
        }
        let connect_error = |source| StoreError::Connect { url: format!("sqlite://{path}"), source };
        let base = SqliteConnectOptions::from_str("sqlite:")
            .map_err(connect_error)?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(if options.sqlite_full_sync { SqliteSynchronous::Full } else { SqliteSynchronous::Normal })
            .busy_timeout(Duration::from_secs(10))
            .pragma("temp_store", "memory")
            // A replaced password hash is overwritten in the file, not just unlinked.
            .pragma("secure_delete", "on");
        let tables = Tables::new(&options.table_prefix);
        let writer = sqlite_pool()
            .max_connections(1)
            .connect_with(base.clone().read_only(options.read_only))
            .await
            .map_err(connect_error)?;
        if options.read_only {
            let found: Option<i64> = sqlx::query_scalar(&format!("SELECT MAX(version) FROM {}", tables.schema))
                .fetch_one(&writer)
                .await
                .unwrap_or(None);
            check_schema(found, &format!("sqlite://{path}"))?;
        } else {
            migrate(&writer, &tables).await?;
        }
        let readers =
            sqlite_pool().max_connections(4).connect_with(base.read_only(true)).await.map_err(connect_error)?;
        Ok(Self { writer, readers, q: Queries::new(&tables, Dialect::Sqlite) })
    }
}

/// Pool options for a file: its connections never go stale, so nothing is
/// reaped and sqlx runs no maintenance task (whose idle count can underflow
/// in a race and spin a worker for ever: sqlx issue 3645, seen here as a hang).
pub(crate) fn sqlite_pool() -> SqlitePoolOptions {
    SqlitePoolOptions::new().idle_timeout(None).max_lifetime(None)
}

async fn migrate(pool: &SqlitePool, t: &Tables) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {events} (
            position       INTEGER PRIMARY KEY,
            aggregate_type TEXT    NOT NULL,
            aggregate_id   TEXT    NOT NULL,
            sequence       INTEGER NOT NULL CHECK (sequence >= 1),
            event_type     TEXT    NOT NULL,
            event_version  TEXT    NOT NULL,
            payload        TEXT    NOT NULL,
            metadata       TEXT    NOT NULL,
            recorded_at    INTEGER NOT NULL,
            chain          TEXT,
            UNIQUE (aggregate_type, aggregate_id, sequence)
        ) STRICT;
        CREATE TABLE IF NOT EXISTS {secrets} (
            id         TEXT    PRIMARY KEY,
            kind       TEXT    NOT NULL,
            secret     TEXT    NOT NULL,
            created_at INTEGER NOT NULL
        ) STRICT;
        CREATE TABLE IF NOT EXISTS {schema} (version INTEGER NOT NULL) STRICT;
        CREATE TABLE IF NOT EXISTS {checkpoints} (
            position   INTEGER NOT NULL,
            rule       TEXT    NOT NULL,
            chain      TEXT,
            digest     TEXT    NOT NULL,
            created_at INTEGER NOT NULL,
            data       BLOB    NOT NULL,
            PRIMARY KEY (rule, position)
        ) STRICT;
        CREATE TABLE IF NOT EXISTS {redactions} (
            position        INTEGER NOT NULL,
            forget_position INTEGER NOT NULL,
            previous        TEXT    NOT NULL,
            content         TEXT    NOT NULL,
            PRIMARY KEY (position, forget_position)
        ) STRICT;",
        checkpoints = t.checkpoints,
        events = t.events,
        secrets = t.secrets,
        schema = t.schema,
        redactions = t.redactions
    );
    sqlx::raw_sql(&ddl).execute(&mut *tx).await?;
    let found: Option<i64> =
        sqlx::query_scalar(&format!("SELECT MAX(version) FROM {}", t.schema)).fetch_one(&mut *tx).await?;
    match found {
        None => {
            sqlx::query(&format!("INSERT INTO {} (version) VALUES (?)", t.schema))
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await?;
        }
        Some(found) if found > SCHEMA_VERSION => {
            return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
        }
        Some(1) => {
            // Schema 2 adds the integrity chain: computed here for every existing row.
            sqlx::query(&format!("ALTER TABLE {} ADD COLUMN chain TEXT", t.events)).execute(&mut *tx).await?;
            let rows = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM {} ORDER BY position", t.events))
                .fetch_all(&mut *tx)
                .await?;
            let rows = rows.iter().map(stored_event).collect::<Result<Vec<_>, _>>()?;
            let update = format!("UPDATE {} SET chain = ? WHERE position = ?", t.events);
            for (position, value) in backfill_chain(&rows) {
                sqlx::query(&update).bind(value).bind(position).execute(&mut *tx).await?;
            }
            sqlx::query(&format!("INSERT INTO {} (version) VALUES (?)", t.schema))
                .bind(SCHEMA_VERSION)
                .execute(&mut *tx)
                .await?;
            tracing::info!(events = rows.len(), "upgraded the log to schema 2 (integrity chain)");
        }
        Some(_) => {}
    }
    tx.commit().await?;
    Ok(())
}

fn stored_event(row: &SqliteRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(StoredEvent {
        position: row.try_get(0)?,
        aggregate_type: row.try_get(1)?,
        aggregate_id: row.try_get(2)?,
        sequence: row.try_get(3)?,
        event_type: row.try_get(4)?,
        event_version: row.try_get(5)?,
        payload: row.try_get(6)?,
        metadata: row.try_get(7)?,
        recorded_at: row.try_get(8)?,
        chain: row.try_get(9)?,
    })
}

fn to_serialized(rows: Vec<SqliteRow>) -> Result<Vec<SerializedEvent>, StoreError> {
    rows.iter()
        .map(|row| {
            let event = stored_event(row)?;
            serialized(&event).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
        })
        .collect()
}

impl SqliteBackend {
    async fn append_locked(
        &self,
        conn: &mut SqliteConnection,
        batch: &[&[SerializedEvent]],
        recorded_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let last: Option<(i64, Option<String>)> = sqlx::query_as(&self.q.last).fetch_optional(&mut *conn).await?;
        let next = last.as_ref().map_or(0, |(position, _)| *position) + 1;
        let previous = last.and_then(|(_, c)| c).and_then(|c| chain::decode(&c)).unwrap_or(chain::GENESIS);
        let mut newest = HashMap::new();
        for keys in batch_aggregates(batch).chunks(KEYS_PER_QUERY) {
            let values = vec!["(?, ?)"; keys.len()].join(", ");
            let sql = format!("{} ({values}) GROUP BY aggregate_type, aggregate_id", self.q.current_sequences);
            let mut query = sqlx::query(&sql).persistent(false);
            for (aggregate_type, aggregate_id) in keys {
                query = query.bind(*aggregate_type).bind(*aggregate_id);
            }
            for row in query.fetch_all(&mut *conn).await? {
                newest.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
            }
        }
        let (results, rows) = plan_batch(batch, newest, next);
        let rows = seal(rows, previous, recorded_at);
        for chunk in rows.chunks(ROWS_PER_INSERT) {
            let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
            let sql = format!("{} {values}", self.q.insert);
            let mut query = sqlx::query(&sql).persistent(chunk.len() == ROWS_PER_INSERT || chunk.len() == 1);
            for row in chunk {
                query = query
                    .bind(row.position)
                    .bind(&row.event.aggregate_type)
                    .bind(&row.event.aggregate_id)
                    .bind(row.event.sequence as i64)
                    .bind(&row.event.event_type)
                    .bind(&row.event.event_version)
                    .bind(&row.payload)
                    .bind(&row.metadata)
                    .bind(recorded_at)
                    .bind(&row.chain);
            }
            query.execute(&mut *conn).await?;
        }
        Ok(results)
    }
}

impl SqliteBackend {
    /// Inserts exported rows as they are, in one statement (at most [`ROWS_PER_INSERT`]).
    async fn insert_verbatim(&self, conn: &mut SqliteConnection, rows: &[StoredEvent]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let values = vec!["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"; rows.len()].join(", ");
        let sql = format!("{} {values}", self.q.insert);
        let mut query = sqlx::query(&sql).persistent(rows.len() == ROWS_PER_INSERT);
        for e in rows {
            query = query
                .bind(e.position)
                .bind(&e.aggregate_type)
                .bind(&e.aggregate_id)
                .bind(e.sequence)
                .bind(&e.event_type)
                .bind(&e.event_version)
                .bind(&e.payload)
                .bind(&e.metadata)
                .bind(e.recorded_at)
                .bind(&e.chain);
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }

    /// Inserts exported secrets as they are, in one statement (at most [`ROWS_PER_INSERT`]).
    async fn insert_secrets(&self, conn: &mut SqliteConnection, rows: &[SecretRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let values = vec!["(?, ?, ?, ?)"; rows.len()].join(", ");
        let sql = format!("{} {values}", self.q.insert_secrets);
        let mut query = sqlx::query(&sql).persistent(rows.len() == ROWS_PER_INSERT);
        for s in rows {
            query = query.bind(&s.id).bind(&s.kind).bind(&s.secret).bind(s.created_at);
        }
        query.execute(&mut *conn).await?;
        Ok(())
    }
}

impl SqliteBackend {
    /// The forget's work inside its transaction (see [`LogBackend::forget`]).
    async fn forget_locked(
        &self,
        conn: &mut SqliteConnection,
        mut planned: Vec<forget::Planned>,
        (mut after, mut previous): (i64, [u8; 32]),
        mut verifier: chain::ChainVerifier,
        forgetting: &dyn forget::Forgetting,
        now: i64,
    ) -> Result<forget::Forgot, StoreError> {
        loop {
            let rows =
                sqlx::query(&self.q.read_after).bind(after).bind(forget::READ_UNDER_LOCK).fetch_all(&mut *conn).await?;
            let rows = rows.iter().map(stored_event).collect::<Result<Vec<_>, _>>()?;
            let Some(last) = rows.last() else { break };
            after = last.position;
            forget::verified(&mut verifier, &rows)?;
            previous = forget::plan_after_scan(&rows, previous, forgetting, &mut planned)?;
        }
        let (redactions, commitment) = forget::commit(&planned, after + 1);
        let event = forgetting.event(&commitment).map_err(StoreError::Failed)?;
        for p in &planned {
            sqlx::query(&self.q.rewrite_row)
                .bind(&p.row.aggregate_id)
                .bind(&p.row.payload)
                .bind(&p.row.metadata)
                .bind(p.position)
                .execute(&mut *conn)
                .await?;
        }
        for r in &redactions {
            self.put_redaction(conn, r).await?;
        }
        // Every checkpoint holds projections folded from the rows as they were.
        sqlx::query(&self.q.delete_checkpoints).execute(&mut *conn).await?;
        for id in forgetting.secrets() {
            sqlx::query(&self.q.delete_secret).bind(id.to_string()).execute(&mut *conn).await?;
        }
        let newest: Option<i64> = sqlx::query_scalar(&self.q.last_recorded_at).fetch_optional(&mut *conn).await?;
        let appended =
            self.append_locked(conn, &[std::slice::from_ref(&event)], now.max(newest.unwrap_or(now))).await?;
        forget::appended(appended, after + 1, commitment.rows)
    }
}

impl SqliteBackend {
    async fn put_redaction(&self, conn: &mut SqliteConnection, r: &chain::Redaction) -> Result<(), StoreError> {
        sqlx::query(&self.q.put_redaction)
            .bind(r.position)
            .bind(r.forget_position)
            .bind(chain::encode(&r.previous))
            .bind(chain::encode(&r.content))
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Bound variables stay far below SQLite's limit (32766).
const KEYS_PER_QUERY: usize = 500;
const ROWS_PER_INSERT: usize = 256;

#[async_trait]
impl LogBackend for SqliteBackend {
    async fn append_batch(
        &self,
        batch: &[&[SerializedEvent]],
        recorded_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let outcome = match self.append_locked(&mut conn, batch, recorded_at).await {
            Ok(results) => sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| results).map_err(StoreError::from),
            Err(error) => Err(error),
        };
        if outcome.is_err() {
            // Whatever failed (a statement or the commit itself, e.g. a full disk), the
            // writer's connection must not stay inside the transaction.
            if let Err(error) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                tracing::warn!(%error, "rolling back a failed transaction failed");
            }
        }
        outcome
    }

    async fn load(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        after_sequence: i64,
    ) -> Result<Vec<SerializedEvent>, StoreError> {
        let rows = sqlx::query(&self.q.load)
            .bind(aggregate_type)
            .bind(aggregate_id)
            .bind(after_sequence)
            .fetch_all(&self.readers)
            .await?;
        to_serialized(rows)
    }

    async fn load_type(&self, aggregate_type: &str) -> Result<Vec<SerializedEvent>, StoreError> {
        let rows = sqlx::query(&self.q.load_type).bind(aggregate_type).fetch_all(&self.readers).await?;
        to_serialized(rows)
    }

    async fn read_after(&self, position: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&self.q.read_after).bind(position).bind(limit).fetch_all(&self.readers).await?;
        Ok(rows.iter().map(stored_event).collect::<Result<_, _>>()?)
    }

    async fn redactions(&self) -> Result<Vec<chain::Redaction>, StoreError> {
        // A log only ever opened read-only by this build has no such table yet.
        let tables: i64 = sqlx::query_scalar(&self.q.redactions_exist).fetch_one(&self.readers).await?;
        let rows: Vec<(i64, i64, String, String)> = match tables {
            0 => Vec::new(),
            _ => sqlx::query_as(&self.q.redactions).fetch_all(&self.readers).await?,
        };
        rows.iter().map(|(at, by, previous, content)| super::redaction(*at, *by, previous, content)).collect()
    }

    async fn forget(
        &self,
        planned: Vec<forget::Planned>,
        scanned: (i64, [u8; 32]),
        verifier: chain::ChainVerifier,
        forgetting: &dyn forget::Forgetting,
        now: i64,
    ) -> Result<forget::Forgot, StoreError> {
        let mut conn = self.writer.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let outcome = match self.forget_locked(&mut conn, planned, scanned, verifier, forgetting, now).await {
            Ok(forgot) => sqlx::query("COMMIT").execute(&mut *conn).await.map(|_| forgot).map_err(StoreError::from),
            Err(error) => Err(error),
        };
        match &outcome {
            // What the rewrite replaced is overwritten in the file (`secure_delete`); the
            // WAL that still holds it goes now.
            Ok(_) => super::side::truncate_wal(&mut *conn).await,
            Err(_) => {
                if let Err(error) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                    tracing::warn!(%error, "rolling back a failed forget failed");
                }
            }
        }
        outcome
    }

    async fn head(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(&self.q.head).fetch_one(&self.readers).await?)
    }

    async fn import(
        &self,
        rows: &mut (dyn Iterator<Item = Result<ImportRow, String>> + Send),
    ) -> Result<u64, StoreError> {
        let mut conn = self.writer.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let outcome = async {
            let events: i64 = sqlx::query_scalar(&self.q.count_events).fetch_one(&mut *conn).await?;
            let secrets: i64 = sqlx::query_scalar(&self.q.count_secrets).fetch_one(&mut *conn).await?;
            if events + secrets > 0 {
                return Err(StoreError::NotEmpty { events, secrets });
            }
            // Many rows a statement: one statement a row costs a round trip to sqlx's SQLite thread each.
            let mut written = 0;
            let (mut events, mut secrets) = (Vec::new(), Vec::new());
            for row in rows {
                match row.map_err(StoreError::Import)? {
                    ImportRow::Event(e) => events.push(e),
                    ImportRow::Secret(s) => secrets.push(s),
                    ImportRow::Redaction(r) => self.put_redaction(&mut conn, &r).await?,
                }
                written += 1;
                if events.len() == ROWS_PER_INSERT {
                    self.insert_verbatim(&mut conn, &events).await?;
                    events.clear();
                }
                if secrets.len() == ROWS_PER_INSERT {
                    self.insert_secrets(&mut conn, &secrets).await?;
                    secrets.clear();
                }
            }
            self.insert_verbatim(&mut conn, &events).await?;
            self.insert_secrets(&mut conn, &secrets).await?;
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            Ok::<u64, StoreError>(written)
        }
        .await;
        if outcome.is_err()
            && let Err(error) = sqlx::query("ROLLBACK").execute(&mut *conn).await
        {
            tracing::warn!(%error, "rolling back a failed transaction failed");
        }
        outcome
    }

    async fn purge(&self, purge: &Purge) -> Result<u64, StoreError> {
        let mut conn = self.writer.acquire().await?;
        sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
        let outcome = async {
            let mut deleted = 0;
            if let Some(position) = purge.everything_below {
                let position = position.min(purge.below);
                deleted += sqlx::query(&self.q.purge_below).bind(position).execute(&mut *conn).await?.rows_affected();
            }
            for (aggregate_type, aggregate_id, sequence) in &purge.aggregates {
                deleted += sqlx::query(&self.q.purge_aggregate)
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(sequence)
                    .bind(purge.below)
                    .execute(&mut *conn)
                    .await?
                    .rows_affected();
            }
            sqlx::query("COMMIT").execute(&mut *conn).await?;
            if deleted > 0 {
                // The purged rows' bytes are zeroed in the file (`secure_delete`);
                // their page images leave the write-ahead log when it is truncated.
                super::side::truncate_wal(&mut *conn).await;
            }
            Ok::<u64, StoreError>(deleted)
        }
        .await;
        if outcome.is_err()
            && let Err(error) = sqlx::query("ROLLBACK").execute(&mut *conn).await
        {
            tracing::warn!(%error, "rolling back a failed transaction failed");
        }
        outcome
    }

    async fn try_lead(&self) -> Result<Option<Box<dyn super::DutyLease>>, StoreError> {
        Ok(Some(Box::new(super::SoleProcess)))
    }

    async fn close(&self) {
        self.readers.close().await;
        self.writer.close().await;
    }
}

crate::store::sql::credential_and_checkpoint_backends!(SqliteBackend, readers: readers, writer: writer);
