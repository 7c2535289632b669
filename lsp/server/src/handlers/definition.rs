//! `textDocument/definition`: where a referenced resource is declared, in this file or in
//! another file of the deployment.

use lsp_types::{GotoDefinitionParams, GotoDefinitionResponse};
use nixops4_analysis::workspace;

use super::Result;
use crate::snapshot::Snapshot;
use crate::{from_proto, to_proto};

pub fn definition(
    snap: Snapshot,
    params: GotoDefinitionParams,
) -> Result<Option<GotoDefinitionResponse>> {
    let at = params.text_document_position_params;
    let uri = at.text_document.uri;
    let files = snap.deployment_files(&uri);
    let Some((_, document)) = files.first() else {
        return Ok(None);
    };
    let offset = from_proto::offset(document, at.position);
    let found = workspace::definition(&super::references::views(&files), uri.as_str(), offset);
    Ok(match to_proto::locations(&files, found).as_slice() {
        [] => None,
        [one] => Some(GotoDefinitionResponse::Scalar(one.clone())),
        many => Some(GotoDefinitionResponse::Array(many.to_vec())),
    })
}
