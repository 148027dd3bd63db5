//! The `User` aggregate: one per user name (the root user included). It owns
//! the account's profile, its password *reference*, its built-in and custom
//! roles, its disabled state and the per-user token watermark, and enforces the
//! contract's rules on who may change roles, disable and reset passwords.

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Actor;
use super::error::{AuthError, ErrorType};
use super::identity::{IdentityId, LinkVia, RemoteIdentity};
use super::imported::ImportedAccount;
use super::names::{CustomRoleId, DisplayName, EmailAddress, PolicyId, UserName};
use super::principals::{InvitedIdentity, Login};
use super::roles::{Role, RoleSet};
use super::throttle::{Count, PasswordSource, PasswordThrottle, Reserved};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum UserEvent {
    /// An account was created: a local one (its password, if any, follows as
    /// `PasswordChanged`) or, `local: false` (since v2.0), one created from a
    /// provider's identity (which follows as `IdentityLinked`).
    UserCreated {
        user: UserName,
        display: DisplayName,
        email: Option<EmailAddress>,
        anon_id: Uuid,
        created: i64,
        created_by: UserName,
        local: bool,
    },
    DisplayNameChanged {
        display: DisplayName,
    },
    EmailChanged {
        email: Option<EmailAddress>,
    },
    /// The password hash now lives in the credentials store under `credential_id`.
    PasswordChanged {
        credential_id: Uuid,
        changed_by: UserName,
        at: i64,
    },
    PasswordResetForced {
        by: UserName,
        at: i64,
    },
    PasswordResetCleared {
        at: i64,
    },
    /// The user logged in; through `provider` with `identity` (since v2.0), or
    /// with a password when both are `None`.
    LoginRecorded {
        at: i64,
        provider: Option<String>,
        identity: Option<IdentityId>,
    },
    RolesGranted {
        roles: BTreeSet<Role>,
        by: UserName,
        at: i64,
    },
    RolesRemoved {
        roles: BTreeSet<Role>,
        by: UserName,
        at: i64,
    },
    CustomRolesGranted {
        roles: BTreeSet<CustomRoleId>,
        by: UserName,
        at: i64,
    },
    CustomRolesRemoved {
        roles: BTreeSet<CustomRoleId>,
        by: UserName,
        at: i64,
    },
    /// Disabling also invalidates every token the user holds.
    UserDisabled {
        reason: String,
        by: UserName,
        at: i64,
    },
    /// Tokens issued before re-enabling stay invalid.
    UserEnabled {
        by: UserName,
        at: i64,
    },
    /// Every token of the user issued before this event is invalid.
    UserTokensRevoked {
        by: UserName,
        at: i64,
    },
    /// The account was created by redeeming an invitation (follows `UserCreated`).
    InvitationAccepted {
        invite: Uuid,
        invited_by: UserName,
        at: i64,
    },
    /// The logins (SSH certificate principals) the user may use; until set, the user name.
    LoginsChanged {
        logins: BTreeSet<Login>,
        by: UserName,
        at: i64,
    },
    /// The identities the invitation expects the account to have at providers.
    IdentitiesLinked {
        identities: BTreeSet<InvitedIdentity>,
        at: i64,
    },
    /// A provider's identity now belongs to the account.
    IdentityLinked {
        identity: RemoteIdentity,
        via: LinkVia,
        at: i64,
    },
    /// The identity no longer belongs to the account.
    IdentityUnlinked {
        id: IdentityId,
        at: i64,
    },
    /// A login or link brought new details of a linked identity from its provider.
    IdentityDetailsRefreshed {
        identity: RemoteIdentity,
        at: i64,
    },
    /// The user agreed to these policy ids (only those not already agreed to).
    PolicyIdsAgreed {
        policy_ids: BTreeSet<PolicyId>,
        at: i64,
    },
    /// A TOTP secret (in the credentials store under `credential_id`) now guards the account's logins.
    SecondFactorEnrolled {
        credential_id: Uuid,
        at: i64,
    },
    /// A login gave the valid code of time step `step`; no code of that step or earlier is accepted again.
    SecondFactorAccepted {
        step: u64,
        at: i64,
    },
    /// A login gave a wrong code; `failures` counts them since the last success or lock.
    /// At the limit the account is locked until `locked_until`.
    SecondFactorRejected {
        failures: u32,
        locked_until: Option<i64>,
        at: i64,
    },
    /// Written by versions before reserved checks: a wrong password, counted
    /// for every client together (`failures` since the last login, password
    /// change or clearing; no check until `throttled_until`). Still folded.
    PasswordRejected {
        failures: u32,
        throttled_until: Option<i64>,
        at: i64,
    },
    /// A password check from `source` was reserved before the password was
    /// checked; it counts as a wrong password until released (a password
    /// change or a clearing ends every count). `failures` and
    /// `throttled_until` are the source's count with it; `account_failures`
    /// and `account_throttled_until` the account-wide count of clients
    /// without a device mark (absent for a device's check).
    PasswordCheckReserved {
        source: PasswordSource,
        failures: u32,
        throttled_until: Option<i64>,
        account_failures: Option<u32>,
        account_throttled_until: Option<i64>,
        at: i64,
    },
    /// The password checked from `source` was right: the source's count ends,
    /// and its check is taken back from the account-wide count (the other
    /// failures stand). Recorded with the login, or alone when none follows.
    PasswordCheckReleased {
        source: PasswordSource,
        at: i64,
    },
    /// An Admin cleared the wrong-password count and any throttle (and a second-factor lock).
    LoginThrottleCleared {
        by: UserName,
        at: i64,
    },
    /// An account brought over from KBase auth2 with all it held there
    /// (`authledger import-auth2`): the first and only creating event of its stream.
    UserImported(Box<ImportedAccount>),
    /// The same password, hashed anew (argon2id) at its first right check
    /// after an import; the old hash is forgotten. Not a password change: the
    /// password's age and a forced reset stand.
    PasswordRehashed {
        credential_id: Uuid,
        at: i64,
    },
}

domain_event!(UserEvent, |event| match event {
    Self::UserCreated { .. } => USER_CREATED_VERSION,
    Self::LoginRecorded { .. } => LOGIN_RECORDED_VERSION,
    _ => "1.0",
});

/// `UserCreated` 2.0 added `local`; see [`upcast_user_created_v1`].
pub const USER_CREATED_VERSION: &str = "2.0";

/// `UserCreated` 1.0 → 2.0: every account created before provider login existed is local.
pub fn upcast_user_created_v1(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(event) = payload.get_mut("UserCreated").and_then(serde_json::Value::as_object_mut) {
        event.entry("local").or_insert(serde_json::Value::Bool(true));
    }
    payload
}

/// `LoginRecorded` 2.0 added `provider` and `identity`; see [`upcast_login_recorded_v1`].
pub const LOGIN_RECORDED_VERSION: &str = "2.0";

