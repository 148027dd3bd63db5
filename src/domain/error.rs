//! The error types of the auth2 contract (appcode + name), shared by every
//! layer. HTTP statuses are decided in `api`; here an error is only what went
//! wrong and, optionally, a detail for the message.

use std::fmt;

/// One of the contract's application error types (§3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorType {
    AuthenticationFailed,
    NoTokenProvided,
    InvalidToken,
    IdentityRetrievalFailed,
    IdentityProviderError,
    PasswordMismatch,
    Unauthorized,
    DisabledUser,
    MissingParameter,
    IllegalParameter,
    IllegalUserName,
    IllegalEmailAddress,
    IllegalPassword,
    UserAlreadyExists,
    IdentityAlreadyLinked,
    NoSuchUser,
    NoSuchLocalUser,
    NoSuchToken,
    NoSuchIdentityProvider,
    NoSuchIdentity,
    NoSuchRole,
    NoSuchEnvironment,
    /// Not upstream's: a host id no host is bound to (the SSH side).
    NoSuchHost,
    LinkFailed,
    UnlinkFailed,
    UnsupportedOperation,
}

impl ErrorType {
    pub fn appcode(self) -> u32 {
        match self {
            Self::AuthenticationFailed => 10000,
            Self::NoTokenProvided => 10010,
            Self::InvalidToken => 10020,
            Self::IdentityRetrievalFailed => 10030,
            Self::IdentityProviderError => 10040,
            Self::PasswordMismatch => 10050,
            Self::Unauthorized => 20000,
            Self::DisabledUser => 20010,
            Self::MissingParameter => 30000,
            Self::IllegalParameter => 30001,
            Self::IllegalUserName => 30010,
            Self::IllegalEmailAddress => 30020,
            Self::IllegalPassword => 30030,
            Self::UserAlreadyExists => 40000,
            Self::IdentityAlreadyLinked => 40010,
            Self::NoSuchUser => 50000,
            Self::NoSuchLocalUser => 50001,
            Self::NoSuchToken => 50010,
            Self::NoSuchIdentityProvider => 50020,
            Self::NoSuchIdentity => 50030,
            Self::NoSuchRole => 50040,
            // Upstream shares the code with "No such role".
            Self::NoSuchEnvironment => 50040,
            Self::NoSuchHost => 50050,
            Self::LinkFailed => 60000,
            Self::UnlinkFailed => 60010,
            Self::UnsupportedOperation => 70000,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::AuthenticationFailed => "Authentication failed",
            Self::NoTokenProvided => "No authentication token",
            Self::InvalidToken => "Invalid token",
            Self::IdentityRetrievalFailed => "Identity retrieval failed",
            Self::IdentityProviderError => "Identity provider error",
            Self::PasswordMismatch => "Password / username mismatch",
            Self::Unauthorized => "Unauthorized",
            Self::DisabledUser => "Account disabled",
            Self::MissingParameter => "Missing input parameter",
            Self::IllegalParameter => "Illegal input parameter",
            Self::IllegalUserName => "Illegal user name",
            Self::IllegalEmailAddress => "Illegal email address",
            Self::IllegalPassword => "Illegal password",
            Self::UserAlreadyExists => "User already exists",
            Self::IdentityAlreadyLinked => "Identity already linked",
            Self::NoSuchUser => "No such user",
            Self::NoSuchLocalUser => "No such local user",
            Self::NoSuchToken => "No such token",
            Self::NoSuchIdentityProvider => "No such identity provider",
            Self::NoSuchIdentity => "No such identity",
            Self::NoSuchRole => "No such role",
            Self::NoSuchEnvironment => "No such environment",
            Self::NoSuchHost => "No such host",
            Self::LinkFailed => "Account linkage failed",
            Self::UnlinkFailed => "Account unlink failed",
            Self::UnsupportedOperation => "Unsupported operation",
        }
    }
}

/// An application error: its type and an optional detail.
/// Displays as the contract's message: `"<appcode> <name>"` or `"<appcode> <name>: <detail>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub kind: ErrorType,
    pub detail: Option<String>,
}

impl AuthError {
    pub fn new(kind: ErrorType, detail: impl Into<String>) -> Self {
        Self { kind, detail: Some(detail.into()) }
    }

    pub fn bare(kind: ErrorType) -> Self {
        Self { kind, detail: None }
    }

    pub fn missing(what: &str) -> Self {
        Self::new(ErrorType::MissingParameter, what)
    }

    pub fn illegal(detail: impl Into<String>) -> Self {
        Self::new(ErrorType::IllegalParameter, detail)
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Unauthorized, detail)
    }

    pub fn no_such_user(name: &str) -> Self {
        Self::new(ErrorType::NoSuchUser, name)
    }

    pub fn disabled(name: &str) -> Self {
        Self::new(ErrorType::DisabledUser, name)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.appcode(), self.kind.name())?;
        // As upstream: a blank detail is no detail.
        if let Some(detail) = self.detail.as_deref().filter(|d| !super::text::java_trim(d).is_empty()) {
            write!(f, ": {detail}")?;
        }
        Ok(())
    }
}

impl std::error::Error for AuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_is_code_name_and_detail() {
        assert_eq!(AuthError::missing("user name").to_string(), "30000 Missing input parameter: user name");
        assert_eq!(AuthError::bare(ErrorType::InvalidToken).to_string(), "10020 Invalid token");
    }
}
