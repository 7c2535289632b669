//! Deployment state: upstream's `nixopsState` document, read and changed through a state
//! storage provider (the local provider's `state_file`), and the lock that keeps two
//! applies on one state apart.
//!
//! A resource at path `a` is recorded at `/resources/a`, one at `host.key` at
//! `/deployments/host/resources/key`, as upstream does. Besides upstream's `type`,
//! `input_properties` and `output_properties`, a record keeps `nixops4` metadata: the full
//! type, the provider to call for a delete, what the resource depends on, and an intent
//! (`pending`) written before a provider is called, so that a crash between the call and
//! its record is noticed and resolved on the next apply instead of orphaning a resource.
//!
//! Taking the lock is the only way to get a [`Mutation`]: the capability every provider
//! call that can change the world requires.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nixops4_eval::protocol::{ProviderSpec, ResourcePath};
use nixops4_provider_protocol::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::EngineError;
use crate::provider_client::{ProviderCommand, ProviderProcess};

/// What the state says about one resource.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceRecord {
    /// The type within the provider (`file`), as upstream records it.
    #[serde(rename = "type")]
    pub resource_type: String,
    pub input_properties: Properties,
    pub output_properties: Properties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nixops4: Option<RecordMeta>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordMeta {
    /// As written in the deployment: `local.file`.
    pub type_name: String,
    pub provider: ProviderSpec,
    #[serde(default)]
    pub depends_on: Vec<ResourcePath>,
    /// The outputs the provider marks secret, so that a reader of the state knows what to
    /// hide without asking the provider. Absent in records written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_outputs: Option<Vec<String>>,
    /// The inputs that held a secret when they were recorded: still secret after the
    /// secret they were made from changed (a rotated key's old value).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sensitive_inputs: Vec<String>,
    /// Set while a provider call for this resource may be in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending: Option<Pending>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Pending {
    /// A create was started; the resource may or may not exist.
    Create,
    /// An update was started; the record still has the inputs and outputs from before it.
    Update,
    /// A delete was started.
    Delete,
    /// A custom operation was started; it may have changed the resource's outputs.
    Operation { name: String },
}

impl std::fmt::Display for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pending::Create => f.write_str("create"),
            Pending::Update => f.write_str("update"),
            Pending::Delete => f.write_str("delete"),
            Pending::Operation { name } => write!(f, "operation {name}"),
        }
    }
}

/// The capability to change the world: every provider call that can create, change or
/// delete something takes one. Only [`StateStore::open_for_changes`], which takes the
/// state's lock, makes it, so a plan (which reads the state without the lock) cannot
/// start such a call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mutation {
    _private: (),
}

impl Mutation {
    /// For tests of code that decides about changes without making them.
    #[cfg(test)]
    pub(crate) fn for_tests() -> Mutation {
        Mutation { _private: () }
    }
}

impl ResourceRecord {
    pub fn type_name(&self) -> &str {
        self.nixops4
            .as_ref()
            .map_or(self.resource_type.as_str(), |m| m.type_name.as_str())
    }

    /// Whether the record is of this type (`local.file`). Records written by upstream
    /// NixOps4 know only the part after the dot.
    pub fn is_type(&self, type_name: &str) -> bool {
        match &self.nixops4 {
            Some(meta) => meta.type_name == type_name,
            None => type_name
                .split_once('.')
                .is_some_and(|(_, t)| t == self.resource_type),
        }
    }

    pub fn pending(&self) -> Option<&Pending> {
        self.nixops4.as_ref().and_then(|m| m.pending.as_ref())
    }

    pub fn depends_on(&self) -> &[ResourcePath] {
        self.nixops4
            .as_ref()
            .map_or(&[], |m| m.depends_on.as_slice())
    }

    pub fn as_extant(&self) -> ExtantResource {
        ExtantResource {
            resource_type: self.resource_type.clone(),
            input_properties: self.input_properties.clone(),
            output_properties: Some(self.output_properties.clone()),
        }
    }
}

/// One change to the state document.
#[derive(Clone, Debug)]
pub enum StateChange {
    Put(ResourcePath, Box<ResourceRecord>),
    Remove(ResourcePath),
}

impl StateChange {
    pub fn put(path: ResourcePath, record: ResourceRecord) -> StateChange {
        StateChange::Put(path, Box::new(record))
    }
}

/// The state of one deployment, stored through a provider process.
pub struct StateStore {
    file: PathBuf,
    provider: Option<ProviderProcess>,
    resource: ExtantResource,
    document: Value,
    _lock: Option<StateLock>,
}

