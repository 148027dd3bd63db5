//! `replay` against real logs on SQLite and PostgreSQL, filled through the
//! server's HTTP API: history with every event type, per-user and per-token
//! history, export and import into an empty store that then answers exactly
//! as before, and the refusals (non-empty target, a file that does not verify).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test states its expectations by panicking

#[path = "../../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;

use authledger::domain::UserName;
use authledger::store::StoreOptions;
use common::{Harness, TestStore, USER_PASSWORD};
use replay::{Query, Subject};
use serde_json::{Value, json};

/// The event types events.md documents for the main log.
/// Events only `import-auth2` writes, into an empty log (so no running
/// server makes them); `tests/import_auth2.rs` finds each in the history.
const IMPORT_ONLY: [&str; 3] = ["UserImported", "CustomRoleImported", "PasswordRehashed"];

fn documented_types() -> BTreeSet<String> {
    let doc = include_str!("../../events.md");
    let main = doc.split("# The test-mode log").next().unwrap_or_default();
    main.lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| l.split_once('`').map(|(name, _)| name.to_owned()))
        .filter(|name| !IMPORT_ONLY.contains(&name.as_str()))
        .collect()
}

async fn ok(answer: common::Answer) -> Value {
    assert!(answer.status.is_success(), "{}", answer.text);
    if answer.text.is_empty() { Value::Null } else { answer.json() }
}

/// Signs up, signs in, links and unlinks through the provider, and removes a policy id.
async fn provider_events(h: &Harness, peer: &common::oidc::Peer, admin: &str) {
    ok(h.post("/admin/config/provider", Some(admin), json!({"provider": "OIDC", "enabled": true})).await).await;
    let (_, cookies) = h.through_provider(peer, "/login/start", &[("provider", "OIDC")], "zed", None).await;
    let id = authledger::domain::IdentityId::of("OIDC", "zed").to_string();
    let body = json!({"id": id, "user": "zed", "display": "Zed", "email": "zed@x.org", "policyids": ["tos"]});
    let request = common::no_redirects()
        .post(h.url("/login/create"))
        .header("Content-Type", "application/json")
        .header("Cookie", cookies)
        .body(body.to_string());
    let zed = ok(h.send(request).await).await["token"]["token"].as_str().expect("a token").to_owned();
    // Signed in again under another name: straight in, the details refreshed.
    let (done, _) = h.through_provider(peer, "/login/start", &[("provider", "OIDC")], "zed", Some("Zed Z")).await;
    assert_eq!(done.header("location").as_deref(), Some("/me"), "{}", done.text);
    let fields = [("provider", "OIDC"), ("token", zed.as_str())];
    let (done, _) = h.through_provider(peer, "/link/start", &fields, "zed-2", None).await;
    assert_eq!(done.header("location").as_deref(), Some("/me"), "{}", done.text);
    let other = authledger::domain::IdentityId::of("OIDC", "zed-2").to_string();
    ok(h.post(&format!("/me/unlink/{other}"), Some(&zed), json!({})).await).await;
    ok(h.post("/admin/policyid", Some(admin), json!({"policyid": "tos"})).await).await;
}

/// Appends, as an earlier version wrote them, the events no command writes
/// any more (`PasswordRejected`) on `user`'s stream: a log that holds them
/// still reads, folds and rebuilds.
async fn legacy_events(h: &Harness, user: &str) {
    let log = &h.server.ledger.log;
    let sequence = log.load("User", user, 0).await.expect("the user's stream").len();
    let rejected = cqrs_es::persist::SerializedEvent::new(
        user.to_owned(),
        sequence + 1,
        "User".into(),
        "PasswordRejected".into(),
        "1.0".into(),
        json!({"PasswordRejected": {"failures": 1, "throttled_until": null, "at": h.now()}}),
        json!({"actor": user, "client_addr": "127.0.0.1"}),
    );
    log.append(vec![rejected]).await.expect("appended");
    let head = log.head().await.expect("the head");
    h.server.ledger.reach(head).await.expect("folded");
}

