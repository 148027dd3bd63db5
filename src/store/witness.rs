//! Signed heads of the log: what a witness keeps outside the log so that
//! deleting its newest rows — which the integrity chain alone cannot reveal —
//! is detected. A signed head states a position, the chain value there and
//! when it was signed, under an Ed25519 key whose private half never leaves
//! the credentials store. The newest one is written to a witness file (beside
//! the SQLite log by default) that a rewrite of the log does not reach, and
//! served to auditors, who may pin heads of their own.

use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::StoreKind;

/// A head of the log, signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SignedHead {
    pub position: i64,
    /// The chain value at `position` (hex).
    pub chain: String,
    /// When it was signed (epoch ms).
    pub at: i64,
    /// The witness's Ed25519 public key (base64).
    pub public_key: String,
    /// The signature of [`SignedHead::message`] (base64).
    pub signature: String,
}

/// Why a signed head does not hold.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WitnessError {
    #[error("the signed head's signature does not verify under its public key")]
    BadSignature,
    #[error("the signed head's public key is not the pinned one")]
    OtherKey,
    #[error("the witness file {path}: {problem}")]
    File { path: String, problem: String },
}

impl SignedHead {
    /// What is signed: a fixed label, then position, chain value and time, a line each.
    pub fn message(position: i64, chain: &str, at: i64) -> String {
        format!("authledger signed head v1\n{position}\n{chain}\n{at}\n")
    }

    /// Checks the signature (and, when given, that the key is `pinned`, base64).
    pub fn verify(&self, pinned: Option<&str>) -> Result<(), WitnessError> {
        if pinned.is_some_and(|p| p != self.public_key) {
            return Err(WitnessError::OtherKey);
        }
        let key: [u8; 32] =
            STANDARD.decode(&self.public_key).ok().and_then(|b| b.try_into().ok()).ok_or(WitnessError::BadSignature)?;
        let key = VerifyingKey::from_bytes(&key).map_err(|_| WitnessError::BadSignature)?;
        let signature: [u8; 64] =
            STANDARD.decode(&self.signature).ok().and_then(|b| b.try_into().ok()).ok_or(WitnessError::BadSignature)?;
        key.verify(Self::message(self.position, &self.chain, self.at).as_bytes(), &Signature::from_bytes(&signature))
            .map_err(|_| WitnessError::BadSignature)
    }

    /// Reads a witness file.
    pub fn read(path: &Path) -> Result<Self, WitnessError> {
        let problem = |problem: String| WitnessError::File { path: path.display().to_string(), problem };
        let text = std::fs::read_to_string(path).map_err(|e| problem(e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| problem(format!("not a signed head: {e}")))
    }

    /// Writes a witness file atomically (a temporary file renamed over it).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let temporary = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&temporary, text + "\n")?;
        std::fs::File::open(&temporary)?.sync_all()?;
        std::fs::rename(&temporary, path)
    }
}

/// The witness file of the store at `url`: `configured`, or for SQLite
/// `<stem>.witness.json` beside the log (PostgreSQL has none unless configured).
pub fn witness_path(url: &str, configured: Option<&Path>) -> Option<PathBuf> {
    configured.map(Path::to_owned).or_else(|| StoreKind::file_beside(url, "witness.json"))
}

/// What checking a log against a signed head found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum HeadCheck {
    /// The log holds the head's position with the same chain value.
    Holds { position: i64 },
    /// The log ends before the head's position: rows were deleted.
    Truncated { position: i64, log_head: i64 },
    /// The log's chain value at the position differs: the log was rewritten.
    Rewritten { position: i64, expected: String, found: String },
    /// The log records that its heads are witnessed, but no witness file was
    /// given to check it against: a missing witness is itself evidence.
    WitnessMissing { public_key: String },
}

impl HeadCheck {
    pub fn holds(&self) -> bool {
        matches!(self, Self::Holds { .. })
    }
}

impl std::fmt::Display for HeadCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Holds { position } => write!(f, "the log holds the signed head at position {position}"),
            Self::Truncated { position, log_head } => write!(
                f,
                "the log is TRUNCATED: a head was signed at position {position} but the log ends at {log_head}"
            ),
            Self::Rewritten { position, expected, found } => write!(
                f,
                "the log was REWRITTEN: at position {position} the chain is {found}, the signed head says {expected}"
            ),
            Self::WitnessMissing { public_key } => write!(
                f,
                "the log records that its heads are witnessed (key {public_key}), but no witness file was given \
                 (--witness): a MISSING witness is evidence that the log's end may have been removed"
            ),
        }
    }
}

/// Checks the log against a head (`position`, `chain`), given the log's head
/// position and its chain value at `position` (`None`: no such row).
pub fn check_head(position: i64, chain: &str, log_head: i64, found: Option<String>) -> HeadCheck {
    match found {
        _ if log_head < position => HeadCheck::Truncated { position, log_head },
        // A row missing below the head: rows were deleted from the middle.
        None => HeadCheck::Rewritten { position, expected: chain.to_owned(), found: "(no row)".to_owned() },
        Some(found) if found == chain => HeadCheck::Holds { position },
        found => HeadCheck::Rewritten { position, expected: chain.to_owned(), found: found.unwrap_or_default() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn signed(key: &SigningKey, position: i64, chain: &str, at: i64) -> SignedHead {
        let signature = key.sign(SignedHead::message(position, chain, at).as_bytes());
        SignedHead {
            position,
            chain: chain.into(),
            at,
            public_key: STANDARD.encode(key.verifying_key().to_bytes()),
            signature: STANDARD.encode(signature.to_bytes()),
        }
    }

    #[test]
    fn a_signed_head_verifies_and_an_altered_one_does_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let head = signed(&key, 42, "ab", 1);
        assert_eq!(head.verify(None), Ok(()));
        assert_eq!(head.verify(Some(&head.public_key)), Ok(()));
        assert_eq!(head.verify(Some("other")), Err(WitnessError::OtherKey));
        let moved = SignedHead { position: 41, ..head.clone() };
        assert_eq!(moved.verify(None), Err(WitnessError::BadSignature));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.json");
        head.write(&path).unwrap();
        assert_eq!(SignedHead::read(&path).unwrap(), head);
    }

    #[test]
    fn a_log_is_checked_against_a_head() {
        assert!(check_head(10, "c", 12, Some("c".into())).holds());
        assert_eq!(check_head(10, "c", 9, None), HeadCheck::Truncated { position: 10, log_head: 9 });
        assert!(matches!(check_head(10, "c", 12, Some("d".into())), HeadCheck::Rewritten { .. }));
        assert_eq!(witness_path("sqlite://./data/events.db", None), Some(PathBuf::from("./data/events.witness.json")));
        assert_eq!(witness_path("postgres://h/db", None), None);
    }
}
