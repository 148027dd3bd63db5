//! Identity providers. Any OpenID Connect provider (Google among them): the
//! provider's metadata and keys by discovery (fetched when first needed,
//! kept, and fetched again — at most once a minute — when a token is signed
//! with a key it does not list), the authorization request (PKCE S256, a
//! nonce, the caller's state), the code exchange, and the ID token's checks:
//! the signature against the provider's keys (never HS256, which anyone with
//! the client secret could forge), issuer, audience, expiry and nonce. And the
//! two plain OAuth2 providers KBase users sign in with: [`globus`] (several
//! identities per login) and [`orcid`]. What a provider says of a person is
//! a [`ProviderIdentity`].

mod globus;
mod oauth;
mod orcid;

use std::borrow::Cow;
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreIdTokenClaims, CoreJwsSigningAlgorithm, CoreProviderMetadata,
};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet, EndpointNotSet,
    EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, SignatureVerificationError,
    TokenResponse,
};
use tokio::sync::Mutex;
use url::Url;

use crate::domain::token::Mfa;

/// A discovered client: authorization endpoint set, token and userinfo endpoints as the metadata says.
type Oidc = CoreClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointMaybeSet, EndpointMaybeSet>;

/// The algorithms an ID token may be signed with (asymmetric only).
const ALLOWED_ALGORITHMS: [CoreJwsSigningAlgorithm; 6] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
    CoreJwsSigningAlgorithm::EdDsa,
];

/// Rediscovery for an unknown signing key happens at most this often.
const REDISCOVERY_INTERVAL: Duration = Duration::from_secs(60);

/// Discovered metadata and keys are used for at most this long (a key the
/// provider withdrew stops verifying within the hour).
const METADATA_MAX_AGE: Duration = Duration::from_secs(3600);

/// Methods (`amr`) that are a second factor by themselves (RFC 8176).
const SECOND_FACTORS: [&str; 7] = ["mfa", "otp", "hwk", "sms", "fpt", "face", "sc"];

/// The endpoints of a plain OAuth2 provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Where the browser is sent to sign in.
    pub authorize_url: String,
    /// Where the code is exchanged.
    pub token_url: String,
    /// The base URL of the provider's API (Globus: introspection and identities; ORCID: records).
    pub api_url: String,
}

/// What kind of provider, and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProviderKind {
    /// Any OpenID Connect provider, by discovery from its issuer (Google too).
    Oidc { issuer: String },
    /// Globus; `secondary_identities`: also the identities linked to the
    /// person's at Globus (upstream's custom key `ignore-secondary-identities`
    /// turns them off).
    Globus { endpoints: Endpoints, secondary_identities: bool },
    /// ORCID; `mfa`: ask for an OpenID Connect ID token too (scope `openid`)
    /// and read from its `amr` whether the person used a second factor
    /// (auth2's develop line; `disable_mfa` turns it off).
    Orcid { endpoints: Endpoints, mfa: bool },
}

impl Endpoints {
    /// Globus' public endpoints.
    pub fn globus() -> Self {
        Self {
            authorize_url: "https://auth.globus.org/v2/oauth2/authorize".into(),
            token_url: "https://auth.globus.org/v2/oauth2/token".into(),
            api_url: "https://auth.globus.org".into(),
        }
    }

    /// ORCID's public endpoints.
    pub fn orcid() -> Self {
        Self {
            authorize_url: "https://orcid.org/oauth/authorize".into(),
            token_url: "https://orcid.org/oauth/token".into(),
            api_url: "https://pub.orcid.org".into(),
        }
    }
}

/// How to reach one provider, from the configuration. Its `Debug` never
/// shows the client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderSettings {
    /// The provider's name in every URL and answer (the configuration table's name).
    pub name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    pub client_secret: String,
    /// Scopes (OpenID Connect: besides `openid`; empty: the preset's).
    pub scopes: Vec<String>,
    /// Extra authorization parameters (Google: `prompt=select_account`).
    pub extra_params: Vec<(String, String)>,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field("client_secret", &"(hidden)")
            .field("scopes", &self.scopes)
            .field("extra_params", &self.extra_params)
            .finish()
    }
}