/// Drives the server through every kind of event; returns (alice's login token, a live agent token's id).
/// With `peer`, the provider's events too.
async fn every_kind_of_event(h: &Harness, peer: Option<&common::oidc::Peer>) -> (String, String) {
    let (_root, admin) = h.administrators().await;
    if let Some(peer) = peer {
        provider_events(h, peer, &admin).await;
    }
    let alice = h.user_token(&admin, "alice").await;
    legacy_events(h, "alice").await;
    // An operator accepts a lost witness file (the server starts a new one).
    std::fs::remove_file(h.store.witness_file()).expect("the witness file");
    let accepted = authledger::app::witness::accept(&h.server.ledger, &h.server.witness, "disk replaced").await;
    assert!(matches!(accepted, Ok(authledger::app::witness::Accepted::Reset { .. })), "{accepted:?}");
    ok(h.put("/api/V2/me", Some(&alice), json!({"display": "Alice Liddell", "email": "alice@wonder.land"})).await)
        .await;
    // The SSH side: certificates, logins, authorities, provisioning tokens, invitations, second factors.
    let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).expect("a key");
    let public_key = key.public_key().to_openssh().expect("OpenSSH");
    ok(h.post("/admin/user/alice/logins", Some(&admin), json!({"logins": ["alice", "deploy"]})).await).await;
    ok(h.post("/api/V2/certs/ssh", Some(&alice), json!({"public_key": public_key, "ttl": 600})).await).await;
    ok(h.post("/api/V2/admin/ca/rotate", Some(&admin), json!({"ca": "host"})).await).await;
    // A phased rotation of the user CA, rolled back.
    for phase in ["init", "update_clients", "rollback"] {
        ok(h.post("/api/V2/admin/ca/rotate", Some(&admin), json!({"ca": "user", "phase": phase})).await).await;
    }
    // A wrong password, counted, and an Admin clearing the count.
    let wrong = h.post("/localaccount/login", None, json!({"user": "alice", "pwd": "not her password"})).await;
    assert_eq!(wrong.status, 401);
    ok(h.post("/admin/user/alice/unlock", Some(&admin), json!({})).await).await;
    let tokens =
        ok(h.post("/api/V2/admin/provisiontokens", Some(&admin), json!({"roles": ["node"], "count": 2})).await).await;
    let join = json!({"token": tokens["tokens"][0]["token"], "host_id": "web-1.example.org", "public_key": public_key});
    ok(h.post("/api/V2/hosts/join", None, join).await).await;
    // A second host, freed by an Admin.
    let more = ok(h.post("/api/V2/admin/provisiontokens", Some(&admin), json!({"roles": ["node"]})).await).await;
    let join = json!({"token": more["tokens"][0]["token"], "host_id": "web-2.example.org", "public_key": public_key});
    ok(h.post("/api/V2/hosts/join", None, join).await).await;
    ok(h.delete("/api/V2/admin/hosts/web-2.example.org", Some(&admin)).await).await;
    let unused = tokens["tokens"][1]["id"].as_str().expect("a string field").to_owned();
    ok(h.delete(&format!("/api/V2/admin/provisiontokens/{unused}"), Some(&admin)).await).await;
    let revoked = ok(h.post("/api/V2/admin/invites", Some(&admin), json!({"user": "dave"})).await).await;
    let revoked = revoked["id"].as_str().expect("a string field").to_owned();
    ok(h.delete(&format!("/api/V2/admin/invites/{revoked}"), Some(&admin)).await).await;
    let invite = json!({"user": "carol", "logins": ["carol"], "identities": ["github:carol@example.org"]});
    let (_, totp) = h.invited_user(&admin, invite, USER_PASSWORD).await;
    let wrong_code = if h.code(&totp) == "000000" { "111111" } else { "000000" };
    let wrong = json!({"user": "carol", "pwd": USER_PASSWORD, "second_factor_token": wrong_code});
    assert_eq!(h.post("/localaccount/login", None, wrong).await.status, 401);
    // Reads that are recorded: the audit trail, past state, unmasking an anonymous id.
    ok(h.get("/api/V2/admin/audit?user=alice", Some(&admin)).await).await;
    ok(h.get("/api/V2/admin/asof?user=alice&at=2100-01-01T00:00:00Z", Some(&admin)).await).await;
    let anon = ok(h.get("/api/V2/me", Some(&alice)).await).await["anonid"].as_str().expect("a string field").to_owned();
    ok(h.get(&format!("/api/V2/admin/anonids?list={anon}"), Some(&admin)).await).await;
    ok(h.post("/admin/customroles/set", Some(&admin), json!({"id": "curator", "desc": "Curates"})).await).await;
    ok(h.post("/admin/user/alice/customroles", Some(&admin), json!({"customroles": ["curator"]})).await).await;
    ok(h.post("/admin/user/alice/customroles", Some(&admin), json!({"customroles": []})).await).await;
    ok(h.post("/admin/customroles/delete", Some(&admin), json!({"id": "curator"})).await).await;
    ok(h.post("/admin/user/alice/roles", Some(&admin), json!({"roles": ["DevToken"]})).await).await;
    ok(h.post("/admin/user/alice/roles", Some(&admin), json!({"roles": []})).await).await;
    let agent = ok(h.post("/api/V2/token", Some(&alice), json!({"name": "to revoke"})).await).await;
    let agent_id = agent["id"].as_str().expect("a string field").to_owned();
    let path = format!("/tokens/revoke/{agent_id}");
    ok(h.raw(reqwest::Method::DELETE, &path, Some(&alice), "application/json", "").await).await;
    ok(h.post("/admin/user/alice/forcereset", Some(&admin), json!({})).await).await;
    ok(h.post("/admin/user/alice/disable", Some(&admin), json!({"disable": true, "disabledreason": "audit"})).await)
        .await;
    ok(h.post("/admin/user/alice/disable", Some(&admin), json!({"disable": false})).await).await;
    ok(h.post(
        "/localaccount/reset",
        None,
        json!({"user": "alice", "pwdold": USER_PASSWORD, "pwdnew": "a new and lengthy passphrase 9"}),
    )
    .await)
    .await;
    let alice = h.login("alice", "a new and lengthy passphrase 9").await;
    // Someone forgotten (PersonForgotten; their rows now read as a pseudonym).
    h.user_token(&admin, "gone").await;
    ok(h.post("/admin/user/gone/forget", Some(&admin), json!({"reason": "asked to be forgotten"})).await).await;
    h.agent_token(&alice, "revoked with all").await;
    ok(h.delete("/tokens/revokeall", Some(&alice)).await).await;
    ok(h.post("/admin/revokeall", Some(&admin), json!({})).await).await;
    let root = h.login(common::ROOT, common::ROOT_PASSWORD).await;
    ok(h.post("/admin/forcereset", Some(&root), json!({})).await).await;
    // Live after everything: issued after the revoke-all (login predates the forced resets).
    let alice_now = h
        .post(
            "/localaccount/reset",
            None,
            json!({"user": "alice", "pwdold": "a new and lengthy passphrase 9", "pwdnew": USER_PASSWORD}),
        )
        .await;
    ok(alice_now).await;
    let alice = h.login("alice", USER_PASSWORD).await;
    let live = ok(h.post("/api/V2/token", Some(&alice), json!({"name": "live"})).await).await;
    (alice, live["token"].as_str().expect("a string field").to_owned())
}

