//! A client always reads its own writes: a token is introspectable the moment
//! its creation is answered — 1,000 times in a row, on both stores.

use crate::common;

use common::Harness;

async fn issued_tokens_are_introspectable_at_once(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "reader").await;
    let mut failures = 0;
    for i in 0..1000 {
        let token = h.agent_token(&login, &format!("t{i}")).await;
        let answer = h.get("/api/V2/token", Some(&token)).await;
        if answer.status != 200 || answer.json()["user"] != "reader" {
            failures += 1;
        }
    }
    assert_eq!(failures, 0, "introspections that missed their own write");
    h
}

on_both_stores!(issued_tokens_are_introspectable_at_once);

/// A second server on the harness's store that never polls and hears no
/// NOTIFY (an hour-long poll, `listen_for_commits` off; SQLite has no NOTIFY
/// at all): whatever it learns of the other's writes, it learns by catching
/// up on a miss.
async fn deaf_second_server(h: &Harness) -> authledger::server::Server {
    let mut options = h.store.server_options();
    options.ledger.poll = std::time::Duration::from_secs(3600);
    options.ledger.listen_for_commits = false;
    authledger::server::Server::start(options, std::sync::Arc::new(authledger::clock::SystemClock), "127.0.0.1:0")
        .await
        .expect("the second server starts")
}

async fn a_server_catches_up_before_refusing_a_token_or_user_it_does_not_know(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "reader").await;
    let other = deaf_second_server(&h).await;
    let other_base = format!("http://{}", other.addr);
    let head_checks_before = other.ledger.head_check.queries();
    for i in 0..20 {
        let token = h.agent_token(&login, &format!("m{i}")).await;
        let seen = h.send(h.http.get(format!("{other_base}/api/V2/token")).header("Authorization", &token)).await;
        assert_eq!(seen.status, 200, "made on one server, refused by the other: {}", seen.text);
    }
    assert!(other.ledger.head_check.queries() > head_checks_before, "the misses were answered by catching up");
    // A user made on the first server is found by an Admin's read on the other
    // (the Admin's token is known there already: the 404 is read again after catching up).
    let known = h.send(h.http.get(format!("{other_base}/api/V2/me")).header("Authorization", &admin)).await;
    assert_eq!(known.status, 200, "{}", known.text);
    h.user_with_password(&admin, "newcomer").await;
    let found = h
        .send(
            h.http
                .get(format!("{other_base}/admin/user/newcomer"))
                .header("Authorization", &admin)
                .header("Accept", "application/json"),
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.json()["user"], "newcomer");
    // A write answers its position; a read on the other server carrying it sees the write.
    let renamed = h.put("/api/V2/me", Some(&login), serde_json::json!({"display": "Renamed"})).await;
    assert_eq!(renamed.status, 204, "{}", renamed.text);
    let position = renamed.header("x-authledger-position").expect("the write's position");
    let me = h
        .send(
            h.http
                .get(format!("{other_base}/api/V2/me"))
                .header("Authorization", &login)
                .header("x-authledger-position", &position),
        )
        .await;
    assert_eq!(me.json()["display"], "Renamed", "{}", me.text);
    // A read writes nothing and answers no position.
    assert_eq!(me.header("x-authledger-position"), None);
    // Tokens in a body or a path: an invitation opened, and a host joined, on the other server.
    let invited = h.post("/api/V2/admin/invites", Some(&admin), serde_json::json!({"user": "invitee"})).await;
    assert_eq!(invited.status, 200, "{}", invited.text);
    let invitation = invited.json()["token"].as_str().expect("an invitation token").to_owned();
    let opened =
        h.send(h.http.get(format!("{other_base}/web/newuser/{invitation}")).header("Accept", "application/json")).await;
    assert_eq!(opened.status, 200, "an invitation made on one server opens on the other: {}", opened.text);
    // One opened on the first server is completed on the other.
    let invited = h.post("/api/V2/admin/invites", Some(&admin), serde_json::json!({"user": "completer"})).await;
    let invitation = invited.json()["token"].as_str().expect("an invitation token").to_owned();
    let totp = h.open_invitation(&invitation).await;
    let body = serde_json::json!({
        "invite_token": invitation,
        "pass": common::USER_PASSWORD,
        "second_factor_token": h.code(&totp),
    });
    let completed = h.send(h.http.post(format!("{other_base}/api/V2/invites/complete")).json(&body)).await;
    assert_eq!(completed.status, 200, "an invitation opened on one server completes on the other: {}", completed.text);
    let issued =
        h.post("/api/V2/admin/provisiontokens", Some(&admin), serde_json::json!({"roles": ["node"], "ttl": 900})).await;
    assert_eq!(issued.status, 200, "{}", issued.text);
    let provisioning_token = issued.json()["tokens"][0]["token"].as_str().expect("a provisioning token").to_owned();
    let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).expect("a key");
    let body = serde_json::json!({
        "token": provisioning_token,
        "host_id": format!("web-1.{}", common::TEST_CLUSTER),
        "public_key": key.public_key().to_openssh().expect("OpenSSH"),
    });
    let joined = h.send(h.http.post(format!("{other_base}/api/V2/hosts/join")).json(&body)).await;
    assert_eq!(joined.status, 200, "a provisioning token made on one server works on the other: {}", joined.text);
    // An unknown token is still refused, after a bounded number of head queries.
    let before = other.ledger.head_check.queries();
    let started = std::time::Instant::now();
    let refusals = futures::future::join_all((0..200).map(|i| {
        h.send(h.http.get(format!("{other_base}/api/V2/token")).header("Authorization", format!("nosuchtoken{i}")))
    }))
    .await;
    assert!(refusals.iter().all(|r| r.status == 401), "unknown tokens are refused");
    let queries = other.ledger.head_check.queries() - before;
    let allowed = started.elapsed().as_millis() as u64 / 5 + 2;
    assert!(queries <= allowed, "{queries} head queries for 200 misses in {:?}", started.elapsed());
    other.stop().await.expect("stops");
    h
}

on_both_stores!(a_server_catches_up_before_refusing_a_token_or_user_it_does_not_know);

async fn a_read_answered_404_after_recording_itself_is_recorded_once(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "later").await;
    // Before "later" existed: the as-of read is recorded (an auditor's read is an event), then answered 404.
    let answer = h.get("/api/V2/admin/asof?user=later&at=2001-01-01T00:00:00Z", Some(&admin)).await;
    assert_eq!(answer.status, 404, "{}", answer.text);
    assert!(answer.header("x-authledger-position").is_some(), "the recorded read answers its position");
    // Not served a second time after catching up (which would record it twice).
    assert_eq!(h.store.payloads("StateAsOfRead").await.len(), 1);
    h
}

on_both_stores!(a_read_answered_404_after_recording_itself_is_recorded_once);
