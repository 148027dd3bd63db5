//! The integrity chain: every event row carries
//! `chain = sha256(chain of the previous position || canonical bytes of the row)`,
//! starting from 32 zero bytes. The writer computes it inside the append that
//! assigns the positions — already serialised under the log's write lock for
//! the global order — so no event is ever unsealed and sealing adds no lock.
//!
//! Altering, deleting or inserting a row breaks the chain at that position.
//! What a chain alone cannot show is a forger who rewrites every row from the
//! change to the head: compare the head's chain with a copy kept elsewhere
//! (`replay verify` prints it) to rule that out.
//!
//! One kind of row is checked otherwise: a row a forget rewrote
//! (docs/design/forgetting.md). It keeps its stored chain value, whose link
//! can no longer be recomputed; instead a [`Redaction`] commits to what the
//! row holds now and to the chain value of the row before it, and the
//! forget's `PersonForgotten` event commits to all its redactions with a
//! digest signed by the log's witness key. The next row's link, recomputed
//! from the kept value, pins that value.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use super::StoredEvent;

/// The chain value before the first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// The fields of a row that the chain covers, in their stored form.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub position: i64,
    pub aggregate_type: &'a str,
    pub aggregate_id: &'a str,
    pub sequence: i64,
    pub event_type: &'a str,
    pub event_version: &'a str,
    pub payload: &'a str,
    pub metadata: &'a str,
    pub recorded_at: i64,
}

impl<'a> From<&'a StoredEvent> for RowRef<'a> {
    fn from(e: &'a StoredEvent) -> Self {
        Self {
            position: e.position,
            aggregate_type: &e.aggregate_type,
            aggregate_id: &e.aggregate_id,
            sequence: e.sequence,
            event_type: &e.event_type,
            event_version: &e.event_version,
            payload: &e.payload,
            metadata: &e.metadata,
            recorded_at: e.recorded_at,
        }
    }
}

/// The chain value of `row` after `previous`. Texts are length-prefixed and
/// integers fixed-width, so no two different rows share canonical bytes.
pub fn link(previous: &[u8; 32], row: RowRef<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    canonical(&mut hasher, row);
    hasher.finalize().into()
}

/// What a rewritten row holds, as a forget commits to it: the SHA-256 of the
/// same canonical bytes the link covers, without the previous chain value.
pub fn content(row: RowRef<'_>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    canonical(&mut hasher, row);
    hasher.finalize().into()
}

fn canonical(hasher: &mut Sha256, row: RowRef<'_>) {
    hasher.update(row.position.to_be_bytes());
    for text in [row.aggregate_type, row.aggregate_id] {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.update(row.sequence.to_be_bytes());
    for text in [row.event_type, row.event_version, row.payload, row.metadata] {
        hasher.update((text.len() as u64).to_be_bytes());
        hasher.update(text.as_bytes());
    }
    hasher.update(row.recorded_at.to_be_bytes());
}

/// A chain value as stored: lowercase hex.
pub fn encode(value: &[u8; 32]) -> String {
    data_encoding::HEXLOWER.encode(value)
}

pub fn decode(text: &str) -> Option<[u8; 32]> {
    data_encoding::HEXLOWER.decode(text.as_bytes()).ok()?.try_into().ok()
}

/// Where and how a log's chain is broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainBreak {
    #[error("position {position} is missing (the next row is at {found}): a row was deleted")]
    Missing { position: i64, found: i64 },
    #[error("the row at position {position} does not match its chain: it was altered, or inserted")]
    Mismatch { position: i64 },
    #[error(
        "the row at position {position} is not what the forget at position {forget_position} left there: \
         it was altered after the forget"
    )]
    Rewritten { position: i64, forget_position: i64 },
    #[error(
        "the row at position {position} is marked as rewritten by a forget at position {forget_position} \
         that the log does not hold"
    )]
    Unbacked { position: i64, forget_position: i64 },
    #[error("the forget at position {position} does not hold: {problem}")]
    Forget { position: i64, problem: &'static str },
}