async fn read_only(h: &Harness) -> authledger::store::Store {
    read_only_store(&h.store).await
}

async fn history_covers_every_event_type_and_follows_users_and_tokens(h: Harness, peer: common::oidc::Peer) -> Harness {
    let (alice, live) = every_kind_of_event(&h, Some(&peer)).await;
    let store = read_only(&h).await;
    let log = &store.log;
    let all = replay::history(
        log,
        &Query { subject: Subject::All, since: None, until: None, actor: None, event_type: None },
        |_| {},
    )
    .await
    .expect("history");
    let types: BTreeSet<String> = all.iter().map(|e| e.event_type.clone()).collect();
    assert_eq!(types, documented_types(), "every event type of events.md appears in the history");
    let positions: Vec<i64> = all.iter().map(|e| e.position).collect();
    assert!(positions.windows(2).all(|w| w[0] + 1 == w[1]), "every event, in commit order");
    let disabled = all.iter().find(|e| e.event_type == "UserDisabled").expect("a disable");
    assert_eq!(disabled.description, "admin disabled alice: audit");
    assert_eq!(disabled.actor.as_deref(), Some("admin"));
    assert!(disabled.client_addr.as_deref().is_some_and(|a| a.starts_with("127.")), "{disabled:?}");

    let alice_name = UserName::parse(Some("alice")).expect("a name");
    let mine = replay::history(
        log,
        &Query { subject: Subject::User(alice_name), since: None, until: None, actor: None, event_type: None },
        |_| {},
    )
    .await
    .expect("history");
    assert!(
        mine.iter().all(|e| e.aggregate_id == "alice" || ["Token", "Certificate"].contains(&e.aggregate_type.as_str())),
        "{mine:?}"
    );
    assert!(mine.iter().any(|e| e.event_type == "UserCertIssued"), "a user's certificates are in their history");
    assert!(mine.iter().any(|e| e.event_type == "TokenRevoked"));
    assert!(!mine.iter().any(|e| e.aggregate_id == "admin"));

    // The agent token revoked by "revoke all of mine": its history ends with that event.
    let revoked_with_all = all
        .iter()
        .find(|e| e.event_type == "TokenIssued" && e.description.contains("\"revoked with all\""))
        .expect("the token");
    let id = revoked_with_all.aggregate_id.parse().expect("a token id");
    let token = replay::history(
        log,
        &Query { subject: Subject::Token(id), since: None, until: None, actor: None, event_type: None },
        |_| {},
    )
    .await
    .expect("history");
    let kinds: Vec<&str> = token.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["TokenIssued", "UserTokensRevoked", "AllTokensRevoked"]);

    // A time window.
    let since = disabled.recorded_at;
    let later = replay::history(
        log,
        &Query { subject: Subject::All, since: Some(since), until: None, actor: None, event_type: None },
        |_| {},
    )
    .await
    .expect("history");
    assert!(later.iter().all(|e| e.recorded_at >= since) && later.len() < all.len());
    log.close().await;
    let _ = (alice, live);
    h
}
/// Every event type needs the identity provider too (node; skipped loudly without it unless required).
mod history_covers_every_event_type_and_follows_users_and_tokens {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite() {
        if let Some((h, peer)) = crate::common::Harness::with_provider(crate::common::TestStore::sqlite()).await {
            super::history_covers_every_event_type_and_follows_users_and_tokens(h, peer).await.finish().await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres() {
        let Some(store) = crate::common::TestStore::postgres().await else {
            return;
        };
        if let Some((h, peer)) = crate::common::Harness::with_provider(store).await {
            super::history_covers_every_event_type_and_follows_users_and_tokens(h, peer).await.finish().await;
        }
    }
}

async fn same_answers(h: &Harness, alice: &str, live: &str) -> Vec<Value> {
    vec![
        h.get("/api/V2/token", Some(live)).await.json(),
        h.get("/api/V2/me", Some(alice)).await.json(),
        h.get("/tokens", Some(alice)).await.json(),
        h.get("/api/V2/users?list=alice,admin", Some(live)).await.json(),
        h.get("/api/V2/ca", None).await.json(),
    ]
}

async fn export_then_import_into_an_empty_store_answers_the_same(h: Harness) -> Harness {
    let (alice, live) = every_kind_of_event(&h, None).await;
    let before = same_answers(&h, &alice, &live).await;
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("log.jsonl");
    let store = read_only(&h).await;
    let log = &store.log;
    let mut out = std::fs::File::create(&file).expect("a file");
    let exported = replay::export(&store, &mut out, |_| {}).await.expect("export");
    log.close().await;
    assert_eq!(exported.events as i64, h.server.ledger.log.head().await.expect("head"));
    assert!(exported.secrets >= 3, "root's, admin's and alice's password hashes");

    // Into a fresh store of the same kind.
    let target = match &h.store {
        TestStore::Sqlite { .. } => TestStore::sqlite(),
        TestStore::Postgres { .. } => TestStore::postgres().await.expect("PostgreSQL"),
    };
    let options = target.options();
    let store = replay::open(
        &options.store_url,
        StoreOptions { table_prefix: options.store.table_prefix.clone(), ..StoreOptions::default() },
    )
    .await
    .expect("open the target");
    let log = &store.log;
    let path = file.to_str().expect("a path");
    let imported = replay::import(path, &store).await.expect("import");
    assert_eq!(imported, exported);
    // A second import is refused: the target is no longer empty.
    let again = replay::import(path, &store).await.expect_err("refused");
    assert!(again.to_string().contains("not empty"), "{again}");
    log.close().await;

    // The secrets moved sealed: the target's servers need the source's key file.
    let source_key = authledger::store::keyring::Keyring::open(&h.store.key_file()).expect("the key").current_id();
    assert_eq!(exported.keys.iter().collect::<Vec<_>>(), vec![&source_key]);
    assert!(exported.key_needed().is_some_and(|line| line.contains(&source_key) && line.contains("secrets_key_file")));
    let refused =
        authledger::app::ledger::Ledger::open(target.options(), std::sync::Arc::new(authledger::clock::SystemClock))
            .await
            .err()
            .expect("another key is refused")
            .to_string();
    assert!(refused.contains(&source_key), "{refused}");
    std::fs::copy(h.store.key_file(), target.key_file()).expect("the source's key file");
    // The log records that it is witnessed: its witness file moves with it.
    assert!(exported.witness_needed().is_some_and(|line| line.contains("witness_file")));
    std::fs::copy(h.store.witness_file(), target.witness_file()).expect("the source's witness file");
    let moved = Harness::start(target).await;
    assert_eq!(moved.get("/readyz", None).await.status, 200, "the moved witness holds");
    assert_eq!(same_answers(&moved, &alice, &live).await, before);
    let verified = moved.server.ledger.log.verify_chain(None, |_| {}).await.expect("readable");
    assert!(verified.is_ok(), "{verified:?}");
    // The password hashes came along: alice can log in on the new store.
    let alice = moved.login("alice", USER_PASSWORD).await;
    // So did the authorities' private keys: the moved server signs with the same user CA.
    let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).expect("a key");
    let body = json!({"public_key": key.public_key().to_openssh().expect("OpenSSH"), "ttl": 60});
    let cert = ok(moved.post("/api/V2/certs/ssh", Some(&alice), body).await).await;
    let cert =
        ssh_key::Certificate::from_openssh(cert["certificate"].as_str().expect("a string field")).expect("parses");
    let user_ca = ssh_key::PublicKey::from_openssh(before[4]["user"]["public_key"].as_str().expect("a string field"))
        .expect("the user CA");
    let now = u64::try_from(moved.now() / 1000).unwrap_or(0);
    cert.validate_at(now, [&user_ca.fingerprint(ssh_key::HashAlg::Sha256)]).expect("signed by the same user CA");
    moved.finish().await;
    h
}
on_both_stores!(export_then_import_into_an_empty_store_answers_the_same);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_export_is_refused_at_its_position() {
    let h = Harness::sqlite().await;
    h.administrators().await;
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("log.jsonl");
    let store = read_only(&h).await;
    let log = &store.log;
    let mut out = std::fs::File::create(&file).expect("a file");
    replay::export(&store, &mut out, |_| {}).await.expect("export");
    log.close().await;
    let text = std::fs::read_to_string(&file).expect("the export");
    let tampered: Vec<String> = text
        .lines()
        .map(|l| if l.contains("\"position\":5,") { l.replace("\"actor\":\"", "\"actor\":\"x") } else { l.to_owned() })
        .collect();
    std::fs::write(&file, tampered.join("\n")).expect("write");
    let target = TestStore::sqlite();
    let store = replay::open(&target.url(), StoreOptions::default()).await.expect("open");
    let log = &store.log;
    let refused = replay::import(file.to_str().expect("a path"), &store).await.expect_err("refused");
    assert!(refused.to_string().contains("position 5"), "{refused}");
    assert_eq!(log.head().await.expect("head"), 0, "nothing imported");
    log.close().await;
    h.finish().await;
}

/// The binary: tables, JSON, and exit codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replay_command_reports_and_fails_loudly() {
    let h = Harness::sqlite().await;
    h.administrators().await;
    let store = h.store.url();
    let bin = env!("CARGO_BIN_EXE_replay");
    let run =
        |args: &[&str]| std::process::Command::new(bin).args(["--store", &store]).args(args).output().expect("runs");

