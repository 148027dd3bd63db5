//! Remote identities: who a person is at an identity provider, as an account
//! links them (upstream's `RemoteIdentity`), and the `IdentityClaim`
//! aggregate — one per identity — that lets an identity belong to at most one
//! account even when servers race: linking claims the identity first (its own
//! stream, so two claims conflict in the log), then records the link on the
//! account's stream; unlinking records the unlink, then releases the claim.

use std::fmt;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use md5::{Digest, Md5};
use serde::{Deserialize, Serialize};

use super::error::{AuthError, ErrorType};
use super::names::UserName;

/// An identity's id: the lowercase hex MD5 of `"<provider name>_<provider's id>"`
/// (upstream's, so ids match across implementations).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IdentityId(String);

impl IdentityId {
    /// The id of the person `provider_id` at `provider`.
    pub fn of(provider: &str, provider_id: &str) -> Self {
        let digest = Md5::digest(format!("{provider}_{provider_id}").as_bytes());
        Self(digest.iter().map(|b| format!("{b:02x}")).collect())
    }

    /// An id as a request names it (trimmed; any text — an unknown id is simply not found).
    pub fn named(input: &str) -> Self {
        Self(super::names::java_trim(input).to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A person at a provider, as an account links them: the provider's name and
/// id for them (hashed into [`IdentityId`]) and what the provider said of them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteIdentity {
    pub id: IdentityId,
    pub provider: String,
    pub provider_id: String,
    pub username: String,
    pub fullname: Option<String>,
    pub email: Option<String>,
}

impl RemoteIdentity {
    /// The identity `provider_id` at `provider`, its id computed.
    pub fn new(
        provider: &str,
        provider_id: &str,
        username: &str,
        fullname: Option<String>,
        email: Option<String>,
    ) -> Self {
        Self {
            id: IdentityId::of(provider, provider_id),
            provider: provider.to_owned(),
            provider_id: provider_id.to_owned(),
            username: username.to_owned(),
            fullname,
            email,
        }
    }
}

/// How an identity came to be linked to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkVia {
    /// The identity the account was created from.
    Creation,
    /// Linked with `linkall` at a login's pick or create.
    LinkAll,
    /// Chosen on the link page, or linked at once as the only new one.
    Link,
    /// Found by the identity an invitation expected (provider and verified email).
    Invitation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum IdentityClaimEvent {
    /// The identity now belongs to `user`.
    IdentityClaimed { user: UserName, at: i64 },
    /// The identity no longer belongs to `user`.
    IdentityReleased { user: UserName, at: i64 },
}

domain_event!(IdentityClaimEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum IdentityClaimCommand {
    /// Claims identity `id` for `user`; refused (40010) while another account
    /// holds it — unless its claim was made before `takeover_before` (the
    /// application gives that only when no account has the identity: a claim
    /// whose link or release was lost to a crash). Claiming an identity one
    /// already holds renews the claim.
    Claim { id: IdentityId, user: UserName, takeover_before: Option<i64>, at: i64 },
    /// Releases the identity if `user` holds it.
    Release { user: UserName, at: i64 },
}

/// Who holds one identity.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct IdentityClaim {
    owner: Option<UserName>,
    /// When the owner claimed it.
    claimed_at: i64,
}

impl IdentityClaim {
    fn decide(&self, command: IdentityClaimCommand) -> Result<Vec<IdentityClaimEvent>, AuthError> {
        Ok(match command {
            IdentityClaimCommand::Claim { user, at, .. } if self.owner.is_none() => {
                vec![IdentityClaimEvent::IdentityClaimed { user, at }]
            }
            // The holder claiming again renews the claim (and moves the
            // stream on, so a takeover racing with it conflicts).
            IdentityClaimCommand::Claim { user, at, .. } if self.owner.as_ref() == Some(&user) => {
                vec![IdentityClaimEvent::IdentityClaimed { user, at }]
            }
            IdentityClaimCommand::Claim { user, takeover_before: Some(before), at, .. } if self.claimed_at < before => {
                vec![IdentityClaimEvent::IdentityClaimed { user, at }]
            }
            IdentityClaimCommand::Claim { id, .. } => {
                return Err(AuthError::new(ErrorType::IdentityAlreadyLinked, id.as_str()));
            }
            IdentityClaimCommand::Release { user, at } if self.owner.as_ref() == Some(&user) => {
                vec![IdentityClaimEvent::IdentityReleased { user, at }]
            }
            IdentityClaimCommand::Release { .. } => Vec::new(),
        })
    }
}

impl Aggregate for IdentityClaim {
    const TYPE: &'static str = "IdentityClaim";
    type Command = IdentityClaimCommand;
    type Event = IdentityClaimEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            IdentityClaimEvent::IdentityClaimed { user, at } => {
                self.owner = Some(user);
                self.claimed_at = at;
            }
            IdentityClaimEvent::IdentityReleased { .. } => self.owner = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn name(n: &str) -> UserName {
        UserName::from_log(n.to_owned())
    }

    #[test]
    fn ids_are_upstreams() {
        assert_eq!(IdentityId::of("prov", "id1").as_str(), "ef0518c79af70ed979907969c6d0a0f7");
    }

    #[tokio::test]
    async fn an_identity_held_by_another_account_is_refused() {
        let id = IdentityId::of("OIDC", "s1");
        TestFramework::<IdentityClaim>::with(())
            .given(vec![IdentityClaimEvent::IdentityClaimed { user: name("bob"), at: 1 }])
            .when_async(IdentityClaimCommand::Claim {
                id: id.clone(),
                user: name("alice"),
                takeover_before: Some(1),
                at: 2,
            })
            .await
            .then_expect_error_message(&format!("40010 Identity already linked: {id}"));
    }

    #[tokio::test]
    async fn only_a_claim_older_than_the_lease_is_taken_over() {
        TestFramework::<IdentityClaim>::with(())
            .given(vec![IdentityClaimEvent::IdentityClaimed { user: name("bob"), at: 1 }])
            .when_async(IdentityClaimCommand::Claim {
                id: IdentityId::of("OIDC", "s1"),
                user: name("alice"),
                takeover_before: Some(2),
                at: 9,
            })
            .await
            .then_expect_events(vec![IdentityClaimEvent::IdentityClaimed { user: name("alice"), at: 9 }]);
    }

    #[tokio::test]
    async fn a_released_identity_is_claimed_again() {
        TestFramework::<IdentityClaim>::with(())
            .given(vec![
                IdentityClaimEvent::IdentityClaimed { user: name("bob"), at: 1 },
                IdentityClaimEvent::IdentityReleased { user: name("bob"), at: 2 },
            ])
            .when_async(IdentityClaimCommand::Claim {
                id: IdentityId::of("OIDC", "s1"),
                user: name("alice"),
                takeover_before: None,
                at: 3,
            })
            .await
            .then_expect_events(vec![IdentityClaimEvent::IdentityClaimed { user: name("alice"), at: 3 }]);
    }

    #[tokio::test]
    async fn the_holder_claiming_again_renews_the_claim() {
        TestFramework::<IdentityClaim>::with(())
            .given(vec![IdentityClaimEvent::IdentityClaimed { user: name("bob"), at: 1 }])
            .when_async(IdentityClaimCommand::Claim {
                id: IdentityId::of("OIDC", "s1"),
                user: name("bob"),
                takeover_before: None,
                at: 7,
            })
            .await
            .then_expect_events(vec![IdentityClaimEvent::IdentityClaimed { user: name("bob"), at: 7 }]);
    }

    #[tokio::test]
    async fn only_the_holder_releases() {
        TestFramework::<IdentityClaim>::with(())
            .given(vec![IdentityClaimEvent::IdentityClaimed { user: name("bob"), at: 1 }])
            .when_async(IdentityClaimCommand::Release { user: name("alice"), at: 2 })
            .await
            .then_expect_events(vec![]);
    }
}
