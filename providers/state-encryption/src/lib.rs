//! Encryption at rest of deployment state, for age recipients: the bytes of one stored
//! event or object, sealed and opened. State storage providers call it; the engine never
//! sees ciphertext.
//!
//! Keys live outside the deployment expression, in the environment the provider inherits
//! (docs/state-encryption.md):
//! - `NIXOPS4_STATE_RECIPIENTS`: age recipients (`age1…`), separated by spaces or commas;
//! - `NIXOPS4_STATE_RECIPIENTS_FILE`: a file of recipients, one a line, `#` comments;
//! - `NIXOPS4_STATE_IDENTITY_FILE`: an age identity file (`AGE-SECRET-KEY-1…` lines).
//!
//! With recipients configured, what is written is encrypted for all of them; without,
//! it is written plain. Reading takes either: plain bytes pass through, encrypted ones
//! need an identity that matches one of their recipients. So plain state keeps reading,
//! a store may mix plain and encrypted events, and keys are rotated by adding the new
//! recipients, re-encrypting ([`StateKeys::reseal`]), then dropping the old ones.
//!
//! Only native X25519 age keys: no plugins, SSH keys or passphrases (lean features).
//! Errors never hold key material; callers add where the bytes are stored.

use std::borrow::Cow;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use age::armor::{ArmoredReader, ArmoredWriter, Format};
use age::x25519;

pub const RECIPIENTS_VAR: &str = "NIXOPS4_STATE_RECIPIENTS";
pub const RECIPIENTS_FILE_VAR: &str = "NIXOPS4_STATE_RECIPIENTS_FILE";
pub const IDENTITY_FILE_VAR: &str = "NIXOPS4_STATE_IDENTITY_FILE";

/// How an age file starts, in binary form and in ASCII armor.
const BINARY_MAGIC: &[u8] = b"age-encryption.org/v1\n";
const ARMOR_BEGIN: &[u8] = b"-----BEGIN AGE ENCRYPTED FILE-----";

/// The keys state is written for and read with.
#[derive(Default)]
pub struct StateKeys {
    recipients: Vec<x25519::Recipient>,
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
    /// Where the identities came from, for errors.
    identity_file: Option<PathBuf>,
}

/// Why bytes could not be sealed or opened, or keys not loaded. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// A recipient or identity could not be read.
    Config(String),
    /// The bytes are encrypted and no identity is configured.
    NoIdentity,
    /// None of the configured identities is one of the bytes' recipients.
    WrongKey { identity_file: String },
    /// The bytes claim to be age-encrypted but are damaged.
    Corrupt(String),
    /// Encrypting failed.
    Encrypt(String),
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyError::Config(message) => f.write_str(message),
            KeyError::NoIdentity => write!(
                f,
                "it is encrypted and no identity is configured: set {IDENTITY_FILE_VAR} to an age identity file"
            ),
            KeyError::WrongKey { identity_file } => write!(
                f,
                "it is encrypted for other keys: no identity in {identity_file} ({IDENTITY_FILE_VAR}) can decrypt it"
            ),
            KeyError::Corrupt(why) => write!(f, "its encryption is damaged: {why}"),
            KeyError::Encrypt(why) => write!(f, "encrypting failed: {why}"),
        }
    }
}

impl std::error::Error for KeyError {}

/// Counts only: identities are secret.
impl fmt::Debug for StateKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateKeys")
            .field("recipients", &self.recipients.len())
            .field("identities", &self.identities.len())
            .finish()
    }
}

/// Whether stored bytes are age-encrypted (binary or armored), as opposed to plain.
pub fn is_encrypted(bytes: &[u8]) -> bool {
    let start = bytes.trim_ascii_start();
    start.starts_with(BINARY_MAGIC) || start.starts_with(ARMOR_BEGIN)
}

impl StateKeys {
    /// The keys the environment configures; none configured means plain state.
    pub fn from_env() -> Result<StateKeys, KeyError> {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        let recipients =
            match var(RECIPIENTS_VAR) {
                Some(value) => Some(value.into_string().map_err(|_| {
                    KeyError::Config(format!("{RECIPIENTS_VAR} is not valid UTF-8"))
                })?),
                None => None,
            };
        StateKeys::load(
            recipients.as_deref(),
            var(RECIPIENTS_FILE_VAR).map(PathBuf::from).as_deref(),
            var(IDENTITY_FILE_VAR).map(PathBuf::from).as_deref(),
        )
    }

