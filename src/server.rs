//! Starting and stopping the HTTP server on an opened ledger.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::ServiceExt;
use axum::extract::Request;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::Layer;
use tower_http::normalize_path::NormalizePathLayer;

use crate::api::{self, AppState, ServiceInfo, Shared};
use crate::app::AppError;
use crate::app::background::BackgroundTask;
use crate::app::duties::{Checkpointer, Duties};
use crate::app::forgetting::{Forgetter, Journal};
use crate::app::ledger::{Ledger, LedgerOptions};
use crate::app::provider_flows::{self, ProviderFlows};
use crate::app::providers::{Environments, ProviderSettings, Providers};
use crate::app::second_factor::forget_orphans;
use crate::app::ssh::authority::ensure_authorities;
use crate::app::ssh::{SshOptions, SshService};
use crate::app::test_mode::{SWEEP_EVERY, TestLedger};
use crate::app::witness::{Standing, Witness};
use crate::clock::SharedClock;
use crate::store::flows::{FlowLimits, Flows};
use crate::store::forget_journal::journal_path;
use crate::store::witness::witness_path;
use crate::telemetry;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Ledger(#[from] AppError),
    #[error("cannot create the certificate authorities: {0}")]
    Authorities(AppError),
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("cannot set up the identity providers: {0}")]
    Providers(String),
}

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    pub ledger: Arc<Ledger>,
    /// The test-mode log, when test mode is on.
    pub test_mode: Option<Arc<TestLedger>>,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
    /// Forgets orphaned second-factor secrets now and then.
    sweeper: BackgroundTask,
    /// The providers and the in-flight store of their flows.
    pub provider_flows: Arc<ProviderFlows>,
    /// Sweeps expired flows.
    flow_sweeper: BackgroundTask,
    throttle_sweeper: BackgroundTask,
    /// Signs the log's head now and then, and at shutdown.
    pub witness: Arc<Witness>,
    witnessing: BackgroundTask,
    /// Whether this server does the duties of all that share the log.
    pub duties: Arc<Duties>,
    /// Writes checkpoints of the projections now and then, and at shutdown.
    checkpointer: Arc<Checkpointer>,
    checkpointing: BackgroundTask,
    /// Keeps the forget journal up with the forgets other servers write.
    journaling: BackgroundTask,
}

/// How often orphaned second-factor secrets are looked for.
const SECRET_SWEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Drops expired flows every minute (at start too), when this server holds the duty lease.
fn start_flow_sweeper(provider_flows: Arc<ProviderFlows>, ledger: Arc<Ledger>, duties: Arc<Duties>) -> BackgroundTask {
    BackgroundTask::new(tokio::spawn(async move {
        loop {
            if duties.leading() {
                let swept = provider_flows.sweep(ledger.now()).await;
                record_sweep("signins", &swept);
                match swept {
                    Ok(0) => {}
                    Ok(swept) => tracing::debug!(swept, "swept expired flows"),
                    Err(error) => tracing::warn!(%error, "cannot sweep expired flows"),
                }
            }
            tokio::time::sleep(provider_flows::SWEEP_EVERY).await;
        }
    }))
}

/// Follows the forgets this server folds (those it writes itself are dealt
/// with at once), looking every two seconds whether any came: adds them to
/// its journal, and folds its projections afresh so that nothing in memory
/// names the person.
fn start_journal(journal: Arc<Journal>, ledger: Arc<Ledger>) -> BackgroundTask {
    BackgroundTask::new(tokio::spawn(async move {
        let mut seen = ledger.log.forgets_seen();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            if let Err(error) = ledger.refold().await {
                tracing::warn!(%error, "cannot fold the projections afresh after a forget; trying again");
            }
            let now = ledger.log.forgets_seen();
            if now != seen {
                match journal.keep_up(&ledger).await {
                    Ok(_) => seen = now,
                    Err(error) => tracing::warn!(%error, "cannot keep the forget journal up"),
                }
            }
        }
    }))
}

