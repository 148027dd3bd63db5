//! Tokens: minting a new token's value (the only place token values are
//! drawn) and issuing it through the log. The log keeps only the value's
//! SHA-256; the value itself is returned once, to be shown to its owner.

use std::collections::BTreeMap;

use data_encoding::BASE32;
use rand::RngCore;
use uuid::Uuid;

use super::AppError;
use super::ledger::Ledger;
use crate::domain::token::{ClientInfo, Mfa, RevocationReason, TokenIssued};
use crate::domain::{ErrorType, Token, TokenCommand, TokenKind, TokenName, User, UserCommand, UserName};
use crate::projections::token_index::encode_hash;
use crate::projections::{TokenView, hash_token};
use crate::store::EventMetadata;

/// What a new token is to be.
pub struct NewToken {
    pub user: UserName,
    pub kind: TokenKind,
    pub name: Option<TokenName>,
    pub custom: BTreeMap<String, String>,
    pub client: ClientInfo,
    /// Whether the login behind it used a second factor (`Unknown` for tokens
    /// made from another token: Agent, Developer, Service).
    pub mfa: Mfa,
}

/// A new token: its value (shown once, never stored), the grant the log
/// records (only the value's hash) and the token as answers show it.
pub struct Minted {
    pub value: String,
    pub issued: TokenIssued,
    pub view: TokenView,
}

/// A new random secret value: 20 random bytes in base32 (32 characters of
/// `A-Z2-7`) — token values, and the temporary tokens of provider logins under way.
pub fn random_value() -> String {
    let mut secret = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut secret);
    BASE32.encode(&secret)
}

/// Mints a token for `grant`: 20 random bytes in base32, a fresh id, valid for `lifetime` from `now`.
pub fn mint(grant: NewToken, now: i64, lifetime: i64) -> Minted {
    let value = random_value();
    let issued = TokenIssued {
        token_hash: encode_hash(&hash_token(&value)),
        kind: grant.kind,
        user: grant.user,
        name: grant.name,
        created: now,
        expires: now.saturating_add(lifetime),
        custom: grant.custom,
        client: grant.client,
        mfa: grant.mfa,
    };
    let view = TokenView {
        id: Uuid::new_v4(),
        user: issued.user.clone(),
        kind: issued.kind,
        mfa: issued.mfa,
        name: issued.name.as_ref().map(|n| n.to_string()),
        created: issued.created,
        expires: issued.expires,
        custom: issued.custom.clone(),
        client: issued.client.clone(),
    };
    Minted { value, issued, view }
}

/// Issues a new token for `grant` with the configured lifetime of its kind and
/// answers once it is introspectable: its value (shown once) and its view.
///
/// A token whose grant committed but whose answer cannot be given (the
/// projections did not reach it in time) is revoked in the same flow, so no
/// token exists that nobody was handed.
pub async fn issue(
    ledger: &Ledger,
    grant: NewToken,
    metadata: &EventMetadata,
) -> Result<(String, TokenView), AppError> {
    let lifetime = ledger.projections.read().config.token_lifetimes.of(grant.kind);
    let minted = mint(grant, ledger.now(), lifetime);
    let id = minted.view.id;
    match ledger.execute::<Token>(id, TokenCommand::Issue(Box::new(minted.issued)), metadata).await {
        Ok(_) => Ok((minted.value, minted.view)),
        Err(error @ AppError::Lagging(_)) => {
            withdraw(ledger, id, &minted.view.user, metadata).await;
            Err(error)
        }
        Err(error) => Err(error),
    }
}

/// Revokes token `id` for `reason`. A token revoked concurrently is the
/// outcome the caller asked for, not an error.
pub async fn revoke(
    ledger: &Ledger,
    id: Uuid,
    by: &UserName,
    reason: RevocationReason,
    metadata: &EventMetadata,
) -> Result<(), AppError> {
    let command = TokenCommand::Revoke { by: by.clone(), reason, at: ledger.now() };
    match ledger.execute::<Token>(id, command, metadata).await {
        Err(AppError::Rejected(e)) if e.kind == ErrorType::NoSuchToken => Ok(()),
        other => other.map(|_| ()),
    }
}

/// Revokes a token whose value was never handed out; a failure is reported.
pub(crate) async fn withdraw(ledger: &Ledger, id: Uuid, user: &UserName, metadata: &EventMetadata) {
    let command = TokenCommand::Revoke { by: user.clone(), reason: RevocationReason::Revoked, at: ledger.now() };
    match ledger.execute::<Token>(id, command, metadata).await {
        // Lagging: the revocation is in the log; the projections will fold it.
        Ok(_) | Err(AppError::Lagging(_)) => {}
        Err(error) => tracing::error!(%error, token = %id, "could not withdraw a token that was never handed out"),
    }
}

/// Revokes every token of `user`, at their own request.
pub async fn revoke_all_own(ledger: &Ledger, user: &UserName, metadata: &EventMetadata) -> Result<(), AppError> {
    let command = UserCommand::RevokeAllTokens { by: user.clone(), at: ledger.now() };
    ledger.execute::<User>(user, command, metadata).await?;
    Ok(())
}
