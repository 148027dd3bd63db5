//! The running ledger: the log, the command bus, the projections and their
//! runner, and the clock — what the HTTP API and the command line act on.
//! Every command goes through `Ledger`, which answers only once the
//! projections have folded the command's events (read-your-writes).

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use crate::access::AccessOptions;
use crate::background::BackgroundTask;
use crate::clock::SharedClock;
use crate::domain::canonical::Canonicalization;
use crate::domain::{
    AuditCommand, AuthError, CaKind, CertAuthorityCommand, CustomRoleCommand, CustomRoleId, HostId, InviteCommand,
    JoinHost, ProvisionTokenCommand, RecordCertificate, ServerConfigCommand, ServerSettings, SystemCommand,
    TokenCommand, UserCommand, UserName,
};
use crate::projections::checkpoint::{Checkpoint, digest_of};
use crate::projections::runner::RunnerError;
use crate::projections::{Projections, ReadModel, Runner};
use crate::store::{CommandBus, CommandError, EventLog, EventMetadata, StoreError, StoreOptions, StoredCheckpoint};

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Rejected(#[from] AuthError),
    #[error("the command kept conflicting with concurrent changes")]
    Conflict,
    #[error("the log failed: {0}")]
    Store(String),
    #[error("the projections did not reach position {0} in time")]
    Lagging(i64),
    #[error(transparent)]
    Open(#[from] StoreError),
    #[error(transparent)]
    Replay(#[from] RunnerError),
}

impl From<CommandError> for LedgerError {
    fn from(error: CommandError) -> Self {
        match error {
            CommandError::Rejected(e) => Self::Rejected(e),
            CommandError::Conflict => Self::Conflict,
            CommandError::Store(e) => Self::Store(e),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LedgerOptions {
    pub store_url: String,
    pub store: StoreOptions,
    pub canonicalization: Canonicalization,
    /// The settings a new log starts with.
    pub initial_settings: ServerSettings,
    /// How often the runner looks for commits made by other processes.
    pub poll: Duration,
    /// How long a command waits for the projections to fold it.
    pub settle_timeout: Duration,
    /// Serve test mode: a second, expiring log beside this one (see `test_mode`).
    pub test_mode: bool,
    /// The SSH side's settings: static join tokens, certificate lifetimes, the public URL.
    pub access: AccessOptions,
}

impl LedgerOptions {
    pub fn new(store_url: impl Into<String>) -> Self {
        Self {
            store_url: store_url.into(),
            store: StoreOptions::default(),
            canonicalization: Canonicalization::default(),
            initial_settings: ServerSettings::default(),
            poll: Duration::from_millis(250),
            settle_timeout: Duration::from_secs(10),
            test_mode: false,
            access: AccessOptions::default(),
        }
    }
}

/// The newest usable checkpoint for `rule`: made from this very log (its
/// chain value at the checkpoint's position matches) and readable. Anything
/// else is reported and ignored — the log is folded from the start instead.
pub async fn load_checkpoint(log: &EventLog, rule: Canonicalization) -> Option<Projections> {
    let stored = match log.latest_checkpoint(rule.name()).await {
        Ok(Some(stored)) => stored,
        Ok(None) => return None,
        Err(error) => {
            tracing::warn!(%error, "cannot read checkpoints; folding the whole log");
            return None;
        }
    };
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
    checkpoint: &Checkpoint,
    now: i64,
) -> Result<(String, usize), LedgerError> {
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
    log.put_checkpoint(&stored).await?;
    Ok((digest, bytes))
}

/// Waits up to `limit` for `model` to reach `position` (read-your-writes).
pub(crate) async fn settle<P>(
    model: &ReadModel<P>,
    position: Option<i64>,
    limit: Duration,
) -> Result<Option<i64>, LedgerError> {
    match position {
        Some(position) if !model.wait_for(position, limit).await => Err(LedgerError::Lagging(position)),
        _ => Ok(position),
    }
}

pub struct Ledger {
    pub log: EventLog,
    pub model: Arc<ReadModel>,
    /// The position of the checkpoint the projections started from (`None`: folded from the start).
    pub checkpoint: Option<i64>,
    bus: CommandBus,
    clock: SharedClock,
    runner: BackgroundTask,
    settle_timeout: Duration,
}

impl Ledger {
    /// Opens the log, folds it, starts tailing, and records the initial settings on a new log.
    pub async fn open(options: LedgerOptions, clock: SharedClock) -> Result<Self, LedgerError> {
        let log = EventLog::open(&options.store_url, options.store.clone(), clock.clone()).await?;
        let loaded = load_checkpoint(&log, options.canonicalization).await;
        let checkpoint = loaded.as_ref().map(|p| p.position);
        let model = Arc::new(ReadModel::new(loaded.unwrap_or_else(|| Projections::new(options.canonicalization))));
        let runner = Runner::new(log.clone(), model.clone());
        let folded = runner.catch_up().await?;
        tracing::info!(events = folded, position = model.position(), store = log.kind(), "projections caught up");
        let waker = runner.waker();
        let bus = CommandBus::new(&log, Arc::new(move |_| waker.notify_one()));
        let runner = BackgroundTask::new(runner.spawn(options.poll));
        let ledger = Self { log, model, checkpoint, bus, clock, runner, settle_timeout: options.settle_timeout };
        ledger
            .server_config(ServerConfigCommand::Initialize(options.initial_settings), &EventMetadata::actor("system"))
            .await?;
        Ok(ledger)
    }

    /// Now, in epoch milliseconds.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Waits for the projections to reach `position`.
    pub async fn settle(&self, position: Option<i64>) -> Result<Option<i64>, LedgerError> {
        settle(&self.model, position, self.settle_timeout).await
    }

    pub async fn user(
        &self,
        name: &UserName,
        command: UserCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.user(name, command, metadata).await?;
        self.settle(position).await
    }

    pub async fn token(
        &self,
        id: Uuid,
        command: TokenCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.token(id, command, metadata).await?;
        self.settle(position).await
    }

    pub async fn custom_role(
        &self,
        id: &CustomRoleId,
        command: CustomRoleCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.custom_role(id, command, metadata).await?;
        self.settle(position).await
    }

    pub async fn server_config(
        &self,
        command: ServerConfigCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.server_config(command, metadata).await?;
        self.settle(position).await
    }

    pub async fn system(&self, command: SystemCommand, metadata: &EventMetadata) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.system(command, metadata).await?;
        self.settle(position).await
    }

    pub async fn audit(
        &self,
        reader: &UserName,
        command: AuditCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.audit(reader, command, metadata).await?;
        self.settle(position).await
    }

    pub async fn cert_authority(
        &self,
        ca: CaKind,
        command: CertAuthorityCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.cert_authority(ca, command, metadata).await?;
        self.settle(position).await
    }

    pub async fn certificate(
        &self,
        serial: u64,
        command: RecordCertificate,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.certificate(serial, command, metadata).await?;
        self.settle(position).await
    }

    pub async fn provision_token(
        &self,
        id: Uuid,
        command: ProvisionTokenCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.provision_token(id, command, metadata).await?;
        self.settle(position).await
    }

    pub async fn host(
        &self,
        id: &HostId,
        command: JoinHost,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.host(id, command, metadata).await?;
        self.settle(position).await
    }

    pub async fn invite(
        &self,
        id: Uuid,
        command: InviteCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, LedgerError> {
        let position = self.bus.invite(id, command, metadata).await?;
        self.settle(position).await
    }

    /// Stops tailing and closes the store.
    pub async fn close(&self) {
        self.runner.stop().await;
        self.log.close().await;
    }
}