/// Forgets quiet rows of the throttle store every minute, when this server holds the duty lease.
fn start_throttle_sweeper(ledger: Arc<Ledger>, duties: Arc<Duties>) -> BackgroundTask {
    BackgroundTask::new(tokio::spawn(async move {
        loop {
            if duties.leading() {
                let swept = ledger.password_guard.sweep(ledger.now()).await;
                record_sweep("throttles", &swept);
                if let Err(error) = swept {
                    tracing::warn!(%error, "cannot sweep the throttle store");
                }
            }
            tokio::time::sleep(provider_flows::SWEEP_EVERY).await;
        }
    }))
}

/// Signs the log's head whenever enough was appended (see `app::witness`),
/// when this server holds the duty lease; while writes are refused, looks
/// again every two seconds whether an operator made the witness hold.
fn start_witness(witness: Arc<Witness>, ledger: Arc<Ledger>, duties: Arc<Duties>) -> BackgroundTask {
    BackgroundTask::new(tokio::spawn(async move {
        let mut last = std::time::Instant::now();
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if ledger.writes_refused().is_some() {
                if last.elapsed() >= std::time::Duration::from_secs(2) {
                    last = std::time::Instant::now();
                    stand_by_the_witness(&witness, &ledger).await;
                }
                continue;
            }
            if duties.leading() && witness.due(&ledger, last.elapsed()) {
                match witness.sign(&ledger).await {
                    Ok(_) => last = std::time::Instant::now(),
                    Err(error) => tracing::warn!(%error, "cannot sign the log's head"),
                }
            }
        }
    }))
}

/// Checks the witness and refuses writes while it does not hold (allowing
/// them again once it does); a witness only starting signs its first head at
/// once, so the log records from its start that it is witnessed.
async fn stand_by_the_witness(witness: &Witness, ledger: &Ledger) {
    match witness.check(ledger).await {
        Ok(Standing::Fresh) => {
            ledger.allow_writes();
            if let Err(error) = witness.sign(ledger).await {
                tracing::warn!(%error, "cannot start the witness file");
            }
        }
        Ok(Standing::Broken { found, .. }) => {
            if ledger.writes_refused().is_none() {
                tracing::error!(
                    %found,
                    "the witness does not hold the log: writes are refused until an operator restores the witness \
                     file or the log, or runs `authledger witness accept --reason ...`"
                );
            }
            ledger.refuse_writes(found);
        }
        Ok(_) => {
            if ledger.writes_refused().is_some() {
                tracing::info!("the witness holds the log again: writes are accepted");
            }
            ledger.allow_writes();
        }
        Err(error) => tracing::warn!(%error, "cannot check the witness"),
    }
}

/// Counts a sweep and what it removed.
fn record_sweep<N: Copy + TryInto<u64>, E>(sweep: &'static str, outcome: &Result<N, E>) {
    metrics::counter!(telemetry::SWEEPS, "sweep" => sweep).increment(1);
    if let Ok(removed) = outcome {
        metrics::counter!(telemetry::SWEPT, "sweep" => sweep).increment((*removed).try_into().unwrap_or(0));
    }
}

/// Forgets orphaned second-factor secrets every ten minutes, when this server holds the duty lease.
fn start_secret_sweeper(ledger: Arc<Ledger>, duties: Arc<Duties>) -> BackgroundTask {
    BackgroundTask::new(tokio::spawn(async move {
        loop {
            if duties.leading() {
                let forgotten = forget_orphans(&ledger).await;
                record_sweep("secrets", &forgotten);
                match forgotten {
                    Ok(0) => {}
                    Ok(forgotten) => tracing::info!(forgotten, "forgot orphaned second-factor secrets"),
                    Err(error) => tracing::warn!(%error, "cannot sweep orphaned second-factor secrets"),
                }
            }
            tokio::time::sleep(SECRET_SWEEP_EVERY).await;
        }
    }))
}

/// Writes a checkpoint whenever enough was folded (see `app::duties`), when this server holds the duty lease.
fn start_checkpointer(checkpointer: Arc<Checkpointer>, ledger: Arc<Ledger>, duties: Arc<Duties>) -> BackgroundTask {
    BackgroundTask::new(tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            if duties.leading()
                && checkpointer.due(&ledger)
                && let Err(error) = checkpointer.write(&ledger).await
            {
                tracing::warn!(%error, "cannot write a checkpoint");
            }
        }
    }))
}

