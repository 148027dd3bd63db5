//! Passwords: the contract's strength rules (≤ 256 code points, zxcvbn score
//! ≥ 3), argon2id hashing and verification, and temporary passwords for new
//! or reset accounts.
//!
//! argon2id is deliberately slow and takes 19 MiB a run, so its runs are
//! bounded ([`PasswordWork`]): a few at once, off the async threads, each on
//! memory kept for it (so many runs do not leave the allocator holding many
//! 19 MiB arenas); the rest wait in a bounded queue, up to a deadline, and
//! are then answered busy (503) — a burst of guesses costs a bounded amount
//! of memory and CPU, however large.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::Rng;
use rand::seq::SliceRandom;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, SemaphorePermit};
use tokio::time::Instant;

use crate::app::{AppError, legacy_password};
use crate::domain::{AuthError, ErrorType};
use crate::store::Credentials;

pub const MAX_LENGTH: usize = 256;
const TEMPORARY_LENGTH: usize = 10;
const TEMPORARY_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789+!@$%&*";

/// The contract's password rules: length first, then strength.
pub fn check_strength(password: &str) -> Result<(), AuthError> {
    if password.chars().count() > MAX_LENGTH {
        return Err(AuthError::new(ErrorType::IllegalPassword, format!("Password exceeds max length ({MAX_LENGTH})")));
    }
    let estimate = zxcvbn::zxcvbn(password, &[]);
    if u8::from(estimate.score()) < 3 {
        let warning = estimate.feedback().and_then(|f| f.warning()).map(|w| w.to_string()).unwrap_or_default();
        return Err(AuthError::new(ErrorType::IllegalPassword, format!("Password is not strong enough. {warning}")));
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The credentials-store kind of a password hash.
pub const SECRET_KIND: &str = "password";

/// How many argon2 runs may go at once, how many may wait, and how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordWorkSettings {
    pub at_once: usize,
    pub queue: usize,
    pub wait: Duration,
    /// How long a check a throttle refused waits before it is answered.
    pub refusal_delay: Duration,
}

/// How long a throttle's refusal waits before it is answered, by default.
pub const REFUSAL_DELAY: Duration = Duration::from_millis(250);
/// Runs kept for known devices beside the shared ones (see `PasswordWork::marked`).
pub const MARKED_RUNS: usize = 1;
/// Of the memory available at start, at most this share goes to argon2 runs.
const MEMORY_SHARE: u64 = 8;
/// The memory one run of the default parameters takes.
const RUN_BYTES: u64 = (Params::DEFAULT_M_COST as u64) * 1024;

impl Default for PasswordWorkSettings {
    /// Two runs per core, but no more than an eighth of the available memory
    /// holds; sixteen waiting per run; two seconds of waiting.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let by_memory = available_memory().map_or(usize::MAX, |bytes| (bytes / MEMORY_SHARE / RUN_BYTES) as usize);
        let at_once = (2 * cores).min(by_memory).max(1);
        Self { at_once, queue: 16 * at_once, wait: Duration::from_secs(2), refusal_delay: REFUSAL_DELAY }
    }
}

/// `MemAvailable` of `/proc/meminfo`, in bytes (`None` where there is no such file).
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// At most this many checks of one name go at once on a server from clients
/// without a device mark, and as many from each known device, from the turn
/// to the check's end: fewer than a client's free failures (a check counts as
/// a failure until it is settled), so one client's own logins in parallel
/// never make it wait — and guessers never queue ahead of the owner's device.
pub const PER_NAME_AT_ONCE: usize = (crate::domain::throttle::PER_CLIENT.free - 1) as usize;

/// The bounded argon2 runs of one server (see the module documentation).
pub struct PasswordWork {
    settings: PasswordWorkSettings,
    permits: Semaphore,
    /// Runs kept for checks that bring a device mark (the owner's known
    /// clients), beside the shared ones: guessers cannot take them.
    marked: Semaphore,
    /// Each name and kind of client being checked: its turns, and how many hold or await one.
    names: Mutex<HashMap<String, (Arc<Semaphore>, usize)>>,
    /// Requests waiting for a permit.
    waiting: AtomicUsize,
    /// Memory for runs, kept between them (at most one per permit).
    memory: Mutex<Vec<Vec<Block>>>,
    /// Runs started, and the most that ever ran at once.
    runs: AtomicU64,
    running: AtomicUsize,
    most_running: AtomicUsize,
}

