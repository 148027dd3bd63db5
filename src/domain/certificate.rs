//! The `Certificate` aggregate: one per serial number. Recording a certificate
//! under its serial is what makes serials unique — a second certificate with
//! the same serial is refused by the log's optimistic lock, and the issuer
//! signs again with a fresh serial. Every certificate ever issued, user or
//! host, is one event an auditor can list.

use std::collections::BTreeSet;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::AuthError;
use super::names::UserName;
use super::principals::{HostId, HostRole, Login};

/// What a certificate is, apart from the subject: shared by user and host certificates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signed {
    pub serial: u64,
    /// `SHA256:…` of the certified public key.
    pub key_fingerprint: String,
    /// Epoch milliseconds (the certificate itself counts whole seconds).
    pub valid_after: i64,
    pub valid_before: i64,
    /// The fingerprint of the authority key that signed it.
    pub ca_fingerprint: String,
    pub at: i64,
}

/// The provisioning token a host joined with.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProvisionTokenId {
    /// A token from the configuration file, by its id (a prefix of its hash).
    Static { id: String },
    /// A token issued through the API (`ProvisionToken` aggregate id).
    Issued { id: Uuid },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum CertificateEvent {
    UserCertIssued { user: UserName, principals: BTreeSet<Login>, requested_by: UserName, cert: Signed },
    HostCertIssued { host_id: HostId, roles: BTreeSet<HostRole>, token: ProvisionTokenId, cert: Signed },
}

impl CertificateEvent {
    pub fn cert(&self) -> &Signed {
        match self {
            Self::UserCertIssued { cert, .. } | Self::HostCertIssued { cert, .. } => cert,
        }
    }
}

domain_event!(CertificateEvent);

/// Records an issued certificate under its serial (the aggregate id).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordCertificate(pub CertificateEvent);

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Certificate {
    recorded: bool,
}

/// The detail of the error that says a serial was taken (the issuer retries with another).
pub const SERIAL_TAKEN: &str = "Certificate serial already used";

impl Aggregate for Certificate {
    const TYPE: &'static str = "Certificate";
    type Command = RecordCertificate;
    type Event = CertificateEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        if self.recorded {
            return Err(AuthError::illegal(SERIAL_TAKEN));
        }
        sink.write(command.0, self).await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {
        self.recorded = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    fn issued() -> CertificateEvent {
        CertificateEvent::UserCertIssued {
            user: UserName::from_log("alice".into()),
            principals: BTreeSet::from([Login::parse("alice").unwrap_or_else(|e| panic!("{e}"))]),
            requested_by: UserName::from_log("alice".into()),
            cert: Signed {
                serial: 7,
                key_fingerprint: "SHA256:k".into(),
                valid_after: 0,
                valid_before: 1,
                ca_fingerprint: "SHA256:ca".into(),
                at: 0,
            },
        }
    }

    #[tokio::test]
    async fn a_serial_is_used_once() {
        TestFramework::<Certificate>::with(())
            .given(vec![issued()])
            .when_async(RecordCertificate(issued()))
            .await
            .then_expect_error_message("30001 Illegal input parameter: Certificate serial already used");
    }
}
