//! cqrs-es's `PersistedEventRepository` over our log, so aggregates load and
//! commit through cqrs-es while positions, metadata and recorded times are
//! ours. The position a commit received is handed back to the command bus
//! through a task-local (the commit runs inside the bus's call).
//!
//! Aggregates whose streams keep growing (a user's: every login, every
//! reserved password check) are loaded from a snapshot kept in memory and
//! the events after it, so a command costs the same on a long stream as on
//! a short one (and a guesser who lengthens a victim's stream cannot slow it
//! down). The log stays the only truth: a snapshot is the fold of events
//! read back from the log (each load folds what it read on top of the
//! snapshot it started from), never the state a command computed — cqrs-es
//! 0.5's own snapshots apply a command's events twice (once in the event
//! sink, once more when it snapshots), so its snapshot payloads are never
//! asked for. Events other servers appended are read on top, and a missing
//! snapshot (evicted, a restart) means a full load.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use cqrs_es::Aggregate;
use cqrs_es::persist::{
    EventUpcaster, PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use serde_json::Value;

use super::{AppendError, EventLog, StoreError};

tokio::task_local! {
    /// The position of the last event committed by the command running in this task.
    pub(crate) static COMMITTED: Cell<Option<i64>>;
}

/// The most snapshots kept in memory; past it, the least recently used go.
pub const MAX_SNAPSHOTS: usize = 4_096;

/// Snapshots by (aggregate type, id): the state's JSON, its sequence, and
/// when it was last used.
type Snapshots = HashMap<(String, String), (String, usize, u64)>;

/// The repository cqrs-es uses for every aggregate type.
#[derive(Clone)]
pub struct LogRepository {
    log: EventLog,
    snapshots: Arc<Mutex<(Snapshots, u64)>>,
    /// The aggregate types loaded from snapshots.
    snapshotted: &'static [&'static str],
    /// The events' upcasters, for folding read events into a snapshot.
    upcasters: Arc<Vec<Box<dyn EventUpcaster>>>,
    /// The log's forget count the snapshots were kept under (see `get_snapshot`).
    forgets: Arc<std::sync::atomic::AtomicU64>,
}

impl LogRepository {
    /// A repository that keeps no snapshot.
    pub fn new(log: EventLog) -> Self {
        Self::with_snapshots(log, &[], Vec::new())
    }

    /// A repository that loads the aggregate types `snapshotted` from
    /// snapshots it folds itself, reading events through `upcasters`.
    pub fn with_snapshots(
        log: EventLog,
        snapshotted: &'static [&'static str],
        upcasters: Vec<Box<dyn EventUpcaster>>,
    ) -> Self {
        Self { log, snapshots: Arc::default(), snapshotted, upcasters: Arc::new(upcasters), forgets: Arc::default() }
    }

    /// How many snapshots are kept.
    pub fn snapshots(&self) -> usize {
        self.snapshots.lock().map(|s| s.0.len()).unwrap_or(0)
    }

    /// The snapshot of `key` if it stands at `sequence` (0: the empty state).
    fn snapshot_at<A: Aggregate>(&self, key: &(String, String), sequence: usize) -> Option<A> {
        if sequence == 0 {
            return Some(A::default());
        }
        let guard = self.snapshots.lock().ok()?;
        let (state, at, _) = guard.0.get(key)?;
        (*at == sequence).then(|| serde_json::from_str(state).ok()).flatten()
    }

    /// Folds `events` (read after `after`) on top of the snapshot at `after`
    /// and keeps the result; nothing when there is no such snapshot or an
    /// event does not read.
    fn fold_snapshot<A: Aggregate>(&self, aggregate_id: &str, after: usize, events: &[SerializedEvent]) {
        let Some(last) = events.last().map(|e| e.sequence) else {
            return;
        };
        let key = (A::TYPE.to_owned(), aggregate_id.to_owned());
        let Some(mut state) = self.snapshot_at::<A>(&key, after) else {
            return;
        };
        for event in events {
            let mut event = event.clone();
            for upcaster in self.upcasters.iter() {
                if upcaster.can_upcast(&event.event_type, &event.event_version) {
                    event = upcaster.upcast(event);
                }
            }
            let Ok(event) = serde_json::from_value::<A::Event>(event.payload) else {
                return;
            };
            state.apply(event);
        }
        let Ok(text) = serde_json::to_string(&state) else {
            return;
        };
        self.keep_snapshot(key, text, last);
    }

    fn keep_snapshot(&self, key: (String, String), state: String, sequence: usize) {
        let Ok(mut guard) = self.snapshots.lock() else {
            return;
        };
        let (snapshots, clock) = &mut *guard;
        *clock += 1;
        if snapshots.len() >= MAX_SNAPSHOTS && !snapshots.contains_key(&key) {
            // An eighth at a time, the least recently used first.
            let mut used: Vec<u64> = snapshots.values().map(|s| s.2).collect();
            let cut = used.len() / 8;
            used.select_nth_unstable(cut);
            let before = used[cut];
            snapshots.retain(|_, s| s.2 > before);
        }
        snapshots.insert(key, (state, sequence, *clock));
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
        let events = self.log.load(A::TYPE, aggregate_id, last_sequence as i64).await.map_err(store_error)?;
        if self.snapshotted.contains(&A::TYPE) {
            self.fold_snapshot::<A>(aggregate_id, last_sequence, &events);
        }
        Ok(events)
    }

    /// The snapshot kept in memory, if any (see the module documentation).
    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        let Ok(mut guard) = self.snapshots.lock() else {
            return Ok(None);
        };
        let (snapshots, clock) = &mut *guard;
        // A forget renames the person's streams under the snapshots: none is trusted after one.
        let forgets = self.log.forgets_seen();
        if self.forgets.swap(forgets, std::sync::atomic::Ordering::SeqCst) != forgets {
            snapshots.clear();
        }
        *clock += 1;
        let Some(kept) = snapshots.get_mut(&(A::TYPE.to_owned(), aggregate_id.to_owned())) else {
            return Ok(None);
        };
        kept.2 = *clock;
        let Ok(aggregate) = serde_json::from_str(&kept.0) else {
            return Ok(None);
        };
        Ok(Some(SerializedSnapshot {
            aggregate_id: aggregate_id.to_owned(),
            aggregate,
            current_sequence: kept.1,
            current_snapshot: 1,
        }))
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        if events.is_empty() {
            return Ok(());
        }
        match self.log.append(events.to_vec()).await {
            Ok(position) => {
                // cqrs-es's snapshot payload (never asked for: see the module documentation) is ignored.
                let _ = snapshot_update;
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
