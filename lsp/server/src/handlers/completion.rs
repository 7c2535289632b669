//! `textDocument/completion`: resource types, inputs (from `describe`), schema values,
//! resource names and outputs (those of the deployment's other files too), in the
//! analysis' order; then, in a trusted workspace, the module options that can be set
//! there (as the deployment's latest plan listed them), those of a name not offered yet.

use lsp_types::{CompletionParams, CompletionResponse};
use nixops4_analysis::Analysis;

use super::Result;
use crate::from_proto;
use crate::snapshot::Snapshot;
use crate::to_proto;

pub fn completion(snap: Snapshot, params: CompletionParams) -> Result<Option<CompletionResponse>> {
    let at = params.text_document_position;
    let Some(context) = snap.context(&at.text_document.uri) else {
        return Ok(None);
    };
    let document = &context.document;
    let offset = from_proto::offset(document, at.position);
    let files = snap.other_analyses(&at.text_document.uri);
    let others: Vec<&Analysis> = files.iter().map(AsRef::as_ref).collect();
    let analysis = document.analysis();
    let mut completions = analysis.completions(offset, &context.schemas, &others);
    let options = snap.module_options(&at.text_document.uri);
    for option in analysis.option_completions(offset, &options) {
        if !completions.iter().any(|c| c.label == option.label) {
            completions.push(option);
        }
    }
    let items = completions
        .into_iter()
        .enumerate()
        .map(|(rank, completion)| to_proto::completion_item(rank, completion))
        .collect();
    Ok(Some(CompletionResponse::Array(items)))
}
