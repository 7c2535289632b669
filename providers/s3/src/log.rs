//! The state's event log in a bucket: one object per event, compacted into snapshots.
//!
//! Under the resource's prefix:
//! - `events/<seq>`: one state event (`{"event", "nixopsVersion", "patch"}`), `<seq>`
//!   counting from 1, zero-padded to 20 digits so that keys list in order;
//! - `snapshots/<seq>`: the whole document after event `<seq>`;
//! - `locks/<id>`: the lock's leases (see `lock.rs`).
//!
//! Reading takes the newest snapshot and replays the events listed after it; they must
//! follow it without a gap, or the read is refused naming the missing key. An event is
//! written under a key no one has used, with `If-None-Match: *` where the store honours
//! it; the lock is what keeps two writers from choosing the same key on stores that
//! ignore the condition. Every `COMPACT_EVERY` events a snapshot is written, then the
//! events it covers and older snapshots are deleted: a crash between the two leaves
//! events that the next read skips.

use nixops4_provider_sdk::protocol::StateResourceEvent;
use nixops4_provider_sdk::{ProviderError, Result};
use serde_json::{Value, json};

use crate::client::{Client, Put};
use crate::codec::{decode_stored, encode_stored};

/// Events between snapshots.
const COMPACT_EVERY: u64 = 100;

/// The keys of one state under its prefix.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Empty, or ending in `/`.
    prefix: String,
}

impl Layout {
    pub fn new(prefix: &str) -> Layout {
        let trimmed = prefix.trim_matches('/');
        Layout {
            prefix: if trimmed.is_empty() {
                String::new()
            } else {
                format!("{trimmed}/")
            },
        }
    }

    pub fn events(&self) -> String {
        format!("{}events/", self.prefix)
    }

    pub fn event(&self, seq: u64) -> String {
        format!("{}{seq:020}", self.events())
    }

    pub fn snapshots(&self) -> String {
        format!("{}snapshots/", self.prefix)
    }

    pub fn snapshot(&self, seq: u64) -> String {
        format!("{}{seq:020}", self.snapshots())
    }

    pub fn locks(&self) -> String {
        format!("{}locks/", self.prefix)
    }

    /// The sequence number in an event's or a snapshot's key.
    fn seq(&self, key: &str) -> Result<u64> {
        key.rsplit('/')
            .next()
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                ProviderError::internal(format!(
                    "`{key}` under {} is not an event or snapshot of the state; remove it",
                    self.prefix
                ))
            })
    }
}

/// The state as the bucket holds it, replayed.
pub struct Log {
    pub document: Value,
    last_seq: u64,
    since_snapshot: u64,
}

pub fn empty_document() -> Value {
    json!({"_type": "nixopsState", "resources": {}, "deployments": {}})
}

pub fn read(client: &Client, layout: &Layout) -> Result<Log> {
    let snapshots = client.list(&layout.snapshots(), None)?;
    let (base, mut document) = match snapshots.last() {
        Some(key) => {
            let seq = layout.seq(key)?;
            (seq, parse(client, key, get(client, key)?)?)
        }
        None => (0, empty_document()),
    };
    let start_after = (base > 0).then(|| layout.event(base));
    let events = client.list(&layout.events(), start_after.as_deref())?;
    for (index, key) in events.iter().enumerate() {
        let expected = base + index as u64 + 1;
        if layout.seq(key)? != expected {
            return Err(ProviderError::internal(format!(
                "{}: the state's event log has a gap: `{}` is missing before `{key}`; refusing to guess",
                client.store(),
                layout.event(expected)
            )));
        }
        let event = parse(client, key, get(client, key)?)?;
        let patch: json_patch::Patch =
            serde_json::from_value(event["patch"].clone()).map_err(|e| corrupt(client, key, e))?;
        json_patch::patch(&mut document, &patch).map_err(|e| corrupt(client, key, e))?;
    }
    Ok(Log {
        document,
        last_seq: base + events.len() as u64,
        since_snapshot: events.len() as u64,
    })
}

/// Records one event after the last one read or written; returns once it is stored.
pub fn append(
    client: &Client,
    layout: &Layout,
    log: &mut Log,
    event: &StateResourceEvent,
) -> Result<()> {
    let mut document = log.document.clone();
    json_patch::patch(&mut document, &event.patch).map_err(|e| {
        ProviderError::invalid_input(format!("the event does not apply to the state: {e}"))
    })?;
    let seq = log.last_seq + 1;
    let key = layout.event(seq);
    let body =
        json!({"event": event.event, "nixopsVersion": event.nixops_version, "patch": event.patch});
    let stored = encode_stored(
        serde_json::to_vec(&body).map_err(|e| ProviderError::internal(e.to_string()))?,
    )?;
    if client.put(&key, &stored, true)? == Put::AlreadyExists {
        return Err(ProviderError::locked(format!(
            "{}: event `{key}` was already written by another client; this one no longer holds the lock",
            client.store()
        )));
    }
    log.document = document;
    log.last_seq = seq;
    log.since_snapshot += 1;
    if log.since_snapshot >= COMPACT_EVERY
        && let Err(error) = compact(client, layout, log)
    {
        tracing::warn!(
            "compacting the state's events into a snapshot failed (they stay as they are): {error}"
        );
    }
    Ok(())
}

/// Writes a snapshot of the document, then deletes what it makes redundant.
fn compact(client: &Client, layout: &Layout, log: &mut Log) -> Result<()> {
    let key = layout.snapshot(log.last_seq);
    let stored = encode_stored(
        serde_json::to_vec(&log.document).map_err(|e| ProviderError::internal(e.to_string()))?,
    )?;
    client.put(&key, &stored, false)?;
    log.since_snapshot = 0;
    for old in client.list(&layout.snapshots(), None)? {
        if old != key {
            client.delete(&old)?;
        }
    }
    for event in client.list(&layout.events(), None)? {
        if layout.seq(&event)? <= log.last_seq {
            client.delete(&event)?;
        }
    }
    Ok(())
}

fn get(client: &Client, key: &str) -> Result<Vec<u8>> {
    client.get(key)?.ok_or_else(|| {
        ProviderError::transient(format!(
            "{}: `{key}` was listed but is gone (compacted by another client?); read again",
            client.store()
        ))
    })
}

fn parse(client: &Client, key: &str, stored: Vec<u8>) -> Result<Value> {
    let what = format!("{} object `{key}`", client.store());
    serde_json::from_slice(&decode_stored(stored, &what)?).map_err(|e| corrupt(client, key, e))
}

fn corrupt(client: &Client, key: &str, error: impl std::fmt::Display) -> ProviderError {
    ProviderError::internal(format!(
        "{}: `{key}` does not replay: {error}; the state is not repaired silently",
        client.store()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_by_sequence() {
        let layout = Layout::new("/team/prod/");
        assert_eq!(layout.event(7), "team/prod/events/00000000000000000007");
        assert!(layout.event(10) > layout.event(9));
        assert_eq!(layout.seq(&layout.snapshot(42)).unwrap(), 42);
        assert_eq!(Layout::new("").locks(), "locks/");
        assert!(layout.seq("team/prod/events/x").is_err());
    }
}
