//! What provider logins and links share: the configured providers (found by
//! name, ignoring case, and only when an administrator enabled them), their
//! redirect URIs per environment, and the in-flight store of flows under way
//! (`store::flows`) with upstream's lookup errors. A flow is named by a
//! temporary token — 20 random bytes in base32, drawn here — that only the
//! browser's cookie carries; the store keeps its hash and seals its data.

use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::AppError;
use super::ledger::Ledger;
use super::providers::{Provider, ProviderError, ProviderIdentity, Providers};
use super::tokens::random_value;
use crate::domain::server_config::RedirectUrls;
use crate::domain::token::Mfa;
use crate::domain::{AuthError, ErrorType, IdentityId, RemoteIdentity};
use crate::store::flows::{Flow, FlowStep, Flows};

/// A login's flow lives this long at each step (upstream: 30 minutes).
pub const LOGIN_LIFETIME_MS: i64 = 30 * 60 * 1000;
/// A link sent to its provider lives this long.
pub const LINK_START_LIFETIME_MS: i64 = 30 * 60 * 1000;
/// A link back from its provider, waiting for a choice, lives this long.
pub const LINK_CHOICE_LIFETIME_MS: i64 = 10 * 60 * 1000;

/// How often expired flows are swept.
pub const SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// Which flow a redirect URI comes back to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Login,
    Link,
}

impl Purpose {
    fn path(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Link => "link",
        }
    }

    fn started(self) -> FlowStep {
        match self {
            Self::Login => FlowStep::LoginStarted,
            Self::Link => FlowStep::LinkStarted,
        }
    }

    /// How long a flow of this purpose lives once sent to its provider.
    fn start_lifetime(self) -> i64 {
        match self {
            Self::Login => LOGIN_LIFETIME_MS,
            Self::Link => LINK_START_LIFETIME_MS,
        }
    }

    /// How long a choice (or a provider's error) of this purpose waits.
    pub(crate) fn choice_lifetime(self) -> i64 {
        match self {
            Self::Login => LOGIN_LIFETIME_MS,
            Self::Link => LINK_CHOICE_LIFETIME_MS,
        }
    }
}

/// Whom a flow belongs to: a person signing in (known by their client
/// address), or a signed-in user linking.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    Client(Option<&'a str>),
    User(&'a str),
}

impl Holder<'_> {
    fn user(self) -> Option<String> {
        match self {
            Self::User(user) => Some(user.to_owned()),
            Self::Client(_) => None,
        }
    }

    fn client(self) -> Option<String> {
        match self {
            Self::Client(client) => Some(client.unwrap_or("unknown").to_owned()),
            Self::User(_) => None,
        }
    }
}

/// A flow sent to its provider: where the browser goes, and the temporary
/// token its cookie keeps.
pub struct Sent {
    pub authorize_url: String,
    pub token: String,
}

/// The way back from a provider, as the request brings it.
#[derive(Debug, Clone, Copy)]
pub struct Back<'a> {
    /// The provider named by the path.
    pub provider: &'a str,
    /// The in-process cookie's temporary token.
    pub token: &'a str,
    pub code: &'a str,
    pub state: Option<&'a str>,
    /// The environment cookie's.
    pub environment: Option<&'a str>,
}

/// What came back: the provider (its configured name), whom the flow
/// belongs to, the identities and whether a second factor was used.
pub(crate) struct Received {
    pub provider: String,
    pub user: Option<String>,
    pub returned: Vec<Returned>,
    pub mfa: Mfa,
}

/// What a flow sent to its provider keeps for the way back (sealed in the store).
#[derive(Serialize, Deserialize)]
pub(crate) struct Started {
    pub state: String,
    pub verifier: String,
    pub nonce: String,
}

/// An identity a provider returned, and whether it vouched for its email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Returned {
    pub identity: RemoteIdentity,
    pub email_verified: bool,
}

