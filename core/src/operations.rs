//! A provider's custom operations on a recorded resource, and refresh: reading every
//! recorded resource back to record drift and what is gone.
//!
//! An operation may change the world, so it runs with the state locked and its intent
//! recorded first (`pending: {"operation": ...}`), resolved by the next apply like an
//! update if NixOps4 dies during it. Reads change nothing and need no intent; a refresh
//! runs them through the engine's loop, with the lock only to record what they found.

use std::slice;

use nixops4_eval::protocol::ResourcePath;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::calls;
use crate::engine::{Engine, refuse_empty};
use crate::error::EngineError;
use crate::provider_client::ProviderError;
use crate::run::Run;
use crate::schedule::Schedule;
use crate::state::{Pending, StateChange};

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
        refuse_empty(slice::from_ref(path))?;
        self.locked("run", async |state, mutation| {
            let record = state.get(path).ok_or_else(|| {
                EngineError::usage(format!(
                    "resource {path} is not recorded in the state; apply it first"
                ))
            })?;
            if let Some(pending) = record.pending() {
                return Err(EngineError::usage(format!(
                    "resource {path} has an unfinished {pending} from an earlier run; apply first to settle it"
                )));
            }
            let mut intent = record.clone();
            let mut meta = calls::meta_of(&record);
            meta.pending = Some(Pending::Operation {
                name: operation.to_owned(),
            });
            intent.nixops4 = Some(meta);
            state
                .apply("intent", &[StateChange::put(path.clone(), intent)])
                .await?;
            let event = format!("operation {operation} on {path}");
            let mut done = record.clone();
            match calls::operation(&self.providers, &record, operation, arguments, mutation).await
            {
                Ok(response) => {
                    if let Some(outputs) = response.output_properties {
                        done.output_properties = outputs;
                        self.learn_secrets_of(&done).await;
                    }
                    state
                        .apply(&event, &[StateChange::put(path.clone(), done)])
                        .await?;
                    let mut result = response.result;
                    match result.as_object_mut() {
                        Some(properties) => self.secrets.hide_properties(properties),
                        None => self.secrets.hide_value(&mut result),
                    }
                    Ok(result)
                }
                // Refused: nothing happened, so the intent goes. Without an answer the
                // intent stays for the next apply to settle.
                Err(error) => {
                    if matches!(error, ProviderError::Refused { .. }) {
                        state
                            .apply(&event, &[StateChange::put(path.clone(), done)])
                            .await?;
                    }
                    Err(error.into())
                }
            }
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
