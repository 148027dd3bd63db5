//! The running ledger: the log, the command bus, the projections and their
//! runner, and the clock — what the HTTP API and the command line act on.
//! Every command goes through `Ledger`, which answers only once the
//! projections have folded the command's events (read-your-writes).

use std::borrow::Borrow;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use super::AppError;
use super::background::BackgroundTask;
use super::commands::CommandBus;
use super::consistency::{HeadCheck, note_written};
use super::device_marks::DeviceMarks;
use crate::clock::SharedClock;
use crate::domain::canonical::Canonicalization;
use crate::domain::{Addressed, ServerConfig, ServerConfigCommand, ServerSettings};
use crate::projections::checkpoint::load_checkpoint;
use crate::projections::{Projections, Runner, SharedProjections};
use crate::store::throttle::Throttles;
use crate::store::{Checkpoints, Credentials, EventLog, EventMetadata, SecretsKey, Store, StoreOptions};

#[derive(Debug, Clone)]
pub struct LedgerOptions {
    pub store_url: String,
    pub store: StoreOptions,
    pub canonicalization: Canonicalization,
    /// The settings a new log starts with.
    pub initial_settings: ServerSettings,
    /// How often the runner looks for commits made by other processes.
    pub poll: Duration,
    /// Hear other processes' commits as they happen (PostgreSQL's
    /// LISTEN/NOTIFY); off behind a pooler that cannot LISTEN, leaving the poll
    /// and the catch-up on a miss.
    pub listen_for_commits: bool,
    /// How long a command waits for the projections to fold it.
    pub settle_timeout: Duration,
    /// How long a command may wait for its turn and retry races lost to other
    /// processes before it is answered busy (503).
    pub command_deadline: Duration,
    /// A forced password reset also ends the user's sessions (revokes their tokens).
    pub force_reset_ends_sessions: bool,
    /// How many argon2 runs go at once, wait, and for how long (default: sized to the machine).
    pub password_work: super::passwords::PasswordWorkSettings,
}

impl LedgerOptions {
    /// Defaults for the log at `store_url`: the default display-name rule and
    /// settings, a 250 ms poll, a 10 s settle timeout and command deadline.
    pub fn new(store_url: impl Into<String>) -> Self {
        Self {
            store_url: store_url.into(),
            store: StoreOptions { secrets_key: SecretsKey::Beside, ..StoreOptions::default() },
            canonicalization: Canonicalization::default(),
            initial_settings: ServerSettings::default(),
            poll: Duration::from_millis(250),
            listen_for_commits: true,
            settle_timeout: Duration::from_secs(10),
            command_deadline: super::commands::COMMAND_DEADLINE,
            force_reset_ends_sessions: false,
            password_work: Default::default(),
        }
    }
}

/// Waits up to `limit` for `projections` to reach `position` (read-your-writes).
pub(crate) async fn settle<P>(
    projections: &SharedProjections<P>,
    position: Option<i64>,
    limit: Duration,
) -> Result<Option<i64>, AppError> {
    match position {
        Some(position) if !projections.wait_for(position, limit).await => Err(AppError::Lagging(position)),
        _ => Ok(position),
    }
}

pub struct Ledger {
    pub log: EventLog,
    /// Secrets referenced from events by id (password hashes, TOTP seeds, CA keys).
    pub credentials: Credentials,
    /// Stored projection states, for fast start-up.
    pub checkpoints: Checkpoints,
    pub projections: Arc<SharedProjections>,
    /// The position of the checkpoint the projections started from (`None`: folded from the start).
    pub checkpoint: Option<i64>,
    bus: CommandBus,
    clock: SharedClock,
    runner: BackgroundTask,
    /// Hears of commits by other servers (PostgreSQL's NOTIFY).
    listener: BackgroundTask,
    /// Wakes the runner.
    waker: Arc<tokio::sync::Notify>,
    /// The log's head, as other servers may have moved it.
    pub head_check: HeadCheck,
    /// The log's head when this ledger was opened (folded before it served).
    started_at_head: i64,
    settle_timeout: Duration,
    /// The settings this server starts a new log with (the operator's
    /// `[initial]` section): what "reset the configuration" returns to.
    initial_settings: ServerSettings,
    /// Whether a forced password reset also revokes the user's tokens.
    force_reset_ends_sessions: bool,
    /// The wrong-password throttles: what is reserved before a password is checked.
    pub password_guard: super::throttle::PasswordGuard,
    /// The argon2 runs, bounded.
    pub password_work: super::passwords::PasswordWork,
    /// Why writes are refused, while they are (the witness does not hold: see `witness`).
    refused: std::sync::RwLock<Option<String>>,
    /// Set by the runner (see [`Ledger::holds_forgotten_rows`]).
    hold_forgotten_rows: Arc<AtomicBool>,
    /// One fresh fold at a time: a second caller waits for the one under way.
    refolding: tokio::sync::Mutex<()>,
}

/// How many times [`Ledger::refold`] catches its fresh fold up before it
/// leaves the swap for a later try.
const REFOLD_ROUNDS: usize = 100;

