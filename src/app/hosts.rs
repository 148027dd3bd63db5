//! Provisioning tokens and hosts joining with them: administrators
//! issue and delete tokens; a host presents one with its public key and gets a
//! host certificate signed by the host CA. Static tokens from the
//! configuration file join any number of hosts; issued ones join one each.
//!
//! A host name — its id, and each extra principal it asks for — belongs to
//! the key that first joined under it: a join with another key is refused
//! (403) whatever the token, until an Admin frees the name
//! ([`release`]). Names must lie inside the cluster (`web1.{cluster_name}`)
//! unless the operator set the host CA's trust pattern explicitly.
//!
//! A join writes on several streams: the issued token is spent (single use
//! wins any race), each extra principal and then the host id is bound to the
//! key (the `Host` aggregate of each name decides, so racing joins cannot
//! both bind), and the certificate is recorded under a fresh serial. Every
//! name is checked against the bindings before the token is spent; a race
//! lost after it leaves the token spent, and the error is the answer.

use super::acting::Acting;
use std::collections::BTreeSet;
use std::sync::Arc;

use rand::RngCore;
use ssh_key::certificate::CertType;
use ssh_key::{PrivateKey, PublicKey};
use uuid::Uuid;

use super::AppError;
use super::ledger::Ledger;
use super::ssh::authority::{self, CertSpec};
use super::ssh::{SshService, issue_certificate};
use crate::domain::provision_token::check_roles_allowed;
use crate::domain::{
    AuthError, CaKind, CertificateEvent, ErrorType, Host, HostCommand, HostId, HostRole, JoinHost, ProvisionToken,
    ProvisionTokenCommand, ProvisionTokenId, Signed, SigningKey, UserName,
};
use crate::projections::hash_token;
use crate::projections::token_index::encode_hash;
use crate::store::EventMetadata;

/// A new provisioning token: its id and value (shown once; the log keeps its hash).
pub struct IssuedToken {
    pub id: Uuid,
    pub value: String,
}

/// Issues `count` provisioning tokens for `roles`, valid until `expires`. A
/// request the log fails part-way withdraws the tokens it had already issued:
/// their values were never shown to anyone.
pub async fn issue_tokens(
    ledger: &Ledger,
    acting: &Acting,
    roles: &BTreeSet<HostRole>,
    expires: i64,
    count: usize,
) -> Result<Vec<IssuedToken>, AppError> {
    let (by, metadata) = (acting.name(), &acting.metadata);
    let now = ledger.now();
    let mut issued = Vec::with_capacity(count);
    for _ in 0..count {
        let mut secret = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut secret);
        let value = data_encoding::HEXLOWER.encode(&secret);
        let id = Uuid::new_v4();
        let command = ProvisionTokenCommand::Issue {
            token_hash: encode_hash(&hash_token(&value)),
            roles: roles.clone(),
            expires,
            issued_by: by.clone(),
            at: now,
        };
        if let Err(error) = ledger.execute::<ProvisionToken>(id, command, metadata).await {
            // A lagging issue committed: its token is withdrawn with the others.
            let committed = matches!(error, AppError::Lagging(_)).then_some(id);
            withdraw(ledger, issued.iter().map(|t: &IssuedToken| t.id).chain(committed), by, metadata).await;
            return Err(error);
        }
        issued.push(IssuedToken { id, value });
    }
    Ok(issued)
}

/// Deletes tokens a failed request issued. A log that refused the issue may
/// refuse these too: each failure is reported, and such a token stays until it expires.
async fn withdraw(ledger: &Ledger, ids: impl Iterator<Item = Uuid>, by: &UserName, metadata: &EventMetadata) {
    let metadata =
        EventMetadata { reason: Some("withdrawn: the request that issued it failed".into()), ..metadata.clone() };
    for id in ids {
        let command = ProvisionTokenCommand::Delete { by: by.clone(), at: ledger.now() };
        if let Err(error) = ledger.execute::<ProvisionToken>(id, command, &metadata).await {
            tracing::warn!(%id, %error, "cannot withdraw a provisioning token of a failed request; it stays until it expires");
        }
    }
}

/// Deletes a pending provisioning token (`id` as the caller wrote it).
pub async fn delete_token(ledger: &Ledger, id: &str, acting: &Acting) -> Result<(), AppError> {
    let (by, metadata) = (acting.name(), &acting.metadata);
    let no_such = || AuthError::new(ErrorType::NoSuchToken, format!("no such provisioning token {id}"));
    let id = Uuid::parse_str(id).map_err(|_| no_such())?;
    if !ledger.projections.read().access.has_provision_token(&id) {
        return Err(no_such().into());
    }
    let command = ProvisionTokenCommand::Delete { by: by.clone(), at: ledger.now() };
    ledger.execute::<ProvisionToken>(id, command, metadata).await?;
    Ok(())
}

