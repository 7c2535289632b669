//! The one table of what the server answers, grouped as lifecycle, notifications and
//! requests: each LSP method to its handler (one file each under `handlers/`), and how each
//! kind of handler runs.
//!
//! - Notifications run here, on the main loop, as plain functions of the state: they
//!   cannot `.await`, so a document edit is applied before the next message is read.
//! - Requests get a snapshot and run in a task: plain functions (`on`), futures that
//!   `$/cancelRequest` drops (`on_async`), or jobs that it interrupts (`on_job`); requests
//!   about a whole document get that document, if no edit came before they run
//!   (`on_document`). A panic
//!   is answered as an internal error. Lifecycle requests change the state (`on_state`).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use futures_util::FutureExt;
use lsp_types::notification::{
    Cancel, DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, DidSaveTextDocument,
    Initialized, Notification as LspNotification, WorkDoneProgressCancel,
};
use lsp_types::request::{
    CodeActionRequest, CodeLensRequest, Completion, DocumentSymbolRequest, ExecuteCommand,
    FoldingRangeRequest, GotoDefinition, HoverRequest, Initialize, PrepareRenameRequest,
    References, Rename, Request as LspRequest, SemanticTokensFullRequest, Shutdown,
};
use lsp_types::{MessageType, Uri};

use crate::client::{Client, InFlight};
use crate::document::Document;
use crate::handlers::{self, *};
use crate::lsp_ext::{DocumentTextRequest, PlanRequest};
use crate::snapshot::Snapshot;
use crate::state::{Phase, State};
use crate::transport::{Notification, Request, RequestId, ResponseError, code};

pub fn request(state: &mut State, request: Request) {
    let refused = match (state.phase(), request.method.as_str()) {
        (Phase::Starting, Initialize::METHOD) => None,
        (Phase::Starting, _) => Some((code::SERVER_NOT_INITIALIZED, "not initialized yet")),
        (Phase::Running, Initialize::METHOD) => {
            Some((code::INVALID_REQUEST, "initialized already"))
        }
        (Phase::Running, _) => None,
        (Phase::ShuttingDown, _) => Some((code::INVALID_REQUEST, "shutting down")),
    };
    if let Some((code, why)) = refused {
        let error = ResponseError::new(code, why);
        state.client().refuse(Some(request.id), error);
        return;
    }
    Requests {
        state,
        request: Some(request),
    }
    // lifecycle
    .on_state::<Initialize, _>(lifecycle::initialize)
    .on_state::<Shutdown, _>(lifecycle::shutdown)
    // static analysis, from the snapshot
    .on::<HoverRequest>(hover::hover)
    .on::<Completion>(completion::completion)
    .on::<GotoDefinition>(definition::definition)
    .on::<References>(references::references)
    .on::<PrepareRenameRequest>(rename::prepare_rename)
    .on::<Rename>(rename::rename)
    .on_document::<DocumentSymbolRequest>(|p| &p.text_document.uri, symbols::document_symbol)
    .on_document::<FoldingRangeRequest>(|p| &p.text_document.uri, folding::folding_range)
    .on_document::<SemanticTokensFullRequest>(
        |p| &p.text_document.uri,
        semantic_tokens::semantic_tokens_full,
    )
    .on::<CodeActionRequest>(code_action::code_action)
    .on::<DocumentTextRequest>(document_text::document_text)
    // evaluation-backed
    .on::<CodeLensRequest>(code_lens::code_lens)
    .on_async::<PlanRequest, _>(plan::plan)
    .on_job::<ExecuteCommand, _>(execute_command::execute_command)
    .finish();
}

pub fn notification(state: &mut State, notification: Notification) {
    // Before `initialize` notifications are dropped; `exit` is the main loop's.
    if state.phase() == Phase::Starting {
        return;
    }
    Notifications {
        state,
        notification: Some(notification),
    }
    // lifecycle
    .on::<Initialized>(lifecycle::initialized)
    // documents, changed before the next message is read
    .on::<DidOpenTextDocument>(notifications::did_open)
    .on::<DidChangeTextDocument>(notifications::did_change)
    .on::<DidSaveTextDocument>(notifications::did_save)
    .on::<DidCloseTextDocument>(notifications::did_close)
    // cancellation
    .on::<Cancel>(notifications::cancel_request)
    .on::<WorkDoneProgressCancel>(notifications::cancel_progress)
    .finish();
}

struct Requests<'a> {
    state: &'a mut State,
    request: Option<Request>,
}

