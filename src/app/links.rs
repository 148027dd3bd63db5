//! Linking provider identities to a signed-in account (upstream `Link`,
//! reference §5) and unlinking them (§6). The caller's token checks are the
//! handler's (`AppState`); every
//! flow here has a caller that may link: an enabled account created from a
//! provider's identity.

use super::AppError;
use super::acting::Acting;
use super::ledger::Ledger;
use super::provider_flows::{
    Back, Choosing, Holder, LINK_CHOICE_LIFETIME_MS, Opened, ProviderFlows, Purpose, Sent, unlinked,
};
use super::provider_login;
use crate::domain::{AuthError, ErrorType, IdentityId, LinkVia, RemoteIdentity, User, UserCommand, UserName};
use crate::projections::UserRecord;
use crate::store::EventMetadata;
use crate::store::flows::FlowStep;

/// 400 60000 for a local account (it cannot link).
pub fn check_may_link(user: &UserRecord) -> Result<(), AppError> {
    if user.local {
        return Err(AuthError::new(
            ErrorType::LinkFailed,
            format!("Cannot link identities to local account {}", user.name),
        )
        .into());
    }
    Ok(())
}

/// Starts linking an identity of `provider` (enabled, any case) to `user` in `environment`.
pub async fn start(
    flows: &ProviderFlows,
    ledger: &Ledger,
    user: &UserRecord,
    provider: &str,
    environment: Option<&str>,
) -> Result<Sent, AppError> {
    check_may_link(user)?;
    flows.send(ledger, provider, environment, Purpose::Link, Holder::User(user.name.as_str())).await
}

/// What a completed link ends in.
pub enum LinkCompleted {
    /// The one new identity was linked.
    Linked,
    /// The person chooses: the flow (same token) waits until `expires`.
    Choose { expires: i64 },
}

/// Completes a link (upstream §5.3 from the provider's lookup): the
/// identities back from the provider for an account still able to link; the
/// only new one linked at once (unless the provider forces a choice), else a
/// choice under the same token.
pub async fn complete(
    flows: &ProviderFlows,
    ledger: &Ledger,
    back: Back<'_>,
    metadata: &EventMetadata,
) -> Result<LinkCompleted, AppError> {
    let received = flows.receive(ledger, back, Purpose::Link).await?;
    let user = owner_of(ledger, received.user.as_deref())?;
    if user.is_disabled() {
        return Err(AuthError::disabled(user.name.as_str()).into());
    }
    check_may_link(&user)?;
    provider_login::refresh_details(ledger, &received.returned, metadata).await;
    let candidates = unlinked(ledger, &received.returned, None);
    let forced = ledger.projections.read().config.provider(&received.provider).force_link_choice;
    let metadata = metadata.clone().acting_as(user.name.as_str());
    if let [only] = candidates.as_slice()
        && !forced
    {
        let linked = provider_login::link(ledger, &user.name, vec![only.clone()], LinkVia::Link, &metadata).await?;
        // Lost to another account's link meanwhile: the choice shows it.
        if !linked.is_empty() {
            return Ok(LinkCompleted::Linked);
        }
    }
    let provider = received.provider.clone();
    let choosing = Choosing { provider: received.provider, identities: received.returned, mfa: received.mfa };
    let holder = Holder::User(user.name.as_str());
    let expires = flows
        .put_as(ledger, back.token, FlowStep::LinkChoice, holder, &provider, &choosing, LINK_CHOICE_LIFETIME_MS)
        .await?;
    Ok(LinkCompleted::Choose { expires })
}

/// The account a link flow belongs to.
fn owner_of(ledger: &Ledger, user: Option<&str>) -> Result<UserRecord, AppError> {
    let name = user.and_then(|u| UserName::parse(Some(u)).ok());
    name.and_then(|n| ledger.projections.read().users.get(&n).cloned())
        .ok_or_else(|| AppError::internal("a link flow names no existing account"))
}

/// A returned identity that is linked, and to whom.
#[derive(Debug, Clone)]
pub struct Linked {
    pub user: UserName,
    pub id: IdentityId,
    pub provider_username: String,
}

