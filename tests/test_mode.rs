//! Test mode over HTTP (contract §8): its endpoints and their errors, its
//! isolation from the main log in both directions, the one-hour expiry
//! (on an injected clock), the sweeper's physical deletion, and clear.

use crate::common;

use common::{Harness, TEST_EPOCH, TestStore};
use reqwest::StatusCode;
use serde_json::{Value, json};

const HOUR: i64 = 3_600_000;
const OFF: &str = "70000 Unsupported operation: Test mode is not enabled";

async fn create_user(h: &Harness, user: &str, display: &str) -> Value {
    let answer = h.post("/testmode/api/V2/testmodeonly/user", None, json!({"user": user, "display": display})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()
}

async fn create_token(h: &Harness, user: &str, kind: &str) -> Value {
    let answer = h.post("/testmode/api/V2/testmodeonly/token", None, json!({"user": user, "type": kind})).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()
}

fn token_of(created: &Value) -> String {
    created["token"].as_str().expect("a token").to_owned()
}

async fn set_role(h: &Harness, id: &str, desc: &str) {
    let answer = h.post("/testmode/api/V2/testmodeonly/customroles", None, json!({"id": id, "desc": desc})).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT, "{}", answer.text);
}

async fn custom_roles(h: &Harness) -> Value {
    let answer = h.get("/testmode/api/V2/testmodeonly/customroles", None).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text);
    answer.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_test_mode_off_data_endpoints_answer_70000_after_validating_the_request() {
    let h = Harness::sqlite().await;
    let root = h.get("/testmode", None).await;
    assert_eq!(root.status, StatusCode::OK);
    assert_eq!(root.json()["servicename"], "Authentication Service");

    let user = "/testmode/api/V2/testmodeonly/user";
    h.post(user, None, json!({"user": "alice", "display": "A"})).await.assert_error(400, OFF);
    h.raw(reqwest::Method::POST, user, None, "application/json", "")
        .await
        .assert_error(400, "30000 Missing input parameter: JSON body missing");
    h.post(user, None, json!({"user": "alice", "display": "A", "x": 1}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Unexpected parameters in request: x");
    h.post(user, None, json!({"user": "Alice", "display": "A"}))
        .await
        .assert_error(400, "30010 Illegal user name: Illegal character in user name Alice: A");
    h.post(user, None, json!({"user": "alice"})).await.assert_error(400, "30000 Missing input parameter: display name");
    h.get("/testmode/api/V2/testmodeonly/user/alice", None).await.assert_error(400, OFF);

    let token = "/testmode/api/V2/testmodeonly/token";
    h.post(token, None, json!({"user": "alice", "type": "Login"})).await.assert_error(400, OFF);
    h.post(token, None, json!({"user": "alice", "type": "login"}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Invalid token type: login");

    h.get("/testmode/api/V2/token", None)
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    h.get("/testmode/api/V2/token", Some("ABC")).await.assert_error(400, OFF);
    h.get("/testmode/api/V2/me", Some("ABC")).await.assert_error(400, OFF);
    h.get("/testmode/api/V2/users?list=a,B", Some("ABC")).await.assert_error(
        400,
        "30010 Illegal user name: Illegal user name [B]: 30010 Illegal user name: Illegal character in user name B: B",
    );
    h.get("/testmode/api/V2/users?list=a", None)
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    h.get("/testmode/api/V2/users?list=a", Some("ABC")).await.assert_error(400, OFF);

    let roles = "/testmode/api/V2/testmodeonly/customroles";
    h.post(roles, None, json!({"id": "r", "desc": "d"})).await.assert_error(400, OFF);
    h.post(roles, None, json!({"id": "r!", "desc": "d"}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Illegal character in custom role id r!: !");
    h.get(roles, None).await.assert_error(400, OFF);
    let userroles = "/testmode/api/V2/testmodeonly/userroles";
    h.put(userroles, None, json!({"user": "alice", "roles": ["Admin"]})).await.assert_error(400, OFF);
    h.put(userroles, None, json!({"user": "alice", "roles": ["Boss"]}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Invalid role id: Boss");

    let cleared = h.delete("/testmode/api/V2/testmodeonly/clear", None).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);

    let kbase = "/testmode/api/legacy/KBase/Sessions/Login";
    h.post_as(kbase, Some("application/x-www-form-urlencoded"), "token=ABC").await.assert_error(400, OFF);
    h.post_as(kbase, Some("application/x-www-form-urlencoded"), "fields=name")
        .await
        .assert_error(400, "30000 Missing input parameter: token");
    h.get_with(
        "/testmode/api/legacy/globus/goauth/token?grant_type=client_credentials",
        &[("globus-goauthtoken", "ABC")],
    )
    .await
    .assert_error(400, OFF);
    h.get_with("/testmode/api/legacy/globus/users/alice", &[("Authorization", "OAuth ABC")])
        .await
        .assert_error(400, OFF);
    h.finish().await;
}

async fn users_tokens_and_roles_round_trip(h: Harness) -> Harness {
    let alice = create_user(&h, "alice", "  Alice A ").await;
    assert_eq!(alice["user"], "alice");
    assert_eq!(alice["display"], "Alice A");
    assert_eq!(alice["created"], json!(TEST_EPOCH));
    for (key, value) in [
        ("email", json!(null)),
        ("lastlogin", json!(null)),
        ("local", json!(true)),
        ("roles", json!([])),
        ("customroles", json!([])),
        ("idents", json!([])),
        ("policyids", json!([])),
    ] {
        assert_eq!(alice[key], value, "{key}");
    }
    assert!(uuid::Uuid::parse_str(alice["anonid"].as_str().expect("a string field")).is_ok());

    let user = "/testmode/api/V2/testmodeonly/user";
    h.post(user, None, json!({"user": "alice", "display": "Again"}))
        .await
        .assert_error(400, "40000 User already exists: alice");
    h.post(user, None, json!({"user": "***ROOT***", "display": "R"}))
        .await
        .assert_error(403, "20000 Unauthorized: Cannot create root user");
    let fetched = h.get("/testmode/api/V2/testmodeonly/user/alice/", None).await;
    assert_eq!(fetched.json(), alice, "the same user, trailing slash and all");
    h.get("/testmode/api/V2/testmodeonly/user/bob", None).await.assert_error(404, "50000 No such user: bob");

    let token = "/testmode/api/V2/testmodeonly/token";
    for (kind, shown) in [("Login", "Login"), ("Agent", "Agent"), ("Dev", "Developer"), ("Serv", "Service")] {
        let created = create_token(&h, "alice", kind).await;
        assert_eq!(created["type"], shown);
        assert_eq!(created["expires"].as_i64(), created["created"].as_i64().map(|c| c + HOUR));
        assert_eq!(created["name"], json!(null));
        assert_eq!(created["custom"], json!({}));
        assert_eq!(created["cachefor"], 300_000);
    }
    let named = h.post(token, None, json!({"user": "alice", "type": "Agent", "name": " my tests "})).await.json();
    assert_eq!(named["name"], "my tests");
    h.post(token, None, json!({"user": "alice", "type": "Agent", "name": "  "}))
        .await
        .assert_error(400, "30000 Missing input parameter: token name");
    h.post(token, None, json!({"user": "alice"}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Invalid token type: null");
    h.post(token, None, json!({"user": "alice", "type": "Login", "customcontext": {}}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Unexpected parameters in request: customcontext");
    h.post(token, None, json!({"user": "bob", "type": "Login"})).await.assert_error(404, "50000 No such user: bob");

    let value = token_of(&named);
    let introspected = h.get("/testmode/api/V2/token", Some(&value)).await.json();
    let mut expected = named.clone();
    expected.as_object_mut().map(|o| o.remove("token"));
    assert_eq!(introspected, expected);
    h.get("/testmode/api/V2/token", Some("NOPE")).await.assert_error(401, "10020 Invalid token");
    assert_eq!(h.get("/testmode/api/V2/me", Some(&value)).await.json(), alice);
    let users = h.get("/testmode/api/V2/users?list=alice,nobody", Some(&value)).await;
    assert_eq!(users.json(), json!({"alice": "Alice A"}));
    assert_eq!(h.get("/testmode/api/V2/users", Some(&value)).await.json(), json!({}));

    assert_eq!(custom_roles(&h).await, json!({"customroles": []}));
    set_role(&h, "zeta", "Last").await;
    set_role(&h, "tester", "Tests").await;
    set_role(&h, "tester", "Tests things").await;
    assert_eq!(
        custom_roles(&h).await,
        json!({"customroles": [{"id": "tester", "desc": "Tests things"}, {"id": "zeta", "desc": "Last"}]})
    );

    let userroles = "/testmode/api/V2/testmodeonly/userroles";
    let set = h
        .put(userroles, None, json!({"user": "alice", "roles": ["DevToken", "Admin"], "customroles": ["tester"]}))
        .await;
    assert_eq!(set.status, StatusCode::NO_CONTENT, "{}", set.text);
    let alice = h.get("/testmode/api/V2/testmodeonly/user/alice", None).await.json();
    assert_eq!(
        alice["roles"],
        json!([{"id": "Admin", "desc": "Administrator"}, {"id": "DevToken", "desc": "Create developer tokens"}])
    );
    assert_eq!(alice["customroles"], json!(["tester"]));
    h.put(userroles, None, json!({"user": "bob", "customroles": ["nope"]}))
        .await
        .assert_error(400, "50040 No such role: nope");
    h.put(userroles, None, json!({"user": "bob", "customroles": ["tester"]}))
        .await
        .assert_error(404, "50000 No such user: bob");
    h.put(userroles, None, json!({"user": "alice", "roles": ["Root"]}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Invalid role id: Root");
    h.put(userroles, None, json!({"user": "alice", "roles": ["admin"]}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Invalid role id: admin");
    h.put(userroles, None, json!({"user": "alice", "roles": [null]}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Null item in roles");
    h.put(userroles, None, json!({"user": "alice", "customroles": [null]}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Null item in custom roles");
    let cleared = h.put(userroles, None, json!({"user": "alice"})).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT);
    let alice = h.get("/testmode/api/V2/testmodeonly/user/alice", None).await.json();
    assert_eq!((alice["roles"].clone(), alice["customroles"].clone()), (json!([]), json!([])));
    h
}
on_both_stores!(users_tokens_and_roles_round_trip, test_mode);

async fn legacy_mirrors_read_test_data(h: Harness) -> Harness {
    create_user(&h, "alice", "Alice A").await;
    create_user(&h, "bob", "Bob B").await;
    let token = token_of(&create_token(&h, "alice", "Agent").await);
    let kbase = "/testmode/api/legacy/KBase/Sessions/Login";
    let answer = h
        .post_as(kbase, Some("application/x-www-form-urlencoded"), &format!("token={token}&fields=token,name,email"))
        .await;
    assert_eq!(answer.json(), json!({"user_id": "alice", "token": token, "name": "Alice A", "email": null}));
    let answer = h.post_as(kbase, Some("application/x-www-form-urlencoded"), &format!("token={token}")).await;
    assert_eq!(answer.json(), json!({"user_id": "alice"}));
    let get = h.send(h.http.get(h.url(kbase))).await;
    assert_eq!(get.status, StatusCode::UNAUTHORIZED);

    let globus = h
        .get_with(
            "/testmode/api/legacy/globus/goauth/token?grant_type=client_credentials",
            &[("x-globus-goauthtoken", &token)],
        )
        .await
        .json();
    assert_eq!(globus["lifetime"], 3600);
    assert_eq!(globus["user_name"], "alice");
    assert_eq!(globus["issued_on"], json!(TEST_EPOCH / 1000));
    assert_eq!(globus["expires_in"], 3600);

    let me = h
        .get_with("/testmode/api/legacy/globus/users/alice", &[("Authorization", &format!("OAuth {token}"))])
        .await
        .json();
    assert_eq!(
        (me["username"].clone(), me["fullname"].clone(), me["email"].clone()),
        (json!("alice"), json!("Alice A"), json!(null))
    );
    let bob =
        h.get_with("/testmode/api/legacy/globus/users/bob", &[("Authorization", &format!("OAuth {token}"))]).await;
    assert_eq!(bob.json()["full_name"], "Bob B");
    h.get_with("/testmode/api/legacy/globus/users/carol", &[("Authorization", &format!("OAuth {token}"))])
        .await
        .assert_error(404, "50000 No such user: carol");
    h
}
on_both_stores!(legacy_mirrors_read_test_data, test_mode);

async fn test_data_and_main_data_never_meet(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let main_agent = h.agent_token(&admin, "main script").await;
    let custom = h.post("/admin/customroles/set", Some(&admin), json!({"id": "main_role", "desc": "Main"})).await;
    assert_eq!(custom.status, StatusCode::NO_CONTENT, "{}", custom.text);

    // A test user may take a name the main log has.
    create_user(&h, "admin", "Test Admin").await;
    create_user(&h, "tina", "Tina T").await;
    set_role(&h, "test_role", "Test").await;
    let test_token = token_of(&create_token(&h, "tina", "Login").await);

    // Test data is invisible to the main API...
    h.get("/api/V2/token", Some(&test_token)).await.assert_error(401, "10020 Invalid token");
    h.get("/api/V2/me", Some(&test_token)).await.assert_error(401, "10020 Invalid token");
    assert_eq!(h.get("/api/V2/users?list=tina,admin", Some(&admin)).await.json(), json!({"admin": "The Admin"}));
    let main_roles = h.get("/admin/customroles", Some(&admin)).await.json();
    assert!(!main_roles.to_string().contains("test_role"), "{main_roles}");
    h.get_with("/api/legacy/globus/goauth/token?grant_type=client_credentials", &[("globus-goauthtoken", &test_token)])
        .await
        .assert_error(403, "10020 Invalid token: Authentication failed");
    h.post_as(
        "/api/legacy/KBase/Sessions/Login",
        Some("application/x-www-form-urlencoded"),
        &format!("token={test_token}"),
    )
    .await
    .assert_error(401, "10020 Invalid token");

    // ...and main data to test mode's.
    h.get("/testmode/api/V2/token", Some(&main_agent)).await.assert_error(401, "10020 Invalid token");
    h.get("/testmode/api/V2/me", Some(&admin)).await.assert_error(401, "10020 Invalid token");
    h.get("/testmode/api/V2/testmodeonly/user/alice", None).await.assert_error(404, "50000 No such user: alice");
    assert_eq!(h.get("/testmode/api/V2/testmodeonly/user/admin", None).await.json()["display"], "Test Admin");
    assert_eq!(
        h.get("/testmode/api/V2/users?list=admin,tina", Some(&test_token)).await.json(),
        json!({"admin": "Test Admin", "tina": "Tina T"})
    );
    assert_eq!(custom_roles(&h).await, json!({"customroles": [{"id": "test_role", "desc": "Test"}]}));
    h.put("/testmode/api/V2/testmodeonly/userroles", None, json!({"user": "tina", "customroles": ["main_role"]}))
        .await
        .assert_error(400, "50040 No such role: main_role");
    h.get_with(
        "/testmode/api/legacy/globus/goauth/token?grant_type=client_credentials",
        &[("globus-goauthtoken", &main_agent)],
    )
    .await
    .assert_error(403, "10020 Invalid token: Authentication failed");

    // Clearing test data leaves the main log alone.
    let before = h.store.main_log_len().await;
    assert_eq!(h.delete("/testmode/api/V2/testmodeonly/clear", None).await.status, StatusCode::NO_CONTENT);
    assert_eq!(h.store.main_log_len().await, before);
    assert_eq!(h.get("/api/V2/token", Some(&main_agent)).await.status, StatusCode::OK);
    h
}
on_both_stores!(test_data_and_main_data_never_meet, test_mode);

async fn every_record_expires_one_hour_after_it_was_made(h: Harness) -> Harness {
    let first = create_user(&h, "alice", "Alice A").await;
    let early = token_of(&create_token(&h, "alice", "Login").await);
    set_role(&h, "short", "Set once").await;
    set_role(&h, "renewed", "Set twice").await;
    h.advance(HOUR / 2);
    let late = token_of(&create_token(&h, "alice", "Agent").await);
    set_role(&h, "renewed", "Set twice").await;

    h.advance(HOUR / 2 - 1);
    assert_eq!(h.get("/testmode/api/V2/testmodeonly/user/alice", None).await.status, StatusCode::OK);
    assert_eq!(h.get("/testmode/api/V2/token", Some(&early)).await.status, StatusCode::OK);
    assert_eq!(custom_roles(&h).await["customroles"].as_array().map(Vec::len), Some(2));

    h.advance(1);
    h.get("/testmode/api/V2/testmodeonly/user/alice", None).await.assert_error(404, "50000 No such user: alice");
    h.get("/testmode/api/V2/token", Some(&early)).await.assert_error(401, "10020 Invalid token");
    assert_eq!(custom_roles(&h).await, json!({"customroles": [{"id": "renewed", "desc": "Set twice"}]}));
    assert_eq!(h.get("/testmode/api/V2/users?list=alice", Some(&late)).await.json(), json!({}));
    // The later token outlives its user.
    assert_eq!(h.get("/testmode/api/V2/token", Some(&late)).await.status, StatusCode::OK);
    h.get("/testmode/api/V2/me", Some(&late)).await.assert_error(404, "50000 No such user: alice");
    h.post("/testmode/api/V2/testmodeonly/token", None, json!({"user": "alice", "type": "Login"}))
        .await
        .assert_error(404, "50000 No such user: alice");

    // The name is free again: a new user, with a new anonymous id.
    let second = create_user(&h, "alice", "Alice Again").await;
    assert_ne!(second["anonid"], first["anonid"]);
    assert_eq!(second["created"], json!(TEST_EPOCH + HOUR));

    h.advance(HOUR / 2);
    assert_eq!(custom_roles(&h).await, json!({"customroles": []}));
    h.get("/testmode/api/V2/token", Some(&late)).await.assert_error(401, "10020 Invalid token");
    h
}
on_both_stores!(every_record_expires_one_hour_after_it_was_made, test_mode);

async fn the_sweeper_deletes_expired_rows_and_the_log_carries_on(h: Harness) -> Harness {
    create_user(&h, "old", "Old One").await;
    let old_token = token_of(&create_token(&h, "old", "Login").await);
    set_role(&h, "old_role", "Old").await;
    let put =
        h.put("/testmode/api/V2/testmodeonly/userroles", None, json!({"user": "old", "customroles": ["old_role"]}));
    assert_eq!(put.await.status, StatusCode::NO_CONTENT);
    h.advance(HOUR / 2);
    create_user(&h, "young", "Young One").await;
    let young_token = token_of(&create_token(&h, "young", "Login").await);
    let main_before = h.store.main_log_len().await;

    let test_mode = h.server.test_mode.clone().expect("test mode is on");
    assert_eq!(test_mode.sweep().await.expect("a sweep").records, 0, "nothing has expired yet");
    let sqlite = matches!(h.store, TestStore::Sqlite { .. });
    let in_files = |h: &Harness| h.store.raw_sqlite_files("events.testmode.db").contains("Old One");
    assert!(!sqlite || in_files(&h), "the display name is in the files");
    h.advance(HOUR / 2);
    let swept = test_mode.sweep().await.expect("a sweep");
    assert_eq!(swept.records, 3, "the old user, its token and the old role");
    // No byte of the deleted records stays in the file, its free pages or its WAL.
    assert!(!in_files(&h), "the swept display name is gone from the files");
    let rows = h.store.test_log_rows().await;
    assert!(rows.iter().all(|(_, id, _)| id != "old" && id != "old_role"), "{rows:?}");
    let types: Vec<&str> = rows.iter().map(|(_, _, t)| t.as_str()).collect();
    assert_eq!(types, ["TestUserCreated", "TokenIssued", "TestDataSwept"]);
    assert_eq!(h.store.main_log_len().await, main_before, "the main log is never touched");

    // The log carries on past the deletion (positions continue from the marker)...
    create_user(&h, "newer", "Newer One").await;
    assert_eq!(h.get("/testmode/api/V2/me", Some(&young_token)).await.json()["user"], "young");
    // ...and a restart folds what is left into the same state.
    let h = h.restart().await;
    h.get("/testmode/api/V2/token", Some(&old_token)).await.assert_error(401, "10020 Invalid token");
    h.get("/testmode/api/V2/testmodeonly/user/old", None).await.assert_error(404, "50000 No such user: old");
    assert_eq!(h.get("/testmode/api/V2/me", Some(&young_token)).await.json()["user"], "young");
    assert_eq!(h.get("/testmode/api/V2/testmodeonly/user/newer", None).await.status, StatusCode::OK);
    assert_eq!(custom_roles(&h).await, json!({"customroles": []}));

    // A later sweep also deletes the earlier marker.
    h.advance(HOUR);
    let test_mode = h.server.test_mode.clone().expect("test mode is on");
    assert_eq!(test_mode.sweep().await.expect("a sweep").records, 3);
    let rows = h.store.test_log_rows().await;
    assert_eq!(rows.len(), 1, "only the newest marker: {rows:?}");
    create_user(&h, "fresh", "Fresh").await;
    h
}
on_both_stores!(the_sweeper_deletes_expired_rows_and_the_log_carries_on, test_mode);

async fn clear_forgets_every_test_record(h: Harness) -> Harness {
    create_user(&h, "alice", "Alice A").await;
    let token = token_of(&create_token(&h, "alice", "Login").await);
    set_role(&h, "tester", "Tests").await;
    let cleared = h.delete("/testmode/api/V2/testmodeonly/clear/", None).await;
    assert_eq!(cleared.status, StatusCode::NO_CONTENT, "{}", cleared.text);
    h.get("/testmode/api/V2/testmodeonly/user/alice", None).await.assert_error(404, "50000 No such user: alice");
    h.get("/testmode/api/V2/token", Some(&token)).await.assert_error(401, "10020 Invalid token");
    assert_eq!(custom_roles(&h).await, json!({"customroles": []}));
    let rows = h.store.test_log_rows().await;
    assert_eq!(rows, [("TestData".to_owned(), "testdata".to_owned(), "TestDataCleared".to_owned())]);

    create_user(&h, "alice", "Alice Again").await;
    let h = h.restart().await;
    assert_eq!(h.get("/testmode/api/V2/testmodeonly/user/alice", None).await.json()["display"], "Alice Again");
    h.get("/testmode/api/V2/token", Some(&token)).await.assert_error(401, "10020 Invalid token");
    h
}
on_both_stores!(clear_forgets_every_test_record, test_mode);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_mode_lives_in_its_own_sqlite_file() {
    let store = TestStore::sqlite();
    let h = Harness::test_mode(store.clone()).await;
    create_user(&h, "alice", "Alice A").await;
    let TestStore::Sqlite { dir } = &store else { unreachable!("an SQLite store") };
    assert!(dir.path().join("events.testmode.db").exists());
    assert!(!store.dump().await.contains("TestUserCreated"), "no test event in the main file");
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_to_test_mode_is_a_4xx_and_writes_nothing() {
    let h = Harness::test_mode(TestStore::sqlite()).await;
    let user = "/testmode/api/V2/testmodeonly/user";
    let json = "application/json";
    for (body, status) in [
        ("{not json", 400),
        ("[1, 2]", 400),
        ("{\"user\": {\"a\": 1}, \"display\": \"x\"}", 400),
        ("{\"user\": \"\\u00e9mile\", \"display\": \"x\"}", 400),
        ("{\"user\": \"ok\", \"display\": \"a\\u0007b\"}", 400),
    ] {
        let answer = h.raw(reqwest::Method::POST, user, None, json, body).await;
        assert_eq!(answer.status.as_u16(), status, "{body}: {}", answer.text);
        assert!(answer.json()["error"]["message"].is_string());
    }
    let huge = format!("{{\"user\": \"a\", \"display\": \"{}\"}}", "x".repeat(2 << 20));
    // The server may answer 413 and close before the client has sent it all
    // (on a client of its own: the shared one must not pool that connection).
    let client = reqwest::Client::new();
    if let Ok(answer) = client.post(h.url(user)).header("Content-Type", json).body(huge).send().await {
        assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
    let form = h.raw(reqwest::Method::POST, user, None, "application/x-www-form-urlencoded", "user=a&display=b").await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let roles = "/testmode/api/V2/testmodeonly/userroles";
    h.raw(reqwest::Method::PUT, roles, None, json, "{\"user\": \"a\", \"roles\": \"Admin\"}")
        .await
        .assert_error(400, "Unable to read the request body: roles must be a list of strings");
    h.post("/testmode/api/V2/testmodeonly/token", None, json!({"user": "a", "type": "Login", "name": "x".repeat(101)}))
        .await
        .assert_error(400, "30001 Illegal input parameter: token name size greater than limit 100");
    assert!(h.store.test_log_rows().await.is_empty(), "nothing was written");
    create_user(&h, "still", "Still Serving").await;
    h.finish().await;
}

/// Request-parsing details where upstream's framework (Jersey + Jackson) decides the answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_parsing_follows_upstreams_framework() {
    let h = Harness::test_mode(TestStore::sqlite()).await;
    create_user(&h, "alice", "Alice A").await;
    create_user(&h, "bob", "Bob B").await;
    let token = token_of(&create_token(&h, "alice", "Login").await);
    // Java's split drops trailing empty elements; a repeated parameter's first value wins.
    let users = |q: &str| format!("/testmode/api/V2/users?{q}");
    assert_eq!(h.get(&users("list=alice,"), Some(&token)).await.json(), json!({"alice": "Alice A"}));
    assert_eq!(h.get(&users("list=,"), Some(&token)).await.json(), json!({}));
    assert_eq!(h.get(&users("list=alice&list=bob"), Some(&token)).await.json(), json!({"alice": "Alice A"}));
    assert_eq!(h.get(&users("list=alice,alice"), Some(&token)).await.json(), json!({"alice": "Alice A"}));
    let globus = "/testmode/api/legacy/globus/goauth/token?grant_type=client_credentials&grant_type=password";
    assert_eq!(h.get_with(globus, &[("globus-goauthtoken", &token)]).await.json()["user_name"], "alice");

    // Jackson maps the whole body first: a wrong type beats an unexpected key.
    let roles = "/testmode/api/V2/testmodeonly/userroles";
    let wrong = h.put(roles, None, json!({"user": "alice", "roles": "Admin", "x": 1})).await;
    wrong.assert_error(400, "Unable to read the request body: roles must be a list of strings");
    assert!(wrong.json()["error"].get("appcode").is_none());
    // ...and reads scalars in a string list as their text.
    h.put(roles, None, json!({"user": "alice", "roles": [1]}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Invalid role id: 1");
    h.put(roles, None, json!({"user": "alice", "customroles": [true]}))
        .await
        .assert_error(400, "50040 No such role: true");
    // A blank detail is no detail.
    h.put(roles, None, json!({"user": "alice", "customroles": [" "]})).await.assert_error(400, "50040 No such role");

    // A content type no endpoint consumes is refused before one is chosen: no call id; HTML only when preferred.
    let user = "/testmode/api/V2/testmodeonly/user";
    let form = h.raw(reqwest::Method::POST, user, None, "text/plain", "user=a").await;
    assert_eq!(form.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(form.json()["error"].get("callid").is_none());
    let json = h.send(h.http.post(h.url(user)).header("Content-Type", "text/plain").body("x")).await;
    assert_eq!(json.json()["error"]["httpcode"], 415);
    let html = h
        .send(h.http.post(h.url(user)).header("Content-Type", "text/plain").header("Accept", "text/html").body("x"))
        .await;
    assert!(html.text.starts_with("<!DOCTYPE html>"), "{}", html.text);
    // A body with no content type is octet-stream, which no endpoint reads.
    let untyped = h.send(h.http.post(h.url(user)).header("Accept", "application/json").body("{}")).await;
    assert_eq!(untyped.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(untyped.json()["error"].get("callid").is_some());
    h.finish().await;
}

/// A forget on the main log drops the test user of the same name and its
/// tokens from the test-mode log: no byte of the name is left in either.
async fn a_forget_drops_the_test_user_of_the_same_name(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    h.user_token(&admin, "zelda").await;
    create_user(&h, "zelda", "Zelda Tested").await;
    let test_token = token_of(&create_token(&h, "zelda", "Login").await);
    create_user(&h, "yann", "Yann Tested").await;
    let yann_token = token_of(&create_token(&h, "yann", "Login").await);
    assert!(h.store.everything().await.contains("Zelda Tested"), "the test user is in the store");

    let forgot = h.post("/admin/user/zelda/forget", Some(&admin), json!({"reason": "asked"})).await;
    assert_eq!(forgot.status, StatusCode::NO_CONTENT, "{}", forgot.text);
    h.get("/testmode/api/V2/testmodeonly/user/zelda", None).await.assert_error(404, "50000 No such user: zelda");
    h.get("/testmode/api/V2/token", Some(&test_token)).await.assert_error(401, "10020 Invalid token");
    assert_eq!(h.get("/testmode/api/V2/me", Some(&yann_token)).await.json()["user"], "yann", "others stay");
    let rows = h.store.test_log_rows().await;
    assert!(rows.iter().any(|(_, _, t)| t == "TestUserDropped"), "{rows:?}");
    assert!(rows.iter().all(|(_, id, _)| id != "zelda"), "{rows:?}");
    let everything = h.store.everything().await;
    assert!(!everything.contains("zelda") && !everything.contains("Zelda Tested"), "no byte of her is left");
    if let Some(files) = h.store.relation_files().await {
        assert!(!files.contains("Zelda Tested"), "no old row version of the test user in PostgreSQL's files");
    }

    // A restart folds what is left to the same answers.
    let h = h.restart().await;
    h.get("/testmode/api/V2/testmodeonly/user/zelda", None).await.assert_error(404, "50000 No such user: zelda");
    assert_eq!(h.get("/testmode/api/V2/me", Some(&yann_token)).await.json()["user"], "yann");
    // Once a sweep has deleted the marker too, a rebuild still knows no zelda; the name may be a test user again.
    h.advance(HOUR);
    let test_mode = h.server.test_mode.clone().expect("test mode is on");
    assert!(test_mode.sweep().await.expect("a sweep").records > 0, "yann and his token expired");
    let rows = h.store.test_log_rows().await;
    assert!(rows.iter().all(|(_, _, t)| t != "TestUserDropped"), "{rows:?}");
    let h = h.restart().await;
    h.get("/testmode/api/V2/testmodeonly/user/zelda", None).await.assert_error(404, "50000 No such user: zelda");
    h.get("/testmode/api/V2/token", Some(&test_token)).await.assert_error(401, "10020 Invalid token");
    create_user(&h, "zelda", "Zelda Again").await;
    h
}
on_both_stores!(a_forget_drops_the_test_user_of_the_same_name, test_mode);
