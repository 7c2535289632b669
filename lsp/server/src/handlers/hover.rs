//! `textDocument/hover`: a type's, input's or output's documentation from its provider's
//! schema, and on a reference the value the state last recorded (secrets never shown).

use lsp_types::{Hover, HoverParams};

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
    Ok(document
        .analysis()
        .hover(offset, &context.schemas, &recorded)
        .map(|info| to_proto::hover(document, info)))
}
