//! `textDocument/references`: every place a resource (or one of its outputs) is named, in
//! every file of the deployment.

use lsp_types::{Location, ReferenceParams};
use nixops4_analysis::workspace::{self, File};

use super::Result;
use crate::document::Document;
use crate::snapshot::Snapshot;
use crate::{from_proto, to_proto};

pub fn references(snap: Snapshot, params: ReferenceParams) -> Result<Option<Vec<Location>>> {
    let at = params.text_document_position;
    let uri = at.text_document.uri;
    let files = snap.deployment_files(&uri);
    let Some((_, document)) = files.first() else {
        return Ok(None);
    };
    let offset = from_proto::offset(document, at.position);
    let found = workspace::references(
        &views(&files),
        uri.as_str(),
        offset,
        params.context.include_declaration,
    );
    Ok(Some(to_proto::locations(&files, found)))
}

/// The deployment's files as the analysis takes them.
pub fn views(files: &[(String, Document)]) -> Vec<File<'_>> {
    files
        .iter()
        .map(|(id, document)| File {
            id,
            analysis: document.analysis(),
        })
        .collect()
}
