//! Provisioning (join) tokens over HTTP, on both stores: issuing `count`
//! tokens for validated roles, listing them without their values, deleting,
//! single use, expiry, static tokens from the configuration, and the host
//! certificate a join returns (checked with the ssh-key crate).

use crate::common;

use std::sync::Arc;

use authledger::app::ssh::StaticToken;
use authledger::clock::{Clock, ManualClock};
use common::{Harness, TEST_EPOCH, TestStore};
use serde_json::{Value, json};
use ssh_key::certificate::CertType;
use ssh_key::{Algorithm, Certificate, HashAlg, PrivateKey, PublicKey};

const STATIC_TOKEN: &str = "4f1c9a0e7b2d4c6a8e0f1a2b3c4d5e6f";
const TAKEN: &str = "20000 Unauthorized: This host name is bound to another host key; an Admin frees it with DELETE /api/V2/admin/hosts/{id}";

fn host_key() -> String {
    let key = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519).expect("a key");
    key.public_key().to_openssh().expect("OpenSSH")
}

async fn issue(h: &Harness, admin: &str, body: Value) -> common::Answer {
    h.post("/api/V2/admin/provisiontokens", Some(admin), body).await
}

/// The server again, configured with `node,proxy:STATIC_TOKEN`.
async fn with_static_token(h: Harness) -> Harness {
    h.restart_with(|o| {
        o.ssh.static_tokens = vec![StaticToken::parse(&format!("node,proxy:{STATIC_TOKEN}")).expect("valid")]
    })
    .await
}