/// A place in the queue of work waiting for a permit or a turn.
struct Queued<'a>(&'a AtomicUsize);

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A permit to run argon2, taken from [`PasswordWork::slot`] (or the known devices' own).
pub struct Slot<'a> {
    work: &'a PasswordWork,
    _permit: SemaphorePermit<'a>,
}

/// Who a check is for, as its admission sees it: the name, and whether the
/// client brought the account's device mark (its device id).
#[derive(Debug, Clone, Copy)]
pub struct Checked<'a> {
    pub name: &'a str,
    pub device: Option<&'a str>,
}

impl Checked<'_> {
    /// The key of the check's turns: the name's clients without a mark share theirs; each device has its own.
    fn turn_key(&self) -> String {
        match self.device {
            Some(device) => format!("{}\u{0}device\u{0}{device}", self.name),
            None => format!("{}\u{0}unmarked", self.name),
        }
    }
}

/// One of a name's turns ([`PER_NAME_AT_ONCE`]), held until its check is settled.
pub struct Turn<'a> {
    work: &'a PasswordWork,
    name: String,
    permit: Option<OwnedSemaphorePermit>,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        drop(self.permit.take());
        if let Ok(mut names) = self.work.names.lock()
            && let Some(entry) = names.get_mut(&self.name)
        {
            entry.1 -= 1;
            if entry.1 == 0 {
                names.remove(&self.name);
            }
        }
    }
}

/// What a password check holds while it runs: its name's turn, then a permit.
pub struct Admitted<'a> {
    pub turn: Turn<'a>,
    pub slot: Slot<'a>,
}

impl PasswordWork {
    /// Runs bounded by `settings`.
    pub fn new(settings: PasswordWorkSettings) -> Self {
        Self {
            permits: Semaphore::new(settings.at_once.max(1)),
            marked: Semaphore::new(MARKED_RUNS),
            names: Mutex::default(),
            waiting: AtomicUsize::new(0),
            memory: Mutex::new(Vec::new()),
            runs: AtomicU64::new(0),
            running: AtomicUsize::new(0),
            most_running: AtomicUsize::new(0),
            settings,
        }
    }

    fn busy() -> AppError {
        AppError::Overloaded { what: "password checks", retry_after: Duration::from_secs(1) }
    }

