//! Sign-up invitations and TOTP second factors over HTTP, on both stores: the
//! whole flow (invite, open, complete with a code, session, logins), what
//! creates nothing (wrong code, weak password, reuse, expiry, malformed
//! identities), second-factor logins with replay protection, and the race-free
//! lockout under parallel wrong codes.

use crate::common;

use std::sync::Arc;

use authledger::clock::{Clock, ManualClock};
use common::{Harness, TEST_EPOCH, TestStore, USER_PASSWORD};
use serde_json::{Value, json};

async fn invite(h: &Harness, admin: &str, body: Value) -> Value {
    let answer = h.post("/api/V2/admin/invites", Some(admin), body).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

fn complete_body(token: &str, pass: &str, code: &str) -> Value {
    json!({"invite_token": token, "pass": pass, "second_factor_token": code})
}

/// A code of `totp` that is certainly wrong now.
fn wrong_code(h: &Harness, totp: &totp_rs::Totp) -> String {
    let right = h.code(totp);
    if right == "000000" { "111111".into() } else { "000000".into() }
}

async fn an_invitation_creates_the_account_and_its_session(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    // Non-admin login is off: the invitation is the admin's explicit grant.
    assert_eq!(h.post("/admin/config", Some(&admin), json!({"allowlogin": false})).await.status, 204);
    let issued = invite(
        &h,
        &admin,
        json!({"user": "carol", "logins": ["carol", "deploy"], "identities": ["github:carol@example.org"], "ttl": 600}),
    )
    .await;
    let token = issued["token"].as_str().expect("a string field").to_owned();
    assert_eq!(token.len(), 64);
    assert_eq!(issued["url"], json!(format!("{}/web/newuser/{token}", h.base)));
    assert!(issued["expires"].as_i64().expect("an expiry") - h.now() <= 600_000);
    assert!(!h.store.dump().await.contains(&token), "only the token's hash is stored");
    let listed = h.get("/api/V2/admin/invites", Some(&admin)).await.json();
    assert_eq!(listed["invites"][0]["user"], json!("carol"));
    assert_eq!(listed["invites"][0]["identities"], json!(["github:carol@example.org"]));

    let page = h.send(h.http.get(h.url(&format!("/web/newuser/{token}"))).header("Accept", "text/html")).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("<img src=\"data:image/png;base64,"), "{}", page.text);
    assert!(page.text.contains("name=\"invite_token\"") && page.text.contains("name=\"pass\""), "{}", page.text);
    assert!(page.text.contains("name=\"second_factor_token\""));
    let offers = h.server.ledger.credentials.ids_older_than("totp", i64::MAX).await.expect("secrets");
    let probed = h.send(h.http.head(h.url(&format!("/web/newuser/{token}")))).await;
    assert_eq!(probed.status, 200);
    let after = h.server.ledger.credentials.ids_older_than("totp", i64::MAX).await.expect("secrets");
    assert_eq!(after, offers, "a HEAD (a link checker) offers nothing");
    let totp = h.open_invitation(&token).await;
    assert_eq!(totp.account_name(), "carol");
    let answer = h.post("/api/V2/invites/complete", None, complete_body(&token, USER_PASSWORD, &h.code(&totp))).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["type"], json!("bearer"));
    assert_eq!(body["user"], json!("carol"));
    assert!(body["expires_in"].as_i64().unwrap_or_default() > 13 * 86_400, "a Login token's lifetime");
    let session = body["token"].as_str().expect("a string field").to_owned();
    let cookie = answer.header("set-cookie").expect("a session cookie");
    assert!(cookie.starts_with(&format!("kbase_session={session}")), "{cookie}");
    let me = h.get("/api/V2/me", Some(&session)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["user"], json!("carol"));

    let reused = h.post("/api/V2/invites/complete", None, complete_body(&token, USER_PASSWORD, &h.code(&totp))).await;
    reused.assert_error(401, "10020 Invalid token: unknown, used or expired invitation");
    h.get(&format!("/web/newuser/{token}"), None)
        .await
        .assert_error(401, "10020 Invalid token: unknown, used or expired invitation");
    assert_eq!(h.get("/api/V2/admin/invites", Some(&admin)).await.json()["invites"], json!([]));

    let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).expect("a key");
    let public_key = key.public_key().to_openssh().unwrap_or_default();
    let cert = h.post("/api/V2/certs/ssh", Some(&session), json!({"public_key": public_key, "ttl": 60})).await;
    assert_eq!(cert.status, 200, "{}", cert.text);
    assert_eq!(cert.json()["principals"], json!(["carol", "deploy"]));
    let record = h.get("/admin/user/carol", Some(&admin)).await.json();
    assert_eq!(record["logins"], json!(["carol", "deploy"]));
    assert_eq!(record["identities"], json!(["github:carol@example.org"]));
    assert_eq!(record["secondfactor"], json!(true));
    assert_eq!(record["invitation"], issued["id"]);
    let history = h.get("/api/V2/admin/audit?user=carol", Some(&admin)).await.json();
    let types: Vec<&str> =
        history["events"].as_array().into_iter().flatten().filter_map(|e| e["event_type"].as_str()).collect();
    for expected in [
        "InviteIssued",
        "InviteSecondFactorOffered",
        "InviteRedeemed",
        "UserCreated",
        "InvitationAccepted",
        "IdentitiesLinked",
        "SecondFactorEnrolled",
    ] {
        assert!(types.contains(&expected), "{expected} in {types:?}");
    }
    h
}
on_both_stores!(an_invitation_creates_the_account_and_its_session);

