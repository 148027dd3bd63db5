//! authledger: an authentication service whose source of truth is an
//! immutable event log. Reading order — and the direction of every import —
//! is domain → store → projections → app → api:
//!
//! - [`domain`]: aggregates, commands, events, rules; pure (no I/O, clock or randomness);
//! - [`store`]: the event log (SQLite or PostgreSQL), the credentials store, checkpoints' storage;
//! - [`projections`]: the in-memory state folded from the log, and the runner that feeds them;
//! - [`app`]: the use cases — every rule that needs more than one aggregate, every multi-step
//!   flow, credential, random value, and the one command path;
//! - [`api`]: HTTP — parse the request, check the caller against the permission table, call
//!   the application layer, render JSON or a page; the error envelope. It makes no decision
//!   and executes no command (`src/code_rules/layering.rs` holds it to that).
//!
//! Beside them: [`cli`] (the administrative commands' HTTP client), [`config`] (the configuration file → options), [`server`]
//! (wires a ledger to the HTTP router and runs it), [`clock`] (the
//! injected time every layer above the domain reads) and [`telemetry`] (the
//! metrics every layer records).

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
#[cfg(test)]
mod code_rules;
pub mod config;
pub mod domain;
pub mod projections;
pub mod server;
pub mod store;
pub mod telemetry;