    /// A permit to run argon2: at once when one is free; otherwise after
    /// waiting in the queue, up to the deadline. A full queue, or the
    /// deadline, is `Overloaded` (503 with `Retry-After`): nothing was checked.
    pub async fn slot(&self) -> Result<Slot<'_>, AppError> {
        self.slot_by(Instant::now() + self.settings.wait).await
    }

    async fn slot_by(&self, deadline: Instant) -> Result<Slot<'_>, AppError> {
        if let Ok(permit) = self.permits.try_acquire() {
            return Ok(Slot { work: self, _permit: permit });
        }
        let _queued = self.queue()?;
        match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(Slot { work: self, _permit: permit }),
            _ => {
                metrics::counter!(crate::telemetry::PASSWORD_CHECKS_REFUSED, "reason" => "deadline").increment(1);
                Err(Self::busy())
            }
        }
    }

    /// A place in the queue (`Overloaded` when it is full), given back when dropped.
    fn queue(&self) -> Result<Queued<'_>, AppError> {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.settings.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            metrics::counter!(crate::telemetry::PASSWORD_CHECKS_REFUSED, "reason" => "queue full").increment(1);
            return Err(Self::busy());
        }
        Ok(Queued(&self.waiting))
    }

    /// What a check needs before it runs: one of its turns (see
    /// [`PER_NAME_AT_ONCE`]; at most as many as the queue holds wait for one,
    /// apart from the queue itself, so guessers waiting on one name take no
    /// place from anyone else), then
    /// a permit — a known device's from its own runs when the shared ones are
    /// taken, anyone else's through the bounded queue — all up to one deadline.
    pub async fn admit(&self, checked: Checked<'_>) -> Result<Admitted<'_>, AppError> {
        let deadline = Instant::now() + self.settings.wait;
        let turn = self.turn(&checked.turn_key(), deadline).await?;
        let slot = match checked.device {
            Some(_) => self.marked_slot_by(deadline).await?,
            None => self.slot_by(deadline).await?,
        };
        Ok(Admitted { turn, slot })
    }

    /// A permit for a known device: a shared one if free, else one of the
    /// devices' own, whichever comes first (their waiting bounded by the turns).
    async fn marked_slot_by(&self, deadline: Instant) -> Result<Slot<'_>, AppError> {
        if let Ok(permit) = self.permits.try_acquire().or_else(|_| self.marked.try_acquire()) {
            return Ok(Slot { work: self, _permit: permit });
        }
        let either = async {
            tokio::select! {
                shared = self.permits.acquire() => shared,
                own = self.marked.acquire() => own,
            }
        };
        match tokio::time::timeout_at(deadline, either).await {
            Ok(Ok(permit)) => Ok(Slot { work: self, _permit: permit }),
            _ => {
                metrics::counter!(crate::telemetry::PASSWORD_CHECKS_REFUSED, "reason" => "deadline").increment(1);
                Err(Self::busy())
            }
        }
    }

    async fn turn(&self, key: &str, deadline: Instant) -> Result<Turn<'_>, AppError> {
        let gate = {
            let mut names = self.names.lock().map_err(|_| AppError::internal("the password turns are unavailable"))?;
            let entry = names.entry(key.to_owned()).or_insert_with(|| (Arc::new(Semaphore::new(PER_NAME_AT_ONCE)), 0));
            if entry.1 >= PER_NAME_AT_ONCE + self.settings.queue {
                metrics::counter!(crate::telemetry::PASSWORD_CHECKS_REFUSED, "reason" => "queue full").increment(1);
                return Err(Self::busy());
            }
            entry.1 += 1;
            entry.0.clone()
        };
        // Counted before waiting: a turn given up (deadline, a dropped request) still gives its count back.
        let mut turn = Turn { work: self, name: key.to_owned(), permit: None };
        if let Ok(permit) = gate.clone().try_acquire_owned() {
            turn.permit = Some(permit);
            return Ok(turn);
        }
        match tokio::time::timeout_at(deadline, gate.acquire_owned()).await {
            Ok(Ok(permit)) => {
                turn.permit = Some(permit);
                Ok(turn)
            }
            _ => {
                metrics::counter!(crate::telemetry::PASSWORD_CHECKS_REFUSED, "reason" => "deadline").increment(1);
                Err(Self::busy())
            }
        }
    }

    /// How long a throttle's refusal waits before it is answered.
    pub fn refusal_delay(&self) -> Duration {
        self.settings.refusal_delay
    }

    /// argon2 runs started since the server did.
    pub fn runs(&self) -> u64 {
        self.runs.load(Ordering::SeqCst)
    }

    /// The most runs that went at once.
    pub fn most_at_once(&self) -> usize {
        self.most_running.load(Ordering::SeqCst)
    }

    /// How many runs go now.
    pub fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }

    /// How many requests wait for a permit now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Runs `job` on kept memory off the async threads.
    async fn run<T: Send + 'static>(&self, job: impl FnOnce(&mut [Block]) -> T + Send + 'static) -> Option<T> {
        let running = self.running.fetch_add(1, Ordering::SeqCst) + 1;
        self.most_running.fetch_max(running, Ordering::SeqCst);
        self.runs.fetch_add(1, Ordering::SeqCst);
        metrics::counter!(crate::telemetry::PASSWORD_CHECKS).increment(1);
        let mut memory = self.memory.lock().ok().and_then(|mut kept| kept.pop()).unwrap_or_default();
        let done = tokio::task::spawn_blocking(move || {
            if memory.len() < Params::DEFAULT_M_COST as usize {
                memory = vec![Block::default(); Params::DEFAULT_M_COST as usize];
            }
            let out = job(&mut memory);
            (memory, out)
        })
        .await;
        self.running.fetch_sub(1, Ordering::SeqCst);
        let (memory, out) = done.ok()?;
        if let Ok(mut kept) = self.memory.lock()
            && kept.len() < self.settings.at_once + MARKED_RUNS
        {
            kept.push(memory);
        }
        Some(out)
    }
}

