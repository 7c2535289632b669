//! The language server's side of the evaluation-backed features: which deployment a
//! document belongs to, plan lenses and `nixops4/plan`, evaluation errors as diagnostics,
//! and the commands (apply, destroy, refresh, run an operation) with confirmation and
//! progress. The work itself is [`crate::runner`]'s. Nothing here runs in an untrusted
//! workspace; the server says why once.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use nixops4_core::ResourcePath;
use nixops4_core::events::Event;
use nixops4_core::plan::Action;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use tower_lsp_server::UriExt;
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::lsp_types::request::WorkDoneProgressCreate;
use tower_lsp_server::lsp_types::*;

use crate::document::Document;
use crate::runner::{self, Deployment, PlanStatus};
use crate::server::Backend;

pub const APPLY: &str = "nixops4.apply";
pub const DESTROY: &str = "nixops4.destroy";
pub const REFRESH: &str = "nixops4.refresh";
pub const RUN_OPERATION: &str = "nixops4.runOperation";
pub const PLAN: &str = "nixops4.plan";
pub const COMMANDS: [&str; 5] = [APPLY, DESTROY, REFRESH, RUN_OPERATION, PLAN];

/// The argument of every command: the document it is about, and what to act on.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct CommandArguments {
    uri: Option<Uri>,
    /// Resource paths as lists of names (`["host", "key"]`).
    targets: Vec<Vec<String>>,
    operation: Option<String>,
    arguments: Map<String, Value>,
    /// The client asked the user already: do not ask again.
    confirmed: bool,
}

#[derive(Debug, Deserialize)]
pub struct PlanParams {
    uri: Uri,
}

impl Backend {
    /// The deployment a document belongs to: its flake, and the deployment it defines
    /// (`default` when it defines none, as module files do).
    pub(crate) fn deployment_of(&self, uri: &Uri) -> Option<Deployment> {
        let document = self.snapshot(uri)?;
        let path = uri.to_file_path()?.into_owned();
        Some(Deployment {
            parallelism: self.project().settings.parallelism,
            flake_dir: self.project().flake_dir(&path)?,
            name: document
                .analysis
                .deployment_name()
                .unwrap_or("default")
                .to_owned(),
        })
    }

    /// Whether evaluation may run; if not, says why (once).
    async fn may_evaluate(&self) -> bool {
        if self.project().trusted {
            return true;
        }
        if !self.told_untrusted.swap(true, Ordering::SeqCst) {
            self.client
                .show_message(
                    MessageType::WARNING,
                    "NixOps4: this workspace is not trusted, so plans, apply and operations are off: they would run `nix` and the providers it declares. Trust the workspace to use them.",
                )
                .await;
        }
        false
    }

    /// After an open or a save: a plan shortly, then lenses and diagnostics refreshed. A
    /// later save aborts a plan still waiting or being made.
    pub(crate) fn plan_later(&self, uri: &Uri) {
        if !self.project().trusted || !self.project().settings.plan_on_save {
            return;
        }
        let Some(deployment) = self.deployment_of(uri) else {
            return;
        };
        let backend = self.clone();
        let planned = deployment.clone();
        let task = tokio::spawn(async move {
            backend.runner.plan_after_delay(&planned).await;
            backend.plan_changed().await;
        });
        self.runner.supersede(deployment, task.abort_handle());
    }

    async fn plan_changed(&self) {
        let _ = self.client.code_lens_refresh().await;
        self.publish_all().await;
    }

    /// Diagnostics for the evaluation errors the latest plan found in this document.
    pub(crate) fn evaluation_diagnostics(&self, uri: &Uri, document: &Document) -> Vec<Diagnostic> {
        let Some(deployment) = self.deployment_of(uri) else {
            return Vec::new();
        };
        let Some(path) = uri.to_file_path() else {
            return Vec::new();
        };
        let Some(PlanStatus::Ready(plan)) = self.runner.plan(&deployment) else {
            return Vec::new();
        };
        plan.problems
            .iter()
            .filter_map(|problem| {
                let range = match &problem.position {
                    Some(position) => {
                        let file = deployment.flake_dir.join(&position.file);
                        if file != path.as_ref() {
                            return None;
                        }
                        let start = Position {
                            line: position.line.saturating_sub(1),
                            character: position.column.saturating_sub(1),
                        };
                        Range { start, end: start }
                    }
                    None => document.range(self.declaration_range(document, &problem.resource.0)?),
                };
                Some(Diagnostic {
                    range,
                    severity: Some(DiagnosticSeverity::ERROR),
                    code: Some(NumberOrString::String("evaluation".into())),
                    source: Some("nixops4".into()),
                    message: format!("{}: {}", problem.resource, problem.message),
                    ..Diagnostic::default()
                })
            })
            .collect()
    }

