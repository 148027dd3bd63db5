//! Local accounts: password login and password changes (contract §9 and the
//! upstream `LocalAccounts` resource), second factors at login, new local
//! accounts and administrators' password resets. Passwords are checked and
//! stored here (argon2id, in the credentials store); the rules for who may do
//! what are the domain's.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

use super::acting::Acting;
use super::ledger::Ledger;
use super::passwords::{Admitted, Checked, Turn};
use super::throttle::{PasswordClient, Reservation};
use super::tokens::{self, NewToken};
use super::{AppError, forget_secret, legacy_password, passwords, second_factor, undo_secret};
use crate::domain::throttle::{PasswordSource, is_throttled};
use crate::domain::token::{ClientInfo, Mfa};
use crate::domain::user::{NewPassword, check_can_reset_password, locked};
use crate::domain::{
    AuthError, DisplayName, EmailAddress, ErrorType, Role, RoleSet, TokenKind, User, UserCommand, UserName,
};
use crate::projections::{TokenView, UserRecord};
use crate::store::EventMetadata;

/// A password found right: the account, and the check reserved for it
/// (released by whatever the flow ends in; see [`settle`]).
pub struct Verified<'a> {
    pub record: UserRecord,
    reservation: Reservation,
    /// The name's turn, held until the check is settled (see `passwords::PER_NAME_AT_ONCE`).
    _turn: Turn<'a>,
}

/// Checks a local user's password, then whether they may log in now
/// (upstream `getLocalUser`: password, non-admin login switch, disabled).
///
/// A locked account is refused first, whatever the password (a lock is no
/// oracle for guesses). Then the throttles (`throttle`): a check that must
/// wait is refused before anything runs; otherwise a permit to run argon2 is
/// taken (a bounded queue: `Overloaded`, a 503, when full or too slow), the
/// check is *reserved* — counted as a wrong password, on the account's
/// stream or in the throttle store for a name that is no account, and for
/// the client address — and only then is the password checked. A wrong one
/// is answered at once: it was counted already, and a name that is no
/// account paid the same writes an account did. The second
/// factor is checked separately ([`verify_second_factor`]).
///
/// A check a throttle refuses, or one answered busy, is answered only after
/// a short delay (`PasswordWorkSettings::refusal_delay`), holding nothing: a
/// client that guesses in a loop cannot make the server answer refusals as
/// fast as it can ask, and leaves the CPU to the clients that may be checked.
pub async fn verify_password<'a>(
    ledger: &'a Ledger,
    name: &UserName,
    password: &str,
    client: &PasswordClient,
    metadata: &EventMetadata,
) -> Result<Verified<'a>, AppError> {
    let verified = check_password(ledger, name, password, client, metadata).await;
    let refused = match &verified {
        Err(AppError::Rejected(refusal)) => is_throttled(refusal),
        Err(AppError::Overloaded { .. }) => true,
        _ => false,
    };
    if refused {
        tokio::time::sleep(ledger.password_work.refusal_delay()).await;
    }
    verified
}

async fn check_password<'a>(
    ledger: &'a Ledger,
    name: &UserName,
    password: &str,
    client: &PasswordClient,
    metadata: &EventMetadata,
) -> Result<Verified<'a>, AppError> {
    let now = ledger.now();
    let record = ledger.projections.read().users.get(name).cloned();
    if let Some(until) = record.as_ref().and_then(|r| r.locked_until).filter(|until| now < *until) {
        return Err(locked(until).into());
    }
    // An account without a password is counted as a name that is none.
    let account = record.filter(|r| r.credential.is_some());
    let guard = &ledger.password_guard;
    let source = guard.source(name, client, now);
    guard.precheck(account.as_ref(), name, &source, client, now)?;
    let device = match &source {
        PasswordSource::Device(device) => Some(device.as_str()),
        PasswordSource::Address(_) => None,
    };
    let Admitted { turn, slot } = ledger.password_work.admit(Checked { name: name.as_str(), device }).await?;
    let reservation = guard.reserve(ledger, account.as_ref(), name, source, client, metadata).await?;
    let stored = match account.as_ref().and_then(|r| r.credential) {
        Some(id) => ledger.credentials.get(id).await?,
        None => None,
    };
    let legacy = stored.as_deref().is_some_and(legacy_password::is_legacy);
    let matched = slot.verify(password.to_owned(), stored).await;
    drop(slot);
    let Some(record) = account.filter(|_| matched) else {
        return Err(AuthError::new(ErrorType::PasswordMismatch, name.as_str()).into());
    };
    let verified = Verified { record, reservation, _turn: turn };
    let refusal = match (ledger.projections.read().config.allow_login, &verified.record) {
        (false, r) if !r.roles.is_admin_like() => {
            Some(AuthError::unauthorized(format!("User {name} cannot log in because non-admin login is disabled")))
        }
        (_, r) if r.is_disabled() => Some(AuthError::disabled(r.name.as_str())),
        _ => None,
    };
    if let Some(refusal) = refusal {
        settle(ledger, &verified, Settled::Alone, metadata).await;
        return Err(refusal.into());
    }
    if legacy {
        rehash(ledger, &verified.record, password, metadata).await;
    }
    Ok(verified)
}

