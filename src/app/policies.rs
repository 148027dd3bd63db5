//! Policy ids (reference §7): users agree to them at a provider login's pick
//! or create (`app::provider_login`); an administrator removes one from every user.

use super::AppError;
use super::ledger::Ledger;
use crate::app::acting::Acting;
use crate::domain::{Policy, PolicyCommand, PolicyId};

/// Removes policy id `id` from every user (upstream `POST /admin/policyid`).
pub async fn remove_policy_id(ledger: &Ledger, id: &PolicyId, acting: &Acting) -> Result<(), AppError> {
    let (by, metadata) = (acting.name(), &acting.metadata);
    let command = PolicyCommand::Remove { by: by.clone(), at: ledger.now() };
    ledger.execute::<Policy>(id, command, metadata).await.map(|_| ())
}
