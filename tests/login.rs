//! Signing in through identity providers (upstream `Login`): so far the name
//! suggestion a new account's form starts from.

use crate::common;

use common::Harness;
use serde_json::json;

async fn a_suggested_name_is_free_among_every_account(h: Harness) -> Harness {
    let (_, admin) = h.administrators().await;
    h.user_with_password(&admin, "jdoe").await;
    h.user_with_password(&admin, "jdoe2").await;
    let disabled = h.post("/admin/user/jdoe2/disable", Some(&admin), json!({"disable": true, "disabledreason": "x"}));
    assert_eq!(disabled.await.status, 204);
    let suggest = |name: &str| {
        let path = format!("/login/suggestname/{name}");
        let h = &h;
        async move { h.get(&path, None).await }
    };
    assert_eq!(suggest("J.%20Doe").await.json(), json!({"availablename": "jdoe3"}), "disabled accounts count");
    assert_eq!(suggest("Mary-Ann").await.json(), json!({"availablename": "maryann"}));
    let invited = h.post("/api/V2/admin/invites", Some(&admin), json!({"user": "maryann"})).await;
    assert_eq!(invited.status, 200, "{}", invited.text);
    assert_eq!(suggest("Mary-Ann").await.json(), json!({"availablename": "maryann2"}), "a pending invitation's name");
    assert_eq!(suggest("42").await.json(), json!({"availablename": "user1"}));
    let long = "x".repeat(300);
    assert_eq!(suggest(&long).await.json()["availablename"], json!("x".repeat(100)));
    h
}
on_both_stores!(a_suggested_name_is_free_among_every_account);

fn with_providers(options: &mut authledger::server::ServerOptions) {
    let provider = |name: &str| authledger::app::providers::ProviderSettings {
        name: name.into(),
        kind: authledger::app::providers::ProviderKind::Oidc { issuer: "http://127.0.0.1:9".into() },
        client_id: "authledger".into(),
        client_secret: "secret".into(),
        scopes: Vec::new(),
        extra_params: Vec::new(),
    };
    options.providers = vec![provider("Corp"), provider("Google")];
    options.environments.public_urls.insert("ci".into(), Some("https://ci.example.org".into()));
}

async fn an_administrator_switches_providers_on_and_off(store: common::TestStore) {
    let clock: std::sync::Arc<dyn authledger::clock::Clock> = std::sync::Arc::new(authledger::clock::SystemClock);
    let h = Harness::start_with(store, clock, with_providers).await;
    let (_, admin) = h.administrators().await;
    let off = json!({"enabled": false, "forceloginchoice": false, "forcelinkchoice": false});
    let config = h.get("/admin/config", Some(&admin)).await.json();
    assert_eq!(config["providers"], json!({"Corp": off, "Google": off}), "configured providers start off");
    let set = |body: serde_json::Value| h.post("/admin/config/provider", Some(&admin), body);
    assert_eq!(set(json!({"provider": "Corp", "enabled": true, "forcelinkchoice": true})).await.status, 204);
    let on = json!({"enabled": true, "forceloginchoice": false, "forcelinkchoice": true});
    assert_eq!(h.get("/admin/config", Some(&admin)).await.json()["providers"]["Corp"], on);
    set(json!({"provider": "corp", "enabled": true})).await.assert_error(401, "50020 No such identity provider: corp");
    set(json!({"provider": " ", "enabled": true})).await.assert_error(400, "30000 Missing input parameter: provider");
    h.user_with_password(&admin, "pat").await;
    let pat = h.login("pat", common::USER_PASSWORD).await;
    let refused = h.post("/admin/config/provider", Some(&pat), json!({"provider": "Corp"})).await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    // The page's form: a box is on when present; the browser comes back to the page.
    let cookie = h.session_cookie("admin").await;
    let form = h.form("/admin/config/provider", &cookie, &[("provider", "Google"), ("forceloginchoice", "on")]).await;
    assert_eq!(form.header("location").as_deref(), Some("/admin/config"), "{}", form.text);
    let page = h.page("/admin/config", Some(&cookie)).await;
    assert!(page.text.contains("id=\"provider-Google\""), "{}", page.text);
    assert!(page.text.contains("name=\"forceloginchoice\" checked"), "{}", page.text);
    // In the log, and still so after a restart; a reset switches them off.
    let audit = h.get("/api/V2/admin/audit?type=ServerConfigUpdated", Some(&admin)).await.json();
    let described: Vec<String> = audit["events"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["description"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    assert!(described.iter().any(|d| d.contains("provider Corp: enabled=true")), "{described:?}");
    let h = h.restart_with(with_providers).await;
    assert_eq!(h.get("/admin/config", Some(&admin)).await.json()["providers"]["Corp"], on);
    assert_eq!(h.post("/admin/config/reset", Some(&admin), json!({})).await.status, 204);
    let config = h.get("/admin/config", Some(&admin)).await.json();
    assert_eq!(config["providers"], json!({"Corp": off, "Google": off}), "{config}");
    // An environment's redirect URLs: the environment is checked before the caller.
    let none = json!({"allowedloginredirect": null, "completeloginredirect": null, "postlinkredirect": null,
                      "completelinkredirect": null});
    assert_eq!(config["environments"], json!({"ci": none}), "{config}");
    let set = |token: Option<String>, body: serde_json::Value| {
        let h = &h;
        async move { h.post("/admin/config/environment", token.as_deref(), body).await }
    };
    set(None, json!({"environment": "prod"})).await.assert_error(400, "50040 No such environment: prod");
    set(None, json!({"environment": ""})).await.assert_error(400, "30000 Missing input parameter: environment");
    let bad = json!({"environment": "ci", "postlinkredirect": "nope"});
    set(Some(admin.clone()), bad).await.assert_error(400, "30001 Illegal input parameter: Illegal URL: nope");
    set(None, json!({"environment": "ci"}))
        .await
        .assert_error(400, "10010 No authentication token: No user token provided");
    let urls = json!({"environment": "ci", "postlinkredirect": "https://ci.example.org/linked",
                      "completeloginredirect": "https://ci.example.org/done"});
    assert_eq!(set(Some(admin.clone()), urls).await.status, 204);
    let ci = &h.get("/admin/config", Some(&admin)).await.json()["environments"]["ci"];
    assert_eq!(
        (ci["postlinkredirect"].clone(), ci["allowedloginredirect"].clone()),
        (json!("https://ci.example.org/linked"), json!(null))
    );
    // The page's form replaces the whole set: a field left blank is removed.
    let form = h.form("/admin/config/environment", &cookie, &[("environment", "ci"), ("postlinkredirect", "")]).await;
    assert_eq!(form.header("location").as_deref(), Some("/admin/config"), "{}", form.text);
    assert_eq!(h.get("/admin/config", Some(&admin)).await.json()["environments"]["ci"], none);
    assert!(h.page("/admin/config", Some(&cookie)).await.text.contains("id=\"environment-ci\""));
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_switches_providers_on_and_off_sqlite() {
    an_administrator_switches_providers_on_and_off(common::TestStore::sqlite()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_administrator_switches_providers_on_and_off_postgres() {
    if let Some(store) = common::TestStore::postgres().await {
        an_administrator_switches_providers_on_and_off(store).await;
    }
}
