//! `textDocument/semanticTokens/full`: resource declarations and references, outputs,
//! types and inputs (the legend is [`crate::to_proto::semantic_tokens_legend`]).

use lsp_types::{SemanticTokensParams, SemanticTokensResult};

use super::Result;
use crate::document::Document;
use crate::to_proto;

pub fn semantic_tokens_full(
    document: &Document,
    _: SemanticTokensParams,
) -> Result<Option<SemanticTokensResult>> {
    let tokens = to_proto::semantic_tokens(document, document.analysis().semantic_tokens());
    Ok(Some(SemanticTokensResult::Tokens(tokens)))
}