    /// Keys from recipients written out, a recipients file and an identity file.
    pub fn load(
        recipients: Option<&str>,
        recipients_file: Option<&Path>,
        identity_file: Option<&Path>,
    ) -> Result<StateKeys, KeyError> {
        let mut keys = StateKeys::default();
        if let Some(text) = recipients {
            for word in text.split([',', ' ', '\t', '\n']).filter(|w| !w.is_empty()) {
                keys.recipients.push(
                    parse_recipient(word)
                        .map_err(|why| KeyError::Config(format!("{RECIPIENTS_VAR}: {why}")))?,
                );
            }
        }
        if let Some(path) = recipients_file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                KeyError::Config(format!(
                    "cannot read recipients file {} ({RECIPIENTS_FILE_VAR}): {e}",
                    path.display()
                ))
            })?;
            for (number, line) in text.lines().enumerate() {
                let line = line.trim();
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                keys.recipients.push(parse_recipient(line).map_err(|why| {
                    KeyError::Config(format!(
                        "recipients file {}, line {}: {why}",
                        path.display(),
                        number + 1
                    ))
                })?);
            }
        }
        if let Some(path) = identity_file {
            let file = age::IdentityFile::from_file(path.display().to_string()).map_err(|e| {
                KeyError::Config(format!(
                    "cannot read identity file {} ({IDENTITY_FILE_VAR}): {e}",
                    path.display()
                ))
            })?;
            keys.identities = file
                .into_identities()
                .map_err(|e| KeyError::Config(format!("identity file {}: {e}", path.display())))?;
            keys.identity_file = Some(path.to_owned());
        }
        Ok(keys)
    }

    /// Whether what is written now is encrypted.
    pub fn encrypts(&self) -> bool {
        !self.recipients.is_empty()
    }

    /// Bytes to store: encrypted (binary age) for the recipients, or the plain bytes
    /// when none are configured.
    pub fn seal<'a>(&self, plain: &'a [u8]) -> Result<Cow<'a, [u8]>, KeyError> {
        if !self.encrypts() {
            return Ok(Cow::Borrowed(plain));
        }
        self.encrypt(plain, Format::Binary).map(Cow::Owned)
    }

    /// Like [`StateKeys::seal`], as text (ASCII-armored age) for stores of text lines.
    pub fn seal_text<'a>(&self, plain: &'a str) -> Result<Cow<'a, str>, KeyError> {
        if !self.encrypts() {
            return Ok(Cow::Borrowed(plain));
        }
        let armored = self.encrypt(plain.as_bytes(), Format::AsciiArmor)?;
        String::from_utf8(armored)
            .map(Cow::Owned)
            .map_err(|_| KeyError::Encrypt("armor is not text".into()))
    }

    /// The plain bytes of stored ones: plain bytes as they are, encrypted ones (binary or
    /// armored) decrypted with the identities.
    pub fn open<'a>(&self, stored: &'a [u8]) -> Result<Cow<'a, [u8]>, KeyError> {
        if !is_encrypted(stored) {
            return Ok(Cow::Borrowed(stored));
        }
        if self.identities.is_empty() {
            return Err(KeyError::NoIdentity);
        }
        let decryptor = age::Decryptor::new_buffered(ArmoredReader::new(stored.trim_ascii()))
            .map_err(|e| KeyError::Corrupt(e.to_string()))?;
        let mut reader = decryptor
            .decrypt(
                self.identities
                    .iter()
                    .map(|i| i.as_ref() as &dyn age::Identity),
            )
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => KeyError::WrongKey {
                    identity_file: self
                        .identity_file
                        .as_ref()
                        .map_or_else(String::new, |p| p.display().to_string()),
                },
                other => KeyError::Corrupt(other.to_string()),
            })?;
        let mut plain = Vec::new();
        reader
            .read_to_end(&mut plain)
            .map_err(|e| KeyError::Corrupt(e.to_string()))?;
        Ok(Cow::Owned(plain))
    }

    /// Stored bytes made anew for the configured recipients (plain when there are none):
    /// the step of a key rotation. Needs an identity for what is encrypted now.
    pub fn reseal(&self, stored: &[u8]) -> Result<Vec<u8>, KeyError> {
        let plain = self.open(stored)?;
        Ok(self.seal(&plain)?.into_owned())
    }

    fn encrypt(&self, plain: &[u8], format: Format) -> Result<Vec<u8>, KeyError> {
        let failed = |e: &dyn fmt::Display| KeyError::Encrypt(e.to_string());
        let encryptor = age::Encryptor::with_recipients(
            self.recipients.iter().map(|r| r as &dyn age::Recipient),
        )
        .map_err(|e| failed(&e))?;
        let mut sealed = Vec::with_capacity(plain.len() + 256);
        let armor = ArmoredWriter::wrap_output(&mut sealed, format).map_err(|e| failed(&e))?;
        let mut writer = encryptor.wrap_output(armor).map_err(|e| failed(&e))?;
        writer.write_all(plain).map_err(|e| failed(&e))?;
        writer
            .finish()
            .and_then(|armor| armor.finish())
            .map_err(|e| failed(&e))?;
        Ok(sealed)
    }
}

