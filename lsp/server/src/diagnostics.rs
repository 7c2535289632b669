//! A document's diagnostics: the analysis' (with the resources the deployment's other
//! files declare) and the evaluation errors the latest plan found in it.

use lsp_types::{Diagnostic, Uri};
use nixops4_analysis::diagnostics;

use crate::document::Document;
use crate::from_proto;
use crate::runner::PlanStatus;
use crate::snapshot::{Context, Snapshot};
use crate::to_proto;

/// Publishes the diagnostics of the documents `uris`, for the versions the snapshot holds.
/// The snapshot is let go before they are sent, so that a client answering at once finds
/// the documents' analyses held by the main loop alone, to edit in place.
pub fn publish(snap: Snapshot, uris: &[Uri]) {
    let found: Vec<_> = uris
        .iter()
        .filter_map(|uri| {
            let context = snap.context(uri)?;
            let document = &context.document;
            let mut converted: Vec<Diagnostic> = analysis(&snap, uri, &context)
                .iter()
                .map(|found| to_proto::diagnostic(document, found))
                .collect();
            converted.extend(evaluation(&snap, uri, document));
            Some((uri.clone(), converted, document.version()))
        })
        .collect();
    let client = snap.client().clone();
    drop(snap);
    for (uri, diagnostics, version) in found {
        client.publish_diagnostics(uri, diagnostics, Some(version));
    }
}

/// What the analysis finds in a document of its deployment.
pub fn analysis(snap: &Snapshot, uri: &Uri, context: &Context) -> Vec<diagnostics::Diagnostic> {
    context
        .document
        .analysis()
        .diagnostics(&context.schemas, &snap.neighbours(uri))
}

/// The evaluation errors the latest plan found in this document: at the position Nix
/// reports, else on the name of the resource.
fn evaluation(snap: &Snapshot, uri: &Uri, document: &Document) -> Vec<Diagnostic> {
    let Some(deployment) = snap.deployment_of(uri) else {
        return Vec::new();
    };
    let Some(path) = from_proto::file_path(uri) else {
        return Vec::new();
    };
    let Some(PlanStatus::Ready(plan)) = snap.runner().plan(&deployment) else {
        return Vec::new();
    };
    plan.problems
        .iter()
        .filter_map(|problem| {
            let range = match &problem.position {
                Some(position) => {
                    if deployment.flake_dir.join(&position.file) != path {
                        return None;
                    }
                    to_proto::nix_position(position)
                }
                None => {
                    let declared = document.analysis().declared_resource(&problem.resource.0)?;
                    to_proto::range(document, declared.name_range)
                }
            };
            let message = format!("{}: {}", problem.resource, problem.message);
            Some(to_proto::evaluation_diagnostic(range, message))
        })
        .collect()
}
