//! Test mode's aggregates (contract §8). Test mode is a second, separate log
//! whose every record expires one hour after it was made: throw-away users,
//! custom roles and tokens that services create while testing against the
//! server. Test tokens are the ordinary `Token` aggregate in that log; this
//! module holds the rest:
//!
//! - `TestUser` (one per user name): created with an expiry, its roles replaced
//!   wholesale. A user whose hour is over counts as absent, so the name can be
//!   taken again (a new incarnation in the same aggregate).
//! - `TestCustomRole` (one per role id): set, re-setting restarts its hour.
//! - `TestData` (one instance): "forget everything before here" (clear),
//!   "forget what expired before here" (the sweeper's marker) and "forget
//!   this test user" (when a person of that name is forgotten). Physical
//!   deletion of the rows follows each marker; the marker tells the
//!   projections to drop the same records, so they stay a pure fold.

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{AuthError, ErrorType};
use super::names::{CustomRoleId, DisplayName, UserName};
use super::roles::Role;

/// How long every test-mode record lives: one hour.
pub const TEST_DATA_LIFETIME_MS: i64 = 3_600_000;

/// The id of the single `TestData` aggregate.
pub const TEST_DATA_ID: &str = "testdata";

/// Whether a record that expires at `expires` still exists at `now` (the
/// token index's rule too: a token is valid strictly before its expiry).
pub fn is_live(expires: i64, now: i64) -> bool {
    now < expires
}

// ---------------------------------------------------------------- TestUser

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum TestUserEvent {
    /// A test user came into being (or back, after its previous hour ran out).
    TestUserCreated { user: UserName, display: DisplayName, anon_id: Uuid, created: i64, expires: i64 },
    /// The user's built-in and custom roles, replacing whatever it held.
    TestUserRolesReplaced { roles: BTreeSet<Role>, custom_roles: BTreeSet<CustomRoleId>, at: i64 },
}

