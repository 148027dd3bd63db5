//! Local accounts and the caller's own tokens over HTTP, on both stores:
//! login (form and JSON), password change, developer/service tokens,
//! revocation, logout and dropping one's own roles.

use crate::common;

use common::{Harness, ROOT, ROOT_PASSWORD, USER_PASSWORD};
use serde_json::json;

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).expect("a form")
}

async fn form_login_redirects_with_the_session_cookie(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "ivy").await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let body = form(&[("user", "ivy"), ("pwd", USER_PASSWORD), ("stayloggedin", "")]);
    let answer = h
        .send(
            client
                .post(h.url("/localaccount/login"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await;
    assert_eq!(answer.status, 303, "{}", answer.text);
    assert_eq!(answer.header("location").as_deref(), Some("/me"));
    let cookie = answer.header("set-cookie").expect("a session cookie");
    assert!(cookie.starts_with("kbase_session="), "{cookie}");
    assert!(cookie.contains("Max-Age=1209"), "a 14-day cookie: {cookie}");
    let token = cookie.trim_start_matches("kbase_session=").split(';').next().unwrap_or_default().to_owned();
    let view = h.get("/api/V2/token", Some(&token)).await.json();
    assert_eq!(view["type"], "Login");
    assert_eq!(view["user"], "ivy");
    // The cookie works where the UI expects it.
    let listed = h.send(h.http.get(h.url("/tokens")).header("Cookie", format!("kbase_session={token}"))).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["current"]["id"], view["id"]);
    // Without "stay logged in" the cookie lasts the session.
    let body = form(&[("user", "ivy"), ("pwd", USER_PASSWORD)]);
    let answer = h
        .send(
            client
                .post(h.url("/localaccount/login"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(body),
        )
        .await;
    assert!(!answer.header("set-cookie").expect("a session cookie").contains("Max-Age"));
    h
}
on_both_stores!(form_login_redirects_with_the_session_cookie);

async fn login_failures_are_reported_in_upstream_order(h: Harness) -> Harness {
    let root = h.root_token().await;
    // Non-admin login is off by default: create a user through root's CreateAdmin path.
    let created = h
        .post(
            "/admin/localaccount/create",
            Some(&root),
            json!({"user": "jack", "display": "Jack", "email": "j@example.org"}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let temporary = created.json()["pwd"].as_str().expect("a string field").to_owned();
    assert_eq!(temporary.chars().count(), 10);
    let login = |user: &str, pwd: &str| json!({"user": user, "pwd": pwd});
    h.post("/localaccount/login", None, json!({"pwd": "x"}))
        .await
        .assert_error(400, "30000 Missing input parameter: user");
    h.post("/localaccount/login", None, json!({"user": "jack"}))
        .await
        .assert_error(400, "30000 Missing input parameter: pwd");
    h.post("/localaccount/login", None, login("Jack", "x"))
        .await
        .assert_error(400, "30010 Illegal user name: Illegal character in user name Jack: J");
    h.post("/localaccount/login", None, login("nobody", "x"))
        .await
        .assert_error(401, "10050 Password / username mismatch: nobody");
    h.post("/localaccount/login", None, login("jack", "wrong"))
        .await
        .assert_error(401, "10050 Password / username mismatch: jack");
    h.post("/localaccount/login", None, login("jack", &temporary))
        .await
        .assert_error(403, "20000 Unauthorized: User jack cannot log in because non-admin login is disabled");
    let admin = h.admin_token(&root).await;
    // A temporary password must be changed first.
    h.post("/localaccount/login", None, login("jack", &temporary)).await.assert_error(
        403,
        "20000 Unauthorized: User jack must reset their password at /localaccount/reset before logging in",
    );
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let answer = h
        .send(
            client
                .post(h.url("/localaccount/login"))
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(form(&[("user", "jack"), ("pwd", &temporary)])),
        )
        .await;
    assert_eq!(answer.status, 303);
    assert_eq!(answer.header("location").as_deref(), Some("/localaccount/reset?user=jack"));
    assert!(answer.header("set-cookie").is_none());
    // Password change rules.
    let reset = |old: &str, new: &str| json!({"user": "jack", "pwdold": old, "pwdnew": new});
    h.post("/localaccount/reset", None, json!({"user": "jack", "pwdold": "x"}))
        .await
        .assert_error(400, "30000 Missing input parameter: pwdnew");
    h.post("/localaccount/reset", None, reset(&temporary, &temporary))
        .await
        .assert_error(400, "30030 Illegal password: Old and new passwords are identical.");
    let weak = h.post("/localaccount/reset", None, reset(&temporary, "password1")).await;
    assert_eq!(weak.status, 400);
    assert!(
        weak.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("30030 Illegal password: Password is not strong enough.")
    );
    h.post("/localaccount/reset", None, reset(&temporary, &"x".repeat(257)))
        .await
        .assert_error(400, "30030 Illegal password: Password exceeds max length (256)");
    h.post("/localaccount/reset", None, reset("wrong old", USER_PASSWORD))
        .await
        .assert_error(401, "10050 Password / username mismatch: jack");
    assert_eq!(h.post("/localaccount/reset", None, reset(&temporary, USER_PASSWORD)).await.status, 204);
    h.login("jack", USER_PASSWORD).await;
    // Disabled users cannot log in.
    assert_eq!(
        h.post("/admin/user/jack/disable", Some(&admin), json!({"disable": true, "disabledreason": "gone"}))
            .await
            .status,
        204
    );
    h.post("/localaccount/login", None, login("jack", USER_PASSWORD))
        .await
        .assert_error(403, "20010 Account disabled: jack");
    // Root always may log in.
    h.login(ROOT, ROOT_PASSWORD).await;
    h
}
on_both_stores!(login_failures_are_reported_in_upstream_order);

async fn developer_and_service_tokens_need_their_roles(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "kim").await;
    h.post("/tokens", Some(&login), json!({"name": "dev"}))
        .await
        .assert_error(403, "20000 Unauthorized: User kim is not authorized to create the Developer token type.");
    assert_eq!(h.post("/admin/user/kim/roles", Some(&admin), json!({"roles": ["DevToken"]})).await.status, 204);
    let dev = h.post("/tokens", Some(&login), json!({"name": "dev", "type": "anything"})).await;
    assert_eq!(dev.status, 200, "{}", dev.text);
    let dev = dev.json();
    assert_eq!(dev["type"], "Developer");
    assert_eq!(dev["expires"].as_i64().unwrap_or(0) - dev["created"].as_i64().unwrap_or(0), 90 * 86_400_000);
    for key in ["os", "osver", "agent", "agentver", "device", "ip", "token"] {
        assert!(dev.get(key).is_some(), "member {key}");
    }
    h.post("/tokens", Some(&login), json!({"name": "svc", "type": "service"}))
        .await
        .assert_error(403, "20000 Unauthorized: User kim is not authorized to create the Service token type.");
    assert_eq!(h.post("/admin/user/kim/roles", Some(&admin), json!({"roles": ["ServToken"]})).await.status, 204);
    let service = h.post("/tokens", Some(&login), json!({"name": "svc", "type": "service"})).await.json();
    assert_eq!(service["type"], "Service");
    // A developer token may not make more tokens.
    let dev_token = dev["token"].as_str().expect("a string field");
    h.post("/tokens", Some(dev_token), json!({"name": "x"}))
        .await
        .assert_error(403, "20000 Unauthorized: Developer tokens are not allowed for this operation");

    let listed = h.get("/tokens", Some(&login)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.json();
    assert_eq!(listed["user"], "kim");
    assert_eq!(listed["dev"], true);
    assert_eq!(listed["service"], true);
    assert_eq!(listed["current"]["type"], "Login");
    let ids: Vec<&str> =
        listed["tokens"].as_array().map(|t| t.iter().filter_map(|x| x["id"].as_str()).collect()).unwrap_or_default();
    assert_eq!(ids.len(), 2);
    assert!(ids.windows(2).all(|w| w[0] <= w[1]), "sorted by id");
    assert_eq!(listed["revokeurl"], "tokens/revoke/");
    h
}
on_both_stores!(developer_and_service_tokens_need_their_roles);

async fn revocation_logout_and_revoke_all(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "lee").await;
    let first = h.post("/api/V2/token", Some(&login), json!({"name": "one"})).await.json();
    let second = h.agent_token(&login, "two").await;
    let first_id = first["id"].as_str().expect("a string field");
    let first_token = first["token"].as_str().expect("a string field");

    let other_login = h.user_token(&admin, "mo").await;
    h.post(&format!("/tokens/revoke/{first_id}"), Some(&other_login), json!({}))
        .await
        .assert_error(404, &format!("50010 No such token: No token {first_id} for user mo exists"));
    h.post(&format!("/tokens/revoke/{first_id}"), Some(&second), json!({}))
        .await
        .assert_error(403, "20000 Unauthorized: Agent tokens are not allowed for this operation");
    assert_eq!(h.delete(&format!("/tokens/revoke/{first_id}"), Some(&login)).await.status, 204);
    h.get("/api/V2/token", Some(first_token)).await.assert_error(401, "10020 Invalid token");
    h.post(&format!("/tokens/revoke/{first_id}"), Some(&login), json!({}))
        .await
        .assert_error(404, &format!("50010 No such token: No token {first_id} for user lee exists"));
    assert_eq!(h.get("/api/V2/token", Some(&second)).await.status, 200);

    // Logout revokes only the token used, and never fails on a bad one.
    let extra = h.login("lee", USER_PASSWORD).await;
    let out = h.post("/logout", Some(&extra), json!({})).await;
    assert_eq!(out.status, 200);
    assert_eq!(out.json(), json!({"user": "lee"}));
    assert_eq!(h.get("/api/V2/token", Some(&extra)).await.status, 401);
    assert_eq!(h.post("/logout", Some("bogus"), json!({})).await.json(), json!({"user": null}));
    h.post("/logout", None, json!({})).await.assert_error(400, "10010 No authentication token: No user token provided");

    // Revoke-all takes every token of the user, and no one else's.
    assert_eq!(h.delete("/tokens/revokeall", Some(&login)).await.status, 204);
    for token in [&login, &second] {
        assert_eq!(h.get("/api/V2/token", Some(token)).await.status, 401);
    }
    assert_eq!(h.get("/api/V2/token", Some(&other_login)).await.status, 200);
    // New tokens after it work.
    let again = h.login("lee", USER_PASSWORD).await;
    assert_eq!(h.get("/api/V2/token", Some(&again)).await.status, 200);
    h
}
on_both_stores!(revocation_logout_and_revoke_all);

async fn users_drop_their_own_roles(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "nina").await;
    assert_eq!(
        h.post("/admin/user/nina/roles", Some(&admin), json!({"roles": ["DevToken", "ServToken"]})).await.status,
        204
    );
    h.post("/me/roles", Some(&login), json!({"roles": ["DevToken", "Nope"]}))
        .await
        .assert_error(400, "50040 No such role: Nope");
    assert_eq!(h.post("/me/roles", Some(&login), json!({"roles": ["ServToken"], "extra": 1})).await.status, 204);
    let roles = h.get("/api/V2/me", Some(&login)).await.json()["roles"].clone();
    assert_eq!(roles, json!([{"id": "DevToken", "desc": "Create developer tokens"}]));
    h.post("/me/roles", Some(&root), json!({"roles": ["Root"]}))
        .await
        .assert_error(403, "20000 Unauthorized: Cannot change ROOT roles");
    h.raw(reqwest::Method::POST, "/me/roles", Some(&login), "application/json", "")
        .await
        .assert_error(400, "30000 Missing input parameter: JSON body missing");
    h
}
on_both_stores!(users_drop_their_own_roles);
