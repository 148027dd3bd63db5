//! Everything a client relies on survives a restart: the projections are
//! folded again from the log.

use crate::common;

use common::{Harness, USER_PASSWORD};
use serde_json::json;

async fn tokens_revocations_and_roles_survive_a_restart(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "xena").await;
    let kept = h.agent_token(&login, "kept").await;
    let revoked = h.post("/api/V2/token", Some(&login), json!({"name": "revoked"})).await.json();
    let revoked_id = revoked["id"].as_str().expect("a string field").to_owned();
    assert_eq!(h.delete(&format!("/tokens/revoke/{revoked_id}"), Some(&login)).await.status, 204);
    assert_eq!(h.post("/admin/user/xena/roles", Some(&admin), json!({"roles": ["DevToken"]})).await.status, 204);
    assert_eq!(
        h.post("/admin/customroles/set", Some(&admin), json!({"id": "tester", "desc": "Tests"})).await.status,
        204
    );
    assert_eq!(
        h.post("/admin/user/xena/customroles", Some(&admin), json!({"customroles": ["tester"]})).await.status,
        204
    );
    h.user_with_password(&admin, "yuri").await;
    assert_eq!(
        h.post("/admin/user/yuri/disable", Some(&admin), json!({"disable": true, "disabledreason": "r"})).await.status,
        204
    );
    let before = h.get("/api/V2/me", Some(&login)).await.json();

    let h = h.restart().await;

    let view = h.get("/api/V2/token", Some(&kept)).await;
    assert_eq!(view.status, 200, "{}", view.text);
    assert_eq!(view.json()["name"], "kept");
    h.get("/api/V2/token", Some(revoked["token"].as_str().expect("a string field")))
        .await
        .assert_error(401, "10020 Invalid token");
    assert_eq!(h.get("/api/V2/me", Some(&login)).await.json(), before);
    assert_eq!(before["roles"], json!([{"id": "DevToken", "desc": "Create developer tokens"}]));
    assert_eq!(before["customroles"], json!(["tester"]));
    h.post("/localaccount/login", None, json!({"user": "yuri", "pwd": USER_PASSWORD}))
        .await
        .assert_error(403, "20010 Account disabled: yuri");
    assert_eq!(h.get("/admin/config", Some(&admin)).await.json()["allowlogin"], true);
    // And the restarted server keeps writing after the restored position.
    let again = h.agent_token(&login, "after").await;
    assert_eq!(h.get("/api/V2/token", Some(&again)).await.status, 200);
    h
}
on_both_stores!(tokens_revocations_and_roles_survive_a_restart);
