//! The token index: SHA-256 of a token → what the token is. It holds only
//! tokens that can still be valid: a revocation, a user's revoke-all, a
//! disable or re-enable, and the server-wide revoke-all evict tokens as they
//! are folded; expired tokens are swept on a schedule taken from the log's own
//! recorded times (so a rebuild gives the same state). Expiry and the owner's
//! disabled state are still checked at query time against the request's time.
//!
//! Memory is the constraint here (one record per live token): records live in
//! a slab addressed by `u32`; the hash table holds only slot numbers (each
//! record keeps its hash once); names, custom context and client details are
//! boxed and packed. Each owner's tokens are a list threaded through the
//! records and expiries are kept in hour buckets, so every eviction is O(1)
//! and folding a long log stays linear in its length.

use std::collections::{BTreeMap, HashMap};

use hashbrown::HashTable;

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::token::{ClientInfo, Mfa, TokenIssued};
use crate::domain::{TokenKind, UserName};

/// The raw SHA-256 of a token's value.
pub type TokenHash = [u8; 32];

/// A token as a checkpoint keeps it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SavedToken {
    pub hash: TokenHash,
    pub id: Uuid,
    /// Index into [`SavedTokens::owners`].
    pub owner: u32,
    pub kind: TokenKind,
    pub mfa: Mfa,
    pub created: i64,
    pub expires: i64,
    pub name: Option<String>,
    pub custom: Vec<(String, String)>,
    /// The packed client fields, if any.
    pub client: Option<String>,
}

/// The token index as a checkpoint keeps it: in a canonical order (owners by
/// name, tokens by id), so equal states give equal bytes.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct SavedTokens {
    /// Owner names and whether each is disabled.
    pub owners: Vec<(UserName, bool)>,
    pub tokens: Vec<SavedToken>,
    pub next_sweep_at: i64,
}

/// Hashes a token's value (already trimmed) as the index and the log know it.
pub fn hash_token(token: &str) -> TokenHash {
    Sha256::digest(token.as_bytes()).into()
}

/// SHA-256 output is uniformly distributed: its first eight bytes are a fine hash.
fn bucket_hash(hash: &TokenHash) -> u64 {
    let mut first = [0u8; 8];
    first.copy_from_slice(&hash[..8]);
    u64::from_le_bytes(first)
}

/// Sweep expired tokens at most this often, in log time.
const SWEEP_INTERVAL_MS: i64 = 60_000;

/// Expiries are bucketed by the hour; a bucket is swept once it lies wholly in the past.
const BUCKET_MS: i64 = 3_600_000;

/// The end of a slot list.
const NIL: u32 = u32::MAX;

/// Separates the packed client fields (never in a user agent or an address).
const FIELD_SEPARATOR: char = '\u{1f}';

struct Record {
    hash: TokenHash,
    id: Uuid,
    owner: u32,
    /// The owner's previous and next token (`NIL` at the ends).
    prev: u32,
    next: u32,
    kind: TokenKind,
    mfa: Mfa,
    created: i64,
    expires: i64,
    name: Option<Box<str>>,
    /// Custom context and client details, which most tokens lack or share little of.
    detail: Option<Box<Detail>>,
}

struct Detail {
    custom: Box<[(Box<str>, Box<str>)]>,
    /// The six client fields, packed into one allocation.
    client: Box<str>,
}

fn pack_client(client: &ClientInfo) -> Box<str> {
    let fields = [&client.ip, &client.os, &client.osver, &client.agent, &client.agentver, &client.device];
    let mut packed = String::new();
    for (i, field) in fields.into_iter().enumerate() {
        if i > 0 {
            packed.push(FIELD_SEPARATOR);
        }
        if let Some(value) = field {
            packed.extend(value.chars().filter(|c| *c != FIELD_SEPARATOR));
        }
    }
    packed.into_boxed_str()
}

fn unpack_client(packed: &str) -> ClientInfo {
    let mut fields = packed.split(FIELD_SEPARATOR).map(|f| (!f.is_empty()).then(|| f.to_owned()));
    let mut next = || fields.next().flatten();
    ClientInfo { ip: next(), os: next(), osver: next(), agent: next(), agentver: next(), device: next() }
}

struct Owner {
    name: UserName,
    disabled: bool,
    /// The first of the owner's tokens (`NIL` when none).
    head: u32,
}

