//! The SQL of the log, the credentials store and the checkpoint store,
//! written once for both engines: a statement numbers its parameters as
//! PostgreSQL does (`$1`), [`Dialect::numbered`] spells them for SQLite
//! (`?1`), and only the few statements the engines really write differently
//! (bulk appends, upserts) are spelled per engine.

use super::{EVENT_COLUMNS, Tables, head_query};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `statement`, written with PostgreSQL's numbered parameters (`$1`,
    /// `$2`, …), for this engine: SQLite's are `?1`, `?2`, … (a statement may
    /// name one parameter twice; a bare `?` would be a new one).
    pub(crate) fn numbered(self, statement: &str) -> String {
        match self {
            Self::Postgres => statement.to_owned(),
            Self::Sqlite => {
                let mut out = String::with_capacity(statement.len());
                let mut chars = statement.chars().peekable();
                while let Some(c) = chars.next() {
                    let numbered = c == '$' && chars.peek().is_some_and(char::is_ascii_digit);
                    out.push(if numbered { '?' } else { c });
                }
                out
            }
        }
    }
}

/// Every statement of one store, with its table names filled in once.
pub(crate) struct Queries {
    pub head: String,
    pub last: String,
    /// SQLite: completed with `(VALUES (?, ?), ...) GROUP BY ...` per batch;
    /// PostgreSQL: takes two arrays (types, ids).
    pub current_sequences: String,
    /// SQLite: completed with `(?, …), …` per batch; PostgreSQL: takes ten arrays.
    pub insert: String,
    pub load: String,
    pub load_type: String,
    pub read_after: String,
    pub redactions: String,
    /// Counts the redactions table (0 in a log this build only ever opened read-only).
    pub redactions_exist: String,
    /// SQLite: one row per statement; PostgreSQL: `put_redactions`/`rewrite_rows` take arrays.
    pub put_redaction: String,
    pub rewrite_row: String,
    pub put_redactions: String,
    pub rewrite_rows: String,
    pub last_recorded_at: String,
    pub delete_checkpoints: String,
    pub put_secret: String,
    /// A many-row insert of secrets for an import: SQLite's `INSERT … VALUES` to
    /// be followed by its rows, PostgreSQL's from column arrays.
    pub insert_secrets: String,
    pub get_secret: String,
    pub delete_secret: String,
    pub secret_ids: String,
    pub all_secrets: String,
    pub reseal_secret: String,
    pub secret_key_ids: String,
    pub count_events: String,
    pub count_secrets: String,
    pub purge_below: String,
    pub purge_aggregate: String,
    pub put_checkpoint: String,
    pub latest_checkpoint: String,
    pub prune_checkpoints: String,
}