impl Requests<'_> {
    /// The request's id and parameters if it is an `R`; parameters that do not fit are
    /// answered as invalid.
    fn take<R: LspRequest>(&mut self) -> Option<(RequestId, R::Params)> {
        if self.request.as_ref()?.method != R::METHOD {
            return None;
        }
        let request = self.request.take()?;
        match serde_json::from_value(request.params) {
            Ok(params) => Some((request.id, params)),
            Err(e) => {
                let error = handlers::invalid_params(e);
                self.state.client().refuse(Some(request.id), error);
                None
            }
        }
    }

    fn snapshot(&self) -> Snapshot {
        self.state
            .snapshot()
            .expect("requests other than initialize come after it")
    }

    fn on_state<R: LspRequest, F>(&mut self, handler: fn(&mut State, R::Params) -> F) -> &mut Self
    where
        F: Future<Output = handlers::Result<R::Result>> + Send + 'static,
    {
        if let Some((id, params)) = self.take::<R>() {
            let work = handler(self.state, params);
            answer::<R>(self.state.client(), id, None, work);
        }
        self
    }

    fn on<R: LspRequest>(
        &mut self,
        handler: fn(Snapshot, R::Params) -> handlers::Result<R::Result>,
    ) -> &mut Self {
        if let Some((id, params)) = self.take::<R>() {
            let snap = self.snapshot();
            answer::<R>(self.state.client(), id, None, async move {
                handler(snap, params)
            });
        }
        self
    }

    /// A request about one whole document, which the editor makes after changes (outline,
    /// folding, semantic tokens): it runs on a blocking thread after the messages read
    /// before it, and when one of them edited the document it is answered "content
    /// modified" (LSP's way to have it asked again) without holding up that edit (see
    /// [`crate::document::LaterDocument`]).
    fn on_document<R: LspRequest>(
        &mut self,
        uri: fn(&R::Params) -> &Uri,
        handler: fn(&Document, R::Params) -> handlers::Result<R::Result>,
    ) -> &mut Self
    where
        R::Result: Default,
    {
        if let Some((id, params)) = self.take::<R>() {
            let later = self
                .state
                .documents()
                .get(uri(&params))
                .map(Document::later);
            answer::<R>(self.state.client(), id, None, async move {
                let Some(later) = later else {
                    return Ok(R::Result::default());
                };
                // Off the main loop, which reads the next keystroke meanwhile: an edit
                // while this runs copies the analysis (a few ms at 10,000 resources)
                // rather than waiting for the whole document to be read.
                let work = tokio::task::spawn_blocking(move || {
                    // One at a time: on two cores, several side by side would take the
                    // main loop's.
                    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
                    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
                    // And below the main loop: a keystroke read meanwhile goes first.
                    lower_this_threads_priority();
                    let modified = || {
                        ResponseError::new(
                            code::CONTENT_MODIFIED,
                            "the document changed since it was asked about",
                        )
                    };
                    let document = later.now().ok_or_else(modified)?;
                    let answer = handler(&document, params)?;
                    // Edited meanwhile: not megabytes about an old version.
                    if document.is_superseded() {
                        return Err(modified());
                    }
                    Ok(answer)
                });
                match work.await {
                    Ok(result) => result,
                    Err(failed) => match failed.try_into_panic() {
                        Ok(panic) => std::panic::resume_unwind(panic),
                        Err(_) => Err(ResponseError::new(
                            code::INTERNAL_ERROR,
                            "the server is stopping",
                        )),
                    },
                }
            });
        }
        self
    }

    fn on_async<R: LspRequest, F>(&mut self, handler: fn(Snapshot, R::Params) -> F) -> &mut Self
    where
        F: Future<Output = handlers::Result<R::Result>> + Send + 'static,
    {
        if let Some((id, params)) = self.take::<R>() {
            let work = handler(self.snapshot(), params);
            answer::<R>(self.state.client(), id, None, work);
        }
        self
    }

    fn on_job<R: LspRequest, F>(
        &mut self,
        handler: fn(Snapshot, R::Params, Arc<AtomicBool>) -> F,
    ) -> &mut Self
    where
        F: Future<Output = handlers::Result<R::Result>> + Send + 'static,
    {
        if let Some((id, params)) = self.take::<R>() {
            let interrupt = Arc::new(AtomicBool::new(false));
            let work = handler(self.snapshot(), params, interrupt.clone());
            answer::<R>(self.state.client(), id, Some(interrupt), work);
        }
        self
    }

    fn finish(&mut self) {
        if let Some(request) = self.request.take() {
            let error = ResponseError::new(
                code::METHOD_NOT_FOUND,
                format!("unknown method `{}`", request.method),
            );
            self.state.client().refuse(Some(request.id), error);
        }
    }
}

/// Runs a request's work in a task and answers with its result: once, unless it was
/// cancelled (then [`Client::cancel`] answered).
fn answer<R: LspRequest>(
    client: &Client,
    id: RequestId,
    interrupt: Option<Arc<AtomicBool>>,
    work: impl Future<Output = handlers::Result<R::Result>> + Send + 'static,
) {
    let (work, abort) = futures_util::future::abortable(work);
    let cancel = match interrupt {
        Some(flag) => InFlight::Interrupt(flag),
        None => InFlight::Abort(abort),
    };
    client.begin(id.clone(), cancel);
    let client = client.clone();
    tokio::spawn(async move {
        let result = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(Ok(result)) => result,
            Ok(Err(futures_util::future::Aborted)) => return,
            Err(panic) => Err(ResponseError::new(
                code::INTERNAL_ERROR,
                format!("the server failed: {}", panic_message(&*panic)),
            )),
        };
        client.respond(id, result);
    });
}

/// Lowers the priority of the calling thread (Linux keeps a nice value per thread), for
/// work that may wait while the main loop answers keystrokes. The blocking pool runs only
/// such work (this, and the workspace scan), so it need not be raised again.
fn lower_this_threads_priority() {
    // SAFETY: gettid and setpriority take and return plain integers.
    unsafe {
        libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, 10);
    }
}

struct Notifications<'a> {
    state: &'a mut State,
    notification: Option<Notification>,
}

impl Notifications<'_> {
    fn on<N: LspNotification>(&mut self, handler: fn(&mut State, N::Params)) -> &mut Self {
        let Some(notification) = self.notification.take_if(|n| n.method == N::METHOD) else {
            return self;
        };
        let failure = match serde_json::from_value(notification.params) {
            Ok(params) => {
                let state = &mut *self.state;
                std::panic::catch_unwind(AssertUnwindSafe(|| handler(state, params)))
                    .err()
                    .map(|panic| format!("failed: {}", panic_message(&*panic)))
            }
            Err(e) => Some(format!("ignored: {e}")),
        };
        if let Some(failure) = failure {
            let message = format!("nixops4: `{}` {failure}", N::METHOD);
            self.state.client().log_message(MessageType::ERROR, message);
        }
        self
    }

    /// Other notifications are not for this server (LSP: ignore them).
    fn finish(&mut self) {}
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}
