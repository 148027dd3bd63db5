//! One line of plain English per event, for auditors reading history.

use std::collections::BTreeSet;
use std::fmt::Display;

use super::audit::TrailRead;
use super::server_config::ConfigChange;
use super::throttle::PasswordSource;
use super::token::{RevocationReason, TokenIssued};
use super::{
    AuditEvent, AuditSubject, CertAuthorityEvent, CertificateEvent, CustomRoleEvent, ForgottenEvent, HostEvent,
    IdentityClaimEvent, InviteEvent, LedgerEvent, LinkVia, PolicyEvent, ProvisionTokenEvent, ProvisionTokenId,
    ServerConfigEvent, SystemEvent, TokenEvent, UserEvent,
};

fn list<T: Display>(items: &BTreeSet<T>) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Epoch milliseconds as RFC 3339 (UTC).
pub fn timestamp(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| ms.to_string())
}

fn issued(grant: &TokenIssued, token_id: &str) -> String {
    let name = grant.name.as_ref().map(|n| format!(" \"{n}\"")).unwrap_or_default();
    format!("{:?} token{name} {token_id} issued to {}, expires {}", grant.kind, grant.user, timestamp(grant.expires))
}

fn join_token(token: &ProvisionTokenId) -> String {
    match token {
        ProvisionTokenId::Static { id } => format!("static token {id}"),
        ProvisionTokenId::Issued { id } => format!("provisioning token {id}"),
    }
}

fn change(c: &ConfigChange) -> String {
    match c {
        ConfigChange::AllowLogin(v) => format!("allowlogin={v}"),
        ConfigChange::ShowStack(v) => format!("showstack={v}"),
        ConfigChange::IgnoreIp(v) => format!("ignoreip={v}"),
        ConfigChange::RedirectUrl { which, url } => format!("{which:?} redirect={}", url.as_deref().unwrap_or("none")),
        ConfigChange::TokenLifetime { kind, ms } => format!("{kind:?} token lifetime={ms} ms"),
        ConfigChange::SuggestedCacheTime { ms } => format!("suggested cache time={ms} ms"),
        ConfigChange::EnvironmentRedirect { environment, which, url } => {
            format!("environment {environment}: {which:?} redirect={}", url.as_deref().unwrap_or("none"))
        }
        ConfigChange::Provider { name, switches } => format!(
            "provider {name}: enabled={} forceloginchoice={} forcelinkchoice={}",
            switches.enabled, switches.force_login_choice, switches.force_link_choice
        ),
    }
}

