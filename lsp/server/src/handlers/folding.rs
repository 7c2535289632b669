//! `textDocument/foldingRange`: sets, lists and comments that span lines.

use lsp_types::{FoldingRange, FoldingRangeParams};

use super::Result;
use crate::document::Document;
use crate::to_proto;

pub fn folding_range(
    document: &Document,
    _: FoldingRangeParams,
) -> Result<Option<Vec<FoldingRange>>> {
    Ok(Some(
        document
            .analysis()
            .folding_ranges()
            .into_iter()
            .filter_map(|folded| to_proto::folding_range(document, folded))
            .collect(),
    ))
}
