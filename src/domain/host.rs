//! The `Host` aggregate: one per host id. It owns which key a host id is bound
//! to: the first join binds it; a shared static token may only rejoin with the
//! same key, while an issued provisioning token (an admin's explicit grant for
//! one host) may bind a new key. Racing bindings are decided by the optimistic
//! lock. A rejoin with the bound key changes nothing here and records nothing
//! (its `HostCertIssued` is the record of the join), so a host's stream holds
//! its bindings only and renewing certificates never contends on it.

use std::collections::BTreeSet;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::certificate::JoinToken;
use super::error::AuthError;
use super::principals::HostRole;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum HostEvent {
    /// The host id was bound to the key `key_fingerprint` (its first join, or a new key); its host certificate follows.
    HostJoined { roles: BTreeSet<HostRole>, key_fingerprint: String, token: JoinToken, at: i64 },
}

impl DomainEvent for HostEvent {
    fn event_type(&self) -> String {
        "HostJoined".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinHost {
    pub roles: BTreeSet<HostRole>,
    pub key_fingerprint: String,
    pub token: JoinToken,
    pub at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Host {
    key_fingerprint: Option<String>,
}

impl Aggregate for Host {
    const TYPE: &'static str = "Host";
    type Command = JoinHost;
    type Event = HostEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: JoinHost, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let JoinHost { roles, key_fingerprint, token, at } = command;
        let other_key = self.key_fingerprint.as_ref().is_some_and(|bound| *bound != key_fingerprint);
        if other_key && matches!(token, JoinToken::Static { .. }) {
            return Err(AuthError::unauthorized(
                "This host id already joined with another key; join it again with an issued provisioning token",
            ));
        }
        if self.key_fingerprint.as_ref() != Some(&key_fingerprint) {
            sink.write(HostEvent::HostJoined { roles, key_fingerprint, token, at }, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: HostEvent) {
        let HostEvent::HostJoined { key_fingerprint, .. } = event;
        self.key_fingerprint = Some(key_fingerprint);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    pub(crate) fn joined(key: &str, token: JoinToken) -> HostEvent {
        HostEvent::HostJoined { roles: BTreeSet::from([HostRole::Node]), key_fingerprint: key.into(), token, at: 1 }
    }

    fn join(key: &str, token: JoinToken) -> JoinHost {
        JoinHost { roles: BTreeSet::from([HostRole::Node]), key_fingerprint: key.into(), token, at: 1 }
    }

    fn shared() -> JoinToken {
        JoinToken::Static { id: "0123456789abcdef".into() }
    }

    #[tokio::test]
    async fn a_static_token_rejoins_only_with_the_same_key() {
        TestFramework::<Host>::with(())
            .given(vec![joined("SHA256:a", shared())])
            .when_async(join("SHA256:b", shared()))
            .await
            .then_expect_error_message(
                "20000 Unauthorized: This host id already joined with another key; join it again with an issued provisioning token",
            );
        TestFramework::<Host>::with(())
            .given(vec![joined("SHA256:a", shared())])
            .when_async(join("SHA256:a", shared()))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn an_issued_token_binds_a_new_key() {
        let issued = JoinToken::Issued { id: Uuid::from_u128(1) };
        TestFramework::<Host>::with(())
            .given(vec![joined("SHA256:a", shared())])
            .when_async(join("SHA256:b", issued.clone()))
            .await
            .then_expect_events(vec![joined("SHA256:b", issued)]);
    }
}
