//! The projections of the test-mode log: test tokens (the same token index
//! as the main log), test users and test custom roles. Every record carries
//! its expiry and is answered only while the request's time is before it.
//!
//! A clear marker empties everything folded before it; a sweep marker drops
//! what expired by its time; a drop marker drops one test user and its tokens. Both follow the physical deletion of the same
//! rows, so a rebuild from what remains of the log gives this same state. The
//! sweeper asks [`TestProjections::expired`] what to delete.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use uuid::Uuid;

use super::Fold;
use super::token_index::TokenIndex;
use crate::domain::test_mode::is_live;
use crate::domain::{
    CustomRoleId, DisplayName, Role, TestCustomRoleEvent, TestDataEvent, TestModeEvent, TestUserEvent, TokenEvent,
    UserName,
};

/// A test user as the test-mode API shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TestUserRecord {
    pub name: UserName,
    pub display: DisplayName,
    pub anon_id: Uuid,
    pub created: i64,
    pub expires: i64,
    pub roles: BTreeSet<Role>,
    /// As last replaced; roles that have since expired are filtered out when read.
    custom_roles: BTreeSet<CustomRoleId>,
    /// The aggregate's newest sequence: the sweeper deletes up to here.
    sequence: i64,
}

#[derive(Debug, Clone, PartialEq)]
struct TestRole {
    description: String,
    expires: i64,
    sequence: i64,
}

/// An aggregate's events, up to a sequence, that have expired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredAggregate {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub through_sequence: i64,
}

#[derive(Default)]
pub struct TestProjections {
    pub tokens: TokenIndex,
    users: HashMap<UserName, TestUserRecord>,
    roles: BTreeMap<CustomRoleId, TestRole>,
    /// The position of the newest clear: every row below it is to be deleted.
    cleared_below: Option<i64>,
    /// The position of the last event folded in.
    position: i64,
}

impl TestProjections {
    /// The live test user of that name at `now`.
    pub fn user(&self, name: &UserName, now: i64) -> Option<&TestUserRecord> {
        self.users.get(name).filter(|u| is_live(u.expires, now))
    }