/// What a provider said of the person who signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdentity {
    pub provider: String,
    /// The provider's stable id for the person (`sub`).
    pub id: String,
    /// The person's name at the provider (`preferred_username`, else the email, else the id).
    pub username: String,
    pub email: Option<String>,
    /// Whether the provider vouches for the email.
    pub email_verified: bool,
    pub full_name: Option<String>,
    /// Whether the provider says a second factor was used (`amr`).
    pub mfa: Mfa,
}

/// Why a provider login failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider's configuration cannot be read: {0}")]
    Discovery(String),
    #[error("the provider refused the authorization code: {0}")]
    Exchange(String),
    #[error("the provider's ID token is not valid: {0}")]
    IdToken(String),
    #[error("bad provider setting: {0}")]
    Settings(String),
    /// A plain OAuth2 provider's failure, worded as upstream words it.
    #[error("{0}")]
    Retrieval(String),
}

/// An authorization request: where to send the browser, and the secrets the
/// completion needs (kept server-side, never in the browser; never shown by
/// `Debug`).
#[derive(Clone)]
pub struct Authorization {
    pub url: Url,
    pub pkce_verifier: String,
    pub nonce: String,
}

impl std::fmt::Debug for Authorization {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorization").field("url", &self.url.as_str()).finish_non_exhaustive()
    }
}

/// One configured provider and its discovered client.
pub struct Provider {
    settings: ProviderSettings,
    http: reqwest::Client,
    /// The discovered client and when it was discovered.
    client: Mutex<Option<(Oidc, Instant)>>,
}

impl Provider {
    /// `http` must not follow redirects (the OAuth2 endpoints answer directly).
    pub fn new(settings: ProviderSettings, http: reqwest::Client) -> Self {
        Self { settings, http, client: Mutex::new(None) }
    }

    /// The provider's name (its configuration table's).
    pub fn name(&self) -> &str {
        &self.settings.name
    }

    /// The client, discovered now if never before or if `refresh` and the
    /// last discovery is older than the rediscovery interval.
    async fn client(&self, refresh: bool) -> Result<Oidc, ProviderError> {
        let ProviderKind::Oidc { issuer } = &self.settings.kind else {
            return Err(ProviderError::Settings("not an OpenID Connect provider".into()));
        };
        let mut cached = self.client.lock().await;
        if let Some((client, at)) = cached.as_ref()
            && at.elapsed() < METADATA_MAX_AGE
            && (!refresh || at.elapsed() < REDISCOVERY_INTERVAL)
        {
            return Ok(client.clone());
        }
        let issuer = IssuerUrl::new(issuer.clone()).map_err(|e| ProviderError::Settings(format!("issuer: {e}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| ProviderError::Discovery(error_chain(&e)))?;
        let client = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.settings.client_secret.clone())),
        );
        *cached = Some((client.clone(), Instant::now()));
        Ok(client)
    }

