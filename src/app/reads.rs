//! Named reads of the projections: what the HTTP layer may ask of the
//! state folded from the log, each a question in the domain's words, so no
//! handler reaches into a projection's insides. Each takes the read lock
//! for the one question and answers owned values (or, for introspection,
//! hands the record to a closure under the lock, copying nothing).

use std::collections::{BTreeMap, BTreeSet};

use super::ledger::Ledger;
use crate::domain::canonical::Canonicalization;
use crate::domain::server_config::ServerSettings;
use crate::domain::{CaKind, CertificateEvent, CustomRoleId, Role, UserName};
use crate::projections::access::{AuthorityRecord, CertificateRecord, HostRecord, InviteRecord, ProvisionTokenRecord};
use crate::projections::checkpoint::Checkpoint;
use crate::projections::token_index::TokenRef;
use crate::projections::{SearchSpec, TokenHash, TokenView, UserRecord};

/// Whose certificates a page lists.
#[derive(Debug, Clone, Copy)]
pub enum CertificatesOf<'a> {
    All,
    User(&'a UserName),
    Host(&'a str),
}

impl Ledger {
    /// The valid token with this hash, now.
    pub fn token(&self, hash: &TokenHash) -> Option<TokenView> {
        self.projections.read().tokens.find(hash, self.now())
    }

    /// `read` of the valid token with this hash and the suggested client
    /// cache time, under the read lock (introspection's path: nothing cloned).
    pub fn with_token<R>(&self, hash: &TokenHash, read: impl FnOnce(TokenRef<'_>, i64) -> R) -> Option<R> {
        let now = self.now();
        let projections = self.projections.read();
        let cache_for = projections.config.suggested_cache_ms;
        projections.tokens.with_token(hash, now, |found| read(found, cache_for))
    }

    /// Every valid token of `user`, now.
    pub fn tokens_of(&self, user: &UserName) -> Vec<TokenView> {
        self.projections.read().tokens.tokens_of(user, self.now())
    }

    /// The user named `name`, as the directory has them.
    pub fn user(&self, name: &UserName) -> Option<UserRecord> {
        self.projections.read().users.get(name).cloned()
    }

    /// The display names of those of `names` who are enabled users other
    /// than root (user name → display name).
    pub fn display_names(&self, names: &[UserName]) -> BTreeMap<String, String> {
        let projections = self.projections.read();
        names
            .iter()
            .filter_map(|name| projections.users.get(name))
            .filter(|u| !u.is_disabled() && !u.name.is_root())
            .map(|u| (u.name.to_string(), u.display.clone()))
            .collect()
    }

    /// How user names and display names are canonicalized for search.
    pub fn name_rule(&self) -> Canonicalization {
        self.projections.read().users.rule()
    }

    /// Enabled users matching `spec` (user name → display name).
    pub fn search_users(&self, spec: &SearchSpec) -> BTreeMap<String, String> {
        let projections = self.projections.read();
        projections.users.search(spec).into_iter().map(|u| (u.name.to_string(), u.display.clone())).collect()
    }

    /// An administrator's search: users matching `spec` (all but root
    /// without one) who hold every role and custom role named.
    pub fn admin_search(
        &self,
        spec: Option<&SearchSpec>,
        roles: &BTreeSet<Role>,
        custom_roles: &BTreeSet<CustomRoleId>,
    ) -> Vec<UserRecord> {
        self.projections.read().users.admin_search(spec, roles, custom_roles).into_iter().cloned().collect()
    }

    /// Every custom role: id → description.
    pub fn custom_roles(&self) -> BTreeMap<CustomRoleId, String> {
        self.projections.read().users.custom_roles().clone()
    }

    /// Whether `user` must change their password at the next login.
    pub fn reset_required(&self, user: &UserRecord) -> bool {
        self.projections.read().users.reset_required(user)
    }

    /// The server's settings as the log has them now.
    pub fn settings(&self) -> ServerSettings {
        self.projections.read().config.clone()
    }

    /// Whether error answers carry the server's stack (auth2's `showstack`).
    pub fn show_stack(&self) -> bool {
        self.projections.read().config.show_stack
    }

    /// The suggested client cache time of a token, in ms (`cachefor`).
    pub fn suggested_cache_ms(&self) -> i64 {
        self.projections.read().config.suggested_cache_ms
    }

    /// Whether forwarded headers are ignored (auth2's `ignoreip`).
    pub fn ignore_ip(&self) -> bool {
        self.projections.read().config.ignore_ip
    }

    /// The newest `limit` certificates issued to `user`, newest first.
    pub fn user_certificates(&self, user: &UserName, limit: usize) -> Vec<CertificateRecord> {
        self.projections.read().access.user_certificates(user, limit).into_iter().cloned().collect()
    }

    /// The invitations still pending, soonest to expire first.
    pub fn pending_invites(&self) -> Vec<InviteRecord> {
        self.projections.read().access.invites(self.now()).into_iter().cloned().collect()
    }

    /// The position of the last event the projections have folded.
    pub fn position(&self) -> i64 {
        self.projections.position()
    }

    /// Whether a token with this hash is valid now.
    pub fn is_valid_token(&self, hash: &TokenHash) -> bool {
        self.projections.read().tokens.is_valid(hash, self.now())
    }

    /// The certificate authority of `kind`, once it exists.
    pub fn authority(&self, kind: CaKind) -> Option<AuthorityRecord> {
        self.projections.read().access.authority(kind).cloned()
    }

    /// The provisioning tokens issued through the API and still pending,
    /// soonest to expire first.
    pub fn pending_provision_tokens(&self) -> Vec<ProvisionTokenRecord> {
        self.projections.read().access.provision_tokens(self.now()).into_iter().cloned().collect()
    }

    /// Every host that joined.
    pub fn hosts(&self) -> Vec<HostRecord> {
        self.projections.read().access.hosts().cloned().collect()
    }

    /// A page of issued certificates in log order after position `after`:
    /// a user's, a host's, or all; at most `limit`, and the position to ask
    /// after for the next page when there is more.
    pub fn certificates_page(
        &self,
        of: CertificatesOf<'_>,
        after: Option<i64>,
        limit: usize,
    ) -> (Vec<CertificateRecord>, Option<i64>) {
        let projections = self.projections.read();
        let all = projections.access.certificates();
        let start = after.map_or(0, |after| all.partition_point(|r| r.position <= after));
        let mut page: Vec<CertificateRecord> = all[start..]
            .iter()
            .filter(|r| match (&r.event, of) {
                (_, CertificatesOf::All) => true,
                (CertificateEvent::UserCertIssued { user, .. }, CertificatesOf::User(name)) => user == name,
                (CertificateEvent::HostCertIssued { host_id, .. }, CertificatesOf::Host(id)) => host_id.as_str() == id,
                _ => false,
            })
            .take(limit.saturating_add(1))
            .cloned()
            .collect();
        let more = page.len() > limit;
        page.truncate(limit);
        let next = if more { page.last().map(|r| r.position) } else { None };
        (page, next)
    }

    /// The projections' whole state, as a checkpoint would save it now.
    pub fn checkpoint(&self) -> Checkpoint {
        self.projections.read().checkpoint()
    }
}
