//! `local.state_file`: deployment state kept in a local file, in upstream's format.
//!
//! The file is an append-only log of events, each a JSON Patch over one `nixopsState`
//! document; reading the state replays them. We write one event per line and sync it
//! before answering; we read upstream's pretty-printed events too. A file that does not
//! replay cleanly (bad JSON, an event cut short by a crash, a patch that does not apply)
//! is refused with the line at fault: nothing is dropped or "repaired" silently.
//!
//! Reads take a shared lock and appends an exclusive one (`flock`, as upstream does). The
//! replayed document is cached between events of one session; if the file's length is not
//! what this process last wrote, someone else wrote to it and it is replayed again.
//!
//! Events are encrypted for age recipients when the environment configures them
//! (`log.rs`, docs/state-encryption.md); the `rekey` operation rewrites the whole file for
//! the recipients configured now, into a new file renamed over the old one.

mod log;

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use nixops4_provider_sdk::protocol::{InputPath, Properties, StateResourceEvent};
use nixops4_provider_sdk::{
    Context, ErrorContext, Extant, OperationOutcome, ProviderError, ResourceType, Result, TypeInfo,
    no_arguments,
};
use nixops4_state_encryption::StateKeys;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::paths::{absolute, path_string, sync_parent};
use log::{Event, Replayed, encode, meta, replay};

#[derive(Default)]
pub struct LocalStateFile {
    replayed: Mutex<HashMap<PathBuf, Replayed>>,
    /// The encryption keys the environment configures, read once.
    keys: OnceLock<std::result::Result<StateKeys, String>>,
}

/// Inputs of `local.state_file`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateFileInputs {
    /// Path of the state file. A relative path is relative to the directory NixOps4 runs
    /// in. An existing file is checked and kept; a missing one is created.
    pub name: String,
}

/// Outputs of `local.state_file`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct StateFileOutputs {
    /// Absolute path of the state file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl ResourceType for LocalStateFile {
    type Inputs = StateFileInputs;
    type Outputs = StateFileOutputs;

    fn info(&self) -> TypeInfo {
        TypeInfo::new(
            "Stores deployment state in a local file: an append-only log of JSON Patch events, synced on every write, encrypted for the age recipients the environment configures.",
        )
        .operation(
            "rekey",
            "Rewrites every event of the state file for the age recipients configured now (plain when none are): a new file, synced and renamed over the old one.",
            no_arguments(),
        )
    }

    fn create(&self, inputs: StateFileInputs, _: &Context) -> Result<StateFileOutputs> {
        let path = absolute(&inputs.name)?;
        if path.exists() {
            self.with_file(&path, false, |_, replayed| {
                tracing::info!(
                    "using existing state file {} ({} events)",
                    path.display(),
                    replayed.events
                );
                Ok(())
            })?;
        } else {
            create_log(&path, self.keys(&path)?)?;
        }
        outputs(&path)
    }

    fn read(
        &self,
        resource: Extant<StateFileInputs, StateFileOutputs>,
    ) -> Result<Option<StateFileOutputs>> {
        let path = absolute(&resource.inputs.name)?;
        if path.exists() {
            outputs(&path).map(Some)
        } else {
            Ok(None)
        }
    }

    fn update(
        &self,
        previous: Extant<StateFileInputs, StateFileOutputs>,
        inputs: StateFileInputs,
        context: &Context,
    ) -> Result<StateFileOutputs> {
        if absolute(&previous.inputs.name)? != absolute(&inputs.name)? {
            return Err(ProviderError::invalid_input(format!(
                "a state file cannot be moved by changing its name (from {:?} to {:?}): move the file yourself, then change the name",
                previous.inputs.name, inputs.name
            ))
            .at(InputPath::key("name")));
        }
        self.create(inputs, context)
    }

    fn destroy(&self, resource: Extant<StateFileInputs, StateFileOutputs>) -> Result<()> {
        let path = absolute(&resource.inputs.name)?;
        if !path.exists() {
            return Ok(());
        }
        self.with_file(&path, true, |_, replayed| {
            let recorded = count_resources(&replayed.state);
            if recorded > 0 {
                return Err(ProviderError::invalid_input(format!(
                    "state file {} still records {recorded} resource(s); delete them before the state file",
                    path.display()
                )));
            }
            fs::remove_file(&path).context(format!("deleting {}", path.display()))
        })?;
        sync_parent(&path)?;
        self.replayed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&path);
        Ok(())
    }

    fn operation(
        &self,
        name: &str,
        resource: Extant<StateFileInputs, StateFileOutputs>,
        _: Properties,
        _: &Context,
    ) -> Result<OperationOutcome<StateFileOutputs>> {
        match name {
            "rekey" => {
                let path = absolute(&resource.inputs.name)?;
                let result = self.rekey(&path)?;
                Ok(OperationOutcome {
                    result,
                    outputs: None,
                })
            }
            other => Err(ProviderError::unsupported(format!(
                "state_file has no operation `{other}`"
            ))),
        }
    }

    fn state_read(
        &self,
        resource: Extant<StateFileInputs, StateFileOutputs>,
    ) -> Result<Properties> {
        let path = absolute(&resource.inputs.name)?;
        self.with_file(&path, false, |_, replayed| match &replayed.state {
            Value::Object(state) => Ok(state.clone()),
            _ => Err(ProviderError::internal("state document is not an object")),
        })
    }

    fn state_event(
        &self,
        resource: Extant<StateFileInputs, StateFileOutputs>,
        event: &StateResourceEvent,
    ) -> Result<()> {
        let path = absolute(&resource.inputs.name)?;
        let keys = self.keys(&path)?;
        self.with_file(&path, true, |file, replayed| {
            // The patch is applied in place (json_patch undoes a patch that fails). From
            // then until the append is synced the cache is ahead of the file, so it is
            // marked stale: any failure makes the next access replay the file.
            json_patch::patch(&mut replayed.state, &event.patch).map_err(|e| {
                ProviderError::invalid_input(format!(
                    "the `{}` event does not apply to the state in {}: {e}",
                    event.event,
                    path.display()
                ))
            })?;
            replayed.length = u64::MAX;
            if replayed.state.get("_type") != Some(&json!("nixopsState")) {
                return Err(ProviderError::invalid_input(format!(
                    "the `{}` event would change the state document's `_type`",
                    event.event
                )));
            }
            let entry = Event {
                index: replayed.events,
                meta: meta(&[
                    ("event", &event.event),
                    ("nixopsVersion", &event.nixops_version),
                ]),
                patch: event.patch.clone(),
            };
            let mut line = if replayed.ends_with_newline {
                String::new()
            } else {
                "\n".to_owned()
            };
            line.push_str(&encode(&entry, keys)?);
            line.push('\n');
            file.write_all(line.as_bytes())
                .and_then(|()| file.sync_data())
                .context(format!("appending to state file {}", path.display()))?;
            replayed.events += 1;
            replayed.length = file
                .metadata()
                .context("reading the state file's size")?
                .len();
            replayed.ends_with_newline = true;
            Ok(())
        })
    }
}

