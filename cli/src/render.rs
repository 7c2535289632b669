//! How the CLI shows plans, progress, reports and errors: Terraform-like text with colour
//! on a terminal, plain lines elsewhere, JSON lines for machines.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::io::Write as _;

use nixops4_core::engine::ApplyReport;
use nixops4_core::error::EngineError;
use nixops4_core::events::Event;
use nixops4_core::plan::{Action, Change, Plan, PlannedResource};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::LogFormat;

const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const MAGENTA: &str = "\x1b[35m";
const BOLD: &str = "\x1b[1m";
const RESET: &str = "\x1b[0m";

fn paint(text: &str, colour: &str, enabled: bool) -> String {
    if enabled {
        format!("{colour}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

fn symbol(action: Action) -> (&'static str, &'static str, &'static str) {
    match action {
        Action::Create => ("+", "create", GREEN),
        Action::Update => ("~", "update", YELLOW),
        Action::Replace => ("-/+", "replace", MAGENTA),
        Action::Recreate => ("+", "recreate", GREEN),
        Action::Delete => ("-", "delete", RED),
        Action::Forget => ("-", "forget", YELLOW),
        Action::NoChange => (" ", "no change", ""),
    }
}

fn value(value: &Option<Value>) -> String {
    match value {
        None => "(none)".to_owned(),
        Some(v) => v.to_string(),
    }
}

fn change_line(change: &Change) -> String {
    let mut line = format!(
        "      {}: {} → {}",
        change.input,
        value(&change.before),
        value(&change.after)
    );
    if change.forces_replacement {
        line.push_str("  (forces replacement)");
    }
    line
}

/// The plan as a person reads it.
pub fn plan(plan: &Plan, colour: bool) -> String {
    let mut out = String::new();
    let changed: Vec<&PlannedResource> = plan
        .resources
        .iter()
        .filter(|r| r.action != Action::NoChange)
        .collect();
    if !changed.is_empty() {
        let _ = writeln!(
            out,
            "NixOps4 will perform these actions on deployment `{}`:\n",
            plan.deployment
        );
        for resource in &changed {
            let (sign, word, tint) = symbol(resource.action);
            let head = format!("{sign:>3} {word:<8}");
            let _ = write!(out, "{} {}", paint(&head, tint, colour), resource.resource);
            if !resource.type_name.is_empty() {
                let _ = write!(out, " ({})", resource.type_name);
            }
            if !resource.inputs_known {
                let waits: Vec<String> = resource
                    .waiting_for
                    .iter()
                    .map(|p| format!("resources.{p}"))
                    .collect();
                let _ = write!(
                    out,
                    "  inputs known after apply (waits for {})",
                    waits.join(", ")
                );
            }
            out.push('\n');
            if let Some(why) = upstream_v0_note(resource.action) {
                let _ = writeln!(out, "      ({why})");
            }
            for change in &resource.changes {
                out.push_str(&change_line(change));
                out.push('\n');
            }
        }
        out.push('\n');
    }
    if !plan.builds.is_empty() {
        let _ = writeln!(
            out,
            "NixOps4 will build {} derivation{} first:",
            plan.builds.len(),
            plural(plan.builds.len())
        );
        for build in &plan.builds {
            let _ = writeln!(out, "  {}  (for {})", build.name, list(&build.resources));
        }
        out.push('\n');
    }
    for problem in &plan.problems {
        let at = problem
            .position
            .as_ref()
            .map(|p| format!(" ({p})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{} {}: {}{at}",
            paint("error:", RED, colour),
            problem.resource,
            problem.message
        );
    }
    let summary = plan.summary();
    if changed.is_empty() {
        let _ = writeln!(
            out,
            "No changes. {} resource{} up to date.",
            summary.unchanged,
            plural(summary.unchanged)
        );
    } else {
        let mut upstream = String::new();
        for (n, what) in [
            (summary.recreate, "to create again"),
            (summary.forget, "to forget"),
        ] {
            if n > 0 {
                let _ = write!(upstream, ", {n} {what}");
            }
        }
        let _ = writeln!(
            out,
            "Plan: {} to create, {} to update, {} to replace, {} to delete{upstream}; {} unchanged.",
            summary.create, summary.update, summary.replace, summary.delete, summary.unchanged
        );
    }
    out
}

/// Why a provider of upstream's protocol v0 gets another action than ours would.
fn upstream_v0_note(action: Action) -> Option<&'static str> {
    match action {
        Action::Recreate => Some(
            "its provider speaks upstream's protocol v0: a resource without state is created again, not updated, and nothing is deleted",
        ),
        Action::Forget => Some(
            "its provider speaks upstream's protocol v0, which cannot delete: it is only forgotten from state, and what it made stays",
        ),
        _ => None,
    }
}

fn list(paths: &[nixops4_core::ResourcePath]) -> String {
    let shown: Vec<String> = paths.iter().map(ToString::to_string).collect();
    shown.join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The result of an apply or destroy, in one line: the progress lines before it named
/// each failure and skipped resource.
pub fn report(report: &ApplyReport, colour: bool) -> String {
    let mut out = String::new();
    let count = |action: Action| report.applied.values().filter(|a| **a == action).count();
    let verdict = if report.interrupted {
        "Interrupted"
    } else if report.succeeded() {
        "Done"
    } else {
        "Failed"
    };
    let mut upstream = String::new();
    for (action, what) in [
        (Action::Recreate, "created again"),
        (Action::Forget, "forgotten (not deleted)"),
    ] {
        let n = count(action);
        if n > 0 {
            let _ = write!(upstream, ", {n} {what}");
        }
    }
    let _ = writeln!(
        out,
        "{}: {} created, {} updated, {} replaced, {} deleted{upstream}, {} unchanged, {} failed, {} skipped.",
        paint(verdict, BOLD, colour),
        count(Action::Create),
        count(Action::Update),
        count(Action::Replace),
        count(Action::Delete),
        report.unchanged,
        report.failed.len(),
        report.skipped.len()
    );
    out
}

pub fn error(error: &EngineError, colour: bool) -> String {
    format!("{} {}", paint("error:", RED, colour), error.message)
}

/// Writes a line to stdout. A reader that went away (`nixops4 plan | head`) is not an
/// error worth stopping for: the command goes on and its exit status still says how it
/// went.
pub fn stdout_line(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

/// Writes a value as JSON to stdout: one line, or pretty for people.
pub fn stdout_json<T: serde::Serialize>(value: &T, pretty: bool) -> Result<(), EngineError> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    stdout_line(&text.map_err(|e| EngineError::internal(format!("rendering JSON: {e}")))?);
    Ok(())
}

pub fn stdout_text(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
}

/// Renders events as they arrive, until the sender is dropped: a progress bar on a
/// terminal, a line per event otherwise, or JSON lines.
pub fn progress(
    format: LogFormat,
    colour: bool,
) -> (mpsc::UnboundedSender<Event>, tokio::task::JoinHandle<()>) {
    let (sender, mut events) = mpsc::unbounded_channel::<Event>();
    let terminal = std::io::stderr().is_terminal() && format == LogFormat::Text;
    let task = tokio::spawn(async move {
        let bar = terminal.then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        });
        let mut running = 0usize;
        let mut finished = 0usize;
        // Derivations building now, by path, with their names.
        let mut building: std::collections::BTreeMap<String, String> = Default::default();
        while let Some(event) = events.recv().await {
            if format == LogFormat::Json {
                if let Ok(line) = serde_json::to_string(&event) {
                    crate::render::stdout_line(&line);
                }
                continue;
            }
            let line = match &event {
                Event::Started { resource, action } => {
                    running += 1;
                    (bar.is_none()).then(|| format!("{} {resource}...", verb(*action)))
                }
                Event::Finished { resource, action } => {
                    running = running.saturating_sub(1);
                    finished += 1;
                    Some(format!(
                        "{} {resource}",
                        paint(past(*action), GREEN, colour)
                    ))
                }
                Event::Failed { error, .. } => {
                    running = running.saturating_sub(1);
                    Some(format!("{} {error}", paint("error:", RED, colour)))
                }
                Event::Skipped { resource, reason } => {
                    Some(format!("skipped {resource}: {reason}"))
                }
                Event::Forgotten { resource, provider } => Some(format!(
                    "{} forgot {resource} without deleting it: provider `{provider}` speaks upstream's protocol v0, which cannot delete; delete what it made yourself if it should be gone",
                    paint("warning:", YELLOW, colour)
                )),
                Event::BuildStarted { derivation, name } => {
                    building.insert(derivation.clone(), name.clone());
                    (bar.is_none()).then(|| format!("building {name}..."))
                }
                Event::Built { derivation, name } => {
                    building.remove(derivation);
                    Some(format!("{} {name}", paint("built", GREEN, colour)))
                }
                Event::BuildFailed {
                    derivation,
                    name,
                    error,
                } => {
                    building.remove(derivation);
                    Some(format!(
                        "{} could not build {name}: {error}",
                        paint("error:", RED, colour)
                    ))
                }
            };
            match (&bar, line) {
                (Some(bar), Some(line)) => bar.println(line),
                (None, Some(line)) => eprintln!("{line}"),
                _ => {}
            }
            if let Some(bar) = &bar {
                let mut message = format!("{finished} done, {running} running");
                if !building.is_empty() {
                    let names: Vec<&str> = building.values().map(String::as_str).collect();
                    message.push_str(&format!("; building {}", names.join(", ")));
                }
                bar.set_message(message);
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
    });
    (sender, task)
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Replace => "replacing",
        Action::Recreate => "creating again",
        Action::Delete => "deleting",
        Action::Forget => "forgetting",
        Action::NoChange => "checking",
    }
}

fn past(action: Action) -> &'static str {
    match action {
        Action::Create => "created",
        Action::Update => "updated",
        Action::Replace => "replaced",
        Action::Recreate => "created again",
        Action::Delete => "deleted",
        Action::Forget => "forgot",
        Action::NoChange => "unchanged",
    }
}
