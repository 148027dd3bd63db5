//! The web pages over real HTTP on both stores: each page renders for the
//! right roles and refuses others, every user-supplied value is escaped,
//! a browser's form posts come back to their page (303) while API clients
//! keep their 204, and the auditor's pages show the log.

use crate::common;

use common::{Answer, Harness};
use serde_json::json;

const HOSTILE_DISPLAY: &str = "<script>alert(\"d\")</script> & 'Ünï'";
const HOSTILE_TOKEN_NAME: &str = "<b>tok\"en</b>";
const HOSTILE_ROLE_DESC: &str = "<img src=x onerror=alert(1)>";
const HOSTILE_REASON: &str = "</textarea><script>r</script>";

fn is_html(answer: &Answer) -> bool {
    answer.header("content-type").is_some_and(|t| t.starts_with("text/html"))
}

#[track_caller]
fn assert_page(answer: &Answer, marker: &str) {
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(is_html(answer), "{:?}", answer.header("content-type"));
    assert!(answer.text.contains(marker), "{marker} not in {}", answer.text);
    assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
}

/// No raw markup from the hostile values; their escaped forms are there.
#[track_caller]
fn assert_escaped(answer: &Answer) {
    for raw in ["<script>", "<img src=x", "<b>tok", "</textarea><script>"] {
        assert!(!answer.text.contains(raw), "{raw} unescaped in {}", answer.text);
    }
    assert!(!answer.text.contains("alert(\"d\")"), "quotes unescaped");
}

async fn every_page_escapes_what_users_typed(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "mallory").await;
    let mallory = h.login("mallory", common::USER_PASSWORD).await;
    assert_eq!(h.put("/api/V2/me", Some(&mallory), json!({"display": HOSTILE_DISPLAY})).await.status, 204);
    let granted = h.post("/admin/user/mallory/roles", Some(&admin), json!({"roles": ["DevToken"]})).await;
    assert_eq!(granted.status, 204, "{}", granted.text);
    let role = h.post("/admin/customroles/set", Some(&admin), json!({"id": "evil", "desc": HOSTILE_ROLE_DESC})).await;
    assert_eq!(role.status, 204, "{}", role.text);
    let held = h.post("/admin/user/mallory/customroles", Some(&admin), json!({"customroles": ["evil"]})).await;
    assert_eq!(held.status, 204, "{}", held.text);
    let made = h
        .post("/tokens", Some(&mallory), json!({"name": HOSTILE_TOKEN_NAME, "customcontext": {"k": "<i>v</i>"}}))
        .await;
    assert_eq!(made.status, 200, "{}", made.text);
    let cookie = h.session_cookie("mallory").await;

    let me = h.page("/me", Some(&cookie)).await;
    assert_page(&me, "&#60;script&#62;alert(&#34;d&#34;)&#60;/script&#62; &#38; &#39;Ünï&#39;");
    assert_escaped(&me);
    let tokens = h.page("/tokens", Some(&cookie)).await;
    assert_page(&tokens, "&#60;b&#62;tok&#34;en&#60;/b&#62;");
    assert!(tokens.text.contains("k=&#60;i&#62;v&#60;/i&#62;"), "{}", tokens.text);
    assert_escaped(&tokens);
    let roles = h.page("/customroles", Some(&cookie)).await;
    assert_page(&roles, "&#60;img src=x onerror=alert(1)&#62;");
    assert!(!roles.text.contains("/admin/customroles/delete"), "no delete buttons for a non-administrator");

    let admin_cookie = h.session_cookie("admin").await;
    let disabled = h
        .form("/admin/user/mallory/disable", &admin_cookie, &[("disable", "on"), ("disabledreason", HOSTILE_REASON)])
        .await;
    assert_eq!(disabled.status, 303, "{}", disabled.text);
    for path in ["/admin/user/mallory", "/admin/user/mallory/tokens", "/admin/customroles", "/admin/audit"] {
        let page = h.page(path, Some(&admin_cookie)).await;
        assert_page(&page, "Signed in as <strong id=\"signed-in-user\">admin</strong>");
        assert_escaped(&page);
    }
    let user = h.page("/admin/user/mallory", Some(&admin_cookie)).await;
    assert!(user.text.contains("&#60;/textarea&#62;&#60;script&#62;r&#60;/script&#62;"), "{}", user.text);
    let found = h.form("/admin/search", &admin_cookie, &[("prefix", "mal"), ("username", "on")]).await;
    assert_page(&found, "<a href=\"/admin/user/mallory\">mallory</a>");
    assert_escaped(&found);
    let history = h.page("/admin/user/mallory/history?at=2100-01-01T00:00:00Z", Some(&admin_cookie)).await;
    assert_page(&history, "id=\"as-of\"");
    assert_escaped(&history);
    // The pages that show a value once, and the error page echoing what was typed.
    let admin_token = admin_cookie.trim_start_matches("kbase_session=");
    let granted =
        h.post("/admin/user/admin/roles", Some(admin_token), json!({"roles": ["CreateAdmin", "Admin", "DevToken"]}));
    assert_eq!(granted.await.status, 204);
    let created =
        h.form("/tokens", &admin_cookie, &[("name", HOSTILE_TOKEN_NAME), ("customcontext", "k, <i>v</i>")]).await;
    assert_page(&created, "id=\"new-token\"");
    assert_escaped(&created);
    let shown = h.form("/admin/token", &admin_cookie, &[("token", admin_token)]).await;
    assert_page(&shown, "<dt>User</dt>");
    let error = h.page("/admin/user/%3Cscript%3Ex", Some(&admin_cookie)).await;
    assert_eq!(error.status, 400, "{}", error.text);
    assert!(error.text.contains("&#60;script&#62;x"), "{}", error.text);
    assert_escaped(&error);
    h
}
on_both_stores!(every_page_escapes_what_users_typed);

