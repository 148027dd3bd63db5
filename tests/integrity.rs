//! The integrity chain over real stores: an untouched log verifies; a row
//! altered, deleted or inserted behind the server's back is found at its
//! position; a log from before the chain is chained on upgrade; rows a
//! forget rewrote verify against its signed commitment, and nothing else does.

use std::sync::Arc;

use crate::common;

use authledger::store::StoredEvent;
use authledger::store::chain::{self, ChainBreak};
use authledger::store::forget::{Commitment, Forgetting, RewrittenRow};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use common::{Harness, TestStore};
use cqrs_es::persist::SerializedEvent;
use ed25519_dalek::{Signer, SigningKey};
use serde_json::json;

async fn verify(h: &Harness) -> Result<i64, ChainBreak> {
    let verified = h.server.ledger.log.verify_chain(None, |_| {}).await.expect("the log is readable");
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

/// A forget as the store carries it out, told here simply to replace one
/// name everywhere (which fields a real forget rewrites is the application's).
struct ReplaceName {
    name: &'static str,
    pseudonym: &'static str,
    key: SigningKey,
}

impl Forgetting for ReplaceName {
    fn rewrite(&self, row: &StoredEvent) -> Option<RewrittenRow> {
        let texts = [&row.aggregate_id, &row.payload, &row.metadata];
        texts.iter().any(|t| t.contains(self.name)).then(|| RewrittenRow {
            aggregate_id: row.aggregate_id.replace(self.name, self.pseudonym),
            payload: row.payload.replace(self.name, self.pseudonym),
            metadata: row.metadata.replace(self.name, self.pseudonym),
        })
    }

    fn event(&self, commitment: &Commitment) -> Result<SerializedEvent, String> {
        let signature =
            self.key.sign(chain::forget_message(commitment.position, self.pseudonym, &commitment.digest).as_bytes());
        let payload = serde_json::json!({"PersonForgotten": {
            "pseudonym": self.pseudonym,
            "rows": commitment.rows,
            "digest": chain::encode(&commitment.digest),
            "public_key": STANDARD.encode(self.key.verifying_key().as_bytes()),
            "signature": STANDARD.encode(signature.to_bytes()),
        }});
        let (kind, id) = ("Forgotten".to_owned(), self.pseudonym.to_owned());
        Ok(SerializedEvent::new(id, 1, kind, "PersonForgotten".into(), "1.0".into(), payload, serde_json::json!({})))
    }
}

async fn a_forget_rewrites_in_place_and_the_chain_still_verifies(store: TestStore) {
    let h = Harness::start(store).await;
    let (_root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "zelda").await;
    h.agent_token(&login, "script").await;
    h.user_token(&admin, "bob").await;
    let log = &h.server.ledger.log;
    let head = log.head().await.expect("a head");
    let signed_before = log.chain_at(head).await.expect("readable");
    let store = h.store.clone();
    h.server.stop().await.expect("the server stops");
    assert!(store.everything().await.contains("zelda"), "the person is in the store");

    let opened =
        authledger::store::Store::open(&store.url(), store.options().store, Arc::new(authledger::clock::SystemClock))
            .await
            .expect("the store opens");
    let key = SigningKey::from_bytes(&[9; 32]);
    let pinned = Some(STANDARD.encode(key.verifying_key().as_bytes()));
    let forgetting = ReplaceName { name: "zelda", pseudonym: "forgotten_7f3a", key };
    let forgot = opened.log.forget(&forgetting, 0).await.expect("the forget is written");
    assert_eq!(forgot.position, head + 1, "the forget's event follows the head");
    assert!(forgot.rows >= 4, "the account, its password, its logins and its tokens: {forgot:?}");

    let verified = opened.log.verify_chain(pinned.clone(), |_| {}).await.expect("readable");
    let verified = verified.expect("the forgotten log verifies");
    assert_eq!((verified.checked(), verified.rewritten(), verified.forgets()), (head + 1, forgot.rows, 1));
    assert_eq!(opened.log.chain_at(head).await.expect("readable"), signed_before, "a head signed before still holds");
    assert!(!store.everything().await.contains("zelda"), "no byte of the name is left in the store");

    // The log records its witness's key; a forget signed by another is refused unless pinned.
    let unpinned = opened.log.verify_chain(None, |_| {}).await.expect("readable");
    assert!(matches!(unpinned, Err(ChainBreak::Forget { position, .. }) if position == head + 1), "{unpinned:?}");

    // A rewritten row changed after the forget is found at its position.
    store
        .execute(
            "UPDATE {events} SET recorded_at = recorded_at + 1 WHERE position = (SELECT MIN(position) FROM {redactions})",
        )
        .await;
    let tampered = opened.log.verify_chain(pinned, |_| {}).await.expect("readable");
    assert!(
        matches!(tampered, Err(ChainBreak::Rewritten { forget_position, .. }) if forget_position == head + 1),
        "{tampered:?}"
    );
    // A forget signs what the rows hold: on a log that does not verify it writes nothing.
    let head = opened.log.head().await.expect("a head");
    let again = ReplaceName { name: "bob", pseudonym: "forgotten_8e1b", key: SigningKey::from_bytes(&[9; 32]) };
    let refused = opened.log.forget(&again, 0).await.expect_err("refused");
    assert!(
        refused.to_string().contains("does not verify") && refused.to_string().contains("altered after"),
        "{refused}"
    );
    assert_eq!(opened.log.head().await.expect("a head"), head);
    opened.log.close().await;
    store.cleanup().await;
}
on_both_stores_from_store!(a_forget_rewrites_in_place_and_the_chain_still_verifies);

/// `POST /admin/user/{user}/forget` over a real server: the person is gone
/// from every answer, the name is free, the log still verifies (the head
/// signed before holds, the forget's signature is the witness's), no byte of
/// the name is left in the store, and a restart folds the rewritten log to
/// the same answers.
async fn a_forgotten_person_is_gone_and_the_log_still_verifies(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    // A guess at the name before it was an account is counted under the name (the throttle store).
    let guess = h.post("/localaccount/login", None, json!({"user": "zelda", "pwd": "not it"})).await;
    assert_eq!(guess.status, 401, "{}", guess.text);
    assert!(names_zelda(&h).await, "the throttle store counts guesses at her name");
    let login = h.user_token(&admin, "zelda").await;
    let agent = h.agent_token(&login, "zelda's laptop").await;
    let anon = h.get("/api/V2/me", Some(&login)).await.json()["anonid"].as_str().expect("an anon id").to_owned();
    let granted = h.post("/admin/user/zelda/roles", Some(&admin), json!({"roles": ["DevToken"]})).await;
    assert_eq!(granted.status, 204, "{}", granted.text);
    h.user_token(&admin, "bob").await;
    // As an Admin, she disables bob: his record names her.
    let made_admin = h.post("/admin/user/zelda/roles", Some(&admin), json!({"roles": ["Admin", "DevToken"]})).await;
    assert_eq!(made_admin.status, 204, "{}", made_admin.text);
    let disabled =
        h.post("/admin/user/bob/disable", Some(&login), json!({"disable": true, "disabledreason": "on leave"})).await;
    assert_eq!(disabled.status, 204, "{}", disabled.text);
    let enabled = h.post("/admin/user/bob/disable", Some(&login), json!({"disable": false})).await;
    assert_eq!(enabled.status, 204, "{}", enabled.text);
    assert_eq!(h.get("/admin/user/bob", Some(&admin)).await.json()["enabletoggledby"], "zelda");
    let carl = h.user_token(&admin, "carl").await;
    let log = &h.server.ledger.log;
    let head = log.head().await.expect("a head");
    let signed_before = log.chain_at(head).await.expect("readable");

    // Refused, with nothing written.
    for (user, token, body, status, message) in [
        ("zelda", &admin, json!({}), 400, "30000 Missing input parameter: reason"),
        ("zelda", &admin, json!({"reason": "  "}), 400, "30000 Missing input parameter: reason"),
        ("nobody", &admin, json!({"reason": "asked"}), 404, "50000 No such user: nobody"),
        (
            "***ROOT***",
            &admin,
            json!({"reason": "asked"}),
            403,
            "20000 Unauthorized: The root account cannot be forgotten",
        ),
        ("zelda", &carl, json!({"reason": "asked"}), 403, "20000 Unauthorized"),
        (
            "admin",
            &admin,
            json!({"reason": "asked"}),
            403,
            "20000 Unauthorized: An administrator cannot forget their own account",
        ),
    ] {
        h.post(&format!("/admin/user/{user}/forget"), Some(token), body).await.assert_error(status, message);
    }
    assert_eq!(log.head().await.expect("a head"), head, "a refused forget writes nothing");

    let secrets = h.store.rows("secrets").await;
    let answer = h.post("/admin/user/zelda/forget", Some(&admin), json!({"reason": "Asked to be forgotten"})).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    assert_eq!(h.store.rows("secrets").await, secrets - 1, "her password hash is gone");
    assert_gone(&h, &admin, &[&login, &agent], &anon).await;
    assert_eq!(h.get("/api/V2/users/?list=zelda,bob", Some(&admin)).await.json(), json!({"bob": "User bob"}));
    // Records of others that named her name the pseudonym, in memory as in the log.
    let toggled = h.get("/admin/user/bob", Some(&admin)).await.json()["enabletoggledby"].clone();
    assert!(toggled.as_str().is_some_and(|by| by.starts_with("forgotten-")), "{toggled}");
    assert_eq!(h.get("/api/V2/users/search/zel", Some(&admin)).await.json(), json!({}));
    h.get("/admin/user/zelda", Some(&admin)).await.assert_error(404, "50000 No such user: zelda");
    assert_eq!(log.chain_at(head).await.expect("readable"), signed_before, "the head signed before holds");
    assert!(!names_zelda(&h).await, "no byte of the name is left in the store");
    if let Some(files) = h.store.relation_files().await {
        assert!(!files.contains("zelda"), "no old row version of hers is left in PostgreSQL's files");
    }

    // A new server folds the rewritten log from its start to the same answers,
    // and what the old one wrote as it stopped (its checkpoint) names no one.
    let h = h.restart().await;
    assert!(!names_zelda(&h).await, "nothing of the name after a restart (its checkpoint included)");
    assert_gone(&h, &admin, &[&login, &agent], &anon).await;
    h.get("/admin/user/zelda", Some(&admin)).await.assert_error(404, "50000 No such user: zelda");

    // The name is free, and its new holder inherits nothing.
    let again = h.user_token(&admin, "zelda").await;
    let me = h.get("/api/V2/me", Some(&again)).await.json();
    assert_ne!(me["anonid"], json!(anon));
    assert_eq!(me["roles"], json!([]), "{me}");
    h.get("/api/V2/token", Some(&agent)).await.assert_error(401, "10020 Invalid token");
    h
}
on_both_stores!(a_forgotten_person_is_gone_and_the_log_still_verifies);

/// A log restored from a backup taken before a forget forgets the person
/// again before it serves anything (the journal beside the key file knows the
/// forget), under the same pseudonym; a log that holds the forget is left as is.
async fn a_log_restored_from_before_a_forget_forgets_them_again(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "zelda").await;
    let anon = h.get("/api/V2/me", Some(&login)).await.json()["anonid"].as_str().expect("an anon id").to_owned();
    h.user_token(&admin, "bob").await;
    let backup = h.store.backup().await;
    let answer = h.post("/admin/user/zelda/forget", Some(&admin), json!({"reason": "Asked to be forgotten"})).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    let (pseudonym, _) = the_forget(&h).await;

    // The operator restores the database alone, from before the forget.
    let store = h.store.clone();
    h.server.stop().await.expect("the server stops");
    store.restore(backup).await;
    assert!(names_zelda_in(&store).await, "the restored backup holds her");
    let h = Harness::start(store).await;
    // She is forgotten before anything is served, though writes are refused
    // (the restored log is behind its witness) until the operator accepts it.
    h.get("/api/V2/token", Some(&login)).await.assert_error(401, "10020 Invalid token");
    assert!(h.server.ledger.writes_refused().is_some_and(|r| r.contains("TRUNCATED")));
    let server = &h.server;
    authledger::app::witness::accept(&server.ledger, &server.witness, "restored a backup").await.expect("accepted");
    for _ in 0..100 {
        if server.ledger.writes_refused().is_none() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_gone(&h, &admin, &[&login], &anon).await;
    h.get("/admin/user/zelda", Some(&admin)).await.assert_error(404, "50000 No such user: zelda");
    assert_eq!(h.get("/api/V2/users/?list=zelda,bob", Some(&admin)).await.json(), json!({"bob": "User bob"}));
    assert!(!names_zelda(&h).await, "no byte of the name is left once she is forgotten again");
    if let Some(files) = h.store.relation_files().await {
        assert!(!files.contains("zelda"), "nor in PostgreSQL's files");
    }
    let (again, metadata) = the_forget(&h).await;
    assert_eq!(again, pseudonym, "the same pseudonym, so what auditors hold still names the same someone");
    assert!(metadata.contains("applied again at start: the log was restored from before the forget"), "{metadata}");

    // A log that holds the forget is not forgotten twice.
    let h = h.restart().await;
    assert_gone(&h, &admin, &[&login], &anon).await;
    h
}
on_both_stores!(a_log_restored_from_before_a_forget_forgets_them_again);

/// The pseudonym and metadata of the log's one forget.
async fn the_forget(h: &Harness) -> (String, String) {
    let log = &h.server.ledger.log;
    let redactions = log.redactions().await.expect("readable");
    let position = redactions.first().expect("a forget").forget_position;
    let row = log.read_after(position - 1, 1).await.expect("readable").remove(0);
    assert_eq!(row.aggregate_type, "Forgotten");
    (row.aggregate_id, row.metadata)
}

/// Whether the store holds "zelda": as text, or as PostgreSQL prints binary
/// columns (checkpoints), in hex.
async fn names_zelda(h: &Harness) -> bool {
    names_zelda_in(&h.store).await
}

async fn names_zelda_in(store: &TestStore) -> bool {
    let everything = store.everything().await;
    everything.contains("zelda") || everything.contains(&data_encoding::HEXLOWER.encode(b"zelda"))
}

/// The forgotten zelda's tokens and anonymous id answer nothing, and the log verifies with one forget.
async fn assert_gone(h: &Harness, admin: &str, tokens: &[&str], anon: &str) {
    for token in tokens {
        h.get("/api/V2/token", Some(token)).await.assert_error(401, "10020 Invalid token");
    }
    assert_eq!(h.get(&format!("/api/V2/admin/anonids?list={anon}"), Some(admin)).await.json(), json!({}));
    let verified = h.server.ledger.log.verify_chain(None, |_| {}).await.expect("readable");
    let verified = verified.expect("the forgotten log verifies, its forget signed by the witness");
    assert_eq!(verified.forgets(), 1);
    assert!(verified.rewritten() >= 5, "{}", verified.rewritten());
}
