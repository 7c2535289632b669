//! The engine's one loop: evaluate, wait, decide, perform, record, provide outputs. Plan,
//! apply, destroy and refresh all run it; they differ in the goals they give the
//! [`Schedule`] and in whether it holds the capability to change the world.
//!
//! [`Run::drive`] performs what the schedule decides. It evaluates in batches, decides
//! each evaluated resource's work against its record and its provider's schema, records
//! the intents of the calls it starts (one state event), runs the calls concurrently,
//! records the results that arrived by then (one event), and only then gives their
//! outputs to the evaluator, so nothing depends on a result that is not in state.
//! Derivations that resources need are built beside the calls, by the evaluator
//! (`run/builds.rs`); a preview's plan is read from where the run left each resource
//! (`run/plan_of.rs`).

use std::collections::{BTreeMap, BTreeSet};

use nixops4_eval::protocol::{Evaluation, ResourceSpec};
use nixops4_provider_protocol::{Properties, ReadResourceResponse};
use tokio::task::JoinSet;

use crate::ResourcePath;
use crate::apply::ApplyReport;
use crate::calls;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::events::{Event, EventSink, emit};
use crate::operations::RefreshReport;
use crate::plan::{self, Action, Change, Problem};
use crate::provider_client::ProviderError;
use crate::providers::ProviderPool;
use crate::schedule::{Call, Ended, Evaluated, Schedule, Step, Work};
use crate::secrets::sensitive_strings;
use crate::state::{Mutation, Pending, RecordMeta, ResourceRecord, StateChange, StateStore};

mod builds;
mod plan_of;

use builds::Completion;

pub(crate) struct Run<'a> {
    engine: &'a Engine,
    deployment: String,
    schedule: Schedule,
    /// The records when the run began; a resource's record changes only by its own calls.
    records: BTreeMap<ResourcePath, ResourceRecord>,
    /// What each evaluated resource is, for its calls and its plan entry.
    specs: BTreeMap<ResourcePath, ResourceSpec>,
    changes: BTreeMap<ResourcePath, Vec<Change>>,
    /// Why resources could not be evaluated, with where, for plans.
    problems: BTreeMap<ResourcePath, Problem>,
    /// Front ends hear of a run only once it may change the world.
    events: EventSink,
    /// The name of the state events that record results.
    recorded_as: &'static str,
    refreshed: RefreshReport,
    /// The builds that run, to stop when the run is interrupted.
    builds: Vec<tokio::task::AbortHandle>,
}