/// A host's request to join.
pub struct JoinRequest {
    /// The provisioning token's value, as presented.
    pub token: String,
    pub host_id: HostId,
    pub public_key: PublicKey,
    /// The roles asked for; `None`: all the token grants.
    pub roles: Option<BTreeSet<HostRole>>,
    /// Extra names the certificate carries (an address, a short name), each bound to the key too.
    pub principals: BTreeSet<HostId>,
}

/// The most extra principals a host may ask for.
pub const MAX_PRINCIPALS: usize = 16;

/// A joined host: its certificate, what the log recorded, and the host CA that signed it.
pub struct Joined {
    pub host_id: HostId,
    pub principals: BTreeSet<HostId>,
    pub roles: BTreeSet<HostRole>,
    pub certificate: String,
    pub event: CertificateEvent,
    pub ca: SigningKey,
}

/// Refused when the host id or a principal is bound to another key.
fn names_free(
    ledger: &Ledger,
    host_id: &HostId,
    principals: &BTreeSet<HostId>,
    key_fingerprint: &str,
) -> Result<(), AppError> {
    let projections = ledger.projections.read();
    let taken = std::iter::once(host_id)
        .chain(principals)
        .any(|name| projections.access.host_name(name).is_some_and(|bound| bound.key_fingerprint != key_fingerprint));
    match taken {
        true => Err(Host::taken().into()),
        false => Ok(()),
    }
}

/// Joins a host (see the module's notes on its writes).
pub async fn join(
    ledger: &Ledger,
    ssh: &SshService,
    request: JoinRequest,
    metadata: &EventMetadata,
) -> Result<Joined, AppError> {
    let JoinRequest { token: value, host_id, public_key, roles: requested, mut principals } = request;
    principals.remove(&host_id);
    let now = ledger.now();
    let invalid = || AuthError::new(ErrorType::InvalidToken, "unknown, used or expired provisioning token");
    check_names(ssh, &host_id, &principals)?;
    // The signing key first: a token is never spent on a join that cannot be signed.
    let (ca, private) = ssh.keys.signer(ledger, CaKind::Host).await?;
    let key_fingerprint = authority::fingerprint(&public_key);
    // Nor on a name another key holds.
    names_free(ledger, &host_id, &principals, &key_fingerprint)?;
    let (token, roles) = match ssh.static_token(&value) {
        Some(token) => {
            let roles = requested.unwrap_or_else(|| token.roles.clone());
            check_roles_allowed(&token.roles, &roles)?;
            (ProvisionTokenId::Static { id: token.id.clone() }, roles)
        }
        None => {
            let hash = encode_hash(&hash_token(value.trim()));
            let (id, granted) = ledger
                .find_fresh(|projections| {
                    projections.access.provision_token(&hash, now).map(|t| (t.id, t.roles.clone()))
                })
                .await
                .ok_or_else(invalid)?;
            // Looked up again if the lookup caught up with the log: the names, on that newer state.
            names_free(ledger, &host_id, &principals, &key_fingerprint)?;
            let roles = requested.unwrap_or(granted);
            let command = ProvisionTokenCommand::Use { host_id: host_id.clone(), roles: roles.clone(), at: now };
            ledger.execute::<ProvisionToken>(id, command, metadata).await?;
            (ProvisionTokenId::Issued { id }, roles)
        }
    };
    // Binds each extra principal, then the host id, to the key.
    let bind = |name: &HostId, principals: BTreeSet<HostId>, principal_of: Option<HostId>| {
        let join = JoinHost {
            roles: roles.clone(),
            key_fingerprint: key_fingerprint.clone(),
            token: token.clone(),
            at: now,
            principals,
            principal_of,
        };
        ledger.execute::<Host>(name.clone(), HostCommand::Join(join), metadata)
    };
    for principal in &principals {
        let bound = bind(principal, BTreeSet::new(), Some(host_id.clone())).await;
        bound.map_err(|error| spent(&token, error))?;
    }
    let bound = bind(&host_id, principals.clone(), None).await;
    bound.map_err(|error| spent(&token, error))?;
    let signer = HostSigner {
        ca: &ca,
        private: &private,
        host_id: &host_id,
        principals: &principals,
        public_key: &public_key,
        now,
    };
    let valid_before = now.saturating_add(ssh.options.host_cert_ttl_ms);
    let (certificate, event) = issue_certificate(ledger, metadata, |serial| {
        signer.sign(serial, valid_before, &roles, &token, &key_fingerprint)
    })
    .await?;
    Ok(Joined { host_id, principals, roles, certificate, event, ca })
}

