//! Forgetting a person (docs/design/forgetting.md): the flow that carries a
//! forget out ([`forget`]), which bytes it rewrites ([`rewrite`]), and the
//! journal that re-applies it to a log restored from before it ([`journal`]).

mod journal;
mod rewrite;

use std::collections::{BTreeMap, BTreeSet};

use cqrs_es::persist::SerializedEvent;
use cqrs_es::{Aggregate, DomainEvent};
use uuid::Uuid;

pub use journal::Journal;
pub use rewrite::{FIELDS, Fields, Person, Rewriter};

use super::acting::Acting;
use super::error::AppError;
use super::ledger::Ledger;
use super::provider_flows::ProviderFlows;
use super::test_mode::TestLedger;
use super::witness::Witness;
use crate::domain::forgotten::{self, Forget, Forgotten, ForgottenEvent};
use crate::domain::{IdentityClaim, User, UserName};
use crate::projections::UserRecord;
use crate::store::forget::{Commitment, Forgetting, RewrittenRow};
use crate::store::{EventMetadata, StoreError, StoredEvent};

/// Forgets `name` for `reason` (docs/design/forgetting.md): every row of the
/// log that names them is rewritten to a new pseudonym, in one transaction
/// with the `PersonForgotten` event, signed by the witness key; then their
/// sealed secrets and in-flight flows go, the journal keeps the forget, and
/// this server's projections drop them. Returns the forget's position once
/// this server has folded it.
pub async fn forget(
    forgetter: &Forgetter<'_>,
    acting: &Acting,
    name: &UserName,
    reason: &str,
) -> Result<i64, AppError> {
    let ledger = forgetter.ledger;
    forgotten::decide(acting.name(), name, reason)?;
    super::admin::user(ledger, name)?;
    // The forget's transaction is a write like any other: not while writes are refused.
    if let Some(refused) = ledger.writes_refused() {
        return Err(AppError::Halted(refused));
    }
    let order = Order {
        name: name.clone(),
        pseudonym: forgotten::pseudonym(Uuid::new_v4()),
        by: acting.name().clone(),
        reason: reason.trim().to_owned(),
        metadata: acting.metadata.clone(),
    };
    forgetter.carry_out(order).await
}

/// What a forget needs beside the log: the witness key that signs it, the
/// in-flight flows it drops, the journal that keeps it.
pub struct Forgetter<'a> {
    pub ledger: &'a Ledger,
    pub witness: &'a Witness,
    pub flows: &'a ProviderFlows,
    pub journal: &'a Journal,
    /// The test-mode log, when this server serves one: a test user of the
    /// same name goes with the person.
    pub test_mode: Option<&'a TestLedger>,
}

/// One forget to carry out.
struct Order {
    name: UserName,
    pseudonym: String,
    by: UserName,
    reason: String,
    metadata: EventMetadata,
}

/// How many times a forget reads the log again when another forget was
/// written while it read it.
const RACES: usize = 3;