impl LocalStateFile {
    /// Opens the log under a lock (exclusive when `write`), brings the cached replay up to
    /// date, and runs `work` with both.
    fn with_file<T>(
        &self,
        path: &Path,
        write: bool,
        work: impl FnOnce(&mut File, &mut Replayed) -> Result<T>,
    ) -> Result<T> {
        let keys = self.keys(path)?;
        let mut file = open_locked(path, write)?;
        let length = file
            .metadata()
            .context(format!("reading {}", path.display()))?
            .len();
        let mut cache = self.replayed.lock().unwrap_or_else(|e| e.into_inner());
        let fresh = cache.get(path).is_some_and(|r| r.length == length);
        if !fresh {
            let mut bytes = Vec::new();
            file.read_to_end(&mut bytes)
                .context(format!("reading {}", path.display()))?;
            cache.insert(path.to_owned(), replay(path, &bytes, keys)?);
        }
        let replayed = cache
            .get_mut(path)
            .ok_or_else(|| ProviderError::internal("state cache lost an entry"))?;
        work(&mut file, replayed)
    }

    /// The keys for the state in `path`; a bad configuration is reported with it.
    fn keys(&self, path: &Path) -> Result<&StateKeys> {
        self.keys
            .get_or_init(|| StateKeys::from_env().map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|e| keys_error(path, e))
    }

