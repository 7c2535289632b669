//! The engine's side of the evaluator: starts `nixops4-eval`, sends requests, and matches
//! replies to them by id, so several requests can be outstanding at once.
//!
//! Dropping a request's future before it completes cancels it in the evaluator. If the
//! evaluator process dies, every outstanding and later request fails with an error that
//! says so; start a new client to go on.

use std::collections::HashMap;
use std::future::Future;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

use crate::protocol::*;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Response, EvalError>>>>>;
/// Where the progress of each running build goes, by request id.
type Progress = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<BuildProgress>>>>;

/// How to start the evaluator.
#[derive(Clone, Debug, Default)]
pub struct EvalOptions {
    /// The `nixops4-eval` program; by default the one beside the running executable, else
    /// `nixops4-eval` on `PATH`.
    pub program: Option<PathBuf>,
    /// The Nix command (program and leading arguments); by default `nix`.
    pub nix_command: Option<String>,
    /// Bound on one evaluation step.
    pub timeout: Option<Duration>,
    /// Receives the evaluator's log lines (Nix traces and warnings) besides `tracing`.
    pub log_sink: Option<mpsc::UnboundedSender<LogLine>>,
}

pub struct EvalClient {
    child: Child,
    lines: mpsc::UnboundedSender<String>,
    pending: Pending,
    progress: Progress,
    next_id: AtomicU64,
}