/// Replaces an imported account's auth2 hash with an argon2id hash of the
/// same password, which has just matched it. A failure is reported and
/// leaves the old hash, which still works: the next login tries again.
async fn rehash(ledger: &Ledger, record: &UserRecord, password: &str, metadata: &EventMetadata) {
    let now = ledger.now();
    let credential_id = match passwords::store(&ledger.password_work, &ledger.credentials, password.to_owned(), now)
        .await
    {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!(%error, user = %record.name, "could not hash an imported password anew; it stays as it is");
            return;
        }
    };
    let command = UserCommand::RehashPassword { credential_id, at: now };
    match ledger.execute::<User>(&record.name, command, metadata).await {
        Ok(_) | Err(AppError::Lagging(_)) => {
            if let Some(old) = record.credential {
                forget_secret(ledger, old, "an imported password hash, replaced").await;
            }
        }
        Err(error) => {
            tracing::warn!(%error, user = %record.name, "could not record an imported password's new hash");
            forget_secret(ledger, credential_id, "a new password hash whose recording failed").await;
        }
    }
}

/// How a right password's check is given back to the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// By its own event (`PasswordCheckReleased`): nothing else followed.
    Alone,
    /// With the login's record (the same append).
    WithTheLogin,
    /// By the new password's record, which ends every count.
    ByTheNewPassword,
}

/// Gives back a right password's check (see [`Settled`]); the client
/// address's count is given back too.
pub async fn settle(ledger: &Ledger, verified: &Verified<'_>, how: Settled, metadata: &EventMetadata) {
    ledger.password_guard.release(ledger, &verified.reservation, how == Settled::Alone, metadata).await;
}

/// For an account with a second factor, checks its TOTP code; every wrong code
/// is counted (an event on the user, so racing attempts are counted exactly),
/// and too many lock the account. A stored secret that is missing or
/// unreadable is the server's fault (500). Answers whether a second factor
/// was used (`NotUsed` for an account without one).
pub async fn verify_second_factor(
    ledger: &Ledger,
    record: &UserRecord,
    code: Option<&str>,
    metadata: &EventMetadata,
) -> Result<Mfa, AppError> {
    let Some(credential) = record.second_factor else {
        return Ok(Mfa::NotUsed);
    };
    let now = ledger.now();
    if let Some(until) = record.locked_until.filter(|until| now < *until) {
        return Err(locked(until).into());
    }
    let Some(code) = code.filter(|c| !c.trim().is_empty()) else {
        return Err(AuthError::new(
            ErrorType::AuthenticationFailed,
            "this account has a second factor: second_factor_token is required",
        )
        .into());
    };
    let secret = ledger
        .credentials
        .get(credential)
        .await?
        .ok_or_else(|| AppError::internal("the second-factor secret is missing from the credentials store"))?;
    let step = second_factor::check(&secret, record.name.as_str(), code, now)?;
    ledger.execute::<User>(&record.name, UserCommand::VerifySecondFactor { step, at: now }, metadata).await?;
    if step.is_none() {
        let locked_until = ledger.projections.read().users.get(&record.name).and_then(|r| r.locked_until);
        return Err(match locked_until.filter(|until| now < *until) {
            Some(until) => locked(until),
            None => AuthError::new(ErrorType::AuthenticationFailed, "wrong second-factor code"),
        }
        .into());
    }
    Ok(Mfa::Used)
}

