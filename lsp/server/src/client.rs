//! The server's side of talking to the client: notifications and requests to it (with
//! their answers matched by id), the answers to its requests (each exactly once, none for
//! a cancelled one), work-done progress, and messages to the user. Cheap to clone; any
//! task may hold one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

use lsp_types::notification::{
    LogMessage, Notification, Progress, PublishDiagnostics, ShowMessage,
};
use lsp_types::request::{Request, ShowMessageRequest, WorkDoneProgressCreate};
use lsp_types::{
    Diagnostic, LogMessageParams, MessageActionItem, MessageType, ProgressParams,
    ProgressParamsValue, ProgressToken, PublishDiagnosticsParams, ShowMessageParams,
    ShowMessageRequestParams, Uri, WorkDoneProgress, WorkDoneProgressBegin,
    WorkDoneProgressCreateParams, WorkDoneProgressEnd, WorkDoneProgressReport,
};
use serde::Serialize;
use tokio::sync::oneshot;

use crate::transport::{self, Outgoing, RequestId, ResponseError, body, code};

#[derive(Clone)]
pub struct Client {
    outgoing: std::sync::mpsc::Sender<Outgoing>,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// The server's requests waiting for the client's answer.
    waiting: Mutex<HashMap<RequestId, oneshot::Sender<transport::Response>>>,
    next_id: AtomicI64,
    /// The client's requests not answered yet, with how to cancel each.
    in_flight: Mutex<HashMap<RequestId, InFlight>>,
    next_token: AtomicI64,
}

/// A request being answered, and how `$/cancelRequest` stops it.
pub enum InFlight {
    /// Dropped, and answered "cancelled".
    Abort(futures_util::future::AbortHandle),
    /// A job: interrupted (nothing new starts, what started is recorded), and answered
    /// with what it did.
    Interrupt(Arc<AtomicBool>),
}

impl Client {
    pub fn new(outgoing: std::sync::mpsc::Sender<Outgoing>) -> Client {
        Client {
            outgoing,
            shared: Arc::default(),
        }
    }

    /// Sends a frame, serialized on the writer's thread (a large answer then costs the
    /// main loop nothing); one that cannot be serialized is a bug of ours, said on stderr
    /// and not sent.
    fn send(
        &self,
        what: &'static str,
        frame: impl FnOnce() -> serde_json::Result<String> + Send + 'static,
    ) {
        let frame = move || {
            frame()
                .inspect_err(|e| eprintln!("nixops4-lsp: cannot send {what}: {e}"))
                .ok()
        };
        // Fails only once the writer is gone, when nobody reads anymore.
        let _ = self.outgoing.send(Outgoing::Message(Box::new(frame)));
    }

    /// Waits until every message sent before is written (before the process ends).
    pub fn flush(&self) {
        let (done, written) = std::sync::mpsc::channel();
        if self.outgoing.send(Outgoing::Flushed(done)).is_ok() {
            let _ = written.recv();
        }
    }

    pub fn notify<N: Notification>(&self, params: N::Params) {
        self.send(N::METHOD, move || body::notification(N::METHOD, &params));
    }

    /// Sends a request and waits for the client's answer.
    pub async fn request<R: Request>(&self, params: R::Params) -> Result<R::Result, ResponseError> {
        let id = RequestId::Number(self.shared.next_id.fetch_add(1, Ordering::SeqCst));
        // Serialized here, small as our requests are, so that one that cannot be is an
        // error now rather than an answer waited for in vain.
        let frame = body::request(&id, R::METHOD, &params)
            .map_err(|e| ResponseError::new(code::INTERNAL_ERROR, e.to_string()))?;
        let (sender, answer) = oneshot::channel();
        lock(&self.shared.waiting).insert(id, sender);
        self.send(R::METHOD, move || Ok(frame));
        let response = answer
            .await
            .map_err(|_| ResponseError::new(code::INTERNAL_ERROR, "no answer"))?;
        if let Some(error) = response.error {
            return Err(error);
        }
        serde_json::from_value(response.result.unwrap_or_default())
            .map_err(|e| ResponseError::new(code::INVALID_PARAMS, e.to_string()))
    }

    /// The client's answer to one of our requests.
    pub fn complete(&self, response: transport::Response) {
        let waiting = response
            .id
            .as_ref()
            .and_then(|id| lock(&self.shared.waiting).remove(id));
        if let Some(waiting) = waiting {
            let _ = waiting.send(response);
        }
    }