impl Ledger {
    /// Opens the log, folds it, starts tailing, and records the initial settings on a new log.
    pub async fn open(options: LedgerOptions, clock: SharedClock) -> Result<Self, AppError> {
        let Store { log, credentials, checkpoints } =
            Store::open(&options.store_url, options.store.clone(), clock.clone()).await?;
        let throttles = Throttles::open(&options.store_url, &options.store).await?;
        let marks = DeviceMarks::open(&credentials, clock.now_ms()).await?;
        let opened_at = log.head().await?;
        let loaded = load_checkpoint(&log, &checkpoints, options.canonicalization).await;
        let checkpoint = loaded.as_ref().map(|p| p.position);
        let projections =
            Arc::new(SharedProjections::new(loaded.unwrap_or_else(|| Projections::new(options.canonicalization))));
        let hold_forgotten_rows = Arc::new(AtomicBool::new(false));
        let runner =
            Runner::new(log.clone(), projections.clone()).watching_forgets(opened_at, hold_forgotten_rows.clone());
        let started_at_head = log.head().await?;
        let folded = runner.catch_up().await?;
        tracing::info!(events = folded, position = projections.position(), store = log.kind(), "projections caught up");
        let waker = runner.waker();
        let wake = waker.clone();
        let bus = CommandBus::with_deadline(&log, Arc::new(move |_| wake.notify_one()), options.command_deadline);
        let (wake, folded) = (waker.clone(), projections.clone());
        let signal: crate::store::CommitSignal = Arc::new(move |heard| {
            metrics::counter!(crate::telemetry::COMMITS_HEARD).increment(1);
            match heard {
                Some(position) if position <= folded.position() => {}
                _ => wake.notify_one(),
            }
        });
        let listener = match options.listen_for_commits.then(|| log.listen(signal)).flatten() {
            Some(task) => BackgroundTask::new(task),
            None => BackgroundTask::default(),
        };
        let runner = BackgroundTask::new(runner.spawn(options.poll));
        let settle_timeout = options.settle_timeout;
        let initial_settings = options.initial_settings.clone();
        let force_reset_ends_sessions = options.force_reset_ends_sessions;
        let ledger = Self {
            log,
            credentials,
            checkpoints,
            projections,
            checkpoint,
            bus,
            clock,
            runner,
            listener,
            waker,
            head_check: HeadCheck::default(),
            started_at_head,
            settle_timeout,
            initial_settings,
            force_reset_ends_sessions,
            password_guard: super::throttle::PasswordGuard::new(throttles, marks),
            password_work: super::passwords::PasswordWork::new(options.password_work),
            refused: std::sync::RwLock::new(None),
            hold_forgotten_rows,
            refolding: tokio::sync::Mutex::new(()),
        };
        let initialize = ServerConfigCommand::Initialize(options.initial_settings);
        ledger.execute::<ServerConfig>((), initialize, &EventMetadata::actor("system")).await?;
        Ok(ledger)
    }

