//! Passwords: the contract's strength rules (≤ 256 code points, zxcvbn score
//! ≥ 3), argon2id hashing and verification (off the async threads — they are
//! deliberately slow), and temporary passwords for new or reset accounts.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::Rng;
use rand::seq::SliceRandom;

use crate::app::AppError;
use crate::domain::{AuthError, ErrorType};
use crate::store::Credentials;

pub const MAX_LENGTH: usize = 256;
const TEMPORARY_LENGTH: usize = 10;
const TEMPORARY_ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789+!@$%&*";

/// The contract's password rules: length first, then strength.
pub fn check_strength(password: &str) -> Result<(), AuthError> {
    if password.chars().count() > MAX_LENGTH {
        return Err(AuthError::new(ErrorType::IllegalPassword, format!("Password exceeds max length ({MAX_LENGTH})")));
    }
    let estimate = zxcvbn::zxcvbn(password, &[]);
    if u8::from(estimate.score()) < 3 {
        let warning = estimate.feedback().and_then(|f| f.warning()).map(|w| w.to_string()).unwrap_or_default();
        return Err(AuthError::new(ErrorType::IllegalPassword, format!("Password is not strong enough. {warning}")));
    }
    Ok(())
}

fn hasher() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::default())
}

/// The credentials-store kind of a password hash.
pub const SECRET_KIND: &str = "password";

/// Hashes `password` and keeps the hash in the credentials store; returns its
/// id, which events carry instead of the hash.
pub async fn store(credentials: &Credentials, password: String, now: i64) -> Result<uuid::Uuid, AppError> {
    let hashed = hash(password).await.map_err(AppError::internal)?;
    let credential_id = uuid::Uuid::new_v4();
    credentials.put(credential_id, SECRET_KIND, &hashed, now).await?;
    Ok(credential_id)
}

/// The argon2id PHC string of `password`.
pub async fn hash(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        hasher().hash_password(password.as_bytes(), &salt).map(|h| h.to_string()).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// A hash of a password nobody has, verified against when the user is unknown
/// so that a login's timing does not reveal whether the account exists.
const DECOY: &str = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$9Kr4mTMOHsl1TNgKZbhm4OHUzQGc1wGwD4GZJd4fHzI";

/// Whether `password` matches the stored hash (a decoy when there is none).
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let known = stored.is_some();
    let stored = stored.unwrap_or_else(|| DECOY.to_owned());
    let matched = tokio::task::spawn_blocking(move || {
        PasswordHash::new(&stored)
            .map(|parsed| hasher().verify_password(password.as_bytes(), &parsed).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    known && matched
}

/// A fresh temporary password (upstream's alphabet and length).
pub fn temporary() -> String {
    let mut rng = rand::thread_rng();
    let mut chars: Vec<u8> =
        (0..TEMPORARY_LENGTH).map(|_| TEMPORARY_ALPHABET[rng.gen_range(0..TEMPORARY_ALPHABET.len())]).collect();
    chars.shuffle(&mut rng);
    String::from_utf8(chars).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_and_long_passwords_are_refused() {
        let weak = check_strength("short").expect_err("weak");
        assert!(weak.to_string().starts_with("30030 Illegal password: Password is not strong enough."), "{weak}");
        let long = check_strength(&"x".repeat(257)).expect_err("long");
        assert_eq!(long.to_string(), "30030 Illegal password: Password exceeds max length (256)");
        assert!(check_strength("correct horse battery staple 42!").is_ok());
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let stored = hash("a long passphrase it is".into()).await.expect("hashed");
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("a long passphrase it is".into(), Some(stored.clone())).await);
        assert!(!verify("another".into(), Some(stored)).await);
        assert!(!verify("anything".into(), None).await);
    }

    #[test]
    fn temporary_passwords_use_the_alphabet() {
        let pw = temporary();
        assert_eq!(pw.len(), TEMPORARY_LENGTH);
        assert!(pw.bytes().all(|b| TEMPORARY_ALPHABET.contains(&b)));
    }
}