impl Returned {
    /// The identity a provider's answer names (its id computed from the provider's name).
    pub fn of(answer: &ProviderIdentity) -> Self {
        Self {
            identity: RemoteIdentity::new(
                &answer.provider,
                &answer.id,
                &answer.username,
                answer.full_name.clone().filter(|n| !n.trim().is_empty()),
                answer.email.clone().filter(|e| !e.trim().is_empty()),
            ),
            email_verified: answer.email_verified,
        }
    }
}

/// What a provider's answer names (its identities) and whether it says a second factor was used.
pub(crate) fn returned_of(provider: &str, answer: Vec<ProviderIdentity>) -> Result<(Vec<Returned>, Mfa), AppError> {
    let mfa = answer.first().map_or(Mfa::Unknown, |a| a.mfa);
    let returned: Vec<Returned> = answer.iter().map(Returned::of).collect();
    if returned.is_empty() {
        return Err(retrieval_failed(provider, ProviderError::Retrieval(format!("{provider} returned no identity"))));
    }
    Ok((returned, mfa))
}

/// What a flow back from its provider keeps while its person chooses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Choosing {
    pub provider: String,
    pub identities: Vec<Returned>,
    /// Whether the provider says a second factor was used.
    pub mfa: Mfa,
}

/// A failed flow's provider error, kept to be shown.
#[derive(Serialize, Deserialize)]
struct Failed {
    error: String,
}

/// A flow read back from the store.
pub(crate) struct Opened<T> {
    pub flow: Flow,
    pub data: T,
}

/// A provider's refusal: the error it sent back (`?error=`) instead of a code, on the way
/// back of a flow started in `environment`.
pub(crate) struct Refusal<'a> {
    pub provider: &'a str,
    pub error: &'a str,
    pub environment: Option<&'a str>,
}

/// The providers and the in-flight store.
pub struct ProviderFlows {
    pub providers: Providers,
    /// `None` when no provider is configured: no flow can start.
    flows: Option<Flows>,
    /// The server's public URL (redirect URIs of the default environment).
    public_url: String,
}

impl ProviderFlows {
    /// `flows` may be `None` only when `providers` is empty.
    pub fn new(providers: Providers, flows: Option<Flows>, public_url: impl Into<String>) -> Self {
        Self { providers, flows, public_url: public_url.into().trim_end_matches('/').to_owned() }
    }

    /// The enabled provider named `name` (ignoring case); 401 50020 with the
    /// name as given otherwise — a disabled provider is as unknown as a missing one.
    pub fn provider(&self, ledger: &Ledger, name: &str) -> Result<&Provider, AppError> {
        let found = self.providers.names().find(|n| n.eq_ignore_ascii_case(name)).and_then(|n| self.providers.get(n));
        match found {
            Some(provider) if ledger.projections.read().config.provider(provider.name()).enabled => Ok(provider),
            _ => Err(AuthError::new(ErrorType::NoSuchIdentityProvider, name).into()),
        }
    }

    /// The enabled providers' names, sorted ignoring case (the login and link pages).
    pub fn enabled(&self, ledger: &Ledger) -> Vec<String> {
        let config = ledger.projections.read().config.clone();
        let mut names: Vec<String> =
            self.providers.names().filter(|n| config.provider(n).enabled).map(str::to_owned).collect();
        names.sort_by_key(|n| n.to_lowercase());
        names
    }

    /// Every origin a `purpose` flow started from a page's form may take the
    /// browser to without another page in between (a browser checks a form's
    /// redirects against the page's `form-action`): the enabled providers'
    /// login pages, the environments' public URLs (their way back), and the
    /// redirect URLs an administrator set for the flow's next steps.
    pub fn form_targets(&self, ledger: &Ledger, purpose: Purpose) -> Vec<String> {
        let mut urls: Vec<String> = self
            .enabled(ledger)
            .iter()
            .filter_map(|name| self.providers.get(name))
            .filter_map(|provider| provider.authorization_origin().ok())
            .collect();
        urls.extend(self.providers.environments.public_urls.values().flatten().cloned());
        let projections = ledger.projections.read();
        let sets = std::iter::once(&projections.config.redirects).chain(projections.config.environments.values());
        for set in sets {
            let next = match purpose {
                Purpose::Login => [&set.allowed_login, &set.complete_login],
                Purpose::Link => [&set.post_link, &set.complete_link],
            };
            urls.extend(next.into_iter().flatten().cloned());
        }
        let mut origins: Vec<String> = urls
            .iter()
            .filter_map(|u| url::Url::parse(u).ok())
            .map(|u| u.origin())
            .filter(url::Origin::is_tuple)
            .map(|o| o.ascii_serialization())
            .collect();
        origins.sort();
        origins.dedup();
        origins
    }

