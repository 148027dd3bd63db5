//! The user directory: user name → profile, roles, custom roles, disabled
//! state and password reference; anonymous id → user; and the search index
//! over user names and canonicalized display names. Also the catalogue of
//! custom roles, since deleting a role changes every user holding it.
//!
//! The display-name rule is a parameter of the fold: building the directory
//! with another rule (a rebuild) is the whole recanonicalization.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use uuid::Uuid;

use crate::domain::canonical::Canonicalization;
use crate::domain::imported::ImportedAccount;
use crate::domain::names::java_trim;
use crate::domain::throttle::PasswordThrottle;
use crate::domain::user::reserved_of;
use crate::domain::{
    AuthError, CustomRoleEvent, CustomRoleId, IdentityId, InvitedIdentity, LinkVia, Login, PolicyId, RemoteIdentity,
    Role, SystemEvent, UserEvent, UserName,
};

/// Search answers hold at most this many users.
pub const MAX_SEARCH_RESULTS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UserRecord {
    pub name: UserName,
    pub display: String,
    pub email: Option<String>,
    pub anon_id: Uuid,
    pub created: i64,
    /// The log position of the account's first event (how a forget names it).
    pub created_position: i64,
    pub last_login: Option<i64>,
    pub roles: BTreeSet<Role>,
    pub custom_roles: BTreeSet<CustomRoleId>,
    /// Why the account is disabled, when it is.
    pub disabled_reason: Option<String>,
    /// When and by whom the account was last disabled or enabled.
    pub enable_toggle: Option<(i64, UserName)>,
    /// The credentials-store id of the current password hash.
    pub credential: Option<Uuid>,
    /// The logins set for the user (`None`: the user name alone).
    pub logins: Option<BTreeSet<Login>>,
    /// The identities the account's invitation expects it to have at providers.
    pub invited_identities: BTreeSet<InvitedIdentity>,
    /// Created locally (a password account), not from a provider's identity.
    pub local: bool,
    /// The provider identities linked to the account, by id.
    pub remote_identities: BTreeMap<IdentityId, RemoteIdentity>,
    /// The policy ids the user agreed to, with when (epoch ms).
    pub policy_ids: BTreeMap<PolicyId, i64>,
    /// The invitation the account was created from.
    pub invited: Option<Uuid>,
    /// The credentials-store id of the enrolled TOTP secret.
    pub second_factor: Option<Uuid>,
    /// The time step of the last accepted second-factor code.
    pub last_step: Option<u64>,
    /// After too many wrong second-factor codes, logins are refused until this time.
    pub locked_until: Option<i64>,
    /// The account's wrong passwords, by client and account-wide (see `domain::throttle`).
    pub password_throttle: PasswordThrottle,
    reset_forced: bool,
    /// The log position of the last password change.
    password_position: i64,
    canonical: Vec<String>,
}

impl UserRecord {
    pub fn is_disabled(&self) -> bool {
        self.disabled_reason.is_some()
    }

    /// The principals of the user's SSH certificates: the logins set, else the user name.
    pub fn effective_logins(&self) -> BTreeSet<Login> {
        match &self.logins {
            Some(logins) => logins.clone(),
            None => Login::parse(self.name.as_str()).into_iter().collect(),
        }
    }
}

/// A parsed user search (contract §6, `GET /api/V2/users/search/{prefix}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchSpec {
    user_terms: Vec<String>,
    display_terms: Vec<String>,
    by_user: bool,
    by_display: bool,
}

