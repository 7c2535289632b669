//! Crash resume: before an apply or destroy plans anything, it settles the intents that a
//! run which was killed (or lost its provider) left in the state.
//!
//! A create that may have happened is read back: kept if the resource exists, forgotten
//! if not, or where the provider cannot read. An update or an operation is read back and
//! its outputs recorded (the apply then redoes an update, whose record still has the old
//! inputs); where the provider cannot read, the intent is cleared. A delete is done again,
//! or, where the provider speaks upstream's protocol v0 and cannot delete, the record is
//! forgotten with a warning.

use nixops4_provider_protocol::{ErrorKind, Properties, ReadResourceResponse};

use crate::calls;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::events::{Event, emit};
use crate::provider_client::ProviderError;
use crate::state::{Mutation, Pending, ResourceRecord, StateChange, StateStore};

impl Engine {
    pub(crate) async fn resume(
        &self,
        state: &mut StateStore,
        mutation: Mutation,
    ) -> Result<(), EngineError> {
        for (path, record) in state.records() {
            let Some(pending) = record.pending() else {
                continue;
            };
            let change = match pending {
                Pending::Delete
                    if self
                        .cannot_delete([(&path, &record)].into_iter())
                        .await
                        .contains(&path) =>
                {
                    emit(
                        &self.options.events,
                        &self.secrets,
                        Event::Forgotten {
                            resource: path.clone(),
                            provider: calls::provider_of(&record).name,
                        },
                    );
                    StateChange::Remove(path)
                }
                Pending::Delete => {
                    calls::delete(&self.providers, &record, mutation)
                        .await
                        .map_err(|error| {
                            let mut error = EngineError::from(error);
                            error.message = format!(
                                "{}; remove the record with `nixops4 state rm` if it is gone",
                                error.message
                            );
                            error
                        })?;
                    StateChange::Remove(path)
                }
                Pending::Create => match calls::read(&self.providers, &record, false).await {
                    Ok(ReadResourceResponse::Present { output_properties }) => {
                        StateChange::put(path, settled(&record, Some(output_properties)))
                    }
                    Ok(ReadResourceResponse::Gone {}) => StateChange::Remove(path),
                    Err(error) if cannot_read(&error) => StateChange::Remove(path),
                    Err(error) => return Err(error.into()),
                },
                Pending::Update | Pending::Operation { .. } => {
                    match calls::read(&self.providers, &record, true).await {
                        Ok(ReadResourceResponse::Present { output_properties }) => {
                            StateChange::put(path, settled(&record, Some(output_properties)))
                        }
                        Ok(ReadResourceResponse::Gone {}) => StateChange::Remove(path),
                        Err(error) if cannot_read(&error) => {
                            StateChange::put(path, settled(&record, None))
                        }
                        Err(error) => return Err(error.into()),
                    }
                }
            };
            state.apply("resume", &[change]).await?;
        }
        Ok(())
    }
}

/// Whether the provider cannot read this resource back: it has no `read` at all, or its
/// type answers that it cannot (`local.exec` without recorded outputs, say).
fn cannot_read(error: &ProviderError) -> bool {
    matches!(error, ProviderError::Unsupported { .. })
        || error.kind() == Some(ErrorKind::Unsupported)
}

/// The record without its intent, with the outputs read back when there are some.
fn settled(record: &ResourceRecord, outputs: Option<Properties>) -> ResourceRecord {
    let mut record = record.clone();
    if let Some(outputs) = outputs {
        record.output_properties = outputs;
    }
    if let Some(meta) = &mut record.nixops4 {
        meta.pending = None;
    }
    record
}
