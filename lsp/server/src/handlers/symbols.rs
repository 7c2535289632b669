//! `textDocument/documentSymbol`: the resources as a tree (nested deployments hold theirs,
//! resources their inputs), and the providers.

use lsp_types::{DocumentSymbolParams, DocumentSymbolResponse};

use super::Result;
use crate::document::Document;
use crate::to_proto;

pub fn document_symbol(
    document: &Document,
    _: DocumentSymbolParams,
) -> Result<Option<DocumentSymbolResponse>> {
    let symbols = document
        .analysis()
        .symbols()
        .into_iter()
        .map(|symbol| to_proto::symbol(document, symbol))
        .collect();
    Ok(Some(DocumentSymbolResponse::Nested(symbols)))
}
