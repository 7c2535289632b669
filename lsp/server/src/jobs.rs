//! The commands' work, in trusted workspaces: apply, destroy, refresh, run an operation,
//! plan, run a script. Each asks before it does something destructive (unless the client
//! did), reports work-done progress (one message per engine event) that can be cancelled,
//! shows how it ended, and plans again after one that may change something, so that
//! lenses and clients see what is now.
//!
//! The engine work itself is [`crate::runner`]'s, the very path `--apply` takes; a script,
//! which the engine prepares, runs here: its output goes to the client's log.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use lsp_types::{MessageType, ProgressToken, Uri};
use nixops4_core::ResourcePath;
use nixops4_core::engine::ApplyReport;
use nixops4_core::events::{Event, EventSink};
use nixops4_core::scripts::PreparedScript;
use nixops4_core::secrets::Secrets;
use nixops4_provider_protocol::OperationDescription;
use serde_json::{Map, Value, json};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

use crate::client::Client;
use crate::lsp_ext::{ApplyResult, Command, DestroyResult, OperationResult, ScriptResult};
use crate::runner::{self, Deployment};
use crate::snapshot::Snapshot;
use crate::{render, to_proto};

/// A command, checked (see [`crate::handlers::execute_command`]).
pub struct Job {
    pub command: Command,
    pub uri: Uri,
    pub deployment: Deployment,
    /// Exactly one for destroy and operations.
    pub targets: Vec<ResourcePath>,
    pub operation: Option<String>,
    pub arguments: Map<String, Value>,
    /// The client asked the user already.
    pub confirmed: bool,
    /// The script to run, and the arguments after its declared ones.
    pub script: Option<ResourcePath>,
    pub script_args: Vec<String>,
    pub progress: Option<ProgressToken>,
}

/// Runs a command; `interrupt` stops it as cancelling its progress does. Its result as
/// [`crate::lsp_ext`] types it, or why it failed.
pub async fn run(snap: &Snapshot, job: Job, interrupt: Arc<AtomicBool>) -> Result<Value, String> {
    let deployment = &job.deployment;
    let result = match (job.command, job.targets.as_slice()) {
        (Command::Plan, _) => match snap.runner().plan_now(deployment).await {
            Ok(plan) => {
                let result = to_proto::plan_result(
                    deployment,
                    &plan,
                    snap.resource_operations(&job.uri),
                    &snap.scripts(deployment),
                );
                Ok(json!(result))
            }
            Err(error) => Err(error.to_string()),
        },
        (Command::Apply, targets) => apply(snap, &job, targets, interrupt)
            .await
            .map(|r| json!(r)),
        (Command::Destroy, [target]) => destroy(snap, &job, target, interrupt)
            .await
            .map(|r| json!(r)),
        (Command::Refresh, _) => runner::refresh(deployment)
            .await
            .map(|report| json!(to_proto::refresh_result(&report)))
            .map_err(|e| e.to_string()),
        (Command::RunOperation, [target]) => operation(snap, &job, target).await.map(|r| json!(r)),
        (Command::RunScript, _) => script(snap, &job, interrupt).await.map(|r| json!(r)),
        (command, _) => Err(format!(
            "`{}` acts on one resource, given in `targets`",
            command.name()
        )),
    };
    if !matches!(job.command, Command::Plan | Command::RunScript) {
        // Stored, the new plan reaches lenses and clients (`nixops4/planChanged`).
        let _ = snap.runner().plan_now(deployment).await;
    }
    result
}