impl LedgerEvent {
    /// What the event means, in one line; `aggregate_id` is the id of the aggregate it belongs to.
    pub fn describe(&self, aggregate_id: &str) -> String {
        let u = aggregate_id;
        match self {
            LedgerEvent::User(event) => match event {
                UserEvent::UserCreated { display, email, created_by, local: false, .. } => {
                    let email = email.as_ref().map(|e| format!(" <{e}>")).unwrap_or_default();
                    format!("{created_by} created account {u} ({display}{email}) from a provider's identity")
                }
                UserEvent::UserCreated { display, email, created_by, .. } => {
                    let email = email.as_ref().map(|e| format!(" <{e}>")).unwrap_or_default();
                    format!("{created_by} created account {u} ({display}{email})")
                }
                UserEvent::UserImported(account) => {
                    let email = account.email.as_ref().map(|e| format!(" <{e}>")).unwrap_or_default();
                    let kind = if account.local { "local account" } else { "account" };
                    let disabled = if account.disabled() { ", disabled" } else { "" };
                    format!(
                        "{kind} {u} ({}{email}{disabled}) came over from KBase auth2 ({}); created there {}",
                        account.display,
                        account.source,
                        timestamp(account.created)
                    )
                }
                UserEvent::PasswordRehashed { .. } => {
                    format!("{u}'s imported password hash was replaced by an argon2id hash at its first login")
                }
                UserEvent::DisplayNameChanged { display } => format!("{u} changed display name to \"{display}\""),
                UserEvent::EmailChanged { email } => match email {
                    Some(email) => format!("{u} changed email to {email}"),
                    None => format!("{u} removed email"),
                },
                UserEvent::PasswordChanged { changed_by, .. } => format!("{changed_by} set the password of {u}"),
                UserEvent::PasswordResetForced { by, .. } => format!("{by} forced a password reset of {u}"),
                UserEvent::PasswordResetCleared { .. } => format!("{u} completed the forced password reset"),
                UserEvent::LoginRecorded { provider: Some(provider), identity, .. } => match identity {
                    Some(id) => format!("{u} logged in through {provider} (identity {id})"),
                    None => format!("{u} logged in through {provider}"),
                },
                UserEvent::LoginRecorded { .. } => format!("{u} logged in"),
                UserEvent::IdentityLinked { identity, via, .. } => format!(
                    "{u} was linked to {} identity {} ({}) by {}",
                    identity.provider,
                    identity.id,
                    identity.username,
                    match via {
                        LinkVia::Creation => "creating the account from it",
                        LinkVia::LinkAll => "linking all at a login",
                        LinkVia::Link => "linking",
                        LinkVia::Invitation => "the identity the invitation expected",
                    }
                ),
                UserEvent::IdentityUnlinked { id, .. } => format!("{u} unlinked identity {id}"),
                UserEvent::IdentityDetailsRefreshed { identity, .. } => format!(
                    "{} refreshed the details of identity {} of {u} ({})",
                    identity.provider, identity.id, identity.username
                ),
                UserEvent::PolicyIdsAgreed { policy_ids, .. } => {
                    format!("{u} agreed to policy ids {}", list(policy_ids))
                }
                UserEvent::RolesGranted { roles, by, .. } => {
                    format!("{by} granted {} to {u}", list(&roles.iter().map(|r| r.id()).collect()))
                }
                UserEvent::RolesRemoved { roles, by, .. } => {
                    format!("{by} removed {} from {u}", list(&roles.iter().map(|r| r.id()).collect()))
                }
                UserEvent::CustomRolesGranted { roles, by, .. } => {
                    format!("{by} granted custom roles {} to {u}", list(roles))
                }
                UserEvent::CustomRolesRemoved { roles, by, .. } => {
                    format!("{by} removed custom roles {} from {u}", list(roles))
                }
                UserEvent::UserDisabled { reason, by, .. } => format!("{by} disabled {u}: {reason}"),
                UserEvent::UserEnabled { by, .. } => format!("{by} enabled {u}"),
                UserEvent::UserTokensRevoked { by, .. } => format!("{by} revoked every token of {u}"),
                UserEvent::InvitationAccepted { invite, invited_by, .. } => {
                    format!("{u} accepted invitation {invite} from {invited_by}")
                }
                UserEvent::LoginsChanged { logins, by, .. } => {
                    format!("{by} set the logins of {u} to {}", list(logins))
                }
                UserEvent::IdentitiesLinked { identities, .. } => {
                    format!("{u} was linked to identities {}", list(identities))
                }
                UserEvent::SecondFactorEnrolled { .. } => format!("{u} enrolled a second factor (TOTP)"),
                UserEvent::SecondFactorAccepted { .. } => format!("{u} gave a valid second-factor code"),
                UserEvent::PasswordRejected { failures, throttled_until, .. } => match throttled_until {
                    Some(until) => format!(
                        "{u} gave a wrong password ({failures} in a row); no password checked until {}",
                        timestamp(*until)
                    ),
                    None => format!("{u} gave a wrong password ({failures} in a row)"),
                },
                UserEvent::PasswordCheckReserved { source, failures, throttled_until, account_failures, .. } => {
                    let from = match source {
                        PasswordSource::Address(_) => "a client without a device mark",
                        PasswordSource::Device(_) => "a known device",
                    };
                    let account = account_failures
                        .as_ref()
                        .map(|n| format!(", {n} from clients without a mark"))
                        .unwrap_or_default();
                    let wait = throttled_until
                        .as_ref()
                        .map(|until| format!("; it waits until {}", timestamp(*until)))
                        .unwrap_or_default();
                    format!("a password of {u} is checked from {from} ({failures} unreleased from it{account}){wait}")
                }
                UserEvent::PasswordCheckReleased { .. } => {
                    format!("a checked password of {u} was right: its reservation was taken back")
                }
                UserEvent::LoginThrottleCleared { by, .. } => {
                    format!("{by} cleared {u}'s wrong-password count and login locks")
                }
                UserEvent::SecondFactorRejected { failures, locked_until, .. } => match locked_until {
                    Some(until) => format!(
                        "{u} gave a wrong second-factor code ({failures} in a row); locked until {}",
                        timestamp(*until)
                    ),
                    None => format!("{u} gave a wrong second-factor code ({failures} in a row)"),
                },
            },
            LedgerEvent::Token(TokenEvent::TokenIssued(grant)) => issued(grant, u),
            LedgerEvent::IdentityClaim(IdentityClaimEvent::IdentityClaimed { user, .. }) => {
                format!("identity {u} now belongs to {user}")
            }
            LedgerEvent::IdentityClaim(IdentityClaimEvent::IdentityReleased { user, .. }) => {
                format!("identity {u} no longer belongs to {user}")
            }
            LedgerEvent::Policy(PolicyEvent::PolicyIdRemoved { by, .. }) => {
                format!("{by} removed policy id {u} from every user")
            }
            LedgerEvent::Forgotten(ForgottenEvent::PersonForgotten(forget)) => format!(
                "{} forgot the person now called {u} ({} rows rewritten): \"{}\"",
                forget.by, forget.rows, forget.reason
            ),
            LedgerEvent::Token(TokenEvent::TokenRevoked(revoked)) => match revoked.reason {
                RevocationReason::Revoked => format!("{} revoked token {u}", revoked.revoked_by),
                RevocationReason::Logout => format!("{} logged out, revoking token {u}", revoked.revoked_by),
                RevocationReason::Administrator => format!("administrator {} revoked token {u}", revoked.revoked_by),
            },
            LedgerEvent::CustomRole(CustomRoleEvent::CustomRoleSet { description, by, .. }) => {
                format!("{by} set custom role {u}: \"{description}\"")
            }
            LedgerEvent::CustomRole(CustomRoleEvent::CustomRoleDeleted { by, .. }) => {
                format!("{by} deleted custom role {u}")
            }
            LedgerEvent::CustomRole(CustomRoleEvent::CustomRoleImported { description, .. }) => {
                format!("custom role {u} came over from KBase auth2: \"{description}\"")
            }
            LedgerEvent::ServerConfig(ServerConfigEvent::ServerConfigInitialized { .. }) => {
                "the server's settings were initialized".to_owned()
            }
            LedgerEvent::ServerConfig(ServerConfigEvent::ServerConfigUpdated { changes, by, .. }) => {
                format!("{by} changed settings: {}", changes.iter().map(change).collect::<Vec<_>>().join(", "))
            }
            LedgerEvent::System(SystemEvent::LogWitnessed { public_key, .. }) => {
                format!("the log's heads are witnessed from here on, under key {public_key}")
            }
            LedgerEvent::System(SystemEvent::WitnessReset { found, log_head, reason, .. }) => {
                format!(
                    "an operator accepted that the witness no longer matched the log at {log_head} ({found}): {reason}"
                )
            }
            LedgerEvent::System(SystemEvent::AllTokensRevoked { by, .. }) => {
                format!("{by} revoked every token of every user")
            }
            LedgerEvent::System(SystemEvent::AllPasswordResetsForced { by, sessions_ended: true, .. }) => {
                format!("{by} forced a password reset of every local user and ended their sessions")
            }
            LedgerEvent::System(SystemEvent::AllPasswordResetsForced { by, .. }) => {
                format!("{by} forced a password reset of every local user")
            }
            LedgerEvent::Audit(AuditEvent::AuditTrailRead(TrailRead {
                subject,
                since,
                until,
                actor,
                event_type,
                ..
            })) => {
                let whose = match subject {
                    AuditSubject::All => "everyone".to_owned(),
                    AuditSubject::User(user) => user.to_string(),
                    AuditSubject::Token(id) => format!("token {id}"),
                };
                let window = match (since, until) {
                    (None, None) => String::new(),
                    (since, until) => format!(
                        " from {} to {}",
                        since.map_or_else(|| "the start".to_owned(), timestamp),
                        until.map_or_else(|| "now".to_owned(), timestamp)
                    ),
                };
                let kind = event_type.as_ref().map(|t| format!(" ({t} events)")).unwrap_or_default();
                let by = actor.as_ref().map(|a| format!(" caused by {a}")).unwrap_or_default();
                format!("{u} read the history of {whose}{kind}{by}{window}")
            }
            LedgerEvent::Audit(AuditEvent::StateAsOfRead { user, as_of, .. }) => {
                format!("{u} read the state of {user} as of {}", timestamp(*as_of))
            }
            LedgerEvent::CertAuthority(CertAuthorityEvent::CertAuthorityCreated { ca, key, .. }) => {
                format!("the {ca} certificate authority was created with key {}", key.fingerprint)
            }
            LedgerEvent::CertAuthority(CertAuthorityEvent::CertAuthorityRotated {
                ca,
                key,
                previous_fingerprint,
                by,
                ..
            }) => {
                format!(
                    "{by} rotated the {ca} certificate authority from {previous_fingerprint} to {}",
                    key.fingerprint
                )
            }
            LedgerEvent::CertAuthority(CertAuthorityEvent::CertAuthorityRotationStarted { ca, key, by, .. }) => {
                format!(
                    "{by} began rotating the {ca} certificate authority (init): {} is trusted, not yet signing",
                    key.fingerprint
                )
            }
            LedgerEvent::CertAuthority(CertAuthorityEvent::CertAuthorityRotationPhaseChanged {
                ca, phase, by, ..
            }) => {
                format!("{by} moved the {ca} certificate authority's rotation to {}", phase.id())
            }
            LedgerEvent::CertAuthority(CertAuthorityEvent::CertAuthorityRotationRolledBack {
                ca,
                dropped_fingerprint,
                by,
                ..
            }) => format!(
                "{by} rolled back the {ca} certificate authority's rotation: {dropped_fingerprint} is no longer trusted"
            ),
            LedgerEvent::Certificate(CertificateEvent::UserCertIssued { user, principals, requested_by, cert }) => {
                format!(
                    "{requested_by} obtained user certificate {} for {user} (logins {}) on key {}, valid {} to {}",
                    cert.serial,
                    list(principals),
                    cert.key_fingerprint,
                    timestamp(cert.valid_after),
                    timestamp(cert.valid_before)
                )
            }
            LedgerEvent::Certificate(CertificateEvent::HostCertIssued { host_id, roles, token, cert }) => {
                format!(
                    "host {host_id} ({}) got host certificate {} with {} on key {}, valid until {}",
                    list(roles),
                    cert.serial,
                    join_token(token),
                    cert.key_fingerprint,
                    timestamp(cert.valid_before)
                )
            }
            LedgerEvent::ProvisionToken(ProvisionTokenEvent::ProvisionTokenIssued {
                roles,
                expires,
                issued_by,
                ..
            }) => {
                format!(
                    "{issued_by} issued provisioning token {u} for {}, expires {}",
                    list(roles),
                    timestamp(*expires)
                )
            }
            LedgerEvent::ProvisionToken(ProvisionTokenEvent::ProvisionTokenUsed { host_id, roles, .. }) => {
                format!("host {host_id} used provisioning token {u} to join as {}", list(roles))
            }
            LedgerEvent::ProvisionToken(ProvisionTokenEvent::ProvisionTokenDeleted { by, .. }) => {
                format!("{by} deleted provisioning token {u}")
            }
            LedgerEvent::Invite(InviteEvent::InviteIssued { user, logins, expires, issued_by, .. }) => format!(
                "{issued_by} invited {user} (logins {}) with invitation {u}, expires {}",
                list(logins),
                timestamp(*expires)
            ),
            LedgerEvent::Invite(InviteEvent::InviteSecondFactorOffered { .. }) => {
                format!("invitation {u} was opened and offered a new second factor")
            }
            LedgerEvent::Invite(InviteEvent::InviteRedeemed { .. }) => format!("invitation {u} was redeemed"),
            LedgerEvent::Host(HostEvent::HostJoined { key_fingerprint, token, principal_of: Some(host), .. }) => {
                format!("name {u} was bound to host {host}'s key {key_fingerprint} with {}", join_token(token))
            }
            LedgerEvent::Host(HostEvent::HostJoined { roles, key_fingerprint, token, principals, .. }) => {
                let extra = if principals.is_empty() {
                    String::new()
                } else {
                    format!(
                        " (also named {})",
                        principals.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                    )
                };
                format!(
                    "host {u} joined as {} with key {key_fingerprint}{extra} and {}",
                    list(roles),
                    join_token(token)
                )
            }
            LedgerEvent::Host(HostEvent::HostReleased { by, .. }) => {
                format!("{by} freed host name {u} from its key")
            }
            LedgerEvent::Invite(InviteEvent::InviteRevoked { by, .. }) => format!("{by} revoked invitation {u}"),
            LedgerEvent::Audit(AuditEvent::AnonIdsTranslated { anon_ids, .. }) => {
                let ids: Vec<String> = anon_ids.iter().map(ToString::to_string).collect();
                format!("{u} translated anonymous ids {}", ids.join(", "))
            }
        }
    }
}
