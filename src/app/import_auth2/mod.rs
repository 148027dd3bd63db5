//! `authledger import-auth2`: a KBase auth2 deployment's users (with their
//! anonymous ids, identities, roles and password hashes), live tokens, custom
//! roles and settings, from a `mongodump` of its database, into an empty log
//! in one batch — all of it or nothing. Tokens introspect as they did; old
//! passwords log in (and are hashed anew with argon2id at the first login).
//!
//! [`plan`] reads and checks the whole dump and writes nothing (it is all a
//! `--dry-run` does); [`import`] writes the plan's events and sealed hashes in
//! one transaction of [`EventLog::import`](crate::store::EventLog::import).

mod config;
mod documents;
pub mod dump;
mod rows;

use std::collections::{BTreeMap, HashSet};

use crate::app::ledger::LedgerOptions;
use crate::clock::SharedClock;
use crate::domain::{CustomRoleId, ServerSettings, UserName};
use crate::store::{Store, StoreError};
use documents::{CustomRoleDoc, UserDoc};
pub use dump::{Dump, DumpError};
use rows::Rows;

/// Collections auth2 keeps that do not come over, and why.
const LEFT_BEHIND: [(&str, &str); 4] = [
    ("tempdata", "in-flight logins and links (they expire within minutes)"),
    ("test_users", "test mode's users (test mode expires its data)"),
    ("test_tokens", "test mode's tokens"),
    ("test_cust_roles", "test mode's custom roles"),
];

