//! The state's lock: leases in the bucket, one object per contender, no conditional
//! write needed (Garage ignores `If-None-Match` on PUT).
//!
//! A contender (1) lists `locks/` and reads each lease: a live one means the state is
//! locked, and the error names its holder; an expired one (past its `expiresMs` by a
//! quarter of its lease, for clock skew) is deleted, which is the takeover. It then (2)
//! writes its own lease under a fresh random key and (3) lists `locks/` again. If only
//! its own key is there it holds the lock; otherwise it deletes its key, waits a random
//! while and starts over, a few times. With read-after-write listing (Garage in
//! `consistent` mode: write and read quorums intersect), of two contenders whose step 2
//! both completed, the later step 3 sees the other's key, so at most one holds.
//!
//! The holder renews its lease every third of the lease. It stops renewing, and every
//! state write is refused, once its own clock says three quarters of the lease passed
//! since the last renewal started, or once its key is gone (`nixops4 state unlock`, or a
//! takeover): a holder stops writing well before anyone may take over. The client's
//! write fence follows that instant, so a write the store dropped is not sent again
//! after it either.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nixops4_provider_sdk::protocol::LockHolder;
use nixops4_provider_sdk::{ProviderError, Result};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::log::Layout;

/// How often a contender starts over after seeing a rival's fresh key.
const ATTEMPTS: u32 = 6;

/// A lease as stored in `locks/<id>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    holder: LockHolder,
    /// Unix milliseconds, by the holder's clock, when the lease ends unless renewed.
    expires_ms: u64,
    lease_ms: u64,
}

impl Record {
    fn expired(&self) -> bool {
        now_ms() > self.expires_ms + self.lease_ms / 4
    }
}

/// A held lock: its key, and the thread that renews it.
pub struct Lease {
    key: String,
    status: Arc<Status>,
    renewer: Option<JoinHandle<()>>,
}

struct Status {
    state: Mutex<Held>,
    wake: Condvar,
}

struct Held {
    /// Until when this process may still write, by its own clock.
    valid_until: Instant,
    lost: Option<String>,
    stop: bool,
}

pub fn acquire(
    client: &Arc<Client>,
    layout: &Layout,
    holder: &LockHolder,
    lease: Duration,
) -> Result<Lease> {
    let key = format!("{}{}", layout.locks(), random_hex(16));
    // No lease of this process is held: a fence an earlier one left does not apply.
    client.fence_writes(None);
    let mut rivals = Vec::new();
    for attempt in 0..ATTEMPTS {
        let live = live_leases(client, layout)?;
        if let Some((_, record)) = live.first() {
            return Err(locked(client, &record.holder));
        }
        let started = Instant::now();
        write(client, &key, holder, lease)?;
        rivals = client.list(&layout.locks(), None)?;
        rivals.retain(|k| *k != key);
        if rivals.is_empty() {
            return Ok(Lease::start(
                Arc::clone(client),
                key,
                holder.clone(),
                lease,
                started,
            ));
        }
        client.delete(&key)?;
        let pause = 50 + u64::from(random_u16() % 250);
        tracing::debug!("lock contended (attempt {attempt}); retrying in {pause} ms");
        std::thread::sleep(Duration::from_millis(pause * u64::from(attempt + 1)));
    }
    // Name whoever is still there.
    for rival in rivals {
        if let Some(record) = read_record(client, &rival)? {
            return Err(locked(client, &record.holder));
        }
    }
    Err(ProviderError::locked(format!(
        "{}: the lock stayed contended after {ATTEMPTS} attempts; try again",
        client.store()
    )))
}

/// Every lease the store records, live or expired.
pub fn holders(client: &Client, layout: &Layout) -> Result<Vec<LockHolder>> {
    let mut holders = Vec::new();
    for key in client.list(&layout.locks(), None)? {
        if let Some(record) = read_record(client, &key)? {
            holders.push(record.holder);
        }
    }
    Ok(holders)
}

/// Deletes every lease: `nixops4 state unlock`.
pub fn break_all(client: &Client, layout: &Layout) -> Result<Vec<LockHolder>> {
    let mut released = Vec::new();
    for key in client.list(&layout.locks(), None)? {
        if let Some(record) = read_record(client, &key)? {
            released.push(record.holder);
        }
        client.delete(&key)?;
    }
    Ok(released)
}

