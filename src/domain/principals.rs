//! Validated value types of the SSH side: the logins (certificate principals)
//! a user may use, host ids, the roles a host joins with, and the external
//! identities an invitation links (`connector:email`).

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::names::EmailAddress;

/// A login a user may use on hosts: an SSH certificate principal. POSIX-ish
/// (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}`, so every user name is one): OpenSSH splits principals on commas,
/// so anything outside this alphabet is refused rather than escaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Login(String);

impl Login {
    pub const MAX_LENGTH: usize = 100;

    pub fn parse(input: &str) -> Result<Self, AuthError> {
        let valid_start = input.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let valid_chars = input.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if input.is_empty() || input.len() > Self::MAX_LENGTH || !valid_start || !valid_chars {
            return Err(AuthError::illegal(format!(
                "Illegal login {input:?}: 1 to {} characters of A-Z a-z 0-9 _ . -, not starting with . or -",
                Self::MAX_LENGTH
            )));
        }
        Ok(Self(input.to_owned()))
    }

    /// A non-empty set of logins. Empty is refused: a certificate without
    /// principals is valid for *every* login on OpenSSH hosts.
    pub fn parse_list<'a>(inputs: impl IntoIterator<Item = &'a str>) -> Result<BTreeSet<Self>, AuthError> {
        let logins = inputs.into_iter().map(Self::parse).collect::<Result<BTreeSet<_>, _>>()?;
        if logins.is_empty() {
            return Err(AuthError::illegal("At least one login is required"));
        }
        Ok(logins)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A host's id as it joins: a DNS-style name or a UUID (`[A-Za-z0-9._-]`,
/// 1–253), lowercased (as DNS and OpenSSH compare names), so `Web1` and
/// `web1` are one name and one binding.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HostId(String);

impl HostId {
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        let valid = !input.is_empty()
            && input.len() <= 253
            && !input.starts_with(['.', '-'])
            && input.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'));
        if !valid {
            return Err(AuthError::illegal(format!(
                "Illegal host id {input:?}: 1 to 253 characters of A-Z a-z 0-9 . - _, not starting with . or -"
            )));
        }
        Ok(Self(input.to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The role a host joins the cluster with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HostRole {
    Node,
    Proxy,
    Auth,
}

impl HostRole {
    pub const ALL: [HostRole; 3] = [HostRole::Node, HostRole::Proxy, HostRole::Auth];

    pub fn id(self) -> &'static str {
        match self {
            Self::Node => "node",
            Self::Proxy => "proxy",
            Self::Auth => "auth",
        }
    }

    pub fn parse(input: &str) -> Result<Self, AuthError> {
        Self::ALL.into_iter().find(|r| r.id() == input.trim().to_ascii_lowercase()).ok_or_else(|| {
            AuthError::illegal(format!("Unknown host role {input:?}: expected one of node, proxy, auth"))
        })
    }

    /// A non-empty set of roles; one unknown role rejects the whole list.
    pub fn parse_list<'a>(inputs: impl IntoIterator<Item = &'a str>) -> Result<BTreeSet<Self>, AuthError> {
        let roles = inputs.into_iter().map(Self::parse).collect::<Result<BTreeSet<_>, _>>()?;
        if roles.is_empty() {
            return Err(AuthError::illegal("At least one host role is required"));
        }
        Ok(roles)
    }
}

impl fmt::Display for HostRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// An identity an invitation expects the new account to have at a provider
/// (`connector:email`): when its person signs in through that provider with
/// that email, verified, the provider identity is linked to the account.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct InvitedIdentity {
    pub connector: String,
    pub email: String,
}

impl InvitedIdentity {
    pub fn parse(input: &str) -> Result<Self, AuthError> {
        let malformed = || {
            AuthError::illegal(format!(
                "Illegal identity {input:?}: expected connector:email, e.g. github:alice@example.org"
            ))
        };
        let (connector, email) = input.split_once(':').ok_or_else(malformed)?;
        let connector_ok = !connector.is_empty()
            && connector.len() <= 64
            && connector.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !connector_ok {
            return Err(malformed());
        }
        let email = EmailAddress::parse(Some(email)).map_err(|_| malformed())?;
        Ok(Self { connector: connector.to_owned(), email: email.as_str().to_owned() })
    }
}

impl fmt::Display for InvitedIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.connector, self.email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_are_posix_like_and_never_empty() {
        assert!(Login::parse("alice").is_ok());
        assert!(Login::parse("svc-deploy.1").is_ok());
        for bad in ["", "-x", ".x", "a,b", "a b", "root\n", &"x".repeat(101)] {
            assert!(Login::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Login::parse_list([]).is_err());
    }

    #[test]
    fn one_unknown_host_role_rejects_the_list() {
        assert_eq!(
            HostRole::parse_list(["node", "Proxy"]).ok(),
            Some(BTreeSet::from([HostRole::Node, HostRole::Proxy]))
        );
        let error = HostRole::parse_list(["node", "admin"]).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("30001 Illegal input parameter: Unknown host role \"admin\": expected one of node, proxy, auth")
        );
    }

    #[test]
    fn identities_are_connector_and_email() {
        let id = InvitedIdentity::parse("github:alice@example.org").ok();
        assert_eq!(id.map(|i| i.to_string()).as_deref(), Some("github:alice@example.org"));
        for bad in ["github", "github:", ":a@b.org", "git hub:a@b.org", "github:not-an-email"] {
            assert!(InvitedIdentity::parse(bad).is_err(), "{bad:?}");
        }
    }
}
