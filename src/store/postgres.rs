//! The production log on PostgreSQL. Every batch takes a transaction-scoped
//! advisory lock before it numbers its events, so positions are handed out in
//! commit order across every process writing to the database: a reader that
//! has seen position N has seen everything committed before it. The group
//! commit in front of it (one writer per process) keeps the lock's cost to one
//! acquisition and one fsync per batch.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use cqrs_es::persist::SerializedEvent;
use sha2::{Digest, Sha256};
use sqlx::postgres::{PgListener, PgPoolOptions, PgRow};
use sqlx::{PgConnection, PgPool, Row};

use super::sql::{Dialect, Queries};
use super::{
    EVENT_COLUMNS, ImportRow, LogBackend, NewRow, Purge, SCHEMA_VERSION, SecretRow, StoreError, StoreOptions,
    StoredEvent, Tables, backfill_chain, batch_aggregates, chain, check_schema, forget, plan_batch, seal, serialized,
};

pub(crate) struct PostgresBackend {
    pool: PgPool,
    /// The advisory-lock key that serialises appends to this log.
    lock_key: i64,
    /// The session advisory-lock key of the duty lease.
    duty_key: i64,
    /// The channel every commit is announced on (`NOTIFY`, with its last position).
    channel: String,
    q: Queries,
    /// The tables a scrub vacuums: the log's (events first) and the side stores' beside it.
    scrubbed: Vec<String>,
}

/// How long a scrub waits for transactions older than it to end.
const SCRUB_WAIT: Duration = Duration::from_secs(10);

fn lock_key(events_table: &str) -> i64 {
    advisory_key(&format!("authledger:{events_table}"))
}

fn advisory_key(name: &str) -> i64 {
    let digest = Sha256::digest(name.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest[..8]);
    i64::from_be_bytes(bytes)
}

impl PostgresBackend {
    pub async fn open(url: &str, options: &StoreOptions) -> Result<Self, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await
            .map_err(|source| StoreError::Connect { url: redact(url), source })?;
        let tables = Tables::new(&options.table_prefix);
        let lock_key = lock_key(&tables.events);
        if options.read_only {
            let found: Option<i32> = sqlx::query_scalar(&format!("SELECT MAX(version) FROM {}", tables.schema))
                .fetch_one(&pool)
                .await
                .unwrap_or(None);
            check_schema(found.map(i64::from), &redact(url))?;
        } else {
            migrate(&pool, &tables, lock_key).await?;
        }
        let duty_key = advisory_key(&format!("authledger-duties:{}", tables.events));
        let channel = format!("{}_commits", tables.events);
        let scrubbed = vec![
            tables.events.clone(),
            tables.checkpoints.clone(),
            tables.secrets.clone(),
            tables.flows.clone(),
            tables.throttle.clone(),
        ];
        Ok(Self { pool, lock_key, duty_key, channel, q: Queries::new(&tables, Dialect::Postgres), scrubbed })
    }

    async fn append_locked(
        &self,
        conn: &mut PgConnection,
        batch: &[&[SerializedEvent]],
        recorded_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(self.lock_key).execute(&mut *conn).await?;
        let last: Option<(i64, Option<String>)> = sqlx::query_as(&self.q.last).fetch_optional(&mut *conn).await?;
        let next = last.as_ref().map_or(0, |(position, _)| *position) + 1;
        let previous = last.and_then(|(_, c)| c).and_then(|c| chain::decode(&c)).unwrap_or(chain::GENESIS);
        let (types, ids): (Vec<&str>, Vec<&str>) = batch_aggregates(batch).into_iter().unzip();
        let mut newest = HashMap::with_capacity(types.len());
        for row in sqlx::query(&self.q.current_sequences).bind(&types).bind(&ids).fetch_all(&mut *conn).await? {
            newest.insert((row.try_get(0)?, row.try_get(1)?), row.try_get(2)?);
        }
        let (results, rows) = plan_batch(batch, newest, next);
        let mut columns = InsertColumns::default();
        for row in seal(rows, previous, recorded_at) {
            columns.push(row, recorded_at);
        }
        columns.insert(&self.q.insert, conn).await?;
        // Delivered at commit, to every process listening (`listen`).
        if let Some(last) = results.iter().flatten().max() {
            sqlx::query("SELECT pg_notify($1, $2)")
                .bind(&self.channel)
                .bind(last.to_string())
                .execute(&mut *conn)
                .await?;
        }
        Ok(results)
    }
}

