//! The one command path: `CommandBus::execute::<A>(id, command, metadata)`
//! loads aggregate `A` through cqrs-es over our log, handles the command and
//! commits its events in one append, returning the position committed (so the
//! caller can wait for the projections to reach it).
//!
//! Contention never becomes an error a caller sees as a fault:
//! - inside one process, commands on the same aggregate instance wait their
//!   turn on a per-stream lock before they reach the optimistic lock, so a busy
//!   account costs waiting, not conflicts;
//! - across processes (replicas on one PostgreSQL log) a lost optimistic race
//!   is retried on fresh state with jittered exponential backoff until the
//!   command's deadline, and only then answered `AppError::Busy` (a 503).

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateError, CqrsFramework};
use rand::Rng;
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;

use super::error::AppError;
use crate::domain::{Addressed, upcasters};
use crate::store::{COMMITTED, EventLog, EventMetadata, LogRepository};
use crate::telemetry;

type Framework<A> = CqrsFramework<A, PersistedEventStore<LogRepository, A>>;

/// Called with the position of every commit (the projection runner's wake-up).
pub type OnCommit = Arc<dyn Fn(i64) + Send + Sync>;

/// The aggregate types loaded from snapshots (their streams keep growing).
const SNAPSHOTTED: &[&str] = &["User"];

/// How long a command may wait for its turn and retry lost races by default.
pub const COMMAND_DEADLINE: Duration = Duration::from_secs(10);

/// The write side of one log: every aggregate type through one generic path.
pub struct CommandBus {
    repository: LogRepository,
    /// One cqrs-es framework per aggregate type, made on first use.
    frameworks: RwLock<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    streams: StreamLocks,
    on_commit: OnCommit,
    deadline: Duration,
}

impl CommandBus {
    /// A bus over `log`; `on_commit` hears the position of every commit.
    pub fn new(log: &EventLog, on_commit: OnCommit) -> Self {
        Self::with_deadline(log, on_commit, COMMAND_DEADLINE)
    }

    /// A bus whose commands give up (`AppError::Busy`) after `deadline` of waiting and retrying.
    pub fn with_deadline(log: &EventLog, on_commit: OnCommit, deadline: Duration) -> Self {
        Self {
            repository: LogRepository::with_snapshots(log.clone(), SNAPSHOTTED, upcasters()),
            frameworks: RwLock::default(),
            streams: StreamLocks::default(),
            on_commit,
            deadline,
        }
    }

    /// `A`'s framework, made once and kept (by the aggregate's type).
    fn framework<A: Addressed>(&self) -> Arc<Framework<A>> {
        let key = TypeId::of::<A>();
        let found = self.frameworks.read().unwrap_or_else(PoisonError::into_inner).get(&key).cloned();
        let any = match found {
            Some(any) => any,
            None => {
                let mut frameworks = self.frameworks.write().unwrap_or_else(PoisonError::into_inner);
                let made = frameworks.entry(key).or_insert_with(|| Arc::new(self.new_framework::<A>()));
                made.clone()
            }
        };
        // The map is keyed by the framework's own aggregate type, so this always downcasts.
        any.downcast::<Framework<A>>().unwrap_or_else(|_| Arc::new(self.new_framework::<A>()))
    }

    fn new_framework<A: Addressed>(&self) -> Framework<A> {
        // A user's stream grows with every login and password check: it loads
        // from a snapshot the repository folds (see `store::repository`); the
        // snapshot size is never reached, so cqrs-es makes none of its own.
        let store = match SNAPSHOTTED.contains(&A::TYPE) {
            true => PersistedEventStore::new_snapshot_store(self.repository.clone(), usize::MAX),
            false => PersistedEventStore::new_event_store(self.repository.clone()),
        };
        CqrsFramework::new(store.with_upcasters(upcasters()), Vec::new(), ())
    }

