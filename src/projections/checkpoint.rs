//! Checkpoints: the projections' whole state at one log position, so a
//! server starts by loading it and folding only what came after, instead of
//! replaying the whole log. A checkpoint is canonical (owners, users and
//! tokens in a fixed order), so equal states have equal bytes and a digest
//! of them compares a rebuild with a live or stored state.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::token_index::{SavedTokens, TokenIndex};
use super::user_directory::{SavedDirectory, UserDirectory};
use super::{Access, Projections};
use crate::domain::ServerSettings;
use crate::domain::canonical::Canonicalization;
use crate::store::{Checkpoints, EventLog, StoreError, StoredCheckpoint};

/// The checkpoint format this build writes and reads.
/// 2: the access projection (authorities, provisioning tokens, invitations, hosts, certificates).
/// 3: a host's latest certificate keeps when it was issued (the host's latest join).
/// 4: tokens keep whether their login used a second factor (`mfa`).
/// 5: the settings keep the identity providers' switches.
/// 6: and the alternate environments' redirect URLs.
/// 7: users keep whether they are local, their linked identities and policy ids.
/// 8: hosts keep their extra principals; every bound host name is kept.
/// 9: users keep their wrong-password count and throttle.
/// 10: authorities keep a phased rotation in progress.
/// 11: users keep their wrong passwords by client and account-wide (reserved checks).
/// 12: users keep the position of their account's first event (what a forget names).
pub const FORMAT: u32 = 12;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: u32,
    /// The position of the last event folded in.
    pub position: i64,
    /// The display-name rule the user directory was folded with.
    pub rule: Canonicalization,
    pub config: ServerSettings,
    pub users: SavedDirectory,
    pub tokens: SavedTokens,
    pub access: Access,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("the checkpoint cannot be read: {0}")]
    Decode(#[from] postcard::Error),
    #[error("the checkpoint has format {0}; this build reads {FORMAT}")]
    Format(u32),
}

impl Checkpoint {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_stdvec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CheckpointError> {
        let checkpoint: Self = postcard::from_bytes(bytes)?;
        if checkpoint.format != FORMAT {
            return Err(CheckpointError::Format(checkpoint.format));
        }
        Ok(checkpoint)
    }

    /// SHA-256 of the canonical bytes, hex.
    pub fn digest(&self) -> String {
        digest_of(&self.encode())
    }
}

/// The digest of a checkpoint's encoded bytes.
pub fn digest_of(encoded: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(encoded))
}

impl Projections {
    /// This state, canonically.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            format: FORMAT,
            position: self.position,
            rule: self.users.rule(),
            config: self.config.clone(),
            users: self.users.save(),
            tokens: self.tokens.save(),
            access: self.access.clone(),
        }
    }

    /// The state a checkpoint holds.
    pub fn restore(checkpoint: Checkpoint) -> Self {
        Self {
            tokens: TokenIndex::restore(checkpoint.tokens),
            users: UserDirectory::restore(checkpoint.users, checkpoint.rule),
            config: checkpoint.config,
            access: checkpoint.access,
            position: checkpoint.position,
        }
    }
}
/// The newest usable checkpoint for `rule`: made from this very log (its
/// chain value at the checkpoint's position matches) and readable. Anything
/// else is reported and ignored — the log is folded from the start instead.
pub async fn load_checkpoint(log: &EventLog, checkpoints: &Checkpoints, rule: Canonicalization) -> Option<Projections> {
    let stored = match checkpoints.latest(rule.name()).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return None,
        Err(error) => {
            tracing::warn!(%error, "cannot read checkpoints; folding the whole log");
            return None;
        }
    };
    match forgotten_after(log, stored.position).await {
        Ok(false) => {}
        Ok(true) => {
            tracing::warn!(
                position = stored.position,
                "the checkpoint is older than a forget (a server wrote it before folding the forget); folding the whole log"
            );
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the forgets; folding the whole log");
            return None;
        }
    }
    match log.chain_at(stored.position).await {
        Ok(chain) if chain.is_some() && chain == stored.chain => {}
        Ok(_) => {
            tracing::warn!(
                position = stored.position,
                "the checkpoint was not made from this log; folding the whole log"
            );
            return None;
        }
        Err(error) => {
            tracing::warn!(%error, "cannot check the checkpoint; folding the whole log");
            return None;
        }
    }
    match Checkpoint::decode(&stored.data) {
        Ok(checkpoint) if checkpoint.rule == rule && checkpoint.position == stored.position => {
            tracing::info!(position = stored.position, digest = %stored.digest, "loaded a checkpoint");
            Some(Projections::restore(checkpoint))
        }
        Ok(_) => None,
        Err(error) => {
            tracing::warn!(%error, "unusable checkpoint; folding the whole log");
            None
        }
    }
}

/// Stores `checkpoint` with the log's chain value at its position; returns its
/// digest and size (it is encoded once).
pub async fn store_checkpoint(
    log: &EventLog,
    checkpoints: &Checkpoints,
    checkpoint: &Checkpoint,
    now: i64,
) -> Result<(String, usize), StoreError> {
    if forgotten_after(log, checkpoint.position).await? {
        return Err(StoreError::Failed(format!(
            "a forget came after position {}: a checkpoint there would hold what it erased",
            checkpoint.position
        )));
    }
    let data = checkpoint.encode();
    let digest = digest_of(&data);
    let bytes = data.len();
    let stored = StoredCheckpoint {
        position: checkpoint.position,
        rule: checkpoint.rule.name().to_owned(),
        chain: log.chain_at(checkpoint.position).await?,
        digest: digest.clone(),
        created_at: now,
        data,
    };
    checkpoints.put(&stored).await?;
    Ok((digest, bytes))
}

/// Whether a forget was written after `position`: projections folded up to
/// there hold rows as they were before it.
async fn forgotten_after(log: &EventLog, position: i64) -> Result<bool, StoreError> {
    Ok(log.redactions().await?.iter().any(|r| r.forget_position > position))
}