    fn declaration_range(
        &self,
        document: &Document,
        path: &[String],
    ) -> Option<nixops4_analysis::TextRange> {
        document
            .analysis
            .declared_resource(path)
            .map(|resource| resource.name_range)
    }

    /// Lenses: the plan's summary with "apply" at the top, and per resource its planned
    /// change with "apply this resource". Resources to delete that this document no longer
    /// declares are shown where it last declared them, if known, else in the summary.
    pub(crate) async fn lenses(&self, uri: &Uri) -> Vec<CodeLens> {
        if !self.project().trusted {
            return Vec::new();
        }
        let (Some(document), Some(deployment)) = (self.snapshot(uri), self.deployment_of(uri))
        else {
            return Vec::new();
        };
        let top = Range::default();
        let argument = |targets: Vec<Vec<String>>| json!({"uri": uri.as_str(), "targets": targets});
        let plan = match self.runner.plan(&deployment) {
            None | Some(PlanStatus::Planning) => {
                return vec![lens(top, "NixOps4: planning…", None, Value::Null)];
            }
            Some(PlanStatus::Failed(error)) => {
                return vec![lens(
                    top,
                    &format!("NixOps4: cannot plan: {error}"),
                    Some(PLAN),
                    argument(Vec::new()),
                )];
            }
            Some(PlanStatus::Ready(plan)) => plan,
        };
        let mut lenses = Vec::new();
        let mut undeclared = Vec::new();
        let mut last_seen = self.last_declared.entry(uri.clone()).or_default();
        for planned in &plan.resources {
            let range = match self.declaration_range(&document, &planned.resource.0) {
                Some(range) => {
                    let range = document.range(range);
                    last_seen.insert(planned.resource.0.clone(), range);
                    Some(range)
                }
                None => last_seen.get(&planned.resource.0).copied(),
            };
            match range {
                Some(range) => lenses.push(lens(
                    range,
                    &runner::label(planned),
                    (planned.action != Action::Delete).then_some(APPLY),
                    argument(vec![planned.resource.0.clone()]),
                )),
                None if planned.action == Action::Delete => {
                    undeclared.push(planned.resource.to_string())
                }
                None => {}
            }
        }
        drop(last_seen);
        let mut title = format!(
            "▶ Apply deployment `{}` ({})",
            deployment.name,
            runner::summary(&plan)
        );
        if !undeclared.is_empty() {
            title.push_str(&format!(", deletes {}", undeclared.join(", ")));
        }
        lenses.insert(0, lens(top, &title, Some(APPLY), argument(Vec::new())));
        lenses
    }

