//! The legacy KBase and Globus endpoints (contract §7) against the main log,
//! over HTTP, with their quirks: fixed texts, 403s where the rest of the API
//! answers 401, exact form content types, times in seconds.

use crate::common;

use common::Harness;
use reqwest::StatusCode;
use serde_json::json;

const KBASE: &str = "/api/legacy/KBase/Sessions/Login";
const FORM: &str = "application/x-www-form-urlencoded";

async fn kbase_login_answers_the_fields_asked_for(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "alice").await;
    let agent = h.agent_token(&login, "script").await;

    let get = h.send(h.http.get(h.url(KBASE))).await;
    assert_eq!(get.status, StatusCode::UNAUTHORIZED);
    assert_eq!(get.header("content-type").as_deref(), Some("text/html"));
    assert_eq!(
        get.text,
        "This GET method is just here for compatibility with the old java client and does nothing useful. \
         Here's the compatibility part: \"user_id\": null"
    );
    // An HTML-only endpoint: a client that accepts only JSON is not served (406, no call id).
    let json_only = h.get(KBASE, None).await;
    json_only.assert_error(406, "HTTP 406 Not Acceptable");
    assert!(json_only.json()["error"].get("callid").is_none());

    assert_eq!(h.post_as(KBASE, Some(FORM), &format!("token={agent}")).await.json(), json!({"user_id": "alice"}));
    let all = h.post_as(KBASE, Some(FORM), &format!("token=%20{agent}%20&fields=token,name,email")).await;
    assert_eq!(
        all.json(),
        json!({"user_id": "alice", "token": agent, "name": "User alice", "email": "alice@example.org"})
    );
    let some = h.post_as(KBASE, Some(FORM), &format!("token={agent}&fields=%20name%20,bogus")).await;
    assert_eq!(some.json(), json!({"user_id": "alice", "name": "User alice"}));

    h.post_as(KBASE, Some(FORM), "fields=name").await.assert_error(400, "30000 Missing input parameter: token");
    h.post_as(KBASE, Some(FORM), "token=%20%20").await.assert_error(400, "30000 Missing input parameter: token");
    h.post_as(KBASE, Some(FORM), "token=NOPE").await.assert_error(401, "10020 Invalid token");
    // Upstream compares the whole content type: a charset parameter reads as "no token".
    h.post_as(KBASE, Some("application/x-www-form-urlencoded; charset=UTF-8"), &format!("token={agent}"))
        .await
        .assert_error(400, "30000 Missing input parameter: token");
    h.post_as(KBASE, None, "").await.assert_error(400, "30000 Missing input parameter: token");
    let json_body = h.post_as(KBASE, Some("application/json"), "{}").await;
    assert_eq!(json_body.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    h
}
on_both_stores!(kbase_login_answers_the_fields_asked_for);

async fn globus_token_introspection_in_seconds(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "alice").await;
    let agent = h.agent_token(&login, "script").await;
    let path = "/api/legacy/globus/goauth/token?grant_type=client_credentials";

    let introspected = h.get("/api/V2/token", Some(&agent)).await.json();
    let before = h.now() / 1000;
    let answer = h.get_with(path, &[("globus-goauthtoken", &agent)]).await.json();
    let expiry = introspected["expires"].as_i64().unwrap_or_default() / 1000;
    let issued = introspected["created"].as_i64().unwrap_or_default() / 1000;
    assert_eq!(answer["access_token"], json!(agent));
    assert_eq!((answer["client_id"].clone(), answer["user_name"].clone()), (json!("alice"), json!("alice")));
    assert_eq!((answer["expiry"].clone(), answer["issued_on"].clone()), (json!(expiry), json!(issued)));
    assert_eq!(answer["lifetime"], json!(expiry - issued));
    let expires_in = answer["expires_in"].as_i64().unwrap_or_default();
    assert!(expires_in <= expiry - before && expires_in >= expiry - before - 5, "{answer}");
    assert_eq!(answer["refresh_token"], "");
    assert_eq!(answer["scopes"], json!([]));
    assert_eq!(answer["token_id"], introspected["id"]);
    assert_eq!(answer["token_type"], "Bearer");

    let fallback = h.get_with(path, &[("globus-goauthtoken", "  "), ("x-globus-goauthtoken", &agent)]).await;
    assert_eq!(fallback.json()["user_name"], "alice");

    h.get_with("/api/legacy/globus/goauth/token", &[("globus-goauthtoken", &agent)])
        .await
        .assert_error(400, "70000 Unsupported operation: Only client_credentials grant_type supported. Got null");
    h.get_with("/api/legacy/globus/goauth/token?grant_type=password", &[("globus-goauthtoken", &agent)])
        .await
        .assert_error(400, "70000 Unsupported operation: Only client_credentials grant_type supported. Got password");
    h.get_with(path, &[]).await.assert_error(403, "10010 No authentication token");
    h.get_with(path, &[("globus-goauthtoken", "NOPE")])
        .await
        .assert_error(403, "10020 Invalid token: Authentication failed");
    h
}
on_both_stores!(globus_token_introspection_in_seconds);

async fn globus_users_shows_email_only_to_oneself(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "alice").await;
    h.user_with_password(&admin, "bob").await;
    let oauth = format!("OAuth {login}");

    let me = h.get_with("/api/legacy/globus/users/alice", &[("Authorization", &oauth)]).await;
    assert_eq!(
        me.json(),
        json!({"username": "alice", "user_name": "alice", "full_name": "User alice", "fullname": "User alice",
               "email": "alice@example.org", "email_validated": false, "ssh_pubkeys": [],
               "resource_type": "users", "organization": null, "custom_fields": {}})
    );
    let bob = h.get_with("/api/legacy/globus/users/bob", &[("Authorization", &format!("globus:  {login} "))]).await;
    assert_eq!((bob.json()["username"].clone(), bob.json()["email"].clone()), (json!("bob"), json!(null)));
    let by_x = h.get_with("/api/legacy/globus/users/bob", &[("x-globus-goauthtoken", &login)]).await;
    assert_eq!(by_x.json()["username"], "bob");

    for bad in [login.as_str(), "a b c"] {
        h.get_with("/api/legacy/globus/users/bob", &[("Authorization", bad)])
            .await
            .assert_error(403, "10010 No authentication token: Invalid authorization header");
    }
    h.get_with("/api/legacy/globus/users/bob", &[]).await.assert_error(403, "10010 No authentication token");
    h.get_with("/api/legacy/globus/users/Bob", &[("Authorization", &oauth)])
        .await
        .assert_error(400, "30010 Illegal user name: Illegal character in user name Bob: B");
    h.get_with("/api/legacy/globus/users/bob", &[("Authorization", "OAuth NOPE")])
        .await
        .assert_error(403, "10020 Invalid token: Authentication failed.");
    h.get_with("/api/legacy/globus/users/nobody", &[("Authorization", &oauth)])
        .await
        .assert_error(404, "50000 No such user: nobody");

    let disabled =
        h.post("/admin/user/bob/disable", Some(&admin), json!({"disable": true, "disabledreason": "left"})).await;
    assert_eq!(disabled.status, StatusCode::NO_CONTENT, "{}", disabled.text);
    h.get_with("/api/legacy/globus/users/bob", &[("Authorization", &oauth)])
        .await
        .assert_error(404, "50000 No such user: bob");
    h
}
on_both_stores!(globus_users_shows_email_only_to_oneself);
