//! State administration: show and list the records, forget a resource without deleting
//! it (`state rm`), move a record after a rename (`state mv`), break a lock whose holder
//! is gone (`state unlock`), and re-encrypt the stored state for the keys configured now
//! (`state rekey`). No resource's provider is called but to learn which recorded outputs
//! are secret, for records that do not say.

use std::collections::BTreeMap;

use nixops4_eval::protocol::ResourcePath;
use serde_json::Value;

use crate::engine::{Engine, Secrecy, refuse_empty};
use crate::error::EngineError;
use crate::secrets::Secrets;
use crate::state::{LockHolder, ResourceRecord, StateChange, force_unlock, lock_holders};

impl Engine {
    /// The recorded state document. Each recorded value that is or contains a secret
    /// is `(sensitive)` unless `secrets` reveals it.
    pub async fn state_document(&self, secrets: Secrecy) -> Result<Value, EngineError> {
        let state = self.hiding(self.read_state().await)?;
        let mut document = state.document().clone();
        if secrets == Secrecy::Hide {
            hide_recorded_values(&mut document, &self.secrets);
        }
        Ok(document)
    }

    /// The records, with secret and secret-derived values hidden.
    pub async fn state_records(
        &self,
    ) -> Result<BTreeMap<ResourcePath, ResourceRecord>, EngineError> {
        let state = self.hiding(self.read_state().await)?;
        let mut records = state.records();
        for record in records.values_mut() {
            self.secrets.hide_properties(&mut record.input_properties);
            self.secrets.hide_properties(&mut record.output_properties);
        }
        Ok(records)
    }

    /// Who holds the state's lock, as its storage records it.
    pub async fn state_lock_holders(&self) -> Result<Vec<LockHolder>, EngineError> {
        let storage = self.state_storage().await?;
        lock_holders(storage, self.options.provider_timeout).await
    }

    /// Removes every holder's lock on the state; returns whom it released. Only for a
    /// holder that is known to be gone: one that still runs goes on until its lease
    /// renewal notices.
    pub async fn state_unlock(&self) -> Result<Vec<LockHolder>, EngineError> {
        let storage = self.state_storage().await?;
        force_unlock(storage, self.options.provider_timeout).await
    }

    /// Forgets a resource without deleting it.
    pub async fn state_remove(&self, path: &ResourcePath) -> Result<(), EngineError> {
        refuse_empty(std::slice::from_ref(path))?;
        self.locked("state rm", async |state, _| match state.get(path) {
            None => Err(EngineError::usage(format!(
                "resource {path} is not recorded in the state"
            ))),
            Some(_) => {
                let event = format!("forget {path}");
                state
                    .apply(&event, &[StateChange::Remove(path.clone())])
                    .await
            }
        })
        .await
    }

    /// Re-encrypts the stored state for the encryption keys configured now (plain when
    /// none are): what the state storage says it did.
    pub async fn state_rekey(&self) -> Result<Value, EngineError> {
        self.locked("state rekey", async |state, mutation| {
            state.rekey(mutation).await
        })
        .await
    }

    /// Moves a record to a new path, for a resource that was renamed in the expression.
    pub async fn state_move(
        &self,
        from: &ResourcePath,
        to: &ResourcePath,
    ) -> Result<(), EngineError> {
        refuse_empty(&[from.clone(), to.clone()])?;
        self.locked("state mv", async |state, _| {
            match (state.get(from), state.get(to)) {
                (None, _) => Err(EngineError::usage(format!(
                    "resource {from} is not recorded in the state"
                ))),
                (_, Some(_)) => Err(EngineError::usage(format!(
                    "resource {to} is already recorded in the state"
                ))),
                (Some(record), None) => {
                    let changes = [
                        StateChange::Remove(from.clone()),
                        StateChange::put(to.clone(), record),
                    ];
                    state.apply(&format!("move {from} to {to}"), &changes).await
                }
            }
        })
        .await
    }
}

/// Hides the sensitive inputs and outputs of every record in a state document, nested
/// deployments' included.
fn hide_recorded_values(document: &mut Value, secrets: &Secrets) {
    let Some(object) = document.as_object_mut() else {
        return;
    };
    if let Some(Value::Object(resources)) = object.get_mut("resources") {
        for record in resources.values_mut() {
            for key in ["input_properties", "output_properties"] {
                if let Some(Value::Object(properties)) = record.get_mut(key) {
                    secrets.hide_properties(properties);
                }
            }
        }
    }
    if let Some(Value::Object(deployments)) = object.get_mut("deployments") {
        for nested in deployments.values_mut() {
            hide_recorded_values(nested, secrets);
        }
    }
}
