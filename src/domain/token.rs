//! The `Token` aggregate: one per token id. A token is issued once and may be
//! revoked once; the token's value never enters the log, only its SHA-256.
//! Whether a token is *valid* also depends on facts outside this aggregate
//! (expiry, user and server-wide revocations, disabled users); the token index
//! projection combines them at query time.

use std::collections::BTreeMap;

use cqrs_es::Aggregate;
use cqrs_es::event_sink::EventSink;
use serde::{Deserialize, Serialize};

use super::error::{AuthError, ErrorType};
use super::names::{TokenName, UserName};

/// The kind of a token (contract §5.2). Serialized by id; shown by description.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TokenKind {
    Login,
    Agent,
    Dev,
    Serv,
}

impl TokenKind {
    pub fn description(self) -> &'static str {
        match self {
            Self::Login => "Login",
            Self::Agent => "Agent",
            Self::Dev => "Developer",
            Self::Serv => "Service",
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        match id {
            "Login" => Some(Self::Login),
            "Agent" => Some(Self::Agent),
            "Dev" => Some(Self::Dev),
            "Serv" => Some(Self::Serv),
            _ => None,
        }
    }
}

/// Whether a second factor was used for the login a token came from
/// (auth2's `mfa`): `Used` (a verified one-time code, or a provider that says
/// so), `NotUsed` (a password alone), `Unknown` (no login behind it: Agent,
/// Developer and Service tokens; tokens issued before this was recorded).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum Mfa {
    Used,
    NotUsed,
    #[default]
    Unknown,
}

impl Mfa {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Used => "Used",
            Self::NotUsed => "NotUsed",
            Self::Unknown => "Unknown",
        }
    }

    /// As a person reads it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Used => "used",
            Self::NotUsed => "not used",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "Used" => Some(Self::Used),
            "NotUsed" => Some(Self::NotUsed),
            "Unknown" => Some(Self::Unknown),
            _ => None,
        }
    }
}

/// Where a token was created from: the client's address and its user agent, parsed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub os: Option<String>,
    pub osver: Option<String>,
    pub agent: Option<String>,
    pub agentver: Option<String>,
    pub device: Option<String>,
}

impl ClientInfo {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A token grant: everything the log keeps about a token. `token_hash` is the
/// standard-base64 SHA-256 of the token's value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenIssued {
    pub token_hash: String,
    pub kind: TokenKind,
    pub user: UserName,
    pub name: Option<TokenName>,
    /// Epoch milliseconds.
    pub created: i64,
    /// Epoch milliseconds.
    pub expires: i64,
    pub custom: BTreeMap<String, String>,
    pub client: ClientInfo,
    /// Whether the login behind it used a second factor (since v2.0).
    pub mfa: Mfa,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenRevoked {
    /// The revoked token's hash, as issued (so readers need no id → hash map).
    pub token_hash: String,
    /// Who revoked it: the owner, an administrator, or the owner logging out.
    pub revoked_by: UserName,
    pub reason: RevocationReason,
    /// Epoch milliseconds.
    pub at: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevocationReason {
    /// The owner revoked it.
    Revoked,
    /// The owner logged out with it.
    Logout,
    /// An administrator revoked it.
    Administrator,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, strum::IntoStaticStr)]
#[cfg_attr(test, derive(strum::VariantNames))]
pub enum TokenEvent {
    TokenIssued(TokenIssued),
    TokenRevoked(TokenRevoked),
}

domain_event!(TokenEvent, |event| match event {
    Self::TokenIssued(_) => TOKEN_ISSUED_VERSION,
    Self::TokenRevoked(_) => "1.0",
});

/// `TokenIssued` 2.0 added `mfa`; [`upcast_token_issued_v1`] reads 1.0 as `Unknown`.
pub const TOKEN_ISSUED_VERSION: &str = "2.0";

/// `TokenIssued` 1.0 → 2.0: a grant recorded before `mfa` existed says nothing
/// about it.
pub fn upcast_token_issued_v1(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(grant) = payload.get_mut("TokenIssued").and_then(serde_json::Value::as_object_mut) {
        grant.entry("mfa").or_insert_with(|| serde_json::Value::from(Mfa::Unknown.as_str()));
    }
    payload
}

#[derive(Debug, Clone, PartialEq)]
pub enum TokenCommand {
    Issue(Box<TokenIssued>),
    Revoke { by: UserName, reason: RevocationReason, at: i64 },
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Token {
    /// The hash, once issued.
    hash: Option<String>,
    revoked: bool,
}

impl Aggregate for Token {
    const TYPE: &'static str = "Token";
    type Command = TokenCommand;
    type Event = TokenEvent;
    type Error = AuthError;
    type Services = ();

