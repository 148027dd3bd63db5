//! The in-flight store of provider sign-ins (`store::flows`) on both engines:
//! single use, expiry, sweeping, a user's flows dropped; every bound keeps the
//! newest flows and a full store drops the oldest of the fullest network, so a
//! flood degrades only the flooders — exactly, under concurrency — and a
//! browser from outside a flood still completes a provider sign-in.

use crate::common;

use std::sync::Arc;

use authledger::store::flows::{Flow, FlowLimits, FlowStep, Flows};
use common::TestStore;
use serde_json::json;

fn flow(step: FlowStep, user: Option<&str>, expires_at: i64) -> Flow {
    Flow {
        step,
        user: user.map(str::to_owned),
        client: Some("192.0.2.1".into()),
        prefix: Some("192.0.2.0/24".into()),
        provider: Some("OIDC".into()),
        data: r#"{"nonce":"n"}"#.into(),
        created_at: 1_000,
        expires_at,
    }
}

/// A sign-in started from `client` (its network the first three octets) at `at`.
fn from(client: &str, at: i64) -> Flow {
    let network = client.rsplit_once('.').map(|(n, _)| format!("{n}.0/24")).unwrap_or_default();
    Flow {
        client: Some(client.into()),
        prefix: Some(network),
        created_at: at,
        ..flow(FlowStep::LoginStarted, None, 90_000)
    }
}

fn limits(all: i64, per_client: i64, per_prefix: i64, per_user: i64) -> FlowLimits {
    FlowLimits { all, per_client, per_prefix, per_user }
}

async fn open(store: &TestStore, limits: FlowLimits) -> Arc<Flows> {
    Arc::new(Flows::open(&store.url(), &store.options().store).await.expect("the flows store").with_limits(limits))
}

async fn kept(flows: &Flows, token: &str) -> bool {
    flows.peek(token, 1_500).await.expect("read").is_some()
}

async fn flows_are_single_use_expiring_and_bounded(store: TestStore) {
    let flows = open(&store, limits(3, 100, 1_000, 10)).await;
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
    let made_room = flows.put("hash-f", &flow(FlowStep::LoginStarted, None, 9_000), 2_500).await.expect("kept");
    assert_eq!((made_room.expired, made_room.fullest), (1, 0), "room from the sweep");
    assert_eq!(flows.count().await.expect("a count"), 4, "three sign-ins and a link");
    // Full of live flows: the oldest of the fullest network makes room; the new one is never refused.
    let made_room = flows.put("hash-g", &flow(FlowStep::LoginStarted, None, 9_000), 2_500).await.expect("kept");
    assert_eq!(made_room.fullest, 1);
    assert!(flows.peek("hash-g", 2_500).await.expect("read").is_some());
    assert_eq!(flows.count().await.expect("a count"), 4);
    // A logout drops the user's links.
    assert_eq!(flows.drop_user("alice").await.expect("dropped"), 1);
    assert_eq!(flows.peek("hash-c", 2_500).await.expect("read"), None);
    assert_eq!(flows.sweep(10_000).await.expect("swept"), 3);
    assert_eq!(flows.count().await.expect("a count"), 0);
    flows.close().await;
    store.cleanup().await;
}

/// Every bound keeps the newest: a client's, a network's, a user's links;
/// and a full store takes room from the fullest network, never from a
/// newcomer outside it.
async fn each_bound_keeps_the_newest_and_a_full_store_spares_the_few(store: TestStore) {
    let flows = open(&store, limits(6, 2, 4, 3)).await;
    for (n, token) in ["a1", "a2", "a3"].iter().enumerate() {
        flows.put(token, &from("192.0.2.1", 1_000 + n as i64), 1_000).await.expect("kept");
    }
    assert!(
        !kept(&flows, "a1").await && kept(&flows, "a2").await && kept(&flows, "a3").await,
        "the client's newest two"
    );
    for (n, token) in ["b1", "b2", "c1", "c2"].iter().enumerate() {
        let client = if token.starts_with('b') { "192.0.2.2" } else { "192.0.2.3" };
        flows.put(token, &from(client, 1_100 + n as i64), 1_000).await.expect("kept");
    }
    // The network 192.0.2.0/24 keeps its newest four of six.
    assert!(!kept(&flows, "a2").await && !kept(&flows, "a3").await, "the network's oldest went");
    assert!(kept(&flows, "b1").await && kept(&flows, "c2").await);
    // Two other networks fill the store to six; a newcomer from a third still gets in,
    // and the room comes from the fullest network.
    flows.put("d1", &from("198.51.100.1", 1_200), 1_000).await.expect("kept");
    flows.put("e1", &from("203.0.113.1", 1_201), 1_000).await.expect("kept");
    let made_room = flows.put("f1", &from("233.252.0.1", 1_202), 1_000).await.expect("the newcomer is kept");
    assert_eq!(made_room.fullest, 1);
    assert!(!kept(&flows, "b1").await, "the fullest network's oldest made room");
    for token in ["d1", "e1", "f1", "b2", "c1", "c2"] {
        assert!(kept(&flows, token).await, "{token} is kept");
    }
    // Links have their own bound, per user, and never touch sign-ins.
    for n in 0..4 {
        let link = Flow { created_at: 1_300 + n, ..flow(FlowStep::LinkStarted, Some("alice"), 90_000) };
        flows.put(&format!("l{n}"), &link, 1_000).await.expect("a link");
    }
    assert!(!kept(&flows, "l0").await && kept(&flows, "l3").await, "alice's newest three links");
    assert!(kept(&flows, "f1").await);
    flows.close().await;
    store.cleanup().await;
}