    /// Records a request of the client's as being answered.
    pub fn begin(&self, id: RequestId, how: InFlight) {
        lock(&self.shared.in_flight).insert(id, how);
    }

    /// Answers a request, unless it was answered already (cancelled). A result that cannot
    /// be serialized is answered with an internal error.
    pub fn respond<T: Serialize + Send + 'static>(
        &self,
        id: RequestId,
        result: Result<T, ResponseError>,
    ) {
        if lock(&self.shared.in_flight).remove(&id).is_none() {
            return;
        }
        self.send("an answer", move || {
            body::response(Some(&id), result.as_ref()).or_else(|e| {
                let error = ResponseError::new(
                    code::INTERNAL_ERROR,
                    format!("the answer is not JSON: {e}"),
                );
                body::response::<()>(Some(&id), Err(&error))
            })
        });
    }

    /// Answers a message that is not being handled (refused, or not a message at all).
    pub fn refuse(&self, id: Option<RequestId>, error: ResponseError) {
        self.send("an error", move || {
            body::response::<()>(id.as_ref(), Err(&error))
        });
    }

    /// `$/cancelRequest`: aborts the request and answers "cancelled", or interrupts its job.
    pub fn cancel(&self, id: RequestId) {
        let mut in_flight = lock(&self.shared.in_flight);
        match in_flight.get(&id) {
            Some(InFlight::Interrupt(flag)) => flag.store(true, Ordering::SeqCst),
            Some(InFlight::Abort(task)) => {
                task.abort();
                in_flight.remove(&id);
                drop(in_flight);
                let error = ResponseError::new(code::REQUEST_CANCELLED, "cancelled");
                self.refuse(Some(id), error);
            }
            None => {}
        }
    }

    pub fn publish_diagnostics(
        &self,
        uri: Uri,
        diagnostics: Vec<Diagnostic>,
        version: Option<i32>,
    ) {
        self.notify::<PublishDiagnostics>(PublishDiagnosticsParams {
            uri,
            diagnostics,
            version,
        });
    }

    pub fn show_message(&self, kind: MessageType, message: impl Into<String>) {
        self.notify::<ShowMessage>(ShowMessageParams {
            typ: kind,
            message: message.into(),
        });
    }

    pub fn log_message(&self, kind: MessageType, message: impl Into<String>) {
        self.notify::<LogMessage>(LogMessageParams {
            typ: kind,
            message: message.into(),
        });
    }

    /// Asks the user to choose one of `actions`; the title chosen, if any.
    pub async fn ask(
        &self,
        kind: MessageType,
        question: String,
        actions: &[&str],
    ) -> Option<String> {
        let params = ShowMessageRequestParams {
            typ: kind,
            message: question,
            actions: Some(
                actions
                    .iter()
                    .map(|title| MessageActionItem {
                        title: (*title).to_owned(),
                        properties: HashMap::new(),
                    })
                    .collect(),
            ),
        };
        match self.request::<ShowMessageRequest>(params).await {
            Ok(Some(chosen)) => Some(chosen.title),
            _ => None,
        }
    }

    /// A token for work-done progress: the client's, or one it accepted from us when it
    /// takes them (`supported`). `None`: report nothing.
    pub async fn progress_token(
        &self,
        given: Option<ProgressToken>,
        supported: bool,
    ) -> Option<ProgressToken> {
        if given.is_some() || !supported {
            return given;
        }
        let token = ProgressToken::String(format!("nixops4/{}", self.next_token()));
        self.request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
            token: token.clone(),
        })
        .await
        .ok()
        .map(|()| token)
    }

    /// A number not handed out before, for names that must be unique.
    pub fn next_token(&self) -> i64 {
        self.shared.next_token.fetch_add(1, Ordering::SeqCst)
    }

    pub fn progress_begin(&self, token: &ProgressToken, title: &str) {
        self.progress(
            token,
            WorkDoneProgress::Begin(WorkDoneProgressBegin {
                title: title.to_owned(),
                cancellable: Some(true),
                ..WorkDoneProgressBegin::default()
            }),
        );
    }

    pub fn progress_report(&self, token: &ProgressToken, message: String) {
        self.progress(
            token,
            WorkDoneProgress::Report(WorkDoneProgressReport {
                message: Some(message),
                ..WorkDoneProgressReport::default()
            }),
        );
    }

    pub fn progress_end(&self, token: &ProgressToken) {
        self.progress(token, WorkDoneProgress::End(WorkDoneProgressEnd::default()));
    }

    fn progress(&self, token: &ProgressToken, value: WorkDoneProgress) {
        self.notify::<Progress>(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        });
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}