    /// The user's custom roles that exist at `now`, sorted.
    pub fn custom_roles_of<'a>(&self, user: &'a TestUserRecord, now: i64) -> Vec<&'a CustomRoleId> {
        user.custom_roles.iter().filter(|id| self.has_custom_role(id, now)).collect()
    }

    pub fn has_custom_role(&self, id: &CustomRoleId, now: i64) -> bool {
        self.roles.get(id).is_some_and(|r| is_live(r.expires, now))
    }

    /// The custom roles that exist at `now`: id and description, sorted by id.
    pub fn custom_roles(&self, now: i64) -> Vec<(&CustomRoleId, &str)> {
        self.roles.iter().filter(|(_, r)| is_live(r.expires, now)).map(|(id, r)| (id, r.description.as_str())).collect()
    }

    /// Where the newest clear lies, if rows below it may remain.
    pub fn cleared_below(&self) -> Option<i64> {
        self.cleared_below
    }

    /// Every record that has expired by `now`, as the aggregates whose events hold it.
    pub fn expired(&self, now: i64) -> Vec<ExpiredAggregate> {
        let users = self.users.values().filter(|u| !is_live(u.expires, now)).map(|u| ExpiredAggregate {
            aggregate_type: "TestUser",
            aggregate_id: u.name.to_string(),
            through_sequence: u.sequence,
        });
        let roles = self.roles.iter().filter(|(_, r)| !is_live(r.expires, now)).map(|(id, r)| ExpiredAggregate {
            aggregate_type: "TestCustomRole",
            aggregate_id: id.to_string(),
            through_sequence: r.sequence,
        });
        // A test token is one event; it is never revoked.
        let tokens = self.tokens.expired_ids(now).into_iter().map(|id| ExpiredAggregate {
            aggregate_type: "Token",
            aggregate_id: id.to_string(),
            through_sequence: 1,
        });
        users.chain(roles).chain(tokens).collect()
    }

    /// The anonymous id of the test user named `name`, live or expired but not yet swept.
    pub fn anon_id_of(&self, name: &UserName) -> Option<Uuid> {
        self.users.get(name).map(|u| u.anon_id)
    }

    fn apply_user(&mut self, aggregate_id: &str, sequence: i64, event: &TestUserEvent) {
        match event {
            TestUserEvent::TestUserCreated { user, display, anon_id, created, expires } => {
                let record = TestUserRecord {
                    name: user.clone(),
                    display: display.clone(),
                    anon_id: *anon_id,
                    created: *created,
                    expires: *expires,
                    roles: BTreeSet::new(),
                    custom_roles: BTreeSet::new(),
                    sequence,
                };
                self.users.insert(user.clone(), record);
            }
            TestUserEvent::TestUserRolesReplaced { roles, custom_roles, .. } => {
                if let Some(user) = self.users.get_mut(aggregate_id) {
                    user.roles = roles.clone();
                    user.custom_roles = custom_roles.clone();
                    user.sequence = sequence;
                }
            }
        }
    }

    fn apply_data(&mut self, position: i64, event: &TestDataEvent) {
        match event {
            TestDataEvent::TestDataCleared { .. } => {
                self.tokens = TokenIndex::default();
                self.users.clear();
                self.roles.clear();
                self.cleared_below = Some(position);
            }
            TestDataEvent::TestDataSwept { before } => {
                self.tokens.evict_expired(*before);
                self.users.retain(|_, u| u.expires > *before);
                self.roles.retain(|_, r| r.expires > *before);
            }
            TestDataEvent::TestUserDropped { anon_id } => {
                let name = self.users.values().find(|u| u.anon_id == *anon_id).map(|u| u.name.clone());
                if let Some(name) = name {
                    self.users.remove(&name);
                    self.tokens.revoke_user(&name);
                }
            }
        }
    }
}

impl Fold for TestProjections {
    type Event = TestModeEvent;

    fn position(&self) -> i64 {
        self.position
    }

