//! What operators call: `/healthz`, `/readyz`, `/metrics` (Prometheus text,
//! no identifier in a label), and the checkpoints a server writes itself.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::common;

use common::Harness;

async fn health_and_readiness_answer_with_a_tiny_json_body(h: Harness) -> Harness {
    let alive = h.get("/healthz", None).await;
    assert_eq!(alive.status, 200);
    assert_eq!(alive.json(), serde_json::json!({"alive": true}));
    let ready = h.get("/readyz", None).await;
    assert_eq!(ready.status, 200, "{}", ready.text);
    let body = ready.json();
    assert_eq!(body["ready"], true);
    assert!(body["position"].as_i64() >= body["started_at_head"].as_i64(), "{body}");
    assert_eq!(body["head"], body["position"]);
    h
}
on_both_stores!(health_and_readiness_answer_with_a_tiny_json_body);

async fn metrics_count_requests_by_route_template_and_commands_by_aggregate(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "metered").await;
    let token = h.agent_token(&login, "metered agent").await;
    assert_eq!(h.get("/api/V2/token", Some(&token)).await.status, 200);
    assert_eq!(h.get("/api/V2/token", Some("no such token")).await.status, 401);
    assert_eq!(h.get("/admin/user/metered", Some(&admin)).await.status, 200);
    let scraped = h.get("/metrics", None).await;
    assert_eq!(scraped.status, 200);
    assert!(scraped.header("content-type").is_some_and(|t| t.starts_with("text/plain; version=0.0.4")));
    let text = scraped.text;
    for expected in [
        r#"authledger_http_requests_total{method="GET",route="/api/V2/token",status="200"}"#,
        r#"authledger_http_requests_total{method="GET",route="/api/V2/token",status="401"}"#,
        r#"authledger_http_requests_total{method="GET",route="/admin/user/{user}",status="200"}"#,
        r#"authledger_http_request_duration_seconds_bucket{method="GET",route="/api/V2/token",status="200",le="0.005"}"#,
        r#"authledger_commands_total{aggregate="Token",outcome="committed"}"#,
        r#"authledger_append_batch_commands_bucket{log="main",le="1"}"#,
        "authledger_append_commit_seconds_bucket",
        "authledger_log_head ",
        r#"authledger_projection_position{projection="tokens"}"#,
        "authledger_projection_lag_events ",
        "authledger_token_index_size ",
        "authledger_login_states_in_flight ",
        "authledger_duty_lease_held 1",
    ] {
        assert!(text.contains(expected), "no {expected} in:\n{text}");
    }
    for identifier in ["metered", &token, &login, "no such token"] {
        assert!(!text.contains(identifier), "{identifier} is in the metrics");
    }
    h
}
on_both_stores!(metrics_count_requests_by_route_template_and_commands_by_aggregate);

async fn the_server_writes_checkpoints_itself_and_a_restart_starts_from_one(h: Harness) -> Harness {
    let h = h.restart_with(|o| o.checkpoint_every = 20).await;
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "checkpointed").await;
    for i in 0..25 {
        h.agent_token(&login, &format!("c{i}")).await;
    }
    let rule = authledger::domain::canonical::Canonicalization::default().name();
    let since = Instant::now();
    loop {
        let stored = h.server.ledger.checkpoints.latest(rule).await.expect("readable");
        if stored.is_some_and(|c| c.position >= 20) {
            break;
        }
        assert!(since.elapsed() < Duration::from_secs(10), "no checkpoint was written while serving");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every 20 events a new one; each write prunes all but the newest three
    // (so five written leave exactly three: the prune ran, on both stores).
    let mut written = BTreeSet::new();
    for round in 0..5 {
        for i in 0..21 {
            h.agent_token(&login, &format!("d{round}-{i}")).await;
        }
        let target = h.server.ledger.projections.position();
        let since = Instant::now();
        loop {
            let latest = h.server.ledger.checkpoints.latest(rule).await.expect("readable");
            if let Some(latest) = latest.filter(|c| c.position >= target) {
                written.insert(latest.position);
                break;
            }
            assert!(since.elapsed() < Duration::from_secs(10), "no newer checkpoint was written while serving");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(written.len() >= 5, "{written:?}");
    // The prune follows its checkpoint's write: wait for it rather than race it.
    let since = Instant::now();
    while h.store.rows("checkpoints").await != 3 {
        assert!(since.elapsed() < Duration::from_secs(10), "old checkpoints are not pruned to the newest three");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let last = h.agent_token(&login, "after the checkpoint").await;
    let head = h.server.ledger.projections.position();
    // At shutdown the newest state is written; the restart starts from it and folds nothing.
    let h = h.restart().await;
    assert_eq!(h.server.ledger.checkpoint, Some(head), "the restart started from the shutdown checkpoint");
    assert_eq!(h.get("/api/V2/token", Some(&last)).await.status, 200);
    h
}
on_both_stores!(the_server_writes_checkpoints_itself_and_a_restart_starts_from_one);
