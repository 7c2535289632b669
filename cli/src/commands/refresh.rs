//! `nixops4 refresh`: read every recorded resource back and record drift or deletion
//! made outside NixOps4, so that the next plan sees the world as it is.

use std::process::ExitCode;

use nixops4_core::error::EngineError;

use crate::{Context, LogFormat};

pub async fn run(context: &Context) -> Result<ExitCode, EngineError> {
    let engine = context.engine(None).await?;
    let report = engine.refresh().await;
    engine.shutdown().await;
    let report = report?;
    if context.cli.log_format == LogFormat::Json {
        crate::render::stdout_json(&report, false)?;
    } else {
        for path in &report.changed {
            eprintln!("changed outside NixOps4: {path} (new outputs recorded)");
        }
        for path in &report.gone {
            eprintln!("gone: {path} (forgotten; the next apply creates it again)");
        }
        for path in &report.unreadable {
            eprintln!("cannot read: {path} (its provider has no read)");
        }
        for (_, error) in &report.failed {
            eprintln!("error: {error}");
        }
        eprintln!(
            "Refreshed: {} changed, {} gone, {} unchanged, {} unreadable, {} failed.",
            report.changed.len(),
            report.gone.len(),
            report.unchanged,
            report.unreadable.len(),
            report.failed.len()
        );
    }
    Ok(if report.failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
