//! Display-name canonicalization (contract §4.3), versioned: the user
//! directory folds display names with the configured rule, so changing the
//! rule is rebuilding that projection, never migrating data.

use serde::{Deserialize, Serialize};

/// Which upstream rule canonicalizes display names for search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Canonicalization {
    /// auth2 before 0.6.0: split on whitespace, strip outer punctuation, keep duplicates.
    #[serde(rename = "pre-0.6.0")]
    V1,
    /// auth2 0.6.0 and later: split on hyphens and whitespace, keep letters and digits, no duplicates.
    #[default]
    #[serde(rename = "0.6.0")]
    V2,
}

impl Canonicalization {
    /// The rule's name, as configured (`"0.6.0"`, `"pre-0.6.0"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::V1 => "pre-0.6.0",
            Self::V2 => "0.6.0",
        }
    }

    pub fn apply(self, display: &str) -> Vec<String> {
        match self {
            Self::V1 => canonicalize_v1(display),
            Self::V2 => canonicalize_v2(display),
        }
    }
}

/// The 0.6.0 rule.
pub fn canonicalize_v2(display: &str) -> Vec<String> {
    let lower = display.to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for piece in lower.split(|c: char| c == '-' || c.is_whitespace()) {
        let kept: String = piece.chars().filter(|c| c.is_alphanumeric()).collect();
        if !kept.is_empty() && !out.contains(&kept) {
            out.push(kept);
        }
    }
    out
}

/// The pre-0.6.0 rule.
pub fn canonicalize_v1(display: &str) -> Vec<String> {
    display
        .to_lowercase()
        .split_whitespace()
        .map(|piece| piece.trim_matches(|c: char| !c.is_alphanumeric()).to_owned())
        .filter(|piece| !piece.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_rule_splits_on_hyphens_and_drops_punctuation() {
        assert_eq!(canonicalize_v2("  Dr. Jean-Luc  O'Neil (PhD) jean "), ["dr", "jean", "luc", "oneil", "phd"]);
        assert_eq!(canonicalize_v2("Smith-Jones, J.R."), ["smith", "jones", "jr"]);
    }

    #[test]
    fn old_rule_keeps_interior_punctuation_and_duplicates() {
        assert_eq!(canonicalize_v1("  Dr. Jean-Luc  O'Neil (PhD) jean "), ["dr", "jean-luc", "o'neil", "phd", "jean"]);
        assert_eq!(canonicalize_v1("Smith-Jones, J.R."), ["smith-jones", "j.r"]);
    }
}
