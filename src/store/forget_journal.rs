//! The forget journal: a file outside the database (beside the secrets key
//! file) listing every forget a server saw, so that a log restored from a
//! backup taken before one cannot bring the person back silently (the server
//! applies the forget again at start; see `app::forgetting::reapply`).
//!
//! An entry names no one. It holds what the log held after the forget anyway:
//! the pseudonym, where the forget and the person's first event were, the
//! chain value at that first event (which the forget kept: it tells this log
//! from another), who forgot them and why.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One forget, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalEntry {
    pub pseudonym: String,
    /// Where the forget was written (the newest time it was, if applied again).
    pub position: i64,
    /// The position of the person's first `User` event.
    pub first_position: i64,
    /// The chain value at `first_position`, hex.
    pub first_chain: String,
    /// The administrator who forgot them.
    pub by: String,
    pub reason: String,
    /// When (epoch milliseconds).
    pub at: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct JournalFile {
    version: u32,
    forgets: Vec<JournalEntry>,
}

/// The journal's version this build writes and reads.
const VERSION: u32 = 1;

/// A journal that cannot be read: a server refuses to start on it rather
/// than miss a forget it lists.
#[derive(Debug, thiserror::Error)]
#[error("the forget journal {path}: {problem}")]
pub struct JournalError {
    pub path: String,
    pub problem: String,
}

/// The journal of the key file at `key_file`: `<key file>.forgets.json`.
pub fn journal_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".forgets.json");
    key_file.with_file_name(name)
}

/// Reads the journal at `path` (none yet: empty).
pub fn read(path: &Path) -> Result<Vec<JournalEntry>, JournalError> {
    let problem = |problem: String| JournalError { path: path.display().to_string(), problem };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(problem(e.to_string())),
    };
    let file: JournalFile = serde_json::from_str(&text).map_err(|e| problem(format!("not a forget journal: {e}")))?;
    if file.version != VERSION {
        return Err(problem(format!("version {} (this build reads {VERSION})", file.version)));
    }
    Ok(file.forgets)
}

/// Writes the journal at `path` atomically (a temporary file renamed over it).
pub fn write(path: &Path, forgets: &[JournalEntry]) -> Result<(), JournalError> {
    let problem = |e: std::io::Error| JournalError { path: path.display().to_string(), problem: e.to_string() };
    let file = JournalFile { version: VERSION, forgets: forgets.to_vec() };
    let text = serde_json::to_string_pretty(&file).map_err(|e| problem(std::io::Error::other(e)))?;
    let temporary = path.with_extension("json.tmp");
    std::fs::write(&temporary, text + "\n").map_err(problem)?;
    std::fs::File::open(&temporary).and_then(|f| f.sync_all()).map_err(problem)?;
    std::fs::rename(&temporary, path).map_err(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pseudonym: &str) -> JournalEntry {
        JournalEntry {
            pseudonym: pseudonym.into(),
            position: 40,
            first_position: 7,
            first_chain: "ab".repeat(32),
            by: "admin".into(),
            reason: "asked".into(),
            at: 1,
        }
    }

    #[test]
    fn a_journal_is_read_back_as_written_and_none_is_empty() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = journal_path(&dir.path().join("events.secrets.key"));
        assert_eq!(path, dir.path().join("events.secrets.key.forgets.json"));
        assert_eq!(read(&path).expect("no journal yet"), vec![]);
        let forgets = vec![entry("forgotten-1"), entry("forgotten-2")];
        write(&path, &forgets).expect("written");
        assert_eq!(read(&path).expect("read"), forgets);
    }

    #[test]
    fn an_unreadable_journal_is_an_error_not_an_empty_one() {
        let dir = tempfile::tempdir().expect("a directory");
        let path = dir.path().join("j.json");
        std::fs::write(&path, "{not json").expect("written");
        let error = read(&path).expect_err("refused");
        assert!(error.problem.starts_with("not a forget journal"), "{error}");
        std::fs::write(&path, r#"{"version": 9, "forgets": []}"#).expect("written");
        assert!(read(&path).expect_err("refused").problem.contains("version 9"));
    }
}
