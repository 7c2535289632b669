//! The notifications that change the server's state, applied on the main loop before the
//! next message is read: documents opened, edited, saved and closed, and the two kinds of
//! cancellation. What takes longer (diagnostics, asking providers for their schemas,
//! plans) runs in tasks started here.

use lsp_types::{
    CancelParams, DidChangeTextDocumentParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, DidSaveTextDocumentParams, NumberOrString, ProgressToken, Uri,
    WorkDoneProgressCancelParams,
};

use super::plan::plan_later;
use crate::document::Document;
use crate::snapshot::{Event, Snapshot};
use crate::state::State;
use crate::transport::RequestId;
use crate::{diagnostics, from_proto, memory};

pub fn did_open(state: &mut State, params: DidOpenTextDocumentParams) {
    let opened = params.text_document;
    // Said before the file is parsed, so that the scan of the workspace, which starts with
    // the session on another thread, does not parse it a second time meanwhile.
    if let (Some(session), Some(path)) = (state.session(), from_proto::file_path(&opened.uri)) {
        session.project().opened(&path);
    }
    let document = Document::new(&opened.text, opened.version);
    state.documents_mut().insert(opened.uri.clone(), document);
    drop(opened.text);
    memory::return_freed();
    let Some(snap) = state.snapshot() else { return };
    snap.project().forget_flakes();
    publish_later(snap.clone(), opened.uri.clone());
    describe_providers(&snap, &opened.uri);
    plan_later(&snap, &opened.uri);
}

pub fn did_change(state: &mut State, params: DidChangeTextDocumentParams) {
    let uri = params.text_document.uri;
    let Some(document) = state.documents_mut().get_mut(&uri) else {
        return;
    };
    document.change(&params.content_changes, params.text_document.version);
    // A whole new text was parsed whole, like an open.
    if params.content_changes.iter().any(|c| c.range.is_none()) {
        memory::return_freed();
    }
    if let Some(snap) = state.snapshot() {
        publish_later(snap, uri);
    }
}

pub fn did_save(state: &mut State, params: DidSaveTextDocumentParams) {
    let Some(snap) = state.snapshot() else { return };
    snap.project().forget_flakes();
    describe_providers(&snap, &params.text_document.uri);
    plan_later(&snap, &params.text_document.uri);
}

pub fn did_close(state: &mut State, params: DidCloseTextDocumentParams) {
    let uri = params.text_document.uri;
    state.documents_mut().remove(&uri);
    if let Some(snap) = state.snapshot() {
        snap.forget(&uri);
        snap.project().forget_flakes();
        // From now on the file is seen as on disk (if the workspace lets it be read).
        if let Some(path) = from_proto::file_path(&uri) {
            snap.project().closed(&path);
        }
    }
    state.client().publish_diagnostics(uri, Vec::new(), None);
}

/// `$/cancelRequest`.
pub fn cancel_request(state: &mut State, params: CancelParams) {
    let id = match params.id {
        NumberOrString::Number(n) => RequestId::Number(n.into()),
        NumberOrString::String(s) => RequestId::String(s),
    };
    state.client().cancel(id);
}

/// `window/workDoneProgress/cancel`: stops the job reporting under that token.
pub fn cancel_progress(state: &mut State, params: WorkDoneProgressCancelParams) {
    let Some(snap) = state.snapshot() else { return };
    match params.token {
        ProgressToken::String(token) => snap.runner().cancel(&token),
        ProgressToken::Number(token) => snap.runner().cancel(&token.to_string()),
    }
}

/// The document's diagnostics, for the version in `snap`, once the main loop is idle.
fn publish_later(snap: Snapshot, uri: Uri) {
    tokio::spawn(async move { diagnostics::publish(snap, &[uri]) });
}

/// Asks the providers a document declares for their schemas (trusted workspaces only),
/// then has its diagnostics published again if any arrived.
fn describe_providers(snap: &Snapshot, uri: &Uri) {
    let Some(context) = snap.context(uri) else {
        return;
    };
    let session = snap.shared_session();
    let uri = uri.clone();
    tokio::spawn(async move {
        let learned = session
            .project()
            .describe_declared(context.document.analysis(), context.flake_dir.as_deref())
            .await;
        if learned {
            session.send(Event::Republish(Some(uri)));
        }
    });
}
