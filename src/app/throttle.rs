//! What stands between a password and its argon2 check: the throttles.
//!
//! A check is counted *before* the password is checked — reserved, then
//! checked — so a burst of guesses released at once gets no more checks than
//! the counts allow, on one server or many:
//! - an account's counts are events on its stream (`PasswordCheckReserved`),
//!   decided by the `User` aggregate under the log's optimistic lock;
//! - a client address's count over every name, and the counts of a name that
//!   is no account (kept exactly as an account's would be, so the answers do
//!   not tell which names are accounts), are rows of the throttle store, each
//!   reserved in a transaction that holds its row — a name's as durably as
//!   an account's event (so both cost the same), an address's unsynced
//!   (every check pays it alike).
//!
//! The rules are `domain::throttle`'s. What this server last learnt of each
//! wait is kept in memory, so a client that must wait is refused before any
//! query or any queue (for an account, the user directory holds it).

use std::collections::HashMap;
use std::sync::Mutex;

use super::AppError;
use super::device_marks::DeviceMarks;
use super::ledger::Ledger;
use crate::domain::throttle::{Count, FORGET_AFTER_MS, PER_ADDRESS, PasswordSource, PasswordThrottle, throttled};
use crate::domain::{User, UserCommand, UserName};
use crate::projections::UserRecord;
use crate::store::EventMetadata;
use crate::store::throttle::{Durability, Throttles};

/// The most waits this server remembers of each kind; past it the ones over are dropped first.
pub const MAX_REMEMBERED: usize = 100_000;

/// Who a password check comes from, as the request tells it.
#[derive(Debug, Clone)]
pub struct PasswordClient {
    /// The client address a quota counts (see `client_address::quota_key`).
    pub quota: String,
    /// The device-mark cookie's value, if the client sent one.
    pub marks: Option<String>,
}

/// A check counted against its source, to be released if its password proves right.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub source: PasswordSource,
    /// The throttle store's key of the client address counted (none for a device).
    address: Option<String>,
    /// Whether the name is an account (its count is in the log).
    account: bool,
    name: UserName,
}

/// The throttles of one server.
pub struct PasswordGuard {
    store: Throttles,
    pub marks: DeviceMarks,
    addresses: Remembered<Count>,
    names: Remembered<PasswordThrottle>,
}

impl PasswordGuard {
    /// The throttles over `store`, with `marks` telling known devices.
    pub fn new(store: Throttles, marks: DeviceMarks) -> Self {
        Self { store, marks, addresses: Remembered::default(), names: Remembered::default() }
    }

    /// The throttle store (sweeps, counts).
    pub fn store(&self) -> &Throttles {
        &self.store
    }

    /// Where a check of `name`'s password from `client` comes from.
    pub fn source(&self, name: &UserName, client: &PasswordClient, now: i64) -> PasswordSource {
        self.marks.source(name, client.marks.as_deref(), &client.quota, now)
    }

    /// Refuses at once, from what this server knows, a check that must wait:
    /// no query, no queue. `account` is the name's account (with a password).
    pub fn precheck(
        &self,
        account: Option<&UserRecord>,
        name: &UserName,
        source: &PasswordSource,
        client: &PasswordClient,
        now: i64,
    ) -> Result<(), AppError> {
        let address = source.is_unmarked().then(|| self.addresses.get(&address_key(&client.quota))).flatten();
        if let Some(until) = address.and_then(|count| count.waiting(now)) {
            return Err(refused("address", until));
        }
        let counts = match account {
            Some(record) => Some(record.password_throttle.clone()),
            None => self.names.get(&name_key(name)),
        };
        match counts.and_then(|counts| counts.waiting(source, now)) {
            Some(until) => Err(refused(if source.is_unmarked() { "account" } else { "client" }, until)),
            None => Ok(()),
        }
    }

