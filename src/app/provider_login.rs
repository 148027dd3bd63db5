//! Signing in through an identity provider (upstream `Login`, reference §4):
//! start (to the provider), complete (back from it: straight in, or a choice
//! kept in the in-flight store), the choice, pick an account, create one,
//! cancel. What happened goes into the log — the identity claimed and linked,
//! the account created, the policy ids agreed, the login with its provider —
//! each write on one stream, claims first; the in-flight state never does.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::AppError;
use super::ledger::Ledger;
use super::provider_flows::{
    Back, Choosing, Holder, LOGIN_LIFETIME_MS, Opened, ProviderFlows, Purpose, Returned, unlinked,
};
use super::tokens::{self, NewToken, random_value};
use crate::domain::names::suggest_user_name;
use crate::domain::token::{ClientInfo, Mfa};
use crate::domain::user::{ProviderAccount, ProviderLogin};
use crate::domain::{
    AuthError, DisplayName, EmailAddress, ErrorType, IdentityClaim, IdentityClaimCommand, IdentityId, LinkVia,
    PolicyId, RemoteIdentity, RoleSet, TokenKind, User, UserCommand, UserName,
};
use crate::projections::{TokenView, UserRecord};
use crate::store::EventMetadata;
use crate::store::flows::FlowStep;

/// Checks a post-login redirect URL (upstream's order and messages): an
/// absolute URL, an environment that exists, post-login redirects enabled
/// there, and under the allowed prefix — compared as URLs (same origin, the
/// path under the prefix's path), not as upstream's plain string prefix,
/// which let `https://a.org` admit `https://a.org.evil.com/`.
pub fn check_redirect(
    flows: &ProviderFlows,
    ledger: &Ledger,
    environment: Option<&str>,
    url: &str,
) -> Result<(), AppError> {
    let illegal = || AuthError::illegal(format!("Illegal redirect URL: {url}"));
    let parsed = url::Url::parse(url).map_err(|_| illegal())?;
    if !url.chars().all(is_uri_char) || parsed.cannot_be_a_base() || has_dot_segment(url) {
        return Err(illegal().into());
    }
    let Some(prefix) = flows.urls(ledger, environment)?.allowed_login else {
        let suffix = environment.map(|e| format!(" for environment {e}")).unwrap_or_default();
        return Err(AuthError::illegal(format!("Post-login redirects are not enabled{suffix}")).into());
    };
    if !under_prefix(&prefix, url) {
        return Err(illegal().into());
    }
    Ok(())
}

/// A character RFC 3986 allows in a URI (the URL crate would quietly escape
/// others); not `;` or `,`, which would break the cookie that carries it.
fn is_uri_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~:/?#[]@!$&'()*+=%".contains(c)
}

/// Whether a URL's path has a `.` or `..` segment (raw or percent-encoded):
/// the URL it stands for is not the one its text shows.
fn has_dot_segment(url: &str) -> bool {
    let path_part = url.split(['?', '#']).next().unwrap_or_default();
    let after_authority = path_part.splitn(4, '/').nth(3).unwrap_or_default();
    after_authority.split('/').any(|segment| {
        let decoded = segment.to_ascii_lowercase().replace("%2e", ".");
        decoded == "." || decoded == ".."
    })
}

/// Whether `url` starts with `prefix` as a string *and* as a URL: same
/// scheme, host and port, and its path at or below the prefix's path.
fn under_prefix(prefix: &str, url: &str) -> bool {
    let (Ok(allowed), Ok(given)) = (url::Url::parse(prefix), url::Url::parse(url)) else {
        return false;
    };
    if !url.starts_with(prefix) || allowed.origin() != given.origin() {
        return false;
    }
    // A prefix ending mid-segment (`/app`) admits `/app` and `/app/...`, not `/application`.
    let (base, path) = (allowed.path(), given.path());
    (base.ends_with('/') && path.starts_with(base)) || path == base || path.starts_with(&format!("{base}/"))
}

