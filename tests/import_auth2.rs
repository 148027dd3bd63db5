//! `import-auth2`: a dump in the exact shape auth2 writes (built with MongoDB's
//! own `bson` crate, as `mongodump` would leave it), imported into an empty
//! log on each store; then, over HTTP, everything a client relied on at auth2
//! holds: tokens introspect unchanged, old passwords log in (and again after
//! the rehash), anonymous ids translate, identities, roles and policy ids show.

use std::io::Write;
use std::path::Path;

use bson::oid::ObjectId;
use bson::{Bson, DateTime, Document, doc};
use serde_json::json;

use crate::common::{Harness, TestStore};
use authledger::app::import_auth2::{self, Dump, ImportError};
use authledger::clock::SystemClock;
use authledger::projections::hash_token;
use authledger::projections::token_index::encode_hash;

const DAY: i64 = 86_400_000;
const ALICE_PASSWORD: &str = "correct horse battery staple";
const ALICE_ANON: &str = "3f0e2f6a-9a55-4d0c-b6d3-2e8c1b9d7a10";
const BOB_ANON: &str = "7b1a7c2e-1f4d-4e4b-9c55-0a6e3d2f8b21";
const LOGIN_TOKEN: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const LOGIN_TOKEN_ID: &str = "9d3f1c2b-7a6e-4b5d-8c4f-3e2d1c0b9a87";
const SERV_TOKEN: &str = "QRSTUVWXYZ234567ABCDEFGHIJKLMNOP";
const EXPIRED_TOKEN: &str = "MNOPQRSTUVWXYZ234567ABCDEFGHIJKL";
const DISABLED_TOKEN: &str = "IJKLMNOPQRSTUVWXYZ234567ABCDEFGH";

fn now() -> i64 {
    authledger::clock::Clock::now_ms(&SystemClock)
}

fn at(ms: i64) -> DateTime {
    DateTime::from_millis(ms)
}

fn stored_hash(token: &str) -> String {
    encode_hash(&hash_token(token))
}

fn write(dir: &Path, collection: &str, documents: &[Document], gzip: bool) {
    let mut bytes = Vec::new();
    for d in documents {
        d.to_writer(&mut bytes).expect("BSON");
    }
    if gzip {
        let file = std::fs::File::create(dir.join(format!("{collection}.bson.gz"))).expect("a file");
        let mut encoder = flate2::write::GzEncoder::new(file, flate2::Compression::default());
        encoder.write_all(&bytes).expect("written");
        encoder.finish().expect("written");
    } else {
        std::fs::write(dir.join(format!("{collection}.bson")), bytes).expect("written");
    }
    std::fs::write(dir.join(format!("{collection}.metadata.json")), "{}").expect("written");
}