    /// Reserves the check: the client address's count (an unmarked client),
    /// then the name's — the account's in the log, else the throttle store's.
    /// Refused (and nothing left counted) when either must wait.
    pub async fn reserve(
        &self,
        ledger: &Ledger,
        account: Option<&UserRecord>,
        name: &UserName,
        source: PasswordSource,
        client: &PasswordClient,
        metadata: &EventMetadata,
    ) -> Result<Reservation, AppError> {
        let now = ledger.now();
        let address = source.is_unmarked().then(|| address_key(&client.quota));
        if let Some(key) = &address {
            self.reserve_address(key, now).await?;
        }
        let reserved = match account {
            Some(record) => {
                let command = UserCommand::ReservePasswordCheck { source: source.clone(), at: now };
                ledger.execute::<User>(&record.name, command, metadata).await.map(|_| ())
            }
            None => self.reserve_name(name, &source, now).await,
        };
        if let Err(error) = reserved {
            if let Some(key) = &address {
                self.release_address(key, now).await;
            }
            if account.is_some() && error.rejection().is_some() {
                let count = if source.is_unmarked() { "account" } else { "client" };
                metrics::counter!(crate::telemetry::PASSWORD_THROTTLED, "count" => count).increment(1);
            }
            return Err(error);
        }
        Ok(Reservation { source, address, account: account.is_some(), name: name.clone() })
    }

    async fn reserve_address(&self, key: &str, now: i64) -> Result<(), AppError> {
        let outcome = self
            .store
            .update::<Count, Result<Count, i64>>(key, now, Durability::Relaxed, |found| {
                let count = found.unwrap_or_default();
                match count.waiting(now) {
                    Some(until) => (None, Err(until)),
                    None => {
                        let counted = count.counted(PER_ADDRESS, now);
                        (Some(counted), Ok(counted))
                    }
                }
            })
            .await?;
        match outcome {
            Ok(count) => {
                self.addresses.put(key, count, now);
                Ok(())
            }
            Err(until) => {
                self.addresses.put(key, Count { until: Some(until), ..Count::default() }, now);
                Err(refused("address", until))
            }
        }
    }

    async fn reserve_name(&self, name: &UserName, source: &PasswordSource, now: i64) -> Result<(), AppError> {
        let key = name_key(name);
        let outcome = self
            .store
            .update::<PasswordThrottle, Result<PasswordThrottle, AppError>>(&key, now, Durability::AsTheLog, |found| {
                let mut counts = found.unwrap_or_default();
                match counts.reserve(source.clone(), now) {
                    Ok(reserved) => {
                        counts.reserved(&reserved);
                        (Some(counts.clone()), Ok(counts))
                    }
                    Err(refusal) => (None, Err(AppError::Rejected(refusal))),
                }
            })
            .await?;
        match outcome {
            Ok(counts) => {
                self.names.put(&key, counts, now);
                Ok(())
            }
            Err(refusal) => {
                metrics::counter!(crate::telemetry::PASSWORD_THROTTLED, "count" => "account").increment(1);
                Err(refusal)
            }
        }
    }

    async fn release_address(&self, key: &str, now: i64) {
        let released = self
            .store
            .update::<Count, Option<Count>>(key, now, Durability::Relaxed, |found| match found {
                Some(count) if count.failures > 0 => {
                    let released = count.released(PER_ADDRESS);
                    (Some(released), Some(released))
                }
                _ => (None, None),
            })
            .await;
        match released {
            Ok(Some(count)) => self.addresses.put(key, count, now),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not release a client address's reserved password check"),
        }
    }

