//! Secrets never enter the store in the clear: tokens appear only as their
//! SHA-256, passwords only as argon2id hashes (in the secrets table, referenced
//! by id; a replaced hash is deleted) — and every row of the secrets table
//! (password hashes, TOTP seeds, CA private keys) is sealed under a key kept
//! outside the database: a store opens only with its key, rows in the clear
//! are refused until an operator seals them, and a rotation moves every row to a new key — on both stores.

use crate::common;

use std::sync::Arc;

use authledger::app::ledger::Ledger;
use authledger::clock::{Clock, ManualClock, SystemClock};
use authledger::store::SecretsKey;
use authledger::store::keyring::Keyring;
use common::{Harness, ROOT_PASSWORD, TEST_EPOCH, TestStore, USER_PASSWORD};
use serde_json::json;

async fn the_store_holds_no_raw_token_or_password(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let created = h
        .post(
            "/admin/localaccount/create",
            Some(&admin),
            json!({"user": "zoe", "display": "Z", "email": "z@example.org"}),
        )
        .await;
    let temporary = created.json()["pwd"].as_str().expect("a string field").to_owned();
    let before = h.store.secret_rows().await;
    let reset =
        h.post("/localaccount/reset", None, json!({"user": "zoe", "pwdold": temporary, "pwdnew": USER_PASSWORD})).await;
    assert_eq!(reset.status, 204);
    let login = h.login("zoe", USER_PASSWORD).await;
    let agent = h.agent_token(&login, "a").await;
    let dump = h.store.dump().await + &h.store.raw_files();
    assert!(dump.contains("TokenIssued") && dump.contains("v1:"), "the dump covers events and secrets");
    for secret in [&root, &admin, &login, &agent, &temporary, &ROOT_PASSWORD.to_owned(), &USER_PASSWORD.to_owned()] {
        assert!(!dump.contains(secret.as_str()), "a raw secret of {} chars is stored", secret.len());
    }
    // The temporary password's hash was forgotten when it was replaced.
    let passwords = |rows: Vec<(String, String, String)>| rows.into_iter().filter(|r| r.1 == "password").count();
    assert_eq!(passwords(h.store.secret_rows().await), passwords(before), "one hash replaced by another");
    h
}
on_both_stores!(the_store_holds_no_raw_token_or_password);

/// A server on `store` whose clock the test moves (second-factor codes).
async fn manual(store: TestStore) -> Harness {
    let clock = ManualClock::new(TEST_EPOCH);
    let shared: Arc<dyn Clock> = clock.clone();
    let mut h = Harness::start_with(store, shared, |_| {}).await;
    h.manual = Some(clock);
    h
}

/// Accounts whose secrets are all of the kinds the store keeps: root's and
/// alice's password hashes, carol's password and TOTP seed (an invitation),
/// and both CAs' private keys (start-up). Returns an admin token and carol's TOTP.
async fn every_kind_of_secret(h: &Harness) -> (String, totp_rs::Totp) {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "alice").await;
    let (_, totp) = h.invited_user(&admin, json!({"user": "carol"}), USER_PASSWORD).await;
    (admin, totp)
}

/// Every secret still works: passwords, a second factor (past the code the
/// invitation spent), a certificate signed by the user CA.
async fn every_secret_works(h: &Harness, totp: &totp_rs::Totp) {
    h.login("alice", USER_PASSWORD).await;
    h.advance(30_000);
    let body = json!({"user": "carol", "pwd": USER_PASSWORD, "second_factor_token": h.code(totp)});
    let carol = h.post("/localaccount/login", None, body).await;
    assert_eq!(carol.status, 200, "carol signs in with her second factor: {}", carol.text);
    let carol = carol.json()["token"].as_str().expect("a token").to_owned();
    let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).expect("a key");
    let public = key.public_key().to_openssh().expect("a public key");
    let cert = h.post("/api/V2/certs/ssh", Some(&carol), json!({"public_key": public, "ttl": 600})).await;
    assert_eq!(cert.status, 200, "the user CA signs: {}", cert.text);
}

/// Which key each row of the secrets table is sealed under (`None`: plaintext).
async fn sealed_under(store: &TestStore) -> Vec<Option<String>> {
    let rows = store.secret_rows().await;
    rows.iter().map(|(_, _, s)| authledger::store::keyring::sealed_key_id(s).map(str::to_owned)).collect()
}

