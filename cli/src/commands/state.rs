//! `nixops4 state show|list|rm|mv|unlock|transfer|rekey`: look at the state, forget a
//! resource, move a record after a rename so the resource is not deleted and created
//! again, break the lock of a holder that is gone, move the whole state to another storage,
//! or re-encrypt it for new keys.

use std::process::ExitCode;

use nixops4_core::error::EngineError;
use nixops4_core::transfer::Transfer;

use crate::Context;
use crate::commands::{confirm, resource_path};

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
    /// Break the lock of a holder that no longer runs, after showing it and asking.
    ///
    /// A lease of a holder that died also expires by itself (s3.object: after about 1.25
    /// times its `lease_seconds`); a local state file's lock ends with its holder.
    Unlock {
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Copy the whole state between a local file and the deployment's storage, verified.
    ///
    /// The destination must be empty; the source is left as it was. To move local state
    /// into a bucket: declare the `s3.object` state resource, then `--from-file` the old
    /// file. Back: `--to-file`, then name that file in a `local.state_file`.
    #[command(group(clap::ArgGroup::new("direction").required(true)))]
    Transfer {
        /// Copy this local state file into the deployment's storage.
        #[arg(long, group = "direction")]
        from_file: Option<std::path::PathBuf>,
        /// Copy the deployment's state into this local state file.
        #[arg(long, group = "direction")]
        to_file: Option<std::path::PathBuf>,
    },
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
        Command::Unlock { yes } => unlock(context, &engine, *yes).await,
        Command::Transfer { from_file, to_file } => {
            let transfer = match (from_file, to_file) {
                (Some(file), None) => Ok(Transfer::FromFile(file.clone())),
                (None, Some(file)) => Ok(Transfer::ToFile(file.clone())),
                _ => Err(EngineError::usage("give one of --from-file and --to-file")),
            };
            match transfer {
                Ok(transfer) => engine.state_transfer(&transfer).await.map(|report| {
                    eprintln!(
                        "Copied {} record(s) from {} to {} and read them back; the source is unchanged.",
                        report.records, report.from, report.to
                    )
                }),
                Err(e) => Err(e),
            }
        }
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

async fn unlock(
    context: &Context,
    engine: &nixops4_core::engine::Engine,
    yes: bool,
) -> Result<(), EngineError> {
    let holders = engine.state_lock_holders().await?;
    if holders.is_empty() {
        eprintln!("The state is not locked.");
        return Ok(());
    }
    eprintln!("The state's lock is held by:");
    for holder in &holders {
        eprintln!("  {holder}");
    }
    if !yes {
        if !context.interactive {
            return Err(EngineError::usage(
                "state unlock breaks another process's lock; run with --yes to do it without a terminal",
            ));
        }
        if !confirm("Break it? Only if that process no longer runs") {
            return Err(EngineError::usage("the lock was left as it is"));
        }
    }
    for holder in engine.state_unlock().await? {
        eprintln!("Released the lock of {holder}.");
    }
    Ok(())
}
