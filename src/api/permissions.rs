//! The one permission table: which built-in roles allow which privileged
//! action. Every privileged handler asks `allows`; the exhaustive test below
//! pins the whole action × role matrix.

use std::collections::BTreeSet;

use crate::domain::{AuthError, Role};

/// A privileged action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Action {
    /// Translate anonymous ids into user names.
    ViewAnonIds,
    /// Read the audit trail and past state (`/api/V2/admin/audit`, `/api/V2/admin/asof`).
    ReadAuditTrail,
    CreateLocalAccount,
    /// See a user's administrative record.
    ViewUser,
    /// Change another user's built-in roles (the grant rules then apply per role).
    ChangeRoles,
    ChangeCustomRolesOfUser,
    ListCustomRoles,
    SetCustomRole,
    DeleteCustomRole,
    DisableOrEnableUser,
    ForcePasswordReset,
    ForceAllPasswordResets,
    ResetPassword,
    ViewUserTokens,
    RevokeUserTokens,
    RevokeAllTokens,
    ViewToken,
    ViewConfig,
    ChangeConfig,
    /// Remove a policy id from every user.
    RemovePolicyId,
    CreateDevToken,
    CreateServToken,
    /// Issue, list and delete provisioning tokens (Teleport's `GenerateToken`).
    ManageProvisionTokens,
    /// Free a host name from the key it is bound to.
    ReleaseHost,
    /// Clear a user's wrong-password count, throttle and second-factor lock.
    ClearLoginThrottle,
    /// Invite users (sign-up tokens), list and revoke invitations.
    InviteUser,
    /// Set the logins (certificate principals) of a user.
    ChangeLogins,
    /// Obtain an SSH certificate for another user (anyone may for themselves).
    IssueCertForOthers,
    /// List every certificate issued and every joined host.
    ViewCertificates,
    RotateCertAuthority,
    /// Forget a person: erase them from the log (issue 26).
    ForgetUser,
}

impl Action {
    pub const ALL: [Action; 31] = [
        Action::ViewAnonIds,
        Action::ReadAuditTrail,
        Action::CreateLocalAccount,
        Action::ViewUser,
        Action::ChangeRoles,
        Action::ChangeCustomRolesOfUser,
        Action::ListCustomRoles,
        Action::SetCustomRole,
        Action::DeleteCustomRole,
        Action::DisableOrEnableUser,
        Action::ForcePasswordReset,
        Action::ForceAllPasswordResets,
        Action::ResetPassword,
        Action::ViewUserTokens,
        Action::RevokeUserTokens,
        Action::RevokeAllTokens,
        Action::ViewToken,
        Action::ViewConfig,
        Action::ChangeConfig,
        Action::RemovePolicyId,
        Action::CreateDevToken,
        Action::CreateServToken,
        Action::ManageProvisionTokens,
        Action::ReleaseHost,
        Action::ClearLoginThrottle,
        Action::InviteUser,
        Action::ChangeLogins,
        Action::IssueCertForOthers,
        Action::ViewCertificates,
        Action::RotateCertAuthority,
        Action::ForgetUser,
    ];
}

