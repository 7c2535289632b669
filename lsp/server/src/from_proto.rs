//! Conversions from LSP types to the analysis' and the file system's: `file:` URIs to
//! paths, UTF-16 positions and ranges to byte offsets (through the document's line index).

use std::path::PathBuf;

use lsp_types::{Position, Range, Uri};
use nixops4_analysis::{TextRange, TextSize};

use crate::document::Document;

/// The path a `file:` URI names; `None` for other schemes, hosts other than this one, and
/// paths that are not absolute.
pub fn file_path(uri: &Uri) -> Option<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    if !uri.scheme()?.as_str().eq_ignore_ascii_case("file") {
        return None;
    }
    let host = uri.authority().map(|a| a.host().as_str()).unwrap_or("");
    if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
        return None;
    }
    let bytes = uri.path().as_estr().decode().into_bytes();
    let path = PathBuf::from(std::ffi::OsStr::from_bytes(&bytes));
    path.is_absolute().then_some(path)
}

pub fn offset(document: &Document, position: Position) -> TextSize {
    TextSize::from(document.offset(position) as u32)
}

/// A range, its end never before its start.
pub fn text_range(document: &Document, range: Range) -> TextRange {
    let start = offset(document, range.start);
    TextRange::new(start, offset(document, range.end).max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_become_paths() {
        let path = |uri: &str| file_path(&uri.parse().unwrap());
        assert_eq!(
            path("file:///work/a%20b/%C3%A9.nix"),
            Some(PathBuf::from("/work/a b/é.nix"))
        );
        assert_eq!(
            path("file://localhost/f.nix"),
            Some(PathBuf::from("/f.nix"))
        );
        assert_eq!(path("untitled:Untitled-1"), None);
        assert_eq!(path("file://elsewhere/f.nix"), None);
    }
}
