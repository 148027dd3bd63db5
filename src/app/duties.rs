//! The duties that one server does for all that share a log: writing
//! checkpoints of the projections, signing the log's head, and the sweeps
//! (expired flows, expired test-mode data, orphaned second-factor
//! secrets). One server holds the log's duty lease (`store::DutyLease`: a
//! PostgreSQL session advisory lock) and does them; the others look for the
//! lease every [`LEASE_CHECK`] and take it over when its holder or its
//! connection goes. Each duty is also safe to run twice (a checkpoint at a
//! position replaces its twin, a sweep deletes what is already gone, a head
//! is signed only above the last), so the moment two servers both believe
//! they hold the lease — the old holder has not yet noticed its connection
//! died — does no harm.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use super::AppError;
use super::background::BackgroundTask;
use super::ledger::Ledger;
use crate::projections::checkpoint::store_checkpoint;
use crate::store::{DutyLease, EventLog};
use crate::telemetry;

/// How often a server checks its lease, or looks for a free one.
pub const LEASE_CHECK: Duration = Duration::from_secs(2);

/// Whether this server holds the duty lease, kept current by a background task.
pub struct Duties {
    leading: Arc<AtomicBool>,
    task: BackgroundTask,
}

impl Duties {
    /// Starts looking for (and then keeping) the duty lease of `log`.
    pub async fn start(log: EventLog) -> Self {
        let leading = Arc::new(AtomicBool::new(false));
        let mut lease = take_lease(&log, &leading).await;
        let flag = leading.clone();
        let task = BackgroundTask::new(tokio::spawn(async move {
            loop {
                tokio::time::sleep(LEASE_CHECK).await;
                if let Some(held) = lease.as_mut()
                    && !held.alive().await
                {
                    lease = None;
                    flag.store(false, Ordering::SeqCst);
                    tracing::warn!("lost the duty lease (its connection is gone); looking for it again");
                }
                if lease.is_none() {
                    lease = take_lease(&log, &flag).await;
                }
            }
        }));
        Self { leading, task }
    }

    /// Whether this server does the shared duties now.
    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// Gives the lease up (another server takes it at its next check).
    pub async fn stop(&self) {
        self.task.stop().await;
        self.leading.store(false, Ordering::SeqCst);
    }
}

async fn take_lease(log: &EventLog, leading: &AtomicBool) -> Option<Box<dyn DutyLease>> {
    match log.try_lead().await {
        Ok(Some(lease)) => {
            leading.store(true, Ordering::SeqCst);
            tracing::info!("this server holds the duty lease: it writes checkpoints, signs heads and sweeps");
            Some(lease)
        }
        Ok(None) => None,
        Err(error) => {
            tracing::warn!(%error, "cannot look for the duty lease");
            None
        }
    }
}

/// How many checkpoints (per display-name rule) a server keeps when it writes one.
pub const KEEP_CHECKPOINTS: i64 = 3;

/// Writes a checkpoint of the projections every `every` events (see
/// [`Checkpointer::due`]) and at shutdown, so a restart folds only what came
/// after it.
pub struct Checkpointer {
    every: i64,
    /// The position of the newest checkpoint (this server's or the one it started from).
    last: AtomicI64,
}

impl Checkpointer {
    /// A checkpointer that has seen a checkpoint at `last` (0: none).
    pub fn new(every: i64, last: i64) -> Self {
        Self { every, last: AtomicI64::new(last) }
    }

    /// Whether checkpoints are written at all (`checkpoint_every` is not 0).
    pub fn enabled(&self) -> bool {
        self.every > 0
    }

    /// Whether `every` events were folded since the newest checkpoint (never with `every` 0).
    pub fn due(&self, ledger: &Ledger) -> bool {
        self.every > 0 && ledger.projections.position() - self.last.load(Ordering::SeqCst) >= self.every
    }

    /// Writes a checkpoint of the projections as they are now, unless there
    /// is one at this position already; returns its position.
    pub async fn write(&self, ledger: &Ledger) -> Result<Option<i64>, AppError> {
        if ledger.projections.position() <= self.last.load(Ordering::SeqCst) {
            return Ok(None);
        }
        let started = std::time::Instant::now();
        // Projections that folded rows a forget then rewrote may still name the
        // person: they are folded afresh first (the swap a forget makes), and no
        // checkpoint is written from projections that still hold such rows.
        if ledger.holds_forgotten_rows() && (!ledger.refold().await? || ledger.holds_forgotten_rows()) {
            return Ok(None);
        }
        let projections = ledger.projections.clone();
        // Copying the whole state is CPU work: off the request workers.
        let checkpoint = tokio::task::spawn_blocking(move || projections.read().checkpoint())
            .await
            .map_err(|e| AppError::internal(format!("the checkpoint could not be made: {e}")))?;
        if ledger.holds_forgotten_rows() {
            // A forget was folded while the copy was made: the copy may hold what it erased.
            return Ok(None);
        }
        let (digest, bytes) = store_checkpoint(&ledger.log, &ledger.checkpoints, &checkpoint, ledger.now()).await?;
        self.last.fetch_max(checkpoint.position, Ordering::SeqCst);
        // Each is the whole state: older ones are only kept for a step back.
        let pruned = ledger.checkpoints.prune(checkpoint.rule.name(), KEEP_CHECKPOINTS).await?;
        metrics::counter!(telemetry::CHECKPOINTS).increment(1);
        tracing::info!(
            position = checkpoint.position,
            bytes,
            %digest,
            ms = started.elapsed().as_millis() as u64,
            pruned,
            "wrote a checkpoint of the projections"
        );
        Ok(Some(checkpoint.position))
    }
}
