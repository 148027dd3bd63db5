//! The witness keeps the newest signed head outside the database, and once
//! the log records that it is witnessed, a missing, unreadable or ahead-of-
//! the-log witness file is evidence: the server is not ready, refuses writes
//! (reads go on) and never writes over the file, until an operator accepts
//! what happened; the head an auditor is served is signed on demand. On both
//! stores (SQLite's file beside the log; PostgreSQL's configured one).

use crate::common;

use std::time::{Duration, Instant};

use authledger::app::witness::{Accepted, accept};
use authledger::store::witness::SignedHead;
use common::{Harness, TestStore};
use serde_json::json;

/// A server that has written its witness file (a head signed on demand) and
/// recorded `LogWitnessed`; stopped: its store and an admin's Login token.
async fn witnessed(store: TestStore) -> (TestStore, String) {
    let h = Harness::start(store).await;
    let (_, admin) = h.administrators().await;
    assert_eq!(h.get("/api/V2/admin/head", Some(&admin)).await.status, 200);
    assert!(h.store.witness_file().exists(), "the head is kept in the witness file");
    assert_eq!(h.store.payloads("LogWitnessed").await.len(), 1, "the log records that it is witnessed");
    let store = h.store.clone();
    h.server.stop().await.expect("stops");
    (store, admin)
}

/// Waits until `/readyz` answers `status`.
async fn until_ready_is(h: &Harness, status: u16) -> serde_json::Value {
    let since = Instant::now();
    loop {
        let ready = h.get("/readyz", None).await;
        if ready.status == status {
            return ready.json();
        }
        assert!(since.elapsed() < Duration::from_secs(10), "readyz stayed {}: {}", ready.status, ready.text);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a server refusing writes answers: readyz 503 naming why, a write 503
/// in the envelope with `Retry-After`, introspection as ever.
async fn refuses_writes(h: &Harness, admin: &str, why: &str) {
    let ready = until_ready_is(h, 503).await;
    assert!(ready["refused"].as_str().is_some_and(|r| r.contains(why)), "{ready}");
    let write = h.post("/api/V2/token", Some(admin), json!({"name": "refused"})).await;
    assert_eq!(write.status, 503, "{}", write.text);
    assert_eq!(write.header("retry-after").as_deref(), Some("60"));
    assert!(write.json()["error"]["message"].as_str().is_some_and(|m| m.contains("until an operator acts")));
    assert_eq!(h.get("/api/V2/token", Some(admin)).await.status, 200, "reads go on");
}

async fn a_missing_witness_file_is_evidence_until_an_operator_accepts(store: TestStore) {
    let (store, admin) = witnessed(store).await;
    std::fs::remove_file(store.witness_file()).expect("deleted");
    let h = Harness::start(store.clone()).await;
    refuses_writes(&h, &admin, "missing").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(!store.witness_file().exists(), "no new witness file is written over the evidence");
    let accepted = accept(&h.server.ledger, &h.server.witness, "the witness disk was replaced").await.expect("ok");
    assert!(matches!(accepted, Accepted::Reset { aside: None, head: Some(_), .. }), "{accepted:?}");
    until_ready_is(&h, 200).await;
    assert_eq!(h.post("/api/V2/token", Some(&admin), json!({"name": "after"})).await.status, 200);
    let reset = h.store.payloads("WitnessReset").await;
    assert_eq!(reset.len(), 1);
    assert!(reset[0]["found"].as_str().is_some_and(|f| f.contains("missing")), "{reset:?}");
    assert_eq!(reset[0]["reason"], json!("the witness disk was replaced"));
    h.finish().await;
}

async fn an_unreadable_witness_file_is_never_written_over(store: TestStore) {
    let (store, admin) = witnessed(store).await;
    std::fs::write(store.witness_file(), "not a signed head").expect("overwritten");
    let h = Harness::start(store.clone()).await;
    refuses_writes(&h, &admin, "not a signed head").await;
    let store = h.store.clone();
    h.server.stop().await.expect("stops");
    assert_eq!(
        std::fs::read_to_string(store.witness_file()).expect("kept"),
        "not a signed head",
        "kept, even at shutdown"
    );
    store.cleanup().await;
}

/// A log never witnessed starts its witness; an unreadable file it finds is set aside, not lost.
async fn a_new_log_starts_its_witness_and_sets_an_unreadable_file_aside(store: TestStore) {
    let file = store.witness_file();
    std::fs::write(&file, "left over").expect("written");
    let h = Harness::start(store).await;
    assert_eq!(h.get("/readyz", None).await.status, 200);
    let aside: Vec<_> = std::fs::read_dir(file.parent().expect("a directory"))
        .expect("listed")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".unreadable-"))
        .collect();
    assert_eq!(aside.len(), 1, "set aside");
    let (_, admin) = h.administrators().await;
    assert_eq!(h.get("/api/V2/admin/head", Some(&admin)).await.status, 200);
    assert!(SignedHead::read(&file).is_ok(), "a new witness file");
    h.finish().await;
}

/// The head an auditor is served is never behind the log this server serves.
async fn the_head_is_signed_on_demand_when_the_log_moved(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let first: SignedHead =
        serde_json::from_value(h.get("/api/V2/admin/head", Some(&admin)).await.json()["head"].clone()).expect("a head");
    for n in 0..5 {
        h.agent_token(&admin, &format!("t{n}")).await;
    }
    let served = h.get("/api/V2/admin/head", Some(&admin)).await.json();
    let head: SignedHead = serde_json::from_value(served["head"].clone()).expect("a head");
    assert!(head.position > first.position);
    assert_eq!(head.position, h.server.ledger.log.head().await.expect("the head"), "signed at the log's head");
    head.verify(served["public_key"].as_str()).expect("it verifies");
    h
}

crate::on_both_stores_from_store!(
    a_missing_witness_file_is_evidence_until_an_operator_accepts,
    an_unreadable_witness_file_is_never_written_over,
    a_new_log_starts_its_witness_and_sets_an_unreadable_file_aside,
);
on_both_stores!(the_head_is_signed_on_demand_when_the_log_moved);
