//! authledger: an authentication service whose source of truth is an
//! immutable event log. Reading order — and the direction of every import —
//! is domain → store → projections → api.

pub mod access;
pub mod api;
pub mod audit;
pub mod background;
pub mod client;
pub mod clock;
pub mod config;
pub mod domain;
pub mod ledger;
pub mod passwords;
pub mod projections;
pub mod root_account;
pub mod server;
pub mod store;
pub mod test_mode;
