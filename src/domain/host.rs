//! The `Host` aggregate: one per host name — a host id, or an extra principal
//! a host's certificate carries. It owns which key the name is bound to: the
//! first join binds it, and from then on only that key joins under the name
//! (any token, static or issued); only an Admin's release frees it. Racing
//! bindings are decided by the optimistic lock. A rejoin with the bound key
//! and the same principals records nothing (its `HostCertIssued` is the record
//! of the join), so renewing certificates never contends on the stream.

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::certificate::ProvisionTokenId;
use super::error::AuthError;
use super::names::UserName;
use super::principals::{HostId, HostRole};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum HostEvent {
    /// The name was bound to the key `key_fingerprint` (or its principals
    /// changed); the host certificate follows. `principal_of`: the name is an
    /// extra principal of that host id, not a host id itself.
    HostJoined {
        roles: BTreeSet<HostRole>,
        key_fingerprint: String,
        token: ProvisionTokenId,
        at: i64,
        /// Since v1.1: the host id's extra principals (a v1.0 payload has none).
        #[serde(default)]
        principals: BTreeSet<HostId>,
        /// Since v1.1 (a v1.0 payload reads as a host id's own binding).
        #[serde(default)]
        principal_of: Option<HostId>,
    },
    /// An Admin freed the name: the next join binds it to whichever key it brings.
    HostReleased { by: UserName, at: i64 },
}

domain_event!(HostEvent, |event| match event {
    // 1.1: `principals`, `principal_of` (additive: a 1.0 payload reads as none).
    Self::HostJoined { .. } => "1.1",
    Self::HostReleased { .. } => "1.0",
});

