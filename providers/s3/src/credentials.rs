//! Where the S3 credentials come from: the environment (`AWS_ACCESS_KEY_ID`,
//! `AWS_SECRET_ACCESS_KEY`, optionally `AWS_SESSION_TOKEN`), else a credentials file in the
//! AWS format (`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`), profile
//! `AWS_PROFILE` or `default`. Never from the deployment's inputs, so never in the Nix
//! store.

use std::path::PathBuf;

use nixops4_provider_sdk::{ProviderError, Result};

use crate::sigv4::Credentials;

pub fn find() -> Result<Credentials> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let (Some(access_key_id), Some(secret_access_key)) =
        (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"))
    {
        return Ok(Credentials {
            access_key_id,
            secret_access_key,
            session_token: var("AWS_SESSION_TOKEN"),
        });
    }
    let file = var("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".aws/credentials")));
    let profile = var("AWS_PROFILE").unwrap_or_else(|| "default".to_owned());
    let missing = || {
        ProviderError::invalid_input(format!(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write profile `{profile}` into {} (AWS_SHARED_CREDENTIALS_FILE)",
            file.as_ref()
                .map_or("~/.aws/credentials".to_owned(), |f| f.display().to_string())
        ))
    };
    let Some(path) = &file else {
        return Err(missing());
    };
    let Ok(text) = std::fs::read_to_string(path) else {
        return Err(missing());
    };
    from_ini(&text, &profile).ok_or_else(missing)
}

/// Reads one profile of an AWS credentials file.
fn from_ini(text: &str, profile: &str) -> Option<Credentials> {
    let mut in_profile = false;
    let (mut id, mut secret, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            in_profile = section.trim() == profile;
            continue;
        }
        if !in_profile {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            let value = Some(value.trim().to_owned());
            match key.trim() {
                "aws_access_key_id" => id = value,
                "aws_secret_access_key" => secret = value,
                "aws_session_token" => token = value,
                _ => {}
            }
        }
    }
    Some(Credentials {
        access_key_id: id?,
        secret_access_key: secret?,
        session_token: token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_named_profile_only() {
        let text = "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\n# note\n[ops]\naws_access_key_id=C\naws_secret_access_key=D\naws_session_token=E\n";
        let ops = from_ini(text, "ops").unwrap();
        assert_eq!(
            (ops.access_key_id.as_str(), ops.secret_access_key.as_str()),
            ("C", "D")
        );
        assert_eq!(ops.session_token.as_deref(), Some("E"));
        assert_eq!(from_ini(text, "default").unwrap().access_key_id, "A");
        assert!(from_ini(text, "other").is_none());
    }
}