/// What a completed login ends in.
pub enum LoginCompleted {
    /// Straight in: a new Login token (shown once) and its view.
    LoggedIn { value: String, token: Box<TokenView> },
    /// The person chooses (or is told why not): the new temporary token of the choice and its expiry.
    Choose { token: String, expires: i64 },
}

/// The way back from the provider to a login, and who is signing in.
pub struct Completion<'a> {
    pub back: Back<'a>,
    pub client: ClientInfo,
    /// Whom the choice's flow counts against (see `Holder::Client`).
    pub quota: String,
}

/// Completes a login (upstream §4.3 from step 5): the identities back from
/// the provider, linked identities' details refreshed, identities an
/// invitation expected linked; then straight in, or a choice.
pub async fn complete(
    flows: &ProviderFlows,
    ledger: &Ledger,
    completion: Completion<'_>,
    metadata: &EventMetadata,
) -> Result<LoginCompleted, AppError> {
    let received = flows.receive(ledger, completion.back, Purpose::Login).await?;
    refresh_details(ledger, &received.returned, metadata).await;
    link_invited(ledger, &received.returned, metadata).await;
    if let Some((user, identity)) = immediate(ledger, &received.provider, &received.returned) {
        let login = ProviderLogin {
            provider: received.provider,
            identity,
            link: Vec::new(),
            policy_ids: BTreeSet::new(),
            at: ledger.now(),
        };
        let grant = login_grant(&user, BTreeMap::new(), completion.client, received.mfa);
        let (value, token) =
            record_and_issue(ledger, &user, UserCommand::LogInWithProvider(Box::new(login)), grant, metadata).await?;
        return Ok(LoginCompleted::LoggedIn { value, token: Box::new(token) });
    }
    let provider = received.provider.clone();
    let choosing = Choosing { provider: received.provider, identities: received.returned, mfa: received.mfa };
    let token = random_value();
    let holder = Holder::Client(Some(&completion.quota));
    let expires =
        flows.put_as(ledger, &token, FlowStep::LoginChoice, holder, &provider, &choosing, LOGIN_LIFETIME_MS).await?;
    Ok(LoginCompleted::Choose { token, expires })
}

/// Records new details of identities already linked (each on its account's stream); failures are logged.
pub(crate) async fn refresh_details(ledger: &Ledger, returned: &[Returned], metadata: &EventMetadata) {
    let mut by_owner: BTreeMap<UserName, Vec<RemoteIdentity>> = BTreeMap::new();
    {
        let projections = ledger.projections.read();
        for r in returned {
            if let Some(owner) = projections.users.by_identity(&r.identity.id)
                && owner.remote_identities.get(&r.identity.id) != Some(&r.identity)
            {
                by_owner.entry(owner.name.clone()).or_default().push(r.identity.clone());
            }
        }
    }
    for (user, identities) in by_owner {
        let command = UserCommand::RefreshIdentities { identities, at: ledger.now() };
        let metadata = metadata.clone().acting_as(user.as_str());
        if let Err(error) = ledger.execute::<User>(&user, command, &metadata).await {
            tracing::warn!(%error, %user, "could not record an identity's new details");
        }
    }
}

/// Links each unlinked identity whose provider vouches for its email to the
/// one account whose invitation expected that provider and email (Teleport's
/// OIDC identities of a user).
async fn link_invited(ledger: &Ledger, returned: &[Returned], metadata: &EventMetadata) {
    for r in returned.iter().filter(|r| r.email_verified) {
        let Some(email) = r.identity.email.as_deref() else {
            continue;
        };
        let owner = {
            let projections = ledger.projections.read();
            if projections.users.by_identity(&r.identity.id).is_some() {
                continue;
            }
            let invited: Vec<UserName> =
                projections.users.invited_with(&r.identity.provider, email).map(|u| u.name.clone()).collect();
            match invited.as_slice() {
                [one] => one.clone(),
                _ => continue,
            }
        };
        let metadata = metadata.clone().acting_as(owner.as_str());
        if let Err(error) = link(ledger, &owner, vec![r.identity.clone()], LinkVia::Invitation, &metadata).await {
            tracing::warn!(%error, user = %owner, "could not link the identity an invitation expected");
        }
    }
}