    /// Discovers an OpenID Connect provider's metadata and keys now (nothing for the others).
    pub async fn discover(&self) -> Result<(), ProviderError> {
        match self.settings.kind {
            ProviderKind::Oidc { .. } => self.client(false).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The origin (`scheme://host[:port]`) a browser is sent to sign in at:
    /// from the metadata already discovered, else the issuer's (never a
    /// request to the provider: a page that asks must not wait on one).
    pub fn authorization_origin(&self) -> Result<String, ProviderError> {
        let url = match &self.settings.kind {
            ProviderKind::Globus { endpoints, .. } | ProviderKind::Orcid { endpoints, .. } => {
                endpoints.authorize_url.clone()
            }
            ProviderKind::Oidc { issuer } => match self.client.try_lock() {
                Ok(cached) => match cached.as_ref() {
                    Some((client, _)) => client.auth_uri().url().to_string(),
                    None => issuer.clone(),
                },
                Err(_) => issuer.clone(),
            },
        };
        let parsed = Url::parse(&url).map_err(|e| ProviderError::Settings(format!("authorization URL: {e}")))?;
        Ok(parsed.origin().ascii_serialization())
    }

    /// The authorization request for a login that will come back to
    /// `redirect` with `state`.
    pub async fn authorize(&self, state: &str, redirect: &str) -> Result<Authorization, ProviderError> {
        match &self.settings.kind {
            ProviderKind::Oidc { .. } => {}
            ProviderKind::Globus { endpoints, .. } => {
                return globus::authorize(&self.settings, endpoints, state, redirect);
            }
            ProviderKind::Orcid { endpoints, mfa } => {
                return orcid::authorize(&self.settings, endpoints, *mfa, state, redirect);
            }
        }
        let client = self.client(false).await?;
        let redirect = redirect_url(redirect)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, move || CsrfToken::new(state), Nonce::new_random)
            .add_scopes(self.settings.scopes.iter().map(|s| Scope::new(s.clone())))
            .set_pkce_challenge(challenge)
            .set_redirect_uri(Cow::Owned(redirect));
        for (name, value) in &self.settings.extra_params {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        let (url, _, nonce) = request.url();
        Ok(Authorization { url, pkce_verifier: verifier.secret().clone(), nonce: nonce.secret().clone() })
    }

    /// Exchanges `code` for what the provider says of the person: one
    /// identity (OpenID Connect, ORCID) or several (Globus), never none.
    pub async fn complete(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        redirect: &str,
    ) -> Result<Vec<ProviderIdentity>, ProviderError> {
        match &self.settings.kind {
            ProviderKind::Oidc { .. } => Ok(vec![self.complete_oidc(code, pkce_verifier, nonce, redirect).await?]),
            ProviderKind::Globus { endpoints, secondary_identities } => {
                let exchange = globus::Exchange {
                    code,
                    verifier: pkce_verifier,
                    redirect,
                    secondary_identities: *secondary_identities,
                };
                globus::complete(&self.http, &self.settings, endpoints, exchange).await
            }
            ProviderKind::Orcid { endpoints, mfa } => {
                orcid::complete(&self.http, &self.settings, endpoints, *mfa, code, redirect).await
            }
        }
    }

    /// Exchanges `code` for tokens and checks the ID token; what it says of
    /// the person. A token signed with a key the cached metadata lacks is
    /// checked again once against freshly discovered keys.
    async fn complete_oidc(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        redirect: &str,
    ) -> Result<ProviderIdentity, ProviderError> {
        let client = self.client(false).await?;
        let redirect = redirect_url(redirect)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| ProviderError::Settings(format!("no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .set_redirect_uri(Cow::Owned(redirect))
            .request_async(&self.http)
            .await
            .map_err(|e| ProviderError::Exchange(error_chain(&e)))?;
        let token = response.id_token().ok_or_else(|| ProviderError::IdToken("the answer has no ID token".into()))?;
        let nonce = Nonce::new(nonce.to_owned());
        let verify = |client: &Oidc| {
            let verifier = client.id_token_verifier().set_allowed_algs(ALLOWED_ALGORITHMS);
            token.claims(&verifier, &nonce).cloned()
        };
        let claims = match verify(&client) {
            Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey)) => {
                verify(&self.client(true).await?)
            }
            other => other,
        }
        .map_err(|e| ProviderError::IdToken(error_chain(&e)))?;
        Ok(identity_of(&self.settings.name, &claims))
    }
}

/// The alternate environments of the configuration (upstream's
/// `identity-provider-envs` and `environment-header`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Environments {
    /// The header that names the environment of a provider login or link.
    pub header: Option<String>,
    /// Each environment's public URL (`None`: the server's own).
    pub public_urls: std::collections::BTreeMap<String, Option<String>>,
}

impl Environments {
    /// Whether `name` is a configured environment.
    pub fn contains(&self, name: &str) -> bool {
        self.public_urls.contains_key(name)
    }

