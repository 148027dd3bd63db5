//! The `System` aggregate (a single instance, id `system`): server-wide facts
//! that are one event each, however many users they touch.

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::names::UserName;

pub const SYSTEM_ID: &str = "system";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
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
    /// From here on the log's heads are signed by the witness key
    /// `public_key` (base64) and kept in a witness file outside the
    /// database: a missing witness is evidence (`replay verify` fails, a
    /// server refuses writes) rather than a fresh start.
    LogWitnessed { public_key: String, at: i64 },
    /// An operator accepted that the witness file no longer matched the log
    /// — `found` says how (missing, unreadable, or a log behind the signed
    /// head at `position` with chain `chain`), the log then ending at
    /// `log_head` — for `reason`; the old file was set aside and a new one
    /// starts from here.
    WitnessReset { found: String, position: Option<i64>, chain: Option<String>, log_head: i64, reason: String, at: i64 },
}

domain_event!(SystemEvent, |event| match event {
    Self::AllTokensRevoked { .. } => "1.0",
    // 1.1: `sessions_ended` (additive: a 1.0 payload reads as `false`).
    Self::AllPasswordResetsForced { .. } => "1.1",
    Self::LogWitnessed { .. } | Self::WitnessReset { .. } => "1.0",
});

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
    /// Records that the log's heads are witnessed under `public_key` (nothing when already recorded).
    RecordWitness {
        public_key: String,
        at: i64,
    },
    /// Records an operator's acceptance of a witness that no longer matches the log.
    ResetWitness {
        found: String,
        position: Option<i64>,
        chain: Option<String>,
        log_head: i64,
        reason: String,
        at: i64,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct System {
    /// The witness key the log's heads are recorded as witnessed under.
    witness_key: Option<String>,
}

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
            SystemCommand::RecordWitness { public_key, .. } if self.witness_key.as_ref() == Some(&public_key) => {
                return Ok(());
            }
            SystemCommand::RecordWitness { public_key, at } => SystemEvent::LogWitnessed { public_key, at },
            SystemCommand::ResetWitness { found, position, chain, log_head, reason, at } => {
                if reason.trim().is_empty() {
                    return Err(AuthError::missing("reason"));
                }
                SystemEvent::WitnessReset { found, position, chain, log_head, reason, at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: SystemEvent) {
        if let SystemEvent::LogWitnessed { public_key, .. } = event {
            self.witness_key = Some(public_key);
        }
    }
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

    #[tokio::test]
    async fn the_witness_is_recorded_once_per_key() {
        let witnessed = SystemEvent::LogWitnessed { public_key: "k1".into(), at: 1 };
        TestFramework::<System>::with(())
            .given(vec![witnessed.clone()])
            .when_async(SystemCommand::RecordWitness { public_key: "k1".into(), at: 2 })
            .await
            .then_expect_events(vec![]);
        TestFramework::<System>::with(())
            .given(vec![witnessed])
            .when_async(SystemCommand::RecordWitness { public_key: "k2".into(), at: 2 })
            .await
            .then_expect_events(vec![SystemEvent::LogWitnessed { public_key: "k2".into(), at: 2 }]);
        TestFramework::<System>::with(())
            .given_no_previous_events()
            .when_async(SystemCommand::ResetWitness {
                found: "missing".into(),
                position: None,
                chain: None,
                log_head: 9,
                reason: " ".into(),
                at: 3,
            })
            .await
            .then_expect_error_message("30000 Missing input parameter: reason");
    }
}