/// A password login as a request states it.
pub struct PasswordLogin {
    pub user: UserName,
    pub password: String,
    pub second_factor: Option<String>,
    pub custom: BTreeMap<String, String>,
    pub client: ClientInfo,
    /// Who the check comes from (address and device marks).
    pub from: PasswordClient,
}

/// What a password login ends in.
pub enum LoginOutcome {
    /// The password is right but must be changed first (`/localaccount/reset`); nothing is recorded but
    /// the check's release.
    MustReset,
    /// A new Login token: its value (shown once) and its view, and the
    /// client's device marks with this account's (the cookie's new value).
    LoggedIn { value: String, token: Box<TokenView>, device_marks: String },
}

/// Logs a local user in: password, login switches, forced reset, second
/// factor; then the login is recorded and, last, the token issued — so a
/// failure leaves no token nobody was handed (see [`tokens::issue`]).
pub async fn log_in(ledger: &Ledger, login: PasswordLogin, metadata: &EventMetadata) -> Result<LoginOutcome, AppError> {
    let verified = verify_password(ledger, &login.user, &login.password, &login.from, metadata).await?;
    // A forced reset is answered before the code is used: the reset asks for it.
    if ledger.projections.read().users.reset_required(&verified.record) {
        settle(ledger, &verified, Settled::Alone, metadata).await;
        return Ok(LoginOutcome::MustReset);
    }
    let mfa = match verify_second_factor(ledger, &verified.record, login.second_factor.as_deref(), metadata).await {
        Ok(mfa) => mfa,
        Err(error) => {
            settle(ledger, &verified, Settled::Alone, metadata).await;
            return Err(error);
        }
    };
    let grant = NewToken {
        user: login.user.clone(),
        kind: TokenKind::Login,
        name: None,
        custom: login.custom,
        client: login.client,
        mfa,
    };
    // The login's record gives the check back; the address's is given back after.
    let from = Some(verified.reservation.source.clone());
    let (value, token) = record_login_and_issue(ledger, grant, from, metadata).await?;
    settle(ledger, &verified, Settled::WithTheLogin, metadata).await;
    let device_marks = ledger.password_guard.marks.issue(&login.user, login.from.marks.as_deref(), ledger.now());
    Ok(LoginOutcome::LoggedIn { value, token: Box::new(token), device_marks })
}

/// Records a login on the user's stream (releasing the password check it
/// passed, from `password_from`), then issues its Login token.
pub(crate) async fn record_login_and_issue(
    ledger: &Ledger,
    grant: NewToken,
    password_from: Option<PasswordSource>,
    metadata: &EventMetadata,
) -> Result<(String, TokenView), AppError> {
    let user = grant.user.clone();
    let command = UserCommand::RecordLogin { at: ledger.now(), password_from };
    ledger.execute::<User>(&user, command, metadata).await?;
    tokens::issue(ledger, grant, metadata).await
}

/// Hashes and stores a new password, records the change, and forgets the old hash.
pub async fn set_password(
    ledger: &Ledger,
    user: &UserRecord,
    password: String,
    require_reset: bool,
    metadata: &EventMetadata,
    by: &UserName,
) -> Result<(), AppError> {
    let now = ledger.now();
    let credential_id = passwords::store(&ledger.password_work, &ledger.credentials, password, now).await?;
    let command = UserCommand::SetPassword(NewPassword { credential_id, require_reset, by: by.clone(), at: now });
    if let Err(error) = ledger.execute::<User>(&user.name, command, metadata).await {
        return Err(undo_secret(ledger, error, credential_id, "a password hash whose recording failed").await);
    }
    if let Some(old) = user.credential {
        forget_secret(ledger, old, "a replaced password hash").await;
    }
    Ok(())
}

/// A password change that meets the rules against the old password (different,
/// and strong enough): checked once, when made, so the flow need not repeat it.
pub struct PasswordChange {
    old: String,
    new: String,
}

