//! The provider client (`app::providers`) against a real OpenID Connect
//! provider: node-oidc-provider on loopback (`tests/oidc/provider.mjs`),
//! driven over HTTP as a browser would. Discovery, PKCE, the code exchange
//! and every ID-token check run for real: a tampered signature, a wrong
//! nonce, a reused code and a wrong PKCE verifier are refused.
//!
//! Needs `node` and `npm ci` in `tests/oidc` (`.ci/run` does it); without
//! them the tests say so loudly and pass, unless `AUTHLEDGER_REQUIRE_OIDC=1`.

use crate::common;

use std::path::PathBuf;
use std::process::Stdio;

use authledger::app::providers::{Provider, ProviderError, ProviderSettings};
use authledger::domain::token::Mfa;
use common::no_redirects;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const REDIRECT: &str = "http://127.0.0.1:9/login/complete/OIDC";

/// A running provider.
struct Peer {
    issuer: String,
    _process: Child,
}

impl Peer {
    /// `None` (after a loud message) when node or the peer's packages are missing and not required.
    async fn start() -> Option<Self> {
        let folder = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
        let ready = folder.join("node_modules/oidc-provider").exists()
            && std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
        if !ready {
            assert!(
                std::env::var("AUTHLEDGER_REQUIRE_OIDC").as_deref() != Ok("1"),
                "AUTHLEDGER_REQUIRE_OIDC=1 but node or tests/oidc/node_modules is missing (npm ci --prefix tests/oidc)"
            );
            eprintln!("\n\n*** SKIPPED: the provider tests need node and `npm ci --prefix tests/oidc` ***\n");
            return None;
        }
        let mut process = Command::new("node")
            .arg(folder.join("provider.mjs"))
            .args(["--redirect-uri", REDIRECT])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let stdout = process.stdout.take().expect("its output");
        let mut lines = BufReader::new(stdout);
        let mut line = String::new();
        lines.read_line(&mut line).await.expect("the issuer line");
        // Keep reading what it prints: a closed pipe would end it.
        tokio::spawn(async move { while lines.read_line(&mut String::new()).await.is_ok_and(|n| n > 0) {} });
        let ready: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let issuer = ready["issuer"].as_str().expect("an issuer").to_owned();
        Some(Self { issuer, _process: process })
    }

    fn provider(&self) -> Provider {
        let settings = ProviderSettings {
            name: "OIDC".into(),
            issuer: self.issuer.clone(),
            client_id: "authledger".into(),
            client_secret: "authledger-secret".into(),
            scopes: vec!["email".into(), "profile".into()],
            extra_params: Vec::new(),
        };
        Provider::new(settings, no_redirects())
    }

    /// Signs `account` in with `methods` in a fresh browser (its own cookies)
    /// at `authorize`; the redirect's `code` and `state`.
    async fn sign_in(&self, authorize: &str, account: &str, methods: &str) -> (String, String) {
        let mut browser = Browser::default();
        let interaction = location_of(browser.get(authorize).await);
        let form = [("login", account), ("amr", methods)];
        let resume = location_of(browser.post(&format!("{}/login", self.url(&interaction)), &form).await);
        let back = location_of(browser.get(&self.url(&resume)).await);
        assert!(back.starts_with(REDIRECT), "{back}");
        let url = url::Url::parse(&back).expect("the redirect");
        let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
        (param("code").expect("a code"), param("state").expect("the state"))
    }

    fn url(&self, location: &str) -> String {
        if location.starts_with("http") { location.to_owned() } else { format!("{}{location}", self.issuer) }
    }
}

/// A client that keeps cookies (each flow its own: the provider's session
/// cookie would otherwise sign the next flow in silently).
#[derive(Default)]
struct Browser {
    cookies: Vec<(String, String)>,
}

impl Browser {
    fn keep(&mut self, response: &reqwest::Response) {
        for cookie in response.headers().get_all("set-cookie") {
            let Some((name, value)) = cookie.to_str().ok().and_then(|c| c.split(';').next()?.split_once('=')) else {
                continue;
            };
            self.cookies.retain(|(n, _)| n != name);
            self.cookies.push((name.to_owned(), value.to_owned()));
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = no_redirects().get(url).header("Cookie", self.cookie_header()).send().await.expect("an answer");
        self.keep(&response);
        response
    }

    async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let response =
            no_redirects().post(url).header("Cookie", self.cookie_header()).form(form).send().await.expect("an answer");
        self.keep(&response);
        response
    }
}

