//! One module per subcommand.

pub mod apply;
pub mod destroy;
pub mod list;
pub mod output;
pub mod plan;
pub mod refresh;
pub mod run;
pub mod script;
pub mod state;

use std::io::{BufRead, Write};

use std::process::ExitCode;

use nixops4_core::ResourcePath;
use nixops4_core::engine::ApplyReport;
use nixops4_core::error::EngineError;

use crate::{Context, LogFormat, render};

/// Asks a yes/no question on the terminal; anything but "yes" or "y" is no.
pub fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    matches!(answer.trim(), "y" | "yes")
}

pub use nixops4_core::engine::parse_resource_path as resource_path;

pub fn resource_paths(texts: &[String]) -> Result<Vec<ResourcePath>, EngineError> {
    texts.iter().map(|t| resource_path(t)).collect()
}

/// Shows how an apply or destroy went and turns it into the exit status.
pub fn report_outcome(context: &Context, report: &ApplyReport) -> Result<ExitCode, EngineError> {
    match context.cli.log_format {
        LogFormat::Json => render::stdout_json(report, false)?,
        LogFormat::Text => eprint!("{}", render::report(report, context.colour)),
    }
    Ok(if report.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
