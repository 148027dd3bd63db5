//! The write side's entry point: one cqrs-es framework per aggregate type over
//! the log, bounded retries of commands that lose an optimistic race, and the
//! position each command committed (so callers can wait for projections to
//! reach it before answering).

use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{Aggregate, AggregateError, CqrsFramework};
use rand::Rng;
use uuid::Uuid;

use super::repository::COMMITTED;
use super::{EventLog, EventMetadata, LogRepository};
use crate::domain::test_mode::{
    TEST_DATA_ID, TestCustomRole, TestCustomRoleCommand, TestData, TestDataCommand, TestUser, TestUserCommand,
};
use crate::domain::{
    Audit, AuditCommand, AuthError, CaKind, CertAuthority, CertAuthorityCommand, Certificate, CustomRole,
    CustomRoleCommand, CustomRoleId, Host, HostId, Invite, InviteCommand, JoinHost, ProvisionToken,
    ProvisionTokenCommand, RecordCertificate, ServerConfig, ServerConfigCommand, System, SystemCommand, Token,
    TokenCommand, User, UserCommand, UserName, server_config::SERVER_CONFIG_ID, system::SYSTEM_ID, upcasters,
};

/// How many times a command that lost an optimistic race is retried on fresh state.
const MAX_ATTEMPTS: u32 = 10;

type Framework<A> = CqrsFramework<A, PersistedEventStore<LogRepository, A>>;

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The aggregate refused the command (a business rule).
    #[error(transparent)]
    Rejected(#[from] AuthError),
    /// Still losing the optimistic race after every retry.
    #[error("the command kept conflicting with concurrent changes")]
    Conflict,
    #[error("the log failed: {0}")]
    Store(String),
}

pub struct CommandBus {
    users: Framework<User>,
    tokens: Framework<Token>,
    custom_roles: Framework<CustomRole>,
    server_config: Framework<ServerConfig>,
    system: Framework<System>,
    audit: Framework<Audit>,
    cert_authorities: Framework<CertAuthority>,
    certificates: Framework<Certificate>,
    provision_tokens: Framework<ProvisionToken>,
    invites: Framework<Invite>,
    hosts: Framework<Host>,
    on_commit: Arc<dyn Fn(i64) + Send + Sync>,
}

fn framework<A: Aggregate<Services = ()>>(log: &EventLog) -> Framework<A> {
    let store = PersistedEventStore::new_event_store(LogRepository::new(log.clone())).with_upcasters(upcasters());
    CqrsFramework::new(store, Vec::new(), ())
}

impl CommandBus {
    /// `on_commit` is told the position of every commit (the projection runner's wake-up).
    pub fn new(log: &EventLog, on_commit: Arc<dyn Fn(i64) + Send + Sync>) -> Self {
        Self {
            users: framework(log),
            tokens: framework(log),
            custom_roles: framework(log),
            server_config: framework(log),
            system: framework(log),
            audit: framework(log),
            cert_authorities: framework(log),
            certificates: framework(log),
            provision_tokens: framework(log),
            invites: framework(log),
            hosts: framework(log),
            on_commit,
        }
    }