    /// `nixops4/plan`: the latest plan of the document's deployment (made now if there is
    /// none yet), with its summary.
    pub(crate) async fn plan_request(&self, params: PlanParams) -> Result<Option<Value>> {
        if !self.may_evaluate().await {
            return Err(refused("the workspace is not trusted"));
        }
        let deployment = self
            .deployment_of(&params.uri)
            .ok_or_else(|| Error::invalid_params("the document is not open or not in a flake"))?;
        let plan = match self.runner.plan(&deployment) {
            Some(PlanStatus::Ready(plan)) => (*plan).clone(),
            _ => self
                .runner
                .plan_now(&deployment)
                .await
                .map_err(|e| refused(e.to_string()))?,
        };
        // The custom operations of each resource the document declares, from its type's
        // schema, for clients that offer them in a list.
        let operations: Vec<Value> = self
            .context(&params.uri)
            .map(|context| {
                let analysis = &context.document.analysis;
                analysis
                    .declared_resources()
                    .into_iter()
                    .filter_map(|resource| {
                        let names: Vec<&String> = analysis
                            .operations(&resource, &context.schemas)
                            .keys()
                            .collect();
                        (!names.is_empty())
                            .then(|| json!({"resource": resource.path, "operations": names}))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Some(json!({
            "deployment": deployment.name,
            "flake": deployment.flake_dir,
            "summary": plan.summary(),
            "plan": plan,
            "operations": operations,
        })))
    }

    /// Actions for the resource under the cursor: apply it, destroy it, run its operations.
    pub(crate) fn resource_actions(
        &self,
        uri: &Uri,
        document: &Document,
        offset: nixops4_analysis::TextSize,
        schemas: &nixops4_analysis::Schemas,
    ) -> Vec<CodeActionOrCommand> {
        if !self.project().trusted {
            return Vec::new();
        }
        let Some(resource) = document.analysis.resource_named_at(offset) else {
            return Vec::new();
        };
        let path = resource.path.clone();
        let shown = ResourcePath(path.clone()).to_string();
        let argument = |extra: Value| {
            let mut value = json!({"uri": uri.as_str(), "targets": [path.clone()]});
            if let (Some(object), Value::Object(more)) = (value.as_object_mut(), extra) {
                object.extend(more);
            }
            vec![value]
        };
        let command = |title: String, name: &str, extra: Value| {
            CodeActionOrCommand::Command(Command {
                title,
                command: name.to_owned(),
                arguments: Some(argument(extra)),
            })
        };
        let mut actions = vec![
            command(
                format!("Apply {shown} (and what it depends on)"),
                APPLY,
                json!({}),
            ),
            command(
                format!("Destroy {shown} (and what depends on it)"),
                DESTROY,
                json!({}),
            ),
        ];
        let operations: Vec<String> = document
            .analysis
            .operations(&resource, schemas)
            .keys()
            .cloned()
            .collect();
        for operation in operations {
            actions.push(command(
                format!("Run `{operation}` on {shown}"),
                RUN_OPERATION,
                json!({"operation": operation}),
            ));
        }
        actions
    }

    pub(crate) async fn execute(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        if !COMMANDS.contains(&params.command.as_str()) {
            return Err(Error::invalid_params(format!(
                "unknown command `{}`",
                params.command
            )));
        }
        if !self.may_evaluate().await {
            return Err(refused("the workspace is not trusted"));
        }
        let arguments: CommandArguments = match params.arguments.first() {
            Some(value) => serde_json::from_value(value.clone())
                .map_err(|e| Error::invalid_params(e.to_string()))?,
            None => CommandArguments::default(),
        };
        let uri = arguments
            .uri
            .clone()
            .ok_or_else(|| Error::invalid_params("the command needs the document's `uri`"))?;
        let deployment = self
            .deployment_of(&uri)
            .ok_or_else(|| Error::invalid_params("the document is not open or not in a flake"))?;
        let targets: Vec<ResourcePath> = arguments
            .targets
            .iter()
            .cloned()
            .map(ResourcePath)
            .collect();
        let token = params.work_done_progress_params.work_done_token.clone();
        let command = params.command.clone();
        if matches!(command.as_str(), DESTROY | RUN_OPERATION) && targets.len() != 1 {
            return Err(Error::invalid_params(format!(
                "`{command}` acts on one resource, given in `targets`"
            )));
        }
        // The job runs apart from this request: should the request be dropped (the server
        // shutting down), the job still finishes and records what it did.
        let backend = self.clone();
        let job = tokio::spawn(async move {
            backend
                .run_command(&command, &uri, &deployment, &targets, arguments, token)
                .await
        });
        let result = job
            .await
            .map_err(|e| refused(format!("the command stopped: {e}")))?;
        match result {
            Ok(value) => Ok(Some(value)),
            Err(message) => {
                self.client
                    .show_message(MessageType::ERROR, format!("NixOps4: {message}"))
                    .await;
                Err(refused(message))
            }
        }
    }

    async fn run_command(
        &self,
        command: &str,
        uri: &Uri,
        deployment: &Deployment,
        targets: &[ResourcePath],
        arguments: CommandArguments,
        token: Option<ProgressToken>,
    ) -> std::result::Result<Value, String> {
        let result = match (command, targets) {
            (PLAN, _) => self
                .runner
                .plan_now(deployment)
                .await
                .map(|plan| json!({"summary": plan.summary(), "plan": plan}))
                .map_err(|e| e.to_string()),
            (APPLY, _) => {
                self.apply(deployment, targets, arguments.confirmed, token)
                    .await
            }
            (DESTROY, [target]) => {
                self.destroy(deployment, target, arguments.confirmed, token)
                    .await
            }
            (REFRESH, _) => runner::refresh(deployment)
                .await
                .map(|report| json!(report))
                .map_err(|e| e.to_string()),
            (_, [target]) => {
                self.operation(
                    uri,
                    deployment,
                    target,
                    arguments.operation,
                    arguments.arguments,
                    arguments.confirmed,
                )
                .await
            }
            _ => Err(format!(
                "`{command}` acts on one resource, given in `targets`"
            )),
        };
        if command != PLAN {
            let _ = self.runner.plan_now(deployment).await;
        }
        self.plan_changed().await;
        result
    }

    /// Asks before something destructive, unless the client did.
    async fn confirm(&self, question: String, action: &str, confirmed: bool) -> bool {
        if confirmed {
            return true;
        }
        let go = MessageActionItem {
            title: action.to_owned(),
            properties: HashMap::new(),
        };
        let answer = self
            .client
            .show_message_request(
                MessageType::WARNING,
                question,
                Some(vec![
                    go.clone(),
                    MessageActionItem {
                        title: "Cancel".into(),
                        properties: HashMap::new(),
                    },
                ]),
            )
            .await;
        matches!(answer, Ok(Some(chosen)) if chosen.title == go.title)
    }

    /// Runs a job with work-done progress: each engine event becomes a progress message;
    /// cancelling the progress interrupts the job.
    async fn with_progress<T, F>(
        &self,
        title: &str,
        token: Option<ProgressToken>,
        work: impl FnOnce(nixops4_core::events::EventSink, Arc<std::sync::atomic::AtomicBool>) -> F,
    ) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let token = match token {
            Some(token) => Some(token),
            None if self.client_progress.load(Ordering::SeqCst) => {
                let token = ProgressToken::String(format!(
                    "nixops4/{}",
                    self.next_token.fetch_add(1, Ordering::SeqCst)
                ));
                self.client
                    .send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                        token: token.clone(),
                    })
                    .await
                    .ok()
                    .map(|()| token)
            }
            None => None,
        };
        let key = match &token {
            Some(ProgressToken::String(s)) => s.clone(),
            Some(ProgressToken::Number(n)) => n.to_string(),
            None => format!(
                "nixops4/untracked/{}",
                self.next_token.fetch_add(1, Ordering::SeqCst)
            ),
        };
        let (sender, mut events) = tokio::sync::mpsc::unbounded_channel::<Event>();
        let progress = match token {
            Some(token) => Some(
                self.client
                    .progress(token, title)
                    .with_cancel_button()
                    .begin()
                    .await,
            ),
            None => None,
        };
        let forward = async {
            while let Some(event) = events.recv().await {
                let line = runner::event_line(&event);
                self.client
                    .log_message(MessageType::INFO, format!("NixOps4: {line}"))
                    .await;
                if let Some(progress) = &progress {
                    progress.report_with_message(line, None).await;
                }
            }
        };
        let job = self
            .runner
            .job(&key, |interrupt| work(Some(sender), interrupt));
        let (result, ()) = tokio::join!(job, forward);
        if let Some(progress) = progress {
            progress.finish().await;
        }
        result
    }

