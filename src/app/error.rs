//! The one error of the application layer. It says whose fault a failure is:
//! the caller's (`Rejected`, a business rule or bad input — a 4xx), a busy
//! service (`Busy` — a 503 the caller may retry) or the server's own (its
//! store, its data, a dependency — a 500, logged where it is mapped).

use std::time::Duration;

use crate::domain::AuthError;
use crate::projections::runner::RunnerError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request was refused by a rule: the caller's to fix.
    #[error(transparent)]
    Rejected(#[from] AuthError),
    /// Concurrent changes to the same record (by other processes) outlasted
    /// the command's deadline. Nothing was written; retrying later succeeds.
    #[error("the {aggregate} record stayed busy with concurrent changes; try again shortly")]
    Busy { aggregate: &'static str, retry_after: Duration },
    /// The write committed, but the projections did not reach it in time.
    #[error("the projections did not reach position {0} in time")]
    Lagging(i64),
    /// The log or the credentials store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Folding the log failed (start-up).
    #[error(transparent)]
    Replay(#[from] RunnerError),
    /// The server's own data or a dependency failed: an unreadable stored
    /// secret, a key operation, a render. Never the caller's fault.
    #[error("{0}")]
    Internal(String),
}

impl AppError {
    /// A server-side fault, described for the log (never shown to callers unless `showstack` is on).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        Self::Internal(detail.to_string())
    }

    /// The business rule that refused the request, if that is what this is.
    pub fn rejection(&self) -> Option<&AuthError> {
        match self {
            Self::Rejected(error) => Some(error),
            _ => None,
        }
    }
}

/// The result of an application function.
pub type AppResult<T> = Result<T, AppError>;

impl From<ssh_key::Error> for AppError {
    fn from(error: ssh_key::Error) -> Self {
        Self::Internal(format!("SSH key operation failed: {error}"))
    }
}