impl StateStore {
    /// Opens the state in `file` for changes: takes the lock, creates the file if needed
    /// (through the local provider's `state_file`) and reads it. The lock is held until
    /// [`StateStore::close`]; the [`Mutation`] capability is good while it is.
    pub async fn open_for_changes(
        local: &ProviderCommand,
        file: &Path,
        holder: &str,
        timeout: Duration,
    ) -> Result<(StateStore, Mutation), EngineError> {
        let lock = StateLock::acquire(file, holder)?;
        let mut provider = ProviderProcess::start(local, timeout).await?;
        let inputs = state_file_inputs(file);
        provider
            .request(&Request::CreateResourceRequest(CreateResourceRequest {
                resource_type: "state_file".into(),
                input_properties: inputs.clone(),
                is_stateful: false,
            }))
            .await?;
        let resource = ExtantResource {
            resource_type: "state_file".into(),
            input_properties: inputs,
            output_properties: Some(Properties::new()),
        };
        let document = read_document(&mut provider, &resource).await?;
        let store = StateStore {
            file: file.to_owned(),
            provider: Some(provider),
            resource,
            document,
            _lock: Some(lock),
        };
        Ok((store, Mutation { _private: () }))
    }

    /// Reads the state in `file` without locking it or creating it: a missing file is an
    /// empty state.
    pub async fn open_read_only(
        local: &ProviderCommand,
        file: &Path,
        timeout: Duration,
    ) -> Result<StateStore, EngineError> {
        let resource = ExtantResource {
            resource_type: "state_file".into(),
            input_properties: state_file_inputs(file),
            output_properties: Some(Properties::new()),
        };
        let document = if file.exists() {
            let mut provider = ProviderProcess::start(local, timeout).await?;
            let document = read_document(&mut provider, &resource).await?;
            let _ = provider.close().await;
            document
        } else {
            empty_document()
        };
        Ok(StateStore {
            file: file.to_owned(),
            provider: None,
            resource,
            document,
            _lock: None,
        })
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn document(&self) -> &Value {
        &self.document
    }

    pub fn get(&self, path: &ResourcePath) -> Option<ResourceRecord> {
        let value = self.document.pointer(&pointer(path).ok()?)?;
        serde_json::from_value(value.clone()).ok()
    }

    /// Every recorded resource, by path.
    pub fn records(&self) -> BTreeMap<ResourcePath, ResourceRecord> {
        records_of(&self.document)
    }

    /// Records changes as one event, durably, before returning.
    pub async fn apply(&mut self, event: &str, changes: &[StateChange]) -> Result<(), EngineError> {
        let mut operations = Vec::new();
        // Nested deployment objects this event creates, so that each is added once.
        let mut created: BTreeSet<String> = BTreeSet::new();
        for change in changes {
            match change {
                StateChange::Put(path, record) => {
                    let at = pointer(path)?;
                    for container in missing_containers(&self.document, path) {
                        if created.insert(container.clone()) {
                            operations.push(json!({"op": "add", "path": container, "value": {"resources": {}, "deployments": {}}}));
                        }
                    }
                    operations.push(json!({"op": "add", "path": at, "value": record}));
                }
                StateChange::Remove(path) => {
                    let at = pointer(path)?;
                    let exists = self.document.pointer(&at).is_some()
                        || operations.iter().any(|op| op["path"] == json!(at));
                    if exists {
                        operations.push(json!({"op": "remove", "path": at}));
                    }
                }
            }
        }
        if operations.is_empty() {
            return Ok(());
        }
        // The same operations, checked on the document before they are recorded, and
        // applied to it after (json_patch undoes a patch that fails halfway).
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(operations))
            .map_err(|e| EngineError::internal(format!("building a state patch: {e}")))?;
        json_patch::patch(&mut self.document, &patch)
            .map_err(|e| EngineError::state(format!("the state does not take the change: {e}")))?;
        if let Err(error) = self.record_patch(event, patch).await {
            // It may or may not have landed: the file says which.
            if let Some(provider) = self.provider.as_mut()
                && let Ok(document) = read_document(provider, &self.resource).await
            {
                self.document = document;
            }
            return Err(error);
        }
        Ok(())
    }

    async fn record_patch(
        &mut self,
        event: &str,
        patch: json_patch::Patch,
    ) -> Result<(), EngineError> {
        let provider = self
            .provider
            .as_mut()
            .ok_or_else(|| EngineError::internal("the state was opened read-only"))?;
        provider
            .request(&Request::StateResourceEvent(StateResourceEvent {
                resource: self.resource.clone(),
                event: event.to_owned(),
                nixops_version: env!("CARGO_PKG_VERSION").to_owned(),
                patch,
            }))
            .await?;
        Ok(())
    }

    /// Closes the state provider and releases the lock.
    pub async fn close(mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.close().await;
        }
    }
}

fn state_file_inputs(file: &Path) -> Properties {
    let mut inputs = Properties::new();
    inputs.insert("name".into(), Value::String(file.display().to_string()));
    inputs
}

async fn read_document(
    provider: &mut ProviderProcess,
    resource: &ExtantResource,
) -> Result<Value, EngineError> {
    match provider
        .request(&Request::StateResourceReadRequest(
            StateResourceReadRequest {
                resource: resource.clone(),
            },
        ))
        .await?
    {
        Response::StateResourceReadResponse(read) => {
            let document = Value::Object(read.state);
            if document.get("_type") != Some(&json!("nixopsState")) {
                return Err(EngineError::state(
                    "the state document is not a `nixopsState` document",
                ));
            }
            Ok(document)
        }
        other => Err(EngineError::internal(format!(
            "unexpected answer to a state read: {}",
            other.name()
        ))),
    }
}

