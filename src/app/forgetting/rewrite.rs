//! Forgetting a person (docs/design/forgetting.md): which bytes of the log a
//! forget changes. The store rewrites rows and keeps the proofs
//! ([`crate::store::forget`]); this module says, for every event type, where
//! a user name, an anonymous id and the person's own data sit, and rewrites a
//! stored row accordingly — pure, over the row's stored text, in one pass in
//! position order.
//!
//! A row is *about* the person when it lies on one of their streams: their
//! `User` stream, or a stream whose event names them as its subject (their
//! tokens, certificates, invitations and identity claims). In such a row
//! their own data is blanked (display name, email, provider identities,
//! token names, clients and custom context, disable reasons, the password
//! throttle's keyed client digests), and the metadata's client address, user
//! agent and reason go unless another person made the request. In every row,
//! their name becomes the pseudonym wherever a user name is kept (subjects,
//! actors, principals) and their anonymous id becomes a new random one; the
//! client address and user agent of every request they made go.
//!
//! Blanked texts become `""`; every field blanked is a transparent string
//! type, so a rewritten row still decodes (a test folds every event type's
//! sample after its rewrite).

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;

use serde_json::{Map, Value};

use crate::store::StoredEvent;
use crate::store::forget::RewrittenRow;

/// Where, inside one event type's payload, the forget looks.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fields {
    /// The user the event is about: naming the person makes its stream theirs.
    pub subject: &'static [&'static str],
    /// Other user names (who acted, principals, logins).
    pub names: &'static [&'static str],
    /// The subject's own data, blanked in rows about the person.
    pub personal: &'static [&'static str],
    /// Anonymous ids.
    pub anon_ids: &'static [&'static str],
}

const NONE: Fields = Fields { subject: &[], names: &[], personal: &[], anon_ids: &[] };

const fn names(names: &'static [&'static str]) -> Fields {
    Fields { names, ..NONE }
}

const fn personal(personal: &'static [&'static str]) -> Fields {
    Fields { personal, ..NONE }
}

/// The parts of a provider identity that are the person's.
const IDENTITY: [&str; 5] =
    ["identity.email", "identity.fullname", "identity.username", "identity.provider_id", "identity.id"];

