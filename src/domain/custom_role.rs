//! The `CustomRole` aggregate: one per custom role id. Setting a role creates
//! it or replaces its description; deleting it also takes it from every user
//! (the user directory folds that, no per-user events are needed).

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::{AuthError, ErrorType};
use super::names::{CustomRoleId, UserName};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum CustomRoleEvent {
    CustomRoleSet {
        id: CustomRoleId,
        description: String,
        by: UserName,
        at: i64,
    },
    CustomRoleDeleted {
        id: CustomRoleId,
        by: UserName,
        at: i64,
    },
    /// A role brought over from KBase auth2 (`import-auth2`), which never
    /// recorded who made it or when; `at` is the import's time.
    CustomRoleImported {
        id: CustomRoleId,
        description: String,
        at: i64,
    },
}

domain_event!(CustomRoleEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum CustomRoleCommand {
    Set { id: CustomRoleId, description: String, by: UserName, at: i64 },
    Delete { id: CustomRoleId, by: UserName, at: i64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CustomRole {
    exists: bool,
}

impl Aggregate for CustomRole {
    const TYPE: &'static str = "CustomRole";
    type Command = CustomRoleCommand;
    type Event = CustomRoleEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: CustomRoleCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let event = match command {
            CustomRoleCommand::Set { id, description, by, at } => {
                CustomRoleEvent::CustomRoleSet { id, description, by, at }
            }
            CustomRoleCommand::Delete { id, by, at } => {
                if !self.exists {
                    return Err(AuthError::new(ErrorType::NoSuchRole, id.as_str()));
                }
                CustomRoleEvent::CustomRoleDeleted { id, by, at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: CustomRoleEvent) {
        self.exists = !matches!(event, CustomRoleEvent::CustomRoleDeleted { .. });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn id() -> CustomRoleId {
        CustomRoleId::parse(Some("curator")).expect("valid id")
    }

    #[tokio::test]
    async fn setting_a_role_records_its_description() {
        TestFramework::<CustomRole>::with(())
            .given_no_previous_events()
            .when_async(CustomRoleCommand::Set { id: id(), description: "Curates".into(), by: UserName::root(), at: 1 })
            .await
            .then_expect_events(vec![CustomRoleEvent::CustomRoleSet {
                id: id(),
                description: "Curates".into(),
                by: UserName::root(),
                at: 1,
            }]);
    }

    #[tokio::test]
    async fn deleting_a_missing_role_fails() {
        TestFramework::<CustomRole>::with(())
            .given(vec![
                CustomRoleEvent::CustomRoleSet { id: id(), description: "d".into(), by: UserName::root(), at: 1 },
                CustomRoleEvent::CustomRoleDeleted { id: id(), by: UserName::root(), at: 2 },
            ])
            .when_async(CustomRoleCommand::Delete { id: id(), by: UserName::root(), at: 3 })
            .await
            .then_expect_error_message("50040 No such role: curator");
    }
}
