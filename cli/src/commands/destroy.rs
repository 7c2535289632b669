//! `nixops4 destroy`: delete recorded resources in reverse dependency order.

use std::process::ExitCode;

use nixops4_core::error::EngineError;

use crate::commands::{confirm, report_outcome, resource_paths};
use crate::{Context, render};

#[derive(clap::Args)]
pub struct Args {
    /// Delete without asking.
    #[arg(long)]
    yes: bool,
    /// Delete only this resource and what depends on it (repeatable).
    #[arg(long, value_name = "RESOURCE")]
    target: Vec<String>,
}

pub async fn run(context: &Context, args: &Args) -> Result<ExitCode, EngineError> {
    let targets = resource_paths(&args.target)?;
    if !args.yes {
        if !context.interactive {
            return Err(EngineError::usage(
                "destroy deletes resources; run with --yes to do it without a terminal",
            ));
        }
        let what = if targets.is_empty() {
            format!("every resource of deployment `{}`", context.cli.deployment)
        } else {
            "the targets and what depends on them".to_owned()
        };
        if !confirm(&format!("Delete {what}?")) {
            eprintln!("Nothing deleted.");
            return Ok(ExitCode::FAILURE);
        }
    }
    let (events, renderer) = render::progress(context.cli.log_format, context.colour);
    let engine = context.engine(Some(events)).await?;
    let report = engine.destroy(&targets).await;
    engine.shutdown().await;
    let _ = renderer.await;
    let report = report?;
    report_outcome(context, &report)
}
