//! Device marks (OWASP's "device cookie"): a client that logged in to an
//! account carries a mark the server signed, naming that account and a random
//! device id. A password check that brings a valid mark for its account is
//! counted for that device alone — exempt from the account-wide count and the
//! per-address count that guessers drive up — so the owner's known browser or
//! client gets in while an attack goes on. A mark never helps with another
//! account, and a guesser cannot make one without the account's password.
//!
//! A mark reads `d1.<device id>.<issued, epoch s>.<MAC>`, the MAC an
//! HMAC-SHA256 (truncated to 128 bits) under a key kept sealed in the
//! credentials store and shared by the servers of one log; the cookie holds
//! a few marks (one per account the client logged in to), newest first. The
//! same key gives the keyed digest of a client address that the log keeps in
//! a password check's source instead of the address.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use super::AppError;
use crate::domain::UserName;
use crate::domain::throttle::PasswordSource;
use crate::store::Credentials;

/// The credentials-store kind of the marks' key.
pub const SECRET_KIND: &str = "device-marks";
/// How long a mark is good for after its login.
pub const LIFETIME_MS: i64 = 365 * 24 * 60 * 60 * 1000;
/// The most marks one client keeps (accounts it logged in to), newest first.
pub const MAX_MARKS: usize = 4;
const MAC_LEN: usize = 16;
const VERSION: &str = "d1";

/// Makes and checks device marks, and digests client addresses.
pub struct DeviceMarks {
    /// The HMAC keyed once; each use starts from a copy.
    keyed: Hmac<Sha256>,
}

impl std::fmt::Debug for DeviceMarks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceMarks(key hidden)")
    }
}

impl DeviceMarks {
    /// Loads the key from the credentials store, creating it on a log's
    /// first start (servers racing there agree on the smallest id).
    pub async fn open(credentials: &Credentials, now: i64) -> Result<Self, AppError> {
        if let Some(marks) = Self::load(credentials).await? {
            return Ok(marks);
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        credentials.put(uuid::Uuid::new_v4(), SECRET_KIND, &STANDARD.encode(bytes), now).await?;
        Self::load(credentials).await?.ok_or_else(|| AppError::internal("the device-mark key was not stored"))
    }

    async fn load(credentials: &Credentials) -> Result<Option<Self>, AppError> {
        let Some(id) = credentials.ids_older_than(SECRET_KIND, i64::MAX).await?.into_iter().min() else {
            return Ok(None);
        };
        let Some(text) = credentials.get(id).await? else {
            return Ok(None);
        };
        let key: [u8; 32] = STANDARD
            .decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| AppError::internal("the stored device-mark key is not 32 bytes of base64"))?;
        Self::with_key(key).map(Some)
    }

    /// Marks made under `key`.
    pub fn with_key(key: [u8; 32]) -> Result<Self, AppError> {
        let keyed = <Hmac<Sha256> as Mac>::new_from_slice(&key).map_err(AppError::internal)?;
        Ok(Self { keyed })
    }

    fn mac(&self, parts: &[&str]) -> Hmac<Sha256> {
        let mut mac = self.keyed.clone();
        for part in parts {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac
    }

    /// Where a check of `user`'s password comes from: the device of a valid
    /// mark for `user` among `marks` (the cookie's value), else the client
    /// address (`quota`, the address a quota counts), by its keyed digest.
    pub fn source(&self, user: &UserName, marks: Option<&str>, quota: &str, now: i64) -> PasswordSource {
        match marks.and_then(|marks| self.device_of(user, marks, now)) {
            Some(device) => PasswordSource::Device(device),
            None => PasswordSource::Address(self.address_digest(quota)),
        }
    }

    /// The keyed digest of a client address, as a password check's source keeps it.
    pub fn address_digest(&self, quota: &str) -> String {
        let tag = self.mac(&["address", quota]).finalize().into_bytes();
        URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN])
    }

    /// The device id of the first valid, unexpired mark for `user` in `marks`.
    pub fn device_of(&self, user: &UserName, marks: &str, now: i64) -> Option<String> {
        marks.split('~').find_map(|mark| self.open_mark(user, mark, now))
    }

    fn open_mark(&self, user: &UserName, mark: &str, now: i64) -> Option<String> {
        let mut parts = mark.split('.');
        let (version, device, issued, tag) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != VERSION || parts.next().is_some() {
            return None;
        }
        let issued_ms = issued.parse::<i64>().ok()?.checked_mul(1000)?;
        if now >= issued_ms.saturating_add(LIFETIME_MS) {
            return None;
        }
        let tag = URL_SAFE_NO_PAD.decode(tag).ok().filter(|t| t.len() == MAC_LEN)?;
        self.mac(&[VERSION, user.as_str(), device, issued]).verify_truncated_left(&tag).ok()?;
        Some(device.to_owned())
    }

    /// The cookie's new value after `user` logged in at `now`: a fresh mark
    /// for `user` (keeping its device id when the client had one), then the
    /// client's other marks that are still good, at most [`MAX_MARKS`].
    pub fn issue(&self, user: &UserName, marks: Option<&str>, now: i64) -> String {
        let device = marks.and_then(|m| self.device_of(user, m, now)).unwrap_or_else(|| {
            let mut bytes = [0u8; 16];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            URL_SAFE_NO_PAD.encode(bytes)
        });
        let issued = (now / 1000).to_string();
        let tag = self.mac(&[VERSION, user.as_str(), &device, &issued]).finalize().into_bytes();
        let fresh = format!("{VERSION}.{device}.{issued}.{}", URL_SAFE_NO_PAD.encode(&tag[..MAC_LEN]));
        let others = marks
            .into_iter()
            .flat_map(|m| m.split('~'))
            .filter(|m| self.open_mark(user, m, now).is_none() && well_formed(m, now))
            .map(str::to_owned);
        std::iter::once(fresh).chain(others).take(MAX_MARKS).collect::<Vec<_>>().join("~")
    }
}

