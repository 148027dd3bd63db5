//! The access projection: the certificate authorities' public keys, pending
//! provisioning tokens and invitations (by the hash of their value), joined
//! hosts, and every certificate ever issued. Expired tokens and invitations
//! are forgotten as the log's time passes them; queries also check expiry
//! against the request's time.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::cert_authority::RotationPhase;
use crate::domain::{
    CaKind, CertAuthorityEvent, CertificateEvent, HostEvent, HostId, HostRole, InviteEvent, InvitedIdentity, Login,
    ProvisionTokenEvent, SigningKey, UserName,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuthorityRecord {
    pub kind: CaKind,
    /// The key that signs now.
    pub key: SigningKey,
    pub created: i64,
    pub rotated: Option<i64>,
    /// A phased rotation in progress.
    pub rotation: Option<Rotation>,
}

/// A phased rotation in progress: both keys are trusted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rotation {
    pub old: SigningKey,
    pub new: SigningKey,
    pub phase: RotationPhase,
}

impl AuthorityRecord {
    /// The rotation phase (`standby`: none in progress).
    pub fn phase(&self) -> RotationPhase {
        self.rotation.as_ref().map_or(RotationPhase::Standby, |r| r.phase)
    }

    /// Every key clients or hosts should trust now, the signing one first.
    pub fn trusted(&self) -> Vec<&SigningKey> {
        let mut keys = vec![&self.key];
        if let Some(rotation) = &self.rotation {
            keys.extend([&rotation.old, &rotation.new].into_iter().filter(|k| k.fingerprint != self.key.fingerprint));
        }
        keys
    }