    /// Gives a reservation back: its password was right. The account's is
    /// an event (`PasswordCheckReleased`) when `account_too` (otherwise the
    /// flow's own record gives it back); the address's, and a name's that is
    /// no account, the throttle store's. Failures are logged: the count stays.
    pub async fn release(
        &self,
        ledger: &Ledger,
        reservation: &Reservation,
        account_too: bool,
        metadata: &EventMetadata,
    ) {
        let now = ledger.now();
        if let Some(key) = &reservation.address {
            self.release_address(key, now).await;
        }
        if reservation.account {
            if account_too {
                let command = UserCommand::ReleasePasswordCheck { source: reservation.source.clone(), at: now };
                if let Err(error) = ledger.execute::<User>(&reservation.name, command, metadata).await {
                    tracing::warn!(%error, user = %reservation.name, "could not release a reserved password check");
                }
            }
            return;
        }
        let key = name_key(&reservation.name);
        let source = reservation.source.clone();
        let released =
            self.store
                .update::<PasswordThrottle, Option<PasswordThrottle>>(&key, now, Durability::AsTheLog, |found| {
                    match found {
                        Some(mut counts) if counts.releasable(&source) => {
                            counts.released(&source);
                            (Some(counts.clone()), Some(counts))
                        }
                        _ => (None, None),
                    }
                })
                .await;
        match released {
            Ok(Some(counts)) => self.names.put(&key, counts, now),
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "could not release a reserved password check"),
        }
    }

    /// Drops the throttle store's rows quiet for [`FORGET_AFTER_MS`] (and the
    /// quietest past its bound); how many.
    pub async fn sweep(&self, now: i64) -> Result<u64, AppError> {
        Ok(self.store.sweep(now - FORGET_AFTER_MS).await?)
    }
}

impl PasswordGuard {
    /// Drops the counts kept under `name` while it was no account (a forget:
    /// whoever takes the name next inherits none of them).
    pub async fn forget_name(&self, name: &UserName) -> Result<(), AppError> {
        self.store.remove(&name_key(name)).await?;
        Ok(())
    }
}

/// The throttle store's key of a client address's count.
fn address_key(quota: &str) -> String {
    format!("address:{quota}")
}

/// The throttle store's key of the counts of a name that is no account.
fn name_key(name: &UserName) -> String {
    format!("name:{name}")
}

/// A refusal by the count named `count`, recorded in the metrics.
fn refused(count: &'static str, until: i64) -> AppError {
    metrics::counter!(crate::telemetry::PASSWORD_THROTTLED, "count" => count).increment(1);
    throttled(until).into()
}

/// What this server last learnt of some keys' counts, bounded.
struct Remembered<T> {
    entries: Mutex<HashMap<String, (T, i64)>>,
}

impl<T> Default for Remembered<T> {
    fn default() -> Self {
        Self { entries: Mutex::default() }
    }
}

impl<T: Clone> Remembered<T> {
    fn get(&self, key: &str) -> Option<T> {
        self.entries.lock().ok()?.get(key).map(|(value, _)| value.clone())
    }

    /// Remembers `value` for `key`, learnt at `now`; when full, what was
    /// learnt longest ago goes first.
    fn put(&self, key: &str, value: T, now: i64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_REMEMBERED && !entries.contains_key(key) {
            entries.retain(|_, (_, learnt)| now - *learnt < FORGET_AFTER_MS);
            if entries.len() >= MAX_REMEMBERED {
                // A tenth at a time, so a full map costs one sort per many puts.
                let mut learnt: Vec<i64> = entries.values().map(|(_, at)| *at).collect();
                let cut = learnt.len() / 10;
                learnt.select_nth_unstable(cut);
                let before = learnt[cut];
                entries.retain(|_, (_, at)| *at > before);
            }
        }
        entries.insert(key.to_owned(), (value, now));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_remembered_is_bounded() {
        let remembered: Remembered<u32> = Remembered::default();
        for n in 0..(MAX_REMEMBERED + 10) {
            remembered.put(&n.to_string(), 1, n as i64);
        }
        assert!(remembered.len() <= MAX_REMEMBERED);
        assert_eq!(remembered.get(&(MAX_REMEMBERED + 9).to_string()), Some(1), "the newest is kept");
        assert_eq!(remembered.get("0"), None, "the oldest went first");
    }
}
