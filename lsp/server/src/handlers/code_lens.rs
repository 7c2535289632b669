//! `textDocument/codeLens` (trusted workspaces): the plan of the document's deployment. At
//! the top its summary with "apply", per resource its planned change with "apply this
//! resource". A resource to delete that the document no longer declares shows where the
//! document last declared it, if known, else in the summary. A resource whose name the
//! document does not write, but which the evaluator places in it (one a function
//! generates, like `lib.mapAttrs'` over customers), gets its lens, titled with its name
//! (`pixelfed-bob: + create`), at the expression that generates it: one per instance, as
//! of the latest plan. Each script the document declares gets "run" where it is declared.

use std::path::Path;

use lsp_types::{CodeLens, CodeLensParams, Range, Uri};
use nixops4_core::Position;
use nixops4_core::plan::{Action, PlannedResource};
use serde_json::{Value, json};

use super::Result;
use crate::lsp_ext::Command;
use crate::render;
use crate::runner::{Deployment, PlanStatus};
use crate::snapshot::Snapshot;
use crate::{from_proto, to_proto};

pub fn code_lens(snap: Snapshot, params: CodeLensParams) -> Result<Option<Vec<CodeLens>>> {
    Ok(Some(lenses(&snap, &params.text_document.uri)))
}

fn lenses(snap: &Snapshot, uri: &Uri) -> Vec<CodeLens> {
    if !snap.project().trusted() {
        return Vec::new();
    }
    let (Some(document), Some(deployment)) = (snap.document(uri), snap.deployment_of(uri)) else {
        return Vec::new();
    };
    let top = Range::default();
    let apply =
        |targets: Vec<Vec<String>>| -> Value { json!({"uri": uri.as_str(), "targets": targets}) };
    let plan = match snap.runner().plan(&deployment) {
        None | Some(PlanStatus::Planning) => {
            return vec![to_proto::lens(top, "NixOps4: planning…".into(), None)];
        }
        Some(PlanStatus::Failed(error)) => {
            let title = format!("NixOps4: cannot plan: {error}");
            return vec![to_proto::lens(
                top,
                title,
                Some((Command::Plan, apply(Vec::new()))),
            )];
        }
        Some(PlanStatus::Ready(plan)) => plan,
    };
    let file = from_proto::file_path(uri);
    let generated_here = |planned: &PlannedResource| {
        range_in(&deployment, file.as_deref()?, planned.position.as_ref()?)
    };
    let mut undeclared = Vec::new();
    let mut lenses = snap.with_last_declared(uri, |last_seen| {
        let mut lenses = Vec::new();
        for planned in &plan.resources {
            let path = &planned.resource.0;
            let mut title = render::label(planned);
            let range = match document.analysis().declared_resource(path) {
                Some(declared) => {
                    let range = to_proto::range(document, declared.name_range);
                    last_seen.insert(path.clone(), range);
                    Some(range)
                }
                None => match generated_here(planned) {
                    Some(range) => {
                        title = format!("{}: {title}", planned.resource);
                        Some(range)
                    }
                    None => last_seen.get(path).copied(),
                },
            };
            let command = (!matches!(planned.action, Action::Delete | Action::Forget))
                .then(|| (Command::Apply, apply(vec![path.clone()])));
            match range {
                Some(range) => lenses.push(to_proto::lens(range, title, command)),
                None if matches!(planned.action, Action::Delete | Action::Forget) => {
                    undeclared.push(planned.resource.to_string())
                }
                None => {}
            }
        }
        lenses
    });
    let mut title = format!(
        "▶ Apply deployment `{}` ({})",
        deployment.name,
        render::summary(&plan)
    );
    if !undeclared.is_empty() {
        title.push_str(&format!(", deletes {}", undeclared.join(", ")));
    }
    lenses.insert(
        0,
        to_proto::lens(top, title, Some((Command::Apply, apply(Vec::new())))),
    );
    lenses.extend(script_lenses(snap, uri, &deployment));
    lenses
}

/// "Run" on each script the document declares, as of the latest plan.
fn script_lenses(snap: &Snapshot, uri: &Uri, deployment: &Deployment) -> Vec<CodeLens> {
    let Some(file) = from_proto::file_path(uri) else {
        return Vec::new();
    };
    let scripts = match snap.runner().scripts(deployment) {
        None => return Vec::new(),
        Some(Err(error)) => {
            let title = format!("NixOps4: cannot list the scripts: {error}");
            return vec![to_proto::lens(Range::default(), title, None)];
        }
        Some(Ok(scripts)) => scripts,
    };
    scripts
        .iter()
        .filter_map(|declared| {
            let range = range_in(deployment, &file, declared.position.as_ref()?)?;
            let argument = json!({"uri": uri.as_str(), "script": declared.script.0});
            Some(to_proto::lens(
                range,
                render::script(&declared.script),
                Some((Command::RunScript, argument)),
            ))
        })
        .collect()
}

/// Where a position the evaluator reported stands in `file`, if it is in that file.
fn range_in(deployment: &Deployment, file: &Path, position: &Position) -> Option<Range> {
    (deployment.flake_dir.join(&position.file) == file).then(|| to_proto::nix_position(position))
}
