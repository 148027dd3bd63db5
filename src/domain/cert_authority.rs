//! The `CertAuthority` aggregate: one per kind (`user`, `host`). It records
//! that a signing key exists — its public key and fingerprint — and every
//! rotation. The private key never enters the log: it lives in the
//! credentials store under `credential_id` (secret by reference).
//!
//! A rotation is immediate (one `CertAuthorityRotated`) or goes in phases, as
//! Teleport's: `init` adds a new key that is trusted but does not sign;
//! `update_clients` signs with the new key while both are trusted;
//! `update_servers` (hosts renew their certificates) changes nothing more;
//! `standby` drops the old key (`CertAuthorityRotated`). `rollback` returns
//! to the old key from any phase before standby.

use std::fmt;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum CertAuthorityEvent {
    CertAuthorityCreated {
        ca: CaKind,
        key: SigningKey,
        at: i64,
    },
    /// The authority signs with `key` from now on and trusts it alone; the old
    /// key is no longer published (an immediate rotation, or a phased one's standby).
    CertAuthorityRotated {
        ca: CaKind,
        key: SigningKey,
        previous_fingerprint: String,
        by: UserName,
        at: i64,
    },
    /// A phased rotation began (`init`): `key` is trusted beside the current
    /// one, which still signs.
    CertAuthorityRotationStarted {
        ca: CaKind,
        key: SigningKey,
        by: UserName,
        at: i64,
    },
    /// A phased rotation moved to `phase` (`update_clients`: the new key signs; `update_servers`).
    CertAuthorityRotationPhaseChanged {
        ca: CaKind,
        phase: RotationPhase,
        by: UserName,
        at: i64,
    },
    /// A phased rotation was abandoned: the old key signs again and the new
    /// one (`dropped_fingerprint`) is no longer trusted.
    CertAuthorityRotationRolledBack {
        ca: CaKind,
        dropped_fingerprint: String,
        by: UserName,
        at: i64,
    },
}

/// Where a phased rotation stands (`standby`: none in progress).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationPhase {
    Standby,
    Init,
    UpdateClients,
    UpdateServers,
}

impl RotationPhase {
    pub fn id(self) -> &'static str {
        match self {
            Self::Standby => "standby",
            Self::Init => "init",
            Self::UpdateClients => "update_clients",
            Self::UpdateServers => "update_servers",
        }
    }

    /// Whether the new key signs in this phase.
    pub fn new_key_signs(self) -> bool {
        matches!(self, Self::UpdateClients | Self::UpdateServers)
    }
}

/// A step an Admin asks a rotation to take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RotationStep {
    Init,
    UpdateClients,
    UpdateServers,
    Standby,
    Rollback,
}

impl RotationStep {
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        Ok(match input {
            "init" => Self::Init,
            "update_clients" => Self::UpdateClients,
            "update_servers" => Self::UpdateServers,
            "standby" => Self::Standby,
            "rollback" => Self::Rollback,
            other => {
                return Err(AuthError::illegal(format!(
                    "Unknown rotation phase {other:?}: expected init, update_clients, update_servers, standby or rollback"
                )));
            }
        })
    }
}

domain_event!(CertAuthorityEvent);