impl SearchSpec {
    /// `fields` is the raw `fields` parameter; only `username` and `displayname` count.
    pub fn parse(prefix: &str, fields: Option<&str>, rule: Canonicalization) -> Result<Self, AuthError> {
        let requested: Vec<&str> = fields.unwrap_or_default().split(',').map(java_trim).collect();
        let mut by_user = requested.contains(&"username");
        let mut by_display = requested.contains(&"displayname");
        if !by_user && !by_display {
            by_user = true;
            by_display = true;
        }
        let mut user_terms: Vec<String> = Vec::new();
        for piece in prefix.to_lowercase().split_whitespace() {
            let kept: String = piece.chars().filter(|c| matches!(c, 'a'..='z' | '0'..='9' | '_')).collect();
            let term = kept.trim_start_matches(|c: char| !c.is_ascii_lowercase()).to_owned();
            if !term.is_empty() && !user_terms.contains(&term) {
                user_terms.push(term);
            }
        }
        let mut display_terms = rule.apply(prefix);
        display_terms.dedup();
        if by_user && !by_display && user_terms.is_empty() {
            return Err(AuthError::illegal(format!(
                "The search prefix {prefix} contains no valid username prefix and a user name search was requested"
            )));
        }
        if by_display && display_terms.is_empty() {
            return Err(AuthError::illegal(format!(
                "The search prefix {prefix} contains only punctuation and a display name search was requested"
            )));
        }
        Ok(Self { user_terms, display_terms, by_user, by_display })
    }
}

/// The directory as a checkpoint keeps it (users by name, roles by id).
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct SavedDirectory {
    pub users: Vec<UserRecord>,
    pub custom_roles: Vec<(CustomRoleId, String)>,
    pub all_resets_forced_at: i64,
}

#[derive(Default)]
pub struct UserDirectory {
    users: BTreeMap<UserName, UserRecord>,
    anon_ids: HashMap<Uuid, UserName>,
    /// Canonical display-name term → users whose display name has it.
    display_terms: BTreeMap<String, BTreeSet<UserName>>,
    custom_roles: BTreeMap<CustomRoleId, String>,
    /// Linked identity → the account it is linked to.
    by_identity: HashMap<IdentityId, UserName>,
    /// Log position of the last "force every password reset".
    all_resets_forced_at: i64,
    rule: Canonicalization,
}

impl UserDirectory {
    pub fn new(rule: Canonicalization) -> Self {
        Self { rule, ..Self::default() }
    }

    pub fn rule(&self) -> Canonicalization {
        self.rule
    }

    /// The directory in canonical form, for a checkpoint.
    pub fn save(&self) -> SavedDirectory {
        SavedDirectory {
            users: self.users.values().cloned().collect(),
            custom_roles: self.custom_roles.iter().map(|(id, desc)| (id.clone(), desc.clone())).collect(),
            all_resets_forced_at: self.all_resets_forced_at,
        }
    }

    /// Rebuilds the directory (and its indexes) from a checkpoint made with `rule`.
    pub fn restore(saved: SavedDirectory, rule: Canonicalization) -> Self {
        let mut directory = Self::new(rule);
        directory.custom_roles = saved.custom_roles.into_iter().collect();
        directory.all_resets_forced_at = saved.all_resets_forced_at;
        for user in saved.users {
            let name = user.name.clone();
            directory.anon_ids.insert(user.anon_id, name.clone());
            for id in user.remote_identities.keys() {
                directory.by_identity.insert(id.clone(), name.clone());
            }
            directory.users.insert(name.clone(), user);
            directory.index_display(&name);
        }
        directory
    }

    pub fn get(&self, name: &UserName) -> Option<&UserRecord> {
        self.users.get(name)
    }

    pub fn by_anon_id(&self, anon_id: &Uuid) -> Option<&UserRecord> {
        self.anon_ids.get(anon_id).and_then(|name| self.users.get(name))
    }

    /// The account a provider identity is linked to.
    pub fn by_identity(&self, id: &IdentityId) -> Option<&UserRecord> {
        self.by_identity.get(id).and_then(|name| self.users.get(name))
    }

