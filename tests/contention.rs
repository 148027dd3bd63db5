//! One account, many concurrent requests: a busy account costs waiting, never
//! a server error, and no token exists that nobody was handed. Over real HTTP
//! on both stores.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use authledger::clock::SystemClock;
use authledger::domain::canonical::Canonicalization;
use authledger::projections::{Projections, Runner, SharedProjections};
use authledger::server::Server;
use common::{Answer, Harness, TestStore, USER_PASSWORD};
use futures::stream::{self, StreamExt};
use serde_json::json;

/// How many requests are in flight at once (one client and the server share
/// this process's file descriptors).
const IN_FLIGHT: usize = 100;

/// Sends `count` requests made by `request`, [`IN_FLIGHT`] at a time, and returns the answers.
async fn at_once<F, Fut>(count: usize, request: F) -> Vec<Answer>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Answer>,
{
    stream::iter((0..count).map(request)).buffer_unordered(IN_FLIGHT).collect().await
}

fn server_errors(answers: &[Answer]) -> Vec<String> {
    answers.iter().filter(|a| a.status.is_server_error()).map(|a| format!("{} {}", a.status, a.text)).collect()
}

async fn parallel_profile_updates_of_one_user_all_land(harness: Harness) -> Harness {
    let (_, admin) = harness.administrators().await;
    let user = harness.user_token(&admin, "busy").await;
    let answers = at_once(400, |i| {
        let (harness, user) = (&harness, &user);
        async move { harness.put("/api/V2/me", Some(user), json!({"display": format!("Busy {i}")})).await }
    })
    .await;
    assert_eq!(server_errors(&answers), Vec::<String>::new(), "no update may fail on the server's side");
    assert!(answers.iter().all(|a| a.status == 204), "every update lands");
    let me = harness.get("/api/V2/me", Some(&user)).await.json();
    let display = me["display"].as_str().expect("a string field").to_owned();
    assert!(display.starts_with("Busy "), "the display name is one of the updates: {display}");
    harness
}
on_both_stores!(parallel_profile_updates_of_one_user_all_land);

