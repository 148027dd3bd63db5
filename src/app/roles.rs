//! A user's roles, built-in and custom, changed in one step (auth2's
//! `POST /api/V2/admin/users/{user}/roles`): the `User` aggregate decides
//! with the built-in roles' rules and the custom roles that exist, and records
//! one event per kind of change, in one append.

use std::collections::BTreeSet;

use super::AppError;
use super::acting::Acting;
use super::ledger::Ledger;
use crate::domain::user::RoleChange;
use crate::domain::{AuthError, CustomRoleId, Role, User, UserCommand, UserName};

/// The roles to add and remove.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolesChange {
    pub add: BTreeSet<Role>,
    pub remove: BTreeSet<Role>,
    pub add_custom: BTreeSet<CustomRoleId>,
    pub remove_custom: BTreeSet<CustomRoleId>,
}

impl RolesChange {
    /// Whether built-in roles change.
    pub fn touches_roles(&self) -> bool {
        !self.add.is_empty() || !self.remove.is_empty()
    }

    /// Whether custom roles change.
    pub fn touches_custom_roles(&self) -> bool {
        !self.add_custom.is_empty() || !self.remove_custom.is_empty()
    }
}

/// Applies `change` to `user`'s roles as `actor` (404 for no such user;
/// refused, nothing written, by any rule a part breaks).
pub async fn change_roles(
    ledger: &Ledger,
    acting: &Acting,
    user: &UserName,
    change: RolesChange,
) -> Result<(), AppError> {
    let known_custom: BTreeSet<CustomRoleId> = {
        let projections = ledger.projections.read();
        if projections.users.get(user).is_none() {
            return Err(AuthError::no_such_user(user.as_str()).into());
        }
        projections.users.custom_roles().keys().cloned().collect()
    };
    let RolesChange { add, remove, add_custom, remove_custom } = change;
    let change = RoleChange {
        add,
        remove,
        add_custom,
        remove_custom,
        known_custom,
        actor: acting.actor.clone(),
        at: ledger.now(),
    };
    ledger.execute::<User>(user, UserCommand::ChangeRoles(Box::new(change)), &acting.metadata).await?;
    Ok(())
}
