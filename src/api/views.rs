//! The JSON shapes of the contract (§5.3, §5.4, §9): tokens as the API and
//! the UI show them, users as themselves and as administrators see them.
//! Every documented member is present; absent values are `null`.

use std::collections::BTreeSet;

use serde::{Serialize, Serializer};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::domain::{Role, UserName};
use crate::projections::token_index::TokenRef;
use crate::projections::{TokenView, UserRecord};

/// `APIToken` (introspection).
pub fn api_token(token: &TokenView, cache_for: i64) -> Value {
    json!({
        "type": token.kind.description(),
        "id": token.id,
        "expires": token.expires,
        "created": token.created,
        "name": token.name,
        "user": token.user,
        "custom": token.custom,
        "mfa": token.mfa.as_str(),
        "cachefor": cache_for,
    })
}

/// `APIToken` written straight from the index, with no intermediate copies:
/// the same members as [`api_token`].
pub fn api_token_bytes(token: TokenRef<'_>, cache_for: i64) -> Vec<u8> {
    struct Custom<'a>(&'a [(Box<str>, Box<str>)]);
    impl Serialize for Custom<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_map(self.0.iter().map(|(k, v)| (k, v)))
        }
    }
    #[derive(Serialize)]
    struct ApiToken<'a> {
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
    let json = ApiToken {
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

/// `NewAPIToken`: `APIToken` plus the token itself.
pub fn new_api_token(token: &TokenView, value: &str, cache_for: i64) -> Value {
    let mut out = api_token(token, cache_for);
    out["token"] = json!(value);
    out
}

/// `UIToken`: the token with where it was created from.
pub fn ui_token(token: &TokenView) -> Value {
    json!({
        "type": token.kind.description(),
        "id": token.id,
        "expires": token.expires,
        "created": token.created,
        "name": token.name,
        "user": token.user,
        "custom": token.custom,
        "mfa": token.mfa.as_str(),
        "os": token.client.os,
        "osver": token.client.osver,
        "agent": token.client.agent,
        "agentver": token.client.agentver,
        "device": token.client.device,
        "ip": token.client.ip,
    })
}

/// `NewUIToken`: `UIToken` plus the token itself.
pub fn new_ui_token(token: &TokenView, value: &str) -> Value {
    let mut out = ui_token(token);
    out["token"] = json!(value);
    out
}

pub fn roles(roles: &BTreeSet<Role>) -> Value {
    Value::Array(roles.iter().map(|r| json!({"id": r.id(), "desc": r.description()})).collect())
}

/// `{"customroles": [{"id", "desc"}, ...]}`, in the order given.
pub fn custom_roles<I: std::fmt::Display, D: Serialize>(roles: impl IntoIterator<Item = (I, D)>) -> Value {
    let listed: Vec<Value> = roles.into_iter().map(|(id, desc)| json!({"id": id.to_string(), "desc": desc})).collect();
    json!({ "customroles": listed })
}

/// What the user JSON (§5.4) says of one user; the rest is the same for every account here.
pub struct UserJson<'a, C: Serialize> {
    pub name: &'a UserName,
    pub anon_id: Uuid,
    pub display: &'a str,
    pub email: Option<&'a str>,
    pub created: i64,
    pub last_login: Option<i64>,
    pub roles: &'a BTreeSet<Role>,
    /// Sorted custom role ids.
    pub custom_roles: C,
    /// Created locally, not from a provider's identity.
    pub local: bool,
    /// `idents`: the linked identities, `{provider, provusername, id}`.
    pub identities: Value,
    /// `policyids`: `{id, agreedon}`.
    pub policy_ids: Value,
}

impl<C: Serialize> UserJson<'_, C> {
    pub fn render(&self) -> Value {
        json!({
            "user": self.name,
            "anonid": self.anon_id,
            "display": self.display,
            "email": self.email,
            "created": self.created,
            "lastlogin": self.last_login,
            "local": self.local,
            "roles": roles(self.roles),
            "customroles": self.custom_roles,
            "idents": self.identities,
            "policyids": self.policy_ids,
        })
    }
}

/// The user as `/api/V2/me` shows it.
pub fn user(record: &UserRecord) -> Value {
    UserJson {
        name: &record.name,
        anon_id: record.anon_id,
        display: &record.display,
        email: record.email.as_deref(),
        created: record.created,
        last_login: record.last_login,
        roles: &record.roles,
        custom_roles: &record.custom_roles,
        local: record.local,
        identities: identities(record),
        policy_ids: policy_ids(record),
    }
    .render()
}

/// `idents`: a user's linked identities, in id order.
pub fn identities(record: &UserRecord) -> Value {
    let listed = record.remote_identities.values();
    Value::Array(listed.map(|i| json!({"provider": i.provider, "provusername": i.username, "id": i.id})).collect())
}

/// `policyids`: the policy ids a user agreed to, with when.
pub fn policy_ids(record: &UserRecord) -> Value {
    Value::Array(record.policy_ids.iter().map(|(id, at)| json!({"id": id, "agreedon": at})).collect())
}

/// The user as an administrator sees it: the user plus its disabled state.
pub fn admin_user(record: &UserRecord) -> Value {
    let mut out = user(record);
    out["disabled"] = json!(record.is_disabled());
    out["disabledreason"] = json!(record.disabled_reason);
    out["enabletoggledate"] = json!(record.enable_toggle.as_ref().map(|(at, _)| at));
    out["enabletoggledby"] = json!(record.enable_toggle.as_ref().map(|(_, by)| by));
    // The SSH side (authledger's additions to the auth2 record).
    out["logins"] = json!(record.effective_logins());
    out["identities"] = json!(record.invited_identities.iter().map(ToString::to_string).collect::<Vec<_>>());
    out["secondfactor"] = json!(record.second_factor.is_some());
    out["lockeduntil"] = json!(record.locked_until);
    out["invitation"] = json!(record.invited);
    out
}