/// Starts at once from one client, for one user, and from many clients: no
/// bound is passed (each is counted and inserted in one step).
async fn concurrent_starts_cannot_pass_a_bound(store: TestStore) {
    let flows = open(&store, limits(150, 100, 1_000, 10)).await;
    let put_all = |tokens: Vec<(String, Flow)>| {
        let flows = flows.clone();
        async move {
            let tasks: Vec<_> = tokens
                .into_iter()
                .map(|(token, flow)| {
                    let flows = flows.clone();
                    tokio::spawn(async move { flows.put(&token, &flow, 1_000).await.map(|_| ()) })
                })
                .collect();
            for task in tasks {
                task.await.expect("a task").expect("kept");
            }
        }
    };
    put_all((0..200).map(|n| (format!("one{n}"), from("192.0.2.9", 1_000))).collect()).await;
    assert_eq!(store_rows(&store, "client = '192.0.2.9'").await, 100, "one client's share, exactly");
    let link = flow(FlowStep::LinkStarted, Some("alice"), 90_000);
    put_all((0..50).map(|n| (format!("link{n}"), link.clone())).collect()).await;
    assert_eq!(store_rows(&store, "user_name = 'alice'").await, 10, "a user's links, exactly");
    put_all((0..300).map(|n| (format!("many{n}"), from(&format!("10.{}.{}.1", n / 250, n % 250), 2_000))).collect())
        .await;
    assert_eq!(store_rows(&store, "user_name IS NULL").await, 150, "the whole store, exactly");
    flows.close().await;
    store.cleanup().await;
}

/// Rows of the flows table matching `filter`.
async fn store_rows(store: &TestStore, filter: &str) -> i64 {
    match store {
        TestStore::Sqlite { dir } => {
            let url = format!("sqlite://{}", dir.path().join("events.flows.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.expect("the flows file");
            let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM flows WHERE {filter}"))
                .fetch_one(&pool)
                .await
                .expect("count");
            pool.close().await;
            n
        }
        TestStore::Postgres { url, prefix, .. } => {
            let pool = sqlx::PgPool::connect(url).await.expect("connect");
            let n = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {prefix}flows WHERE {filter}"))
                .fetch_one(&pool)
                .await
                .expect("count");
            pool.close().await;
            n
        }
    }
}

/// The issue's flood, scaled tenfold down with the store (a store of 1,000,
/// 10 per address): 2,000 provider sign-ins started over 250 addresses in 250
/// networks fill it twice over; a browser from outside the flood then
/// completes a provider sign-in, and the flood never held more than the store.
async fn a_browser_outside_a_flood_completes_a_provider_login(store: TestStore) {
    let Some((h, peer)) = common::Harness::with_provider_and_limits(store, limits(1_000, 10, 100, 10)).await else {
        return;
    };
    let (_, admin) = h.administrators().await;
    let enabled = h.post("/admin/config/provider", Some(&admin), json!({"provider": "OIDC", "enabled": true})).await;
    assert_eq!(enabled.status, 204, "{}", enabled.text);
    let http = common::no_redirects();
    let statuses: Vec<u16> = futures::stream::iter(0..2_000)
        .map(|n| {
            let (http, url) = (http.clone(), h.url("/login/start"));
            async move {
                let from = format!("10.{}.{}.7", n % 250, n % 250);
                let answer = http
                    .post(url)
                    .header("X-Forwarded-For", from)
                    .form(&[("provider", "OIDC")])
                    .send()
                    .await
                    .expect("answered");
                answer.status().as_u16()
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 303), "every start is answered, none refused");
    assert!(store_rows(&h.store, "user_name IS NULL").await <= 1_000, "the store holds at most its bound");
    // A new browser from outside the flood signs in (and signs up) through the provider.
    let (done, cookies) = h.through_provider(&peer, "/login/start", &[("provider", "OIDC")], "outsider", None).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert!(done.header("location").is_some_and(|l| l.contains("/login/choice")), "{:?}", done.header("location"));
    let id = authledger::domain::IdentityId::of("OIDC", "outsider").to_string();
    let body = json!({"id": id, "user": "outsider", "display": "Outsider", "email": "out@example.org"});
    let request = common::no_redirects()
        .post(h.url("/login/create"))
        .header("Content-Type", "application/json")
        .header("Cookie", cookies)
        .body(body.to_string());
    let created = h.send(request).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let token = created.json()["token"]["token"].as_str().expect("a token").to_owned();
    assert_eq!(h.get("/api/V2/token", Some(&token)).await.json()["user"], json!("outsider"));
    h.finish().await;
}

use futures::StreamExt;

crate::on_both_stores_from_store!(
    flows_are_single_use_expiring_and_bounded,
    each_bound_keeps_the_newest_and_a_full_store_spares_the_few,
    concurrent_starts_cannot_pass_a_bound,
    a_browser_outside_a_flood_completes_a_provider_login,
);
