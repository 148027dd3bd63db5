//! Local accounts: password login and password changes (contract §9 and the
//! upstream `LocalAccounts` resource), second factors at login, new local
//! accounts and administrators' password resets. Passwords are checked and
//! stored here (argon2id, in the credentials store); the rules for who may do
//! what are the domain's.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::ledger::Ledger;
use super::tokens::{self, NewToken};
use super::{AppError, forget_secret, passwords, second_factor, undo_secret};
use crate::domain::token::{ClientInfo, Mfa};
use crate::domain::user::{NewPassword, PASSWORD_FREE_FAILURES, check_can_reset_password, locked, throttled};
use crate::domain::{
    Actor, AuthError, DisplayName, EmailAddress, ErrorType, RoleSet, TokenKind, User, UserCommand, UserName,
};
use crate::projections::{TokenView, UserRecord};
use crate::store::EventMetadata;

/// Checks a local user's password, then whether they may log in now
/// (upstream `getLocalUser`: password, non-admin login switch, disabled).
/// A locked or throttled account, or a throttled client address, is refused
/// first, whatever the password (so a lock is no oracle for password guesses,
/// and a throttle bounds the argon2 work guesses cause). A wrong password is
/// counted on the account (an event: exact under races, the wait computed by
/// the domain) and on the client address `from`. The second factor is
/// checked separately ([`verify_second_factor`]), after the caller's own checks.
pub async fn verify_password(
    ledger: &Ledger,
    name: &UserName,
    password: &str,
    from: &str,
    metadata: &EventMetadata,
) -> Result<UserRecord, AppError> {
    let now = ledger.now();
    ledger.password_throttle.check(from, now)?;
    let record = ledger.model.read().users.get(name).cloned();
    if let Some(until) = record.as_ref().and_then(|r| r.locked_until).filter(|until| now < *until) {
        return Err(locked(until).into());
    }
    if let Some(until) = record.as_ref().and_then(|r| r.password_throttled_until).filter(|until| now < *until) {
        return Err(throttled(until).into());
    }
    // A name that is no account waits exactly as an account would.
    let counted = record.as_ref().filter(|r| r.credential.is_some());
    if counted.is_none() {
        ledger.unknown_names.check(name.as_str(), now)?;
    }
    // Once the next failure would throttle, one check at a time: parallel
    // guesses cannot all slip past the throttle before the first is recorded.
    let failures = counted.map_or_else(|| ledger.unknown_names.failures(name.as_str()), |r| r.password_failures);
    let _checking = match failures + 1 >= PASSWORD_FREE_FAILURES {
        true => Some(ledger.password_gate.enter(name.as_str()).ok_or_else(|| throttled(now + 1000))?),
        false => None,
    };
    let stored = match record.as_ref().and_then(|r| r.credential) {
        Some(id) => ledger.credentials.get(id).await?,
        None => None,
    };
    let matched = passwords::verify(password.to_owned(), stored).await;
    let record = match (matched, record) {
        (true, Some(record)) => record,
        (_, record) => {
            ledger.password_throttle.failed(from, now);
            match record.filter(|r| r.credential.is_some()) {
                Some(record) => {
                    ledger.execute::<User>(&record.name, UserCommand::RejectPassword { at: now }, metadata).await?;
                }
                None => ledger.unknown_names.failed(name.as_str(), now),
            }
            return Err(AuthError::new(ErrorType::PasswordMismatch, name.as_str()).into());
        }
    };
    let allow_login = ledger.model.read().config.allow_login;
    if !allow_login && !record.roles.is_admin_like() {
        return Err(
            AuthError::unauthorized(format!("User {name} cannot log in because non-admin login is disabled")).into()
        );
    }
    if record.is_disabled() {
        return Err(AuthError::disabled(record.name.as_str()).into());
    }
    Ok(record)
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
        let locked_until = ledger.model.read().users.get(&record.name).and_then(|r| r.locked_until);
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
    /// The client address wrong passwords are counted on (the request's quota key).
    pub from: String,
}

/// What a password login ends in.
pub enum LoginOutcome {
    /// The password is right but must be changed first (`/localaccount/reset`); nothing was written.
    MustReset,
    /// A new Login token: its value (shown once) and its view.
    LoggedIn { value: String, token: Box<TokenView> },
}

/// Logs a local user in: password, login switches, forced reset, second
/// factor; then the login is recorded and, last, the token issued — so a
/// failure leaves no token nobody was handed (see [`tokens::issue`]).
pub async fn log_in(ledger: &Ledger, login: PasswordLogin, metadata: &EventMetadata) -> Result<LoginOutcome, AppError> {
    let record = verify_password(ledger, &login.user, &login.password, &login.from, metadata).await?;
    // A forced reset is answered before the code is used: the reset asks for it.
    if ledger.model.read().users.reset_required(&record) {
        return Ok(LoginOutcome::MustReset);
    }
    let mfa = verify_second_factor(ledger, &record, login.second_factor.as_deref(), metadata).await?;
    let grant = NewToken {
        user: login.user,
        kind: TokenKind::Login,
        name: None,
        custom: login.custom,
        client: login.client,
        mfa,
    };
    let (value, token) = record_login_and_issue(ledger, grant, metadata).await?;
    Ok(LoginOutcome::LoggedIn { value, token: Box::new(token) })
}

/// Records a login on the user's stream, then issues its Login token.
pub(crate) async fn record_login_and_issue(
    ledger: &Ledger,
    grant: NewToken,
    metadata: &EventMetadata,
) -> Result<(String, TokenView), AppError> {
    let user = grant.user.clone();
    ledger.execute::<User>(&user, UserCommand::RecordLogin { at: ledger.now() }, metadata).await?;
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
    let credential_id = passwords::store(&ledger.credentials, password, now).await?;
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
    from: &str,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    let record = verify_password(ledger, name, &change.old, from, metadata).await?;
    verify_second_factor(ledger, &record, second_factor, metadata).await?;
    set_password(ledger, &record, change.new, false, metadata, name).await
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
    by: &UserName,
    metadata: &EventMetadata,
) -> Result<String, AppError> {
    if account.user.is_root() {
        return Err(AuthError::unauthorized("Cannot create ROOT user").into());
    }
    let temporary = passwords::temporary();
    let now = ledger.now();
    let credential_id = passwords::store(&ledger.credentials, temporary.clone(), now).await?;
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
pub async fn reset_to_temporary(
    ledger: &Ledger,
    admin: &Actor,
    name: &UserName,
    metadata: &EventMetadata,
) -> Result<String, AppError> {
    let record = ledger.model.read().users.get(name).cloned().ok_or_else(|| AuthError::no_such_user(name.as_str()))?;
    if record.credential.is_none() {
        return Err(AuthError::no_such_user(&format!("{name} is not a local user and has no password")).into());
    }
    check_can_reset_password(admin, name, &record.roles)?;
    let temporary = passwords::temporary();
    set_password(ledger, &record, temporary.clone(), true, metadata, &admin.name).await?;
    Ok(temporary)
}
