//! `textDocument/documentSymbol`: the resources as a tree (nested deployments hold theirs,
//! resources their inputs), and the providers.

use lsp_types::{DocumentSymbolParams, DocumentSymbolResponse};

use super::Result;
use crate::snapshot::Snapshot;
use crate::to_proto;

pub fn document_symbol(
    snap: Snapshot,
    params: DocumentSymbolParams,
) -> Result<Option<DocumentSymbolResponse>> {
    let Some(document) = snap.document(&params.text_document.uri) else {
        return Ok(None);
    };
    let symbols = document
        .analysis()
        .symbols()
        .into_iter()
        .map(|symbol| to_proto::symbol(document, symbol))
        .collect();
    Ok(Some(DocumentSymbolResponse::Nested(symbols)))
}
