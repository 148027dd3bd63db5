//! The root account (`***ROOT***`): created, or given a new password and
//! re-enabled, by `authledger set-root-password` — never through the API.

use uuid::Uuid;

use crate::app::AppError;
use crate::app::ledger::Ledger;
use crate::app::passwords;
use crate::domain::user::NewPassword;
use crate::domain::{AuthError, DisplayName, User, UserCommand, UserName};
use crate::store::EventMetadata;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootOutcome {
    Created,
    PasswordReset,
}

#[derive(Debug, thiserror::Error)]
pub enum RootError {
    #[error("{0}")]
    WeakPassword(AuthError),
    #[error(transparent)]
    Ledger(#[from] AppError),
}

/// Whether the log has the root account (a new log has none until
/// `authledger set-root-password`).
pub fn exists(ledger: &Ledger) -> bool {
    ledger.projections.read().users.get(&UserName::root()).is_some()
}

/// Creates root with `password`, or sets its password and re-enables it.
pub async fn set_root_password(ledger: &Ledger, password: String) -> Result<RootOutcome, RootError> {
    passwords::check_strength(&password).map_err(RootError::WeakPassword)?;
    let root = UserName::root();
    let now = ledger.now();
    let credential_id = passwords::store(&ledger.password_work, &ledger.credentials, password, now).await?;
    let metadata = EventMetadata { reason: Some("set-root-password".into()), ..EventMetadata::actor(UserName::ROOT) };
    let password = NewPassword { credential_id, require_reset: false, by: root.clone(), at: now };
    let previous = ledger.projections.read().users.get(&root).and_then(|r| r.credential);
    if !exists(ledger) {
        let display = DisplayName::parse(Some("root")).map_err(RootError::WeakPassword)?;
        let command = UserCommand::Create {
            user: root.clone(),
            display,
            email: None,
            anon_id: Uuid::new_v4(),
            created: now,
            by: root.clone(),
            password: Some(password),
        };
        if let Err(error) = ledger.execute::<User>(&root, command, &metadata).await {
            return Err(super::undo_secret(
                ledger,
                error,
                credential_id,
                "a root password hash whose recording failed",
            )
            .await
            .into());
        }
        return Ok(RootOutcome::Created);
    }
    // Setting the password and re-enabling are two commands on root's own stream; a
    // failure between them leaves root with its new password, still disabled, and
    // running the command again completes it.
    if let Err(error) = ledger.execute::<User>(&root, UserCommand::SetPassword(password), &metadata).await {
        return Err(super::undo_secret(ledger, error, credential_id, "a root password hash whose recording failed")
            .await
            .into());
    }
    ledger.execute::<User>(&root, UserCommand::EnableRoot { at: now }, &metadata).await?;
    if let Some(old) = previous {
        super::forget_secret(ledger, old, "root's replaced password hash").await;
    }
    Ok(RootOutcome::PasswordReset)
}
