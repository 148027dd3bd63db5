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
//! - [`tokens`]: minting and issuing tokens;
//! - [`invitations`]: sign-up invitations and their second-factor enrolment;
//! - [`hosts`]: provisioning tokens and host joins; [`ssh`]: certificate
//!   authorities and user certificates;
//! - [`history`]: the auditor's queries over the log (history, as-of state);
//! - [`test_mode`]: the separate, expiring test-mode ledger;
//! - [`ledger`]: the running ledger (log, command bus, projections) every use case acts on;
//! - [`passwords`], [`second_factor`], [`root_account`], [`background`]: the pieces they share.

pub mod accounts;
pub mod background;
pub mod commands;
pub mod error;
pub mod history;
pub mod hosts;
pub mod invitations;
pub mod ledger;
pub mod passwords;
pub mod root_account;
pub mod second_factor;
pub mod ssh;
pub mod test_mode;
pub mod tokens;

pub use error::{AppError, AppResult};

/// Deletes a stored secret that nothing will refer to (a flow's
/// compensation). A failure is reported, not dropped; the periodic sweep of
/// unreferenced secrets forgets what is left.
pub(crate) async fn forget_secret(ledger: &ledger::Ledger, id: uuid::Uuid, what: &str) {
    if let Err(error) = ledger.credentials.delete(id).await {
        tracing::warn!(%error, %id, what, "could not forget a stored secret");
    }
}
