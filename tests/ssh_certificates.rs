//! SSH certificate authorities and user certificates over HTTP, on both
//! stores: the public keys, certificates checked with the ssh-key crate and
//! `ssh-keygen -L` (principals, validity, signer), the TTL bound, who may ask
//! for whom, logins, rotation, and the auditor's list of certificates.

use crate::common;

use common::Harness;
use serde_json::{Value, json};
use ssh_key::certificate::CertType;
use ssh_key::{Algorithm, Certificate, Fingerprint, HashAlg, PrivateKey, PublicKey};

fn new_key() -> PrivateKey {
    PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519).expect("a key")
}

fn public_line(key: &PrivateKey) -> String {
    key.public_key().to_openssh().expect("an OpenSSH public key")
}

fn ca_fingerprint(ca: &Value) -> Fingerprint {
    let key = PublicKey::from_openssh(ca["public_key"].as_str().expect("a public key")).expect("parses");
    key.fingerprint(HashAlg::Sha256)
}

async fn request_cert(h: &Harness, token: &str, body: Value) -> common::Answer {
    h.post("/api/V2/certs/ssh", Some(token), body).await
}

/// `ssh-keygen -L` on a certificate: its printed description.
fn ssh_keygen_describe(certificate: &str) -> String {
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("id-cert.pub");
    std::fs::write(&path, certificate).expect("write the certificate");
    let out =
        std::process::Command::new("ssh-keygen").arg("-L").arg("-f").arg(&path).output().expect("ssh-keygen runs");
    assert!(out.status.success(), "ssh-keygen -L failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn authorities_are_published_and_survive_a_restart(h: Harness) -> Harness {
    let ca = h.get("/api/V2/ca", None).await;
    assert_eq!(ca.status, 200, "{}", ca.text);
    let ca = ca.json();
    for kind in ["user", "host"] {
        let key = ca[kind]["public_key"].as_str().expect("a public key");
        assert!(key.starts_with("ssh-ed25519 "), "{key}");
        assert!(ca[kind]["fingerprint"].as_str().is_some_and(|f| f.starts_with("SHA256:")));
    }
    assert_ne!(ca["user"]["public_key"], ca["host"]["public_key"]);
    assert_eq!(
        ca["user"]["authorized_keys"],
        json!(format!("cert-authority {}", ca["user"]["public_key"].as_str().expect("a string field")))
    );
    assert_eq!(
        ca["host"]["known_hosts"],
        json!(format!(
            "@cert-authority *.example.org,example.org {}",
            ca["host"]["public_key"].as_str().expect("a string field")
        ))
    );
    // The private keys are in the credentials store (sealed), never in an event.
    let kinds: Vec<String> = h.store.secret_rows().await.into_iter().map(|(_, kind, _)| kind).collect();
    assert_eq!(kinds.iter().filter(|k| k.starts_with("ca-")).count(), 2, "the keys are stored: {kinds:?}");
    assert!(!h.store.dump().await.contains("OPENSSH PRIVATE KEY"));
    let h = h.restart().await;
    let again = h.get("/api/V2/ca", None).await.json();
    assert_eq!(again["user"]["fingerprint"], ca["user"]["fingerprint"], "a restart keeps the authority");
    assert_eq!(again["host"]["fingerprint"], ca["host"]["fingerprint"]);
    let h = h.restart_with(|o| o.ssh.known_hosts_pattern = Some("*.example.internal".into())).await;
    let scoped = h.get("/api/V2/ca", None).await.json();
    assert_eq!(
        scoped["host"]["known_hosts"],
        json!(format!(
            "@cert-authority *.example.internal {}",
            ca["host"]["public_key"].as_str().expect("a string field")
        ))
    );
    h
}
on_both_stores!(authorities_are_published_and_survive_a_restart);

async fn a_user_certificate_carries_the_logins_validity_and_signer(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    let key = new_key();
    let answer = request_cert(&h, &alice, json!({"public_key": public_line(&key), "ttl": 3600})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["principals"], json!(["alice"]));
    let certificate = body["certificate"].as_str().expect("a certificate");
    let parsed = Certificate::from_openssh(certificate).expect("an OpenSSH certificate");
    let ca = h.get("/api/V2/ca", None).await.json();
    let now = u64::try_from(h.now() / 1000).unwrap_or(0);
    parsed.validate_at(now, [&ca_fingerprint(&ca["user"])]).expect("signed by the user CA and valid now");
    assert!(parsed.validate_at(now, [&ca_fingerprint(&ca["host"])]).is_err(), "not by the host CA");
    assert_eq!(parsed.cert_type(), CertType::User);
    assert_eq!(parsed.valid_principals(), ["alice".to_owned()]);
    assert_eq!(parsed.public_key(), key.public_key().key_data());
    assert_eq!(parsed.valid_before() - parsed.valid_after(), 3600 + 60, "the TTL, backdated a minute for skew");
    assert_eq!(parsed.serial().to_string(), body["serial"].as_str().expect("a string field"));
    let described = ssh_keygen_describe(certificate);
    assert!(described.contains("Type: ssh-ed25519-cert-v01@openssh.com user certificate"), "{described}");
    assert!(
        described
            .contains(&format!("Signing CA: ED25519 {}", ca["user"]["fingerprint"].as_str().expect("a string field"))),
        "{described}"
    );
    assert!(described.contains("Principals: \n                alice\n"), "{described}");
    assert!(described.contains("permit-pty"), "{described}");
    // An auditor asks what alice could do at a moment: her logins and the certificates valid then.
    let now = h.now();
    let then = h.get(&format!("/api/V2/admin/asof?user=alice&at={now}"), Some(&admin)).await.json();
    assert_eq!(then["logins"], json!(["alice"]));
    assert_eq!(then["certificates"][0]["serial"], body["serial"]);
    assert_eq!(then["certificates"][0]["principals"], json!(["alice"]));
    let expired_at = body["valid_before"].as_i64().unwrap_or_default();
    let later = h.get(&format!("/api/V2/admin/asof?user=alice&at={expired_at}"), Some(&admin)).await.json();
    assert_eq!(later["certificates"], json!([]), "expired by then");
    h
}
on_both_stores!(a_user_certificate_carries_the_logins_validity_and_signer);

async fn validity_is_bounded_by_the_configured_maximum(h: Harness) -> Harness {
    let h = h.restart_with(|o| o.ssh.max_user_cert_ttl_ms = 2 * 3_600_000).await;
    let (_, admin) = h.administrators().await;
    let bob = h.user_token(&admin, "bob").await;
    let answer = request_cert(&h, &bob, json!({"public_key": public_line(&new_key()), "ttl": 10 * 3600})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let parsed =
        Certificate::from_openssh(answer.json()["certificate"].as_str().expect("a string field")).expect("parses");
    assert_eq!(parsed.valid_before() - parsed.valid_after(), 2 * 3600, "the backdating counts too");
    h
}
on_both_stores!(validity_is_bounded_by_the_configured_maximum);

async fn only_an_admin_asks_for_someone_else(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    h.user_with_password(&admin, "bob").await;
    let key = public_line(&new_key());
    let before = h.store.main_log_len().await;
    let refused = request_cert(&h, &alice, json!({"public_key": key, "ttl": 60, "user": "bob"})).await;
    refused.assert_error(403, "20000 Unauthorized");
    assert_eq!(h.store.main_log_len().await, before, "nothing recorded");
    let set = h.post("/admin/user/bob/logins", Some(&admin), json!({"logins": ["bob", "deploy"]})).await;
    assert_eq!(set.status, 204, "{}", set.text);
    let granted = request_cert(&h, &admin, json!({"public_key": key, "ttl": 60, "user": "bob"})).await;
    assert_eq!(granted.status, 200, "{}", granted.text);
    assert_eq!(granted.json()["principals"], json!(["bob", "deploy"]));
    let listed = h.get("/api/V2/admin/certs?user=bob", Some(&admin)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let certs = listed.json()["certificates"].as_array().cloned().unwrap_or_default();
    assert_eq!(certs.len(), 1);
    assert_eq!(certs[0]["user"], json!("bob"));
    assert_eq!(certs[0]["requested_by"], json!("admin"));
    assert_eq!(certs[0]["principals"], json!(["bob", "deploy"]));
    assert_eq!(h.get("/api/V2/admin/certs", Some(&alice)).await.status, 403);
    // Pages, oldest first.
    let again = request_cert(&h, &alice, json!({"public_key": key, "ttl": 60})).await;
    assert_eq!(again.status, 200, "{}", again.text);
    let first = h.get("/api/V2/admin/certs?limit=1", Some(&admin)).await.json();
    assert_eq!(first["certificates"][0]["user"], json!("bob"));
    let next = first["next"].as_i64().expect("a next page");
    let second = h.get(&format!("/api/V2/admin/certs?limit=1&after={next}"), Some(&admin)).await.json();
    assert_eq!(second["certificates"][0]["user"], json!("alice"));
    assert_eq!(second["next"], Value::Null);
    h.get("/api/V2/admin/certs?limit=0", Some(&admin))
        .await
        .assert_error(400, "30001 Illegal input parameter: limit must be between 1 and 10000");
    let history = h.get("/api/V2/admin/audit?user=bob", Some(&admin)).await.json();
    let types: Vec<&str> =
        history["events"].as_array().into_iter().flatten().filter_map(|e| e["event_type"].as_str()).collect();
    assert!(types.contains(&"UserCertIssued") && types.contains(&"LoginsChanged"), "{types:?}");
    h
}
on_both_stores!(only_an_admin_asks_for_someone_else);

async fn bad_certificate_requests_are_refused_and_write_nothing(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    let key = public_line(&new_key());
    let before = h.store.main_log_len().await;
    let cases = [
        (json!({"ttl": 60}), 400, "30000 Missing input parameter: public_key"),
        (
            json!({"public_key": key, "ttl": 0}),
            400,
            "30001 Illegal input parameter: ttl must be a positive number of seconds",
        ),
        (json!({"public_key": key}), 400, "30000 Missing input parameter: ttl"),
        (json!({"public_key": key, "ttl": 60, "user": "nobody"}), 404, "50000 No such user: nobody"),
        (
            json!({"public_key": key, "ttl": 60, "extra": 1}),
            400,
            "30001 Illegal input parameter: Unexpected parameters in request: extra",
        ),
    ];
    for (body, status, message) in cases {
        let answer = request_cert(&h, if status == 404 { &admin } else { &alice }, body).await;
        answer.assert_error(status, message);
    }
    let garbage = request_cert(&h, &alice, json!({"public_key": "ssh-ed25519 not-base64!", "ttl": 60})).await;
    assert_eq!(garbage.status, 400, "{}", garbage.text);
    assert!(
        garbage.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("30001 Illegal input parameter: public_key is not an OpenSSH public key")
    );
    for (logins, message) in [
        (json!([]), "30001 Illegal input parameter: At least one login is required"),
        (
            json!(["a,b"]),
            "30001 Illegal input parameter: Illegal login \"a,b\": 1 to 100 characters of A-Z a-z 0-9 _ . -, not starting with . or -",
        ),
    ] {
        h.post("/admin/user/alice/logins", Some(&admin), json!({"logins": logins})).await.assert_error(400, message);
    }
    let anonymous = h.post("/api/V2/certs/ssh", None, json!({"public_key": key, "ttl": 60})).await;
    anonymous.assert_error(400, "10010 No authentication token: No user token provided");
    assert_eq!(h.store.main_log_len().await, before, "nothing recorded");
    assert_eq!(h.get("/api/V2/ca", None).await.status, 200, "still serving");
    h
}
on_both_stores!(bad_certificate_requests_are_refused_and_write_nothing);

async fn rotation_replaces_the_signing_key(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let before = h.get("/api/V2/ca", None).await.json();
    let rotated = h.post("/api/V2/admin/ca/rotate", Some(&admin), json!({"ca": "user"})).await;
    assert_eq!(rotated.status, 200, "{}", rotated.text);
    let after = h.get("/api/V2/ca", None).await.json();
    assert_ne!(after["user"]["fingerprint"], before["user"]["fingerprint"]);
    assert_eq!(after["host"]["fingerprint"], before["host"]["fingerprint"]);
    let answer = request_cert(&h, &admin, json!({"public_key": public_line(&new_key()), "ttl": 60})).await;
    let parsed =
        Certificate::from_openssh(answer.json()["certificate"].as_str().expect("a string field")).expect("parses");
    let now = u64::try_from(h.now() / 1000).unwrap_or(0);
    parsed.validate_at(now, [&ca_fingerprint(&after["user"])]).expect("signed by the new key");
    assert!(parsed.validate_at(now, [&ca_fingerprint(&before["user"])]).is_err());
    let alice = h.user_token(&admin, "alice").await;
    h.post("/api/V2/admin/ca/rotate", Some(&alice), json!({"ca": "user"}))
        .await
        .assert_error(403, "20000 Unauthorized");
    h.post("/api/V2/admin/ca/rotate", Some(&admin), json!({"ca": "db"})).await.assert_error(
        400,
        "30001 Illegal input parameter: Unknown certificate authority \"db\": expected user or host",
    );
    h
}
on_both_stores!(rotation_replaces_the_signing_key);

/// The fingerprint of the key that signed `certificate`.
fn signer_of(certificate: &Value) -> String {
    let parsed = Certificate::from_openssh(certificate.as_str().expect("a certificate")).expect("parses");
    parsed.signature_key().fingerprint(HashAlg::Sha256).to_string()
}

async fn signed_now_by(h: &Harness, token: &str) -> String {
    let answer = request_cert(h, token, json!({"public_key": public_line(&new_key()), "ttl": 3600})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    signer_of(&answer.json()["certificate"])
}

async fn rotate(h: &Harness, admin: &str, ca: &str, phase: &str) -> common::Answer {
    h.post("/api/V2/admin/ca/rotate", Some(admin), json!({"ca": ca, "phase": phase})).await
}

/// A rotation in phases, as Teleport's: the new key is trusted before it
/// signs, both are published while hosts and clients catch up, the old one is
/// dropped last; a rollback returns to the old key; the as-of view marks a
/// certificate untrusted once its signing key has left the trusted set.
async fn a_rotation_in_phases_keeps_both_keys_trusted_until_standby(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    async fn ca(h: &Harness) -> Value {
        h.get("/api/V2/ca", None).await.json()
    }
    let old = ca(&h).await["user"]["fingerprint"].as_str().expect("a fingerprint").to_owned();
    assert_eq!(ca(&h).await["user"]["phase"], json!("standby"));
    for (phase, expected) in
        [("update_clients", "init"), ("update_servers", "update_clients"), ("standby", "update_servers")]
    {
        rotate(&h, &admin, "user", phase).await.assert_error(
            400,
            &format!("30001 Illegal input parameter: The user certificate authority's rotation is in phase standby; this step needs {expected}"),
        );
    }
    rotate(&h, &admin, "user", "sideways").await.assert_error(
        400,
        "30001 Illegal input parameter: Unknown rotation phase \"sideways\": expected init, update_clients, update_servers, standby or rollback",
    );
    rotate(&h, &alice, "user", "init").await.assert_error(403, "20000 Unauthorized");

    // init: the new key is trusted and published, the old one still signs.
    assert_eq!(rotate(&h, &admin, "user", "init").await.status, 200);
    let published = ca(&h).await;
    assert_eq!(published["user"]["phase"], json!("init"));
    let trusted: Vec<String> = published["user"]["trusted"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| k["fingerprint"].as_str().expect("a fingerprint").to_owned())
        .collect();
    assert_eq!(trusted.len(), 2);
    assert_eq!(trusted[0], old, "the signing key first");
    let new = trusted[1].clone();
    let lines = published["user"]["authorized_keys"].as_str().expect("lines").lines().count();
    assert_eq!(lines, 2, "one cert-authority line per trusted key");
    assert_eq!(signed_now_by(&h, &alice).await, old);
    // An immediate rotation waits for the phased one to end.
    h.post("/api/V2/admin/ca/rotate", Some(&admin), json!({"ca": "user"})).await.assert_error(
        400,
        "30001 Illegal input parameter: The user certificate authority is rotating in phases: finish it (standby) or roll it back first",
    );

    // update_clients: the new key signs; both stay trusted. A rollback returns to the old key.
    assert_eq!(rotate(&h, &admin, "user", "update_clients").await.status, 200);
    assert_eq!(signed_now_by(&h, &alice).await, new);
    assert_eq!(ca(&h).await["user"]["trusted"].as_array().map(Vec::len), Some(2));
    assert_eq!(rotate(&h, &admin, "user", "rollback").await.status, 200);
    let rolled_back = ca(&h).await;
    assert_eq!(rolled_back["user"]["phase"], json!("standby"));
    assert_eq!(rolled_back["user"]["trusted"].as_array().map(Vec::len), Some(1));
    assert_eq!(signed_now_by(&h, &alice).await, old);

    // The whole way: init, update_clients, update_servers, standby.
    h.advance(1000);
    for phase in ["init", "update_clients"] {
        assert_eq!(rotate(&h, &admin, "user", phase).await.status, 200, "{phase}");
    }
    let newest = ca(&h).await["user"]["fingerprint"].as_str().expect("a fingerprint").to_owned();
    assert_ne!(newest, old);
    h.advance(1000);
    let before_standby = h.now();
    assert_eq!(rotate(&h, &admin, "user", "update_servers").await.status, 200);
    h.advance(1000);
    assert_eq!(rotate(&h, &admin, "user", "standby").await.status, 200);
    let done = ca(&h).await;
    assert_eq!(done["user"]["phase"], json!("standby"));
    assert_eq!(done["user"]["trusted"], json!([{"public_key": done["user"]["public_key"], "fingerprint": newest}]));
    assert_eq!(signed_now_by(&h, &alice).await, newest);

    // As of then, alice's certificates signed by the old key were trusted; as of now, they are not.
    let as_of = |at: i64| {
        let (h, admin) = (&h, &admin);
        async move { h.get(&format!("/api/V2/admin/asof?user=alice&at={at}"), Some(admin)).await.json() }
    };
    let trusted_by = |state: &Value, fingerprint: &str| -> Vec<bool> {
        state["certificates"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|c| c["ca_fingerprint"] == json!(fingerprint))
            .map(|c| c["trusted"].as_bool().expect("a flag"))
            .collect()
    };
    assert_eq!(trusted_by(&as_of(before_standby).await, &old), vec![true; 2]);
    assert_eq!(trusted_by(&as_of(before_standby).await, &new), vec![false], "the rolled-back key");
    assert_eq!(trusted_by(&as_of(h.now()).await, &old), vec![false; 2]);
    assert_eq!(trusted_by(&as_of(h.now()).await, &newest), vec![true]);

    // The host CA publishes one known_hosts line per trusted key, each scoped to the cluster.
    assert_eq!(rotate(&h, &admin, "host", "init").await.status, 200);
    let lines: Vec<String> =
        ca(&h).await["host"]["known_hosts"].as_str().expect("lines").lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l.starts_with("@cert-authority *.example.org,example.org ssh-ed25519 ")), "{lines:?}");
    h
}
on_both_stores!(a_rotation_in_phases_keeps_both_keys_trusted_until_standby, test_mode);
