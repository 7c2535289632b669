//! The builds of one run: the derivations the schedule wants built go to the evaluator
//! as one build request per round, which runs beside the provider calls; what Nix starts
//! building, what got built and what failed become events; a failure fails the resources
//! that need it. Secrets never reach an event: build errors are redacted with every
//! secret output known so far, those recorded before the run and those it created.

use std::collections::BTreeSet;

use nixops4_eval::protocol::{
    BuildProgress, BuildResult, Derivation, EvalError, ResourceSpec, derivation_name,
};
use nixops4_provider_protocol::Properties;
use tokio::task::JoinSet;

use super::{Finished, Run};
use crate::engine::TypeFacts;
use crate::error::EngineError;
use crate::events::{Event, emit};
use crate::plan::PlannedBuild;

/// What the loop waits for: a provider call or a build.
pub(super) enum Completion {
    Call(Finished),
    Build(BuildDone),
}

pub(super) struct BuildDone {
    derivations: Vec<Derivation>,
    result: Result<Vec<BuildResult>, EvalError>,
}

impl Run<'_> {
    /// Starts one build of these derivations; Nix's progress becomes events meanwhile.
    pub(super) fn start_build(
        &mut self,
        derivations: Vec<Derivation>,
        running: &mut JoinSet<Completion>,
    ) {
        let (progress, mut started) = tokio::sync::mpsc::unbounded_channel();
        let build = self.engine.eval.build(derivations.clone(), progress);
        let events = self.events.clone();
        let secrets = self.engine.secrets.clone();
        // Only those asked for are announced, so each start has its end (built or failed);
        // what Nix builds on the way is part of them.
        let asked: BTreeSet<String> = derivations.iter().map(|d| d.path.clone()).collect();
        let task = running.spawn(async move {
            let forward = async {
                while let Some(BuildProgress::Started { derivation }) = started.recv().await {
                    if asked.contains(&derivation) {
                        let name = derivation_name(&derivation).to_owned();
                        emit(&events, &secrets, Event::BuildStarted { derivation, name });
                    }
                }
            };
            let (result, ()) = tokio::join!(build, forward);
            Completion::Build(BuildDone {
                derivations,
                result,
            })
        });
        self.builds.push(task);
    }

    /// Stops the builds that run (the evaluator kills their `nix build`); the resources
    /// that wait for them are not started.
    pub(super) fn stop_builds(&mut self) {
        for build in self.builds.drain(..) {
            build.abort();
        }
    }

    /// A build ended: each derivation is built or failed, and the schedule learns it.
    pub(super) fn build_ended(&mut self, done: BuildDone) {
        let results: Vec<(String, Result<(), String>)> = match done.result {
            Ok(results) => results
                .into_iter()
                .map(|r| (r.path, r.error.map_or(Ok(()), Err)))
                .collect(),
            Err(error) => done
                .derivations
                .into_iter()
                .map(|d| (d.path, Err(error.to_string())))
                .collect(),
        };
        for (derivation, result) in results {
            let name = derivation_name(&derivation).to_owned();
            let result = result.map_err(|error| self.engine.secrets.redact(&error));
            let event = match &result {
                Ok(()) => Event::Built {
                    derivation: derivation.clone(),
                    name,
                },
                Err(error) => Event::BuildFailed {
                    derivation: derivation.clone(),
                    name,
                    error: error.clone(),
                },
            };
            self.emit(event);
            for (resource, error) in self.schedule.built(&derivation, result) {
                self.emit(Event::Failed { resource, error });
            }
        }
    }

    /// The provider's facts about the resource's type; none when the provider is a
    /// derivation output not built yet (a plan does not build it to ask).
    pub(super) async fn provider_facts(
        &self,
        spec: &ResourceSpec,
    ) -> Result<TypeFacts, EngineError> {
        let provider = &spec.provider;
        let unbuilt = spec
            .needs
            .iter()
            .flat_map(|d| d.outputs.values())
            .any(|output| {
                provider
                    .executable
                    .iter()
                    .chain(&provider.args)
                    .any(|word| word.contains(output.as_str()))
            });
        if unbuilt {
            return Ok(TypeFacts::default());
        }
        self.engine.type_facts(provider, &spec.resource_type).await
    }

    /// Keeps the secret outputs a call returned out of everything the engine shows from
    /// now on; their names, for the record, when the provider says which they are.
    pub(super) async fn learn_secrets(
        &self,
        spec: &ResourceSpec,
        outputs: &Properties,
    ) -> Option<Vec<String>> {
        let facts = self
            .engine
            .type_facts(&spec.provider, &spec.resource_type)
            .await
            .ok()?;
        self.engine
            .secrets
            .learn_outputs(&facts.secret_outputs, outputs);
        Some(facts.secret_outputs)
    }

    /// What an apply of this plan would build.
    pub(super) fn planned_builds(&self) -> Vec<PlannedBuild> {
        self.schedule
            .planned_builds()
            .into_iter()
            .map(|(derivation, resources)| PlannedBuild {
                derivation: derivation.path.clone(),
                name: derivation.name().to_owned(),
                resources: resources.into_iter().cloned().collect(),
            })
            .collect()
    }
}
