//! The domain: aggregates, their commands and events, value types and rules.
//! Pure: no I/O, no clock, no randomness — commands carry the times and ids
//! the application chose.

/// Implements `cqrs_es::DomainEvent` for an event enum that derives
/// `strum::IntoStaticStr`: an event's type is its variant's name (the stored
/// name; a rename needs an upcaster), its version "1.0" unless the second
/// argument, a function of the event, names another (events.md keeps them).
macro_rules! domain_event {
    ($event:ty) => {
        domain_event!($event, |_| "1.0");
    };
    ($event:ty, $version:expr) => {
        impl cqrs_es::DomainEvent for $event {
            fn event_type(&self) -> String {
                <&'static str>::from(self).to_owned()
            }

            fn event_version(&self) -> String {
                let version: fn(&Self) -> &'static str = $version;
                version(self).to_owned()
            }
        }
    };
}

pub mod audit;
pub mod canonical;
pub mod cert_authority;
pub mod certificate;
pub mod custom_role;
pub mod describe;
pub mod error;
pub mod forgotten;
pub mod host;
pub mod identity;
pub mod imported;
pub mod invite;
pub mod names;
pub mod policy;
pub mod principals;
pub mod provision_token;
pub mod roles;
pub mod server_config;
pub mod system;
pub mod test_mode;
pub mod text;
pub mod throttle;
pub mod token;
pub mod user;

#[cfg(test)]
pub(crate) mod event_shapes;

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde::de::DeserializeOwned;

pub use audit::{Audit, AuditCommand, AuditEvent, AuditSubject};
pub use cert_authority::{CaKind, CertAuthority, CertAuthorityCommand, CertAuthorityEvent, SigningKey};
pub use certificate::{Certificate, CertificateEvent, ProvisionTokenId, RecordCertificate, Signed};
pub use custom_role::{CustomRole, CustomRoleCommand, CustomRoleEvent};
pub use error::{AuthError, ErrorType};
pub use forgotten::{Forgotten, ForgottenEvent};
pub use host::{Host, HostCommand, HostEvent, JoinHost};
pub use identity::{IdentityClaim, IdentityClaimCommand, IdentityClaimEvent, IdentityId, LinkVia, RemoteIdentity};
pub use invite::{Invite, InviteCommand, InviteEvent};
pub use names::{CustomRoleId, DisplayName, EmailAddress, PolicyId, TokenName, UserName};
pub use policy::{Policy, PolicyCommand, PolicyEvent};
pub use principals::{HostId, HostRole, InvitedIdentity, Login};
pub use provision_token::{ProvisionToken, ProvisionTokenCommand, ProvisionTokenEvent};
pub use roles::{Role, RoleSet};
pub use server_config::{ServerConfig, ServerConfigCommand, ServerConfigEvent, ServerSettings};
pub use system::{System, SystemCommand, SystemEvent};
pub use test_mode::{TestCustomRoleEvent, TestDataEvent, TestUserEvent};
pub use token::{Token, TokenCommand, TokenEvent, TokenKind};
pub use user::{User, UserCommand, UserEvent};

/// An aggregate as the log keeps it: the typed id a caller names it by, and
/// the stream id (the log's `aggregate_id`) that id becomes. Every aggregate
/// goes through the one command path with it (`app::commands`).
pub trait Addressed: Aggregate<Error = AuthError, Services = ()> + 'static {
    /// What a caller names one instance by (`()` for a singleton).
    type Id: ?Sized;

    /// The log's stream id of the instance named `id`.
    fn stream_id(id: &Self::Id) -> std::borrow::Cow<'_, str>;
}

macro_rules! addressed {
    ($($aggregate:ty => $id:ty, |$name:ident| $stream:expr;)*) => {$(
        impl Addressed for $aggregate {
            type Id = $id;
            fn stream_id($name: &Self::Id) -> std::borrow::Cow<'_, str> {
                $stream.into()
            }
        }
    )*};
}