/// Claims `identities` for `user` and links them (one append on the user's
/// stream); identities another account holds are skipped, and the claims are
/// released when the link fails. The identities linked.
pub(crate) async fn link(
    ledger: &Ledger,
    user: &UserName,
    identities: Vec<RemoteIdentity>,
    via: LinkVia,
    metadata: &EventMetadata,
) -> Result<Vec<IdentityId>, AppError> {
    let claimed = claim_all(ledger, user, identities, metadata).await?;
    if claimed.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<IdentityId> = claimed.iter().map(|i| i.id.clone()).collect();
    let command = UserCommand::LinkIdentities { identities: claimed, via, at: ledger.now() };
    if let Err(error) = ledger.execute::<User>(user, command, metadata).await {
        release_all(ledger, user, &ids, &error, metadata).await;
        return Err(error);
    }
    Ok(ids)
}

/// Claims each identity for `user`, skipping those another account holds; the claimed ones.
async fn claim_all(
    ledger: &Ledger,
    user: &UserName,
    identities: Vec<RemoteIdentity>,
    metadata: &EventMetadata,
) -> Result<Vec<RemoteIdentity>, AppError> {
    let mut claimed = Vec::new();
    for identity in identities {
        match claim(ledger, user, &identity.id, metadata).await {
            Ok(()) => claimed.push(identity),
            Err(AppError::Rejected(e)) if e.kind == ErrorType::IdentityAlreadyLinked => {}
            Err(error) => {
                let ids: Vec<IdentityId> = claimed.iter().map(|i: &RemoteIdentity| i.id.clone()).collect();
                release_all(ledger, user, &ids, &error, metadata).await;
                return Err(error);
            }
        }
    }
    Ok(claimed)
}

/// How old a claim of an identity no account has must be before another
/// account may take it over: far longer than a claim's link takes (the
/// command deadline and the settle timeout), so only a claim whose link or
/// release was lost (a crash between the two appends) is ever taken over.
pub const CLAIM_LEASE_MS: i64 = 5 * 60 * 1000;

/// Claims identity `id` for `user` (40010 while another account holds it).
/// A claim older than [`CLAIM_LEASE_MS`] of an identity no account has is
/// taken over.
pub(crate) async fn claim(
    ledger: &Ledger,
    user: &UserName,
    id: &IdentityId,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    let now = ledger.now();
    let unowned = ledger.projections.read().users.by_identity(id).is_none();
    let takeover_before = unowned.then(|| now - CLAIM_LEASE_MS);
    let command = IdentityClaimCommand::Claim { id: id.clone(), user: user.clone(), takeover_before, at: now };
    ledger.execute::<IdentityClaim>(id, command, metadata).await.map(|_| ())
}

/// Releases claims after `error` made their link fail — only when the link
/// certainly wrote nothing; otherwise they are kept (the account may have them).
pub(crate) async fn release_all(
    ledger: &Ledger,
    user: &UserName,
    ids: &[IdentityId],
    error: &AppError,
    metadata: &EventMetadata,
) {
    if !error.wrote_nothing() {
        tracing::warn!(%error, %user, "kept identity claims: the failed link may have been recorded");
        return;
    }
    for id in ids {
        release(ledger, user, id, metadata).await;
    }
}

/// Releases `user`'s claim of `id`; a failure is logged (a later claim takes a stale one over).
pub(crate) async fn release(ledger: &Ledger, user: &UserName, id: &IdentityId, metadata: &EventMetadata) {
    let command = IdentityClaimCommand::Release { user: user.clone(), at: ledger.now() };
    if let Err(error) = ledger.execute::<IdentityClaim>(id, command, metadata).await {
        tracing::warn!(%error, %user, identity = %id, "could not release an identity claim");
    }
}

