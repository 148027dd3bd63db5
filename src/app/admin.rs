//! What administrators change: accounts' roles and custom roles, disabling,
//! password resets and login throttles, users' tokens, the catalogue of
//! custom roles and the server's configuration. The API has checked the
//! caller against the permission table; what can still refuse — no such
//! user, a custom role that does not exist, the grant rules — is decided
//! here and by the aggregates, never by a handler.

use std::collections::BTreeSet;

use super::AppError;
use super::acting::Acting;
use super::ledger::Ledger;
use crate::domain::server_config::ConfigChange;
use crate::domain::{
    AuthError, CustomRole, CustomRoleCommand, CustomRoleId, ErrorType, Login, Role, ServerConfig, ServerConfigCommand,
    System, SystemCommand, User, UserCommand, UserName,
};
use crate::projections::UserRecord;

/// The named user (404 `No such user: <name>` when absent).
pub fn user(ledger: &Ledger, name: &UserName) -> Result<UserRecord, AppError> {
    ledger.projections.read().users.get(name).cloned().ok_or_else(|| AuthError::no_such_user(name.as_str()).into())
}

/// Gives `user` exactly the built-in roles `wanted` (root is never removed);
/// the `User` aggregate decides whether the actor may grant and remove them.
pub async fn set_roles(
    ledger: &Ledger,
    acting: &Acting,
    name: &UserName,
    wanted: BTreeSet<Role>,
) -> Result<(), AppError> {
    let current = user(ledger, name)?.roles;
    let add = wanted.difference(&current).copied().collect();
    let remove = current.difference(&wanted).copied().filter(|r| *r != Role::Root).collect();
    let command = UserCommand::UpdateRoles { add, remove, actor: acting.actor.clone(), at: ledger.now() };
    ledger.execute::<User>(name, command, &acting.metadata).await?;
    Ok(())
}

/// Gives `user` exactly the custom roles `wanted`, each of which must exist
/// (`No such role`, before the user is looked up).
pub async fn set_custom_roles(
    ledger: &Ledger,
    acting: &Acting,
    name: &UserName,
    wanted: BTreeSet<CustomRoleId>,
) -> Result<(), AppError> {
    {
        let projections = ledger.projections.read();
        if let Some(missing) = wanted.iter().find(|id| !projections.users.custom_roles().contains_key(*id)) {
            return Err(AuthError::new(ErrorType::NoSuchRole, missing.as_str()).into());
        }
    }
    let current = user(ledger, name)?.custom_roles;
    let add = wanted.difference(&current).cloned().collect();
    let remove = current.difference(&wanted).cloned().collect();
    let command = UserCommand::UpdateCustomRoles { add, remove, by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<User>(name, command, &acting.metadata).await?;
    Ok(())
}

/// The ids of every custom role, in order.
pub fn custom_role_ids(ledger: &Ledger) -> Vec<CustomRoleId> {
    ledger.projections.read().users.custom_roles().keys().cloned().collect()
}

/// Creates the custom role `id`, or sets its description.
pub async fn set_custom_role(
    ledger: &Ledger,
    acting: &Acting,
    id: &CustomRoleId,
    description: String,
) -> Result<(), AppError> {
    let command = CustomRoleCommand::Set { id: id.clone(), description, by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<CustomRole>(id, command, &acting.metadata).await?;
    Ok(())
}

/// Deletes the custom role `id` (the aggregate refuses one that does not exist).
pub async fn delete_custom_role(ledger: &Ledger, acting: &Acting, id: &CustomRoleId) -> Result<(), AppError> {
    let command = CustomRoleCommand::Delete { id: id.clone(), by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<CustomRole>(id, command, &acting.metadata).await?;
    Ok(())
}

/// Disables `user` for `reason`, or enables them when there is none. The
/// reason is the event's and its metadata's too (auditors filter on it).
pub async fn disable(
    ledger: &Ledger,
    acting: &Acting,
    name: &UserName,
    reason: Option<String>,
) -> Result<(), AppError> {
    user(ledger, name)?;
    let at = ledger.now();
    let mut metadata = acting.metadata.clone();
    metadata.reason = reason.clone();
    let command = match reason {
        Some(reason) => UserCommand::Disable { reason, actor: acting.actor.clone(), at },
        None => UserCommand::Enable { actor: acting.actor.clone(), at },
    };
    ledger.execute::<User>(name, command, &metadata).await?;
    Ok(())
}

/// Requires `user` to change the password at the next login (ending their
/// sessions when the server is set to).
pub async fn force_reset(ledger: &Ledger, acting: &Acting, name: &UserName) -> Result<(), AppError> {
    user(ledger, name)?;
    let end_sessions = ledger.force_reset_ends_sessions();
    let command = UserCommand::ForceReset { actor: acting.actor.clone(), at: ledger.now(), end_sessions };
    ledger.execute::<User>(name, command, &acting.metadata).await?;
    Ok(())
}

/// Requires every local user to change the password at the next login.
pub async fn force_reset_all(ledger: &Ledger, acting: &Acting) -> Result<(), AppError> {
    let end_sessions = ledger.force_reset_ends_sessions();
    let command = SystemCommand::ForceAllPasswordResets { by: acting.name().clone(), at: ledger.now(), end_sessions };
    ledger.execute::<System>((), command, &acting.metadata).await?;
    Ok(())
}

/// Clears `user`'s wrong-password counts and second-factor lock.
pub async fn unlock(ledger: &Ledger, acting: &Acting, name: &UserName) -> Result<(), AppError> {
    user(ledger, name)?;
    let command = UserCommand::ClearLoginThrottle { by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<User>(name, command, &acting.metadata).await?;
    Ok(())
}

/// Sets the SSH logins `user`'s certificates may name.
pub async fn set_logins(
    ledger: &Ledger,
    acting: &Acting,
    name: &UserName,
    logins: BTreeSet<Login>,
) -> Result<(), AppError> {
    user(ledger, name)?;
    let command = UserCommand::SetLogins { logins, by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<User>(name, command, &acting.metadata).await?;
    Ok(())
}

/// Revokes every token of `user`; nothing to do for a user that does not exist.
pub async fn revoke_tokens_of(ledger: &Ledger, acting: &Acting, name: &UserName) -> Result<(), AppError> {
    if ledger.projections.read().users.get(name).is_none() {
        return Ok(());
    }
    let command = UserCommand::RevokeAllTokens { by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<User>(name, command, &acting.metadata).await?;
    Ok(())
}

/// Invalidates every token of every user, in one event.
pub async fn revoke_all_tokens(ledger: &Ledger, acting: &Acting) -> Result<(), AppError> {
    let command = SystemCommand::RevokeAllTokens { by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<System>((), command, &acting.metadata).await?;
    Ok(())
}

/// Records `changes` to the server's configuration (those that alter
/// nothing are dropped by the aggregate).
pub async fn change_config(ledger: &Ledger, acting: &Acting, changes: Vec<ConfigChange>) -> Result<(), AppError> {
    let command = ServerConfigCommand::Update { changes, by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<ServerConfig>((), command, &acting.metadata).await?;
    Ok(())
}

/// Puts the server's configuration back to the settings it started with.
pub async fn reset_config(ledger: &Ledger, acting: &Acting) -> Result<(), AppError> {
    let to = Box::new(ledger.initial_settings().clone());
    let command = ServerConfigCommand::Reset { to, by: acting.name().clone(), at: ledger.now() };
    ledger.execute::<ServerConfig>((), command, &acting.metadata).await?;
    Ok(())
}
