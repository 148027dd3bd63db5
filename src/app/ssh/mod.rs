//! The SSH side of the service: certificate authorities and the certificates
//! they sign, provisioning tokens — static ones from the configuration
//! file included — and TOTP second factors. The domain decides; this module
//! holds what the domain may not: keys, randomness and the credentials store.

pub mod authority;

use std::collections::BTreeSet;

use rand::Rng;
use sha2::{Digest, Sha256};

use crate::app::AppError;
use crate::app::acting::Acting;
use crate::app::ledger::Ledger;
use crate::domain::certificate::SERIAL_TAKEN;
use crate::domain::{AuthError, CaKind, Certificate, CertificateEvent, HostRole, RecordCertificate, Signed};
use crate::projections::UserRecord;
use crate::store::EventMetadata;
use authority::CertSpec;
use authority::KeyCache;
use ssh_key::PublicKey;
use ssh_key::certificate::CertType;

pub const HOUR_MS: i64 = 60 * 60 * 1000;

/// Settings of the SSH side (configuration, not events).
#[derive(Debug, Clone, PartialEq)]
pub struct SshOptions {
    /// Static provisioning tokens from the configuration file: no expiry, any number of uses.
    pub static_tokens: Vec<StaticToken>,
    /// The longest validity a user certificate may have.
    pub max_user_cert_ttl_ms: i64,
    /// The validity of a host certificate.
    pub host_cert_ttl_ms: i64,
    /// The cluster's name: host ids and principals are names inside it
    /// (`web1.{cluster_name}`), and clients trust the host CA for it only.
    pub cluster_name: String,
    /// An explicit known_hosts pattern for the host CA's trust line (e.g.
    /// `*.example.internal,10.0.0.*`); when set, host names are not checked
    /// against the cluster (the operator chose what clients trust).
    pub known_hosts_pattern: Option<String>,
}

impl SshOptions {
    /// The hosts clients trust the host CA for (the `@cert-authority` line's
    /// pattern): the explicit pattern, or the cluster and every name in it.
    pub fn trusted_hosts(&self) -> String {
        match &self.known_hosts_pattern {
            Some(pattern) => pattern.clone(),
            None => format!("*.{0},{0}", self.cluster_name),
        }
    }

    /// Whether a host may join under `name`: inside the cluster, unless the
    /// operator set the trust pattern explicitly.
    pub fn admits(&self, name: &str) -> bool {
        self.known_hosts_pattern.is_some() || is_in_cluster(name, &self.cluster_name)
    }
}

/// Whether `name` is the cluster's name or a name inside it (ASCII case ignored, as DNS does).
pub fn is_in_cluster(name: &str, cluster: &str) -> bool {
    let (name, cluster) = (name.to_ascii_lowercase(), cluster.to_ascii_lowercase());
    name == cluster || name.strip_suffix(&cluster).is_some_and(|head| head.len() > 1 && head.ends_with('.'))
}

/// The default cluster name: this machine's host name (as Teleport does),
/// or `localhost` when it has none usable as a host name.
pub fn default_cluster_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match crate::domain::HostId::parse(&name) {
        Ok(_) => name,
        Err(_) => "localhost".to_owned(),
    }
}

impl Default for SshOptions {
    fn default() -> Self {
        Self {
            static_tokens: Vec::new(),
            max_user_cert_ttl_ms: 30 * HOUR_MS,
            host_cert_ttl_ms: 30 * 24 * HOUR_MS,
            cluster_name: default_cluster_name(),
            known_hosts_pattern: None,
        }
    }
}

/// A static provisioning token from the configuration file: `ROLE[,ROLE]:VALUE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticToken {
    /// The first 16 hex digits of the value's SHA-256: how the log and the API name it.
    pub id: String,
    pub value_hash: [u8; 32],
    pub roles: BTreeSet<HostRole>,
}

impl StaticToken {
    pub const MIN_LENGTH: usize = 16;

    /// Parses one configuration entry; the error names the entry (without its value).
    pub fn parse(entry: &str) -> Result<Self, String> {
        let (listed, value) = entry
            .split_once(':')
            .ok_or_else(|| format!("static token {:?} is not ROLE[,ROLE]:VALUE", redact(entry)))?;
        if value.trim().is_empty() {
            return Err(format!("static token \"{listed}:\" has an empty value"));
        }
        let roles = HostRole::parse_list(listed.split(','))
            .map_err(|e| format!("static token \"{listed}:…\": {}", e.detail.unwrap_or_default()))?;
        // Its id (a hash prefix) is public: only a long value keeps the value unguessable from it.
        if value.trim().chars().count() < StaticToken::MIN_LENGTH {
            return Err(format!(
                "static token \"{listed}:…\" is shorter than {} characters (use e.g. `openssl rand -hex 16`)",
                StaticToken::MIN_LENGTH
            ));
        }
        let value_hash: [u8; 32] = Sha256::digest(value.trim().as_bytes()).into();
        let id = data_encoding::HEXLOWER.encode(&value_hash[..8]);
        Ok(Self { id, value_hash, roles })
    }
}

/// An entry with its value hidden (for errors).
fn redact(entry: &str) -> String {
    match entry.split_once(':') {
        Some((roles, _)) => format!("{roles}:…"),
        None => "…".to_owned(),
    }
}

