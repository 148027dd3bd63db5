//! Wrong passwords counted in this process's memory, bounded: per client
//! address, across accounts (password spraying; forgotten once quiet), and
//! per name that is no account (so a throttle does not tell which names are
//! accounts: they wait exactly as an account does). The per-account count is
//! the domain's (`PasswordRejected` on the user's stream), exact under races
//! and recorded. [`CheckGate`] lets one password check at a time run for an
//! account about to be throttled, so parallel guesses cannot slip past it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::domain::AuthError;
use crate::domain::user::{PASSWORD_DELAY_CAP_MS, throttled};

/// Wrong passwords one address may give (over any accounts) before its
/// checks wait; more than an account's, as many people may share an address.
pub const ADDRESS_FREE_FAILURES: u32 = 20;
/// The most addresses tracked at once; past it, the quietest is forgotten.
pub const MAX_ADDRESSES: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Entry {
    failures: u32,
    last: i64,
    until: i64,
}

/// Wrong passwords by key (a client address, or a name that is no account).
#[derive(Debug)]
pub struct Throttle {
    /// Failures answered at once; from this many on, checks wait.
    free: u32,
    /// Whether a count quiet for the cap starts again (an address's does; a
    /// name's does not, as an account's recorded count does not).
    decays: bool,
    entries: Mutex<HashMap<String, Entry>>,
}

impl Throttle {
    /// Per client address: [`ADDRESS_FREE_FAILURES`], forgotten once quiet.
    pub fn per_address() -> Self {
        Self { free: ADDRESS_FREE_FAILURES, decays: true, entries: Mutex::default() }
    }

    /// Per name that is no account: the schedule of an account's own count.
    pub fn per_unknown_name() -> Self {
        Self { free: crate::domain::user::PASSWORD_FREE_FAILURES, decays: false, entries: Mutex::default() }
    }

    /// The failures counted for `key`.
    pub fn failures(&self, key: &str) -> u32 {
        self.entries.lock().ok().and_then(|e| e.get(key).map(|e| e.failures)).unwrap_or(0)
    }

    /// Refuses a password check from `address` while it is throttled.
    pub fn check(&self, address: &str, now: i64) -> Result<(), AuthError> {
        let entries = self.entries.lock().map_err(|_| AuthError::illegal("the address throttle is unavailable"))?;
        match entries.get(address) {
            Some(entry) if now < entry.until => Err(throttled(entry.until)),
            _ => Ok(()),
        }
    }

    /// Counts a wrong password from `address`: a count quiet for the cap
    /// starts again; from [`ADDRESS_FREE_FAILURES`] on, the next check waits
    /// one second, doubling, up to the cap.
    pub fn failed(&self, address: &str, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_ADDRESSES && !entries.contains_key(address) {
            entries.retain(|_, e| now - e.last < PASSWORD_DELAY_CAP_MS && now < e.until.max(e.last + 1));
            if entries.len() >= MAX_ADDRESSES
                && let Some(quietest) = entries.iter().min_by_key(|(_, e)| e.last).map(|(k, _)| k.clone())
            {
                entries.remove(&quietest);
            }
        }
        let entry = entries.entry(address.to_owned()).or_insert(Entry { failures: 0, last: now, until: 0 });
        if self.decays && now - entry.last >= PASSWORD_DELAY_CAP_MS {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        if entry.failures >= self.free {
            let doublings = (entry.failures - self.free).min(20);
            entry.until = now + (1000_i64 << doublings).min(PASSWORD_DELAY_CAP_MS);
        }
    }

    /// How many addresses are tracked.
    pub fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Whether no address is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One password check at a time per account name, for accounts about to be
/// throttled (see [`CheckGate::enter`]).
#[derive(Debug, Default)]
pub struct CheckGate {
    checking: Arc<Mutex<HashSet<String>>>,
}

/// Held while a check runs; leaving frees the name.
pub struct Checking {
    checking: Arc<Mutex<HashSet<String>>>,
    name: String,
}

impl Drop for Checking {
    fn drop(&mut self) {
        if let Ok(mut checking) = self.checking.lock() {
            checking.remove(&self.name);
        }
    }
}

impl CheckGate {
    /// Enters the check of `name`; `None` while another check of it runs.
    pub fn enter(&self, name: &str) -> Option<Checking> {
        let mut checking = self.checking.lock().ok()?;
        checking.insert(name.to_owned()).then(|| Checking { checking: self.checking.clone(), name: name.to_owned() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_its_free_failures_up_to_the_cap() {
        let throttle = Throttle::per_address();
        for n in 1..ADDRESS_FREE_FAILURES {
            throttle.failed("a", n as i64);
            assert!(throttle.check("a", n as i64).is_ok());
        }
        throttle.failed("a", 100);
        assert!(throttle.check("a", 100).is_err());
        assert!(throttle.check("a", 1_100).is_ok(), "one second");
        assert!(throttle.check("b", 100).is_ok(), "another address is not slowed");
        for _ in 0..30 {
            throttle.failed("a", 2_000);
        }
        assert!(throttle.check("a", 2_000 + PASSWORD_DELAY_CAP_MS - 1).is_err());
        assert!(throttle.check("a", 2_000 + PASSWORD_DELAY_CAP_MS).is_ok(), "capped");
        // Quiet for the cap: the count starts again.
        throttle.failed("a", 10 * PASSWORD_DELAY_CAP_MS);
        assert!(throttle.check("a", 10 * PASSWORD_DELAY_CAP_MS).is_ok());
    }

    #[test]
    fn one_check_at_a_time_per_name() {
        let gate = CheckGate::default();
        let first = gate.enter("alice");
        assert!(first.is_some());
        assert!(gate.enter("alice").is_none(), "a second check waits");
        assert!(gate.enter("bob").is_some());
        drop(first);
        assert!(gate.enter("alice").is_some(), "free again");
    }

    #[test]
    fn a_name_that_is_no_account_waits_as_an_account_does() {
        let throttle = Throttle::per_unknown_name();
        for n in 1..crate::domain::user::PASSWORD_FREE_FAILURES {
            throttle.failed("ghost", n as i64);
        }
        assert!(throttle.check("ghost", 10).is_ok());
        throttle.failed("ghost", 10);
        assert!(throttle.check("ghost", 10).is_err());
        assert!(throttle.check("ghost", 1_010).is_ok());
        throttle.failed("ghost", 10 * PASSWORD_DELAY_CAP_MS);
        assert_eq!(throttle.failures("ghost"), 6, "no decay, as an account's recorded count");
    }

    #[test]
    fn the_tracked_addresses_are_bounded() {
        let throttle = Throttle::per_address();
        for n in 0..(MAX_ADDRESSES + 10) {
            throttle.failed(&format!("10.0.{}.{}", n / 256, n % 256), n as i64);
        }
        assert!(throttle.len() <= MAX_ADDRESSES);
    }
}