impl ChainBreak {
    /// The first position at which the log is not what was appended.
    pub fn position(&self) -> i64 {
        match self {
            Self::Missing { position, .. }
            | Self::Mismatch { position }
            | Self::Rewritten { position, .. }
            | Self::Unbacked { position, .. }
            | Self::Forget { position, .. } => *position,
        }
    }
}

/// What a forget committed to about one row it rewrote: a row of the log's
/// `redactions` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    pub position: i64,
    /// The position of the `PersonForgotten` event that rewrote the row.
    pub forget_position: i64,
    /// The chain value of the row before, as the forgetting server checked it.
    pub previous: [u8; 32],
    /// [`content`] of the row after the rewrite.
    pub content: [u8; 32],
}

/// The forget's digest over its redactions, in position order, with each
/// row's (kept) chain value: `position ‖ previous ‖ chain ‖ content`.
pub fn forget_digest<'a>(rows: impl IntoIterator<Item = (&'a Redaction, &'a [u8; 32])>) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for (redaction, chain) in rows {
        hasher.update(redaction.position.to_be_bytes());
        hasher.update(redaction.previous);
        hasher.update(chain);
        hasher.update(redaction.content);
    }
    hasher.finalize().into()
}

/// What the witness key signs for a forget: a fixed label, the forget's
/// position, the pseudonym and the digest (hex), a line each. The position
/// binds the signature to its place: a copy appended later does not verify.
pub fn forget_message(position: i64, pseudonym: &str, digest: &[u8; 32]) -> String {
    format!("authledger forget v1\n{position}\n{pseudonym}\n{}\n", encode(digest))
}

/// The event a forget appends, and the one that names the witness's key, as
/// the verifier reads them (their stored names; see events.md).
pub(crate) const FORGET: (&str, &str) = ("Forgotten", "PersonForgotten");
const WITNESSED: (&str, &str) = ("System", "LogWitnessed");

/// A `PersonForgotten` payload as stored (externally tagged, as every event).
#[derive(serde::Deserialize)]
enum StoredForget {
    PersonForgotten(ForgetCommitment),
}

/// The fields of a `PersonForgotten` payload the verifier checks.
#[derive(serde::Deserialize)]
struct ForgetCommitment {
    pseudonym: String,
    rows: i64,
    digest: String,
    public_key: String,
    signature: String,
}

/// Whether the forget's signature holds under the key it names.
fn signed(position: i64, forget: &ForgetCommitment, digest: &[u8; 32]) -> bool {
    let key = STANDARD.decode(&forget.public_key).ok().and_then(|b| <[u8; 32]>::try_from(b).ok());
    let signature = STANDARD.decode(&forget.signature).ok().and_then(|b| <[u8; 64]>::try_from(b).ok());
    let (Some(key), Some(signature)) = (key, signature) else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else {
        return false;
    };
    key.verify(forget_message(position, &forget.pseudonym, digest).as_bytes(), &Signature::from_bytes(&signature))
        .is_ok()
}

/// Checks rows in position order against the chain.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    previous: [u8; 32],
    next_position: i64,
    /// The redactions of each rewritten position, oldest forget first.
    redactions: BTreeMap<i64, Vec<Redaction>>,
    /// Per forget still ahead, the redactions checked so far with their rows' chain values.
    pending: BTreeMap<i64, Vec<(Redaction, [u8; 32])>>,
    /// The key a forget must be signed with: the pinned one, or the first key
    /// the log recorded as its witness's (a key recorded later could be a
    /// forger's, appended with the forget it signs).
    pinned_key: Option<String>,
    witness_key: Option<String>,
    /// How many rows were checked as rewritten, and by how many forgets.
    rewritten: i64,
    forgets: i64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self::new(Vec::new(), None)
    }
}

