//! The main loop, and the one place the server's state is changed. It takes messages one
//! at a time, in the order the client sent them: a notification that changes documents
//! (`didOpen`, `didChange`, `didClose`) is applied here, synchronously, before the next
//! message is read; a request is given a [`Snapshot`] of the documents as they are then
//! and answered in a task of its own ([`crate::router`]), so long work (plans, apply jobs)
//! never holds up completion or hover. Tasks that need the documents as they are later
//! (diagnostics after a plan) send an [`Event`] back here.
//!
//! No message can end the loop but `exit` (or the end of stdin): the transport answers
//! what is not a message, a handler's panic is answered as an internal error.

use std::process::ExitCode;
use std::sync::Arc;

use lsp_types::notification::Notification;
use lsp_types::request::CodeLensRefresh;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::diagnostics;
use crate::lsp_ext::{PlanChanged, PlanChangedParams};
use crate::router;
use crate::snapshot::{Documents, Event, Session, Snapshot};
use crate::transport::{self, Incoming, Message};

/// How the server was started.
#[derive(Clone, Copy)]
pub struct Options {
    /// Trust the workspace unless the client says otherwise at initialisation.
    pub trust_workspace: bool,
}

/// Where the server is in its life (LSP's lifecycle).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before `initialize`: only it is answered.
    Starting,
    Running,
    /// After `shutdown`: requests are refused, `exit` ends the loop.
    ShuttingDown,
}

/// The server's state, owned by the main loop.
pub struct State {
    options: Options,
    client: Client,
    events: mpsc::UnboundedSender<Event>,
    /// Copied on write: a snapshot keeps the map it was taken from.
    documents: Arc<Documents>,
    session: Option<Arc<Session>>,
    phase: Phase,
}

pub async fn serve(options: Options) -> ExitCode {
    let mut incoming = transport::read_stdin();
    let client = Client::new(transport::write_stdout());
    let (events, mut from_tasks) = mpsc::unbounded_channel();
    let mut state = State {
        options,
        client: client.clone(),
        events,
        documents: Arc::default(),
        session: None,
        phase: Phase::Starting,
    };
    loop {
        tokio::select! {
            Some(event) = from_tasks.recv() => state.on_event(event),
            message = incoming.recv() => match message {
                Some(Incoming::Message(Message::Notification(n)))
                    if n.method == lsp_types::notification::Exit::METHOD => break,
                Some(Incoming::Message(message)) => state.on_message(message),
                Some(Incoming::Malformed(id, error)) => client.answer(id, Err(error)),
                None => break,
            },
        }
    }
    // Also when the client left without `shutdown`: running jobs stop starting provider
    // calls and record what they started before the process ends.
    if let Some(session) = &state.session {
        session.runner().shut_down().await;
    }
    client.flush();
    // LSP: exit code 0 only after a shutdown request.
    if state.phase == Phase::ShuttingDown {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

impl State {
    fn on_message(&mut self, message: Message) {
        match message {
            Message::Request(request) => router::request(self, request),
            Message::Notification(notification) => router::notification(self, notification),
            Message::Response(response) => self.client.complete(response),
        }
    }

    fn on_event(&mut self, event: Event) {
        let Some(snap) = self.snapshot() else {
            return;
        };
        match event {
            Event::PlanStored(deployment) => {
                let client = self.client.clone();
                tokio::spawn(async move {
                    let _ = client.request::<CodeLensRefresh>(()).await;
                });
                self.client.notify::<PlanChanged>(PlanChangedParams {
                    deployment: deployment.name,
                    flake: deployment.flake_dir.display().to_string(),
                });
                tokio::spawn(async move { publish_all(&snap) });
            }
            Event::Republish(None) => {
                tokio::spawn(async move { publish_all(&snap) });
            }
            Event::Republish(Some(uri)) => {
                tokio::spawn(async move { diagnostics::publish(&snap, &uri) });
            }
        }
    }

    pub fn options(&self) -> Options {
        self.options
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The documents and the session as they are now; `None` before initialisation.
    pub fn snapshot(&self) -> Option<Snapshot> {
        let session = self.session.clone()?;
        Some(Snapshot::new(self.documents.clone(), session))
    }

    /// The documents, to change (copying the map if a snapshot still holds it).
    pub fn documents_mut(&mut self) -> &mut Documents {
        Arc::make_mut(&mut self.documents)
    }

    /// Starts the session, at `initialize`.
    pub fn start(&mut self, make: impl FnOnce(Client, mpsc::UnboundedSender<Event>) -> Session) {
        self.session = Some(Arc::new(make(self.client.clone(), self.events.clone())));
        self.phase = Phase::Running;
    }

    /// At `shutdown`: from now on requests are refused.
    pub fn shut_down(&mut self) {
        self.phase = Phase::ShuttingDown;
    }
}

fn publish_all(snap: &Snapshot) {
    let uris: Vec<_> = snap.uris().cloned().collect();
    for uri in uris {
        diagnostics::publish(snap, &uri);
    }
}
