//! Read-your-writes across servers sharing one log. Within one server a
//! command is answered only once the projections hold it; across servers a
//! client may write through one and read through another, so:
//!
//! - every write a request makes is remembered ([`recording_writes`]), and its
//!   position is handed to the client (the API's `X-Authledger-Position`);
//! - a read carrying such a position waits until this server holds it
//!   ([`super::ledger::Ledger::reach`]);
//! - a read that finds nothing (an unknown token, user or setting) first
//!   catches up with the log's head as of now ([`super::ledger::Ledger::catch_up`]):
//!   one cheap query of the head, shared by every miss waiting for it and at
//!   most one per [`HEAD_CHECK_INTERVAL`], so a flood of unknown tokens costs
//!   the database a bounded rate of queries, not one each.

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::store::{EventLog, StoreError};

/// The least time between two queries of the log's head by one server.
pub const HEAD_CHECK_INTERVAL: Duration = Duration::from_millis(5);
/// How long a query of the head may take before the misses waiting for it
/// are answered from what the server holds.
pub const HEAD_QUERY_TIMEOUT: Duration = Duration::from_secs(2);

tokio::task_local! {
    /// The newest position a request's commands committed.
    static WRITTEN: Cell<Option<i64>>;
}

/// Runs `work` (a request) and answers what it returned with the newest
/// position its commands committed, if it committed any.
pub async fn recording_writes<F: Future>(work: F) -> (F::Output, Option<i64>) {
    WRITTEN
        .scope(Cell::new(None), async {
            let output = work.await;
            (output, WRITTEN.with(Cell::get))
        })
        .await
}

/// Notes a commit at `position` for the request under way (if any).
pub(crate) fn note_written(position: i64) {
    let _ = WRITTEN.try_with(|written| written.set(Some(written.get().map_or(position, |p| p.max(position)))));
}

/// The log's head, queried at most once per interval and shared by every
/// caller that asked before the query started.
pub struct HeadCheck {
    /// When the newest query started, and its answer (an error is shared too,
    /// so a slow or absent database costs each waiter one wait, not one each).
    last: Mutex<Option<(Instant, Result<i64, String>)>>,
    interval: Duration,
    queries: AtomicU64,
}

impl Default for HeadCheck {
    fn default() -> Self {
        Self { last: Mutex::new(None), interval: HEAD_CHECK_INTERVAL, queries: AtomicU64::new(0) }
    }
}

impl HeadCheck {
    /// The head of `log` as read by a query that started no earlier than
    /// `asked`: so it counts every commit made anywhere before `asked`.
    /// Callers queue; the first runs the query (after the interval since the
    /// previous one), the others take its answer.
    pub async fn head_since(&self, asked: Instant, log: &EventLog) -> Result<i64, StoreError> {
        let mut last = self.last.lock().await;
        if let Some((started, answer)) = &*last {
            if *started >= asked {
                return answer.clone().map_err(StoreError::Failed);
            }
            tokio::time::sleep_until(*started + self.interval).await;
        }
        let started = Instant::now();
        self.queries.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(crate::telemetry::HEAD_CHECKS).increment(1);
        let answer = match tokio::time::timeout(HEAD_QUERY_TIMEOUT, log.head()).await {
            Ok(Ok(head)) => Ok(head),
            Ok(Err(error)) => Err(error.to_string()),
            Err(_) => Err(format!("the log's head did not come within {HEAD_QUERY_TIMEOUT:?}")),
        };
        *last = Some((started, answer.clone()));
        answer.map_err(StoreError::Failed)
    }

    /// How many queries of the head this server has made.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::clock::SystemClock;
    use crate::store::{Store, StoreOptions};

    /// A fresh SQLite store (and the directory that holds it).
    async fn sqlite_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("dir");
        let url = format!("sqlite://{}", dir.path().join("events.db").display());
        let store = Store::open(&url, StoreOptions::default(), Arc::new(SystemClock)).await.expect("store");
        (dir, store)
    }

    #[tokio::test]
    async fn a_request_learns_the_newest_position_its_commands_committed() {
        let ((), written) = recording_writes(async {
            note_written(7);
            note_written(5);
        })
        .await;
        assert_eq!(written, Some(7));
        let ((), none) = recording_writes(async {}).await;
        assert_eq!(none, None);
        // Outside a request nothing is kept, and nothing fails.
        note_written(3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_misses_share_one_query_of_the_head_and_queries_are_spaced() {
        let (_dir, store) = sqlite_store().await;
        let check = Arc::new(HeadCheck::default());
        let asked = Instant::now();
        let misses: Vec<_> = (0..50)
            .map(|_| {
                let (check, log) = (check.clone(), store.log.clone());
                tokio::spawn(async move { check.head_since(asked, &log).await })
            })
            .collect();
        for miss in misses {
            assert_eq!(miss.await.expect("joined").expect("head"), 0);
        }
        // One query served all fifty: it started after they asked, so none needed another.
        assert_eq!(check.queries(), 1);
        let first = check.last.lock().await.as_ref().expect("a query ran").0;
        let later = Instant::now();
        check.head_since(later, &store.log).await.expect("head");
        let second = check.last.lock().await.as_ref().expect("a query ran").0;
        assert!(second >= first + HEAD_CHECK_INTERVAL, "queries closer than the interval");
        assert_eq!(check.queries(), 2);
        store.log.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_query_of_the_head_is_shared_too() {
        let (_dir, store) = sqlite_store().await;
        store.log.close().await;
        let check = Arc::new(HeadCheck::default());
        let asked = Instant::now();
        let misses: Vec<_> = (0..20)
            .map(|_| {
                let (check, log) = (check.clone(), store.log.clone());
                tokio::spawn(async move { check.head_since(asked, &log).await })
            })
            .collect();
        for miss in misses {
            assert!(miss.await.expect("joined").is_err(), "a closed log has no head");
        }
        // One failed query answered all twenty: a dead database is not asked once per miss.
        assert_eq!(check.queries(), 1);
    }
}