impl ChainVerifier {
    /// A verifier that knows the log's redactions; a forget must be signed by
    /// `pinned_key` (base64) when given, else by a key the log recorded as its witness's.
    pub fn new(redactions: Vec<Redaction>, pinned_key: Option<String>) -> Self {
        let mut by_position: BTreeMap<i64, Vec<Redaction>> = BTreeMap::new();
        for redaction in redactions {
            by_position.entry(redaction.position).or_default().push(redaction);
        }
        for list in by_position.values_mut() {
            list.sort_by_key(|r| r.forget_position);
        }
        Self {
            previous: GENESIS,
            next_position: 1,
            redactions: by_position,
            pending: BTreeMap::new(),
            pinned_key,
            witness_key: None,
            rewritten: 0,
            forgets: 0,
        }
    }

    pub fn check(&mut self, row: &StoredEvent) -> Result<(), ChainBreak> {
        if row.position != self.next_position {
            return Err(ChainBreak::Missing { position: self.next_position, found: row.position });
        }
        let stored = row.chain.as_deref().and_then(decode);
        let value = match self.redactions.remove(&row.position) {
            None => {
                let expected = link(&self.previous, RowRef::from(row));
                if stored != Some(expected) {
                    return Err(ChainBreak::Mismatch { position: row.position });
                }
                expected
            }
            Some(redactions) => self.check_rewritten(row, stored, redactions)?,
        };
        self.note(row)?;
        self.previous = value;
        self.next_position += 1;
        Ok(())
    }

    /// A rewritten row: what it holds is what its newest forget left, the row
    /// before is what every forget of it saw, and its stored chain value is kept.
    fn check_rewritten(
        &mut self,
        row: &StoredEvent,
        stored: Option<[u8; 32]>,
        redactions: Vec<Redaction>,
    ) -> Result<[u8; 32], ChainBreak> {
        let stored = stored.ok_or(ChainBreak::Mismatch { position: row.position })?;
        let newest = redactions.last().map(|r| (r.forget_position, r.content));
        for redaction in &redactions {
            if redaction.forget_position <= row.position {
                return Err(ChainBreak::Unbacked {
                    position: row.position,
                    forget_position: redaction.forget_position,
                });
            }
            if redaction.previous != self.previous {
                // The row before is not what the forget checked: it changed since.
                return Err(ChainBreak::Mismatch { position: row.position - 1 });
            }
        }
        if let Some((forget_position, committed)) = newest
            && content(RowRef::from(row)) != committed
        {
            return Err(ChainBreak::Rewritten { position: row.position, forget_position });
        }
        for redaction in redactions {
            self.pending.entry(redaction.forget_position).or_default().push((redaction, stored));
        }
        self.rewritten += 1;
        Ok(stored)
    }

    /// Learns from the rows the verifier itself relies on: the witness's key,
    /// and a forget, whose commitment is checked here.
    fn note(&mut self, row: &StoredEvent) -> Result<(), ChainBreak> {
        let kind = (row.aggregate_type.as_str(), row.event_type.as_str());
        if kind == WITNESSED {
            if let Ok(payload) = serde_json::from_str::<serde_json::Value>(&row.payload)
                && let Some(serde_json::Value::String(key)) = payload.pointer("/LogWitnessed/public_key")
            {
                self.witness_key.get_or_insert_with(|| key.clone());
            }
            return Ok(());
        }
        if kind != FORGET {
            return Ok(());
        }
        let broken = |problem| ChainBreak::Forget { position: row.position, problem };
        let StoredForget::PersonForgotten(forget) =
            serde_json::from_str(&row.payload).map_err(|_| broken("its payload is not a forget's"))?;
        let rows = self.pending.remove(&row.position).unwrap_or_default();
        if rows.len() as i64 != forget.rows {
            return Err(broken("it rewrote another number of rows than the log's redactions say"));
        }
        let digest = forget_digest(rows.iter().map(|(redaction, chain)| (redaction, chain)));
        if decode(&forget.digest) != Some(digest) {
            return Err(broken("its digest is not that of the log's redactions"));
        }
        let trusted = match &self.pinned_key {
            Some(pinned) => pinned == &forget.public_key,
            None => self.witness_key.as_ref() == Some(&forget.public_key),
        };
        if !trusted {
            return Err(broken("it is signed by a key that is not the witness's"));
        }
        if !signed(row.position, &forget, &digest) {
            return Err(broken("its signature does not verify"));
        }
        self.forgets += 1;
        Ok(())
    }