impl Queries {
    pub fn new(t: &Tables, dialect: Dialect) -> Self {
        let q = |statement: String| dialect.numbered(&statement);
        let events = &t.events;
        let (secrets, checkpoints) = (&t.secrets, &t.checkpoints);
        let checkpoint_columns = "position, rule, chain, digest, created_at, data";
        let checkpoint_values = dialect.numbered("$1, $2, $3, $4, $5, $6");
        Self {
            head: format!("SELECT COALESCE(MAX(position), 0) FROM {events}"),
            last: head_query(events),
            current_sequences: match dialect {
                Dialect::Sqlite => format!(
                    "SELECT aggregate_type, aggregate_id, MAX(sequence) FROM {events} WHERE (aggregate_type, aggregate_id) IN"
                ),
                Dialect::Postgres => format!(
                    "SELECT k.t, k.i, COALESCE((SELECT MAX(e.sequence) FROM {events} e
                         WHERE e.aggregate_type = k.t AND e.aggregate_id = k.i), 0)
                     FROM UNNEST($1::text[], $2::text[]) AS k(t, i)"
                ),
            },
            insert: match dialect {
                Dialect::Sqlite => format!("INSERT INTO {events} ({EVENT_COLUMNS}) VALUES"),
                Dialect::Postgres => format!(
                    "INSERT INTO {events} ({EVENT_COLUMNS})
                     SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::bigint[], $5::text[],
                                          $6::text[], $7::text[], $8::text[], $9::bigint[], $10::text[])"
                ),
            },
            load: q(format!(
                "SELECT {EVENT_COLUMNS} FROM {events}
                 WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence > $3 ORDER BY sequence"
            )),
            load_type: q(format!("SELECT {EVENT_COLUMNS} FROM {events} WHERE aggregate_type = $1 ORDER BY position")),
            read_after: q(format!(
                "SELECT {EVENT_COLUMNS} FROM {events} WHERE position > $1 ORDER BY position LIMIT $2"
            )),
            redactions: format!(
                "SELECT position, forget_position, previous, content FROM {} ORDER BY position, forget_position",
                t.redactions
            ),
            redactions_exist: match dialect {
                Dialect::Sqlite => {
                    format!("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '{}'", t.redactions)
                }
                Dialect::Postgres => format!(
                    "SELECT COUNT(*) FROM pg_tables WHERE tablename = '{}' AND schemaname = ANY (current_schemas(false))",
                    t.redactions
                ),
            },
            put_redaction: q(format!(
                "INSERT INTO {} (position, forget_position, previous, content) VALUES ($1, $2, $3, $4)",
                t.redactions
            )),
            rewrite_row: q(format!(
                "UPDATE {events} SET aggregate_id = $1, payload = $2, metadata = $3 WHERE position = $4"
            )),
            put_redactions: format!(
                "INSERT INTO {} (position, forget_position, previous, content)
                 SELECT * FROM UNNEST($1::bigint[], $2::bigint[], $3::text[], $4::text[])",
                t.redactions
            ),
            rewrite_rows: format!(
                "UPDATE {events} AS e SET aggregate_id = r.aggregate_id, payload = r.payload, metadata = r.metadata
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[]) AS r(aggregate_id, payload, metadata, position)
                 WHERE e.position = r.position"
            ),
            delete_checkpoints: format!("DELETE FROM {checkpoints}"),
            last_recorded_at: format!("SELECT recorded_at FROM {events} ORDER BY position DESC LIMIT 1"),
            insert_secrets: match dialect {
                Dialect::Sqlite => format!("INSERT INTO {secrets} (id, kind, secret, created_at) VALUES"),
                Dialect::Postgres => format!(
                    "INSERT INTO {secrets} (id, kind, secret, created_at)
                     SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[])"
                ),
            },
            put_secret: q(format!("INSERT INTO {secrets} (id, kind, secret, created_at) VALUES ($1, $2, $3, $4)")),
            get_secret: q(format!("SELECT kind, secret FROM {secrets} WHERE id = $1")),
            delete_secret: q(format!("DELETE FROM {secrets} WHERE id = $1")),
            secret_ids: q(format!("SELECT id FROM {secrets} WHERE kind = $1 AND created_at < $2 ORDER BY id")),
            all_secrets: format!("SELECT id, kind, secret, created_at FROM {secrets} ORDER BY created_at, id"),
            reseal_secret: q(format!("UPDATE {secrets} SET secret = $1 WHERE id = $2 AND secret = $3")),
            secret_key_ids: format!(
                "SELECT DISTINCT CASE WHEN secret LIKE 'v1:%' THEN substr(secret, 4, {}) ELSE '' END FROM {secrets}",
                super::keyring::SEALED_HEADER_LEN - 4
            ),
            count_events: format!("SELECT COUNT(*) FROM {events}"),
            count_secrets: format!("SELECT COUNT(*) FROM {secrets}"),
            purge_below: q(format!("DELETE FROM {events} WHERE position < $1")),
            purge_aggregate: q(format!(
                "DELETE FROM {events}
                 WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence <= $3 AND position < $4"
            )),
            put_checkpoint: match dialect {
                Dialect::Sqlite => {
                    format!("INSERT OR REPLACE INTO {checkpoints} ({checkpoint_columns}) VALUES ({checkpoint_values})")
                }
                Dialect::Postgres => format!(
                    "INSERT INTO {checkpoints} ({checkpoint_columns}) VALUES ({checkpoint_values})
                     ON CONFLICT (rule, position) DO UPDATE SET chain = EXCLUDED.chain, digest = EXCLUDED.digest,
                     created_at = EXCLUDED.created_at, data = EXCLUDED.data"
                ),
            },
            latest_checkpoint: q(format!(
                "SELECT {checkpoint_columns} FROM {checkpoints} WHERE rule = $1 ORDER BY position DESC LIMIT 1"
            )),
            prune_checkpoints: q(format!(
                "DELETE FROM {checkpoints} WHERE rule = $1 AND position < (
                     SELECT position FROM {checkpoints} WHERE rule = $1 ORDER BY position DESC LIMIT 1 OFFSET $2)"
            )),
        }
    }
}

