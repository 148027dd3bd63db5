//! The JSON shapes of the contract (§5.3, §5.4, §9): tokens as the API and
//! the UI show them, users as themselves and as administrators see them.
//! Every documented member is present; absent values are `null`. Each shape
//! is a type the handlers return, and the OpenAPI document's schema is
//! derived from the same type (`ToSchema`).

use std::collections::{BTreeMap, BTreeSet};

use serde::{Serialize, Serializer};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::{Role, UserName};
use crate::projections::token_index::TokenRef;
use crate::projections::{TokenView, UserRecord};

/// `APIToken`: a token as introspection shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiToken {
    /// `Login`, `Agent`, `Developer` or `Service`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: Uuid,
    /// Epoch milliseconds.
    pub expires: i64,
    /// Epoch milliseconds.
    pub created: i64,
    pub name: Option<String>,
    pub user: String,
    /// The custom context given when the token was made.
    pub custom: BTreeMap<String, String>,
    /// `Used`, `NotUsed` or `Unknown`.
    pub mfa: &'static str,
    /// How long a client may cache this answer, in milliseconds.
    pub cachefor: i64,
}

impl ApiToken {
    pub fn of(token: &TokenView, cache_for: i64) -> Self {
        Self {
            kind: token.kind.description(),
            id: token.id,
            expires: token.expires,
            created: token.created,
            name: token.name.clone(),
            user: token.user.to_string(),
            custom: token.custom.clone(),
            mfa: token.mfa.as_str(),
            cachefor: cache_for,
        }
    }
}

/// [`ApiToken`] written straight from the index, with no intermediate copies:
/// the same members (a unit test holds the two to one shape).
pub fn api_token_bytes(token: TokenRef<'_>, cache_for: i64) -> Vec<u8> {
    struct Custom<'a>(&'a [(Box<str>, Box<str>)]);
    impl Serialize for Custom<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }
    #[derive(Serialize)]
    struct ApiTokenRef<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: Uuid,
        expires: i64,
        created: i64,
        name: Option<&'a str>,
        user: &'a str,
        custom: Custom<'a>,
        mfa: &'static str,
        cachefor: i64,
    }
    let json = ApiTokenRef {
        kind: token.kind.description(),
        id: token.id,
        expires: token.expires,
        created: token.created,
        name: token.name,
        user: token.user.as_str(),
        custom: Custom(token.custom),
        mfa: token.mfa.as_str(),
        cachefor: cache_for,
    };
    serde_json::to_vec(&json).unwrap_or_default()
}

/// `NewAPIToken`: [`ApiToken`] plus the token itself (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct NewApiToken {
    #[serde(flatten)]
    pub token: ApiToken,
    /// The token's value: shown only here, stored only as its SHA-256.
    #[serde(rename = "token")]
    pub value: String,
}

impl NewApiToken {
    pub fn of(token: &TokenView, value: &str, cache_for: i64) -> Self {
        Self { token: ApiToken::of(token, cache_for), value: value.to_owned() }
    }
}

/// `UIToken`: a token with where it was created from.
#[derive(Debug, Serialize, ToSchema)]
pub struct UiToken {
    /// `Login`, `Agent`, `Developer` or `Service`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub id: Uuid,
    pub expires: i64,
    pub created: i64,
    pub name: Option<String>,
    pub user: String,
    pub custom: BTreeMap<String, String>,
    /// `Used`, `NotUsed` or `Unknown`.
    pub mfa: &'static str,
    pub os: Option<String>,
    pub osver: Option<String>,
    pub agent: Option<String>,
    pub agentver: Option<String>,
    pub device: Option<String>,
    pub ip: Option<String>,
}

impl UiToken {
    pub fn of(token: &TokenView) -> Self {
        let client = token.client.clone();
        Self {
            kind: token.kind.description(),
            id: token.id,
            expires: token.expires,
            created: token.created,
            name: token.name.clone(),
            user: token.user.to_string(),
            custom: token.custom.clone(),
            mfa: token.mfa.as_str(),
            os: client.os,
            osver: client.osver,
            agent: client.agent,
            agentver: client.agentver,
            device: client.device,
            ip: client.ip,
        }
    }
}

/// `NewUIToken`: [`UiToken`] plus the token itself (shown once).
#[derive(Debug, Serialize, ToSchema)]
pub struct NewUiToken {
    #[serde(flatten)]
    pub token: UiToken,
    #[serde(rename = "token")]
    pub value: String,
}

impl NewUiToken {
    pub fn of(token: &TokenView, value: &str) -> Self {
        Self { token: UiToken::of(token), value: value.to_owned() }
    }
}

/// A role, built in or custom: `{id, desc}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    pub id: String,
    pub desc: String,
}

pub fn roles(roles: &BTreeSet<Role>) -> Vec<RoleView> {
    roles.iter().map(|r| RoleView { id: r.id().to_owned(), desc: r.description().to_owned() }).collect()
}

/// `{"customroles": [{"id", "desc"}, ...]}`, in the order given.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomRoles {
    pub customroles: Vec<RoleView>,
}