    /// Looks each OpenID Connect provider up now (discovery), so the first
    /// login page already knows where its form leads; failures are logged
    /// (a later login tries again).
    pub async fn discover(&self) {
        for name in self.providers.names() {
            if let Some(provider) = self.providers.get(name)
                && let Err(error) = provider.discover().await
            {
                tracing::warn!(provider = name, %error, "cannot discover the provider yet");
            }
        }
    }

    /// Whether `environment` (if any) is configured; 400 50040 otherwise.
    pub fn check_environment(&self, environment: Option<&str>) -> Result<(), AppError> {
        match environment {
            Some(name) if !self.providers.environments.contains(name) => {
                Err(AuthError::new(ErrorType::NoSuchEnvironment, name).into())
            }
            _ => Ok(()),
        }
    }

    /// The redirect URI `provider` sends a `purpose` flow back to in
    /// `environment`: `{public URL}/{login|link}/complete/{provider}`, the
    /// environment's public URL when it has one.
    pub fn redirect_uri(
        &self,
        provider: &Provider,
        environment: Option<&str>,
        purpose: Purpose,
    ) -> Result<String, AppError> {
        self.check_environment(environment)?;
        let base = environment
            .and_then(|e| self.providers.environments.public_urls.get(e).cloned().flatten())
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| self.public_url.clone());
        Ok(format!("{base}/{}/complete/{}", purpose.path(), provider.name()))
    }

    /// The redirect URLs an administrator set for `environment` (the
    /// default environment's for `None`); 400 50040 for an unknown one.
    pub fn urls(&self, ledger: &Ledger, environment: Option<&str>) -> Result<RedirectUrls, AppError> {
        self.check_environment(environment)?;
        let projections = ledger.projections.read();
        Ok(match environment {
            Some(environment) => projections.config.environments.get(environment).cloned().unwrap_or_default(),
            None => projections.config.redirects.clone(),
        })
    }

    /// Sends a `purpose` flow to `provider` (enabled, any case) in
    /// `environment`: the authorization request (a fresh state, PKCE, a
    /// nonce), kept for `holder` until the way back.
    pub(crate) async fn send(
        &self,
        ledger: &Ledger,
        provider: &str,
        environment: Option<&str>,
        purpose: Purpose,
        holder: Holder<'_>,
    ) -> Result<Sent, AppError> {
        let provider = self.provider(ledger, provider)?;
        let redirect = self.redirect_uri(provider, environment, purpose)?;
        let state = random_value();
        let authorization =
            provider.authorize(&state, &redirect).await.map_err(|e| retrieval_failed(provider.name(), e))?;
        let started = Started { state, verifier: authorization.pkce_verifier, nonce: authorization.nonce };
        let token = random_value();
        let (step, lifetime) = (purpose.started(), purpose.start_lifetime());
        self.put_as(ledger, &token, step, holder, provider.name(), &started, lifetime).await?;
        Ok(Sent { authorize_url: authorization.url.to_string(), token })
    }

    /// Keeps a provider's error (`?error=` on the way back) for the choice
    /// page, in place of the flow of `replacing` (the cookie's, if any); the
    /// new temporary token and its expiry. The choice page's address is
    /// checked first (nothing is kept for a way back that cannot go on), and
    /// the provider must be an enabled one (upstream stores any: here an
    /// unknown provider stores nothing).
    pub(crate) async fn fail(
        &self,
        ledger: &Ledger,
        failure: Refusal<'_>,
        purpose: Purpose,
        replacing: Option<&str>,
        holder: Holder<'_>,
    ) -> Result<(String, i64), AppError> {
        let Refusal { provider, error, environment } = failure;
        self.urls(ledger, environment)?;
        let provider = self.provider(ledger, provider)?;
        if let Some(token) = replacing {
            self.forget(ledger, token).await?;
        }
        let failed = Failed { error: error.chars().take(1000).collect() };
        let token = random_value();
        let lifetime = purpose.choice_lifetime();
        let expires = self.put_as(ledger, &token, FlowStep::Failed, holder, provider.name(), &failed, lifetime).await?;
        Ok((token, expires))
    }

    /// The way back of a `purpose` flow (upstream §4.3 and §5.3 from the
    /// provider's lookup): its flow and state (a wrong state leaves the flow
    /// in place), the flow spent, the code exchanged for the identities.
    pub(crate) async fn receive(
        &self,
        ledger: &Ledger,
        back: Back<'_>,
        purpose: Purpose,
    ) -> Result<Received, AppError> {
        let provider = self.provider(ledger, back.provider)?;
        let started: Opened<Started> = self.peek(ledger, back.token, purpose.started()).await?;
        if back.state != Some(started.data.state.as_str()) {
            return Err(AuthError::new(
                ErrorType::AuthenticationFailed,
                "State values do not match, this may be a CSRF attack",
            )
            .into());
        }
        if started.flow.provider.as_deref() != Some(provider.name()) {
            let detail = format!("the {} was started at another provider", purpose.path());
            return Err(AuthError::new(ErrorType::IdentityRetrievalFailed, detail).into());
        }
        let redirect = self.redirect_uri(provider, back.environment, purpose)?;
        // Single use: a second way back with the same cookie finds nothing
        // (its step was checked by the peek above).
        let started: Opened<Started> = open(self.flows()?.take(back.token, ledger.now()).await?, purpose.started())?;
        let answer = provider
            .complete(back.code, &started.data.verifier, &started.data.nonce, &redirect)
            .await
            .map_err(|e| retrieval_failed(provider.name(), e))?;
        let (returned, mfa) = returned_of(provider.name(), answer)?;
        Ok(Received { provider: provider.name().to_owned(), user: started.flow.user, returned, mfa })
    }

    fn flows(&self) -> Result<&Flows, AppError> {
        self.flows.as_ref().ok_or_else(|| temporary_token_error().into())
    }

    /// Keeps a flow at `step` for `holder` under `token` for `lifetime`; its expiry.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn put_as<T: Serialize>(
        &self,
        ledger: &Ledger,
        token: &str,
        step: FlowStep,
        holder: Holder<'_>,
        provider: &str,
        data: &T,
        lifetime: i64,
    ) -> Result<i64, AppError> {
        let now = ledger.now();
        let client = holder.client();
        let flow = Flow {
            step,
            user: holder.user(),
            prefix: client.as_deref().map(super::client_address::network_key),
            client,
            provider: Some(provider.to_owned()),
            data: serde_json::to_string(data).map_err(AppError::internal)?,
            created_at: now,
            expires_at: now + lifetime,
        };
        let evicted = self.flows()?.put(token, &flow, now).await?;
        for (bound, dropped) in [
            ("client", evicted.client),
            ("network", evicted.prefix),
            ("user", evicted.user),
            ("fullest network", evicted.fullest),
        ] {
            if dropped > 0 {
                metrics::counter!(crate::telemetry::SIGNINS_EVICTED, "bound" => bound).increment(dropped);
            }
        }
        Ok(flow.expires_at)
    }

    /// Removes and opens the flow of `token`, which must be at `step` (upstream's errors otherwise).
    pub(crate) async fn take<T: DeserializeOwned>(
        &self,
        ledger: &Ledger,
        token: &str,
        step: FlowStep,
    ) -> Result<Opened<T>, AppError> {
        // A flow at another step is refused before it is spent.
        let _: Opened<serde_json::Value> = self.peek(ledger, token, step).await?;
        let flow = self.flows()?.take(token, ledger.now()).await?;
        open(flow, step)
    }

    /// Opens the flow of `token`, leaving it in place.
    pub(crate) async fn peek<T: DeserializeOwned>(
        &self,
        ledger: &Ledger,
        token: &str,
        step: FlowStep,
    ) -> Result<Opened<T>, AppError> {
        let flow = self.flows()?.peek(token, ledger.now()).await?;
        open(flow, step)
    }

    /// Forgets the flow of `token`, if any (a cancel).
    pub async fn forget(&self, ledger: &Ledger, token: &str) -> Result<(), AppError> {
        if let Some(flows) = &self.flows {
            flows.take(token, ledger.now()).await?;
        }
        Ok(())
    }

    /// Forgets every flow of `user` (a logout ends the user's links under way).
    pub async fn forget_user(&self, user: &str) -> Result<(), AppError> {
        if let Some(flows) = &self.flows {
            flows.drop_user(user).await?;
        }
        Ok(())
    }

    /// Drops the flows that expired by `now`; how many.
    pub async fn sweep(&self, now: i64) -> Result<u64, AppError> {
        match &self.flows {
            Some(flows) => Ok(flows.sweep(now).await?),
            None => Ok(0),
        }
    }

    /// How many flows are kept (expired ones not yet swept included).
    pub async fn count(&self) -> Result<i64, AppError> {
        match &self.flows {
            Some(flows) => Ok(flows.count().await?),
            None => Ok(0),
        }
    }

    /// Closes the in-flight store.
    pub async fn close(&self) {
        if let Some(flows) = &self.flows {
            flows.close().await;
        }
    }
}

