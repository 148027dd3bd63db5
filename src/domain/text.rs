//! Text as upstream (Java) reads it: what counts as blank, and trimming.
//! Below every other domain module (errors and names both use it).

/// Java's `String.trim()`: strips leading and trailing code points ≤ U+0020.
pub fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= '\u{20}')
}

/// True when the value is absent or empty after [`java_trim`].
pub fn is_blank(s: Option<&str>) -> bool {
    s.is_none_or(|s| java_trim(s).is_empty())
}
