//! The engine session: one deployment of one flake, with one evaluator process for the
//! whole session, provider processes on demand, and where the deployment's state is.
//!
//! What a session does is in the modules beside this one, each an `impl Engine`: plan,
//! apply and destroy in [`crate::apply`], crash resume in [`crate::resume`], operations
//! and refresh in [`crate::operations`], state administration in [`crate::admin`]. Every
//! one that changes something does it inside [`Engine::locked`].

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nixops4_eval::client::{EvalClient, EvalOptions};
use nixops4_eval::protocol::{
    Evaluation, LockFileChange, ModuleOption, ProviderSpec, ResourcePath,
};
use serde_json::Value;

pub use crate::apply::ApplyReport;
use crate::error::EngineError;
use crate::events::EventSink;
pub use crate::operations::RefreshReport;
use crate::providers::ProviderPool;
use crate::secrets::Secrets;
use crate::state::{Mutation, ResourceRecord, StateStorage, StateStore};

pub struct EngineOptions {
    /// The flake's directory (or a flake reference the evaluator understands).
    pub flake: PathBuf,
    pub deployment: String,
    /// Where the state lives; by default `<flake>/.nixops4/<deployment>.state.jsonl`.
    pub state_file: Option<PathBuf>,
    /// How many provider calls may run at once.
    pub parallelism: usize,
    /// Bound on one provider request.
    pub provider_timeout: Duration,
    /// The local provider's program; by default the one beside the running executable.
    pub local_provider: Option<PathBuf>,
    pub eval: EvalOptions,
    pub events: EventSink,
    /// Set (by a Ctrl-C handler, say) to stop starting new work.
    pub interrupt: Arc<AtomicBool>,
}

impl EngineOptions {
    pub fn new(flake: impl Into<PathBuf>, deployment: &str) -> EngineOptions {
        EngineOptions {
            flake: flake.into(),
            deployment: deployment.to_owned(),
            state_file: None,
            parallelism: 10,
            provider_timeout: Duration::from_secs(600),
            local_provider: None,
            eval: EvalOptions::default(),
            events: None,
            interrupt: Arc::default(),
        }
    }
}

pub struct Engine {
    pub(crate) options: EngineOptions,
    flake_dir: PathBuf,
    /// Where the state is, found on first use (it may depend on the expression).
    state_location: tokio::sync::OnceCell<StateLocation>,
    pub(crate) eval: EvalClient,
    pub(crate) providers: ProviderPool,
    deployments: Vec<String>,
    lock_file: Option<LockFileChange>,
    /// Every secret known in this session: what leaves the engine has them hidden.
    pub(crate) secrets: Secrets,
}

impl Engine {
    /// Starts the evaluator and loads the flake. The deployment need not exist yet:
    /// listing deployments works on any flake.
    pub async fn start(options: EngineOptions) -> Result<Engine, EngineError> {
        let flake_dir = std::path::absolute(&options.flake)
            .map_err(|e| EngineError::usage(format!("flake {}: {e}", options.flake.display())))?;
        let eval = EvalClient::start(options.eval.clone())
            .await
            .map_err(|e| EngineError::internal(format!("starting the evaluator: {e}")))?;
        let loaded = eval.load_flake(&flake_dir.display().to_string()).await?;
        let local = options
            .local_provider
            .clone()
            .unwrap_or_else(|| beside_executable("nixops4-resources-local"));
        let secrets = Secrets::default();
        let providers = ProviderPool::new(
            local,
            flake_dir.clone(),
            options.provider_timeout,
            secrets.clone(),
        );

        Ok(Engine {
            options,
            flake_dir,
            state_location: tokio::sync::OnceCell::new(),
            eval,
            providers,
            deployments: loaded.deployments,
            lock_file: loaded.lock_file,
            secrets,
        })
    }