async fn failed_completions_create_nothing(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let token = invite(&h, &admin, json!({"user": "dan"})).await["token"].as_str().expect("a string field").to_owned();
    let totp = h.open_invitation(&token).await;
    let before = h.store.main_log_len().await;
    h.post("/api/V2/invites/complete", None, complete_body(&token, USER_PASSWORD, &wrong_code(&h, &totp)))
        .await
        .assert_error(401, "10000 Authentication failed: wrong second-factor code");
    let weak = h.post("/api/V2/invites/complete", None, complete_body(&token, "password", &h.code(&totp))).await;
    assert_eq!(weak.status, 400, "{}", weak.text);
    assert!(weak.json()["error"]["message"].as_str().expect("a string field").starts_with("30030 Illegal password"));
    h.post("/api/V2/invites/complete", None, complete_body("f00d", USER_PASSWORD, &h.code(&totp)))
        .await
        .assert_error(401, "10020 Invalid token: unknown, used or expired invitation");
    h.post("/api/V2/invites/complete", None, json!({"invite_token": token, "pass": USER_PASSWORD}))
        .await
        .assert_error(400, "30000 Missing input parameter: second_factor_token");
    assert_eq!(h.store.main_log_len().await, before, "nothing recorded");
    assert_eq!(h.get("/admin/user/dan", Some(&admin)).await.status, 404, "no account");
    // Opening again offers a new secret; the old one's codes no longer count.
    let fresh = h.open_invitation(&token).await;
    assert_ne!(fresh.to_url().ok(), totp.to_url().ok());
    let stale = h.code(&totp);
    if stale != h.code(&fresh) {
        h.post("/api/V2/invites/complete", None, complete_body(&token, USER_PASSWORD, &stale))
            .await
            .assert_error(401, "10000 Authentication failed: wrong second-factor code");
    }
    h
}
on_both_stores!(failed_completions_create_nothing);

async fn bad_invitations_are_refused(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    let before = h.store.main_log_len().await;
    let post = |body: Value| {
        let h = &h;
        let admin = admin.clone();
        async move { h.post("/api/V2/admin/invites", Some(&admin), body).await }
    };
    post(json!({"user": "erin", "identities": ["github"]})).await.assert_error(
        400,
        "30001 Illegal input parameter: Illegal identity \"github\": expected connector:email, e.g. github:alice@example.org",
    );
    post(json!({"user": "erin", "identities": ["github:not-an-email"]})).await.assert_error(
        400,
        "30001 Illegal input parameter: Illegal identity \"github:not-an-email\": expected connector:email, e.g. github:alice@example.org",
    );
    post(json!({"user": "erin", "ttl": 7200}))
        .await
        .assert_error(400, "30001 Illegal input parameter: ttl must be between 1 and 3600 seconds");
    post(json!({"user": "alice"})).await.assert_error(400, "40000 User already exists: alice");
    post(json!({"user": "Erin"}))
        .await
        .assert_error(400, "30010 Illegal user name: Illegal character in user name Erin: E");
    post(json!({"user": "erin", "logins": []}))
        .await
        .assert_error(400, "30001 Illegal input parameter: At least one login is required");
    h.post("/api/V2/admin/invites", Some(&alice), json!({"user": "erin"}))
        .await
        .assert_error(403, "20000 Unauthorized");
    assert_eq!(h.store.main_log_len().await, before, "nothing recorded");
    let issued = invite(&h, &root, json!({"user": "erin"})).await;
    let id = issued["id"].as_str().expect("a string field").to_owned();
    h.open_invitation(issued["token"].as_str().expect("a string field")).await;
    let offered = h.server.ledger.credentials.ids_older_than("totp", i64::MAX).await.expect("secrets").len();
    assert_eq!(h.delete(&format!("/api/V2/admin/invites/{id}"), Some(&admin)).await.status, 204);
    let left = h.server.ledger.credentials.ids_older_than("totp", i64::MAX).await.expect("secrets").len();
    assert_eq!(left + 1, offered, "revoking forgets the offered secret");
    h.delete(&format!("/api/V2/admin/invites/{id}"), Some(&admin))
        .await
        .assert_error(404, &format!("50010 No such token: no such pending invitation {id}"));
    h
}
on_both_stores!(bad_invitations_are_refused);

