//! cqrs-es's `PersistedEventRepository` over our log, so aggregates load and
//! commit through cqrs-es while positions, metadata and recorded times are
//! ours. The position a commit received is handed back to the command bus
//! through a task-local (the commit runs inside the bus's call).

use std::cell::Cell;

use cqrs_es::Aggregate;
use cqrs_es::persist::{PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot};
use serde_json::Value;

use super::{AppendError, EventLog, StoreError};

tokio::task_local! {
    /// The position of the last event committed by the command running in this task.
    pub(crate) static COMMITTED: Cell<Option<i64>>;
}

/// The repository cqrs-es uses for every aggregate type.
#[derive(Clone)]
pub struct LogRepository {
    log: EventLog,
}

impl LogRepository {
    pub fn new(log: EventLog) -> Self {
        Self { log }
    }
}

fn store_error(error: StoreError) -> PersistenceError {
    match error {
        StoreError::Database(sqlx::Error::Decode(e)) => PersistenceError::DeserializationError(e),
        StoreError::Database(e @ (sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed)) => {
            PersistenceError::ConnectionError(Box::new(e))
        }
        other => PersistenceError::UnknownError(Box::new(other)),
    }
}

async fn stream(events: Vec<SerializedEvent>) -> ReplayStream {
    let (mut feed, stream) = ReplayStream::new(events.len().clamp(1, 1024));
    tokio::spawn(async move {
        for event in events {
            if feed.push(Ok(event)).await.is_err() {
                break;
            }
        }
    });
    stream
}

impl PersistedEventRepository for LogRepository {
    async fn get_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.log.load(A::TYPE, aggregate_id, 0).await.map_err(store_error)
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        self.log.load(A::TYPE, aggregate_id, last_sequence as i64).await.map_err(store_error)
    }

    /// Aggregates are always rebuilt from their events; no snapshots are kept.
    async fn get_snapshot<A: Aggregate>(
        &self,
        _aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        Ok(None)
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if snapshot_update.is_some() {
            return Err(PersistenceError::UnknownError("this log keeps no aggregate snapshots".into()));
        }
        if events.is_empty() {
            return Ok(());
        }
        match self.log.append(events.to_vec()).await {
            Ok(position) => {
                let _ = COMMITTED.try_with(|c| c.set(Some(position)));
                Ok(())
            }
            Err(AppendError::Conflict) => Err(PersistenceError::OptimisticLockError),
            Err(AppendError::Store(e)) => Err(store_error(e)),
        }
    }

    async fn stream_events<A: Aggregate>(&self, aggregate_id: &str) -> Result<ReplayStream, PersistenceError> {
        let events = self.log.load(A::TYPE, aggregate_id, 0).await.map_err(store_error)?;
        Ok(stream(events).await)
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        let events = self.log.backend().load_type(A::TYPE).await.map_err(store_error)?;
        Ok(stream(events).await)
    }
}
