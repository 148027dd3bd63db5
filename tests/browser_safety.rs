//! What a browser and a script each get: JSON unless HTML is explicitly
//! preferred (for answers and errors alike, the framework's own included),
//! cross-site cookie-authenticated writes refused, and the security headers
//! on every answer. Over real HTTP on both stores.

use crate::common;

use common::{Answer, BROWSER_ACCEPT, Harness, USER_PASSWORD, no_redirects};
use serde_json::json;

async fn get_accepting(h: &Harness, path: &str, accept: Option<&str>) -> Answer {
    let mut request = h.http.get(h.url(path));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    h.send(request).await
}

fn is_json(answer: &Answer) -> bool {
    answer.header("content-type").is_some_and(|t| t.starts_with("application/json"))
}

fn is_html(answer: &Answer) -> bool {
    answer.header("content-type").is_some_and(|t| t.starts_with("text/html"))
}

async fn json_unless_html_is_preferred(h: Harness) -> Harness {
    // The KBase Python client sends `Accept: */*`.
    for accept in [None, Some("*/*"), Some("application/*"), Some("application/json")] {
        let root = get_accepting(&h, "/", accept).await;
        assert_eq!(root.status, 200);
        assert!(is_json(&root), "{accept:?}: {}", root.text);
        assert_eq!(root.json()["servicename"], "Authentication Service");
    }
    let page = get_accepting(&h, "/", Some(BROWSER_ACCEPT)).await;
    assert!(is_html(&page) && page.text.contains("<h1>Authentication Service</h1>"), "{}", page.text);
    h
}
on_both_stores!(json_unless_html_is_preferred);

async fn every_error_is_the_envelope_in_the_format_asked_for(h: Harness) -> Harness {
    // An admin endpoint called with a JSON body and no Accept header.
    let roles = h
        .send(h.http.post(h.url("/admin/user/alice/roles")).header("Content-Type", "application/json").body("{}"))
        .await;
    assert_eq!(roles.status, 400);
    assert!(is_json(&roles), "{}", roles.text);
    assert_eq!(roles.json()["error"]["appcode"], 10010);
    // The framework's own errors: no route, wrong method, a path that is not UTF-8.
    let missing = get_accepting(&h, "/no/such/thing", None).await;
    assert_eq!((missing.status.as_u16(), is_json(&missing)), (404, true), "{}", missing.text);
    assert_eq!(missing.json()["error"]["message"], "HTTP 404 Not Found");
    let method = h.send(h.http.delete(h.url("/api/V2/token"))).await;
    assert_eq!((method.status.as_u16(), is_json(&method)), (405, true), "{}", method.text);
    let bad_path = get_accepting(&h, "/admin/user/%FF%FE", None).await;
    assert_eq!(bad_path.status, 400, "{}", bad_path.text);
    assert!(is_json(&bad_path), "{}", bad_path.text);
    let message = bad_path.json()["error"]["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty() && bad_path.json()["error"]["callid"].is_string(), "{message}");
    // Headers too large: 431, with the envelope too.
    let fat = h.send(h.http.get(h.url("/")).header("X-Padding", "p".repeat(40_000))).await;
    assert_eq!((fat.status.as_u16(), is_json(&fat)), (431, true), "{}", fat.text);
    assert_eq!(fat.json()["error"]["message"], "HTTP 431 Request Header Fields Too Large");
    let fat_page =
        h.send(h.http.get(h.url("/")).header("Accept", BROWSER_ACCEPT).header("X-Padding", "p".repeat(40_000))).await;
    assert!(is_html(&fat_page) && fat_page.text.contains("<h1>431 Request Header Fields Too Large</h1>"));
    // A browser gets the same errors as the HTML page.
    let page = get_accepting(&h, "/no/such/thing", Some(BROWSER_ACCEPT)).await;
    assert!(is_html(&page) && page.text.contains("404 Not Found"), "{}", page.text);
    let page = get_accepting(&h, "/admin/user/%FF%FE", Some(BROWSER_ACCEPT)).await;
    assert!(is_html(&page) && page.text.contains("<h1>400 Bad Request</h1>"), "{}", page.text);
    h
}
on_both_stores!(every_error_is_the_envelope_in_the_format_asked_for);

async fn post_form(h: &Harness, path: &str, cookie: &str, origin: Option<&str>, form: &str) -> Answer {
    let mut request = no_redirects()
        .post(h.url(path))
        .header("Cookie", cookie)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(form.to_owned());
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    h.send(request).await
}

async fn cross_site_cookie_posts_are_refused(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "carol").await;
    let granted = h.post("/admin/user/carol/roles", Some(&admin), json!({"roles": ["DevToken"]})).await;
    assert_eq!(granted.status, 204, "{}", granted.text);
    let cookie = h.session_cookie("carol").await;
    // Another site's page posts carol's own role removal with her cookie.
    let evil = post_form(&h, "/me/roles", &cookie, Some("https://evil.example"), "DevToken=").await;
    assert_eq!(evil.status, 403, "{}", evil.text);
    assert!(evil.text.contains("Cross-site request refused"), "{}", evil.text);
    let me = h.get("/api/V2/me", Some(cookie.trim_start_matches("kbase_session="))).await.json();
    assert_eq!(me["roles"].as_array().map(Vec::len), Some(1), "nothing changed: {me}");
    // The server's own page may.
    let own = post_form(&h, "/me/roles", &cookie, Some(&h.base), "DevToken=").await;
    assert!(own.status.is_success() || own.status.is_redirection(), "{} {}", own.status, own.text);
    let me = h.get("/api/V2/me", Some(cookie.trim_start_matches("kbase_session="))).await.json();
    assert_eq!(me["roles"], json!([]), "{me}");
    h
}
on_both_stores!(cross_site_cookie_posts_are_refused);