    let table = run(&["history", "--user", "admin"]);
    assert!(table.status.success());
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.starts_with("POSITION") && text.contains("***ROOT*** granted CreateAdmin to admin"), "{text}");
    let json = run(&["history", "--all", "--format", "json"]);
    let entries: Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(entries[0]["event_type"], "ServerConfigInitialized");
    assert!(!String::from_utf8_lossy(&json.stderr).contains('█'), "no progress bar when piped");
    assert_eq!(run(&["history"]).status.code(), Some(2));

    let verified = run(&["verify"]);
    assert!(String::from_utf8_lossy(&verified.stdout).starts_with("chain intact"));
    assert!(verified.status.success(), "{}", String::from_utf8_lossy(&verified.stdout));
    // The log records that it is witnessed: without its witness file, verify fails.
    let witness = h.store.witness_file();
    let aside = witness.with_extension("moved");
    std::fs::rename(&witness, &aside).expect("moved away");
    let unwitnessed = run(&["verify"]);
    let text = String::from_utf8_lossy(&unwitnessed.stdout);
    assert_eq!(unwitnessed.status.code(), Some(1), "{text}");
    assert!(text.contains("a MISSING witness is evidence"), "{text}");
    let given = run(&["verify", "--witness", aside.to_str().expect("a path")]);
    assert!(given.status.success(), "{}", String::from_utf8_lossy(&given.stdout));
    std::fs::rename(&aside, &witness).expect("moved back");
    // A head pinned beyond the log's end: truncated, exit 1.
    let beyond = format!("999999:{}", "ab".repeat(32));
    let truncated = run(&["verify", "--head", &beyond]);
    let text = String::from_utf8_lossy(&truncated.stdout);
    assert_eq!(truncated.status.code(), Some(1), "{text}");
    assert!(text.contains("--head: the log is TRUNCATED: a head was signed at position 999999"), "{text}");
    assert_eq!(run(&["verify", "--head", "12:nothex"]).status.code(), Some(2), "a malformed head is a usage error");
    // Against the live server's projections, as an Admin sees their digest.
    let admin = h.login("admin", USER_PASSWORD).await;
    let live = std::process::Command::new(bin)
        .args(["--store", &store, "verify", "--server", &h.base])
        .env("AUTHLEDGER_ADMIN_TOKEN", &admin)
        .output()
        .expect("runs");
    let text = String::from_utf8_lossy(&live.stdout);
    assert!(live.status.success() && text.contains("match the live server's at position"), "{text}");
    let refused = std::process::Command::new(bin)
        .args(["--store", &store, "verify", "--server", &h.base])
        .env("AUTHLEDGER_ADMIN_TOKEN", "NOPE")
        .output()
        .expect("runs");
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("10020 Invalid token"));
    // A user's state as a table: one line per token and per SSH certificate.
    let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPPs2rJNNxAeNELDM1aoE0AOY5kfVLtcwSSQS39pFubW";
    let cert = ok(h.post("/api/V2/certs/ssh", Some(&admin), json!({"public_key": key, "ttl": 3600})).await).await;
    let serial = cert["serial"].as_str().expect("a serial").to_owned();
    let as_of = run(&["as-of", &(h.now() + 1_000).to_string(), "--user", "admin"]);
    let text = String::from_utf8_lossy(&as_of.stdout);
    let line = text.lines().find(|l| l.contains(&serial)).unwrap_or_default();
    assert!(line.starts_with("    ") && line.contains("for admin, valid 20"), "{text}");
    assert!(line.contains(", key SHA256:"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("custom_roles") && l.ends_with(" -")), "{text}");
    h.store.execute("UPDATE {events} SET metadata = '{}' WHERE position = 3").await;
    let broken = run(&["verify", "--format", "json"]);
    assert_eq!(broken.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&broken.stdout).expect("JSON");
    assert_eq!((report["chain"].clone(), report["position"].clone()), (json!("broken"), json!(3)));
    h.finish().await;
}

