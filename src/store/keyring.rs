//! The key-encryption keys that seal the `secrets` table (password hashes,
//! TOTP seeds, CA private keys) so that a copy of the database, or of a
//! backup, opens nothing without a file kept outside it.
//!
//! A key file holds one or more keys, one per line in base64 (32 bytes
//! each); blank lines and `#` comments are ignored. The first key seals; every
//! key opens (a rotation leaves the old key after the new one). A key's id is
//! the first 16 hex digits of its SHA-256: it names the key, never reveals it.
//!
//! A sealed secret reads `v1:<key id>:<base64(nonce ‖ ciphertext)>`, made with
//! XChaCha20-Poly1305 (the primitive the in-flight store uses too) over the
//! associated data `"<row id>\n<kind>"`, so a ciphertext copied to another
//! row or kind does not open.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What marks a sealed secret (and its format's version).
pub const SEALED_PREFIX: &str = "v1:";
/// The length of `v1:<key id>:`, the part of a sealed secret that names its key.
pub const SEALED_HEADER_LEN: usize = SEALED_PREFIX.len() + KEY_ID_LEN + 1;
const KEY_ID_LEN: usize = 16;
const NONCE_LEN: usize = 24;

/// Why a key file or a sealed secret could not be used.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("cannot read the secrets key file {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("cannot create the secrets key file {path}: {source}")]
    Create { path: String, source: std::io::Error },
    #[error("the secrets key file {path} can be read by others (mode {mode:04o}): run `chmod 600 {path}`")]
    Exposed { path: String, mode: u32 },
    #[error("the secrets key file {path} holds no key (expected 32 bytes in base64 per line)")]
    Empty { path: String },
    #[error("the secrets key file {path}, line {line}: not a key (expected 32 bytes in base64)")]
    Malformed { path: String, line: usize },
    #[error("a secret is sealed under key {0}, which the secrets key file does not hold")]
    UnknownKey(String),
    #[error("a sealed secret does not open (altered, or moved from another row)")]
    Corrupt,
    #[error("a stored secret is in the clear: run `authledger secrets seal` (only an older version writes such rows)")]
    Plaintext,
}

struct SecretKey {
    id: String,
    cipher: XChaCha20Poly1305,
}

impl SecretKey {
    fn new(bytes: &[u8; 32]) -> Self {
        Self { id: key_id(bytes), cipher: XChaCha20Poly1305::new(Key::from_slice(bytes)) }
    }
}

/// The id of a key: the first 16 hex digits of its SHA-256.
fn key_id(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest.iter().take(KEY_ID_LEN / 2).map(|b| format!("{b:02x}")).collect()
}

/// The keys of one key file; see the module documentation.
pub struct Keyring {
    path: PathBuf,
    /// The first seals; all open.
    keys: RwLock<Vec<SecretKey>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("path", &self.path).field("keys", &self.key_ids()).finish()
    }
}

impl Keyring {
    /// Reads the keys of the file at `path`.
    pub fn open(path: &Path) -> Result<Self, KeyringError> {
        Ok(Self { path: path.to_owned(), keys: RwLock::new(read_keys(path)?) })
    }

    /// Creates a key file at `path` holding a new random key, then `keep`'s
    /// keys (a rotation keeps the old ones to open what is not yet resealed).
    /// The file is readable by its owner only and is never overwritten.
    pub fn create(path: &Path, keep: Option<&Keyring>) -> Result<Self, KeyringError> {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        let mut lines = vec![STANDARD.encode(bytes)];
        if let Some(keep) = keep {
            lines.extend(read_lines(&keep.path)?);
        }
        let create = |source| KeyringError::Create { path: path.display().to_string(), source };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(path).map_err(create)?;
        let text = format!(
            "# authledger secrets key: the first line seals, every line opens. Keep it out of the database and its backups.\n{}\n",
            lines.join("\n")
        );
        file.write_all(text.as_bytes()).map_err(create)?;
        file.sync_all().map_err(create)?;
        Self::open(path)
    }