/// Upstream's immediate-login decision (§4.4): every returned identity linked,
/// all to one account, no forced choice, logins allowed for it, not disabled.
/// The account and the lowest of its returned identities' ids.
fn immediate(ledger: &Ledger, provider: &str, returned: &[Returned]) -> Option<(UserName, IdentityId)> {
    let projections = ledger.projections.read();
    if projections.config.provider(provider).force_login_choice {
        return None;
    }
    let mut owners = BTreeSet::new();
    for r in returned {
        owners.insert(projections.users.by_identity(&r.identity.id)?.name.clone());
    }
    if owners.len() != 1 {
        return None;
    }
    let owner = owners.into_iter().next()?;
    let record = projections.users.get(&owner)?;
    if record.is_disabled() || (!projections.config.allow_login && !record.roles.is_admin_like()) {
        return None;
    }
    let id = returned.iter().map(|r| r.identity.id.clone()).min()?;
    Some((owner, id))
}

/// A Login token of a provider login.
fn login_grant(user: &UserName, custom: BTreeMap<String, String>, client: ClientInfo, mfa: Mfa) -> NewToken {
    NewToken { user: user.clone(), kind: TokenKind::Login, name: None, custom, client, mfa }
}

/// Records a login (and what it links and agrees to) on the user's stream, then issues its token.
async fn record_and_issue(
    ledger: &Ledger,
    user: &UserName,
    command: UserCommand,
    grant: NewToken,
    metadata: &EventMetadata,
) -> Result<(String, TokenView), AppError> {
    let metadata = metadata.clone().acting_as(user.as_str());
    ledger.execute::<User>(user, command, &metadata).await?;
    tokens::issue(ledger, grant, &metadata).await.map_err(|e| e.after_spending("the login's record"))
}

/// An account the choice offers to log in to.
#[derive(Debug, Clone)]
pub struct LoginOption {
    pub user: UserName,
    /// The lowest id of the account's identities in the answer.
    pub id: IdentityId,
    pub login_allowed: bool,
    pub disabled: bool,
    pub admin_only: bool,
    pub policy_ids: Vec<(PolicyId, i64)>,
    /// The provider usernames of the account's identities in the answer, in id order.
    pub provider_usernames: Vec<String>,
}

/// An unlinked identity the choice offers to create an account from.
#[derive(Debug, Clone)]
pub struct CreateOption {
    pub id: IdentityId,
    pub available_name: String,
    pub provider_username: String,
    /// The provider's full name, when it is a valid display name.
    pub provider_fullname: Option<String>,
    /// The provider's email, when it is a valid address.
    pub provider_email: Option<String>,
}

/// What the choice page shows.
#[derive(Debug, Clone)]
pub struct LoginChoice {
    pub provider: String,
    /// When the choice expires (epoch ms).
    pub expires: i64,
    pub creation_allowed: bool,
    pub create: Vec<CreateOption>,
    pub login: Vec<LoginOption>,
}

/// The choice of the flow of `token` (read-only; recomputed from the current
/// accounts and settings on every call).
pub async fn choice(flows: &ProviderFlows, ledger: &Ledger, token: &str) -> Result<LoginChoice, AppError> {
    let opened: Opened<Choosing> = flows.peek(ledger, token, FlowStep::LoginChoice).await?;
    let invited = invited_names(ledger);
    let projections = ledger.projections.read();
    let allow_login = projections.config.allow_login;
    let mut create = Vec::new();
    let mut accounts: BTreeMap<UserName, Vec<&RemoteIdentity>> = BTreeMap::new();
    let mut identities: Vec<&Returned> = opened.data.identities.iter().collect();
    identities.sort_by(|a, b| a.identity.id.cmp(&b.identity.id));
    for r in identities {
        match projections.users.by_identity(&r.identity.id) {
            Some(owner) => accounts.entry(owner.name.clone()).or_default().push(&r.identity),
            None => {
                let wanted = r.identity.username.split('@').next().unwrap_or_default();
                create.push(CreateOption {
                    id: r.identity.id.clone(),
                    available_name: suggest(&projections.users, &invited, wanted),
                    provider_username: r.identity.username.clone(),
                    provider_fullname: r
                        .identity
                        .fullname
                        .as_deref()
                        .and_then(|n| DisplayName::parse(Some(n)).ok())
                        .map(|n| n.to_string()),
                    provider_email: r
                        .identity
                        .email
                        .as_deref()
                        .and_then(|e| EmailAddress::parse(Some(e)).ok())
                        .map(|e| e.to_string()),
                });
            }
        }
    }
    let login = accounts
        .into_iter()
        .filter_map(|(name, ids)| {
            let record = projections.users.get(&name)?;
            let admin_only = !allow_login && !record.roles.is_admin_like();
            Some(LoginOption {
                id: ids.first()?.id.clone(),
                login_allowed: !record.is_disabled() && !admin_only,
                disabled: record.is_disabled(),
                admin_only,
                policy_ids: record.policy_ids.iter().map(|(id, at)| (id.clone(), *at)).collect(),
                provider_usernames: ids.iter().map(|i| i.username.clone()).collect(),
                user: name,
            })
        })
        .collect();
    Ok(LoginChoice {
        provider: opened.data.provider,
        expires: opened.flow.expires_at,
        creation_allowed: allow_login,
        create,
        login,
    })
}