/// Every event type of the main log and the test-mode log, and where its
/// payload (inside the variant's name) keeps what a forget changes. A new
/// event type must be added here: a test fails until it is.
pub const FIELDS: &[(&str, Fields)] = &[
    // User
    (
        "UserCreated",
        Fields { subject: &["user"], names: &["created_by"], personal: &["display", "email"], anon_ids: &["anon_id"] },
    ),
    ("DisplayNameChanged", personal(&["display"])),
    ("EmailChanged", personal(&["email"])),
    ("PasswordChanged", names(&["changed_by"])),
    ("PasswordResetForced", names(&["by"])),
    ("PasswordResetCleared", NONE),
    ("LoginRecorded", personal(&["identity"])),
    ("RolesGranted", names(&["by"])),
    ("RolesRemoved", names(&["by"])),
    ("CustomRolesGranted", names(&["by"])),
    ("CustomRolesRemoved", names(&["by"])),
    ("UserDisabled", Fields { names: &["by"], personal: &["reason"], ..NONE }),
    ("UserEnabled", names(&["by"])),
    ("UserTokensRevoked", names(&["by"])),
    ("InvitationAccepted", names(&["invited_by"])),
    ("LoginsChanged", Fields { names: &["by"], personal: &["logins[]"], ..NONE }),
    ("IdentitiesLinked", personal(&["identities[].email"])),
    ("IdentityLinked", personal(&IDENTITY)),
    ("IdentityUnlinked", personal(&["id"])),
    ("IdentityDetailsRefreshed", personal(&IDENTITY)),
    ("PolicyIdsAgreed", NONE),
    ("SecondFactorEnrolled", NONE),
    ("SecondFactorAccepted", NONE),
    ("SecondFactorRejected", NONE),
    ("PasswordRejected", NONE),
    ("PasswordCheckReserved", personal(&["source.address", "source.device"])),
    ("PasswordCheckReleased", personal(&["source.address", "source.device"])),
    ("LoginThrottleCleared", names(&["by"])),
    (
        "UserImported",
        Fields {
            subject: &["user"],
            names: &["toggle.by"],
            personal: &[
                "display",
                "email",
                "identities[].email",
                "identities[].fullname",
                "identities[].username",
                "identities[].provider_id",
                "identities[].id",
                "toggle.reason",
            ],
            anon_ids: &["anon_id"],
        },
    ),
    ("PasswordRehashed", NONE),
    // Identity claims
    ("IdentityClaimed", Fields { subject: &["user"], ..NONE }),
    ("IdentityReleased", Fields { subject: &["user"], ..NONE }),
    // Policies
    ("PolicyIdRemoved", names(&["by"])),
    // Tokens
    ("TokenIssued", Fields { subject: &["user"], personal: &["name", "custom{}", "client"], ..NONE }),
    ("TokenRevoked", names(&["revoked_by"])),
    // Custom roles, configuration, the system
    ("CustomRoleSet", names(&["by"])),
    ("CustomRoleDeleted", names(&["by"])),
    ("CustomRoleImported", NONE),
    ("ServerConfigInitialized", NONE),
    ("ServerConfigUpdated", names(&["by"])),
    ("AllTokensRevoked", names(&["by"])),
    ("AllPasswordResetsForced", names(&["by"])),
    ("LogWitnessed", NONE),
    // An operator's reason: not the person's (the docs say so).
    ("WitnessReset", NONE),
    // The auditor's reads
    ("AuditTrailRead", names(&["actor", "subject.User"])),
    ("StateAsOfRead", names(&["user"])),
    ("AnonIdsTranslated", Fields { anon_ids: &["anon_ids[]"], ..NONE }),
    // SSH
    ("CertAuthorityCreated", NONE),
    ("CertAuthorityRotated", names(&["by"])),
    ("CertAuthorityRotationStarted", names(&["by"])),
    ("CertAuthorityRotationPhaseChanged", names(&["by"])),
    ("CertAuthorityRotationRolledBack", names(&["by"])),
    (
        "UserCertIssued",
        Fields {
            subject: &["user"],
            names: &["requested_by"],
            personal: &["principals[]", "cert.key_fingerprint"],
            ..NONE
        },
    ),
    ("HostCertIssued", NONE),
    ("HostJoined", NONE),
    ("HostReleased", names(&["by"])),
    ("ProvisionTokenIssued", names(&["issued_by"])),
    ("ProvisionTokenUsed", NONE),
    ("ProvisionTokenDeleted", names(&["by"])),
    // Invitations
    (
        "InviteIssued",
        Fields { subject: &["user"], names: &["issued_by", "logins[]"], personal: &["identities[].email"], ..NONE },
    ),
    ("InviteSecondFactorOffered", NONE),
    ("InviteRedeemed", NONE),
    ("InviteRevoked", names(&["by"])),
    // Forgets: the administrator who forgot someone may be forgotten in turn.
    ("PersonForgotten", names(&["by"])),
    // Test mode's own log: its users are test data, expiring within the hour; a
    // forget drops the test user of the same name from it (`TestUserDropped`).
    ("TestUserCreated", NONE),
    ("TestUserRolesReplaced", NONE),
    ("TestCustomRoleSet", NONE),
    ("TestDataCleared", NONE),
    ("TestDataSwept", NONE),
    ("TestUserDropped", NONE),
];

fn fields(event_type: &str) -> Option<&'static Fields> {
    FIELDS.iter().find(|(t, _)| *t == event_type).map(|(_, f)| f)
}

/// The streams whose rows are about the person, named by their event: the
/// user's own, and any whose subject they are.
const OWN_STREAMS: [&str; 2] = ["User", "Audit"];

/// Whom a forget rewrites, and as what.
#[derive(Debug, Clone)]
pub struct Person {
    pub name: String,
    pub pseudonym: String,
    /// Their anonymous id (hyphenated), if they have one, and the random one that replaces it.
    pub anon_id: Option<(String, String)>,
    /// Identity-claim streams to rename (old id → new), those only the person ever claimed.
    pub claims: BTreeMap<String, String>,
}

/// Rewrites rows for one forget, remembering which streams are the person's
/// as it goes (rows are given in position order).
#[derive(Debug)]
pub struct Rewriter {
    person: Person,
    streams: Mutex<HashSet<(String, String)>>,
}

impl Rewriter {
    /// A rewriter for one forget of `person`, that has seen no row yet.
    pub fn new(person: Person) -> Self {
        Self { person, streams: Mutex::new(HashSet::new()) }
    }