    fn apply(&mut self, position: i64, _recorded_at: i64, aggregate_id: &str, sequence: i64, event: &TestModeEvent) {
        match event {
            // A token for no test user (one committed after its user was dropped) serves no one.
            TestModeEvent::Token(TokenEvent::TokenIssued(grant)) if !self.users.contains_key(&grant.user) => {}
            TestModeEvent::Token(TokenEvent::TokenIssued(grant)) => match Uuid::parse_str(aggregate_id) {
                Ok(id) => self.tokens.issue(id, grant),
                Err(_) => tracing::error!(position, "test token event with a malformed aggregate id; not indexed"),
            },
            TestModeEvent::Token(TokenEvent::TokenRevoked(revoked)) => self.tokens.revoke(&revoked.token_hash),
            TestModeEvent::User(event) => self.apply_user(aggregate_id, sequence, event),
            TestModeEvent::CustomRole(TestCustomRoleEvent::TestCustomRoleSet { id, description, expires }) => {
                self.roles
                    .insert(id.clone(), TestRole { description: description.clone(), expires: *expires, sequence });
            }
            TestModeEvent::Data(event) => self.apply_data(position, event),
        }
        self.position = position;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TokenKind;
    use crate::domain::test_mode::TEST_DATA_LIFETIME_MS;
    use crate::domain::token::{ClientInfo, Mfa, TokenIssued};
    use crate::projections::hash_token;
    use crate::projections::token_index::encode_hash;

    fn user_created(name: &str, at: i64) -> TestModeEvent {
        TestModeEvent::User(TestUserEvent::TestUserCreated {
            user: UserName::from_log(name.into()),
            display: DisplayName::parse(Some("Some One")).unwrap_or_else(|e| panic!("{e}")),
            anon_id: Uuid::from_u128(7),
            created: at,
            expires: at + TEST_DATA_LIFETIME_MS,
        })
    }

    fn token_issued(value: &str, at: i64) -> TestModeEvent {
        TestModeEvent::Token(TokenEvent::TokenIssued(TokenIssued {
            token_hash: encode_hash(&hash_token(value)),
            kind: TokenKind::Login,
            user: UserName::from_log("bob".into()),
            name: None,
            created: at,
            expires: at + TEST_DATA_LIFETIME_MS,
            custom: BTreeMap::new(),
            client: ClientInfo::default(),
            mfa: Mfa::Unknown,
        }))
    }

    fn bob() -> UserName {
        UserName::from_log("bob".into())
    }

    #[test]
    fn records_vanish_when_their_hour_is_over() {
        let mut p = TestProjections::default();
        p.apply(1, 0, "bob", 1, &user_created("bob", 1_000));
        p.apply(2, 0, &Uuid::from_u128(1).to_string(), 1, &token_issued("T", 1_000));
        assert!(p.user(&bob(), 1_000 + TEST_DATA_LIFETIME_MS - 1).is_some());
        assert!(p.user(&bob(), 1_000 + TEST_DATA_LIFETIME_MS).is_none());
        assert!(p.tokens.find(&hash_token("T"), 1_000 + TEST_DATA_LIFETIME_MS).is_none());
        assert_eq!(p.expired(1_000 + TEST_DATA_LIFETIME_MS).len(), 2);
        assert!(p.expired(1_000 + TEST_DATA_LIFETIME_MS - 1).is_empty());
    }

    #[test]
    fn a_sweep_marker_drops_what_expired_and_a_clear_drops_everything() {
        let mut p = TestProjections::default();
        p.apply(1, 0, "bob", 1, &user_created("bob", 1_000));
        p.apply(2, 0, "amy", 1, &user_created("amy", 5_000));
        p.apply(3, 0, &Uuid::from_u128(1).to_string(), 1, &token_issued("T", 1_000));
        let swept = 1_000 + TEST_DATA_LIFETIME_MS;
        p.apply(4, 0, "testdata", 1, &TestModeEvent::Data(TestDataEvent::TestDataSwept { before: swept }));
        assert!(p.expired(swept).is_empty());
        assert!(p.tokens.is_empty());
        assert!(p.user(&UserName::from_log("amy".into()), swept).is_some());
        p.apply(5, 0, "testdata", 2, &TestModeEvent::Data(TestDataEvent::TestDataCleared { at: swept }));
        assert!(p.user(&UserName::from_log("amy".into()), swept).is_none());
        assert_eq!(p.cleared_below(), Some(5));
    }

    #[test]
    fn a_drop_marker_drops_one_test_user_and_its_tokens() {
        let mut p = TestProjections::default();
        p.apply(1, 0, "bob", 1, &user_created("bob", 1_000));
        p.apply(2, 0, &Uuid::from_u128(1).to_string(), 1, &token_issued("T", 1_000));
        let mut amy = user_created("amy", 1_000);
        if let TestModeEvent::User(TestUserEvent::TestUserCreated { anon_id, .. }) = &mut amy {
            *anon_id = Uuid::from_u128(8);
        }
        p.apply(3, 0, "amy", 1, &amy);
        let anon_id = p.anon_id_of(&bob()).unwrap_or_else(|| panic!("bob's anonymous id"));
        assert_eq!(anon_id, Uuid::from_u128(7));
        p.apply(4, 0, "testdata", 1, &TestModeEvent::Data(TestDataEvent::TestUserDropped { anon_id }));
        assert!(p.user(&bob(), 1_000).is_none() && p.anon_id_of(&bob()).is_none());
        assert!(p.tokens.find(&hash_token("T"), 1_000).is_none(), "bob's token went with him");
        assert!(p.user(&UserName::from_log("amy".into()), 1_000).is_some(), "amy stays");
        // A token committed for him after the drop is not indexed.
        p.apply(5, 0, &Uuid::from_u128(2).to_string(), 1, &token_issued("U", 1_000));
        assert!(p.tokens.find(&hash_token("U"), 1_000).is_none());
    }
}
