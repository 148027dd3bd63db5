//! Pins the stored JSON of every event type (insta snapshots) and checks that
//! events.md documents exactly the event types that exist, at their versions.
//! A shape change fails here: add an upcaster, bump the version, update events.md.

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::DomainEvent;
use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit::{AuditEvent, AuditSubject, TrailRead};
use super::cert_authority::{CaKind, CertAuthorityEvent};
use super::certificate::{CertificateEvent, ProvisionTokenId, Signed};
use super::custom_role::CustomRoleEvent;
use super::forgotten::{Forget, ForgottenEvent};
use super::host::HostEvent;
use super::identity::{IdentityClaimEvent, IdentityId, LinkVia, RemoteIdentity};
use super::imported::{ImportedAccount, ImportedToggle};
use super::invite::InviteEvent;
use super::names::{CustomRoleId, DisplayName, EmailAddress, PolicyId, UserName};
use super::policy::PolicyEvent;
use super::principals::{HostId, HostRole, InvitedIdentity, Login};
use super::provision_token::ProvisionTokenEvent;
use super::roles::Role;
use super::server_config::{ConfigChange, ProviderSwitches, RedirectKind, ServerConfigEvent, ServerSettings};
use super::system::SystemEvent;
use super::test_mode::{TEST_DATA_LIFETIME_MS, TestCustomRoleEvent, TestDataEvent, TestUserEvent};
use super::token::{RevocationReason, TokenEvent, TokenKind, TokenRevoked};
use super::user::UserEvent;

fn stored<E: DomainEvent + Serialize>(event: &E) -> (String, Value) {
    let payload = serde_json::to_value(event).unwrap_or(Value::Null);
    (
        event.event_type(),
        json!({"event_type": event.event_type(), "event_version": event.event_version(), "payload": payload}),
    )
}

fn name(n: &str) -> UserName {
    UserName::from_log(n.to_owned())
}

fn role(id: &str) -> CustomRoleId {
    CustomRoleId::parse(Some(id)).unwrap_or_else(|e| panic!("{e}"))
}

fn login(l: &str) -> Login {
    Login::parse(l).unwrap_or_else(|e| panic!("{e}"))
}

fn remote() -> RemoteIdentity {
    RemoteIdentity::new(
        "Google",
        "108234567890",
        "bob@example.org",
        Some("Bob B".into()),
        Some("bob@example.org".into()),
    )
}

fn signed(serial: u64) -> Signed {
    Signed {
        serial,
        key_fingerprint: "SHA256:Bq2vqg0yW8f1mR3+0kq8C7uW0m3kUeD1m4yYx8n4m2E".into(),
        valid_after: 1_699_999_940_000,
        valid_before: 1_700_003_600_000,
        ca_fingerprint: "SHA256:fingerprint1".into(),
        at: 1_700_000_000_000,
    }
}

