//! The one change the log allows to rows already written: a forget
//! (docs/design/forgetting.md). The rows that name a person are rewritten in
//! place, each keeping its stored chain value; a row of the redactions table
//! per rewritten row commits to what it holds now and to the chain value of
//! the row before it; and the forget's own event, appended in the same
//! transaction, commits to all of them with a digest the caller signs.
//!
//! What to rewrite is the caller's (the application knows which fields are
//! personal); the store plans nothing but reads every row once, which is
//! complete by construction where an index could miss a reference.

use cqrs_es::persist::SerializedEvent;

use super::chain::{self, Redaction, RowRef};
use super::{StoreError, StoredEvent};

/// What a row holds after the forget: the fields a rewrite may change.
/// Position, type, version, sequence, time and chain value stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RewrittenRow {
    pub aggregate_id: String,
    pub payload: String,
    pub metadata: String,
}

/// What the forget's event commits to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commitment {
    /// The position the forget's event will have.
    pub position: i64,
    /// How many rows were rewritten.
    pub rows: i64,
    /// [`chain::forget_digest`] over the forget's redactions.
    pub digest: [u8; 32],
}

/// A forget as the store carries it out.
pub trait Forgetting: Send + Sync {
    /// What `row` must hold after the forget, or `None` to leave it as it is.
    fn rewrite(&self, row: &StoredEvent) -> Option<RewrittenRow>;
    /// The forget's own event (the first of its stream), given what it
    /// commits to; an error stops the forget before anything is written.
    fn event(&self, commitment: &Commitment) -> Result<SerializedEvent, String>;
    /// The stored secrets (password hashes, second-factor seeds) the forget
    /// deletes in its transaction: nothing of the person is left sealed.
    fn secrets(&self) -> &[uuid::Uuid] {
        &[]
    }
}

/// A row to rewrite, with what its redaction commits to.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub position: i64,
    pub row: RewrittenRow,
    /// The chain value of the row before (as read now).
    pub previous: [u8; 32],
    /// The row's own stored chain value, kept.
    pub chain: [u8; 32],
    pub content: [u8; 32],
}

/// Plans the rewrites of `rows` (consecutive, in position order, the first
/// after a row whose chain value is `previous`); returns the chain value of
/// the last row read, from which the next call goes on.
pub(crate) fn plan(
    rows: &[StoredEvent],
    mut previous: [u8; 32],
    forgetting: &dyn Forgetting,
    planned: &mut Vec<Planned>,
) -> Result<[u8; 32], StoreError> {
    for row in rows {
        let stored = row.chain.as_deref().and_then(chain::decode).ok_or_else(|| {
            StoreError::Failed(format!("the row at position {} has no chain value: run `replay verify`", row.position))
        })?;
        if let Some(rewritten) = forgetting.rewrite(row) {
            let after = StoredEvent {
                aggregate_id: rewritten.aggregate_id.clone(),
                payload: rewritten.payload.clone(),
                metadata: rewritten.metadata.clone(),
                ..row.clone()
            };
            planned.push(Planned {
                position: row.position,
                content: chain::content(RowRef::from(&after)),
                row: rewritten,
                previous,
                chain: stored,
            });
        }
        previous = stored;
    }
    Ok(previous)
}

/// [`plan`] for the rows appended after the unlocked scan, read under the
/// append lock: another forget among them rewrote rows the scan planned
/// from, so this one stops (nothing written; the caller may try again).
pub(crate) fn plan_after_scan(
    rows: &[StoredEvent],
    previous: [u8; 32],
    forgetting: &dyn Forgetting,
    planned: &mut Vec<Planned>,
) -> Result<[u8; 32], StoreError> {
    refuse_forgets_after(rows, 0)?;
    plan(rows, previous, forgetting, planned)
}

/// Checks `rows` on against the chain: a forget rewrites and signs what the
/// rows hold, so it refuses a log that does not verify (it would make an
/// earlier tampering part of what it signs).
pub(crate) fn verified(verifier: &mut chain::ChainVerifier, rows: &[StoredEvent]) -> Result<(), StoreError> {
    for row in rows {
        verifier.check(row).map_err(|broken| {
            StoreError::Failed(format!(
                "the log does not verify ({broken}): nothing was rewritten; run `replay verify`"
            ))
        })?;
    }
    Ok(())
}

/// Refuses when `rows` hold a forget after `opened` (the head when this
/// forget began reading): one written meanwhile.
pub(crate) fn refuse_forgets_after(rows: &[StoredEvent], opened: i64) -> Result<(), StoreError> {
    match rows.iter().find(|r| r.aggregate_type == chain::FORGET.0 && r.position > opened) {
        Some(other) => Err(StoreError::ForgetRaced(other.position)),
        None => Ok(()),
    }
}

/// Rows a forget reads at a time under the append lock (both engines).
pub(crate) const READ_UNDER_LOCK: i64 = 10_000;

/// The redactions of `planned` under the forget at `forget_position`, and what its event commits to.
pub(crate) fn commit(planned: &[Planned], forget_position: i64) -> (Vec<Redaction>, Commitment) {
    let redactions: Vec<Redaction> = planned
        .iter()
        .map(|p| Redaction { position: p.position, forget_position, previous: p.previous, content: p.content })
        .collect();
    let digest = chain::forget_digest(redactions.iter().zip(planned.iter().map(|p| &p.chain)));
    let rows = redactions.len() as i64;
    (redactions, Commitment { position: forget_position, rows, digest })
}

/// What a forget did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Forgot {
    /// The position of the forget's event.
    pub position: i64,
    /// How many rows were rewritten.
    pub rows: i64,
}

/// The forget's append as the engines report it: it must be the one event
/// at `position` (its stream is new), or the forget is undone.
pub(crate) fn appended(results: Vec<Option<i64>>, position: i64, rows: i64) -> Result<Forgot, StoreError> {
    match results.as_slice() {
        [Some(at)] if *at == position => Ok(Forgot { position, rows }),
        _ => Err(StoreError::Failed("the forget's stream exists already: nothing was rewritten".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Nothing;

    impl Forgetting for Nothing {
        fn rewrite(&self, _row: &StoredEvent) -> Option<RewrittenRow> {
            None
        }

        fn event(&self, _commitment: &Commitment) -> Result<SerializedEvent, String> {
            Err("not asked".into())
        }
    }

    fn row(position: i64, aggregate_type: &str) -> StoredEvent {
        let mut row = StoredEvent {
            position,
            aggregate_type: aggregate_type.into(),
            aggregate_id: "x".into(),
            sequence: 1,
            event_type: "E".into(),
            event_version: "1.0".into(),
            payload: "{}".into(),
            metadata: "{}".into(),
            recorded_at: 1,
            chain: None,
        };
        row.chain = Some(chain::encode(&chain::link(&chain::GENESIS, RowRef::from(&row))));
        row
    }

    #[test]
    fn a_forget_written_meanwhile_stops_this_one() {
        let mut planned = Vec::new();
        assert!(plan_after_scan(&[row(7, "User")], chain::GENESIS, &Nothing, &mut planned).is_ok());
        let other = plan_after_scan(&[row(7, "User"), row(8, "Forgotten")], chain::GENESIS, &Nothing, &mut planned);
        assert!(matches!(other, Err(StoreError::ForgetRaced(8))));
        // The unlocked scan reads old forgets like any row.
        assert!(plan(&[row(8, "Forgotten")], chain::GENESIS, &Nothing, &mut planned).is_ok());
    }
}
