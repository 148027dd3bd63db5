//! Signing in through identity providers (upstream `Login`): so far the name
//! suggestion a new account's form starts from.

use crate::common;

use common::Harness;
use serde_json::json;

async fn a_suggested_name_is_free_among_every_account(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "jdoe").await;
    h.user_with_password(&admin, "jdoe2").await;
    let disabled = h.post("/admin/user/jdoe2/disable", Some(&admin), json!({"disable": true, "disabledreason": "x"}));
    assert_eq!(disabled.await.status, 204);
    let suggest = |name: &str| {
        let path = format!("/login/suggestname/{name}");
        let h = &h;
        async move { h.get(&path, None).await }
    };
    assert_eq!(suggest("J.%20Doe").await.json(), json!({"availablename": "jdoe3"}), "disabled accounts count");
    assert_eq!(suggest("Mary-Ann").await.json(), json!({"availablename": "maryann"}));
    assert_eq!(suggest("42").await.json(), json!({"availablename": "user1"}));
    let long = "x".repeat(300);
    assert_eq!(suggest(&long).await.json()["availablename"], json!("x".repeat(100)));
    h
}
on_both_stores!(a_suggested_name_is_free_among_every_account);
