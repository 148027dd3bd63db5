//! The standard API (`/api/V2`) over HTTP, on both stores: every status,
//! appcode and message as the contract has them, in its validation order.

use crate::common;

use std::sync::Arc;

use authledger::clock::ManualClock;
use common::{Harness, TestStore, USER_PASSWORD};
use serde_json::json;

async fn introspection_answers_the_token_and_its_errors(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "alice").await;
    let answer = h
        .post("/api/V2/token", Some(&login), json!({"name": "my script", "customcontext": {"client": "narrative"}}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let created = answer.json();
    let token = created["token"].as_str().expect("token").to_owned();
    assert_eq!(token.len(), 32);
    assert!(token.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)));
    assert_eq!(created["type"], "Agent");
    assert_eq!(created["cachefor"], 300_000);
    assert_eq!(created["expires"].as_i64().unwrap_or(0) - created["created"].as_i64().unwrap_or(0), 7 * 86_400_000);

    let answer = h.get("/api/V2/token", Some(&token)).await;
    assert_eq!(answer.status, 200);
    let view = answer.json();
    for key in ["type", "id", "expires", "created", "name", "user", "custom", "cachefor"] {
        assert!(view.get(key).is_some(), "member {key} of {view}");
    }
    assert!(view.get("token").is_none());
    assert_eq!(view["name"], "my script");
    assert_eq!(view["custom"], json!({"client": "narrative"}));
    assert_eq!(view["id"], created["id"]);

    // Surrounding whitespace is trimmed; a scheme prefix is part of the token.
    assert_eq!(h.get("/api/V2/token", Some(&format!("  {token} "))).await.status, 200);
    h.get("/api/V2/token", Some(&format!("Bearer {token}"))).await.assert_error(401, "10020 Invalid token");
    h.get("/api/V2/token", None).await.assert_error(400, "10010 No authentication token: No user token provided");
    h.get("/api/V2/token", Some("   "))
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    h.get("/api/V2/token", Some("NOTATOKEN")).await.assert_error(401, "10020 Invalid token");
    // Every path also answers with a trailing slash.
    assert_eq!(h.get("/api/V2/token/", Some(&token)).await.status, 200);
    // Paths are case-sensitive.
    assert_eq!(h.get("/api/v2/token", Some(&token)).await.status, 404);
    h
}
on_both_stores!(introspection_answers_the_token_and_its_errors);

