//! The witness: signs the log's head every so often and at shutdown, keeps
//! the newest signed head in the witness file (outside the log) and serves it
//! (see `store::witness`). Its Ed25519 key lives in the credentials store,
//! sealed like every stored secret; servers sharing a log share the key (the
//! one with the smallest id wins a first-start race).
//!
//! Once a head is kept in a witness file the log records it (`LogWitnessed`),
//! so a missing witness is evidence, not a fresh start. A witness file is
//! never overwritten while it is missing, unreadable or ahead of the log: the
//! server is then not ready and refuses writes (reads go on) until an
//! operator restores the file or the log, or accepts what happened with
//! `authledger witness accept --reason …` ([`accept`]), which records it
//! (`WitnessReset`), keeps the old file aside and starts a new one.

/// A signed head, as the API shows it to auditors.
pub use crate::store::witness::SignedHead;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer, SigningKey};
use rand::RngCore;

use super::AppError;
use super::ledger::Ledger;
use crate::domain::{System, SystemCommand, SystemEvent};
use crate::store::witness::check_head;
use crate::store::{EventLog, EventMetadata, StoreError};

/// The credentials-store kind of the witness key.
pub const SECRET_KIND: &str = "witness";
/// A head is signed once this many events were appended since the last…
pub const SIGN_EVERY_EVENTS: i64 = 1_000;
/// …or this long after it, when anything was appended at all.
pub const SIGN_EVERY: Duration = Duration::from_secs(30);

/// What the witness found of its file and the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// No witness file is kept (none configured).
    NotKept,
    /// No witness file yet, and the log was never witnessed: one starts.
    Fresh,
    /// The log holds the head the file signed.
    Holds,
    /// The file is missing or unreadable while the log was witnessed, or the
    /// log does not hold the file's head: what was found, for an operator.
    Broken { found: String, head: Option<SignedHead> },
}

/// The witness of one server.
pub struct Witness {
    key: SigningKey,
    file: Option<PathBuf>,
    latest: Mutex<Option<SignedHead>>,
    /// Whether the log is known to record this key's witnessing.
    recorded: AtomicBool,
}