/// What a token is, as introspection and token lists show it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenView {
    pub id: Uuid,
    pub user: UserName,
    pub kind: TokenKind,
    pub mfa: Mfa,
    pub name: Option<String>,
    pub created: i64,
    pub expires: i64,
    pub custom: BTreeMap<String, String>,
    pub client: ClientInfo,
}

/// A token read in place (see [`TokenIndex::with_token`]).
pub struct TokenRef<'a> {
    pub id: Uuid,
    pub user: &'a UserName,
    pub kind: TokenKind,
    pub mfa: Mfa,
    pub name: Option<&'a str>,
    pub created: i64,
    pub expires: i64,
    pub custom: &'a [(Box<str>, Box<str>)],
}

#[derive(Default)]
pub struct TokenIndex {
    slots: Vec<Option<Record>>,
    free: Vec<u32>,
    /// Slots, found by the hash their record holds (the hash is stored once, in the record).
    by_hash: HashTable<u32>,
    owners: Vec<Owner>,
    owner_ids: HashMap<UserName, u32>,
    /// Hour bucket → slots whose token expires in it (an entry may be stale: checked when swept).
    expiries: BTreeMap<i64, Vec<u32>>,
    next_sweep_at: i64,
}

impl TokenIndex {
    fn owner_id(&mut self, user: &UserName) -> u32 {
        if let Some(id) = self.owner_ids.get(user) {
            return *id;
        }
        let id = self.owners.len() as u32;
        self.owners.push(Owner { name: user.clone(), disabled: false, head: NIL });
        self.owner_ids.insert(user.clone(), id);
        id
    }

    fn view(&self, record: &Record) -> TokenView {
        let (custom, client) = match &record.detail {
            Some(detail) => (
                detail.custom.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                unpack_client(&detail.client),
            ),
            None => (BTreeMap::new(), ClientInfo::default()),
        };
        TokenView {
            id: record.id,
            user: self.owners[record.owner as usize].name.clone(),
            kind: record.kind,
            mfa: record.mfa,
            name: record.name.as_deref().map(str::to_owned),
            created: record.created,
            expires: record.expires,
            custom,
            client,
        }
    }

    fn slot_of(&self, hash: &TokenHash) -> Option<u32> {
        let slots = &self.slots;
        self.by_hash
            .find(bucket_hash(hash), |slot| slots[*slot as usize].as_ref().is_some_and(|r| r.hash == *hash))
            .copied()
    }

    /// The valid token with this hash at `now`, if any.
    pub fn find(&self, hash: &TokenHash, now: i64) -> Option<TokenView> {
        self.valid(hash, now).map(|record| self.view(record))
    }

    /// Whether a valid token has this hash at `now`.
    pub fn is_valid(&self, hash: &TokenHash, now: i64) -> bool {
        self.valid(hash, now).is_some()
    }

