//! Moving a deployment's state between storages, `nixops4 state transfer`: from a local
//! state file into the deployment's storage (an `s3.object`, say), or from the
//! deployment's storage into a local file.
//!
//! Both states are locked for the copy. The destination must record nothing yet; the
//! whole document is written there as one event, read back through the destination's
//! provider and compared with the source. The source is never changed: deleting it is
//! left to the user, once the deployment names its new storage.

use std::path::PathBuf;

use crate::engine::Engine;
use crate::error::EngineError;
use crate::state::{StateStorage, StateStore};

/// Which way the state goes.
#[derive(Clone, Debug)]
pub enum Transfer {
    /// From this local state file into the deployment's storage.
    FromFile(PathBuf),
    /// From the deployment's storage into this local state file.
    ToFile(PathBuf),
}

/// What a transfer did.
#[derive(Clone, Debug)]
pub struct TransferReport {
    pub from: String,
    pub to: String,
    /// How many resource records were copied.
    pub records: usize,
}

impl Engine {
    pub async fn state_transfer(&self, transfer: &Transfer) -> Result<TransferReport, EngineError> {
        let current = self.state_storage().await?.clone();
        let (Transfer::FromFile(file) | Transfer::ToFile(file)) = transfer;
        let file = std::path::absolute(file)
            .map_err(|e| EngineError::usage(format!("{}: {e}", file.display())))?;
        let local = StateStorage::local_file(self.providers.local_command(), file.clone());
        if current.file.as_ref() == Some(&file) {
            return Err(EngineError::usage(format!(
                "{} is the deployment's state already",
                local.label
            )));
        }
        let (source, destination) = match transfer {
            Transfer::FromFile(_) => {
                if !file.exists() {
                    return Err(EngineError::usage(format!(
                        "there is no state file {}",
                        file.display()
                    )));
                }
                (local, current)
            }
            Transfer::ToFile(_) => (current, local),
        };
        let timeout = self.options.provider_timeout;
        let (from, _) =
            StateStore::open_for_changes(&source, "nixops4 state transfer", timeout).await?;
        let copied = async {
            let (mut to, _) =
                StateStore::open_for_changes(&destination, "nixops4 state transfer", timeout).await?;
            let recorded = to.records().len();
            let written = if recorded > 0 {
                Err(EngineError::usage(format!(
                    "{} already records {recorded} resource(s); a transfer only fills an empty state",
                    destination.label
                )))
            } else {
                to.replace_all("transfer", from.document()).await
            };
            to.close().await;
            written
        }
        .await;
        let original = from.document().clone();
        let records = from.records().len();
        from.close().await;
        copied?;
        let check = StateStore::open_read_only(&destination, timeout).await?;
        if check.document() != &original {
            return Err(EngineError::state(format!(
                "{} does not read back as the state that was copied into it; {} is unchanged",
                destination.label, source.label
            )));
        }
        Ok(TransferReport {
            from: source.label,
            to: destination.label,
            records,
        })
    }
}
