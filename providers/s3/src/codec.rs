//! How the bytes of stored objects (events and snapshots) are encoded: encrypted for the
//! age recipients the environment configures (`nixops4-state-encryption`,
//! docs/state-encryption.md), else the JSON itself. Reading takes both, so a bucket written
//! plain before encryption was configured still reads.

use std::sync::OnceLock;

use nixops4_provider_sdk::{ProviderError, Result};
use nixops4_state_encryption::StateKeys;

/// The keys of this provider process, read from the environment once.
fn keys() -> Result<&'static StateKeys> {
    static KEYS: OnceLock<std::result::Result<StateKeys, String>> = OnceLock::new();
    KEYS.get_or_init(|| StateKeys::from_env().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| ProviderError::invalid_input(format!("the state's encryption keys: {e}")))
}

/// The bytes to store for a JSON document.
pub fn encode_stored(plain: Vec<u8>) -> Result<Vec<u8>> {
    let keys = keys()?;
    if !keys.encrypts() {
        return Ok(plain);
    }
    keys.seal(&plain)
        .map(|sealed| sealed.into_owned())
        .map_err(|e| ProviderError::internal(format!("encrypting the state: {e}")))
}

/// The JSON bytes of a stored object; `what` names it in errors.
pub fn decode_stored(stored: Vec<u8>, what: &str) -> Result<Vec<u8>> {
    let keys = keys()?;
    keys.open(&stored)
        .map(|plain| plain.into_owned())
        .map_err(|e| ProviderError::invalid_input(format!("cannot read {what}: {e}")))
}