async fn apply(
    snap: &Snapshot,
    job: &Job,
    targets: &[ResourcePath],
    interrupt: Arc<AtomicBool>,
) -> Result<ApplyResult, String> {
    let title = match targets {
        [] => format!("Applying deployment `{}`", job.deployment.name),
        _ => format!("Applying {}", shown(targets)),
    };
    let outcome = with_progress(
        snap,
        &title,
        job.progress.clone(),
        interrupt,
        |events, interrupt| {
            runner::apply(
                &job.deployment,
                targets,
                events,
                interrupt,
                |plan| async move {
                    // A targeted apply never deletes; only a whole one asks.
                    if !targets.is_empty() || !plan.is_destructive() {
                        return true;
                    }
                    let question = format!(
                        "The plan for `{}` deletes or replaces resources ({}). Apply it?",
                        plan.deployment,
                        render::summary(&plan)
                    );
                    confirm(snap, question, "Apply", job.confirmed).await
                },
            )
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    let Some((_, report)) = outcome else {
        snap.client()
            .show_message(MessageType::INFO, "NixOps4: nothing applied.");
        return Ok(ApplyResult::Declined { applied: false });
    };
    tell(snap, &title, &report);
    Ok(ApplyResult::Applied(to_proto::job_report(&report)))
}

async fn destroy(
    snap: &Snapshot,
    job: &Job,
    target: &ResourcePath,
    interrupt: Arc<AtomicBool>,
) -> Result<DestroyResult, String> {
    let question = format!(
        "Destroy {target} and every resource that depends on it? This deletes them for real."
    );
    if !confirm(snap, question, "Destroy", job.confirmed).await {
        snap.client()
            .show_message(MessageType::INFO, "NixOps4: nothing destroyed.");
        return Ok(DestroyResult::Declined { destroyed: false });
    }
    let title = format!("Destroying {target}");
    let report = with_progress(
        snap,
        &title,
        job.progress.clone(),
        interrupt,
        |events, interrupt| runner::destroy(&job.deployment, target, events, interrupt),
    )
    .await
    .map_err(|e| e.to_string())?;
    tell(snap, &title, &report);
    Ok(DestroyResult::Destroyed(to_proto::job_report(&report)))
}

/// Runs an operation; without a name, asks which of the resource type's operations.
async fn operation(
    snap: &Snapshot,
    job: &Job,
    target: &ResourcePath,
) -> Result<OperationResult, String> {
    let not_run = OperationResult {
        ran: false,
        result: None,
    };
    let offered = offered_operations(snap, &job.uri, target);
    let operation = match &job.operation {
        Some(operation) => operation.clone(),
        None => {
            if offered.is_empty() {
                return Err(format!("{target} has no operations"));
            }
            let names: Vec<&str> = offered.keys().map(String::as_str).collect();
            let question = format!("Which operation on {target}?");
            match snap.client().ask(MessageType::INFO, question, &names).await {
                Some(chosen) => chosen,
                None => return Ok(not_run),
            }
        }
    };
    // The client collects arguments (LSP has no generic way to ask for values): name the
    // missing ones rather than run without them.
    let description = offered.get(&operation);
    let missing: Vec<&str> = description
        .and_then(|o| o.arguments.get("required"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|name| !job.arguments.contains_key(*name))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "`{operation}` needs the arguments {}; pass them in the command's `arguments`",
            missing.join(", ")
        ));
    }
    if description.is_some_and(|o| o.destructive) {
        let question = format!("`{operation}` on {target} cannot be undone. Run it?");
        if !confirm(snap, question, "Run", job.confirmed).await {
            return Ok(not_run);
        }
    }
    let result = runner::run_operation(&job.deployment, target, &operation, job.arguments.clone())
        .await
        .map_err(|e| e.to_string())?;
    let message = format!("NixOps4: `{operation}` on {target}: {result}");
    snap.client().log_message(MessageType::INFO, &message);
    snap.client().show_message(MessageType::INFO, message);
    Ok(OperationResult {
        ran: true,
        result: Some(result),
    })
}

/// Runs a script in the flake's directory, without input: what it prints goes to the
/// client's log line by line, how it ended to a message. Cancelling kills it.
async fn script(
    snap: &Snapshot,
    job: &Job,
    interrupt: Arc<AtomicBool>,
) -> Result<ScriptResult, String> {
    let script = job
        .script
        .as_ref()
        .ok_or("`nixops4.runScript` runs one script, given in `script`")?;
    let prepared = runner::prepare_script(&job.deployment, script, &job.script_args)
        .await
        .map_err(|e| e.to_string())?;
    let title = format!("Running script `{script}`");
    let dir = &job.deployment.flake_dir;
    let status = with_progress(
        snap,
        &title,
        job.progress.clone(),
        interrupt,
        |_, interrupt| run_script(snap.client(), &prepared, dir, interrupt),
    )
    .await?;
    drop(prepared);
    let (kind, ended) = match status.code() {
        Some(0) => (MessageType::INFO, "exited with 0".to_owned()),
        Some(code) => (MessageType::ERROR, format!("exited with {code}")),
        None => (MessageType::ERROR, "was stopped".to_owned()),
    };
    let message = format!("NixOps4: script `{script}` {ended}; its output is in the log");
    snap.client().log_message(kind, &message);
    snap.client().show_message(kind, message);
    Ok(ScriptResult {
        exit_code: status.code(),
    })
}

