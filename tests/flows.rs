//! The in-flight store of provider sign-ins (`store::flows`) on both engines:
//! single use, expiry, sweeping, a user's flows dropped, and a bound that a
//! flood of unauthenticated starts cannot pass.

use crate::common;

use authledger::store::flows::{Flow, FlowError, FlowStep, Flows};
use common::TestStore;

fn flow(step: FlowStep, user: Option<&str>, expires_at: i64) -> Flow {
    Flow {
        step,
        user: user.map(str::to_owned),
        provider: Some("OIDC".into()),
        data: r#"{"nonce":"n"}"#.into(),
        created_at: 1_000,
        expires_at,
    }
}

async fn flows_are_single_use_expiring_and_bounded(store: TestStore) {
    let flows = Flows::open(&store.url(), &store.options().store).await.expect("the flows store").with_limit(3);
    let started = flow(FlowStep::LoginStarted, None, 2_000);
    flows.put("hash-a", &started, 1_000).await.expect("kept");
    // Sealed: the store holds neither the token nor the data in the clear.
    let raw = store.raw_flows().await;
    assert!(raw.contains("LOGINSTART"), "the store was read");
    assert!(!raw.contains(r#""nonce":"n""#) && !raw.contains("hash-a"), "neither the data nor the token in the clear");
    // Another token (a guessed or forged cookie) finds nothing.
    assert_eq!(flows.peek("hash-z", 1_500).await.expect("read"), None);
    assert_eq!(flows.peek("hash-a", 1_500).await.expect("read"), Some(started.clone()), "a peek leaves it");
    assert_eq!(flows.take("hash-a", 1_500).await.expect("read"), Some(started.clone()));
    assert_eq!(flows.take("hash-a", 1_500).await.expect("read"), None, "used once");
    // Expired: gone for take and peek, and swept.
    flows.put("hash-b", &flow(FlowStep::LinkStarted, Some("alice"), 2_000), 1_000).await.expect("kept");
    assert_eq!(flows.peek("hash-b", 2_001).await.expect("read"), None);
    flows.put("hash-c", &flow(FlowStep::LinkChoice, Some("alice"), 9_000), 1_000).await.expect("kept");
    flows.put("hash-d", &flow(FlowStep::LoginChoice, None, 9_000), 1_000).await.expect("kept");
    // Full (three kept): a new flow sweeps the expired one and fits.
    flows.put("hash-e", &flow(FlowStep::Failed, None, 9_000), 2_500).await.expect("room after the sweep");
    assert_eq!(flows.count().await.expect("a count"), 3);
    // Full of live flows: refused, nothing written.
    let refused = flows.put("hash-f", &flow(FlowStep::LoginStarted, None, 9_000), 2_500).await;
    assert!(matches!(refused, Err(FlowError::Full)), "{refused:?}");
    assert_eq!(flows.peek("hash-f", 2_500).await.expect("read"), None);
    // A logout drops the user's links.
    assert_eq!(flows.drop_user("alice").await.expect("dropped"), 1);
    assert_eq!(flows.peek("hash-c", 2_500).await.expect("read"), None);
    assert!(flows.peek("hash-d", 2_500).await.expect("read").is_some());
    assert_eq!(flows.sweep(10_000).await.expect("swept"), 2);
    assert_eq!(flows.count().await.expect("a count"), 0);
    flows.close().await;
    store.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_are_single_use_expiring_and_bounded_sqlite() {
    flows_are_single_use_expiring_and_bounded(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flows_are_single_use_expiring_and_bounded_postgres() {
    if let Some(store) = TestStore::postgres().await {
        flows_are_single_use_expiring_and_bounded(store).await;
    }
}
