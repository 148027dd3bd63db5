//! Secrets never enter the store in the clear: tokens appear only as their
//! SHA-256, passwords only as argon2id hashes (in the secrets table, referenced
//! by id; a replaced hash is deleted) — on both stores.

use crate::common;

use common::{Harness, ROOT_PASSWORD, USER_PASSWORD};
use serde_json::json;

async fn the_store_holds_no_raw_token_or_password(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    let created = h
        .post(
            "/admin/localaccount/create",
            Some(&admin),
            json!({"user": "zoe", "display": "Z", "email": "z@example.org"}),
        )
        .await;
    let temporary = created.json()["pwd"].as_str().expect("a string field").to_owned();
    let before = h.store.dump().await;
    let reset =
        h.post("/localaccount/reset", None, json!({"user": "zoe", "pwdold": temporary, "pwdnew": USER_PASSWORD})).await;
    assert_eq!(reset.status, 204);
    let login = h.login("zoe", USER_PASSWORD).await;
    let agent = h.agent_token(&login, "a").await;
    let dump = h.store.dump().await + &h.store.raw_files();
    assert!(dump.contains("TokenIssued") && dump.contains("$argon2id$"), "the dump covers events and secrets");
    for secret in [&root, &admin, &login, &agent, &temporary, &ROOT_PASSWORD.to_owned(), &USER_PASSWORD.to_owned()] {
        assert!(!dump.contains(secret.as_str()), "a raw secret of {} chars is stored", secret.len());
    }
    // The temporary password's hash was forgotten when it was replaced.
    let hashes = |text: &str| text.matches("$argon2id$").count();
    assert_eq!(hashes(&h.store.dump().await), hashes(&before), "one hash replaced by another");
    h
}
on_both_stores!(the_store_holds_no_raw_token_or_password);
