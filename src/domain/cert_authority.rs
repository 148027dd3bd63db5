//! The `CertAuthority` aggregate: one per kind (`user`, `host`). It records
//! that a signing key exists — its public key and fingerprint — and every
//! rotation. The private key never enters the log: it lives in the
//! credentials store under `credential_id` (secret by reference).

use std::fmt;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::AuthError;
use super::names::UserName;

/// Which certificates an authority signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CaKind {
    /// Signs user certificates; hosts trust it (`TrustedUserCAKeys`, `cert-authority`).
    User,
    /// Signs host certificates; clients trust it (`@cert-authority` in known_hosts).
    Host,
}

impl CaKind {
    pub const ALL: [CaKind; 2] = [CaKind::User, CaKind::Host];

    /// The aggregate id.
    pub fn id(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Host => "host",
        }
    }

    pub fn parse(input: &str) -> Result<Self, AuthError> {
        Self::ALL.into_iter().find(|k| k.id() == input).ok_or_else(|| {
            AuthError::illegal(format!("Unknown certificate authority {input:?}: expected user or host"))
        })
    }
}

impl fmt::Display for CaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A signing key as the log knows it: public parts and a reference to the private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SigningKey {
    /// The OpenSSH public key line (`ssh-ed25519 AAAA…`).
    pub public_key: String,
    /// `SHA256:…`, as `ssh-keygen -l` prints it.
    pub fingerprint: String,
    /// Where the private key lives in the credentials store.
    pub credential_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum CertAuthorityEvent {
    CertAuthorityCreated {
        ca: CaKind,
        key: SigningKey,
        at: i64,
    },
    /// The authority signs with a new key from now on; the old key is no longer published.
    CertAuthorityRotated {
        ca: CaKind,
        key: SigningKey,
        previous_fingerprint: String,
        by: UserName,
        at: i64,
    },
}

impl DomainEvent for CertAuthorityEvent {
    fn event_type(&self) -> String {
        match self {
            Self::CertAuthorityCreated { .. } => "CertAuthorityCreated",
            Self::CertAuthorityRotated { .. } => "CertAuthorityRotated",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum CertAuthorityCommand {
    /// Creates the authority; refused when it exists (a concurrent start won).
    Create {
        ca: CaKind,
        key: SigningKey,
        at: i64,
    },
    Rotate {
        key: SigningKey,
        by: UserName,
        at: i64,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CertAuthority {
    kind: Option<CaKind>,
    fingerprint: Option<String>,
}

impl Aggregate for CertAuthority {
    const TYPE: &'static str = "CertAuthority";
    type Command = CertAuthorityCommand;
    type Event = CertAuthorityEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        let event = match (command, self.kind, self.fingerprint.clone()) {
            (CertAuthorityCommand::Create { ca, key, at }, None, _) => {
                CertAuthorityEvent::CertAuthorityCreated { ca, key, at }
            }
            (CertAuthorityCommand::Create { ca, .. }, Some(_), _) => {
                return Err(AuthError::illegal(format!("The {ca} certificate authority already exists")));
            }
            (CertAuthorityCommand::Rotate { key, by, at }, Some(ca), Some(previous_fingerprint)) => {
                CertAuthorityEvent::CertAuthorityRotated { ca, key, previous_fingerprint, by, at }
            }
            (CertAuthorityCommand::Rotate { .. }, _, _) => {
                return Err(AuthError::illegal("No such certificate authority"));
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CertAuthorityEvent::CertAuthorityCreated { ca, key, .. } => {
                self.kind = Some(ca);
                self.fingerprint = Some(key.fingerprint);
            }
            CertAuthorityEvent::CertAuthorityRotated { key, .. } => self.fingerprint = Some(key.fingerprint),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    pub(crate) fn key(n: u128) -> SigningKey {
        SigningKey {
            public_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZ1bmN0aW9uYWwgdGVzdCBrZXkgZm9yIGF1dGhsZWRnZXI=".into(),
            fingerprint: format!("SHA256:fingerprint{n}"),
            credential_id: Uuid::from_u128(n),
        }
    }

    #[tokio::test]
    async fn an_authority_is_created_once() {
        TestFramework::<CertAuthority>::with(())
            .given(vec![CertAuthorityEvent::CertAuthorityCreated { ca: CaKind::User, key: key(1), at: 1 }])
            .when_async(CertAuthorityCommand::Create { ca: CaKind::User, key: key(2), at: 2 })
            .await
            .then_expect_error_message("30001 Illegal input parameter: The user certificate authority already exists");
    }

    #[tokio::test]
    async fn rotation_records_the_previous_fingerprint() {
        TestFramework::<CertAuthority>::with(())
            .given(vec![CertAuthorityEvent::CertAuthorityCreated { ca: CaKind::Host, key: key(1), at: 1 }])
            .when_async(CertAuthorityCommand::Rotate { key: key(2), by: UserName::root(), at: 2 })
            .await
            .then_expect_events(vec![CertAuthorityEvent::CertAuthorityRotated {
                ca: CaKind::Host,
                key: key(2),
                previous_fingerprint: "SHA256:fingerprint1".into(),
                by: UserName::root(),
                at: 2,
            }]);
    }
}
