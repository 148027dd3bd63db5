//! The domain: aggregates, their commands and events, value types and rules.
//! Pure: no I/O, no clock, no randomness — commands carry the times and ids
//! the application chose.

pub mod canonical;
pub mod custom_role;
pub mod error;
pub mod names;
pub mod roles;
pub mod server_config;
pub mod system;
pub mod token;
pub mod user;

#[cfg(test)]
mod snapshots;

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde::de::DeserializeOwned;

pub use custom_role::{CustomRole, CustomRoleCommand, CustomRoleEvent};
pub use error::{AuthError, ErrorType};
pub use names::{CustomRoleId, DisplayName, EmailAddress, TokenName, UserName};
pub use roles::{Role, RoleSet};
pub use server_config::{ServerConfig, ServerConfigCommand, ServerConfigEvent, ServerSettings};
pub use system::{System, SystemCommand, SystemEvent};
pub use token::{Token, TokenCommand, TokenEvent, TokenKind};
pub use user::{User, UserCommand, UserEvent};

/// Who performs a command, with the roles they hold directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub name: UserName,
    pub roles: BTreeSet<Role>,
}

/// Any event of any aggregate, as the projections see the log.
#[derive(Debug, Clone, PartialEq)]
pub enum LedgerEvent {
    User(UserEvent),
    Token(TokenEvent),
    CustomRole(CustomRoleEvent),
    ServerConfig(ServerConfigEvent),
    System(SystemEvent),
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
/// None yet: every event is at its first version.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    Vec::new()
}

impl LedgerEvent {
    /// Decodes a stored event from its payload text, upcasting it first when an
    /// upcaster claims it (the common case parses the text once, directly).
    pub fn decode(
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
        fn parse<A: Aggregate>(payload: &str) -> Result<A::Event, serde_json::Error>
        where
            A::Event: DeserializeOwned,
        {
            serde_json::from_str(payload)
        }
        Ok(match aggregate_type {
            User::TYPE => Self::User(parse::<User>(payload).map_err(error)?),
            Token::TYPE => Self::Token(parse::<Token>(payload).map_err(error)?),
            CustomRole::TYPE => Self::CustomRole(parse::<CustomRole>(payload).map_err(error)?),
            ServerConfig::TYPE => Self::ServerConfig(parse::<ServerConfig>(payload).map_err(error)?),
            System::TYPE => Self::System(parse::<System>(payload).map_err(error)?),
            other => return Err(DecodeError::UnknownAggregate(other.to_owned())),
        })
    }
}