    async fn handle(&mut self, command: TokenCommand, _: &(), sink: &EventSink<Self>) -> Result<(), AuthError> {
        match command {
            TokenCommand::Issue(grant) => {
                if self.hash.is_some() {
                    return Err(AuthError::illegal("Token id already issued"));
                }
                sink.write(TokenEvent::TokenIssued(*grant), self).await;
            }
            TokenCommand::Revoke { by, reason, at } => {
                let Some(token_hash) = self.hash.clone().filter(|_| !self.revoked) else {
                    return Err(AuthError::bare(ErrorType::NoSuchToken));
                };
                sink.write(TokenEvent::TokenRevoked(TokenRevoked { token_hash, revoked_by: by, reason, at }), self)
                    .await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: TokenEvent) {
        match event {
            TokenEvent::TokenIssued(grant) => self.hash = Some(grant.token_hash),
            TokenEvent::TokenRevoked(_) => self.revoked = true,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use cqrs_es::DomainEvent;
    use cqrs_es::test::TestFramework;

    pub(crate) fn grant() -> TokenIssued {
        TokenIssued {
            token_hash: "n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg=".into(),
            kind: TokenKind::Agent,
            user: UserName::from_log("alice".into()),
            name: TokenName::parse(Some("my script")).ok(),
            created: 1_700_000_000_000,
            expires: 1_700_604_800_000,
            custom: BTreeMap::from([("client".into(), "narrative".into())]),
            client: ClientInfo { ip: Some("192.0.2.7".into()), ..ClientInfo::default() },
            mfa: Mfa::Unknown,
        }
    }

    #[test]
    fn a_grant_recorded_before_mfa_reads_as_unknown() {
        let mut v1 = serde_json::to_value(TokenEvent::TokenIssued(grant())).unwrap_or_default();
        if let Some(grant) = v1.get_mut("TokenIssued").and_then(serde_json::Value::as_object_mut) {
            grant.remove("mfa");
        }
        let upcast = upcast_token_issued_v1(v1);
        let event: TokenEvent = serde_json::from_value(upcast).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(event, TokenEvent::TokenIssued(grant()));
        // Through the log's decoder, as every reader decodes.
        let mut v1 = serde_json::to_value(TokenEvent::TokenIssued(grant())).unwrap_or_default();
        if let Some(grant) = v1.get_mut("TokenIssued").and_then(serde_json::Value::as_object_mut) {
            grant.remove("mfa");
        }
        use crate::domain::{LedgerEvent, LogEvent};
        let decoded = LedgerEvent::decode("Token", "TokenIssued", "1.0", &v1.to_string(), &crate::domain::upcasters());
        assert_eq!(decoded.ok(), Some(crate::domain::LedgerEvent::Token(TokenEvent::TokenIssued(grant()))));
        assert_eq!(TokenEvent::TokenIssued(grant()).event_version(), "2.0");
    }

    fn revoke() -> TokenCommand {
        TokenCommand::Revoke { by: UserName::from_log("alice".into()), reason: RevocationReason::Revoked, at: 1 }
    }

    #[tokio::test]
    async fn issuing_a_new_token_records_its_grant() {
        TestFramework::<Token>::with(())
            .given_no_previous_events()
            .when_async(TokenCommand::Issue(Box::new(grant())))
            .await
            .then_expect_events(vec![TokenEvent::TokenIssued(grant())]);
    }

    #[tokio::test]
    async fn a_token_id_is_issued_only_once() {
        TestFramework::<Token>::with(())
            .given(vec![TokenEvent::TokenIssued(grant())])
            .when_async(TokenCommand::Issue(Box::new(grant())))
            .await
            .then_expect_error_message("30001 Illegal input parameter: Token id already issued");
    }

    #[tokio::test]
    async fn revoking_an_issued_token_records_who_and_why() {
        TestFramework::<Token>::with(())
            .given(vec![TokenEvent::TokenIssued(grant())])
            .when_async(revoke())
            .await
            .then_expect_events(vec![TokenEvent::TokenRevoked(TokenRevoked {
                token_hash: grant().token_hash,
                revoked_by: UserName::from_log("alice".into()),
                reason: RevocationReason::Revoked,
                at: 1,
            })]);
    }

    #[tokio::test]
    async fn a_revoked_token_cannot_be_revoked_again() {
        let revoked = TokenRevoked {
            token_hash: grant().token_hash,
            revoked_by: UserName::root(),
            reason: RevocationReason::Administrator,
            at: 1,
        };
        TestFramework::<Token>::with(())
            .given(vec![TokenEvent::TokenIssued(grant()), TokenEvent::TokenRevoked(revoked)])
            .when_async(revoke())
            .await
            .then_expect_error(AuthError::bare(ErrorType::NoSuchToken));
    }

    #[tokio::test]
    async fn an_unknown_token_cannot_be_revoked() {
        TestFramework::<Token>::with(())
            .given_no_previous_events()
            .when_async(revoke())
            .await
            .then_expect_error(AuthError::bare(ErrorType::NoSuchToken));
    }
}