    /// The key file this keyring reads.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> String {
        self.keys.read().map(|keys| keys.first().map(|k| k.id.clone()).unwrap_or_default()).unwrap_or_default()
    }

    /// The ids of every key, the sealing one first.
    pub fn key_ids(&self) -> Vec<String> {
        self.keys.read().map(|keys| keys.iter().map(|k| k.id.clone()).collect()).unwrap_or_default()
    }

    /// Whether a key with id `id` is held.
    pub fn holds(&self, id: &str) -> bool {
        self.key_ids().iter().any(|k| k == id)
    }

    /// Seals `secret`, stored under row `id` as `kind`, with the current key.
    pub fn seal(&self, id: &str, kind: &str, secret: &str) -> Result<String, KeyringError> {
        let keys = self.keys.read().map_err(|_| KeyringError::Corrupt)?;
        let key = keys.first().ok_or_else(|| KeyringError::UnknownKey(String::new()))?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = associated_data(id, kind);
        let ciphertext = key
            .cipher
            .encrypt(&nonce, Payload { msg: secret.as_bytes(), aad: aad.as_bytes() })
            .map_err(|_| KeyringError::Corrupt)?;
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        Ok(format!("{SEALED_PREFIX}{}:{}", key.id, STANDARD.encode(sealed)))
    }

    /// Opens a stored secret of row `id` and `kind`. A row in the clear is
    /// refused: whoever can write to the database could plant one (a password
    /// hash of their choosing); only [`Self::open_or_plain`], for an
    /// operator's explicit `secrets seal`, reads such rows. A key id this
    /// keyring does not know makes it read its file again once (a rotation
    /// may have replaced it under a running server).
    pub fn open_secret(&self, id: &str, kind: &str, stored: &str) -> Result<String, KeyringError> {
        match sealed_key_id(stored) {
            Some(_) => self.open_or_plain(id, kind, stored),
            None => Err(KeyringError::Plaintext),
        }
    }

    /// Opens a stored secret, returning a row in the clear as it is (an
    /// older version's rows, when an operator seals them).
    pub fn open_or_plain(&self, id: &str, kind: &str, stored: &str) -> Result<String, KeyringError> {
        let Some(key_id) = sealed_key_id(stored) else {
            return Ok(stored.to_owned());
        };
        if !self.holds(key_id) {
            self.reload();
        }
        let keys = self.keys.read().map_err(|_| KeyringError::Corrupt)?;
        let key = keys.iter().find(|k| k.id == key_id).ok_or_else(|| KeyringError::UnknownKey(key_id.to_owned()))?;
        let body = STANDARD.decode(&stored[SEALED_HEADER_LEN..]).map_err(|_| KeyringError::Corrupt)?;
        if body.len() < NONCE_LEN {
            return Err(KeyringError::Corrupt);
        }
        let (nonce, ciphertext) = body.split_at(NONCE_LEN);
        let aad = associated_data(id, kind);
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ciphertext, aad: aad.as_bytes() })
            .map_err(|_| KeyringError::Corrupt)?;
        String::from_utf8(plain).map_err(|_| KeyringError::Corrupt)
    }

    fn reload(&self) {
        match read_keys(&self.path) {
            Ok(keys) => {
                if let Ok(mut held) = self.keys.write() {
                    *held = keys;
                }
            }
            Err(error) => tracing::warn!(%error, "re-reading the secrets key file failed"),
        }
    }
}

/// The key id a sealed secret names (`None`: a plaintext row).
pub fn sealed_key_id(stored: &str) -> Option<&str> {
    let rest = stored.strip_prefix(SEALED_PREFIX)?;
    let id = rest.get(..KEY_ID_LEN)?;
    (rest.as_bytes().get(KEY_ID_LEN) == Some(&b':')).then_some(id)
}

fn associated_data(id: &str, kind: &str) -> String {
    format!("{id}\n{kind}")
}

fn read_lines(path: &Path) -> Result<Vec<String>, KeyringError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| KeyringError::Read { path: path.display().to_string(), source })?;
    Ok(text.lines().filter(|l| is_key_line(l)).map(|l| l.trim().to_owned()).collect())
}

/// Refuses a key file that its group or others may read or write (as ssh
/// refuses such a private key): it opens every stored secret.
fn check_private(path: &Path) -> Result<(), KeyringError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let metadata = std::fs::metadata(path)
            .map_err(|source| KeyringError::Read { path: path.display().to_string(), source })?;
        let mode = metadata.permissions().mode() & 0o7777;
        if mode & 0o077 != 0 {
            return Err(KeyringError::Exposed { path: path.display().to_string(), mode });
        }
    }
    Ok(())
}

fn read_keys(path: &Path) -> Result<Vec<SecretKey>, KeyringError> {
    check_private(path)?;
    let text = std::fs::read_to_string(path)
        .map_err(|source| KeyringError::Read { path: path.display().to_string(), source })?;
    let mut keys = Vec::new();
    // Numbered as in the file, so a malformed line is named where an editor shows it.
    for (index, line) in text.lines().enumerate().filter(|(_, l)| is_key_line(l)) {
        let malformed = || KeyringError::Malformed { path: path.display().to_string(), line: index + 1 };
        let bytes: [u8; 32] =
            STANDARD.decode(line.trim()).map_err(|_| malformed())?.try_into().map_err(|_| malformed())?;
        keys.push(SecretKey::new(&bytes));
    }
    if keys.is_empty() {
        return Err(KeyringError::Empty { path: path.display().to_string() });
    }
    Ok(keys)
}