/// auth2's documents, as `MongoStorage` writes them (see the import's sources).
fn dump(dir: &Path, gzip: bool) {
    let created = now() - 400 * DAY;
    let curator = ObjectId::new();
    let deleted_role = ObjectId::new();
    write(dir, "config", &[doc! {"_id": ObjectId::new(), "schema": "schema", "inupdate": false, "schemaver": 1}], gzip);
    write(
        dir,
        "config_app",
        &[
            doc! {"_id": ObjectId::new(), "key": "allowlogin", "val": true},
            doc! {"_id": ObjectId::new(), "key": "tokenlifelogin", "val": 7 * DAY},
            doc! {"_id": ObjectId::new(), "key": "tokenlifecache", "val": 600_000_i64},
        ],
        gzip,
    );
    write(
        dir,
        "config_prov",
        &[
            doc! {"_id": ObjectId::new(), "key": "enabled", "prov": "Google", "val": true},
            doc! {"_id": ObjectId::new(), "key": "loginchoice", "prov": "Google", "val": false},
            doc! {"_id": ObjectId::new(), "key": "linkchoice", "prov": "Google", "val": true},
        ],
        gzip,
    );
    write(
        dir,
        "config_ext",
        &[
            doc! {"_id": ObjectId::new(), "key": "allowedPostLoginRedirectPrefix", "val": "https://narrative.example.org/"},
            doc! {"_id": ObjectId::new(), "key": "ignoreIPHeaders", "val": "false"},
            doc! {"_id": ObjectId::new(), "key": "ci-postLinkRedirect", "val": "https://ci.example.org/linked"},
        ],
        gzip,
    );
    write(dir, "cust_roles", &[doc! {"_id": curator, "id": "curator", "desc": "Curates data"}], gzip);
    let none = Bson::Null;
    write(
        dir,
        "users",
        &[
            doc! {
                "_id": ObjectId::new(), "user": "***ROOT***", "anonid": "5d4c3b2a-1908-4f7e-8d6c-5b4a39281706",
                "lcl": true, "email": none.clone(), "display": "root", "dispcan": ["root"], "roles": ["Root"],
                "custrls": [], "idents": [], "policyids": [], "create": at(created), "login": none.clone(),
                "dsbleadmin": none.clone(), "dsbledate": none.clone(), "dsblereas": none.clone(),
                "rstpwd": false, "lastrst": none.clone(),
                "pwdhsh": "R0wO2ubVwCLKxi4pmNyUVo1PKjz/ANVVEh1dRofO5qo=", "salt": "obLD1OX2Bxg=",
            },
            doc! {
                "_id": ObjectId::new(), "user": "alice", "anonid": ALICE_ANON, "lcl": true,
                "email": "alice@example.org", "display": "Alice Smith", "dispcan": ["alice", "smith"],
                "roles": ["Admin", "CreateAdmin"], "custrls": [curator, deleted_role], "idents": [],
                "policyids": [{"id": "kbase-tos", "agreed": at(created + DAY)}],
                "create": at(created), "login": at(now() - DAY),
                "dsbleadmin": none.clone(), "dsbledate": none.clone(), "dsblereas": none.clone(),
                "rstpwd": false, "lastrst": at(created),
                "pwdhsh": "O/ewsEgje1x4p72diJgnu09BTvz6Iv1EgtwrC5X6SpM=", "salt": "AQIDBAUGBwg=",
            },
            doc! {
                "_id": ObjectId::new(), "user": "bob", "anonid": BOB_ANON, "lcl": false,
                "email": "bob@example.org", "display": "Bob Builder", "dispcan": ["bob", "builder"],
                "roles": ["DevToken"], "custrls": [curator],
                "idents": [{
                    "id": "2077f15979ee05607f1cfe967bd62a69", "prov": "Google", "prov_id": "108234567890",
                    "uid": "bob@example.org", "fullname": "Bob B", "email": "bob@example.org",
                }],
                "policyids": [], "create": at(created), "login": none.clone(),
                "dsbleadmin": none.clone(), "dsbledate": none.clone(), "dsblereas": none.clone(),
            },
            doc! {
                "_id": ObjectId::new(), "user": "carol", "anonid": "0c1d2e3f-4a5b-4c6d-8e9f-a0b1c2d3e4f5",
                "lcl": true, "email": none.clone(), "display": "Carol", "dispcan": ["carol"],
                "roles": [], "custrls": [], "idents": [], "policyids": [], "create": at(created),
                "login": none.clone(), "dsbleadmin": "alice", "dsbledate": at(now() - 2 * DAY),
                "dsblereas": "left the lab", "rstpwd": true, "lastrst": none.clone(),
                "pwdhsh": "UHlJyEqP3HQuGWvhFiNHtN3mK53r1YMZ+thg+OERjBI=", "salt": "T1YK",
            },
        ],
        gzip,
    );
    let token = |kind: &str, user: &str, value: &str, expires: i64, name: Bson| {
        doc! {
            "_id": ObjectId::new(), "type": kind, "user": user, "id": uuid::Uuid::new_v4().to_string(),
            "name": name, "token": stored_hash(value), "expires": at(expires), "create": at(now() - DAY),
            "agent": "Chrome", "agentver": "120.0", "os": "Linux", "osver": Bson::Null, "device": Bson::Null,
            "ip": "192.0.2.7", "custctx": [{"k": "client", "v": "narrative"}],
        }
    };
    let mut serv = token("Serv", "bob", SERV_TOKEN, now() + 1000 * DAY, Bson::String("pipeline".into()));
    serv.remove("custctx"); // tokens from before 2017 have none
    let mut login = token("Login", "alice", LOGIN_TOKEN, now() + 7 * DAY, Bson::Null);
    login.insert("id", LOGIN_TOKEN_ID);
    write(
        dir,
        "tokens",
        &[
            login,
            serv,
            token("Login", "alice", EXPIRED_TOKEN, now() - 1, Bson::Null),
            token("Login", "carol", DISABLED_TOKEN, now() + DAY, Bson::Null),
        ],
        gzip,
    );
    write(dir, "tempdata", &[doc! {"_id": ObjectId::new(), "tempid": "x"}], gzip);
    write(dir, "test_users", &[doc! {"_id": ObjectId::new(), "user": "testy"}], gzip);
}

