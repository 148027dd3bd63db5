//! Wrong passwords and the waits they impose. Pure rules, used three ways:
//! the `User` aggregate decides with them (an account's counts are in the
//! log), the user directory folds the same state, and the application's side
//! store applies them to what the log must not keep (names that are no
//! account, client addresses) — so an account and a name that is none are
//! counted, and answered, alike.
//!
//! A check is *reserved* before its password is checked and counts as a
//! wrong password until released, so a burst of guesses gets no more checks
//! than the counts allow. Every count follows one [`Schedule`]: a few
//! failures answered at once, then one second of wait doubling with each
//! further failure, never more than [`CAP_MS`]; a count left quiet for
//! [`FORGET_AFTER_MS`] starts again.
//!
//! An account counts each client apart — a client by its address, or by the
//! device mark the account gave it at an earlier login (OWASP's "device
//! cookie") — and every client without a mark together, at a higher count. A
//! device's own failures never touch the shared count, so an attacker who
//! makes everyone else wait does not make the owner's known device wait.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::error::{AuthError, ErrorType};

/// The longest wait a count imposes (reached at its free count + 10).
pub const CAP_MS: i64 = 15 * 60 * 1000;
/// A count quiet this long starts again: longer than the cap, so a guesser
/// who comes back whenever the wait ends never sees a fresh count.
pub const FORGET_AFTER_MS: i64 = 2 * CAP_MS;
/// The most clients an account counts apart; past it the quietest is forgotten
/// (the account-wide count still bounds what they can try).
pub const MAX_SOURCES: usize = 32;

/// How many failures a count answers at once before checks wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub free: u32,
}

/// One client of one account: a person's typos, or one guesser.
pub const PER_CLIENT: Schedule = Schedule { free: 5 };
/// Every client of one account without its device mark, together: many
/// guessers (many addresses) reach it; the owner's known device does not.
pub const PER_ACCOUNT: Schedule = Schedule { free: 20 };
/// One client address over every name (password spraying); more than one
/// account's, as many people may share an address.
pub const PER_ADDRESS: Schedule = Schedule { free: 20 };

impl Schedule {
    /// The wait after `failures`: none below the free count, then one second
    /// doubling with each failure, up to [`CAP_MS`].
    pub fn delay(self, failures: u32) -> i64 {
        if failures < self.free {
            return 0;
        }
        let doublings = (failures - self.free).min(20);
        (1000_i64 << doublings).min(CAP_MS)
    }
}

/// Failures counted, and until when no check runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Count {
    pub failures: u32,
    /// No check before this instant (epoch ms).
    pub until: Option<i64>,
    /// When the latest failure was counted.
    pub last: i64,
}

impl Count {
    /// The count as it stands at `now` (forgotten once quiet for [`FORGET_AFTER_MS`]).
    pub fn at(self, now: i64) -> Self {
        if self.failures > 0 && now - self.last >= FORGET_AFTER_MS { Self::default() } else { self }
    }

    /// Until when a check waits at `now`, if it does.
    pub fn waiting(self, now: i64) -> Option<i64> {
        self.at(now).until.filter(|until| now < *until)
    }

    /// The count with one more failure at `now`.
    pub fn counted(self, schedule: Schedule, now: i64) -> Self {
        let failures = self.at(now).failures.saturating_add(1);
        let delay = schedule.delay(failures);
        Self { failures, until: (delay > 0).then_some(now + delay), last: now }
    }

    /// The count with one failure taken back (a reserved check that was no
    /// wrong password); below the free count nothing waits.
    pub fn released(self, schedule: Schedule) -> Self {
        let failures = self.failures.saturating_sub(1);
        Self { failures, until: if failures < schedule.free { None } else { self.until }, last: self.last }
    }
}

/// Where a password check comes from, as an account counts it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PasswordSource {
    /// A client without the account's device mark, by a keyed digest of its
    /// address (the log never keeps the address here).
    Address(String),
    /// A client holding a device mark the account gave it (its device id).
    Device(String),
}

