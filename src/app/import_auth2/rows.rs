//! The rows of an import, made one source document at a time as the store
//! writes them, so that a dump of a million tokens is never a million rows
//! in memory: the settings, each custom role, each account (its sealed hash,
//! its identities' claims, the account), then each token.

use std::collections::VecDeque;

use uuid::Uuid;

use super::Plan;
use super::documents::{self, CustomRoleDoc, UserDoc};
use super::dump::{Documents, Dump};
use crate::app::passwords::SECRET_KIND;
use crate::domain::token::TokenIssued;
use crate::domain::{
    CustomRole, CustomRoleEvent, IdentityClaim, IdentityClaimEvent, ServerConfig, ServerConfigEvent, ServerSettings,
    Token, TokenEvent, User, UserEvent,
};
use crate::store::new_log::NewLog;
use crate::store::{Credentials, EventMetadata, ImportRow};

/// How often the progress hears of the rows made.
const PROGRESS_EVERY: i64 = 1_000;

pub struct Rows<'a> {
    log: NewLog,
    metadata: EventMetadata,
    credentials: &'a Credentials,
    now: i64,
    pending: VecDeque<ImportRow>,
    settings: Option<ServerSettings>,
    roles: std::vec::IntoIter<CustomRoleDoc>,
    users: std::vec::IntoIter<UserDoc>,
    tokens: Option<std::iter::Zip<Documents, std::vec::IntoIter<bool>>>,
    dump: Dump,
    kept: Vec<bool>,
    progress: Box<dyn FnMut(u64) + Send + 'a>,
}

impl<'a> Rows<'a> {
    /// The rows of `plan`, recorded at `now`, hashes sealed by `credentials`.
    pub fn new(plan: Plan, credentials: &'a Credentials, now: i64, progress: impl FnMut(u64) + Send + 'a) -> Self {
        let metadata = EventMetadata {
            reason: Some(format!("imported from KBase auth2 ({})", plan.source)),
            ..EventMetadata::actor("system")
        };
        Self {
            log: NewLog::new(now),
            metadata,
            credentials,
            now,
            pending: VecDeque::new(),
            settings: Some(plan.settings),
            roles: plan.roles.into_iter(),
            users: plan.users.into_iter(),
            tokens: None,
            dump: plan.dump,
            kept: plan.tokens,
            progress: Box::new(progress),
        }
    }

    /// How many events have been made.
    pub fn events(&self) -> i64 {
        self.log.len()
    }

    /// The next token that comes over, read again from the dump as the plan chose.
    fn next_token(&mut self) -> Result<Option<(Uuid, TokenIssued)>, String> {
        if self.tokens.is_none() {
            let documents = self.dump.documents("tokens").map_err(|e| e.to_string())?;
            self.tokens = Some(documents.zip(std::mem::take(&mut self.kept)));
        }
        let Some(tokens) = self.tokens.as_mut() else {
            return Ok(None);
        };
        for (document, kept) in tokens.by_ref() {
            let document = document.map_err(|e| e.to_string())?;
            if kept {
                return documents::token(&document)
                    .map(Some)
                    .map_err(|why| format!("tokens.bson changed while it was imported: {why}"));
            }
        }
        Ok(None)
    }

    /// The rows of the next source document into `pending`; false when all are made.
    fn refill(&mut self) -> Result<bool, String> {
        let (log, metadata, now) = (&mut self.log, &self.metadata, self.now);
        let event = |e: serde_json::Error| e.to_string();
        if let Some(settings) = self.settings.take() {
            let initialized = ServerConfigEvent::ServerConfigInitialized { settings };
            self.pending
                .push_back(ImportRow::Event(log.row::<ServerConfig>(&(), &initialized, metadata).map_err(event)?));
        } else if let Some(role) = self.roles.next() {
            let imported =
                CustomRoleEvent::CustomRoleImported { id: role.id.clone(), description: role.description, at: now };
            self.pending
                .push_back(ImportRow::Event(log.row::<CustomRole>(&role.id, &imported, metadata).map_err(event)?));
        } else if let Some(UserDoc { mut account, password, .. }) = self.users.next() {
            if let Some(hash) = password {
                let id = Uuid::new_v4();
                let created = account.password_set.unwrap_or(account.created);
                let row = self.credentials.sealed_row(id, SECRET_KIND, &hash, created).map_err(|e| e.to_string())?;
                self.pending.push_back(ImportRow::Secret(row));
                account.credential_id = Some(id);
            }
            for identity in &account.identities {
                let claim = IdentityClaimEvent::IdentityClaimed { user: account.user.clone(), at: now };
                let row = log.row::<IdentityClaim>(&identity.id, &claim, metadata).map_err(event)?;
                self.pending.push_back(ImportRow::Event(row));
            }
            let name = account.user.clone();
            let imported = UserEvent::UserImported(Box::new(account));
            self.pending.push_back(ImportRow::Event(log.row::<User>(&name, &imported, metadata).map_err(event)?));
        } else if let Some((id, grant)) = self.next_token()? {
            let issued = TokenEvent::TokenIssued(grant);
            self.pending
                .push_back(ImportRow::Event(self.log.row::<Token>(&id, &issued, &self.metadata).map_err(event)?));
        } else {
            (self.progress)(self.log.len() as u64);
            return Ok(false);
        }
        if self.log.len() % PROGRESS_EVERY == 0 {
            (self.progress)(self.log.len() as u64);
        }
        Ok(true)
    }
}

impl Iterator for Rows<'_> {
    type Item = Result<ImportRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.pending.pop_front() {
                return Some(Ok(row));
            }
            match self.refill() {
                Ok(true) => {}
                Ok(false) => return None,
                Err(error) => return Some(Err(error)),
            }
        }
    }
}