impl Forgetter<'_> {
    async fn carry_out(&self, order: Order) -> Result<i64, AppError> {
        let ledger = self.ledger;
        let started = std::time::Instant::now();
        // The key that signs the forget must be one the log names as its witness's.
        self.witness.record(ledger).await?;
        let mut raced = 0;
        let forgot = loop {
            let user = super::admin::user(ledger, &order.name)?;
            let person = Person {
                name: order.name.as_str().to_owned(),
                pseudonym: order.pseudonym.clone(),
                anon_id: Some((user.anon_id.to_string(), Uuid::new_v4().to_string())),
                claims: own_claims(ledger, &order.name, ever_linked(ledger, &order.name, &user).await?.into_iter())
                    .await?,
            };
            let run = Run {
                rewriter: Rewriter::new(person),
                secrets: own_secrets(ledger, &order.name, &user),
                witness: self.witness,
                first_position: user.created_position,
                order: &order,
                at: ledger.now(),
            };
            match ledger.log.forget(&run, ledger.now()).await {
                Ok(forgot) => break forgot,
                // Another forget rewrote rows this one read (it may even be theirs): read again.
                Err(StoreError::ForgetRaced(other)) if raced < RACES => {
                    raced += 1;
                    ledger.fold_to(other).await?;
                }
                Err(error) => return Err(error.into()),
            }
        };
        tracing::info!(
            position = forgot.position,
            rows = forgot.rows,
            pseudonym = %order.pseudonym,
            ms = started.elapsed().as_millis(),
            "a person was forgotten"
        );
        // The forget is committed: each step after it is tried whatever the others do
        // (a failure is logged for the operator; a retry would find no such user).
        if let Err(error) = ledger.password_guard.forget_name(&order.name).await {
            tracing::warn!(%error, "cannot drop the throttle's counts under the forgotten name");
        }
        if let Err(error) = self.flows.forget_user(order.name.as_str()).await {
            tracing::warn!(%error, "cannot drop the forgotten person's sign-ins in progress");
        }
        if let Some(test_mode) = self.test_mode {
            match test_mode.forget_user(&order.name).await {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "a test user of the same name was dropped from the test-mode log"),
                Err(error) => tracing::warn!(%error, "cannot drop the test user of the forgotten name"),
            }
        }
        // The rewrite is committed: a scrub that cannot run is the operator's to finish, not a failed forget.
        let scrubbing = std::time::Instant::now();
        match ledger.log.scrub(forgot.position).await {
            Ok(scrubbed) => {
                if !scrubbed.tables.is_empty() {
                    tracing::info!(
                        tables = scrubbed.tables.len(),
                        ms = scrubbing.elapsed().as_millis(),
                        "the tables were written anew without the old row versions"
                    );
                }
                if scrubbed.still_open > 0 {
                    tracing::warn!(
                        open = scrubbed.still_open,
                        "transactions older than the forget were still open: the old row versions they see stay until the next vacuum"
                    );
                }
            }
            Err(error) => tracing::warn!(%error, "cannot vacuum after the forget: run VACUUM on the log's tables"),
        }
        // The journal reads the forget from the log, as it does those of other servers
        // (and its background task tries again every two seconds).
        if let Err(error) = self.journal.keep_up(ledger).await {
            tracing::warn!(%error, "cannot keep the forget journal up");
        }
        ledger.fold_to(forgot.position).await?;
        // What others' records kept of them (who disabled whom, say) goes from memory too.
        ledger.refold().await?;
        Ok(forgot.position)
    }

    /// Applies again, before the server serves anything, every forget the
    /// journal keeps that this log lacks while it holds the person's first
    /// event (a log restored from a backup taken before the forget): under the
    /// same pseudonym, by the same administrator, for the same reason; even
    /// while writes are refused (a restored log is behind its witness).
    /// Returns the pseudonyms forgotten again.
    pub async fn reapply(&self) -> Result<Vec<String>, AppError> {
        let ledger = self.ledger;
        let mut again = Vec::new();
        for entry in self.journal.entries() {
            if !ledger.log.load(Forgotten::TYPE, &entry.pseudonym, 0).await?.is_empty() {
                continue;
            }
            // Another log, or one restored from before the person was: nothing of them here.
            if ledger.log.chain_at(entry.first_position).await?.as_deref() != Some(entry.first_chain.as_str()) {
                continue;
            }
            let name = ledger.projections.read().users.created_at(entry.first_position).map(|u| u.name.clone());
            let Some(name) = name else {
                tracing::warn!(pseudonym = %entry.pseudonym, "the journal's forget names an account this log no longer holds");
                continue;
            };
            let by =
                UserName::parse(Some(&entry.by)).map_err(|e| AppError::internal(format!("the forget journal: {e}")))?;
            let metadata = EventMetadata {
                reason: Some(format!(
                    "applied again at start: the log was restored from before the forget at position {}",
                    entry.position
                )),
                ..EventMetadata::actor("system")
            };
            let order = Order { name, pseudonym: entry.pseudonym.clone(), by, reason: entry.reason.clone(), metadata };
            let position = self.carry_out(order).await?;
            tracing::warn!(pseudonym = %entry.pseudonym, position, "a forget was applied again: this log was restored from before it");
            again.push(entry.pseudonym);
        }
        Ok(again)
    }
}

