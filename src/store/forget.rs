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

/// The redactions of `planned` under the forget at `forget_position`, and what its event commits to.
pub(crate) fn commit(planned: &[Planned], forget_position: i64) -> (Vec<Redaction>, Commitment) {
    let redactions: Vec<Redaction> = planned
        .iter()
        .map(|p| Redaction { position: p.position, forget_position, previous: p.previous, content: p.content })
        .collect();
    let digest = chain::forget_digest(redactions.iter().zip(planned.iter().map(|p| &p.chain)));
    let rows = redactions.len() as i64;
    (redactions, Commitment { rows, digest })
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