    async fn apply(
        &self,
        deployment: &Deployment,
        targets: &[ResourcePath],
        confirmed: bool,
        token: Option<ProgressToken>,
    ) -> std::result::Result<Value, String> {
        let title = match targets {
            [] => format!("Applying deployment `{}`", deployment.name),
            _ => format!(
                "Applying {}",
                targets
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let outcome = self
            .with_progress(&title, token, |events, interrupt| {
                runner::apply(deployment, targets, events, interrupt, |plan| async move {
                    // A targeted apply never deletes; only a whole one asks.
                    if !targets.is_empty() || !plan.is_destructive() {
                        return true;
                    }
                    let question = format!(
                        "The plan for `{}` deletes or replaces resources ({}). Apply it?",
                        plan.deployment,
                        runner::summary(&plan)
                    );
                    self.confirm(question, "Apply", confirmed).await
                })
            })
            .await
            .map_err(|e| e.to_string())?;
        let Some((_, report)) = outcome else {
            self.client
                .show_message(MessageType::INFO, "NixOps4: nothing applied.")
                .await;
            return Ok(json!({"applied": false}));
        };
        self.report(&title, &report).await;
        Ok(json!(report))
    }

    async fn destroy(
        &self,
        deployment: &Deployment,
        target: &ResourcePath,
        confirmed: bool,
        token: Option<ProgressToken>,
    ) -> std::result::Result<Value, String> {
        let question = format!(
            "Destroy {target} and every resource that depends on it? This deletes them for real."
        );
        if !self.confirm(question, "Destroy", confirmed).await {
            self.client
                .show_message(MessageType::INFO, "NixOps4: nothing destroyed.")
                .await;
            return Ok(json!({"destroyed": false}));
        }
        let title = format!("Destroying {target}");
        let report = self
            .with_progress(&title, token, |events, interrupt| {
                runner::destroy(deployment, target, events, interrupt)
            })
            .await
            .map_err(|e| e.to_string())?;
        self.report(&title, &report).await;
        Ok(json!(report))
    }

    async fn report(&self, title: &str, report: &nixops4_core::engine::ApplyReport) {
        let kind = if report.succeeded() {
            MessageType::INFO
        } else {
            MessageType::ERROR
        };
        let message = format!("NixOps4: {title}: {}", runner::outcome(report));
        self.client.log_message(kind, &message).await;
        self.client.show_message(kind, message).await;
    }

    /// Runs an operation; without a name, asks which of the resource type's operations.
    async fn operation(
        &self,
        uri: &Uri,
        deployment: &Deployment,
        target: &ResourcePath,
        operation: Option<String>,
        arguments: Map<String, Value>,
        confirmed: bool,
    ) -> std::result::Result<Value, String> {
        let operations = self
            .context(uri)
            .and_then(|context| {
                let analysis = &context.document.analysis;
                let resource = analysis.declared_resource(&target.0)?;
                Some(analysis.operations(&resource, &context.schemas).clone())
            })
            .unwrap_or_default();
        let operation = match operation {
            Some(operation) => operation,
            None => {
                let choices: Vec<MessageActionItem> = operations
                    .keys()
                    .map(|name| MessageActionItem {
                        title: name.clone(),
                        properties: HashMap::new(),
                    })
                    .collect();
                if choices.is_empty() {
                    return Err(format!("{target} has no operations"));
                }
                match self
                    .client
                    .show_message_request(
                        MessageType::INFO,
                        format!("Which operation on {target}?"),
                        Some(choices),
                    )
                    .await
                {
                    Ok(Some(chosen)) => chosen.title,
                    _ => return Ok(json!({"ran": false})),
                }
            }
        };
        // The client collects arguments (LSP has no generic way to ask for values): name
        // the missing ones rather than run without them.
        let missing: Vec<&str> = operations
            .get(&operation)
            .and_then(|o| o.arguments.get("required"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|name| !arguments.contains_key(*name))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "`{operation}` needs the arguments {}; pass them in the command's `arguments`",
                missing.join(", ")
            ));
        }
        if operations.get(&operation).is_some_and(|o| o.destructive)
            && !self
                .confirm(
                    format!("`{operation}` on {target} cannot be undone. Run it?"),
                    "Run",
                    confirmed,
                )
                .await
        {
            return Ok(json!({"ran": false}));
        }
        let result = runner::run_operation(deployment, target, &operation, arguments)
            .await
            .map_err(|e| e.to_string())?;
        let message = format!("NixOps4: `{operation}` on {target}: {result}");
        self.client.log_message(MessageType::INFO, &message).await;
        self.client.show_message(MessageType::INFO, message).await;
        Ok(json!({"ran": true, "result": result}))
    }
}

/// An error answer carrying why a command or request was refused or failed.
fn refused(message: impl Into<String>) -> Error {
    Error {
        code: tower_lsp_server::jsonrpc::ErrorCode::InvalidRequest,
        message: message.into().into(),
        data: None,
    }
}

fn lens(range: Range, title: &str, command: Option<&str>, argument: Value) -> CodeLens {
    CodeLens {
        range,
        command: Some(Command {
            title: title.to_owned(),
            // A lens without an action still needs a command; an empty one does nothing.
            command: command.unwrap_or_default().to_owned(),
            arguments: command.map(|_| vec![argument]),
        }),
        data: None,
    }
}
