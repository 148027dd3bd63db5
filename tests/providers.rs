//! The provider client (`app::providers`) against a real OpenID Connect
//! provider: node-oidc-provider on loopback (`tests/oidc/provider.mjs`),
//! driven over HTTP as a browser would. Discovery, PKCE, the code exchange
//! and every ID-token check run for real: a tampered signature, a wrong
//! nonce, a reused code and a wrong PKCE verifier are refused.
//!
//! Needs `node` and `npm ci` in `tests/oidc` (`.ci/run` does it); without
//! them the tests say so loudly and pass, unless `AUTHLEDGER_REQUIRE_OIDC=1`.

use crate::common;

use authledger::app::providers::{Provider, ProviderError, ProviderKind, ProviderSettings};
use authledger::domain::token::Mfa;
use common::no_redirects;
use common::oidc::{CLIENT_ID, CLIENT_SECRET, Peer};

const REDIRECT: &str = "http://127.0.0.1:9/login/complete/OIDC";

fn provider(peer: &Peer) -> Provider {
    let settings = ProviderSettings {
        name: "OIDC".into(),
        kind: ProviderKind::Oidc { issuer: peer.issuer.clone() },
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        scopes: vec!["email".into(), "profile".into()],
        extra_params: Vec::new(),
    };
    Provider::new(settings, no_redirects())
}

/// Signs `account` in at `authorize`; the redirect's `code` and `state`.
async fn log_in(peer: &Peer, authorize: &str, account: &str, methods: &str) -> (String, String) {
    let back = peer.log_in(authorize, account, methods).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let url = url::Url::parse(&back).expect("the redirect");
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    (param("code").expect("a code"), param("state").expect("the state"))
}

/// The one identity an OpenID Connect sign-in answers.
fn one(
    answer: Result<Vec<authledger::app::providers::ProviderIdentity>, ProviderError>,
) -> authledger::app::providers::ProviderIdentity {
    let mut identities = answer.expect("signed in");
    assert_eq!(identities.len(), 1, "one identity");
    identities.remove(0)
}

async fn start() -> Option<Peer> {
    Peer::start(&[REDIRECT.to_owned()]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_provider_signs_a_person_in() {
    let Some(peer) = start().await else {
        return;
    };
    let provider = provider(&peer);
    let started = provider.authorize("STATE-1", REDIRECT).await.expect("an authorization request");
    let query: Vec<(String, String)> = started.url.query_pairs().into_owned().collect();
    let has = |k: &str, v: &str| query.iter().any(|(key, value)| key == k && value == v);
    assert!(has("code_challenge_method", "S256") && has("state", "STATE-1") && has("client_id", "authledger"));
    let (code, state) = log_in(&peer, started.url.as_str(), "alice", "pwd,otp").await;
    assert_eq!(state, "STATE-1");
    let identity = one(provider.complete(&code, &started.pkce_verifier, &started.nonce, REDIRECT).await);
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
    let (code, _) = log_in(&peer, started.url.as_str(), "unverified-bob", "pwd").await;
    let bob = one(provider.complete(&code, &started.pkce_verifier, &started.nonce, REDIRECT).await);
    assert_eq!((bob.mfa, bob.email_verified), (Mfa::NotUsed, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_or_mismatched_answers_are_refused() {
    let Some(peer) = start().await else {
        return;
    };
    let provider = provider(&peer);
    // A wrong PKCE verifier: the provider refuses the code.
    let started = provider.authorize("S", REDIRECT).await.expect("an authorization request");
    let (code, _) = log_in(&peer, started.url.as_str(), "carol", "pwd").await;
    let wrong_verifier = "x".repeat(64);
    let refused = provider.complete(&code, &wrong_verifier, &started.nonce, REDIRECT).await;
    assert!(matches!(refused, Err(ProviderError::Exchange(_))), "{refused:?}");
    // A nonce that is not the request's: the ID token is refused.
    let started = provider.authorize("S", REDIRECT).await.expect("an authorization request");
    let (code, _) = log_in(&peer, started.url.as_str(), "carol", "pwd").await;
    let refused = provider.complete(&code, &started.pkce_verifier, "another-nonce", REDIRECT).await;
    assert!(matches!(refused, Err(ProviderError::IdToken(_))), "{refused:?}");
    // A signature that does not verify (the provider corrupts its next ID token).
    let started = provider.authorize("S", REDIRECT).await.expect("an authorization request");
    let (code, _) = log_in(&peer, started.url.as_str(), "carol", "pwd").await;
    peer.tamper().await;
    let refused = provider.complete(&code, &started.pkce_verifier, &started.nonce, REDIRECT).await;
    assert!(matches!(refused, Err(ProviderError::IdToken(_))), "{refused:?}");
    // An issuer that is not a provider: discovery fails cleanly.
    let nowhere = Provider::new(
        ProviderSettings {
            name: "Nowhere".into(),
            kind: ProviderKind::Oidc { issuer: "http://127.0.0.1:9".into() },
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