impl PasswordChange {
    /// Checks `new` against `old`.
    pub fn new(old: String, new: String) -> Result<Self, AuthError> {
        if old == new {
            return Err(AuthError::new(ErrorType::IllegalPassword, "Old and new passwords are identical."));
        }
        passwords::check_strength(&new)?;
        Ok(Self { old, new })
    }
}

/// A user's own password change (`/localaccount/reset`): the old password (and
/// second factor) must be right.
pub async fn change_password(
    ledger: &Ledger,
    name: &UserName,
    change: PasswordChange,
    second_factor: Option<&str>,
    from: &PasswordClient,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    let verified = verify_password(ledger, name, &change.old, from, metadata).await?;
    if let Err(error) = verify_second_factor(ledger, &verified.record, second_factor, metadata).await {
        settle(ledger, &verified, Settled::Alone, metadata).await;
        return Err(error);
    }
    // The new password's record ends the account's counts; the address's is given back.
    let changed = set_password(ledger, &verified.record, change.new, false, metadata, name).await;
    let how = if changed.is_ok() { Settled::ByTheNewPassword } else { Settled::Alone };
    settle(ledger, &verified, how, metadata).await;
    changed
}

/// A new local account as an administrator asks for it.
pub struct NewLocalAccount {
    pub user: UserName,
    pub display: DisplayName,
    pub email: EmailAddress,
}

/// Creates a local account with a temporary password (which must be changed
/// at the first login); returns the temporary password, to be shown once.
pub async fn create_local_account(
    ledger: &Ledger,
    account: NewLocalAccount,
    acting: &Acting,
) -> Result<String, AppError> {
    let (by, metadata) = (acting.name(), &acting.metadata);
    if account.user.is_root() {
        return Err(AuthError::unauthorized("Cannot create ROOT user").into());
    }
    let temporary = passwords::temporary();
    let now = ledger.now();
    let credential_id = passwords::store(&ledger.password_work, &ledger.credentials, temporary.clone(), now).await?;
    let command = UserCommand::Create {
        user: account.user.clone(),
        display: account.display,
        email: Some(account.email),
        anon_id: Uuid::new_v4(),
        created: now,
        by: by.clone(),
        password: Some(NewPassword { credential_id, require_reset: true, by: by.clone(), at: now }),
    };
    if let Err(error) = ledger.execute::<User>(&account.user, command, metadata).await {
        return Err(
            undo_secret(ledger, error, credential_id, "a new account's password hash whose recording failed").await
        );
    }
    Ok(temporary)
}

/// An administrator's reset of `name`'s password to a new temporary one
/// (changed at the next login); returns it, to be shown once.
pub async fn reset_to_temporary(ledger: &Ledger, acting: &Acting, name: &UserName) -> Result<String, AppError> {
    let (admin, metadata) = (&acting.actor, &acting.metadata);
    let record =
        ledger.projections.read().users.get(name).cloned().ok_or_else(|| AuthError::no_such_user(name.as_str()))?;
    if record.credential.is_none() {
        return Err(AuthError::no_such_user(&format!("{name} is not a local user and has no password")).into());
    }
    check_can_reset_password(admin, name, &record.roles)?;
    let temporary = passwords::temporary();
    set_password(ledger, &record, temporary.clone(), true, metadata, &admin.name).await?;
    Ok(temporary)
}

/// Sets the acting user's display name and email; `None` leaves one as it is
/// (and nothing is recorded when both are).
pub async fn update_profile(
    ledger: &Ledger,
    acting: &Acting,
    display: Option<DisplayName>,
    email: Option<EmailAddress>,
) -> Result<(), AppError> {
    if display.is_none() && email.is_none() {
        return Ok(());
    }
    ledger.execute::<User>(acting.name(), UserCommand::UpdateProfile { display, email }, &acting.metadata).await?;
    Ok(())
}

/// Drops roles the acting user holds (a user may always give up their own).
pub async fn drop_own_roles(ledger: &Ledger, acting: &Acting, remove: BTreeSet<Role>) -> Result<(), AppError> {
    let command =
        UserCommand::UpdateRoles { add: BTreeSet::new(), remove, actor: acting.actor.clone(), at: ledger.now() };
    ledger.execute::<User>(acting.name(), command, &acting.metadata).await?;
    Ok(())
}