/// What the link choice page shows.
#[derive(Debug, Clone)]
pub struct LinkChoice {
    pub user: UserName,
    pub provider: String,
    pub expires: i64,
    /// The identities no account has, by id.
    pub identities: Vec<RemoteIdentity>,
    /// The identities some account (the caller's included) has, by user then id.
    pub linked: Vec<Linked>,
}

/// Opens `user`'s link flow of `token` (403 when it is another account's).
async fn open_own(
    flows: &ProviderFlows,
    ledger: &Ledger,
    user: &UserRecord,
    token: &str,
    take: bool,
) -> Result<Opened<Choosing>, AppError> {
    let opened: Opened<Choosing> = match take {
        true => flows.take(ledger, token, FlowStep::LinkChoice).await?,
        false => flows.peek(ledger, token, FlowStep::LinkChoice).await?,
    };
    if opened.flow.user.as_deref() != Some(user.name.as_str()) {
        return Err(AuthError::unauthorized(format!("User {} may not access this identity set", user.name)).into());
    }
    Ok(opened)
}

/// The choice of `user`'s link flow of `token` (read-only).
pub async fn choice(
    flows: &ProviderFlows,
    ledger: &Ledger,
    user: &UserRecord,
    token: &str,
) -> Result<LinkChoice, AppError> {
    check_may_link(user)?;
    let opened = open_own(flows, ledger, user, token, false).await?;
    let projections = ledger.projections.read();
    let mut identities = Vec::new();
    let mut linked = Vec::new();
    for r in &opened.data.identities {
        match projections.users.by_identity(&r.identity.id) {
            Some(owner) => linked.push(Linked {
                user: owner.name.clone(),
                id: r.identity.id.clone(),
                provider_username: r.identity.username.clone(),
            }),
            None => identities.push(r.identity.clone()),
        }
    }
    identities.sort_by(|a, b| a.id.cmp(&b.id));
    linked.sort_by(|a, b| a.user.cmp(&b.user).then_with(|| a.id.cmp(&b.id)));
    Ok(LinkChoice {
        user: user.name.clone(),
        provider: opened.data.provider,
        expires: opened.flow.expires_at,
        identities,
        linked,
    })
}

/// Links identity `id` of `user`'s flow of `token` — or, with no `id`, every
/// identity of it no account has (never an error). The flow is spent as soon as it is read.
pub async fn pick(
    flows: &ProviderFlows,
    ledger: &Ledger,
    user: &UserRecord,
    acting: &Acting,
    token: &str,
    id: Option<IdentityId>,
) -> Result<(), AppError> {
    check_may_link(user)?;
    let opened = open_own(flows, ledger, user, token, true).await?;
    let metadata = &acting.metadata;
    let Some(id) = id else {
        let all = unlinked(ledger, &opened.data.identities, None);
        provider_login::link(ledger, &user.name, all, LinkVia::Link, metadata).await?;
        return Ok(());
    };
    let Some(chosen) = opened.data.identities.iter().find(|r| r.identity.id == id) else {
        return Err(AuthError::new(
            ErrorType::LinkFailed,
            format!("User {} is not authorized to link identity {id}", user.name),
        )
        .into());
    };
    match ledger.projections.read().users.by_identity(&id) {
        Some(owner) if owner.name == user.name => return Ok(()),
        Some(_) => return Err(AuthError::new(ErrorType::IdentityAlreadyLinked, id.as_str()).into()),
        None => {}
    }
    let linked =
        provider_login::link(ledger, &user.name, vec![chosen.identity.clone()], LinkVia::Link, metadata).await?;
    if linked.is_empty() {
        return Err(AuthError::new(ErrorType::IdentityAlreadyLinked, id.as_str()).into());
    }
    Ok(())
}

/// Unlinks identity `id` from `user` (upstream `POST /me/unlink/{id}`), then releases its claim.
pub async fn unlink(ledger: &Ledger, acting: &Acting, id: IdentityId) -> Result<(), AppError> {
    let (user, metadata) = (acting.name(), &acting.metadata);
    let command = UserCommand::UnlinkIdentity { id: id.clone(), at: ledger.now() };
    ledger.execute::<User>(user, command, metadata).await?;
    provider_login::release(ledger, user, &id, metadata).await;
    Ok(())
}
