//! `textDocument/prepareRename` and `textDocument/rename` of resources, across the
//! deployment's files; when the state records the renamed resource, the offer to move its
//! record too (or, untrusted, the command that does).

use lsp_types::{
    MessageType, PrepareRenameResponse, RenameParams, TextDocumentPositionParams, WorkspaceEdit,
};
use nixops4_analysis::workspace;
use nixops4_core::ResourcePath;
use nixops4_core::engine::{Engine, EngineOptions};

use super::{Result, invalid_params};
use crate::snapshot::{Context, Snapshot};
use crate::{from_proto, to_proto};

pub fn prepare_rename(
    snap: Snapshot,
    params: TextDocumentPositionParams,
) -> Result<Option<PrepareRenameResponse>> {
    let Some(document) = snap.document(&params.text_document.uri) else {
        return Ok(None);
    };
    let offset = from_proto::offset(document, params.position);
    let (range, name) =
        workspace::prepare_rename(document.analysis(), offset).map_err(invalid_params)?;
    Ok(Some(PrepareRenameResponse::RangeWithPlaceholder {
        range: to_proto::range(document, range),
        placeholder: name,
    }))
}

pub fn rename(snap: Snapshot, params: RenameParams) -> Result<Option<WorkspaceEdit>> {
    let at = params.text_document_position;
    let uri = at.text_document.uri;
    let files = snap.deployment_files(&uri);
    let Some(context) = snap.context(&uri) else {
        return Ok(None);
    };
    let offset = from_proto::offset(&context.document, at.position);
    let views = super::references::views(&files);
    let rename = workspace::rename(&views, uri.as_str(), offset, &params.new_name)
        .map_err(invalid_params)?;
    offer_state_move(&snap, &context, rename.old_path, rename.new_path);
    Ok(Some(to_proto::workspace_edit(&files, rename.edits)))
}

/// After a rename of a resource the state records: offer to move its record too, so that
/// the next apply does not destroy and recreate it.
fn offer_state_move(
    snap: &Snapshot,
    context: &Context,
    old_path: Vec<String>,
    new_path: Vec<String>,
) {
    let Some(flake_dir) = context.flake_dir.clone() else {
        return;
    };
    let analysis = context.document.analysis();
    if !snap
        .project()
        .recorded(analysis, Some(&flake_dir))
        .contains_key(&old_path)
    {
        return;
    }
    let deployment = analysis.deployment_name().unwrap_or("default").to_owned();
    let (from, to) = (ResourcePath(old_path), ResourcePath(new_path));
    let client = snap.client().clone();
    let trusted = snap.project().trusted();
    // After the rename's answer, which this task cannot come before.
    tokio::spawn(async move {
        if !trusted {
            let advice = format!(
                "{from} is recorded in the state of deployment `{deployment}`. After the rename, run `nixops4 state mv '{from}' '{to}'` so that apply keeps it instead of recreating it (or trust this workspace to do it from here)."
            );
            client.show_message(MessageType::INFO, advice);
            return;
        }
        let question = format!(
            "{from} is recorded in the state of deployment `{deployment}`. Move its record to {to}, so that apply keeps the resource instead of destroying and recreating it?"
        );
        let move_it = "Move state record";
        let answer = client
            .ask(MessageType::INFO, question, &[move_it, "Not now"])
            .await;
        if answer.as_deref() != Some(move_it) {
            return;
        }
        let moved = async {
            let engine = Engine::start(EngineOptions::new(flake_dir, &deployment)).await?;
            let moved = engine.state_move(&from, &to).await;
            engine.shutdown().await;
            moved
        }
        .await;
        match moved {
            Ok(()) => client.show_message(
                MessageType::INFO,
                format!("Moved {from} to {to} in the state."),
            ),
            Err(error) => client.show_message(
                MessageType::ERROR,
                format!("Could not move {from}: {error}"),
            ),
        }
    });
}