async fn a_browsers_form_post_returns_to_its_page(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "alice").await;
    let cookie = h.session_cookie("alice").await;
    let saved = h.form("/me", &cookie, &[("display", "Alice A."), ("email", "alice@example.net")]).await;
    assert_eq!(saved.status, 303, "{}", saved.text);
    assert_eq!(saved.header("location").as_deref(), Some("/me"));
    let me = h.page("/me", Some(&cookie)).await;
    assert_page(&me, "<dd id=\"display\">Alice A.</dd>");
    assert!(me.text.contains("alice@example.net"));
    // An API client posting the same form keeps upstream's 204.
    let token = cookie.trim_start_matches("kbase_session=");
    let api = h.raw(reqwest::Method::POST, "/me", Some(token), "application/x-www-form-urlencoded", "display=Al").await;
    assert_eq!(api.status, 204, "{}", api.text);
    // A refused form post shows the error page, and changes nothing.
    let bad = h.form("/me", &cookie, &[("email", "not an email")]).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    assert!(is_html(&bad) && bad.text.contains("id=\"error-message\""), "{}", bad.text);
    assert_eq!(h.get("/api/V2/me", Some(token)).await.json()["email"], "alice@example.net");
    // Revoking all one's tokens ends the session: back to the login page.
    let revoked = h.form("/tokens/revokeall", &cookie, &[]).await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    assert_eq!(revoked.header("location").as_deref(), Some("/localaccount/login"));
    assert!(revoked.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")));
    h
}
on_both_stores!(a_browsers_form_post_returns_to_its_page);