impl Lease {
    fn start(
        client: Arc<Client>,
        key: String,
        holder: LockHolder,
        lease: Duration,
        started: Instant,
    ) -> Lease {
        let valid_until = started + lease * 3 / 4;
        client.fence_writes(Some(valid_until));
        let status = Arc::new(Status {
            state: Mutex::new(Held {
                valid_until,
                lost: None,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let renewer = {
            let status = Arc::clone(&status);
            let key = key.clone();
            std::thread::spawn(move || renew(&client, &key, &holder, lease, &status))
        };
        Lease {
            key,
            status,
            renewer: Some(renewer),
        }
    }

    /// Whether this process may still write: its lease is neither lost nor run out.
    pub fn check(&self, client: &Client) -> Result<()> {
        let held = self.status.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(reason) = &held.lost {
            return Err(ProviderError::locked(format!(
                "{}: this process lost the state's lock: {reason}",
                client.store()
            )));
        }
        if Instant::now() > held.valid_until {
            return Err(ProviderError::locked(format!(
                "{}: the lease on the state's lock ran out before it could be renewed",
                client.store()
            )));
        }
        Ok(())
    }

    /// Stops renewing and deletes the lease.
    pub fn release(mut self, client: &Client) -> Result<()> {
        self.stop();
        client.fence_writes(None);
        client.delete(&self.key)
    }

    fn stop(&mut self) {
        self.status
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop = true;
        self.status.wake.notify_all();
        if let Some(renewer) = self.renewer.take() {
            let _ = renewer.join();
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop();
    }
}

fn renew(client: &Client, key: &str, holder: &LockHolder, lease: Duration, status: &Status) {
    let mut held = status.state.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        held = status
            .wake
            .wait_timeout_while(held, lease / 3, |h| !h.stop)
            .unwrap_or_else(|e| e.into_inner())
            .0;
        if held.stop {
            return;
        }
        if Instant::now() > held.valid_until {
            held.lost = Some("its lease ran out before it could be renewed".into());
            return;
        }
        drop(held);
        let started = Instant::now();
        let outcome = client.get(key).and_then(|present| match present {
            None => Ok(false),
            Some(_) => write(client, key, holder, lease).map(|()| true),
        });
        held = status.state.lock().unwrap_or_else(|e| e.into_inner());
        match outcome {
            Ok(true) => {
                held.valid_until = started + lease * 3 / 4;
                client.fence_writes(Some(held.valid_until));
            }
            Ok(false) => {
                held.lost = Some("its lease was removed (`nixops4 state unlock`, or taken over after it expired)".into());
                return;
            }
            Err(error) => tracing::warn!("renewing the lease on the state's lock failed: {error}"),
        }
    }
}

fn write(client: &Client, key: &str, holder: &LockHolder, lease: Duration) -> Result<()> {
    let lease_ms = lease.as_millis() as u64;
    let record = Record {
        holder: holder.clone(),
        expires_ms: now_ms() + lease_ms,
        lease_ms,
    };
    let body = serde_json::to_vec(&record).map_err(|e| ProviderError::internal(e.to_string()))?;
    client.put(key, &body, false).map(drop)
}

/// Live leases, oldest first; expired ones are deleted on the way (the takeover).
fn live_leases(client: &Client, layout: &Layout) -> Result<Vec<(String, Record)>> {
    let mut live = Vec::new();
    for key in client.list(&layout.locks(), None)? {
        let Some(record) = read_record(client, &key)? else {
            continue;
        };
        if record.expired() {
            tracing::warn!("taking over the expired lease of {}", record.holder);
            client.delete(&key)?;
        } else {
            live.push((key, record));
        }
    }
    live.sort_by(|a, b| a.1.holder.since.cmp(&b.1.holder.since));
    Ok(live)
}

fn read_record(client: &Client, key: &str) -> Result<Option<Record>> {
    let Some(body) = client.get(key)? else {
        return Ok(None);
    };
    serde_json::from_slice(&body).map(Some).map_err(|e| {
        ProviderError::internal(format!(
            "{}: the lease `{key}` is not readable ({e}); `nixops4 state unlock` removes it",
            client.store()
        ))
    })
}

fn locked(client: &Client, holder: &LockHolder) -> ProviderError {
    ProviderError::locked(format!("{} is locked by {holder}", client.store()))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn random_bytes(n: usize) -> Vec<u8> {
    use std::io::Read;
    let mut bytes = vec![0; n];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // Still distinct per process and moment, which is all a key needs.
        let seed = now_ms() ^ (u64::from(std::process::id()) << 32);
        for (i, byte) in bytes.iter_mut().enumerate() {
            *byte = (seed >> ((i % 8) * 8)) as u8 ^ i as u8;
        }
    }
    bytes
}

fn random_hex(n: usize) -> String {
    crate::sigv4::hex(&random_bytes(n))
}

fn random_u16() -> u16 {
    let bytes = random_bytes(2);
    u16::from_le_bytes([bytes[0], bytes[1]])
}