impl CustomRoles {
    pub fn of<I: std::fmt::Display, D: std::fmt::Display>(roles: impl IntoIterator<Item = (I, D)>) -> Self {
        Self {
            customroles: roles
                .into_iter()
                .map(|(id, desc)| RoleView { id: id.to_string(), desc: desc.to_string() })
                .collect(),
        }
    }
}

/// A linked identity: `{provider, provusername, id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IdentityView {
    pub provider: String,
    pub provusername: String,
    pub id: String,
}

/// A policy id a user agreed to: `{id, agreedon}` (epoch milliseconds).
#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyIdView {
    pub id: String,
    pub agreedon: i64,
}

/// The user JSON (§5.4).
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub user: String,
    pub anonid: Uuid,
    pub display: String,
    pub email: Option<String>,
    pub created: i64,
    pub lastlogin: Option<i64>,
    /// Created locally, not from a provider's identity.
    pub local: bool,
    pub roles: Vec<RoleView>,
    /// Sorted custom role ids.
    pub customroles: Vec<String>,
    pub idents: Vec<IdentityView>,
    pub policyids: Vec<PolicyIdView>,
}

impl UserView {
    /// The user as `/api/V2/me` shows it.
    pub fn of(record: &UserRecord) -> Self {
        Self {
            user: record.name.to_string(),
            anonid: record.anon_id,
            display: record.display.clone(),
            email: record.email.clone(),
            created: record.created,
            lastlogin: record.last_login,
            local: record.local,
            roles: roles(&record.roles),
            customroles: record.custom_roles.iter().map(ToString::to_string).collect(),
            idents: record
                .remote_identities
                .values()
                .map(|i| IdentityView {
                    provider: i.provider.clone(),
                    provusername: i.username.clone(),
                    id: i.id.to_string(),
                })
                .collect(),
            policyids: record
                .policy_ids
                .iter()
                .map(|(id, at)| PolicyIdView { id: id.to_string(), agreedon: *at })
                .collect(),
        }
    }

    /// A user with no email, login, identities or policy ids (a test-mode user).
    pub fn bare(
        name: &UserName,
        anon_id: Uuid,
        display: &str,
        created: i64,
        roles_held: &BTreeSet<Role>,
        custom_roles: Vec<String>,
    ) -> Self {
        Self {
            user: name.to_string(),
            anonid: anon_id,
            display: display.to_owned(),
            email: None,
            created,
            lastlogin: None,
            local: true,
            roles: roles(roles_held),
            customroles: custom_roles,
            idents: Vec::new(),
            policyids: Vec::new(),
        }
    }
}

/// The user as an administrator sees it: the user, its disabled state and
/// the SSH side (authledger's additions to the auth2 record).
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUserView {
    #[serde(flatten)]
    pub user: UserView,
    pub disabled: bool,
    pub disabledreason: Option<String>,
    pub enabletoggledate: Option<i64>,
    pub enabletoggledby: Option<String>,
    /// The login names its SSH certificates carry.
    pub logins: Vec<String>,
    /// The identities an invitation bound (`issuer:subject`).
    pub identities: Vec<String>,
    pub secondfactor: bool,
    pub lockeduntil: Option<i64>,
    /// The invitation the account was made from.
    pub invitation: Option<Uuid>,
}

impl AdminUserView {
    pub fn of(record: &UserRecord) -> Self {
        Self {
            user: UserView::of(record),
            disabled: record.is_disabled(),
            disabledreason: record.disabled_reason.clone(),
            enabletoggledate: record.enable_toggle.as_ref().map(|(at, _)| *at),
            enabletoggledby: record.enable_toggle.as_ref().map(|(_, by)| by.to_string()),
            logins: record.effective_logins().iter().map(ToString::to_string).collect(),
            identities: record.invited_identities.iter().map(ToString::to_string).collect(),
            secondfactor: record.second_factor.is_some(),
            lockeduntil: record.locked_until,
            invitation: record.invited,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    use crate::domain::token::{ClientInfo, Mfa, TokenIssued};
    use crate::domain::{TokenKind, TokenName};
    use crate::projections::hash_token;
    use crate::projections::token_index::{TokenIndex, encode_hash};

    /// Introspection writes its bytes straight from the index; they are the
    /// documented `ApiToken`, member for member and value for value.
    #[test]
    fn introspection_bytes_are_the_documented_api_token() {
        let grant = TokenIssued {
            token_hash: encode_hash(&hash_token("t")),
            kind: TokenKind::Agent,
            user: UserName::from_log("alice".into()),
            name: TokenName::parse(Some("ci")).ok(),
            created: 1_000,
            expires: 2_000,
            custom: BTreeMap::from([("k".to_owned(), "v".to_owned())]),
            client: ClientInfo::default(),
            mfa: Mfa::NotUsed,
        };
        let mut index = TokenIndex::default();
        index.issue(Uuid::from_u128(7), &grant);
        let bytes = index.with_token(&hash_token("t"), 1_500, |found| api_token_bytes(found, 300_000)).expect("found");
        let view = index.find(&hash_token("t"), 1_500).expect("found");
        let written: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        let documented = serde_json::to_value(ApiToken::of(&view, 300_000)).expect("JSON");
        assert_eq!(written, documented);
        assert_eq!(written["custom"], serde_json::json!({"k": "v"}));
    }
}
