//! End to end in a real browser: Debian's `chromium`, headless, driven
//! through `chromedriver` (WebDriver, with fantoccini) against a real server
//! on loopback. Root logs in, creates an account and grants it a role; the
//! new user changes the temporary password, logs in, edits the profile,
//! becomes an administrator, creates and revokes a token, round-trips the
//! custom-role and configuration forms, disables another account, and finds
//! all of it in the audit timeline and the user's history. Every step saves a
//! screenshot under `target/ui-screenshots/`.
//!
//! Without chromium and chromedriver the test says so loudly and passes,
//! unless `AUTHLEDGER_REQUIRE_BROWSER=1` (CI sets it), where it fails.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::{Harness, ROOT, ROOT_PASSWORD, TestStore, USER_PASSWORD};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::json;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A headless chromium session, and the chromedriver it runs under.
struct Browser {
    client: Client,
    driver: Child,
    base: String,
    shots: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

impl Browser {
    /// `None` (after a loud message) when the browser is not installed and not required.
    async fn start(base: &str, label: &str) -> Option<Self> {
        if !Path::new(CHROMEDRIVER).exists() || !Path::new(CHROMIUM).exists() {
            assert!(
                std::env::var("AUTHLEDGER_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "AUTHLEDGER_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is missing (apt-get install chromium chromium-driver)"
            );
            eprintln!(
                "\n\n*** SKIPPED: the browser tests need {CHROMIUM} and {CHROMEDRIVER} \
                 (apt-get install chromium chromium-driver) ***\n"
            );
            return None;
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1100,900", "--no-first-run", "--password-store=basic"],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last_error = String::new();
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector).capabilities(capabilities.clone()).connect(&url).await {
                Ok(client) => {
                    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots").join(label);
                    std::fs::create_dir_all(&shots).expect("the screenshot folder");
                    return Some(Self { client, driver, base: base.to_owned(), shots });
                }
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no WebDriver session: {last_error}");
    }

    async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base)).await.expect("the page opens");
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("cleared");
        field.send_keys(text).await.expect("typed");
    }

    /// Clicks, without waiting for anything (a checkbox).
    async fn tick(&self, css: &str) {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.click().await.unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clicks a button that submits a form, and waits for the next page.
    async fn click(&self, css: &str) {
        let page = self.client.find(Locator::Css("body")).await.expect("a page");
        self.tick(css).await;
        for _ in 0..200 {
            // The old page's body goes stale once the browser has moved on.
            if page.text().await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("clicking {css} led nowhere: {}", self.source().await);
    }

    async fn text(&self, css: &str) -> String {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.text().await.expect("its text")
    }

    async fn is_checked(&self, css: &str) -> bool {
        let element = self.client.find(Locator::Css(css)).await.unwrap_or_else(|e| panic!("{css}: {e}"));
        element.is_selected().await.expect("its state")
    }

    async fn source(&self) -> String {
        self.client.source().await.expect("the page source")
    }

    async fn path(&self) -> String {
        let url = self.client.current_url().await.expect("the URL");
        match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        }
    }

    /// Saves `target/ui-screenshots/<name>.png`.
    async fn shot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("the screenshot is saved");
    }

    async fn log_in(&self, user: &str, password: &str) {
        self.open("/localaccount/login").await;
        self.fill("#login-form input[name=user]", user).await;
        self.fill("#login-form input[name=pwd]", password).await;
        self.click("#login-form button[type=submit]").await;
    }

    async fn log_out(&self) {
        self.open("/logout").await;
        self.click("#logout-form button").await;
        assert!(self.text("#bye").await.starts_with("Bye"), "{}", self.source().await);
    }

    /// At the provider's sign-in page (if it asks), signs in as `who`.
    async fn log_in_at_provider(&self, who: &str) {
        if self.client.current_url().await.expect("the URL").path().starts_with("/interaction/") {
            self.fill("input[name=login]", who).await;
            self.click("form button[type=submit]").await;
        }
    }

