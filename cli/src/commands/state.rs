//! `nixops4 state show|list|rm|mv|rekey`: look at the state, forget a resource, move a
//! record after a rename so the resource is not deleted and created again, or re-encrypt
//! the state for new keys.

use std::process::ExitCode;

use nixops4_core::error::EngineError;

use crate::Context;
use crate::commands::resource_path;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the whole state document (it may contain secrets).
    Show,
    /// List the recorded resources with their types.
    List,
    /// Forget a resource without deleting it.
    Rm { resource: String },
    /// Move a record to a new path, after renaming the resource in the expression.
    Mv { from: String, to: String },
    /// Re-encrypt the state for the age recipients configured now.
    ///
    /// Recipients come from NIXOPS4_STATE_RECIPIENTS or NIXOPS4_STATE_RECIPIENTS_FILE
    /// (none: write it plain), identities from NIXOPS4_STATE_IDENTITY_FILE, which must read
    /// both the current state and the result (docs/state-encryption.md).
    Rekey,
}

pub async fn run(context: &Context, command: &Command) -> Result<ExitCode, EngineError> {
    let engine = context.engine(None).await?;
    let result = match command {
        Command::Show => match engine.state_document().await {
            Ok(document) => crate::render::stdout_json(&document, true),
            Err(e) => Err(e),
        },
        Command::List => engine.state_records().await.map(|records| {
            for (path, record) in records {
                let pending = record
                    .pending()
                    .map(|p| format!("  (pending {p})"))
                    .unwrap_or_default();
                crate::render::stdout_line(&format!("{path}  {}{pending}", record.type_name()));
            }
        }),
        Command::Rm { resource } => match resource_path(resource) {
            Ok(path) => engine
                .state_remove(&path)
                .await
                .map(|()| eprintln!("Forgot {path}; it was not deleted.")),
            Err(e) => Err(e),
        },
        Command::Mv { from, to } => match (resource_path(from), resource_path(to)) {
            (Ok(from), Ok(to)) => engine
                .state_move(&from, &to)
                .await
                .map(|()| eprintln!("Moved {from} to {to}.")),
            (Err(e), _) | (_, Err(e)) => Err(e),
        },
        Command::Rekey => engine.state_rekey().await.map(|result| {
            let events = result.get("events").and_then(|v| v.as_u64()).unwrap_or(0);
            let how = if result.get("encrypted") == Some(&serde_json::Value::Bool(true)) {
                "encrypted for the configured recipients"
            } else {
                "written plain: no recipients are configured"
            };
            eprintln!("Rewrote the state ({events} events), {how}.");
        }),
    };
    engine.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}
