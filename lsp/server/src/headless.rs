//! `nixops4-lsp --apply`: the editor's apply without an editor, for CI. It runs the same
//! engine path as the `nixops4.apply` command ([`runner::apply`]) and prints the plan,
//! the progress and the outcome as lines (or JSON lines). Exit status: 0 applied (or, with
//! `--plan-only`, nothing to change), 1 failed or refused, 2 changes pending with
//! `--plan-only`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nixops4_core::engine::{Engine, parse_resource_path};
use nixops4_core::error::EngineError;
use nixops4_core::events::Event;
use nixops4_core::plan::{Action, Plan};
use serde::Serialize;
use serde_json::json;

use crate::render;
use crate::runner::{self, Deployment};

pub struct Options {
    pub flake: PathBuf,
    pub deployment: String,
    pub targets: Vec<String>,
    pub yes: bool,
    pub plan_only: bool,
    pub json: bool,
    pub parallelism: usize,
}

/// Where lines go: stdout, one line at a time, as text or JSON.
struct Output {
    json: bool,
}

impl Output {
    fn text(&self, line: &str) {
        if !self.json {
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }

    fn json(&self, key: &str, value: &impl Serialize) {
        if self.json {
            let line = json!({ key: value });
            let _ = writeln!(std::io::stdout().lock(), "{line}");
        }
    }

    fn plan(&self, plan: &Plan) {
        self.json("plan", plan);
        for planned in &plan.resources {
            if planned.action != Action::NoChange {
                self.text(&format!("{}  {}", planned.resource, render::label(planned)));
            }
        }
        for build in &plan.builds {
            let resources: Vec<String> = build.resources.iter().map(ToString::to_string).collect();
            self.text(&format!(
                "build {}  for {}",
                build.name,
                resources.join(", ")
            ));
        }
        for problem in &plan.problems {
            let place = problem
                .position
                .as_ref()
                .map(|p| format!(" ({p})"))
                .unwrap_or_default();
            self.text(&format!(
                "{}  cannot be evaluated{place}: {}",
                problem.resource, problem.message
            ));
        }
        self.text(&format!(
            "Plan for `{}`: {}",
            plan.deployment,
            render::summary(plan)
        ));
    }

    fn error(&self, error: &str) {
        self.json("error", &error);
        if !self.json {
            eprintln!("nixops4-lsp: {error}");
        }
    }
}

pub async fn run(options: Options) -> ExitCode {
    let output = Output { json: options.json };
    match apply(&options, &output).await {
        Ok(code) => code,
        Err(error) => {
            output.error(&error.to_string());
            ExitCode::FAILURE
        }
    }
}

async fn apply(options: &Options, output: &Output) -> Result<ExitCode, EngineError> {
    let flake_dir = std::path::absolute(&options.flake)
        .map_err(|e| EngineError::usage(format!("flake {}: {e}", options.flake.display())))?;
    let deployment = Deployment {
        parallelism: options.parallelism,
        flake_dir,
        name: options.deployment.clone(),
    };
    let targets = options
        .targets
        .iter()
        .map(|t| parse_resource_path(t))
        .collect::<Result<Vec<_>, _>>()?;
    if options.plan_only {
        let engine = Engine::start(nixops4_core::engine::EngineOptions::new(
            &deployment.flake_dir,
            &deployment.name,
        ))
        .await?;
        let plan = engine.plan().await;
        engine.shutdown().await;
        let plan = plan?;
        output.plan(&plan);
        return Ok(if !plan.problems.is_empty() {
            ExitCode::FAILURE
        } else if plan.has_changes() {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        });
    }
    let interrupt = Arc::new(AtomicBool::new(false));
    let on_signal = interrupt.clone();
    tokio::spawn(async move {
        while tokio::signal::ctrl_c().await.is_ok() {
            on_signal.store(true, Ordering::SeqCst);
        }
    });
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let progress = async {
        while let Some(event) = events.recv().await {
            output.json("event", &event);
            output.text(&render::event_line(&event));
        }
    };
    let yes = options.yes;
    let whole = targets.is_empty();
    let job = runner::apply(
        &deployment,
        &targets,
        Some(sender),
        interrupt,
        |plan| async move {
            output.plan(&plan);
            if whole && plan.is_destructive() && !yes {
                output.error("the plan deletes or replaces resources; run with --yes to apply it");
                return false;
            }
            true
        },
    );
    let (outcome, ()) = tokio::join!(job, progress);
    let Some((_, report)) = outcome? else {
        return Ok(ExitCode::FAILURE);
    };
    output.json("report", &report);
    output.text(&format!("Apply: {}", render::outcome(&report)));
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