async fn imported(store: &TestStore, dir: &Path) -> import_auth2::Report {
    let dump = Dump::open(dir).expect("a dump");
    let plan = import_auth2::plan(&dump, now(), false).expect("the dump fits");
    import_auth2::import_into(&store.options(), plan, std::sync::Arc::new(SystemClock), |_| {}).await.expect("imported")
}

async fn a_dump_comes_over_whole(store: TestStore) {
    for gzip in [false, true] {
        let store = if gzip { store.another().await } else { store.clone() };
        let dir = tempfile::tempdir().expect("a folder");
        dump(dir.path(), gzip);
        let report = imported(&store, dir.path()).await;
        assert_eq!((report.users, report.local_users, report.disabled_users, report.passwords), (4, 3, 1, 3));
        assert_eq!((report.tokens, report.expired_tokens, report.disabled_users_tokens), (2, 1, 1));
        assert_eq!((report.custom_roles, report.identities, report.providers), (1, 1, 1));
        assert_eq!(report.events, 1 + 1 + 1 + 4 + 2);
        let left: Vec<&str> = report.left_behind.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(left, ["tempdata", "test_users"]);
        assert!(report.notes.iter().any(|(u, n)| u == "alice" && n.contains("no longer exists")), "{:?}", report.notes);

        let h = Harness::start(store).await;
        // The imported log's chain holds, and so does what the server appended at its start.
        let verified = h.server.ledger.log.verify_chain(None, |_| {}).await.expect("readable");
        assert!(verified.is_ok_and(|v| v.checked() >= report.events), "the chain verifies");
        // The Login token introspects with its own id, name, dates and context.
        let answer = h.get("/api/V2/token", Some(LOGIN_TOKEN)).await;
        assert_eq!(answer.status, 200, "{}", answer.text);
        let token = answer.json();
        assert_eq!((token["user"].as_str(), token["type"].as_str()), (Some("alice"), Some("Login")));
        assert_eq!(token["custom"], json!({"client": "narrative"}));
        assert_eq!(token["id"], LOGIN_TOKEN_ID);
        assert_eq!(token["cachefor"], 600_000);
        let serv = h.get("/api/V2/token", Some(SERV_TOKEN)).await.json();
        assert_eq!((serv["type"].as_str(), serv["name"].as_str()), (Some("Service"), Some("pipeline")));
        h.get("/api/V2/token", Some(EXPIRED_TOKEN)).await.assert_error(401, "10020 Invalid token");
        h.get("/api/V2/token", Some(DISABLED_TOKEN)).await.assert_error(401, "10020 Invalid token");

        // Bob, of a provider identity, with his roles, custom role and anon id.
        let me = h.get("/api/V2/me", Some(SERV_TOKEN)).await.json();
        assert_eq!(me["anonid"], BOB_ANON);
        assert_eq!(me["local"], false);
        assert_eq!(me["customroles"], json!(["curator"]));
        assert_eq!(me["idents"][0]["provusername"], "bob@example.org");
        assert_eq!(me["idents"][0]["id"], "2077f15979ee05607f1cfe967bd62a69");
        // Alice logs in with her auth2 password, again after the rehash, and not with a wrong one.
        let alice = h.login("alice", ALICE_PASSWORD).await;
        let me = h.get("/api/V2/me", Some(&alice)).await.json();
        assert_eq!(me["anonid"], ALICE_ANON);
        assert_eq!(me["policyids"][0]["id"], "kbase-tos");
        assert_eq!(me["roles"].as_array().map(Vec::len), Some(2), "{me}");
        assert_eq!(h.store.payloads("PasswordRehashed").await.len(), 1);
        h.login("alice", ALICE_PASSWORD).await;
        assert_eq!(h.store.payloads("PasswordRehashed").await.len(), 1, "hashed anew once");
        h.post("/localaccount/login", None, json!({"user": "alice", "pwd": "not it"}))
            .await
            .assert_error(401, "10050 Password / username mismatch: alice");
        // Root came over as root, with its auth2 password.
        let root = h.login("***ROOT***", "root password 42!").await;
        let me = h.get("/api/V2/me", Some(&root)).await.json();
        assert_eq!(me["roles"], json!([{"id": "Root", "desc": "Root"}]));
        // Carol stays disabled; anon ids translate for an Admin; search finds by display name.
        h.post("/localaccount/login", None, json!({"user": "carol", "pwd": "foo"}))
            .await
            .assert_error(403, "20010 Account disabled: carol");
        let ids = h.get(&format!("/api/V2/admin/anonids?list={ALICE_ANON},{BOB_ANON}"), Some(&alice)).await;
        assert_eq!(ids.json(), json!({ALICE_ANON: "alice", BOB_ANON: "bob"}), "{}", ids.text);
        let found = h.get("/api/V2/users/search/builder", Some(&alice)).await.json();
        assert_eq!(found, json!({"bob": "Bob Builder"}));
        // Test mode's users stayed behind.
        let listed = h.get("/api/V2/users/?list=testy,bob", Some(&alice)).await.json();
        assert_eq!(listed, json!({"bob": "Bob Builder"}));
        // Bob's history says where his account came from and when auth2 created it.
        let history = h.get("/admin/user/bob/history", Some(&alice)).await;
        assert_eq!(history.status, 200, "{}", history.text);
        let first = &history.json()["events"][0];
        assert_eq!(first["event_type"], "UserImported");
        assert_eq!(first["actor"], "system");
        let description = first["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("came over from KBase auth2") && description.contains("created there"),
            "{description}"
        );
        assert!(first["reason"].as_str().is_some_and(|r| r.starts_with("imported from KBase auth2")), "{first}");
        // The audit trail holds the import's own events (no running server writes them).
        let trail = h.get("/api/V2/admin/audit?limit=1000", Some(&alice)).await.json();
        let types: Vec<&str> =
            trail["events"].as_array().into_iter().flatten().filter_map(|e| e["event_type"].as_str()).collect();
        for kind in ["UserImported", "CustomRoleImported", "PasswordRehashed"] {
            assert!(types.contains(&kind), "{kind} in the trail: {types:?}");
        }
        // The settings came over; the secret hashes are sealed like every other.
        let config = h.get("/admin/config", Some(&alice)).await.json();
        assert_eq!(config["allowlogin"], true);
        let stored = h.store.dump().await;
        assert!(stored.contains("UserImported") && !stored.contains("O/ewsEgje1x4p72diJgnu09BTvz6Iv1EgtwrC5X6SpM="));
        assert!(!stored.contains("UHlJyEqP3HQuGWvhFiNHtN3mK53r1YMZ+thg+OERjBI="), "carol's hash is sealed too");
        h.finish().await;
    }
}
on_both_stores_from_store!(a_dump_comes_over_whole);