/// An error after the token was spent says so (a static token is never spent).
fn spent(token: &ProvisionTokenId, error: AppError) -> AppError {
    match token {
        ProvisionTokenId::Issued { .. } => error.after_spending("the provisioning token"),
        ProvisionTokenId::Static { .. } => error,
    }
}

/// Refuses more principals than [`MAX_PRINCIPALS`], and names outside the cluster.
fn check_names(ssh: &SshService, host_id: &HostId, principals: &BTreeSet<HostId>) -> Result<(), AuthError> {
    if principals.len() > MAX_PRINCIPALS {
        return Err(AuthError::illegal(format!("at most {MAX_PRINCIPALS} principals")));
    }
    let cluster = &ssh.options.cluster_name;
    if let Some(outside) = std::iter::once(host_id).chain(principals).find(|name| !ssh.options.admits(name.as_str())) {
        return Err(AuthError::illegal(format!(
            "Host name {:?} is outside the cluster: use a name under {cluster} (e.g. web1.{cluster}), \
             or have the operator set known_hosts_pattern",
            outside.as_str()
        )));
    }
    Ok(())
}

/// What freeing a host did: the names freed.
pub struct Released {
    pub names: Vec<HostId>,
}

/// Frees a host id and its extra principals from the key they are bound to
/// (an Admin's decision: the next join under them binds whichever key it
/// brings). A principal another host id has since taken is left alone. A
/// name bound on its own — an extra principal a host no longer asks for, or
/// one bound by a join that then lost a race — is freed by its name.
pub async fn release(ledger: &Ledger, host_id: &HostId, acting: &Acting) -> Result<Released, AppError> {
    let (by, metadata) = (acting.name(), &acting.metadata);
    let principals: Vec<HostId> = {
        let projections = ledger.projections.read();
        match projections.access.host(host_id) {
            Some(host) => host
                .principals
                .iter()
                .filter(|p| projections.access.host_name(p).is_some_and(|b| b.host == *host_id))
                .cloned()
                .collect(),
            None if projections.access.host_name(host_id).is_some() => Vec::new(),
            None => {
                return Err(AuthError::new(ErrorType::NoSuchHost, format!("no host is bound to {host_id}")).into());
            }
        }
    };
    let now = ledger.now();
    let mut names = Vec::new();
    for name in principals.iter().chain(std::iter::once(host_id)) {
        let command = HostCommand::Release { by: by.clone(), at: now };
        ledger.execute::<Host>(name.clone(), command, metadata).await?;
        names.push(name.clone());
    }
    Ok(Released { names })
}

/// What signing one host certificate needs.
struct HostSigner<'a> {
    ca: &'a SigningKey,
    private: &'a Arc<PrivateKey>,
    host_id: &'a HostId,
    principals: &'a BTreeSet<HostId>,
    public_key: &'a PublicKey,
    now: i64,
}

impl HostSigner<'_> {
    fn sign(
        &self,
        serial: u64,
        valid_before: i64,
        roles: &BTreeSet<HostRole>,
        token: &ProvisionTokenId,
        key_fingerprint: &str,
    ) -> Result<(String, CertificateEvent), AppError> {
        let valid_after = (self.now - 60_000) / 1000;
        let valid_before = valid_before / 1000;
        let certificate = authority::sign(
            self.private,
            CertSpec {
                cert_type: CertType::Host,
                subject: self.public_key,
                key_id: self.host_id.to_string(),
                principals: std::iter::once(self.host_id).chain(self.principals).map(ToString::to_string).collect(),
                serial,
                valid_after: u64::try_from(valid_after).unwrap_or(0),
                valid_before: u64::try_from(valid_before).unwrap_or(0),
            },
        )?;
        let cert = Signed {
            serial,
            key_fingerprint: key_fingerprint.to_owned(),
            valid_after: valid_after * 1000,
            valid_before: valid_before * 1000,
            ca_fingerprint: self.ca.fingerprint.clone(),
            at: self.now,
        };
        let event = CertificateEvent::HostCertIssued {
            host_id: self.host_id.clone(),
            roles: roles.clone(),
            token: token.clone(),
            cert,
        };
        Ok((certificate, event))
    }
}
