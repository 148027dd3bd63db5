//! Sign-up invitations: an administrator invites a user name (with logins and
//! identities); the invitee opens the invitation, is offered a fresh TOTP
//! enrolment, and completes it with a password and a code — which creates the
//! account, spends the invitation and starts a session, even when non-admin
//! login is off (the invitation is an administrator's explicit grant).
//!
//! Completion writes three times, each on its own stream: the invitation is
//! spent first (single use, even against a racing completion); the account is
//! then created in one append (user, logins, identities, password, second
//! factor, the code's step and the first login); the session token comes
//! last. A failure after the invitation is spent leaves it spent (its name
//! cannot be invited into twice) and forgets the new password hash.

use super::acting::Acting;
use std::collections::BTreeSet;

use rand::RngCore;
use uuid::Uuid;

use super::ledger::Ledger;
use super::second_factor::{self, Enrolment};
use super::tokens::{self, NewToken};
use super::{AppError, forget_secret, passwords, undo_secret};
use crate::domain::invite::{MAX_INVITE_TTL_MS, unusable};
use crate::domain::token::{ClientInfo, Mfa};
use crate::domain::user::{Invitation, NewPassword};
use crate::domain::{
    AuthError, DisplayName, ErrorType, Invite, InviteCommand, InvitedIdentity, Login, TokenKind, User, UserCommand,
    UserName,
};
use crate::projections::TokenView;
use crate::projections::access::InviteRecord;
use crate::projections::hash_token;
use crate::projections::token_index::encode_hash;
use crate::store::EventMetadata;

/// An invitation as an administrator asks for it, checked ([`InviteRequest::new`]).
pub struct InviteRequest {
    user: UserName,
    logins: BTreeSet<Login>,
    /// Whether the logins were named (rather than defaulting to the user name).
    pub names_logins: bool,
    identities: BTreeSet<InvitedIdentity>,
    ttl_seconds: i64,
}

impl InviteRequest {
    /// Checks the invitee: never root. The request is completed, in the
    /// contract's validation order, by [`Self::with_logins`], then
    /// [`Self::with_identities`] and [`Self::valid_for`].
    pub fn new(user: UserName) -> Result<Self, AuthError> {
        if user.is_root() {
            return Err(AuthError::illegal("The root account cannot be invited"));
        }
        let ttl_seconds = MAX_INVITE_TTL_MS / 1000;
        Ok(Self { user, logins: BTreeSet::new(), names_logins: false, identities: BTreeSet::new(), ttl_seconds })
    }

    /// The SSH logins of the account (`None`: its user name).
    pub fn with_logins(self, logins: Option<Vec<String>>) -> Result<Self, AuthError> {
        let parsed = match &logins {
            None => Login::parse_list([self.user.as_str()])?,
            Some(listed) => Login::parse_list(listed.iter().map(String::as_str))?,
        };
        Ok(Self { logins: parsed, names_logins: logins.is_some(), ..self })
    }

    /// The identities the account is created with.
    pub fn with_identities(self, identities: BTreeSet<InvitedIdentity>) -> Self {
        Self { identities, ..self }
    }

    /// How long the invitation is valid: 1 s to [`MAX_INVITE_TTL_MS`].
    pub fn valid_for(self, ttl_seconds: i64) -> Result<Self, AuthError> {
        let max = MAX_INVITE_TTL_MS / 1000;
        if !(1..=max).contains(&ttl_seconds) {
            return Err(AuthError::illegal(format!("ttl must be between 1 and {max} seconds")));
        }
        Ok(Self { ttl_seconds, ..self })
    }
}

/// A new invitation: its token (shown once; the log keeps its hash), its id and expiry.
pub struct Issued {
    pub id: Uuid,
    pub token: String,
    pub user: UserName,
    pub expires: i64,
}

/// Issues an invitation for a user name nobody has yet.
pub async fn issue(ledger: &Ledger, request: InviteRequest, acting: &Acting) -> Result<Issued, AppError> {
    let (by, metadata) = (acting.name(), &acting.metadata);
    let user = request.user;
    if ledger.projections.read().users.get(&user).is_some() {
        return Err(AuthError::new(ErrorType::UserAlreadyExists, user.as_str()).into());
    }
    let mut secret = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut secret);
    let token = data_encoding::HEXLOWER.encode(&secret);
    let id = Uuid::new_v4();
    let now = ledger.now();
    let expires = now.saturating_add(request.ttl_seconds * 1000);
    let command = InviteCommand::Issue {
        token_hash: encode_hash(&hash_token(&token)),
        user: user.clone(),
        logins: request.logins,
        identities: request.identities,
        expires,
        issued_by: by.clone(),
        at: now,
    };
    ledger.execute::<Invite>(id, command, metadata).await?;
    Ok(Issued { id, token, user, expires })
}

/// Revokes a pending invitation and forgets the secret it offered.
pub async fn revoke(ledger: &Ledger, id: &str, acting: &Acting) -> Result<(), AppError> {
    let (by, metadata) = (acting.name(), &acting.metadata);
    let no_such = || AuthError::new(ErrorType::NoSuchToken, format!("no such pending invitation {id}"));
    let id = Uuid::parse_str(id).map_err(|_| no_such())?;
    let Some(offered) = ledger.projections.read().access.invite_by_id(&id).map(|i| i.offered) else {
        return Err(no_such().into());
    };
    ledger.execute::<Invite>(id, InviteCommand::Revoke { by: by.clone(), at: ledger.now() }, metadata).await?;
    if let Some(secret) = offered {
        forget_secret(ledger, secret, "the second-factor secret a revoked invitation offered").await;
    }
    Ok(())
}