/// Every resource a state document records, by path.
pub fn records_of(document: &Value) -> BTreeMap<ResourcePath, ResourceRecord> {
    let mut records = BTreeMap::new();
    collect(document, &mut Vec::new(), &mut records);
    records
}

fn empty_document() -> Value {
    json!({"_type": "nixopsState", "resources": {}, "deployments": {}})
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The JSON pointer of a resource's record. An empty path names no resource.
fn pointer(path: &ResourcePath) -> Result<String, EngineError> {
    let Some((last, parents)) = path.0.split_last() else {
        return Err(EngineError::usage(
            "an empty resource path names no resource",
        ));
    };
    let mut pointer = String::new();
    for parent in parents {
        pointer.push_str("/deployments/");
        pointer.push_str(&escape(parent));
    }
    pointer.push_str("/resources/");
    pointer.push_str(&escape(last));
    Ok(pointer)
}

/// The nested deployment objects a record at `path` needs that do not exist yet.
fn missing_containers(document: &Value, path: &ResourcePath) -> Vec<String> {
    let mut missing = Vec::new();
    let mut pointer = String::new();
    let parents = path.0.split_last().map_or(&[][..], |(_, parents)| parents);
    for parent in parents {
        pointer.push_str("/deployments/");
        pointer.push_str(&escape(parent));
        if document.pointer(&pointer).is_none() {
            missing.push(pointer.clone());
        }
    }
    missing
}

fn collect(
    deployment: &Value,
    prefix: &mut Vec<String>,
    into: &mut BTreeMap<ResourcePath, ResourceRecord>,
) {
    if let Some(resources) = deployment.get("resources").and_then(Value::as_object) {
        for (name, value) in resources {
            if let Ok(record) = serde_json::from_value(value.clone()) {
                let mut path = prefix.clone();
                path.push(name.clone());
                into.insert(ResourcePath(path), record);
            }
        }
    }
    if let Some(deployments) = deployment.get("deployments").and_then(Value::as_object) {
        for (name, nested) in deployments {
            prefix.push(name.clone());
            collect(nested, prefix, into);
            prefix.pop();
        }
    }
}

/// An exclusive lock on a state, held for a whole apply, next to the state file. The
/// lock file says who holds it; the operating system releases it when the holder ends,
/// however it ends.
pub struct StateLock {
    _file: File,
}

impl StateLock {
    pub fn acquire(state_file: &Path, holder: &str) -> Result<StateLock, EngineError> {
        if let Some(parent) = state_file.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| EngineError::state(format!("creating {}: {e}", parent.display())))?;
        }
        let lock_path = lock_path(state_file);
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| EngineError::state(format!("opening {}: {e}", lock_path.display())))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(EngineError::locked(format!(
                    "the state {} is locked by {}",
                    state_file.display(),
                    if holder.is_empty() {
                        "another NixOps4 process"
                    } else {
                        holder
                    }
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(EngineError::state(format!(
                    "locking {}: {e}",
                    lock_path.display()
                )));
            }
        }
        // It names the holder: the owner's business only, like the state.
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o600));
        let since = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let description = format!("{holder} (process {}) since {since}\n", std::process::id());
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(description.as_bytes()));
        written.map_err(|e| EngineError::state(format!("writing {}: {e}", lock_path.display())))?;
        Ok(StateLock { _file: file })
    }
}

pub fn lock_path(state_file: &Path) -> PathBuf {
    let mut name = state_file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    state_file.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(dotted: &str) -> ResourcePath {
        ResourcePath::parse_dotted(dotted)
    }

    #[test]
    fn pointers_follow_upstream_nesting() {
        let pointer = |path: &ResourcePath| match super::pointer(path) {
            Ok(pointer) => pointer,
            Err(error) => error.message,
        };
        assert_eq!(pointer(&p("a")), "/resources/a");
        assert_eq!(pointer(&p("host.key")), "/deployments/host/resources/key");
        assert_eq!(
            pointer(&ResourcePath(vec!["a/b~c".into()])),
            "/resources/a~1b~0c"
        );
        assert_eq!(
            pointer(&ResourcePath(vec![])),
            "an empty resource path names no resource"
        );
        assert!(missing_containers(&empty_document(), &ResourcePath(vec![])).is_empty());
    }

    #[test]
    fn records_are_collected_from_nested_deployments() {
        let document = json!({"_type": "nixopsState", "resources": {"a": {"type": "file", "input_properties": {}, "output_properties": {}}},
            "deployments": {"host": {"resources": {"key": {"type": "key", "input_properties": {"x": 1}, "output_properties": {}}}, "deployments": {}}}});
        let mut records = BTreeMap::new();
        collect(&document, &mut Vec::new(), &mut records);
        assert_eq!(
            records.keys().cloned().collect::<Vec<_>>(),
            vec![p("a"), p("host.key")]
        );
        assert_eq!(missing_containers(&document, &p("other.x")).len(), 1);
        assert!(missing_containers(&document, &p("host.y")).is_empty());
    }
}
