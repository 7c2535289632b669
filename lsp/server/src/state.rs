//! The server's state: the open documents, the session made at `initialize`, and where
//! the server is in LSP's lifecycle. Only the main loop ([`crate::server`]) holds it, and
//! only notification handlers (called from there) change it; requests see it through a
//! [`Snapshot`].

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::client::Client;
use crate::snapshot::{Documents, Event, Session, Snapshot};

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

impl State {
    pub fn new(options: Options, client: Client, events: mpsc::UnboundedSender<Event>) -> State {
        State {
            options,
            client,
            events,
            documents: Arc::default(),
            session: None,
            phase: Phase::Starting,
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

    pub fn documents(&self) -> &Documents {
        &self.documents
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

    /// The session, once initialised.
    pub fn session(&self) -> Option<&Arc<Session>> {
        self.session.as_ref()
    }
}
