//! A real OpenID Connect provider for the tests: node-oidc-provider on
//! loopback (`tests/oidc/provider.mjs`), driven over HTTP as a browser would.
//! Needs `node` and `npm ci --prefix tests/oidc` (`.ci/run` does it); without
//! them [`Peer::start`] says so loudly and answers `None`, unless
//! `AUTHLEDGER_REQUIRE_OIDC=1`, where that is a failure.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::no_redirects;

/// The client the peer knows authledger as.
pub const CLIENT_ID: &str = "authledger";
pub const CLIENT_SECRET: &str = "authledger-secret";

/// A running provider.
pub struct Peer {
    pub issuer: String,
    _process: Child,
}

impl Peer {
    /// A provider that sends its client back to `redirects`; `None` (after a
    /// loud message) when node or the peer's packages are missing and not required.
    pub async fn start(redirects: &[String]) -> Option<Self> {
        // The workspace's `tests/oidc`, from this crate or a member crate (`replay`).
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let folder = [here.join("tests/oidc"), here.join("../tests/oidc")]
            .into_iter()
            .find(|f| f.join("provider.mjs").exists())
            .unwrap_or_else(|| here.join("tests/oidc"));
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
        let mut command = Command::new("node");
        command.arg(folder.join("provider.mjs"));
        for redirect in redirects {
            command.args(["--redirect-uri", redirect]);
        }
        let mut process =
            command.stdout(Stdio::piped()).stderr(Stdio::null()).kill_on_drop(true).spawn().expect("node starts");
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

    /// Signs `account` in with `methods` (`amr`, comma-separated) in a fresh
    /// browser at `authorize`; where the provider sends the browser back
    /// (the client's redirect URI with `code`, `state` and `iss`).
    pub async fn log_in(&self, authorize: &str, account: &str, methods: &str) -> String {
        self.log_in_named(authorize, account, methods, None).await
    }

    /// [`Self::log_in`], the provider calling the person `name` from now on.
    pub async fn log_in_named(&self, authorize: &str, account: &str, methods: &str, name: Option<&str>) -> String {
        let mut browser = Browser::default();
        let interaction = location_of(browser.get(authorize).await);
        let mut form = vec![("login", account), ("amr", methods)];
        form.extend(name.map(|n| ("name", n)));
        let resume = location_of(browser.post(&format!("{}/login", self.url(&interaction)), &form).await);
        location_of(browser.get(&self.url(&resume)).await)
    }

    /// The person refuses at the provider: where it sends the browser back (`?error=access_denied`).
    pub async fn refuse(&self, authorize: &str) -> String {
        let mut browser = Browser::default();
        let interaction = location_of(browser.get(authorize).await);
        let resume = location_of(browser.get(&format!("{}/abort", self.url(&interaction))).await);
        location_of(browser.get(&self.url(&resume)).await)
    }

    /// Corrupts the signature of the next ID token the provider hands out.
    pub async fn tamper(&self) {
        let tamper = no_redirects().post(format!("{}/_test/tamper", self.issuer)).send().await.expect("an answer");
        assert_eq!(tamper.status(), 204);
    }

    fn url(&self, location: &str) -> String {
        if location.starts_with("http") { location.to_owned() } else { format!("{}{location}", self.issuer) }
    }
}

/// A client that keeps cookies (each flow its own: the provider's session
/// cookie would otherwise sign the next flow in silently).
#[derive(Default)]
pub struct Browser {
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

pub fn location_of(response: reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "{}", response.status());
    response.headers().get("location").and_then(|l| l.to_str().ok()).expect("a Location").to_owned()
}
