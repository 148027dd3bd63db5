//! Whether a second factor was used (auth2's `mfa`) on every Login token:
//! `Used` after a verified one-time code, `NotUsed` after a password alone,
//! `Unknown` for tokens made from tokens and for grants recorded before the
//! field existed (the v1.0 upcaster); shown by introspection, `/tokens` and
//! test mode, which also takes it.

use crate::common;

use std::sync::Arc;

use authledger::clock::{Clock, ManualClock};
use authledger::domain::token::{ClientInfo, TokenEvent, TokenIssued};
use authledger::domain::{TokenKind, UserName};
use authledger::projections::hash_token;
use authledger::projections::token_index::encode_hash;
use common::{Harness, TEST_EPOCH, TestStore, USER_PASSWORD};
use cqrs_es::persist::SerializedEvent;
use serde_json::json;

async fn mfa_of(h: &Harness, token: &str) -> String {
    let answer = h.get("/api/V2/token", Some(token)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["mfa"].as_str().expect("an mfa status").to_owned()
}

async fn every_login_token_says_whether_a_second_factor_was_used(store: TestStore) {
    let clock = ManualClock::new(TEST_EPOCH);
    let shared: Arc<dyn Clock> = clock.clone();
    let h = Harness::start_with(store, shared, |_| {}).await;
    let (_, admin) = h.administrators().await;
    // A password alone.
    assert_eq!(mfa_of(&h, &admin).await, "NotUsed");
    let tokens = h.get("/tokens", Some(&admin)).await.json();
    assert_eq!(tokens["current"]["mfa"], "NotUsed", "{tokens}");
    // A token made from a token says nothing about a login.
    let agent = h.agent_token(&admin, "script").await;
    assert_eq!(mfa_of(&h, &agent).await, "Unknown");
    // An invitation's completion checks a code from a secret the link itself
    // delivered (one factor: the link); a later login's code is a second factor.
    let (session, totp) = h.invited_user(&admin, json!({"user": "carol"}), USER_PASSWORD).await;
    assert_eq!(mfa_of(&h, &session).await, "NotUsed");
    clock.advance(30_000);
    let body = json!({"user": "carol", "pwd": USER_PASSWORD, "second_factor_token": h.code(&totp)});
    let login = h.post("/localaccount/login", None, body).await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert_eq!(login.json()["mfa"], "Used");
    // A grant recorded before `mfa` existed (TokenIssued v1.0) reads as Unknown.
    let old = "OLDTOKENOLDTOKENOLDTOKENOLDTOKEN";
    let grant = TokenIssued {
        token_hash: encode_hash(&hash_token(old)),
        kind: TokenKind::Login,
        user: UserName::parse(Some("carol")).expect("a name"),
        name: None,
        created: h.now(),
        expires: h.now() + 86_400_000,
        custom: Default::default(),
        client: ClientInfo::default(),
        mfa: authledger::domain::token::Mfa::Used,
    };
    let mut payload = serde_json::to_value(TokenEvent::TokenIssued(grant)).expect("JSON");
    payload["TokenIssued"].as_object_mut().expect("the grant").remove("mfa");
    let id = uuid::Uuid::new_v4().to_string();
    let v1 = SerializedEvent::new(id, 1, "Token".into(), "TokenIssued".into(), "1.0".into(), payload, json!({}));
    h.server.ledger.log.append(vec![v1]).await.expect("appended");
    let h = h.restart().await;
    assert_eq!(mfa_of(&h, old).await, "Unknown", "folded from the log through the upcaster");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_token_says_whether_a_second_factor_was_used_sqlite() {
    every_login_token_says_whether_a_second_factor_was_used(TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_login_token_says_whether_a_second_factor_was_used_postgres() {
    if let Some(store) = TestStore::postgres().await {
        every_login_token_says_whether_a_second_factor_was_used(store).await;
    }
}

async fn test_mode_takes_and_shows_mfa(h: Harness) -> Harness {
    let user = h.post("/testmode/api/V2/testmodeonly/user", None, json!({"user": "kim", "display": "Kim"})).await;
    assert_eq!(user.status, 200, "{}", user.text);
    let create = |mfa: Option<&str>| {
        let mut body = json!({"user": "kim", "type": "Login"});
        if let Some(mfa) = mfa {
            body["mfa"] = json!(mfa);
        }
        h.post("/testmode/api/V2/testmodeonly/token", None, body)
    };
    let used = create(Some("Used")).await;
    assert_eq!(used.status, 200, "{}", used.text);
    assert_eq!(used.json()["mfa"], "Used");
    let token = used.json()["token"].as_str().expect("a token").to_owned();
    assert_eq!(h.get("/testmode/api/V2/token", Some(&token)).await.json()["mfa"], "Used");
    assert_eq!(create(None).await.json()["mfa"], "Unknown");
    create(Some("Maybe")).await.assert_error(400, "30001 Illegal input parameter: Invalid MFA status: Maybe");
    h
}
on_both_stores!(test_mode_takes_and_shows_mfa, test_mode);
