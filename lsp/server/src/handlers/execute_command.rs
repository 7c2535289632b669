//! `workspace/executeCommand`: the `nixops4.*` commands (trusted workspaces). The command
//! and its argument are checked here, at the boundary, before anything is locked or
//! started: an unknown command, a missing `uri`, a target (or script) that is not a
//! non-empty list of non-empty names, the wrong number of targets, or a script command
//! without its script is answered as invalid parameters. The
//! work is [`crate::jobs`]'s; `$/cancelRequest` interrupts it as cancelling its progress
//! does.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use lsp_types::{ExecuteCommandParams, MessageType};
use nixops4_core::ResourcePath;
use serde_json::Value;

use super::{Result, invalid_params, refused};
use crate::jobs::{self, Job};
use crate::lsp_ext::{Command, CommandArguments};
use crate::snapshot::Snapshot;

pub async fn execute_command(
    snap: Snapshot,
    params: ExecuteCommandParams,
    interrupt: Arc<AtomicBool>,
) -> Result<Option<Value>> {
    let job = checked(&snap, params)?;
    match jobs::run(&snap, job, interrupt).await {
        Ok(value) => Ok(Some(value)),
        Err(message) => {
            snap.client()
                .show_message(MessageType::ERROR, format!("NixOps4: {message}"));
            Err(refused(message))
        }
    }
}

/// The command to run, once everything about it is known to be right.
fn checked(snap: &Snapshot, params: ExecuteCommandParams) -> Result<Job> {
    let command = Command::named(&params.command)
        .ok_or_else(|| invalid_params(format!("unknown command `{}`", params.command)))?;
    if !snap.may_evaluate() {
        return Err(refused("the workspace is not trusted"));
    }
    let argument = params.arguments.into_iter().next().ok_or_else(|| {
        invalid_params("the command takes one argument, `{ uri, targets?, operation?, arguments?, confirmed?, script?, scriptArgs? }`")
    })?;
    let arguments: CommandArguments = serde_json::from_value(argument)
        .map_err(|e| invalid_params(format!("the command's argument: {e}")))?;
    let deployment = snap
        .deployment_of(&arguments.uri)
        .ok_or_else(|| invalid_params("the document is not open or not in a flake"))?;
    if command.needs_one_target() && arguments.targets.len() != 1 {
        return Err(invalid_params(format!(
            "`{}` acts on one resource, given in `targets`",
            command.name()
        )));
    }
    if command == Command::RunScript && arguments.script.is_none() {
        return Err(invalid_params(
            "`nixops4.runScript` runs one script, given in `script`",
        ));
    }
    Ok(Job {
        command,
        uri: arguments.uri,
        deployment,
        targets: arguments
            .targets
            .into_iter()
            .map(|target| ResourcePath(target.into_names()))
            .collect(),
        operation: arguments.operation,
        arguments: arguments.arguments,
        confirmed: arguments.confirmed,
        script: arguments
            .script
            .map(|script| ResourcePath(script.into_names())),
        script_args: arguments.script_args,
        progress: params.work_done_progress_params.work_done_token,
    })
}
