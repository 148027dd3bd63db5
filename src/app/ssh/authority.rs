//! The certificate authorities' keys: generated on first start (Ed25519),
//! kept in the credentials store (never in the log), loaded once and cached,
//! and used to sign OpenSSH user and host certificates.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use rand::RngCore;
use rand::rngs::OsRng;
use ssh_key::certificate::{Builder, CertType};
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey, PublicKey};
use uuid::Uuid;

use crate::app::AppError;
use crate::app::acting::Acting;
use crate::app::ledger::Ledger;
use crate::domain::cert_authority::RotationStep;
use crate::domain::{AuthError, CaKind, CertAuthority, CertAuthorityCommand, SigningKey};
use crate::store::EventMetadata;

/// The credentials-store kind of an authority's private key.
fn secret_kind(ca: CaKind) -> String {
    format!("ca-{ca}")
}

/// A new Ed25519 key: its public parts (for the log) and its private key in OpenSSH form (for the credentials store).
pub fn generate_key() -> Result<(SigningKey, PrivateKey), AppError> {
    let private = PrivateKey::random(&mut OsRng, Algorithm::Ed25519)?;
    let public = private.public_key();
    let key = SigningKey {
        public_key: public.to_openssh()?,
        fingerprint: public.fingerprint(HashAlg::Sha256).to_string(),
        credential_id: Uuid::new_v4(),
    };
    Ok((key, private))
}

/// Stores a new key's private half and records the authority's creation or
/// rotation. A concurrent creator that won is fine: the orphaned key is forgotten.
pub async fn install_key(
    ledger: &Ledger,
    ca: CaKind,
    rotate_by: Option<crate::domain::UserName>,
    metadata: &EventMetadata,
) -> Result<SigningKey, AppError> {
    let (key, private) = generate_key()?;
    let pem = private.to_openssh(LineEnding::LF)?;
    let now = ledger.now();
    ledger.credentials.put(key.credential_id, &secret_kind(ca), &pem, now).await?;
    let command = match rotate_by {
        None => CertAuthorityCommand::Create { ca, key: key.clone(), at: now },
        Some(by) => CertAuthorityCommand::Rotate { key: key.clone(), by, at: now },
    };
    if let Err(error) = ledger.execute::<CertAuthority>(ca, command, metadata).await {
        return Err(crate::app::undo_secret(
            ledger,
            error,
            key.credential_id,
            "an authority key whose recording failed",
        )
        .await);
    }
    Ok(key)
}

/// Takes one step of a phased rotation of `ca` (see `domain::cert_authority`):
/// `init` stores a new key's private half first; `rollback` forgets the
/// abandoned key's private half once the log has recorded it.
pub async fn rotate_in_phases(ledger: &Ledger, by: &Acting, ca: CaKind, step: RotationStep) -> Result<(), AppError> {
    let metadata = &by.metadata;
    let now = ledger.now();
    let at = |key| CertAuthorityCommand::RotateInPhases { step, key, by: by.name().clone(), at: now };
    match step {
        RotationStep::Init => {
            let (key, private) = generate_key()?;
            let pem = private.to_openssh(LineEnding::LF)?;
            ledger.credentials.put(key.credential_id, &secret_kind(ca), &pem, now).await?;
            if let Err(error) = ledger.execute::<CertAuthority>(ca, at(Some(key.clone())), metadata).await {
                return Err(crate::app::undo_secret(
                    ledger,
                    error,
                    key.credential_id,
                    "a rotation key whose recording failed",
                )
                .await);
            }
        }
        RotationStep::Rollback => {
            let abandoned =
                ledger.projections.read().access.authority(ca).and_then(|a| a.rotation.clone()).map(|r| r.new);
            ledger.execute::<CertAuthority>(ca, at(None), metadata).await?;
            // Forgotten only if no longer trusted once the rollback is folded
            // (another Admin's steps in between may have made it the current key).
            let still_trusted = |key: &SigningKey| {
                ledger.projections.read().access.authority(ca).is_some_and(|a| a.trusts(&key.fingerprint))
            };
            if let Some(key) = abandoned.filter(|key| !still_trusted(key)) {
                crate::app::forget_secret(ledger, key.credential_id, "a rolled-back rotation key").await;
            }
        }
        _ => {
            ledger.execute::<CertAuthority>(ca, at(None), metadata).await?;
        }
    }
    Ok(())
}

