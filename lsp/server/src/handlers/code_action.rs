//! `textDocument/codeAction`: the quick fixes of the diagnostics in the range, and for the
//! resource named under the cursor (trusted workspaces) apply it, destroy it, and run its
//! operations.

use lsp_types::{CodeActionOrCommand, CodeActionParams, CodeActionResponse, Uri};
use nixops4_analysis::{Schemas, TextSize};
use nixops4_core::ResourcePath;
use serde_json::json;

use super::Result;
use crate::document::Document;
use crate::lsp_ext::Command;
use crate::snapshot::Snapshot;
use crate::{diagnostics, from_proto, to_proto};

pub fn code_action(snap: Snapshot, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
    let uri = params.text_document.uri;
    let Some(context) = snap.context(&uri) else {
        return Ok(None);
    };
    let document = &context.document;
    let wanted = from_proto::text_range(document, params.range);
    let mut actions: Vec<CodeActionOrCommand> = diagnostics::analysis(&snap, &uri, &context)
        .into_iter()
        .filter(|found| found.range.intersect(wanted).is_some())
        .filter_map(|found| to_proto::quick_fix(&uri, document, &found))
        .map(CodeActionOrCommand::CodeAction)
        .collect();
    if snap.project().trusted() {
        actions.extend(resource_actions(
            &uri,
            document,
            wanted.start(),
            &context.schemas,
        ));
    }
    Ok(Some(actions))
}

/// Actions for the resource named at `offset`: apply it, destroy it, run its operations.
fn resource_actions(
    uri: &Uri,
    document: &Document,
    offset: TextSize,
    schemas: &Schemas,
) -> Vec<CodeActionOrCommand> {
    let Some(resource) = document.analysis().resource_named_at(offset) else {
        return Vec::new();
    };
    let shown = ResourcePath(resource.path.clone()).to_string();
    let action = |title: String, command: Command, operation: Option<&str>| {
        let mut argument = json!({"uri": uri.as_str(), "targets": [resource.path]});
        if let Some(operation) = operation {
            argument["operation"] = json!(operation);
        }
        CodeActionOrCommand::Command(to_proto::command(title, command, argument))
    };
    let mut actions = vec![
        action(
            format!("Apply {shown} (and what it depends on)"),
            Command::Apply,
            None,
        ),
        action(
            format!("Destroy {shown} (and what depends on it)"),
            Command::Destroy,
            None,
        ),
    ];
    for operation in document.analysis().operations(&resource, schemas).keys() {
        actions.push(action(
            format!("Run `{operation}` on {shown}"),
            Command::RunOperation,
            Some(operation),
        ));
    }
    actions
}