#[derive(Debug, Clone, PartialEq)]
pub enum HostCommand {
    /// Join under this name with a key.
    Join(JoinHost),
    /// Free the name (an Admin).
    Release { by: UserName, at: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct JoinHost {
    pub roles: BTreeSet<HostRole>,
    pub key_fingerprint: String,
    pub token: ProvisionTokenId,
    pub at: i64,
    /// A host id's extra principals (empty for a principal's own name).
    pub principals: BTreeSet<HostId>,
    /// The host id this name is an extra principal of (`None`: the name is a host id).
    pub principal_of: Option<HostId>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Host {
    key_fingerprint: Option<String>,
    principals: BTreeSet<HostId>,
    principal_of: Option<HostId>,
}

impl Host {
    /// The refusal of a join with another key than the one a name is bound to.
    pub fn taken() -> AuthError {
        AuthError::unauthorized(
            "This host name is bound to another host key; an Admin frees it with DELETE /api/V2/admin/hosts/{id}",
        )
    }
}

impl Aggregate for Host {
    const TYPE: &'static str = "Host";
    type Command = HostCommand;
    type Event = HostEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: HostCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        match command {
            HostCommand::Join(JoinHost { roles, key_fingerprint, token, at, principals, principal_of }) => {
                if self.key_fingerprint.as_ref().is_some_and(|bound| *bound != key_fingerprint) {
                    return Err(Self::taken());
                }
                let unchanged = self.key_fingerprint.is_some()
                    && self.principals == principals
                    && self.principal_of == principal_of;
                if !unchanged {
                    let joined = HostEvent::HostJoined { roles, key_fingerprint, token, at, principals, principal_of };
                    sink.write(joined, self).await;
                }
                Ok(())
            }
            HostCommand::Release { by, at } => {
                if self.key_fingerprint.is_none() {
                    return Err(AuthError::new(super::error::ErrorType::NoSuchHost, "no host is bound to this name"));
                }
                sink.write(HostEvent::HostReleased { by, at }, self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: HostEvent) {
        match event {
            HostEvent::HostJoined { key_fingerprint, principals, principal_of, .. } => {
                *self = Self { key_fingerprint: Some(key_fingerprint), principals, principal_of };
            }
            HostEvent::HostReleased { .. } => *self = Self::default(),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    pub(crate) fn joined(key: &str, token: ProvisionTokenId) -> HostEvent {
        HostEvent::HostJoined {
            roles: BTreeSet::from([HostRole::Node]),
            key_fingerprint: key.into(),
            token,
            at: 1,
            principals: BTreeSet::new(),
            principal_of: None,
        }
    }

    fn join(key: &str, token: ProvisionTokenId) -> HostCommand {
        HostCommand::Join(JoinHost {
            roles: BTreeSet::from([HostRole::Node]),
            key_fingerprint: key.into(),
            token,
            at: 1,
            principals: BTreeSet::new(),
            principal_of: None,
        })
    }

    fn shared() -> ProvisionTokenId {
        ProvisionTokenId::Static { id: "0123456789abcdef".into() }
    }

    fn issued() -> ProvisionTokenId {
        ProvisionTokenId::Issued { id: Uuid::from_u128(1) }
    }

    fn admin() -> UserName {
        UserName::parse(Some("admin")).unwrap_or_else(|e| panic!("{e}"))
    }

    const TAKEN: &str = "20000 Unauthorized: This host name is bound to another host key; an Admin frees it with DELETE /api/V2/admin/hosts/{id}";

    #[test]
    fn a_v1_0_host_joined_reads_as_a_host_id_without_principals() {
        let v1 = r#"{"HostJoined":{"roles":["node"],"key_fingerprint":"SHA256:a","token":{"Static":{"id":"0123456789abcdef"}},"at":1}}"#;
        let decoded: HostEvent = serde_json::from_str(v1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(decoded, joined("SHA256:a", shared()));
    }

    #[tokio::test]
    async fn a_bound_name_joins_only_with_its_key_whatever_the_token() {
        for token in [shared(), issued()] {
            TestFramework::<Host>::with(())
                .given(vec![joined("SHA256:a", shared())])
                .when_async(join("SHA256:b", token))
                .await
                .then_expect_error_message(TAKEN);
        }
        TestFramework::<Host>::with(())
            .given(vec![joined("SHA256:a", shared())])
            .when_async(join("SHA256:a", issued()))
            .await
            .then_expect_events(vec![]);
    }

    #[tokio::test]
    async fn new_principals_are_recorded_and_a_release_frees_the_name() {
        let with_principal = HostCommand::Join(JoinHost {
            roles: BTreeSet::from([HostRole::Node]),
            key_fingerprint: "SHA256:a".into(),
            token: shared(),
            at: 1,
            principals: BTreeSet::from([HostId::parse("web1").unwrap_or_else(|e| panic!("{e}"))]),
            principal_of: None,
        });
        let HostCommand::Join(expected) = with_principal.clone() else { unreachable!() };
        TestFramework::<Host>::with(())
            .given(vec![joined("SHA256:a", shared())])
            .when_async(with_principal)
            .await
            .then_expect_events(vec![HostEvent::HostJoined {
                roles: expected.roles,
                key_fingerprint: expected.key_fingerprint,
                token: expected.token,
                at: 1,
                principals: expected.principals,
                principal_of: None,
            }]);
        let released = HostEvent::HostReleased { by: admin(), at: 2 };
        TestFramework::<Host>::with(())
            .given(vec![joined("SHA256:a", shared())])
            .when_async(HostCommand::Release { by: admin(), at: 2 })
            .await
            .then_expect_events(vec![released.clone()]);
        TestFramework::<Host>::with(())
            .given(vec![joined("SHA256:a", shared()), released])
            .when_async(join("SHA256:b", shared()))
            .await
            .then_expect_events(vec![joined("SHA256:b", shared())]);
        TestFramework::<Host>::with(())
            .given_no_previous_events()
            .when_async(HostCommand::Release { by: admin(), at: 2 })
            .await
            .then_expect_error_message("50050 No such host: no host is bound to this name");
    }
}
