//! `nixops4 plan`: what `apply` would do, as text, as JSON, or saved to a file that
//! `apply --plan` carries out exactly.

use std::path::PathBuf;
use std::process::ExitCode;

use nixops4_core::error::EngineError;
use nixops4_core::plan::Plan;
use serde::{Deserialize, Serialize};

use crate::{Context, render};

#[derive(clap::Args)]
pub struct Args {
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
    /// Save the plan, for `nixops4 apply --plan <file>`.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Exit with 2 when there are changes, 0 when there are none (1 on errors).
    #[arg(long)]
    detailed_exitcode: bool,
}

/// A plan saved to a file, with what it was made for.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedPlan {
    pub nixops4_plan: u32,
    pub flake: String,
    pub plan: Plan,
}

pub async fn run(context: &Context, args: &Args) -> Result<ExitCode, EngineError> {
    let engine = context.engine(None).await?;
    let plan = engine.plan().await;
    let flake = engine.flake_dir().display().to_string();
    engine.shutdown().await;
    let plan = plan?;
    if args.json {
        crate::render::stdout_json(&plan, true)?;
    } else {
        crate::render::stdout_text(&render::plan(&plan, context.colour));
    }
    if let Some(file) = &args.out {
        let saved = SavedPlan {
            nixops4_plan: 1,
            flake,
            plan: plan.clone(),
        };
        let text = serde_json::to_string_pretty(&saved)
            .map_err(|e| EngineError::internal(e.to_string()))?;
        std::fs::write(file, text + "\n")
            .map_err(|e| EngineError::usage(format!("writing {}: {e}", file.display())))?;
        eprintln!(
            "Saved the plan to {}; apply it with `nixops4 apply --plan {}`.",
            file.display(),
            file.display()
        );
    }
    Ok(if !plan.problems.is_empty() {
        ExitCode::FAILURE
    } else if args.detailed_exitcode && plan.has_changes() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}