async fn another_site_cannot_sign_a_visitor_in_nor_make_an_auditor_read(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "mallory").await;
    // Login CSRF: the attacker's own credentials, posted from the attacker's page.
    let form = [("user", "mallory"), ("pwd", USER_PASSWORD)];
    let forged = h
        .send(no_redirects().post(h.url("/localaccount/login")).header("Origin", "https://evil.example").form(&form))
        .await;
    assert_eq!(forged.status, 403, "{}", forged.text);
    assert!(forged.header("set-cookie").is_none(), "no session handed out");
    let own = h.send(no_redirects().post(h.url("/localaccount/login")).header("Origin", &h.base).form(&form)).await;
    assert_eq!(own.status, 303, "{}", own.text);
    // A link on another site to an auditor's page (reading it is recorded).
    let cookie = h.session_cookie("admin").await;
    let page = |site: &'static str| {
        no_redirects()
            .get(h.url("/admin/audit"))
            .header("Accept", BROWSER_ACCEPT)
            .header("Cookie", cookie.clone())
            .header("Sec-Fetch-Site", site)
    };
    let before =
        h.get("/api/V2/admin/audit?type=AuditTrailRead", Some(&admin)).await.json()["events"].as_array().map(Vec::len);
    let lured = h.send(page("cross-site")).await;
    assert_eq!(lured.status, 403, "{}", lured.text);
    assert_eq!(h.send(page("same-origin")).await.status, 200);
    let after =
        h.get("/api/V2/admin/audit?type=AuditTrailRead", Some(&admin)).await.json()["events"].as_array().map(Vec::len);
    // The API read before, the page read and the API read after: the refused one left nothing.
    assert_eq!(after, before.map(|n| n + 2), "{before:?} {after:?}");
    h
}
on_both_stores!(another_site_cannot_sign_a_visitor_in_nor_make_an_auditor_read);

async fn every_answer_carries_the_security_headers(h: Harness) -> Harness {
    for answer in [get_accepting(&h, "/", None).await, get_accepting(&h, "/no/such/thing", Some(BROWSER_ACCEPT)).await]
    {
        let policy = answer.header("content-security-policy").expect("a CSP");
        assert!(policy.contains("frame-ancestors 'none'") && !policy.contains("unsafe-inline"), "{policy}");
        assert_eq!(answer.header("x-frame-options").as_deref(), Some("DENY"));
        // Not no-referrer: with it a browser sends `Origin: null` on same-site form posts.
        assert_eq!(answer.header("referrer-policy").as_deref(), Some("strict-origin"));
        assert_eq!(answer.header("x-content-type-options").as_deref(), Some("nosniff"));
    }
    // Behind https, the session cookie is Secure (and SameSite=Lax; not HttpOnly: see docs/compatibility.md).
    let h = h.restart_with(|o| o.public_url = Some("https://auth.example.org".into())).await;
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "dave").await;
    let cookie = h.form_login("dave").await;
    assert!(cookie.contains("; Secure") && cookie.contains("SameSite=Lax"), "{cookie}");
    h
}
on_both_stores!(every_answer_carries_the_security_headers);
