//! The engine: one deployment of one flake, with one evaluator process for the whole
//! session, provider processes on demand, and the deployment's state.
//!
//! Apply runs a single scheduling loop. It evaluates resources (the evaluator answers one
//! request at a time), starts provider calls concurrently up to the parallelism limit,
//! and records results in state in batches: an intent before each provider call and the
//! result after it, each batch synced before the loop goes on. Only then are outputs given
//! to the evaluator, so nothing depends on a result that is not in state.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use nixops4_eval::client::{EvalClient, EvalOptions};
use nixops4_eval::protocol::{Evaluation, ProviderSpec, ResourcePath, ResourceSpec};
use nixops4_provider_protocol::*;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::EngineError;
use crate::events::{Event, EventSink, emit};
use crate::plan::{self, Action, Plan, PlannedResource, Problem};
use crate::provider_client::{ProviderCommand, ProviderError};
use crate::providers::ProviderPool;
use crate::state::{Pending, RecordMeta, ResourceRecord, StateChange, StateStore};

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

/// What a refresh found.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshReport {
    /// Resources whose outputs changed outside NixOps4.
    pub changed: Vec<ResourcePath>,
    /// Resources that no longer exist; their records are removed.
    pub gone: Vec<ResourcePath>,
    pub unchanged: usize,
    /// Resources whose provider cannot read them.
    pub unreadable: Vec<ResourcePath>,
    pub failed: Vec<(ResourcePath, String)>,
}

/// What an apply or destroy did.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyReport {
    #[serde(serialize_with = "by_dotted_path")]
    pub applied: BTreeMap<ResourcePath, Action>,
    pub unchanged: usize,
    #[serde(serialize_with = "by_dotted_path")]
    pub failed: BTreeMap<ResourcePath, String>,
    #[serde(serialize_with = "by_dotted_path")]
    pub skipped: BTreeMap<ResourcePath, String>,
    pub interrupted: bool,
}

/// JSON object keys are strings: resources are keyed by their dotted path there.
fn by_dotted_path<S: serde::Serializer, V: Serialize>(
    map: &BTreeMap<ResourcePath, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.iter().map(|(path, value)| (path.to_string(), value)))
}

impl ApplyReport {
    pub fn succeeded(&self) -> bool {
        self.failed.is_empty() && self.skipped.is_empty() && !self.interrupted
    }
}

pub struct Engine {
    options: EngineOptions,
    flake_dir: PathBuf,
    /// Where the state is, found on first use (it may depend on the expression).
    state_location: tokio::sync::OnceCell<StateLocation>,
    eval: EvalClient,
    providers: ProviderPool,
    deployments: Vec<String>,
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
        let providers = ProviderPool::new(local, flake_dir.clone(), options.provider_timeout);