    /// Whom it rewrites, and as what.
    pub fn person(&self) -> &Person {
        &self.person
    }

    /// What `row` holds after the forget, or `None` when the forget leaves it.
    pub fn rewrite(&self, row: &StoredEvent) -> Option<RewrittenRow> {
        if !self.may_concern(row) {
            return None;
        }
        let person = &self.person;
        // A payload that does not read is left as it is; the row's stream is still renamed.
        let parsed: Option<Value> = serde_json::from_str(&row.payload).ok();
        let mut payload = parsed.clone().unwrap_or(Value::Null);
        let mut metadata: Value = serde_json::from_str(&row.metadata).unwrap_or(Value::Null);
        let metadata_read = !metadata.is_null();
        let fields = fields(&row.event_type).copied().unwrap_or(NONE);
        let stream = (row.aggregate_type.clone(), row.aggregate_id.clone());
        let about = {
            let mut streams = self.streams.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let own = OWN_STREAMS.contains(&row.aggregate_type.as_str()) && row.aggregate_id == person.name;
            let subject = variant(&payload)
                .is_some_and(|body| fields.subject.iter().any(|path| found(body, path).any(|v| *v == *person.name)));
            if own || subject {
                streams.insert(stream.clone());
            }
            streams.contains(&stream)
        };
        let mut changed = false;
        if let Some(body) = variant_mut(&mut payload) {
            for path in fields.subject.iter().chain(fields.names) {
                changed |= replace(body, path, &person.name, &person.pseudonym);
            }
            if let Some((old, new)) = &person.anon_id {
                for path in fields.anon_ids {
                    changed |= replace(body, path, old, new);
                }
            }
            if about {
                for path in fields.personal {
                    changed |= blank_at(body, path);
                }
            }
        }
        changed |= self.rewrite_metadata(&mut metadata, about);
        let aggregate_id = match () {
            _ if OWN_STREAMS.contains(&row.aggregate_type.as_str()) && row.aggregate_id == person.name => {
                person.pseudonym.clone()
            }
            _ => person
                .claims
                .get(&row.aggregate_id)
                .filter(|_| row.aggregate_type == "IdentityClaim")
                .cloned()
                .unwrap_or_else(|| row.aggregate_id.clone()),
        };
        changed |= aggregate_id != row.aggregate_id;
        let payload = match parsed {
            Some(_) => payload.to_string(),
            None => row.payload.clone(),
        };
        let metadata = if metadata_read { metadata.to_string() } else { row.metadata.clone() };
        changed.then_some(RewrittenRow { aggregate_id, payload, metadata })
    }

    /// Whether `row` can be rewritten at all, without reading its JSON: it
    /// holds the person's name (a user name, `[a-z][a-z0-9_]*`, which JSON
    /// never escapes) or anonymous id, it is in a stream that is theirs or
    /// about them, or it is an identity claim being renamed. Most rows of a
    /// log hold none of these, and reading every row's JSON is most of a
    /// forget's time.
    fn may_concern(&self, row: &StoredEvent) -> bool {
        let person = &self.person;
        let name = person.name.as_str();
        row.payload.contains(name)
            || row.metadata.contains(name)
            || row.aggregate_id == name
            || person.anon_id.as_ref().is_some_and(|(old, _)| row.payload.contains(old.as_str()))
            || (row.aggregate_type == "IdentityClaim" && person.claims.contains_key(&row.aggregate_id))
            || self
                .streams
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains(&(row.aggregate_type.clone(), row.aggregate_id.clone()))
    }

    /// The request's actor renamed; its client address, user agent and
    /// reason gone when it was the person's request or one about them made by no one else.
    fn rewrite_metadata(&self, metadata: &mut Value, about: bool) -> bool {
        let Value::Object(map) = metadata else { return false };
        let actor = map.get("actor").and_then(Value::as_str).unwrap_or("").to_owned();
        let theirs = actor == self.person.name;
        let mut changed = false;
        if theirs {
            map.insert("actor".into(), Value::String(self.person.pseudonym.clone()));
            changed = true;
        }
        if theirs || (about && actor.is_empty()) {
            for key in ["client_addr", "user_agent", "reason"] {
                changed |= map.remove(key).is_some();
            }
        } else if about {
            changed |= map.remove("reason").is_some();
        }
        changed
    }
}

