//! `nixops4 state show|list|rm|mv`: look at the state, forget a resource, or move a
//! record after a rename so the resource is not deleted and created again.

use std::process::ExitCode;

use nixops4_core::error::EngineError;

use crate::Context;
use crate::commands::resource_path;

#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the whole state document, with secrets shown as `(sensitive)`.
    Show {
        /// Print secret values too (for scripts and backups).
        #[arg(long)]
        show_secrets: bool,
    },
    /// List the recorded resources with their types.
    List,
    /// Forget a resource without deleting it.
    Rm { resource: String },
    /// Move a record to a new path, after renaming the resource in the expression.
    Mv { from: String, to: String },
}

pub async fn run(context: &Context, command: &Command) -> Result<ExitCode, EngineError> {
    let engine = context.engine(None).await?;
    let result = match command {
        Command::Show { show_secrets } => match engine
            .state_document(super::output::secrecy(*show_secrets))
            .await
        {
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
    };
    engine.shutdown().await;
    result.map(|()| ExitCode::SUCCESS)
}