impl<'a> Run<'a> {
    pub(crate) fn new(
        engine: &'a Engine,
        deployment: &str,
        schedule: Schedule,
        records: BTreeMap<ResourcePath, ResourceRecord>,
        recorded_as: &'static str,
    ) -> Run<'a> {
        Run {
            engine,
            deployment: deployment.to_owned(),
            schedule,
            records,
            specs: BTreeMap::new(),
            changes: BTreeMap::new(),
            problems: BTreeMap::new(),
            events: None,
            recorded_as,
            refreshed: RefreshReport::default(),
            builds: Vec::new(),
        }
    }

    /// Whether the deployment declares the resource, to be applied.
    pub(crate) fn declares(&self, path: &ResourcePath) -> bool {
        self.schedule.declares(path)
    }

    /// From now on the run may change the world, for `targets` and what they need (all
    /// when there are none). Failures found before are reported now.
    pub(crate) fn grant(&mut self, mutation: Mutation, targets: &[ResourcePath]) {
        self.schedule.grant(mutation, targets);
        self.events = self.engine.options.events.clone();
        let failures: Vec<(ResourcePath, String)> = self
            .schedule
            .failures()
            .map(|(path, error)| (path.clone(), error.to_owned()))
            .collect();
        for (resource, error) in failures {
            self.emit(Event::Failed { resource, error });
        }
    }

    fn emit(&self, event: Event) {
        emit(&self.events, &self.engine.secrets, event);
    }

    /// Runs the loop until nothing more can happen.
    pub(crate) async fn drive(&mut self, state: &mut StateStore) -> Result<(), EngineError> {
        let mut running: JoinSet<Completion> = JoinSet::new();
        loop {
            // A preview is not cut short: a plan shows everything or fails.
            if self.schedule.holds_mutation() && self.engine.interrupted() {
                self.schedule.interrupt();
                self.stop_builds();
            }
            let batch = self.schedule.evaluate_now();
            if !batch.is_empty() {
                self.evaluate(&batch).await?;
                continue;
            }
            let derivations = self.schedule.build_now();
            if !derivations.is_empty() {
                self.start_build(derivations, &mut running);
            }
            let calls = self.schedule.start();
            if !calls.is_empty() {
                self.start(state, calls, &mut running).await?;
            }
            if running.is_empty() {
                return Ok(());
            }
            let mut finished = Vec::new();
            for completion in finished_calls(&mut running).await? {
                match completion {
                    Completion::Call(call) => finished.push(call),
                    Completion::Build(build) => self.build_ended(build),
                }
            }
            if !finished.is_empty() {
                self.record(state, finished).await?;
            }
        }
    }

    async fn evaluate(&mut self, batch: &[ResourcePath]) -> Result<(), EngineError> {
        for (path, evaluation) in self
            .engine
            .eval
            .evaluate_each(&self.deployment, batch)
            .await?
        {
            let evaluated = match evaluation {
                Ok(Evaluation::Ready { value }) => self.decide(&path, value).await?,
                Ok(Evaluation::Waiting { resources }) => Evaluated::Waiting(resources),
                Err(error) => {
                    let message = format!("could not evaluate {path}: {error}");
                    self.problem(&path, error.message, error.position);
                    Evaluated::Failed(message)
                }
            };
            if let Evaluated::Failed(error) = &evaluated {
                self.emit(Event::Failed {
                    resource: path.clone(),
                    error: error.clone(),
                });
            }
            self.schedule.evaluated(&path, evaluated);
        }
        Ok(())
    }

    fn problem(&mut self, path: &ResourcePath, message: String, position: Option<crate::Position>) {
        let problem = Problem {
            resource: path.clone(),
            message,
            position,
        };
        self.problems.insert(path.clone(), problem);
    }

    /// What an evaluated resource needs, against its record and its provider's schema.
    /// A resource that needs nothing gives its recorded outputs to the evaluator.
    async fn decide(
        &mut self,
        path: &ResourcePath,
        spec: ResourceSpec,
    ) -> Result<Evaluated, EngineError> {
        let facts = match self.provider_facts(&spec).await {
            Ok(facts) => facts,
            Err(error) => {
                let message = format!(
                    "could not ask provider `{}` about {path}: {error}",
                    spec.provider.name
                );
                self.problem(path, error.message, spec.position);
                return Ok(Evaluated::Failed(message));
            }
        };
        let record = self.records.get(path);
        let (action, changes) = plan::decide(
            &spec.inputs,
            &spec.type_name,
            record,
            &facts.replace_on_change,
        );
        // Upstream creates a resource without state afresh on every apply; its providers
        // may refuse an update of one ("update called on stateless file resource").
        let recreated = facts.upstream_v0 && spec.state.is_none();
        let work = match (action, record) {
            (Action::Update | Action::Replace, Some(_)) if recreated => Work::Recreate,
            (Action::NoChange, Some(record)) => {
                self.engine
                    .eval
                    .provide_outputs(&self.deployment, path, record.output_properties.clone())
                    .await?;
                Work::Keep
            }
            (Action::Update, Some(_)) => Work::Update,
            (Action::Replace, Some(_)) => Work::Replace,
            _ => Work::Create,
        };
        let after = spec.depends_on.clone();
        // Nothing is called for a resource kept as it is: nothing needs building.
        let needs = match work {
            Work::Keep => Vec::new(),
            _ => spec.needs.clone(),
        };
        self.changes.insert(path.clone(), changes);
        self.specs.insert(path.clone(), spec);
        Ok(Evaluated::Ready { work, after, needs })
    }

    /// Records the intents of these calls as one event, announces them, and starts them.
    async fn start(
        &mut self,
        state: &mut StateStore,
        calls: Vec<Call>,
        running: &mut JoinSet<Completion>,
    ) -> Result<(), EngineError> {
        let mut prepared = Vec::new();
        let mut intents = Vec::new();
        for call in calls {
            let request = self.prepare(&call)?;
            intents.extend(self.intent(&call, &request));
            prepared.push((call, request));
        }
        state.apply("intent", &intents).await?;
        for (call, request) in prepared {
            if let Some(action) = call.announced() {
                self.emit(Event::Started {
                    resource: call.path.clone(),
                    action,
                });
            }
            let call = perform(self.engine.providers.clone(), call, request);
            running.spawn(async move { Completion::Call(call.await) });
        }
        Ok(())
    }

    /// The call with the spec or record it needs.
    fn prepare(&self, call: &Call) -> Result<Prepared, EngineError> {
        let spec = || self.specs.get(&call.path).cloned();
        let record = || self.records.get(&call.path).cloned();
        let prepared = match call.step {
            Step::Create(mutation) => spec().map(|s| Prepared::Create(Box::new(s), mutation)),
            Step::Update(mutation) => spec()
                .zip(record())
                .map(|both| Prepared::Update(Box::new(both), mutation)),
            Step::Delete(_) if call.work == Work::Forget => {
                record().map(|r| Prepared::Forget(Box::new(r)))
            }
            Step::Delete(mutation) => record().map(|r| Prepared::Delete(Box::new(r), mutation)),
            Step::Read => record().map(|r| Prepared::Read(Box::new(r))),
        };
        prepared
            .ok_or_else(|| EngineError::internal(format!("{} has nothing to call with", call.path)))
    }

    /// The record to write before a call that can change the world, so that a crash
    /// during it is noticed.
    fn intent(&self, call: &Call, request: &Prepared) -> Option<StateChange> {
        let (mut record, pending) = match request {
            Prepared::Create(spec, _) => (
                self.record_of(&call.path, spec, Properties::new(), None),
                Pending::Create,
            ),
            Prepared::Update(both, _) => (both.1.clone(), Pending::Update),
            Prepared::Delete(record, _) => ((**record).clone(), Pending::Delete),
            // Forgetting calls no provider: there is nothing a crash could leave undone.
            Prepared::Forget(_) | Prepared::Read(_) => return None,
        };
        let mut meta = calls::meta_of(&record);
        meta.pending = Some(pending);
        record.nixops4 = Some(meta);
        Some(StateChange::put(call.path.clone(), record))
    }

    fn record_of(
        &self,
        path: &ResourcePath,
        spec: &ResourceSpec,
        outputs: Properties,
        secret_outputs: Option<Vec<String>>,
    ) -> ResourceRecord {
        let depends_on: BTreeSet<ResourcePath> = spec
            .depends_on
            .iter()
            .chain(self.schedule.observed(path))
            .cloned()
            .collect();
        ResourceRecord {
            resource_type: spec.resource_type.clone(),
            input_properties: spec.inputs.clone(),
            output_properties: outputs,
            nixops4: Some(RecordMeta {
                type_name: spec.type_name.clone(),
                provider: spec.provider.clone(),
                depends_on: depends_on.into_iter().collect(),
                secret_outputs,
                sensitive_inputs: sensitive_strings(&spec.inputs, &self.engine.secrets),
                pending: None,
            }),
        }
    }

    /// Records what these calls did as one event; then gives new outputs to the
    /// evaluator and tells the schedule.
    async fn record(
        &mut self,
        state: &mut StateStore,
        finished: Vec<Finished>,
    ) -> Result<(), EngineError> {
        let mut changes = Vec::new();
        let mut results: Vec<(Call, Result<Option<Properties>, String>)> = Vec::new();
        for Finished { call, result } in finished {
            let path = call.path.clone();
            let result = match result {
                Ok(Answer::Outputs(outputs)) => match self.specs.get(&path).cloned() {
                    Some(spec) => {
                        let secret_outputs = self.learn_secrets(&spec, &outputs).await;
                        let record = self.record_of(&path, &spec, outputs.clone(), secret_outputs);
                        changes.push(StateChange::put(path, record));
                        Ok(Some(outputs))
                    }
                    None => return Err(EngineError::internal(format!("{path} has no spec"))),
                },
                Ok(Answer::Deleted) => {
                    changes.push(StateChange::Remove(path));
                    Ok(None)
                }
                Ok(Answer::Forgotten { provider }) => {
                    self.emit(Event::Forgotten {
                        resource: path.clone(),
                        provider,
                    });
                    changes.push(StateChange::Remove(path));
                    Ok(None)
                }
                Ok(Answer::Read(read)) => {
                    if let Some(change) = self.refreshed(&path, read) {
                        if let StateChange::Put(_, record) = &change {
                            self.engine.learn_secrets_of(record).await;
                        }
                        changes.push(change);
                    }
                    Ok(None)
                }
                Err(ProviderError::Unsupported { .. }) if call.step == Step::Read => {
                    self.refreshed.unreadable.push(path);
                    Ok(None)
                }
                Err(error) => {
                    // A provider that answered with an error did not do the work: undo
                    // the intent. Without an answer (crash, timeout) the outcome is
                    // unknown: the intent stays, and the next apply reads it back.
                    if matches!(error, ProviderError::Refused { .. }) {
                        changes.extend(self.undo_intent(&call));
                    }
                    let verb = call.announced().map_or("read", infinitive);
                    let message = format!("could not {verb} {path}: {error}");
                    if call.step == Step::Read {
                        self.refreshed.failed.push((path.clone(), message.clone()));
                    }
                    self.emit(Event::Failed {
                        resource: path,
                        error: message.clone(),
                    });
                    Err(message)
                }
            };
            results.push((call, result));
        }
        state.apply(self.recorded_as, &changes).await?;
        for (call, result) in results {
            let result = match result {
                Ok(Some(outputs)) => {
                    self.engine
                        .eval
                        .provide_outputs(&self.deployment, &call.path, outputs)
                        .await?;
                    Ok(())
                }
                Ok(None) => Ok(()),
                Err(message) => Err(message),
            };
            let done = self.schedule.finished(&call.path, result);
            if let Some(action) = done.and_then(Work::action) {
                self.emit(Event::Finished {
                    resource: call.path,
                    action,
                });
            }
        }
        Ok(())
    }

    fn undo_intent(&self, call: &Call) -> Option<StateChange> {
        match call.step {
            Step::Create(_) if call.work != Work::Recreate => {
                Some(StateChange::Remove(call.path.clone()))
            }
            Step::Create(_) | Step::Update(_) | Step::Delete(_) => self
                .records
                .get(&call.path)
                .map(|record| StateChange::put(call.path.clone(), record.clone())),
            Step::Read => None,
        }
    }

    /// What a read found: drift is recorded, a resource that is gone is forgotten.
    fn refreshed(
        &mut self,
        path: &ResourcePath,
        read: ReadResourceResponse,
    ) -> Option<StateChange> {
        let record = self.records.get(path)?;
        match read {
            ReadResourceResponse::Present { output_properties } => {
                if output_properties == record.output_properties {
                    self.refreshed.unchanged += 1;
                    return None;
                }
                let mut record = record.clone();
                record.output_properties = output_properties;
                self.refreshed.changed.push(path.clone());
                Some(StateChange::put(path.clone(), record))
            }
            ReadResourceResponse::Gone {} => {
                self.refreshed.gone.push(path.clone());
                Some(StateChange::Remove(path.clone()))
            }
        }
    }

    /// Ends an apply or destroy: what did not finish is reported failed or skipped.
    pub(crate) fn conclude(&mut self) -> ApplyReport {
        if self.engine.interrupted() {
            self.schedule.interrupt();
        }
        for (resource, ended) in self.schedule.conclude() {
            self.emit(match ended {
                Ended::Failed(error) => Event::Failed { resource, error },
                Ended::Skipped(reason) => Event::Skipped { resource, reason },
            });
        }
        let mut report = self.schedule.report();
        for text in report
            .failed
            .values_mut()
            .chain(report.skipped.values_mut())
        {
            *text = self.engine.secrets.redact(text);
        }
        report
    }

    /// What a refresh found, in path order.
    pub(crate) fn refresh_report(mut self) -> RefreshReport {
        let mut report = std::mem::take(&mut self.refreshed);
        report.changed.sort();
        report.gone.sort();
        report.unreadable.sort();
        report.failed.sort();
        for (_, text) in &mut report.failed {
            *text = self.engine.secrets.redact(text);
        }
        report
    }
}