fn parse_recipient(text: &str) -> Result<x25519::Recipient, String> {
    text.parse().map_err(|_| {
        // Show a short start only: a pasted secret key must not end up in an error.
        let start: String = text.chars().take(8).collect();
        format!("`{start}…` is not an age X25519 recipient (age1…)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    struct Pair {
        recipient: String,
        identity_file: tempfile::NamedTempFile,
    }

    fn pair() -> Pair {
        let identity = x25519::Identity::generate();
        let mut identity_file = tempfile::NamedTempFile::new().unwrap();
        writeln!(identity_file, "# test key").unwrap();
        writeln!(identity_file, "{}", identity.to_string().expose_secret()).unwrap();
        Pair {
            recipient: identity.to_public().to_string(),
            identity_file,
        }
    }

    fn keys(recipients: &[&Pair], identity: Option<&Pair>) -> StateKeys {
        let list: Vec<&str> = recipients.iter().map(|p| p.recipient.as_str()).collect();
        StateKeys::load(
            Some(&list.join(",")),
            None,
            identity.map(|p| p.identity_file.path()),
        )
        .unwrap()
    }

    #[test]
    fn sealed_bytes_hide_the_plain_ones_and_open_again() {
        let a = pair();
        let keys = keys(&[&a], Some(&a));
        let plain = br#"{"token":"canary-0123456789"}"#;
        let sealed = keys.seal(plain).unwrap();
        assert!(is_encrypted(&sealed));
        assert!(!sealed.windows(6).any(|w| w == b"canary"));
        assert_eq!(keys.open(&sealed).unwrap().as_ref(), plain);

        let text = keys.seal_text("canary-0123456789").unwrap();
        assert!(text.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        assert!(!text.contains("canary"));
        assert_eq!(
            keys.open(text.as_bytes()).unwrap().as_ref(),
            b"canary-0123456789"
        );
    }

    #[test]
    fn plain_bytes_pass_through_and_are_written_plain_without_recipients() {
        let plain = StateKeys::default();
        assert!(!plain.encrypts());
        assert_eq!(plain.seal(b"{}").unwrap().as_ref(), b"{}");
        assert_eq!(plain.open(b"{\"a\":1}").unwrap().as_ref(), b"{\"a\":1}");
        assert!(!is_encrypted(b"{\"age\":1}"));
    }

    #[test]
    fn a_wrong_or_missing_identity_is_a_clear_error() {
        let (a, b) = (pair(), pair());
        let sealed = keys(&[&a], None).seal(b"secret").unwrap().into_owned();
        assert_eq!(
            keys(&[], None).open(&sealed).unwrap_err(),
            KeyError::NoIdentity
        );
        let wrong = keys(&[], Some(&b)).open(&sealed).unwrap_err();
        assert!(matches!(wrong, KeyError::WrongKey { .. }));
        let message = wrong.to_string();
        assert!(
            message.contains("encrypted for other keys")
                && message.contains(&b.identity_file.path().display().to_string()),
            "{message}"
        );
    }

    #[test]
    fn resealing_rotates_to_new_recipients() {
        let (old, new) = (pair(), pair());
        let sealed = keys(&[&old], None).seal(b"state").unwrap().into_owned();
        // During a rotation the identity file holds the old key; new recipients are set.
        let rotating = keys(&[&new], Some(&old));
        let resealed = rotating.reseal(&sealed).unwrap();
        assert_eq!(
            keys(&[], Some(&new)).open(&resealed).unwrap().as_ref(),
            b"state"
        );
        assert!(matches!(
            keys(&[], Some(&old)).open(&resealed).unwrap_err(),
            KeyError::WrongKey { .. }
        ));
    }

    #[test]
    fn bad_recipients_are_refused_without_echoing_them() {
        let e = StateKeys::load(Some("AGE-SECRET-KEY-1QQQQQQQQQQQQ"), None, None).unwrap_err();
        let message = e.to_string();
        assert!(message.contains("not an age X25519 recipient"), "{message}");
        assert!(!message.contains("QQQQ"), "{message}");
        let damaged = b"age-encryption.org/v1\n-> X25519 nonsense\n";
        let a = pair();
        assert!(matches!(
            keys(&[], Some(&a)).open(damaged).unwrap_err(),
            KeyError::Corrupt(_)
        ));
    }
}
