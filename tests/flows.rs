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
        client: Some("192.0.2.1".into()),
        provider: Some("OIDC".into()),
        data: r#"{"nonce":"n"}"#.into(),
        created_at: 1_000,
        expires_at,
    }
}

async fn flows_are_single_use_expiring_and_bounded(store: TestStore) {
    let flows = Flows::open(&store.url(), &store.options().store).await.expect("the flows store").with_limits(3, 100);
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
    flows.put("hash-b", &flow(FlowStep::LoginStarted, None, 2_000), 1_000).await.expect("kept");
    assert_eq!(flows.peek("hash-b", 2_001).await.expect("read"), None);
    flows.put("hash-c", &flow(FlowStep::LinkChoice, Some("alice"), 9_000), 1_000).await.expect("kept");
    flows.put("hash-d", &flow(FlowStep::LoginChoice, None, 9_000), 1_000).await.expect("kept");
    flows.put("hash-e", &flow(FlowStep::Failed, None, 9_000), 1_000).await.expect("kept");
    // Full (three sign-ins kept; a link does not count): a new flow sweeps the expired one and fits.
    flows.put("hash-f", &flow(FlowStep::LoginStarted, None, 9_000), 2_500).await.expect("room after the sweep");
    assert_eq!(flows.count().await.expect("a count"), 4, "three sign-ins and a link");
    // Full of live flows: refused, nothing written.
    let refused = flows.put("hash-g", &flow(FlowStep::LoginStarted, None, 9_000), 2_500).await;
    assert!(matches!(refused, Err(FlowError::Full)), "{refused:?}");
    assert_eq!(flows.peek("hash-g", 2_500).await.expect("read"), None);
    // A logout drops the user's links.
    assert_eq!(flows.drop_user("alice").await.expect("dropped"), 1);
    assert_eq!(flows.peek("hash-c", 2_500).await.expect("read"), None);
    assert!(flows.peek("hash-d", 2_500).await.expect("read").is_some());
    assert_eq!(flows.sweep(10_000).await.expect("swept"), 3);
    assert_eq!(flows.count().await.expect("a count"), 0);
    flows.close().await;
    store.cleanup().await;
}

/// One client cannot take the store from everyone else, and a flood of
/// sign-ins cannot stop signed-in users' links.
async fn one_client_gets_its_share_and_links_their_own(store: TestStore) {
    let flows = Flows::open(&store.url(), &store.options().store).await.expect("the flows store").with_limits(4, 2);
    let from = |client: &str, user: Option<&str>| Flow {
        client: Some(client.into()),
        ..flow(if user.is_some() { FlowStep::LinkStarted } else { FlowStep::LoginStarted }, user, 9_000)
    };
    flows.put("a1", &from("192.0.2.1", None), 1_000).await.expect("kept");
    flows.put("a2", &from("192.0.2.1", None), 1_000).await.expect("kept");
    let refused = flows.put("a3", &from("192.0.2.1", None), 1_000).await;
    assert!(matches!(refused, Err(FlowError::Full)), "the client's share: {refused:?}");
    flows.put("b1", &from("192.0.2.2", None), 1_000).await.expect("another client's");
    flows.put("b2", &from("192.0.2.2", None), 1_000).await.expect("another client's");
    let refused = flows.put("c1", &from("192.0.2.3", None), 1_000).await;
    assert!(matches!(refused, Err(FlowError::Full)), "the whole store: {refused:?}");
    // Links are not sign-ins: they have their own bound, per user.
    for n in 0..authledger::store::flows::MAX_FLOWS_PER_USER {
        flows.put(&format!("l{n}"), &from("192.0.2.1", Some("alice")), 1_000).await.expect("a link");
    }
    let refused = flows.put("l-last", &from("192.0.2.1", Some("alice")), 1_000).await;
    assert!(matches!(refused, Err(FlowError::Full)), "alice's links: {refused:?}");
    flows.put("m1", &from("192.0.2.1", Some("bob")), 1_000).await.expect("bob's link");
    flows.close().await;
    store.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_gets_its_share_and_links_their_own_sqlite() {
    one_client_gets_its_share_and_links_their_own(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_client_gets_its_share_and_links_their_own_postgres() {
    if let Some(store) = TestStore::postgres().await {
        one_client_gets_its_share_and_links_their_own(store).await;
    }
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
