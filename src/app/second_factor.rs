//! TOTP second factors (RFC 6238, via `totp-rs`): SHA-1, 6 digits, 30-second
//! steps, one step of skew. The secret lives in the credentials store (base32),
//! referenced from events by id.

use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::app::AppError;

pub const ISSUER: &str = "authledger";

/// The credentials-store kind of a TOTP secret.
pub const SECRET_KIND: &str = "totp";

/// How old an unreferenced TOTP secret must be before it is forgotten: older
/// than any invitation can live, with room for replicas' projections to catch up.
pub const ORPHAN_AGE_MS: i64 = 2 * crate::domain::invite::MAX_INVITE_TTL_MS;

/// Forgets TOTP secrets nothing refers to any more — offers of invitations that
/// expired, were revoked or were opened again concurrently. Returns how many.
pub async fn forget_orphans(ledger: &crate::app::ledger::Ledger) -> Result<usize, crate::store::StoreError> {
    let now = ledger.now();
    let stored = ledger.credentials.ids_older_than(SECRET_KIND, now - ORPHAN_AGE_MS).await?;
    let live: std::collections::HashSet<uuid::Uuid> = {
        let projections = ledger.projections.read();
        let enrolled = projections.users.users().filter_map(|u| u.second_factor);
        let offered = projections.access.invites(now).into_iter().filter_map(|i| i.offered).collect::<Vec<_>>();
        enrolled.chain(offered).collect()
    };
    let mut forgotten = 0;
    for id in stored.into_iter().filter(|id| !live.contains(id)) {
        ledger.credentials.delete(id).await?;
        forgotten += 1;
    }
    Ok(forgotten)
}

/// 160 random bits, base32 (what the credentials store keeps).
pub fn new_secret() -> String {
    let mut bytes = [0u8; 20];
    rand::thread_rng().fill_bytes(&mut bytes);
    Secret::new_stack(bytes).to_base32()
}

/// A stored secret that cannot be read is the server's fault (a 500), never the caller's.
fn totp(secret: &str, account: &str) -> Result<Totp, AppError> {
    let bytes = Secret::try_from_base32(secret)
        .map_err(|_| AppError::internal("the stored second-factor secret is unreadable"))?
        .as_bytes()
        .to_vec();
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(bytes)
        .with_issuer(Some(ISSUER))
        .with_account_name(account)
        .build()
        .map_err(|e| AppError::internal(format!("cannot build the second factor: {e}")))
}

/// What an authenticator app needs: the `otpauth://` URI and a QR code of it (PNG, base64).
pub struct Enrolment {
    pub uri: String,
    pub qr_png_base64: String,
}

/// The enrolment of `secret` for `account`; failing to encode or draw it is the server's fault.
pub fn enrolment(secret: &str, account: &str) -> Result<Enrolment, AppError> {
    let totp = totp(secret, account)?;
    let uri = totp.to_url().map_err(|e| AppError::internal(format!("cannot encode the second factor: {e}")))?;
    let qr_png_base64 = totp.to_qr_base64().map_err(|e| AppError::internal(format!("cannot draw the QR code: {e}")))?;
    Ok(Enrolment { uri, qr_png_base64 })
}

/// The time step a code is valid for at `now_ms`, or `None` for a wrong (or malformed) code.
pub fn check(secret: &str, account: &str, code: &str, now_ms: i64) -> Result<Option<u64>, AppError> {
    let totp = totp(secret, account)?;
    let now = u64::try_from(now_ms / 1000).unwrap_or(0);
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.chars().all(|c| c.is_ascii_digit()) {
        return Ok(None);
    }
    Ok(totp.check(&code, now))
}

/// The code for `now_ms` (tests and the CLI's self-check).
pub fn code_at(secret: &str, account: &str, now_ms: i64) -> Result<String, AppError> {
    let totp = totp(secret, account)?;
    Ok(totp.generate(u64::try_from(now_ms / 1000).unwrap_or(0)).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_valid_for_its_step_and_one_either_side() {
        let secret = new_secret();
        let now = 1_718_095_200_000;
        let code = code_at(&secret, "carol", now).unwrap_or_default();
        assert_eq!(check(&secret, "carol", &code, now).ok().flatten(), Some(1_718_095_200 / 30));
        assert!(check(&secret, "carol", &code, now + 30_000).ok().flatten().is_some());
        assert_eq!(check(&secret, "carol", &code, now + 90_000).ok().flatten(), None);
        assert_eq!(check(&secret, "carol", "12ab56", now).ok().flatten(), None);
    }

    #[test]
    fn the_enrolment_names_the_issuer_and_account() {
        let enrolment = enrolment(&new_secret(), "carol");
        let uri = enrolment.as_ref().map(|e| e.uri.clone()).unwrap_or_default();
        assert!(uri.starts_with("otpauth://totp/authledger:carol?"), "{uri}");
        assert!(enrolment.map(|e| e.qr_png_base64.len()).unwrap_or(0) > 100);
    }
}
