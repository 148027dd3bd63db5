//! What a deployment of KBase auth2 held of an account, as `import-auth2`
//! brings it over: one `UserImported` event carries it all, with auth2's own
//! times. auth2 never recorded who granted roles, forced resets or linked
//! identities, so none of that is made up: the account simply holds them.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::identity::RemoteIdentity;
use super::names::{CustomRoleId, DisplayName, EmailAddress, PolicyId, UserName};
use super::roles::Role;

/// An account as auth2 held it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportedAccount {
    pub user: UserName,
    pub display: DisplayName,
    pub email: Option<EmailAddress>,
    /// auth2's anonymous id, kept: services hold it.
    pub anon_id: Uuid,
    /// A local account (a password) rather than one of providers' identities.
    pub local: bool,
    /// When auth2 created the account, and when it last logged in there.
    pub created: i64,
    pub last_login: Option<i64>,
    pub roles: BTreeSet<Role>,
    pub custom_roles: BTreeSet<CustomRoleId>,
    /// Each policy id agreed to, with when.
    pub policy_ids: BTreeMap<PolicyId, i64>,
    /// The linked identities, with auth2's identity ids.
    pub identities: Vec<RemoteIdentity>,
    /// The last disable or enable, if any: with a reason the account is disabled.
    pub toggle: Option<ImportedToggle>,
    /// The next login must change the password.
    pub reset_required: bool,
    /// The password hash auth2 kept, sealed in the credentials store: a
    /// PBKDF2 one until the first login replaces it (`PasswordRehashed`).
    pub credential_id: Option<Uuid>,
    /// When the password was last set there (auth2's `lastrst`).
    pub password_set: Option<i64>,
    /// Where it came from: `auth2 dump <folder>`.
    pub source: String,
}

/// auth2's disabled state: who disabled (or enabled again) the account, when, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportedToggle {
    pub by: UserName,
    pub at: i64,
    /// Why it was disabled; `None` when it was enabled again.
    pub reason: Option<String>,
}

impl ImportedAccount {
    /// Whether the account came over disabled.
    pub fn disabled(&self) -> bool {
        self.toggle.as_ref().is_some_and(|t| t.reason.is_some())
    }
}
