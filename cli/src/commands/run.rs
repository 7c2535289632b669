//! `nixops4 run <resource> <operation>`: a provider's custom operation, recorded in the
//! state's event log.

use std::process::ExitCode;

use nixops4_core::error::EngineError;
use serde_json::{Map, Value};

use crate::Context;
use crate::commands::resource_path;

#[derive(clap::Args)]
pub struct Args {
    /// The resource, as `host.key` (or `resources.host.key`).
    resource: String,
    /// The operation's name, as the provider describes it.
    operation: String,
    /// An argument, `name=value`; the value is read as JSON when it parses, else as text.
    #[arg(long = "arg", value_name = "NAME=VALUE")]
    arguments: Vec<String>,
}

pub async fn run(context: &Context, args: &Args) -> Result<ExitCode, EngineError> {
    let path = resource_path(&args.resource)?;
    let mut arguments = Map::new();
    for argument in &args.arguments {
        let (name, text) = argument
            .split_once('=')
            .ok_or_else(|| EngineError::usage(format!("--arg {argument}: expected NAME=VALUE")))?;
        let value = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()));
        arguments.insert(name.to_owned(), value);
    }
    let engine = context.engine(None).await?;
    let result = engine
        .run_operation(&path, &args.operation, arguments)
        .await;
    engine.shutdown().await;
    let result = result?;
    crate::render::stdout_json(&result, true)?;
    Ok(ExitCode::SUCCESS)
}