/// How a requirement is matched against the roles a user holds.
enum Requirement {
    /// One of these roles, held directly (no role includes another here).
    Holds(&'static [Role]),
    /// One of these roles, held or included by a held role (Admin includes ServToken and DevToken).
    Confers(&'static [Role]),
}

fn requirement(action: Action) -> Requirement {
    use Action::*;
    const ANY_ADMIN: &[Role] = &[Role::Admin, Role::CreateAdmin, Role::Root];
    match action {
        ViewAnonIds | ReadAuditTrail => Requirement::Holds(&[Role::Admin]),
        CreateLocalAccount | InviteUser | ViewUser | ChangeRoles | ListCustomRoles | DisableOrEnableUser
        | ForcePasswordReset | ResetPassword => Requirement::Holds(ANY_ADMIN),
        ChangeCustomRolesOfUser
        | SetCustomRole
        | DeleteCustomRole
        | ViewUserTokens
        | RevokeUserTokens
        | RevokeAllTokens
        | ViewToken
        | ViewConfig
        | ChangeConfig
        | RemovePolicyId
        | ManageProvisionTokens
        | ReleaseHost
        | ClearLoginThrottle
        | ChangeLogins
        | IssueCertForOthers
        | ViewCertificates
        | RotateCertAuthority
        | ForgetUser => Requirement::Holds(&[Role::Admin]),
        ForceAllPasswordResets => Requirement::Holds(&[Role::Root, Role::CreateAdmin]),
        CreateDevToken => Requirement::Confers(&[Role::DevToken]),
        CreateServToken => Requirement::Confers(&[Role::ServToken]),
    }
}

/// Does a user holding `roles` have permission for `action`?
pub fn allows(action: Action, roles: &BTreeSet<Role>) -> bool {
    match requirement(action) {
        Requirement::Holds(needed) => needed.iter().any(|r| roles.contains(r)),
        Requirement::Confers(needed) => roles.iter().any(|held| held.included().iter().any(|r| needed.contains(r))),
    }
}

/// `allows`, as the contract's error.
pub fn check(action: Action, roles: &BTreeSet<Role>) -> Result<(), AuthError> {
    if allows(action, roles) { Ok(()) } else { Err(AuthError::bare(crate::domain::ErrorType::Unauthorized)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The expected matrix, written out by hand: action → roles that allow it
    /// (each tested alone; a user with no roles is allowed nothing).
    fn expected(action: Action) -> &'static [Role] {
        use Action::*;
        use Role::*;
        match action {
            ViewAnonIds => &[Admin],
            ReadAuditTrail => &[Admin],
            CreateLocalAccount => &[Admin, CreateAdmin, Root],
            ViewUser => &[Admin, CreateAdmin, Root],
            ChangeRoles => &[Admin, CreateAdmin, Root],
            ChangeCustomRolesOfUser => &[Admin],
            ListCustomRoles => &[Admin, CreateAdmin, Root],
            SetCustomRole => &[Admin],
            DeleteCustomRole => &[Admin],
            DisableOrEnableUser => &[Admin, CreateAdmin, Root],
            ForcePasswordReset => &[Admin, CreateAdmin, Root],
            ForceAllPasswordResets => &[CreateAdmin, Root],
            ResetPassword => &[Admin, CreateAdmin, Root],
            ViewUserTokens => &[Admin],
            RevokeUserTokens => &[Admin],
            RevokeAllTokens => &[Admin],
            ViewToken => &[Admin],
            ViewConfig => &[Admin],
            ChangeConfig => &[Admin],
            RemovePolicyId => &[Admin],
            CreateDevToken => &[Admin, DevToken, ServToken],
            CreateServToken => &[Admin, ServToken],
            ManageProvisionTokens => &[Admin],
            ReleaseHost => &[Admin],
            ClearLoginThrottle => &[Admin],
            InviteUser => &[Admin, CreateAdmin, Root],
            ChangeLogins => &[Admin],
            IssueCertForOthers => &[Admin],
            ViewCertificates => &[Admin],
            RotateCertAuthority => &[Admin],
            ForgetUser => &[Admin],
        }
    }

    #[test]
    fn every_action_by_every_single_role_matches_the_matrix() {
        for action in Action::ALL {
            assert!(!allows(action, &BTreeSet::new()), "{action:?} allowed with no roles");
            for role in Role::ALL {
                let allowed = allows(action, &BTreeSet::from([role]));
                assert_eq!(allowed, expected(action).contains(&role), "{action:?} by {role:?}");
            }
        }
    }

    #[test]
    fn combining_roles_never_takes_a_permission_away() {
        for action in Action::ALL {
            for a in Role::ALL {
                for b in Role::ALL {
                    let either = allows(action, &BTreeSet::from([a])) || allows(action, &BTreeSet::from([b]));
                    assert_eq!(allows(action, &BTreeSet::from([a, b])), either, "{action:?} by {a:?}+{b:?}");
                }
            }
        }
    }
}
