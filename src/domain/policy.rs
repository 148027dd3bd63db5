//! The `Policy` aggregate, one per policy id: an administrator removing a
//! policy id from every user (upstream `POST /admin/policyid`). Users agree to
//! policy ids on their own streams (`PolicyIdsAgreed`); a removal is one event
//! here that the user directory applies to every user — later agreements to
//! the same id count again.

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::names::UserName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum PolicyEvent {
    /// The policy id was removed from every user who had agreed to it.
    PolicyIdRemoved { by: UserName, at: i64 },
}

domain_event!(PolicyEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum PolicyCommand {
    /// Removes the policy id from every user (recorded even when nobody has it:
    /// the administrator's act is part of the history).
    Remove { by: UserName, at: i64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Policy;

impl Aggregate for Policy {
    const TYPE: &'static str = "Policy";
    type Command = PolicyCommand;
    type Event = PolicyEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let PolicyCommand::Remove { by, at } = command;
        sink.write(PolicyEvent::PolicyIdRemoved { by, at }, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {}
}
