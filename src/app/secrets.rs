//! The key that seals the credentials store (operators' commands): a new key
//! file, and a rotation onto a new key.

use std::path::Path;
use std::sync::Arc;

use super::AppError;
use super::ledger::LedgerOptions;
use crate::clock::SystemClock;
use crate::store::Store;
use crate::store::keyring::Keyring;

/// What a rotation did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    /// The id of the key that seals from now on.
    pub key: String,
    /// The ids of the keys the new file also holds (to open what is not yet sealed anew).
    pub kept: Vec<String>,
    /// How many secrets were sealed under the new key.
    pub resealed: u64,
}

/// Creates a key file at `path` (never overwriting one); returns its key id.
pub fn new_key(path: &Path) -> Result<String, AppError> {
    let keyring = Keyring::create(path, None).map_err(crate::store::StoreError::from)?;
    Ok(keyring.current_id())
}

/// Seals the rows an older version stored in the clear (the operator's
/// `authledger secrets seal`); returns how many it sealed.
pub async fn seal(options: &LedgerOptions) -> Result<u64, AppError> {
    let mut store_options = options.store.clone();
    store_options.seal_plaintext = true;
    let store = Store::open(&options.store_url, store_options, Arc::new(SystemClock)).await?;
    let sealed = store.credentials.reseal(true).await;
    store.log.close().await;
    Ok(sealed?)
}

/// Opens the store of `options` under its current key, and rotates onto a new
/// key written to `new_key_file` (see [`crate::store::Credentials::rotate`]).
pub async fn rotate_key(options: &LedgerOptions, new_key_file: &Path) -> Result<Rotated, AppError> {
    let store = Store::open(&options.store_url, options.store.clone(), Arc::new(SystemClock)).await?;
    let rotated = store.credentials.rotate(new_key_file).await;
    store.log.close().await;
    let (keyring, resealed) = rotated?;
    let ids = keyring.key_ids();
    Ok(Rotated { key: keyring.current_id(), kept: ids.into_iter().skip(1).collect(), resealed })
}