async fn as_of_answers_between_two_changes(h: Harness) -> Harness {
    let t0 = common::TEST_EPOCH;
    let (_root, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    h.advance(1_000);
    ok(h.post("/admin/user/alice/roles", Some(&admin), json!({"roles": ["DevToken"]})).await).await;
    h.advance(1_000);
    ok(h.post("/admin/user/alice/roles", Some(&admin), json!({"roles": ["DevToken", "ServToken"]})).await).await;
    let agent = ok(h.post("/api/V2/token", Some(&alice), json!({"name": "nightly"})).await).await;
    let agent_id: uuid::Uuid = agent["id"].as_str().expect("a string field").parse().expect("a token id");
    h.advance(1_000);
    ok(h.post("/admin/user/alice/disable", Some(&admin), json!({"disable": true, "disabledreason": "audit"})).await)
        .await;
    let store = read_only(&h).await;
    let log = &store.log;
    let name = UserName::parse(Some("alice")).expect("a name");

    let between = replay::user_as_of(log, &name, t0 + 1_500).await.expect("as-of").expect("alice existed");
    assert_eq!(between.roles, ["DevToken"]);
    assert_eq!(between.tokens.len(), 1, "only her login token: {between:?}");
    assert_eq!(between.disabled, None);
    let after = replay::user_as_of(log, &name, t0 + 2_500).await.expect("as-of").expect("alice existed");
    assert_eq!(after.roles, ["DevToken", "ServToken"]);
    assert!(after.tokens.iter().any(|t| t.id == agent_id && t.name.as_deref() == Some("nightly")));
    let disabled = replay::user_as_of(log, &name, t0 + 3_500).await.expect("as-of").expect("alice existed");
    assert_eq!(disabled.disabled.as_deref(), Some("audit"));
    assert!(disabled.tokens.is_empty());
    assert!(replay::user_as_of(log, &name, t0 - 1).await.expect("as-of").is_none(), "not yet created");

    let valid = replay::token_as_of(log, agent_id, t0 + 2_500).await.expect("as-of");
    assert!(valid.valid && valid.because.is_none(), "{valid:?}");
    let ended = replay::token_as_of(log, agent_id, t0 + 3_500).await.expect("as-of");
    assert!(!ended.valid);
    assert_eq!(ended.ended_by.as_ref().map(|e| e.event_type.as_str()), Some("UserDisabled"));
    assert!(ended.because.as_deref().is_some_and(|b| b.contains("admin disabled alice: audit")), "{ended:?}");
    let early = replay::token_as_of(log, agent_id, t0 + 1_500).await.expect("as-of");
    assert_eq!(early.because.as_deref(), Some("no such token had been issued by then"));
    let admin_view = h.get("/api/V2/token", Some(&admin)).await.json();
    let admin_token: uuid::Uuid = admin_view["id"].as_str().expect("a string field").parse().expect("an id");
    let expired = replay::token_as_of(log, admin_token, t0 + 15 * 86_400_000).await.expect("as-of");
    assert!(
        !expired.valid && expired.because.as_deref().is_some_and(|b| b.starts_with("it expired at")),
        "{expired:?}"
    );
    log.close().await;
    h
}
on_both_stores!(as_of_answers_between_two_changes, test_mode);

async fn writable(h: &Harness) -> authledger::store::Store {
    let options = h.store.options();
    replay::open(&options.store_url, options.store).await.expect("the log opens")
}

async fn a_checkpoint_is_loaded_at_start_up_and_answers_the_same(h: Harness) -> Harness {
    let (alice, live) = every_kind_of_event(&h, None).await;
    let before = same_answers(&h, &alice, &live).await;
    let head = h.server.ledger.log.head().await.expect("head");
    assert_eq!(h.server.ledger.checkpoint, None, "no checkpoint yet: folded from the start");

    let store = writable(&h).await;
    let log = &store.log;
    let rule = authledger::domain::canonical::Canonicalization::default();
    let (position, digest, bytes) = replay::rebuild(&store, rule).await.expect("rebuild");
    assert_eq!(position, head);
    assert!(bytes > 0 && digest.len() == 64);
    let check = replay::verify_checkpoint(&store, rule).await.expect("verify").expect("a checkpoint");
    assert!(check.matches(), "{check:?}");
    // One projection rebuilt, the others carried forward: the same state.
    for part in [replay::Part::UserDirectory, replay::Part::Access] {
        let part = replay::rebuild_part(&store, rule, part).await.expect("rebuild");
        assert!(part.carried_forward);
        assert_eq!((part.position, part.digest.clone()), (head, digest.clone()));
    }
    log.close().await;

    let h = h.restart().await;
    assert_eq!(h.server.ledger.checkpoint, Some(head), "started from the checkpoint");
    assert_eq!(same_answers(&h, &alice, &live).await, before);
    // The live state at the checkpoint's position is the checkpoint, byte for byte.
    assert_eq!(h.server.ledger.projections.read().checkpoint().digest(), digest);
    // Events after the checkpoint fold on top of it, and survive another restart.
    let newer = h.agent_token(&alice, "after the checkpoint").await;
    let newer_head = h.server.ledger.projections.position();
    assert!(newer_head > head);
    // The server wrote its own checkpoint at shutdown: the restart starts from the newer head.
    let h = h.restart().await;
    assert_eq!(h.server.ledger.checkpoint, Some(newer_head));
    assert_eq!(h.get("/api/V2/token", Some(&newer)).await.json()["name"], "after the checkpoint");
    let from_checkpoint = same_answers(&h, &alice, &live).await;
    // Carried forward past newer events, the other projections fold on to the new head.
    let store = writable(&h).await;
    let log = &store.log;
    let part = replay::rebuild_part(&store, rule, replay::Part::TokenIndex).await.expect("rebuild");
    let now_head = h.server.ledger.log.head().await.expect("head");
    assert_eq!(part.position, now_head);
    assert_eq!(part.digest, replay::digest_at(log, rule, now_head).await.expect("digest"));
    log.close().await;

    // A checkpoint that was not made from this log (its chain differs) is ignored.
    h.store.execute("UPDATE {checkpoints} SET chain = 'feed'").await;
    let h = h.restart().await;
    assert_eq!(h.server.ledger.checkpoint, None, "folded from the start instead");
    assert_eq!(same_answers(&h, &alice, &live).await, from_checkpoint, "checkpoint + tail = the whole fold");

    // A checkpoint whose state differs from a fresh rebuild is reported.
    h.store.execute("UPDATE {checkpoints} SET digest = 'not the digest'").await;
    let store = read_only(&h).await;
    let log = &store.log;
    let check = replay::verify_checkpoint(&store, rule).await.expect("verify").expect("a checkpoint");
    assert!(!check.matches());
    log.close().await;
    h
}
on_both_stores!(a_checkpoint_is_loaded_at_start_up_and_answers_the_same);

/// The witness signs the log's head (served to auditors, kept in the witness
/// file outside the database, signed again at shutdown); deleting the newest
/// rows, which the chain alone cannot reveal, is reported as a truncation —
/// against the witness file and against a head an auditor pinned.
async fn deleting_the_newest_rows_is_caught_by_the_signed_head(h: Harness) -> Harness {
    use authledger::store::witness::{HeadCheck, SignedHead};
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "alice").await;
    let served = ok(h.get("/api/V2/admin/head", Some(&admin)).await).await;
    let head: SignedHead = serde_json::from_value(served["head"].clone()).expect("a signed head");
    assert_eq!(head.public_key, served["public_key"].as_str().expect("a key"));
    head.verify(Some(&head.public_key)).expect("it verifies");
    assert!(head.position > 0);
    let alice = h.login("alice", USER_PASSWORD).await;
    assert_eq!(h.get("/api/V2/admin/head", Some(&alice)).await.status, 403, "auditors only");

    // Shutdown signs the final head into the witness file.
    let store = h.store.clone();
    let final_head = h.server.ledger.log.head().await.expect("head");
    let pinned = (head.position, head.chain.clone());
    let h = h.restart().await;
    let on_file = SignedHead::read(&store.witness_file()).expect("the witness file");
    assert_eq!(on_file.position, final_head);
    on_file.verify(Some(&head.public_key)).expect("the same key after a restart");

    let reader = read_only(&h).await;
    let holds =
        replay::check_heads(&reader.log, Some(&store.witness_file()), Some(&head.public_key), Some(pinned.clone()))
            .await
            .expect("checked");
    assert!(holds.iter().all(replay::HeadReport::holds), "{holds:?}");
    // Another pinned key: the witness file's signature is refused.
    let other =
        replay::check_heads(&reader.log, Some(&store.witness_file()), Some("AAAA"), None).await.expect("checked");
    assert_eq!(other[0].signature.as_deref(), Some("the signed head's public key is not the pinned one"));
    reader.log.close().await;

    // Someone deletes the newest rows: the chain still verifies, the signed heads do not hold.
    h.server.stop().await.expect("stops");
    store.execute(&format!("DELETE FROM {{events}} WHERE position > {}", pinned.0 - 2)).await;
    let reader = read_only_store(&store).await;
    assert!(reader.log.verify_chain(None, |_| {}).await.expect("readable").is_ok(), "the chain alone sees nothing");
    let reports = replay::check_heads(&reader.log, Some(&store.witness_file()), None, Some(pinned.clone()))
        .await
        .expect("checked");
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].check, HeadCheck::Truncated { position: final_head, log_head: pinned.0 - 2 });
    assert_eq!(reports[1].check, HeadCheck::Truncated { position: pinned.0, log_head: pinned.0 - 2 });
    // Without its witness file, a log that records being witnessed does not verify either.
    let unwitnessed = replay::check_heads(&reader.log, None, None, None).await.expect("checked");
    assert!(matches!(unwitnessed[0].check, HeadCheck::WitnessMissing { .. }), "{unwitnessed:?}");
    assert!(!unwitnessed[0].holds());
    reader.log.close().await;
    // A server on the truncated log is not ready and refuses writes (reads go on); the witness file
    // keeps its head as evidence.
    let h = Harness::start(store.clone()).await;
    let ready = h.get("/readyz", None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert!(ready.json()["refused"].as_str().is_some_and(|r| r.contains("TRUNCATED")), "{}", ready.text);
    let refused = h.post("/api/V2/token", Some(&admin), json!({"name": "after"})).await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(refused.json()["error"]["message"].as_str().is_some_and(|m| m.contains("until an operator acts")));
    assert_eq!(h.get("/api/V2/token", Some(&admin)).await.status, 200, "introspection goes on");
    assert_eq!(h.get("/api/V2/admin/head", Some(&admin)).await.status, 503, "no head is signed over the evidence");
    assert_eq!(SignedHead::read(&store.witness_file()).expect("kept").position, final_head);
    // The operator accepts the loss: recorded, the old file kept aside, a new one started; the server serves.
    let accepted =
        authledger::app::witness::accept(&h.server.ledger, &h.server.witness, "restored last night's backup")
            .await
            .expect("accepted");
    assert!(matches!(accepted, authledger::app::witness::Accepted::Reset { aside: Some(_), .. }), "{accepted:?}");
    let since = std::time::Instant::now();
    while h.get("/readyz", None).await.status != 200 {
        assert!(since.elapsed() < std::time::Duration::from_secs(10), "the server never saw the new witness file");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    ok(h.post("/api/V2/token", Some(&admin), json!({"name": "after"})).await).await;
    assert!(
        SignedHead::read(&store.witness_file()).expect("a new file").position <= h.server.ledger.projections.position()
    );
    let reset = h.store.payloads("WitnessReset").await;
    assert_eq!(reset.len(), 1);
    assert_eq!(reset[0]["position"], json!(final_head), "{reset:?}");
    h
}
on_both_stores!(deleting_the_newest_rows_is_caught_by_the_signed_head);

async fn read_only_store(store: &TestStore) -> authledger::store::Store {
    let mut options = store.options();
    options.store.read_only = true;
    authledger::store::Store::open(
        &options.store_url,
        options.store,
        std::sync::Arc::new(authledger::clock::SystemClock),
    )
    .await
    .expect("the log opens")
}

/// A forgotten log moves with its redactions: the export names no one and
/// verifies, the import verifies, and an export stripped of its redactions
/// is refused where the first rewritten row is.
async fn a_forgotten_log_moves_with_its_redactions(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "zelda").await;
    h.post("/api/V2/token", Some(&login), json!({"name": "zelda's script"})).await;
    let answer = h.post("/admin/user/zelda/forget", Some(&admin), json!({"reason": "asked to be forgotten"})).await;
    assert_eq!(answer.status, 204, "{}", answer.text);

    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("log.jsonl");
    let store = read_only(&h).await;
    let mut out = std::fs::File::create(&file).expect("a file");
    let exported = replay::export(&store, &mut out, |_| {}).await.expect("export");
    store.log.close().await;
    assert!(exported.redactions >= 5, "{exported:?}");
    let text = std::fs::read_to_string(&file).expect("the export");
    assert!(!text.contains("zelda"), "the export names no one");
    let path = file.to_str().expect("a path");
    assert_eq!(replay::verify_file(path).expect("the export verifies"), exported);

    let target = match &h.store {
        TestStore::Sqlite { .. } => TestStore::sqlite(),
        TestStore::Postgres { .. } => TestStore::postgres().await.expect("PostgreSQL"),
    };
    let options = target.options();
    let moved = replay::open(
        &options.store_url,
        StoreOptions { table_prefix: options.store.table_prefix.clone(), ..StoreOptions::default() },
    )
    .await
    .expect("open the target");
    replay::import(path, &moved).await.expect("import");
    let verified = moved.log.verify_chain(None, |_| {}).await.expect("readable").expect("the moved log verifies");
    assert_eq!((verified.forgets(), verified.rewritten()), (1, exported.redactions as i64));
    moved.log.close().await;
    target.cleanup().await;

    // Without its redactions, the rewritten rows do not match their chain.
    let stripped = dir.path().join("stripped.jsonl");
    let kept: Vec<&str> = text.lines().filter(|l| !l.contains("\"kind\":\"redaction\"")).collect();
    std::fs::write(&stripped, kept.join("\n")).expect("written");
    let refused = replay::verify_file(stripped.to_str().expect("a path")).expect_err("refused");
    assert!(refused.to_string().contains("does not match its chain"), "{refused}");
    h
}
on_both_stores!(a_forgotten_log_moves_with_its_redactions);
