//! What the server says about plans and jobs, in words, once for every client: the label
//! of a planned resource (`+ create`, `~ update: contents`, ...), a plan's summary
//! (`+2 ~1 -/+0 -0`), a line per engine event, how a job ended, and what runs a script.
//! Lenses, `nixops4/plan` and the headless `--apply` all show these, so they read the same
//! everywhere.

use std::collections::HashMap;

use nixops4_core::ResourcePath;
use nixops4_core::engine::ApplyReport;
use nixops4_core::events::Event;
use nixops4_core::plan::{Action, Plan, PlannedResource};

/// How a planned resource reads in a lens or a line: `+ create`, `~ update: contents,
/// mode`, `-/+ replace: name`, `- delete`, `no changes`, with what it waits for.
pub fn label(planned: &PlannedResource) -> String {
    let inputs = |only_replacing: bool| {
        planned
            .changes
            .iter()
            .filter(|c| !only_replacing || c.forces_replacement)
            .map(|c| c.input.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let listed = |verb: &str, inputs: String| {
        if inputs.is_empty() {
            verb.to_owned()
        } else {
            format!("{verb}: {inputs}")
        }
    };
    let mut text = match planned.action {
        Action::Create => "+ create".to_owned(),
        Action::Update => listed("~ update", inputs(false)),
        Action::Replace => listed("-/+ replace", inputs(true)),
        Action::Recreate => listed("+ create again (upstream v0, no state)", inputs(false)),
        Action::Delete => "- delete".to_owned(),
        Action::Forget => "- forget, not delete (upstream v0)".to_owned(),
        Action::NoChange => "no changes".to_owned(),
    };
    if !planned.inputs_known && !planned.waiting_for.is_empty() {
        let waiting: Vec<String> = planned
            .waiting_for
            .iter()
            .map(|p| format!("resources.{p}"))
            .collect();
        text.push_str(&format!(", waiting for {}", waiting.join(", ")));
    }
    text
}

/// What runs a script: `▶ Run script `backup``.
pub fn script(script: &ResourcePath) -> String {
    format!("▶ Run script `{script}`")
}

/// `+2 ~1 -/+0 -0`, and `, 3 to build` when the apply builds derivations first.
pub fn summary(plan: &Plan) -> String {
    let s = crate::to_proto::summary(plan);
    let mut text = format!("+{} ~{} -/+{} -{}", s.create, s.update, s.replace, s.delete);
    if !plan.builds.is_empty() {
        text.push_str(&format!(", {} to build", plan.builds.len()));
    }
    text
}

/// What an event says, as a line of progress.
pub fn event_line(event: &Event) -> String {
    let verb = |action: &Action, done: bool| match (action, done) {
        (Action::Create, false) => "creating",
        (Action::Create, true) => "created",
        (Action::Update, false) => "updating",
        (Action::Update, true) => "updated",
        (Action::Replace, false) => "replacing",
        (Action::Replace, true) => "replaced",
        (Action::Recreate, false) => "creating again",
        (Action::Recreate, true) => "created again",
        (Action::Forget, false) => "forgetting",
        (Action::Forget, true) => "forgot",
        (Action::Delete, false) => "deleting",
        (Action::Delete, true) => "deleted",
        (Action::NoChange, _) => "unchanged",
    };
    match event {
        Event::Started { resource, action } => format!("{} {resource}", verb(action, false)),
        Event::Finished { resource, action } => format!("{} {resource}", verb(action, true)),
        Event::Failed { resource, error } => format!("{resource} failed: {error}"),
        Event::Skipped { resource, reason } => format!("{resource} skipped: {reason}"),
        Event::Forgotten { resource, provider } => format!(
            "forgot {resource} without deleting it: provider `{provider}` speaks upstream's protocol v0, which cannot delete"
        ),
        Event::BuildStarted { name, .. } => format!("building {name}"),
        Event::Built { name, .. } => format!("built {name}"),
        Event::BuildFailed { name, error, .. } => format!("could not build {name}: {error}"),
    }
}

/// How an apply or destroy ended, in one sentence.
pub fn outcome(report: &ApplyReport) -> String {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for action in report.applied.values() {
        let word = match action {
            Action::Create => "created",
            Action::Update => "updated",
            Action::Replace => "replaced",
            Action::Recreate => "created",
            Action::Delete => "deleted",
            Action::Forget => "forgotten",
            Action::NoChange => "unchanged",
        };
        *counts.entry(word).or_default() += 1;
    }
    let mut parts: Vec<String> = ["created", "updated", "replaced", "deleted", "forgotten"]
        .iter()
        .filter_map(|w| counts.get(w).map(|n| format!("{n} {w}")))
        .collect();
    if parts.is_empty() {
        parts.push("nothing to change".into());
    }
    let mut text = parts.join(", ");
    if !report.failed.is_empty() {
        let failed: Vec<String> = report
            .failed
            .iter()
            .map(|(path, error)| format!("{path}: {error}"))
            .collect();
        text.push_str(&format!("; failed: {}", failed.join("; ")));
    }
    if !report.skipped.is_empty() {
        text.push_str(&format!("; {} skipped", report.skipped.len()));
    }
    if report.interrupted {
        text.push_str("; interrupted");
    }
    text
}
