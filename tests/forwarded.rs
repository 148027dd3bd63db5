//! Which forwarded address is believed: `X-Forwarded-For` only from a
//! trusted proxy (`trusted_proxies`, loopback by default), never with
//! `ignoreip`, and the nearest untrusted hop of the chain — one address for
//! the log, the token record and the throttles, on both stores.

use crate::common;

use std::sync::Arc;

use authledger::clock::{Clock, ManualClock};
use common::{Harness, TEST_EPOCH, TestStore, USER_PASSWORD};
use serde_json::{Value, json};

async fn manual(store: TestStore, trusted: Option<Vec<&str>>) -> Harness {
    let clock = ManualClock::new(TEST_EPOCH);
    let shared: Arc<dyn Clock> = clock.clone();
    let mut h = Harness::start_with(store, shared, |o| {
        if let Some(trusted) = trusted {
            o.trusted_proxies = trusted.iter().map(|t| t.parse().expect("a network")).collect();
        }
    })
    .await;
    h.manual = Some(clock);
    h
}

async fn login_from(h: &Harness, user: &str, password: &str, forwarded: &str) -> common::Answer {
    let request = h
        .http
        .post(h.url("/localaccount/login"))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("X-Forwarded-For", forwarded)
        .body(json!({"user": user, "pwd": password}).to_string());
    h.send(request).await
}

/// The client address the newest `LoginRecorded` of `user` keeps.
async fn recorded_address(h: &Harness, admin: &str, user: &str) -> Value {
    let trail = h.get(&format!("/api/V2/admin/audit?user={user}&limit=1000"), Some(admin)).await.json();
    let logins: Vec<Value> = trail["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event_type"] == json!("LoginRecorded"))
        .cloned()
        .collect();
    logins.last().map(|l| l["client_addr"].clone()).unwrap_or(Value::Null)
}

async fn a_trusted_proxy_names_the_nearest_untrusted_hop(store: TestStore) {
    let h = manual(store, None).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "alice").await;
    // The client wrote 1.2.3.4; the proxy (on loopback) appended what it saw.
    let answer = login_from(&h, "alice", USER_PASSWORD, "1.2.3.4, 198.51.100.9").await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(recorded_address(&h, &admin, "alice").await, json!("198.51.100.9"));
    let token = answer.json()["token"].as_str().expect("a token").to_owned();
    let listed = h.get("/tokens", Some(&token)).await.json();
    assert_eq!(listed["current"]["ip"], json!("198.51.100.9"), "{listed}");
    // Each forwarded address is its own client for the throttle: 25 guesses from 25 addresses wait for none.
    for n in 0..25 {
        login_from(&h, &format!("nobody{n}"), "wrong", &format!("198.51.100.{n}"))
            .await
            .assert_error(401, &format!("10050 Password / username mismatch: nobody{n}"));
    }
    h.finish().await;
}

async fn ignoreip_counts_the_connection_whatever_it_forwards(store: TestStore) {
    let h = manual(store, None).await;
    let (_, admin) = h.administrators().await;
    let set = h.post("/admin/config", Some(&admin), json!({"ignoreip": true})).await;
    assert_eq!(set.status, 204, "{}", set.text);
    h.user_with_password(&admin, "bob").await;
    assert_eq!(login_from(&h, "bob", USER_PASSWORD, "198.51.100.1").await.status, 200);
    assert_eq!(recorded_address(&h, &admin, "bob").await, json!("127.0.0.1"));
    // Forty guesses, each claiming a new address: one address, throttled from the twentieth on.
    let mut throttled = 0;
    for n in 0..40 {
        let answer = login_from(&h, &format!("nobody{n}"), "wrong", &format!("203.0.113.{n}")).await;
        assert_eq!(answer.status, 401);
        if answer.text.contains("too many wrong passwords") {
            throttled += 1;
        }
    }
    assert_eq!(throttled, 20, "the connection's address is throttled after twenty");
    h.finish().await;
}

async fn an_untrusted_peer_is_counted_by_its_own_address(store: TestStore) {
    // Nothing trusted (a server facing clients directly): the header is the client's to write, and ignored.
    let h = manual(store, Some(vec![])).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "carol").await;
    assert_eq!(login_from(&h, "carol", USER_PASSWORD, "198.51.100.1").await.status, 200);
    assert_eq!(recorded_address(&h, &admin, "carol").await, json!("127.0.0.1"));
    h.finish().await;
}

crate::on_both_stores_from_store!(
    a_trusted_proxy_names_the_nearest_untrusted_hop,
    ignoreip_counts_the_connection_whatever_it_forwards,
    an_untrusted_peer_is_counted_by_its_own_address,
);