async fn pages_refuse_the_wrong_people(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "bob").await;
    let bob = h.session_cookie("bob").await;
    let no_cookie = h.page("/me", None).await;
    assert_eq!(no_cookie.status, 400, "{}", no_cookie.text);
    assert!(is_html(&no_cookie) && no_cookie.text.contains("No authentication token"), "{}", no_cookie.text);
    for path in ["/admin", "/admin/user/bob", "/admin/config", "/admin/audit", "/admin/user/bob/history"] {
        let page = h.page(path, Some(&bob)).await;
        assert_eq!(page.status, 403, "{path}: {}", page.text);
        assert!(is_html(&page), "{path}");
    }
    // The same pages, asked for as JSON, answer JSON.
    let token = bob.trim_start_matches("kbase_session=");
    let me = h.get("/me", Some(token)).await;
    assert_eq!(me.status, 200, "{}", me.text);
    assert_eq!(me.json()["userupdateurl"], "me");
    assert_eq!(me.json()["hasroles"], false);
    let refused = h.get("/admin/config", Some(token)).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    assert_eq!(refused.json()["error"]["appcode"], 20000);
    // Pages anyone may see.
    assert_page(&h.page("/localaccount/login", None).await, "name=\"pwd\"");
    assert_page(&h.page("/localaccount/reset?user=bob", None).await, "value=\"bob\"");
    let css = h.page("/static/style.css", None).await;
    assert_eq!(css.status, 200);
    assert!(css.header("content-type").is_some_and(|t| t.starts_with("text/css")));
    h
}
on_both_stores!(pages_refuse_the_wrong_people);

async fn the_user_page_forgets_a_person_once_their_name_is_typed(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "fiona").await;
    let cookie = h.session_cookie("admin").await;
    let page = h.page("/admin/user/fiona", Some(&cookie)).await;
    assert_page(&page, "action=\"/admin/user/fiona/forget\"");
    assert!(page.text.contains("name=\"confirm\""), "{}", page.text);
    // Root cannot be forgotten: no form on its page.
    assert!(!h.page("/admin/user/***ROOT***", Some(&cookie)).await.text.contains("forget-form"));
    // A name typed wrong, or none, is refused and forgets nothing.
    for confirm in [None, Some("fion"), Some("admin")] {
        let mut fields = vec![("reason", "asked in writing")];
        fields.extend(confirm.map(|c| ("confirm", c)));
        let refused = h.form("/admin/user/fiona/forget", &cookie, &fields).await;
        assert_eq!(refused.status, 400, "{confirm:?}: {}", refused.text);
        assert!(is_html(&refused) && refused.text.contains("to confirm the forget"), "{}", refused.text);
    }
    let no_reason = h.form("/admin/user/fiona/forget", &cookie, &[("confirm", "fiona")]).await;
    assert_eq!(no_reason.status, 400, "{}", no_reason.text);
    assert_page(&h.page("/admin/user/fiona", Some(&cookie)).await, "forget-form");
    // Typed right: forgotten, and back to the search.
    let forgot =
        h.form("/admin/user/fiona/forget", &cookie, &[("reason", "asked in writing"), ("confirm", "fiona")]).await;
    assert_eq!(
        (forgot.status.as_u16(), forgot.header("location").as_deref()),
        (303, Some("/admin")),
        "{}",
        forgot.text
    );
    assert_eq!(h.page("/admin/user/fiona", Some(&cookie)).await.status, 404);
    h
}
on_both_stores!(the_user_page_forgets_a_person_once_their_name_is_typed);