    /// The secrets known so far, for a front end that shows texts the engine did not
    /// make (a script's output, say) to hide them there too.
    pub fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// The error with every known secret in its message hidden: what every public
    /// method returns.
    pub(crate) fn hiding<T>(&self, result: Result<T, EngineError>) -> Result<T, EngineError> {
        result.map_err(|mut error| {
            error.message = self.secrets.redact(&error.message);
            error
        })
    }

    /// Learns the secret outputs of these records: by the names the record keeps, or,
    /// for a record written before it kept them, by asking its provider.
    pub(crate) async fn learn_recorded_secrets(&self, state: &StateStore) {
        for record in state.records().values() {
            self.learn_secrets_of(record).await;
        }
    }

    /// Learns the secret outputs of one record, and the input strings it says held a
    /// secret when it was written.
    pub(crate) async fn learn_secrets_of(&self, record: &ResourceRecord) {
        let Some(meta) = &record.nixops4 else {
            return;
        };
        if !meta.sensitive_inputs.is_empty() {
            let inputs = Value::Object(record.input_properties.clone());
            for pointer in &meta.sensitive_inputs {
                if let Some(value) = inputs.pointer(pointer) {
                    self.secrets.learn(value);
                }
            }
        }
        let names = match &meta.secret_outputs {
            Some(names) => names.clone(),
            None => match self.type_facts(&meta.provider, &record.resource_type).await {
                Ok(facts) => facts.secret_outputs,
                Err(_) => return,
            },
        };
        self.secrets
            .learn_outputs(&names, &record.output_properties);
    }

    pub fn deployments(&self) -> &[String] {
        &self.deployments
    }

    /// The flake's `flake.lock`, when loading the flake created or completed it (front
    /// ends say so: in a Git repository, the new file needs `git add`).
    pub fn lock_file_change(&self) -> Option<&LockFileChange> {
        self.lock_file.as_ref()
    }

    /// Where the state is: `--state-file` when given; else the state resource the
    /// deployment's resources name in `state`, through its own provider; else
    /// `<flake>/.nixops4/<deployment>.state.jsonl`.
    async fn state_location(&self) -> Result<&StateLocation, EngineError> {
        self.state_location
            .get_or_try_init(|| async {
                let deployment = self.deployment()?;
                let references = self.eval.state_references(deployment).await?;
                let named: BTreeSet<ResourcePath> = references.into_iter().filter_map(|r| r.state).collect();
                let resource = match named.len() {
                    0 => None,
                    1 => named.into_iter().next(),
                    _ => {
                        return Err(EngineError::usage(format!(
                            "resources name several state resources ({}); one per deployment is supported",
                            named.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
                        )));
                    }
                };
                let local = self.providers.local_command();
                let storage = match (&self.options.state_file, &resource) {
                    (Some(file), _) => StateStorage::local_file(local, file.clone()),
                    (None, None) => StateStorage::local_file(
                        local,
                        default_state_file(&self.flake_dir, &self.options.deployment),
                    ),
                    (None, Some(resource)) => self.state_resource_storage(deployment, resource).await?,
                };
                Ok(StateLocation { storage, resource })
            })
            .await
    }

