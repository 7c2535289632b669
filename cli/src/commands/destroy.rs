//! `nixops4 destroy`: delete recorded resources in reverse dependency order.

use std::process::ExitCode;

use nixops4_core::error::EngineError;

use crate::commands::{confirm, resource_path};
use crate::{Context, LogFormat, render};

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
    let targets = args
        .target
        .iter()
        .map(|t| resource_path(t))
        .collect::<Result<Vec<_>, _>>()?;
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
    match context.cli.log_format {
        LogFormat::Json => crate::render::stdout_json(&report, false)?,
        LogFormat::Text => eprint!("{}", render::report(&report, context.colour)),
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
