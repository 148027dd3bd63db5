//! The one runner that feeds every projection: it reads the log after the
//! position the projections have reached, decodes outside the lock, folds a
//! batch under the write lock and publishes the new position. It catches up
//! at start-up, then tails: woken after each local commit, and polling for
//! commits made by other processes sharing the log.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use cqrs_es::Aggregate;
use cqrs_es::persist::EventUpcaster;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::{Fold, Projections, SharedProjections};
use crate::domain::{DecodeError, LogEvent, upcasters};
use crate::store::{EventLog, StoreError};

const BATCH: i64 = 2_000;

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("event at position {position} cannot be read: {source}")]
    Decode { position: i64, source: DecodeError },
}

pub struct Runner<P = Projections> {
    log: EventLog,
    projections: Arc<SharedProjections<P>>,
    wake: Arc<Notify>,
    upcasters: Vec<Box<dyn EventUpcaster>>,
    /// Set when a forget committed after `opened_at` is folded (see [`Runner::watching_forgets`]).
    stale: Option<(i64, Arc<AtomicBool>)>,
    /// Whether the forgets it reads count as seen by the process (see [`Runner::not_counting_forgets`]).
    counts_forgets: bool,
}

impl<P: Fold> Runner<P> {
    pub fn new(log: EventLog, projections: Arc<SharedProjections<P>>) -> Self {
        Self {
            log,
            projections,
            wake: Arc::new(Notify::new()),
            upcasters: upcasters(),
            stale: None,
            counts_forgets: true,
        }
    }

    /// A fold of the log beside the live one (a checkpoint's, a refold's):
    /// the forgets it passes are old news to the process, not new ones.
    pub fn not_counting_forgets(self) -> Self {
        Self { counts_forgets: false, ..self }
    }

    /// Sets `stale` when this runner folds a forget at a position after
    /// `opened_at` (the log's head before these projections started
    /// reading it): they may have folded the forgotten rows before they were
    /// rewritten, so they still hold the person's data somewhere (another
    /// user's record naming them, say), and must not be written out.
    pub fn watching_forgets(self, opened_at: i64, stale: Arc<AtomicBool>) -> Self {
        Self { stale: Some((opened_at, stale)), ..self }
    }

    /// A handle that wakes the runner (call it after a local commit).
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Folds everything in the log; returns how many events were folded.
    pub async fn catch_up(&self) -> Result<u64, RunnerError> {
        let mut total = 0;
        loop {
            let folded = self.step().await?;
            if folded == 0 {
                return Ok(total);
            }
            total += folded;
        }
    }

    /// Folds the next batch; returns how many events it held.
    async fn step(&self) -> Result<u64, RunnerError> {
        let from = self.projections.position();
        let rows = self.log.read_after(from, BATCH).await?;
        let Some(last) = rows.last().map(|r| r.position) else {
            return Ok(0);
        };
        let mut stale_after = false;
        if let Some(forget) = rows.iter().rev().find(|r| r.aggregate_type == crate::domain::Forgotten::TYPE) {
            // Another process's forget (or this one's, seen again): streams were renamed.
            if self.counts_forgets {
                self.log.note_forget();
            }
            stale_after = self.stale.as_ref().is_some_and(|(opened_at, _)| forget.position > *opened_at);
        }
        let mut decoded = Vec::with_capacity(rows.len());
        for row in rows {
            let event = P::Event::decode(
                &row.aggregate_type,
                &row.event_type,
                &row.event_version,
                &row.payload,
                &self.upcasters,
            )
            .map_err(|source| RunnerError::Decode { position: row.position, source })?;
            decoded.push((row.position, row.recorded_at, row.aggregate_id, row.sequence, event));
        }
        let folded = decoded.len() as u64;
        {
            let mut state = self.projections.write();
            for (position, recorded_at, aggregate_id, sequence, event) in &decoded {
                state.apply(*position, *recorded_at, aggregate_id, *sequence, event);
            }
            // Marked while the state is locked, once what the forget affects is in it
            // (a swap of a fresh fold, under the same lock, cannot pass it by).
            if let Some((_, stale)) = self.stale.as_ref().filter(|_| stale_after) {
                stale.store(true, Ordering::SeqCst);
            }
        }
        self.projections.publish(last);
        Ok(folded)
    }

    /// Tails the log until the task is aborted. `poll` bounds how late a commit
    /// by another process is seen.
    pub fn spawn(self, poll: Duration) -> JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                match self.step().await {
                    Ok(0) => {
                        tokio::select! {
                            _ = self.wake.notified() => {}
                            _ = tokio::time::sleep(poll) => {}
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%error, "projection runner cannot advance; retrying");
                        tokio::time::sleep(poll.max(Duration::from_millis(500))).await;
                    }
                }
            }
        })
    }
}