async fn the_administrators_pages_work_their_forms(h: Harness) -> Harness {
    let (_, _admin) = h.administrators().await;
    let cookie = h.session_cookie("admin").await;
    assert_page(&h.page("/admin", Some(&cookie)).await, "id=\"search-form\"");
    // Create an account: the temporary password is shown once.
    let created = h
        .form("/admin/localaccount/create", &cookie, &[("user", "erin"), ("display", "Erin"), ("email", "e@x.org")])
        .await;
    assert_page(&created, "id=\"temporary-password\"");
    // Roles by checkbox: ticked = held.
    let roles = h.form("/admin/user/erin/roles", &cookie, &[("DevToken", "on"), ("ServToken", "on")]).await;
    assert_eq!((roles.status.as_u16(), roles.header("location").as_deref()), (303, Some("/admin/user/erin")));
    let page = h.page("/admin/user/erin", Some(&cookie)).await;
    assert_page(&page, "name=\"DevToken\" checked");
    assert!(page.text.contains("name=\"ServToken\" checked") && !page.text.contains("name=\"Admin\" checked"));
    let logins = h.form("/admin/user/erin/logins", &cookie, &[("logins", "erin, deploy")]).await;
    assert_eq!(logins.status, 303, "{}", logins.text);
    assert!(h.page("/admin/user/erin", Some(&cookie)).await.text.contains("value=\"deploy, erin\""));
    // Configuration: the basic form's unticked boxes turn switches off; the token form round-trips.
    let basic = h.form("/admin/config/basic", &cookie, &[("ignoreip", "on"), ("showstack", "on")]).await;
    assert_eq!(basic.header("location").as_deref(), Some("/admin/config"), "{}", basic.text);
    let lifetimes =
        [("tokensugcache", "7"), ("tokenlogin", "8"), ("tokenagent", "9"), ("tokendev", "10"), ("tokenserv", "11")];
    assert_eq!(h.form("/admin/config/token", &cookie, &lifetimes).await.status, 303);
    let admin_token = cookie.trim_start_matches("kbase_session=");
    let config = h.get("/admin/config", Some(admin_token)).await.json();
    assert_eq!((config["allowlogin"].clone(), config["ignoreip"].clone()), (json!(false), json!(true)), "{config}");
    assert_eq!((config["tokensugcache"].clone(), config["tokenserv"].clone()), (json!(7), json!(11)));
    let page = h.page("/admin/config", Some(&cookie)).await;
    assert_page(&page, "name=\"tokenserv\" value=\"11\"");
    assert!(page.text.contains("name=\"ignoreip\" checked") && !page.text.contains("name=\"allowlogin\" checked"));
    assert_eq!(h.form("/admin/config/reset", &cookie, &[]).await.status, 303);
    let config = h.get("/admin/config", Some(admin_token)).await.json();
    assert_eq!(
        (config["ignoreip"].clone(), config["tokenserv"].clone()),
        (json!(false), json!(100_000_000)),
        "{config}"
    );
    // Custom roles: add, then delete.
    assert_eq!(h.form("/admin/customroles/set", &cookie, &[("id", "ops"), ("desc", "Operators")]).await.status, 303);
    assert_page(&h.page("/admin/customroles", Some(&cookie)).await, "<td>Operators</td>");
    assert_eq!(h.form("/admin/customroles/delete", &cookie, &[("id", "ops")]).await.status, 303);
    assert!(!h.page("/admin/customroles", Some(&cookie)).await.text.contains("Operators"));
    // The basic form takes forms only (JSON clients use POST /admin/config, where absent means unchanged).
    let json = h.post("/admin/config/basic", Some(admin_token), json!({"allowlogin": true})).await;
    assert_eq!(json.status, 415, "{}", json.text);
    // Search by role alone lists the holders, disabled ones too.
    let found = h.form("/admin/search", &cookie, &[("prefix", ""), ("ServToken", "on")]).await;
    assert_page(&found, "/admin/user/erin");
    assert!(!found.text.contains("/admin/user/admin\""), "admin holds no ServToken: {}", found.text);
    h
}
on_both_stores!(the_administrators_pages_work_their_forms);

async fn pages_show_only_the_forms_the_viewer_may_use(h: Harness) -> Harness {
    let (root, admin) = h.administrators().await;
    // A CreateAdmin that is not an Admin: accounts and roles, not settings, tokens or certificates.
    h.user_with_password(&admin, "carol").await;
    assert_eq!(h.post("/admin/user/carol/roles", Some(&root), json!({"roles": ["CreateAdmin"]})).await.status, 204);
    let carol = h.session_cookie("carol").await;
    let start = h.page("/admin", Some(&carol)).await;
    assert_page(&start, "id=\"search-form\"");
    assert!(start.text.contains("/admin/localaccount") && start.text.contains("id=\"force-reset-all-form\""));
    for hidden in ["/admin/config", "id=\"view-token-form\"", "id=\"revoke-all-form\""] {
        assert!(!start.text.contains(hidden), "{hidden} shown to a CreateAdmin");
    }
    let user = h.page("/admin/user/admin", Some(&carol)).await;
    assert_page(&user, "id=\"roles-form\"");
    for hidden in ["id=\"logins-form\"", "id=\"certificates\"", "No SSH certificates", "/admin/user/admin/tokens"] {
        assert!(!user.text.contains(hidden), "{hidden} shown to a CreateAdmin");
    }
    // An Admin sees them.
    let admin_cookie = h.session_cookie("admin").await;
    assert!(h.page("/admin/user/carol", Some(&admin_cookie)).await.text.contains("No SSH certificates"));
    h
}
on_both_stores!(pages_show_only_the_forms_the_viewer_may_use);