    /// Runs `command` on the instance of `A` named `id` and tells `on_commit`
    /// the position committed. `Ok(None)` when the command decided that nothing
    /// needed recording. A rule's refusal is `Rejected`; contention past the
    /// deadline is `Busy`; a failing log is `Store`.
    pub async fn execute<A>(
        &self,
        id: &A::Id,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, AppError>
    where
        A: Addressed,
        A::Command: Clone,
    {
        let deadline = Instant::now() + self.deadline;
        let stream = A::stream_id(id);
        let busy = || AppError::Busy { aggregate: A::TYPE, retry_after: Duration::from_secs(1) };
        let Ok(_turn) = tokio::time::timeout_at(deadline, self.streams.turn(A::TYPE, &stream)).await else {
            return Err(busy());
        };
        let framework = self.framework::<A>();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let run = framework.execute_with_metadata(&stream, command.clone(), metadata.clone().into_map());
            let (result, position) = COMMITTED
                .scope(Cell::new(None), async {
                    let result = run.await;
                    (result, COMMITTED.with(Cell::get))
                })
                .await;
            match result {
                Ok(()) => {
                    if let Some(position) = position {
                        (self.on_commit)(position);
                    }
                    let outcome = if position.is_some() { "committed" } else { "unchanged" };
                    metrics::counter!(telemetry::COMMANDS, "aggregate" => A::TYPE, "outcome" => outcome).increment(1);
                    return Ok(position);
                }
                Err(AggregateError::AggregateConflict) => {
                    metrics::counter!(telemetry::CONFLICTS, "aggregate" => A::TYPE).increment(1);
                    // Another process wrote first: back off (jittered, growing) and try on fresh state.
                    let ceiling = 2u64 << attempt.min(6);
                    let pause = Duration::from_millis(rand::thread_rng().gen_range(1..=ceiling));
                    if Instant::now() + pause >= deadline {
                        tracing::warn!(
                            aggregate = A::TYPE,
                            attempts = attempt,
                            "a command stayed in conflict until its deadline"
                        );
                        metrics::counter!(telemetry::COMMANDS, "aggregate" => A::TYPE, "outcome" => "busy")
                            .increment(1);
                        return Err(busy());
                    }
                    tokio::time::sleep(pause).await;
                }
                Err(AggregateError::UserError(e)) => {
                    metrics::counter!(telemetry::COMMANDS, "aggregate" => A::TYPE, "outcome" => "rejected")
                        .increment(1);
                    return Err(AppError::Rejected(e));
                }
                Err(other) => {
                    metrics::counter!(telemetry::COMMANDS, "aggregate" => A::TYPE, "outcome" => "failed").increment(1);
                    return Err(AppError::Store(crate::store::StoreError::Failed(other.to_string())));
                }
            }
        }
    }
}

/// Per-stream turns: one command at a time per aggregate instance in this
/// process. An entry counts who holds or awaits its turn and goes with the last.
#[derive(Default)]
struct StreamLocks {
    streams: Mutex<HashMap<StreamKey, StreamTurns>>,
}

