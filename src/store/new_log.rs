//! A log built whole, ahead of one [`EventLog::import`](super::EventLog::import)
//! into an empty store (`import-auth2`): positions from 1, each stream's
//! sequence from 1, the integrity chain from its genesis — the rows the
//! writer would have made, event by event, had the commands run.

use std::collections::HashMap;

use cqrs_es::{Aggregate, DomainEvent};

use super::{EventMetadata, StoredEvent, chain};
use crate::domain::Addressed;

/// The rows of a new log, in the order they are made.
pub struct NewLog {
    next: i64,
    previous: [u8; 32],
    sequences: HashMap<(&'static str, String), i64>,
    recorded_at: i64,
}

impl NewLog {
    /// An empty log whose rows are all recorded at `recorded_at`.
    pub fn new(recorded_at: i64) -> Self {
        Self { next: 1, previous: chain::GENESIS, sequences: HashMap::new(), recorded_at }
    }

    /// The next row: `event` on the stream `id` of aggregate `A`, with `metadata`.
    pub fn row<A: Aggregate + Addressed>(
        &mut self,
        id: &A::Id,
        event: &A::Event,
        metadata: &EventMetadata,
    ) -> Result<StoredEvent, serde_json::Error> {
        let id = A::stream_id(id);
        let sequence = self.sequences.entry((A::TYPE, id.to_string())).or_insert(0);
        *sequence += 1;
        let mut row = StoredEvent {
            position: self.next,
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: id.into_owned(),
            sequence: *sequence,
            event_type: event.event_type(),
            event_version: event.event_version(),
            payload: serde_json::to_value(event)?.to_string(),
            metadata: serde_json::to_value(metadata.clone().into_map())?.to_string(),
            recorded_at: self.recorded_at,
            chain: None,
        };
        self.previous = chain::link(&self.previous, chain::RowRef::from(&row));
        row.chain = Some(chain::encode(&self.previous));
        self.next += 1;
        Ok(row)
    }

    /// How many rows have been made.
    pub fn len(&self) -> i64 {
        self.next - 1
    }

    /// Whether no row has been made.
    pub fn is_empty(&self) -> bool {
        self.next == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{CustomRole, CustomRoleEvent, CustomRoleId};
    use crate::store::chain::ChainVerifier;

    #[test]
    fn rows_number_positions_and_sequences_and_chain_as_the_writer_does() {
        let mut log = NewLog::new(5);
        let metadata = EventMetadata::actor("system");
        let role = |id: &str| CustomRoleId::parse(Some(id)).unwrap_or_else(|e| panic!("{e}"));
        let event = |id: &str| CustomRoleEvent::CustomRoleImported { id: role(id), description: "d".into(), at: 5 };
        let rows = [
            log.row::<CustomRole>(&role("a"), &event("a"), &metadata),
            log.row::<CustomRole>(&role("b"), &event("b"), &metadata),
            log.row::<CustomRole>(&role("a"), &event("a"), &metadata),
        ]
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(rows.iter().map(|r| (r.position, r.sequence)).collect::<Vec<_>>(), [(1, 1), (2, 1), (3, 2)]);
        assert_eq!(rows[0].event_type, "CustomRoleImported");
        assert_eq!(rows[0].metadata, r#"{"actor":"system"}"#);
        let mut verifier = ChainVerifier::default();
        for row in &rows {
            verifier.check(row).unwrap_or_else(|broken| panic!("{broken}"));
        }
        assert_eq!(log.len(), 3);
    }
}
