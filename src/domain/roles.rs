//! Built-in roles (contract §5.1): what each includes and which roles its
//! holder may grant to others.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// A built-in role. The derived order is the contract's output order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Role {
    Admin,
    CreateAdmin,
    DevToken,
    Root,
    ServToken,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::CreateAdmin, Role::DevToken, Role::Root, Role::ServToken];

    pub fn id(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::CreateAdmin => "CreateAdmin",
            Role::DevToken => "DevToken",
            Role::Root => "Root",
            Role::ServToken => "ServToken",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Role::Admin => "Administrator",
            Role::CreateAdmin => "Create administrator",
            Role::DevToken => "Create developer tokens",
            Role::Root => "Root",
            Role::ServToken => "Create server tokens",
        }
    }

    /// Parses a role id exactly (case-sensitive).
    pub fn from_id(id: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.id() == id)
    }

    /// The roles this role confers, itself included.
    pub fn included(self) -> &'static [Role] {
        match self {
            Role::Admin => &[Role::Admin, Role::ServToken, Role::DevToken],
            Role::CreateAdmin => &[Role::CreateAdmin],
            Role::DevToken => &[Role::DevToken],
            Role::Root => &[Role::Root],
            Role::ServToken => &[Role::ServToken, Role::DevToken],
        }
    }

    /// The roles a holder of this role may grant to (or remove from) other users.
    pub fn grants(self) -> &'static [Role] {
        match self {
            Role::Admin => &[Role::ServToken, Role::DevToken],
            Role::CreateAdmin => &[Role::Admin],
            Role::Root => &[Role::CreateAdmin],
            Role::DevToken | Role::ServToken => &[],
        }
    }
}

/// A set of directly held roles, with the derived questions the rules ask of it.
pub trait RoleSet {
    fn confers(&self, role: Role) -> bool;
    fn may_grant(&self, role: Role) -> bool;
    /// Holds Admin, CreateAdmin or Root.
    fn is_admin_like(&self) -> bool;
}

impl RoleSet for BTreeSet<Role> {
    fn confers(&self, role: Role) -> bool {
        self.iter().any(|held| held.included().contains(&role))
    }

    fn may_grant(&self, role: Role) -> bool {
        self.iter().any(|held| held.grants().contains(&role))
    }

    fn is_admin_like(&self) -> bool {
        self.contains(&Role::Admin) || self.contains(&Role::CreateAdmin) || self.contains(&Role::Root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admin_includes_token_roles_and_grants_them() {
        let held = BTreeSet::from([Role::Admin]);
        assert!(held.confers(Role::ServToken) && held.confers(Role::DevToken));
        assert!(!held.confers(Role::CreateAdmin));
        assert!(held.may_grant(Role::DevToken) && !held.may_grant(Role::Admin));
    }

    #[test]
    fn the_chain_of_grants_runs_root_createadmin_admin() {
        assert!(BTreeSet::from([Role::Root]).may_grant(Role::CreateAdmin));
        assert!(!BTreeSet::from([Role::Root]).may_grant(Role::Admin));
        assert!(BTreeSet::from([Role::CreateAdmin]).may_grant(Role::Admin));
    }

    #[test]
    fn ids_are_case_sensitive() {
        assert_eq!(Role::from_id("DevToken"), Some(Role::DevToken));
        assert_eq!(Role::from_id("devtoken"), None);
    }
}