    /// Whether the key with this fingerprint is trusted now.
    pub fn trusts(&self, fingerprint: &str) -> bool {
        self.trusted().iter().any(|k| k.fingerprint == fingerprint)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProvisionTokenRecord {
    pub id: Uuid,
    pub token_hash: String,
    pub roles: BTreeSet<HostRole>,
    pub expires: i64,
    pub issued_by: UserName,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InviteRecord {
    pub id: Uuid,
    pub token_hash: String,
    pub user: UserName,
    pub logins: BTreeSet<Login>,
    pub identities: BTreeSet<InvitedIdentity>,
    pub expires: i64,
    pub issued_by: UserName,
    pub created: i64,
    /// The TOTP secret last offered to the invitee.
    pub offered: Option<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostRecord {
    pub host_id: HostId,
    /// The roles of its latest join.
    pub roles: BTreeSet<HostRole>,
    /// When the host id was bound to its current key.
    pub joined: i64,
    /// The host key the host id is bound to.
    pub key_fingerprint: String,
    /// The extra principals its certificates carry, each bound to the same key.
    #[serde(default)]
    pub principals: BTreeSet<HostId>,
    /// Its latest host certificate (every join ends with one).
    pub certificate: Option<HostCertificate>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct HostCertificate {
    pub serial: u64,
    pub valid_before: i64,
    /// When it was issued: the host's latest join.
    pub issued: i64,
}

impl HostRecord {
    /// Its latest join (a rejoin with the bound key renews its certificate).
    pub fn last_joined(&self) -> i64 {
        self.certificate.map_or(self.joined, |c| c.issued)
    }
}

/// What a bound host name belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NameBinding {
    pub key_fingerprint: String,
    /// The host id the name is (or is an extra principal of).
    pub host: HostId,
}

/// A certificate as issued, with the log position that recorded it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CertificateRecord {
    pub position: i64,
    pub event: CertificateEvent,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Access {
    authorities: BTreeMap<CaKind, AuthorityRecord>,
    provision_tokens: BTreeMap<Uuid, ProvisionTokenRecord>,
    invites: BTreeMap<Uuid, InviteRecord>,
    hosts: BTreeMap<HostId, HostRecord>,
    /// Every bound host name (host ids and extra principals): its key and the host id it names.
    names: BTreeMap<HostId, NameBinding>,
    certificates: Vec<CertificateRecord>,
    /// The earliest expiry among pending tokens and invitations (sweeps wait for it).
    soonest_expiry: Option<i64>,
}

impl Access {
    pub fn authority(&self, kind: CaKind) -> Option<&AuthorityRecord> {
        self.authorities.get(&kind)
    }

    /// The pending, unexpired provisioning token with this hash.
    pub fn provision_token(&self, token_hash: &str, now: i64) -> Option<&ProvisionTokenRecord> {
        self.provision_tokens.values().find(|t| t.token_hash == token_hash && now < t.expires)
    }

    /// Pending, unexpired provisioning tokens, soonest expiry first.
    pub fn provision_tokens(&self, now: i64) -> Vec<&ProvisionTokenRecord> {
        let mut tokens: Vec<_> = self.provision_tokens.values().filter(|t| now < t.expires).collect();
        tokens.sort_by_key(|t| (t.expires, t.id));
        tokens
    }

    pub fn has_provision_token(&self, id: &Uuid) -> bool {
        self.provision_tokens.contains_key(id)
    }

    /// The pending, unexpired invitation with this hash.
    pub fn invite(&self, token_hash: &str, now: i64) -> Option<&InviteRecord> {
        self.invites.values().find(|i| i.token_hash == token_hash && now < i.expires)
    }

    /// Pending, unexpired invitations, soonest expiry first.
    pub fn invites(&self, now: i64) -> Vec<&InviteRecord> {
        let mut invites: Vec<_> = self.invites.values().filter(|i| now < i.expires).collect();
        invites.sort_by_key(|i| (i.expires, i.id));
        invites
    }

    pub fn invite_by_id(&self, id: &Uuid) -> Option<&InviteRecord> {
        self.invites.get(id)
    }

    pub fn host(&self, id: &HostId) -> Option<&HostRecord> {
        self.hosts.get(id)
    }

    pub fn hosts(&self) -> impl Iterator<Item = &HostRecord> {
        self.hosts.values()
    }

    /// The key and host a host name (a host id or an extra principal) is bound to.
    pub fn host_name(&self, name: &HostId) -> Option<&NameBinding> {
        self.names.get(name)
    }

    /// Every certificate issued, in the order the log recorded them.
    pub fn certificates(&self) -> &[CertificateRecord] {
        &self.certificates
    }

    /// The user's SSH certificates, newest first, at most `limit`.
    pub fn user_certificates(&self, user: &UserName, limit: usize) -> Vec<&CertificateRecord> {
        self.certificates
            .iter()
            .rev()
            .filter(|r| matches!(&r.event, CertificateEvent::UserCertIssued { user: subject, .. } if subject == user))
            .take(limit)
            .collect()
    }

    /// Forgets tokens and invitations that expired by `now` (the log's time).
    pub(crate) fn sweep_expired(&mut self, now: i64) {
        if self.soonest_expiry.is_none_or(|soonest| now < soonest) {
            return;
        }
        self.provision_tokens.retain(|_, t| now < t.expires);
        self.invites.retain(|_, i| now < i.expires);
        self.soonest_expiry =
            self.provision_tokens.values().map(|t| t.expires).chain(self.invites.values().map(|i| i.expires)).min();
    }

    fn expires_at(&mut self, expires: i64) {
        self.soonest_expiry = Some(self.soonest_expiry.map_or(expires, |s| s.min(expires)));
    }

    pub(crate) fn apply_authority(&mut self, event: &CertAuthorityEvent) {
        match event {
            CertAuthorityEvent::CertAuthorityCreated { ca, key, at } => {
                let record =
                    AuthorityRecord { kind: *ca, key: key.clone(), created: *at, rotated: None, rotation: None };
                self.authorities.insert(*ca, record);
            }
            CertAuthorityEvent::CertAuthorityRotated { ca, key, at, .. } => {
                if let Some(record) = self.authorities.get_mut(ca) {
                    record.key = key.clone();
                    record.rotated = Some(*at);
                    record.rotation = None;
                }
            }
            CertAuthorityEvent::CertAuthorityRotationStarted { ca, key, .. } => {
                if let Some(record) = self.authorities.get_mut(ca) {
                    let old = record.key.clone();
                    record.rotation = Some(Rotation { old, new: key.clone(), phase: RotationPhase::Init });
                }
            }
            CertAuthorityEvent::CertAuthorityRotationPhaseChanged { ca, phase, at, .. } => {
                if let Some(record) = self.authorities.get_mut(ca)
                    && let Some(rotation) = &mut record.rotation
                {
                    rotation.phase = *phase;
                    if phase.new_key_signs() && record.key != rotation.new {
                        record.key = rotation.new.clone();
                        record.rotated = Some(*at);
                    }
                }
            }
            CertAuthorityEvent::CertAuthorityRotationRolledBack { ca, at, .. } => {
                if let Some(record) = self.authorities.get_mut(ca)
                    && let Some(rotation) = record.rotation.take()
                {
                    if record.key != rotation.old {
                        record.rotated = Some(*at);
                    }
                    record.key = rotation.old;
                }
            }
        }
    }

    pub(crate) fn apply_certificate(&mut self, position: i64, event: &CertificateEvent) {
        if let CertificateEvent::HostCertIssued { host_id, roles, cert, .. } = event
            && let Some(host) = self.hosts.get_mut(host_id)
        {
            host.certificate =
                Some(HostCertificate { serial: cert.serial, valid_before: cert.valid_before, issued: cert.at });
            host.roles = roles.clone();
        }
        self.certificates.push(CertificateRecord { position, event: event.clone() });
    }

    pub(crate) fn apply_host(&mut self, name: HostId, event: &HostEvent) {
        match event {
            HostEvent::HostJoined { key_fingerprint, principal_of: Some(host), .. } => {
                let binding = NameBinding { key_fingerprint: key_fingerprint.clone(), host: host.clone() };
                self.names.insert(name, binding);
            }
            HostEvent::HostJoined { roles, key_fingerprint, at, principals, principal_of: None, .. } => {
                let binding = NameBinding { key_fingerprint: key_fingerprint.clone(), host: name.clone() };
                self.names.insert(name.clone(), binding);
                // A new key is a new binding; new principals alone keep the join time and certificate.
                let same_key = self.hosts.get(&name).is_some_and(|h| h.key_fingerprint == *key_fingerprint);
                match self.hosts.get_mut(&name) {
                    Some(host) if same_key => host.principals = principals.clone(),
                    _ => {
                        let record = HostRecord {
                            host_id: name.clone(),
                            roles: roles.clone(),
                            joined: *at,
                            key_fingerprint: key_fingerprint.clone(),
                            principals: principals.clone(),
                            certificate: None,
                        };
                        self.hosts.insert(name, record);
                    }
                }
            }
            HostEvent::HostReleased { .. } => {
                self.names.remove(&name);
                self.hosts.remove(&name);
            }
        }
    }

    pub(crate) fn apply_provision_token(&mut self, id: Uuid, event: &ProvisionTokenEvent) {
        match event {
            ProvisionTokenEvent::ProvisionTokenIssued { token_hash, roles, expires, issued_by, at } => {
                self.provision_tokens.insert(
                    id,
                    ProvisionTokenRecord {
                        id,
                        token_hash: token_hash.clone(),
                        roles: roles.clone(),
                        expires: *expires,
                        issued_by: issued_by.clone(),
                        created: *at,
                    },
                );
                self.expires_at(*expires);
            }
            ProvisionTokenEvent::ProvisionTokenUsed { .. } | ProvisionTokenEvent::ProvisionTokenDeleted { .. } => {
                self.provision_tokens.remove(&id);
            }
        }
    }

    /// Drops what is pending for a forgotten user: their invitations and the
    /// records of their certificates.
    pub(crate) fn forget_user(&mut self, user: &UserName) {
        self.invites.retain(|_, invite| invite.user != *user);
        self.certificates
            .retain(|r| !matches!(&r.event, CertificateEvent::UserCertIssued { user: subject, .. } if subject == user));
    }

    pub(crate) fn apply_invite(&mut self, id: Uuid, event: &InviteEvent) {
        match event {
            InviteEvent::InviteIssued { token_hash, user, logins, identities, expires, issued_by, at } => {
                self.invites.insert(
                    id,
                    InviteRecord {
                        id,
                        token_hash: token_hash.clone(),
                        user: user.clone(),
                        logins: logins.clone(),
                        identities: identities.clone(),
                        expires: *expires,
                        issued_by: issued_by.clone(),
                        created: *at,
                        offered: None,
                    },
                );
                self.expires_at(*expires);
            }
            InviteEvent::InviteSecondFactorOffered { credential_id, .. } => {
                if let Some(invite) = self.invites.get_mut(&id) {
                    invite.offered = Some(*credential_id);
                }
            }
            InviteEvent::InviteRedeemed { .. } | InviteEvent::InviteRevoked { .. } => {
                self.invites.remove(&id);
            }
        }
    }
}