    /// Ends the check: every redaction must have been backed by a forget the
    /// log holds (a forget after the last row checked does not count).
    pub fn finish(&self) -> Result<(), ChainBreak> {
        let unbacked = self
            .pending
            .iter()
            .flat_map(|(forget, rows)| rows.iter().map(move |(r, _)| (r.position, *forget)))
            .chain(self.redactions.values().flatten().map(|r| (r.position, r.forget_position)))
            .min();
        match unbacked {
            Some((position, forget_position)) => Err(ChainBreak::Unbacked { position, forget_position }),
            None => Ok(()),
        }
    }

    /// How many rows were checked as rewritten by a forget.
    pub fn rewritten(&self) -> i64 {
        self.rewritten
    }

    /// How many forgets were checked.
    pub fn forgets(&self) -> i64 {
        self.forgets
    }

    /// The chain value of the last row checked (the head's, once all are).
    pub fn head(&self) -> [u8; 32] {
        self.previous
    }

    /// How many rows were checked.
    pub fn checked(&self) -> i64 {
        self.next_position - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(position: i64, payload: &str, previous: &[u8; 32]) -> StoredEvent {
        let mut event = StoredEvent {
            position,
            aggregate_type: "User".into(),
            aggregate_id: "alice".into(),
            sequence: position,
            event_type: "LoginRecorded".into(),
            event_version: "1.0".into(),
            payload: payload.into(),
            metadata: "{}".into(),
            recorded_at: 1_000 + position,
            chain: None,
        };
        event.chain = Some(encode(&link(previous, RowRef::from(&event))));
        event
    }

    fn log(n: i64) -> Vec<StoredEvent> {
        let mut previous = GENESIS;
        (1..=n)
            .map(|p| {
                let event = row(p, &format!("{{\"n\":{p}}}"), &previous);
                previous = event.chain.as_deref().and_then(decode).unwrap_or(GENESIS);
                event
            })
            .collect()
    }

    fn verify(rows: &[StoredEvent]) -> Result<i64, ChainBreak> {
        let mut verifier = ChainVerifier::default();
        rows.iter().try_for_each(|r| verifier.check(r))?;
        Ok(verifier.checked())
    }

    #[test]
    fn an_untouched_log_verifies() {
        assert_eq!(verify(&log(5)), Ok(5));
    }

    #[test]
    fn an_altered_row_breaks_the_chain_at_its_position() {
        let mut rows = log(5);
        rows[2].payload = "{\"n\":99}".into();
        assert_eq!(verify(&rows), Err(ChainBreak::Mismatch { position: 3 }));
    }

    #[test]
    fn a_deleted_row_is_named() {
        let mut rows = log(5);
        rows.remove(1);
        assert_eq!(verify(&rows), Err(ChainBreak::Missing { position: 2, found: 3 }));
    }

    mod forgets {
        use ed25519_dalek::{Signer, SigningKey};

        use super::*;

        fn key(seed: u8) -> SigningKey {
            SigningKey::from_bytes(&[seed; 32])
        }

        fn public(key: &SigningKey) -> String {
            STANDARD.encode(key.verifying_key().as_bytes())
        }

        fn chain_of(row: &StoredEvent) -> [u8; 32] {
            row.chain.as_deref().and_then(decode).unwrap_or(GENESIS)
        }

        /// Re-chains `rows[from..]` after their content changed.
        fn rechain(rows: &mut [StoredEvent], from: usize) {
            for i in from..rows.len() {
                let previous = if i == 0 { GENESIS } else { chain_of(&rows[i - 1]) };
                rows[i].chain = Some(encode(&link(&previous, RowRef::from(&rows[i]))));
            }
        }

        /// A log whose first row records `witness` as the witness's key, then
        /// four rows, the second and third of which name alice.
        fn witnessed_log(witness: &SigningKey) -> Vec<StoredEvent> {
            let mut rows = log(5);
            rows[0].aggregate_type = "System".into();
            rows[0].event_type = "LogWitnessed".into();
            rows[0].payload = format!("{{\"LogWitnessed\":{{\"public_key\":\"{}\",\"at\":1}}}}", public(witness));
            rows[2].payload = "{\"name\":\"alice\"}".into();
            rows[3].payload = "{\"email\":\"alice@example.org\"}".into();
            rechain(&mut rows, 0);
            rows
        }

        /// Rewrites `positions` (each one's payload emptied), appends the
        /// forget signed by `signer`, and returns the redactions.
        fn forget(rows: &mut Vec<StoredEvent>, positions: &[i64], signer: &SigningKey) -> Vec<Redaction> {
            let forget_position = rows.len() as i64 + 1;
            let mut redactions = Vec::new();
            for &position in positions {
                let i = (position - 1) as usize;
                let previous = if i == 0 { GENESIS } else { chain_of(&rows[i - 1]) };
                rows[i].payload = "{}".into();
                rows[i].aggregate_id = "forgotten-1".into();
                redactions.push(Redaction {
                    position,
                    forget_position,
                    previous,
                    content: content(RowRef::from(&rows[i])),
                });
            }
            let chains: Vec<[u8; 32]> = positions.iter().map(|&p| chain_of(&rows[(p - 1) as usize])).collect();
            let digest = forget_digest(redactions.iter().zip(chains.iter()));
            let signature = signer.sign(forget_message(forget_position, "forgotten-1", &digest).as_bytes());
            let previous = chain_of(&rows[rows.len() - 1]);
            let mut event = row(forget_position, "{}", &previous);
            event.aggregate_type = "Forgotten".into();
            event.aggregate_id = "forgotten-1".into();
            event.event_type = "PersonForgotten".into();
            event.payload = serde_json::json!({"PersonForgotten": {
                "pseudonym": "forgotten-1",
                "rows": positions.len(),
                "digest": encode(&digest),
                "public_key": public(signer),
                "signature": STANDARD.encode(signature.to_bytes()),
            }})
            .to_string();
            event.chain = Some(encode(&link(&previous, RowRef::from(&event))));
            rows.push(event);
            redactions
        }

        fn verify_with(rows: &[StoredEvent], redactions: Vec<Redaction>) -> Result<(i64, i64), ChainBreak> {
            let mut verifier = ChainVerifier::new(redactions, None);
            rows.iter().try_for_each(|r| verifier.check(r))?;
            verifier.finish()?;
            Ok((verifier.rewritten(), verifier.forgets()))
        }

        #[test]
        fn a_forgotten_log_verifies_and_keeps_its_head() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let head_before = chain_of(&rows[4]);
            let redactions = forget(&mut rows, &[3, 4], &witness);
            assert_eq!(verify_with(&rows, redactions), Ok((2, 1)));
            assert_eq!(chain_of(&rows[4]), head_before, "a head signed before the forget still holds");
        }

        #[test]
        fn a_rewritten_row_altered_after_the_forget_is_named() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let redactions = forget(&mut rows, &[3, 4], &witness);
            rows[2].payload = "{\"name\":\"mallory\"}".into();
            assert_eq!(verify_with(&rows, redactions), Err(ChainBreak::Rewritten { position: 3, forget_position: 6 }));
        }