/// The stored secrets of `name`: their password hash and second-factor
/// seed, and the seeds offered with their pending invitations.
fn own_secrets(ledger: &Ledger, name: &UserName, user: &UserRecord) -> Vec<Uuid> {
    let projections = ledger.projections.read();
    let invites =
        projections.access.invites(i64::MIN).into_iter().filter(|i| i.user == *name).filter_map(|i| i.offered);
    user.credential.into_iter().chain(user.second_factor).chain(invites).collect()
}

/// Every identity `name` ever had: those linked now, and those unlinked
/// (their ids are in the account's `IdentityUnlinked` events).
async fn ever_linked(ledger: &Ledger, name: &UserName, user: &UserRecord) -> Result<BTreeSet<String>, AppError> {
    let mut ids: BTreeSet<String> = user.remote_identities.keys().map(|id| id.as_str().to_owned()).collect();
    for event in ledger.log.load(User::TYPE, name.as_str(), 0).await? {
        if let Some(id) = event.payload.pointer("/IdentityUnlinked/id").and_then(|id| id.as_str()) {
            ids.insert(id.to_owned());
        }
    }
    Ok(ids)
}

/// The identity-claim streams of `ids` that only `name` ever claimed, each
/// with the new id it is renamed to (a stream another account claimed too
/// keeps its id: that account may hold it now).
async fn own_claims(
    ledger: &Ledger,
    name: &UserName,
    ids: impl Iterator<Item = String>,
) -> Result<BTreeMap<String, String>, AppError> {
    let mut claims = BTreeMap::new();
    for id in ids {
        let events = ledger.log.load(IdentityClaim::TYPE, &id, 0).await?;
        let only_theirs = events.iter().all(|e| {
            ["/IdentityClaimed/user", "/IdentityReleased/user"]
                .iter()
                .filter_map(|p| e.payload.pointer(p))
                .all(|user| *user == *name.as_str())
        });
        if only_theirs {
            claims.insert(id, format!("forgotten-{}", Uuid::new_v4().simple()));
        }
    }
    Ok(claims)
}

/// One forget as the store carries it out.
struct Run<'a> {
    rewriter: Rewriter,
    secrets: Vec<Uuid>,
    witness: &'a Witness,
    first_position: i64,
    order: &'a Order,
    at: i64,
}

impl Forgetting for Run<'_> {
    fn rewrite(&self, row: &StoredEvent) -> Option<RewrittenRow> {
        self.rewriter.rewrite(row)
    }

    fn secrets(&self) -> &[Uuid] {
        &self.secrets
    }

    fn event(&self, commitment: &Commitment) -> Result<SerializedEvent, String> {
        let pseudonym = &self.rewriter.person().pseudonym;
        let (public_key, signature) = self.witness.sign_forget(commitment.position, pseudonym, &commitment.digest);
        let event = ForgottenEvent::PersonForgotten(Forget {
            pseudonym: pseudonym.clone(),
            first_position: self.first_position,
            by: self.order.by.clone(),
            at: self.at,
            reason: self.order.reason.clone(),
            rows: commitment.rows,
            digest: crate::store::chain::encode(&commitment.digest),
            public_key,
            signature,
        });
        let payload = serde_json::to_value(&event).map_err(|e| e.to_string())?;
        let metadata = serde_json::to_value(self.order.metadata.clone().into_map()).map_err(|e| e.to_string())?;
        Ok(SerializedEvent::new(
            pseudonym.clone(),
            1,
            Forgotten::TYPE.to_owned(),
            event.event_type(),
            event.event_version(),
            payload,
            metadata,
        ))
    }
}
