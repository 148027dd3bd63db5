//! A client always reads its own writes: a token is introspectable the moment
//! its creation is answered — 1,000 times in a row, on both stores.

use crate::common;

use common::Harness;

async fn issued_tokens_are_introspectable_at_once(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "reader").await;
    let mut failures = 0;
    for i in 0..1000 {
        let token = h.agent_token(&login, &format!("t{i}")).await;
        let answer = h.get("/api/V2/token", Some(&token)).await;
        if answer.status != 200 || answer.json()["user"] != "reader" {
            failures += 1;
        }
    }
    assert_eq!(failures, 0, "introspections that missed their own write");
    h
}

on_both_stores!(issued_tokens_are_introspectable_at_once);
