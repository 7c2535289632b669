//! Paths named by inputs, and making changes to directories durable.

use std::fs::File;
use std::path::{Path, PathBuf};

use nixops4_provider_sdk::protocol::InputPath;
use nixops4_provider_sdk::{ErrorContext, ProviderError, Result};

/// The absolute form of the `name` input: relative names are relative to the provider's
/// working directory. Symbolic links are kept as they are.
pub fn absolute(name: &str) -> Result<PathBuf> {
    let at_name =
        |message: String| ProviderError::invalid_input(message).at(InputPath::key("name"));
    if name.is_empty() {
        return Err(at_name("`name` must not be empty".into()));
    }
    let path = std::path::absolute(name).context(format!("resolving path {name:?}"))?;
    if path.file_name().is_none() {
        return Err(at_name(format!("`name` {name:?} does not name a file")));
    }
    Ok(path)
}

/// A path as an output value.
pub fn path_string(path: &Path) -> Result<String> {
    path.to_str().map(str::to_owned).ok_or_else(|| {
        ProviderError::invalid_input(format!("path {} is not valid UTF-8", path.display()))
    })
}

/// Makes a creation, rename or removal in `path`'s directory durable.
pub fn sync_parent(path: &Path) -> Result<()> {
    let parent = path.parent().unwrap_or(Path::new("/"));
    File::open(parent)
        .and_then(|dir| dir.sync_all())
        .context(format!("syncing directory {}", parent.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_are_not_files_are_refused() {
        assert!(absolute("").is_err());
        assert!(absolute("/").is_err());
        assert!(absolute("a/..").is_err());
        assert!(absolute("a/b").unwrap().is_absolute());
    }
}
