//! How the bytes of stored objects (events and snapshots) are encoded: the one place
//! where encryption at rest plugs in. Today the stored form is the JSON itself.

use nixops4_provider_sdk::Result;

/// The bytes to store for a JSON document.
pub fn encode_stored(plain: Vec<u8>) -> Result<Vec<u8>> {
    Ok(plain)
}

/// The JSON bytes of a stored object.
pub fn decode_stored(stored: Vec<u8>) -> Result<Vec<u8>> {
    Ok(stored)
}
