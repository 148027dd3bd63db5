//! Validated value types for names and free text (contract §4): user names,
//! display names, token names, custom role ids and descriptions, email
//! addresses and token custom context. Every constructor applies the
//! contract's checks in the contract's order and fails with its exact error.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::error::{AuthError, ErrorType};

pub use super::text::{is_blank, java_trim};

fn is_iso_control(c: char) -> bool {
    matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}')
}

/// The generic check of §4.1: present, at most `limit` code points once trimmed,
/// no control characters. Returns the trimmed value.
pub fn check_name<'a>(value: Option<&'a str>, kind: &str, limit: usize) -> Result<&'a str, AuthError> {
    let trimmed = check_length(value, kind, limit)?;
    if trimmed.chars().any(is_iso_control) {
        return Err(AuthError::illegal(format!("{kind} contains control characters")));
    }
    Ok(trimmed)
}

/// Presence and length only (no control-character check). Returns the trimmed value.
pub fn check_length<'a>(value: Option<&'a str>, kind: &str, limit: usize) -> Result<&'a str, AuthError> {
    let trimmed = match value {
        Some(v) if !java_trim(v).is_empty() => java_trim(v),
        _ => return Err(AuthError::missing(kind)),
    };
    if trimmed.chars().count() > limit {
        return Err(AuthError::illegal(format!("{kind} size greater than limit {limit}")));
    }
    Ok(trimmed)
}

/// The first maximal run of characters for which `illegal` holds.
fn first_run(s: &str, illegal: impl Fn(char) -> bool) -> Option<&str> {
    let start = s.char_indices().find(|&(_, c)| illegal(c))?.0;
    let end = s[start..].char_indices().find(|&(_, c)| !illegal(c)).map_or(s.len(), |(i, _)| start + i);
    Some(&s[start..end])
}

