//! The Globus and ORCID presets end to end against a fake of each (axum on
//! loopback, speaking their documented wire protocol: reference §9.2, §9.4):
//! Globus' several identities per sign-in (the choice, create with and
//! without `linkall`, a straight login once all are linked), its audience
//! and PKCE checks and error texts; ORCID's iD, name and email.

use crate::common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use authledger::app::providers::{Endpoints, ProviderKind, ProviderSettings};
use authledger::domain::IdentityId;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use base64::Engine;
use common::{Answer, Harness, TestStore, no_redirects};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CLIENT: &str = "fake-client";
const SECRET: &str = "fake-secret";
const ORCID: &str = "0000-0002-1825-0097";

/// What the fake remembers of each authorization: who signed in, the PKCE challenge.
#[derive(Default)]
struct Fake {
    codes: Mutex<HashMap<String, (String, Option<String>)>>,
}

type Shared = Arc<Fake>;

/// The browser's sign-in: approves at once whoever `login` names.
async fn authorize(State(fake): State<Shared>, Query(q): Query<HashMap<String, String>>) -> Response {
    let code = format!("code-{}", uuid::Uuid::new_v4().simple());
    let mut who = q.get("login").cloned().unwrap_or_default();
    if q.get("scope").is_some_and(|s| s.split(' ').any(|s| s == "openid")) {
        who.push_str("+openid");
    }
    fake.codes.lock().expect("the codes").insert(code.clone(), (who, q.get("code_challenge").cloned()));
    let back = format!(
        "{}?code={code}&state={}",
        q.get("redirect_uri").cloned().unwrap_or_default(),
        q.get("state").cloned().unwrap_or_default()
    );
    Redirect::to(&back).into_response()
}

fn basic_ok(headers: &HeaderMap) -> bool {
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{SECRET}")));
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
}

fn globus_error(code: StatusCode, error: &str) -> Response {
    (code, Json(json!({"error": error}))).into_response()
}

async fn globus_token(
    State(fake): State<Shared>,
    headers: HeaderMap,
    Form(f): Form<HashMap<String, String>>,
) -> Response {
    if !basic_ok(&headers) {
        return globus_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let Some((who, challenge)) = f.get("code").and_then(|c| fake.codes.lock().expect("the codes").remove(c)) else {
        return globus_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    let verifier = f.get("code_verifier").cloned().unwrap_or_default();
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if challenge.as_deref() != Some(computed.as_str()) || who == "denied" {
        return globus_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    Json(json!({"access_token": format!("AT-{who}"), "token_type": "Bearer"})).into_response()
}

/// A Globus person `who` and their linked identities (`<who>-2`, `<who>-3` for names starting `multi`).
fn globus_ids(who: &str) -> Vec<String> {
    let mut ids = vec![format!("{who}-id")];
    if who.starts_with("multi") {
        ids.extend([format!("{who}-2"), format!("{who}-3")]);
    }
    ids
}

async fn introspect(headers: HeaderMap, Form(f): Form<HashMap<String, String>>) -> Response {
    if !basic_ok(&headers) {
        return globus_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    let who = f.get("token").and_then(|t| t.strip_prefix("AT-")).unwrap_or_default().to_owned();
    // Without `include=identities_set`, Globus lists no linked identities.
    let linked = f.get("include").map(String::as_str) == Some("identities_set");
    let set = if linked { globus_ids(&who) } else { Vec::new() };
    let audience = if who == "badaud" { "someone-else" } else { CLIENT };
    Json(json!({
        "active": true,
        "aud": [audience],
        "sub": format!("{who}-id"),
        "username": format!("{who}@globusid.org"),
        "name": format!("Globus {who}"),
        "email": format!("{who}@example.org"),
        "identities_set": set,
    }))
    .into_response()
}

async fn identities(headers: HeaderMap, Query(q): Query<HashMap<String, String>>) -> Response {
    if headers.get("authorization").and_then(|v| v.to_str().ok()).is_none_or(|v| !v.starts_with("Bearer AT-")) {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"errors": [{"code": "UNAUTHORIZED", "detail": "no", "id": "x"}]})),
        )
            .into_response();
    }
    let listed: Vec<Value> = q
        .get("ids")
        .map(String::as_str)
        .unwrap_or_default()
        .split(',')
        .map(|id| json!({"id": id, "username": format!("{id}@other.org"), "name": null, "email": null}))
        .collect();
    Json(json!({ "identities": listed })).into_response()
}

