//! `textDocument/hover`: a type's, input's or output's documentation from its provider's
//! schema, and on a reference (also to a resource another module file declares) the value
//! the state last recorded (secrets never shown); elsewhere, in a trusted workspace, a
//! module option's declaration (as the deployment's latest plan listed it).

use lsp_types::{Hover, HoverParams};
use nixops4_analysis::Analysis;

use super::Result;
use crate::from_proto;
use crate::snapshot::Snapshot;
use crate::to_proto;

pub fn hover(snap: Snapshot, params: HoverParams) -> Result<Option<Hover>> {
    let at = params.text_document_position_params;
    let Some(context) = snap.context(&at.text_document.uri) else {
        return Ok(None);
    };
    let document = &context.document;
    let recorded = snap
        .project()
        .recorded(document.analysis(), context.flake_dir.as_deref());
    let offset = from_proto::offset(document, at.position);
    let files = snap.other_analyses(&at.text_document.uri);
    let others: Vec<&Analysis> = files.iter().map(AsRef::as_ref).collect();
    let analysis = document.analysis();
    let info = analysis
        .hover(offset, &context.schemas, &recorded, &others)
        .or_else(|| {
            let options = snap.module_options(&at.text_document.uri);
            analysis.option_hover(offset, &options)
        });
    Ok(info.map(|info| to_proto::hover(document, info)))
}
