//! Deployment state: upstream's `nixopsState` document, read and changed through the
//! state resource's provider (the local provider's `state_file`, `s3.object`, upstream's
//! `state_file`, ...), and the lock that keeps two applies on one state apart
//! ([`lock`]).
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

mod lock;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use nixops4_eval::protocol::{ProviderSpec, ResourcePath};
use nixops4_provider_protocol::*;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::EngineError;
use crate::provider_client::{ProviderCommand, ProviderProcess};
pub use lock::lock_path;
use lock::{Held, holder};
pub use lock::{force_unlock, lock_holders};
pub use nixops4_provider_protocol::LockHolder;

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
    /// The strings among the inputs (as JSON pointers into them) that held a secret when
    /// they were recorded: still secret after the secret they were made from changed (a
    /// rotated key's old value).
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

/// Where a deployment's state is stored: a state resource of some provider.
#[derive(Clone, Debug)]
pub struct StateStorage {
    pub provider: ProviderCommand,
    /// The type within the provider: `state_file`, `object`.
    pub resource_type: String,
    pub inputs: Properties,
    /// The file, when the state is a local file (a `state_file` with a `name`): the
    /// engine locks it beside the file, and a missing file is an empty state. Any other
    /// storage is locked by its provider (`stateLockRequest`).
    pub file: Option<PathBuf>,
    /// How messages name it: `the state file <path>`, `the state resource `state``.
    pub label: String,
}

impl StateStorage {
    /// A local state file, through the local provider.
    pub fn local_file(local: ProviderCommand, file: PathBuf) -> StateStorage {
        let mut inputs = Properties::new();
        inputs.insert("name".into(), Value::String(file.display().to_string()));
        StateStorage {
            provider: local,
            resource_type: "state_file".into(),
            inputs,
            label: format!("the state file {}", file.display()),
            file: Some(file),
        }
    }

    fn resource(&self, outputs: Properties) -> ExtantResource {
        ExtantResource {
            resource_type: self.resource_type.clone(),
            input_properties: self.inputs.clone(),
            output_properties: Some(outputs),
        }
    }
}

/// The state of one deployment, stored through a provider process.
pub struct StateStore {
    storage: StateStorage,
    provider: Option<ProviderProcess>,
    resource: ExtantResource,
    document: Value,
    lock: Option<Held>,
}

impl StateStore {
    /// Opens the state for changes: takes the lock, creates the storage if needed (its
    /// provider's create) and reads it. The lock is held until [`StateStore::close`];
    /// the [`Mutation`] capability is good while it is.
    pub async fn open_for_changes(
        storage: &StateStorage,
        operation: &str,
        timeout: Duration,
    ) -> Result<(StateStore, Mutation), EngineError> {
        let holder = holder(operation);
        let file_lock = match &storage.file {
            Some(file) => Some(Held::file(file, &holder)?),
            None => None,
        };
        let mut provider = ProviderProcess::start(&storage.provider, timeout).await?;
        if file_lock.is_none() {
            Held::require_provider_lock(&provider, storage)?;
        }
        let outputs = match provider
            .request(&Request::CreateResourceRequest(CreateResourceRequest {
                resource_type: storage.resource_type.clone(),
                input_properties: storage.inputs.clone(),
                is_stateful: false,
            }))
            .await
            .map_err(|e| in_storage(storage, e.into()))?
        {
            Response::CreateResourceResponse(created) => created.output_properties,
            other => {
                return Err(EngineError::internal(format!(
                    "unexpected answer to creating {}: {}",
                    storage.label,
                    other.name()
                )));
            }
        };
        let resource = storage.resource(outputs);
        let lock = match file_lock {
            Some(lock) => lock,
            None => Held::provider(&mut provider, storage, &resource, holder).await?,
        };
        let document = read_document(&mut provider, &resource)
            .await
            .map_err(|e| in_storage(storage, e))?;
        let store = StateStore {
            storage: storage.clone(),
            provider: Some(provider),
            resource,
            document,
            lock: Some(lock),
        };
        Ok((store, Mutation { _private: () }))
    }