domain_event!(TestUserEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum TestUserCommand {
    Create { user: UserName, display: DisplayName, anon_id: Uuid, now: i64 },
    ReplaceRoles { user: UserName, roles: BTreeSet<Role>, custom_roles: BTreeSet<CustomRoleId>, now: i64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TestUser {
    /// When the current incarnation expires (`None`: never created).
    expires: Option<i64>,
}

impl TestUser {
    fn live_at(&self, now: i64) -> bool {
        self.expires.is_some_and(|expires| is_live(expires, now))
    }
}

impl Aggregate for TestUser {
    const TYPE: &'static str = "TestUser";
    type Command = TestUserCommand;
    type Event = TestUserEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: TestUserCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let event = match command {
            TestUserCommand::Create { user, display, anon_id, now } => {
                if user.is_root() {
                    return Err(AuthError::unauthorized("Cannot create root user"));
                }
                if self.live_at(now) {
                    return Err(AuthError::new(ErrorType::UserAlreadyExists, user.as_str()));
                }
                TestUserEvent::TestUserCreated {
                    user,
                    display,
                    anon_id,
                    created: now,
                    expires: now.saturating_add(TEST_DATA_LIFETIME_MS),
                }
            }
            TestUserCommand::ReplaceRoles { user, roles, custom_roles, now } => {
                if !self.live_at(now) {
                    return Err(AuthError::no_such_user(user.as_str()));
                }
                if roles.contains(&Role::Root) {
                    return Err(AuthError::illegal("Invalid role id: Root"));
                }
                TestUserEvent::TestUserRolesReplaced { roles, custom_roles, at: now }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: TestUserEvent) {
        if let TestUserEvent::TestUserCreated { expires, .. } = event {
            self.expires = Some(expires);
        }
    }
}

// ---------------------------------------------------------- TestCustomRole

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum TestCustomRoleEvent {
    /// The role exists with this description until `expires`.
    TestCustomRoleSet { id: CustomRoleId, description: String, expires: i64 },
}

domain_event!(TestCustomRoleEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum TestCustomRoleCommand {
    Set { id: CustomRoleId, description: String, now: i64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TestCustomRole;

impl Aggregate for TestCustomRole {
    const TYPE: &'static str = "TestCustomRole";
    type Command = TestCustomRoleCommand;
    type Event = TestCustomRoleEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(
        &mut self,
        command: TestCustomRoleCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), AuthError> {
        let TestCustomRoleCommand::Set { id, description, now } = command;
        let expires = now.saturating_add(TEST_DATA_LIFETIME_MS);
        sink.write(TestCustomRoleEvent::TestCustomRoleSet { id, description, expires }, self).await;
        Ok(())
    }

    fn apply(&mut self, _: TestCustomRoleEvent) {}
}

// ---------------------------------------------------------------- TestData

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum TestDataEvent {
    /// Every test record made before this event is gone (`DELETE .../clear`).
    TestDataCleared { at: i64 },
    /// Every test record that expired at or before `before` is gone (the sweeper).
    TestDataSwept { before: i64 },
    /// The test user with this anonymous id is gone with its tokens: a person
    /// of the same name was forgotten on the main log. Names no one.
    TestUserDropped { anon_id: Uuid },
}

domain_event!(TestDataEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum TestDataCommand {
    Clear { now: i64 },
    Sweep { before: i64 },
    DropUser { anon_id: Uuid },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct TestData;

impl Aggregate for TestData {
    const TYPE: &'static str = "TestData";
    type Command = TestDataCommand;
    type Event = TestDataEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: TestDataCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let event = match command {
            TestDataCommand::Clear { now } => TestDataEvent::TestDataCleared { at: now },
            TestDataCommand::Sweep { before } => TestDataEvent::TestDataSwept { before },
            TestDataCommand::DropUser { anon_id } => TestDataEvent::TestUserDropped { anon_id },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, _: TestDataEvent) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn bob() -> UserName {
        UserName::from_log("bob".into())
    }

    fn display() -> DisplayName {
        DisplayName::parse(Some("Bob")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn created(at: i64) -> TestUserEvent {
        TestUserEvent::TestUserCreated {
            user: bob(),
            display: display(),
            anon_id: Uuid::from_u128(1),
            created: at,
            expires: at + TEST_DATA_LIFETIME_MS,
        }
    }

    fn create(now: i64) -> TestUserCommand {
        TestUserCommand::Create { user: bob(), display: display(), anon_id: Uuid::from_u128(1), now }
    }

    #[tokio::test]
    async fn a_test_user_lives_one_hour() {
        TestFramework::<TestUser>::with(())
            .given_no_previous_events()
            .when_async(create(10))
            .await
            .then_expect_events(vec![created(10)]);
    }

    #[tokio::test]
    async fn a_live_test_user_cannot_be_created_again() {
        TestFramework::<TestUser>::with(())
            .given(vec![created(10)])
            .when_async(create(9 + TEST_DATA_LIFETIME_MS))
            .await
            .then_expect_error_message("40000 User already exists: bob");
    }

    #[tokio::test]
    async fn an_expired_test_user_can_be_created_again() {
        TestFramework::<TestUser>::with(())
            .given(vec![created(10)])
            .when_async(create(10 + TEST_DATA_LIFETIME_MS))
            .await
            .then_expect_events(vec![created(10 + TEST_DATA_LIFETIME_MS)]);
    }

    #[tokio::test]
    async fn root_cannot_be_a_test_user() {
        TestFramework::<TestUser>::with(())
            .given_no_previous_events()
            .when_async(TestUserCommand::Create {
                user: UserName::root(),
                display: display(),
                anon_id: Uuid::from_u128(1),
                now: 1,
            })
            .await
            .then_expect_error_message("20000 Unauthorized: Cannot create root user");
    }

    #[tokio::test]
    async fn roles_of_an_expired_user_cannot_be_replaced() {
        TestFramework::<TestUser>::with(())
            .given(vec![created(10)])
            .when_async(TestUserCommand::ReplaceRoles {
                user: bob(),
                roles: BTreeSet::from([Role::DevToken]),
                custom_roles: BTreeSet::new(),
                now: 10 + TEST_DATA_LIFETIME_MS,
            })
            .await
            .then_expect_error_message("50000 No such user: bob");
    }

    #[tokio::test]
    async fn root_is_not_a_test_role() {
        TestFramework::<TestUser>::with(())
            .given(vec![created(10)])
            .when_async(TestUserCommand::ReplaceRoles {
                user: bob(),
                roles: BTreeSet::from([Role::Root]),
                custom_roles: BTreeSet::new(),
                now: 20,
            })
            .await
            .then_expect_error_message("30001 Illegal input parameter: Invalid role id: Root");
    }

    #[tokio::test]
    async fn re_setting_a_custom_role_restarts_its_hour() {
        let id = CustomRoleId::parse(Some("tester")).unwrap_or_else(|e| panic!("{e}"));
        TestFramework::<TestCustomRole>::with(())
            .given(vec![TestCustomRoleEvent::TestCustomRoleSet {
                id: id.clone(),
                description: "a".into(),
                expires: 5 + TEST_DATA_LIFETIME_MS,
            }])
            .when_async(TestCustomRoleCommand::Set { id: id.clone(), description: "b".into(), now: 500 })
            .await
            .then_expect_events(vec![TestCustomRoleEvent::TestCustomRoleSet {
                id,
                description: "b".into(),
                expires: 500 + TEST_DATA_LIFETIME_MS,
            }]);
    }
}