    /// Reads the valid token with this hash at `now` in place, without copying
    /// it (introspection, the hottest path, serializes straight from here).
    pub fn with_token<R>(&self, hash: &TokenHash, now: i64, read: impl FnOnce(TokenRef<'_>) -> R) -> Option<R> {
        let record = self.valid(hash, now)?;
        Some(read(TokenRef {
            id: record.id,
            user: &self.owners[record.owner as usize].name,
            kind: record.kind,
            mfa: record.mfa,
            name: record.name.as_deref(),
            created: record.created,
            expires: record.expires,
            custom: record.detail.as_ref().map_or(&[], |d| &d.custom),
        }))
    }

    fn valid(&self, hash: &TokenHash, now: i64) -> Option<&Record> {
        let slot = self.slot_of(hash)?;
        let record = self.slots.get(slot as usize)?.as_ref()?;
        if record.expires <= now || self.owners[record.owner as usize].disabled {
            return None;
        }
        Some(record)
    }

    /// The user's valid tokens at `now`, sorted by id.
    pub fn tokens_of(&self, user: &UserName, now: i64) -> Vec<TokenView> {
        let Some(owner) = self.owner_ids.get(user).copied() else {
            return Vec::new();
        };
        if self.owners[owner as usize].disabled {
            return Vec::new();
        }
        let mut tokens: Vec<TokenView> = self
            .owned_slots(owner)
            .into_iter()
            .filter_map(|slot| self.slots[slot as usize].as_ref())
            .filter(|record| record.expires > now)
            .map(|record| self.view(record))
            .collect();
        tokens.sort_by_key(|t| t.id.to_string());
        tokens
    }

    fn owned_slots(&self, owner: u32) -> Vec<u32> {
        let mut slots = Vec::new();
        let mut slot = self.owners[owner as usize].head;
        while slot != NIL {
            slots.push(slot);
            slot = self.slots[slot as usize].as_ref().map_or(NIL, |r| r.next);
        }
        slots
    }

    /// How many tokens the index holds (valid or awaiting the expiry sweep).
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub(crate) fn issue(&mut self, id: Uuid, grant: &TokenIssued) {
        let Some(hash) = decode_hash(&grant.token_hash) else {
            tracing::error!(token_id = %id, "token event with an undecodable hash; not indexed");
            return;
        };
        if self.slot_of(&hash).is_some() {
            tracing::error!(token_id = %id, "a token hash issued twice; the first grant stands");
            return;
        }
        let owner = self.owner_id(&grant.user);
        let detail = (!grant.custom.is_empty() || !grant.client.is_empty()).then(|| {
            Box::new(Detail {
                custom: grant.custom.iter().map(|(k, v)| (k.as_str().into(), v.as_str().into())).collect(),
                client: pack_client(&grant.client),
            })
        });
        self.insert(Record {
            hash,
            id,
            owner,
            prev: NIL,
            next: NIL,
            kind: grant.kind,
            mfa: grant.mfa,
            created: grant.created,
            expires: grant.expires,
            name: grant.name.as_ref().map(|n| n.as_str().into()),
            detail,
        });
    }

    /// Puts a record in a slot, at the head of its owner's list, in the hash table and its expiry bucket.
    fn insert(&mut self, mut record: Record) {
        let (hash, owner, expires) = (record.hash, record.owner, record.expires);
        let head = self.owners[owner as usize].head;
        record.prev = NIL;
        record.next = head;
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot as usize] = Some(record);
                slot
            }
            None => {
                self.slots.push(Some(record));
                (self.slots.len() - 1) as u32
            }
        };
        let slots = &self.slots;
        self.by_hash.insert_unique(bucket_hash(&hash), slot, |s| {
            slots[*s as usize].as_ref().map_or(0, |r| bucket_hash(&r.hash))
        });
        if let Some(Some(first)) = self.slots.get_mut(head as usize) {
            first.prev = slot;
        }
        self.owners[owner as usize].head = slot;
        self.expiries.entry(expires.div_euclid(BUCKET_MS)).or_default().push(slot);
    }

    pub(crate) fn revoke(&mut self, token_hash: &str) {
        if let Some(slot) = decode_hash(token_hash).and_then(|hash| self.slot_of(&hash)) {
            self.remove(slot);
        }
    }

    /// Evicts every token the user holds now.
    pub(crate) fn revoke_user(&mut self, user: &UserName) {
        let Some(owner) = self.owner_ids.get(user).copied() else {
            return;
        };
        for slot in self.owned_slots(owner) {
            self.remove(slot);
        }
    }

    pub(crate) fn set_disabled(&mut self, user: &UserName, disabled: bool) {
        let owner = self.owner_id(user);
        self.owners[owner as usize].disabled = disabled;
    }

    /// Evicts every token (the server-wide revoke-all).
    pub(crate) fn revoke_all(&mut self) {
        self.slots = Vec::new();
        self.free = Vec::new();
        self.by_hash = HashTable::new();
        self.expiries = BTreeMap::new();
        for owner in &mut self.owners {
            owner.head = NIL;
        }
    }

    /// The index in canonical form, for a checkpoint.
    pub fn save(&self) -> SavedTokens {
        let mut owners: Vec<(UserName, bool, u32)> =
            self.owners.iter().enumerate().map(|(i, o)| (o.name.clone(), o.disabled, i as u32)).collect();
        owners.sort_by(|a, b| a.0.cmp(&b.0));
        let mut renumbered = vec![0u32; owners.len()];
        for (new, (_, _, old)) in owners.iter().enumerate() {
            renumbered[*old as usize] = new as u32;
        }
        let mut tokens: Vec<SavedToken> =
            self.slots
                .iter()
                .flatten()
                .map(|r| SavedToken {
                    hash: r.hash,
                    id: r.id,
                    owner: renumbered[r.owner as usize],
                    kind: r.kind,
                    mfa: r.mfa,
                    created: r.created,
                    expires: r.expires,
                    name: r.name.as_deref().map(str::to_owned),
                    custom: r.detail.as_ref().map_or_else(Vec::new, |d| {
                        d.custom.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
                    }),
                    client: r.detail.as_ref().map(|d| d.client.to_string()),
                })
                .collect();
        tokens.sort_by_key(|t| t.id);
        SavedTokens {
            owners: owners.into_iter().map(|(name, disabled, _)| (name, disabled)).collect(),
            tokens,
            next_sweep_at: self.next_sweep_at,
        }
    }

    /// Rebuilds the index from a checkpoint.
    pub fn restore(saved: SavedTokens) -> Self {
        let mut index = Self { next_sweep_at: saved.next_sweep_at, ..Self::default() };
        for (name, disabled) in saved.owners {
            let id = index.owner_id(&name);
            index.owners[id as usize].disabled = disabled;
        }
        for token in saved.tokens {
            let owner = token.owner;
            if owner as usize >= index.owners.len() {
                continue;
            }
            let detail = (!token.custom.is_empty() || token.client.is_some()).then(|| {
                Box::new(Detail {
                    custom: token.custom.into_iter().map(|(k, v)| (k.into_boxed_str(), v.into_boxed_str())).collect(),
                    client: token.client.unwrap_or_default().into_boxed_str(),
                })
            });
            index.insert(Record {
                hash: token.hash,
                id: token.id,
                owner,
                prev: NIL,
                next: NIL,
                kind: token.kind,
                mfa: token.mfa,
                created: token.created,
                expires: token.expires,
                name: token.name.map(String::into_boxed_str),
                detail,
            });
        }
        index
    }

    /// The ids of held tokens that have expired by `now` (what a sweeper may delete).
    pub fn expired_ids(&self, now: i64) -> Vec<Uuid> {
        let mut ids: Vec<Uuid> = self
            .expiries
            .range(..=now.div_euclid(BUCKET_MS))
            .flat_map(|(_, slots)| slots)
            .filter_map(|slot| self.slots[*slot as usize].as_ref())
            .filter(|record| record.expires <= now)
            .map(|record| record.id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// Drops every token expired by `before`, now (not on the sweep schedule).
    pub(crate) fn evict_expired(&mut self, before: i64) {
        self.evict_through(before.div_euclid(BUCKET_MS), before);
    }

    /// Drops tokens expired by `log_time`, at most once per sweep interval,
    /// visiting only the hour buckets that have wholly passed.
    pub(crate) fn sweep_expired(&mut self, log_time: i64) {
        if log_time < self.next_sweep_at {
            return;
        }
        self.next_sweep_at = log_time + SWEEP_INTERVAL_MS;
        self.evict_through(log_time.div_euclid(BUCKET_MS) - 1, log_time);
    }

    /// Visits the expiry buckets up to `last_bucket`, dropping tokens expired
    /// by `before` and keeping the bucket's other tokens listed.
    fn evict_through(&mut self, last_bucket: i64, before: i64) {
        let buckets: Vec<i64> = self.expiries.range(..=last_bucket).map(|(b, _)| *b).collect();
        for bucket in buckets {
            let Some(slots) = self.expiries.remove(&bucket) else {
                continue;
            };
            let mut kept = Vec::new();
            for slot in slots {
                match self.slots[slot as usize].as_ref() {
                    Some(record) if record.expires <= before => self.remove(slot),
                    Some(record) if record.expires.div_euclid(BUCKET_MS) == bucket => kept.push(slot),
                    // Freed, or reused by a token listed in its own bucket.
                    _ => {}
                }
            }
            if !kept.is_empty() {
                self.expiries.insert(bucket, kept);
            }
        }
    }

    /// Unlinks a token from its owner's list and frees its slot and hash entry.
    fn remove(&mut self, slot: u32) {
        let Some(record) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        match self.slots.get_mut(record.prev as usize) {
            Some(Some(previous)) => previous.next = record.next,
            _ => self.owners[record.owner as usize].head = record.next,
        }
        if let Some(Some(following)) = self.slots.get_mut(record.next as usize) {
            following.prev = record.prev;
        }
        if let Ok(entry) = self.by_hash.find_entry(bucket_hash(&record.hash), |s| *s == slot) {
            entry.remove();
        }
        self.free.push(slot);
    }
}

/// Decodes the standard-base64 hash an event carries.
pub fn decode_hash(encoded: &str) -> Option<TokenHash> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    bytes.try_into().ok()
}

