//! The application layer: every use case of the service, between the HTTP
//! handlers (`api`) and the domain, log and projections below. A handler
//! parses its request, calls one function here and renders the answer; it
//! never touches the store, a credential or a random-number generator.
//!
//! This layer owns:
//! - every multi-step flow (log in, complete an invitation, join a host, sign
//!   a certificate): each either commits its events in one append or
//!   compensates explicitly, with failed compensations reported;
//! - every use of credentials (password hashes, TOTP seeds, CA keys in the
//!   credentials store), randomness (token values, serials, ids) and the clock;
//! - the one command path into the domain ([`commands::CommandBus::execute`],
//!   through [`ledger::Ledger::execute`]) and the one error type ([`AppError`]).
//!
//! Modules, one per use-case family:
//! - [`accounts`]: local accounts — password login, reset, password changes, second factors;
//! - [`admin`]: what administrators change — roles, custom roles, disabling, resets, unlocks,
//!   users' tokens, the configuration; [`acting`]: who acts, with their events' metadata;
//! - [`tokens`]: minting and issuing tokens;
//! - [`invitations`]: sign-up invitations and their second-factor enrolment;
//! - [`hosts`]: provisioning tokens and host joins; [`ssh`]: certificate
//!   authorities and user certificates;
//! - [`provider_login`]: signing in through identity providers (complete, choose, create);
//!   [`links`]: linking and unlinking provider identities; [`policies`]: policy ids;
//!   [`provider_flows`]: what provider flows share (the providers, redirect URIs, the in-flight store);
//! - [`roles`]: a user's built-in and custom roles changed in one step;
//! - [`history`]: the auditor's queries over the log (history, as-of state);
//!   [`forgetting`]: what a forget of a person rewrites in the log's rows;
//! - [`test_mode`]: the separate, expiring test-mode ledger;
//! - [`ledger`]: the running ledger (log, command bus, projections) every use case acts on;
//!   [`consistency`]: read-your-writes across servers sharing the log; [`duties`]: what one server of them does;
//!   [`health`]: liveness, readiness and metrics;
//! - [`witness`]: signed heads of the log, kept outside it;
//! - [`client_address`]: which address a request comes from (trusted proxies);
//! - [`throttle`]: wrong passwords, reserved before they are checked; [`device_marks`]: the marks
//!   that exempt an account's known clients from the waits guessers cause;
//! - [`secrets`]: the key that seals the credentials store (a new key, a rotation);
//! - [`passwords`], [`second_factor`], [`root_account`], [`background`]: the pieces they share.

pub mod accounts;
pub mod acting;
pub mod admin;
pub mod background;
pub mod client_address;
pub mod commands;
pub mod consistency;
pub mod device_marks;
pub mod duties;
pub mod error;
pub mod forgetting;
pub mod health;
pub mod history;
pub mod hosts;
pub mod import_auth2;
pub mod invitations;
pub mod ledger;
pub mod legacy_password;
pub mod links;
pub mod passwords;
pub mod policies;
pub mod provider_flows;
pub mod provider_login;
pub mod providers;
pub mod reads;
pub mod roles;
pub mod root_account;
pub mod second_factor;
pub mod secrets;
pub mod ssh;
pub mod test_mode;
pub mod throttle;
pub mod tokens;
pub mod witness;

/// Who caused an event and from where: what a request hands every use case.
pub use crate::store::EventMetadata;
pub use error::{AppError, AppResult};

/// A new call id (upstream's form: sixteen random digits): names one request
/// in its error answer and in the metadata of the events it causes.
pub fn new_call_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..16).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// A flow's compensation after `error`: forgets the stored secret the failed
/// command would have referred to — only when the command certainly wrote
/// nothing ([`AppError::wrote_nothing`]); otherwise the event may reference
/// it, and it is kept. Returns `error`, for the flow to answer.
pub(crate) async fn undo_secret(ledger: &ledger::Ledger, error: AppError, id: uuid::Uuid, what: &str) -> AppError {
    if error.wrote_nothing() {
        forget_secret(ledger, id, what).await;
    } else {
        tracing::warn!(%error, %id, what, "kept a stored secret: the failed command may have recorded it");
    }
    error
}

/// Deletes a stored secret that nothing will refer to. A failure is reported,
/// not dropped; the periodic sweep of unreferenced TOTP secrets forgets what is left.
pub(crate) async fn forget_secret(ledger: &ledger::Ledger, id: uuid::Uuid, what: &str) {
    if let Err(error) = ledger.credentials.delete(id).await {
        tracing::warn!(%error, %id, what, "could not forget a stored secret");
    }
}
