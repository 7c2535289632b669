//! The main loop, which alone holds the server's [`State`]. It takes messages one
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

use lsp_types::MessageType;
use lsp_types::notification::Notification;
use lsp_types::request::CodeLensRefresh;
use tokio::sync::mpsc;

use crate::client::Client;
use crate::diagnostics;
use crate::lsp_ext::{PlanChanged, PlanChangedParams};
use crate::router;
use crate::snapshot::{Event, Snapshot};
use crate::state::{Options, Phase, State};
use crate::transport::{self, Incoming, Message};

pub async fn serve(options: Options) -> ExitCode {
    let mut incoming = transport::read_stdin();
    let client = Client::new(transport::write_stdout());
    let (events, mut from_tasks) = mpsc::unbounded_channel();
    let mut state = State::new(options, client.clone(), events);
    loop {
        tokio::select! {
            Some(event) = from_tasks.recv() => on_event(&mut state, event),
            message = incoming.recv() => match message {
                Some(Incoming::Message(Message::Notification(n)))
                    if n.method == lsp_types::notification::Exit::METHOD => break,
                Some(Incoming::Message(message)) => on_message(&mut state, message),
                Some(Incoming::Malformed(id, error)) => client.refuse(id, error),
                None => break,
            },
        }
    }
    // Also when the client left without `shutdown`: running jobs stop starting provider
    // calls and record what they started before the process ends.
    if let Some(session) = state.session() {
        session.runner().shut_down().await;
    }
    client.flush();
    // LSP: exit code 0 only after a shutdown request.
    if state.phase() == Phase::ShuttingDown {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn on_message(state: &mut State, message: Message) {
    match message {
        Message::Request(request) => router::request(state, request),
        Message::Notification(notification) => router::notification(state, notification),
        Message::Response(response) => state.client().complete(response),
    }
}

fn on_event(state: &mut State, event: Event) {
    let Some(snap) = state.snapshot() else {
        return;
    };
    match event {
        Event::PlanStored(deployment) => {
            if let Some(note) = snap.runner().take_lock_note(&deployment) {
                let message = format!("NixOps4: {note}");
                state.client().log_message(MessageType::INFO, &message);
                state.client().show_message(MessageType::INFO, message);
            }
            let client = state.client().clone();
            tokio::spawn(async move {
                let _ = client.request::<CodeLensRefresh>(()).await;
            });
            state.client().notify::<PlanChanged>(PlanChangedParams {
                deployment: deployment.name,
                flake: deployment.flake_dir.display().to_string(),
            });
            tokio::spawn(async move { publish_all(snap) });
        }
        Event::Republish(None) => {
            tokio::spawn(async move { publish_all(snap) });
        }
        Event::Republish(Some(uri)) => {
            tokio::spawn(async move { diagnostics::publish(snap, &[uri]) });
        }
    }
}

fn publish_all(snap: Snapshot) {
    let uris: Vec<_> = snap.uris().cloned().collect();
    diagnostics::publish(snap, &uris);
}