impl Slot<'_> {
    /// Whether `password` matches the stored hash (a decoy when there is
    /// none, so the answer takes as long for a name that is no account).
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DECOY.to_owned());
        let matched = self
            .work
            .run(move |memory| match legacy_password::is_legacy(&stored) {
                true => legacy_password::verify(password.as_bytes(), &stored),
                false => verify_with(memory, password.as_bytes(), &stored),
            })
            .await;
        known && matched.unwrap_or(false)
    }

    /// The argon2id PHC string of `password`.
    pub async fn hash(&self, password: String) -> Result<String, String> {
        let salt = SaltString::generate(&mut OsRng);
        self.work
            .run(move |memory| hash_with(memory, password.as_bytes(), &salt))
            .await
            .unwrap_or_else(|| Err("the hashing task failed".to_owned()))
    }
}

/// argon2id of `password` with a fresh salt, on `memory`, as a PHC string.
fn hash_with(memory: &mut [Block], password: &[u8], salt: &SaltString) -> Result<String, String> {
    let hasher = hasher();
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_bytes).map_err(|e| e.to_string())?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    hasher.hash_password_into_with_memory(password, salt_bytes, &mut out, memory).map_err(|e| e.to_string())?;
    let output = Output::new(&out).map_err(|e| e.to_string())?;
    let params = argon2::password_hash::ParamsString::try_from(hasher.params()).map_err(|e| e.to_string())?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(hash.to_string())
}

/// Whether `password` gives the output of the PHC string `stored` under its
/// own parameters (on `memory` when they fit it), compared in constant time.
fn verify_with(memory: &mut [Block], password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (hash.salt, hash.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(hash.algorithm), Params::try_from(&hash)) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    let argon = Argon2::new(algorithm, version, params);
    let mut out = vec![0u8; expected.len()];
    let computed = match memory.get_mut(..blocks) {
        Some(memory) => argon.hash_password_into_with_memory(password, salt, &mut out, memory),
        None => argon.hash_password_into(password, salt, &mut out),
    };
    computed.is_ok() && Output::new(&out).is_ok_and(|out| out == expected)
}

/// Hashes `password` (on a permit of `work`) and keeps the hash in the
/// credentials store; returns its id, which events carry instead of the hash.
pub async fn store(
    work: &PasswordWork,
    credentials: &Credentials,
    password: String,
    now: i64,
) -> Result<uuid::Uuid, AppError> {
    let hashed = work.slot().await?.hash(password).await.map_err(AppError::internal)?;
    let credential_id = uuid::Uuid::new_v4();
    credentials.put(credential_id, SECRET_KIND, &hashed, now).await?;
    Ok(credential_id)
}

/// A hash of a password nobody has, verified against when the user is unknown
/// so that a login's timing does not reveal whether the account exists.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9Kr4mTMOHsl1TNgKZbhm4OHUzQGc1wGwD4GZJd4fHzI";

