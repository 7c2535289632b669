//! `nixops4 apply`: plan, confirm what deletes, and carry it out with live progress.

use std::path::PathBuf;
use std::process::ExitCode;

use nixops4_core::error::EngineError;
use nixops4_core::plan::Plan;

use crate::commands::plan::SavedPlan;
use crate::commands::{confirm, report_outcome, resource_paths};
use crate::{Context, LogFormat, render};

#[derive(clap::Args)]
pub struct Args {
    /// Apply without asking, also when resources are deleted or replaced.
    #[arg(long)]
    yes: bool,
    /// Apply only this resource and what it depends on (repeatable).
    #[arg(long, value_name = "RESOURCE")]
    target: Vec<String>,
    /// Apply a plan saved by `nixops4 plan --out`, if the deployment and state still
    /// match it.
    #[arg(long, value_name = "FILE", conflicts_with = "target")]
    plan: Option<PathBuf>,
}

pub async fn run(context: &Context, args: &Args) -> Result<ExitCode, EngineError> {
    let targets = resource_paths(&args.target)?;
    let saved = match &args.plan {
        None => None,
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| EngineError::usage(format!("reading {}: {e}", file.display())))?;
            let saved: SavedPlan = serde_json::from_str(&text).map_err(|e| {
                EngineError::usage(format!("{} is not a saved plan: {e}", file.display()))
            })?;
            Some(saved)
        }
    };
    let (events, renderer) = render::progress(context.cli.log_format, context.colour);
    let engine = context.engine(Some(events)).await?;
    let result = apply(context, args, &engine, &targets, saved).await;
    engine.shutdown().await;
    let _ = renderer.await;
    result
}

async fn apply(
    context: &Context,
    args: &Args,
    engine: &nixops4_core::engine::Engine,
    targets: &[nixops4_core::ResourcePath],
    saved: Option<SavedPlan>,
) -> Result<ExitCode, EngineError> {
    // Runs with the state locked, on the plan that will be applied.
    let approve = |plan: &Plan| -> Result<bool, EngineError> {
        if let Some(saved) = &saved {
            if saved.plan.deployment != plan.deployment
                || saved.plan.fingerprint != plan.fingerprint
            {
                return Err(EngineError::usage(
                    "the saved plan is stale: the deployment or its state changed since it was made; make a new plan",
                ));
            }
            return Ok(true);
        }
        if context.cli.log_format == LogFormat::Text {
            eprint!("{}", render::plan(plan, context.colour));
        }
        if !plan.problems.is_empty() && targets.is_empty() {
            eprintln!("Some resources cannot be evaluated; the others are applied.");
        }
        if !plan.is_destructive() || args.yes || !targets.is_empty() {
            return Ok(true);
        }
        if !context.interactive {
            return Err(EngineError::usage(
                "the plan deletes or replaces resources; run with --yes to apply it without a terminal",
            ));
        }
        Ok(confirm(
            "Apply these changes, deleting what the plan deletes?",
        ))
    };
    let Some(report) = engine.apply(targets, approve).await? else {
        eprintln!("Nothing applied.");
        return Ok(ExitCode::FAILURE);
    };
    report_outcome(context, &report)
}