    /// The configured environments' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.public_urls.keys().map(String::as_str)
    }
}

/// Every configured provider, by name, and the environments.
pub struct Providers {
    by_name: std::collections::BTreeMap<String, Provider>,
    pub environments: Environments,
}

impl Providers {
    /// The providers of `settings`, sharing one HTTP client (no redirects
    /// followed, 10 s per request).
    pub fn new(settings: Vec<ProviderSettings>, environments: Environments) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| ProviderError::Settings(format!("cannot build the HTTP client: {e}")))?;
        let by_name = settings.into_iter().map(|s| (s.name.clone(), Provider::new(s, http.clone()))).collect();
        Ok(Self { by_name, environments })
    }

    /// The configured providers' names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }

    /// The provider named exactly `name`.
    pub fn get(&self, name: &str) -> Option<&Provider> {
        self.by_name.get(name)
    }
}

fn redirect_url(redirect: &str) -> Result<RedirectUrl, ProviderError> {
    RedirectUrl::new(redirect.to_owned()).map_err(|e| ProviderError::Settings(format!("redirect URL: {e}")))
}

/// An error and its causes, one line.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What verified claims say of the person.
fn identity_of(provider: &str, claims: &CoreIdTokenClaims) -> ProviderIdentity {
    let id = claims.subject().as_str().to_owned();
    let email = claims.email().map(|e| e.as_str().to_owned());
    let username = claims
        .preferred_username()
        .map(|u| u.as_str().to_owned())
        .or_else(|| email.clone())
        .unwrap_or_else(|| id.clone());
    let methods: Vec<String> =
        claims.auth_method_refs().map(|refs| refs.iter().map(|r| r.as_str().to_owned()).collect()).unwrap_or_default();
    ProviderIdentity {
        provider: provider.to_owned(),
        id,
        username,
        email,
        email_verified: claims.email_verified().unwrap_or(false),
        full_name: claims.name().and_then(|n| n.get(None)).map(|n| n.as_str().to_owned()),
        mfa: mfa_of(&methods),
    }
}

/// `amr` → whether a second factor was used: one of the second-factor
/// methods, or two methods or more, is `Used`; one other method `NotUsed`;
/// none (the provider does not say) `Unknown`.
pub fn mfa_of(methods: &[String]) -> Mfa {
    let distinct: std::collections::BTreeSet<&str> = methods.iter().map(String::as_str).collect();
    if distinct.iter().any(|m| SECOND_FACTORS.contains(m)) || distinct.len() >= 2 {
        Mfa::Used
    } else if distinct.len() == 1 {
        Mfa::NotUsed
    } else {
        Mfa::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_never_show_the_client_secret() {
        let settings = ProviderSettings {
            name: "Corp".into(),
            kind: ProviderKind::Oidc { issuer: "https://id.corp.example".into() },
            client_id: "authledger".into(),
            client_secret: "s3cr3t-value".into(),
            scopes: Vec::new(),
            extra_params: Vec::new(),
        };
        let shown = format!("{settings:?}");
        assert!(shown.contains("Corp") && !shown.contains("s3cr3t-value"), "{shown}");
    }

    #[test]
    fn the_methods_used_say_whether_a_second_factor_was() {
        let methods = |list: &[&str]| list.iter().map(|m| (*m).to_owned()).collect::<Vec<_>>();
        assert_eq!(mfa_of(&methods(&["pwd", "otp"])), Mfa::Used);
        assert_eq!(mfa_of(&methods(&["hwk"])), Mfa::Used);
        assert_eq!(mfa_of(&methods(&["pwd", "kba"])), Mfa::Used, "two methods");
        assert_eq!(mfa_of(&methods(&["pwd"])), Mfa::NotUsed);
        assert_eq!(mfa_of(&methods(&["pwd", "pwd"])), Mfa::NotUsed, "one method, named twice");
        assert_eq!(mfa_of(&[]), Mfa::Unknown);
    }
}