async fn a_log_with_events_and_a_dump_that_does_not_fit_are_refused_whole(store: TestStore) {
    let dir = tempfile::tempdir().expect("a folder");
    dump(dir.path(), false);
    // A token of a user the dump does not have, and a user with an unknown role.
    let mut users = Dump::open(dir.path()).expect("a dump").all("users").expect("users");
    users.push(doc! {"_id": ObjectId::new(), "user": "mallory", "lcl": false, "display": "M", "roles": ["Superuser"],
    "custrls": [], "idents": [], "policyids": [], "create": at(now())});
    write(dir.path(), "users", &users, false);
    let dump = Dump::open(dir.path()).expect("a dump");
    let Err(ImportError::Refused(refused)) = import_auth2::plan(&dump, now(), false) else {
        panic!("the dump is refused");
    };
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!((refused[0].collection, refused[0].why.as_str()), ("users", "unknown role `Superuser`"));
    let plan = import_auth2::plan(&dump, now(), true).expect("the rest fits");
    assert_eq!(plan.report.refused.len(), 1);
    let h = Harness::start(store.clone()).await;
    let before = h.store.main_log_len().await;
    let error = import_auth2::import_into(&store.options(), plan, std::sync::Arc::new(SystemClock), |_| {}).await;
    assert!(matches!(error, Err(ImportError::NotEmpty)), "{error:?}");
    assert_eq!(h.store.main_log_len().await, before, "nothing was written");
    h.finish().await;
}
on_both_stores_from_store!(a_log_with_events_and_a_dump_that_does_not_fit_are_refused_whole);