    /// Rewrites the whole log for the recipients configured now. The new log goes to a
    /// file beside the old one, is synced, checked to replay to the same document, and
    /// renamed over the old one: killed at any point, the state file is either the old
    /// one or the new one, whole.
    fn rekey(&self, path: &Path) -> Result<Value> {
        let keys = self.keys(path)?;
        let mut file = open_locked(path, true)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .context(format!("reading {}", path.display()))?;
        let (resealed, events) = log::reseal(path, &bytes, keys)?;
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(".rekey");
        let new = path.with_file_name(name);
        let written = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(OWNER_ONLY)
            .open(&new)
            .and_then(|mut f| {
                f.write_all(&resealed)?;
                f.sync_all()
            });
        written.context(format!("writing {}", new.display()))?;
        fs::rename(&new, path).context(format!(
            "renaming {} to {}",
            new.display(),
            path.display()
        ))?;
        sync_parent(path)?;
        self.replayed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(path);
        Ok(json!({ "events": events, "encrypted": keys.encrypts() }))
    }
}

/// Opens the log and locks it (exclusively when `write`). A log renamed over while this
/// waited for the lock (a rekey) is opened again, so nothing is written to the old one.
fn open_locked(path: &Path, write: bool) -> Result<File> {
    loop {
        let file = OpenOptions::new()
            .read(true)
            .append(write)
            .open(path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => ProviderError::not_found(format!(
                    "state file {} does not exist",
                    path.display()
                )),
                _ => ProviderError::internal(format!("opening state file {}: {e}", path.display())),
            })?;
        lock(&file, path, write)?;
        let opened = file.metadata().map(|m| m.ino());
        let current = fs::metadata(path).map(|m| m.ino());
        if let (Ok(opened), Ok(current)) = (opened, current)
            && opened == current
        {
            if write {
                keep_to_owner(&file, path)?;
            }
            return Ok(file);
        }
    }
}

fn lock(file: &File, path: &Path, exclusive: bool) -> Result<()> {
    let attempt = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match attempt {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::info!("waiting for the lock on state file {}", path.display());
            let locked = if exclusive {
                file.lock()
            } else {
                file.lock_shared()
            };
            locked.context(format!("locking {}", path.display()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(ProviderError::internal(format!(
            "locking {}: {e}",
            path.display()
        ))),
    }
}

/// The state document a state file holds, read without taking its lock: for readers that
/// only show the state (the language server's hover). A write in progress may make it fail;
/// nothing is changed.
pub fn read_document(path: &Path) -> Result<Value> {
    let bytes = fs::read(path).map_err(|e| {
        ProviderError::internal(format!("cannot read state file {}: {e}", path.display()))
    })?;
    let keys = StateKeys::from_env().map_err(|e| keys_error(path, &e))?;
    Ok(replay(path, &bytes, &keys)?.state)
}

/// State holds secrets: its files are readable and writable by their owner only.
const OWNER_ONLY: u32 = 0o600;

/// Takes the permissions of group and others away from a state file that has them (one
/// written by an older version, or copied).
fn keep_to_owner(file: &File, path: &Path) -> Result<()> {
    let mode = file
        .metadata()
        .context(format!("reading {}", path.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        file.set_permissions(fs::Permissions::from_mode(mode & 0o700))
            .context(format!("restricting {} to its owner", path.display()))?;
    }
    Ok(())
}

/// Creates a new log holding only the initial event, durably, and never over a file that
/// appeared meanwhile.
fn create_log(path: &Path, keys: &StateKeys) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).context(format!("creating directory {}", parent.display()))?;
    }
    let mut line = encode(&Event::initial()?, keys)?;
    line.push('\n');
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(OWNER_ONLY)
        .open(path)
        .context(format!("creating state file {}", path.display()))?;
    file.write_all(line.as_bytes())
        .and_then(|()| file.sync_all())
        .context(format!("writing state file {}", path.display()))?;
    sync_parent(path)
}

fn keys_error(path: &Path, error: &dyn std::fmt::Display) -> ProviderError {
    ProviderError::invalid_input(format!(
        "state file {}: the encryption keys are not usable: {error}",
        path.display()
    ))
}

/// Resources recorded anywhere in the document, nested deployments included.
fn count_resources(deployment: &Value) -> usize {
    let own = deployment
        .get("resources")
        .and_then(Value::as_object)
        .map_or(0, Map::len);
    let nested: usize = deployment
        .get("deployments")
        .and_then(Value::as_object)
        .map_or(0, |d| d.values().map(count_resources).sum());
    own + nested
}

fn outputs(path: &Path) -> Result<StateFileOutputs> {
    Ok(StateFileOutputs {
        path: Some(path_string(path)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_nested_resources() {
        let state = json!({"resources": {"a": {}}, "deployments": {"d": {"resources": {"b": {}, "c": {}}, "deployments": {}}}});
        assert_eq!(count_resources(&state), 3);
    }
}