async fn every_stored_secret_is_sealed(store: TestStore) {
    let h = manual(store).await;
    let (_, totp) = every_kind_of_secret(&h).await;
    let keyring = Keyring::open(&h.store.key_file()).expect("the key file");
    let rows = h.store.secret_rows().await;
    let mut kinds: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(
        kinds,
        ["ca-host", "ca-user", "device-marks", "password", "totp", "witness"],
        "every kind of secret is covered"
    );
    assert_eq!(sealed_under(&h.store).await, vec![Some(keyring.current_id()); rows.len()]);
    let dump = h.store.dump().await + &h.store.raw_files();
    assert!(dump.contains("v1:"), "the dump holds the secrets table");
    assert!(!dump.contains("OPENSSH PRIVATE KEY"), "a CA's private key is readable");
    assert!(!dump.contains("$argon2"), "a password hash is readable");
    let seed = totp.secret().to_base32();
    assert!(!dump.contains(&seed) && !dump.to_lowercase().contains(&seed.to_lowercase()), "the TOTP seed is readable");
    if let TestStore::Sqlite { .. } = h.store {
        // The default key file, beside the log, is its owner's only.
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(h.store.key_file()).expect("the key file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    every_secret_works(&h, &totp).await;
    h.finish().await;
}

async fn a_store_opens_only_with_its_key(store: TestStore) {
    let h = Harness::start(store.clone()).await;
    h.root_token().await;
    let needed = Keyring::open(&store.key_file()).expect("the key file").current_id();
    h.server.stop().await.expect("the server stops");

    let other = tempfile::tempdir().expect("a directory");
    let other_key = other.path().join("other.key");
    let other_id = authledger::app::secrets::new_key(&other_key).expect("a key file");
    let mut options = store.options();
    options.store.secrets_key = SecretsKey::File(other_key);
    let refused = Ledger::open(options, Arc::new(SystemClock)).await.err().expect("refused").to_string();
    assert!(
        refused.contains("secrets_key_file") && refused.contains(&needed) && refused.contains(&other_id),
        "{refused}"
    );

    let mut options = store.options();
    options.store.secrets_key = SecretsKey::File(other.path().join("missing.key"));
    let refused = Ledger::open(options, Arc::new(SystemClock)).await.err().expect("refused").to_string();
    assert!(refused.contains("secrets_key_file") && refused.contains("missing.key"), "{refused}");

    // PostgreSQL has no default key.
    let mut options = store.options();
    options.store.secrets_key = SecretsKey::Beside;
    let opened = Ledger::open(options, Arc::new(SystemClock)).await;
    match &store {
        TestStore::Postgres { .. } => {
            let refused = opened.err().expect("refused").to_string();
            assert!(refused.contains("secrets_key_file") && refused.contains("required with PostgreSQL"), "{refused}");
        }
        TestStore::Sqlite { .. } => opened.expect("the default key opens").close().await,
    }
    Harness::start(store).await.finish().await;
}

async fn plaintext_secrets_are_refused_until_an_operator_seals_them(store: TestStore) {
    let h = manual(store.clone()).await;
    let (_, totp) = every_kind_of_secret(&h).await;
    h.server.stop().await.expect("the server stops");
    // A log from before sealing (or rows planted by whoever can write to the database): every row in the clear.
    let keyring = Keyring::open(&store.key_file()).expect("the key file");
    let rows = store.secret_rows().await;
    for (id, kind, stored) in &rows {
        let plain = keyring.open_secret(id, kind, stored).expect("opens");
        store.execute(&format!("UPDATE {{secrets}} SET secret = '{plain}' WHERE id = '{id}'")).await;
    }
    assert!(sealed_under(&store).await.iter().all(Option::is_none));
    let refused = Ledger::open(store.options(), Arc::new(SystemClock)).await.err().expect("refused").to_string();
    assert!(refused.contains("authledger secrets seal"), "{refused}");
    let sealed = authledger::app::secrets::seal(&store.options()).await.expect("sealed");
    assert_eq!(sealed, rows.len() as u64);
    assert!(sealed_under(&store).await.iter().all(|k| k.as_deref() == Some(keyring.current_id().as_str())));
    assert!(!store.dump().await.contains("$argon2"));
    let h = manual(store).await;
    every_secret_works(&h, &totp).await;
    h.finish().await;
}

async fn a_rotation_moves_every_secret_to_a_new_key(store: TestStore) {
    let h = manual(store).await;
    let (_, totp) = every_kind_of_secret(&h).await;
    let key_file = h.store.key_file();
    let old = tempfile::tempdir().expect("a directory");
    std::fs::copy(&key_file, old.path().join("old.key")).expect("a copy of the old key");
    let old = Keyring::open(&old.path().join("old.key")).expect("the old key");
    let rows = h.store.secret_rows().await.len() as u64;

    // Rotated while the server runs; the new file is then moved over the one it reads.
    let new_file = key_file.with_extension("rotated");
    let rotated = authledger::app::secrets::rotate_key(&h.store.options(), &new_file).await.expect("rotated");
    assert_eq!(rotated.resealed, rows);
    assert_eq!(rotated.kept, vec![old.current_id()]);
    assert_ne!(rotated.key, old.current_id());
    assert_eq!(sealed_under(&h.store).await, vec![Some(rotated.key.clone()); rows as usize]);
    for (id, kind, stored) in h.store.secret_rows().await {
        assert!(old.open_secret(&id, &kind, &stored).is_err(), "the old key still opens a {kind} row");
    }
    // The configuration still names the old file, which no longer opens the store.
    let stale = authledger::app::secrets::rotate_key(&h.store.options(), &key_file.with_extension("again")).await;
    let stale = stale.expect_err("refused").to_string();
    assert!(stale.contains("secrets_key_file") && stale.contains(&rotated.key), "{stale}");
    std::fs::rename(&new_file, &key_file).expect("moved over");
    // A rotation never overwrites a key file.
    let onto = authledger::app::secrets::rotate_key(&h.store.options(), &key_file).await;
    assert!(onto.expect_err("refused").to_string().contains("cannot create the secrets key file"));
    assert_eq!(sealed_under(&h.store).await, vec![Some(rotated.key.clone()); rows as usize]);
    every_secret_works(&h, &totp).await;
    let h = h.restart().await;
    every_secret_works(&h, &totp).await;
    h.finish().await;
}

crate::on_both_stores_from_store!(
    every_stored_secret_is_sealed,
    a_store_opens_only_with_its_key,
    plaintext_secrets_are_refused_until_an_operator_seals_them,
    a_rotation_moves_every_secret_to_a_new_key,
);

/// A key file its group or others can read is refused at start, in one line
/// naming the fix (as ssh refuses such a private key).
async fn a_key_file_others_can_read_is_refused_with_the_fix(store: TestStore) {
    use std::os::unix::fs::PermissionsExt;
    let h = Harness::start(store.clone()).await;
    h.root_token().await;
    h.server.stop().await.expect("the server stops");
    let key = store.key_file();
    for mode in [0o644, 0o640, 0o606] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let refused = Ledger::open(store.options(), Arc::new(SystemClock)).await.err().expect("refused").to_string();
        assert!(refused.contains(&format!("chmod 600 {}", key.display())), "{mode:o}: {refused}");
        assert!(!refused.contains('\n'), "one line: {refused}");
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    Harness::start(store).await.finish().await;
}

/// The default key file gone while the store holds secrets sealed under it:
/// a clear error, and no new key file (which would open nothing) left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_default_key_is_an_error_that_makes_no_new_key() {
    let store = TestStore::sqlite();
    let h = Harness::start(store.clone()).await;
    h.root_token().await;
    let needed = Keyring::open(&store.key_file()).expect("the key file").current_id();
    h.server.stop().await.expect("the server stops");
    std::fs::remove_file(store.key_file()).expect("removed");
    let refused = Ledger::open(store.options(), Arc::new(SystemClock)).await.err().expect("refused").to_string();
    assert!(refused.contains("is missing") && refused.contains(&needed), "{refused}");
    assert!(!store.key_file().exists(), "no new key file was made");
}

crate::on_both_stores_from_store!(a_key_file_others_can_read_is_refused_with_the_fix);
