//! The display-name rule is a parameter of the user-directory fold: changing
//! it and restarting (a rebuild) is the whole recanonicalization — search
//! answers change exactly as the two auth2 rules say, with no data migrated.

use crate::common;

use authledger::domain::canonical::Canonicalization;
use common::Harness;
use serde_json::json;

async fn search(h: &Harness, token: &str, prefix: &str) -> serde_json::Value {
    let answer = h.get(&format!("/api/V2/users/search/{prefix}?fields=displayname"), Some(token)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

async fn changing_the_rule_and_restarting_recanonicalizes(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    for (user, display) in [("picard", "Jean-Luc Picard"), ("oneil", "Mary O'Neil"), ("smith", "J.R. Smith")] {
        let created = h
            .post(
                "/admin/localaccount/create",
                Some(&admin),
                json!({"user": user, "display": display, "email": format!("{user}@example.org")}),
            )
            .await;
        assert_eq!(created.status, 200, "{}", created.text);
    }
    // 0.6.0 (the default): hyphens split, punctuation is dropped.
    assert_eq!(search(&h, &admin, "luc").await, json!({"picard": "Jean-Luc Picard"}));
    assert_eq!(search(&h, &admin, "jr").await, json!({"smith": "J.R. Smith"}));
    assert_eq!(search(&h, &admin, "oneil").await, json!({"oneil": "Mary O'Neil"}));

    let h = h.restart_with(|o| o.ledger.canonicalization = Canonicalization::V1).await;
    let admin = h.login("admin", common::USER_PASSWORD).await;
    // pre-0.6.0: whitespace splits, interior punctuation stays.
    assert_eq!(search(&h, &admin, "luc").await, json!({}));
    assert_eq!(search(&h, &admin, "jean-l").await, json!({"picard": "Jean-Luc Picard"}));
    assert_eq!(search(&h, &admin, "jr").await, json!({}));
    assert_eq!(search(&h, &admin, "j.r").await, json!({"smith": "J.R. Smith"}));
    assert_eq!(search(&h, &admin, "oneil").await, json!({}));

    let h = h.restart_with(|o| o.ledger.canonicalization = Canonicalization::V2).await;
    let admin = h.login("admin", common::USER_PASSWORD).await;
    assert_eq!(search(&h, &admin, "luc").await, json!({"picard": "Jean-Luc Picard"}));
    h
}
on_both_stores!(changing_the_rule_and_restarting_recanonicalizes);