/// `LoginRecorded` 1.0 → 2.0: every login before provider login existed was a password login.
pub fn upcast_login_recorded_v1(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(event) = payload.get_mut("LoginRecorded").and_then(serde_json::Value::as_object_mut) {
        event.entry("provider").or_insert(serde_json::Value::Null);
        event.entry("identity").or_insert(serde_json::Value::Null);
    }
    payload
}

/// A login through a provider to an existing account (upstream's immediate
/// login and `/login/pick`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderLogin {
    pub provider: String,
    /// The identity the user logs in with; the account must have it (or gain it in `link`).
    pub identity: IdentityId,
    /// Other identities of the same answer to link (`linkall`), already claimed for the account.
    pub link: Vec<RemoteIdentity>,
    /// Policy ids to record as agreed (those the user has not agreed to yet).
    pub policy_ids: BTreeSet<PolicyId>,
    pub at: i64,
}

/// An account created from a provider's identity (upstream `/login/create`).
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderAccount {
    pub user: UserName,
    pub display: DisplayName,
    pub email: EmailAddress,
    pub anon_id: Uuid,
    /// The identity the account is created from, claimed for it.
    pub identity: RemoteIdentity,
    /// Other identities of the same answer to link (`linkall`), claimed for it.
    pub link: Vec<RemoteIdentity>,
    pub policy_ids: BTreeSet<PolicyId>,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum UserCommand {
    Create {
        user: UserName,
        display: DisplayName,
        email: Option<EmailAddress>,
        anon_id: Uuid,
        created: i64,
        by: UserName,
        /// A password set at creation; `require_reset` makes it temporary.
        password: Option<NewPassword>,
    },
    /// Changes what differs; `None` leaves a field alone.
    UpdateProfile {
        display: Option<DisplayName>,
        email: Option<EmailAddress>,
    },
    SetPassword(NewPassword),
    /// An administrator forces the next login to change the password;
    /// `end_sessions` also revokes every token of the user, in the same append.
    ForceReset {
        actor: Actor,
        at: i64,
        end_sessions: bool,
    },
    /// A password login.
    RecordLogin {
        at: i64,
        /// The password check the login passed, released with it.
        password_from: Option<PasswordSource>,
    },
    /// A login through a provider (refused for a disabled account).
    LogInWithProvider(Box<ProviderLogin>),
    /// Creates an account from a provider's identity and records its first login.
    CreateFromProvider(Box<ProviderAccount>),
    /// Links identities already claimed for the account; one it has is
    /// refreshed where its details changed. Local accounts cannot link,
    /// except the identities their invitation expected (`via: Invitation`).
    LinkIdentities {
        identities: Vec<RemoteIdentity>,
        via: LinkVia,
        at: i64,
    },
    /// Records new details of identities the account has (others are ignored).
    RefreshIdentities {
        identities: Vec<RemoteIdentity>,
        at: i64,
    },
    /// Unlinks an identity; an account created from a provider keeps at least one.
    UnlinkIdentity {
        id: IdentityId,
        at: i64,
    },
    /// Adds and removes built-in roles under the grant rules.
    UpdateRoles {
        add: BTreeSet<Role>,
        remove: BTreeSet<Role>,
        actor: Actor,
        at: i64,
    },
    /// Built-in and custom roles added and removed together (one append; one
    /// event per kind of change), by the built-in roles' rules; a custom role
    /// outside `known_custom` is refused.
    ChangeRoles(Box<RoleChange>),
    /// Adds and removes custom roles; the caller checked that the roles exist.
    UpdateCustomRoles {
        add: BTreeSet<CustomRoleId>,
        remove: BTreeSet<CustomRoleId>,
        by: UserName,
        at: i64,
    },
    Disable {
        reason: String,
        actor: Actor,
        at: i64,
    },
    Enable {
        actor: Actor,
        at: i64,
    },
    /// The CLI re-enables root when it resets root's password.
    EnableRoot {
        at: i64,
    },
    RevokeAllTokens {
        by: UserName,
        at: i64,
    },
    /// Creates the account an invitation describes, with its password and second factor.
    AcceptInvitation(Box<Invitation>),
    SetLogins {
        logins: BTreeSet<Login>,
        by: UserName,
        at: i64,
    },
    /// The outcome of checking a second-factor code: the matched time step, or
    /// `None` for a wrong code. Refused while the account is locked, and for a
    /// step not newer than the last accepted one (a replayed code).
    VerifySecondFactor {
        step: Option<u64>,
        at: i64,
    },
    /// Reserves a password check from `source`, before the password is
    /// checked (see `domain::throttle`); refused while the source waits.
    ReservePasswordCheck {
        source: PasswordSource,
        at: i64,
    },
    /// Releases a check whose password was right (nothing when `source`
    /// holds no reservation).
    ReleasePasswordCheck {
        source: PasswordSource,
        at: i64,
    },
    /// Clears the wrong-password count, any throttle and a second-factor lock (an Admin).
    ClearLoginThrottle {
        by: UserName,
        at: i64,
    },
    /// Replaces an imported password hash with a new hash of the same
    /// password (the caller checked it), kept under `credential_id`.
    RehashPassword {
        credential_id: Uuid,
        at: i64,
    },
}

/// The reservation a `PasswordCheckReserved` records (what the aggregate
/// and the user directory fold alike).
pub fn reserved_of(event: &UserEvent) -> Option<Reserved> {
    let UserEvent::PasswordCheckReserved {
        source,
        failures,
        throttled_until,
        account_failures,
        account_throttled_until,
        at,
    } = event
    else {
        return None;
    };
    Some(Reserved {
        source: source.clone(),
        count: Count { failures: *failures, until: *throttled_until, last: *at },
        unmarked: account_failures.map(|failures| Count { failures, until: *account_throttled_until, last: *at }),
    })
}

/// Roles to add and remove, built-in and custom, by `actor`.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleChange {
    pub add: BTreeSet<Role>,
    pub remove: BTreeSet<Role>,
    pub add_custom: BTreeSet<CustomRoleId>,
    pub remove_custom: BTreeSet<CustomRoleId>,
    /// The custom roles that exist.
    pub known_custom: BTreeSet<CustomRoleId>,
    pub actor: Actor,
    pub at: i64,
}

/// An accepted invitation: the account it creates.
#[derive(Debug, Clone, PartialEq)]
pub struct Invitation {
    pub invite: Uuid,
    pub invited_by: UserName,
    pub user: UserName,
    pub display: DisplayName,
    pub anon_id: Uuid,
    pub logins: BTreeSet<Login>,
    pub identities: BTreeSet<InvitedIdentity>,
    pub password: NewPassword,
    pub second_factor: Uuid,
    /// The time step of the code the invitee proved the second factor with:
    /// accepted with the account (so it cannot be replayed), and the
    /// account's first login recorded — all in the one append that creates it.
    pub first_step: u64,
    pub at: i64,
}