/// One sample of every event type, in the stored form (type, version, payload).
pub(crate) fn samples() -> Vec<(String, Value)> {
    let admin = name("alice");
    let at = 1_700_000_000_000;
    let mut all = vec![
        stored(&UserEvent::UserCreated {
            user: name("bob"),
            display: DisplayName::parse(Some("Bob Builder")).unwrap_or_else(|e| panic!("{e}")),
            email: EmailAddress::parse(Some("bob@example.org")).ok(),
            anon_id: Uuid::from_u128(0x2c1b5a8e_4f5b_4d8e_9d6e_0d7f1c1a0b9e),
            created: at,
            created_by: admin.clone(),
            local: false,
        }),
        stored(&UserEvent::DisplayNameChanged {
            display: DisplayName::parse(Some("Bob B")).unwrap_or_else(|e| panic!("{e}")),
        }),
        stored(&UserEvent::EmailChanged { email: EmailAddress::parse(Some("b@example.com")).ok() }),
        stored(&UserEvent::PasswordChanged { credential_id: Uuid::from_u128(42), changed_by: name("bob"), at }),
        stored(&UserEvent::PasswordResetForced { by: admin.clone(), at }),
        stored(&UserEvent::PasswordResetCleared { at }),
        stored(&UserEvent::LoginRecorded {
            at,
            provider: Some("Google".into()),
            identity: Some(IdentityId::of("Google", "108234567890")),
        }),
        stored(&UserEvent::IdentityLinked { identity: remote(), via: LinkVia::Creation, at }),
        stored(&UserEvent::IdentityUnlinked { id: IdentityId::of("Google", "108234567890"), at }),
        stored(&UserEvent::IdentityDetailsRefreshed { identity: remote(), at }),
        stored(&UserEvent::PolicyIdsAgreed {
            policy_ids: BTreeSet::from([PolicyId::parse(Some("kbase-user")).unwrap_or_else(|e| panic!("{e}"))]),
            at,
        }),
        stored(&IdentityClaimEvent::IdentityClaimed { user: name("bob"), at }),
        stored(&IdentityClaimEvent::IdentityReleased { user: name("bob"), at }),
        stored(&PolicyEvent::PolicyIdRemoved { by: admin.clone(), at }),
        stored(&UserEvent::RolesGranted {
            roles: BTreeSet::from([Role::DevToken, Role::ServToken]),
            by: admin.clone(),
            at,
        }),
        stored(&UserEvent::RolesRemoved { roles: BTreeSet::from([Role::Admin]), by: admin.clone(), at }),
        stored(&UserEvent::CustomRolesGranted { roles: BTreeSet::from([role("curator")]), by: admin.clone(), at }),
        stored(&UserEvent::CustomRolesRemoved { roles: BTreeSet::from([role("curator")]), by: admin.clone(), at }),
        stored(&UserEvent::UserDisabled { reason: "left the lab".into(), by: admin.clone(), at }),
        stored(&UserEvent::UserEnabled { by: admin.clone(), at }),
        stored(&UserEvent::UserTokensRevoked { by: admin.clone(), at }),
        stored(&UserEvent::InvitationAccepted { invite: Uuid::from_u128(0x1a), invited_by: admin.clone(), at }),
        stored(&UserEvent::LoginsChanged {
            logins: BTreeSet::from([login("bob"), login("deploy")]),
            by: admin.clone(),
            at,
        }),
        stored(&UserEvent::IdentitiesLinked {
            identities: BTreeSet::from([InvitedIdentity {
                connector: "github".into(),
                email: "bob@example.org".into(),
            }]),
            at,
        }),
        stored(&UserEvent::SecondFactorEnrolled { credential_id: Uuid::from_u128(0x2f), at }),
        stored(&UserEvent::SecondFactorAccepted { step: 56_669_840, at }),
        stored(&UserEvent::SecondFactorRejected { failures: 5, locked_until: Some(at + 900_000), at }),
        stored(&UserEvent::PasswordRejected { failures: 6, throttled_until: Some(at + 2_000), at }),
        stored(&UserEvent::PasswordCheckReserved {
            source: super::throttle::PasswordSource::Address("q2Vb0c3d4e5f6g7h8i9j0k".into()),
            failures: 5,
            throttled_until: Some(at + 1_000),
            account_failures: Some(21),
            account_throttled_until: Some(at + 2_000),
            at,
        }),
        stored(&UserEvent::PasswordCheckReleased {
            source: super::throttle::PasswordSource::Device("v5lBn3R0cXkq9S1uTzA8mQ".into()),
            at,
        }),
        stored(&UserEvent::LoginThrottleCleared { by: admin.clone(), at }),
        stored(&UserEvent::UserImported(Box::new(ImportedAccount {
            user: name("bob"),
            display: DisplayName::parse(Some("Bob Builder")).unwrap_or_else(|e| panic!("{e}")),
            email: EmailAddress::parse(Some("bob@example.org")).ok(),
            anon_id: Uuid::from_u128(0x2c1b5a8e_4f5b_4d8e_9d6e_0d7f1c1a0b9e),
            local: true,
            created: 1_500_000_000_000,
            last_login: Some(1_600_000_000_000),
            roles: BTreeSet::from([Role::DevToken]),
            custom_roles: BTreeSet::from([role("curator")]),
            policy_ids: BTreeMap::from([(
                PolicyId::parse(Some("kbase-user")).unwrap_or_else(|e| panic!("{e}")),
                1_500_000_000_000,
            )]),
            identities: vec![remote()],
            toggle: Some(ImportedToggle { by: admin.clone(), at: 1_550_000_000_000, reason: Some("left".into()) }),
            reset_required: true,
            credential_id: Some(Uuid::from_u128(42)),
            password_set: Some(1_550_000_000_000),
            source: "auth2 dump /backups/auth2".into(),
        }))),
        stored(&UserEvent::PasswordRehashed { credential_id: Uuid::from_u128(43), at }),
        stored(&CertAuthorityEvent::CertAuthorityCreated {
            ca: CaKind::User,
            key: super::cert_authority::tests::key(1),
            at,
        }),
        stored(&CertAuthorityEvent::CertAuthorityRotated {
            ca: CaKind::Host,
            key: super::cert_authority::tests::key(2),
            previous_fingerprint: "SHA256:fingerprint1".into(),
            by: admin.clone(),
            at,
        }),
        stored(&CertAuthorityEvent::CertAuthorityRotationStarted {
            ca: CaKind::User,
            key: super::cert_authority::tests::key(3),
            by: admin.clone(),
            at,
        }),
        stored(&CertAuthorityEvent::CertAuthorityRotationPhaseChanged {
            ca: CaKind::User,
            phase: super::cert_authority::RotationPhase::UpdateClients,
            by: admin.clone(),
            at,
        }),
        stored(&CertAuthorityEvent::CertAuthorityRotationRolledBack {
            ca: CaKind::User,
            dropped_fingerprint: "SHA256:fingerprint3".into(),
            by: admin.clone(),
            at,
        }),
        stored(&CertificateEvent::UserCertIssued {
            user: name("bob"),
            principals: BTreeSet::from([login("bob"), login("deploy")]),
            requested_by: admin.clone(),
            cert: signed(17_942_113_209_114_222_001),
        }),
        stored(&CertificateEvent::HostCertIssued {
            host_id: HostId::parse("web-1.example.org").unwrap_or_else(|e| panic!("{e}")),
            roles: BTreeSet::from([HostRole::Node, HostRole::Proxy]),
            token: ProvisionTokenId::Issued { id: Uuid::from_u128(0x3c) },
            cert: signed(42),
        }),
        stored(&HostEvent::HostJoined {
            roles: BTreeSet::from([HostRole::Node]),
            key_fingerprint: "SHA256:Bq2vqg0yW8f1mR3+0kq8C7uW0m3kUeD1m4yYx8n4m2E".into(),
            token: ProvisionTokenId::Static { id: "8c2a1f0e9d3b7c64".into() },
            at,
            principals: BTreeSet::from([HostId::parse("www.example.org").unwrap_or_else(|e| panic!("{e}"))]),
            principal_of: None,
        }),
        stored(&HostEvent::HostReleased { by: admin.clone(), at }),
        stored(&ProvisionTokenEvent::ProvisionTokenIssued {
            token_hash: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=".into(),
            roles: BTreeSet::from([HostRole::Node]),
            expires: at + 900_000,
            issued_by: admin.clone(),
            at,
        }),
        stored(&ProvisionTokenEvent::ProvisionTokenUsed {
            host_id: HostId::parse("web-1.example.org").unwrap_or_else(|e| panic!("{e}")),
            roles: BTreeSet::from([HostRole::Node]),
            at,
        }),
        stored(&ProvisionTokenEvent::ProvisionTokenDeleted { by: admin.clone(), at }),
        stored(&InviteEvent::InviteIssued {
            token_hash: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=".into(),
            user: name("carol"),
            logins: BTreeSet::from([login("carol")]),
            identities: BTreeSet::from([InvitedIdentity {
                connector: "github".into(),
                email: "carol@example.org".into(),
            }]),
            expires: at + 3_600_000,
            issued_by: admin.clone(),
            at,
        }),
        stored(&InviteEvent::InviteSecondFactorOffered { credential_id: Uuid::from_u128(0x2f), at }),
        stored(&InviteEvent::InviteRedeemed { credential_id: Uuid::from_u128(0x2f), at }),
        stored(&InviteEvent::InviteRevoked { by: admin.clone(), at }),
        stored(&TokenEvent::TokenIssued(super::token::tests::grant())),
        stored(&TokenEvent::TokenRevoked(TokenRevoked {
            token_hash: super::token::tests::grant().token_hash,
            revoked_by: admin.clone(),
            reason: RevocationReason::Administrator,
            at,
        })),
        stored(&CustomRoleEvent::CustomRoleSet {
            id: role("curator"),
            description: "Curates data".into(),
            by: admin.clone(),
            at,
        }),
        stored(&CustomRoleEvent::CustomRoleDeleted { id: role("curator"), by: admin.clone(), at }),
        stored(&CustomRoleEvent::CustomRoleImported { id: role("curator"), description: "Curates data".into(), at }),
        stored(&ServerConfigEvent::ServerConfigInitialized { settings: ServerSettings::default() }),
        stored(&ServerConfigEvent::ServerConfigUpdated {
            changes: vec![
                ConfigChange::AllowLogin(true),
                ConfigChange::ShowStack(false),
                ConfigChange::IgnoreIp(true),
                ConfigChange::RedirectUrl {
                    which: RedirectKind::CompleteLogin,
                    url: Some("https://example.org/done".into()),
                },
                ConfigChange::TokenLifetime { kind: TokenKind::Agent, ms: 86_400_000 },
                ConfigChange::SuggestedCacheTime { ms: 60_000 },
                ConfigChange::EnvironmentRedirect {
                    environment: "ci".into(),
                    which: RedirectKind::PostLink,
                    url: Some("https://ci.example.org/linked".into()),
                },
                ConfigChange::Provider {
                    name: "Google".into(),
                    switches: ProviderSwitches { enabled: true, force_login_choice: false, force_link_choice: true },
                },
            ],
            by: admin.clone(),
            at,
        }),
        stored(&SystemEvent::AllTokensRevoked { by: admin.clone(), at }),
        stored(&SystemEvent::AllPasswordResetsForced { by: admin, at, sessions_ended: true }),
        stored(&SystemEvent::LogWitnessed { public_key: "Xq2dM8sV0qGk3hJz9cL1bN4wE7rT6yU5iO0pA2sD3fG=".into(), at }),
        stored(&SystemEvent::WitnessReset {
            found: "the log is TRUNCATED: a head was signed at position 38 but the log ends at 28".into(),
            position: Some(38),
            chain: Some("9f".repeat(32)),
            log_head: 28,
            reason: "restored from last night's backup; ten events lost".into(),
            at,
        }),
        stored(&AuditEvent::AuditTrailRead(TrailRead {
            subject: AuditSubject::User(name("bob")),
            since: Some(at - 86_400_000),
            until: None,
            actor: Some("admin".into()),
            event_type: Some("RolesGranted".into()),
            at,
        })),
        stored(&AuditEvent::StateAsOfRead { user: name("bob"), as_of: at - 3_600_000, at }),
        stored(&AuditEvent::AnonIdsTranslated {
            anon_ids: vec![Uuid::from_u128(0x2c1b5a8e_4f5b_4d8e_9d6e_0d7f1c1a0b9e)],
            at,
        }),
        stored(&ForgottenEvent::PersonForgotten(Forget {
            pseudonym: "forgotten-6f1c2a9e-3b7d-4e58-a1c0-9d2f4b6e8a17".into(),
            first_position: 42,
            by: name("alice"),
            at,
            reason: "Asked to be forgotten (ticket 1234)".into(),
            rows: 17,
            digest: "9f2c4b1d8e7a6f5c3b2a1908d7e6f5c4b3a29180f7e6d5c4b3a291807f6e5d4c".into(),
            public_key: "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=".into(),
            signature: "c2lnbmF0dXJl".into(),
        })),
        stored(&TestUserEvent::TestUserCreated {
            user: name("tester"),
            display: DisplayName::parse(Some("Test User")).unwrap_or_else(|e| panic!("{e}")),
            anon_id: Uuid::from_u128(0x5f1d2c0b_0e8b_4a8d_9f0a_7c6e4b2d9a13),
            created: at,
            expires: at + TEST_DATA_LIFETIME_MS,
        }),
        stored(&TestUserEvent::TestUserRolesReplaced {
            roles: BTreeSet::from([Role::Admin, Role::DevToken]),
            custom_roles: BTreeSet::from([role("tester")]),
            at,
        }),
        stored(&TestCustomRoleEvent::TestCustomRoleSet {
            id: role("tester"),
            description: "Tests things".into(),
            expires: at + TEST_DATA_LIFETIME_MS,
        }),
        stored(&TestDataEvent::TestDataCleared { at }),
        stored(&TestDataEvent::TestDataSwept { before: at }),
        stored(&TestDataEvent::TestUserDropped { anon_id: Uuid::from_u128(0x51) }),
    ];
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

/// Every event type that exists, from the event enums themselves: a variant
/// added to any of them, or an aggregate added to either log, fails
/// [`every_event_type_has_a_sample`] until it has a sample (and so a snapshot).
pub(crate) fn every_event_type() -> BTreeSet<String> {
    use strum::{IntoEnumIterator, VariantNames};

    use super::test_mode::{TestCustomRoleEvent, TestDataEvent, TestUserEvent};
    use super::{
        AuditEvent, CertAuthorityEvent, CertificateEvent, CustomRoleEvent, ForgottenEvent, HostEvent,
        IdentityClaimEvent, InviteEvent, LedgerEventKind, PolicyEvent, ProvisionTokenEvent, ServerConfigEvent,
        SystemEvent, TestModeEventKind, TokenEvent, UserEvent,
    };

    // Exhaustive matches: a new aggregate does not compile here until it is listed.
    let main = LedgerEventKind::iter().map(|kind| match kind {
        LedgerEventKind::User => UserEvent::VARIANTS,
        LedgerEventKind::Token => TokenEvent::VARIANTS,
        LedgerEventKind::CustomRole => CustomRoleEvent::VARIANTS,
        LedgerEventKind::ServerConfig => ServerConfigEvent::VARIANTS,
        LedgerEventKind::System => SystemEvent::VARIANTS,
        LedgerEventKind::Audit => AuditEvent::VARIANTS,
        LedgerEventKind::CertAuthority => CertAuthorityEvent::VARIANTS,
        LedgerEventKind::Certificate => CertificateEvent::VARIANTS,
        LedgerEventKind::ProvisionToken => ProvisionTokenEvent::VARIANTS,
        LedgerEventKind::Invite => InviteEvent::VARIANTS,
        LedgerEventKind::Host => HostEvent::VARIANTS,
        LedgerEventKind::IdentityClaim => IdentityClaimEvent::VARIANTS,
        LedgerEventKind::Policy => PolicyEvent::VARIANTS,
        LedgerEventKind::Forgotten => ForgottenEvent::VARIANTS,
    });
    let test_mode = TestModeEventKind::iter().map(|kind| match kind {
        TestModeEventKind::Token => TokenEvent::VARIANTS,
        TestModeEventKind::User => TestUserEvent::VARIANTS,
        TestModeEventKind::CustomRole => TestCustomRoleEvent::VARIANTS,
        TestModeEventKind::Data => TestDataEvent::VARIANTS,
    });
    main.chain(test_mode).flatten().map(|name| (*name).to_owned()).collect()
}

#[test]
fn every_event_type_has_a_sample() {
    let sampled: BTreeSet<String> = samples().into_iter().map(|(event_type, _)| event_type).collect();
    assert_eq!(sampled, every_event_type(), "every event variant needs a sample in samples() (and so a snapshot)");
}

#[test]
fn every_event_type_has_a_pinned_stored_shape() {
    for (event_type, value) in samples() {
        insta::assert_json_snapshot!(event_type, value);
    }
}

#[test]
fn events_md_documents_every_event_type_at_its_version() {
    let doc = include_str!("../../events.md");
    // Headings of the form "### `EventType` — v1.0".
    let documented: BTreeMap<String, String> = doc
        .lines()
        .filter_map(|l| l.strip_prefix("### `"))
        .filter_map(|l| {
            let (name, rest) = l.split_once('`')?;
            Some((name.to_owned(), rest.trim().trim_start_matches('—').trim().trim_start_matches('v').to_owned()))
        })
        .collect();
    let existing: BTreeMap<String, String> =
        samples().into_iter().map(|(t, v)| (t, v["event_version"].as_str().unwrap_or_default().to_owned())).collect();
    assert_eq!(documented, existing, "events.md headings must match the event types and versions");
}
