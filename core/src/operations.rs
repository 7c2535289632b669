//! A provider's custom operations on a recorded resource, and refresh: reading every
//! recorded resource back to record drift and what is gone.
//!
//! An operation may change the world, so it runs with the state locked. Reads change
//! nothing; a refresh runs them through the engine's loop, with the lock only to record
//! what they found.

use nixops4_eval::protocol::ResourcePath;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::calls;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::run::Run;
use crate::schedule::Schedule;
use crate::state::StateChange;

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

impl Engine {
    /// Runs a provider's custom operation on a recorded resource and records the result.
    pub async fn run_operation(
        &self,
        path: &ResourcePath,
        operation: &str,
        arguments: Map<String, Value>,
    ) -> Result<Value, EngineError> {
        self.deployment()?;
        self.locked("run", async |state, mutation| {
            let record = state.get(path).ok_or_else(|| {
                EngineError::usage(format!(
                    "resource {path} is not recorded in the state; apply it first"
                ))
            })?;
            let response =
                calls::operation(&self.providers, &record, operation, arguments, mutation).await?;
            let event = format!("operation {operation} on {path}");
            match response.output_properties {
                Some(outputs) => {
                    let mut record = record.clone();
                    record.output_properties = outputs;
                    state
                        .apply(&event, &[StateChange::put(path.clone(), record)])
                        .await?;
                }
                None => state.note(&event).await?,
            }
            Ok(response.result)
        })
        .await
    }

    /// Reads every recorded resource back from its provider and records what it finds:
    /// new outputs (drift), or that the resource is gone (its record is removed, so the
    /// next plan creates it again). Providers that cannot read keep their records.
    pub async fn refresh(&self) -> Result<RefreshReport, EngineError> {
        let deployment = self.deployment()?;
        self.locked("refresh", async |state, _reads_need_no_mutation| {
            let records = state.records();
            let mut schedule = Schedule::new(self.options.parallelism);
            schedule.read(records.keys().cloned());
            let mut run = Run::new(self, deployment, schedule, records, "refresh");
            run.drive(state).await?;
            Ok(run.refresh_report())
        })
        .await
    }
}