/// (Password checks wait in a bounded queue: this server's holds every login,
/// so what is tested is the account under contention, not the queue's bound.)
async fn parallel_logins_of_one_account_hand_out_every_token_that_exists(store: TestStore) {
    let harness = Harness::start_with(store, Arc::new(SystemClock), |o| {
        o.ledger.password_work.queue = 200;
        o.ledger.password_work.wait = Duration::from_secs(60);
    })
    .await;
    let (_, admin) = harness.administrators().await;
    harness.user_with_password(&admin, "popular").await;
    let answers = at_once(100, |_| {
        let harness = &harness;
        async move { harness.post("/localaccount/login", None, json!({"user": "popular", "pwd": USER_PASSWORD})).await }
    })
    .await;
    assert_eq!(server_errors(&answers), Vec::<String>::new(), "no login may fail on the server's side");
    let handed_out: std::collections::BTreeSet<String> = answers
        .iter()
        .filter(|a| a.status == 200)
        .map(|a| a.json()["token"].as_str().expect("a string field").to_owned())
        .collect();
    assert_eq!(handed_out.len(), 100, "every login gets its own token");
    let listed = harness.get("/admin/user/popular/tokens", Some(&admin)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let existing = listed.json()["tokens"].as_array().expect("a token list").len();
    assert_eq!(existing, handed_out.len(), "the tokens that exist are exactly the ones handed out");
    for token in &handed_out {
        assert_eq!(harness.get("/api/V2/token", Some(token)).await.status, 200);
    }
    harness.finish().await;
}
crate::on_both_stores_from_store!(parallel_logins_of_one_account_hand_out_every_token_that_exists);

async fn parallel_role_changes_keep_the_live_state_equal_to_a_rebuild(harness: Harness) -> Harness {
    let (_, admin) = harness.administrators().await;
    harness.user_with_password(&admin, "juggled").await;
    let sets = [json!(["DevToken"]), json!(["ServToken"]), json!(["DevToken", "ServToken"]), json!([])];
    let answers = at_once(1_000, |i| {
        let (harness, admin, roles) = (&harness, &admin, sets[i % sets.len()].clone());
        async move { harness.post("/admin/user/juggled/roles", Some(admin), json!({ "roles": roles })).await }
    })
    .await;
    assert_eq!(server_errors(&answers), Vec::<String>::new(), "no role change may fail on the server's side");
    assert!(answers.iter().all(|a| a.status == 204), "every role change lands");
    let live = harness.get("/api/V2/admin/digest", Some(&admin)).await.json();
    // A rebuild of every projection from the log, up to the same position.
    let projections = Arc::new(SharedProjections::new(Projections::new(Canonicalization::default())));
    Runner::new(harness.server.ledger.log.clone(), projections.clone()).catch_up().await.expect("the log folds");
    let rebuilt = projections.read().checkpoint();
    assert_eq!(json!(rebuilt.position), live["position"], "the rebuild reached the live position");
    assert_eq!(json!(rebuilt.digest()), live["digest"], "the live projections equal a rebuild");
    harness
}
on_both_stores!(parallel_role_changes_keep_the_live_state_equal_to_a_rebuild);

/// A second server on the same store: its own process state (projections,
/// per-stream turns), so the two race on the log's optimistic lock as two
/// processes would.
async fn second_server(harness: &Harness, tune: impl FnOnce(&mut authledger::server::ServerOptions)) -> Server {
    let mut options = harness.store.server_options();
    tune(&mut options);
    Server::start(options, Arc::new(SystemClock), "127.0.0.1:0").await.expect("the second server starts")
}

/// Sends `count` profile updates with distinct display names, alternating between `bases`.
async fn updates_through(harness: &Harness, bases: &[String], token: &str, count: usize) -> Vec<Answer> {
    at_once(count, |i| {
        let url = format!("{}/api/V2/me", bases[i % bases.len()]);
        let request = harness
            .http
            .put(url)
            .header("Authorization", token)
            .header("Accept", "application/json")
            .json(&json!({"display": format!("Racer {i}")}));
        harness.send(request)
    })
    .await
}

async fn two_servers_racing_on_one_account_retry_and_all_land(harness: Harness) -> Harness {
    let (_, admin) = harness.administrators().await;
    let user = harness.user_token(&admin, "raced").await;
    let other = second_server(&harness, |_| {}).await;
    let bases = [harness.base.clone(), format!("http://{}", other.addr)];
    let answers = updates_through(&harness, &bases, &user, 200).await;
    other.stop().await.expect("the second server stops");
    assert_eq!(server_errors(&answers), Vec::<String>::new(), "conflicts between servers are retried");
    assert!(answers.iter().all(|a| a.status == 204), "every update lands");
    harness
}
on_both_stores!(two_servers_racing_on_one_account_retry_and_all_land);

async fn a_conflict_past_the_deadline_is_a_503_that_wrote_nothing(harness: Harness) -> Harness {
    let (_, admin) = harness.administrators().await;
    let user = harness.user_token(&admin, "hurried").await;
    // Both servers give up at the first lost race.
    let harness = harness.restart_with(|o| o.ledger.command_deadline = Duration::ZERO).await;
    let other = second_server(&harness, |o| o.ledger.command_deadline = Duration::ZERO).await;
    let bases = [harness.base.clone(), format!("http://{}", other.addr)];
    let answers = updates_through(&harness, &bases, &user, 300).await;
    other.stop().await.expect("the second server stops");
    let landed = answers.iter().filter(|a| a.status == 204).count();
    let busy: Vec<&Answer> = answers.iter().filter(|a| a.status == 503).collect();
    assert_eq!(landed + busy.len(), answers.len(), "every answer is 204 or 503: {:?}", server_errors(&answers));
    for answer in &busy {
        assert_eq!(answer.header("retry-after").as_deref(), Some("1"), "{}", answer.text);
        let error = &answer.json()["error"];
        assert_eq!(error["httpcode"], json!(503));
        assert!(error["message"].as_str().expect("a message").contains("busy"), "{error}");
    }
    eprintln!("{landed} updates landed, {} were answered 503", busy.len());
    // A 503 wrote nothing: the log holds exactly one display-name change per 204.
    let history = harness.get("/api/V2/admin/audit?user=hurried&limit=1000", Some(&admin)).await;
    assert_eq!(history.status, 200, "{}", history.text);
    let changes = history.json()["events"]
        .as_array()
        .expect("an event list")
        .iter()
        .filter(|e| e["event_type"] == "DisplayNameChanged")
        .count();
    assert_eq!(changes, landed, "one change per update that landed, none for a 503");
    harness
}
on_both_stores!(a_conflict_past_the_deadline_is_a_503_that_wrote_nothing);
