//! Bad input of every kind gets a clear 4xx in the error envelope, writes
//! nothing, and the server keeps serving — on both stores.

use crate::common;

use common::Harness;
use reqwest::Method;
use serde_json::json;

async fn bad_requests_are_refused_cleanly(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let login = h.user_token(&admin, "wendy").await;
    let head = h.server.ledger.log.head().await.expect("head");
    let reserved = h.store.payloads("PasswordCheckReserved").await.len();

    let cases: Vec<(Method, &str, &str, Vec<u8>, u16)> = vec![
        (Method::POST, "/api/V2/token", "application/json", b"{bad".to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", b"not json".to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", b"[1, 2]".to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", b"\"a string\"".to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", br#"{"name": ["x"]}"#.to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", br#"{"name": {"x": 1}}"#.to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", br#"{"name": "x", "customcontext": ["a"]}"#.to_vec(), 400),
        (
            Method::POST,
            "/api/V2/token",
            "application/json",
            br#"{"name": "x", "customcontext": {"a": 1}}"#.to_vec(),
            400,
        ),
        (Method::POST, "/api/V2/token", "application/json", b"{\"name\": \"\xff\xfe\"}".to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", br#"{"name": "\ud800"}"#.to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", "{\"name\": \"a\u{0}b\"}".as_bytes().to_vec(), 400),
        (Method::POST, "/api/V2/token", "application/json", br#"{"name": "a\u0000b"}"#.to_vec(), 400),
        (Method::POST, "/api/V2/token", "text/plain", br#"{"name": "x"}"#.to_vec(), 415),
        (Method::PUT, "/api/V2/me", "application/json", br#"{"display": 5}"#.to_vec(), 204),
        (Method::PUT, "/api/V2/me", "application/json", br#"{"email": "a@b"}"#.to_vec(), 400),
        (
            Method::PUT,
            "/api/V2/me",
            "application/json",
            "{\"display\": \"\u{202e}evil\u{0007}\"}".as_bytes().to_vec(),
            400,
        ),
        (
            Method::PUT,
            "/api/V2/me",
            "application/json",
            format!("{{\"display\": \"{}\"}}", "é".repeat(101)).into_bytes(),
            400,
        ),
        (
            Method::POST,
            "/admin/localaccount/create",
            "application/json",
            br#"{"user": "\u00e5lice", "display": "A", "email": "a@example.org"}"#.to_vec(),
            400,
        ),
        (
            Method::POST,
            "/admin/localaccount/create",
            "application/json",
            br#"{"user": "ok_name", "display": "A", "email": "a@example.org", "role": "Admin"}"#.to_vec(),
            400,
        ),
        (Method::POST, "/admin/user/%00/roles", "application/json", br#"{"roles": []}"#.to_vec(), 400),
        (Method::POST, "/admin/user/wendy/roles", "application/json", br#"{"roles": [null]}"#.to_vec(), 400),
        (Method::POST, "/admin/user/wendy/roles", "application/json", br#"{"roles": "Admin"}"#.to_vec(), 400),
        (Method::POST, "/admin/user/wendy/disable", "application/json", br#"{"disable": "maybe"}"#.to_vec(), 400),
        (Method::POST, "/admin/config", "application/json", br#"{"allowlogin": 1}"#.to_vec(), 400),
        (Method::POST, "/admin/config/token", "application/json", br#"{"tokensugcache": "x"}"#.to_vec(), 400),
        (
            Method::POST,
            "/admin/customroles/set",
            "application/json",
            "{\"id\": \"r\u{1F600}\", \"desc\": \"d\"}".as_bytes().to_vec(),
            400,
        ),
        (Method::POST, "/tokens/revoke/not-a-uuid", "application/json", b"{}".to_vec(), 404),
        (Method::POST, "/localaccount/login", "application/json", br#"{"user": "wendy", "pwd": 12}"#.to_vec(), 401),
        (Method::POST, "/localaccount/login", "application/x-www-form-urlencoded", b"user=%ZZ&pwd=x".to_vec(), 400),
    ];
    for (method, path, content_type, body, status) in cases {
        // The token belongs to an administrator, so each case fails on its input, not on permission.
        let token = if path.starts_with("/admin") { &admin } else { &login };
        let request = h
            .http
            .request(method.clone(), h.url(path))
            .header("Accept", "application/json")
            .header("Content-Type", content_type)
            .header("Authorization", token.as_str())
            .body(body);
        let answer = h.send(request).await;
        assert_eq!(answer.status.as_u16(), status, "{method} {path} {content_type}: {}", answer.text);
        if status >= 400 {
            let error = answer.json();
            assert_eq!(error["error"]["httpcode"], json!(status), "{}", answer.text);
            assert!(error["error"]["message"].is_string());
            assert!(error["error"]["time"].is_i64());
        }
    }
    // `{"display": 5}` is read as the text "5" (as upstream's JSON binding does): one write above; and
    // `{"pwd": 12}` as the wrong password "12" for wendy, which is counted (`PasswordCheckReserved`): the other.
    assert_eq!(h.server.ledger.log.head().await.expect("head"), head + 2, "only the accepted requests wrote");
    assert_eq!(h.store.payloads("PasswordCheckReserved").await.len(), reserved + 1);
    assert_eq!(h.get("/api/V2/me", Some(&login)).await.json()["display"], "5");
    assert_eq!(h.get("/", None).await.status, 200, "still serving");
    h
}
on_both_stores!(bad_requests_are_refused_cleanly);

async fn routing_errors_and_media_types(h: Harness) -> Harness {
    let answer = h.get("/no/such/path", None).await;
    assert_eq!(answer.status, 404);
    let error = answer.json();
    assert_eq!(error["error"]["message"], "HTTP 404 Not Found");
    assert!(error["error"].get("callid").is_none(), "no call id for routing failures");
    assert!(error["error"].get("appcode").is_none());

    let answer = h.send(h.http.patch(h.url("/api/V2/token")).header("Accept", "application/json")).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.json()["error"]["message"], "HTTP 405 Method Not Allowed");

    // An application error has a call id of 16 digits.
    let answer = h.get("/api/V2/token", Some("bogus")).await;
    let call_id = answer.json()["error"]["callid"].as_str().expect("a string field").to_owned();
    assert!(call_id.len() == 16 && call_id.chars().all(|c| c.is_ascii_digit()), "{call_id}");

    // JSON-producing endpoints answer errors in JSON without an Accept header ...
    let answer = h.send(h.http.get(h.url("/api/V2/token")).header("Authorization", "bogus")).await;
    assert_eq!(answer.header("content-type").as_deref(), Some("application/json"));
    // ... and so do endpoints without a body (upstream answers those HTML).
    let answer = h
        .send(
            h.http
                .put(h.url("/api/V2/me"))
                .header("Authorization", "bogus")
                .header("Content-Type", "application/json")
                .body("{}"),
        )
        .await;
    assert_eq!(answer.status, 401);
    assert_eq!(answer.header("content-type").as_deref(), Some("application/json"));
    assert_eq!(answer.json()["error"]["message"], "10020 Invalid token");
    // An explicit preference for HTML wins even on a JSON endpoint.
    let answer = h.send(h.http.get(h.url("/api/V2/token")).header("Accept", "text/html")).await;
    assert!(answer.text.contains("<dd>10010 No authentication token</dd>"), "{}", answer.text);
    h
}
on_both_stores!(routing_errors_and_media_types);

/// A body far over the limit: the server answers 413 (or closes the
/// connection while the client is still sending) and keeps serving.
async fn huge_bodies_do_not_hurt_the_server(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    let head = h.server.ledger.log.head().await.expect("head");
    // Just over the limit, and far over it.
    for size in [(1 << 20) + 1, 2 << 20, 16 << 20] {
        // A client of its own: the shared one must not pool a connection the server closed.
        let request = reqwest::Client::new()
            .post(h.url("/api/V2/token"))
            .header("Content-Type", "application/json")
            .header("Authorization", admin.as_str())
            .body(vec![b' '; size]);
        // The server may answer 413 and close before the client has sent it all.
        if let Ok(response) = request.send().await {
            assert_eq!(response.status(), 413, "{size} bytes");
        }
    }
    assert_eq!(h.server.ledger.log.head().await.expect("head"), head);
    assert_eq!(h.get("/", None).await.status, 200, "still serving");
    h
}
on_both_stores!(huge_bodies_do_not_hurt_the_server);

/// A request's own words kept by the log are bounded: a 20 KiB `User-Agent`
/// (within the 32 KiB of headers a request may carry) is accepted, and the
/// events and the token keep 256 bytes of it, marked as cut; a forwarded
/// address is kept only as an address.
async fn what_a_request_says_of_itself_is_stored_bounded(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "ua").await;
    let long = format!("Mozilla/5.0 {}", "x".repeat(20 * 1024));
    let request = h
        .http
        .post(h.url("/localaccount/login"))
        .header("Content-Type", "application/json")
        .header("User-Agent", &long)
        .header("X-Forwarded-For", format!("{}, 10.0.0.1", "1".repeat(500)))
        .body(json!({"user": "ua", "pwd": common::USER_PASSWORD}).to_string());
    let answer = h.send(request).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let trail = h.get("/api/V2/admin/audit?user=ua", Some(&admin)).await.json();
    let login = trail["events"]
        .as_array()
        .and_then(|events| events.iter().find(|e| e["event_type"] == json!("LoginRecorded")))
        .cloned()
        .expect("the login's record");
    let agent = login["user_agent"].as_str().expect("a user agent");
    assert!(agent.len() <= 256 && agent.ends_with("…[truncated]") && agent.starts_with("Mozilla/5.0 x"), "{agent}");
    // A forwarded address is kept only as the address it parses to: the
    // proxy's own entry (the client's garbage before it is never read).
    assert_eq!(login["client_addr"], json!("10.0.0.1"));
    let dump = h.store.dump().await;
    assert!(!dump.contains(&"x".repeat(300)) && !dump.contains(&"1".repeat(100)), "nothing longer is stored");
    h
}
on_both_stores!(what_a_request_says_of_itself_is_stored_bounded);
