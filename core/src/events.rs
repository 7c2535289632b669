//! The one stream of typed events that every front end renders: the CLI's progress
//! display and JSON logs, and the language server's progress notifications.

use nixops4_eval::protocol::ResourcePath;
use serde::Serialize;

use crate::plan::Action;
use crate::secrets::Secrets;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// A provider call for the resource started.
    Started {
        resource: ResourcePath,
        action: Action,
    },
    /// The resource is applied and recorded.
    Finished {
        resource: ResourcePath,
        action: Action,
    },
    /// The resource failed (to evaluate, or in its provider); resources that depend on it
    /// are not applied. The error names the resource.
    Failed {
        resource: ResourcePath,
        error: String,
    },
    /// The resource was removed from state, but not deleted: its provider speaks upstream's
    /// protocol v0, which cannot delete. Whatever it made is still there.
    Forgotten {
        resource: ResourcePath,
        provider: String,
    },
    /// The resource was not applied because something it needs failed or was interrupted.
    Skipped {
        resource: ResourcePath,
        reason: String,
    },
    /// Nix started building a derivation that resources need (or one that it needs).
    BuildStarted { derivation: String, name: String },
    /// A derivation that resources need is built.
    Built { derivation: String, name: String },
    /// A derivation could not be built: why, with the tail of its log. The resources
    /// that need it fail (each with a `failed` event).
    BuildFailed {
        derivation: String,
        name: String,
        error: String,
    },
}

/// Where the engine sends its events; a front end that wants none gives `None`.
pub type EventSink = Option<tokio::sync::mpsc::UnboundedSender<Event>>;

/// Sends an event with every secret in its texts hidden.
pub(crate) fn emit(sink: &EventSink, secrets: &Secrets, mut event: Event) {
    if let Some(sink) = sink {
        match &mut event {
            Event::Failed { error: text, .. }
            | Event::Skipped { reason: text, .. }
            | Event::BuildFailed { error: text, .. } => *text = secrets.redact(text),
            Event::Started { .. }
            | Event::Finished { .. }
            | Event::Forgotten { .. }
            | Event::BuildStarted { .. }
            | Event::Built { .. } => {}
        }
        let _ = sink.send(event);
    }
}
