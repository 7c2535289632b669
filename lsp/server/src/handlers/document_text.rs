//! `nixops4/documentText`: the server's copy of a document, for clients and tests that
//! check that no edit was lost or misapplied.

use super::Result;
use crate::lsp_ext::{DocumentText, DocumentTextParams};
use crate::snapshot::Snapshot;

pub fn document_text(snap: Snapshot, params: DocumentTextParams) -> Result<Option<DocumentText>> {
    Ok(snap.document(&params.uri).map(|document| DocumentText {
        version: document.version(),
        text: document.text().to_owned(),
        analysed: document.lines_match_text(),
    }))
}