        Ok(Engine {
            options,
            flake_dir,
            state_location: tokio::sync::OnceCell::new(),
            eval,
            providers,
            deployments: loaded.deployments,
        })
    }

    pub fn deployments(&self) -> &[String] {
        &self.deployments
    }

    /// Where the state is: `--state-file` when given; else the file of the
    /// `local.state_file` resource the deployment's resources name in `state`; else
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
                let file = match (&self.options.state_file, &resource) {
                    (Some(file), _) => file.clone(),
                    (None, None) => default_state_file(&self.flake_dir, &self.options.deployment),
                    (None, Some(resource)) => self.state_resource_file(deployment, resource).await?,
                };
                Ok(StateLocation { file, resource })
            })
            .await
    }

    /// The file a `local.state_file` resource names, relative to the flake.
    async fn state_resource_file(
        &self,
        deployment: &str,
        resource: &ResourcePath,
    ) -> Result<PathBuf, EngineError> {
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
        match (spec.type_name.as_str(), spec.inputs.get("name")) {
            ("local.state_file", Some(Value::String(name))) => Ok(self.flake_dir.join(name)),
            _ => Err(EngineError::usage(format!(
                "the state resource {resource} must be a `local.state_file` with a `name` (it is {})",
                spec.type_name
            ))),
        }
    }

    /// The resources this engine plans and applies: all but the state resource, which is
    /// the store itself.
    async fn managed_resources(&self, deployment: &str) -> Result<Vec<ResourcePath>, EngineError> {
        let location = self.state_location().await?;
        let mut paths = self.eval.list_resources(deployment).await?;
        paths.retain(|p| Some(p) != location.resource.as_ref());
        Ok(paths)
    }

    /// Makes the state resource's outputs known, for expressions that use them.
    async fn provide_state_outputs(
        &self,
        deployment: &str,
        state: &StateStore,
    ) -> Result<(), EngineError> {
        if let Some(resource) = &self.state_location().await?.resource {
            let mut outputs = Map::new();
            outputs.insert(
                "path".into(),
                Value::String(state.file().display().to_string()),
            );
            self.eval
                .provide_outputs(deployment, resource, outputs)
                .await?;
        }
        Ok(())
    }

    pub fn flake_dir(&self) -> &Path {
        &self.flake_dir
    }

    fn deployment(&self) -> Result<&str, EngineError> {
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
        Ok(self.eval.list_resources(self.deployment()?).await?)
    }

    async fn read_state(&self) -> Result<StateStore, EngineError> {
        let file = &self.state_location().await?.file;
        StateStore::open_read_only(
            &self.providers.local_command(),
            file,
            self.options.provider_timeout,
        )
        .await
    }

    async fn lock_state(&self, what: &str) -> Result<StateStore, EngineError> {
        let holder = format!("nixops4 {what} of deployment `{}`", self.options.deployment);
        let file = &self.state_location().await?.file;
        StateStore::open_for_changes(
            &self.providers.local_command(),
            file,
            &holder,
            self.options.provider_timeout,
        )
        .await
    }

    /// The provider's `replaceOnChange` and secret outputs for a type, when it describes
    /// itself.
    async fn type_facts(
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
        })
    }

    /// Plans the deployment against its state, without changing anything.
    pub async fn plan(&self) -> Result<Plan, EngineError> {
        let state = self.read_state().await?;
        Ok(self.plan_with(&state).await?.0)
    }

    /// The plan against `state`, and the resources that were evaluated for it, which an
    /// apply in the same session need not evaluate again.
    async fn plan_with(
        &self,
        state: &StateStore,
    ) -> Result<(Plan, BTreeMap<ResourcePath, ResourceSpec>), EngineError> {
        let deployment = self.deployment()?.to_owned();
        let records = state.records();
        let paths = self.managed_resources(&deployment).await?;
        self.provide_state_outputs(&deployment, state).await?;
        let declared: BTreeSet<&ResourcePath> = paths.iter().collect();
        let secrets = self.secret_values(&records).await;

        let mut planned: BTreeMap<ResourcePath, PlannedResource> = BTreeMap::new();
        let mut problems = Vec::new();
        let mut evaluated = plan::Evaluated::new();
        let mut specs = BTreeMap::new();
        let mut waits: BTreeMap<ResourcePath, Vec<ResourcePath>> = BTreeMap::new();
        let mut queue: Vec<ResourcePath> = paths.clone();
        while !queue.is_empty() {
            let mut provided = BTreeSet::new();
            let batch = std::mem::take(&mut queue);
            for (path, evaluation) in self.eval.evaluate_each(&deployment, &batch).await? {
                match evaluation {
                    Ok(Evaluation::Ready { value: spec }) => {
                        waits.remove(&path);
                        let record = records.get(&path);
                        let facts = match self.type_facts(&spec.provider, &spec.resource_type).await
                        {
                            Ok(facts) => facts,
                            Err(error) => {
                                problems.push(Problem {
                                    resource: path,
                                    message: error.message,
                                    position: spec.position,
                                });
                                continue;
                            }
                        };
                        let (action, mut changes) = plan::decide(
                            &spec.inputs,
                            &spec.type_name,
                            record,
                            &facts.replace_on_change,
                        );
                        plan::redact(&mut changes, &secrets);
                        if action == Action::NoChange
                            && let Some(record) = record
                        {
                            self.eval
                                .provide_outputs(
                                    &deployment,
                                    &path,
                                    record.output_properties.clone(),
                                )
                                .await?;
                            provided.insert(path.clone());
                        }
                        evaluated.insert(
                            path.clone(),
                            Some((spec.type_name.clone(), spec.inputs.clone())),
                        );
                        specs.insert(path.clone(), spec.clone());
                        planned.insert(
                            path.clone(),
                            PlannedResource {
                                resource: path,
                                type_name: spec.type_name,
                                action,
                                changes,
                                inputs_known: true,
                                waiting_for: Vec::new(),
                                position: spec.position,
                            },
                        );
                    }
                    Ok(Evaluation::Waiting { resources }) => {
                        waits.insert(path, resources);
                    }
                    Err(error) => problems.push(Problem {
                        resource: path,
                        message: error.message.clone(),
                        position: error.position.clone(),
                    }),
                }
            }
            queue = waits
                .iter()
                .filter(|(_, awaited)| awaited.iter().any(|a| provided.contains(a)))
                .map(|(path, _)| path.clone())
                .collect();
        }
        // What still waits depends on resources that change: its inputs are known after apply.
        for (path, awaited) in waits {
            let blocked_by_problem = awaited
                .iter()
                .find(|a| problems.iter().any(|p| &p.resource == *a));
            if let Some(failed) = blocked_by_problem {
                problems.push(Problem {
                    message: format!("needs the outputs of {failed}, which cannot be evaluated"),
                    resource: path,
                    position: None,
                });
                continue;
            }
            let record = records.get(&path);
            evaluated.insert(path.clone(), None);
            planned.insert(
                path.clone(),
                PlannedResource {
                    type_name: record.map(|r| r.type_name().to_owned()).unwrap_or_default(),
                    action: if record.is_some() {
                        Action::Update
                    } else {
                        Action::Create
                    },
                    resource: path,
                    changes: Vec::new(),
                    inputs_known: false,
                    waiting_for: awaited,
                    position: None,
                },
            );
        }
        for (path, record) in &records {
            if !declared.contains(path) {
                planned.insert(
                    path.clone(),
                    PlannedResource {
                        resource: path.clone(),
                        type_name: record.type_name().to_owned(),
                        action: Action::Delete,
                        changes: Vec::new(),
                        inputs_known: true,
                        waiting_for: Vec::new(),
                        position: None,
                    },
                );
            }
        }
        let fingerprint = plan::fingerprint(&evaluated, state.document());
        let plan = Plan {
            deployment,
            resources: planned.into_values().collect(),
            problems,
            fingerprint,
        };
        Ok((plan, specs))
    }

    /// Secret output values recorded in state, to keep out of plans.
    async fn secret_values(
        &self,
        records: &BTreeMap<ResourcePath, ResourceRecord>,
    ) -> BTreeSet<String> {
        let mut secrets = BTreeSet::new();
        for record in records.values() {
            let Some(meta) = &record.nixops4 else {
                continue;
            };
            let Ok(facts) = self.type_facts(&meta.provider, &record.resource_type).await else {
                continue;
            };
            for name in &facts.secret_outputs {
                match record.output_properties.get(name) {
                    Some(Value::String(value)) => {
                        secrets.insert(value.clone());
                    }
                    Some(other) => {
                        secrets.insert(other.to_string());
                    }
                    None => {}
                }
            }
        }
        secrets
    }

    /// Applies the deployment: creates, updates, replaces and (without targets) deletes.
    /// With targets, only they and what they depend on are applied.
    ///
    /// The state is locked first and the plan made against it; `approve` sees that plan
    /// (to show it, ask, or compare it with a saved one) and says whether to go on. So
    /// what is applied is exactly what was approved. `None` when it was not approved.
    pub async fn apply(
        &self,
        targets: &[ResourcePath],
        approve: impl FnOnce(&Plan) -> Result<bool, EngineError>,
    ) -> Result<Option<ApplyReport>, EngineError> {
        let deployment = self.deployment()?.to_owned();
        let mut state = self.lock_state("apply").await?;
        let result = self
            .apply_locked(&deployment, &mut state, targets, approve)
            .await;
        state.close().await;
        self.providers.close().await;
        result
    }

    async fn apply_locked(
        &self,
        deployment: &str,
        state: &mut StateStore,
        targets: &[ResourcePath],
        approve: impl FnOnce(&Plan) -> Result<bool, EngineError>,
    ) -> Result<Option<ApplyReport>, EngineError> {
        self.resume(state).await?;
        let (plan, specs) = self.plan_with(state).await?;
        if !approve(&plan)? {
            return Ok(None);
        }
        let paths = self.managed_resources(deployment).await?;
        for target in targets {
            if !paths.contains(target) {
                return Err(EngineError::usage(format!(
                    "there is no resource {target} in deployment `{deployment}`"
                )));
            }
        }
        let mut run = Run::new(self, deployment);
        run.known = specs;
        let initial = if targets.is_empty() {
            paths.clone()
        } else {
            targets.to_vec()
        };
        run.apply_resources(state, initial).await?;
        if targets.is_empty() && !run.report.interrupted && run.evaluation_complete() {
            let declared: BTreeSet<ResourcePath> = paths.into_iter().collect();
            let gone: Vec<ResourcePath> = state
                .records()
                .into_keys()
                .filter(|p| !declared.contains(p))
                .collect();
            run.delete_resources(state, gone).await?;
        }
        Ok(Some(run.report))
    }

    /// Deletes the recorded resources (or the targets and what depends on them), in
    /// reverse dependency order.
    pub async fn destroy(&self, targets: &[ResourcePath]) -> Result<ApplyReport, EngineError> {
        let deployment = self.deployment()?.to_owned();
        let mut state = self.lock_state("destroy").await?;
        let result = async {
            self.resume(&mut state).await?;
            let records = state.records();
            let doomed: Vec<ResourcePath> = if targets.is_empty() {
                records.keys().cloned().collect()
            } else {
                for target in targets {
                    if !records.contains_key(target) {
                        return Err(EngineError::usage(format!(
                            "resource {target} is not recorded in the state"
                        )));
                    }
                }
                with_dependents(targets, &records)
            };
            let mut run = Run::new(self, &deployment);
            run.delete_resources(&mut state, doomed).await?;
            Ok(run.report)
        }
        .await;
        state.close().await;
        self.providers.close().await;
        result
    }

    /// Finishes what a crashed apply left pending: a create that may have happened is
    /// read back (kept if the resource exists, forgotten if not); an update is read back
    /// and then redone by the apply; a delete is done again.
    async fn resume(&self, state: &mut StateStore) -> Result<(), EngineError> {
        for (path, record) in state.records() {
            let Some(pending) = record.pending() else {
                continue;
            };
            let meta = record.nixops4.clone().expect("pending implies metadata");
            let command = self.providers.command(&meta.provider);
            let change = match pending {
                Pending::Delete => {
                    destroy(&self.providers, &command, &record).await?;
                    StateChange::Remove(path.clone())
                }
                Pending::Create | Pending::Update => {
                    let read = Request::ReadResourceRequest(ReadResourceRequest {
                        resource: ExtantResource {
                            output_properties: (pending == Pending::Update)
                                .then(|| record.output_properties.clone()),
                            ..record.as_extant()
                        },
                    });
                    match self.providers.request(&command, &read).await {
                        Ok(Response::ReadResourceResponse(ReadResourceResponse::Present {
                            output_properties,
                        })) => {
                            let mut record = record.clone();
                            record.output_properties = output_properties;
                            if let Some(meta) = &mut record.nixops4 {
                                meta.pending = None;
                            }
                            StateChange::Put(path.clone(), record)
                        }
                        Ok(_) => StateChange::Remove(path.clone()),
                        Err(ProviderError::Unsupported { .. }) if pending == Pending::Create => {
                            StateChange::Remove(path.clone())
                        }
                        Err(ProviderError::Unsupported { .. }) => {
                            let mut record = record.clone();
                            if let Some(meta) = &mut record.nixops4 {
                                meta.pending = None;
                            }
                            StateChange::Put(path.clone(), record)
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            };
            state.apply("resume", &[change]).await?;
        }
        Ok(())
    }

    /// Reads every recorded resource back from its provider and records what it finds:
    /// new outputs (drift), or that the resource is gone (its record is removed, so the
    /// next plan creates it again). Providers that cannot read keep their records.
    pub async fn refresh(&self) -> Result<RefreshReport, EngineError> {
        self.deployment()?;
        let mut state = self.lock_state("refresh").await?;
        let result = async {
            let mut report = RefreshReport::default();
            let mut changes = Vec::new();
            for (path, record) in state.records() {
                let meta = record
                    .nixops4
                    .clone()
                    .unwrap_or_else(|| assumed_local(&record));
                let command = self.providers.command(&meta.provider);
                let request = Request::ReadResourceRequest(ReadResourceRequest {
                    resource: record.as_extant(),
                });
                match self.providers.request(&command, &request).await {
                    Ok(Response::ReadResourceResponse(ReadResourceResponse::Present {
                        output_properties,
                    })) => {
                        if output_properties != record.output_properties {
                            let mut record = record.clone();
                            record.output_properties = output_properties;
                            changes.push(StateChange::Put(path.clone(), record));
                            report.changed.push(path);
                        } else {
                            report.unchanged += 1;
                        }
                    }
                    Ok(Response::ReadResourceResponse(ReadResourceResponse::Gone {})) => {
                        changes.push(StateChange::Remove(path.clone()));
                        report.gone.push(path);
                    }
                    Ok(other) => {
                        return Err(EngineError::internal(format!(
                            "unexpected answer to a read: {}",
                            other.name()
                        )));
                    }
                    Err(ProviderError::Unsupported { .. }) => report.unreadable.push(path),
                    Err(error) => report
                        .failed
                        .push((path.clone(), format!("could not read {path}: {error}"))),
                }
            }
            state.apply("refresh", &changes).await?;
            Ok(report)
        }
        .await;
        state.close().await;
        self.providers.close().await;
        result
    }

    /// Runs a provider's custom operation on a recorded resource and records the result.
    pub async fn run_operation(
        &self,
        path: &ResourcePath,
        operation: &str,
        arguments: Map<String, Value>,
    ) -> Result<Value, EngineError> {
        self.deployment()?;
        let mut state = self.lock_state("run").await?;
        let result = async {
            let record = state.get(path).ok_or_else(|| {
                EngineError::usage(format!(
                    "resource {path} is not recorded in the state; apply it first"
                ))
            })?;
            let meta = record
                .nixops4
                .clone()
                .unwrap_or_else(|| assumed_local(&record));
            let command = self.providers.command(&meta.provider);
            let request = Request::OperationRequest(OperationRequest {
                resource: record.as_extant(),
                operation: operation.to_owned(),
                arguments,
                is_stateful: true,
            });
            let response = match self.providers.request(&command, &request).await? {
                Response::OperationResponse(response) => response,
                other => {
                    return Err(EngineError::internal(format!(
                        "unexpected answer to an operation: {}",
                        other.name()
                    )));
                }
            };
            let event = format!("operation {operation} on {path}");
            match response.output_properties {
                Some(outputs) => {
                    let mut record = record.clone();
                    record.output_properties = outputs;
                    state
                        .apply(&event, &[StateChange::Put(path.clone(), record)])
                        .await?;
                }
                None => state.note(&event).await?,
            }
            Ok(response.result)
        }
        .await;
        state.close().await;
        self.providers.close().await;
        result
    }

    /// Evaluates `outputs.<name>` of the deployment with the outputs recorded in state.
    pub async fn output(&self, name: &str) -> Result<Value, EngineError> {
        let deployment = self.deployment()?.to_owned();
        let state = self.read_state().await?;
        self.provide_state_outputs(&deployment, &state).await?;
        for (path, record) in state.records() {
            self.eval
                .provide_outputs(&deployment, &path, record.output_properties)
                .await?;
        }
        match self.eval.evaluate_output(&deployment, name).await? {
            Evaluation::Ready { value } => Ok(value),
            Evaluation::Waiting { resources } => Err(EngineError::usage(format!(
                "output `{name}` needs the outputs of {}, which {} not applied yet",
                resources
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                if resources.len() == 1 { "is" } else { "are" }
            ))),
        }
    }

    /// The recorded state document.
    pub async fn state_document(&self) -> Result<Value, EngineError> {
        Ok(self.read_state().await?.document().clone())
    }

    pub async fn state_records(
        &self,
    ) -> Result<BTreeMap<ResourcePath, ResourceRecord>, EngineError> {
        Ok(self.read_state().await?.records())
    }

    /// Forgets a resource without deleting it.
    pub async fn state_remove(&self, path: &ResourcePath) -> Result<(), EngineError> {
        let mut state = self.lock_state("state rm").await?;
        let result = match state.get(path) {
            None => Err(EngineError::usage(format!(
                "resource {path} is not recorded in the state"
            ))),
            Some(_) => {
                state
                    .apply(
                        &format!("forget {path}"),
                        &[StateChange::Remove(path.clone())],
                    )
                    .await
            }
        };
        state.close().await;
        result
    }

    /// Moves a record to a new path, for a resource that was renamed in the expression.
    pub async fn state_move(
        &self,
        from: &ResourcePath,
        to: &ResourcePath,
    ) -> Result<(), EngineError> {
        let mut state = self.lock_state("state mv").await?;
        let result = match (state.get(from), state.get(to)) {
            (None, _) => Err(EngineError::usage(format!(
                "resource {from} is not recorded in the state"
            ))),
            (_, Some(_)) => Err(EngineError::usage(format!(
                "resource {to} is already recorded in the state"
            ))),
            (Some(record), None) => {
                let changes = [
                    StateChange::Remove(from.clone()),
                    StateChange::Put(to.clone(), record),
                ];
                state.apply(&format!("move {from} to {to}"), &changes).await
            }
        };
        state.close().await;
        result
    }

    pub async fn shutdown(self) {
        self.providers.close().await;
        self.eval.shutdown().await;
    }
}

struct TypeFacts {
    replace_on_change: Vec<String>,
    secret_outputs: Vec<String>,
}

/// A provider call in flight.
enum Work {
    Create(ResourceSpec),
    Update(ResourceSpec, ResourceRecord),
    /// The first half of a replacement (delete), or a delete.
    Delete(ResourceRecord, Option<ResourceSpec>),
}

struct Outcome {
    path: ResourcePath,
    work: Work,
    result: Result<Properties, ProviderError>,
}

/// The state of one apply or destroy.
struct Run<'a> {
    engine: &'a Engine,
    deployment: String,
    report: ApplyReport,
    /// What each resource waited for in this session.
    waits: BTreeMap<ResourcePath, Vec<ResourcePath>>,
    observed: HashMap<ResourcePath, BTreeSet<ResourcePath>>,
    done: BTreeSet<ResourcePath>,
    broken: BTreeSet<ResourcePath>,
    /// Resources whose old version is deleted and whose new one is still to create.
    replacing: BTreeSet<ResourcePath>,
    /// Resources the plan evaluated already, used instead of asking the evaluator again.
    known: BTreeMap<ResourcePath, ResourceSpec>,
}

impl<'a> Run<'a> {
    fn new(engine: &'a Engine, deployment: &str) -> Run<'a> {
        Run {
            engine,
            deployment: deployment.to_owned(),
            report: ApplyReport::default(),
            waits: BTreeMap::new(),
            observed: HashMap::new(),
            done: BTreeSet::new(),
            broken: BTreeSet::new(),
            replacing: BTreeSet::new(),
            known: BTreeMap::new(),
        }
    }

    fn interrupted(&self) -> bool {
        self.engine.options.interrupt.load(Ordering::SeqCst)
    }

    fn evaluation_complete(&self) -> bool {
        self.broken.is_empty() && self.waits.is_empty()
    }

    fn emit(&self, event: Event) {
        emit(&self.engine.options.events, event);
    }

    async fn apply_resources(
        &mut self,
        state: &mut StateStore,
        initial: Vec<ResourcePath>,
    ) -> Result<(), EngineError> {
        let engine = self.engine;
        let parallelism = engine.options.parallelism.max(1);
        let mut queue: Vec<ResourcePath> = initial;
        let mut queued: BTreeSet<ResourcePath> = queue.iter().cloned().collect();
        // Everything that entered the queue at least once: a target pulls in what it
        // needs only the first time.
        let mut visited: BTreeSet<ResourcePath> = queued.clone();
        let mut ready: Vec<(ResourcePath, Work)> = Vec::new();
        let mut running = FuturesUnordered::new();
        loop {
            // Evaluate what can be evaluated now.
            let mut newly_done = Vec::new();
            let batch = std::mem::take(&mut queue);
            let (known, unknown): (Vec<ResourcePath>, Vec<ResourcePath>) =
                batch.into_iter().partition(|p| self.known.contains_key(p));
            let mut evaluations: Vec<(ResourcePath, Result<Evaluation<ResourceSpec>, _>)> = known
                .into_iter()
                .filter_map(|path| {
                    self.known
                        .remove(&path)
                        .map(|spec| (path, Ok(Evaluation::Ready { value: spec })))
                })
                .collect();
            evaluations.extend(
                engine
                    .eval
                    .evaluate_each(&self.deployment, &unknown)
                    .await?,
            );
            for (path, evaluation) in evaluations {
                queued.remove(&path);
                match evaluation {
                    Ok(Evaluation::Ready { value: spec }) => {
                        // `dependsOn`: wait for those first, keeping what was evaluated.
                        let blocking: Vec<ResourcePath> = spec
                            .depends_on
                            .iter()
                            .filter(|d| !self.done.contains(*d))
                            .cloned()
                            .collect();
                        if !blocking.is_empty() {
                            for needed in &blocking {
                                if visited.insert(needed.clone()) {
                                    queued.insert(needed.clone());
                                    queue.push(needed.clone());
                                }
                            }
                            self.known.insert(path.clone(), spec);
                            self.waits.insert(path, blocking);
                            continue;
                        }
                        self.waits.remove(&path);
                        let record = state.get(&path);
                        let facts =
                            match engine.type_facts(&spec.provider, &spec.resource_type).await {
                                Ok(facts) => facts,
                                Err(error) => {
                                    let message = format!(
                                        "could not ask provider `{}` about {path}: {error}",
                                        spec.provider.name
                                    );
                                    self.broken.insert(path.clone());
                                    self.report.failed.insert(path.clone(), message.clone());
                                    self.emit(Event::Failed {
                                        resource: path,
                                        error: message,
                                    });
                                    continue;
                                }
                            };
                        let (action, _) = plan::decide(
                            &spec.inputs,
                            &spec.type_name,
                            record.as_ref(),
                            &facts.replace_on_change,
                        );
                        match (action, record) {
                            (Action::NoChange, Some(record)) => {
                                engine
                                    .eval
                                    .provide_outputs(
                                        &self.deployment,
                                        &path,
                                        record.output_properties.clone(),
                                    )
                                    .await?;
                                self.report.unchanged += 1;
                                newly_done.push(path);
                            }
                            (Action::Update, Some(record)) => {
                                ready.push((path, Work::Update(spec, record)))
                            }
                            (Action::Replace, Some(record)) => {
                                ready.push((path, Work::Delete(record, Some(spec))))
                            }
                            (_, _) => ready.push((path, Work::Create(spec))),
                        }
                    }
                    Ok(Evaluation::Waiting { resources }) => {
                        self.observed
                            .entry(path.clone())
                            .or_default()
                            .extend(resources.iter().cloned());
                        // Targets pull in what they need.
                        for needed in &resources {
                            if visited.insert(needed.clone()) {
                                queued.insert(needed.clone());
                                queue.push(needed.clone());
                            }
                        }
                        self.waits.insert(path, resources);
                    }
                    Err(error) => {
                        self.broken.insert(path.clone());
                        let message = format!("could not evaluate {path}: {error}");
                        self.report.failed.insert(path.clone(), message.clone());
                        self.emit(Event::Failed {
                            resource: path,
                            error: message,
                        });
                    }
                }
            }
            for path in newly_done {
                self.finished(path, &mut queue, &mut queued);
            }
            if !queue.is_empty() {
                continue;
            }

            // Start provider calls, recording their intents in one event first.
            if !self.interrupted() && !ready.is_empty() && running.len() < parallelism {
                let take = (parallelism - running.len()).min(ready.len());
                let starting: Vec<(ResourcePath, Work)> = ready.drain(..take).collect();
                for (path, work) in self.announce(state, starting).await? {
                    running.push(perform(engine.providers.clone(), path, work));
                }
            }
            if running.is_empty() {
                break;
            }

            // Record every call that has finished by now, as one event.
            let outcomes = finished_calls(&mut running).await;
            let mut changes = Vec::new();
            let mut succeeded = Vec::new();
            for Outcome { path, work, result } in outcomes {
                match (work, result) {
                    (Work::Delete(_, Some(spec)), Ok(_)) => {
                        // Replacement: the old one is gone; create the new one next.
                        changes.push(StateChange::Remove(path.clone()));
                        self.replacing.insert(path.clone());
                        ready.push((path, Work::Create(spec)));
                    }
                    (Work::Delete(_, None), Ok(_)) => {
                        changes.push(StateChange::Remove(path.clone()));
                        succeeded.push((path, Action::Delete, None));
                    }
                    (Work::Create(spec), Ok(outputs)) => {
                        let action = if self.replacing.remove(&path) {
                            Action::Replace
                        } else {
                            Action::Create
                        };
                        changes.push(StateChange::Put(
                            path.clone(),
                            self.record(&path, &spec, outputs.clone()),
                        ));
                        succeeded.push((path, action, Some(outputs)));
                    }
                    (Work::Update(spec, _), Ok(outputs)) => {
                        changes.push(StateChange::Put(
                            path.clone(),
                            self.record(&path, &spec, outputs.clone()),
                        ));
                        succeeded.push((path, Action::Update, Some(outputs)));
                    }
                    (work, Err(error)) => {
                        // A provider that answered with an error did not do the work: undo
                        // the intent. Without an answer (crash, timeout) the outcome is
                        // unknown: the intent stays, and the next apply reads it back.
                        if matches!(error, ProviderError::Refused { .. }) {
                            changes.push(match &work {
                                Work::Create(_) => StateChange::Remove(path.clone()),
                                Work::Update(_, record) | Work::Delete(record, _) => {
                                    StateChange::Put(path.clone(), record.clone())
                                }
                            });
                        }
                        let message = format!(
                            "could not {} {path}: {error}",
                            infinitive(work_action(&work))
                        );
                        self.broken.insert(path.clone());
                        self.report.failed.insert(path.clone(), message.clone());
                        self.emit(Event::Failed {
                            resource: path,
                            error: message,
                        });
                    }
                }
            }
            state.apply("apply", &changes).await?;
            for (path, action, outputs) in succeeded {
                if let Some(outputs) = outputs {
                    engine
                        .eval
                        .provide_outputs(&self.deployment, &path, outputs)
                        .await?;
                }
                self.report.applied.insert(path.clone(), action);
                self.emit(Event::Finished {
                    resource: path.clone(),
                    action,
                });
                self.finished(path, &mut queue, &mut queued);
            }
        }
        let interrupted = self.interrupted();
        self.report.interrupted = interrupted;
        for (path, _) in ready {
            let reason = "not started: the apply was interrupted".to_owned();
            self.report.skipped.insert(path.clone(), reason.clone());
            self.emit(Event::Skipped {
                resource: path,
                reason,
            });
        }
        let blocked = std::mem::take(&mut self.waits);
        for (path, awaited) in &blocked {
            let reason = format!(
                "needs the outputs of {}",
                awaited
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            self.report.skipped.insert(path.clone(), reason.clone());
            self.emit(Event::Skipped {
                resource: path.clone(),
                reason,
            });
        }
        self.waits = blocked;
        Ok(())
    }

    /// A resource is applied (or unchanged): evaluate again what waited for it.
    fn finished(
        &mut self,
        path: ResourcePath,
        queue: &mut Vec<ResourcePath>,
        queued: &mut BTreeSet<ResourcePath>,
    ) {
        for (waiter, awaited) in &self.waits {
            if awaited.contains(&path) && queued.insert(waiter.clone()) {
                queue.push(waiter.clone());
            }
        }
        self.done.insert(path);
    }

    /// Records the intents of these calls as one event and announces them; they can then
    /// be started.
    async fn announce(
        &self,
        state: &mut StateStore,
        starting: Vec<(ResourcePath, Work)>,
    ) -> Result<Vec<(ResourcePath, Work)>, EngineError> {
        let intents: Vec<StateChange> = starting
            .iter()
            .map(|(path, work)| self.intent(path, work))
            .collect();
        state.apply("intent", &intents).await?;
        for (path, work) in &starting {
            self.emit(Event::Started {
                resource: path.clone(),
                action: work_action(work),
            });
        }
        Ok(starting)
    }

    /// The record to write before a provider call, so that a crash during it is noticed.
    fn intent(&self, path: &ResourcePath, work: &Work) -> StateChange {
        let (mut record, pending) = match work {
            Work::Create(spec) => (self.record(path, spec, Properties::new()), Pending::Create),
            Work::Update(_, record) => (record.clone(), Pending::Update),
            Work::Delete(record, _) => (record.clone(), Pending::Delete),
        };
        let mut meta = record
            .nixops4
            .take()
            .unwrap_or_else(|| assumed_local(&record));
        meta.pending = Some(pending);
        record.nixops4 = Some(meta);
        StateChange::Put(path.clone(), record)
    }

    fn record(
        &self,
        path: &ResourcePath,
        spec: &ResourceSpec,
        outputs: Properties,
    ) -> ResourceRecord {
        let mut depends_on: BTreeSet<ResourcePath> = spec.depends_on.iter().cloned().collect();
        if let Some(observed) = self.observed.get(path) {
            depends_on.extend(observed.iter().cloned());
        }
        ResourceRecord {
            resource_type: spec.resource_type.clone(),
            input_properties: spec.inputs.clone(),
            output_properties: outputs,
            nixops4: Some(RecordMeta {
                type_name: spec.type_name.clone(),
                provider: spec.provider.clone(),
                depends_on: depends_on.into_iter().collect(),
                pending: None,
            }),
        }
    }

    /// Deletes recorded resources, each only after everything that depends on it.
    async fn delete_resources(
        &mut self,
        state: &mut StateStore,
        doomed: Vec<ResourcePath>,
    ) -> Result<(), EngineError> {
        let engine = self.engine;
        let parallelism = engine.options.parallelism.max(1);
        let mut remaining: BTreeSet<ResourcePath> = doomed.into_iter().collect();
        let mut running = FuturesUnordered::new();
        let mut in_flight: BTreeSet<ResourcePath> = BTreeSet::new();
        // Read once; a deleted resource leaves `remaining`, which is all the loop consults.
        let records = state.records();
        loop {
            if !self.interrupted() {
                let deletable: Vec<ResourcePath> = remaining
                    .iter()
                    .filter(|path| !in_flight.contains(*path))
                    .filter(|path| {
                        !remaining.iter().any(|other| {
                            other != *path
                                && records
                                    .get(other)
                                    .is_some_and(|r| r.depends_on().contains(path))
                        })
                    })
                    .take(parallelism.saturating_sub(running.len()))
                    .cloned()
                    .collect();
                let mut starting = Vec::new();
                for path in deletable {
                    match records.get(&path) {
                        Some(record) => starting.push((path, Work::Delete(record.clone(), None))),
                        None => {
                            remaining.remove(&path);
                        }
                    }
                }
                for (path, work) in self.announce(state, starting).await? {
                    in_flight.insert(path.clone());
                    running.push(perform(engine.providers.clone(), path, work));
                }
            }
            if running.is_empty() {
                break;
            }
            let outcomes = finished_calls(&mut running).await;
            let mut changes = Vec::new();
            let mut deleted = Vec::new();
            for Outcome { path, work, result } in outcomes {
                in_flight.remove(&path);
                remaining.remove(&path);
                match result {
                    Ok(_) => {
                        changes.push(StateChange::Remove(path.clone()));
                        deleted.push(path);
                    }
                    Err(error) => {
                        if let (ProviderError::Refused { .. }, Work::Delete(record, _)) =
                            (&error, &work)
                        {
                            changes.push(StateChange::Put(path.clone(), record.clone()));
                        }
                        let message = format!("could not delete {path}: {error}");
                        self.report.failed.insert(path.clone(), message.clone());
                        self.emit(Event::Failed {
                            resource: path.clone(),
                            error: message,
                        });
                        // What it depends on must stay.
                        let keep: Vec<ResourcePath> = records
                            .get(&path)
                            .map(|r| r.depends_on().to_vec())
                            .unwrap_or_default();
                        for kept in keep {
                            if remaining.remove(&kept) {
                                self.report
                                    .skipped
                                    .insert(kept.clone(), format!("not deleted: {path}, which depends on it, could not be deleted"));
                            }
                        }
                    }
                }
            }
            state.apply("destroy", &changes).await?;
            for path in deleted {
                self.report.applied.insert(path.clone(), Action::Delete);
                self.emit(Event::Finished {
                    resource: path,
                    action: Action::Delete,
                });
            }
        }
        for path in remaining {
            let reason = if self.interrupted() {
                "not started: interrupted"
            } else {
                "not deleted: a dependency cycle in the state"
            };
            self.report.skipped.insert(path, reason.to_owned());
        }
        self.report.interrupted |= self.interrupted();
        Ok(())
    }
}

/// Waits for one provider call to finish and takes every other that has finished by then,
/// so that their results are recorded together.
async fn finished_calls<F: std::future::Future<Output = Outcome>>(
    running: &mut FuturesUnordered<F>,
) -> Vec<Outcome> {
    let mut outcomes: Vec<Outcome> = running.next().await.into_iter().collect();
    while let Some(Some(outcome)) = futures_util::FutureExt::now_or_never(running.next()) {
        outcomes.push(outcome);
    }
    outcomes
}

fn work_action(work: &Work) -> Action {
    match work {
        Work::Create(_) => Action::Create,
        Work::Update(..) => Action::Update,
        Work::Delete(_, Some(_)) => Action::Replace,
        Work::Delete(_, None) => Action::Delete,
    }
}

fn infinitive(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Delete => "delete",
        Action::NoChange => "check",
    }
}

/// The provider call for one piece of work.
async fn perform(providers: ProviderPool, path: ResourcePath, work: Work) -> Outcome {
    let result = match &work {
        Work::Create(spec) => {
            let command = providers.command(&spec.provider);
            let request = Request::CreateResourceRequest(CreateResourceRequest {
                resource_type: spec.resource_type.clone(),
                input_properties: spec.inputs.clone(),
                is_stateful: true,
            });
            match providers.request(&command, &request).await {
                Ok(Response::CreateResourceResponse(response)) => Ok(response.output_properties),
                Ok(_) => unreachable!("the client checks the response kind"),
                Err(error) => Err(error),
            }
        }
        Work::Update(spec, record) => {
            let command = providers.command(&spec.provider);
            let request = Request::UpdateResourceRequest(UpdateResourceRequest {
                resource: record.as_extant(),
                input_properties: spec.inputs.clone(),
            });
            match providers.request(&command, &request).await {
                Ok(Response::UpdateResourceResponse(response)) => Ok(response.output_properties),
                Ok(_) => unreachable!("the client checks the response kind"),
                Err(error) => Err(error),
            }
        }
        Work::Delete(record, _) => {
            let meta = record
                .nixops4
                .clone()
                .unwrap_or_else(|| assumed_local(record));
            let command = providers.command(&meta.provider);
            destroy_request(&providers, &command, record)
                .await
                .map(|()| Properties::new())
        }
    };
    Outcome { path, work, result }
}

async fn destroy_request(
    providers: &ProviderPool,
    command: &ProviderCommand,
    record: &ResourceRecord,
) -> Result<(), ProviderError> {
    let request = Request::DestroyResourceRequest(DestroyResourceRequest {
        resource: record.as_extant(),
    });
    providers.request(command, &request).await.map(drop)
}

async fn destroy(
    providers: &ProviderPool,
    command: &ProviderCommand,
    record: &ResourceRecord,
) -> Result<(), EngineError> {
    destroy_request(providers, command, record)
        .await
        .map_err(|error| {
            let mut error = EngineError::from(error);
            error.message = format!(
                "{}; remove the record with `nixops4 state rm` if it is gone",
                error.message
            );
            error
        })
}

/// Metadata for a record written without it (by upstream NixOps4): its type is taken to
/// be the local provider's.
fn assumed_local(record: &ResourceRecord) -> RecordMeta {
    RecordMeta {
        type_name: format!("local.{}", record.resource_type),
        provider: ProviderSpec {
            name: "local".into(),
            executable: None,
            args: Vec::new(),
        },
        depends_on: Vec::new(),
        pending: None,
    }
}

/// The targets and every recorded resource that depends on them, directly or not.
fn with_dependents(
    targets: &[ResourcePath],
    records: &BTreeMap<ResourcePath, ResourceRecord>,
) -> Vec<ResourcePath> {
    let mut doomed: BTreeSet<ResourcePath> = targets.iter().cloned().collect();
    loop {
        let more: Vec<ResourcePath> = records
            .iter()
            .filter(|(path, record)| {
                !doomed.contains(*path) && record.depends_on().iter().any(|d| doomed.contains(d))
            })
            .map(|(path, _)| path.clone())
            .collect();
        if more.is_empty() {
            return doomed.into_iter().collect();
        }
        doomed.extend(more);
    }
}

struct StateLocation {
    file: PathBuf,
    /// The deployment's state resource, when it names one.
    resource: Option<ResourcePath>,
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