    /// The accounts whose invitation expects the identity at `provider` with
    /// `email` (provider and email compared ignoring case).
    pub fn invited_with<'a>(&'a self, provider: &'a str, email: &'a str) -> impl Iterator<Item = &'a UserRecord> + 'a {
        self.users.values().filter(move |u| {
            u.invited_identities
                .iter()
                .any(|i| i.connector.eq_ignore_ascii_case(provider) && i.email.eq_ignore_ascii_case(email))
        })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    pub fn users(&self) -> impl Iterator<Item = &UserRecord> {
        self.users.values()
    }

    /// Must this user change their password before logging in?
    pub fn reset_required(&self, user: &UserRecord) -> bool {
        user.reset_forced || (user.credential.is_some() && user.password_position < self.all_resets_forced_at)
    }

    pub fn custom_roles(&self) -> &BTreeMap<CustomRoleId, String> {
        &self.custom_roles
    }

    /// Enabled, non-root users matching the search, ordered and capped as upstream does.
    pub fn search(&self, spec: &SearchSpec) -> Vec<&UserRecord> {
        let mut found = self.matching(spec);
        found.retain(|u| !u.is_disabled());
        found.truncate(MAX_SEARCH_RESULTS);
        found
    }

    /// The administrator's search: non-root users matching the prefix search
    /// (every user without one), disabled ones included, holding every role
    /// and custom role asked for; capped like [`Self::search`].
    pub fn admin_search(
        &self,
        spec: Option<&SearchSpec>,
        roles: &BTreeSet<Role>,
        custom_roles: &BTreeSet<CustomRoleId>,
    ) -> Vec<&UserRecord> {
        let holds = |u: &&UserRecord| roles.is_subset(&u.roles) && custom_roles.is_subset(&u.custom_roles);
        let mut found: Vec<&UserRecord> = match spec {
            Some(spec) => self.matching(spec).into_iter().filter(holds).collect(),
            None => self.users.values().filter(|u| !u.name.is_root()).filter(holds).collect(),
        };
        found.truncate(MAX_SEARCH_RESULTS);
        found
    }

    /// Non-root users matching the prefix search, in upstream's order.
    fn matching(&self, spec: &SearchSpec) -> Vec<&UserRecord> {
        let user_match = |u: &UserRecord| {
            spec.by_user
                && !spec.user_terms.is_empty()
                && spec.user_terms.iter().all(|t| u.name.as_str().starts_with(t.as_str()))
        };
        let display_match = |u: &UserRecord| {
            spec.by_display
                && !spec.display_terms.is_empty()
                && spec.display_terms.iter().all(|t| u.canonical.iter().any(|c| c.starts_with(t.as_str())))
        };
        let mut candidates: BTreeSet<&UserName> = BTreeSet::new();
        if let (true, Some(first)) = (spec.by_user, spec.user_terms.first()) {
            candidates.extend(
                self.users
                    .range::<str, _>((Bound::Included(first.as_str()), Bound::Unbounded))
                    .map(|(n, _)| n)
                    .take_while(|n| n.as_str().starts_with(first.as_str())),
            );
        }
        if let (true, Some(first)) = (spec.by_display, spec.display_terms.first()) {
            for (_, names) in self
                .display_terms
                .range::<str, _>((Bound::Included(first.as_str()), Bound::Unbounded))
                .take_while(|(t, _)| t.starts_with(first.as_str()))
            {
                candidates.extend(names.iter());
            }
        }
        let mut found: Vec<&UserRecord> = candidates
            .into_iter()
            .filter_map(|n| self.users.get(n))
            .filter(|u| !u.name.is_root())
            .filter(|u| user_match(u) || display_match(u))
            .collect();
        if spec.by_display && !spec.by_user {
            found.sort_by(|a, b| a.canonical.cmp(&b.canonical).then_with(|| a.name.cmp(&b.name)));
        }
        found
    }

    fn index_display(&mut self, name: &UserName) {
        let Some(user) = self.users.get_mut(name) else {
            return;
        };
        for term in &user.canonical {
            if let Some(names) = self.display_terms.get_mut(term) {
                names.remove(name);
                if names.is_empty() {
                    self.display_terms.remove(term);
                }
            }
        }
        user.canonical = self.rule.apply(&user.display);
        for term in &user.canonical {
            self.display_terms.entry(term.clone()).or_default().insert(name.clone());
        }
    }

    /// The account created at `position` (the position of its first event).
    pub fn created_at(&self, position: i64) -> Option<&UserRecord> {
        self.users.values().find(|u| u.created_position == position)
    }

    /// Drops the account created at `first_position` (a forget): its record
    /// and every index entry; returns its name (as this directory knew it).
    pub(crate) fn forget(&mut self, first_position: i64) -> Option<UserName> {
        let name = self.created_at(first_position)?.name.clone();
        let user = self.users.remove(&name)?;
        self.anon_ids.remove(&user.anon_id);
        for term in &user.canonical {
            if let Some(names) = self.display_terms.get_mut(term) {
                names.remove(&name);
                if names.is_empty() {
                    self.display_terms.remove(term);
                }
            }
        }
        self.by_identity.retain(|_, holder| *holder != name);
        Some(name)
    }

    pub(crate) fn apply_user(&mut self, position: i64, name: &UserName, event: &UserEvent) {
        if let UserEvent::UserImported(account) = event {
            self.import(position, account);
            return;
        }
        if let UserEvent::UserCreated { user, display, email, anon_id, created, local, .. } = event {
            self.users.insert(
                user.clone(),
                UserRecord {
                    name: user.clone(),
                    display: display.to_string(),
                    email: email.as_ref().map(|e| e.to_string()),
                    anon_id: *anon_id,
                    created: *created,
                    created_position: position,
                    last_login: None,
                    roles: BTreeSet::new(),
                    custom_roles: BTreeSet::new(),
                    disabled_reason: None,
                    enable_toggle: None,
                    credential: None,
                    logins: None,
                    invited_identities: BTreeSet::new(),
                    local: *local,
                    remote_identities: BTreeMap::new(),
                    policy_ids: BTreeMap::new(),
                    invited: None,
                    second_factor: None,
                    last_step: None,
                    locked_until: None,
                    password_throttle: PasswordThrottle::default(),
                    reset_forced: false,
                    password_position: 0,
                    canonical: Vec::new(),
                },
            );
            self.anon_ids.insert(*anon_id, user.clone());
            self.index_display(user);
            return;
        }
        let existing_roles: Vec<CustomRoleId> = match event {
            UserEvent::CustomRolesGranted { roles, .. } => {
                roles.iter().filter(|r| self.custom_roles.contains_key(*r)).cloned().collect()
            }
            _ => Vec::new(),
        };
        let Some(user) = self.users.get_mut(name) else {
            return;
        };
        match event {
            UserEvent::UserCreated { .. } => {}
            UserEvent::DisplayNameChanged { display } => {
                user.display = display.to_string();
                self.index_display(name);
            }
            UserEvent::EmailChanged { email } => user.email = email.as_ref().map(|e| e.to_string()),
            UserEvent::PasswordChanged { credential_id, .. } => {
                user.credential = Some(*credential_id);
                user.password_position = position;
                user.password_throttle = PasswordThrottle::default();
            }
            UserEvent::PasswordResetForced { .. } => user.reset_forced = true,
            UserEvent::PasswordResetCleared { .. } => user.reset_forced = false,
            UserEvent::LoginRecorded { at, .. } => {
                user.last_login = Some(*at);
                user.password_throttle.logged_in();
            }
            UserEvent::RolesGranted { roles, .. } => user.roles.extend(roles.iter().copied()),
            UserEvent::RolesRemoved { roles, .. } => user.roles.retain(|r| !roles.contains(r)),
            // A role deleted while the grant was in flight is not granted.
            UserEvent::CustomRolesGranted { .. } => user.custom_roles.extend(existing_roles),
            UserEvent::CustomRolesRemoved { roles, .. } => user.custom_roles.retain(|r| !roles.contains(r)),
            UserEvent::UserDisabled { reason, by, at } => {
                user.disabled_reason = Some(reason.clone());
                user.enable_toggle = Some((*at, by.clone()));
            }
            UserEvent::UserEnabled { by, at } => {
                user.disabled_reason = None;
                user.enable_toggle = Some((*at, by.clone()));
            }
            UserEvent::UserTokensRevoked { .. } => {}
            UserEvent::InvitationAccepted { invite, .. } => user.invited = Some(*invite),
            UserEvent::LoginsChanged { logins, .. } => user.logins = Some(logins.clone()),
            UserEvent::IdentitiesLinked { identities, .. } => {
                user.invited_identities.extend(identities.iter().cloned())
            }
            UserEvent::IdentityLinked { identity, via, .. } => {
                // An expected identity, once found, is no longer expected: an
                // unlink of it is not undone by the next provider login.
                if *via == LinkVia::Invitation {
                    let email = identity.email.as_deref().unwrap_or_default();
                    user.invited_identities.retain(|i| {
                        !(i.connector.eq_ignore_ascii_case(&identity.provider) && i.email.eq_ignore_ascii_case(email))
                    });
                }
                user.remote_identities.insert(identity.id.clone(), identity.clone());
                self.by_identity.insert(identity.id.clone(), name.clone());
            }
            UserEvent::IdentityDetailsRefreshed { identity, .. } => {
                user.remote_identities.insert(identity.id.clone(), identity.clone());
                self.by_identity.insert(identity.id.clone(), name.clone());
            }
            UserEvent::IdentityUnlinked { id, .. } => {
                user.remote_identities.remove(id);
                if self.by_identity.get(id) == Some(name) {
                    self.by_identity.remove(id);
                }
            }
            UserEvent::PolicyIdsAgreed { policy_ids, at } => {
                for id in policy_ids {
                    // Agreeing again keeps the first agreement's time.
                    user.policy_ids.entry(id.clone()).or_insert(*at);
                }
            }
            UserEvent::SecondFactorEnrolled { credential_id, .. } => user.second_factor = Some(*credential_id),
            UserEvent::SecondFactorAccepted { step, .. } => {
                user.last_step = Some(*step);
                user.locked_until = None;
            }
            UserEvent::SecondFactorRejected { locked_until, .. } => {
                if locked_until.is_some() {
                    user.locked_until = *locked_until;
                }
            }
            UserEvent::PasswordRejected { failures, throttled_until, at } => {
                user.password_throttle.rejected_v1(*failures, *throttled_until, *at);
            }
            UserEvent::PasswordCheckReserved { .. } => {
                if let Some(reserved) = reserved_of(event) {
                    user.password_throttle.reserved(&reserved);
                }
            }
            UserEvent::PasswordCheckReleased { source, .. } => user.password_throttle.released(source),
            UserEvent::LoginThrottleCleared { .. } => {
                user.password_throttle = PasswordThrottle::default();
                user.locked_until = None;
            }
            UserEvent::UserImported(_) => {}
            // The same password's new hash: its position (the password's age) stands.
            UserEvent::PasswordRehashed { credential_id, .. } => user.credential = Some(*credential_id),
        }
    }

    /// An account as auth2 held it; its custom roles as far as the catalogue knows them.
    fn import(&mut self, position: i64, account: &ImportedAccount) {
        let name = account.user.clone();
        let custom_roles =
            account.custom_roles.iter().filter(|r| self.custom_roles.contains_key(*r)).cloned().collect();
        let identities: BTreeMap<IdentityId, RemoteIdentity> =
            account.identities.iter().map(|i| (i.id.clone(), i.clone())).collect();
        for id in identities.keys() {
            self.by_identity.insert(id.clone(), name.clone());
        }
        let toggle = account.toggle.as_ref();
        self.users.insert(
            name.clone(),
            UserRecord {
                name: name.clone(),
                display: account.display.to_string(),
                email: account.email.as_ref().map(|e| e.to_string()),
                anon_id: account.anon_id,
                created: account.created,
                created_position: position,
                last_login: account.last_login,
                roles: account.roles.clone(),
                custom_roles,
                disabled_reason: toggle.and_then(|t| t.reason.clone()),
                enable_toggle: toggle.map(|t| (t.at, t.by.clone())),
                credential: account.credential_id,
                logins: None,
                invited_identities: BTreeSet::new(),
                local: account.local,
                remote_identities: identities,
                policy_ids: account.policy_ids.clone(),
                invited: None,
                second_factor: None,
                last_step: None,
                locked_until: None,
                password_throttle: PasswordThrottle::default(),
                reset_forced: account.reset_required,
                password_position: position,
                canonical: Vec::new(),
            },
        );
        self.anon_ids.insert(account.anon_id, name.clone());
        self.index_display(&name);
    }

    pub(crate) fn apply_custom_role(&mut self, event: &CustomRoleEvent) {
        match event {
            CustomRoleEvent::CustomRoleSet { id, description, .. }
            | CustomRoleEvent::CustomRoleImported { id, description, .. } => {
                self.custom_roles.insert(id.clone(), description.clone());
            }
            CustomRoleEvent::CustomRoleDeleted { id, .. } => {
                self.custom_roles.remove(id);
                for user in self.users.values_mut() {
                    user.custom_roles.remove(id);
                }
            }
        }
    }

    /// A policy id removed from every user.
    pub(crate) fn remove_policy_id(&mut self, id: &PolicyId) {
        for user in self.users.values_mut() {
            user.policy_ids.remove(id);
        }
    }

    pub(crate) fn apply_system(&mut self, position: i64, event: &SystemEvent) {
        if let SystemEvent::AllPasswordResetsForced { .. } = event {
            self.all_resets_forced_at = position;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DisplayName, UserName};

    fn directory(users: &[(&str, &str)]) -> UserDirectory {
        let mut d = UserDirectory::new(Canonicalization::V2);
        for (i, (name, display)) in users.iter().enumerate() {
            let user = UserName::from_log((*name).into());
            let event = UserEvent::UserCreated {
                user: user.clone(),
                display: DisplayName::parse(Some(display)).unwrap_or_else(|e| panic!("{e}")),
                email: None,
                anon_id: Uuid::from_u128(i as u128 + 1),
                created: 0,
                created_by: UserName::root(),
                local: true,
            };
            d.apply_user(i as i64 + 1, &user, &event);
        }
        d
    }

    fn names(found: Vec<&UserRecord>) -> Vec<&str> {
        found.into_iter().map(|u| u.name.as_str()).collect()
    }

    #[test]
    fn every_display_term_must_prefix_some_name_part() {
        let d = directory(&[("foo", "bar thing"), ("baz", "Bartholomew")]);
        let spec = SearchSpec::parse("b th", None, Canonicalization::V2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names(d.search(&spec)), ["foo"]);
    }

    #[test]
    fn user_name_search_matches_prefixes() {
        let d = directory(&[("alice", "A"), ("alfred", "B"), ("bob", "C")]);
        let spec = SearchSpec::parse("al", Some("username"), Canonicalization::V2).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(names(d.search(&spec)), ["alfred", "alice"]);
    }

    #[test]
    fn punctuation_only_prefixes_are_refused() {
        let e = SearchSpec::parse("!!", None, Canonicalization::V2).expect_err("refused");
        assert_eq!(
            e.to_string(),
            "30001 Illegal input parameter: The search prefix !! contains only punctuation and a display name search was requested"
        );
        let e = SearchSpec::parse("99", Some("username"), Canonicalization::V2).expect_err("refused");
        assert!(e.to_string().contains("contains no valid username prefix"));
        assert!(SearchSpec::parse("9un$der_s", None, Canonicalization::V2).is_ok());
    }

    #[test]
    fn a_deleted_custom_role_leaves_every_user() {
        let mut d = directory(&[("alice", "A")]);
        let id = CustomRoleId::parse(Some("curator")).unwrap_or_else(|e| panic!("{e}"));
        let by = UserName::root();
        d.apply_custom_role(&CustomRoleEvent::CustomRoleSet {
            id: id.clone(),
            description: "d".into(),
            by: by.clone(),
            at: 0,
        });
        let alice = UserName::from_log("alice".into());
        d.apply_user(
            5,
            &alice,
            &UserEvent::CustomRolesGranted { roles: BTreeSet::from([id.clone()]), by: by.clone(), at: 0 },
        );
        assert_eq!(d.get(&alice).map(|u| u.custom_roles.len()), Some(1));
        d.apply_custom_role(&CustomRoleEvent::CustomRoleDeleted { id, by, at: 0 });
        assert_eq!(d.get(&alice).map(|u| u.custom_roles.len()), Some(0));
    }
}
