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

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nixops4_provider_sdk::protocol::{InputPath, Properties, StateResourceEvent};
use nixops4_provider_sdk::{
    Context, ErrorContext, Extant, ProviderError, ResourceType, Result, TypeInfo,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::paths::{absolute, path_string, sync_parent};
use crate::timestamp;

#[derive(Default)]
pub struct LocalStateFile {
    replayed: Mutex<HashMap<PathBuf, Replayed>>,
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

/// One entry of the log.
#[derive(Debug, Serialize, Deserialize)]
struct Event {
    index: u64,
    meta: Map<String, Value>,
    patch: json_patch::Patch,
}

/// The document a file replays to, and where the file ended when it was replayed.
#[derive(Debug)]
struct Replayed {
    state: Value,
    events: u64,
    length: u64,
    ends_with_newline: bool,
}

impl ResourceType for LocalStateFile {
    type Inputs = StateFileInputs;
    type Outputs = StateFileOutputs;

    fn info(&self) -> TypeInfo {
        TypeInfo::new(
            "Stores deployment state in a local file: an append-only log of JSON Patch events, synced on every write.",
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
            create_log(&path)?;
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
            line.push_str(&serde_json::to_string(&entry).context("serialising a state event")?);
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
        let mut file = OpenOptions::new()
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
        if write {
            keep_to_owner(&file, path)?;
        }
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
            cache.insert(path.to_owned(), replay(path, &bytes)?);
        }
        let replayed = cache
            .get_mut(path)
            .ok_or_else(|| ProviderError::internal("state cache lost an entry"))?;
        work(&mut file, replayed)
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
    Ok(replay(path, &bytes)?.state)
}

/// Replays a log into its document, refusing anything that does not replay cleanly.
fn replay(path: &Path, bytes: &[u8]) -> Result<Replayed> {
    let shown = path.display();
    let mut state = Value::Null;
    let mut events = 0u64;
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        let value = match stream.next() {
            None => break,
            Some(Ok(value)) => value,
            Some(Err(e)) if e.is_eof() => {
                let line = line_of(bytes, first_non_space(bytes, start));
                return Err(ProviderError::internal(format!(
                    "state file {shown}: the event starting at line {line} is incomplete, probably cut short by a crash; \
                     it is not dropped silently: check the file and remove the incomplete event yourself"
                )));
            }
            Some(Err(e)) => {
                return Err(ProviderError::internal(format!(
                    "state file {shown} is corrupt at line {}, column {}: {e}",
                    e.line(),
                    e.column()
                )));
            }
        };
        // Counting lines is linear in the file: only an error needs it.
        let line = || line_of(bytes, first_non_space(bytes, start));
        let event: Event = serde_json::from_value(value).map_err(|e| {
            ProviderError::internal(format!(
                "state file {shown}, line {}: not a state event: {e}",
                line()
            ))
        })?;
        if events == 0 && event.index != 0 {
            return Err(ProviderError::internal(format!(
                "state file {shown}, line {}: the first event must have index 0, not {}",
                line(),
                event.index
            )));
        }
        json_patch::patch(&mut state, &event.patch).map_err(|e| {
            ProviderError::internal(format!(
                "state file {shown}, line {}: the event does not apply: {e}",
                line()
            ))
        })?;
        events += 1;
    }
    if events == 0 {
        return Err(ProviderError::internal(format!(
            "state file {shown} has no events; a state file starts with an initial event"
        )));
    }
    if state.get("_type") != Some(&json!("nixopsState")) {
        return Err(ProviderError::internal(format!(
            "state file {shown} does not describe a `nixopsState` document"
        )));
    }
    Ok(Replayed {
        state,
        events,
        length: bytes.len() as u64,
        ends_with_newline: bytes.last().is_none_or(|b| *b == b'\n'),
    })
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
fn create_log(path: &Path) -> Result<()> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).context(format!("creating directory {}", parent.display()))?;
    }
    let initial = Event {
        index: 0,
        meta: meta(&[]),
        patch: serde_json::from_value(json!([{
            "op": "add",
            "path": "",
            "value": { "_type": "nixopsState", "resources": {}, "deployments": {} }
        }]))
        .context("building the initial state event")?,
    };
    let mut line =
        serde_json::to_string(&initial).context("serialising the initial state event")?;
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

fn meta(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert("time".into(), Value::String(timestamp::rfc3339_now()));
    for (key, value) in extra {
        meta.insert((*key).into(), Value::String((*value).into()));
    }
    meta
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

fn first_non_space(bytes: &[u8], from: usize) -> usize {
    bytes[from..]
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(bytes.len(), |n| from + n)
}

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

fn outputs(path: &Path) -> Result<StateFileOutputs> {
    Ok(StateFileOutputs {
        path: Some(path_string(path)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: &str = r#"{"index":0,"meta":{"time":"2024-01-01T00:00:00Z"},"patch":[{"op":"add","path":"","value":{"_type":"nixopsState","resources":{},"deployments":{}}}]}"#;

    fn replay_str(text: &str) -> Result<Replayed> {
        replay(Path::new("/s.jsonl"), text.as_bytes())
    }

    #[test]
    fn replays_upstream_pretty_printed_events() {
        // Upstream writes each event pretty-printed; the manual's example file.
        let text = r#"{
  "index": 0,
  "meta": { "time": "2024-01-01T00:00:00Z" },
  "patch": [ { "op": "add", "path": "", "value": { "_type": "nixopsState", "resources": {}, "deployments": {} } } ]
}
{
  "index": 1,
  "meta": { "time": "2024-01-01T00:01:00Z", "event": "create" },
  "patch": [ { "op": "add", "path": "/resources/myfile",
               "value": { "type": "file", "inputProperties": {"name": "test.txt", "contents": "hello"}, "outputProperties": {} } } ]
}
"#;
        let replayed = replay_str(text).unwrap();
        assert_eq!(replayed.events, 2);
        assert_eq!(replayed.state["resources"]["myfile"]["type"], "file");
        assert_eq!(count_resources(&replayed.state), 1);
    }

    #[test]
    fn torn_last_event_is_reported_with_its_line() {
        let text = format!(
            "{INITIAL}\n{{\"index\":1,\"meta\":{{\"time\":\"x\"}},\"patch\":[{{\"op\":\"add\""
        );
        let e = replay_str(&text).unwrap_err();
        assert!(
            e.message.contains("starting at line 2 is incomplete"),
            "{}",
            e.message
        );
    }

    #[test]
    fn corrupt_line_is_reported_with_its_line() {
        let text = format!("{INITIAL}\n{INITIAL}\nnot json\n");
        let e = replay_str(&text).unwrap_err();
        assert!(e.message.contains("corrupt at line 3"), "{}", e.message);
    }

    #[test]
    fn event_that_does_not_apply_is_reported() {
        let text = format!(
            "{INITIAL}\n{{\"index\":1,\"meta\":{{}},\"patch\":[{{\"op\":\"remove\",\"path\":\"/resources/nope\"}}]}}\n"
        );
        let e = replay_str(&text).unwrap_err();
        assert!(
            e.message.contains("line 2: the event does not apply"),
            "{}",
            e.message
        );
    }

    #[test]
    fn empty_and_foreign_files_are_refused() {
        assert!(replay_str("").unwrap_err().message.contains("no events"));
        let foreign =
            r#"{"index":0,"meta":{},"patch":[{"op":"add","path":"","value":{"_type":"other"}}]}"#;
        assert!(
            replay_str(foreign)
                .unwrap_err()
                .message
                .contains("nixopsState")
        );
    }

    #[test]
    fn counts_nested_resources() {
        let state = json!({"resources": {"a": {}}, "deployments": {"d": {"resources": {"b": {}, "c": {}}, "deployments": {}}}});
        assert_eq!(count_resources(&state), 3);
    }
}