/// The user names pending invitations are for (a suggestion never offers one).
fn invited_names(ledger: &Ledger) -> BTreeSet<String> {
    let projections = ledger.projections.read();
    projections.access.invites(ledger.now()).into_iter().map(|i| i.user.as_str().to_owned()).collect()
}

fn suggest(users: &crate::projections::UserDirectory, invited: &BTreeSet<String>, wanted: &str) -> String {
    suggest_user_name(wanted, |candidate| {
        invited.contains(candidate) || UserName::parse(Some(candidate)).is_ok_and(|n| users.get(&n).is_some())
    })
}

/// A free user name like `wanted` (contract §4.2): among every account,
/// disabled ones included, and the names pending invitations are for.
pub fn suggest_name(ledger: &Ledger, wanted: &str) -> String {
    let invited = invited_names(ledger);
    suggest(&ledger.projections.read().users, &invited, wanted)
}

/// A pick or a creation's common choices.
pub struct Choices {
    pub id: IdentityId,
    pub policy_ids: BTreeSet<PolicyId>,
    pub custom: BTreeMap<String, String>,
    pub link_all: bool,
    pub client: ClientInfo,
}

/// Logs in to the account that has identity `choices.id` of the flow of
/// `token` (upstream `/login/pick`). The flow is spent as soon as it is read.
pub async fn pick(
    flows: &ProviderFlows,
    ledger: &Ledger,
    token: &str,
    choices: Choices,
    metadata: &EventMetadata,
) -> Result<(String, TokenView), AppError> {
    let opened: Opened<Choosing> = flows.take(ledger, token, FlowStep::LoginChoice).await?;
    if !opened.data.identities.iter().any(|r| r.identity.id == choices.id) {
        return Err(AuthError::unauthorized(format!(
            "Not authorized to login to user with remote identity {}",
            choices.id
        ))
        .into());
    }
    let record = ledger.projections.read().users.by_identity(&choices.id).cloned().ok_or_else(|| {
        AuthError::new(ErrorType::AuthenticationFailed, "There is no account linked to the provided identity ID")
    })?;
    check_may_log_in(ledger, &record)?;
    let policy_ids = new_policy_ids(&record, choices.policy_ids);
    let link = if choices.link_all {
        let others = unlinked(ledger, &opened.data.identities, Some(&choices.id));
        claim_all(ledger, &record.name, others, metadata).await?
    } else {
        Vec::new()
    };
    let claimed: Vec<IdentityId> = link.iter().map(|i| i.id.clone()).collect();
    let login =
        ProviderLogin { provider: opened.data.provider, identity: choices.id, link, policy_ids, at: ledger.now() };
    let grant = login_grant(&record.name, choices.custom, choices.client, opened.data.mfa);
    let command = UserCommand::LogInWithProvider(Box::new(login));
    let metadata = metadata.clone().acting_as(record.name.as_str());
    if let Err(error) = ledger.execute::<User>(&record.name, command, &metadata).await {
        release_all(ledger, &record.name, &claimed, &error, &metadata).await;
        return Err(error);
    }
    tokens::issue(ledger, grant, &metadata).await.map_err(|e| e.after_spending("the login's record"))
}

