//! Administration over HTTP, on both stores: accounts, the role-grant rules,
//! custom roles, disabling, resets, other users' tokens, revoke-all, the
//! server configuration — and the permission table, endpoint by endpoint.

use crate::common;

use std::collections::BTreeSet;

use authledger::api::permissions::{Action, allows};
use authledger::domain::Role;
use common::{Harness, USER_PASSWORD};
use serde_json::{Value, json};

async fn accounts_are_created_with_temporary_passwords(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let created = h
        .post(
            "/admin/localaccount/create",
            Some(&admin),
            json!({"user": "olga", "display": " Olga O ", "email": "o@example.org"}),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let body = created.json();
    assert_eq!(body["user"], "olga");
    assert_eq!(body["email"], "o@example.org");
    assert!(body["pwd"].is_string());
    h.post(
        "/admin/localaccount/create",
        Some(&admin),
        json!({"user": "olga", "display": "O", "email": "o@example.org"}),
    )
    .await
    .assert_error(400, "40000 User already exists: olga");
    h.post(
        "/admin/localaccount/create",
        Some(&root),
        json!({"user": "***ROOT***", "display": "O", "email": "o@example.org"}),
    )
    .await
    .assert_error(403, "20000 Unauthorized: Cannot create ROOT user");
    h.post("/admin/localaccount/create", Some(&admin), json!({"user": "p", "display": "P"}))
        .await
        .assert_error(400, "30000 Missing input parameter: email address");
    h.post("/admin/localaccount/create", None, json!({"user": "p", "display": "P", "email": "p@example.org"}))
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");

    let record = h.get("/admin/user/olga", Some(&admin)).await;
    assert_eq!(record.status, 200, "{}", record.text);
    let record = record.json();
    assert_eq!(record["display"], "Olga O");
    assert_eq!(record["disabled"], false);
    assert_eq!(record["disabledreason"], Value::Null);
    assert_eq!(record["enabletoggledate"], Value::Null);
    assert_eq!(record["lastlogin"], Value::Null);
    h.get("/admin/user/nobody", Some(&admin)).await.assert_error(404, "50000 No such user: nobody");
    h
}
on_both_stores!(accounts_are_created_with_temporary_passwords);

async fn role_grants_follow_the_chain_root_createadmin_admin(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    h.user_with_password(&admin, "pat").await;
    let roles = |roles: &[&str]| json!({ "roles": roles });
    h.post("/admin/user/pat/roles", Some(&root), roles(&["Admin"]))
        .await
        .assert_error(403, "20000 Unauthorized: User ***ROOT*** is not authorized to grant role(s): Administrator");
    assert_eq!(h.post("/admin/user/pat/roles", Some(&root), roles(&["CreateAdmin"])).await.status, 204);
    assert_eq!(
        h.post("/admin/user/pat/roles", Some(&admin), roles(&["CreateAdmin", "Admin", "DevToken"])).await.status,
        204
    );
    let held: Vec<String> = h.get("/admin/user/pat", Some(&admin)).await.json()["roles"]
        .as_array()
        .map(|r| r.iter().filter_map(|x| x["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    assert_eq!(held, ["Admin", "CreateAdmin", "DevToken"], "in the contract's order");
    // The admin may not take CreateAdmin away (only root grants it).
    h.post("/admin/user/pat/roles", Some(&admin), roles(&["Admin"]))
        .await
        .assert_error(403, "20000 Unauthorized: User admin is not authorized to remove role(s): Create administrator");
    h.post("/admin/user/***ROOT***/roles", Some(&admin), roles(&[]))
        .await
        .assert_error(403, "20000 Unauthorized: Cannot change ROOT roles");
    h.post("/admin/user/pat/roles", Some(&admin), roles(&["Bogus"]))
        .await
        .assert_error(400, "50040 No such role: Bogus");
    h.post("/admin/user/nobody/roles", Some(&admin), roles(&["DevToken"]))
        .await
        .assert_error(404, "50000 No such user: nobody");
    h.post("/admin/user/Bad/roles", Some(&admin), roles(&[]))
        .await
        .assert_error(400, "30010 Illegal user name: Illegal character in user name Bad: B");
    h
}
on_both_stores!(role_grants_follow_the_chain_root_createadmin_admin);

async fn custom_roles_are_set_assigned_and_deleted(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "quinn").await;
    assert_eq!(
        h.post("/admin/customroles/set", Some(&admin), json!({"id": "curator", "desc": " Curates data "})).await.status,
        204
    );
    assert_eq!(
        h.post("/admin/customroles/set", Some(&admin), json!({"id": "Annotator_2", "desc": "Annotates"})).await.status,
        204
    );
    h.post("/admin/customroles/set", Some(&admin), json!({"id": "bad-id", "desc": "x"}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Illegal character in custom role id bad-id: -");
    h.post("/admin/customroles/set", Some(&admin), json!({"id": "x"}))
        .await
        .assert_error(400, "30000 Missing input parameter: custom role description");
    h.post("/admin/customroles/set", Some(&root), json!({"id": "x", "desc": "y"}))
        .await
        .assert_error(403, "20000 Unauthorized");
    let listed = h.get("/admin/customroles", Some(&root)).await.json();
    assert_eq!(
        listed,
        json!({"customroles": [{"id": "Annotator_2", "desc": "Annotates"}, {"id": "curator", "desc": "Curates data"}]})
    );
    let path = "/admin/user/quinn/customroles";
    assert_eq!(h.post(path, Some(&admin), json!({"customroles": ["curator", "Annotator_2"]})).await.status, 204);
    assert_eq!(h.get("/api/V2/me", Some(&login)).await.json()["customroles"], json!(["Annotator_2", "curator"]));
    h.post(path, Some(&admin), json!({"customroles": ["missing"]}))
        .await
        .assert_error(400, "50040 No such role: missing");
    assert_eq!(h.post(path, Some(&admin), json!({"customroles": ["curator"]})).await.status, 204);
    assert_eq!(h.get("/api/V2/me", Some(&login)).await.json()["customroles"], json!(["curator"]));
    // Deleting a role takes it from everyone.
    assert_eq!(h.post("/admin/customroles/delete", Some(&admin), json!({"id": "curator"})).await.status, 204);
    assert_eq!(h.get("/api/V2/me", Some(&login)).await.json()["customroles"], json!([]));
    h.post("/admin/customroles/delete", Some(&admin), json!({"id": "curator"}))
        .await
        .assert_error(400, "50040 No such role: curator");
    h.post("/admin/customroles/delete", Some(&admin), json!({}))
        .await
        .assert_error(400, "30000 Missing input parameter: roleId cannot be null or empty");
    // Re-creating it does not give it back.
    assert_eq!(
        h.post("/admin/customroles/set", Some(&admin), json!({"id": "curator", "desc": "again"})).await.status,
        204
    );
    assert_eq!(h.get("/api/V2/me", Some(&login)).await.json()["customroles"], json!([]));
    h
}
on_both_stores!(custom_roles_are_set_assigned_and_deleted);

async fn disabling_invalidates_tokens_for_good(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let login = h.user_token(&admin, "rita").await;
    let agent = h.agent_token(&login, "a").await;
    let path = "/admin/user/rita/disable";
    h.post(path, Some(&admin), json!({"disable": true}))
        .await
        .assert_error(400, "30000 Missing input parameter: reason");
    h.post(path, None, json!({"disable": true, "disabledreason": "r".repeat(1001)}))
        .await
        .assert_error(400, "30001 Illegal input parameter: reason size greater than limit 1000");
    assert_eq!(
        h.post(path, Some(&admin), json!({"disable": true, "disabledreason": "left the lab"})).await.status,
        204
    );
    for token in [&login, &agent] {
        h.get("/api/V2/token", Some(token)).await.assert_error(401, "10020 Invalid token");
    }
    let record = h.get("/admin/user/rita", Some(&admin)).await.json();
    assert_eq!(record["disabled"], true);
    assert_eq!(record["disabledreason"], "left the lab");
    assert_eq!(record["enabletoggledby"], "admin");
    assert!(record["enabletoggledate"].is_i64());
    assert_eq!(h.post(path, Some(&admin), json!({"disable": false})).await.status, 204);
    // Old tokens stay dead; new logins work.
    assert_eq!(h.get("/api/V2/token", Some(&agent)).await.status, 401);
    let fresh = h.login("rita", USER_PASSWORD).await;
    assert_eq!(h.get("/api/V2/token", Some(&fresh)).await.status, 200);
    // Root: only root disables it, nobody enables it here.
    h.post("/admin/user/***ROOT***/disable", Some(&admin), json!({"disable": true, "disabledreason": "x"}))
        .await
        .assert_error(403, "20000 Unauthorized: User admin cannot disable the root account");
    h.post("/admin/user/***ROOT***/disable", Some(&root), json!({"disable": false}))
        .await
        .assert_error(403, "20000 Unauthorized: User ***ROOT*** cannot enable the root user via this method");
    h.post("/admin/user/nobody/disable", Some(&admin), json!({"disable": false}))
        .await
        .assert_error(404, "50000 No such user: nobody");
    h
}
on_both_stores!(disabling_invalidates_tokens_for_good);

async fn password_resets_by_administrators(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    h.user_with_password(&admin, "sam").await;
    assert_eq!(h.post("/admin/user/sam/forcereset", Some(&admin), json!({})).await.status, 204);
    h.post("/localaccount/login", None, json!({"user": "sam", "pwd": USER_PASSWORD})).await.assert_error(
        403,
        "20000 Unauthorized: User sam must reset their password at /localaccount/reset before logging in",
    );
    let reset = h.post("/admin/user/sam/reset", Some(&admin), json!({})).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let temporary = reset.json()["pwd"].as_str().expect("a string field").to_owned();
    assert_eq!(reset.json()["user"], "sam");
    let changed = h
        .post(
            "/localaccount/reset",
            None,
            json!({"user": "sam", "pwdold": temporary, "pwdnew": "a brand new passphrase 99"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    h.login("sam", "a brand new passphrase 99").await;
    // Reset rules: a plain Admin cannot touch another admin or root.
    h.post("/admin/user/***ROOT***/forcereset", Some(&admin), json!({}))
        .await
        .assert_error(403, "20000 Unauthorized: Only root can reset root password");
    h.post("/admin/user/nobody/reset", Some(&admin), json!({})).await.assert_error(404, "50000 No such user: nobody");
    // Forcing everyone: Root or CreateAdmin.
    h.user_with_password(&admin, "tess").await;
    assert_eq!(h.post("/admin/forcereset", Some(&root), json!({})).await.status, 204);
    let refused = h.post("/localaccount/login", None, json!({"user": "tess", "pwd": USER_PASSWORD})).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    // Changing the password satisfies it.
    let changed = h
        .post(
            "/localaccount/reset",
            None,
            json!({"user": "tess", "pwdold": USER_PASSWORD, "pwdnew": "another fine passphrase 12"}),
        )
        .await;
    assert_eq!(changed.status, 204, "{}", changed.text);
    h.login("tess", "another fine passphrase 12").await;
    h
}
on_both_stores!(password_resets_by_administrators);

async fn administrators_see_and_revoke_other_users_tokens(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "uma").await;
    let agent = h.post("/api/V2/token", Some(&login), json!({"name": "a"})).await.json();
    let listed = h.get("/admin/user/uma/tokens", Some(&admin)).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json()["tokens"].as_array().map(Vec::len), Some(2));
    let id = agent["id"].as_str().expect("a string field");
    assert_eq!(h.post(&format!("/admin/user/uma/tokens/revoke/{id}"), Some(&admin), json!({})).await.status, 204);
    assert_eq!(h.get("/api/V2/token", Some(agent["token"].as_str().expect("a string field"))).await.status, 401);
    h.post(&format!("/admin/user/uma/tokens/revoke/{id}"), Some(&admin), json!({}))
        .await
        .assert_error(404, &format!("50010 No such token: No token {id} for user uma exists"));
    let viewed = h.post("/admin/token", Some(&admin), json!({"token": login})).await;
    assert_eq!(viewed.status, 200, "{}", viewed.text);
    assert_eq!(viewed.json()["user"], "uma");
    h.post("/admin/token", Some(&admin), json!({"token": "bogus"})).await.assert_error(401, "10020 Invalid token");
    assert_eq!(h.post("/admin/user/uma/tokens/revokeall", Some(&admin), json!({})).await.status, 204);
    assert_eq!(h.get("/api/V2/token", Some(&login)).await.status, 401);

    // The server-wide revoke-all: every token, the caller's included, is one event.
    let other = h.login("uma", USER_PASSWORD).await;
    let head_before = h.server.ledger.log.head().await.expect("head");
    assert_eq!(h.post("/admin/revokeall", Some(&admin), json!({})).await.status, 204);
    assert_eq!(h.server.ledger.log.head().await.expect("head"), head_before + 1);
    for token in [&other, &admin] {
        assert_eq!(h.get("/api/V2/token", Some(token)).await.status, 401);
    }
    let fresh = h.login("uma", USER_PASSWORD).await;
    assert_eq!(h.get("/api/V2/token", Some(&fresh)).await.status, 200);
    h
}
on_both_stores!(administrators_see_and_revoke_other_users_tokens);

async fn configuration_is_read_and_changed_as_events(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let config = h.get("/admin/config", Some(&admin)).await;
    assert_eq!(config.status, 200, "{}", config.text);
    assert_eq!(
        config.json(),
        json!({"allowlogin": true, "showstack": false, "ignoreip": false, "tokensugcache": 5, "tokenlogin": 14,
               "tokenagent": 7, "tokendev": 90, "tokenserv": 100_000_000, "allowedloginredirect": null,
               "completeloginredirect": null, "postlinkredirect": null, "completelinkredirect": null,
               "providers": {}, "environments": {}})
    );
    let change = json!({"showstack": true, "completeloginredirect": "https://example.org/done"});
    assert_eq!(h.post("/admin/config", Some(&admin), change).await.status, 204);
    let config = h.get("/admin/config", Some(&admin)).await.json();
    assert_eq!(config["showstack"], true);
    assert_eq!(config["completeloginredirect"], "https://example.org/done");
    let removed = json!({"remove": ["completeloginredirect", "showstack"], "completeloginredirect": "https://x.org"});
    assert_eq!(h.post("/admin/config", Some(&admin), removed).await.status, 204);
    let config = h.get("/admin/config", Some(&admin)).await.json();
    assert_eq!(config["showstack"], false);
    assert_eq!(config["completeloginredirect"], Value::Null);
    for bad in ["htp://u.com", "http://u^u.com"] {
        h.post("/admin/config", Some(&admin), json!({"postlinkredirect": bad}))
            .await
            .assert_error(400, &format!("30001 Illegal input parameter: Illegal URL: {bad}"));
    }
    h.post("/admin/config", Some(&admin), json!({"bogus": 1}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Unexpected parameters in request: bogus");

    let lifetimes = json!({"tokensugcache": 1, "tokenlogin": 2, "tokenagent": 3, "tokendev": 4, "tokenserv": 5});
    assert_eq!(h.post("/admin/config/token", Some(&admin), lifetimes).await.status, 204);
    let login = h.user_token(&admin, "vic").await;
    let agent = h.post("/api/V2/token", Some(&login), json!({"name": "a"})).await.json();
    assert_eq!(agent["cachefor"], 60_000);
    assert_eq!(agent["expires"].as_i64().unwrap_or(0) - agent["created"].as_i64().unwrap_or(0), 3 * 86_400_000);
    h.post(
        "/admin/config/token",
        Some(&admin),
        json!({"tokensugcache": 1, "tokenlogin": 0, "tokenagent": 3, "tokendev": 4, "tokenserv": 5}),
    )
    .await
    .assert_error(400, "30001 Illegal input parameter: Login token expiration time must be at least 1");
    h.post("/admin/config/token", Some(&admin), json!({}))
        .await
        .assert_error(400, "30001 Illegal input parameter: Suggested token cache time must be at least 1");
    h
}
on_both_stores!(configuration_is_read_and_changed_as_events);

/// Every privileged endpoint, called by a user holding each single role (and
/// none, and root): allowed exactly when the permission table says so.
async fn every_privileged_endpoint_obeys_the_permission_table(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let mut callers: Vec<(String, BTreeSet<Role>, String)> = vec![
        ("root".into(), BTreeSet::from([Role::Root]), root.clone()),
        ("admin".into(), BTreeSet::from([Role::Admin, Role::CreateAdmin]), admin.clone()),
    ];
    for (name, role) in [
        ("plain", None),
        ("dev", Some(Role::DevToken)),
        ("serv", Some(Role::ServToken)),
        ("adm", Some(Role::Admin)),
        ("cre", Some(Role::CreateAdmin)),
    ] {
        h.user_with_password(&admin, name).await;
        let granter = if role == Some(Role::CreateAdmin) { &root } else { &admin };
        let roles: Vec<&str> = role.iter().map(|r| r.id()).collect();
        let granted = h.post(&format!("/admin/user/{name}/roles"), Some(granter), json!({ "roles": roles })).await;
        assert_eq!(granted.status, 204, "{}", granted.text);
        callers.push((name.into(), role.into_iter().collect(), h.login(name, USER_PASSWORD).await));
    }
    let missing = uuid::Uuid::new_v4();
    let key = ssh_key::PrivateKey::random(&mut rand::rngs::OsRng, ssh_key::Algorithm::Ed25519).expect("a key");
    let public_key = key.public_key().to_openssh().expect("OpenSSH");
    type Call = (Action, reqwest::Method, String, Value);
    let calls: Vec<Call> = vec![
        (Action::ViewAnonIds, reqwest::Method::GET, "/api/V2/admin/anonids?list=".into(), Value::Null),
        (Action::ReadAuditTrail, reqwest::Method::GET, "/api/V2/admin/audit?limit=1".into(), Value::Null),
        (Action::ReadAuditTrail, reqwest::Method::GET, "/api/V2/admin/asof?user=admin&at=1".into(), Value::Null),
        (Action::ReadAuditTrail, reqwest::Method::GET, "/api/V2/admin/digest".into(), Value::Null),
        (Action::ReadAuditTrail, reqwest::Method::GET, "/api/V2/admin/head".into(), Value::Null),
        (Action::ViewUser, reqwest::Method::GET, "/admin/user/admin".into(), Value::Null),
        (Action::ChangeRoles, reqwest::Method::POST, "/admin/user/nobody/roles".into(), json!({"roles": []})),
        (
            Action::ChangeCustomRolesOfUser,
            reqwest::Method::POST,
            "/admin/user/nobody/customroles".into(),
            json!({"customroles": []}),
        ),
        (Action::ListCustomRoles, reqwest::Method::GET, "/admin/customroles".into(), Value::Null),
        (Action::DeleteCustomRole, reqwest::Method::POST, "/admin/customroles/delete".into(), json!({"id": "absent"})),
        (
            Action::DisableOrEnableUser,
            reqwest::Method::POST,
            "/admin/user/nobody/disable".into(),
            json!({"disable": false}),
        ),
        (Action::ForcePasswordReset, reqwest::Method::POST, "/admin/user/nobody/forcereset".into(), json!({})),
        (Action::ResetPassword, reqwest::Method::POST, "/admin/user/nobody/reset".into(), json!({})),
        (Action::ViewUserTokens, reqwest::Method::GET, "/admin/user/nobody/tokens".into(), Value::Null),
        (
            Action::RevokeUserTokens,
            reqwest::Method::POST,
            format!("/admin/user/nobody/tokens/revoke/{missing}"),
            json!({}),
        ),
        (Action::ViewToken, reqwest::Method::POST, "/admin/token".into(), json!({"token": "bogus"})),
        (Action::ViewConfig, reqwest::Method::GET, "/admin/config".into(), Value::Null),
        (Action::ChangeConfig, reqwest::Method::POST, "/admin/config".into(), json!({})),
        (
            Action::ChangeConfig,
            reqwest::Method::POST,
            "/admin/config/token".into(),
            json!({"tokensugcache": 5, "tokenlogin": 14, "tokenagent": 7, "tokendev": 90, "tokenserv": 100_000_000}),
        ),
        (Action::RemovePolicyId, reqwest::Method::POST, "/admin/policyid".into(), json!({"policyid": "absent"})),
        (Action::CreateDevToken, reqwest::Method::POST, "/tokens".into(), json!({"name": "d"})),
        (Action::CreateServToken, reqwest::Method::POST, "/tokens".into(), json!({"name": "s", "type": "service"})),
        (Action::ManageProvisionTokens, reqwest::Method::GET, "/api/V2/admin/provisiontokens".into(), Value::Null),
        (
            Action::ManageProvisionTokens,
            reqwest::Method::POST,
            "/api/V2/admin/provisiontokens".into(),
            json!({"roles": ["node"]}),
        ),
        (
            Action::ManageProvisionTokens,
            reqwest::Method::DELETE,
            format!("/api/V2/admin/provisiontokens/{missing}"),
            Value::Null,
        ),
        (Action::InviteUser, reqwest::Method::GET, "/api/V2/admin/invites".into(), Value::Null),
        (Action::InviteUser, reqwest::Method::POST, "/api/V2/admin/invites".into(), json!({"user": "invited"})),
        (Action::InviteUser, reqwest::Method::DELETE, format!("/api/V2/admin/invites/{missing}"), Value::Null),
        (Action::ChangeLogins, reqwest::Method::POST, "/admin/user/nobody/logins".into(), json!({"logins": ["x"]})),
        (
            Action::IssueCertForOthers,
            reqwest::Method::POST,
            "/api/V2/certs/ssh".into(),
            json!({"public_key": public_key, "ttl": 60, "user": "nobody"}),
        ),
        (Action::ViewCertificates, reqwest::Method::GET, "/api/V2/admin/certs".into(), Value::Null),
        (Action::ViewCertificates, reqwest::Method::GET, "/api/V2/admin/hosts".into(), Value::Null),
        (Action::ClearLoginThrottle, reqwest::Method::POST, "/admin/user/nobody/unlock".into(), json!({})),
        (Action::ReleaseHost, reqwest::Method::DELETE, "/api/V2/admin/hosts/nobody.example.org".into(), Value::Null),
        (Action::RotateCertAuthority, reqwest::Method::POST, "/api/V2/admin/ca/rotate".into(), json!({"ca": "host"})),
        (Action::ForgetUser, reqwest::Method::POST, "/admin/user/nobody/forget".into(), json!({"reason": "asked"})),
    ];
    let every_action: BTreeSet<Action> = calls.iter().map(|c| c.0).collect();
    let elsewhere =
        [Action::CreateLocalAccount, Action::SetCustomRole, Action::ForceAllPasswordResets, Action::RevokeAllTokens];
    assert_eq!(
        every_action.len() + elsewhere.len(),
        Action::ALL.len(),
        "every action of the table is called over HTTP below"
    );
    let denied = |answer: &common::Answer| answer.status == 403 && answer.json()["error"]["appcode"] == json!(20000);
    for (who, roles, token) in &callers {
        for (action, method, path, body) in &calls {
            let answer = if *method == reqwest::Method::GET {
                h.get(path, Some(token)).await
            } else if *method == reqwest::Method::DELETE {
                h.delete(path, Some(token)).await
            } else {
                h.json_request(method.clone(), path, Some(token), body.clone()).await
            };
            assert_eq!(
                !denied(&answer),
                allows(*action, roles),
                "{action:?} by {who}: {} {}",
                answer.status,
                answer.text
            );
        }
        let create = json!({"user": format!("made_by_{who}"), "display": "M", "email": "m@example.org"});
        let answer = h.post("/admin/localaccount/create", Some(token), create).await;
        assert_eq!(!denied(&answer), allows(Action::CreateLocalAccount, roles), "create by {who}: {}", answer.text);
        let answer =
            h.post("/admin/customroles/set", Some(token), json!({"id": format!("role_{who}"), "desc": "d"})).await;
        assert_eq!(!denied(&answer), allows(Action::SetCustomRole, roles), "set role by {who}: {}", answer.text);
    }
    // The destructive ones last: denied callers first, then one allowed caller.
    for (action, path) in
        [(Action::ForceAllPasswordResets, "/admin/forcereset"), (Action::RevokeAllTokens, "/admin/revokeall")]
    {
        for (who, roles, token) in callers.iter().filter(|(_, roles, _)| !allows(action, roles)) {
            let answer = h.post(path, Some(token), json!({})).await;
            assert!(denied(&answer), "{action:?} by {who} ({roles:?}) must be denied: {}", answer.text);
        }
        let (who, _, token) = callers.iter().find(|(_, roles, _)| allows(action, roles)).expect("someone may");
        let answer = h.post(path, Some(token), json!({})).await;
        assert_eq!(answer.status, 204, "{action:?} by {who}: {}", answer.text);
    }
    h
}
on_both_stores!(every_privileged_endpoint_obeys_the_permission_table);

/// `forcereset_revokes`: a forced reset also ends the sessions — one user's
/// with theirs, everyone's with every local user's; off (upstream's way), a
/// forced reset leaves tokens alone.
async fn a_forced_reset_can_end_the_sessions(store: common::TestStore) {
    let h = Harness::start_with(store, std::sync::Arc::new(authledger::clock::SystemClock), |o| {
        o.ledger.force_reset_ends_sessions = true
    })
    .await;
    let (root, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    let bob = h.user_token(&admin, "bob").await;
    assert_eq!(h.post("/admin/user/alice/forcereset", Some(&admin), json!({})).await.status, 204);
    h.get("/api/V2/token", Some(&alice)).await.assert_error(401, "10020 Invalid token");
    assert_eq!(h.get("/api/V2/token", Some(&bob)).await.status, 200, "only alice's sessions end");
    assert_eq!(h.post("/admin/forcereset", Some(&root), json!({})).await.status, 204);
    h.get("/api/V2/token", Some(&bob)).await.assert_error(401, "10020 Invalid token");
    // The default: a forced reset leaves the sessions.
    let h = h.restart_with(|o| o.ledger.force_reset_ends_sessions = false).await;
    let renewed = "the admin's renewed passphrase 31";
    let reset = json!({"user": "admin", "pwdold": USER_PASSWORD, "pwdnew": renewed});
    assert_eq!(h.post("/localaccount/reset", None, reset).await.status, 204);
    let admin = h.login("admin", renewed).await;
    let carol = h.user_token(&admin, "carol").await;
    assert_eq!(h.post("/admin/user/carol/forcereset", Some(&admin), json!({})).await.status, 204);
    assert_eq!(h.get("/api/V2/token", Some(&carol)).await.status, 200);
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_reset_can_end_the_sessions_sqlite() {
    a_forced_reset_can_end_the_sessions(common::TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_reset_can_end_the_sessions_postgres() {
    if let Some(store) = common::TestStore::postgres().await {
        a_forced_reset_can_end_the_sessions(store).await;
    }
}

/// `POST /api/V2/admin/users/{user}/roles` (auth2's develop line): built-in
/// and custom roles added and removed in one step, by the rules of the two
/// role endpoints, one event per kind of change; unknown members, roles and
/// users refused with nothing written.
async fn roles_and_custom_roles_change_in_one_step(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    assert_eq!(
        h.post("/admin/customroles/set", Some(&admin), json!({"id": "curator", "desc": "Curates"})).await.status,
        204
    );
    let url = "/api/V2/admin/users/alice/roles";
    let head = h.server.ledger.log.head().await.expect("head");
    let added = h.post(url, Some(&admin), json!({"addRoles": ["DevToken"], "addCustomRoles": ["curator"]})).await;
    assert_eq!(added.status, 204, "{}", added.text);
    let record = h.get("/admin/user/alice", Some(&admin)).await.json();
    let ids = |key: &str| -> Vec<String> {
        record[key].as_array().into_iter().flatten().filter_map(|r| r["id"].as_str().map(str::to_owned)).collect()
    };
    assert_eq!(ids("roles"), ["DevToken"]);
    assert_eq!(record["customroles"], json!(["curator"]), "{record}");
    let written = h.server.ledger.log.read_after(head, 10).await.expect("read");
    let kinds: Vec<&str> = written.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(kinds, ["RolesGranted", "CustomRolesGranted"], "one event per change, one append");
    // Refusals write nothing.
    let head = h.server.ledger.log.head().await.expect("head");
    let refusals = [
        (json!({"addRoles": ["Bogus"]}), 400, "50040 No such role: Bogus"),
        (json!({"addCustomRoles": ["missing"]}), 400, "50040 No such role: missing"),
        (
            json!({"addRoles": ["DevToken"], "removeRoles": ["DevToken"]}),
            400,
            "30001 Illegal input parameter: One or more roles is to be both removed and added: Create developer tokens",
        ),
        (json!({"roles": ["DevToken"]}), 400, "30001 Illegal input parameter: Unexpected parameters in request: roles"),
        (json!({"addRoles": [null]}), 400, "30001 Illegal input parameter: Null item in addRoles"),
    ];
    for (body, status, message) in refusals {
        h.post(url, Some(&admin), body).await.assert_error(status, message);
    }
    h.post(url, Some(&alice), json!({"addRoles": ["DevToken"]})).await.assert_error(403, "20000 Unauthorized");
    h.post(url, Some(&root), json!({"addRoles": ["Admin"]}))
        .await
        .assert_error(403, "20000 Unauthorized: User ***ROOT*** is not authorized to grant role(s): Administrator");
    h.post("/api/V2/admin/users/***ROOT***/roles", Some(&admin), json!({"removeRoles": ["Admin"]}))
        .await
        .assert_error(403, "20000 Unauthorized: Cannot change ROOT roles");
    h.post("/api/V2/admin/users/nobody/roles", Some(&admin), json!({}))
        .await
        .assert_error(404, "50000 No such user: nobody");
    h.post(url, None, json!({})).await.assert_error(400, "10010 No authentication token: No user token provided");
    assert_eq!(h.server.ledger.log.head().await.expect("head"), head, "nothing was written");
    // And back.
    let removed =
        h.post(url, Some(&admin), json!({"removeRoles": ["DevToken"], "removeCustomRoles": ["curator"]})).await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(h.get("/admin/user/alice", Some(&admin)).await.json()["customroles"], json!([]));
    h
}
on_both_stores!(roles_and_custom_roles_change_in_one_step);
