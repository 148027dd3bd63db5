//! The read side: in-memory projections folded from the log in position
//! order, by one runner. A projection is a pure fold — no I/O, no clock — so
//! rebuilding it from the log gives exactly the live state. All projections
//! sit behind one lock and advance together, so a reader sees them at one
//! position.

pub mod access;
pub mod checkpoint;
pub mod runner;
pub mod test_mode;
pub mod token_index;
pub mod user_directory;

use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use tokio::sync::watch;
use uuid::Uuid;

use crate::domain::canonical::Canonicalization;
use crate::domain::{
    ForgottenEvent, HostId, LedgerEvent, LogEvent, PolicyEvent, PolicyId, ServerConfigEvent, ServerSettings,
    SystemEvent, TokenEvent, UserEvent, UserName,
};

pub use access::Access;
pub use runner::Runner;
pub use test_mode::TestProjections;
pub use token_index::{TokenHash, TokenIndex, TokenView, hash_token};
pub use user_directory::{SearchSpec, UserDirectory, UserRecord};

/// A set of projections folded from one log: a pure function of the events,
/// in position order.
pub trait Fold: Send + Sync + 'static {
    type Event: LogEvent + Send + Sync;

    /// Folds one event. `recorded_at` is the log's time for the event;
    /// `sequence` its number within its aggregate.
    fn apply(&mut self, position: i64, recorded_at: i64, aggregate_id: &str, sequence: i64, event: &Self::Event);

    /// The position of the last event folded in (0 when none; a restored checkpoint's otherwise).
    fn position(&self) -> i64;
}

/// Every projection of the main log, at one log position.
pub struct Projections {
    pub tokens: TokenIndex,
    pub users: UserDirectory,
    pub config: ServerSettings,
    /// Certificate authorities, provisioning tokens, invitations, hosts and certificates.
    pub access: Access,
    /// The position of the last event folded in.
    pub position: i64,
}

impl Projections {
    pub fn new(rule: Canonicalization) -> Self {
        Self {
            tokens: TokenIndex::default(),
            users: UserDirectory::new(rule),
            config: ServerSettings::default(),
            access: Access::default(),
            position: 0,
        }
    }
}

impl Fold for Projections {
    type Event = LedgerEvent;

    fn position(&self) -> i64 {
        self.position
    }

