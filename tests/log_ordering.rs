//! The log's global position is consistent with commit order: writers racing
//! on many aggregates (and, on PostgreSQL, from two independent writers as two
//! processes would be) while a reader tails the log — the reader sees every
//! position exactly once, densely, and never an event before its predecessor.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use authledger::clock::SystemClock;
use authledger::store::{AppendError, EventLog, Store};
use common::TestStore;
use cqrs_es::persist::SerializedEvent;
use serde_json::json;

const WRITERS: usize = 8;
const COMMANDS_PER_WRITER: usize = 60;

fn command(aggregate: &str, first_sequence: usize, events: usize) -> Vec<SerializedEvent> {
    (0..events)
        .map(|i| {
            SerializedEvent::new(
                aggregate.to_owned(),
                first_sequence + i,
                "Probe".into(),
                "Probed".into(),
                "1.0".into(),
                json!({"Probed": {"n": first_sequence + i}}),
                json!({"actor": "test"}),
            )
        })
        .collect()
}

async fn open(store: &TestStore) -> EventLog {
    let options = store.options();
    Store::open(&options.store_url, options.store.clone(), Arc::new(SystemClock)).await.expect("the log opens").log
}

async fn race(store: TestStore, independent_writers: bool) {
    let logs: Vec<EventLog> = if independent_writers {
        let mut logs = Vec::new();
        for _ in 0..2 {
            logs.push(open(&store).await);
        }
        logs
    } else {
        vec![open(&store).await]
    };
    // Commands of one or two events, so a batch holds requests of different sizes.
    let total: i64 = (0..COMMANDS_PER_WRITER).map(|c| 1 + (c % 2) as i64).sum::<i64>() * WRITERS as i64;

    let reader_log = open(&store).await;
    let reader = tokio::spawn(async move {
        let mut seen = 0i64;
        let mut newest: HashMap<String, i64> = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while seen < total {
            assert!(tokio::time::Instant::now() < deadline, "the reader stalled at position {seen}");
            let rows = reader_log.read_after(seen, 97).await.expect("read");
            for row in rows {
                assert_eq!(row.position, seen + 1, "the reader skipped or reordered a position");
                seen = row.position;
                let previous = newest.insert(row.aggregate_id.clone(), row.sequence).unwrap_or(0);
                assert_eq!(row.sequence, previous + 1, "aggregate {} out of order", row.aggregate_id);
            }
            tokio::task::yield_now().await;
        }
        reader_log.close().await;
        seen
    });

    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let log = logs[w % logs.len()].clone();
        writers.push(tokio::spawn(async move {
            let aggregate = format!("probe-{w}");
            let mut sequence = 1;
            for c in 0..COMMANDS_PER_WRITER {
                let events = 1 + c % 2;
                log.append(command(&aggregate, sequence, events)).await.expect("append");
                sequence += events;
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    assert_eq!(reader.await.expect("reader"), total);
    let head = logs[0].head().await.expect("head");
    assert_eq!(head, total, "positions are dense from 1");
    for log in logs {
        log.close().await;
    }
    store.cleanup().await;
}

async fn conflicting_appends_never_both_win(store: TestStore) {
    let log = open(&store).await;
    log.append(command("contested", 1, 1)).await.expect("first event");
    for round in 0..20 {
        let sequence = round + 2;
        let (a, b) =
            tokio::join!(log.append(command("contested", sequence, 1)), log.append(command("contested", sequence, 1)));
        let wins = [&a, &b].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: exactly one append of sequence {sequence} wins");
        assert!([a, b].into_iter().any(|r| matches!(r, Err(AppendError::Conflict))));
    }
    log.close().await;
    store.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_positions_follow_commit_order() {
    race(TestStore::sqlite(), false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_two_writers_on_one_file_follow_commit_order() {
    race(TestStore::sqlite(), true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_positions_follow_commit_order() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    race(store, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_independent_writers_follow_commit_order() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    race(store, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conflicting_appends_never_both_win() {
    conflicting_appends_never_both_win(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conflicting_appends_never_both_win() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    conflicting_appends_never_both_win(store).await;
}