/// The credentials and checkpoint stores of an engine: the same statements
/// (from [`Queries`]) on both, differing only in the pools they run on, so
/// they are written once here. `readers` and `writer` name the engine's pool
/// fields (PostgreSQL has one pool for both).
macro_rules! credential_and_checkpoint_backends {
    ($engine:ty, readers: $readers:ident, writer: $writer:ident) => {
        #[async_trait::async_trait]
        impl $crate::store::CredentialBackend for $engine {
            async fn put_secret(
                &self,
                id: uuid::Uuid,
                kind: &str,
                secret: &str,
                created_at: i64,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(&self.q.put_secret)
                    .bind(id.to_string())
                    .bind(kind)
                    .bind(secret)
                    .bind(created_at)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn get_secret(&self, id: uuid::Uuid) -> Result<Option<(String, String)>, $crate::store::StoreError> {
                Ok(sqlx::query_as(&self.q.get_secret).bind(id.to_string()).fetch_optional(&self.$readers).await?)
            }

            async fn reseal_secrets(&self, rows: &[$crate::store::Resealed]) -> Result<u64, $crate::store::StoreError> {
                let mut tx = self.$writer.begin().await?;
                let mut resealed = 0;
                for row in rows {
                    resealed += sqlx::query(&self.q.reseal_secret)
                        .bind(&row.sealed)
                        .bind(&row.id)
                        .bind(&row.stored)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                }
                tx.commit().await?;
                Ok(resealed)
            }

            async fn secret_key_ids(&self) -> Result<Vec<String>, $crate::store::StoreError> {
                Ok(sqlx::query_scalar(&self.q.secret_key_ids).fetch_all(&self.$readers).await?)
            }

            async fn secret_ids(
                &self,
                kind: &str,
                created_before: i64,
            ) -> Result<Vec<uuid::Uuid>, $crate::store::StoreError> {
                let ids: Vec<String> = sqlx::query_scalar(&self.q.secret_ids)
                    .bind(kind)
                    .bind(created_before)
                    .fetch_all(&self.$readers)
                    .await?;
                Ok(ids.iter().filter_map(|id| uuid::Uuid::parse_str(id).ok()).collect())
            }

            async fn delete_secret(&self, id: uuid::Uuid) -> Result<(), $crate::store::StoreError> {
                sqlx::query(&self.q.delete_secret).bind(id.to_string()).execute(&self.$writer).await?;
                Ok(())
            }

            async fn secrets(&self) -> Result<Vec<$crate::store::SecretRow>, $crate::store::StoreError> {
                let rows: Vec<(String, String, String, i64)> =
                    sqlx::query_as(&self.q.all_secrets).fetch_all(&self.$readers).await?;
                Ok(rows
                    .into_iter()
                    .map(|(id, kind, secret, created_at)| $crate::store::SecretRow { id, kind, secret, created_at })
                    .collect())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::CheckpointBackend for $engine {
            async fn put_checkpoint(
                &self,
                c: &$crate::store::StoredCheckpoint,
            ) -> Result<(), $crate::store::StoreError> {
                sqlx::query(&self.q.put_checkpoint)
                    .bind(c.position)
                    .bind(&c.rule)
                    .bind(&c.chain)
                    .bind(&c.digest)
                    .bind(c.created_at)
                    .bind(&c.data)
                    .execute(&self.$writer)
                    .await?;
                Ok(())
            }

            async fn prune_checkpoints(&self, rule: &str, keep: i64) -> Result<u64, $crate::store::StoreError> {
                let deleted = sqlx::query(&self.q.prune_checkpoints)
                    .bind(rule)
                    .bind((keep - 1).max(0))
                    .execute(&self.$writer)
                    .await?;
                Ok(deleted.rows_affected())
            }

            async fn latest_checkpoint(
                &self,
                rule: &str,
            ) -> Result<Option<$crate::store::StoredCheckpoint>, $crate::store::StoreError> {
                let row: Option<(i64, String, Option<String>, String, i64, Vec<u8>)> =
                    sqlx::query_as(&self.q.latest_checkpoint).bind(rule).fetch_optional(&self.$readers).await?;
                Ok(row.map(|(position, rule, chain, digest, created_at, data)| $crate::store::StoredCheckpoint {
                    position,
                    rule,
                    chain,
                    digest,
                    created_at,
                    data,
                }))
            }
        }
    };
}
pub(crate) use credential_and_checkpoint_backends;

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn numbered_parameters_are_written_once_for_both_engines() {
        let statement = "UPDATE t SET a = $1, b = '$x' WHERE k = $12 AND c = $1";
        assert_eq!(Dialect::Postgres.numbered(statement), statement);
        assert_eq!(Dialect::Sqlite.numbered(statement), "UPDATE t SET a = ?1, b = '$x' WHERE k = ?12 AND c = ?1");
    }
}
