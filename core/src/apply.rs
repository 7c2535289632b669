//! Plan, apply and destroy: which goals a run gets, and when it may change the world.
//!
//! A plan is a preview: the deployment's resources to apply and the records no longer
//! declared to delete, run without the capability to change anything. An apply locks
//! the state, resumes what a crashed run left, makes that same preview against the
//! locked state, has its plan approved, and then lets the very same run go on with the
//! capability, for the targets and what they need or for everything: what it applies is
//! the plan that was approved. A destroy deletes recorded resources, dependents first.
//!
//! A record whose provider speaks upstream's protocol v0 cannot be deleted: where a delete
//! would be, it is forgotten (removed from state, with a warning that nothing was deleted).

use std::collections::{BTreeMap, BTreeSet};

use nixops4_eval::protocol::ResourcePath;
use serde::Serialize;

use crate::calls;
use crate::engine::{Engine, refuse_empty};
use crate::error::EngineError;
use crate::plan::{Action, Plan};
use crate::run::Run;
use crate::schedule::Schedule;
use crate::state::{ResourceRecord, StateStore};

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

impl Engine {
    /// Plans the deployment against its state, without changing anything.
    pub async fn plan(&self) -> Result<Plan, EngineError> {
        let planned = async {
            let deployment = self.deployment()?;
            let mut state = self.read_state().await?;
            let run = self.preview(deployment, &mut state).await?;
            Ok(run.plan(state.document()))
        };
        self.hiding(planned.await)
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
        let deployment = self.deployment()?;
        refuse_empty(targets)?;
        self.locked("apply", async |state, mutation| {
            self.resume(state, mutation).await?;
            let mut run = self.preview(deployment, state).await?;
            if !approve(&run.plan(state.document()))? {
                return Ok(None);
            }
            if let Some(target) = targets.iter().find(|t| !run.declares(t)) {
                return Err(EngineError::usage(format!(
                    "there is no resource {target} in deployment `{deployment}`"
                )));
            }
            run.grant(mutation, targets);
            run.drive(state).await?;
            Ok(Some(run.conclude()))
        })
        .await
    }

    /// The run of a plan, settled: the declared resources evaluated and decided, those
    /// that change planned, and the records no longer declared planned for deletion.
    async fn preview(
        &self,
        deployment: &str,
        state: &mut StateStore,
    ) -> Result<Run<'_>, EngineError> {
        let paths = self.managed_resources(deployment).await?;
        self.provide_state_outputs(deployment, state).await?;
        let records = state.records();
        let declared: BTreeSet<&ResourcePath> = paths.iter().collect();
        let removed: BTreeMap<&ResourcePath, &ResourceRecord> = records
            .iter()
            .filter(|(path, _)| !declared.contains(path))
            .collect();
        let forget = self
            .cannot_delete(removed.iter().map(|(p, r)| (*p, *r)))
            .await;
        let mut schedule = Schedule::new(self.options.parallelism);
        schedule.apply(paths.iter().cloned());
        schedule.delete(
            removed
                .iter()
                .map(|(path, record)| ((*path).clone(), record.depends_on().to_vec())),
            |path| forget.contains(path),
        );
        let mut run = Run::new(self, deployment, schedule, records, "apply");
        run.drive(state).await?;
        Ok(run)
    }

    /// Of these records, those whose provider speaks upstream's protocol v0, which has no
    /// delete. A provider that cannot be asked is not assumed to be one: its delete fails
    /// with the reason.
    pub(crate) async fn cannot_delete<'r>(
        &self,
        records: impl Iterator<Item = (&'r ResourcePath, &'r ResourceRecord)>,
    ) -> BTreeSet<ResourcePath> {
        let mut forget = BTreeSet::new();
        for (path, record) in records {
            let provider = calls::provider_of(record);
            if let Ok(facts) = self.type_facts(&provider, &record.resource_type).await
                && facts.upstream_v0
            {
                forget.insert(path.clone());
            }
        }
        forget
    }

    /// Deletes the recorded resources (or the targets and what depends on them), in
    /// reverse dependency order.
    pub async fn destroy(&self, targets: &[ResourcePath]) -> Result<ApplyReport, EngineError> {
        let deployment = self.deployment()?;
        refuse_empty(targets)?;
        self.locked("destroy", async |state, mutation| {
            self.resume(state, mutation).await?;
            let records = state.records();
            if let Some(target) = targets.iter().find(|t| !records.contains_key(*t)) {
                return Err(EngineError::usage(format!(
                    "resource {target} is not recorded in the state"
                )));
            }
            let forget = self.cannot_delete(records.iter()).await;
            let mut schedule = Schedule::new(self.options.parallelism);
            schedule.delete(
                records
                    .iter()
                    .map(|(path, record)| (path.clone(), record.depends_on().to_vec())),
                |path| forget.contains(path),
            );
            let mut run = Run::new(self, deployment, schedule, records, "destroy");
            run.grant(mutation, targets);
            run.drive(state).await?;
            Ok(run.conclude())
        })
        .await
    }
}
