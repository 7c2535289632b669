//! `nixops4 script <name> [args…]`: runs one of the deployment's scripts with the
//! resource outputs it declares, as `nix run` runs a program: its arguments, stdin,
//! stdout, stderr and exit status pass through. Nothing is applied. Without a name,
//! lists the scripts.
//!
//! The engine prepares the script (and stops before it runs); this file only runs it.
//! Its outputs reach the script's environment and outputs file, nothing that nixops4
//! prints.

use std::process::{ExitCode, ExitStatus};

use nixops4_core::error::EngineError;

use crate::commands::resource_path;
use crate::{Context, LogFormat};

#[derive(clap::Args)]
pub struct Args {
    /// The script, as `backup` or `host.ssh`; without one, the scripts are listed.
    name: Option<String>,
    /// Arguments for the script, after its declared ones: everything after the name
    /// (options of nixops4 come before it).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, requires = "name")]
    args: Vec<String>,
}

pub async fn run(context: &Context, args: &Args) -> Result<ExitCode, EngineError> {
    // Builds show their progress on stderr; stdout is the script's alone, so JSON events
    // (which go to stdout) are not written.
    let (events, renderer) = match context.cli.log_format {
        LogFormat::Text => {
            let (events, renderer) = crate::render::progress(LogFormat::Text, context.colour);
            (Some(events), Some(renderer))
        }
        LogFormat::Json => (None, None),
    };
    let engine = context.engine(events).await?;
    let Some(name) = &args.name else {
        let scripts = engine.scripts().await;
        engine.shutdown().await;
        for declared in scripts? {
            crate::render::stdout_line(&declared.script.to_string());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let prepared = match resource_path(name) {
        Ok(path) => engine.prepare_script(&path, &args.args).await,
        Err(e) => Err(e),
    };
    engine.shutdown().await;
    if let Some(renderer) = renderer {
        let _ = renderer.await;
    }
    let prepared = prepared?;
    let status = tokio::process::Command::new(&prepared.program)
        .args(&prepared.args)
        .envs(prepared.environment())
        .status()
        .await
        .map_err(|e| {
            EngineError::usage(format!(
                "cannot run script `{}` ({}): {e}",
                prepared.script, prepared.program
            ))
        })?;
    // Only now: the outputs file is removed with it.
    drop(prepared);
    Ok(exit_code(status))
}

/// The script's exit status as ours; killed by a signal, 128 + its number, as shells do.
fn exit_code(status: ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => ExitCode::from(code as u8),
        (None, Some(signal)) => ExitCode::from(128u8.saturating_add(signal as u8)),
        (None, None) => ExitCode::FAILURE,
    }
}
