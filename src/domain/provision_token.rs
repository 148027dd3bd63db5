//! The `ProvisionToken` aggregate: one per provisioning token issued through the API
//! (static tokens from the configuration file are configuration, not events;
//! their every use is a `HostCertIssued` event). An issued token is single
//! use — an admin asks for `count` tokens to join `count` hosts — and only its
//! SHA-256 enters the log.

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::{AuthError, ErrorType};
use super::names::UserName;
use super::principals::{HostId, HostRole};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum ProvisionTokenEvent {
    ProvisionTokenIssued {
        /// Standard-base64 SHA-256 of the token's value.
        token_hash: String,
        roles: BTreeSet<HostRole>,
        expires: i64,
        issued_by: UserName,
        at: i64,
    },
    /// A host joined with the token (which is spent).
    ProvisionTokenUsed {
        host_id: HostId,
        roles: BTreeSet<HostRole>,
        at: i64,
    },
    ProvisionTokenDeleted {
        by: UserName,
        at: i64,
    },
}

domain_event!(ProvisionTokenEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum ProvisionTokenCommand {
    Issue {
        token_hash: String,
        roles: BTreeSet<HostRole>,
        expires: i64,
        issued_by: UserName,
        at: i64,
    },
    /// A host asks to join for `roles`, which the token must cover.
    Use {
        host_id: HostId,
        roles: BTreeSet<HostRole>,
        at: i64,
    },
    Delete {
        by: UserName,
        at: i64,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ProvisionToken {
    issued: bool,
    roles: BTreeSet<HostRole>,
    expires: i64,
    spent: bool,
}

impl ProvisionToken {
    fn decide(&self, command: ProvisionTokenCommand) -> Result<ProvisionTokenEvent, AuthError> {
        let invalid = || AuthError::new(ErrorType::InvalidToken, "unknown, used or expired provisioning token");
        match command {
            ProvisionTokenCommand::Issue { token_hash, roles, expires, issued_by, at } => {
                if self.issued {
                    return Err(AuthError::illegal("Provisioning token id already issued"));
                }
                Ok(ProvisionTokenEvent::ProvisionTokenIssued { token_hash, roles, expires, issued_by, at })
            }
            ProvisionTokenCommand::Use { host_id, roles, at } => {
                if !self.issued || self.spent || at >= self.expires {
                    return Err(invalid());
                }
                check_roles_allowed(&self.roles, &roles)?;
                Ok(ProvisionTokenEvent::ProvisionTokenUsed { host_id, roles, at })
            }
            ProvisionTokenCommand::Delete { by, at } => {
                if !self.issued || self.spent {
                    return Err(AuthError::new(ErrorType::NoSuchToken, "no such provisioning token"));
                }
                Ok(ProvisionTokenEvent::ProvisionTokenDeleted { by, at })
            }
        }
    }
}

/// A join may ask for the roles its token grants, or fewer — never others
/// (the rule for issued and static tokens alike).
pub fn check_roles_allowed(granted: &BTreeSet<HostRole>, requested: &BTreeSet<HostRole>) -> Result<(), AuthError> {
    let uncovered: Vec<&str> = requested.difference(granted).map(|r| r.id()).collect();
    if !uncovered.is_empty() {
        return Err(AuthError::unauthorized(format!(
            "The provisioning token does not allow the role(s): {}",
            uncovered.join(", ")
        )));
    }
    Ok(())
}

impl Aggregate for ProvisionToken {
    const TYPE: &'static str = "ProvisionToken";
    type Command = ProvisionTokenCommand;
    type Event = ProvisionTokenEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProvisionTokenEvent::ProvisionTokenIssued { roles, expires, .. } => {
                self.issued = true;
                self.roles = roles;
                self.expires = expires;
            }
            ProvisionTokenEvent::ProvisionTokenUsed { .. } | ProvisionTokenEvent::ProvisionTokenDeleted { .. } => {
                self.spent = true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn issued() -> ProvisionTokenEvent {
        ProvisionTokenEvent::ProvisionTokenIssued {
            token_hash: "h".into(),
            roles: BTreeSet::from([HostRole::Node]),
            expires: 100,
            issued_by: UserName::root(),
            at: 0,
        }
    }

    fn host() -> HostId {
        HostId::parse("web-1").unwrap_or_else(|e| panic!("{e}"))
    }

    fn join(roles: &[HostRole], at: i64) -> ProvisionTokenCommand {
        ProvisionTokenCommand::Use { host_id: host(), roles: roles.iter().copied().collect(), at }
    }

    #[tokio::test]
    async fn a_token_joins_one_host_for_the_roles_it_covers() {
        TestFramework::<ProvisionToken>::with(())
            .given(vec![issued()])
            .when_async(join(&[HostRole::Node], 5))
            .await
            .then_expect_events(vec![ProvisionTokenEvent::ProvisionTokenUsed {
                host_id: host(),
                roles: BTreeSet::from([HostRole::Node]),
                at: 5,
            }]);
    }

    #[tokio::test]
    async fn a_spent_token_joins_nobody() {
        TestFramework::<ProvisionToken>::with(())
            .given(vec![
                issued(),
                ProvisionTokenEvent::ProvisionTokenUsed { host_id: host(), roles: BTreeSet::new(), at: 1 },
            ])
            .when_async(join(&[HostRole::Node], 5))
            .await
            .then_expect_error_message("10020 Invalid token: unknown, used or expired provisioning token");
    }

    #[tokio::test]
    async fn an_expired_token_joins_nobody() {
        TestFramework::<ProvisionToken>::with(())
            .given(vec![issued()])
            .when_async(join(&[HostRole::Node], 100))
            .await
            .then_expect_error_message("10020 Invalid token: unknown, used or expired provisioning token");
    }

    #[tokio::test]
    async fn roles_beyond_the_token_are_refused() {
        TestFramework::<ProvisionToken>::with(())
            .given(vec![issued()])
            .when_async(join(&[HostRole::Node, HostRole::Proxy], 5))
            .await
            .then_expect_error_message("20000 Unauthorized: The provisioning token does not allow the role(s): proxy");
    }
}