/// The usable invitation with this token (the one "unusable" answer
/// otherwise). Opening one through another server's link is a read the API
/// serves again after catching up; a completion (a write) looks again here.
pub fn pending(ledger: &Ledger, token: &str) -> Result<InviteRecord, AppError> {
    let hash = encode_hash(&hash_token(token.trim()));
    ledger.projections.read().access.invite(&hash, ledger.now()).cloned().ok_or_else(|| unusable().into())
}

/// [`pending`], looked up again after catching up with the log when not found.
async fn pending_fresh(ledger: &Ledger, token: &str) -> Result<InviteRecord, AppError> {
    let hash = encode_hash(&hash_token(token.trim()));
    let now = ledger.now();
    ledger
        .find_fresh(|projections| projections.access.invite(&hash, now).cloned())
        .await
        .ok_or_else(|| unusable().into())
}

/// An opened invitation: who it is for and the second factor it now offers.
pub struct Opened {
    pub invite: InviteRecord,
    pub enrolment: Enrolment,
}

/// Opens an invitation: a fresh TOTP secret is stored and offered (earlier
/// offers become void and are forgotten).
pub async fn open(ledger: &Ledger, token: &str, metadata: EventMetadata) -> Result<Opened, AppError> {
    let invite = pending(ledger, token)?;
    let secret = second_factor::new_secret();
    let enrolment = second_factor::enrolment(&secret, invite.user.as_str())?;
    let credential_id = Uuid::new_v4();
    let now = ledger.now();
    ledger.credentials.put(credential_id, second_factor::SECRET_KIND, &secret, now).await?;
    let metadata = metadata.acting_as(format!("invitee:{}", invite.user));
    let offer = InviteCommand::OfferSecondFactor { credential_id, at: now };
    if let Err(error) = ledger.execute::<Invite>(invite.id, offer, &metadata).await {
        return Err(undo_secret(ledger, error, credential_id, "a second-factor offer whose recording failed").await);
    }
    if let Some(previous) = invite.offered {
        forget_secret(ledger, previous, "an invitation's earlier second-factor offer").await;
    }
    Ok(Opened { invite, enrolment })
}

/// What the invitee sends to complete an invitation.
pub struct Completion {
    pub token: String,
    pub password: String,
    pub second_factor: String,
    pub client: ClientInfo,
}

/// The account an invitation created, with its first session.
pub struct Completed {
    pub user: UserName,
    pub value: String,
    pub token: TokenView,
}

/// Completes an invitation (see the module's notes on its three writes).
pub async fn complete(ledger: &Ledger, completion: Completion, metadata: EventMetadata) -> Result<Completed, AppError> {
    let invite = pending_fresh(ledger, &completion.token).await?;
    passwords::check_strength(&completion.password)?;
    let offered = invite.offered.ok_or_else(|| {
        AuthError::new(ErrorType::AuthenticationFailed, "open the invitation first to enrol a second factor")
    })?;
    let secret = ledger
        .credentials
        .get(offered)
        .await?
        .ok_or_else(|| AuthError::new(ErrorType::AuthenticationFailed, "open the invitation again"))?;
    let now = ledger.now();
    let Some(step) = second_factor::check(&secret, invite.user.as_str(), &completion.second_factor, now)? else {
        return Err(AuthError::new(ErrorType::AuthenticationFailed, "wrong second-factor code").into());
    };
    if ledger.projections.read().users.get(&invite.user).is_some() {
        return Err(AuthError::new(ErrorType::UserAlreadyExists, invite.user.as_str()).into());
    }
    let display = DisplayName::parse(Some(invite.user.as_str()))?;
    let credential_id = passwords::store(&ledger.password_work, &ledger.credentials, completion.password, now).await?;
    let metadata = metadata.acting_as(invite.user.as_str());
    // Spending the invitation first makes it single use even against a racing completion.
    let redeem = InviteCommand::Redeem { credential_id: offered, at: now };
    if let Err(error) = ledger.execute::<Invite>(invite.id, redeem, &metadata).await {
        return Err(undo_secret(ledger, error, credential_id, "the password hash of an invitation not redeemed").await);
    }
    let invitation = Invitation {
        invite: invite.id,
        invited_by: invite.issued_by.clone(),
        user: invite.user.clone(),
        display,
        anon_id: Uuid::new_v4(),
        logins: invite.logins.clone(),
        identities: invite.identities.clone(),
        password: NewPassword { credential_id, require_reset: false, by: invite.user.clone(), at: now },
        second_factor: offered,
        first_step: step,
        at: now,
    };
    // Only a name taken since the checks above (or a failing store) ends here; the
    // invitation is spent either way, since its name cannot be created any more.
    let accept = UserCommand::AcceptInvitation(Box::new(invitation));
    if let Err(error) = ledger.execute::<User>(&invite.user, accept, &metadata).await {
        let error = undo_secret(ledger, error, credential_id, "the password hash of an account not created").await;
        return Err(error.after_spending("the invitation"));
    }
    let grant = NewToken {
        user: invite.user.clone(),
        kind: TokenKind::Login,
        name: None,
        custom: Default::default(),
        client: completion.client,
        // The code checked here comes from a secret the invitation link itself
        // delivered: holding the link is the one factor.
        mfa: Mfa::NotUsed,
    };
    let (value, token) = tokens::issue(ledger, grant, &metadata).await?;
    Ok(Completed { user: invite.user, value, token })
}