/// A server on `store` whose clock the test moves.
async fn manual(store: TestStore) -> (Harness, Arc<ManualClock>) {
    let clock = ManualClock::new(TEST_EPOCH);
    let shared: Arc<dyn Clock> = clock.clone();
    (Harness::start_with(store, shared, |_| {}).await, clock)
}

async fn second_factor_logins(store: TestStore) {
    let (h, clock) = manual(store).await;
    let (_, admin) = h.administrators().await;
    let (_, totp) = h.invited_user(&admin, json!({"user": "carol"}), USER_PASSWORD).await;
    let login = |code: Option<String>| {
        let h = &h;
        async move {
            let mut body = json!({"user": "carol", "pwd": USER_PASSWORD});
            if let Some(code) = code {
                body["second_factor_token"] = json!(code);
            }
            h.post("/localaccount/login", None, body).await
        }
    };
    login(None).await.assert_error(
        401,
        "10000 Authentication failed: this account has a second factor: second_factor_token is required",
    );
    // The code that completed the invitation is spent.
    login(Some(h.code(&totp))).await.assert_error(
        401,
        "10000 Authentication failed: this second-factor code was already used; wait for the next one",
    );
    clock.advance(30_000);
    let answer = login(Some(h.code(&totp))).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    // A wrong password is a password mismatch, whatever the code.
    let wrong_password =
        json!({"user": "carol", "pwd": "not the password at all 1", "second_factor_token": h.code(&totp)});
    h.post("/localaccount/login", None, wrong_password)
        .await
        .assert_error(401, "10050 Password / username mismatch: carol");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_logins_sqlite() {
    second_factor_logins(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_factor_logins_postgres() {
    if let Some(store) = TestStore::postgres().await {
        second_factor_logins(store).await;
    }
}

/// Ten wrong codes at once: exactly five are counted, the fifth locks the
/// account, the rest are refused as locked; a right code waits for the lock.
async fn parallel_wrong_codes_lock_the_account_exactly(store: TestStore) {
    let (h, clock) = manual(store).await;
    let (_, admin) = h.administrators().await;
    let (_, totp) = h.invited_user(&admin, json!({"user": "carol"}), USER_PASSWORD).await;
    clock.advance(30_000);
    let wrong = wrong_code(&h, &totp);
    let attempts = (0..10).map(|_| {
        let body = json!({"user": "carol", "pwd": USER_PASSWORD, "second_factor_token": wrong});
        h.post("/localaccount/login", None, body)
    });
    let answers = futures::future::join_all(attempts).await;
    assert!(answers.iter().all(|a| a.status == 401), "{:?}", answers.iter().map(|a| &a.text).collect::<Vec<_>>());
    let until = TEST_EPOCH + 30_000 + 15 * 60_000;
    let locked = format!(
        "10000 Authentication failed: too many wrong second-factor codes; the account is locked until {until} (epoch ms)"
    );
    let wrong_only = "10000 Authentication failed: wrong second-factor code";
    let messages: Vec<String> =
        answers.iter().map(|a| a.json()["error"]["message"].as_str().expect("a string field").to_owned()).collect();
    // Attempts counted before the lock say so, unless the lock landed before they answered.
    let wrong_answers = messages.iter().filter(|m| *m == wrong_only).count();
    assert!(wrong_answers <= 4, "{messages:?}");
    assert_eq!(wrong_answers + messages.iter().filter(|m| **m == locked).count(), 10, "{messages:?}");
    let history = h.get("/api/V2/admin/audit?user=carol", Some(&admin)).await.json();
    let rejected: Vec<&Value> = history["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["event_type"] == "SecondFactorRejected")
        .collect();
    assert_eq!(rejected.len(), 5, "every counted attempt is one event");
    let descriptions: Vec<&str> = rejected.iter().filter_map(|e| e["description"].as_str()).collect();
    for (n, description) in descriptions.iter().enumerate() {
        assert!(description.contains(&format!("({} in a row)", n + 1)), "{descriptions:?}");
        assert_eq!(description.contains("locked until"), n == 4, "only the fifth locks: {descriptions:?}");
    }
    let right = json!({"user": "carol", "pwd": USER_PASSWORD, "second_factor_token": h.code(&totp)});
    h.post("/localaccount/login", None, right).await.assert_error(401, &locked);
    assert_eq!(h.get("/admin/user/carol", Some(&admin)).await.json()["lockeduntil"], json!(until));
    // While locked, a wrong password gets the same answer: the lock is no password oracle.
    let wrong_password =
        json!({"user": "carol", "pwd": "surely not the password 42", "second_factor_token": h.code(&totp)});
    h.post("/localaccount/login", None, wrong_password).await.assert_error(401, &locked);
    clock.advance(15 * 60_000);
    let right = json!({"user": "carol", "pwd": USER_PASSWORD, "second_factor_token": h.code(&totp)});
    let answer = h.post("/localaccount/login", None, right).await;
    assert_eq!(answer.status, 200, "after the lock: {}", answer.text);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_codes_lock_the_account_exactly_sqlite() {
    parallel_wrong_codes_lock_the_account_exactly(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_codes_lock_the_account_exactly_postgres() {
    if let Some(store) = TestStore::postgres().await {
        parallel_wrong_codes_lock_the_account_exactly(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_invitation_creates_nothing() {
    let (h, clock) = manual(TestStore::sqlite()).await;
    let (_, admin) = h.administrators().await;
    let token = invite(&h, &admin, json!({"user": "fay", "ttl": 60})).await["token"]
        .as_str()
        .expect("a string field")
        .to_owned();
    let totp = h.open_invitation(&token).await;
    clock.advance(60_000);
    h.post("/api/V2/invites/complete", None, complete_body(&token, USER_PASSWORD, &h.code(&totp)))
        .await
        .assert_error(401, "10020 Invalid token: unknown, used or expired invitation");
    assert_eq!(h.get("/admin/user/fay", Some(&admin)).await.status, 404);
    h.finish().await;
}

/// A forced reset is answered before the code is spent, so the reset can use it.
async fn a_forced_reset_does_not_spend_the_code(store: TestStore) {
    let (h, clock) = manual(store).await;
    let (_, admin) = h.administrators().await;
    let (_, totp) = h.invited_user(&admin, json!({"user": "carol"}), USER_PASSWORD).await;
    assert_eq!(h.post("/admin/user/carol/forcereset", Some(&admin), json!({})).await.status, 204);
    clock.advance(30_000);
    let code = h.code(&totp);
    let login = json!({"user": "carol", "pwd": USER_PASSWORD, "second_factor_token": code});
    h.post("/localaccount/login", None, login).await.assert_error(
        403,
        "20000 Unauthorized: User carol must reset their password at /localaccount/reset before logging in",
    );
    let new = "an entirely new passphrase 2026";
    let reset = json!({"user": "carol", "pwdold": USER_PASSWORD, "pwdnew": new});
    h.post("/localaccount/reset", None, reset.clone()).await.assert_error(
        401,
        "10000 Authentication failed: this account has a second factor: second_factor_token is required",
    );
    let mut with_code = reset;
    with_code["second_factor_token"] = json!(code);
    let answer = h.post("/localaccount/reset", None, with_code).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_reset_does_not_spend_the_code_sqlite() {
    a_forced_reset_does_not_spend_the_code(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_reset_does_not_spend_the_code_postgres() {
    if let Some(store) = TestStore::postgres().await {
        a_forced_reset_does_not_spend_the_code(store).await;
    }
}

/// Secrets offered by invitations that were never completed are forgotten
/// once no invitation can use them; enrolled ones stay.
async fn orphaned_second_factor_secrets_are_forgotten(store: TestStore) {
    let (h, clock) = manual(store).await;
    let (_, admin) = h.administrators().await;
    h.invited_user(&admin, json!({"user": "carol"}), USER_PASSWORD).await;
    let token = invite(&h, &admin, json!({"user": "dan"})).await["token"].as_str().expect("a string field").to_owned();
    h.open_invitation(&token).await;
    h.open_invitation(&token).await;
    let stored =
        || async { h.server.ledger.credentials.ids_older_than("totp", i64::MAX).await.expect("secrets").len() };
    assert_eq!(stored().await, 2, "carol's enrolled secret and dan's latest offer");
    let ledger = &h.server.ledger;
    assert_eq!(authledger::app::second_factor::forget_orphans(ledger).await.ok(), Some(0), "too young to judge");
    clock.advance(authledger::app::second_factor::ORPHAN_AGE_MS + 1);
    assert_eq!(authledger::app::second_factor::forget_orphans(ledger).await.ok(), Some(1));
    assert_eq!(stored().await, 1);
    let carol = h.get("/admin/user/carol", Some(&admin)).await.json();
    assert_eq!(carol["secondfactor"], json!(true));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_second_factor_secrets_are_forgotten_sqlite() {
    orphaned_second_factor_secrets_are_forgotten(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphaned_second_factor_secrets_are_forgotten_postgres() {
    if let Some(store) = TestStore::postgres().await {
        orphaned_second_factor_secrets_are_forgotten(store).await;
    }
}
