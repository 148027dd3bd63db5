//! The integrity chain over real stores: an untouched log verifies; a row
//! altered, deleted or inserted behind the server's back is found at its
//! position; a log from before the chain is chained on upgrade.

use crate::common;

use authledger::store::chain::ChainBreak;
use common::Harness;

async fn verify(h: &Harness) -> Result<i64, ChainBreak> {
    let verified = h.server.ledger.log.verify_chain(|_| {}).await.expect("the log is readable");
    verified.map(|v| v.checked())
}

async fn tampering_is_found_at_its_position(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "alice").await;
    h.agent_token(&login, "script").await;
    let head = h.server.ledger.log.head().await.expect("a head");
    assert!(head > 10, "a log worth checking: {head}");
    assert_eq!(verify(&h).await, Ok(head));

    // A row appended behind the writer's back (its chain cannot be right without the previous one).
    h.store
        .execute(&format!(
            "INSERT INTO {{events}} (position, aggregate_type, aggregate_id, sequence, event_type, event_version,
                                    payload, metadata, recorded_at, chain)
             VALUES ({}, 'User', 'mallory', 1, 'LoginRecorded', '1.0', '{{}}', '{{}}', 0, '00')",
            head + 1
        ))
        .await;
    assert_eq!(verify(&h).await, Err(ChainBreak::Mismatch { position: head + 1 }));

    h.store.execute("UPDATE {events} SET recorded_at = recorded_at + 1 WHERE position = 7").await;
    assert_eq!(verify(&h).await, Err(ChainBreak::Mismatch { position: 7 }));

    h.store.execute("DELETE FROM {events} WHERE position = 4").await;
    assert_eq!(verify(&h).await, Err(ChainBreak::Missing { position: 4, found: 5 }));
    h
}
on_both_stores!(tampering_is_found_at_its_position);

async fn a_log_from_before_the_chain_is_chained_on_upgrade(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    h.user_token(&admin, "alice").await;
    let head = h.server.ledger.log.head().await.expect("a head");
    // Make it a schema-1 log: no chain column.
    h.store.execute("ALTER TABLE {events} DROP COLUMN chain; UPDATE {schema} SET version = 1").await;
    let h = h.restart().await;
    assert_eq!(verify(&h).await, Ok(head));
    // New events chain on from the backfilled ones.
    h.login("alice", common::USER_PASSWORD).await;
    assert!(verify(&h).await.is_ok_and(|n| n > head));
    h
}
on_both_stores!(a_log_from_before_the_chain_is_chained_on_upgrade);