        #[test]
        fn a_redaction_without_its_forget_is_refused() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let mut redactions = forget(&mut rows, &[3], &witness);
            rows.pop();
            assert_eq!(
                verify_with(&rows, redactions.clone()),
                Err(ChainBreak::Unbacked { position: 3, forget_position: 6 })
            );
            // Pointing at an ordinary row does not back it either.
            redactions[0].forget_position = 5;
            rows.truncate(5);
            assert_eq!(verify_with(&rows, redactions), Err(ChainBreak::Unbacked { position: 3, forget_position: 5 }));
        }

        #[test]
        fn a_forget_signed_by_another_key_is_refused() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let redactions = forget(&mut rows, &[3], &key(2));
            assert_eq!(
                verify_with(&rows, redactions),
                Err(ChainBreak::Forget { position: 6, problem: "it is signed by a key that is not the witness's" })
            );
        }

        #[test]
        fn a_pinned_key_is_the_only_one_a_forget_may_use() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let redactions = forget(&mut rows, &[3], &witness);
            let mut verifier = ChainVerifier::new(redactions, Some(public(&key(2))));
            let broken = rows.iter().try_for_each(|r| verifier.check(r));
            assert!(matches!(broken, Err(ChainBreak::Forget { position: 6, .. })), "{broken:?}");
        }

        #[test]
        fn a_redaction_the_forget_did_not_commit_to_is_refused() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let mut redactions = forget(&mut rows, &[3], &witness);
            // Someone able to write the database "redacts" one more row.
            rows[1].payload = "{}".into();
            redactions.push(Redaction {
                position: 2,
                forget_position: 6,
                previous: chain_of(&rows[0]),
                content: content(RowRef::from(&rows[1])),
            });
            assert_eq!(
                verify_with(&rows, redactions),
                Err(ChainBreak::Forget {
                    position: 6,
                    problem: "it rewrote another number of rows than the log's redactions say"
                })
            );
        }

        #[test]
        fn a_row_before_a_rewritten_one_cannot_be_changed_and_rechained() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let redactions = forget(&mut rows, &[3], &witness);
            // Row 2 altered and its chain recomputed: no link pins it to row 3
            // any more, but the forget's commitment to row 2's chain does.
            rows[1].payload = "{\"n\":\"altered\"}".into();
            rechain(&mut rows[..2], 0);
            assert_eq!(verify_with(&rows, redactions), Err(ChainBreak::Mismatch { position: 2 }));
        }

        #[test]
        fn a_key_recorded_after_the_first_signs_no_forget() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            // Someone able to write the database records a key of their own, then forgets with it.
            let previous = chain_of(&rows[4]);
            let mut recorded = row(6, "{}", &previous);
            recorded.aggregate_type = "System".into();
            recorded.event_type = "LogWitnessed".into();
            recorded.payload = format!("{{\"LogWitnessed\":{{\"public_key\":\"{}\",\"at\":2}}}}", public(&key(2)));
            recorded.chain = Some(encode(&link(&previous, RowRef::from(&recorded))));
            rows.push(recorded);
            let redactions = forget(&mut rows, &[3], &key(2));
            assert_eq!(
                verify_with(&rows, redactions),
                Err(ChainBreak::Forget { position: 7, problem: "it is signed by a key that is not the witness's" })
            );
        }

        #[test]
        fn a_forget_copied_to_another_position_does_not_verify() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let mut redactions = forget(&mut rows, &[3], &witness);
            // The same signed payload appended again, with a copy of its redaction
            // (what would let an old row's content come back past a later forget).
            let previous = chain_of(&rows[5]);
            let mut copy = rows[5].clone();
            copy.position = 7;
            copy.sequence = 2;
            copy.chain = Some(encode(&link(&previous, RowRef::from(&copy))));
            rows.push(copy);
            redactions.push(Redaction { forget_position: 7, ..redactions[0].clone() });
            assert_eq!(
                verify_with(&rows, redactions),
                Err(ChainBreak::Forget { position: 7, problem: "its signature does not verify" })
            );
        }

        #[test]
        fn a_row_forgotten_twice_is_checked_against_the_newest_forget() {
            let witness = key(1);
            let mut rows = witnessed_log(&witness);
            let mut redactions = forget(&mut rows, &[3], &witness);
            let later = forget(&mut rows, &[3], &witness);
            assert_ne!(later[0].forget_position, redactions[0].forget_position);
            redactions.extend(later);
            assert_eq!(verify_with(&rows, redactions), Ok((1, 2)));
        }
    }

    #[test]
    fn text_boundaries_are_part_of_the_bytes() {
        let a = link(&GENESIS, RowRef { aggregate_type: "ab", aggregate_id: "c", ..RowRef::from(&log(1)[0]) });
        let b = link(&GENESIS, RowRef { aggregate_type: "a", aggregate_id: "bc", ..RowRef::from(&log(1)[0]) });
        assert_ne!(a, b);
    }
}