#[derive(Debug, Clone, PartialEq)]
pub enum CertAuthorityCommand {
    /// Creates the authority; refused when it exists (a concurrent start won).
    Create { ca: CaKind, key: SigningKey, at: i64 },
    /// An immediate rotation onto `key`; refused while a phased one is in progress.
    Rotate { key: SigningKey, by: UserName, at: i64 },
    /// A phased rotation's step; `key` is the new key, needed (only) by `init`.
    RotateInPhases { step: RotationStep, key: Option<SigningKey>, by: UserName, at: i64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct CertAuthority {
    kind: Option<CaKind>,
    fingerprint: Option<String>,
    /// The new key of a rotation in progress, and its phase.
    pending: Option<(SigningKey, RotationPhase)>,
}

impl CertAuthority {
    fn step(
        &self,
        ca: CaKind,
        current: &str,
        step: RotationStep,
        key: Option<SigningKey>,
        by: UserName,
        at: i64,
    ) -> Result<CertAuthorityEvent, AuthError> {
        let phase = self.pending.as_ref().map_or(RotationPhase::Standby, |(_, phase)| *phase);
        let wrong = |expected: &str| {
            AuthError::illegal(format!(
                "The {ca} certificate authority's rotation is in phase {}; this step needs {expected}",
                phase.id()
            ))
        };
        Ok(match step {
            RotationStep::Init if phase == RotationPhase::Standby => {
                let key = key.ok_or_else(|| AuthError::illegal("init needs a new key"))?;
                CertAuthorityEvent::CertAuthorityRotationStarted { ca, key, by, at }
            }
            RotationStep::Init => return Err(wrong("standby (no rotation in progress)")),
            RotationStep::UpdateClients if phase == RotationPhase::Init => {
                CertAuthorityEvent::CertAuthorityRotationPhaseChanged {
                    ca,
                    phase: RotationPhase::UpdateClients,
                    by,
                    at,
                }
            }
            RotationStep::UpdateClients => return Err(wrong("init")),
            RotationStep::UpdateServers if phase == RotationPhase::UpdateClients => {
                CertAuthorityEvent::CertAuthorityRotationPhaseChanged {
                    ca,
                    phase: RotationPhase::UpdateServers,
                    by,
                    at,
                }
            }
            RotationStep::UpdateServers => return Err(wrong("update_clients")),
            RotationStep::Standby => match &self.pending {
                Some((key, RotationPhase::UpdateServers)) => CertAuthorityEvent::CertAuthorityRotated {
                    ca,
                    key: key.clone(),
                    previous_fingerprint: current.to_owned(),
                    by,
                    at,
                },
                _ => return Err(wrong("update_servers")),
            },
            RotationStep::Rollback => match &self.pending {
                Some((key, _)) => CertAuthorityEvent::CertAuthorityRotationRolledBack {
                    ca,
                    dropped_fingerprint: key.fingerprint.clone(),
                    by,
                    at,
                },
                None => return Err(wrong("a rotation in progress")),
            },
        })
    }
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
            (CertAuthorityCommand::Rotate { .. }, Some(ca), Some(_)) if self.pending.is_some() => {
                return Err(AuthError::illegal(format!(
                    "The {ca} certificate authority is rotating in phases: finish it (standby) or roll it back first"
                )));
            }
            (CertAuthorityCommand::Rotate { key, by, at }, Some(ca), Some(previous_fingerprint)) => {
                CertAuthorityEvent::CertAuthorityRotated { ca, key, previous_fingerprint, by, at }
            }
            (CertAuthorityCommand::RotateInPhases { step, key, by, at }, Some(ca), Some(current)) => {
                self.step(ca, &current, step, key, by, at)?
            }
            (CertAuthorityCommand::RotateInPhases { .. }, _, _) => {
                return Err(AuthError::illegal("No such certificate authority"));
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
            CertAuthorityEvent::CertAuthorityRotated { key, .. } => {
                self.fingerprint = Some(key.fingerprint);
                self.pending = None;
            }
            CertAuthorityEvent::CertAuthorityRotationStarted { key, .. } => {
                self.pending = Some((key, RotationPhase::Init));
            }
            CertAuthorityEvent::CertAuthorityRotationPhaseChanged { phase, .. } => {
                if let Some((_, current)) = &mut self.pending {
                    *current = phase;
                }
            }
            CertAuthorityEvent::CertAuthorityRotationRolledBack { .. } => self.pending = None,
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

    fn phased(step: RotationStep, key: Option<SigningKey>) -> CertAuthorityCommand {
        CertAuthorityCommand::RotateInPhases { step, key, by: UserName::root(), at: 3 }
    }

    #[tokio::test]
    async fn a_phased_rotation_goes_in_order_and_rolls_back_before_standby() {
        let created = CertAuthorityEvent::CertAuthorityCreated { ca: CaKind::Host, key: key(1), at: 1 };
        let started = CertAuthorityEvent::CertAuthorityRotationStarted {
            ca: CaKind::Host,
            key: key(2),
            by: UserName::root(),
            at: 3,
        };
        let phase = |phase| CertAuthorityEvent::CertAuthorityRotationPhaseChanged {
            ca: CaKind::Host,
            phase,
            by: UserName::root(),
            at: 3,
        };
        TestFramework::<CertAuthority>::with(())
            .given(vec![created.clone()])
            .when_async(phased(RotationStep::Init, Some(key(2))))
            .await
            .then_expect_events(vec![started.clone()]);
        TestFramework::<CertAuthority>::with(())
            .given(vec![created.clone()])
            .when_async(phased(RotationStep::UpdateServers, None))
            .await
            .then_expect_error_message("30001 Illegal input parameter: The host certificate authority's rotation is in phase standby; this step needs update_clients");
        TestFramework::<CertAuthority>::with(())
            .given(vec![
                created.clone(),
                started.clone(),
                phase(RotationPhase::UpdateClients),
                phase(RotationPhase::UpdateServers),
            ])
            .when_async(phased(RotationStep::Standby, None))
            .await
            .then_expect_events(vec![CertAuthorityEvent::CertAuthorityRotated {
                ca: CaKind::Host,
                key: key(2),
                previous_fingerprint: "SHA256:fingerprint1".into(),
                by: UserName::root(),
                at: 3,
            }]);
        TestFramework::<CertAuthority>::with(())
            .given(vec![created.clone(), started.clone(), phase(RotationPhase::UpdateClients)])
            .when_async(phased(RotationStep::Rollback, None))
            .await
            .then_expect_events(vec![CertAuthorityEvent::CertAuthorityRotationRolledBack {
                ca: CaKind::Host,
                dropped_fingerprint: "SHA256:fingerprint2".into(),
                by: UserName::root(),
                at: 3,
            }]);
        TestFramework::<CertAuthority>::with(())
            .given(vec![created.clone()])
            .when_async(phased(RotationStep::Rollback, None))
            .await
            .then_expect_error_message("30001 Illegal input parameter: The host certificate authority's rotation is in phase standby; this step needs a rotation in progress");
        TestFramework::<CertAuthority>::with(())
            .given(vec![created, started])
            .when_async(CertAuthorityCommand::Rotate { key: key(3), by: UserName::root(), at: 4 })
            .await
            .then_expect_error_message("30001 Illegal input parameter: The host certificate authority is rotating in phases: finish it (standby) or roll it back first");
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
