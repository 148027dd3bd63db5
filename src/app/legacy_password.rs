//! The password hashes KBase auth2 kept (`cryptutils/PasswordCrypt.java`):
//! PBKDF2-HMAC-SHA256 of the password's UTF-8 bytes, 20,000 iterations, a
//! 32-byte key, with a random salt; both in standard base64. An imported
//! account's hash is kept, sealed like every secret, as
//! `$auth2-pbkdf2-sha256$i=20000$<salt>$<hash>` (auth2's own base64), until its
//! first right password replaces it with an argon2id hash.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use subtle::ConstantTimeEq;

/// auth2's iteration count.
const ITERATIONS: u32 = 20_000;
/// auth2's derived key length, in bytes.
const KEY_LENGTH: usize = 32;
/// How the stored text of such a hash begins.
const PREFIX: &str = "$auth2-pbkdf2-sha256$i=20000$";

/// Why a stored auth2 hash cannot be kept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyHashError {
    #[error("the salt is not base64")]
    Salt,
    #[error("the hash is not the base64 of 32 bytes")]
    Hash,
}

/// The text kept for auth2's `salt` and `pwdhsh` (each checked).
pub fn stored(salt: &str, hash: &str) -> Result<String, LegacyHashError> {
    match STANDARD.decode(salt) {
        Ok(bytes) if !bytes.is_empty() => {}
        _ => return Err(LegacyHashError::Salt),
    }
    match STANDARD.decode(hash) {
        Ok(bytes) if bytes.len() == KEY_LENGTH => {}
        _ => return Err(LegacyHashError::Hash),
    }
    Ok(format!("{PREFIX}{salt}${hash}"))
}

/// Whether a stored hash is auth2's.
pub fn is_legacy(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Whether `password` gives the stored auth2 hash, compared in constant time.
pub fn verify(password: &[u8], stored: &str) -> bool {
    let Some((salt, hash)) = stored.strip_prefix(PREFIX).and_then(|rest| rest.split_once('$')) else {
        return false;
    };
    let (Ok(salt), Ok(expected)) = (STANDARD.decode(salt), STANDARD.decode(hash)) else {
        return false;
    };
    if expected.len() != KEY_LENGTH {
        return false;
    }
    let mut out = [0u8; KEY_LENGTH];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, &salt, ITERATIONS, &mut out);
    out.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// auth2's own test vector (`CryptUtilsTest.encryptAndAuthenticate`):
    /// password `foo`, salt 4f560a.
    #[test]
    fn auth2s_own_vector_verifies_and_a_wrong_password_does_not() {
        let kept = stored("T1YK", "UHlJyEqP3HQuGWvhFiNHtN3mK53r1YMZ+thg+OERjBI=").unwrap_or_else(|e| panic!("{e}"));
        assert!(is_legacy(&kept));
        assert!(verify(b"foo", &kept));
        assert!(!verify(b"fooo", &kept));
        assert!(!verify(b"", &kept));
    }

    #[test]
    fn a_longer_salt_verifies_too() {
        let kept =
            stored("AQIDBAUGBwg=", "O/ewsEgje1x4p72diJgnu09BTvz6Iv1EgtwrC5X6SpM=").unwrap_or_else(|e| panic!("{e}"));
        assert!(verify(b"correct horse battery staple", &kept));
    }

    #[test]
    fn malformed_hashes_are_refused_when_kept_and_never_verify() {
        assert_eq!(stored("not base64!", "UHlJyEqP3HQuGWvhFiNHtN3mK53r1YMZ+thg+OERjBI="), Err(LegacyHashError::Salt));
        assert_eq!(stored("T1YK", "AAAA"), Err(LegacyHashError::Hash));
        assert!(!verify(b"foo", "$auth2-pbkdf2-sha256$i=20000$T1YK"));
        assert!(!is_legacy("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"));
    }
}