async fn agent_token_creation_validates_in_order(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "bob").await;
    let agent = h.agent_token(&login, "agent").await;
    let path = "/api/V2/token";
    h.raw(reqwest::Method::POST, path, Some(&login), "application/json", "")
        .await
        .assert_error(400, "30000 Missing input parameter: JSON body missing");
    h.post(path, Some(&login), json!({"name": "x", "zed": 1, "alpha": 2}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Unexpected parameters in request: alpha, zed");
    h.post(path, None, json!({"name": "x", "customcontext": {"k": "  "}}))
        .await
        .assert_error(400, "30000 Missing input parameter: value");
    h.post(path, None, json!({"name": "x"}))
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    h.post(path, Some("bad"), json!({})).await.assert_error(400, "30000 Missing input parameter: token name");
    h.post(path, Some("bad"), json!({"name": "n".repeat(101)}))
        .await
        .assert_error(400, "30001 Illegal input parameter: token name size greater than limit 100");
    h.post(path, Some("bad"), json!({"name": "x"})).await.assert_error(401, "10020 Invalid token");
    h.post(path, Some(&agent), json!({"name": "x"}))
        .await
        .assert_error(403, "20000 Unauthorized: Agent tokens are not allowed for this operation");
    let too_many: serde_json::Map<String, serde_json::Value> =
        (0..101).map(|i| (format!("k{i}"), json!("v"))).collect();
    h.post(path, Some(&login), json!({"name": "x", "customcontext": too_many}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Exceeded max size of custom context: 100 items");
    h
}
on_both_stores!(agent_token_creation_validates_in_order);

async fn me_shows_and_updates_the_profile(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "carol").await;
    let me = h.get("/api/V2/me", Some(&login)).await;
    assert_eq!(me.status, 200);
    let me = me.json();
    assert_eq!(me["user"], "carol");
    assert_eq!(me["display"], "User carol");
    assert_eq!(me["email"], "carol@example.org");
    assert_eq!(me["local"], true);
    assert_eq!(me["roles"], json!([]));
    assert_eq!(me["customroles"], json!([]));
    assert_eq!(me["idents"], json!([]));
    assert_eq!(me["policyids"], json!([]));
    assert!(me["lastlogin"].is_i64());
    assert!(uuid::Uuid::parse_str(me["anonid"].as_str().expect("a string field")).is_ok());

    let answer = h.put("/api/V2/me", Some(&login), json!({"display": "  Carol C  ", "email": "c@example.com"})).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
    let me = h.get("/api/V2/me", Some(&login)).await.json();
    assert_eq!(me["display"], "Carol C");
    assert_eq!(me["email"], "c@example.com");
    // Blank members change nothing.
    assert_eq!(h.put("/api/V2/me", Some(&login), json!({"display": " ", "email": null})).await.status, 204);
    assert_eq!(h.get("/api/V2/me", Some(&login)).await.json()["display"], "Carol C");

    h.put("/api/V2/me", Some(&login), json!({"email": "nope@local"}))
        .await
        .assert_error(400, "30020 Illegal email address: nope@local");
    h.put("/api/V2/me", Some("bad"), json!({"display": "x\u{1}y"}))
        .await
        .assert_error(400, "30001 Illegal input parameter: display name contains control characters");
    h.put("/api/V2/me", None, json!({"display": "x"}))
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    h.put("/api/V2/me", Some("bad"), json!({"display": "x"})).await.assert_error(401, "10020 Invalid token");
    let agent = h.agent_token(&login, "a").await;
    h.put("/api/V2/me", Some(&agent), json!({"display": "x"}))
        .await
        .assert_error(403, "20000 Unauthorized: Agent tokens are not allowed for this operation");
    // Any token type may read the profile.
    assert_eq!(h.get("/api/V2/me", Some(&agent)).await.status, 200);
    h
}
on_both_stores!(me_shows_and_updates_the_profile);

async fn user_lists_answer_display_names_of_enabled_users(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "dave").await;
    h.user_with_password(&admin, "erin").await;
    let answer = h.get("/api/V2/users?list=dave,%20erin%20,nobody,***ROOT***", Some(&login)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json(), json!({"dave": "User dave", "erin": "User erin"}));
    assert_eq!(h.get("/api/V2/users/?list=", Some(&login)).await.json(), json!({}));
    assert_eq!(h.get("/api/V2/users", Some(&login)).await.json(), json!({}));
    h.get("/api/V2/users?list=dave,Bad", None).await
        .assert_error(400, "30010 Illegal user name: Illegal user name [Bad]: 30010 Illegal user name: Illegal character in user name Bad: B");
    h.get("/api/V2/users?list=dave,%20%20", Some(&login))
        .await
        .assert_error(400, "30010 Illegal user name: Illegal user name [  ]: 30000 Missing input parameter: user name");
    h.get("/api/V2/users?list=dave", None)
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    h.get("/api/V2/users?list=dave", Some("bad")).await.assert_error(401, "10020 Invalid token");
    let many = (0..10_001).map(|i| format!("u{i}")).collect::<Vec<_>>().join(",");
    h.get(&format!("/api/V2/users?list={many}"), Some(&login))
        .await
        .assert_error(400, "30001 Illegal input parameter: User count exceeds maximum of 10000");
    // Disabled users vanish from lists.
    let disabled =
        h.post("/admin/user/erin/disable", Some(&admin), json!({"disable": true, "disabledreason": "left"})).await;
    assert_eq!(disabled.status, 204, "{}", disabled.text);
    assert_eq!(h.get("/api/V2/users?list=dave,erin", Some(&login)).await.json(), json!({"dave": "User dave"}));
    h
}
on_both_stores!(user_lists_answer_display_names_of_enabled_users);

async fn search_matches_names_and_display_parts(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "frank").await;
    for (name, display) in [("barbara", "Bar Thing"), ("thomas", "Tom Jean-Luc"), ("zed", "Zed Zulu")] {
        h.user_with_password(&admin, name).await;
        let token = h.login(name, USER_PASSWORD).await;
        assert_eq!(h.put("/api/V2/me", Some(&token), json!({"display": display})).await.status, 204);
    }
    let search = |prefix: &str, fields: &str| format!("/api/V2/users/search/{prefix}?fields={fields}");
    assert_eq!(h.get(&search("b%20th", ""), Some(&login)).await.json(), json!({"barbara": "Bar Thing"}));
    assert_eq!(h.get(&search("th", "username"), Some(&login)).await.json(), json!({"thomas": "Tom Jean-Luc"}));
    assert_eq!(h.get(&search("luc", "displayname"), Some(&login)).await.json(), json!({"thomas": "Tom Jean-Luc"}));
    assert_eq!(
        h.get(&search("th", ""), Some(&login)).await.json(),
        json!({"admin": "The Admin", "barbara": "Bar Thing", "thomas": "Tom Jean-Luc"})
    );
    h.get(&search("!!", ""), Some(&login)).await.assert_error(
        400,
        "30001 Illegal input parameter: The search prefix !! contains only punctuation and a display name search was requested",
    );
    h.get(&search("99", "username"), Some(&login)).await.assert_error(
        400,
        "30001 Illegal input parameter: The search prefix 99 contains no valid username prefix and a user name search was requested",
    );
    h.get(&search("th", ""), None).await.assert_error(400, "10010 No authentication token: No user token provided");
    h.get(&search("th", ""), Some("bad")).await.assert_error(401, "10020 Invalid token");
    // Root never appears; disabled users vanish.
    assert_eq!(h.get(&search("root", ""), Some(&login)).await.json(), json!({}));
    assert_eq!(
        h.post("/admin/user/zed/disable", Some(&admin), json!({"disable": true, "disabledreason": "x"})).await.status,
        204
    );
    assert_eq!(h.get(&search("zed", ""), Some(&login)).await.json(), json!({}));
    h
}
on_both_stores!(search_matches_names_and_display_parts);