/// Why a dump is not imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error("{0}")]
    Schema(String),
    #[error("{} document(s) do not fit (see the report); nothing was written. --skip-invalid imports the rest", .0.len())]
    Refused(Vec<Refused>),
    #[error("the log already holds events: auth2 is imported into an empty log only; nothing was written")]
    NotEmpty,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A document that does not fit, by collection and `_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub collection: &'static str,
    pub id: String,
    pub why: String,
}

/// What an import brings over (or, for a dry run, would), and what it leaves.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub users: usize,
    pub local_users: usize,
    pub disabled_users: usize,
    pub identities: usize,
    pub passwords: usize,
    pub tokens: usize,
    pub custom_roles: usize,
    pub providers: usize,
    /// Tokens not brought over: expired ones, and those of disabled users.
    pub expired_tokens: usize,
    pub disabled_users_tokens: usize,
    /// Documents refused (skipped with `--skip-invalid`).
    pub refused: Vec<Refused>,
    /// What was changed on the way in, by user.
    pub notes: Vec<(String, String)>,
    /// Collections of the dump that do not come over, with why.
    pub left_behind: Vec<(String, String)>,
    /// The events written (or to be written).
    pub events: i64,
}

/// A whole dump, read and checked: what [`import`] writes.
pub struct Plan {
    settings: ServerSettings,
    roles: Vec<CustomRoleDoc>,
    users: Vec<UserDoc>,
    /// For each document of `tokens.bson`, in order: whether it comes over.
    tokens: Vec<bool>,
    dump: Dump,
    source: String,
    pub report: Report,
}

/// Reads and checks every document of `dump` as of `now` (tokens expired by
/// then are left out). A document that does not fit refuses the whole dump
/// unless `skip_invalid`, which leaves it out and reports it.
pub fn plan(dump: &Dump, now: i64, skip_invalid: bool) -> Result<Plan, ImportError> {
    let source = format!("auth2 dump {}", dump.dir().display());
    config::check_schema(&dump.all("config")?)?;
    let mut report = Report::default();
    let refuse = |collection: &'static str, id: String, why: String| Refused { collection, id, why };
    let mut refused = Vec::new();

    let (settings, bad_settings) =
        config::settings(&dump.all("config_app")?, &dump.all("config_prov")?, &dump.all("config_ext")?);
    refused.extend(bad_settings.into_iter().map(|(collection, id, why)| refuse(collection, id, why)));
    report.providers = settings.providers.len();

    let mut roles = Vec::new();
    let mut role_ids = HashSet::new();
    for document in dump.documents("cust_roles")? {
        let document = document?;
        match documents::custom_role(&document) {
            Ok(role) if !role_ids.insert(role.id.clone()) => {
                refused.push(refuse("cust_roles", role.object_id, format!("a second role {}", role.id)))
            }
            Ok(role) => roles.push(role),
            Err(why) => refused.push(refuse("cust_roles", documents::document_id(&document, "id"), why)),
        }
    }
    let by_object_id: BTreeMap<String, CustomRoleId> =
        roles.iter().map(|r| (r.object_id.clone(), r.id.clone())).collect();

    let mut users = Vec::new();
    let mut names = HashSet::new();
    let mut anon_ids = HashSet::new();
    let mut identities = HashSet::new();
    for document in dump.documents("users")? {
        let document = document?;
        let id = documents::document_id(&document, "user");
        let user = match documents::user(&document, &by_object_id, &source) {
            Ok(user) => user,
            Err(why) => {
                refused.push(refuse("users", id, why));
                continue;
            }
        };
        let account = &user.account;
        let clash = if names.contains(&account.user) {
            Some(format!("a second account named {}", account.user))
        } else if anon_ids.contains(&account.anon_id) {
            Some(format!("anonymous id {} is another account's too", account.anon_id))
        } else {
            account
                .identities
                .iter()
                .find(|i| identities.contains(&i.id))
                .map(|i| format!("identity {} is another account's too", i.id))
        };
        if let Some(why) = clash {
            refused.push(refuse("users", id, why));
            continue;
        }
        names.insert(account.user.clone());
        anon_ids.insert(account.anon_id);
        identities.extend(account.identities.iter().map(|i| i.id.clone()));
        report.notes.extend(user.notes.iter().map(|n| (account.user.to_string(), n.clone())));
        users.push(user);
    }
    let disabled: HashSet<&UserName> = users.iter().filter(|u| u.account.disabled()).map(|u| &u.account.user).collect();

    // Which documents of tokens.bson come over: read again when written, so a
    // million tokens are never all in memory.
    let mut tokens = Vec::new();
    let mut token_ids = HashSet::new();
    let mut hashes = HashSet::new();
    for document in dump.documents("tokens")? {
        let document = document?;
        let id = documents::document_id(&document, "id");
        let (token_id, grant) = match documents::token(&document) {
            Ok(token) => token,
            Err(why) => {
                refused.push(refuse("tokens", id, why));
                tokens.push(false);
                continue;
            }
        };
        tokens.push(false);
        if grant.expires <= now {
            report.expired_tokens += 1;
        } else if !names.contains(&grant.user) {
            refused.push(refuse("tokens", id, format!("its user {} is not in the dump", grant.user)));
        } else if disabled.contains(&grant.user) {
            // auth2 deletes a user's tokens when it disables them: such a token was never valid since.
            report.disabled_users_tokens += 1;
        } else if !token_ids.insert(token_id) || !hashes.insert(grant.token_hash.clone()) {
            refused.push(refuse("tokens", id, "a second token with this id or value".into()));
        } else if let Some(kept) = tokens.last_mut() {
            *kept = true;
        }
    }
    drop((disabled, token_ids, hashes));

    for (collection, why) in LEFT_BEHIND {
        if dump.has(collection) {
            report.left_behind.push((collection.to_owned(), why.to_owned()));
        }
    }
    if !refused.is_empty() && !skip_invalid {
        return Err(ImportError::Refused(refused));
    }
    report.refused = refused;
    report.users = users.len();
    report.local_users = users.iter().filter(|u| u.account.local).count();
    report.disabled_users = users.iter().filter(|u| u.account.disabled()).count();
    report.identities = users.iter().map(|u| u.account.identities.len()).sum();
    report.passwords = users.iter().filter(|u| u.password.is_some()).count();
    report.tokens = tokens.iter().filter(|kept| **kept).count();
    report.custom_roles = roles.len();
    // The settings, each role, each claim and account, each token.
    report.events = (1 + roles.len() + report.identities + users.len() + report.tokens) as i64;
    Ok(Plan { settings, roles, users, tokens, dump: dump.clone(), source, report })
}

/// Writes `plan` into `store`, whose log must be empty, in one transaction;
/// `progress` hears how many rows have been made.
pub async fn import(
    store: &Store,
    plan: Plan,
    now: i64,
    progress: impl FnMut(u64) + Send,
) -> Result<Report, ImportError> {
    if store.log.head().await? > 0 || !store.credentials.all().await?.is_empty() {
        return Err(ImportError::NotEmpty);
    }
    let mut report = plan.report.clone();
    let mut rows = Rows::new(plan, &store.credentials, now, progress);
    match store.log.import(&mut rows).await {
        Ok(_) => {
            report.events = rows.events();
            Ok(report)
        }
        Err(StoreError::NotEmpty { .. }) => Err(ImportError::NotEmpty),
        Err(error) => Err(error.into()),
    }
}

/// Opens the store `options` name and imports `plan` into it (see [`import`]).
pub async fn import_into(
    options: &LedgerOptions,
    plan: Plan,
    clock: SharedClock,
    progress: impl FnMut(u64) + Send,
) -> Result<Report, ImportError> {
    let store = Store::open(&options.store_url, options.store.clone(), clock.clone()).await?;
    let imported = import(&store, plan, clock.now_ms(), progress).await;
    store.log.close().await;
    imported
}

/// The report as lines for people.
pub fn describe(report: &Report, dry_run: bool) -> String {
    let verb = if dry_run { "would import" } else { "imported" };
    let mut out = format!(
        "{verb}: {} users ({} local, {} disabled; {} with passwords), {} identities, {} tokens, {} custom roles, \
         settings with {} providers — {} events\n",
        report.users,
        report.local_users,
        report.disabled_users,
        report.passwords,
        report.identities,
        report.tokens,
        report.custom_roles,
        report.providers,
        report.events
    );
    if report.expired_tokens + report.disabled_users_tokens > 0 {
        out.push_str(&format!(
            "left out: {} expired tokens, {} tokens of disabled users (auth2 deletes those at a disable)\n",
            report.expired_tokens, report.disabled_users_tokens
        ));
    }
    for (collection, why) in &report.left_behind {
        out.push_str(&format!("left behind: {collection}: {why}\n"));
    }
    for (user, note) in &report.notes {
        out.push_str(&format!("note: {user}: {note}\n"));
    }
    for r in &report.refused {
        out.push_str(&format!("skipped: {} {}: {}\n", r.collection, r.id, r.why));
    }
    out
}

/// The refused documents as lines.
pub fn describe_refused(refused: &[Refused]) -> String {
    refused.iter().map(|r| format!("refused: {} {}: {}\n", r.collection, r.id, r.why)).collect()
}
