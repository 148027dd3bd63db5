//! The `Forgotten` aggregate, one stream per pseudonym: a person forgotten
//! (docs/design/forgetting.md). Its one event is written by the log's forget
//! transaction, which rewrites the person's rows to the pseudonym in the same
//! commit, so no command reaches it through the command bus: the rules a
//! forget must meet are [`decide`]'s, which the application applies before
//! the transaction and again when the transaction asks for the event.
//!
//! The event names nothing of the person: the pseudonym, the position their
//! account was created at (how every server's projections find whom to
//! drop), who forgot them, when and why, and what the forget committed to
//! (the count and digest of the rewritten rows, signed by the witness key).

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::names::UserName;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum ForgottenEvent {
    /// The person whose account was created at `first_position` was
    /// forgotten: `rows` rows of the log were rewritten to `pseudonym`;
    /// `digest` (hex) commits to them and `signature` (base64, by
    /// `public_key`, the witness's) to the pseudonym and the digest.
    PersonForgotten(Forget),
}

domain_event!(ForgottenEvent);

/// What a forget records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Forget {
    pub pseudonym: String,
    pub first_position: i64,
    pub by: UserName,
    pub at: i64,
    pub reason: String,
    pub rows: i64,
    pub digest: String,
    pub public_key: String,
    pub signature: String,
}

/// A pseudonym: `forgotten-` and a random UUID. The hyphens make it a name
/// no account can be given (a user name is lowercase letters, digits and
/// underscores), so nobody can sign up as a forgotten person's pseudonym.
pub fn pseudonym(random: uuid::Uuid) -> String {
    format!("forgotten-{random}")
}

/// Whether `by` may forget `target` for `reason`. Nobody forgets themselves:
/// the forget's own event names who made it.
pub fn decide(by: &UserName, target: &UserName, reason: &str) -> Result<(), AuthError> {
    if target.is_root() {
        return Err(AuthError::unauthorized("The root account cannot be forgotten"));
    }
    if by == target {
        return Err(AuthError::unauthorized("An administrator cannot forget their own account"));
    }
    if reason.trim().is_empty() {
        return Err(AuthError::missing("reason"));
    }
    Ok(())
}

/// No command: see the module's documentation.
#[derive(Debug, Clone, PartialEq)]
pub enum ForgottenCommand {}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Forgotten;

impl Aggregate for Forgotten {
    const TYPE: &'static str = "Forgotten";
    type Command = ForgottenCommand;
    type Event = ForgottenEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: Self::Command, _: &(), _: &EventSink<Self>) -> Result<(), AuthError> {
        match command {}
    }

    fn apply(&mut self, _event: Self::Event) {}
}