/// The body of an externally tagged event: `{"Variant": {...}}` → `{...}`.
fn variant(payload: &Value) -> Option<&Map<String, Value>> {
    match payload {
        Value::Object(outer) if outer.len() == 1 => outer.values().next()?.as_object(),
        _ => None,
    }
}

fn variant_mut(payload: &mut Value) -> Option<&mut Map<String, Value>> {
    match payload {
        Value::Object(outer) if outer.len() == 1 => outer.values_mut().next()?.as_object_mut(),
        _ => None,
    }
}

/// The values at `path` (`a.b`, `list[]`, `list[].key`).
fn found<'a>(body: &'a Map<String, Value>, path: &str) -> Box<dyn Iterator<Item = &'a Value> + 'a> {
    let (head, rest) = path.split_once('.').map_or((path, None), |(h, r)| (h, Some(r.to_owned())));
    let (key, each) = head.strip_suffix("[]").map_or((head, false), |k| (k, true));
    let Some(value) = body.get(key) else { return Box::new(std::iter::empty()) };
    let values: Vec<&'a Value> = match (each, value) {
        (true, Value::Array(items)) => items.iter().collect(),
        (true, _) => Vec::new(),
        (false, v) => vec![v],
    };
    match rest {
        None => Box::new(values.into_iter()),
        Some(rest) => Box::new(
            values.into_iter().filter_map(Value::as_object).flat_map(move |o| found(o, &rest).collect::<Vec<_>>()),
        ),
    }
}

/// Applies `change` to every value at `path`; whether any changed.
fn each_at(body: &mut Map<String, Value>, path: &str, change: &mut dyn FnMut(&mut Value) -> bool) -> bool {
    let (head, rest) = path.split_once('.').map_or((path, None), |(h, r)| (h, Some(r)));
    let (key, each) = head.strip_suffix("[]").map_or((head, false), |k| (k, true));
    let Some(value) = body.get_mut(key) else { return false };
    let mut values: Vec<&mut Value> = match (each, value) {
        (true, Value::Array(items)) => items.iter_mut().collect(),
        (true, _) => Vec::new(),
        (false, v) => vec![v],
    };
    let mut changed = false;
    for value in values.iter_mut() {
        changed |= match rest {
            None => change(value),
            Some(rest) => value.as_object_mut().is_some_and(|o| each_at(o, rest, change)),
        };
    }
    changed
}

fn replace(body: &mut Map<String, Value>, path: &str, old: &str, new: &str) -> bool {
    each_at(body, path, &mut |value| match value {
        Value::String(text) if text == old => {
            *text = new.to_owned();
            true
        }
        _ => false,
    })
}

fn blank_at(body: &mut Map<String, Value>, path: &str) -> bool {
    match path.strip_suffix("{}") {
        Some(map) => each_at(body, map, &mut |value| match value {
            Value::Object(entries) if !entries.is_empty() => {
                entries.clear();
                true
            }
            _ => false,
        }),
        None => each_at(body, path, &mut blank),
    }
}