async fn the_auditors_pages_show_the_log(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "frank").await;
    let frank = h.login("frank", common::USER_PASSWORD).await;
    assert_eq!(h.post("/admin/user/frank/roles", Some(&admin), json!({"roles": ["DevToken"]})).await.status, 204);
    let before_revoke = h.now();
    let made = h.post("/tokens", Some(&frank), json!({"name": "ci"})).await.json();
    let id = made["id"].as_str().expect("an id").to_owned();
    let revoked = h.post(&format!("/admin/user/frank/tokens/revoke/{id}"), Some(&admin), json!({})).await;
    assert_eq!(revoked.status, 204, "{}", revoked.text);
    let cookie = h.session_cookie("admin").await;
    // The timeline, filtered by actor and type.
    let page = h.page("/admin/audit?actor=admin&type=RolesGranted", Some(&cookie)).await;
    assert_page(&page, "data-event-type=\"RolesGranted\"");
    assert!(!page.text.contains("data-event-type=\"TokenIssued\""), "{}", page.text);
    assert!(page.text.contains("<a href=\"/admin/user/frank\">"), "rows link the user: {}", page.text);
    let json =
        h.get("/admin/audit?user=frank&type=TokenRevoked", Some(cookie.trim_start_matches("kbase_session="))).await;
    let events = json.json()["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 1, "{}", json.text);
    assert_eq!(events[0]["actor"], "admin");
    // A page of two links to the next one, with the same filters.
    let paged = h.page("/admin/audit?user=frank&limit=2", Some(&cookie)).await;
    assert!(paged.text.contains("id=\"next-page\""), "{}", paged.text);
    assert!(paged.text.contains("/admin/audit?user=frank&#38;limit=2&#38;after="), "{}", paged.text);
    // The user's history: the chart and the state as of a moment.
    let history = h.page(&format!("/admin/user/frank/history?at={before_revoke}"), Some(&cookie)).await;
    assert_page(&history, "id=\"activity-chart\"");
    assert!(history.text.contains("class=\"grants\"") && history.text.contains("class=\"logins\""), "{}", history.text);
    assert!(history.text.contains("<dd id=\"as-of-roles\">DevToken</dd>"), "{}", history.text);
    assert!(history.text.contains("id=\"as-of-tokens\""), "frank's login token was valid then: {}", history.text);
    // Reading is recorded, like the audit API's reads, with the filters used.
    let reads = h.get("/api/V2/admin/audit?type=StateAsOfRead", Some(&admin)).await.json();
    assert!(reads["events"].as_array().is_some_and(|e| !e.is_empty()), "{reads}");
    let reads = h.get("/api/V2/admin/audit?type=AuditTrailRead", Some(&admin)).await.json();
    let described = reads["events"].to_string();
    assert!(described.contains("admin read the history of everyone (RolesGranted events) caused by admin"), "{reads}");
    let bad = h.page("/admin/user/frank/history?at=yesterday", Some(&cookie)).await;
    assert_eq!(bad.status, 400, "{}", bad.text);
    let long = h.page(&format!("/admin/audit?actor={}", "x".repeat(121)), Some(&cookie)).await;
    assert_eq!(long.status, 400, "a filter is recorded with the read, so it is bounded: {}", long.text);
    h
}
on_both_stores!(the_auditors_pages_show_the_log);
