//! Wrong passwords are throttled per account (recorded, exact under races)
//! and per client address: a growing wait after five (twenty for an address),
//! capped at fifteen minutes, during which no password is checked — on both
//! stores, through the login and password-change endpoints.

use crate::common;

use std::collections::BTreeSet;
use std::sync::Arc;

use authledger::clock::{Clock, ManualClock};
use common::{Harness, TEST_EPOCH, TestStore, USER_PASSWORD};
use serde_json::{Value, json};

const CAP_MS: i64 = 15 * 60 * 1000;

async fn manual(store: TestStore) -> Harness {
    let clock = ManualClock::new(TEST_EPOCH);
    let shared: Arc<dyn Clock> = clock.clone();
    let mut h = Harness::start_with(store, shared, |_| {}).await;
    h.manual = Some(clock);
    h
}

async fn attempt(h: &Harness, user: &str, password: &str) -> common::Answer {
    h.post("/localaccount/login", None, json!({"user": user, "pwd": password})).await
}

fn throttled_message(until: i64) -> String {
    format!("10000 Authentication failed: too many wrong passwords; the next attempt is possible at {until} (epoch ms)")
}

/// The `PasswordRejected` events of the log (one user per test).
async fn rejections(h: &Harness) -> Vec<Value> {
    h.store.payloads("PasswordRejected").await
}

async fn wrong_passwords_make_an_account_wait_up_to_the_cap(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "alice").await;
    for _ in 0..4 {
        attempt(&h, "alice", "wrong").await.assert_error(401, "10050 Password / username mismatch: alice");
    }
    assert_eq!(attempt(&h, "alice", USER_PASSWORD).await.status, 200, "four wrong passwords cost nothing");
    for _ in 0..5 {
        attempt(&h, "alice", "wrong").await.assert_error(401, "10050 Password / username mismatch: alice");
    }
    // The fifth in a row: no password is checked for a second — not even the right one.
    let until = h.now() + 1000;
    attempt(&h, "alice", USER_PASSWORD).await.assert_error(401, &throttled_message(until));
    attempt(&h, "alice", "wrong").await.assert_error(401, &throttled_message(until));
    let reset = json!({"user": "alice", "pwdold": USER_PASSWORD, "pwdnew": "another fine passphrase 99"});
    h.post("/localaccount/reset", None, reset).await.assert_error(401, &throttled_message(until));
    assert_eq!(rejections(&h).await.len(), 9, "refused attempts check and record nothing");
    h.advance(1000);
    assert_eq!(attempt(&h, "alice", USER_PASSWORD).await.status, 200, "the wait is over; a login clears the count");

    // The wait doubles with each failure and stops at fifteen minutes.
    let mut waits = Vec::new();
    for _ in 0..16 {
        attempt(&h, "alice", "wrong").await;
        let rejected = rejections(&h).await;
        let last = &rejected[rejected.len() - 1];
        let wait = last["throttled_until"].as_i64().map_or(0, |until| until - h.now());
        waits.push(wait);
        h.advance(wait);
    }
    assert_eq!(&waits[..4], &[0, 0, 0, 0]);
    assert_eq!(&waits[4..8], &[1000, 2000, 4000, 8000]);
    assert!(waits.iter().all(|w| *w <= CAP_MS));
    assert_eq!(&waits[14..], &[CAP_MS, CAP_MS], "capped");
    // The admin page shows it; the person gets in once the cap has passed.
    let page = h.page("/admin/user/alice", Some(&format!("kbase_session={admin}"))).await;
    assert!(page.text.contains("16 in a row"), "{}", page.text);
    assert_eq!(attempt(&h, "alice", USER_PASSWORD).await.status, 200);
    h.finish().await;
}

async fn racing_wrong_passwords_are_each_counted(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "bob").await;
    let answers = futures::future::join_all((0..4).map(|_| attempt(&h, "bob", "wrong"))).await;
    assert!(answers.iter().all(|a| a.status == 401));
    let counts: BTreeSet<i64> = rejections(&h).await.iter().filter_map(|e| e["failures"].as_i64()).collect();
    assert_eq!(counts, BTreeSet::from([1, 2, 3, 4]), "each counted once, in order");
    h.finish().await;
}

async fn an_admin_clears_the_count_and_the_wait(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "carol").await;
    let alice = h.user_token(&admin, "alice").await;
    for _ in 0..6 {
        attempt(&h, "carol", "wrong").await;
    }
    assert_eq!(attempt(&h, "carol", USER_PASSWORD).await.status, 401);
    h.post("/admin/user/carol/unlock", Some(&alice), json!({})).await.assert_error(403, "20000 Unauthorized");
    let cleared = h.post("/admin/user/carol/unlock", Some(&admin), json!({})).await;
    assert_eq!(cleared.status, 204, "{}", cleared.text);
    assert_eq!(attempt(&h, "carol", USER_PASSWORD).await.status, 200);
    let history = h.get("/api/V2/admin/audit?user=carol&limit=1000", Some(&admin)).await.json();
    let cleared: Vec<&Value> = history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event_type"] == "LoginThrottleCleared")
        .collect();
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0]["actor"], json!("admin"));
    h.finish().await;
}

async fn one_address_spraying_many_accounts_waits(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "dave").await;
    // Twenty wrong passwords over twenty accounts (none of them real): none is throttled on its own.
    for n in 0..20 {
        attempt(&h, &format!("nobody{n}"), "wrong")
            .await
            .assert_error(401, &format!("10050 Password / username mismatch: nobody{n}"));
    }
    // The address is: even a real account's right password waits.
    attempt(&h, "dave", USER_PASSWORD).await.assert_error(401, &throttled_message(h.now() + 1000));
    h.advance(1000);
    assert_eq!(attempt(&h, "dave", USER_PASSWORD).await.status, 200);
    h.finish().await;
}

/// Once the next failure would throttle, parallel guesses cannot slip past
/// it: one is checked (and counted), the others wait; and a name that is no
/// account waits exactly as an account does (the throttle tells nothing).
async fn parallel_guesses_at_the_threshold_get_one_check(store: TestStore) {
    let h = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "erin").await;
    for _ in 0..4 {
        attempt(&h, "erin", "wrong").await;
    }
    let answers = futures::future::join_all((0..6).map(|_| attempt(&h, "erin", "wrong"))).await;
    let checked = answers.iter().filter(|a| a.json()["error"]["appcode"] == json!(10050)).count();
    assert_eq!(checked, 1, "one guess checked: {:?}", answers.iter().map(|a| a.text.clone()).collect::<Vec<_>>());
    assert!(answers.iter().all(|a| a.status == 401));
    assert_eq!(rejections(&h).await.len(), 5, "only the checked one is counted");
    // A name that is no account: the same answers, at the same counts.
    for _ in 0..5 {
        attempt(&h, "ghost", "wrong").await.assert_error(401, "10050 Password / username mismatch: ghost");
    }
    attempt(&h, "ghost", "wrong").await.assert_error(401, &throttled_message(h.now() + 1000));
    h.finish().await;
}

crate::on_both_stores_from_store!(
    parallel_guesses_at_the_threshold_get_one_check,
    wrong_passwords_make_an_account_wait_up_to_the_cap,
    racing_wrong_passwords_are_each_counted,
    an_admin_clears_the_count_and_the_wait,
    one_address_spraying_many_accounts_waits,
);