    pub async fn cert_authority(
        &self,
        ca: CaKind,
        command: CertAuthorityCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.cert_authorities, ca.id(), command, metadata, &self.on_commit).await
    }

    /// Records a certificate under its serial (refused when the serial is taken).
    pub async fn certificate(
        &self,
        serial: u64,
        command: RecordCertificate,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.certificates, &serial.to_string(), command, metadata, &self.on_commit).await
    }

    pub async fn provision_token(
        &self,
        id: Uuid,
        command: ProvisionTokenCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.provision_tokens, &id.to_string(), command, metadata, &self.on_commit).await
    }

    pub async fn host(
        &self,
        id: &HostId,
        command: JoinHost,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.hosts, id.as_str(), command, metadata, &self.on_commit).await
    }

    pub async fn invite(
        &self,
        id: Uuid,
        command: InviteCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.invites, &id.to_string(), command, metadata, &self.on_commit).await
    }

    pub async fn user(
        &self,
        name: &UserName,
        command: UserCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.users, name.as_str(), command, metadata, &self.on_commit).await
    }

    pub async fn token(
        &self,
        id: Uuid,
        command: TokenCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.tokens, &id.to_string(), command, metadata, &self.on_commit).await
    }

    pub async fn custom_role(
        &self,
        id: &CustomRoleId,
        command: CustomRoleCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.custom_roles, id.as_str(), command, metadata, &self.on_commit).await
    }

    pub async fn server_config(
        &self,
        command: ServerConfigCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.server_config, SERVER_CONFIG_ID, command, metadata, &self.on_commit).await
    }

    pub async fn system(&self, command: SystemCommand, metadata: &EventMetadata) -> Result<Option<i64>, CommandError> {
        execute(&self.system, SYSTEM_ID, command, metadata, &self.on_commit).await
    }

    /// Records a read by `reader` (in the reader's own `Audit` aggregate).
    pub async fn audit(
        &self,
        reader: &UserName,
        command: AuditCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.audit, reader.as_str(), command, metadata, &self.on_commit).await
    }
}

/// The write side of the test-mode log: test users, test custom roles, test
/// tokens (the ordinary `Token` aggregate) and the clear/sweep markers.
pub struct TestCommandBus {
    users: Framework<TestUser>,
    tokens: Framework<Token>,
    custom_roles: Framework<TestCustomRole>,
    data: Framework<TestData>,
    on_commit: Arc<dyn Fn(i64) + Send + Sync>,
}

impl TestCommandBus {
    pub fn new(log: &EventLog, on_commit: Arc<dyn Fn(i64) + Send + Sync>) -> Self {
        Self {
            users: framework(log),
            tokens: framework(log),
            custom_roles: framework(log),
            data: framework(log),
            on_commit,
        }
    }

    pub async fn user(
        &self,
        name: &UserName,
        command: TestUserCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.users, name.as_str(), command, metadata, &self.on_commit).await
    }

    pub async fn token(
        &self,
        id: Uuid,
        command: TokenCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.tokens, &id.to_string(), command, metadata, &self.on_commit).await
    }

    pub async fn custom_role(
        &self,
        id: &CustomRoleId,
        command: TestCustomRoleCommand,
        metadata: &EventMetadata,
    ) -> Result<Option<i64>, CommandError> {
        execute(&self.custom_roles, id.as_str(), command, metadata, &self.on_commit).await
    }

    pub async fn data(&self, command: TestDataCommand, metadata: &EventMetadata) -> Result<Option<i64>, CommandError> {
        execute(&self.data, TEST_DATA_ID, command, metadata, &self.on_commit).await
    }
}

/// Runs `command`, retrying on optimistic conflicts, and tells `on_commit`
/// the position committed. `Ok(None)` when the command decided that nothing
/// needed recording.
async fn execute<A>(
    framework: &Framework<A>,
    id: &str,
    command: A::Command,
    metadata: &EventMetadata,
    on_commit: &Arc<dyn Fn(i64) + Send + Sync>,
) -> Result<Option<i64>, CommandError>
where
    A: Aggregate<Error = AuthError>,
    A::Command: Clone,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let run = framework.execute_with_metadata(id, command.clone(), metadata.clone().into_map());
        let (result, position) = COMMITTED
            .scope(Cell::new(None), async {
                let result = run.await;
                (result, COMMITTED.with(Cell::get))
            })
            .await;
        match result {
            Ok(()) => {
                if let Some(position) = position {
                    (on_commit)(position);
                }
                return Ok(position);
            }
            Err(AggregateError::AggregateConflict) if attempt < MAX_ATTEMPTS => {
                let ceiling = 1u64 << attempt.min(6);
                let pause = rand::thread_rng().gen_range(0..=ceiling);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            Err(AggregateError::AggregateConflict) => return Err(CommandError::Conflict),
            Err(AggregateError::UserError(e)) => return Err(CommandError::Rejected(e)),
            Err(other) => return Err(CommandError::Store(other.to_string())),
        }
    }
}
