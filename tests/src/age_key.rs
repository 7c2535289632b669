//! Age key pairs for the tests of encrypted state: a recipient to encrypt for, and an
//! identity file to decrypt with, removed with the key.

use std::path::PathBuf;

use age::secrecy::ExposeSecret;

pub struct AgeKey {
    pub recipient: String,
    pub identity_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl AgeKey {
    pub fn generate() -> AgeKey {
        let identity = age::x25519::Identity::generate();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let identity_file = dir.path().join("key.txt");
        std::fs::write(
            &identity_file,
            format!("{}\n", identity.to_string().expose_secret()),
        )
        .expect("write the identity file");
        AgeKey {
            recipient: identity.to_public().to_string(),
            identity_file,
            _dir: dir,
        }
    }
}