/// Whether `mark` looks like a mark of this format and has not expired (one
/// for another account, which this server cannot check without its name).
fn well_formed(mark: &str, now: i64) -> bool {
    let parts: Vec<&str> = mark.split('.').collect();
    parts.len() == 4
        && parts[0] == VERSION
        && parts[1].len() <= 32
        && parts[3].len() <= 32
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        && parts[2].parse::<i64>().ok().and_then(|s| s.checked_mul(1000)).is_some_and(|ms| now < ms + LIFETIME_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marks_under(byte: u8) -> DeviceMarks {
        DeviceMarks::with_key([byte; 32]).expect("a key")
    }

    fn user(name: &str) -> UserName {
        UserName::from_log(name.to_owned())
    }

    #[test]
    fn a_mark_names_one_account_and_its_device() {
        let marks = marks_under(1);
        let cookie = marks.issue(&user("alice"), None, 1_000_000);
        let device = marks.device_of(&user("alice"), &cookie, 2_000_000).expect("alice's device");
        assert_eq!(
            marks.source(&user("alice"), Some(&cookie), "203.0.113.7", 2_000_000),
            PasswordSource::Device(device.clone())
        );
        assert_eq!(marks.device_of(&user("bob"), &cookie, 2_000_000), None, "not bob's");
        let other_key = marks_under(2);
        assert_eq!(other_key.device_of(&user("alice"), &cookie, 2_000_000), None, "another key's");
        assert_eq!(marks.device_of(&user("alice"), &cookie, 1_000_000 + LIFETIME_MS), None, "expired");
        let forged = cookie.replace(&device, "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(marks.device_of(&user("alice"), &forged, 2_000_000), None, "a changed device id");
        // A later login keeps the device and adds the others' marks behind it.
        let both = marks.issue(&user("bob"), Some(&cookie), 3_000_000);
        assert!(marks.device_of(&user("bob"), &both, 3_000_000).is_some());
        assert_eq!(marks.device_of(&user("alice"), &both, 3_000_000), Some(device.clone()));
        let again = marks.issue(&user("alice"), Some(&both), 4_000_000);
        assert_eq!(marks.device_of(&user("alice"), &again, 4_000_000), Some(device));
        assert_eq!(again.split('~').count(), 2);
    }

    #[test]
    fn a_client_without_a_mark_is_its_address_digest() {
        let marks = marks_under(1);
        let source = marks.source(&user("alice"), Some("garbage~d1.x.y.z"), "203.0.113.7", 0);
        let PasswordSource::Address(digest) = source else { panic!("an address") };
        assert!(!digest.contains("203"), "the address is not kept");
        assert_eq!(digest, marks.address_digest("203.0.113.7"));
        assert_ne!(digest, marks.address_digest("203.0.113.8"));
        assert_ne!(digest, marks_under(2).address_digest("203.0.113.7"), "keyed");
    }

    #[test]
    fn a_cookie_keeps_a_few_marks() {
        let marks = marks_under(1);
        let mut cookie: Option<String> = None;
        for n in 0..10 {
            cookie = Some(marks.issue(&user(&format!("u{n}")), cookie.as_deref(), 1_000_000));
        }
        let cookie = cookie.unwrap_or_default();
        assert_eq!(cookie.split('~').count(), MAX_MARKS);
        assert!(marks.device_of(&user("u9"), &cookie, 1_000_000).is_some(), "the newest is kept");
        assert!(marks.device_of(&user("u0"), &cookie, 1_000_000).is_none(), "the oldest is dropped");
    }
}
