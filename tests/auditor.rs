//! The auditor API over HTTP: the audit trail (filtered, paged by position),
//! state as of a moment, and every read recorded in the log.

use crate::common;

use common::{Harness, TEST_EPOCH};
use serde_json::{Value, json};

fn types(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["event_type"].as_str().expect("a string field").to_owned())
        .collect()
}

async fn the_audit_trail_answers_who_did_what_and_records_its_readers(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    h.advance(1_000);
    let granted = h.post("/admin/user/alice/roles", Some(&admin), json!({"roles": ["DevToken"]})).await;
    assert_eq!(granted.status, 204, "{}", granted.text);
    h.advance(1_000);
    let granted = h.post("/admin/user/alice/roles", Some(&admin), json!({"roles": ["DevToken", "ServToken"]})).await;
    assert_eq!(granted.status, 204, "{}", granted.text);

    // Who made alice a DevToken holder, and from where?
    let trail = h.get("/api/V2/admin/audit?user=alice", Some(&admin)).await;
    assert_eq!(trail.status, 200, "{}", trail.text);
    let trail = trail.json();
    assert_eq!(trail["next"], json!(null));
    let grant = trail["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["description"] == "admin granted DevToken to alice"))
        .cloned()
        .expect("the grant is in alice's history");
    assert_eq!((grant["actor"].clone(), grant["event_type"].clone()), (json!("admin"), json!("RolesGranted")));
    assert_eq!(grant["recorded_at"], json!(TEST_EPOCH + 1_000));
    assert!(grant["client_addr"].as_str().is_some_and(|a| a.starts_with("127.")), "{grant}");
    assert!(types(&trail).iter().all(|t| t != "AuditTrailRead"), "only alice's own events and tokens'");

    // Paging by position: two pages of two are the first four of the whole.
    let all = h.get("/api/V2/admin/audit?limit=1000", Some(&admin)).await.json();
    let first = h.get("/api/V2/admin/audit?limit=2", Some(&admin)).await.json();
    let next = first["next"].as_i64().expect("more to come");
    let second = h.get(&format!("/api/V2/admin/audit?limit=2&after={next}"), Some(&admin)).await.json();
    let positions = |page: &Value| -> Vec<i64> {
        page["events"].as_array().into_iter().flatten().filter_map(|e| e["position"].as_i64()).collect()
    };
    let paged: Vec<i64> = positions(&first).into_iter().chain(positions(&second)).collect();
    assert_eq!(paged, positions(&all)[..4]);

    // State between the two role changes.
    let at = TEST_EPOCH + 1_500;
    let then = h.get(&format!("/api/V2/admin/asof?user=alice&at={at}"), Some(&admin)).await;
    assert_eq!(then.status, 200, "{}", then.text);
    assert_eq!(then.json()["roles"], json!(["DevToken"]));
    assert_eq!(then.json()["tokens"].as_array().map(Vec::len), Some(1));
    let now = h.get("/api/V2/admin/asof?user=alice&at=2030-01-01T00:00:00Z", Some(&admin)).await.json();
    assert_eq!(now["roles"], json!(["DevToken", "ServToken"]));

    // Unmasking an anonymous id is recorded too.
    let anon = h.get("/api/V2/me", Some(&alice)).await.json()["anonid"].clone();
    let unmasked =
        h.get(&format!("/api/V2/admin/anonids?list={}", anon.as_str().expect("a string field")), Some(&admin)).await;
    assert_eq!(unmasked.json(), json!({ anon.as_str().expect("a string field"): "alice" }));

    // Every read above is in the log, with its reader.
    let reads = h.get("/api/V2/admin/audit?user=admin&limit=1000", Some(&admin)).await.json();
    let all_reads = h.get("/api/V2/admin/audit?limit=1000", Some(&admin)).await.json();
    let descriptions: Vec<String> = all_reads["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["aggregate_type"] == "Audit")
        .map(|e| e["description"].as_str().expect("a string field").to_owned())
        .collect();
    assert!(descriptions.contains(&"admin read the history of alice".to_owned()), "{descriptions:?}");
    assert!(
        descriptions
            .contains(&format!("admin read the state of alice as of {}", authledger::domain::describe::timestamp(at)))
    );
    assert!(
        descriptions.contains(&format!("admin translated anonymous ids {}", anon.as_str().expect("a string field")))
    );
    assert!(types(&reads).iter().all(|t| t != "AuditTrailRead"), "a user's history is its account's, not its reads");
    h
}
on_both_stores!(the_audit_trail_answers_who_did_what_and_records_its_readers, test_mode);

async fn bad_audit_requests_are_refused_before_anything_is_recorded(h: Harness) -> Harness {
    let (_root, admin) = h.administrators().await;
    let alice = h.user_token(&admin, "alice").await;
    let before = h.store.main_log_len().await;
    let audit = "/api/V2/admin/audit";
    h.get(audit, Some(&alice)).await.assert_error(403, "20000 Unauthorized");
    h.get(audit, None).await.assert_error(400, "10010 No authentication token: No user token provided");
    h.get(audit, Some("NOPE")).await.assert_error(401, "10020 Invalid token");
    h.get(&format!("{audit}?user=Alice"), Some(&admin))
        .await
        .assert_error(400, "30010 Illegal user name: Illegal character in user name Alice: A");
    h.get(&format!("{audit}?token=abc"), Some(&admin))
        .await
        .assert_error(400, "30001 Illegal input parameter: Illegal token id: abc");
    h.get(&format!("{audit}?user=alice&token={}", uuid::Uuid::new_v4()), Some(&admin))
        .await
        .assert_error(400, "30001 Illegal input parameter: Give user or token, not both");
    h.get(&format!("{audit}?limit=0"), Some(&admin))
        .await
        .assert_error(400, "30001 Illegal input parameter: limit must be an integer from 1 to 1000: 0");
    h.get(&format!("{audit}?since=yesterday"), Some(&admin)).await.assert_error(
        400,
        "30001 Illegal input parameter: since must be epoch milliseconds or an RFC 3339 time: yesterday",
    );
    let asof = "/api/V2/admin/asof";
    h.get(&format!("{asof}?user=alice"), Some(&admin)).await.assert_error(400, "30000 Missing input parameter: at");
    h.get(&format!("{asof}?at=1"), Some(&admin)).await.assert_error(400, "30000 Missing input parameter: user");
    h.get(&format!("{asof}?user=alice&at=1"), Some(&alice)).await.assert_error(403, "20000 Unauthorized");
    assert_eq!(h.store.main_log_len().await, before, "nothing recorded for refused reads");
    h.get(&format!("{asof}?user=nobody&at=1"), Some(&admin)).await.assert_error(404, "50000 No such user: nobody");
    h
}
on_both_stores!(bad_audit_requests_are_refused_before_anything_is_recorded);