/// The command: a dry run says what would come over and writes nothing; the
/// import says what came; a second one is refused with one line.
#[test]
fn the_command_imports_once_and_a_dry_run_writes_nothing() {
    let dir = tempfile::tempdir().expect("a folder");
    let dump_dir = dir.path().join("dump/auth2");
    std::fs::create_dir_all(&dump_dir).expect("a folder");
    dump(&dump_dir, true);
    let run = |extra: &[&str]| {
        let mut args = vec!["import-auth2", "dump/auth2", "--store", "sqlite://./events.db"];
        args.extend_from_slice(extra);
        std::process::Command::new(env!("CARGO_BIN_EXE_authledger"))
            .args(&args)
            .current_dir(dir.path())
            .output()
            .expect("runs")
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let dry = run(&["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry.stderr));
    let said = text(&dry.stdout);
    assert!(said.starts_with("would import: 4 users (3 local, 1 disabled; 3 with passwords)"), "{said}");
    assert!(said.contains("left behind: tempdata"), "{said}");
    assert!(!dir.path().join("events.db").exists(), "a dry run opens no store");

    let done = run(&[]);
    assert!(done.status.success(), "{}", text(&done.stderr));
    assert!(text(&done.stdout).starts_with("imported: 4 users"), "{}", text(&done.stdout));
    let again = run(&[]);
    assert!(!again.status.success());
    assert!(text(&again.stderr).contains("the log already holds events"), "{}", text(&again.stderr));
}

/// An identity brought over from auth2 keeps auth2's id: signing in through
/// the same provider (a real OpenID Connect one here) lands on its account.
async fn an_imported_identity_signs_in_to_its_account(store: TestStore) {
    let dir = tempfile::tempdir().expect("a folder");
    let created = now() - 10 * DAY;
    let none = Bson::Null;
    let identity = authledger::domain::IdentityId::of("OIDC", "imported-1").to_string();
    write(dir.path(), "config_app", &[doc! {"_id": ObjectId::new(), "key": "allowlogin", "val": true}], false);
    write(
        dir.path(),
        "config_prov",
        &[
            doc! {"_id": ObjectId::new(), "key": "enabled", "prov": "OIDC", "val": true},
            doc! {"_id": ObjectId::new(), "key": "loginchoice", "prov": "OIDC", "val": false},
            doc! {"_id": ObjectId::new(), "key": "linkchoice", "prov": "OIDC", "val": false},
        ],
        false,
    );
    write(
        dir.path(),
        "users",
        &[doc! {
            "_id": ObjectId::new(), "user": "ivan", "anonid": uuid::Uuid::new_v4().to_string(), "lcl": false,
            "email": "ivan@example.org", "display": "Ivan", "dispcan": ["ivan"], "roles": [], "custrls": [],
            "idents": [{"id": identity.clone(), "prov": "OIDC", "prov_id": "imported-1", "uid": "ivan",
                "fullname": none.clone(), "email": none.clone()}],
            "policyids": [], "create": at(created), "login": none.clone(),
            "dsbleadmin": none.clone(), "dsbledate": none.clone(), "dsblereas": none.clone(),
        }],
        false,
    );
    imported(&store, dir.path()).await;
    let Some((h, peer)) = Harness::with_provider(store).await else {
        return;
    };
    let (done, _) = crate::provider_login::flow(&h, &peer, "imported-1").await;
    assert_eq!(crate::provider_login::location(&done), "/me", "{}", done.text);
    let token = crate::provider_login::session_token(&done);
    let me = h.get("/api/V2/me", Some(&token)).await.json();
    assert_eq!(me["user"], "ivan");
    assert_eq!(me["idents"][0]["id"], identity.as_str());
    h.finish().await;
}
on_both_stores_from_store!(an_imported_identity_signs_in_to_its_account);
