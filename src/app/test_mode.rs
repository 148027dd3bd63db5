//! Test mode (contract §8): a second, fully separate event log for throw-away
//! test users, custom roles and tokens, with its own projections fed by the
//! same runner code. Nothing in it reaches the main log's projections, and
//! nothing of the main log reaches it.
//!
//! Every test record expires one hour after it was made. Reads check expiry
//! against the request's time; the sweeper then deletes expired rows for
//! real — the only deletion authledger ever performs, and only on this log.
//! A sweep first appends a marker (so the log's head, from which positions
//! continue, is never deleted), then deletes the expired aggregates' rows
//! below it. A clear is a marker too, followed by deleting every row below it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use std::borrow::Borrow;

use super::AppError;
use super::background::BackgroundTask;
use super::commands::CommandBus;
use super::ledger::{LedgerOptions, settle};
use super::tokens::{Minted, NewToken, mint};
use crate::clock::SharedClock;
use std::collections::{BTreeMap, BTreeSet};

use crate::domain::test_mode::{
    TEST_DATA_LIFETIME_MS, TestCustomRole, TestCustomRoleCommand, TestData, TestDataCommand, TestUser, TestUserCommand,
};
use crate::domain::{Addressed, AuthError, CustomRoleId, DisplayName, ErrorType, Role, Token, TokenCommand, UserName};
use crate::projections::test_mode::TestUserRecord;
use crate::projections::{Runner, SharedProjections, TestProjections};
use crate::projections::{TokenHash, TokenView};
use crate::store::{EventLog, EventMetadata, Purge, SecretsKey, Store, StoreError, StoreKind};
use uuid::Uuid;

/// How often the sweeper deletes expired test data by default.
pub const SWEEP_EVERY: Duration = Duration::from_secs(60);