macro_rules! string_newtype {
    ($name:ident) => {
        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

/// A user name: `^[a-z][a-z0-9_]{0,99}$` or the reserved root name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserName(String);
string_newtype!(UserName);

impl std::borrow::Borrow<str> for UserName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl UserName {
    pub const ROOT: &'static str = "***ROOT***";
    pub const MAX_LENGTH: usize = 100;

    pub fn parse(input: Option<&str>) -> Result<Self, AuthError> {
        let trimmed = check_name(input, "user name", Self::MAX_LENGTH)?;
        let raw = input.unwrap_or_default();
        if trimmed == Self::ROOT {
            return Ok(Self::root());
        }
        if let Some(run) = first_run(raw, |c| !matches!(c, 'a'..='z' | '0'..='9' | '_')) {
            return Err(AuthError::new(
                ErrorType::IllegalUserName,
                format!("Illegal character in user name {raw}: {run}"),
            ));
        }
        if !raw.starts_with(|c: char| c.is_ascii_lowercase()) {
            return Err(AuthError::new(ErrorType::IllegalUserName, "Username must start with a letter"));
        }
        Ok(Self(raw.to_owned()))
    }

    pub fn root() -> Self {
        Self(Self::ROOT.to_owned())
    }

    pub fn is_root(&self) -> bool {
        self.0 == Self::ROOT
    }

    /// Rebuilds a name read back from the log, where it was validated when written.
    pub fn from_log(name: String) -> Self {
        Self(name)
    }
}

/// A display name: free text, at most 100 code points, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DisplayName(String);
string_newtype!(DisplayName);

impl DisplayName {
    pub fn parse(input: Option<&str>) -> Result<Self, AuthError> {
        check_name(input, "display name", 100).map(|s| Self(s.to_owned()))
    }
}

/// A token name: at most 100 code points, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenName(String);
string_newtype!(TokenName);

impl TokenName {
    pub fn parse(input: Option<&str>) -> Result<Self, AuthError> {
        check_name(input, "token name", 100).map(|s| Self(s.to_owned()))
    }
}

/// A policy id a user agreed to (terms of service and the like): at most 20
/// code points, no control characters (contract §4.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PolicyId(String);
string_newtype!(PolicyId);

impl PolicyId {
    pub const MAX_LENGTH: usize = 20;

    pub fn parse(input: Option<&str>) -> Result<Self, AuthError> {
        check_name(input, "policy id", Self::MAX_LENGTH).map(|s| Self(s.to_owned()))
    }

    /// Rebuilds a policy id read back from the log (a stream id), where it was validated when written.
    pub fn from_log(id: &str) -> Self {
        Self(id.to_owned())
    }
}

/// A custom role id: `[a-zA-Z0-9_]+`, at most 100 code points.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CustomRoleId(String);
string_newtype!(CustomRoleId);

impl CustomRoleId {
    pub fn parse(input: Option<&str>) -> Result<Self, AuthError> {
        check_name(input, "custom role id", 100)?;
        let raw = input.unwrap_or_default();
        if let Some(run) = first_run(raw, |c| !(c.is_ascii_alphanumeric() || c == '_')) {
            return Err(AuthError::illegal(format!("Illegal character in custom role id {raw}: {run}")));
        }
        Ok(Self(raw.to_owned()))
    }
}

/// A custom role's description: required, at most 1000 code points.
pub fn parse_role_description(input: Option<&str>) -> Result<String, AuthError> {
    check_length(input, "custom role description", 1000).map(str::to_owned)
}

/// An email address with a public-looking domain (no local or intranet hosts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EmailAddress(String);
string_newtype!(EmailAddress);

impl EmailAddress {
    pub fn parse(input: Option<&str>) -> Result<Self, AuthError> {
        let trimmed = check_length(input, "email address", 1000)?;
        if !is_valid_email(trimmed) {
            return Err(AuthError::new(ErrorType::IllegalEmailAddress, trimmed));
        }
        Ok(Self(trimmed.to_owned()))
    }
}

fn is_valid_email(address: &str) -> bool {
    let Ok(parsed) = address.parse::<email_address::EmailAddress>() else {
        return false;
    };
    let domain = parsed.domain();
    // A domain name (not an address literal) of at least two labels whose last
    // label looks like a top-level domain: what upstream's validator requires
    // of a non-local address.
    let labels: Vec<&str> = domain.split('.').collect();
    if labels.len() < 2 || domain.starts_with('[') {
        return false;
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_alphanumeric() || c == '-')
    };
    let tld = labels[labels.len() - 1];
    labels.iter().all(|l| label_ok(l))
        && (tld.chars().all(char::is_alphabetic) && tld.chars().count() >= 2
            || tld.to_ascii_lowercase().starts_with("xn--"))
}

/// A token's custom context (§4.7): at most 100 entries, keys ≤ 20 and values ≤ 80
/// code points, neither blank. Stored untrimmed.
pub fn parse_custom_context(context: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, AuthError> {
    if context.len() > 100 {
        return Err(AuthError::illegal("Exceeded max size of custom context: 100 items"));
    }
    for (key, value) in context {
        check_length(Some(key), "key", 20)?;
        check_length(Some(value), "value", 80)?;
    }
    Ok(context.clone())
}

/// A free user name like `wanted` (contract §4.2, `/login/suggestname`):
/// lowercased, only `[a-z0-9_]`, starting with a letter, at most 100
/// characters; if `taken`, its trailing digits replaced by the lowest free
/// number from 2; failing all that, `user` and the lowest free number from 1.
/// (Upstream answers 500 when the cleaned name exceeds 100 characters; here it
/// is cut to 100.)
pub fn suggest_user_name(wanted: &str, taken: impl Fn(&str) -> bool) -> String {
    let cleaned: String = wanted.to_lowercase().chars().filter(|c| matches!(c, 'a'..='z' | '0'..='9' | '_')).collect();
    let base: String =
        cleaned.trim_start_matches(|c: char| !c.is_ascii_lowercase()).chars().take(UserName::MAX_LENGTH).collect();
    // The lowest free number is at most one more than the names taken; the
    // search is capped all the same (this answers unauthenticated requests).
    let numbered = |stem: &str, from: u64| {
        (from..from + 1_000_000).map(|n| n.to_string()).find_map(|n| {
            let keep = UserName::MAX_LENGTH.saturating_sub(n.len()).min(stem.len());
            let candidate = format!("{}{n}", &stem[..keep]);
            (!taken(&candidate)).then_some(candidate)
        })
    };
    if !base.is_empty() {
        if !taken(&base) {
            return base;
        }
        let stem = base.trim_end_matches(|c: char| c.is_ascii_digit());
        if let Some(found) = numbered(stem, 2) {
            return found;
        }
    }
    numbered("user", 1).unwrap_or_else(|| "user1".to_owned())
}

/// A comma-separated user list (§4.2): each element trimmed and validated.
/// A blank list is empty.
pub fn parse_user_list(list: Option<&str>) -> Result<Vec<UserName>, AuthError> {
    if is_blank(list) {
        return Ok(Vec::new());
    }
    let mut names = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut elements: Vec<&str> = list.unwrap_or_default().split(',').collect();
    // Java's split drops trailing empty strings: "a," is ["a"].
    while elements.last() == Some(&"") {
        elements.pop();
    }
    for element in elements {
        let name = UserName::parse(Some(java_trim(element)))
            .map_err(|e| AuthError::new(ErrorType::IllegalUserName, format!("Illegal user name [{element}]: {e}")))?;
        if seen.insert(name.clone()) {
            names.push(name);
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_suggested_name_is_clean_and_free() {
        let taken = ["foo", "foo2", "user1", "bar"];
        let suggest = |wanted: &str| super::suggest_user_name(wanted, |n| taken.contains(&n));
        assert_eq!(suggest("Foo"), "foo3", "foo and foo2 are taken");
        assert_eq!(suggest("Jane Doe!"), "janedoe");
        assert_eq!(suggest("12_x-y"), "xy", "leading non-letters dropped");
        assert_eq!(suggest("bar7"), "bar7");
        assert_eq!(suggest("foo2"), "foo3", "trailing digits replaced");
        assert_eq!(suggest("!!!"), "user2", "nothing left: user and the lowest free number");
        assert_eq!(suggest("Ünïcödé"), "ncd");
        let long = "a".repeat(150);
        assert_eq!(suggest(&long), "a".repeat(100), "cut to 100");
        let first_two = [long[..100].to_owned(), format!("{}2", &long[..99])];
        let numbered = super::suggest_user_name(&long, |n| first_two.iter().any(|t| t == n));
        assert_eq!(numbered, format!("{}3", &long[..99]), "numbered within 100 characters");
    }

    use super::*;

    fn msg<T: fmt::Debug>(r: Result<T, AuthError>) -> String {
        r.expect_err("expected an error").to_string()
    }

    #[test]
    fn user_names_follow_the_grammar() {
        assert_eq!(UserName::parse(Some("alice_2")).map(|u| u.to_string()), Ok("alice_2".into()));
        assert_eq!(msg(UserName::parse(None)), "30000 Missing input parameter: user name");
        assert_eq!(msg(UserName::parse(Some("   "))), "30000 Missing input parameter: user name");
        assert_eq!(msg(UserName::parse(Some("Abc"))), "30010 Illegal user name: Illegal character in user name Abc: A");
        assert_eq!(
            msg(UserName::parse(Some("ab-c"))),
            "30010 Illegal user name: Illegal character in user name ab-c: -"
        );
        assert_eq!(
            msg(UserName::parse(Some("abCDe"))),
            "30010 Illegal user name: Illegal character in user name abCDe: CD"
        );
        assert_eq!(msg(UserName::parse(Some("1abc"))), "30010 Illegal user name: Username must start with a letter");
        assert_eq!(msg(UserName::parse(Some("_abc"))), "30010 Illegal user name: Username must start with a letter");
        assert_eq!(
            msg(UserName::parse(Some(" abc"))),
            "30010 Illegal user name: Illegal character in user name  abc:  "
        );
        assert_eq!(
            msg(UserName::parse(Some(&"a".repeat(101)))),
            "30001 Illegal input parameter: user name size greater than limit 100"
        );
        assert!(UserName::parse(Some("***ROOT***")).is_ok_and(|u| u.is_root()));
    }

    #[test]
    fn control_characters_are_refused_after_the_length_check() {
        assert_eq!(
            msg(DisplayName::parse(Some("a\u{7}b"))),
            "30001 Illegal input parameter: display name contains control characters"
        );
        assert_eq!(
            msg(TokenName::parse(Some("a\u{85}b"))),
            "30001 Illegal input parameter: token name contains control characters"
        );
    }

    #[test]
    fn java_trim_keeps_unicode_spaces() {
        assert_eq!(java_trim("\u{a0}x\t\n "), "\u{a0}x");
    }

    #[test]
    fn length_is_counted_in_code_points() {
        assert!(DisplayName::parse(Some(&"é".repeat(100))).is_ok());
        assert!(DisplayName::parse(Some(&"😀".repeat(101))).is_err());
    }

    #[test]
    fn custom_role_ids() {
        assert!(CustomRoleId::parse(Some("Curator_2")).is_ok());
        assert_eq!(
            msg(CustomRoleId::parse(Some("a-b c"))),
            "30001 Illegal input parameter: Illegal character in custom role id a-b c: -"
        );
    }

    #[test]
    fn emails_need_a_public_looking_domain() {
        assert!(EmailAddress::parse(Some(" a.b@example.org ")).is_ok_and(|e| e.as_str() == "a.b@example.org"));
        assert_eq!(msg(EmailAddress::parse(Some("foo@bar"))), "30020 Illegal email address: foo@bar");
        assert_eq!(msg(EmailAddress::parse(Some("not an email"))), "30020 Illegal email address: not an email");
        assert_eq!(msg(EmailAddress::parse(Some(""))), "30000 Missing input parameter: email address");
    }

    #[test]
    fn user_lists() {
        assert_eq!(parse_user_list(Some(" ")).map(|v| v.len()), Ok(0));
        assert_eq!(parse_user_list(Some("a, b")).map(|v| v.len()), Ok(2));
        assert_eq!(
            msg(parse_user_list(Some("a,  "))),
            "30010 Illegal user name: Illegal user name [  ]: 30000 Missing input parameter: user name"
        );
    }

    #[test]
    fn custom_context_limits() {
        let mut ctx = BTreeMap::new();
        ctx.insert("k".repeat(21), "v".into());
        assert_eq!(msg(parse_custom_context(&ctx)), "30001 Illegal input parameter: key size greater than limit 20");
        let many: BTreeMap<_, _> = (0..101).map(|i| (format!("k{i}"), "v".to_string())).collect();
        assert_eq!(
            msg(parse_custom_context(&many)),
            "30001 Illegal input parameter: Exceeded max size of custom context: 100 items"
        );
    }
}