/// A call with the spec or record it is made with.
enum Prepared {
    Create(Box<ResourceSpec>, Mutation),
    Update(Box<(ResourceSpec, ResourceRecord)>, Mutation),
    Delete(Box<ResourceRecord>, Mutation),
    /// Removed from state only: its provider cannot delete.
    Forget(Box<ResourceRecord>),
    Read(Box<ResourceRecord>),
}

enum Answer {
    Outputs(Properties),
    Deleted,
    /// Removed from state without a provider call; nothing was deleted.
    Forgotten {
        provider: String,
    },
    Read(ReadResourceResponse),
}

struct Finished {
    call: Call,
    result: Result<Answer, ProviderError>,
}

async fn perform(providers: ProviderPool, call: Call, request: Prepared) -> Finished {
    let result = match request {
        Prepared::Create(spec, mutation) => calls::create(&providers, &spec, mutation)
            .await
            .map(Answer::Outputs),
        Prepared::Update(both, mutation) => calls::update(&providers, &both.0, &both.1, mutation)
            .await
            .map(Answer::Outputs),
        Prepared::Delete(record, mutation) => calls::delete(&providers, &record, mutation)
            .await
            .map(|()| Answer::Deleted),
        Prepared::Forget(record) => Ok(Answer::Forgotten {
            provider: calls::provider_of(&record).name,
        }),
        Prepared::Read(record) => calls::read(&providers, &record, true)
            .await
            .map(Answer::Read),
    };
    Finished { call, result }
}

/// Waits for one call or build to finish and takes every other that has finished by
/// then, so that their results are recorded together. A build stopped by an interrupt
/// ends without a result.
async fn finished_calls(running: &mut JoinSet<Completion>) -> Result<Vec<Completion>, EngineError> {
    let mut finished = Vec::new();
    let mut take = |result: Result<Completion, tokio::task::JoinError>| match result {
        Ok(completion) => {
            finished.push(completion);
            Ok(())
        }
        Err(e) if e.is_cancelled() => Ok(()),
        Err(e) => Err(EngineError::internal(format!(
            "a provider call or build ended abnormally: {e}"
        ))),
    };
    if let Some(result) = running.join_next().await {
        take(result)?;
    }
    while let Some(result) = running.try_join_next() {
        take(result)?;
    }
    Ok(finished)
}

fn infinitive(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Recreate => "create again",
        Action::Delete => "delete",
        Action::Forget => "forget",
        Action::NoChange => "check",
    }
}