    /// The storage a state resource declares: its provider, type and inputs. A
    /// `state_file` with a `name` (the local provider's, or upstream's) is a local file,
    /// relative to the flake.
    async fn state_resource_storage(
        &self,
        deployment: &str,
        resource: &ResourcePath,
    ) -> Result<StateStorage, EngineError> {
        let spec = match self.eval.evaluate_resource(deployment, resource).await? {
            Evaluation::Ready { value } => value,
            Evaluation::Waiting { resources } => {
                return Err(EngineError::usage(format!(
                    "the state resource {resource} depends on the outputs of {}; its inputs must be known before anything is applied",
                    resources
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        };
        let file = match (spec.resource_type.as_str(), spec.inputs.get("name")) {
            ("state_file", Some(Value::String(name))) => Some(self.flake_dir.join(name)),
            _ => None,
        };
        let label = match &file {
            Some(file) => format!("the state file {}", file.display()),
            None => format!("the state resource {resource} ({})", spec.type_name),
        };
        Ok(StateStorage {
            provider: self.providers.command(&spec.provider),
            resource_type: spec.resource_type,
            inputs: spec.inputs,
            file,
            label,
        })
    }

    /// The resources this engine plans and applies: all but the state resource, which is
    /// the store itself.
    pub(crate) async fn managed_resources(
        &self,
        deployment: &str,
    ) -> Result<Vec<ResourcePath>, EngineError> {
        let location = self.state_location().await?;
        let mut paths = self.eval.list_resources(deployment).await?;
        paths.retain(|p| Some(p) != location.resource.as_ref());
        Ok(paths)
    }

    /// Makes the state resource's outputs known, for expressions that use them.
    pub(crate) async fn provide_state_outputs(
        &self,
        deployment: &str,
        state: &StateStore,
    ) -> Result<(), EngineError> {
        if let Some(resource) = &self.state_location().await?.resource {
            self.eval
                .provide_outputs(deployment, resource, state.outputs())
                .await?;
        }
        Ok(())
    }

    pub fn flake_dir(&self) -> &Path {
        &self.flake_dir
    }

    pub(crate) fn deployment(&self) -> Result<&str, EngineError> {
        let name = &self.options.deployment;
        if self.deployments.contains(name) {
            Ok(name)
        } else {
            Err(EngineError::usage(format!(
                "the flake has no deployment `{name}` (it has: {})",
                self.deployments.join(", ")
            )))
        }
    }

    pub async fn resources(&self) -> Result<Vec<ResourcePath>, EngineError> {
        let listed = async { Ok(self.eval.list_resources(self.deployment()?).await?) };
        self.hiding(listed.await)
    }

    /// The options of a module-system deployment (none for a plain one), for the
    /// language server's completion and hover.
    pub async fn module_options(&self) -> Result<Vec<ModuleOption>, EngineError> {
        let listed = async { Ok(self.eval.list_options(self.deployment()?).await?) };
        self.hiding(listed.await)
    }

    pub(crate) async fn read_state(&self) -> Result<StateStore, EngineError> {
        let storage = &self.state_location().await?.storage;
        let state = StateStore::open_read_only(storage, self.options.provider_timeout).await?;
        self.learn_recorded_secrets(&state).await;
        Ok(state)
    }

    /// Where the state is stored, for `state unlock`.
    pub async fn state_storage(&self) -> Result<&StateStorage, EngineError> {
        Ok(&self.state_location().await?.storage)
    }

    /// Runs `work` with the state locked, and with the capability to change the world
    /// that holding the lock gives; then closes the state and the idle providers,
    /// whatever `work` returned, and hides secrets in its error. `what` says in the lock
    /// what its holder does.
    pub(crate) async fn locked<T>(
        &self,
        what: &str,
        work: impl AsyncFnOnce(&mut StateStore, Mutation) -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        let operation = format!("nixops4 {what} of deployment `{}`", self.options.deployment);
        let storage = &self.state_location().await?.storage;
        let (mut state, mutation) =
            StateStore::open_for_changes(storage, &operation, self.options.provider_timeout)
                .await?;
        self.learn_recorded_secrets(&state).await;
        let result = work(&mut state, mutation).await;
        state.close().await;
        self.providers.close().await;
        self.hiding(result)
    }

    /// Whether the user asked to stop starting new work.
    pub(crate) fn interrupted(&self) -> bool {
        self.options.interrupt.load(Ordering::SeqCst)
    }

    /// The provider's `replaceOnChange` and secret outputs for a type, when it describes
    /// itself.
    pub(crate) async fn type_facts(
        &self,
        provider: &ProviderSpec,
        resource_type: &str,
    ) -> Result<TypeFacts, EngineError> {
        let command = self.providers.command(provider);
        let described = self.providers.describe(&command).await?;
        let description = described
            .as_ref()
            .and_then(|d| d.resource_types.get(resource_type));
        Ok(TypeFacts {
            replace_on_change: description
                .map(|d| d.replace_on_change.clone())
                .unwrap_or_default(),
            secret_outputs: description
                .map(|d| d.secret_outputs.clone())
                .unwrap_or_default(),
            upstream_v0: described.is_none(),
        })
    }

    /// Makes the outputs recorded in state known, the state resource's included, for
    /// what is evaluated with them (outputs, scripts).
    pub(crate) async fn provide_recorded_outputs(
        &self,
        deployment: &str,
        state: &StateStore,
    ) -> Result<(), EngineError> {
        self.provide_state_outputs(deployment, state).await?;
        for (path, record) in state.records() {
            self.eval
                .provide_outputs(deployment, &path, record.output_properties)
                .await?;
        }
        Ok(())
    }

    /// Evaluates `outputs.<name>` of the deployment with the outputs recorded in state.
    /// A value that is or contains a secret is `(sensitive)` unless `secrets` reveals it.
    pub async fn output(&self, name: &str, secrets: Secrecy) -> Result<Value, EngineError> {
        let evaluated = async {
            let deployment = self.deployment()?.to_owned();
            let state = self.read_state().await?;
            self.provide_recorded_outputs(&deployment, &state).await?;
            match self.eval.evaluate_output(&deployment, name).await? {
                Evaluation::Ready { mut value } => {
                    if secrets == Secrecy::Hide {
                        self.secrets.hide_value(&mut value);
                    }
                    Ok(value)
                }
                Evaluation::Waiting { resources } => {
                    Err(not_applied(&format!("output `{name}`"), &resources))
                }
            }
        };
        self.hiding(evaluated.await)
    }

    pub async fn shutdown(self) {
        self.providers.close().await;
        self.eval.shutdown().await;
    }
}

/// Whether a value shown to a person has its secrets hidden (the default everywhere) or
/// revealed, because they asked for it explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrecy {
    Hide,
    Reveal,
}

#[derive(Default)]
pub(crate) struct TypeFacts {
    pub replace_on_change: Vec<String>,
    pub secret_outputs: Vec<String>,
    /// The provider speaks upstream's protocol v0 (it has no `describe`): resources
    /// without state are created again instead of updated, and none can be deleted.
    pub upstream_v0: bool,
}

struct StateLocation {
    storage: StateStorage,
    /// The deployment's state resource, when it names one.
    resource: Option<ResourcePath>,
}

/// `what` needs outputs of resources that the state does not record.
pub(crate) fn not_applied(what: &str, resources: &[ResourcePath]) -> EngineError {
    EngineError::usage(format!(
        "{what} needs the outputs of {}, which {} not applied yet",
        resources
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        if resources.len() == 1 { "is" } else { "are" }
    ))
}

/// A resource path as people type it: `host.key`, optionally after `resources.`.
pub fn parse_resource_path(text: &str) -> Result<ResourcePath, EngineError> {
    let text = text.strip_prefix("resources.").unwrap_or(text);
    if text.is_empty() || text.split('.').any(str::is_empty) {
        return Err(EngineError::usage(format!(
            "`{text}` is not a resource path like `host.key`"
        )));
    }
    Ok(ResourcePath::parse_dotted(text))
}

/// Refuses an empty resource path (which names no resource) before anything is locked.
pub(crate) fn refuse_empty(paths: &[ResourcePath]) -> Result<(), EngineError> {
    if paths.iter().any(|path| path.0.is_empty()) {
        return Err(EngineError::usage(
            "an empty resource path names no resource",
        ));
    }
    Ok(())
}

pub fn default_state_file(flake_dir: &Path, deployment: &str) -> PathBuf {
    flake_dir
        .join(".nixops4")
        .join(format!("{deployment}.state.jsonl"))
}

fn beside_executable(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join(name)))
        .filter(|candidate| candidate.exists())
        .unwrap_or_else(|| PathBuf::from(name))
}