/// What the SSH side of a running server shares.
pub struct SshService {
    pub options: SshOptions,
    pub keys: KeyCache,
}

impl SshService {
    /// The SSH side of a server, with `options`.
    pub fn new(options: SshOptions) -> Self {
        Self { options, keys: KeyCache::default() }
    }

    /// The static token with this value.
    pub fn static_token(&self, value: &str) -> Option<&StaticToken> {
        let hash: [u8; 32] = Sha256::digest(value.trim().as_bytes()).into();
        self.options.static_tokens.iter().find(|t| t.value_hash == hash)
    }
}

/// Signs a certificate under a fresh random serial and records it; a serial
/// already taken (the log refuses it) is replaced and the certificate signed
/// again. `sign` makes the certificate and its event for a serial.
pub async fn issue_certificate(
    ledger: &Ledger,
    metadata: &EventMetadata,
    sign: impl Fn(u64) -> Result<(String, CertificateEvent), AppError>,
) -> Result<(String, CertificateEvent), AppError> {
    for _ in 0..8 {
        let serial = rand::thread_rng().gen_range(1..=u64::MAX);
        let (certificate, event) = sign(serial)?;
        match ledger.execute::<Certificate>(serial, RecordCertificate(event.clone()), metadata).await {
            Ok(_) => return Ok((certificate, event)),
            Err(AppError::Rejected(e)) if e.detail.as_deref() == Some(SERIAL_TAKEN) => continue,
            Err(error) => return Err(error),
        }
    }
    // Eight random 64-bit serials all taken: the server's own state is wrong, not the request.
    Err(AppError::internal("no free certificate serial was found"))
}

/// How far back a user certificate's validity starts, for clocks a little behind ours.
const BACKDATE_MS: i64 = 60_000;

/// Whole seconds (certificates count seconds).
fn seconds(ms: i64) -> u64 {
    u64::try_from(ms / 1000).unwrap_or(0)
}

/// Signs a user certificate for `subject` (principals: their logins), valid
/// for `ttl_seconds` (capped by `max_user_cert_ttl`), and records it. The
/// caller has checked that `requested_by` may ask for `subject`.
pub async fn issue_user_certificate(
    ledger: &Ledger,
    ssh: &SshService,
    requested_by: &Acting,
    subject: &UserRecord,
    public_key: &PublicKey,
    ttl_seconds: i64,
) -> Result<(String, CertificateEvent), AppError> {
    let metadata = &requested_by.metadata;
    let principals = subject.effective_logins();
    if principals.is_empty() {
        return Err(
            AuthError::illegal(format!("{} has no logins; an administrator sets them first", subject.name)).into()
        );
    }
    let now = ledger.now();
    // Backdated for clocks a little behind, but never valid longer than the maximum in all.
    let valid_after = now - BACKDATE_MS;
    let valid_before =
        now.saturating_add(ttl_seconds.saturating_mul(1000)).min(valid_after + ssh.options.max_user_cert_ttl_ms);
    let (ca, private) = ssh.keys.signer(ledger, CaKind::User).await?;
    let key_fingerprint = authority::fingerprint(public_key);
    issue_certificate(ledger, metadata, |serial| {
        let certificate = authority::sign(
            &private,
            CertSpec {
                cert_type: CertType::User,
                subject: public_key,
                key_id: format!("{}@authledger serial {serial}", subject.name),
                principals: principals.iter().map(|p| p.as_str().to_owned()).collect(),
                serial,
                valid_after: seconds(valid_after),
                valid_before: seconds(valid_before),
            },
        )?;
        let cert = Signed {
            serial,
            key_fingerprint: key_fingerprint.clone(),
            valid_after: seconds(valid_after) as i64 * 1000,
            valid_before: seconds(valid_before) as i64 * 1000,
            ca_fingerprint: ca.fingerprint.clone(),
            at: now,
        };
        let event = CertificateEvent::UserCertIssued {
            user: subject.name.clone(),
            principals: principals.clone(),
            requested_by: requested_by.name().clone(),
            cert,
        };
        Ok((certificate, event))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn static_tokens_are_roles_and_a_value() {
        let token = StaticToken::parse("node,proxy:8c2a1f0e9d3b7c64").map_err(|e| e.to_string());
        assert_eq!(
            token.as_ref().map(|t| t.roles.clone()).ok(),
            Some(BTreeSet::from([HostRole::Node, HostRole::Proxy]))
        );
        assert_eq!(token.map(|t| t.id.len()).ok(), Some(16));
    }

    #[test]
    fn a_malformed_static_token_is_named_without_its_value() {
        assert_eq!(StaticToken::parse("node").err().as_deref(), Some("static token \"…\" is not ROLE[,ROLE]:VALUE"));
        assert_eq!(StaticToken::parse("node:").err().as_deref(), Some("static token \"node:\" has an empty value"));
        assert_eq!(
            StaticToken::parse("node:8c2a1f").err().as_deref(),
            Some("static token \"node:…\" is shorter than 16 characters (use e.g. `openssl rand -hex 16`)")
        );
        assert_eq!(
            StaticToken::parse("node,admin:secretvalue").err().as_deref(),
            Some("static token \"node,admin:…\": Unknown host role \"admin\": expected one of node, proxy, auth")
        );
    }
}