/// Encodes a hash as events carry it.
pub fn encode_hash(hash: &TokenHash) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(hash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::TokenName;

    fn grant(token: &str, user: &str, expires: i64) -> TokenIssued {
        TokenIssued {
            token_hash: encode_hash(&hash_token(token)),
            kind: TokenKind::Agent,
            user: UserName::from_log(user.into()),
            name: TokenName::parse(Some("n")).ok(),
            created: 0,
            expires,
            custom: BTreeMap::new(),
            client: ClientInfo::default(),
            mfa: Mfa::Unknown,
        }
    }

    #[test]
    fn a_token_is_found_until_it_expires() {
        let mut index = TokenIndex::default();
        index.issue(Uuid::from_u128(1), &grant("t1", "alice", 100));
        assert_eq!(index.find(&hash_token("t1"), 99).map(|v| v.user.to_string()), Some("alice".into()));
        assert!(index.find(&hash_token("t1"), 100).is_none());
        assert!(index.find(&hash_token("t2"), 0).is_none());
    }

    #[test]
    fn revoking_a_user_evicts_only_their_tokens() {
        let mut index = TokenIndex::default();
        index.issue(Uuid::from_u128(1), &grant("a1", "alice", 100));
        index.issue(Uuid::from_u128(2), &grant("b1", "bob", 100));
        index.revoke_user(&UserName::from_log("alice".into()));
        assert!(index.find(&hash_token("a1"), 0).is_none());
        assert!(index.find(&hash_token("b1"), 0).is_some());
        // the freed slot is reused without disturbing others
        index.issue(Uuid::from_u128(3), &grant("a2", "alice", 100));
        assert_eq!(index.tokens_of(&UserName::from_log("alice".into()), 0).len(), 1);
        assert_eq!(index.len(), 2);
    }

    #[test]
    fn a_disabled_owners_tokens_are_invalid() {
        let mut index = TokenIndex::default();
        index.issue(Uuid::from_u128(1), &grant("a1", "alice", 100));
        index.set_disabled(&UserName::from_log("alice".into()), true);
        assert!(index.find(&hash_token("a1"), 0).is_none());
    }

    #[test]
    fn client_details_and_custom_context_come_back_as_issued() {
        let mut index = TokenIndex::default();
        let mut issued = grant("c1", "alice", 100);
        issued.custom = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        issued.client = ClientInfo {
            ip: Some("10.0.0.1".into()),
            os: None,
            osver: Some("14".into()),
            agent: Some("Firefox".into()),
            agentver: None,
            device: Some("pc".into()),
        };
        index.issue(Uuid::from_u128(9), &issued);
        let view = index.find(&hash_token("c1"), 0).expect("found");
        assert_eq!(view.client, issued.client);
        assert_eq!(view.custom, issued.custom);
        assert_eq!(view.id, Uuid::from_u128(9));
    }

    #[test]
    fn the_sweep_drops_expired_tokens_once_their_hour_has_passed() {
        let mut index = TokenIndex::default();
        index.issue(Uuid::from_u128(1), &grant("a1", "alice", 100));
        index.issue(Uuid::from_u128(2), &grant("a2", "alice", 10 * BUCKET_MS));
        index.issue(Uuid::from_u128(3), &grant("b1", "bob", 200));
        index.sweep_expired(300);
        assert_eq!(index.len(), 3, "the hour of the expiries has not passed");
        index.sweep_expired(BUCKET_MS + 1);
        assert_eq!(index.len(), 1);
        assert_eq!(index.tokens_of(&UserName::from_log("alice".into()), 0).len(), 1);
        assert!(index.tokens_of(&UserName::from_log("bob".into()), 0).is_empty());
    }

    #[test]
    fn owner_lists_survive_removal_from_any_position() {
        let mut index = TokenIndex::default();
        for i in 0..5u128 {
            index.issue(Uuid::from_u128(i), &grant(&format!("t{i}"), "alice", 100));
        }
        let alice = UserName::from_log("alice".into());
        for gone in ["t0", "t2", "t4"] {
            index.revoke(&encode_hash(&hash_token(gone)));
        }
        let ids: Vec<Uuid> = index.tokens_of(&alice, 0).into_iter().map(|t| t.id).collect();
        assert_eq!(ids, [Uuid::from_u128(1), Uuid::from_u128(3)]);
        index.issue(Uuid::from_u128(7), &grant("t7", "alice", 100));
        assert_eq!(index.tokens_of(&alice, 0).len(), 3);
        index.revoke_user(&alice);
        assert!(index.tokens_of(&alice, 0).is_empty());
        assert!(index.is_empty());
    }
}
