//! The `System` aggregate (a single instance, id `system`): server-wide facts
//! that are one event each, however many users they touch.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::names::UserName;

pub const SYSTEM_ID: &str = "system";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum SystemEvent {
    /// Every token issued before this event is invalid (a watermark, not a list).
    AllTokensRevoked { by: UserName, at: i64 },
    /// Every local user whose password was set before this event must reset
    /// it; with `sessions_ended` (since v1.1), every token of theirs issued
    /// before it is invalid too.
    AllPasswordResetsForced {
        by: UserName,
        at: i64,
        #[serde(default)]
        sessions_ended: bool,
    },
}

impl DomainEvent for SystemEvent {
    fn event_type(&self) -> String {
        match self {
            Self::AllTokensRevoked { .. } => "AllTokensRevoked",
            Self::AllPasswordResetsForced { .. } => "AllPasswordResetsForced",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        match self {
            Self::AllTokensRevoked { .. } => "1.0",
            // 1.1: `sessions_ended` (additive: a 1.0 payload reads as `false`).
            Self::AllPasswordResetsForced { .. } => "1.1",
        }
        .to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SystemCommand {
    RevokeAllTokens {
        by: UserName,
        at: i64,
    },
    /// Forces every local user's password reset; `end_sessions` also invalidates their tokens.
    ForceAllPasswordResets {
        by: UserName,
        at: i64,
        end_sessions: bool,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct System;

impl Aggregate for System {
    const TYPE: &'static str = "System";
    type Command = SystemCommand;
    type Event = SystemEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: SystemCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let event = match command {
            SystemCommand::RevokeAllTokens { by, at } => SystemEvent::AllTokensRevoked { by, at },
            SystemCommand::ForceAllPasswordResets { by, at, end_sessions } => {
                SystemEvent::AllPasswordResetsForced { by, at, sessions_ended: end_sessions }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: SystemEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    #[tokio::test]
    async fn revoke_all_is_one_event() {
        TestFramework::<System>::with(())
            .given(vec![SystemEvent::AllTokensRevoked { by: UserName::root(), at: 1 }])
            .when_async(SystemCommand::RevokeAllTokens { by: UserName::root(), at: 2 })
            .await
            .then_expect_events(vec![SystemEvent::AllTokensRevoked { by: UserName::root(), at: 2 }]);
    }
}