fn ok(answer: common::Answer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

async fn join(h: &Harness, token: &str, host: &str, roles: Option<Value>) -> common::Answer {
    let mut body = json!({"token": token, "host_id": host, "public_key": host_key()});
    if let Some(roles) = roles {
        body["roles"] = roles;
    }
    h.post("/api/V2/hosts/join", None, body).await
}

async fn tokens_are_issued_listed_used_once_and_deleted(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let answer = issue(&h, &admin, json!({"roles": ["node", "proxy"], "ttl": 900, "count": 3})).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let issued: Vec<Value> = answer.json()["tokens"].as_array().cloned().unwrap_or_default();
    assert_eq!(issued.len(), 3);
    let values: Vec<String> = issued.iter().map(|t| t["token"].as_str().expect("a string field").to_owned()).collect();
    for value in &values {
        assert_eq!(value.len(), 32, "16 random bytes, hex");
        assert!(value.chars().all(|c| c.is_ascii_hexdigit()));
    }
    assert_eq!(values.iter().collect::<std::collections::BTreeSet<_>>().len(), 3, "distinct");
    let listed = h.get("/api/V2/admin/provisiontokens", Some(&admin)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["tokens"].as_array().map(Vec::len), Some(3));
    for value in &values {
        assert!(!listed.text.contains(value.as_str()), "the list never shows a value");
        assert!(!h.store.dump().await.contains(value.as_str()), "the log never holds a value");
    }

    let joined = join(&h, &values[0], "web-1.example.org", Some(json!(["node"]))).await;
    assert_eq!(joined.status, 200, "{}", joined.text);
    let body = joined.json();
    assert_eq!(body["roles"], json!(["node"]));
    let certificate =
        Certificate::from_openssh(body["certificate"].as_str().expect("a string field")).expect("a certificate");
    let ca = h.get("/api/V2/ca", None).await.json();
    let host_ca = PublicKey::from_openssh(ca["host"]["public_key"].as_str().expect("a string field")).expect("host CA");
    let now = u64::try_from(h.now() / 1000).unwrap_or(0);
    certificate.validate_at(now, [&host_ca.fingerprint(HashAlg::Sha256)]).expect("signed by the host CA");
    assert_eq!(certificate.cert_type(), CertType::Host);
    assert_eq!(certificate.valid_principals(), ["web-1.example.org".to_owned()]);
    assert_eq!(body["known_hosts"], ca["host"]["known_hosts"]);
    assert_eq!(body["user_ca"], ca["user"]["public_key"]);

    join(&h, &values[0], "web-2.example.org", None)
        .await
        .assert_error(401, "10020 Invalid token: unknown, used or expired provisioning token");
    join(&h, &values[1], "web-2.example.org", Some(json!(["auth"])))
        .await
        .assert_error(403, "20000 Unauthorized: The provisioning token does not allow the role(s): auth");
    let id = issued[1]["id"].as_str().expect("a string field").to_owned();
    let deleted = h.delete(&format!("/api/V2/admin/provisiontokens/{id}"), Some(&admin)).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    join(&h, &values[1], "web-2.example.org", None)
        .await
        .assert_error(401, "10020 Invalid token: unknown, used or expired provisioning token");
    h.delete(&format!("/api/V2/admin/provisiontokens/{id}"), Some(&admin))
        .await
        .assert_error(404, &format!("50010 No such token: no such provisioning token {id}"));
    assert_eq!(
        h.get("/api/V2/admin/provisiontokens", Some(&admin)).await.json()["tokens"].as_array().map(Vec::len),
        Some(1)
    );

    let hosts = h.get("/api/V2/admin/hosts", Some(&admin)).await.json();
    assert_eq!(hosts["hosts"][0]["host_id"], json!("web-1.example.org"));
    assert_eq!(hosts["hosts"][0]["serial"], json!(certificate.serial().to_string()));
    let history = h.get("/api/V2/admin/audit", Some(&admin)).await.json();
    for event_type in ["HostJoined", "HostCertIssued"] {
        let joins: Vec<&Value> =
            history["events"].as_array().into_iter().flatten().filter(|e| e["event_type"] == event_type).collect();
        assert_eq!(joins.len(), 1, "{event_type}");
        assert_eq!(joins[0]["actor"], json!("host:web-1.example.org"));
    }
    h
}
on_both_stores!(tokens_are_issued_listed_used_once_and_deleted);

async fn bad_token_requests_are_refused_and_write_nothing(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    let before = h.store.main_log_len().await;
    let cases = [
        (
            json!({"roles": ["node", "admin"]}),
            "30001 Illegal input parameter: Unknown host role \"admin\": expected one of node, proxy, auth",
        ),
        (json!({"roles": []}), "30001 Illegal input parameter: At least one host role is required"),
        (json!({"ttl": 60}), "30000 Missing input parameter: roles"),
        (json!({"roles": ["node"], "count": 0}), "30001 Illegal input parameter: count must be between 1 and 100"),
        (
            json!({"roles": ["node"], "ttl": -5}),
            "30001 Illegal input parameter: ttl must be between 1 and 2592000 seconds",
        ),
        (json!({"roles": "node"}), ""),
    ];
    for (body, message) in cases {
        let answer = issue(&h, &admin, body).await;
        if message.is_empty() {
            assert_eq!(answer.status, 400, "{}", answer.text);
        } else {
            answer.assert_error(400, message);
        }
    }
    issue(&h, &alice, json!({"roles": ["node"]})).await.assert_error(403, "20000 Unauthorized");
    assert_eq!(h.get("/api/V2/admin/provisiontokens", Some(&alice)).await.status, 403);
    join(&h, "0000", "web-1.example.org", None)
        .await
        .assert_error(401, "10020 Invalid token: unknown, used or expired provisioning token");
    join(&h, "0000", "-bad host", None).await.assert_error(
        400,
        "30001 Illegal input parameter: Illegal host id \"-bad host\": 1 to 253 characters of A-Z a-z 0-9 . - _, not starting with . or -",
    );
    let no_key = h.post("/api/V2/hosts/join", None, json!({"token": "x", "host_id": "h"})).await;
    no_key.assert_error(400, "30000 Missing input parameter: public_key");
    assert_eq!(h.store.main_log_len().await, before, "nothing recorded");
    h
}
on_both_stores!(bad_token_requests_are_refused_and_write_nothing);

/// When the log refuses one of `count` tokens, the request fails and the ones
/// issued before it are withdrawn: no token whose value nobody saw stays usable.
async fn a_request_that_fails_midway_leaves_no_usable_token(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    // The log refuses a third ProvisionTokenIssued (the store's own trigger, as a full disk would).
    let refuse_third = match &h.store {
        TestStore::Sqlite { .. } => "CREATE TRIGGER refuse_third BEFORE INSERT ON {events} \
             WHEN NEW.event_type = 'ProvisionTokenIssued' \
             AND (SELECT COUNT(*) FROM {events} WHERE event_type = 'ProvisionTokenIssued') >= 2 \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;"
            .to_owned(),
        TestStore::Postgres { prefix, .. } => format!(
            "CREATE FUNCTION {prefix}refuse_third() RETURNS trigger AS $$ BEGIN \
             IF NEW.event_type = 'ProvisionTokenIssued' \
             AND (SELECT COUNT(*) FROM {{events}} WHERE event_type = 'ProvisionTokenIssued') >= 2 \
             THEN RAISE EXCEPTION 'injected failure'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; \
             CREATE TRIGGER refuse_third BEFORE INSERT ON {{events}} FOR EACH ROW EXECUTE FUNCTION {prefix}refuse_third();"
        ),
    };
    h.store.execute(&refuse_third).await;
    let failed = issue(&h, &admin, json!({"roles": ["node"], "count": 5})).await;
    assert_eq!(failed.status, 500, "{}", failed.text);
    assert!(failed.json()["error"]["message"].is_string(), "the auth2 envelope: {}", failed.text);
    let listed = ok(h.get("/api/V2/admin/provisiontokens", Some(&admin)).await);
    assert_eq!(listed["tokens"], json!([]), "the two issued before the failure are withdrawn");
    let audit = ok(h.get("/api/V2/admin/audit?limit=1000", Some(&admin)).await);
    let deleted: Vec<&Value> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event_type"] == "ProvisionTokenDeleted")
        .collect();
    assert_eq!(deleted.len(), 2, "{audit}");
    assert!(deleted.iter().all(|e| e["reason"] == "withdrawn: the request that issued it failed"), "{audit}");
    // The server keeps serving: a single token still fits under the trigger.
    let drop = match &h.store {
        TestStore::Sqlite { .. } => "DROP TRIGGER refuse_third",
        TestStore::Postgres { .. } => "DROP TRIGGER refuse_third ON {events}",
    };
    h.store.execute(drop).await;
    let fine = ok(issue(&h, &admin, json!({"roles": ["node"], "count": 1})).await);
    assert_eq!(fine["tokens"].as_array().map(Vec::len), Some(1));
    h
}
on_both_stores!(a_request_that_fails_midway_leaves_no_usable_token);

async fn static_tokens_join_any_number_of_hosts(h: Harness) -> Harness {
    let h = with_static_token(h).await;
    let (_, admin) = h.administrators().await;
    for host in ["node-a.example.org", "node-b.example.org"] {
        let joined = join(&h, STATIC_TOKEN, host, None).await;
        assert_eq!(joined.status, 200, "{}", joined.text);
        assert_eq!(joined.json()["roles"], json!(["node", "proxy"]));
    }
    // A shared static token cannot take over a host that joined with another key.
    join(&h, STATIC_TOKEN, "node-a.example.org", None).await.assert_error(403, TAKEN);
    join(&h, STATIC_TOKEN, "node-c.example.org", Some(json!(["auth"])))
        .await
        .assert_error(403, "20000 Unauthorized: The provisioning token does not allow the role(s): auth");
    let listed = h.get("/api/V2/admin/provisiontokens", Some(&admin)).await.json();
    let static_id = listed["static"][0]["id"].as_str().expect("a string field").to_owned();
    assert_eq!(static_id.len(), 16);
    let certs = h.get("/api/V2/admin/certs?host=node-b.example.org", Some(&admin)).await.json();
    assert_eq!(certs["certificates"][0]["token"], json!({"static": static_id}));
    assert!(!h.store.dump().await.contains(STATIC_TOKEN), "the value never enters the log");
    h
}
on_both_stores!(static_tokens_join_any_number_of_hosts);

/// A host renewing its certificate with the key it is bound to records the
/// certificate only — no new binding — so parallel rejoins of one host never
/// contend, and the host list shows the latest join's roles.
async fn rejoining_with_the_bound_key_renews_without_rebinding(h: Harness) -> Harness {
    let h = with_static_token(h).await;
    let (_, admin) = h.administrators().await;
    let key = host_key();
    let first = json!({"token": STATIC_TOKEN, "host_id": "node-r.example.org", "public_key": key});
    ok(h.post("/api/V2/hosts/join", None, first).await);
    h.advance(5);
    let rejoin = json!({"token": STATIC_TOKEN, "host_id": "node-r.example.org", "public_key": key, "roles": ["node"]});
    let answers = futures::future::join_all((0..8).map(|_| h.post("/api/V2/hosts/join", None, rejoin.clone()))).await;
    let serials: std::collections::BTreeSet<String> =
        answers.into_iter().map(|a| ok(a)["serial"].as_str().expect("a string field").to_owned()).collect();
    assert_eq!(serials.len(), 8, "eight distinct certificates");

    let history = ok(h.get("/api/V2/admin/audit?limit=1000", Some(&admin)).await);
    let count = |event_type: &str| {
        history["events"].as_array().into_iter().flatten().filter(|e| e["event_type"] == event_type).count()
    };
    assert_eq!((count("HostJoined"), count("HostCertIssued")), (1, 9), "one binding, nine certificates");
    let hosts = ok(h.get("/api/V2/admin/hosts", Some(&admin)).await);
    let host = &hosts["hosts"][0];
    assert_eq!(host["roles"], json!(["node"]), "the latest join's roles");
    assert!(host["last_joined"].as_i64() > host["joined"].as_i64(), "{hosts}");
    assert!(serials.contains(host["serial"].as_str().expect("a string field")), "the latest certificate: {hosts}");
    h
}
// `test_mode`: the harness with a clock the test moves (test mode itself plays no part).
on_both_stores!(rejoining_with_the_bound_key_renews_without_rebinding, test_mode);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_token_joins_nobody() {
    let manual = ManualClock::new(TEST_EPOCH);
    let clock: Arc<dyn Clock> = manual.clone();
    let h = Harness::start_with(TestStore::sqlite(), clock, |_| {}).await;
    let (_, admin) = h.administrators().await;
    let answer = issue(&h, &admin, json!({"roles": ["node"], "ttl": 60})).await;
    let value = answer.json()["tokens"][0]["token"].as_str().expect("a string field").to_owned();
    manual.advance(60_000);
    join(&h, &value, "late.example.org", None)
        .await
        .assert_error(401, "10020 Invalid token: unknown, used or expired provisioning token");
    assert_eq!(h.get("/api/V2/admin/provisiontokens", Some(&admin)).await.json()["tokens"], json!([]));
    h.finish().await;
}

async fn issued_token_value(h: &Harness, admin: &str) -> String {
    let issued = issue(h, admin, json!({"roles": ["node"]})).await;
    issued.json()["tokens"][0]["token"].as_str().expect("a token").to_owned()
}

/// A bound host name — a host id or an extra principal — belongs to its key:
/// no token (static or issued) joins under it with another key, and nothing
/// is written or spent by the refusal; only an Admin's release frees it.
async fn a_bound_host_name_cannot_be_taken_over(h: Harness) -> Harness {
    let h = with_static_token(h).await;
    let (_, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    let web1 = host_key();
    let first = json!({"token": STATIC_TOKEN, "host_id": "web1.example.org", "public_key": web1,
                       "principals": ["www.example.org", "web1.example.org"]});
    let joined = ok(h.post("/api/V2/hosts/join", None, first).await);
    assert_eq!(joined["principals"], json!(["www.example.org"]), "the host id is not repeated");
    let cert = Certificate::from_openssh(joined["certificate"].as_str().expect("a certificate")).expect("parses");
    assert_eq!(cert.valid_principals(), ["web1.example.org".to_owned(), "www.example.org".to_owned()]);
    let hosts = ok(h.get("/api/V2/admin/hosts", Some(&admin)).await);
    assert_eq!(hosts["hosts"][0]["principals"], json!(["www.example.org"]));

    // Another key under the host id, or under its principal, with either kind of token.
    let thief = host_key();
    let before = h.store.main_log_len().await;
    let issued = issued_token_value(&h, &admin).await;
    let after_issue = h.store.main_log_len().await;
    for (token, host, principals) in [
        (STATIC_TOKEN, "web1.example.org", json!([])),
        (issued.as_str(), "web1.example.org", json!([])),
        (issued.as_str(), "web9.example.org", json!(["www.example.org"])),
        (issued.as_str(), "www.example.org", json!([])),
        // Names compare as DNS and OpenSSH compare them: case does not make another name.
        (STATIC_TOKEN, "WEB1.Example.ORG", json!([])),
        (issued.as_str(), "web9.example.org", json!(["WWW.example.org"])),
    ] {
        let body = json!({"token": token, "host_id": host, "public_key": thief, "principals": principals});
        h.post("/api/V2/hosts/join", None, body).await.assert_error(403, TAKEN);
    }
    assert_eq!(h.store.main_log_len().await, after_issue, "a refused join writes nothing");
    assert!(after_issue > before);
    // The issued token was not spent by the refusals.
    let listed = ok(h.get("/api/V2/admin/provisiontokens", Some(&admin)).await);
    assert_eq!(listed["tokens"].as_array().map(Vec::len), Some(1));
    // The host itself renews with its key, under either token.
    ok(h.post("/api/V2/hosts/join", None, json!({"token": STATIC_TOKEN, "host_id": "web1.example.org", "public_key": web1, "principals": ["www.example.org"]})).await);

    // Only an Admin frees it.
    h.delete("/api/V2/admin/hosts/web1.example.org", Some(&alice)).await.assert_error(403, "20000 Unauthorized");
    h.delete("/api/V2/admin/hosts/nobody.example.org", Some(&admin))
        .await
        .assert_error(404, "50050 No such host: no host is bound to nobody.example.org");
    let freed = h.delete("/api/V2/admin/hosts/web1.example.org", Some(&admin)).await;
    assert_eq!(freed.status, 204, "{}", freed.text);
    assert_eq!(ok(h.get("/api/V2/admin/hosts", Some(&admin)).await)["hosts"], json!([]));
    let body =
        json!({"token": issued, "host_id": "web1.example.org", "public_key": thief, "principals": ["www.example.org"]});
    let rebound = ok(h.post("/api/V2/hosts/join", None, body).await);
    assert_eq!(rebound["principals"], json!(["www.example.org"]));
    let history = ok(h.get("/api/V2/admin/audit?limit=1000", Some(&admin)).await);
    let released: Vec<&Value> =
        history["events"].as_array().into_iter().flatten().filter(|e| e["event_type"] == "HostReleased").collect();
    assert_eq!(released.len(), 2, "the host id and its principal");
    assert!(released.iter().all(|e| e["actor"] == json!("admin")), "{released:?}");
    h
}
on_both_stores!(a_bound_host_name_cannot_be_taken_over);

/// Hosts join under names inside the cluster, and clients trust the host CA
/// for the cluster only; an explicit known_hosts_pattern lets any name join.
async fn host_names_stay_inside_the_cluster(h: Harness) -> Harness {
    let h = with_static_token(h).await;
    let ca = h.get("/api/V2/ca", None).await.json();
    assert_eq!(ca["cluster_name"], json!("example.org"));
    let host_ca = ca["host"]["public_key"].as_str().expect("a key").to_owned();
    assert_eq!(ca["host"]["known_hosts"], json!(format!("@cert-authority *.example.org,example.org {host_ca}")));
    let before = h.store.main_log_len().await;
    for (host, principals, outside) in [
        ("github.com", json!([]), "github.com"),
        ("example.org.evil.com", json!([]), "example.org.evil.com"),
        ("badexample.org", json!([]), "badexample.org"),
        ("web1.example.org", json!(["10.0.0.5"]), "10.0.0.5"),
    ] {
        let body = json!({"token": STATIC_TOKEN, "host_id": host, "public_key": host_key(), "principals": principals});
        h.post("/api/V2/hosts/join", None, body).await.assert_error(
            400,
            &format!(
                "30001 Illegal input parameter: Host name \"{outside}\" is outside the cluster: use a name under example.org (e.g. web1.example.org), or have the operator set known_hosts_pattern"
            ),
        );
    }
    for bad in [json!(["*.example.org"]), json!(["web?.example.org"]), json!(["a b"])] {
        let body =
            json!({"token": STATIC_TOKEN, "host_id": "web1.example.org", "public_key": host_key(), "principals": bad});
        assert_eq!(h.post("/api/V2/hosts/join", None, body).await.status, 400, "no wildcards");
    }
    let many: Vec<String> = (0..17).map(|i| format!("n{i}.example.org")).collect();
    let body =
        json!({"token": STATIC_TOKEN, "host_id": "web1.example.org", "public_key": host_key(), "principals": many});
    h.post("/api/V2/hosts/join", None, body)
        .await
        .assert_error(400, "30001 Illegal input parameter: at most 16 principals");
    assert_eq!(h.store.main_log_len().await, before, "nothing written");
    // The cluster's own name joins too.
    ok(h.post(
        "/api/V2/hosts/join",
        None,
        json!({"token": STATIC_TOKEN, "host_id": "example.org", "public_key": host_key()}),
    )
    .await);

    // An operator's explicit pattern: that line, and any name joins (an address as a principal).
    let h = h
        .restart_with(|o| {
            o.ssh.static_tokens = vec![StaticToken::parse(&format!("node:{STATIC_TOKEN}")).expect("valid")];
            o.ssh.known_hosts_pattern = Some("*.example.org,10.0.0.*".into());
        })
        .await;
    let ca = h.get("/api/V2/ca", None).await.json();
    assert_eq!(ca["host"]["known_hosts"], json!(format!("@cert-authority *.example.org,10.0.0.* {host_ca}")));
    let body = json!({"token": STATIC_TOKEN, "host_id": "web2.example.org", "public_key": host_key(), "principals": ["10.0.0.5"]});
    assert_eq!(ok(h.post("/api/V2/hosts/join", None, body).await)["principals"], json!(["10.0.0.5"]));
    h
}
on_both_stores!(host_names_stay_inside_the_cluster);