/// Wrong second-factor codes in a row that lock an account.
pub const SECOND_FACTOR_FAILURE_LIMIT: u32 = 5;
/// How long a lock lasts.
pub const SECOND_FACTOR_LOCK_MS: i64 = 15 * 60 * 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct NewPassword {
    pub credential_id: Uuid,
    pub require_reset: bool,
    pub by: UserName,
    pub at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct User {
    name: Option<UserName>,
    display: Option<DisplayName>,
    email: Option<EmailAddress>,
    roles: BTreeSet<Role>,
    custom_roles: BTreeSet<CustomRoleId>,
    has_password: bool,
    reset_required: bool,
    disabled: bool,
    second_factor: bool,
    last_step: Option<u64>,
    failures: u32,
    locked_until: Option<i64>,
    password_throttle: PasswordThrottle,
    /// Created locally (not from a provider's identity).
    local: bool,
    /// The provider identities linked to the account.
    identities: std::collections::BTreeMap<IdentityId, RemoteIdentity>,
}

/// The error for a locked account.
pub fn locked(until: i64) -> AuthError {
    AuthError::new(
        ErrorType::AuthenticationFailed,
        format!("too many wrong second-factor codes; the account is locked until {until} (epoch ms)"),
    )
}

/// Role descriptions in the contract's order, joined for messages.
fn describe(roles: &BTreeSet<Role>) -> String {
    roles.iter().map(|r| r.description()).collect::<Vec<_>>().join(", ")
}

/// May `actor` reset (or force a reset of) the password of `target`, who holds `target_roles`?
/// (upstream `checkCanResetPassword`)
pub fn check_can_reset_password(
    actor: &Actor,
    target: &UserName,
    target_roles: &BTreeSet<Role>,
) -> Result<(), AuthError> {
    if !target_roles.is_admin_like() || *target == actor.name || actor.name.is_root() {
        return Ok(());
    }
    if target.is_root() {
        return Err(AuthError::unauthorized("Only root can reset root password"));
    }
    if target_roles.contains(&Role::CreateAdmin) {
        return Err(AuthError::unauthorized("Cannot reset password of user with create administrator role"));
    }
    if !actor.roles.contains(&Role::CreateAdmin) {
        return Err(AuthError::unauthorized("Cannot reset password of user with administrator role"));
    }
    Ok(())
}

impl User {
    fn password_events(&self, password: NewPassword) -> Vec<UserEvent> {
        let mut events = vec![UserEvent::PasswordChanged {
            credential_id: password.credential_id,
            changed_by: password.by.clone(),
            at: password.at,
        }];
        if password.require_reset {
            events.push(UserEvent::PasswordResetForced { by: password.by, at: password.at });
        } else if self.reset_required {
            events.push(UserEvent::PasswordResetCleared { at: password.at });
        }
        events
    }

    /// `IdentityLinked` or `IdentityDetailsRefreshed` for each identity that is new or changed.
    fn link_events(&self, identities: Vec<RemoteIdentity>, via: LinkVia, at: i64) -> Vec<UserEvent> {
        let mut events = Vec::new();
        for identity in identities {
            match self.identities.get(&identity.id) {
                Some(known) if *known == identity => {}
                Some(_) => events.push(UserEvent::IdentityDetailsRefreshed { identity, at }),
                None => events.push(UserEvent::IdentityLinked { identity, via, at }),
            }
        }
        events
    }

    /// The events of adding and removing built-in roles, by `actor`'s rights (upstream's rules).
    fn role_events(
        &self,
        name: &UserName,
        add: BTreeSet<Role>,
        remove: BTreeSet<Role>,
        actor: Actor,
        at: i64,
    ) -> Result<Vec<UserEvent>, AuthError> {
        let both: BTreeSet<Role> = add.intersection(&remove).copied().collect();
        if !both.is_empty() {
            return Err(AuthError::illegal(format!(
                "One or more roles is to be both removed and added: {}",
                describe(&both)
            )));
        }
        if name.is_root() {
            return Err(AuthError::unauthorized("Cannot change ROOT roles"));
        }
        let ungrantable: BTreeSet<Role> = add.iter().filter(|r| !actor.roles.may_grant(**r)).copied().collect();
        if !ungrantable.is_empty() {
            return Err(AuthError::unauthorized(format!(
                "User {} is not authorized to grant role(s): {}",
                actor.name,
                describe(&ungrantable)
            )));
        }
        let unremovable: BTreeSet<Role> = remove.iter().filter(|r| !actor.roles.may_grant(**r)).copied().collect();
        if !unremovable.is_empty() && actor.name != *name {
            return Err(AuthError::unauthorized(format!(
                "User {} is not authorized to remove role(s): {}",
                actor.name,
                describe(&unremovable)
            )));
        }
        let granted: BTreeSet<Role> = add.difference(&self.roles).copied().collect();
        let removed: BTreeSet<Role> = remove.intersection(&self.roles).copied().collect();
        let mut events = Vec::new();
        if !granted.is_empty() {
            events.push(UserEvent::RolesGranted { roles: granted, by: actor.name.clone(), at });
        }
        if !removed.is_empty() {
            events.push(UserEvent::RolesRemoved { roles: removed, by: actor.name, at });
        }
        Ok(events)
    }

    /// The events of adding and removing custom roles (their existence checked by the caller or the command).
    fn custom_role_events(
        &self,
        add: BTreeSet<CustomRoleId>,
        remove: BTreeSet<CustomRoleId>,
        by: UserName,
        at: i64,
    ) -> Result<Vec<UserEvent>, AuthError> {
        let both: Vec<&str> = add.intersection(&remove).map(CustomRoleId::as_str).collect();
        if !both.is_empty() {
            return Err(AuthError::illegal(format!(
                "One or more roles is to be both removed and added: {}",
                both.join(", ")
            )));
        }
        let granted: BTreeSet<CustomRoleId> = add.difference(&self.custom_roles).cloned().collect();
        let removed: BTreeSet<CustomRoleId> = remove.intersection(&self.custom_roles).cloned().collect();
        let mut events = Vec::new();
        if !granted.is_empty() {
            events.push(UserEvent::CustomRolesGranted { roles: granted, by: by.clone(), at });
        }
        if !removed.is_empty() {
            events.push(UserEvent::CustomRolesRemoved { roles: removed, by, at });
        }
        Ok(events)
    }

    fn decide(&self, command: UserCommand) -> Result<Vec<UserEvent>, AuthError> {
        let name = match (&command, &self.name) {
            (UserCommand::Create { user, .. }, Some(_)) => {
                return Err(AuthError::new(ErrorType::UserAlreadyExists, user.as_str()));
            }
            (UserCommand::CreateFromProvider(account), Some(_)) => {
                return Err(AuthError::new(ErrorType::UserAlreadyExists, account.user.as_str()));
            }
            (UserCommand::CreateFromProvider(account), None) => account.user.clone(),
            (UserCommand::AcceptInvitation(invitation), Some(_)) => {
                return Err(AuthError::new(ErrorType::UserAlreadyExists, invitation.user.as_str()));
            }
            (UserCommand::Create { user, .. }, None) => user.clone(),
            (UserCommand::AcceptInvitation(invitation), None) => invitation.user.clone(),
            (_, Some(name)) => name.clone(),
            (_, None) => return Err(AuthError::bare(ErrorType::NoSuchUser)),
        };
        let events = match command {
            UserCommand::Create { user, display, email, anon_id, created, by, password } => {
                let root = user.is_root();
                let mut events = vec![UserEvent::UserCreated {
                    user,
                    display,
                    email,
                    anon_id,
                    created,
                    created_by: by.clone(),
                    local: true,
                }];
                if root {
                    events.push(UserEvent::RolesGranted { roles: BTreeSet::from([Role::Root]), by, at: created });
                }
                if let Some(password) = password {
                    events.extend(self.password_events(password));
                }
                events
            }
            UserCommand::UpdateProfile { display, email } => {
                let mut events = Vec::new();
                if let Some(display) = display.filter(|d| Some(d) != self.display.as_ref()) {
                    events.push(UserEvent::DisplayNameChanged { display });
                }
                if let Some(email) = email.filter(|e| Some(e) != self.email.as_ref()) {
                    events.push(UserEvent::EmailChanged { email: Some(email) });
                }
                events
            }
            UserCommand::SetPassword(password) => self.password_events(password),
            UserCommand::ForceReset { actor, at, end_sessions } => {
                if !self.has_password {
                    return Err(AuthError::new(
                        ErrorType::NoSuchUser,
                        format!("{name} is not a local user and has no password"),
                    ));
                }
                check_can_reset_password(&actor, &name, &self.roles)?;
                let mut events = vec![UserEvent::PasswordResetForced { by: actor.name.clone(), at }];
                if end_sessions {
                    events.push(UserEvent::UserTokensRevoked { by: actor.name, at });
                }
                events
            }
            UserCommand::RecordLogin { at, password_from } => {
                let mut events = Vec::new();
                if let Some(source) = password_from.filter(|s| self.password_throttle.releasable(s)) {
                    events.push(UserEvent::PasswordCheckReleased { source, at });
                }
                events.push(UserEvent::LoginRecorded { at, provider: None, identity: None });
                events
            }
            UserCommand::LogInWithProvider(login) => {
                let ProviderLogin { provider, identity, link, policy_ids, at } = *login;
                if self.disabled {
                    return Err(AuthError::disabled(name.as_str()));
                }
                if !self.identities.contains_key(&identity) && !link.iter().any(|i| i.id == identity) {
                    return Err(AuthError::new(
                        ErrorType::AuthenticationFailed,
                        "There is no account linked to the provided identity ID",
                    ));
                }
                let mut events = self.link_events(link, LinkVia::LinkAll, at);
                if !policy_ids.is_empty() {
                    events.push(UserEvent::PolicyIdsAgreed { policy_ids, at });
                }
                events.push(UserEvent::LoginRecorded { at, provider: Some(provider), identity: Some(identity) });
                events
            }
            UserCommand::CreateFromProvider(account) => {
                let ProviderAccount { user, display, email, anon_id, identity, link, policy_ids, at } = *account;
                let provider = identity.provider.clone();
                let id = identity.id.clone();
                let mut events = vec![
                    UserEvent::UserCreated {
                        user: user.clone(),
                        display,
                        email: Some(email),
                        anon_id,
                        created: at,
                        created_by: user,
                        local: false,
                    },
                    UserEvent::IdentityLinked { identity, via: LinkVia::Creation, at },
                ];
                let linked = link.into_iter().filter(|i| i.id != id).map(|identity| UserEvent::IdentityLinked {
                    identity,
                    via: LinkVia::LinkAll,
                    at,
                });
                events.extend(linked);
                if !policy_ids.is_empty() {
                    events.push(UserEvent::PolicyIdsAgreed { policy_ids, at });
                }
                events.push(UserEvent::LoginRecorded { at, provider: Some(provider), identity: Some(id) });
                events
            }
            UserCommand::LinkIdentities { identities, via, at } => {
                if self.local && via != LinkVia::Invitation {
                    return Err(AuthError::new(
                        ErrorType::LinkFailed,
                        format!("Cannot link identities to local account {name}"),
                    ));
                }
                if self.disabled {
                    return Err(AuthError::disabled(name.as_str()));
                }
                self.link_events(identities, via, at)
            }
            UserCommand::RefreshIdentities { identities, at } => {
                let known: Vec<RemoteIdentity> =
                    identities.into_iter().filter(|i| self.identities.contains_key(&i.id)).collect();
                self.link_events(known, LinkVia::Link, at)
            }
            UserCommand::UnlinkIdentity { id, at } => {
                if self.identities.is_empty() && self.local {
                    return Err(AuthError::new(
                        ErrorType::UnlinkFailed,
                        format!("Local user {name} doesn't have remote identities"),
                    ));
                }
                if self.identities.len() == 1 && !self.local {
                    return Err(AuthError::new(ErrorType::UnlinkFailed, "The user has only one associated identity"));
                }
                if !self.identities.contains_key(&id) {
                    return Err(AuthError::new(
                        ErrorType::NoSuchIdentity,
                        format!("The user is not linked to identity {id}"),
                    ));
                }
                vec![UserEvent::IdentityUnlinked { id, at }]
            }
            UserCommand::UpdateRoles { add, remove, actor, at } => self.role_events(&name, add, remove, actor, at)?,
            UserCommand::UpdateCustomRoles { add, remove, by, at } => self.custom_role_events(add, remove, by, at)?,
            UserCommand::ChangeRoles(change) => {
                let RoleChange { add, remove, add_custom, remove_custom, known_custom, actor, at } = *change;
                if let Some(unknown) = add_custom.iter().chain(&remove_custom).find(|id| !known_custom.contains(*id)) {
                    return Err(AuthError::new(ErrorType::NoSuchRole, unknown.as_str()));
                }
                let mut events = Vec::new();
                if !add.is_empty() || !remove.is_empty() {
                    events.extend(self.role_events(&name, add, remove, actor.clone(), at)?);
                }
                events.extend(self.custom_role_events(add_custom, remove_custom, actor.name, at)?);
                events
            }
            UserCommand::Disable { reason, actor, at } => {
                if name.is_root() && !actor.name.is_root() {
                    return Err(AuthError::unauthorized(format!(
                        "User {} cannot disable the root account",
                        actor.name
                    )));
                }
                vec![UserEvent::UserDisabled { reason, by: actor.name, at }]
            }
            UserCommand::Enable { actor, at } => {
                if name.is_root() {
                    return Err(AuthError::unauthorized(format!(
                        "User {} cannot enable the root user via this method",
                        actor.name
                    )));
                }
                if self.disabled { vec![UserEvent::UserEnabled { by: actor.name, at }] } else { vec![] }
            }
            UserCommand::EnableRoot { at } => {
                if self.disabled {
                    vec![UserEvent::UserEnabled { by: UserName::root(), at }]
                } else {
                    vec![]
                }
            }
            UserCommand::RevokeAllTokens { by, at } => {
                vec![UserEvent::UserTokensRevoked { by, at }]
            }
            UserCommand::AcceptInvitation(invitation) => {
                let Invitation {
                    invite,
                    invited_by,
                    user,
                    display,
                    anon_id,
                    logins,
                    identities,
                    password,
                    second_factor,
                    first_step,
                    at,
                } = *invitation;
                let mut events = vec![
                    UserEvent::UserCreated {
                        user,
                        display,
                        email: None,
                        anon_id,
                        created: at,
                        created_by: invited_by.clone(),
                        local: true,
                    },
                    UserEvent::InvitationAccepted { invite, invited_by: invited_by.clone(), at },
                    UserEvent::LoginsChanged { logins, by: invited_by, at },
                ];
                if !identities.is_empty() {
                    events.push(UserEvent::IdentitiesLinked { identities, at });
                }
                events.extend(self.password_events(password));
                events.push(UserEvent::SecondFactorEnrolled { credential_id: second_factor, at });
                events.push(UserEvent::SecondFactorAccepted { step: first_step, at });
                events.push(UserEvent::LoginRecorded { at, provider: None, identity: None });
                events
            }
            UserCommand::SetLogins { logins, by, at } => vec![UserEvent::LoginsChanged { logins, by, at }],
            UserCommand::ReservePasswordCheck { source, at } => {
                let reserved = self.password_throttle.reserve(source, at)?;
                vec![UserEvent::PasswordCheckReserved {
                    source: reserved.source,
                    failures: reserved.count.failures,
                    throttled_until: reserved.count.until,
                    account_failures: reserved.unmarked.map(|c| c.failures),
                    account_throttled_until: reserved.unmarked.and_then(|c| c.until),
                    at,
                }]
            }
            UserCommand::ReleasePasswordCheck { source, at } => match self.password_throttle.releasable(&source) {
                true => vec![UserEvent::PasswordCheckReleased { source, at }],
                false => Vec::new(),
            },
            UserCommand::ClearLoginThrottle { by, at } => vec![UserEvent::LoginThrottleCleared { by, at }],
            UserCommand::RehashPassword { credential_id, at } => {
                if !self.has_password {
                    return Err(AuthError::new(ErrorType::NoSuchUser, format!("{name} has no password")));
                }
                vec![UserEvent::PasswordRehashed { credential_id, at }]
            }
            UserCommand::VerifySecondFactor { step, at } => {
                if !self.second_factor {
                    return Err(AuthError::illegal(format!("{name} has no second factor")));
                }
                if let Some(until) = self.locked_until.filter(|until| at < *until) {
                    return Err(locked(until));
                }
                match step {
                    Some(step) if self.last_step.is_some_and(|last| step <= last) => {
                        return Err(AuthError::new(
                            ErrorType::AuthenticationFailed,
                            "this second-factor code was already used; wait for the next one",
                        ));
                    }
                    Some(step) => vec![UserEvent::SecondFactorAccepted { step, at }],
                    None => {
                        let failures = self.failures + 1;
                        let locked_until =
                            (failures >= SECOND_FACTOR_FAILURE_LIMIT).then(|| at + SECOND_FACTOR_LOCK_MS);
                        vec![UserEvent::SecondFactorRejected { failures, locked_until, at }]
                    }
                }
            }
        };
        Ok(events)
    }
}

impl Aggregate for User {
    const TYPE: &'static str = "User";
    type Command = UserCommand;
    type Event = UserEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: UserCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: UserEvent) {
        match event {
            UserEvent::UserCreated { user, display, email, local, .. } => {
                self.name = Some(user);
                self.display = Some(display);
                self.email = email;
                self.local = local;
            }
            UserEvent::DisplayNameChanged { display } => self.display = Some(display),
            UserEvent::EmailChanged { email } => self.email = email,
            UserEvent::PasswordChanged { .. } => {
                self.has_password = true;
                self.password_throttle = PasswordThrottle::default();
            }
            UserEvent::PasswordResetForced { .. } => self.reset_required = true,
            UserEvent::PasswordResetCleared { .. } => self.reset_required = false,
            UserEvent::LoginRecorded { .. } => self.password_throttle.logged_in(),
            UserEvent::UserTokensRevoked { .. } => {}
            UserEvent::RolesGranted { roles, .. } => self.roles.extend(roles),
            UserEvent::RolesRemoved { roles, .. } => self.roles.retain(|r| !roles.contains(r)),
            UserEvent::CustomRolesGranted { roles, .. } => self.custom_roles.extend(roles),
            UserEvent::CustomRolesRemoved { roles, .. } => self.custom_roles.retain(|r| !roles.contains(r)),
            UserEvent::UserDisabled { .. } => self.disabled = true,
            UserEvent::UserEnabled { .. } => self.disabled = false,
            UserEvent::InvitationAccepted { .. }
            | UserEvent::LoginsChanged { .. }
            | UserEvent::IdentitiesLinked { .. }
            | UserEvent::PolicyIdsAgreed { .. } => {}
            UserEvent::IdentityLinked { identity, .. } | UserEvent::IdentityDetailsRefreshed { identity, .. } => {
                self.identities.insert(identity.id.clone(), identity);
            }
            UserEvent::IdentityUnlinked { id, .. } => {
                self.identities.remove(&id);
            }
            UserEvent::SecondFactorEnrolled { .. } => self.second_factor = true,
            UserEvent::SecondFactorAccepted { step, .. } => {
                self.last_step = Some(step);
                self.failures = 0;
                self.locked_until = None;
            }
            UserEvent::SecondFactorRejected { failures, locked_until, .. } => {
                // A lock starts a new count.
                self.failures = if locked_until.is_some() { 0 } else { failures };
                self.locked_until = locked_until;
            }
            UserEvent::PasswordRejected { failures, throttled_until, at } => {
                self.password_throttle.rejected_v1(failures, throttled_until, at);
            }
            event @ UserEvent::PasswordCheckReserved { .. } => {
                if let Some(reserved) = reserved_of(&event) {
                    self.password_throttle.reserved(&reserved);
                }
            }
            UserEvent::PasswordCheckReleased { source, .. } => self.password_throttle.released(&source),
            UserEvent::LoginThrottleCleared { .. } => {
                self.password_throttle = PasswordThrottle::default();
                self.failures = 0;
                self.locked_until = None;
            }
            UserEvent::UserImported(account) => {
                let account = *account;
                self.disabled = account.disabled();
                self.name = Some(account.user);
                self.display = Some(account.display);
                self.email = account.email;
                self.local = account.local;
                self.roles = account.roles;
                self.custom_roles = account.custom_roles;
                self.has_password = account.credential_id.is_some();
                self.reset_required = account.reset_required;
                self.identities = account.identities.into_iter().map(|i| (i.id.clone(), i)).collect();
            }
            UserEvent::PasswordRehashed { .. } => {}
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    pub(crate) fn name(n: &str) -> UserName {
        UserName::from_log(n.to_owned())
    }

    pub(crate) fn created(n: &str) -> UserEvent {
        UserEvent::UserCreated {
            user: name(n),
            display: DisplayName::parse(Some("Alice Smith")).expect("valid"),
            email: EmailAddress::parse(Some("alice@example.org")).ok(),
            anon_id: Uuid::from_u128(0x2c1b5a8e_4f5b_4d8e_9d6e_0d7f1c1a0b9e),
            created: 1_700_000_000_000,
            created_by: UserName::root(),
            local: true,
        }
    }

    fn actor(n: &str, roles: &[Role]) -> Actor {
        Actor { name: name(n), roles: roles.iter().copied().collect() }
    }

    fn update_roles(add: &[Role], remove: &[Role], by: Actor) -> UserCommand {
        UserCommand::UpdateRoles {
            add: add.iter().copied().collect(),
            remove: remove.iter().copied().collect(),
            actor: by,
            at: 5,
        }
    }

    #[tokio::test]
    async fn creating_an_existing_user_fails() {
        let UserEvent::UserCreated { user, display, email, anon_id, created: at, created_by, .. } = created("alice")
        else {
            unreachable!()
        };
        TestFramework::<User>::with(())
            .given(vec![created("alice")])
            .when_async(UserCommand::Create {
                user,
                display,
                email,
                anon_id,
                created: at,
                by: created_by,
                password: None,
            })
            .await
            .then_expect_error_message("40000 User already exists: alice");
    }

    #[tokio::test]
    async fn creating_with_a_temporary_password_forces_a_reset() {
        let UserEvent::UserCreated { user, display, email, anon_id, created: at, created_by, .. } = created("alice")
        else {
            unreachable!()
        };
        let credential_id = Uuid::from_u128(7);
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when_async(UserCommand::Create {
                user,
                display,
                email,
                anon_id,
                created: at,
                by: created_by.clone(),
                password: Some(NewPassword { credential_id, require_reset: true, by: created_by.clone(), at }),
            })
            .await
            .then_expect_events(vec![
                created("alice"),
                UserEvent::PasswordChanged { credential_id, changed_by: created_by.clone(), at },
                UserEvent::PasswordResetForced { by: created_by, at },
            ]);
    }

    #[tokio::test]
    async fn changing_the_password_clears_a_forced_reset() {
        let credential_id = Uuid::from_u128(8);
        TestFramework::<User>::with(())
            .given(vec![created("alice"), UserEvent::PasswordResetForced { by: UserName::root(), at: 2 }])
            .when_async(UserCommand::SetPassword(NewPassword {
                credential_id,
                require_reset: false,
                by: name("alice"),
                at: 3,
            }))
            .await
            .then_expect_events(vec![
                UserEvent::PasswordChanged { credential_id, changed_by: name("alice"), at: 3 },
                UserEvent::PasswordResetCleared { at: 3 },
            ]);
    }

    #[tokio::test]
    async fn admins_grant_token_roles_only_the_missing_ones_are_recorded() {
        TestFramework::<User>::with(())
            .given(vec![
                created("bob"),
                UserEvent::RolesGranted { roles: BTreeSet::from([Role::DevToken]), by: name("al"), at: 1 },
            ])
            .when_async(update_roles(&[Role::DevToken, Role::ServToken], &[], actor("al", &[Role::Admin])))
            .await
            .then_expect_events(vec![UserEvent::RolesGranted {
                roles: BTreeSet::from([Role::ServToken]),
                by: name("al"),
                at: 5,
            }]);
    }

    #[tokio::test]
    async fn root_may_not_grant_admin() {
        TestFramework::<User>::with(())
            .given(vec![created("bob")])
            .when_async(update_roles(&[Role::Admin], &[], actor("***ROOT***", &[Role::Root])))
            .await
            .then_expect_error_message(
                "20000 Unauthorized: User ***ROOT*** is not authorized to grant role(s): Administrator",
            );
    }

    #[tokio::test]
    async fn anyone_may_remove_their_own_roles() {
        TestFramework::<User>::with(())
            .given(vec![
                created("bob"),
                UserEvent::RolesGranted { roles: BTreeSet::from([Role::Admin]), by: name("c"), at: 1 },
            ])
            .when_async(update_roles(&[], &[Role::Admin], actor("bob", &[Role::Admin])))
            .await
            .then_expect_events(vec![UserEvent::RolesRemoved {
                roles: BTreeSet::from([Role::Admin]),
                by: name("bob"),
                at: 5,
            }]);
    }

    #[tokio::test]
    async fn others_roles_are_removed_only_within_the_grant_rules() {
        TestFramework::<User>::with(())
            .given(vec![
                created("bob"),
                UserEvent::RolesGranted { roles: BTreeSet::from([Role::Admin]), by: name("c"), at: 1 },
            ])
            .when_async(update_roles(&[], &[Role::Admin, Role::DevToken], actor("al", &[Role::Admin])))
            .await
            .then_expect_error_message(
                "20000 Unauthorized: User al is not authorized to remove role(s): Administrator",
            );
    }

    #[tokio::test]
    async fn a_role_cannot_be_added_and_removed_at_once() {
        TestFramework::<User>::with(())
            .given(vec![created("bob")])
            .when_async(update_roles(&[Role::DevToken], &[Role::DevToken], actor("al", &[Role::Admin])))
            .await
            .then_expect_error_message(
                "30001 Illegal input parameter: One or more roles is to be both removed and added: Create developer tokens",
            );
    }

    #[tokio::test]
    async fn roots_roles_never_change() {
        TestFramework::<User>::with(())
            .given(vec![created("***ROOT***")])
            .when_async(update_roles(&[Role::CreateAdmin], &[], actor("***ROOT***", &[Role::Root])))
            .await
            .then_expect_error_message("20000 Unauthorized: Cannot change ROOT roles");
    }

    #[tokio::test]
    async fn only_root_disables_root() {
        TestFramework::<User>::with(())
            .given(vec![created("***ROOT***")])
            .when_async(UserCommand::Disable { reason: "x".into(), actor: actor("al", &[Role::Admin]), at: 1 })
            .await
            .then_expect_error_message("20000 Unauthorized: User al cannot disable the root account");
    }

    #[tokio::test]
    async fn enabling_an_enabled_user_records_nothing() {
        TestFramework::<User>::with(())
            .given(vec![created("bob")])
            .when_async(UserCommand::Enable { actor: actor("al", &[Role::Admin]), at: 1 })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn a_plain_admin_cannot_reset_another_admins_password() {
        TestFramework::<User>::with(())
            .given(vec![
                created("bob"),
                UserEvent::PasswordChanged { credential_id: Uuid::from_u128(1), changed_by: name("bob"), at: 1 },
                UserEvent::RolesGranted { roles: BTreeSet::from([Role::Admin]), by: name("c"), at: 1 },
            ])
            .when_async(UserCommand::ForceReset { actor: actor("al", &[Role::Admin]), at: 2, end_sessions: false })
            .await
            .then_expect_error_message("20000 Unauthorized: Cannot reset password of user with administrator role");
    }

    #[tokio::test]
    async fn commands_on_a_missing_user_fail() {
        TestFramework::<User>::with(())
            .given_no_previous_events()
            .when_async(UserCommand::RecordLogin { at: 1, password_from: None })
            .await
            .then_expect_error(AuthError::bare(ErrorType::NoSuchUser));
    }

    fn enrolled(n: &str) -> Vec<UserEvent> {
        vec![created(n), UserEvent::SecondFactorEnrolled { credential_id: Uuid::from_u128(9), at: 1 }]
    }

    fn rejected(failures: u32, locked_until: Option<i64>) -> UserEvent {
        UserEvent::SecondFactorRejected { failures, locked_until, at: 10 }
    }

    fn address(a: &str) -> PasswordSource {
        PasswordSource::Address(a.into())
    }

    fn reservation(
        source: &PasswordSource,
        failures: u32,
        until: Option<i64>,
        account: Option<(u32, Option<i64>)>,
    ) -> UserEvent {
        UserEvent::PasswordCheckReserved {
            source: source.clone(),
            failures,
            throttled_until: until,
            account_failures: account.map(|a| a.0),
            account_throttled_until: account.and_then(|a| a.1),
            at: 10,
        }
    }

    #[tokio::test]
    async fn a_check_is_reserved_until_the_source_waits() {
        let guesser = address("guesser");
        let mut given = vec![created("dora")];
        given.extend((1..5).map(|n| reservation(&guesser, n, None, Some((n, None)))));
        TestFramework::<User>::with(())
            .given(given.clone())
            .when_async(UserCommand::ReservePasswordCheck { source: guesser.clone(), at: 10 })
            .await
            .then_expect_events(vec![reservation(&guesser, 5, Some(1_010), Some((5, None)))]);
        given.push(reservation(&guesser, 5, Some(1_010), Some((5, None))));
        TestFramework::<User>::with(())
            .given(given.clone())
            .when_async(UserCommand::ReservePasswordCheck { source: guesser.clone(), at: 10 })
            .await
            .then_expect_error_message(
                "10000 Authentication failed: too many wrong passwords; the next attempt is possible at 1010 (epoch ms)",
            );
        // Another client of the account is not slowed; a device does not count account-wide.
        TestFramework::<User>::with(())
            .given(given.clone())
            .when_async(UserCommand::ReservePasswordCheck { source: address("owner"), at: 10 })
            .await
            .then_expect_events(vec![reservation(&address("owner"), 1, None, Some((6, None)))]);
        let device = PasswordSource::Device("d1".into());
        TestFramework::<User>::with(())
            .given(given.clone())
            .when_async(UserCommand::ReservePasswordCheck { source: device.clone(), at: 10 })
            .await
            .then_expect_events(vec![reservation(&device, 1, None, None)]);
        // A password change, or an administrator's clearing, ends every count.
        for end in [
            UserEvent::PasswordChanged { credential_id: Uuid::from_u128(3), changed_by: name("dora"), at: 11 },
            UserEvent::LoginThrottleCleared { by: name("admin"), at: 11 },
        ] {
            let mut ended = given.clone();
            ended.push(end);
            TestFramework::<User>::with(())
                .given(ended)
                .when_async(UserCommand::ReservePasswordCheck { source: guesser.clone(), at: 10 })
                .await
                .then_expect_events(vec![reservation(&guesser, 1, None, Some((1, None)))]);
        }
    }

    #[tokio::test]
    async fn a_password_login_releases_its_check_with_the_login() {
        let source = address("a");
        let given = vec![created("dora"), reservation(&source, 1, None, Some((1, None)))];
        TestFramework::<User>::with(())
            .given(given)
            .when_async(UserCommand::RecordLogin { at: 11, password_from: Some(source.clone()) })
            .await
            .then_expect_events(vec![
                UserEvent::PasswordCheckReleased { source, at: 11 },
                UserEvent::LoginRecorded { at: 11, provider: None, identity: None },
            ]);
    }

    #[tokio::test]
    async fn a_release_takes_back_only_what_was_reserved() {
        let source = address("a");
        let given = vec![created("dora"), reservation(&source, 1, None, Some((1, None)))];
        TestFramework::<User>::with(())
            .given(given.clone())
            .when_async(UserCommand::ReleasePasswordCheck { source: source.clone(), at: 11 })
            .await
            .then_expect_events(vec![UserEvent::PasswordCheckReleased { source: source.clone(), at: 11 }]);
        let mut released = given;
        released.push(UserEvent::PasswordCheckReleased { source: source.clone(), at: 11 });
        TestFramework::<User>::with(())
            .given(released)
            .when_async(UserCommand::ReleasePasswordCheck { source, at: 12 })
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn an_old_single_count_still_makes_every_client_wait() {
        let given =
            vec![created("dora"), UserEvent::PasswordRejected { failures: 9, throttled_until: Some(5_000), at: 10 }];
        TestFramework::<User>::with(())
            .given(given)
            .when_async(UserCommand::ReservePasswordCheck { source: address("anyone"), at: 20 })
            .await
            .then_expect_error_message(
                "10000 Authentication failed: too many wrong passwords; the next attempt is possible at 5000 (epoch ms)",
            );
    }

    #[tokio::test]
    async fn the_fifth_wrong_code_locks_the_account() {
        let mut given = enrolled("carol");
        given.extend((1..5).map(|n| rejected(n, None)));
        TestFramework::<User>::with(())
            .given(given)
            .when_async(UserCommand::VerifySecondFactor { step: None, at: 10 })
            .await
            .then_expect_events(vec![rejected(5, Some(10 + SECOND_FACTOR_LOCK_MS))]);
    }

    #[tokio::test]
    async fn a_locked_account_refuses_even_a_right_code() {
        let mut given = enrolled("carol");
        given.push(rejected(5, Some(1_000)));
        TestFramework::<User>::with(())
            .given(given)
            .when_async(UserCommand::VerifySecondFactor { step: Some(3), at: 999 })
            .await
            .then_expect_error(locked(1_000));
    }

    #[tokio::test]
    async fn after_the_lock_a_right_code_is_accepted() {
        let mut given = enrolled("carol");
        given.push(rejected(5, Some(1_000)));
        TestFramework::<User>::with(())
            .given(given)
            .when_async(UserCommand::VerifySecondFactor { step: Some(3), at: 1_000 })
            .await
            .then_expect_events(vec![UserEvent::SecondFactorAccepted { step: 3, at: 1_000 }]);
    }

    #[tokio::test]
    async fn a_code_is_accepted_once() {
        let mut given = enrolled("carol");
        given.push(UserEvent::SecondFactorAccepted { step: 3, at: 5 });
        TestFramework::<User>::with(())
            .given(given)
            .when_async(UserCommand::VerifySecondFactor { step: Some(3), at: 6 })
            .await
            .then_expect_error_message(
                "10000 Authentication failed: this second-factor code was already used; wait for the next one",
            );
    }

    #[test]
    fn events_from_before_provider_login_read_as_local_password_logins() {
        use crate::domain::{LedgerEvent, LogEvent};
        let decode = |event_type: &str, payload: &str| {
            LedgerEvent::decode("User", event_type, "1.0", payload, &crate::domain::upcasters()).ok()
        };
        let mut v1 = serde_json::to_value(created("alice")).unwrap_or_default();
        if let Some(fields) = v1["UserCreated"].as_object_mut() {
            fields.remove("local");
        }
        assert_eq!(decode("UserCreated", &v1.to_string()), Some(LedgerEvent::User(created("alice"))));
        let login = UserEvent::LoginRecorded { at: 7, provider: None, identity: None };
        assert_eq!(decode("LoginRecorded", r#"{"LoginRecorded":{"at":7}}"#), Some(LedgerEvent::User(login)));
    }

    fn remote(sub: &str) -> RemoteIdentity {
        RemoteIdentity::new("OIDC", sub, sub, None, Some(format!("{sub}@example.org")))
    }

    fn provider_created(n: &str, sub: &str) -> Vec<UserEvent> {
        let UserEvent::UserCreated { user, display, email, anon_id, created: at, .. } = created(n) else {
            unreachable!()
        };
        vec![
            UserEvent::UserCreated {
                user: user.clone(),
                display,
                email,
                anon_id,
                created: at,
                created_by: user,
                local: false,
            },
            UserEvent::IdentityLinked { identity: remote(sub), via: LinkVia::Creation, at },
        ]
    }

    #[tokio::test]
    async fn an_account_from_a_provider_keeps_its_last_identity() {
        TestFramework::<User>::with(())
            .given(provider_created("alice", "s1"))
            .when_async(UserCommand::UnlinkIdentity { id: remote("s1").id, at: 2 })
            .await
            .then_expect_error_message("60010 Account unlink failed: The user has only one associated identity");
        let mut given = provider_created("alice", "s1");
        given.push(UserEvent::IdentityLinked { identity: remote("s2"), via: LinkVia::Link, at: 1 });
        TestFramework::<User>::with(())
            .given(given.clone())
            .when_async(UserCommand::UnlinkIdentity { id: remote("s2").id, at: 2 })
            .await
            .then_expect_events(vec![UserEvent::IdentityUnlinked { id: remote("s2").id, at: 2 }]);
        TestFramework::<User>::with(())
            .given(given)
            .when_async(UserCommand::UnlinkIdentity { id: IdentityId::named("ffff"), at: 2 })
            .await
            .then_expect_error_message("50030 No such identity: The user is not linked to identity ffff");
    }

    #[tokio::test]
    async fn local_accounts_link_only_what_their_invitation_expected() {
        TestFramework::<User>::with(())
            .given(vec![created("loc")])
            .when_async(UserCommand::LinkIdentities { identities: vec![remote("s1")], via: LinkVia::Link, at: 2 })
            .await
            .then_expect_error_message("60000 Account linkage failed: Cannot link identities to local account loc");
        TestFramework::<User>::with(())
            .given(vec![created("loc")])
            .when_async(UserCommand::UnlinkIdentity { id: remote("s1").id, at: 2 })
            .await
            .then_expect_error_message("60010 Account unlink failed: Local user loc doesn't have remote identities");
        TestFramework::<User>::with(())
            .given(vec![created("loc")])
            .when_async(UserCommand::LinkIdentities { identities: vec![remote("s1")], via: LinkVia::Invitation, at: 2 })
            .await
            .then_expect_events(vec![UserEvent::IdentityLinked {
                identity: remote("s1"),
                via: LinkVia::Invitation,
                at: 2,
            }]);
    }

    #[tokio::test]
    async fn a_provider_login_refreshes_nothing_it_need_not_and_refuses_a_disabled_account() {
        let login = |identity: IdentityId| {
            UserCommand::LogInWithProvider(Box::new(ProviderLogin {
                provider: "OIDC".into(),
                identity,
                link: Vec::new(),
                policy_ids: BTreeSet::new(),
                at: 3,
            }))
        };
        TestFramework::<User>::with(())
            .given(provider_created("alice", "s1"))
            .when_async(login(remote("s1").id))
            .await
            .then_expect_events(vec![UserEvent::LoginRecorded {
                at: 3,
                provider: Some("OIDC".into()),
                identity: Some(remote("s1").id),
            }]);
        TestFramework::<User>::with(())
            .given(provider_created("alice", "s1"))
            .when_async(login(remote("s2").id))
            .await
            .then_expect_error_message(
                "10000 Authentication failed: There is no account linked to the provided identity ID",
            );
        let mut given = provider_created("alice", "s1");
        given.push(UserEvent::UserDisabled { reason: "x".into(), by: name("al"), at: 2 });
        TestFramework::<User>::with(())
            .given(given)
            .when_async(login(remote("s1").id))
            .await
            .then_expect_error_message("20010 Account disabled: alice");
    }

    #[tokio::test]
    async fn linking_again_records_only_changed_details() {
        let mut renamed = remote("s1");
        renamed.username = "new-name".into();
        TestFramework::<User>::with(())
            .given(provider_created("alice", "s1"))
            .when_async(UserCommand::RefreshIdentities {
                identities: vec![remote("s1"), renamed.clone(), remote("s9")],
                at: 4,
            })
            .await
            .then_expect_events(vec![UserEvent::IdentityDetailsRefreshed { identity: renamed, at: 4 }]);
    }
}
