//! The root account (`***ROOT***`): created, or given a new password and
//! re-enabled, by `authledger set-root-password` — never through the API.

use uuid::Uuid;

use crate::domain::user::NewPassword;
use crate::domain::{AuthError, DisplayName, UserCommand, UserName};
use crate::ledger::{Ledger, LedgerError};
use crate::passwords;
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
    Ledger(#[from] LedgerError),
    #[error("{0}")]
    Failed(String),
}

/// Creates root with `password`, or sets its password and re-enables it.
pub async fn set_root_password(ledger: &Ledger, password: String) -> Result<RootOutcome, RootError> {
    passwords::check_strength(&password).map_err(RootError::WeakPassword)?;
    let root = UserName::root();
    let now = ledger.now();
    let credential_id = passwords::store(&ledger.log, password, now).await.map_err(RootError::Failed)?;
    let metadata = EventMetadata { reason: Some("set-root-password".into()), ..EventMetadata::actor(UserName::ROOT) };
    let password = NewPassword { credential_id, require_reset: false, by: root.clone(), at: now };
    let previous = ledger.model.read().users.get(&root).and_then(|r| r.credential);
    let exists = ledger.model.read().users.get(&root).is_some();
    if !exists {
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
        ledger.user(&root, command, &metadata).await?;
        return Ok(RootOutcome::Created);
    }
    ledger.user(&root, UserCommand::SetPassword(password), &metadata).await?;
    ledger.user(&root, UserCommand::EnableRoot { at: now }, &metadata).await?;
    if let Some(old) = previous {
        let _ = ledger.log.delete_secret(old).await;
    }
    Ok(RootOutcome::PasswordReset)
}
