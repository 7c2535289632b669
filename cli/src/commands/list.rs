//! `nixops4 deployments` and `nixops4 resources`.

use std::process::ExitCode;

use nixops4_core::error::EngineError;

use crate::Context;

pub async fn deployments(context: &Context) -> Result<ExitCode, EngineError> {
    let engine = context.engine(None).await?;
    for name in engine.deployments() {
        crate::render::stdout_line(name);
    }
    engine.shutdown().await;
    Ok(ExitCode::SUCCESS)
}

pub async fn resources(context: &Context) -> Result<ExitCode, EngineError> {
    let engine = context.engine(None).await?;
    let resources = engine.resources().await;
    engine.shutdown().await;
    for path in resources? {
        crate::render::stdout_line(&path.to_string());
    }
    Ok(ExitCode::SUCCESS)
}