impl PasswordSource {
    /// Whether the check counts toward the account-wide count of unmarked clients.
    pub fn is_unmarked(&self) -> bool {
        matches!(self, Self::Address(_))
    }
}

/// What reserving a check leaves: the source's count with it, and the
/// account-wide count of unmarked clients with it (`None` for a device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reserved {
    pub source: PasswordSource,
    pub count: Count,
    pub unmarked: Option<Count>,
}

/// One account's wrong passwords (or a name's that is no account).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PasswordThrottle {
    /// Every client without a device mark, together ([`PER_ACCOUNT`]).
    pub unmarked: Count,
    /// Each client apart ([`PER_CLIENT`]), at most [`MAX_SOURCES`]. Kept as
    /// pairs: a source is no string, and JSON keys must be.
    #[serde(with = "pairs")]
    pub sources: BTreeMap<PasswordSource, Count>,
    /// Whether the count is the log's first version's (`PasswordRejected`),
    /// which a login ends, as it did then.
    #[serde(default)]
    pub legacy: bool,
}

/// A map written as a list of `[key, value]` pairs.
mod pairs {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, K: Serialize, V: Serialize>(
        map: &BTreeMap<K, V>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(map.iter())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, K: Deserialize<'de> + Ord, V: Deserialize<'de>>(
        deserializer: D,
    ) -> Result<BTreeMap<K, V>, D::Error> {
        Vec::<(K, V)>::deserialize(deserializer).map(|pairs| pairs.into_iter().collect())
    }
}

impl PasswordThrottle {
    /// Until when a check from `source` waits at `now`, if it does: its own
    /// count's wait, and for an unmarked client the account-wide one too.
    pub fn waiting(&self, source: &PasswordSource, now: i64) -> Option<i64> {
        let own = self.sources.get(source).and_then(|c| c.waiting(now));
        let shared = source.is_unmarked().then(|| self.unmarked.waiting(now)).flatten();
        own.max(shared)
    }

    /// Reserves a check from `source` at `now`: what it leaves, or the
    /// refusal naming when the next check is possible.
    pub fn reserve(&self, source: PasswordSource, now: i64) -> Result<Reserved, AuthError> {
        if let Some(until) = self.waiting(&source, now) {
            return Err(throttled(until));
        }
        let count = self.sources.get(&source).copied().unwrap_or_default().counted(PER_CLIENT, now);
        let unmarked = source.is_unmarked().then(|| self.unmarked.counted(PER_ACCOUNT, now));
        Ok(Reserved { source, count, unmarked })
    }

    /// Folds a reservation (the counts it carries).
    pub fn reserved(&mut self, reserved: &Reserved) {
        self.legacy = false;
        if !self.sources.contains_key(&reserved.source) && self.sources.len() >= MAX_SOURCES {
            let quietest = self.sources.iter().min_by_key(|(_, c)| c.last).map(|(s, _)| s.clone());
            if let Some(quietest) = quietest {
                self.sources.remove(&quietest);
            }
        }
        self.sources.insert(reserved.source.clone(), reserved.count);
        if let Some(unmarked) = reserved.unmarked {
            self.unmarked = unmarked;
        }
    }

    /// Folds a release: the password checked from `source` was right. The
    /// source's own count ends (it knows the password), and its check is
    /// taken back from the account-wide count — the other failures stand, so
    /// the owner's logins never give guessers a fresh count. (A check of the
    /// same source still running when another's release ended the source's
    /// count is still in the account-wide one: its own release takes it back.)
    pub fn released(&mut self, source: &PasswordSource) {
        self.sources.remove(source);
        if source.is_unmarked() {
            self.unmarked = self.unmarked.released(PER_ACCOUNT);
        }
    }

    /// Folds a login: it ends a count of the log's first version (every
    /// client's together, which a login cleared then); reserved counts stand.
    pub fn logged_in(&mut self) {
        if self.legacy {
            *self = Self::default();
        }
    }