/// Events between two checkpoints a server writes, by default.
pub const CHECKPOINT_EVERY: i64 = 100_000;

/// What a server runs with: its ledger's options, and everything around
/// the ledger that `Ledger::open` does not read.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub ledger: LedgerOptions,
    /// The service's public base URL: the origin the cross-site check
    /// compares with, whether cookies are `Secure`, where identity providers
    /// send people back and where invitation links point. The server's own
    /// address when unset.
    pub public_url: Option<String>,
    /// Serve test mode: a second, expiring log beside this one (see `app::test_mode`).
    pub test_mode: bool,
    /// The SSH side's settings: static provisioning tokens, certificate lifetimes, the cluster.
    pub ssh: SshOptions,
    /// The identity providers of the configuration.
    pub providers: Vec<ProviderSettings>,
    /// The alternate environments of the configuration.
    pub environments: Environments,
    /// Where the witness keeps the newest signed head (default: beside an SQLite log; none for PostgreSQL).
    pub witness_file: Option<std::path::PathBuf>,
    /// A server writes a checkpoint of its projections every this many
    /// events, and at shutdown (0: never; `replay rebuild` still can).
    pub checkpoint_every: i64,
    /// The proxies whose forwarded headers name the client (default: loopback).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The bounds of the in-flight store of flows (see `store::flows`).
    pub flow_limits: FlowLimits,
}

impl ServerOptions {
    /// Defaults around `ledger`: no public URL (the server's address), test
    /// mode off, no providers, loopback the only trusted proxy.
    pub fn new(ledger: LedgerOptions) -> Self {
        Self {
            ledger,
            public_url: None,
            test_mode: false,
            ssh: SshOptions::default(),
            providers: Vec::new(),
            environments: Environments::default(),
            witness_file: None,
            checkpoint_every: CHECKPOINT_EVERY,
            trusted_proxies: crate::app::client_address::loopback(),
            flow_limits: FlowLimits::default(),
        }
    }
}

impl Server {
    /// Opens the ledger at `options` and serves it on `listen` (port 0 picks a free port).
    pub async fn start(options: ServerOptions, clock: SharedClock, listen: &str) -> Result<Self, StartError> {
        let listener =
            TcpListener::bind(listen).await.map_err(|source| StartError::Listen { addr: listen.to_owned(), source })?;
        Self::start_on(options, clock, listener).await
    }

