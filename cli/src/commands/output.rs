//! `nixops4 output <name>`: a value of the deployment's `outputs`, computed with the
//! outputs recorded in state. A value made from a secret prints as `(sensitive)` unless
//! `--show-secrets` asks for it.

use std::process::ExitCode;

use nixops4_core::engine::Secrecy;
use nixops4_core::error::EngineError;
use serde_json::Value;

use crate::Context;

#[derive(clap::Args)]
pub struct Args {
    name: String,
    /// Print as JSON even when the value is a string.
    #[arg(long)]
    json: bool,
    /// Print the value even when it is or contains a secret (for scripts).
    #[arg(long)]
    show_secrets: bool,
}

pub async fn run(context: &Context, args: &Args) -> Result<ExitCode, EngineError> {
    let engine = context.engine(None).await?;
    let value = engine.output(&args.name, secrecy(args.show_secrets)).await;
    engine.shutdown().await;
    match value? {
        Value::String(text) if !args.json => crate::render::stdout_line(&text),
        other => crate::render::stdout_json(&other, true)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// What `--show-secrets` asks for.
pub fn secrecy(show_secrets: bool) -> Secrecy {
    if show_secrets {
        Secrecy::Reveal
    } else {
        Secrecy::Hide
    }
}
