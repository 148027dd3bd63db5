//! The integration tests, one binary (one link instead of one per file):
//! each module is a former test crate; `common` is the shared harness.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // a test states its expectations by panicking

#[macro_use]
mod common;

mod api_accounts;
mod api_admin;
mod api_v2;
mod auditor;
mod bad_input;
mod browser;
mod browser_safety;
mod cli;
mod cli_admin;
mod concurrency;
mod contention;
mod flows;
mod forwarded;
mod import_auth2;
mod integrity;
mod invites;
mod legacy;
mod log_ordering;
mod login;
mod mfa;
mod oauth_presets;
mod openapi;
mod operations;
mod pages;
mod provider_login;
mod providers;
mod provisioning;
mod read_your_writes;
mod recanonicalization;
mod replicas;
mod restart;
mod secrets;
mod ssh_certificates;
mod test_mode;
mod throttle;
mod witness;
