//! The `Invite` aggregate: one per sign-up invitation. An admin invites a user
//! name with its logins and identities; the invitee is offered a fresh
//! second-factor secret each time they open the invitation, and redeems it
//! once — with the secret they were last offered, before it expires. Only the
//! invitation token's SHA-256 and the secret's *reference* enter the log.

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{AuthError, ErrorType};
use super::names::UserName;
use super::principals::{InvitedIdentity, Login};

/// The longest an invitation may live.
pub const MAX_INVITE_TTL_MS: i64 = 60 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum InviteEvent {
    InviteIssued {
        /// Standard-base64 SHA-256 of the invitation token.
        token_hash: String,
        user: UserName,
        logins: BTreeSet<Login>,
        identities: BTreeSet<InvitedIdentity>,
        expires: i64,
        issued_by: UserName,
        at: i64,
    },
    /// The invitee opened the invitation and was shown a new TOTP secret
    /// (stored in the credentials store under `credential_id`); earlier offers are void.
    InviteSecondFactorOffered {
        credential_id: Uuid,
        at: i64,
    },
    /// The invitation was used to create the account; it cannot be used again.
    InviteRedeemed {
        credential_id: Uuid,
        at: i64,
    },
    InviteRevoked {
        by: UserName,
        at: i64,
    },
}

domain_event!(InviteEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum InviteCommand {
    Issue {
        token_hash: String,
        user: UserName,
        logins: BTreeSet<Login>,
        identities: BTreeSet<InvitedIdentity>,
        expires: i64,
        issued_by: UserName,
        at: i64,
    },
    OfferSecondFactor {
        credential_id: Uuid,
        at: i64,
    },
    Redeem {
        credential_id: Uuid,
        at: i64,
    },
    Revoke {
        by: UserName,
        at: i64,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Invite {
    issued: bool,
    expires: i64,
    offered: Option<Uuid>,
    closed: bool,
}

/// The error for an invitation that cannot be used (unknown, used, revoked or expired).
pub fn unusable() -> AuthError {
    AuthError::new(ErrorType::InvalidToken, "unknown, used or expired invitation")
}

impl Invite {
    fn decide(&self, command: InviteCommand) -> Result<InviteEvent, AuthError> {
        let usable = |at: i64| self.issued && !self.closed && at < self.expires;
        match command {
            InviteCommand::Issue { token_hash, user, logins, identities, expires, issued_by, at } => {
                if self.issued {
                    return Err(AuthError::illegal("Invitation id already issued"));
                }
                Ok(InviteEvent::InviteIssued { token_hash, user, logins, identities, expires, issued_by, at })
            }
            InviteCommand::OfferSecondFactor { credential_id, at } if usable(at) => {
                Ok(InviteEvent::InviteSecondFactorOffered { credential_id, at })
            }
            InviteCommand::Redeem { credential_id, at } if usable(at) => {
                if self.offered != Some(credential_id) {
                    return Err(AuthError::new(
                        ErrorType::AuthenticationFailed,
                        "the second factor was not the one last offered for this invitation; open it again",
                    ));
                }
                Ok(InviteEvent::InviteRedeemed { credential_id, at })
            }
            InviteCommand::Revoke { by, at } if self.issued && !self.closed => {
                Ok(InviteEvent::InviteRevoked { by, at })
            }
            InviteCommand::Revoke { .. } => Err(AuthError::new(ErrorType::NoSuchToken, "no such pending invitation")),
            InviteCommand::OfferSecondFactor { .. } | InviteCommand::Redeem { .. } => Err(unusable()),
        }
    }
}

impl Aggregate for Invite {
    const TYPE: &'static str = "Invite";
    type Command = InviteCommand;
    type Event = InviteEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let event = self.decide(command)?;
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            InviteEvent::InviteIssued { expires, .. } => {
                self.issued = true;
                self.expires = expires;
            }
            InviteEvent::InviteSecondFactorOffered { credential_id, .. } => self.offered = Some(credential_id),
            InviteEvent::InviteRedeemed { .. } | InviteEvent::InviteRevoked { .. } => self.closed = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn issued() -> InviteEvent {
        InviteEvent::InviteIssued {
            token_hash: "h".into(),
            user: UserName::from_log("carol".into()),
            logins: BTreeSet::new(),
            identities: BTreeSet::new(),
            expires: 100,
            issued_by: UserName::root(),
            at: 0,
        }
    }

    fn offered(n: u128) -> InviteEvent {
        InviteEvent::InviteSecondFactorOffered { credential_id: Uuid::from_u128(n), at: 1 }
    }

    #[tokio::test]
    async fn an_invitation_is_redeemed_with_the_last_offered_secret() {
        TestFramework::<Invite>::with(())
            .given(vec![issued(), offered(1), offered(2)])
            .when_async(InviteCommand::Redeem { credential_id: Uuid::from_u128(2), at: 5 })
            .await
            .then_expect_events(vec![InviteEvent::InviteRedeemed { credential_id: Uuid::from_u128(2), at: 5 }]);
    }

    #[tokio::test]
    async fn an_earlier_offer_is_void() {
        TestFramework::<Invite>::with(())
            .given(vec![issued(), offered(1), offered(2)])
            .when_async(InviteCommand::Redeem { credential_id: Uuid::from_u128(1), at: 5 })
            .await
            .then_expect_error_message(
                "10000 Authentication failed: the second factor was not the one last offered for this invitation; open it again",
            );
    }

    #[tokio::test]
    async fn an_invitation_is_single_use() {
        TestFramework::<Invite>::with(())
            .given(vec![issued(), offered(1), InviteEvent::InviteRedeemed { credential_id: Uuid::from_u128(1), at: 2 }])
            .when_async(InviteCommand::Redeem { credential_id: Uuid::from_u128(1), at: 5 })
            .await
            .then_expect_error(unusable());
    }

    #[tokio::test]
    async fn an_expired_invitation_cannot_be_opened() {
        TestFramework::<Invite>::with(())
            .given(vec![issued()])
            .when_async(InviteCommand::OfferSecondFactor { credential_id: Uuid::from_u128(1), at: 100 })
            .await
            .then_expect_error(unusable());
    }
}