/// Whether a key file's line holds a key (not blank, not a `#` comment).
fn is_key_line(line: &str) -> bool {
    let line = line.trim();
    !line.is_empty() && !line.starts_with('#')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring(dir: &tempfile::TempDir, name: &str, keep: Option<&Keyring>) -> Keyring {
        Keyring::create(&dir.path().join(name), keep).unwrap()
    }

    #[test]
    fn a_sealed_secret_opens_only_in_its_row_and_kind() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = ring(&dir, "k", None);
        let sealed = keyring.seal("row-1", "password", "$argon2id$v=19$...").unwrap();
        assert!(sealed.starts_with(&format!("v1:{}:", keyring.current_id())));
        assert!(!sealed.contains("argon2"));
        assert_eq!(keyring.open_secret("row-1", "password", &sealed).unwrap(), "$argon2id$v=19$...");
        assert!(matches!(keyring.open_secret("row-2", "password", &sealed), Err(KeyringError::Corrupt)));
        assert!(matches!(keyring.open_secret("row-1", "totp", &sealed), Err(KeyringError::Corrupt)));
        // Two seals of one secret differ (a fresh nonce each).
        assert_ne!(sealed, keyring.seal("row-1", "password", "$argon2id$v=19$...").unwrap());
        // A row in the clear is refused, except when an operator seals such rows.
        assert!(matches!(keyring.open_secret("row-1", "password", "JBSWY3DPEHPK3PXP"), Err(KeyringError::Plaintext)));
        assert_eq!(keyring.open_or_plain("row-1", "password", "JBSWY3DPEHPK3PXP").unwrap(), "JBSWY3DPEHPK3PXP");
    }

    #[test]
    fn another_key_does_not_open_and_a_rotated_file_keeps_the_old_key() {
        let dir = tempfile::tempdir().unwrap();
        let old = ring(&dir, "old", None);
        let other = ring(&dir, "other", None);
        let sealed = old.seal("r", "k", "s").unwrap();
        assert!(
            matches!(other.open_secret("r", "k", &sealed), Err(KeyringError::UnknownKey(id)) if id == old.current_id())
        );
        let new = ring(&dir, "new", Some(&old));
        assert_eq!(new.key_ids(), vec![new.current_id(), old.current_id()]);
        assert_ne!(new.current_id(), old.current_id());
        assert_eq!(new.open_secret("r", "k", &sealed).unwrap(), "s");
        assert!(new.seal("r", "k", "s").unwrap().contains(&new.current_id()));
    }

    #[test]
    fn a_key_file_is_private_never_overwritten_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let keyring = Keyring::create(&path, None).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert!(matches!(Keyring::create(&path, None), Err(KeyringError::Create { .. })));
        assert_eq!(Keyring::open(&path).unwrap().current_id(), keyring.current_id());
        let private = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            }
            path
        };
        assert!(matches!(
            Keyring::open(&private("bad", "not base64!\n")),
            Err(KeyringError::Malformed { line: 1, .. })
        ));
        assert!(matches!(Keyring::open(&private("empty", "# nothing\n")), Err(KeyringError::Empty { .. })));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(Keyring::open(&path), Err(KeyringError::Exposed { mode: 0o640, .. })));
        }
    }

    #[test]
    fn a_running_keyring_picks_up_a_replaced_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let running = Keyring::create(&path, None).unwrap();
        let rotated = ring(&dir, "k.new", Some(&running));
        let sealed = rotated.seal("r", "k", "s").unwrap();
        std::fs::rename(rotated.path(), &path).unwrap();
        assert_eq!(running.open_secret("r", "k", &sealed).unwrap(), "s");
        assert_eq!(running.current_id(), rotated.current_id());
    }

    #[test]
    fn the_sealed_prefix_names_the_key() {
        assert_eq!(sealed_key_id("v1:0123456789abcdef:AAAA"), Some("0123456789abcdef"));
        assert_eq!(sealed_key_id("v1:0123"), None);
        assert_eq!(sealed_key_id("$argon2id$v=19"), None);
        assert_eq!("v1:0123456789abcdef:".len(), SEALED_HEADER_LEN);
    }
}