    /// Opens the ledger at `options` and serves it on `listener` (bound
    /// already, so a caller can tell others the address first — an identity
    /// provider the redirect URIs).
    pub async fn start_on(
        options: ServerOptions,
        clock: SharedClock,
        listener: TcpListener,
    ) -> Result<Self, StartError> {
        let addr = listener.local_addr().map_err(|source| StartError::Listen { addr: "?".to_owned(), source })?;
        let ServerOptions {
            ledger: options,
            public_url,
            test_mode,
            ssh: ssh_options,
            providers,
            environments,
            witness_file,
            checkpoint_every,
            trusted_proxies,
            flow_limits,
        } = options;
        let public_url = public_url.unwrap_or_else(|| format!("http://{addr}"));
        let test_mode = match test_mode {
            true => {
                let test_mode = TestLedger::open(&options, clock.clone()).await?;
                test_mode.start_sweeper(SWEEP_EVERY);
                Some(test_mode)
            }
            false => None,
        };
        // The in-flight store exists only where a flow can start.
        let flows = match providers.is_empty() {
            true => None,
            false => Some(
                Flows::open(&options.store_url, &options.store).await.map_err(AppError::from)?.with_limits(flow_limits),
            ),
        };
        let providers = Providers::new(providers, environments).map_err(|e| StartError::Providers(e.to_string()))?;
        let witness_file = witness_path(&options.store_url, witness_file.as_deref());
        if witness_file.is_none() {
            tracing::warn!("no witness_file: signed heads are served but not kept outside the database");
        }
        let journal = options.store.secrets_key.path(&options.store_url).map_err(AppError::from)?;
        let journal = Arc::new(Journal::open(journal.as_deref().map(journal_path))?);
        telemetry::install();
        let ledger = Arc::new(Ledger::open(options, clock).await?);
        let duties = Arc::new(Duties::start(ledger.log.clone()).await);
        let checkpointer = Arc::new(Checkpointer::new(checkpoint_every, ledger.checkpoint.unwrap_or(0)));
        ensure_authorities(&ledger).await.map_err(StartError::Authorities)?;
        let witness = Arc::new(Witness::open(&ledger, witness_file).await?);
        stand_by_the_witness(&witness, &ledger).await;
        let info = ServiceInfo { git_commit: env!("AUTHLEDGER_GIT_COMMIT").to_owned() };
        let ssh = Arc::new(SshService::new(ssh_options));
        let provider_flows = Arc::new(ProviderFlows::new(providers, flows, public_url.clone()));
        // A log restored from before a forget the journal keeps forgets the person again before it serves.
        let forgetter = Forgetter {
            ledger: &ledger,
            witness: &witness,
            flows: &provider_flows,
            journal: &journal,
            test_mode: test_mode.as_deref(),
        };
        forgetter.reapply().await?;
        journal.keep_up(&ledger).await?;
        let state = AppState::new(Shared {
            ledger: ledger.clone(),
            test_mode: test_mode.clone(),
            info: Arc::new(info),
            public_url: Arc::from(public_url.trim_end_matches('/')),
            ssh,
            provider_flows: provider_flows.clone(),
            witness: witness.clone(),
            duties: duties.clone(),
            trusted_proxies: Arc::new(crate::app::client_address::TrustedProxies::new(trusted_proxies)),
            forget_journal: journal.clone(),
        });
        // Every path also answers with one trailing slash (contract §1).
        let app = NormalizePathLayer::trim_trailing_slash().layer(api::router(state));
        let (shutdown, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, ServiceExt::<Request>::into_make_service_with_connect_info::<SocketAddr>(app))
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        let sweeper = start_secret_sweeper(ledger.clone(), duties.clone());
        let flow_sweeper = start_flow_sweeper(provider_flows.clone(), ledger.clone(), duties.clone());
        let throttle_sweeper = start_throttle_sweeper(ledger.clone(), duties.clone());
        let witnessing = start_witness(witness.clone(), ledger.clone(), duties.clone());
        let checkpointing = start_checkpointer(checkpointer.clone(), ledger.clone(), duties.clone());
        let journaling = start_journal(journal, ledger.clone());
        let discovering = provider_flows.clone();
        tokio::spawn(async move { discovering.discover().await });
        Ok(Self {
            addr,
            ledger,
            test_mode,
            shutdown,
            task,
            sweeper,
            provider_flows,
            flow_sweeper,
            throttle_sweeper,
            witness,
            witnessing,
            duties,
            checkpointer,
            checkpointing,
            journaling,
        })
    }

    /// Serves until the process is told to stop (Ctrl-C or SIGTERM).
    pub async fn run_until_signal(self) -> std::io::Result<()> {
        shutdown_signal().await;
        tracing::info!("shutting down");
        self.stop().await
    }

    /// Stops accepting requests, finishes those in flight, closes the store.
    pub async fn stop(self) -> std::io::Result<()> {
        self.sweeper.stop().await;
        self.flow_sweeper.stop().await;
        self.throttle_sweeper.stop().await;
        let _ = self.shutdown.send(());
        let result = self.task.await.unwrap_or_else(|e| Err(std::io::Error::other(e)));
        self.witnessing.stop().await;
        self.checkpointing.stop().await;
        self.journaling.stop().await;
        if self.duties.leading() && self.ledger.writes_refused().is_none() {
            // The last head, signed at shutdown, and the state a restart starts from.
            if let Err(error) = self.witness.sign(&self.ledger).await {
                tracing::warn!(%error, "cannot sign the log's head at shutdown");
            }
            if self.checkpointer.enabled()
                && let Err(error) = self.checkpointer.write(&self.ledger).await
            {
                tracing::warn!(%error, "cannot write a checkpoint at shutdown");
            }
        }
        self.duties.stop().await;
        self.ledger.close().await;
        self.provider_flows.close().await;
        if let Some(test_mode) = &self.test_mode {
            test_mode.close().await;
        }
        result
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