    /// Whether these projections folded rows a forget rewrote after they
    /// read them: they may still hold the forgotten person's data, so a
    /// checkpoint is made from a fresh fold of the log instead of from them.
    pub fn holds_forgotten_rows(&self) -> bool {
        self.hold_forgotten_rows.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The settings a new log starts with on this server.
    pub fn initial_settings(&self) -> &ServerSettings {
        &self.initial_settings
    }

    /// Whether a forced password reset also ends the user's sessions (`forcereset_revokes`).
    pub fn force_reset_ends_sessions(&self) -> bool {
        self.force_reset_ends_sessions
    }

    /// The log's head when this ledger was opened.
    pub fn started_at_head(&self) -> i64 {
        self.started_at_head
    }

    /// Now, in epoch milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Waits for the projections to reach `position`.
    pub async fn settle(&self, position: Option<i64>) -> Result<Option<i64>, AppError> {
        settle(&self.projections, position, self.settle_timeout).await
    }

    /// Refuses every write from now on, for `reason`, until [`Self::allow_writes`].
    pub fn refuse_writes(&self, reason: String) {
        if let Ok(mut refused) = self.refused.write() {
            *refused = Some(reason);
        }
    }

    /// Accepts writes again.
    pub fn allow_writes(&self) {
        if let Ok(mut refused) = self.refused.write() {
            *refused = None;
        }
    }

    /// Why writes are refused, if they are.
    pub fn writes_refused(&self) -> Option<String> {
        self.refused.read().ok().and_then(|r| r.clone())
    }

    /// The one command path: runs `command` on the instance of `A` named `id`
    /// (see [`CommandBus::execute`]) and answers once the projections have
    /// folded what it committed, so the caller reads its own write. Returns
    /// the position committed (`None`: nothing needed recording).
    pub async fn execute<A>(
        &self,
        id: impl Borrow<A::Id>,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, AppError>
    where
        A: Addressed,
        A::Command: Clone,
    {
        if let Some(reason) = self.writes_refused() {
            return Err(AppError::Halted(reason));
        }
        self.execute_even_if_refused::<A>(id, command, metadata).await
    }

    /// [`Self::execute`] while writes are refused too: for the records that
    /// lift the refusal (the witness's own, an operator's acceptance).
    pub(crate) async fn execute_even_if_refused<A>(
        &self,
        id: impl Borrow<A::Id>,
        command: A::Command,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, AppError>
    where
        A: Addressed,
        A::Command: Clone,
    {
        let position = self.bus.execute::<A>(id.borrow(), command, metadata).await?;
        if let Some(position) = position {
            note_written(position);
        }
        self.settle(position).await
    }

    /// Catches up with every event committed to the log before this call, by
    /// any server sharing it (see `consistency`); returns the head it reached.
    pub async fn catch_up(&self) -> Result<i64, AppError> {
        let head = self.head_check.head_since(tokio::time::Instant::now(), &self.log).await?;
        self.fold_to(head).await?;
        Ok(head)
    }

    /// Wakes the runner and waits until the projections hold `position`.
    pub(crate) async fn fold_to(&self, position: i64) -> Result<(), AppError> {
        if position > self.projections.position() {
            self.waker.notify_one();
            self.settle(Some(position)).await?;
        }
        Ok(())
    }

    /// Replaces the projections with a fresh fold of the log when they hold
    /// rows a forget rewrote after they folded them: records of others that
    /// named the forgotten person (who disabled whom, who granted what) then
    /// name the pseudonym, as the log does. Requests read the old state until
    /// the swap, which waits for the fresh fold to reach the live one's
    /// position. Returns whether it swapped (false: nothing to do, or
    /// another call had just done it).
    pub async fn refold(&self) -> Result<bool, AppError> {
        use std::sync::atomic::Ordering;
        // A fold under way (the background's, say) is waited for: when this returns, it is done.
        let _one = self.refolding.lock().await;
        // The flag stays set until the swap: checkpoints meanwhile are made from fresh folds.
        if !self.hold_forgotten_rows.load(Ordering::SeqCst) {
            return Ok(false);
        }
        let started = std::time::Instant::now();
        let rule = self.projections.read().users.rule();
        let fresh = Arc::new(SharedProjections::new(Projections::new(rule)));
        // A forget committed while the fresh fold reads makes it stale in turn: its own flag.
        let opened_at = self.log.head().await?;
        let fresh_is_stale = Arc::new(AtomicBool::new(false));
        let runner = Runner::new(self.log.clone(), fresh.clone())
            .watching_forgets(opened_at, fresh_is_stale.clone())
            .not_counting_forgets();
        // Under a steady stream of writes the two may take a few rounds to meet.
        for _ in 0..REFOLD_ROUNDS {
            runner.catch_up().await?;
            let reached = fresh.position();
            let swapped = {
                let mut live = self.projections.write();
                let meet = reached == crate::projections::Fold::position(&*live);
                if meet {
                    *live = std::mem::replace(&mut *fresh.write(), Projections::new(rule));
                    // Under the write lock: the live runner marks a forget it folds after
                    // applying it, so a forget folded after this swap marks them again.
                    self.hold_forgotten_rows.store(fresh_is_stale.load(Ordering::SeqCst), Ordering::SeqCst);
                }
                meet
            };
            if swapped {
                let ms = started.elapsed().as_millis();
                tracing::info!(position = reached, ms, "the projections were folded afresh after a forget");
                return Ok(true);
            }
            // The live projections moved on meanwhile (or are behind): read on and look again.
            if reached > self.projections.position() {
                self.fold_to(reached).await?;
            }
        }
        tracing::warn!("the fresh fold could not meet the live projections; trying again later");
        Ok(false)
    }

    /// Reads what `find` finds in the projections; when it finds nothing,
    /// catches up with the log's head first (another server may have just
    /// written it) and reads again. For tokens a request carries in its body.
    pub async fn find_fresh<T>(&self, find: impl Fn(&Projections) -> Option<T>) -> Option<T> {
        if let Some(found) = find(&self.projections.read()) {
            return Some(found);
        }
        if let Err(error) = self.catch_up().await {
            tracing::warn!(%error, "could not catch up with the log for a lookup that found nothing");
            return None;
        }
        find(&self.projections.read())
    }

    /// Waits until the projections hold `position` (a position another
    /// server answered a write with); `Ok(false)` when the log holds no such
    /// position, so there is nothing to wait for.
    pub async fn reach(&self, position: i64) -> Result<bool, AppError> {
        if self.projections.position() >= position {
            return Ok(true);
        }
        // Committed before the client could name it, so within the head read now.
        let head = self.head_check.head_since(tokio::time::Instant::now(), &self.log).await?;
        if head < position {
            return Ok(false);
        }
        self.fold_to(position).await?;
        Ok(true)
    }

    /// Stops tailing and closes the store.
    pub async fn close(&self) {
        self.listener.stop().await;
        self.runner.stop().await;
        self.password_guard.store().close().await;
        self.log.close().await;
    }
}
