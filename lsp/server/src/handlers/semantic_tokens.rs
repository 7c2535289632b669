//! `textDocument/semanticTokens/full`: resource declarations and references, outputs,
//! types and inputs (the legend is [`crate::to_proto::semantic_tokens_legend`]).

use lsp_types::{SemanticTokensParams, SemanticTokensResult};

use super::Result;
use crate::snapshot::Snapshot;
use crate::to_proto;

pub fn semantic_tokens_full(
    snap: Snapshot,
    params: SemanticTokensParams,
) -> Result<Option<SemanticTokensResult>> {
    let Some(document) = snap.document(&params.text_document.uri) else {
        return Ok(None);
    };
    let tokens = to_proto::semantic_tokens(document, document.analysis().semantic_tokens());
    Ok(Some(SemanticTokensResult::Tokens(tokens)))
}