    async fn finish(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

async fn a_person_does_in_a_browser_what_the_api_allows(h: Harness, label: &str) -> Harness {
    let Some(browser) = Browser::start(&h.base, label).await else {
        return h;
    };
    let b = &browser;
    // Root logs in and lands on its profile.
    h.root_token().await;
    b.log_in(ROOT, ROOT_PASSWORD).await;
    assert_eq!(b.path().await, "/me");
    assert_eq!(b.text("#signed-in-user").await, ROOT);
    b.shot("01-root-profile").await;

    // Root creates alice; her temporary password is shown once.
    b.open("/admin/localaccount").await;
    b.fill("#create-account-form input[name=user]", "alice").await;
    b.fill("#create-account-form input[name=display]", "Alice").await;
    b.fill("#create-account-form input[name=email]", "alice@example.org").await;
    b.click("#create-account-form button").await;
    let temporary = b.text("#temporary-password").await;
    assert!(temporary.len() >= 8, "{temporary}");
    b.shot("02-temporary-password").await;

    // Root grants her CreateAdmin (the only role root grants).
    b.open("/admin/user/alice").await;
    b.tick("#roles-form input[name=CreateAdmin]").await;
    b.click("#roles-form button").await;
    assert_eq!(b.path().await, "/admin/user/alice", "post/redirect/get");
    assert!(b.is_checked("#roles-form input[name=CreateAdmin]").await);
    b.log_out().await;

    // Alice must change the temporary password first, then logs in.
    b.log_in("alice", &temporary).await;
    assert_eq!(b.path().await, "/localaccount/reset?user=alice");
    b.fill("#reset-form input[name=pwdold]", &temporary).await;
    b.fill("#reset-form input[name=pwdnew]", USER_PASSWORD).await;
    b.click("#reset-form button").await;
    assert_eq!(b.path().await, "/localaccount/login");
    b.log_in("alice", USER_PASSWORD).await;
    assert_eq!(b.path().await, "/me");

    // She edits her profile.
    b.fill("#profile-form input[name=display]", "Alice Liddell").await;
    b.fill("#profile-form input[name=email]", "alice@wonderland.example").await;
    b.click("#profile-form button").await;
    assert_eq!(b.path().await, "/me");
    assert_eq!(b.text("#display").await, "Alice Liddell");
    assert_eq!(b.text("#email").await, "alice@wonderland.example");
    b.shot("03-profile").await;

    // As CreateAdmin she makes herself Admin, then as Admin a developer.
    for role in ["Admin", "DevToken"] {
        b.open("/admin/user/alice").await;
        b.tick(&format!("#roles-form input[name={role}]")).await;
        b.click("#roles-form button").await;
        assert!(b.is_checked(&format!("#roles-form input[name={role}]")).await, "{role}: {}", b.source().await);
    }

    // A token: created, shown once, listed, revoked.
    b.open("/tokens").await;
    b.fill("#create-token-form input[name=name]", "laptop").await;
    b.fill("#create-token-form input[name=customcontext]", "host, wonderland").await;
    b.click("#create-token-form button").await;
    let token = b.text("#new-token").await;
    assert_eq!(token.len(), 32, "{token}");
    b.shot("04-token-created").await;
    assert_eq!(h.get("/api/V2/token", Some(&token)).await.json()["name"], "laptop");
    b.open("/tokens").await;
    assert!(b.text("#tokens").await.contains("laptop"));
    assert!(b.text("#tokens").await.contains("host=wonderland"));
    b.click("#tokens tr:first-child form button").await;
    assert_eq!(b.path().await, "/tokens");
    assert!(!b.source().await.contains("laptop"), "revoked");
    assert_eq!(h.get("/api/V2/token", Some(&token)).await.status, 401);
    b.shot("05-tokens").await;

    // The custom-role and configuration forms round-trip.
    b.open("/admin/customroles").await;
    b.fill("#custom-role-form input[name=id]", "ops").await;
    b.fill("#custom-role-form textarea[name=desc]", "Operators <on call>").await;
    b.click("#custom-role-form button").await;
    assert!(b.text("#custom-roles").await.contains("Operators <on call>"));
    b.open("/admin/config").await;
    b.tick("#basic-config-form input[name=ignoreip]").await;
    b.click("#basic-config-form button").await;
    assert!(b.is_checked("#basic-config-form input[name=ignoreip]").await);
    b.fill("#token-config-form input[name=tokendev]", "30").await;
    b.click("#token-config-form button").await;
    assert_eq!(b.path().await, "/admin/config");
    let value = b.client.find(Locator::Css("#token-config-form input[name=tokendev]")).await.expect("the field");
    assert_eq!(value.prop("value").await.expect("its value").as_deref(), Some("30"));
    b.shot("06-config").await;

    // She creates bob and disables him, with a reason.
    b.open("/admin/localaccount").await;
    b.fill("#create-account-form input[name=user]", "bob").await;
    b.fill("#create-account-form input[name=display]", "Bob").await;
    b.fill("#create-account-form input[name=email]", "bob@example.org").await;
    b.click("#create-account-form button").await;
    b.open("/admin/user/bob").await;
    b.tick("#disable-form input[name=disable]").await;
    b.fill("#disable-form textarea[name=disabledreason]", "left the project").await;
    b.click("#disable-form button").await;
    assert_eq!(b.text("#disabled-reason").await, "left the project");
    b.shot("07-disabled-user").await;

    // The timeline shows who did what; the history shows her activity.
    b.open("/admin/audit").await;
    let timeline = b.text("#events").await;
    for expected in ["RolesGranted", "TokenIssued", "TokenRevoked", "UserDisabled", "CustomRoleSet"] {
        assert!(timeline.contains(expected), "{expected} not in {timeline}");
    }
    b.fill("#audit-filters input[name=type]", "UserDisabled").await;
    b.click("#audit-filters button").await;
    let filtered = b.text("#events").await;
    assert!(filtered.contains("left the project") && !filtered.contains("TokenIssued"), "{filtered}");
    b.shot("08-audit-timeline").await;
    b.open("/admin/user/alice/history").await;
    assert!(b.source().await.contains("class=\"grants\""), "the chart has her token grant");
    b.shot("09-user-history").await;

    // The profile on a phone-sized screen.
    b.client.set_window_size(390, 844).await.expect("resized");
    b.open("/me").await;
    b.shot("10-profile-phone").await;

    browser.finish().await;
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    let h = Harness::start(TestStore::sqlite()).await;
    a_person_does_in_a_browser_what_the_api_allows(h, "sqlite").await.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    let Some(store) = TestStore::postgres().await else {
        return;
    };
    let h = Harness::start(store).await;
    a_person_does_in_a_browser_what_the_api_allows(h, "postgres").await.finish().await;
}

/// Signing in through a real provider in a real browser: the provider's
/// button, its sign-in, the choice page's account creation, the profile with
/// the linked identity; then out, and straight back in.
async fn a_person_signs_up_and_in_through_a_provider(store: TestStore, label: &str) {
    let Some((h, _peer)) = Harness::with_provider(store).await else {
        return;
    };
    let (_, admin) = h.administrators().await;
    let enabled = h.post("/admin/config/provider", Some(&admin), json!({"provider": "OIDC", "enabled": true})).await;
    assert_eq!(enabled.status, 204, "{}", enabled.text);
    let Some(b) = Browser::start(&h.base, &format!("{label}-provider")).await else {
        h.finish().await;
        return;
    };
    b.open("/login").await;
    b.shot("01-login").await;
    b.click("#provider-login-form button[type=submit]").await;
    b.log_in_at_provider("walter").await;
    assert_eq!(b.path().await, "/login/choice", "{}", b.source().await);
    b.shot("02-choice").await;
    assert_eq!(
        b.client
            .find(Locator::Css(".create-form input[name=user]"))
            .await
            .expect("the form")
            .prop("value")
            .await
            .ok()
            .flatten()
            .as_deref(),
        Some("walter")
    );
    b.click(".create-form button[type=submit]").await;
    assert_eq!(b.path().await, "/me", "{}", b.source().await);
    assert!(b.text("#identities").await.contains("OIDC: walter"), "{}", b.source().await);
    b.shot("03-profile").await;
    b.log_out().await;
    b.open("/login").await;
    b.click("#provider-login-form button[type=submit]").await;
    b.log_in_at_provider("walter").await;
    assert_eq!(b.path().await, "/me", "straight in: {}", b.source().await);
    assert!(b.text("#facts").await.contains("walter"), "{}", b.source().await);
    b.finish().await;
    h.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_sqlite() {
    a_person_signs_up_and_in_through_a_provider(TestStore::sqlite(), "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_postgres() {
    if let Some(store) = TestStore::postgres().await {
        a_person_signs_up_and_in_through_a_provider(store, "postgres").await;
    }
}