impl PostgresBackend {
    /// The forget's work inside its transaction (see [`LogBackend::forget`]).
    async fn forget_locked(
        &self,
        conn: &mut PgConnection,
        mut planned: Vec<forget::Planned>,
        (mut after, mut previous): (i64, [u8; 32]),
        mut verifier: chain::ChainVerifier,
        forgetting: &dyn forget::Forgetting,
        now: i64,
    ) -> Result<forget::Forgot, StoreError> {
        // The appends' lock, taken again (re-entrant) by `append_locked` below.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(self.lock_key).execute(&mut *conn).await?;
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
        let (mut positions, mut ids, mut payloads, mut metadata) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for p in &planned {
            positions.push(p.position);
            ids.push(p.row.aggregate_id.as_str());
            payloads.push(p.row.payload.as_str());
            metadata.push(p.row.metadata.as_str());
        }
        sqlx::query(&self.q.rewrite_rows)
            .bind(&ids)
            .bind(&payloads)
            .bind(&metadata)
            .bind(&positions)
            .execute(&mut *conn)
            .await?;
        let (mut positions, mut forgets, mut previous, mut content) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in &redactions {
            positions.push(r.position);
            forgets.push(r.forget_position);
            previous.push(chain::encode(&r.previous));
            content.push(chain::encode(&r.content));
        }
        sqlx::query(&self.q.put_redactions)
            .bind(&positions)
            .bind(&forgets)
            .bind(&previous)
            .bind(&content)
            .execute(&mut *conn)
            .await?;
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

/// Imported events waiting to be written.
#[derive(Default)]
struct ImportColumns {
    events: Vec<StoredEvent>,
    secrets: Vec<SecretRow>,
}

impl PostgresBackend {
    /// Writes the waiting imported events as they were exported.
    async fn insert_verbatim(&self, conn: &mut PgConnection, waiting: &mut ImportColumns) -> Result<(), StoreError> {
        if waiting.events.is_empty() {
            return Ok(());
        }
        let mut c = InsertColumns::default();
        for e in waiting.events.drain(..) {
            c.position.push(e.position);
            c.aggregate_type.push(e.aggregate_type);
            c.aggregate_id.push(e.aggregate_id);
            c.sequence.push(e.sequence);
            c.event_type.push(e.event_type);
            c.event_version.push(e.event_version);
            c.payload.push(e.payload);
            c.metadata.push(e.metadata);
            c.recorded_at.push(e.recorded_at);
            c.chain.push(e.chain.unwrap_or_default());
        }
        c.insert(&self.q.insert, conn).await
    }

    /// Writes the waiting imported secrets as they were exported, in one statement.
    async fn insert_secrets(&self, conn: &mut PgConnection, waiting: &mut ImportColumns) -> Result<(), StoreError> {
        if waiting.secrets.is_empty() {
            return Ok(());
        }
        let (mut id, mut kind, mut secret, mut created_at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for s in waiting.secrets.drain(..) {
            id.push(s.id);
            kind.push(s.kind);
            secret.push(s.secret);
            created_at.push(s.created_at);
        }
        sqlx::query(&self.q.insert_secrets)
            .bind(id)
            .bind(kind)
            .bind(secret)
            .bind(created_at)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// A batch's rows as column arrays, for one `INSERT ... SELECT FROM UNNEST`.
#[derive(Default)]
struct InsertColumns {
    position: Vec<i64>,
    aggregate_type: Vec<String>,
    aggregate_id: Vec<String>,
    sequence: Vec<i64>,
    event_type: Vec<String>,
    event_version: Vec<String>,
    payload: Vec<String>,
    metadata: Vec<String>,
    recorded_at: Vec<i64>,
    chain: Vec<String>,
}

impl InsertColumns {
    async fn insert(&self, sql: &str, conn: &mut PgConnection) -> Result<(), StoreError> {
        if !self.position.is_empty() {
            sqlx::query(sql)
                .bind(&self.position)
                .bind(&self.aggregate_type)
                .bind(&self.aggregate_id)
                .bind(&self.sequence)
                .bind(&self.event_type)
                .bind(&self.event_version)
                .bind(&self.payload)
                .bind(&self.metadata)
                .bind(&self.recorded_at)
                .bind(&self.chain)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    fn push(&mut self, row: NewRow<'_>, recorded_at: i64) {
        self.position.push(row.position);
        self.aggregate_type.push(row.event.aggregate_type.clone());
        self.aggregate_id.push(row.event.aggregate_id.clone());
        self.sequence.push(row.event.sequence as i64);
        self.event_type.push(row.event.event_type.clone());
        self.event_version.push(row.event.event_version.clone());
        self.payload.push(row.payload);
        self.metadata.push(row.metadata);
        self.recorded_at.push(recorded_at);
        self.chain.push(row.chain);
    }
}

/// The URL without its password, for messages.
pub(crate) fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

async fn migrate(pool: &PgPool, t: &Tables, lock_key: i64) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    // Two processes starting on an empty database must not race on CREATE TABLE.
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(lock_key).execute(&mut *tx).await?;
    let ddl = format!(
        "CREATE TABLE IF NOT EXISTS {events} (
            position       bigint PRIMARY KEY,
            aggregate_type text   NOT NULL,
            aggregate_id   text   NOT NULL,
            sequence       bigint NOT NULL CHECK (sequence >= 1),
            event_type     text   NOT NULL,
            event_version  text   NOT NULL,
            payload        text   NOT NULL,
            metadata       text   NOT NULL,
            recorded_at    bigint NOT NULL,
            chain          text,
            UNIQUE (aggregate_type, aggregate_id, sequence)
        );
        CREATE TABLE IF NOT EXISTS {secrets} (
            id         text   PRIMARY KEY,
            kind       text   NOT NULL,
            secret     text   NOT NULL,
            created_at bigint NOT NULL
        );
        CREATE TABLE IF NOT EXISTS {schema} (version integer NOT NULL);
        CREATE TABLE IF NOT EXISTS {checkpoints} (
            position   bigint NOT NULL,
            rule       text   NOT NULL,
            chain      text,
            digest     text   NOT NULL,
            created_at bigint NOT NULL,
            data       bytea  NOT NULL,
            PRIMARY KEY (rule, position)
        );
        CREATE TABLE IF NOT EXISTS {redactions} (
            position        bigint NOT NULL,
            forget_position bigint NOT NULL,
            previous        text    NOT NULL,
            content         text    NOT NULL,
            PRIMARY KEY (position, forget_position)
        );",
        checkpoints = t.checkpoints,
        events = t.events,
        secrets = t.secrets,
        schema = t.schema,
        redactions = t.redactions
    );
    sqlx::raw_sql(&ddl).execute(&mut *tx).await?;
    let found: Option<i32> =
        sqlx::query_scalar(&format!("SELECT MAX(version) FROM {}", t.schema)).fetch_one(&mut *tx).await?;
    match found.map(i64::from) {
        None => {
            sqlx::query(&format!("INSERT INTO {} (version) VALUES ($1)", t.schema))
                .bind(SCHEMA_VERSION as i32)
                .execute(&mut *tx)
                .await?;
        }
        Some(found) if found > SCHEMA_VERSION => {
            return Err(StoreError::SchemaTooNew { found, supported: SCHEMA_VERSION });
        }
        Some(1) => {
            // Schema 2 adds the integrity chain: computed here for every existing row.
            sqlx::query(&format!("ALTER TABLE {} ADD COLUMN chain text", t.events)).execute(&mut *tx).await?;
            let rows = sqlx::query(&format!("SELECT {EVENT_COLUMNS} FROM {} ORDER BY position", t.events))
                .fetch_all(&mut *tx)
                .await?;
            let rows = rows.iter().map(stored_event).collect::<Result<Vec<_>, _>>()?;
            let (positions, values): (Vec<i64>, Vec<String>) = backfill_chain(&rows).into_iter().unzip();
            sqlx::query(&format!(
                "UPDATE {} AS e SET chain = v.chain FROM UNNEST($1::bigint[], $2::text[]) AS v(position, chain)
                 WHERE e.position = v.position",
                t.events
            ))
            .bind(&positions)
            .bind(&values)
            .execute(&mut *tx)
            .await?;
            sqlx::query(&format!("INSERT INTO {} (version) VALUES ($1)", t.schema))
                .bind(SCHEMA_VERSION as i32)
                .execute(&mut *tx)
                .await?;
            tracing::info!(events = rows.len(), "upgraded the log to schema 2 (integrity chain)");
        }
        Some(_) => {}
    }
    tx.commit().await?;
    Ok(())
}

fn stored_event(row: &PgRow) -> Result<StoredEvent, sqlx::Error> {
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

fn to_serialized(rows: Vec<PgRow>) -> Result<Vec<SerializedEvent>, StoreError> {
    rows.iter()
        .map(|row| {
            let event = stored_event(row)?;
            serialized(&event).map_err(|e| StoreError::Database(sqlx::Error::Decode(Box::new(e))))
        })
        .collect()
}

#[async_trait]
impl LogBackend for PostgresBackend {
    async fn append_batch(
        &self,
        batch: &[&[SerializedEvent]],
        recorded_at: i64,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let mut tx = self.pool.begin().await?;
        let results = self.append_locked(&mut tx, batch, recorded_at).await?;
        tx.commit().await?;
        Ok(results)
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
            .fetch_all(&self.pool)
            .await?;
        to_serialized(rows)
    }

    async fn load_type(&self, aggregate_type: &str) -> Result<Vec<SerializedEvent>, StoreError> {
        let rows = sqlx::query(&self.q.load_type).bind(aggregate_type).fetch_all(&self.pool).await?;
        to_serialized(rows)
    }

    async fn read_after(&self, position: i64, limit: i64) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = sqlx::query(&self.q.read_after).bind(position).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(stored_event).collect::<Result<_, _>>()?)
    }

    async fn redactions(&self) -> Result<Vec<chain::Redaction>, StoreError> {
        // A log only ever opened read-only by this build has no such table yet.
        let tables: i64 = sqlx::query_scalar(&self.q.redactions_exist).fetch_one(&self.pool).await?;
        let rows: Vec<(i64, i64, String, String)> = match tables {
            0 => Vec::new(),
            _ => sqlx::query_as(&self.q.redactions).fetch_all(&self.pool).await?,
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
        let mut tx = self.pool.begin().await?;
        let forgot = self.forget_locked(&mut tx, planned, scanned, verifier, forgetting, now).await?;
        tx.commit().await?;
        Ok(forgot)
    }

    async fn head(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(&self.q.head).fetch_one(&self.pool).await?)
    }

    async fn scrub(&self, forget_position: i64) -> Result<super::Scrubbed, StoreError> {
        // A vacuum keeps the row versions any snapshot taken before the forget's
        // transaction ended can see, and those of transactions older than it.
        let forget_xid: Option<String> =
            sqlx::query_scalar(&format!("SELECT xmin::text FROM {} WHERE position = $1", self.scrubbed[0]))
                .bind(forget_position)
                .fetch_optional(&self.pool)
                .await?;
        let older = "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
                     AND ((backend_xmin IS NOT NULL AND age(backend_xmin) >= age($1::text::xid)) \
                       OR (backend_xid IS NOT NULL AND age(backend_xid) > age($1::text::xid)))";
        let waited = tokio::time::Instant::now();
        let still_open = loop {
            let Some(xid) = &forget_xid else { break 0 };
            let open: i64 = sqlx::query_scalar(older).bind(xid).fetch_one(&self.pool).await?;
            if open == 0 || waited.elapsed() >= SCRUB_WAIT {
                break open;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let mut tables = Vec::new();
        for table in &self.scrubbed {
            let exists: bool =
                sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL").bind(table).fetch_one(&self.pool).await?;
            if exists {
                // A plain vacuum compacts pages but leaves the bytes of what it freed
                // in the gap it opens (measured: the old versions' names were still
                // in the file); a full one writes the table and its indexes anew.
                sqlx::raw_sql(&format!("VACUUM FULL {table}")).execute(&self.pool).await?;
                tables.push(table.clone());
            }
        }
        Ok(super::Scrubbed { tables, still_open })
    }

    async fn import(
        &self,
        rows: &mut (dyn Iterator<Item = Result<ImportRow, String>> + Send),
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        // Appends by a server on the same tables wait, so "empty" stays true until the commit.
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(self.lock_key).execute(&mut *tx).await?;
        let events: i64 = sqlx::query_scalar(&self.q.count_events).fetch_one(&mut *tx).await?;
        let secrets: i64 = sqlx::query_scalar(&self.q.count_secrets).fetch_one(&mut *tx).await?;
        if events + secrets > 0 {
            return Err(StoreError::NotEmpty { events, secrets });
        }
        const CHUNK: usize = 5_000;
        let mut written = 0;
        let mut columns = ImportColumns::default();
        for row in rows {
            match row.map_err(StoreError::Import)? {
                ImportRow::Event(e) => columns.events.push(e),
                ImportRow::Secret(s) => columns.secrets.push(s),
                ImportRow::Redaction(r) => {
                    sqlx::query(&self.q.put_redaction)
                        .bind(r.position)
                        .bind(r.forget_position)
                        .bind(chain::encode(&r.previous))
                        .bind(chain::encode(&r.content))
                        .execute(&mut *tx)
                        .await?;
                }
            }
            written += 1;
            if columns.events.len() >= CHUNK {
                self.insert_verbatim(&mut tx, &mut columns).await?;
            }
            if columns.secrets.len() >= CHUNK {
                self.insert_secrets(&mut tx, &mut columns).await?;
            }
        }
        self.insert_verbatim(&mut tx, &mut columns).await?;
        self.insert_secrets(&mut tx, &mut columns).await?;
        tx.commit().await?;
        Ok(written)
    }

    async fn purge(&self, purge: &Purge) -> Result<u64, StoreError> {
        let mut tx = self.pool.begin().await?;
        let mut deleted = 0;
        if let Some(position) = purge.everything_below {
            let position = position.min(purge.below);
            deleted += sqlx::query(&self.q.purge_below).bind(position).execute(&mut *tx).await?.rows_affected();
        }
        for (aggregate_type, aggregate_id, sequence) in &purge.aggregates {
            deleted += sqlx::query(&self.q.purge_aggregate)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .bind(sequence)
                .bind(purge.below)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn close(&self) {
        self.pool.close().await;
    }

    fn listen(&self, heard: super::CommitSignal) -> Option<tokio::task::JoinHandle<()>> {
        let (pool, channel) = (self.pool.clone(), self.channel.clone());
        Some(tokio::spawn(async move {
            loop {
                match PgListener::connect_with(&pool).await {
                    Ok(mut listener) => match listener.listen(&channel).await {
                        Ok(()) => {
                            // Whatever was committed while nobody listened.
                            heard(None);
                            hear(&mut listener, &heard).await;
                        }
                        Err(error) => tracing::warn!(%error, "cannot listen for commits; polling meanwhile"),
                    },
                    Err(error) => tracing::warn!(%error, "cannot listen for commits; polling meanwhile"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }))
    }

    async fn try_lead(&self) -> Result<Option<Box<dyn super::DutyLease>>, StoreError> {
        let mut pooled = self.pool.acquire().await?;
        let held: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(self.duty_key).fetch_one(&mut *pooled).await?;
        // Held: the connection leaves the pool, and the lock lives as long as it does.
        // Not held: the connection holds nothing and goes back.
        Ok(held.then(|| Box::new(SessionLease { connection: pooled.detach() }) as Box<dyn super::DutyLease>))
    }
}

/// Hears notifications until the listener's connection fails for good: a
/// lost connection is reported as a possible miss and reconnected.
async fn hear(listener: &mut PgListener, heard: &super::CommitSignal) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => heard(notification.payload().parse().ok()),
            Ok(None) => {
                tracing::warn!("lost the connection that listens for commits; reconnecting");
                heard(None);
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for commits; polling meanwhile");
                heard(None);
                return;
            }
        }
    }
}

/// The duty lease: a session advisory lock held by a connection of its own.
struct SessionLease {
    connection: PgConnection,
}

#[async_trait]
impl super::DutyLease for SessionLease {
    async fn alive(&mut self) -> bool {
        // A connection that does not answer in time (a black-holed network) is lost too.
        let probe = sqlx::query("SELECT 1").execute(&mut self.connection);
        matches!(tokio::time::timeout(Duration::from_secs(2), probe).await, Ok(Ok(_)))
    }
}

crate::store::sql::credential_and_checkpoint_backends!(PostgresBackend, readers: pool, writer: pool);

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(super::redact("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
        assert_eq!(super::redact("postgres://h/db"), "postgres://h/db");
    }
}