async fn run_script(
    client: &Client,
    prepared: &PreparedScript,
    dir: &std::path::Path,
    interrupt: Arc<AtomicBool>,
) -> Result<std::process::ExitStatus, String> {
    let mut child = tokio::process::Command::new(&prepared.program)
        .args(&prepared.args)
        .envs(prepared.environment())
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot run script `{}` ({}): {e}",
                prepared.script, prepared.program
            )
        })?;
    let name = prepared.script.to_string();
    let secrets = prepared.secrets();
    let stdout = log_lines(client, &name, secrets, child.stdout.take());
    let stderr = log_lines(client, &name, secrets, child.stderr.take());
    let wait = async {
        let mut poll = tokio::time::interval(std::time::Duration::from_millis(100));
        loop {
            tokio::select! {
                status = child.wait() => return status,
                _ = poll.tick() => {
                    if interrupt.load(std::sync::atomic::Ordering::SeqCst) {
                        let _ = child.start_kill();
                    }
                }
            }
        }
    };
    let (status, (), ()) = tokio::join!(wait, stdout, stderr);
    status.map_err(|e| format!("waiting for script `{name}`: {e}"))
}

/// Each line a script prints, as a log message, with the secrets in it hidden.
async fn log_lines(
    client: &Client,
    script: &str,
    secrets: &Secrets,
    stream: Option<impl AsyncRead + Unpin>,
) {
    let Some(stream) = stream else { return };
    let mut lines = BufReader::new(stream).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let line = secrets.redact(&line);
        client.log_message(MessageType::LOG, format!("{script}: {line}"));
    }
}

/// The operations the schema of the target's type offers, as the document declares it.
fn offered_operations(
    snap: &Snapshot,
    uri: &Uri,
    target: &ResourcePath,
) -> BTreeMap<String, OperationDescription> {
    snap.context(uri)
        .and_then(|context| {
            let analysis = context.document.analysis();
            let resource = analysis.declared_resource(&target.0)?;
            Some(analysis.operations(&resource, &context.schemas).clone())
        })
        .unwrap_or_default()
}

/// Asks before something destructive, unless the client did.
async fn confirm(snap: &Snapshot, question: String, action: &str, confirmed: bool) -> bool {
    if confirmed {
        return true;
    }
    let answer = snap
        .client()
        .ask(MessageType::WARNING, question, &[action, "Cancel"])
        .await;
    answer.as_deref() == Some(action)
}

/// Runs a job with work-done progress: each engine event becomes a progress message (and
/// a log line); cancelling the progress, or the request, interrupts the job.
async fn with_progress<T, F>(
    snap: &Snapshot,
    title: &str,
    token: Option<ProgressToken>,
    interrupt: Arc<AtomicBool>,
    work: impl FnOnce(EventSink, Arc<AtomicBool>) -> F,
) -> T
where
    F: std::future::Future<Output = T>,
{
    let client = snap.client();
    let token = client.progress_token(token, snap.client_progress()).await;
    let key = match &token {
        Some(ProgressToken::String(s)) => s.clone(),
        Some(ProgressToken::Number(n)) => n.to_string(),
        None => format!("nixops4/untracked/{}", client.next_token()),
    };
    if let Some(token) = &token {
        client.progress_begin(token, title);
    }
    let (sender, mut events) = tokio::sync::mpsc::unbounded_channel::<Event>();
    let forward = async {
        while let Some(event) = events.recv().await {
            let line = render::event_line(&event);
            client.log_message(MessageType::INFO, format!("NixOps4: {line}"));
            if let Some(token) = &token {
                client.progress_report(token, line);
            }
        }
    };
    let job = snap
        .runner()
        .job(&key, interrupt, |interrupt| work(Some(sender), interrupt));
    let (result, ()) = tokio::join!(job, forward);
    if let Some(token) = &token {
        client.progress_end(token);
    }
    result
}

/// Shows how an apply or destroy ended, and logs it.
fn tell(snap: &Snapshot, title: &str, report: &ApplyReport) {
    let kind = if report.succeeded() {
        MessageType::INFO
    } else {
        MessageType::ERROR
    };
    let message = format!("NixOps4: {title}: {}", render::outcome(report));
    snap.client().log_message(kind, &message);
    snap.client().show_message(kind, message);
}

fn shown(targets: &[ResourcePath]) -> String {
    targets
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
