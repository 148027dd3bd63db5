//! This server's forget journal ([`crate::store::forget_journal`]): what it
//! keeps, and keeping up with the forgets other servers write.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::app::error::AppError;
use crate::app::ledger::Ledger;
use crate::domain::forgotten::{Forget, ForgottenEvent};
use crate::store::forget_journal::{self, JournalEntry};

/// The journal file and what it holds.
pub struct Journal {
    path: Option<PathBuf>,
    entries: Mutex<Vec<JournalEntry>>,
}

impl Journal {
    /// Reads the journal at `path` (`None`: no journal is kept — a server
    /// without a secrets key). An unreadable journal refuses the start.
    pub fn open(path: Option<PathBuf>) -> Result<Self, AppError> {
        let entries = match &path {
            Some(path) => forget_journal::read(path).map_err(|e| AppError::internal(e.to_string()))?,
            None => Vec::new(),
        };
        Ok(Self { path, entries: Mutex::new(entries) })
    }

    /// The journal file, if one is kept.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Every forget the journal keeps, oldest first.
    pub fn entries(&self) -> Vec<JournalEntry> {
        self.entries.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Keeps `new` (each replacing the entry of its pseudonym) and writes the file.
    fn keep_all(&self, new: Vec<JournalEntry>) -> Result<(), AppError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        let mut entries = self.entries.lock().map_err(|_| AppError::internal("the forget journal's lock"))?;
        let mut changed = entries.clone();
        for entry in new {
            match changed.iter_mut().find(|e| e.pseudonym == entry.pseudonym) {
                Some(kept) if *kept == entry => {}
                Some(kept) => *kept = entry,
                None => changed.push(entry),
            }
        }
        if changed != *entries {
            forget_journal::write(path, &changed).map_err(|e| AppError::internal(e.to_string()))?;
            *entries = changed;
        }
        Ok(())
    }

    /// Adds every forget the log holds that the journal does not (this
    /// server's, those other servers wrote, those written before the journal
    /// was kept; a forget applied again replaces its pseudonym's entry);
    /// returns how many it added.
    pub async fn keep_up(&self, ledger: &Ledger) -> Result<usize, AppError> {
        if self.path.is_none() {
            return Ok(0);
        }
        let known: BTreeSet<i64> = self.entries().iter().map(|e| e.position).collect();
        let positions: BTreeSet<i64> = ledger.log.redactions().await?.iter().map(|r| r.forget_position).collect();
        let mut new = Vec::new();
        for position in positions.difference(&known) {
            let Some(row) = ledger.log.read_after(position - 1, 1).await?.into_iter().next() else {
                continue;
            };
            let Ok(ForgottenEvent::PersonForgotten(forget)) = serde_json::from_str::<ForgottenEvent>(&row.payload)
            else {
                continue;
            };
            let Forget { pseudonym, first_position, by, at, reason, .. } = forget;
            let first_chain = ledger.log.chain_at(first_position).await?.unwrap_or_default();
            new.push(JournalEntry {
                pseudonym,
                position: *position,
                first_position,
                first_chain,
                by: by.as_str().to_owned(),
                reason,
                at,
            });
        }
        let added = new.len();
        self.keep_all(new)?;
        Ok(added)
    }
}