/// Every text inside `value` emptied; numbers, booleans and nulls kept.
fn blank(value: &mut Value) -> bool {
    match value {
        Value::String(text) if text.is_empty() => false,
        Value::String(text) => {
            text.clear();
            true
        }
        Value::Array(items) => items.iter_mut().fold(false, |changed, v| blank(v) | changed),
        Value::Object(map) => map.values_mut().fold(false, |changed, v| blank(v) | changed),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::domain::{LedgerEvent, LogEvent, TestModeEvent};

    const ANON_ID: &str = "2c1b5a8e-4f5b-4d8e-9d6e-0d7f1c1a0b9e";
    const NEW_ANON_ID: &str = "00000000-0000-4000-8000-000000000001";
    const MAIN: [&str; 14] = [
        "User",
        "Token",
        "CustomRole",
        "ServerConfig",
        "System",
        "Audit",
        "CertAuthority",
        "Certificate",
        "ProvisionToken",
        "Invite",
        "Host",
        "IdentityClaim",
        "Policy",
        "Forgotten",
    ];
    const TEST_MODE: [&str; 4] = ["Token", "TestUser", "TestCustomRole", "TestData"];

    fn rewriter(name: &str) -> Rewriter {
        Rewriter::new(Person {
            name: name.to_owned(),
            pseudonym: "forgotten_1".to_owned(),
            anon_id: Some((ANON_ID.to_owned(), NEW_ANON_ID.to_owned())),
            claims: BTreeMap::from([("claim-1".to_owned(), "forgotten_claim_1".to_owned())]),
        })
    }

    fn decodes(aggregate_type: &str, event_type: &str, version: &str, payload: &str, test_mode: bool) -> bool {
        let upcasters = crate::domain::upcasters();
        match test_mode {
            false => LedgerEvent::decode(aggregate_type, event_type, version, payload, &upcasters).is_ok(),
            true => TestModeEvent::decode(aggregate_type, event_type, version, payload, &upcasters).is_ok(),
        }
    }

    /// Every sample as a stored row, on the aggregate whose events it is; a
    /// user's own streams are named `aggregate_id`, others `stream-1`.
    fn rows(aggregate_id: &str) -> Vec<(StoredEvent, bool)> {
        let mut rows = Vec::new();
        for (event_type, stored) in crate::domain::event_shapes::samples() {
            let version = stored["event_version"].as_str().unwrap_or_default().to_owned();
            let payload = stored["payload"].to_string();
            let found = MAIN
                .iter()
                .map(|t| (*t, false))
                .chain(TEST_MODE.iter().map(|t| (*t, true)))
                .find(|(t, test_mode)| decodes(t, &event_type, &version, &payload, *test_mode));
            let Some((aggregate_type, test_mode)) = found else { panic!("no aggregate decodes {event_type}") };
            let row = StoredEvent {
                position: 1,
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id: match OWN_STREAMS.contains(&aggregate_type) {
                    true => aggregate_id.to_owned(),
                    false => "stream-1".to_owned(),
                },
                sequence: 1,
                event_type,
                event_version: version,
                payload,
                metadata: json!({"actor": "alice", "client_addr": "192.0.2.7", "user_agent": "curl/8"}).to_string(),
                recorded_at: 1,
                chain: None,
            };
            rows.push((row, test_mode));
        }
        rows
    }

    #[test]
    fn every_event_type_says_where_its_names_and_data_are() {
        let listed: std::collections::BTreeSet<String> = FIELDS.iter().map(|(t, _)| (*t).to_owned()).collect();
        assert_eq!(listed, crate::domain::event_shapes::every_event_type(), "add the new event type to FIELDS");
        assert_eq!(listed.len(), FIELDS.len(), "each event type once");
    }

    #[test]
    fn every_rewritten_sample_still_decodes() {
        for name in ["alice", "bob", "carol", "admin"] {
            for (row, test_mode) in rows(name) {
                let Some(after) = rewriter(name).rewrite(&row) else { continue };
                assert!(
                    decodes(&row.aggregate_type, &row.event_type, &row.event_version, &after.payload, test_mode),
                    "{} forgetting {name} no longer decodes: {}",
                    row.event_type,
                    after.payload
                );
            }
        }
    }

    #[test]
    fn nothing_of_the_person_is_left_in_a_row_about_them() {
        // Bob is the subject of the samples; alice acts in them.
        let personal = [
            "bob@example.org",
            "b@example.com",
            "Bob Builder",
            "Bob B",
            "108234567890",
            "2077f15979ee05607f1cfe967bd62a69",
            ANON_ID,
            "192.0.2.7",
            "curl/8",
        ];
        for aggregate_id in ["bob", "x"] {
            for (row, _) in rows(aggregate_id) {
                let rewriter = rewriter("bob");
                let after = rewriter.rewrite(&row);
                let about = rewriter.streams.lock().map(|s| !s.is_empty()).unwrap_or(false);
                if !about {
                    continue;
                }
                let Some(after) = after else { panic!("{} is about bob yet unchanged", row.event_type) };
                let text = format!("{} {} {}", after.aggregate_id, after.payload, after.metadata);
                assert!(!text.contains("\"bob\""), "{}: the name is left in {text}", row.event_type);
                assert_ne!(after.aggregate_id, "bob");
                for value in personal {
                    // Alice's request about bob keeps her own client.
                    if ["192.0.2.7", "curl/8"].contains(&value) {
                        continue;
                    }
                    assert!(!text.contains(value), "{}: {value} is left in {text}", row.event_type);
                }
            }
        }
    }

    #[test]
    fn the_persons_requests_lose_their_client_and_others_keep_theirs() {
        let rewriter = rewriter("alice");
        let row = |metadata: Value, aggregate_id: &str| StoredEvent {
            position: 1,
            aggregate_type: "User".into(),
            aggregate_id: aggregate_id.into(),
            sequence: 1,
            event_type: "RolesGranted".into(),
            event_version: "1.0".into(),
            payload: json!({"RolesGranted": {"roles": ["Admin"], "by": "alice", "at": 1}}).to_string(),
            metadata: metadata.to_string(),
            recorded_at: 1,
            chain: None,
        };
        let client = json!({"actor": "alice", "client_addr": "192.0.2.7", "user_agent": "curl/8", "request_id": "c1"});
        // Alice, an Admin, granted bob a role: her name and her client go; bob's row stays his.
        let after = rewriter.rewrite(&row(client, "bob")).expect("names her");
        assert_eq!(after.aggregate_id, "bob");
        assert_eq!(after.metadata, json!({"actor": "forgotten_1", "request_id": "c1"}).to_string());
        assert!(after.payload.contains("forgotten_1") && !after.payload.contains("alice"));
        // Bob granted alice a role: his client stays, the row is hers.
        let by_bob = json!({"actor": "bob", "client_addr": "192.0.2.8", "reason": "asked for it"});
        let payload = json!({"RolesGranted": {"roles": ["Admin"], "by": "bob", "at": 1}}).to_string();
        let after = rewriter.rewrite(&StoredEvent { payload, ..row(by_bob, "alice") }).expect("her stream");
        assert_eq!(after.aggregate_id, "forgotten_1");
        assert_eq!(after.metadata, json!({"actor": "bob", "client_addr": "192.0.2.8"}).to_string());
        // A row that neither names her nor lies on her streams is left alone.
        let other = json!({"actor": "bob", "client_addr": "192.0.2.8"});
        let payload = json!({"RolesGranted": {"roles": ["Admin"], "by": "bob", "at": 1}}).to_string();
        assert_eq!(rewriter.rewrite(&StoredEvent { payload, ..row(other, "carol") }), None);
    }

    #[test]
    fn a_stream_whose_subject_is_the_person_stays_theirs() {
        let rewriter = rewriter("alice");
        let samples = rows("alice");
        let issued = samples.iter().find(|(r, _)| r.event_type == "TokenIssued").map(|(r, _)| r.clone());
        let issued = issued.expect("a sample");
        let after = rewriter.rewrite(&issued).expect("her token");
        assert!(!after.payload.contains("\"alice\"") && !after.payload.contains("192.0.2"), "{}", after.payload);
        assert!(!after.payload.contains("my script") && !after.payload.contains("narrative"), "{}", after.payload);
        // Revoked later, anonymously: the request's client goes too.
        let revoked = StoredEvent {
            event_type: "TokenRevoked".into(),
            payload: json!({"TokenRevoked": {"at": 2, "reason": "Logout", "revoked_by": null, "token_hash": "h"}})
                .to_string(),
            metadata: json!({"client_addr": "192.0.2.9"}).to_string(),
            ..issued.clone()
        };
        assert_eq!(rewriter.rewrite(&revoked).map(|r| r.metadata), Some("{}".to_owned()));
        // Another token's stream is not hers.
        let elsewhere = StoredEvent { aggregate_id: "stream-2".into(), ..revoked };
        assert_eq!(rewriter.rewrite(&elsewhere), None);
    }

    #[test]
    fn only_the_persons_identity_claims_are_renamed() {
        let rewriter = rewriter("bob");
        let claimed = |id: &str, user: &str| StoredEvent {
            position: 1,
            aggregate_type: "IdentityClaim".into(),
            aggregate_id: id.into(),
            sequence: 1,
            event_type: "IdentityClaimed".into(),
            event_version: "1.0".into(),
            payload: json!({"IdentityClaimed": {"user": user, "at": 1}}).to_string(),
            metadata: "{}".into(),
            recorded_at: 1,
            chain: None,
        };
        let after = rewriter.rewrite(&claimed("claim-1", "bob")).expect("his claim");
        assert_eq!(after.aggregate_id, "forgotten_claim_1");
        assert_eq!(rewriter.rewrite(&claimed("claim-2", "carol")), None);
    }
}
