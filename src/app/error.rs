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
    /// A bounded amount of work (password checks) is taken and its queue is
    /// full, or the wait outlasted its deadline. Nothing was checked or written.
    #[error("too many {what} are waiting; try again shortly")]
    Overloaded { what: &'static str, retry_after: Duration },
    /// The log does not hold its witness's head (or the witness is missing):
    /// writes are refused until an operator acts. Nothing was written.
    #[error("writes are refused until an operator acts: {0}")]
    Halted(String),
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

    /// Whether the failed command certainly wrote nothing: refused by a rule,
    /// or given up while busy. `Lagging` means it committed; a failing store
    /// may or may not have. Compensations (forgetting a secret the command
    /// would have referred to) run only when this holds.
    pub fn wrote_nothing(&self) -> bool {
        matches!(self, Self::Rejected(_) | Self::Busy { .. } | Self::Overloaded { .. } | Self::Halted(_))
    }

    /// When a retry may succeed — the service was busy and wrote nothing: a
    /// record in conflict past the deadline, or no store connection free in time.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Busy { retry_after, .. } | Self::Overloaded { retry_after, .. } => Some(*retry_after),
            Self::Halted(_) => Some(Duration::from_secs(60)),
            Self::Store(StoreError::Database(sqlx::Error::PoolTimedOut)) => Some(Duration::from_secs(1)),
            _ => None,
        }
    }

    /// A failure after an earlier, single-use step of the same flow committed:
    /// never `Busy` (its `Retry-After` would promise a retry that cannot succeed).
    pub fn after_spending(self, spent: &str) -> Self {
        match self {
            Self::Busy { aggregate, .. } => {
                Self::Internal(format!("{spent} was spent, but the {aggregate} record stayed busy"))
            }
            Self::Overloaded { what, .. } => Self::Internal(format!("{spent} was spent, but too many {what} waited")),
            other => other,
        }
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