/// Creates whichever authority does not exist yet (on first start).
pub async fn ensure_authorities(ledger: &Ledger) -> Result<(), AppError> {
    for ca in CaKind::ALL {
        if ledger.projections.read().access.authority(ca).is_some() {
            continue;
        }
        match install_key(ledger, ca, None, &EventMetadata::actor("system")).await {
            Ok(key) => tracing::info!(%ca, fingerprint = %key.fingerprint, "created a certificate authority"),
            // Another replica created it first.
            Err(AppError::Rejected(_)) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// The authorities' private keys, loaded from the credentials store once each.
#[derive(Default)]
pub struct KeyCache {
    keys: Mutex<HashMap<Uuid, Arc<PrivateKey>>>,
}

impl KeyCache {
    /// The current signing key of `ca`, with its public parts.
    pub async fn signer(&self, ledger: &Ledger, ca: CaKind) -> Result<(SigningKey, Arc<PrivateKey>), AppError> {
        let key = ledger
            .projections
            .read()
            .access
            .authority(ca)
            .map(|a| a.key.clone())
            .ok_or_else(|| AppError::internal(format!("the {ca} certificate authority does not exist yet")))?;
        if let Some(private) = self.keys.lock().unwrap_or_else(PoisonError::into_inner).get(&key.credential_id) {
            return Ok((key, private.clone()));
        }
        let pem = ledger.credentials.get(key.credential_id).await?.ok_or_else(|| {
            AppError::internal(format!(
                "the {ca} certificate authority's private key is missing from the credentials store"
            ))
        })?;
        let private = Arc::new(PrivateKey::from_openssh(pem).map_err(AppError::internal)?);
        self.keys.lock().unwrap_or_else(PoisonError::into_inner).insert(key.credential_id, private.clone());
        Ok((key, private))
    }
}

/// Parses a caller's OpenSSH public key line (`ssh-ed25519 AAAA… [comment]`).
pub fn parse_public_key(text: &str) -> Result<PublicKey, AuthError> {
    PublicKey::from_openssh(text.trim())
        .map_err(|e| AuthError::illegal(format!("public_key is not an OpenSSH public key: {e}")))
}

/// The key's `SHA256:` fingerprint, as OpenSSH prints it.
pub fn fingerprint(key: &PublicKey) -> String {
    key.fingerprint(HashAlg::Sha256).to_string()
}

/// A certificate to sign.
pub struct CertSpec<'a> {
    pub cert_type: CertType,
    pub subject: &'a PublicKey,
    pub key_id: String,
    pub principals: Vec<String>,
    pub serial: u64,
    /// Unix seconds.
    pub valid_after: u64,
    pub valid_before: u64,
}

/// The extensions `ssh-keygen` gives a user certificate by default.
const USER_EXTENSIONS: [&str; 5] =
    ["permit-X11-forwarding", "permit-agent-forwarding", "permit-port-forwarding", "permit-pty", "permit-user-rc"];

/// Signs `spec` with `ca`; returns the certificate in OpenSSH form.
pub fn sign(ca: &PrivateKey, spec: CertSpec<'_>) -> Result<String, AppError> {
    let mut nonce = [0u8; Builder::RECOMMENDED_NONCE_SIZE];
    OsRng.fill_bytes(&mut nonce);
    let mut builder =
        Builder::new(nonce.to_vec(), spec.subject.key_data().clone(), spec.valid_after, spec.valid_before)?;
    builder.serial(spec.serial)?.cert_type(spec.cert_type)?.key_id(spec.key_id)?;
    for principal in spec.principals {
        builder.valid_principal(principal)?;
    }
    if spec.cert_type == CertType::User {
        for extension in USER_EXTENSIONS {
            builder.extension(extension, "")?;
        }
    }
    Ok(builder.sign(ca)?.to_openssh()?)
}

/// The `authorized_keys` line that makes a host trust the user CA.
pub fn authorized_keys_line(public_key: &str) -> String {
    format!("cert-authority {public_key}")
}

/// The `known_hosts` line that makes a client trust the host CA for hosts matching `hosts`.
pub fn known_hosts_line(hosts: &str, public_key: &str) -> String {
    format!("@cert-authority {hosts} {public_key}")
}