/// ORCID's token answer; with scope `openid` (as the authorization asked:
/// the fake sees it in the code's sign-in name, `<who>+openid`), an ID token
/// whose `amr` is the sign-in name's: `josiah-mfa` used a second factor,
/// `josiah-pwd` did not, `josiah-noamr` says nothing, `josiah-broken` gets a
/// malformed token and `josiah-noid` none.
async fn orcid_token(State(fake): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Response {
    let known = f.get("code").and_then(|c| fake.codes.lock().expect("the codes").remove(c));
    let Some((who, _)) = known.filter(|_| f.get("client_secret").map(String::as_str) == Some(SECRET)) else {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": "invalid_grant", "error_description": "no"})))
            .into_response();
    };
    let mut answer = json!({"access_token": "AT-orcid", "orcid": ORCID, "name": "Josiah Carberry"});
    if let Some(person) = who.strip_suffix("+openid") {
        let encode = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        let mut claims = json!({"iss": "https://orcid.org", "aud": CLIENT, "sub": ORCID});
        match person.rsplit('-').next() {
            Some("mfa") => claims["amr"] = json!("mfa"),
            Some("pwd") => claims["amr"] = json!("pwd"),
            _ => {}
        }
        let token = format!("{}.{}.signature", encode(json!({"alg": "RS256", "kid": "k"})), encode(claims));
        match person.rsplit('-').next() {
            Some("broken") => answer["id_token"] = json!("not-a-jwt"),
            Some("noid") => {}
            _ => answer["id_token"] = json!(token),
        }
    }
    Json(answer).into_response()
}

async fn orcid_email(Path(orcid): Path<String>, headers: HeaderMap) -> Response {
    let bearer = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some("Bearer AT-orcid");
    if !bearer || orcid != ORCID {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({"email": [{"email": "josiah@example.org"}]})).into_response()
}

/// The fake on loopback; its base URL.
async fn start_fake() -> String {
    let app = Router::new()
        .route("/authorize", get(authorize))
        .route("/v2/oauth2/token", post(globus_token))
        .route("/v2/oauth2/token/introspect", post(introspect))
        .route("/v2/api/identities", get(identities))
        .route("/oauth/token", post(orcid_token))
        .route("/v2.1/{orcid}/email", get(orcid_email))
        .with_state(Arc::new(Fake::default()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let base = format!("http://{}", listener.local_addr().expect("its address"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    base
}

async fn harness(store: TestStore) -> Harness {
    let fake = start_fake().await;
    let endpoints = |token: &str| Endpoints {
        authorize_url: format!("{fake}/authorize"),
        token_url: format!("{fake}{token}"),
        api_url: fake.clone(),
    };
    let provider = |name: &str, kind| ProviderSettings {
        name: name.into(),
        kind,
        client_id: CLIENT.into(),
        client_secret: SECRET.into(),
        scopes: Vec::new(),
        extra_params: Vec::new(),
    };
    let providers = vec![
        provider(
            "Globus",
            ProviderKind::Globus { endpoints: endpoints("/v2/oauth2/token"), secondary_identities: true },
        ),
        provider(
            "GlobusPrimary",
            ProviderKind::Globus { endpoints: endpoints("/v2/oauth2/token"), secondary_identities: false },
        ),
        provider("OrcID", ProviderKind::Orcid { endpoints: endpoints("/oauth/token"), mfa: true }),
        provider("OrcIDPlain", ProviderKind::Orcid { endpoints: endpoints("/oauth/token"), mfa: false }),
    ];
    let (listener, _) = Harness::bind().await;
    let h = Harness::start_on(store, listener, providers).await;
    let (_, admin) = h.administrators().await;
    for name in ["Globus", "GlobusPrimary", "OrcID", "OrcIDPlain"] {
        let enabled = h.post("/admin/config/provider", Some(&admin), json!({"provider": name, "enabled": true})).await;
        assert_eq!(enabled.status, 204, "{}", enabled.text);
    }
    h
}

fn cookies_of(answer: &Answer) -> String {
    answer
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .filter(|c| !c.contains("Max-Age=0"))
        .filter_map(|c| c.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A sign-in at `provider` as `who`: the way back's answer and the cookies after it.
async fn log_in(h: &Harness, provider: &str, who: &str) -> (Answer, String) {
    let started = h
        .send(
            no_redirects()
                .post(h.url("/login/start"))
                .header("Accept", "application/json")
                .form(&[("provider", provider)]),
        )
        .await;
    assert_eq!(started.status, 303, "{}", started.text);
    let authorize = started.header("location").expect("the provider");
    let at_provider =
        no_redirects().get(format!("{authorize}&login={who}")).send().await.expect("the provider answers");
    let back = at_provider.headers().get("location").and_then(|l| l.to_str().ok()).expect("the way back").to_owned();
    let cookies = cookies_of(&started);
    let done = h.send(no_redirects().get(back).header("Accept", "application/json").header("Cookie", &cookies)).await;
    let after = match cookies_of(&done) {
        set if set.is_empty() => cookies,
        set => set,
    };
    (done, after)
}

fn id(provider: &str, provider_id: &str) -> String {
    IdentityId::of(provider, provider_id).to_string()
}

async fn choice(h: &Harness, cookies: &str) -> Value {
    let answer = h
        .send(no_redirects().get(h.url("/login/choice")).header("Accept", "application/json").header("Cookie", cookies))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()
}

async fn globus_brings_several_identities(store: TestStore) {
    let h = harness(store).await;
    let (done, cookies) = log_in(&h, "Globus", "multi").await;
    assert_eq!(done.header("location").as_deref(), Some("/login/choice"), "{}", done.text);
    let listed = choice(&h, &cookies).await;
    let offered: Vec<&str> =
        listed["create"].as_array().expect("a list").iter().filter_map(|c| c["id"].as_str()).collect();
    let mut expected = vec![id("Globus", "multi-id"), id("Globus", "multi-2"), id("Globus", "multi-3")];
    expected.sort();
    assert_eq!(offered, expected, "every identity of the sign-in, by id");
    let primary =
        listed["create"].as_array().expect("a list").iter().find(|c| c["id"] == json!(id("Globus", "multi-id")));
    let primary = primary.expect("the primary identity");
    assert_eq!((&primary["provusername"], &primary["availablename"]), (&json!("multi@globusid.org"), &json!("multi")));
    assert_eq!(primary["provemail"], json!("multi@example.org"));
    // Created from the primary with linkall: all three.
    let body = json!({"id": id("Globus", "multi-id"), "user": "multi", "display": "Multi", "email": "m@x.org", "linkall": true});
    let created = h
        .send(
            no_redirects()
                .post(h.url("/login/create"))
                .header("Accept", "application/json")
                .header("Content-Type", "application/json")
                .header("Cookie", &cookies)
                .body(body.to_string()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let token = created.json()["token"]["token"].as_str().expect("a token").to_owned();
    let me = h.get("/api/V2/me", Some(&token)).await.json();
    assert_eq!(me["idents"].as_array().map(Vec::len), Some(3), "{me}");
    // All linked to one account: straight in.
    let (done, _) = log_in(&h, "Globus", "multi").await;
    assert_eq!(done.header("location").as_deref(), Some("/me"), "{}", done.text);
    // Upstream's ignore-secondary-identities: only the identity signed in with.
    let (_, cookies) = log_in(&h, "GlobusPrimary", "multi").await;
    let listed = choice(&h, &cookies).await;
    assert_eq!(listed["create"].as_array().map(Vec::len), Some(1), "{listed}");
    assert_eq!(listed["create"][0]["id"], json!(id("GlobusPrimary", "multi-id")));
    // A form's linkall=false links only the chosen one.
    let (_, cookies) = log_in(&h, "Globus", "multiple").await;
    let fields = [
        ("id", id("Globus", "multiple-id")),
        ("user", "multiple".into()),
        ("display", "M".into()),
        ("email", "mm@x.org".into()),
        ("linkall", "false".into()),
    ];
    let created = h.send(no_redirects().post(h.url("/login/create")).header("Cookie", &cookies).form(&fields)).await;
    assert_eq!(created.status, 303, "{}", created.text);
    let session = cookies_of(&created);
    let token = session.split("kbase_session=").nth(1).and_then(|t| t.split(';').next()).expect("the login cookie");
    assert_eq!(h.get("/api/V2/me", Some(token)).await.json()["idents"].as_array().map(Vec::len), Some(1));
    h.finish().await;
}

async fn post_json(h: &Harness, path: &str, cookies: &str, body: Value) -> Answer {
    let request = no_redirects()
        .post(h.url(path))
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("Cookie", cookies)
        .body(body.to_string());
    h.send(request).await
}

/// One Globus sign-in whose identities belong to two accounts: the choice
/// lists both, and a pick logs in to the one chosen.
async fn a_pick_among_several_accounts(store: TestStore) {
    let h = harness(store).await;
    let body = |sub: &str, user: &str| json!({"id": id("Globus", sub), "user": user, "display": user, "email": format!("{user}@x.org")});
    let (_, cookies) = log_in(&h, "Globus", "multix").await;
    assert_eq!(post_json(&h, "/login/create", &cookies, body("multix-id", "first")).await.status, 201);
    let (_, cookies) = log_in(&h, "Globus", "multix").await;
    assert_eq!(post_json(&h, "/login/create", &cookies, body("multix-2", "second")).await.status, 201);
    let (done, cookies) = log_in(&h, "Globus", "multix").await;
    assert_eq!(done.header("location").as_deref(), Some("/login/choice"), "two accounts: a choice");
    let listed = choice(&h, &cookies).await;
    let users: Vec<&str> =
        listed["login"].as_array().expect("a list").iter().filter_map(|l| l["user"].as_str()).collect();
    assert_eq!(users, ["first", "second"]);
    assert_eq!(listed["create"].as_array().map(Vec::len), Some(1), "multix-3 is still new");
    let picked = post_json(&h, "/login/pick", &cookies, json!({"id": id("Globus", "multix-2")})).await;
    assert_eq!(picked.status, 200, "{}", picked.text);
    assert_eq!(picked.json()["token"]["user"], json!("second"));
    h.finish().await;
}

async fn globus_failures_are_upstreams_words(store: TestStore) {
    let h = harness(store).await;
    let (done, _) = log_in(&h, "Globus", "badaud").await;
    done.assert_error(
        401,
        "10030 Identity retrieval failed: The audience for the Globus request does not include this client",
    );
    let (done, _) = log_in(&h, "Globus", "denied").await;
    done.assert_error(
        401,
        "10030 Identity retrieval failed: Authtoken retrieval failed: Globus service returned an error. HTTP code: 400. Error: invalid_grant.",
    );
    h.finish().await;
}

async fn orcid_signs_in_by_its_id(store: TestStore) {
    let h = harness(store).await;
    let started = h
        .send(
            no_redirects()
                .post(h.url("/login/start"))
                .header("Accept", "application/json")
                .form(&[("provider", "orcid")]),
        )
        .await;
    let authorize = started.header("location").expect("the provider");
    assert!(authorize.contains("scope=openid+%2Fauthenticate") && !authorize.contains("code_challenge"), "{authorize}");
    let (done, cookies) = log_in(&h, "OrcID", "josiah").await;
    assert_eq!(done.header("location").as_deref(), Some("/login/choice"), "{}", done.text);
    let listed = choice(&h, &cookies).await;
    assert_eq!(
        listed["create"],
        json!([{"id": id("OrcID", ORCID), "availablename": "user1", "provusername": ORCID,
                "provfullname": "Josiah Carberry", "provemail": "josiah@example.org"}])
    );
    assert_eq!(listed["provider"], json!("OrcID"));
    h.finish().await;
}

/// ORCID asks for an ID token and its `amr` says whether the person used a
/// second factor: the Login token's `mfa`, which a service admitting only
/// `Used` reads. `disable_mfa` asks for none; a missing or malformed ID
/// token when one was asked for fails the sign-in.
async fn orcid_tells_whether_a_second_factor_was_used(store: TestStore) {
    let h = harness(store).await;
    let started = h
        .send(
            no_redirects()
                .post(h.url("/login/start"))
                .header("Accept", "application/json")
                .form(&[("provider", "OrcID")]),
        )
        .await;
    let authorize = started.header("location").expect("the provider");
    assert!(authorize.contains("scope=openid+%2Fauthenticate"), "{authorize}");
    // The first sign-in creates the account; every later one logs straight in.
    let (done, cookies) = log_in(&h, "OrcID", "josiah-mfa").await;
    assert_eq!(done.header("location").as_deref(), Some("/login/choice"), "{}", done.text);
    let body = json!({"id": id("OrcID", ORCID), "user": "josiah", "display": "Josiah", "email": "j@example.org"});
    let created = h
        .send(
            no_redirects()
                .post(h.url("/login/create"))
                .header("Cookie", &cookies)
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let token = created.json()["token"]["token"].as_str().expect("a token").to_owned();
    assert_eq!(h.get("/api/V2/token", Some(&token)).await.json()["mfa"], json!("Used"));
    for (who, expected) in [("josiah-pwd", "NotUsed"), ("josiah-noamr", "Unknown"), ("josiah-mfa", "Used")] {
        let (done, cookies) = log_in(&h, "OrcID", who).await;
        assert_eq!(done.header("location").as_deref(), Some("/me"), "{who}: {}", done.text);
        let session = cookies.split("; ").find_map(|c| c.strip_prefix("kbase_session=")).expect("a session").to_owned();
        assert_eq!(h.get("/api/V2/token", Some(&session)).await.json()["mfa"], json!(expected), "{who}");
    }
    for who in ["josiah-broken", "josiah-noid"] {
        let (done, _) = log_in(&h, "OrcID", who).await;
        assert_eq!(done.status, 401, "{who}: {}", done.text);
        assert!(
            done.text.contains("10030 Identity retrieval failed") && done.text.contains("ID token"),
            "{}",
            done.text
        );
    }
    // Switched off: no ID token is asked for (nor needed).
    let started = h
        .send(
            no_redirects()
                .post(h.url("/login/start"))
                .header("Accept", "application/json")
                .form(&[("provider", "OrcIDPlain")]),
        )
        .await;
    let authorize = started.header("location").expect("the provider");
    assert!(authorize.contains("scope=%2Fauthenticate&"), "{authorize}");
    let (done, _) = log_in(&h, "OrcIDPlain", "josiah-noid").await;
    assert_eq!(done.header("location").as_deref(), Some("/login/choice"), "{}", done.text);
    h.finish().await;
}

on_both_stores_from_store!(
    orcid_tells_whether_a_second_factor_was_used,
    globus_brings_several_identities,
    a_pick_among_several_accounts,
    globus_failures_are_upstreams_words,
    orcid_signs_in_by_its_id
);