impl Witness {
    /// Loads the witness key (creating it on a log's first start) and the
    /// newest signed head of the witness file, if it can be read. Nothing is
    /// written to the file here.
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
        let latest = file.as_deref().and_then(|f| SignedHead::read(f).ok());
        Ok(Self { key, file, latest: Mutex::new(latest), recorded: AtomicBool::new(false) })
    }

    /// The witness file, if one is kept.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The witness's public key (base64), for auditors to pin.
    pub fn public_key(&self) -> String {
        STANDARD.encode(self.key.verifying_key().to_bytes())
    }

    /// Signs a forget's commitment (`store::chain::forget_message`): the
    /// public key and the signature, base64.
    pub fn sign_forget(&self, position: i64, pseudonym: &str, digest: &[u8; 32]) -> (String, String) {
        let signature = self.key.sign(crate::store::chain::forget_message(position, pseudonym, digest).as_bytes());
        (self.public_key(), STANDARD.encode(signature.to_bytes()))
    }

    /// Records in the log that this key is its witness's, unless it says so
    /// already: the key a forget is signed with is checked against it.
    pub async fn record(&self, ledger: &Ledger) -> Result<(), AppError> {
        if !witnessed_under(&ledger.log).await?.contains(&self.public_key()) {
            let command = SystemCommand::RecordWitness { public_key: self.public_key(), at: ledger.now() };
            ledger.execute_even_if_refused::<System>((), command, &EventMetadata::actor("system")).await?;
        }
        Ok(())
    }

    /// The newest signed head.
    pub fn latest(&self) -> Option<SignedHead> {
        self.latest.lock().ok().and_then(|l| l.clone())
    }

    fn set_latest(&self, head: Option<SignedHead>) {
        if let Ok(mut held) = self.latest.lock() {
            *held = head;
        }
    }

    /// Looks at the witness file and the log (see [`Standing`]); the file's
    /// head, when it holds, becomes the newest one this server knows. An
    /// unreadable file of a log that was never witnessed is set aside (kept,
    /// renamed) so that a new one can start.
    pub async fn check(&self, ledger: &Ledger) -> Result<Standing, AppError> {
        let Some(file) = &self.file else {
            return Ok(Standing::NotKept);
        };
        let witnessed = witnessed_under(&ledger.log).await?;
        if !file.exists() {
            return Ok(match witnessed.last() {
                Some(key) => Standing::Broken {
                    found: format!(
                        "the witness file {} is missing, but the log records that its heads are witnessed \
                         (key {key}): a missing witness is evidence, not a fresh start",
                        file.display()
                    ),
                    head: None,
                },
                None => Standing::Fresh,
            });
        }
        let head = match SignedHead::read(file) {
            Ok(head) => head,
            Err(error) if witnessed.is_empty() => {
                let aside = set_aside(file, "unreadable", ledger.now())?;
                tracing::warn!(%error, aside = %aside.display(), "set an unreadable witness file aside; a new one starts");
                return Ok(Standing::Fresh);
            }
            Err(error) => return Ok(Standing::Broken { found: error.to_string(), head: None }),
        };
        if let Err(problem) = head.verify(Some(&self.public_key())) {
            return Ok(Standing::Broken {
                found: format!(
                    "the witness file {} does not verify under this log's witness key: {problem}",
                    file.display()
                ),
                head: Some(head),
            });
        }
        let found = ledger.log.chain_at(head.position).await?;
        let check = check_head(head.position, &head.chain, ledger.log.head().await?, found);
        if !check.holds() {
            return Ok(Standing::Broken { found: check.to_string(), head: Some(head) });
        }
        self.set_latest(Some(head));
        Ok(Standing::Holds)
    }

    /// Signs the log's head now (unless it is the one signed last) and writes
    /// it to the witness file; returns the newest signed head. The first time
    /// a file is kept, the log records it (`LogWitnessed`) once the file has
    /// been written (so an unwritable path blocks nothing), and the head is
    /// signed again to include that record. Refuses — keeping the file as
    /// evidence — when the log no longer holds the last signed head.
    pub async fn sign(&self, ledger: &Ledger) -> Result<Option<SignedHead>, AppError> {
        let head = self.sign_head(ledger).await?;
        let kept = self.file.as_deref().is_some_and(|f| SignedHead::read(f).is_ok());
        if !kept || self.recorded.load(Ordering::SeqCst) {
            return Ok(head);
        }
        self.record(ledger).await?;
        self.recorded.store(true, Ordering::SeqCst);
        self.sign_head(ledger).await
    }

    async fn sign_head(&self, ledger: &Ledger) -> Result<Option<SignedHead>, AppError> {
        let position = ledger.log.head().await?;
        let latest = self.latest();
        if let Some(latest) = &latest {
            let found = ledger.log.chain_at(latest.position).await?;
            let check = check_head(latest.position, &latest.chain, position, found);
            if !check.holds() {
                tracing::error!(%check, "the log does not hold the last signed head: not signing over the evidence");
                return Err(AppError::Halted(check.to_string()));
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
        self.set_latest(Some(head.clone()));
        Ok(Some(head))
    }

    /// Whether the head has moved enough since the last signed one to sign
    /// again: read from the position the projections have folded (no query;
    /// they tail the log), the head itself is read only when signing.
    pub fn due(&self, ledger: &Ledger, since: Duration) -> bool {
        let position = ledger.projections.position();
        let signed = self.latest().map_or(0, |l| l.position);
        position > signed && (position - signed >= SIGN_EVERY_EVENTS || since >= SIGN_EVERY)
    }

    /// The head to show an auditor: the newest signed one, signed anew first
    /// when the log has moved past it (so what is shown is never older than
    /// what this server serves). Refused while the witness does not hold.
    pub async fn current(&self, ledger: &Ledger) -> Result<Option<SignedHead>, AppError> {
        if let Some(reason) = ledger.writes_refused() {
            return Err(AppError::Halted(reason));
        }
        match self.latest() {
            Some(head) if head.position >= ledger.projections.position() => Ok(Some(head)),
            _ => self.sign(ledger).await,
        }
    }
}

/// The witness keys `log` records its heads as witnessed under
/// (`LogWitnessed`), oldest first.
pub async fn witnessed_under(log: &EventLog) -> Result<Vec<String>, StoreError> {
    let events = log.load("System", crate::domain::system::SYSTEM_ID, 0).await?;
    Ok(events
        .into_iter()
        .filter(|e| e.event_type == "LogWitnessed")
        .filter_map(|e| match serde_json::from_value(e.payload) {
            Ok(SystemEvent::LogWitnessed { public_key, .. }) => Some(public_key),
            _ => None,
        })
        .collect())
}

/// Renames `file` to `<file>.<why>-<now>` (kept as evidence); the new path.
fn set_aside(file: &Path, why: &str, now: i64) -> Result<PathBuf, AppError> {
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".{why}-{now}"));
    let aside = PathBuf::from(name);
    std::fs::rename(file, &aside)
        .map_err(|e| AppError::internal(format!("cannot set the witness file {} aside: {e}", file.display())))?;
    Ok(aside)
}

/// What an operator's acceptance did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// Nothing to accept: the witness holds (or none is kept, or one is only starting).
    Nothing(Standing),
    /// Recorded (`WitnessReset`); the old file set aside at `aside`, a new
    /// head signed into a new file.
    Reset { found: String, aside: Option<PathBuf>, head: Option<SignedHead> },
}

/// An operator's acceptance of a witness that no longer matches the log
/// (the command `authledger witness accept`): when the witness is broken,
/// records what was found and `reason`, keeps the old file aside and signs a
/// new head into a new witness file. A server refusing writes sees the new
/// file and serves again.
pub async fn accept(ledger: &Ledger, witness: &Witness, reason: &str) -> Result<Accepted, AppError> {
    let (found, head) = match witness.check(ledger).await? {
        Standing::Broken { found, head } => (found, head),
        other => return Ok(Accepted::Nothing(other)),
    };
    let now = ledger.now();
    let command = SystemCommand::ResetWitness {
        found: found.clone(),
        position: head.as_ref().map(|h| h.position),
        chain: head.as_ref().map(|h| h.chain.clone()),
        log_head: ledger.log.head().await?,
        reason: reason.to_owned(),
        at: now,
    };
    let metadata = EventMetadata { reason: Some(reason.to_owned()), ..EventMetadata::actor("operator") };
    ledger.execute_even_if_refused::<System>((), command, &metadata).await?;
    let aside = match witness.file() {
        Some(file) if file.exists() => Some(set_aside(file, "rejected", now)?),
        _ => None,
    };
    witness.set_latest(None);
    let head = witness.sign(ledger).await?;
    // On the server's own ledger, the refusal ends now (others see the new file at their next look).
    if matches!(witness.check(ledger).await?, Standing::Holds) {
        ledger.allow_writes();
    }
    Ok(Accepted::Reset { found, aside, head })
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
