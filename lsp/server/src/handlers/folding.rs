//! `textDocument/foldingRange`: sets, lists and comments that span lines.

use lsp_types::{FoldingRange, FoldingRangeParams};

use super::Result;
use crate::snapshot::Snapshot;
use crate::to_proto;

pub fn folding_range(
    snap: Snapshot,
    params: FoldingRangeParams,
) -> Result<Option<Vec<FoldingRange>>> {
    let Some(document) = snap.document(&params.text_document.uri) else {
        return Ok(None);
    };
    Ok(Some(
        document
            .analysis()
            .folding_ranges()
            .into_iter()
            .filter_map(|folded| to_proto::folding_range(document, folded))
            .collect(),
    ))
}
