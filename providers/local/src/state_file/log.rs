//! The bytes of a state file: events written and read back, plain or encrypted.
//!
//! A plain event is one line of JSON in upstream's shape (`index`, `meta`, `patch`); we
//! read upstream's pretty-printed events too. With recipients configured
//! (`nixops4-state-encryption`), an event is written as `{"age": "<armored age file>"}`,
//! one line, whose plain text is the event's JSON. A file may mix the two: state written
//! before encryption was turned on keeps reading.

use std::path::Path;

use nixops4_provider_sdk::{ErrorContext, ProviderError, Result};
use nixops4_state_encryption::StateKeys;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::timestamp;

/// The key of an encrypted event's envelope.
const ENVELOPE: &str = "age";

/// One entry of the log.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Event {
    pub index: u64,
    pub meta: Map<String, Value>,
    pub patch: json_patch::Patch,
}

impl Event {
    /// The event that starts every log: an empty `nixopsState` document.
    pub fn initial() -> Result<Event> {
        Ok(Event {
            index: 0,
            meta: meta(&[]),
            patch: serde_json::from_value(json!([{
                "op": "add",
                "path": "",
                "value": { "_type": "nixopsState", "resources": {}, "deployments": {} }
            }]))
            .context("building the initial state event")?,
        })
    }
}

/// The document a file replays to, and where the file ended when it was replayed.
#[derive(Debug)]
pub(super) struct Replayed {
    pub state: Value,
    pub events: u64,
    pub length: u64,
    pub ends_with_newline: bool,
}

/// An event's line (without its newline): plain, or sealed for the recipients.
pub(super) fn encode(event: &Event, keys: &StateKeys) -> Result<String> {
    let plain = serde_json::to_string(event).context("serialising a state event")?;
    if !keys.encrypts() {
        return Ok(plain);
    }
    let sealed = keys
        .seal_text(&plain)
        .map_err(|e| ProviderError::internal(format!("encrypting a state event: {e}")))?;
    serde_json::to_string(&json!({ ENVELOPE: sealed })).context("serialising a sealed event")
}

/// Replays a log into its document, refusing anything that does not replay cleanly.
pub(super) fn replay(path: &Path, bytes: &[u8], keys: &StateKeys) -> Result<Replayed> {
    let shown = path.display();
    let mut state = Value::Null;
    let mut events = 0u64;
    for_each_event(path, bytes, keys, |event, line| {
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
        Ok(())
    })?;
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

/// The whole log written anew, each event for the configured recipients (plain when
/// there are none), with the number of events. The result replays to the same document.
pub(super) fn reseal(path: &Path, bytes: &[u8], keys: &StateKeys) -> Result<(Vec<u8>, u64)> {
    let mut resealed = Vec::with_capacity(bytes.len());
    let mut events = 0u64;
    for_each_event(path, bytes, keys, |event, _| {
        resealed.extend_from_slice(encode(&event, keys)?.as_bytes());
        resealed.push(b'\n');
        events += 1;
        Ok(())
    })?;
    // The result must read back with the identities here: a state encrypted only for
    // keys nobody here holds could be lost.
    let before = replay(path, bytes, keys)?;
    let after = replay(path, &resealed, keys).map_err(|e| {
        ProviderError::invalid_input(format!(
            "state file {}: not re-encrypted, nothing was changed: the identities configured here could not read the result ({}); \
             put the identity of one of the new recipients into the identity file too",
            path.display(),
            e.message
        ))
    })?;
    if before.state != after.state {
        return Err(ProviderError::internal(format!(
            "state file {}: re-encrypted, it would not replay to the same state; nothing was changed",
            path.display()
        )));
    }
    Ok((resealed, events))
}

/// Reads the events of a log in order, decrypting those that are sealed, and gives each
/// to `visit` with a way to tell the line it starts on (counted only for errors).
fn for_each_event(
    path: &Path,
    bytes: &[u8],
    keys: &StateKeys,
    mut visit: impl FnMut(Event, &dyn Fn() -> usize) -> Result<()>,
) -> Result<()> {
    let shown = path.display();
    let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Value>();
    loop {
        let start = stream.byte_offset();
        let value = match stream.next() {
            None => return Ok(()),
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
        let line = || line_of(bytes, first_non_space(bytes, start));
        let event = match sealed(&value) {
            Some(text) => {
                let plain = keys.open(text.as_bytes()).map_err(|e| {
                    ProviderError::internal(format!(
                        "state file {shown}, line {}: cannot read the event: {e}",
                        line()
                    ))
                })?;
                serde_json::from_slice(&plain)
            }
            None => serde_json::from_value(value),
        };
        let event: Event = event.map_err(|e| {
            ProviderError::internal(format!(
                "state file {shown}, line {}: not a state event: {e}",
                line()
            ))
        })?;
        visit(event, &line)?;
    }
}

/// The armored text of an encrypted event's envelope; `None` for a plain event.
fn sealed(value: &Value) -> Option<&str> {
    let object = value.as_object()?;
    match (object.len(), object.get(ENVELOPE)) {
        (1, Some(Value::String(text))) => Some(text),
        _ => None,
    }
}

pub(super) fn meta(extra: &[(&str, &str)]) -> Map<String, Value> {
    let mut meta = Map::new();
    meta.insert("time".into(), Value::String(timestamp::rfc3339_now()));
    for (key, value) in extra {
        meta.insert((*key).into(), Value::String((*value).into()));
    }
    meta
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

#[cfg(test)]
mod tests {
    use super::*;

    const INITIAL: &str = r#"{"index":0,"meta":{"time":"2024-01-01T00:00:00Z"},"patch":[{"op":"add","path":"","value":{"_type":"nixopsState","resources":{},"deployments":{}}}]}"#;

    fn replay_str(text: &str) -> Result<Replayed> {
        replay(
            Path::new("/s.jsonl"),
            text.as_bytes(),
            &StateKeys::default(),
        )
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
    fn an_encrypted_event_without_an_identity_names_the_file_and_line() {
        let text = format!(
            "{INITIAL}\n{{\"age\":\"-----BEGIN AGE ENCRYPTED FILE-----\\nYWdl\\n-----END AGE ENCRYPTED FILE-----\\n\"}}\n"
        );
        let e = replay_str(&text).unwrap_err();
        assert!(
            e.message
                .starts_with("state file /s.jsonl, line 2: cannot read the event: it is encrypted and no identity is configured"),
            "{}",
            e.message
        );
    }
}