addressed! {
    User => UserName, |name| name.as_str();
    Token => uuid::Uuid, |id| id.to_string();
    CustomRole => CustomRoleId, |id| id.as_str();
    ServerConfig => (), |_id| server_config::SERVER_CONFIG_ID;
    System => (), |_id| system::SYSTEM_ID;
    Audit => UserName, |reader| reader.as_str();
    CertAuthority => CaKind, |ca| ca.id();
    Certificate => u64, |serial| serial.to_string();
    ProvisionToken => uuid::Uuid, |id| id.to_string();
    Invite => uuid::Uuid, |id| id.to_string();
    Host => HostId, |id| id.as_str();
    IdentityClaim => IdentityId, |id| id.as_str();
    Policy => PolicyId, |id| id.as_str();
    test_mode::TestUser => UserName, |name| name.as_str();
    test_mode::TestCustomRole => CustomRoleId, |id| id.as_str();
    test_mode::TestData => (), |_id| test_mode::TEST_DATA_ID;
}

/// Who performs a command, with the roles they hold directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: UserName,
    pub roles: BTreeSet<Role>,
}

/// Any event of any aggregate, as the projections see the log.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(test, derive(strum::EnumDiscriminants))]
#[cfg_attr(test, strum_discriminants(name(LedgerEventKind), derive(strum::EnumIter)))]
pub enum LedgerEvent {
    User(UserEvent),
    Token(TokenEvent),
    CustomRole(CustomRoleEvent),
    ServerConfig(ServerConfigEvent),
    System(SystemEvent),
    Audit(AuditEvent),
    CertAuthority(CertAuthorityEvent),
    Certificate(CertificateEvent),
    ProvisionToken(ProvisionTokenEvent),
    Invite(InviteEvent),
    Host(HostEvent),
    IdentityClaim(IdentityClaimEvent),
    Policy(PolicyEvent),
    Forgotten(ForgottenEvent),
}

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown aggregate type {0}")]
    UnknownAggregate(String),
    #[error("cannot decode {event_type} v{event_version} of {aggregate_type}: {source}")]
    Payload { aggregate_type: String, event_type: String, event_version: String, source: serde_json::Error },
}

/// The upcasters for stored events whose shape has since changed. Every
/// reader of the log (aggregate loads and the projection runner) applies them.
/// `TokenIssued` 1.0 → 2.0 (`mfa`); `ServerConfigInitialized` 1.0 → 2.0
/// (`providers`); `AuditTrailRead` 1.0 → 2.0 (`actor`, `event_type`);
/// `UserCreated` 1.0 → 2.0 (`local`); `LoginRecorded` 1.0 → 2.0 (`provider`, `identity`).
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![
        Box::new(cqrs_es::persist::SemanticVersionEventUpcaster::new(
            "UserCreated",
            user::USER_CREATED_VERSION,
            Box::new(user::upcast_user_created_v1),
        )),
        Box::new(cqrs_es::persist::SemanticVersionEventUpcaster::new(
            "LoginRecorded",
            user::LOGIN_RECORDED_VERSION,
            Box::new(user::upcast_login_recorded_v1),
        )),
        Box::new(cqrs_es::persist::SemanticVersionEventUpcaster::new(
            "TokenIssued",
            token::TOKEN_ISSUED_VERSION,
            Box::new(token::upcast_token_issued_v1),
        )),
        Box::new(cqrs_es::persist::SemanticVersionEventUpcaster::new(
            "AuditTrailRead",
            audit::AUDIT_TRAIL_READ_VERSION,
            Box::new(audit::upcast_audit_trail_read_v1),
        )),
        Box::new(cqrs_es::persist::SemanticVersionEventUpcaster::new(
            "ServerConfigInitialized",
            server_config::SERVER_CONFIG_INITIALIZED_VERSION,
            Box::new(server_config::upcast_server_config_initialized_v1),
        )),
    ]
}

/// Any event of the test-mode log.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(test, derive(strum::EnumDiscriminants))]
#[cfg_attr(test, strum_discriminants(name(TestModeEventKind), derive(strum::EnumIter)))]
pub enum TestModeEvent {
    Token(TokenEvent),
    User(TestUserEvent),
    CustomRole(TestCustomRoleEvent),
    Data(TestDataEvent),
}