async fn anonymous_ids_are_translated_for_admins_only(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "gina").await;
    let anon = h.get("/api/V2/me", Some(&login)).await.json()["anonid"].as_str().expect("a string field").to_owned();
    let unknown = uuid::Uuid::new_v4();
    let answer = h.get(&format!("/api/V2/admin/anonids?list={anon},{unknown}"), Some(&admin)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.json(), json!({ anon.clone(): "gina" }));
    h.get("/api/V2/admin/anonids?list=not-a-uuid", Some(&admin)).await.assert_error(
        400,
        "30001 Illegal input parameter: Illegal anonymous user ID [not-a-uuid]: Invalid UUID string: not-a-uuid",
    );
    h.get(&format!("/api/V2/admin/anonids?list={anon}"), Some(&login)).await.assert_error(403, "20000 Unauthorized");
    // Root holds Root, not Admin.
    h.get(&format!("/api/V2/admin/anonids?list={anon}"), Some(&root)).await.assert_error(403, "20000 Unauthorized");
    h.get(&format!("/api/V2/admin/anonids?list={anon}"), None)
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    h
}
on_both_stores!(anonymous_ids_are_translated_for_admins_only);

async fn the_root_document_names_the_service(h: Harness) -> Harness {
    let answer = h.get("/", None).await;
    assert_eq!(answer.status, 200);
    let root = answer.json();
    assert_eq!(root["version"], "0.7.2");
    assert_eq!(root["servicename"], "Authentication Service");
    assert!(root["servertime"].is_i64());
    assert!(root["gitcommithash"].is_string());
    // No Accept header: JSON too (only a browser's preference for HTML gets the page).
    assert_eq!(h.send(h.http.get(h.url("/"))).await.json()["servicename"], "Authentication Service");
    let html = h.send(h.http.get(h.url("/")).header("Accept", "text/html")).await;
    assert!(html.text.contains("<h1>Authentication Service</h1>"), "{}", html.text);
    assert!(html.text.contains("<dt>Version</dt><dd>0.7.2</dd>"), "{}", html.text);
    h
}
on_both_stores!(the_root_document_names_the_service);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_expire_at_their_expiry_time() {
    let clock = ManualClock::new(1_800_000_000_000);
    let h = Harness::start_with(TestStore::sqlite(), clock.clone() as Arc<_>, |_| {}).await;
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "hank").await;
    let agent = h.agent_token(&login, "short").await;
    let view = h.get("/api/V2/token", Some(&agent)).await.json();
    let expires = view["expires"].as_i64().expect("expires");
    clock.set(expires - 1);
    assert_eq!(h.get("/api/V2/token", Some(&agent)).await.status, 200);
    clock.set(expires);
    h.get("/api/V2/token", Some(&agent)).await.assert_error(401, "10020 Invalid token");
    h.finish().await;
}