/// Logins allowed for the account (non-admins only with `allowlogin`), not disabled.
fn check_may_log_in(ledger: &Ledger, record: &UserRecord) -> Result<(), AppError> {
    if !ledger.projections.read().config.allow_login && !record.roles.is_admin_like() {
        return Err(AuthError::unauthorized(format!(
            "User {} cannot log in because non-admin login is disabled",
            record.name
        ))
        .into());
    }
    if record.is_disabled() {
        return Err(AuthError::disabled(record.name.as_str()).into());
    }
    Ok(())
}

/// The policy ids the user has not agreed to yet (a repeat keeps its first time).
fn new_policy_ids(record: &UserRecord, ids: BTreeSet<PolicyId>) -> BTreeSet<PolicyId> {
    ids.into_iter().filter(|id| !record.policy_ids.contains_key(id)).collect()
}

/// A new account's details (upstream `/login/create`).
pub struct NewAccount {
    pub user: UserName,
    pub display: DisplayName,
    pub email: EmailAddress,
}

/// Creates an account from identity `choices.id` of the flow of `token` and
/// logs it in. The flow is spent as soon as it is read.
pub async fn create(
    flows: &ProviderFlows,
    ledger: &Ledger,
    token: &str,
    account: NewAccount,
    choices: Choices,
    metadata: &EventMetadata,
) -> Result<(String, TokenView), AppError> {
    if account.user.is_root() {
        return Err(AuthError::unauthorized("Cannot create ROOT user").into());
    }
    if !ledger.projections.read().config.allow_login {
        return Err(AuthError::unauthorized("Account creation is disabled").into());
    }
    let opened: Opened<Choosing> = flows.take(ledger, token, FlowStep::LoginChoice).await?;
    let Some(chosen) = opened.data.identities.iter().find(|r| r.identity.id == choices.id) else {
        return Err(AuthError::unauthorized(format!(
            "Not authorized to create user with remote identity {}",
            choices.id
        ))
        .into());
    };
    let user = account.user;
    // A name a pending invitation is for is taken too: the invitation would fail.
    if ledger.projections.read().users.get(&user).is_some() || invited_names(ledger).contains(user.as_str()) {
        return Err(AuthError::new(ErrorType::UserAlreadyExists, user.as_str()).into());
    }
    if ledger.projections.read().users.by_identity(&choices.id).is_some() {
        return Err(AuthError::new(ErrorType::IdentityAlreadyLinked, choices.id.as_str()).into());
    }
    let metadata = metadata.clone().acting_as(user.as_str());
    claim(ledger, &user, &choices.id, &metadata).await?;
    let link = if choices.link_all {
        let others = unlinked(ledger, &opened.data.identities, Some(&choices.id));
        match claim_all(ledger, &user, others, &metadata).await {
            Ok(claimed) => claimed,
            Err(error) => {
                release_all(ledger, &user, std::slice::from_ref(&choices.id), &error, &metadata).await;
                return Err(error);
            }
        }
    } else {
        Vec::new()
    };
    let mut claimed: Vec<IdentityId> = link.iter().map(|i| i.id.clone()).collect();
    claimed.push(choices.id.clone());
    let created = ProviderAccount {
        user: user.clone(),
        display: account.display,
        email: account.email,
        anon_id: Uuid::new_v4(),
        identity: chosen.identity.clone(),
        link,
        policy_ids: choices.policy_ids,
        at: ledger.now(),
    };
    let grant = login_grant(&user, choices.custom, choices.client, opened.data.mfa);
    if let Err(error) =
        ledger.execute::<User>(&user, UserCommand::CreateFromProvider(Box::new(created)), &metadata).await
    {
        release_all(ledger, &user, &claimed, &error, &metadata).await;
        return Err(error);
    }
    tokens::issue(ledger, grant, &metadata).await.map_err(|e| e.after_spending("the new account"))
}