/// Where the test-mode log of a main log lives: its own SQLite file beside the
/// main one (so the two never wait on each other's write lock), or its own
/// tables (prefix `testmode_`) in the same PostgreSQL database.
pub fn test_log_options(main: &LedgerOptions) -> LedgerOptions {
    let mut options = main.clone();
    options.store_url = StoreKind::beside(&main.store_url, "testmode");
    options.store.table_prefix = format!("{}testmode_", main.store.table_prefix);
    options.store.expiring = true;
    // Test mode keeps no secrets (its users have no passwords).
    options.store.secrets_key = SecretsKey::None;
    options
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Swept {
    /// Expired records (users, custom roles, tokens) dropped.
    pub records: usize,
    /// Rows deleted from the log.
    pub rows: u64,
}

pub struct TestLedger {
    pub log: EventLog,
    pub projections: Arc<SharedProjections<TestProjections>>,
    bus: CommandBus,
    clock: SharedClock,
    runner: BackgroundTask,
    sweeper: BackgroundTask,
    settle_timeout: Duration,
}

impl TestLedger {
    /// Opens the test-mode log for the main log at `main` and folds it.
    pub async fn open(main: &LedgerOptions, clock: SharedClock) -> Result<Arc<Self>, AppError> {
        let options = test_log_options(main);
        // Test mode keeps no secrets and no checkpoints: only its log is used.
        let log = Store::open(&options.store_url, options.store.clone(), clock.clone()).await?.log;
        let projections = Arc::new(SharedProjections::new(TestProjections::default()));
        let runner = Runner::new(log.clone(), projections.clone());
        let folded = runner.catch_up().await?;
        tracing::info!(events = folded, position = projections.position(), "test-mode projections caught up");
        let waker = runner.waker();
        let bus = CommandBus::with_deadline(&log, Arc::new(move |_| waker.notify_one()), options.command_deadline);
        let runner = BackgroundTask::new(runner.spawn(options.poll));
        Ok(Arc::new(Self {
            log,
            projections,
            bus,
            clock,
            runner,
            sweeper: BackgroundTask::default(),
            settle_timeout: options.settle_timeout,
        }))
    }

    /// Sweeps every `every` until closed.
    pub fn start_sweeper(self: &Arc<Self>, every: Duration) {
        let ledger: Weak<Self> = Arc::downgrade(self);
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                let Some(ledger) = ledger.upgrade() else {
                    return;
                };
                if let Err(error) = ledger.sweep().await {
                    tracing::error!(%error, "the test-mode sweeper failed; trying again later");
                }
            }
        });
        self.sweeper.replace(task);
    }

    /// Now, in epoch milliseconds (the injected clock).
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    async fn settle(&self, position: Option<i64>) -> Result<Option<i64>, AppError> {
        settle(&self.projections, position, self.settle_timeout).await
    }

    /// The one command path, on the test-mode log (see [`crate::app::ledger::Ledger::execute`]);
    /// test-mode commands are anonymous.
    pub async fn execute<A>(&self, id: impl Borrow<A::Id>, command: A::Command) -> Result<Option<i64>, AppError>
    where
        A: Addressed,
        A::Command: Clone,
    {
        let position = self.bus.execute::<A>(id.borrow(), command, &metadata()).await?;
        self.settle(position).await
    }

    /// Creates a test user (which expires an hour from now, as everything here).
    pub async fn create_user(&self, name: &UserName, display: DisplayName) -> Result<(), AppError> {
        let command = TestUserCommand::Create { user: name.clone(), display, anon_id: Uuid::new_v4(), now: self.now() };
        self.execute::<TestUser>(name, command).await?;
        Ok(())
    }

    /// The valid test token with this hash, now.
    pub fn token(&self, hash: &TokenHash) -> Option<TokenView> {
        self.projections.read().tokens.find(hash, self.now())
    }

    /// The live test user named `name`.
    pub fn user(&self, name: &UserName) -> Option<TestUserRecord> {
        self.projections.read().user(name, self.now()).cloned()
    }

    /// The live test user named `name` with the custom roles they hold that
    /// still exist.
    pub fn user_with_custom_roles(&self, name: &UserName) -> Option<(TestUserRecord, Vec<CustomRoleId>)> {
        let now = self.now();
        let projections = self.projections.read();
        let user = projections.user(name, now)?;
        let custom = projections.custom_roles_of(user, now).into_iter().cloned().collect();
        Some((user.clone(), custom))
    }

    /// The display names of those of `names` who are live test users.
    pub fn display_names(&self, names: &[UserName]) -> BTreeMap<String, String> {
        let now = self.now();
        let projections = self.projections.read();
        names
            .iter()
            .filter_map(|name| projections.user(name, now))
            .map(|u| (u.name.to_string(), u.display.to_string()))
            .collect()
    }

    /// The live test custom roles: id → description.
    pub fn custom_roles(&self) -> BTreeMap<CustomRoleId, String> {
        let now = self.now();
        self.projections.read().custom_roles(now).into_iter().map(|(id, desc)| (id.clone(), desc.to_owned())).collect()
    }

    /// Creates the test custom role `id`, or sets its description.
    pub async fn set_custom_role(&self, id: &CustomRoleId, description: String) -> Result<(), AppError> {
        self.execute::<TestCustomRole>(id, TestCustomRoleCommand::Set { id: id.clone(), description, now: self.now() })
            .await?;
        Ok(())
    }

    /// Replaces a test user's roles: `custom` names live test custom roles
    /// (`No such role` for the first that is none).
    pub async fn replace_roles(
        &self,
        user: &UserName,
        roles: BTreeSet<Role>,
        custom: &[String],
    ) -> Result<(), AppError> {
        let now = self.now();
        let mut custom_roles = BTreeSet::new();
        {
            let projections = self.projections.read();
            for id in custom {
                let known = CustomRoleId::parse(Some(id)).ok().filter(|id| projections.has_custom_role(id, now));
                match known {
                    Some(id) => custom_roles.insert(id),
                    None => return Err(AuthError::new(ErrorType::NoSuchRole, id.as_str()).into()),
                };
            }
        }
        let command = TestUserCommand::ReplaceRoles { user: user.clone(), roles, custom_roles, now };
        self.execute::<TestUser>(user, command).await?;
        Ok(())
    }

    /// Creates a token for a live test user: its value (shown once) and its view.
    pub async fn create_token(&self, grant: NewToken) -> Result<(String, TokenView), AppError> {
        let now = self.now();
        if self.projections.read().user(&grant.user, now).is_none() {
            return Err(AuthError::no_such_user(grant.user.as_str()).into());
        }
        let Minted { value, issued, view } = mint(grant, now, TEST_DATA_LIFETIME_MS);
        self.execute::<Token>(view.id, TokenCommand::Issue(Box::new(issued))).await?;
        Ok((value, view))
    }

    /// Forgets every test record: a clear marker, then the rows below it are deleted.
    pub async fn clear(&self) -> Result<(), AppError> {
        let position = self.execute::<TestData>((), TestDataCommand::Clear { now: self.now() }).await?;
        let Some(position) = position else {
            return Ok(());
        };
        let purge = Purge { below: position, everything_below: Some(position), aggregates: Vec::new() };
        self.log.purge(&purge).await?;
        Ok(())
    }

    /// Drops the test user named `name` (live, or expired and not yet swept)
    /// and every test token it held: a drop marker that names no one, then
    /// every row below it of their stream and of tokens issued to them is
    /// deleted (read from the log, so rows committed while the marker was
    /// written go too). Returns how many rows went (none: no such test user).
    pub async fn forget_user(&self, name: &UserName) -> Result<u64, AppError> {
        let Some(anon_id) = self.projections.read().anon_id_of(name) else {
            return Ok(0);
        };
        let Some(marker) = self.execute::<TestData>((), TestDataCommand::DropUser { anon_id }).await? else {
            return Ok(0);
        };
        let mut aggregates = BTreeSet::new();
        self.log
            .scan(0, |rows| {
                for row in rows.iter().filter(|r| r.position < marker) {
                    let theirs = match row.aggregate_type.as_str() {
                        "TestUser" => row.aggregate_id == name.as_str(),
                        "Token" => {
                            row.payload.contains(name.as_str())
                                && serde_json::from_str::<serde_json::Value>(&row.payload)
                                    .ok()
                                    .and_then(|p| p.pointer("/TokenIssued/user").cloned())
                                    .is_some_and(|user| user == name.as_str())
                        }
                        _ => false,
                    };
                    if theirs {
                        aggregates.insert((row.aggregate_type.clone(), row.aggregate_id.clone(), i64::MAX));
                    }
                }
                Ok::<bool, StoreError>(rows.last().is_some_and(|r| r.position < marker))
            })
            .await?;
        let purge = Purge { below: marker, everything_below: None, aggregates: aggregates.into_iter().collect() };
        let rows = self.log.purge(&purge).await?;
        // PostgreSQL keeps deleted rows' bytes until a vacuum writes the table anew.
        if let Err(error) = self.log.scrub(marker).await {
            tracing::warn!(%error, "cannot vacuum the test-mode tables after dropping a test user");
        }
        Ok(rows)
    }

    /// Deletes what has expired by now: a sweep marker (which drops the same
    /// records from the projections), then the expired aggregates' rows, older
    /// markers, and anything an interrupted clear left behind.
    pub async fn sweep(&self) -> Result<Swept, AppError> {
        let now = self.now();
        let (expired, cleared_below) = {
            let projections = self.projections.read();
            (projections.expired(now), projections.cleared_below())
        };
        if expired.is_empty() {
            return Ok(Swept::default());
        }
        let Some(marker) = self.execute::<TestData>((), TestDataCommand::Sweep { before: now }).await? else {
            return Ok(Swept::default());
        };
        let mut aggregates: Vec<(String, String, i64)> =
            expired.iter().map(|e| (e.aggregate_type.to_owned(), e.aggregate_id.clone(), e.through_sequence)).collect();
        aggregates.push(("TestData".to_owned(), crate::domain::test_mode::TEST_DATA_ID.to_owned(), i64::MAX));
        let purge = Purge { below: marker, everything_below: cleared_below, aggregates };
        let rows = self.log.purge(&purge).await?;
        tracing::info!(records = expired.len(), rows, "swept expired test-mode data");
        Ok(Swept { records: expired.len(), rows })
    }

    /// Stops sweeping and tailing and closes the log.
    pub async fn close(&self) {
        self.sweeper.stop().await;
        self.runner.stop().await;
        self.log.close().await;
    }
}

/// Test-mode commands are anonymous (the endpoints take no credentials).
fn metadata() -> EventMetadata {
    EventMetadata::actor("testmode")
}