/// A fresh temporary password (upstream's alphabet and length).
pub fn temporary() -> String {
    let mut rng = rand::thread_rng();
    let mut chars: Vec<u8> =
        (0..TEMPORARY_LENGTH).map(|_| TEMPORARY_ALPHABET[rng.gen_range(0..TEMPORARY_ALPHABET.len())]).collect();
    chars.shuffle(&mut rng);
    String::from_utf8(chars).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_long_passwords_are_refused() {
        let weak = check_strength("short").expect_err("weak");
        assert!(weak.to_string().starts_with("30030 Illegal password: Password is not strong enough."), "{weak}");
        let long = check_strength(&"x".repeat(257)).expect_err("long");
        assert_eq!(long.to_string(), "30030 Illegal password: Password exceeds max length (256)");
        assert!(check_strength("correct horse battery staple 42!").is_ok());
    }

    fn work(at_once: usize, queue: usize) -> PasswordWork {
        PasswordWork::new(PasswordWorkSettings {
            at_once,
            queue,
            wait: Duration::from_millis(200),
            refusal_delay: Duration::ZERO,
        })
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let work = work(2, 4);
        let slot = work.slot().await.expect("free");
        let stored = slot.hash("a long passphrase it is".into()).await.expect("hashed");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(slot.verify("a long passphrase it is".into(), Some(stored.clone())).await);
        assert!(!slot.verify("another".into(), Some(stored.clone())).await);
        assert!(!slot.verify("anything".into(), None).await);
        // The library's own verifier agrees (the hashes are standard PHC strings), and ours reads its hashes.
        use argon2::PasswordVerifier;
        let parsed = PasswordHash::new(&stored).expect("PHC");
        assert!(hasher().verify_password(b"a long passphrase it is", &parsed).is_ok());
        let theirs = {
            use argon2::PasswordHasher;
            let salt = SaltString::generate(&mut OsRng);
            hasher().hash_password(b"theirs", &salt).expect("hashed").to_string()
        };
        assert!(slot.verify("theirs".into(), Some(theirs)).await);
        // A hash of other parameters is checked under its own.
        let salt = SaltString::generate(&mut OsRng);
        let small = {
            use argon2::PasswordHasher;
            let params = Params::new(64, 1, 1, None).expect("params");
            Argon2::new(Algorithm::Argon2id, Version::V0x13, params).hash_password(b"small", &salt).expect("hashed")
        }
        .to_string();
        assert!(slot.verify("small".into(), Some(small.clone())).await);
        assert!(!slot.verify("large".into(), Some(small)).await);
        assert_eq!(work.runs(), 7);
    }

    #[tokio::test]
    async fn runs_beyond_the_permits_wait_in_a_bounded_queue_then_are_refused() {
        let work = work(1, 1);
        let held = work.slot().await.expect("free");
        let (waiting, refused) = tokio::join!(work.slot(), async {
            tokio::task::yield_now().await;
            work.slot().await
        });
        assert!(matches!(refused, Err(AppError::Overloaded { .. })), "the queue holds one");
        assert!(matches!(waiting, Err(AppError::Overloaded { .. })), "the deadline passed while the permit was held");
        drop(held);
        assert!(work.slot().await.is_ok(), "free again");
        assert_eq!(work.waiting(), 0);
    }

    #[tokio::test]
    async fn a_known_device_has_runs_guessers_cannot_take() {
        let work = work(1, 4);
        let guesser = work.slot().await.expect("the shared run");
        assert!(matches!(work.admit(Checked { name: "x", device: None }).await, Err(AppError::Overloaded { .. })));
        let owner = work.admit(Checked { name: "alice", device: Some("laptop") }).await;
        assert!(owner.is_ok(), "the device's own run");
        drop((guesser, owner));
    }

    #[tokio::test]
    async fn a_name_is_checked_a_few_at_a_time_and_its_turns_leave_nothing_behind() {
        let work = work(8, 8);
        let mut held = Vec::new();
        let unmarked = |name| Checked { name, device: None };
        for _ in 0..PER_NAME_AT_ONCE {
            held.push(work.admit(unmarked("alice")).await.expect("a turn").turn);
        }
        assert!(matches!(work.admit(unmarked("alice")).await, Err(AppError::Overloaded { .. })), "alice's are taken");
        assert!(work.admit(unmarked("bob")).await.is_ok(), "bob does not wait for alice");
        let device = Checked { name: "alice", device: Some("laptop") };
        assert!(work.admit(device).await.is_ok(), "alice's known device does not wait for the others");
        held.clear();
        assert!(work.admit(unmarked("alice")).await.is_ok(), "free again");
        assert_eq!(work.names.lock().map(|n| n.len()).unwrap_or(9), 0, "no name is left behind");
        assert_eq!(work.waiting(), 0);
    }

    #[test]
    fn temporary_passwords_use_the_alphabet() {
        let pw = temporary();
        assert_eq!(pw.len(), TEMPORARY_LENGTH);
        assert!(pw.bytes().all(|b| TEMPORARY_ALPHABET.contains(&b)));
    }
}