    /// Reads the state without locking it or creating it: a missing state file is an
    /// empty state.
    pub async fn open_read_only(
        storage: &StateStorage,
        timeout: Duration,
    ) -> Result<StateStore, EngineError> {
        let mut resource = storage.resource(Properties::new());
        let document = if storage.file.as_ref().is_some_and(|file| !file.exists()) {
            empty_document()
        } else {
            let mut provider = ProviderProcess::start(&storage.provider, timeout).await?;
            let document = read_document(&mut provider, &resource).await;
            if document.is_ok() && storage.file.is_none() {
                resource.output_properties = observed_outputs(&mut provider, &resource).await;
            }
            let _ = provider.close().await;
            document.map_err(|e| in_storage(storage, e))?
        };
        Ok(StateStore {
            storage: storage.clone(),
            provider: None,
            resource,
            document,
            lock: None,
        })
    }

    /// The outputs of the state resource, for expressions that use them: a state file's
    /// `path`, or what its provider answered.
    pub fn outputs(&self) -> Properties {
        match &self.storage.file {
            Some(file) => {
                let mut outputs = Properties::new();
                outputs.insert("path".into(), Value::String(file.display().to_string()));
                outputs
            }
            None => self.resource.output_properties.clone().unwrap_or_default(),
        }
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
            // It may or may not have landed: the storage says which.
            if let Some(provider) = self.provider.as_mut()
                && let Ok(document) = read_document(provider, &self.resource).await
            {
                self.document = document;
            }
            return Err(error);
        }
        Ok(())
    }

    /// Records `document` (another state's) as this one, in one event: every top-level
    /// member but `_type` is set.
    pub async fn replace_all(&mut self, event: &str, document: &Value) -> Result<(), EngineError> {
        let operations: Vec<Value> = document
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| *key != "_type")
            .map(|(key, value)| json!({"op": "add", "path": format!("/{}", escape(key)), "value": value}))
            .collect();
        let patch: json_patch::Patch = serde_json::from_value(Value::Array(operations))
            .map_err(|e| EngineError::internal(format!("building a state patch: {e}")))?;
        self.record_patch(event, patch).await?;
        self.document = document.clone();
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
            .await
            .map_err(|e| in_storage(&self.storage, e.into()))?;
        Ok(())
    }

    /// Has the state storage rewrite what it stores for the encryption keys configured
    /// now (its `rekey` operation), then checks that the state reads back the same.
    pub async fn rekey(&mut self, _: Mutation) -> Result<Value, EngineError> {
        let provider = self
            .provider
            .as_mut()
            .ok_or_else(|| EngineError::internal("the state was opened read-only"))?;
        let request = Request::OperationRequest(OperationRequest {
            resource: self.resource.clone(),
            operation: "rekey".into(),
            arguments: Properties::new(),
            is_stateful: false,
        });
        let Response::OperationResponse(response) = provider.request(&request).await? else {
            return Err(EngineError::internal("unexpected answer to rekey"));
        };
        if read_document(provider, &self.resource).await? != self.document {
            return Err(EngineError::state(format!(
                "{} reads differently after re-encryption",
                self.storage.label
            )));
        }
        Ok(response.result)
    }

    /// Releases the lock and closes the state provider.
    pub async fn close(mut self) {
        if let Some(mut provider) = self.provider.take() {
            if let Some(lock) = self.lock.take() {
                lock.release(&mut provider, &self.resource).await;
            }
            let _ = provider.close().await;
        }
    }
}

/// Says which storage failed, unless the message already does.
fn in_storage(storage: &StateStorage, error: EngineError) -> EngineError {
    if storage.file.is_some() {
        return error;
    }
    EngineError::new(error.kind, format!("{}: {}", storage.label, error.message))
}

/// What the storage's provider observes as the state resource's outputs, when it can say.
async fn observed_outputs(
    provider: &mut ProviderProcess,
    resource: &ExtantResource,
) -> Option<Properties> {
    let request = Request::ReadResourceRequest(ReadResourceRequest {
        resource: resource.clone(),
    });
    if !provider.supports(&request) {
        return None;
    }
    match provider.request(&request).await {
        Ok(Response::ReadResourceResponse(ReadResourceResponse::Present { output_properties })) => {
            Some(output_properties)
        }
        _ => None,
    }
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
        .await
        .map_err(EngineError::from)?
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
