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
    hasher.finalize().into()
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
}

impl ChainBreak {
    /// The first position at which the log is not what was appended.
    pub fn position(&self) -> i64 {
        match self {
            Self::Missing { position, .. } | Self::Mismatch { position } => *position,
        }
    }
}

/// Checks rows in position order against the chain.
#[derive(Debug, Clone)]
pub struct ChainVerifier {
    previous: [u8; 32],
    next_position: i64,
}

impl Default for ChainVerifier {
    fn default() -> Self {
        Self { previous: GENESIS, next_position: 1 }
    }
}

impl ChainVerifier {
    pub fn check(&mut self, row: &StoredEvent) -> Result<(), ChainBreak> {
        if row.position != self.next_position {
            return Err(ChainBreak::Missing { position: self.next_position, found: row.position });
        }
        let expected = link(&self.previous, RowRef::from(row));
        if row.chain.as_deref().and_then(decode) != Some(expected) {
            return Err(ChainBreak::Mismatch { position: row.position });
        }
        self.previous = expected;
        self.next_position += 1;
        Ok(())
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

    #[test]
    fn text_boundaries_are_part_of_the_bytes() {
        let a = link(&GENESIS, RowRef { aggregate_type: "ab", aggregate_id: "c", ..RowRef::from(&log(1)[0]) });
        let b = link(&GENESIS, RowRef { aggregate_type: "a", aggregate_id: "bc", ..RowRef::from(&log(1)[0]) });
        assert_ne!(a, b);
    }
}