/// An aggregate instance: its type and stream id.
type StreamKey = (&'static str, String);

/// A stream's lock and how many hold or await it.
type StreamTurns = (Arc<tokio::sync::Mutex<()>>, usize);

/// A command's turn on one stream; the next waiter goes when it is dropped.
struct Turn<'a> {
    locks: &'a StreamLocks,
    key: (&'static str, String),
    guard: Option<OwnedMutexGuard<()>>,
}

impl StreamLocks {
    async fn turn(&self, aggregate: &'static str, stream: &str) -> Turn<'_> {
        let key = (aggregate, stream.to_owned());
        let lock = {
            let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = streams.entry(key.clone()).or_default();
            entry.1 += 1;
            entry.0.clone()
        };
        // Counted before waiting: a turn dropped while it waits (deadline, a
        // cancelled request) still gives its count back.
        let mut turn = Turn { locks: self, key, guard: None };
        turn.guard = Some(lock.lock_owned().await);
        turn
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut streams = self.locks.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = streams.get_mut(&self.key) {
            entry.1 -= 1;
            if entry.1 == 0 {
                streams.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A user loaded from its snapshot is the user its events make: the
    /// snapshot is folded from what was read, never from what a command
    /// computed (cqrs-es 0.5 applies a command's events twice when it
    /// snapshots itself) — checked with events whose fold is not idempotent.
    #[tokio::test]
    async fn a_user_from_its_snapshot_is_the_user_its_events_make() {
        use crate::domain::throttle::PasswordSource;
        use crate::domain::{User, UserCommand, UserName};
        use cqrs_es::EventStore;
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = crate::store::Store::open(&url, Default::default(), std::sync::Arc::new(crate::clock::SystemClock))
            .await
            .expect("a store");
        let bus = CommandBus::new(&store.log, Arc::new(|_| {}));
        let name = UserName::from_log("dora".into());
        let metadata = EventMetadata::actor("test");
        let create = UserCommand::Create {
            user: name.clone(),
            display: crate::domain::DisplayName::parse(Some("Dora")).expect("a name"),
            email: None,
            anon_id: uuid::Uuid::from_u128(1),
            created: 1,
            by: UserName::root(),
            password: None,
        };
        bus.execute::<User>(&name, create, &metadata).await.expect("created");
        let source = PasswordSource::Address("a".into());
        for at in 2..8 {
            let reserve = UserCommand::ReservePasswordCheck { source: source.clone(), at };
            bus.execute::<User>(&name, reserve, &metadata).await.expect("reserved");
            let release = UserCommand::ReleasePasswordCheck { source: source.clone(), at };
            bus.execute::<User>(&name, release, &metadata).await.expect("released");
        }
        assert!(bus.repository.snapshots() > 0, "loaded from a snapshot");
        let snapshotted =
            PersistedEventStore::<LogRepository, User>::new_snapshot_store(bus.repository.clone(), usize::MAX)
                .with_upcasters(upcasters());
        let full = PersistedEventStore::<LogRepository, User>::new_event_store(LogRepository::new(store.log.clone()))
            .with_upcasters(upcasters());
        let from_snapshot = snapshotted.load_aggregate("dora").await.expect("loaded").aggregate;
        let from_events = full.load_aggregate("dora").await.expect("loaded").aggregate;
        assert_eq!(
            serde_json::to_value(&from_snapshot).expect("JSON"),
            serde_json::to_value(&from_events).expect("JSON")
        );
        store.log.close().await;
    }

    // Virtual time (start_paused): a timeout fires only once nothing else can run,
    // so a turn that times out could not have been taken.
    #[tokio::test(start_paused = true)]
    async fn turns_on_one_stream_are_taken_one_at_a_time_and_leave_nothing_behind() {
        let locks = StreamLocks::default();
        let wait = Duration::from_secs(60);
        let first = locks.turn("User", "alice").await;
        assert!(tokio::time::timeout(wait, locks.turn("User", "alice")).await.is_err(), "alice's turn was taken twice");
        let other = tokio::time::timeout(wait, locks.turn("User", "bob")).await;
        assert!(other.is_ok(), "bob waited for alice");
        assert_eq!(locks.len(), 2);
        drop(first);
        let second = tokio::time::timeout(wait, locks.turn("User", "alice")).await;
        assert!(second.is_ok(), "alice's next turn never came");
        drop((second, other));
        assert_eq!(locks.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_turn_abandoned_while_waiting_leaves_nothing_behind() {
        let locks = StreamLocks::default();
        let held = locks.turn("User", "alice").await;
        let abandoned = tokio::time::timeout(Duration::from_secs(1), locks.turn("User", "alice")).await;
        assert!(abandoned.is_err());
        drop(held);
        assert_eq!(locks.len(), 0);
    }
}