    fn apply(&mut self, position: i64, recorded_at: i64, aggregate_id: &str, _sequence: i64, event: &LedgerEvent) {
        self.tokens.sweep_expired(recorded_at);
        self.access.sweep_expired(recorded_at);
        match event {
            LedgerEvent::User(event) => {
                let name = UserName::from_log(aggregate_id.to_owned());
                self.users.apply_user(position, &name, event);
                match event {
                    UserEvent::UserDisabled { .. } => {
                        self.tokens.revoke_user(&name);
                        self.tokens.set_disabled(&name, true);
                    }
                    UserEvent::UserEnabled { .. } => {
                        // Tokens issued while disabled (a race with the disable) stay invalid.
                        self.tokens.revoke_user(&name);
                        self.tokens.set_disabled(&name, false);
                    }
                    UserEvent::UserTokensRevoked { .. } => self.tokens.revoke_user(&name),
                    UserEvent::UserImported(account) if account.disabled() => self.tokens.set_disabled(&name, true),
                    _ => {}
                }
            }
            // A token for no account is not indexed: one issued to a forgotten person
            // in the moment before this server folded the forget must not serve
            // whoever takes the name next.
            LedgerEvent::Token(TokenEvent::TokenIssued(grant)) if self.users.get(&grant.user).is_none() => {
                tracing::warn!(position, "a token for an account the directory does not hold; not indexed")
            }
            LedgerEvent::Token(TokenEvent::TokenIssued(grant)) => match Uuid::parse_str(aggregate_id) {
                Ok(id) => self.tokens.issue(id, grant),
                Err(_) => tracing::error!(position, "token event with a malformed aggregate id; not indexed"),
            },
            LedgerEvent::Token(TokenEvent::TokenRevoked(revoked)) => self.tokens.revoke(&revoked.token_hash),
            LedgerEvent::CustomRole(event) => self.users.apply_custom_role(event),
            LedgerEvent::ServerConfig(ServerConfigEvent::ServerConfigInitialized { settings }) => {
                self.config = settings.clone()
            }
            LedgerEvent::ServerConfig(ServerConfigEvent::ServerConfigUpdated { changes, .. }) => {
                for change in changes {
                    self.config.apply(change);
                }
            }
            LedgerEvent::System(event) => {
                match event {
                    SystemEvent::AllTokensRevoked { .. } => self.tokens.revoke_all(),
                    SystemEvent::AllPasswordResetsForced { sessions_ended: true, .. } => {
                        for user in self.users.users().filter(|u| u.credential.is_some()) {
                            self.tokens.revoke_user(&user.name);
                        }
                    }
                    SystemEvent::AllPasswordResetsForced { .. }
                    | SystemEvent::LogWitnessed { .. }
                    | SystemEvent::WitnessReset { .. } => {}
                }
                self.users.apply_system(position, event);
            }
            // Records of who read what: no projection state depends on them.
            LedgerEvent::Audit(_) => {}
            // The claims only serialize linking; the user directory follows the accounts' own streams.
            LedgerEvent::IdentityClaim(_) => {}
            LedgerEvent::Policy(PolicyEvent::PolicyIdRemoved { .. }) => {
                self.users.remove_policy_id(&PolicyId::from_log(aggregate_id))
            }
            LedgerEvent::CertAuthority(event) => self.access.apply_authority(event),
            LedgerEvent::Certificate(event) => self.access.apply_certificate(position, event),
            LedgerEvent::ProvisionToken(event) => match Uuid::parse_str(aggregate_id) {
                Ok(id) => self.access.apply_provision_token(id, event),
                Err(_) => tracing::error!(position, "provisioning token event with a malformed aggregate id"),
            },
            LedgerEvent::Host(event) => match HostId::parse(aggregate_id) {
                Ok(id) => self.access.apply_host(id, event),
                Err(_) => tracing::error!(position, "host event with a malformed aggregate id"),
            },
            LedgerEvent::Invite(event) => match Uuid::parse_str(aggregate_id) {
                Ok(id) => self.access.apply_invite(id, event),
                Err(_) => tracing::error!(position, "invitation event with a malformed aggregate id"),
            },
            // The person is dropped for good: tokens gone, nothing resolves them, the name is free.
            LedgerEvent::Forgotten(ForgottenEvent::PersonForgotten(forget)) => {
                if let Some(name) = self.users.forget(forget.first_position) {
                    self.tokens.revoke_user(&name);
                    self.tokens.set_disabled(&name, false);
                    self.access.forget_user(&name);
                }
            }
        }
        self.position = position;
    }
}

/// The projections shared by every request, and the position they have reached.
pub struct SharedProjections<P = Projections> {
    state: RwLock<P>,
    applied: watch::Sender<i64>,
}

impl<P: Fold> SharedProjections<P> {
    /// Projections that have folded the log up to their position (0 when fresh, or a checkpoint's).
    pub fn new(projections: P) -> Self {
        let (applied, _) = watch::channel(projections.position());
        Self { state: RwLock::new(projections), applied }
    }
}

impl<P> SharedProjections<P> {
    pub fn read(&self) -> RwLockReadGuard<'_, P> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write(&self) -> RwLockWriteGuard<'_, P> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// The position every projection has reached.
    pub fn position(&self) -> i64 {
        *self.applied.borrow()
    }

    pub(crate) fn publish(&self, position: i64) {
        self.applied.send_replace(position);
    }

    /// Waits until the projections reach `position`; false if they did not within `limit`.
    pub async fn wait_for(&self, position: i64, limit: Duration) -> bool {
        let mut receiver = self.applied.subscribe();
        matches!(tokio::time::timeout(limit, receiver.wait_for(|p| *p >= position)).await, Ok(Ok(_)))
    }
}
