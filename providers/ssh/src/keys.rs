//! Files for the machine that must not go through the Nix store (colmena's
//! `deployment.keys`): each is sent over SSH on standard input and written with its owner
//! and mode before it gets its name, so no other user can read it at any moment.
//!
//! A key's text may be a secret; it appears in no command line, error or log.

use std::collections::BTreeMap;

use nixops4_provider_sdk::protocol::{InputPath, PathSegment};
use nixops4_provider_sdk::{ProviderError, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::session::{Session, tail};

/// One file to upload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Key {
    /// The file's contents, such as another resource's secret output.
    pub text: String,
    /// The directory the file goes in.
    #[serde(default = "default_dest_dir")]
    pub dest_dir: String,
    /// The file's owner.
    #[serde(default = "root")]
    pub user: String,
    /// The file's group.
    #[serde(default = "root")]
    pub group: String,
    /// The file's mode, in octal.
    #[serde(default = "default_permissions")]
    pub permissions: String,
}

fn default_dest_dir() -> String {
    "/run/keys".to_owned()
}

fn root() -> String {
    "root".to_owned()
}

fn default_permissions() -> String {
    "0600".to_owned()
}

/// Checks names and fields before anything is sent.
pub fn check(keys: &BTreeMap<String, Key>) -> Result<()> {
    for (name, key) in keys {
        let at = |field: &str| {
            InputPath::key("keys")
                .join(PathSegment::Key(name.clone()))
                .join(PathSegment::Key(field.to_owned()))
        };
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(ProviderError::invalid_input(format!(
                "key name `{name}` must be a plain file name (no `/`, not starting with `.`)"
            ))
            .at(InputPath::key("keys").join(PathSegment::Key(name.clone()))));
        }
        if !key.dest_dir.starts_with('/') {
            return Err(ProviderError::invalid_input(format!(
                "destDir of key `{name}` must be an absolute path, not `{}`",
                key.dest_dir
            ))
            .at(at("destDir")));
        }
        let mode_ok = (3..=4).contains(&key.permissions.len())
            && key.permissions.chars().all(|c| ('0'..='7').contains(&c));
        if !mode_ok {
            return Err(ProviderError::invalid_input(format!(
                "permissions of key `{name}` must be an octal mode like \"0600\", not `{}`",
                key.permissions
            ))
            .at(at("permissions")));
        }
    }
    Ok(())
}

/// Uploads every key in `keys`, and removes those of `removed`.
pub fn upload(
    session: &Session,
    keys: &BTreeMap<String, Key>,
    removed: &BTreeMap<String, Key>,
) -> Result<()> {
    let write = r#"set -e
dir=$1 name=$2 owner=$3 group=$4 mode=$5
mkdir -p "$dir"
tmp="$dir/.$name.nixops4-tmp"
rm -f "$tmp"
(umask 077; : >"$tmp")
chown "$owner:$group" "$tmp"
chmod "$mode" "$tmp"
cat >"$tmp"
mv -f "$tmp" "$dir/$name""#;
    for (name, key) in keys {
        let output = session.run(
            write,
            &[&key.dest_dir, name, &key.user, &key.group, &key.permissions],
            key.text.as_bytes(),
        )?;
        if !output.status.success() {
            return Err(ProviderError::invalid_input(format!(
                "uploading key `{name}` to {}/{name} on {} failed: {}",
                key.dest_dir,
                session.address(),
                tail(&String::from_utf8_lossy(&output.stderr), 3)
            ))
            .at(InputPath::key("keys").join(PathSegment::Key(name.clone()))));
        }
    }
    for (name, key) in removed.iter().filter(|(name, _)| !keys.contains_key(*name)) {
        session.run(r#"rm -f "$1/$2""#, &[&key.dest_dir, name], b"")?;
    }
    Ok(())
}