impl EvalClient {
    pub async fn start(options: EvalOptions) -> std::io::Result<EvalClient> {
        let program = options.program.clone().unwrap_or_else(default_program);
        let mut command = Command::new(&program);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if let Some(nix) = &options.nix_command {
            command.env("NIXOPS4_NIX", nix);
        }
        if let Some(timeout) = options.timeout {
            command.env("NIXOPS4_EVAL_TIMEOUT", timeout.as_secs_f64().to_string());
        }
        let mut child = command.spawn().map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot start {}: {e}", program.display()))
        })?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");

        let (lines, mut outgoing) = mpsc::unbounded_channel::<String>();
        tokio::spawn(async move {
            while let Some(line) = outgoing.recv().await {
                if stdin.write_all(line.as_bytes()).await.is_err() || stdin.flush().await.is_err() {
                    break;
                }
            }
        });

        let pending: Pending = Arc::default();
        let replies = pending.clone();
        let progress: Progress = Arc::default();
        let builds = progress.clone();
        let log_sink = options.log_sink.clone();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stdout).lines();
            loop {
                let line = match reader.next_line().await {
                    Ok(Some(line)) => line,
                    Ok(None) | Err(_) => break,
                };
                match serde_json::from_str::<ResponseLine>(&line) {
                    Ok(ResponseLine::Result { id, result }) => deliver(&replies, id, Ok(result)),
                    Ok(ResponseLine::Error { id, error }) => deliver(&replies, id, Err(error)),
                    Ok(ResponseLine::Build { id, build }) => {
                        if let Some(sink) =
                            builds.lock().unwrap_or_else(|e| e.into_inner()).get(&id)
                        {
                            let _ = sink.send(build);
                        }
                    }
                    Ok(ResponseLine::Log { log }) => {
                        match log.level {
                            LogLevel::Trace => {
                                tracing::info!(target: "nixops4::nix", "trace: {}", log.message)
                            }
                            LogLevel::Warning => {
                                tracing::warn!(target: "nixops4::nix", "{}", log.message)
                            }
                            LogLevel::Info => {
                                tracing::info!(target: "nixops4::nix", "{}", log.message)
                            }
                        }
                        if let Some(sink) = &log_sink {
                            let _ = sink.send(log);
                        }
                    }
                    Err(e) => tracing::error!(
                        "nixops4-eval printed a line that is not a reply ({e}): {line}"
                    ),
                }
            }
            // The evaluator is gone: fail whatever still waits.
            let waiting: Vec<_> = replies
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .drain()
                .collect();
            for (_, reply) in waiting {
                let _ = reply.send(Err(evaluator_gone()));
            }
        });

        Ok(EvalClient {
            child,
            lines,
            pending,
            progress,
            next_id: AtomicU64::new(1),
        })
    }

    /// Sends a request and waits for its reply.
    pub async fn request(&self, request: Request) -> Result<Response, EvalError> {
        self.send(request, None).await
    }

    /// Sends a request now; the future owns what it needs, so it may outlive `self`'s
    /// borrow. Dropping it before the reply cancels the request.
    fn send(
        &self,
        request: Request,
        progress: Option<mpsc::UnboundedSender<BuildProgress>>,
    ) -> impl Future<Output = Result<Response, EvalError>> + Send + 'static {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (reply, answer) = oneshot::channel();
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, reply);
        if let Some(progress) = progress {
            self.progress
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(id, progress);
        }
        let line = serde_json::to_string(&RequestEnvelope { id, request })
            .expect("requests are plain JSON")
            + "\n";
        let sent = self.lines.send(line).is_ok();
        if !sent {
            self.pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&id);
        }
        let (lines, builds) = (self.lines.clone(), self.progress.clone());
        async move {
            if !sent {
                builds.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                return Err(evaluator_gone());
            }
            let mut guard = CancelOnDrop {
                id,
                lines,
                builds,
                done: false,
            };
            let result = answer.await.unwrap_or_else(|_| Err(evaluator_gone()));
            guard.done = true;
            result
        }
    }

    /// Builds derivation outputs in the evaluator, which runs `nix build` beside the
    /// evaluation requests; `progress` hears of each derivation Nix starts building. The
    /// future does not borrow `self`: it can run as a task of its own.
    pub fn build(
        &self,
        derivations: Vec<Derivation>,
        progress: mpsc::UnboundedSender<BuildProgress>,
    ) -> impl Future<Output = Result<Vec<BuildResult>, EvalError>> + Send + 'static {
        let expected = derivations.len();
        let reply = self.send(Request::Build { derivations }, Some(progress));
        async move {
            match reply.await? {
                Response::Built { results } if results.len() == expected => Ok(results),
                other => Err(unexpected(other)),
            }
        }
    }

    pub async fn load_flake(&self, flake: &str) -> Result<Loaded, EvalError> {
        match self
            .request(Request::LoadFlake {
                flake: flake.to_owned(),
            })
            .await?
        {
            Response::Loaded(loaded) => Ok(loaded),
            other => Err(unexpected(other)),
        }
    }

    pub async fn list_resources(&self, deployment: &str) -> Result<Vec<ResourcePath>, EvalError> {
        match self
            .request(Request::ListResources {
                deployment: deployment.to_owned(),
            })
            .await?
        {
            Response::Resources { resources } => Ok(resources),
            other => Err(unexpected(other)),
        }
    }

    /// The scripts of a deployment, nested ones included, with where each is declared.
    pub async fn list_scripts(&self, deployment: &str) -> Result<Vec<DeclaredScript>, EvalError> {
        let request = Request::ListScripts {
            deployment: deployment.to_owned(),
        };
        match self.request(request).await? {
            Response::Scripts { scripts } => Ok(scripts),
            other => Err(unexpected(other)),
        }
    }

    /// The options of a module-system deployment; none for a plain deployment.
    pub async fn list_options(&self, deployment: &str) -> Result<Vec<ModuleOption>, EvalError> {
        let request = Request::ListOptions {
            deployment: deployment.to_owned(),
        };
        match self.request(request).await? {
            Response::Options { options } => Ok(options),
            other => Err(unexpected(other)),
        }
    }

    /// What to run for a script and the outputs it gets, or the resources it waits for.
    pub async fn evaluate_script(
        &self,
        deployment: &str,
        script: &ResourcePath,
    ) -> Result<Evaluation<ScriptSpec>, EvalError> {
        let request = Request::EvaluateScript {
            deployment: deployment.to_owned(),
            script: script.clone(),
        };
        match self.request(request).await? {
            Response::Script(evaluation) => Ok(evaluation),
            other => Err(unexpected(other)),
        }
    }

    pub async fn evaluate_resource(
        &self,
        deployment: &str,
        resource: &ResourcePath,
    ) -> Result<Evaluation<ResourceSpec>, EvalError> {
        let request = Request::EvaluateResource {
            deployment: deployment.to_owned(),
            resource: resource.clone(),
        };
        match self.request(request).await? {
            Response::Resource(evaluation) => Ok(evaluation),
            other => Err(unexpected(other)),
        }
    }

    /// Evaluates many resources in one request; one item per resource, in order.
    pub async fn evaluate_resources(
        &self,
        deployment: &str,
        resources: &[ResourcePath],
    ) -> Result<Vec<BatchItem>, EvalError> {
        if resources.is_empty() {
            return Ok(Vec::new());
        }
        let request = Request::EvaluateResources {
            deployment: deployment.to_owned(),
            resources: resources.to_vec(),
        };
        match self.request(request).await? {
            Response::ResourceBatch { items } if items.len() == resources.len() => Ok(items),
            other => Err(unexpected(other)),
        }
    }

    /// [`EvalClient::evaluate_resources`], with each item as `evaluate_resource` answers.
    pub async fn evaluate_each(
        &self,
        deployment: &str,
        resources: &[ResourcePath],
    ) -> Result<Vec<(ResourcePath, Result<Evaluation<ResourceSpec>, EvalError>)>, EvalError> {
        let items = self.evaluate_resources(deployment, resources).await?;
        Ok(resources
            .iter()
            .cloned()
            .zip(items.into_iter().map(|item| match item {
                BatchItem::Ready { value } => Ok(Evaluation::Ready { value }),
                BatchItem::Waiting { resources } => Ok(Evaluation::Waiting { resources }),
                BatchItem::Failed { error } => Err(error),
            }))
            .collect())
    }

    pub async fn state_references(
        &self,
        deployment: &str,
    ) -> Result<Vec<StateReference>, EvalError> {
        match self
            .request(Request::StateReferences {
                deployment: deployment.to_owned(),
            })
            .await?
        {
            Response::StateReferences { references } => Ok(references),
            other => Err(unexpected(other)),
        }
    }

    pub async fn provide_outputs(
        &self,
        deployment: &str,
        resource: &ResourcePath,
        outputs: Map<String, Value>,
    ) -> Result<(), EvalError> {
        let request = Request::ProvideOutputs {
            deployment: deployment.to_owned(),
            resource: resource.clone(),
            outputs,
        };
        match self.request(request).await? {
            Response::OutputsProvided {} => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    pub async fn evaluate_output(
        &self,
        deployment: &str,
        name: &str,
    ) -> Result<Evaluation<Value>, EvalError> {
        let request = Request::EvaluateOutput {
            deployment: deployment.to_owned(),
            name: name.to_owned(),
        };
        match self.request(request).await? {
            Response::Output(evaluation) => Ok(evaluation),
            other => Err(unexpected(other)),
        }
    }

    /// The evaluator's process id, for tests and diagnostics.
    pub fn process_id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Closes the evaluator's input and waits for it to exit.
    pub async fn shutdown(mut self) {
        drop(self.lines);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }
}

struct CancelOnDrop {
    id: u64,
    lines: mpsc::UnboundedSender<String>,
    builds: Progress,
    done: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.builds
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
        if !self.done {
            let _ = self.lines.send(format!("{{\"cancel\":{}}}\n", self.id));
        }
    }
}

fn deliver(pending: &Pending, id: u64, result: Result<Response, EvalError>) {
    if let Some(reply) = pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id)
    {
        let _ = reply.send(result);
    }
}

fn evaluator_gone() -> EvalError {
    EvalError {
        kind: EvalErrorKind::Nix,
        message: "the evaluator process exited".into(),
        position: None,
    }
}

fn unexpected(response: Response) -> EvalError {
    EvalError {
        kind: EvalErrorKind::Request,
        message: format!("the evaluator answered with an unexpected reply: {response:?}"),
        position: None,
    }
}

fn default_program() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("nixops4-eval")))
        .filter(|candidate| candidate.exists())
        .unwrap_or_else(|| PathBuf::from("nixops4-eval"))
}