fn location_of(response: reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "{}", response.status());
    response.headers().get("location").and_then(|l| l.to_str().ok()).expect("a Location").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_provider_signs_a_person_in() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let provider = peer.provider();
    let started = provider.authorize("STATE-1", REDIRECT).await.expect("an authorization request");
    let query: Vec<(String, String)> = started.url.query_pairs().into_owned().collect();
    let has = |k: &str, v: &str| query.iter().any(|(key, value)| key == k && value == v);
    assert!(has("code_challenge_method", "S256") && has("state", "STATE-1") && has("client_id", "authledger"));
    let (code, state) = peer.sign_in(started.url.as_str(), "alice", "pwd,otp").await;
    assert_eq!(state, "STATE-1");
    let identity = provider.complete(&code, &started.pkce_verifier, &started.nonce, REDIRECT).await.expect("signed in");
    assert_eq!(identity.provider, "OIDC");
    assert_eq!(identity.id, "alice");
    assert_eq!(identity.username, "alice");
    assert_eq!(identity.email.as_deref(), Some("alice@example.org"));
    assert!(identity.email_verified);
    assert_eq!(identity.full_name.as_deref(), Some("User alice"));
    assert_eq!(identity.mfa, Mfa::Used, "a one-time code was used");
    // A code is good once.
    let again = provider.complete(&code, &started.pkce_verifier, &started.nonce, REDIRECT).await;
    assert!(matches!(again, Err(ProviderError::Exchange(_))), "{again:?}");
    // One factor, an email the provider does not vouch for.
    let started = provider.authorize("STATE-2", REDIRECT).await.expect("an authorization request");
    let (code, _) = peer.sign_in(started.url.as_str(), "unverified-bob", "pwd").await;
    let bob = provider.complete(&code, &started.pkce_verifier, &started.nonce, REDIRECT).await.expect("signed in");
    assert_eq!((bob.mfa, bob.email_verified), (Mfa::NotUsed, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_mismatched_answers_are_refused() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let provider = peer.provider();
    // A wrong PKCE verifier: the provider refuses the code.
    let started = provider.authorize("S", REDIRECT).await.expect("an authorization request");
    let (code, _) = peer.sign_in(started.url.as_str(), "carol", "pwd").await;
    let wrong_verifier = "x".repeat(64);
    let refused = provider.complete(&code, &wrong_verifier, &started.nonce, REDIRECT).await;
    assert!(matches!(refused, Err(ProviderError::Exchange(_))), "{refused:?}");
    // A nonce that is not the request's: the ID token is refused.
    let started = provider.authorize("S", REDIRECT).await.expect("an authorization request");
    let (code, _) = peer.sign_in(started.url.as_str(), "carol", "pwd").await;
    let refused = provider.complete(&code, &started.pkce_verifier, "another-nonce", REDIRECT).await;
    assert!(matches!(refused, Err(ProviderError::IdToken(_))), "{refused:?}");
    // A signature that does not verify (the provider corrupts its next ID token).
    let started = provider.authorize("S", REDIRECT).await.expect("an authorization request");
    let (code, _) = peer.sign_in(started.url.as_str(), "carol", "pwd").await;
    let tamper = no_redirects().post(format!("{}/_test/tamper", peer.issuer)).send().await.expect("an answer");
    assert_eq!(tamper.status(), 204);
    let refused = provider.complete(&code, &started.pkce_verifier, &started.nonce, REDIRECT).await;
    assert!(matches!(refused, Err(ProviderError::IdToken(_))), "{refused:?}");
    // An issuer that is not a provider: discovery fails cleanly.
    let nowhere = Provider::new(
        ProviderSettings {
            name: "Nowhere".into(),
            issuer: "http://127.0.0.1:9".into(),
            client_id: "x".into(),
            client_secret: "y".into(),
            scopes: Vec::new(),
            extra_params: Vec::new(),
        },
        no_redirects(),
    );
    let failed = nowhere.authorize("S", REDIRECT).await;
    assert!(matches!(failed, Err(ProviderError::Discovery(_))), "{failed:?}");
}
