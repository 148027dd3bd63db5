//! Signing in through a real identity provider (node-oidc-provider on
//! loopback, `common::oidc`), end to end over HTTP on both stores: the
//! reference's §10 login cases (#1–#42) — start, the way back, the choice,
//! create, pick, policy ids, cancel, `allowlogin`, disabled accounts,
//! environments, forged state, provider errors — plus what authledger adds:
//! a tampered ID token or a wrong nonce refused, `mfa` from the provider's
//! `amr`, an invitation's expected identity linked, the redirect allow-list
//! compared as URLs, the in-flight state sealed, and every step in the log.

use crate::common;

use authledger::domain::IdentityId;
use common::oidc::Peer;
use common::{Answer, Harness, TestStore, no_redirects};
use serde_json::{Value, json};

/// The cookies a browser keeps for authledger.
#[derive(Default, Clone)]
pub(crate) struct Jar(Vec<(String, String)>);

impl Jar {
    fn absorb(&mut self, answer: &Answer) {
        for cookie in answer.headers.get_all("set-cookie") {
            let text = cookie.to_str().unwrap_or_default();
            let Some((name, value)) = text.split(';').next().and_then(|p| p.split_once('=')) else {
                continue;
            };
            self.0.retain(|(n, _)| n != name);
            if !text.contains("Max-Age=0") {
                self.0.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn header(&self) -> String {
        self.0.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn with(mut self, name: &str, value: &str) -> Self {
        self.0.retain(|(n, _)| n != name);
        self.0.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// The whole `Set-Cookie` of `name` in an answer.
fn set_cookie(answer: &Answer, name: &str) -> Option<String> {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

pub(crate) fn location(answer: &Answer) -> String {
    assert_eq!(answer.status, 303, "{}", answer.text);
    answer.header("location").expect("a Location")
}

fn id(sub: &str) -> String {
    IdentityId::of("OIDC", sub).to_string()
}

const PROCESS_COOKIES: [&str; 4] = ["in-process-login-token", "issessiontoken", "loginredirect", "environment"];

fn assert_process_cookies_removed(answer: &Answer) {
    for name in PROCESS_COOKIES {
        let cookie = set_cookie(answer, name).unwrap_or_else(|| panic!("{name} is not removed"));
        assert!(cookie.contains("Max-Age=0") && cookie.contains("Path=/login"), "{cookie}");
    }
}

async fn start(h: &Harness, fields: &[(&str, &str)], headers: &[(&str, &str)]) -> Answer {
    let mut request = no_redirects().post(h.url("/login/start")).header("Accept", "application/json").form(fields);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    h.send(request).await
}

async fn get_with_cookies(h: &Harness, url: &str, jar: &Jar) -> Answer {
    let url = if url.starts_with("http") { url.to_owned() } else { h.url(url) };
    h.send(no_redirects().get(url).header("Accept", "application/json").header("Cookie", jar.header())).await
}

/// A login as `sub` (with `methods` at the provider) started with `fields`:
/// the answer of `/login/complete` and the browser's cookies after it.
async fn flow_with(h: &Harness, peer: &Peer, sub: &str, methods: &str, fields: &[(&str, &str)]) -> (Answer, Jar) {
    let mut all = vec![("provider", "OIDC")];
    all.extend_from_slice(fields);
    let started = start(h, &all, &[]).await;
    let authorize = location(&started);
    let mut jar = Jar::default();
    jar.absorb(&started);
    let back = peer.log_in(&authorize, sub, methods).await;
    let done = get_with_cookies(h, &back, &jar).await;
    jar.absorb(&done);
    (done, jar)
}

pub(crate) async fn flow(h: &Harness, peer: &Peer, sub: &str) -> (Answer, Jar) {
    flow_with(h, peer, sub, "pwd", &[]).await
}

async fn choice(h: &Harness, jar: &Jar) -> Answer {
    get_with_cookies(h, "/login/choice", jar).await
}

async fn post_json(h: &Harness, path: &str, jar: &Jar, body: Value) -> Answer {
    let request = no_redirects()
        .post(h.url(path))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("Cookie", jar.header())
        .body(body.to_string());
    h.send(request).await
}

async fn post_form(h: &Harness, path: &str, jar: &Jar, fields: &[(&str, &str)]) -> Answer {
    let request = no_redirects()
        .post(h.url(path))
        .header("Accept", "application/json")
        .header("Cookie", jar.header())
        .form(fields);
    h.send(request).await
}

async fn set_switches(h: &Harness, admin: &str, switches: Value) {
    let mut body = json!({"provider": "OIDC"});
    body.as_object_mut().expect("an object").extend(switches.as_object().cloned().unwrap_or_default());
    let answer = h.post("/admin/config/provider", Some(admin), body).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
}

async fn configure(h: &Harness, admin: &str, settings: Value) {
    let answer = h.post("/admin/config", Some(admin), settings).await;
    assert_eq!(answer.status, 204, "{}", answer.text);
}

/// The value of the session cookie an answer sets.
pub(crate) fn session_token(answer: &Answer) -> String {
    let cookie = set_cookie(answer, "kbase_session").expect("the login cookie");
    cookie.split(';').next().and_then(|p| p.split_once('=')).map(|(_, v)| v.to_owned()).expect("a value")
}

/// Creates `user` from `sub` (a fresh flow; JSON); its Login token.
async fn create_account(h: &Harness, peer: &Peer, sub: &str, user: &str) -> String {
    let (done, jar) = flow(h, peer, sub).await;
    assert!(location(&done).ends_with("/login/choice"), "{}", done.text);
    let body =
        json!({"id": id(sub), "user": user, "display": format!("User {user}"), "email": format!("{user}@x.org")});
    let created = post_json(h, "/login/create", &jar, body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json()["token"]["token"].as_str().expect("a token").to_owned()
}

async fn starting_and_coming_back(store: TestStore) {
    let Some((h, peer)) = Harness::with_provider(store).await else {
        return;
    };
    let (_, admin) = h.administrators().await;
    // #1: nothing enabled.
    let page = h.page("/login", None).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Sorry, login is currently disabled."), "{}", page.text);
    // #2, #3.
    start(&h, &[], &[]).await.assert_error(400, "30000 Missing input parameter: provider");
    start(&h, &[("provider", "OIDC")], &[]).await.assert_error(401, "50020 No such identity provider: OIDC");
    set_switches(&h, &admin, json!({"enabled": true})).await;
    let page = h.page("/login", None).await;
    assert!(page.text.contains(r#"value="OIDC""#) && !page.text.contains("Sorry"), "{}", page.text);
    // Its form may lead (through redirects) to the provider and back through env1's URL.
    let policy = page.header("content-security-policy").unwrap_or_default();
    let port = h.server.addr.port();
    assert!(policy.contains("form-action 'self' ") && policy.contains(&peer.issuer), "{policy}");
    assert!(policy.contains(&format!("http://localhost:{port}")), "{policy}");
    // #4: any case; the authorization request and the process cookies.
    let started = start(&h, &[("provider", "oidc")], &[]).await;
    let authorize = url::Url::parse(&location(&started)).expect("a URL");
    assert!(authorize.as_str().starts_with(&peer.issuer), "{authorize}");
    let param = |name: &str| authorize.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    assert_eq!(param("response_type").as_deref(), Some("code"));
    assert_eq!(param("client_id").as_deref(), Some("authledger"));
    assert_eq!(param("redirect_uri"), Some(h.url("/login/complete/OIDC")));
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    let state = param("state").expect("a state");
    assert!(state.len() == 32 && state.chars().all(|c| c.is_ascii_uppercase() || ('2'..='7').contains(&c)), "{state}");
    let challenge = param("code_challenge").expect("a challenge");
    assert!(challenge.len() == 43 && challenge.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)));
    let token_cookie = set_cookie(&started, "in-process-login-token").expect("the in-process cookie");
    assert!(token_cookie.contains("Path=/login") && !token_cookie.contains("Max-Age"), "{token_cookie}");
    assert!(token_cookie.contains("HttpOnly"), "{token_cookie}");
    let session = set_cookie(&started, "issessiontoken").expect("issessiontoken");
    assert!(session.starts_with("issessiontoken=true;") && session.contains("Max-Age=1800"), "{session}");
    for name in ["loginredirect", "environment"] {
        assert!(set_cookie(&started, name).is_some_and(|c| c.contains("Max-Age=0")), "{name} removed");
    }
    // The in-flight state is sealed: neither the state nor the cookie's token in the store.
    let raw = h.store.raw_flows().await;
    let token = token_cookie.split(';').next().and_then(|p| p.split_once('=')).map(|(_, v)| v).unwrap_or_default();
    assert!(raw.contains("LOGINSTART") && !raw.contains(&state) && !raw.contains(token), "sealed");
    // #5.
    let started = start(&h, &[("provider", "OIDC"), ("stayloggedin", "on")], &[]).await;
    let session = set_cookie(&started, "issessiontoken").expect("issessiontoken");
    assert!(session.starts_with("issessiontoken=false;") && session.contains("Max-Age=1800"), "{session}");
    // #6–#8, and the allow-list compared as URLs.
    let with_redirect = |url: &'static str| [("provider", "OIDC"), ("redirecturl", url)];
    start(&h, &with_redirect("https://app.test/x"), &[])
        .await
        .assert_error(400, "30001 Illegal input parameter: Post-login redirects are not enabled");
    configure(&h, &admin, json!({"allowedloginredirect": "https://app.test/ok"})).await;
    let refusals = [
        "https://app.test/no",
        "https://app.test/okay",
        "https://app.test.evil.com/ok",
        "https://app.test/ok/../admin",
        "https://app.test/ok/%2E%2E/admin",
        "https://app.test/ok;Domain=evil.test",
        "not a url",
    ];
    for refused in refusals {
        start(&h, &with_redirect(refused), &[])
            .await
            .assert_error(400, &format!("30001 Illegal input parameter: Illegal redirect URL: {refused}"));
    }
    assert_eq!(start(&h, &with_redirect("https://app.test/ok/p?q=1"), &[]).await.status, 303);
    // #9, #10: the header beats the form; the environment's own redirect URI.
    let started = start(&h, &[("provider", "OIDC"), ("environment", "bogus")], &[("X-Auth-Env", "env1")]).await;
    let authorize = url::Url::parse(&location(&started)).expect("a URL");
    let redirect = authorize.query_pairs().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned());
    let port = h.server.addr.port();
    assert_eq!(redirect, Some(format!("http://localhost:{port}/login/complete/OIDC")));
    let environment = set_cookie(&started, "environment").expect("the environment cookie");
    assert!(environment.starts_with("environment=env1;") && environment.contains("Max-Age=1800"), "{environment}");
    start(&h, &[("provider", "OIDC"), ("environment", "bogus")], &[])
        .await
        .assert_error(400, "50040 No such environment: bogus");
    // #11–#14.
    let complete = "/login/complete/OIDC?code=x&state=y";
    get_with_cookies(&h, complete, &Jar::default())
        .await
        .assert_error(400, "10010 No authentication token: Missing in-process-login-token");
    let started = start(&h, &[("provider", "OIDC")], &[]).await;
    let mut jar = Jar::default();
    jar.absorb(&started);
    get_with_cookies(&h, "/login/complete/OIDC?state=y", &jar)
        .await
        .assert_error(400, "30000 Missing input parameter: authorization code");
    get_with_cookies(&h, "/login/complete/OIDC?code=x&state=wrong", &jar)
        .await
        .assert_error(401, "10000 Authentication failed: State values do not match, this may be a CSRF attack");
    // A wrong state leaves the flow in place: the right one still completes.
    let authorize = location(&started);
    let back = peer.log_in(&authorize, "s0", "pwd").await;
    assert_eq!(get_with_cookies(&h, &back, &jar).await.status, 303, "the flow survived the forged state");
    // …once: the same way back again finds no flow.
    get_with_cookies(&h, &back, &jar).await.assert_error(401, "10020 Invalid token: Temporary token");
    get_with_cookies(&h, complete, &Jar::default().with("in-process-login-token", "GARBAGE"))
        .await
        .assert_error(401, "10020 Invalid token: Temporary token");
    // #15: the person refuses at the provider.
    let started = start(&h, &[("provider", "OIDC")], &[]).await;
    let mut jar = Jar::default();
    jar.absorb(&started);
    let back = peer.refuse(&location(&started)).await;
    assert!(back.contains("error=access_denied"), "{back}");
    let refused = get_with_cookies(&h, &back, &jar).await;
    assert!(location(&refused).ends_with("/login/choice"), "{}", refused.text);
    let before = jar.get("in-process-login-token").map(str::to_owned);
    jar.absorb(&refused);
    assert_ne!(jar.get("in-process-login-token").map(str::to_owned), before, "a new in-process token");
    choice(&h, &jar).await.assert_error(401, "10040 Identity provider error: access_denied");
    // A forged ID token and a nonce that is not the request's are refused.
    let started = start(&h, &[("provider", "OIDC")], &[]).await;
    let mut jar = Jar::default();
    jar.absorb(&started);
    let back = peer.log_in(&location(&started), "s0", "pwd").await;
    peer.tamper().await;
    let forged = get_with_cookies(&h, &back, &jar).await;
    assert_eq!(forged.status, 401, "{}", forged.text);
    assert!(
        forged.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("10030 Identity retrieval failed: the ID token from OIDC is not valid"),
        "{}",
        forged.text
    );
    let started = start(&h, &[("provider", "OIDC")], &[]).await;
    let mut jar = Jar::default();
    jar.absorb(&started);
    let mut authorize = url::Url::parse(&location(&started)).expect("a URL");
    let pairs: Vec<(String, String)> = authorize
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "nonce" { "another-nonce".to_owned() } else { v.into_owned() };
            (k.into_owned(), value)
        })
        .collect();
    authorize.query_pairs_mut().clear().extend_pairs(pairs);
    let back = peer.log_in(authorize.as_str(), "s0", "pwd").await;
    assert_eq!(get_with_cookies(&h, &back, &jar).await.status, 401, "a wrong nonce");
    h.finish().await;
}

async fn choosing_creating_and_picking(store: TestStore) {
    let Some((h, peer)) = Harness::with_provider(store).await else {
        return;
    };
    let (_, admin) = h.administrators().await;
    set_switches(&h, &admin, json!({"enabled": true})).await;
    // #16: a new identity: on to the choice.
    let (done, jar) = flow(&h, &peer, "s1").await;
    assert!(location(&done).ends_with("/login/choice"), "{}", done.text);
    let listed = choice(&h, &jar).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let body = listed.json();
    assert_eq!(
        body["create"],
        json!([{"id": id("s1"), "availablename": "s1", "provusername": "s1", "provfullname": "User s1",
                "provemail": "s1@example.org"}])
    );
    assert_eq!(body["login"], json!([]));
    assert_eq!(
        (&body["creationallowed"], &body["provider"], &body["redirecturl"]),
        (&json!(true), &json!("OIDC"), &Value::Null)
    );
    assert_eq!(
        (&body["pickurl"], &body["createurl"], &body["cancelurl"]),
        (&json!("pick"), &json!("create"), &json!("cancel"))
    );
    let expires = body["expires"].as_i64().expect("an expiry");
    assert!((expires - (h.now() + 1_800_000)).abs() < 60_000, "{expires}");
    let page = h.page("/login/choice", Some(&jar.header())).await;
    assert!(page.text.contains(r#"name="user" value="s1""#) && page.text.contains(&id("s1")), "{}", page.text);
    // #17.
    configure(&h, &admin, json!({"completeloginredirect": "https://ui.test/choice"})).await;
    let (done, _) = flow(&h, &peer, "s1").await;
    assert_eq!(location(&done), "https://ui.test/choice");
    configure(&h, &admin, json!({"remove": ["completeloginredirect"]})).await;
    // #22, #23, #21: checks before the flow is read leave it usable.
    let no_email = json!({"id": id("s1"), "user": "alice", "display": "Alice"});
    post_json(&h, "/login/create", &jar, no_email)
        .await
        .assert_error(400, "30000 Missing input parameter: email address");
    let extra = json!({"id": id("s1"), "user": "alice", "display": "Alice", "email": "a@x.org", "foo": 1});
    post_json(&h, "/login/create", &jar, extra)
        .await
        .assert_error(400, "30001 Illegal input parameter: Unexpected parameters in request: foo");
    let upper = json!({"id": id("s1"), "user": "Alice", "display": "Alice", "email": "a@x.org"});
    post_json(&h, "/login/create", &jar, upper)
        .await
        .assert_error(400, "30010 Illegal user name: Illegal character in user name Alice: A");
    assert_eq!(choice(&h, &jar).await.status, 200, "still usable");
    // #18: created, and logged in (JSON: the token, no login cookie).
    let body = json!({"id": id("s1"), "user": "alice", "display": "Alice", "email": "a@x.org"});
    let created = post_json(&h, "/login/create", &jar, body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let answer = created.json();
    assert_eq!(
        (&answer["redirecturl"], &answer["token"]["type"], &answer["token"]["user"]),
        (&Value::Null, &json!("Login"), &json!("alice"))
    );
    assert_eq!(answer["token"]["mfa"], json!("NotUsed"), "one factor at the provider");
    assert_process_cookies_removed(&created);
    assert!(set_cookie(&created, "kbase_session").is_none(), "JSON manages its own cookie");
    let alice = answer["token"]["token"].as_str().expect("a token").to_owned();
    let me = h.get("/api/V2/me", Some(&alice)).await.json();
    assert_eq!(me["idents"], json!([{"provider": "OIDC", "provusername": "s1", "id": id("s1")}]));
    assert_eq!((&me["local"], &me["policyids"], &me["email"]), (&json!(false), &json!([]), &json!("a@x.org")));
    // #20: a name taken burns the flow.
    let (_, jar) = flow(&h, &peer, "s2").await;
    let taken = json!({"id": id("s2"), "user": "alice", "display": "A", "email": "a@x.org"});
    post_json(&h, "/login/create", &jar, taken.clone()).await.assert_error(400, "40000 User already exists: alice");
    post_json(&h, "/login/create", &jar, taken).await.assert_error(401, "10020 Invalid token: Temporary token");
    // #19: a form creates and logs the browser in.
    let (_, jar) = flow(&h, &peer, "s2").await;
    let fields = [("id", id("s2")), ("user", "bob".into()), ("display", "Bob".into()), ("email", "b@x.org".into())];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let created = post_form(&h, "/login/create", &jar, &fields).await;
    assert_eq!(location(&created), "/me");
    let cookie = set_cookie(&created, "kbase_session").expect("the login cookie");
    assert!(cookie.contains("Path=/") && !cookie.contains("Max-Age"), "{cookie}");
    assert_process_cookies_removed(&created);
    // #24: a known identity logs straight in.
    let (done, _) = flow_with(&h, &peer, "s1", "pwd,otp", &[]).await;
    assert_eq!(location(&done), "/me");
    assert_process_cookies_removed(&done);
    let straight = session_token(&done);
    let introspected = h.get("/api/V2/token", Some(&straight)).await.json();
    assert_eq!(
        (&introspected["user"], &introspected["mfa"]),
        (&json!("alice"), &json!("Used")),
        "a second factor at the provider"
    );
    let last_login = h.get("/api/V2/me", Some(&straight)).await.json()["lastlogin"].as_i64().expect("lastlogin");
    assert!((h.now() - last_login).abs() < 60_000);
    // #25, #26.
    let (done, _) = flow_with(&h, &peer, "s1", "pwd", &[("stayloggedin", "on")]).await;
    let cookie = set_cookie(&done, "kbase_session").expect("the login cookie");
    let age: i64 =
        cookie.split("Max-Age=").nth(1).and_then(|a| a.split(';').next()).and_then(|a| a.parse().ok()).expect("an age");
    assert!((age - 1_209_600).abs() <= 10, "{cookie}");
    configure(&h, &admin, json!({"allowedloginredirect": "https://app.test/ok/"})).await;
    let (done, _) = flow_with(&h, &peer, "s1", "pwd", &[("redirecturl", "https://app.test/ok/p")]).await;
    assert_eq!(location(&done), "https://app.test/ok/p");
    // #27: a forced choice.
    set_switches(&h, &admin, json!({"enabled": true, "forceloginchoice": true})).await;
    let (done, jar) = flow(&h, &peer, "s1").await;
    assert!(location(&done).ends_with("/login/choice"), "{}", location(&done));
    let listed = choice(&h, &jar).await.json();
    assert_eq!(
        listed["login"],
        json!([{"user": "alice", "id": id("s1"), "loginallowed": true, "adminonly": false, "disabled": false,
                "policyids": [], "provusernames": ["s1"]}])
    );
    assert_eq!(listed["create"], json!([]));
    // #32–#35: refused before the flow is read.
    post_json(&h, "/login/pick", &jar, json!({"id": id("s1"), "linkall": "yes"}))
        .await
        .assert_error(400, "30001 Illegal input parameter: linkall must be a boolean");
    post_json(&h, "/login/pick", &jar, json!({"id": id("s1"), "policyids": ["  "]}))
        .await
        .assert_error(400, "30000 Missing input parameter: policy id");
    post_json(&h, "/login/pick", &jar, json!({"id": id("s1"), "policyids": ["abcdefghijklmnopqrstu"]}))
        .await
        .assert_error(400, "30001 Illegal input parameter: policy id size greater than limit 20");
    post_form(&h, "/login/pick", &jar, &[("id", &id("s1")), ("customcontext", "a, b, c")])
        .await
        .assert_error(400, "30001 Illegal input parameter: Bad key/value pair in custom context: a, b, c");
    // #28: pick with a policy id and a custom context.
    let body = json!({"id": id("s1"), "policyids": ["tos-v1"], "customcontext": {"k": "v"}});
    let picked = post_json(&h, "/login/pick", &jar, body).await;
    assert_eq!(picked.status, 200, "{}", picked.text);
    assert_eq!((&picked.json()["redirecturl"], &picked.json()["token"]["custom"]), (&Value::Null, &json!({"k": "v"})));
    let agreed = h.get("/api/V2/me", Some(&alice)).await.json()["policyids"].clone();
    let agreed_on = agreed[0]["agreedon"].as_i64().expect("agreedon");
    assert_eq!(agreed[0]["id"], json!("tos-v1"));
    assert!((h.now() - agreed_on).abs() < 60_000);
    // #29: agreeing again keeps the first time.
    let (_, jar) = flow(&h, &peer, "s1").await;
    assert_eq!(post_json(&h, "/login/pick", &jar, json!({"id": id("s1"), "policyids": ["tos-v1"]})).await.status, 200);
    let again = h.get("/api/V2/me", Some(&alice)).await.json()["policyids"].clone();
    assert_eq!(again, json!([{"id": "tos-v1", "agreedon": agreed_on}]));
    // #30, and the flow is spent by the failed pick.
    let (_, jar) = flow(&h, &peer, "s1").await;
    post_json(&h, "/login/pick", &jar, json!({"id": "0000"}))
        .await
        .assert_error(403, "20000 Unauthorized: Not authorized to login to user with remote identity 0000");
    post_json(&h, "/login/pick", &jar, json!({"id": id("s1")}))
        .await
        .assert_error(401, "10020 Invalid token: Temporary token");
    // #31.
    let (_, jar) = flow(&h, &peer, "s3").await;
    post_json(&h, "/login/pick", &jar, json!({"id": id("s3")}))
        .await
        .assert_error(401, "10000 Authentication failed: There is no account linked to the provided identity ID");
    // #39: a disabled account.
    let disabled =
        h.post("/admin/user/alice/disable", Some(&admin), json!({"disable": true, "disabledreason": "away"})).await;
    assert_eq!(disabled.status, 204, "{}", disabled.text);
    set_switches(&h, &admin, json!({"enabled": true})).await;
    let (done, jar) = flow(&h, &peer, "s1").await;
    assert!(location(&done).ends_with("/login/choice"), "a disabled account never logs straight in");
    assert_eq!(choice(&h, &jar).await.json()["login"][0]["disabled"], json!(true));
    post_json(&h, "/login/pick", &jar, json!({"id": id("s1")}))
        .await
        .assert_error(403, "20010 Account disabled: alice");
    let enabled = h.post("/admin/user/alice/disable", Some(&admin), json!({"disable": false})).await;
    assert_eq!(enabled.status, 204, "{}", enabled.text);
    // #37 set-up: an administrator who signs in through the provider.
    create_account(&h, &peer, "s9", "boss").await;
    let granted = h.post("/admin/user/boss/roles", Some(&admin), json!({"roles": ["Admin"]})).await;
    assert_eq!(granted.status, 204, "{}", granted.text);
    // #36–#38: non-admin login off.
    configure(&h, &admin, json!({"allowlogin": false})).await;
    let (done, jar) = flow(&h, &peer, "s1").await;
    assert!(location(&done).ends_with("/login/choice"), "{}", location(&done));
    let listed = choice(&h, &jar).await.json();
    assert_eq!((&listed["login"][0]["adminonly"], &listed["login"][0]["loginallowed"]), (&json!(true), &json!(false)));
    assert_eq!(listed["creationallowed"], json!(false));
    post_json(&h, "/login/pick", &jar, json!({"id": id("s1")}))
        .await
        .assert_error(403, "20000 Unauthorized: User alice cannot log in because non-admin login is disabled");
    let (done, _) = flow(&h, &peer, "s9").await;
    assert_eq!(location(&done), "/me", "an administrator logs straight in");
    let (_, jar) = flow(&h, &peer, "s4").await;
    let body = json!({"id": id("s4"), "user": "carl", "display": "Carl", "email": "c@x.org"});
    post_json(&h, "/login/create", &jar, body)
        .await
        .assert_error(403, "20000 Unauthorized: Account creation is disabled");
    configure(&h, &admin, json!({"allowlogin": true})).await;
    // #40, #41: cancel.
    for method in [reqwest::Method::DELETE, reqwest::Method::POST] {
        let (_, jar) = flow(&h, &peer, "s5").await;
        let request = no_redirects().request(method, h.url("/login/cancel")).header("Cookie", jar.header());
        let cancelled = h.send(request).await;
        assert_eq!(cancelled.status, 204, "{}", cancelled.text);
        assert_process_cookies_removed(&cancelled);
        choice(&h, &jar).await.assert_error(401, "10020 Invalid token: Temporary token");
    }
    let cancelled = h.send(no_redirects().post(h.url("/login/cancel")).header("Accept", "application/json")).await;
    cancelled.assert_error(400, "10010 No authentication token: Missing in-process-login-token");
    // #42.
    assert_eq!(h.get("/login/suggestname/Alice@x", None).await.json(), json!({"availablename": "alicex"}));
    assert_eq!(h.get("/login/suggestname/alice", None).await.json(), json!({"availablename": "alice2"}));
    // What happened is in the log, in the auditor's trail.
    let trail = h.get("/api/V2/admin/audit?user=alice", Some(&admin)).await;
    assert_eq!(trail.status, 200, "{}", trail.text);
    for expected in ["UserCreated", "IdentityLinked", "PolicyIdsAgreed", "logged in through OIDC"] {
        assert!(trail.text.contains(expected), "{expected} in {}", trail.text);
    }
    h.finish().await;
}

/// Teleport's side: an invitation's `connector:email` identity is linked when
/// its person signs in through that provider with that email, verified.
async fn an_invitations_identity_signs_in(store: TestStore) {
    let Some((h, peer)) = Harness::with_provider(store).await else {
        return;
    };
    let (_, admin) = h.administrators().await;
    set_switches(&h, &admin, json!({"enabled": true})).await;
    let invite = json!({"user": "carol", "identities": ["OIDC:carol@example.org", "OIDC:dave@example.org"]});
    h.invited_user(&admin, invite, "carol's own long passphrase 42").await;
    let (done, _) = flow(&h, &peer, "carol").await;
    assert_eq!(location(&done), "/me", "found by the identity the invitation expected");
    let token = session_token(&done);
    assert_eq!(h.get("/api/V2/token", Some(&token)).await.json()["user"], json!("carol"));
    let me = h.get("/api/V2/me", Some(&token)).await.json();
    assert_eq!(me["idents"][0]["id"], json!(id("carol")));
    // The provider does not vouch for this email: no link, a choice.
    let (done, _) = flow(&h, &peer, "unverified-dave").await;
    assert!(location(&done).ends_with("/login/choice"), "an unverified email links nothing");
    // Found once: after carol unlinks it (her password remains), it is not linked again.
    let unlinked = h.post(&format!("/me/unlink/{}", id("carol")), Some(&token), json!({})).await;
    assert_eq!(unlinked.status, 204, "{}", unlinked.text);
    let (done, _) = flow(&h, &peer, "carol").await;
    assert!(location(&done).ends_with("/login/choice"), "an unlink is not undone");
    // A name a pending invitation is for cannot be taken by a provider sign-up.
    let pending = h.post("/api/V2/admin/invites", Some(&admin), json!({"user": "dora"})).await;
    assert_eq!(pending.status, 200, "{}", pending.text);
    let (_, jar) = flow(&h, &peer, "s7").await;
    let body = json!({"id": id("s7"), "user": "dora", "display": "Dora", "email": "d@x.org"});
    post_json(&h, "/login/create", &jar, body).await.assert_error(400, "40000 User already exists: dora");
    h.finish().await;
}

/// A link of `sub` to the holder of `token` (started with the form's token):
/// the answer of `/link/complete` and the browser's cookies after it.
async fn link_flow(h: &Harness, peer: &Peer, token: &str, sub: &str) -> (Answer, Jar) {
    let started = post_form(h, "/link/start", &Jar::default(), &[("provider", "OIDC"), ("token", token)]).await;
    let authorize = location(&started);
    let mut jar = Jar::default();
    jar.absorb(&started);
    let back = peer.log_in(&authorize, sub, "pwd").await;
    let done = get_with_cookies(h, &back, &jar).await;
    jar.absorb(&done);
    (done, jar)
}

/// The link choice as `token`'s holder asks for it (JSON, the header) with the link cookie of `jar`.
async fn link_choice(h: &Harness, token: &str, jar: &Jar) -> Answer {
    let request = no_redirects()
        .get(h.url("/link/choice"))
        .header("Accept", "application/json")
        .header("Authorization", token)
        .header("Cookie", jar.header());
    h.send(request).await
}

async fn link_pick(h: &Harness, token: &str, jar: &Jar, body: Value) -> Answer {
    let request = no_redirects()
        .post(h.url("/link/pick"))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("Authorization", token)
        .header("Cookie", jar.header())
        .body(body.to_string());
    h.send(request).await
}

fn ids_of(me: &Value) -> Vec<String> {
    me["idents"].as_array().into_iter().flatten().filter_map(|i| i["id"].as_str().map(str::to_owned)).collect()
}

async fn linking_and_unlinking(store: TestStore) {
    let Some((h, peer)) = Harness::with_provider(store).await else {
        return;
    };
    let (_, admin) = h.administrators().await;
    set_switches(&h, &admin, json!({"enabled": true})).await;
    let alice = create_account(&h, &peer, "s1", "alice").await;
    let bob = create_account(&h, &peer, "s4", "bob").await;
    let local = h.user_token(&admin, "loc").await;
    // #43, and the page.
    h.get("/link", None).await.assert_error(400, "10010 No authentication token: No user token provided");
    let page = h.page("/link", Some(&format!("kbase_session={local}"))).await;
    assert!(page.text.contains("cannot link"), "{}", page.text);
    let page = h.page("/link", Some(&format!("kbase_session={alice}"))).await;
    assert!(page.text.contains(r#"value="OIDC""#), "{}", page.text);
    // #44, #45.
    post_form(&h, "/link/start", &Jar::default(), &[("provider", "OIDC"), ("token", &local)])
        .await
        .assert_error(400, "60000 Account linkage failed: Cannot link identities to local account loc");
    let agent = h.agent_token(&alice, "agent").await;
    post_form(&h, "/link/start", &Jar::default(), &[("provider", "OIDC"), ("token", &agent)])
        .await
        .assert_error(403, "20000 Unauthorized: Agent tokens are not allowed for this operation");
    // #46: one new identity links at once.
    let started = post_form(&h, "/link/start", &Jar::default(), &[("provider", "OIDC"), ("token", &alice)]).await;
    let authorize = url::Url::parse(&location(&started)).expect("a URL");
    let redirect = authorize.query_pairs().find(|(k, _)| k == "redirect_uri").map(|(_, v)| v.into_owned());
    assert_eq!(redirect, Some(h.url("/link/complete/OIDC")));
    let cookie = set_cookie(&started, "in-process-link-token").expect("the link cookie");
    assert!(cookie.contains("Path=/link") && !cookie.contains("Max-Age"), "{cookie}");
    let (done, _) = link_flow(&h, &peer, &alice, "s3").await;
    assert_eq!(location(&done), "/me");
    assert!(set_cookie(&done, "in-process-link-token").is_some_and(|c| c.contains("Max-Age=0")));
    let me = h.get("/me", Some(&alice)).await.json();
    assert_eq!(ids_of(&me), {
        let mut ids = vec![id("s1"), id("s3")];
        ids.sort();
        ids
    });
    assert_eq!(me["unlink"], json!(true));
    // #47: only identities already linked: a choice with nothing to link.
    let (done, jar) = link_flow(&h, &peer, &alice, "s1").await;
    assert!(location(&done).ends_with("/link/choice"), "{}", done.text);
    let listed = link_choice(&h, &alice, &jar).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    let listed = listed.json();
    assert_eq!((&listed["haslinks"], &listed["idents"]), (&json!(false), &json!([])));
    assert_eq!(listed["linked"], json!([{"user": "alice", "id": id("s1"), "provusername": "s1"}]));
    // #51, #52.
    link_choice(&h, &bob, &jar)
        .await
        .assert_error(403, "20000 Unauthorized: User bob may not access this identity set");
    link_choice(&h, &alice, &Jar::default())
        .await
        .assert_error(400, "10010 No authentication token: Missing in-process-link-token");
    // #48–#50: a forced choice.
    set_switches(&h, &admin, json!({"enabled": true, "forcelinkchoice": true})).await;
    let (done, jar) = link_flow(&h, &peer, &alice, "s4").await;
    assert!(location(&done).ends_with("/link/choice"));
    link_pick(&h, &alice, &jar, json!({"id": id("s4")}))
        .await
        .assert_error(400, &format!("40010 Identity already linked: {}", id("s4")));
    let (_, jar) = link_flow(&h, &peer, &alice, "s5").await;
    let picked = link_pick(&h, &alice, &jar, json!({})).await;
    assert_eq!(picked.status, 204, "{}", picked.text);
    assert!(
        set_cookie(&picked, "in-process-link-token")
            .is_some_and(|c| c.contains("Max-Age=0") && c.contains("Path=/link"))
    );
    assert!(ids_of(&h.get("/me", Some(&alice)).await.json()).contains(&id("s5")));
    let (_, jar) = link_flow(&h, &peer, &alice, "s6").await;
    link_pick(&h, &alice, &jar, json!({"id": "nope"}))
        .await
        .assert_error(400, "60000 Account linkage failed: User alice is not authorized to link identity nope");
    set_switches(&h, &admin, json!({"enabled": true})).await;
    // #53, #54.
    let started = post_form(&h, "/link/start", &Jar::default(), &[("provider", "OIDC"), ("token", &alice)]).await;
    let mut jar = Jar::default();
    jar.absorb(&started);
    get_with_cookies(&h, "/link/complete/OIDC?code=x&state=wrong", &jar)
        .await
        .assert_error(401, "10000 Authentication failed: State values do not match, this may be a CSRF attack");
    let back = peer.refuse(&location(&started)).await;
    let refused = get_with_cookies(&h, &back, &jar).await;
    assert!(location(&refused).ends_with("/link/choice"));
    jar.absorb(&refused);
    link_choice(&h, &alice, &jar).await.assert_error(401, "10040 Identity provider error: access_denied");
    // #55–#58: unlink.
    let unlink = |token: &str, id: String| {
        let request = no_redirects()
            .post(h.url(&format!("/me/unlink/{id}")))
            .header("Accept", "application/json")
            .header("Authorization", token.to_owned());
        h.send(request)
    };
    assert_eq!(unlink(&alice, id("s3")).await.status, 204);
    assert!(!ids_of(&h.get("/me", Some(&alice)).await.json()).contains(&id("s3")));
    unlink(&bob, id("s4"))
        .await
        .assert_error(400, "60010 Account unlink failed: The user has only one associated identity");
    unlink(&alice, "ffff".into())
        .await
        .assert_error(400, "50030 No such identity: The user is not linked to identity ffff");
    unlink(&local, "ffff".into())
        .await
        .assert_error(400, "60010 Account unlink failed: Local user loc doesn't have remote identities");
    // The released identity is free again: bob links it.
    let (done, _) = link_flow(&h, &peer, &bob, "s3").await;
    assert_eq!(location(&done), "/me");
    assert!(ids_of(&h.get("/me", Some(&bob)).await.json()).contains(&id("s3")));
    // #59, #60: policy ids.
    set_switches(&h, &admin, json!({"enabled": true, "forceloginchoice": true})).await;
    let (_, jar) = flow(&h, &peer, "s1").await;
    assert_eq!(post_json(&h, "/login/pick", &jar, json!({"id": id("s1"), "policyids": ["tos-v1"]})).await.status, 200);
    assert_eq!(h.get("/me", Some(&alice)).await.json()["policyids"][0]["id"], json!("tos-v1"));
    let removed =
        post_form(&h, "/admin/policyid", &Jar::default().with("kbase_session", &admin), &[("policyid", "tos-v1")])
            .await;
    assert_eq!(removed.status, 204, "{}", removed.text);
    assert_eq!(h.get("/me", Some(&alice)).await.json()["policyids"], json!([]));
    post_form(&h, "/admin/policyid", &Jar::default().with("kbase_session", &bob), &[("policyid", "x")])
        .await
        .assert_error(403, "20000 Unauthorized");
    post_form(&h, "/admin/policyid", &Jar::default(), &[("policyid", "x")])
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    post_form(&h, "/admin/policyid", &Jar::default().with("kbase_session", &admin), &[("policyid", " ")])
        .await
        .assert_error(400, "30000 Missing input parameter: policy id");
    // A logout ends the user's links under way.
    let started = post_form(&h, "/link/start", &Jar::default(), &[("provider", "OIDC"), ("token", &bob)]).await;
    assert_eq!(started.status, 303, "{}", started.text);
    let before = h.server.provider_flows.count().await.expect("counted");
    let logout = h.send(no_redirects().post(h.url("/logout")).header("Authorization", bob.clone())).await;
    assert_eq!(logout.status, 200, "{}", logout.text);
    assert_eq!(h.server.provider_flows.count().await.expect("counted"), before - 1);
    // A forget renames the identity claims only alice ever held, unlinked ones too
    // (s5); s3, which bob holds now, keeps its id.
    assert_eq!(unlink(&alice, id("s5")).await.status, 204);
    let log = &h.server.ledger.log;
    for claim in ["s1", "s5", "s3"] {
        assert!(!log.load("IdentityClaim", &id(claim), 0).await.expect("readable").is_empty(), "{claim} is claimed");
    }
    let forgot = h.post("/admin/user/alice/forget", Some(&admin), json!({"reason": "asked"})).await;
    assert_eq!(forgot.status, 204, "{}", forgot.text);
    for (claim, kept) in [("s1", false), ("s5", false), ("s3", true)] {
        let rows = log.load("IdentityClaim", &id(claim), 0).await.expect("readable");
        assert_eq!(!rows.is_empty(), kept, "{claim}: {rows:?}");
    }
    h.finish().await;
}

/// Two sign-ups racing for one identity: one account gets it, the other is
/// refused — never both (the identity's claim serializes them, across servers too).
async fn an_identity_goes_to_one_account(store: TestStore) {
    let Some((h, peer)) = Harness::with_provider(store).await else {
        return;
    };
    let (_, admin) = h.administrators().await;
    set_switches(&h, &admin, json!({"enabled": true})).await;
    let (_, first) = flow(&h, &peer, "twin").await;
    let (_, second) = flow(&h, &peer, "twin").await;
    let body = |user: &str| json!({"id": id("twin"), "user": user, "display": user, "email": format!("{user}@x.org")});
    let (a, b) = tokio::join!(
        post_json(&h, "/login/create", &first, body("one")),
        post_json(&h, "/login/create", &second, body("two"))
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [201, 400], "{} / {}", a.text, b.text);
    let refused = if a.status == 400 { &a } else { &b };
    let message = refused.json()["error"]["message"].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        message,
        format!("40010 Identity already linked: {}", id("twin")),
        "the loser is told the identity is taken"
    );
    let listed = h.get("/api/V2/users?list=one,two", Some(&admin)).await.json();
    let owners: Vec<&String> = listed.as_object().map(|o| o.keys().collect()).unwrap_or_default();
    assert_eq!(owners.len(), 1, "one account exists: {owners:?}");
    h.finish().await;
}

/// A sign-in's state lives 30 minutes at each step; an environment's flow
/// goes through its own redirect URI and on to its own choice page.
async fn flows_expire_and_environments_go_their_own_way(store: TestStore) {
    let Some((h, peer)) = Harness::with_provider_and_manual_clock(store).await else {
        return;
    };
    let (_, admin) = h.administrators().await;
    set_switches(&h, &admin, json!({"enabled": true})).await;
    // Sent to the provider, back 31 minutes later: the flow is gone.
    let started = start(&h, &[("provider", "OIDC")], &[]).await;
    let mut jar = Jar::default();
    jar.absorb(&started);
    let back = peer.log_in(&location(&started), "late", "pwd").await;
    h.advance(31 * 60 * 1000);
    get_with_cookies(&h, &back, &jar).await.assert_error(401, "10020 Invalid token: Temporary token");
    // A choice left 31 minutes: gone too.
    let (_, jar) = flow(&h, &peer, "slow").await;
    assert_eq!(choice(&h, &jar).await.status, 200);
    h.advance(31 * 60 * 1000);
    choice(&h, &jar).await.assert_error(401, "10020 Invalid token: Temporary token");
    // env1: its redirect URI (another public URL) and its own choice page.
    let urls = json!({"environment": "env1", "completeloginredirect": "https://env1.test/choice"});
    let set = h.post("/admin/config/environment", Some(&admin), urls).await;
    assert_eq!(set.status, 204, "{}", set.text);
    let started = start(&h, &[("provider", "OIDC")], &[("X-Auth-Env", "env1")]).await;
    let mut jar = Jar::default();
    jar.absorb(&started);
    let back = peer.log_in(&location(&started), "traveller", "pwd").await;
    assert!(back.starts_with(&format!("http://localhost:{}/login/complete/OIDC", h.server.addr.port())), "{back}");
    let done = get_with_cookies(&h, &back, &jar).await;
    assert_eq!(location(&done), "https://env1.test/choice");
    let environment = set_cookie(&done, "environment").expect("kept for the choice");
    assert!(environment.starts_with("environment=env1;"), "{environment}");
    h.finish().await;
}

on_both_stores_from_store!(
    starting_and_coming_back,
    choosing_creating_and_picking,
    an_invitations_identity_signs_in,
    linking_and_unlinking,
    an_identity_goes_to_one_account,
    flows_expire_and_environments_go_their_own_way
);
