//! Wrong passwords per client address, across accounts (password spraying):
//! in this process's memory, bounded, forgotten once quiet. The per-account
//! count is the domain's (`PasswordRejected` on the user's stream), exact
//! under races and recorded; this one only slows one address down.

use std::collections::HashMap;
use std::sync::Mutex;

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

/// Wrong passwords by client address (the quota key of the request).
#[derive(Debug, Default)]
pub struct AddressThrottle {
    entries: Mutex<HashMap<String, Entry>>,
}

impl AddressThrottle {
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
        if now - entry.last >= PASSWORD_DELAY_CAP_MS {
            entry.failures = 0;
        }
        entry.failures = entry.failures.saturating_add(1);
        entry.last = now;
        if entry.failures >= ADDRESS_FREE_FAILURES {
            let doublings = (entry.failures - ADDRESS_FREE_FAILURES).min(20);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_waits_after_its_free_failures_up_to_the_cap() {
        let throttle = AddressThrottle::default();
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
    fn the_tracked_addresses_are_bounded() {
        let throttle = AddressThrottle::default();
        for n in 0..(MAX_ADDRESSES + 10) {
            throttle.failed(&format!("10.0.{}.{}", n / 256, n % 256), n as i64);
        }
        assert!(throttle.len() <= MAX_ADDRESSES);
    }
}
