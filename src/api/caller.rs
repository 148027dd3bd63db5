//! Who is calling: the token a request carries, its user, the permission
//! the call needs, and the same caller acting with its events' metadata
//! ([`Caller::acting`]). Every handler that needs a caller asks here.

use super::AppState;
use super::error::ApiError;
use super::permissions::{self, Action};
use super::request::{RequestContext, any_token};
use crate::app::acting::Acting;
use crate::app::admin;
use crate::domain::{Actor, AuthError, ErrorType, TokenKind, UserName};
use crate::projections::{TokenView, UserRecord, hash_token};

/// The caller behind a token: the token and its (enabled) user.
pub struct Caller {
    pub token: TokenView,
    pub user: UserRecord,
}

impl Caller {
    pub fn name(&self) -> &UserName {
        &self.user.name
    }

    /// This caller acting through the request `context` (its events' metadata).
    pub fn acting(&self, context: &RequestContext) -> Acting {
        acting(&self.user, context)
    }
}

/// `user` acting through the request `context` (its events' metadata).
pub fn acting(user: &UserRecord, context: &RequestContext) -> Acting {
    let actor = Actor { name: user.name.clone(), roles: user.roles.clone() };
    Acting { actor, metadata: context.metadata(&user.name) }
}

impl AppState {
    /// The valid token with this value (401 10020 otherwise).
    pub fn token_view(&self, token: &str) -> Result<TokenView, ApiError> {
        self.ledger.token(&hash_token(token)).ok_or_else(|| AuthError::bare(ErrorType::InvalidToken).into())
    }

    /// The token's enabled user (403 20010 when disabled).
    pub fn user_of(&self, token: &TokenView) -> Result<UserRecord, ApiError> {
        let user = self.ledger.user(&token.user).ok_or_else(|| AuthError::bare(ErrorType::InvalidToken))?;
        if user.is_disabled() {
            return Err(AuthError::disabled(user.name.as_str()).into());
        }
        Ok(user)
    }

    /// Token, then token kind (Login only), then enabled user, then the permission.
    pub fn login_caller(&self, token: &str, action: Option<Action>) -> Result<Caller, ApiError> {
        let token = self.token_view(token)?;
        require_login(&token)?;
        let user = self.user_of(&token)?;
        if let Some(action) = action {
            permissions::check(action, &user.roles)?;
        }
        Ok(Caller { token, user })
    }
}

/// Most privileged operations take only Login tokens (403 otherwise).
pub fn require_login(token: &TokenView) -> Result<(), ApiError> {
    if token.kind != TokenKind::Login {
        return Err(AuthError::unauthorized(format!(
            "{} tokens are not allowed for this operation",
            token.kind.description()
        ))
        .into());
    }
    Ok(())
}

/// The calling administrator (a Login token from the header or the session
/// cookie), checked for `action`.
pub fn administrator(state: &AppState, context: &RequestContext, action: Action) -> Result<Caller, ApiError> {
    let token = any_token(&context.headers)?;
    state.login_caller(&token, Some(action))
}

/// The named user (404 `No such user: <name>` when absent).
pub fn target(state: &AppState, name: &UserName) -> Result<UserRecord, ApiError> {
    Ok(admin::user(&state.ledger, name)?)
}

/// A user name from the path (400 when illegal).
pub fn parse_user(raw: &str) -> Result<UserName, ApiError> {
    Ok(UserName::parse(Some(raw))?)
}
