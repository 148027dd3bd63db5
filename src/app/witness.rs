//! The witness: signs the log's head every so often and at shutdown, keeps
//! the newest signed head in the witness file (outside the log) and serves it
//! (see `store::witness`). Its Ed25519 key lives in the credentials store,
//! sealed like every stored secret; servers sharing a log share the key (the
//! one with the smallest id wins a first-start race).

/// A signed head, as the API shows it to auditors.
pub use crate::store::witness::SignedHead;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;

use super::AppError;
use super::ledger::Ledger;
use crate::store::witness::check_head;

/// The credentials-store kind of the witness key.
pub const SECRET_KIND: &str = "witness";
/// A head is signed once this many events were appended since the last…
pub const SIGN_EVERY_EVENTS: i64 = 1_000;
/// …or this long after it, when anything was appended at all.
pub const SIGN_EVERY: Duration = Duration::from_secs(30);

/// The witness of one server.
pub struct Witness {
    key: SigningKey,
    file: Option<PathBuf>,
    latest: Mutex<Option<SignedHead>>,
}

impl Witness {
    /// Loads the witness key (creating it on a log's first start) and the
    /// newest signed head of the witness file, if any.
    pub async fn open(ledger: &Ledger, file: Option<PathBuf>) -> Result<Self, AppError> {
        let key = match load_key(ledger).await? {
            Some(key) => key,
            None => {
                let mut bytes = [0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut bytes);
                let id = uuid::Uuid::new_v4();
                ledger.credentials.put(id, SECRET_KIND, &STANDARD.encode(bytes), ledger.now()).await?;
                // Another server may have stored one at the same moment: the smallest id wins.
                load_key(ledger).await?.ok_or_else(|| AppError::internal("the witness key was not stored"))?
            }
        };
        let latest = file.as_deref().filter(|f| f.exists()).and_then(|f| match SignedHead::read(f) {
            Ok(head) => Some(head),
            Err(error) => {
                tracing::warn!(%error, "ignoring an unreadable witness file; the next signed head replaces it");
                None
            }
        });
        Ok(Self { key, file, latest: Mutex::new(latest) })
    }

    /// The witness's public key (base64), for auditors to pin.
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.key.verifying_key().to_bytes())
    }

    /// The newest signed head.
    pub fn latest(&self) -> Option<SignedHead> {
        self.latest.lock().ok().and_then(|l| l.clone())
    }

    /// Signs the log's head now (unless it is the one signed last) and writes
    /// it to the witness file; returns the newest signed head. Refuses — and
    /// keeps the witness file as evidence — when the log no longer holds the
    /// last signed head (it was truncated or rewritten).
    pub async fn sign(&self, ledger: &Ledger) -> Result<Option<SignedHead>, AppError> {
        let position = ledger.log.head().await?;
        let latest = self.latest();
        if let Some(latest) = &latest {
            let found = ledger.log.chain_at(latest.position).await?;
            let check = check_head(latest.position, &latest.chain, position, found);
            if !check.holds() {
                tracing::error!(%check, "the log does not hold the last signed head: not signing over the evidence");
                return Err(AppError::internal(format!("the witness refuses to sign: {check}")));
            }
        }
        if position == 0 || latest.as_ref().is_some_and(|l| l.position == position) {
            return Ok(latest);
        }
        let Some(chain) = ledger.log.chain_at(position).await? else {
            return Ok(latest);
        };
        let at = ledger.now();
        let signature = self.key.sign(SignedHead::message(position, &chain, at).as_bytes());
        let head = SignedHead {
            position,
            chain,
            at,
            public_key: self.public_key(),
            signature: STANDARD.encode(signature.to_bytes()),
        };
        if let Some(file) = &self.file {
            // A lower head never replaces a higher one another server wrote.
            let newer_on_file = SignedHead::read(file).is_ok_and(|h| h.position > head.position);
            if !newer_on_file {
                head.write(file).map_err(|e| AppError::internal(format!("writing the witness file: {e}")))?;
            }
        }
        if let Ok(mut held) = self.latest.lock() {
            *held = Some(head.clone());
        }
        Ok(Some(head))
    }

    /// Whether the head has moved enough since the last signed one to sign
    /// again: read from the position the projections have folded (no query;
    /// they tail the log), the head itself is read only when signing.
    pub fn due(&self, ledger: &Ledger, since: Duration) -> bool {
        let position = ledger.model.position();
        let signed = self.latest().map_or(0, |l| l.position);
        position > signed && (position - signed >= SIGN_EVERY_EVENTS || since >= SIGN_EVERY)
    }

    /// The head to show an auditor: the newest signed one. A server that
    /// does not sign periodically (another holds the duty lease) signs its
    /// head now, so what it shows is never older than what it serves.
    pub async fn current(&self, ledger: &Ledger, signs_periodically: bool) -> Result<Option<SignedHead>, AppError> {
        match self.latest() {
            Some(head) if signs_periodically || head.position >= ledger.model.position() => Ok(Some(head)),
            _ => self.sign(ledger).await,
        }
    }
}

async fn load_key(ledger: &Ledger) -> Result<Option<SigningKey>, AppError> {
    let Some(id) = ledger.credentials.ids_older_than(SECRET_KIND, i64::MAX).await?.into_iter().min() else {
        return Ok(None);
    };
    let Some(text) = ledger.credentials.get(id).await? else {
        return Ok(None);
    };
    let bytes: [u8; 32] = STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| AppError::internal("the stored witness key is not 32 bytes of base64"))?;
    Ok(Some(SigningKey::from_bytes(&bytes)))
}