fn parse<A: Aggregate>(payload: &str) -> Result<A::Event, serde_json::Error>
where
    A::Event: DeserializeOwned,
{
    serde_json::from_str(payload)
}

/// The events of one log, decoded from their stored form.
pub trait LogEvent: Sized {
    /// Parses the payload of an event of `aggregate_type`; `None` when this log has no such aggregate.
    fn parse(aggregate_type: &str, payload: &str) -> Option<Result<Self, serde_json::Error>>;

    /// Decodes a stored event from its payload text, upcasting it first when an
    /// upcaster claims it (the common case parses the text once, directly).
    fn decode(
        aggregate_type: &str,
        event_type: &str,
        event_version: &str,
        payload: &str,
        upcasters: &[Box<dyn EventUpcaster>],
    ) -> Result<Self, DecodeError> {
        let error = |source| DecodeError::Payload {
            aggregate_type: aggregate_type.to_owned(),
            event_type: event_type.to_owned(),
            event_version: event_version.to_owned(),
            source,
        };
        if upcasters.iter().any(|u| u.can_upcast(event_type, event_version)) {
            let value = serde_json::from_str(payload).map_err(error)?;
            let serialized = SerializedEvent::new(
                String::new(),
                0,
                aggregate_type.to_owned(),
                event_type.to_owned(),
                event_version.to_owned(),
                value,
                serde_json::Value::Null,
            );
            let upcast = upcasters
                .iter()
                .fold(serialized, |e, u| if u.can_upcast(&e.event_type, &e.event_version) { u.upcast(e) } else { e });
            let text = upcast.payload.to_string();
            return Self::decode(aggregate_type, &upcast.event_type, &upcast.event_version, &text, &[]);
        }
        match Self::parse(aggregate_type, payload) {
            Some(parsed) => parsed.map_err(error),
            None => Err(DecodeError::UnknownAggregate(aggregate_type.to_owned())),
        }
    }
}

impl LogEvent for LedgerEvent {
    fn parse(aggregate_type: &str, payload: &str) -> Option<Result<Self, serde_json::Error>> {
        Some(match aggregate_type {
            User::TYPE => parse::<User>(payload).map(Self::User),
            Token::TYPE => parse::<Token>(payload).map(Self::Token),
            CustomRole::TYPE => parse::<CustomRole>(payload).map(Self::CustomRole),
            ServerConfig::TYPE => parse::<ServerConfig>(payload).map(Self::ServerConfig),
            System::TYPE => parse::<System>(payload).map(Self::System),
            Audit::TYPE => parse::<Audit>(payload).map(Self::Audit),
            CertAuthority::TYPE => parse::<CertAuthority>(payload).map(Self::CertAuthority),
            Certificate::TYPE => parse::<Certificate>(payload).map(Self::Certificate),
            ProvisionToken::TYPE => parse::<ProvisionToken>(payload).map(Self::ProvisionToken),
            Invite::TYPE => parse::<Invite>(payload).map(Self::Invite),
            Host::TYPE => parse::<Host>(payload).map(Self::Host),
            IdentityClaim::TYPE => parse::<IdentityClaim>(payload).map(Self::IdentityClaim),
            Policy::TYPE => parse::<Policy>(payload).map(Self::Policy),
            Forgotten::TYPE => parse::<Forgotten>(payload).map(Self::Forgotten),
            _ => return None,
        })
    }
}

impl LogEvent for TestModeEvent {
    fn parse(aggregate_type: &str, payload: &str) -> Option<Result<Self, serde_json::Error>> {
        use test_mode::{TestCustomRole, TestData, TestUser};
        Some(match aggregate_type {
            Token::TYPE => parse::<Token>(payload).map(Self::Token),
            TestUser::TYPE => parse::<TestUser>(payload).map(Self::User),
            TestCustomRole::TYPE => parse::<TestCustomRole>(payload).map(Self::CustomRole),
            TestData::TYPE => parse::<TestData>(payload).map(Self::Data),
            _ => return None,
        })
    }
}