    /// Folds an account's single count of the log's first version
    /// (`PasswordRejected`): every client then counted together.
    pub fn rejected_v1(&mut self, failures: u32, until: Option<i64>, at: i64) {
        self.unmarked = Count { failures, until, last: at };
        self.legacy = true;
    }

    /// The latest wait of any count at `now` (what an administrator sees).
    pub fn longest_wait(&self, now: i64) -> Option<i64> {
        self.sources.values().chain([&self.unmarked]).filter_map(|c| c.waiting(now)).max()
    }

    /// How many clients are waiting at `now`.
    pub fn sources_waiting(&self, now: i64) -> usize {
        self.sources.values().filter(|c| c.waiting(now).is_some()).count()
    }

    /// Whether nothing is counted.
    pub fn is_clear(&self) -> bool {
        self.unmarked.failures == 0 && self.sources.is_empty()
    }

    /// Whether a release from `source` has anything to take back.
    pub fn releasable(&self, source: &PasswordSource) -> bool {
        self.sources.get(source).is_some_and(|c| c.failures > 0) || (source.is_unmarked() && self.unmarked.failures > 0)
    }
}

/// What a throttle's refusal says first.
const THROTTLED: &str = "too many wrong passwords; the next attempt is possible at";

/// The refusal of a check that waits until `until`.
pub fn throttled(until: i64) -> AuthError {
    AuthError::new(ErrorType::AuthenticationFailed, format!("{THROTTLED} {until} (epoch ms)"))
}

/// Whether `error` is a throttle's refusal ([`throttled`]).
pub fn is_throttled(error: &AuthError) -> bool {
    error.kind == ErrorType::AuthenticationFailed && error.detail.as_deref().is_some_and(|d| d.starts_with(THROTTLED))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(a: &str) -> PasswordSource {
        PasswordSource::Address(a.into())
    }

    fn fail(throttle: &mut PasswordThrottle, source: &PasswordSource, now: i64) -> Result<(), AuthError> {
        let reserved = throttle.reserve(source.clone(), now)?;
        throttle.reserved(&reserved);
        Ok(())
    }

    #[test]
    fn a_schedule_is_free_then_doubles_to_the_cap() {
        let waits: Vec<i64> = (1..=16).map(|n| PER_CLIENT.delay(n)).collect();
        assert_eq!(&waits[..4], &[0, 0, 0, 0]);
        assert_eq!(&waits[4..8], &[1000, 2000, 4000, 8000]);
        assert_eq!(&waits[14..], &[CAP_MS, CAP_MS]);
        assert_eq!(PER_ACCOUNT.delay(19), 0);
        assert_eq!(PER_ACCOUNT.delay(20), 1000);
    }

    #[test]
    fn a_client_waits_after_its_own_five_and_others_do_not() {
        let mut throttle = PasswordThrottle::default();
        let (guesser, owner) = (address("guesser"), address("owner"));
        for _ in 0..5 {
            assert!(fail(&mut throttle, &guesser, 10).is_ok());
        }
        assert!(throttle.reserve(guesser.clone(), 10).is_err(), "the fifth makes the guesser wait");
        assert!(throttle.reserve(guesser, 1_010).is_ok(), "one second");
        assert!(throttle.reserve(owner, 10).is_ok(), "another address is not slowed");
    }

    #[test]
    fn many_clients_make_unmarked_ones_wait_but_not_a_device() {
        let mut throttle = PasswordThrottle::default();
        for n in 0..20 {
            assert!(fail(&mut throttle, &address(&format!("bot{n}")), 10).is_ok());
        }
        let refused = throttle.reserve(address("someone new"), 10).expect_err("the account-wide count waits");
        assert!(refused.to_string().contains("1010"), "{refused}");
        let device = PasswordSource::Device("laptop".into());
        assert!(throttle.reserve(device.clone(), 10).is_ok(), "the owner's device is exempt");
        for _ in 0..5 {
            assert!(fail(&mut throttle, &device, 10).is_ok());
        }
        assert!(throttle.reserve(device, 10).is_err(), "a device waits after its own five");
        assert_eq!(throttle.unmarked.failures, 20, "a device's failures are counted apart");
    }

    #[test]
    fn a_right_password_ends_its_source_count_and_only_its_own_check_account_wide() {
        let mut throttle = PasswordThrottle::default();
        let (owner, guesser) = (address("owner"), address("guesser"));
        for _ in 0..4 {
            assert!(fail(&mut throttle, &guesser, 10).is_ok());
        }
        for _ in 0..3 {
            assert!(fail(&mut throttle, &owner, 10).is_ok());
        }
        assert_eq!(throttle.unmarked.failures, 7);
        throttle.released(&owner);
        assert!(!throttle.sources.contains_key(&owner), "the owner's typos are forgiven");
        assert_eq!(throttle.unmarked.failures, 6, "one check back: the guesser's count stands");
        assert_eq!(throttle.sources[&guesser].failures, 4);
        // Two checks of one client at once: the first's release ends the client's count, the
        // second's still takes its own check back account-wide.
        assert!(fail(&mut throttle, &owner, 10).is_ok());
        assert!(fail(&mut throttle, &owner, 10).is_ok());
        throttle.released(&owner);
        assert!(throttle.releasable(&owner));
        throttle.released(&owner);
        assert_eq!(throttle.unmarked.failures, 6, "both checks taken back");
        let device = PasswordSource::Device("d".into());
        assert!(!throttle.releasable(&device), "nothing to release for a device that reserved nothing");
        throttle.logged_in();
        assert_eq!(throttle.unmarked.failures, 6, "a login gives guessers no fresh count");
        let mut legacy = PasswordThrottle::default();
        legacy.rejected_v1(9, Some(5_000), 10);
        legacy.logged_in();
        assert!(legacy.is_clear(), "a first-version count ends with a login, as it did");
    }

    #[test]
    fn a_quiet_count_is_forgotten_only_after_twice_the_cap() {
        let mut throttle = PasswordThrottle::default();
        let source = address("a");
        let mut now = 0;
        for _ in 0..20 {
            if let Some(until) = throttle.waiting(&source, now) {
                now = until;
            }
            assert!(fail(&mut throttle, &source, now).is_ok());
        }
        // Coming back whenever the wait ends (the cap) never finds a fresh count.
        let until = throttle.waiting(&source, now).expect("waiting");
        assert_eq!(until - now, CAP_MS);
        assert!(fail(&mut throttle, &source, until).is_ok());
        assert_eq!(throttle.sources[&source].failures, 21);
        let later = until + FORGET_AFTER_MS;
        assert!(fail(&mut throttle, &source, later).is_ok());
        assert_eq!(throttle.sources[&source].failures, 1, "quiet for twice the cap: a new count");
    }

    #[test]
    fn the_counts_read_back_as_json_and_as_a_checkpoint_keeps_them() {
        let mut throttle = PasswordThrottle::default();
        assert!(fail(&mut throttle, &address("a"), 10).is_ok());
        assert!(fail(&mut throttle, &PasswordSource::Device("d".into()), 11).is_ok());
        let json = serde_json::to_string(&throttle).expect("JSON");
        assert_eq!(serde_json::from_str::<PasswordThrottle>(&json).ok(), Some(throttle.clone()));
        let bytes = postcard::to_stdvec(&throttle).expect("postcard");
        assert_eq!(postcard::from_bytes::<PasswordThrottle>(&bytes).ok(), Some(throttle));
    }

    #[test]
    fn the_sources_kept_are_bounded() {
        let mut throttle = PasswordThrottle::default();
        let device = |n: i64| PasswordSource::Device(n.to_string());
        for n in 0..(MAX_SOURCES as i64 + 10) {
            let reserved = throttle.reserve(device(n), n).expect("free");
            throttle.reserved(&reserved);
        }
        assert_eq!(throttle.sources.len(), MAX_SOURCES);
        assert!(!throttle.sources.contains_key(&device(0)), "the quietest went first");
    }
}