fn temporary_token_error() -> AuthError {
    AuthError::new(ErrorType::InvalidToken, "Temporary token")
}

/// A flow as its consumer expects it: unknown or expired → 401 10020; a
/// provider's error → 401 10040; another step → 401 10020.
fn open<T: DeserializeOwned>(flow: Option<Flow>, step: FlowStep) -> Result<Opened<T>, AppError> {
    let flow = flow.ok_or_else(temporary_token_error)?;
    if flow.step == FlowStep::Failed {
        let failed: Failed = serde_json::from_str(&flow.data).map_err(AppError::internal)?;
        return Err(AuthError::new(ErrorType::IdentityProviderError, failed.error).into());
    }
    if flow.step != step {
        return Err(AuthError::new(
            ErrorType::InvalidToken,
            "Temporary token operation type does not match expected operation",
        )
        .into());
    }
    let data = serde_json::from_str(&flow.data).map_err(AppError::internal)?;
    Ok(Opened { flow, data })
}

/// A provider's failure as the caller sees it (401 10030), the server's log
/// keeping the whole detail.
pub(crate) fn retrieval_failed(provider: &str, error: ProviderError) -> AppError {
    tracing::warn!(provider, %error, "identity retrieval failed");
    let detail = match error {
        ProviderError::Discovery(_) | ProviderError::Settings(_) => {
            format!("{provider} cannot be reached or is misconfigured")
        }
        ProviderError::Exchange(detail) => format!("{provider} refused the authorization code: {detail}"),
        ProviderError::IdToken(detail) => format!("the ID token from {provider} is not valid: {detail}"),
        ProviderError::Retrieval(detail) => detail,
    };
    AuthError::new(ErrorType::IdentityRetrievalFailed, detail).into()
}

/// The returned identities no account has, but `except`.
pub(crate) fn unlinked(ledger: &Ledger, returned: &[Returned], except: Option<&IdentityId>) -> Vec<RemoteIdentity> {
    let projections = ledger.projections.read();
    returned
        .iter()
        .filter(|r| Some(&r.identity.id) != except && projections.users.by_identity(&r.identity.id).is_none())
        .map(|r| r.identity.clone())
        .collect()
}
