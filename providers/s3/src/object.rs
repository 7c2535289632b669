//! `s3.object`: a deployment's state in S3-compatible object storage, as a state
//! resource: the event log of `log.rs` under a prefix of a bucket, and the lock of
//! `lock.rs` beside it.
//!
//! One process serves one state per (endpoint, bucket, prefix) at a time: it keeps the
//! replayed document and the next event's number between requests, and the lease it
//! holds. Creating the resource checks that the bucket answers; it writes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nixops4_provider_sdk::protocol::{InputPath, LockHolder, Properties, StateResourceEvent};
use nixops4_provider_sdk::{Context, Extant, ProviderError, ResourceType, Result, TypeInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::Client;
use crate::credentials;
use crate::lock::{self, Lease};
use crate::log::{self, Layout, Log};

#[derive(Default)]
pub struct S3Object {
    stores: Mutex<HashMap<StoreId, Store>>,
}

/// Inputs of `s3.object`. Credentials are not inputs: they come from the environment
/// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) or a credentials file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectInputs {
    /// Where the store answers: `https://garage.example.com`, `http://127.0.0.1:3900`.
    /// Requests are path-style (`<endpoint>/<bucket>/<key>`).
    pub endpoint: String,
    /// The bucket; it must exist.
    pub bucket: String,
    /// Key prefix under which this state's objects live (`events/`, `snapshots/`,
    /// `locks/`), so that deployments can share a bucket. Empty: the bucket's root.
    #[serde(default)]
    pub prefix: String,
    /// The region requests are signed for; Garage checks it against its `s3_region`.
    #[serde(default = "default_region")]
    pub region: String,
    /// How long a lock's lease lasts without renewal, in seconds; the holder renews it
    /// every third of that. A crashed holder's lock can be taken over after about 1.25
    /// times this.
    #[serde(default = "default_lease_seconds")]
    #[schemars(range(min = 2))]
    pub lease_seconds: u64,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_lease_seconds() -> u64 {
    60
}

/// Outputs of `s3.object`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ObjectOutputs {
    /// `s3://<bucket>/<prefix>`.
    pub url: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct StoreId {
    endpoint: String,
    bucket: String,
    layout: Layout,
}

struct Store {
    client: Arc<Client>,
    log: Option<Log>,
    lease: Option<Lease>,
}

impl ResourceType for S3Object {
    type Inputs = ObjectInputs;
    type Outputs = ObjectOutputs;

    fn info(&self) -> TypeInfo {
        TypeInfo::new(
            "Stores deployment state in an S3-compatible bucket (Garage, AWS S3, MinIO): one object per event, compacted into snapshots, with a lease lock that needs no conditional writes.",
        )
        .replace_on_change("endpoint")
        .replace_on_change("bucket")
        .replace_on_change("prefix")
        .locks_state()
    }

    fn create(&self, inputs: ObjectInputs, _: &Context) -> Result<ObjectOutputs> {
        self.with_store(&inputs, |store, _| {
            store
                .client
                .list(&Layout::new(&inputs.prefix).locks(), None)?;
            Ok(())
        })?;
        Ok(outputs(&inputs))
    }

    fn read(&self, resource: Extant<ObjectInputs, ObjectOutputs>) -> Result<Option<ObjectOutputs>> {
        Ok(Some(outputs(&resource.inputs)))
    }

    fn update(
        &self,
        _: Extant<ObjectInputs, ObjectOutputs>,
        inputs: ObjectInputs,
        context: &Context,
    ) -> Result<ObjectOutputs> {
        self.create(inputs, context)
    }

    /// The state's objects stay: deleting a deployment's history is for people to do.
    fn destroy(&self, _: Extant<ObjectInputs, ObjectOutputs>) -> Result<()> {
        Ok(())
    }

    fn state_read(&self, resource: Extant<ObjectInputs, ObjectOutputs>) -> Result<Properties> {
        self.with_store(&resource.inputs, |store, layout| {
            let log = log::read(&store.client, layout)?;
            let document = match &log.document {
                Value::Object(document) => document.clone(),
                _ => {
                    return Err(ProviderError::internal(
                        "the state document is not an object",
                    ));
                }
            };
            store.log = Some(log);
            Ok(document)
        })
    }

    fn state_event(
        &self,
        resource: Extant<ObjectInputs, ObjectOutputs>,
        event: &StateResourceEvent,
    ) -> Result<()> {
        self.with_store(&resource.inputs, |store, layout| {
            let Some(lease) = &store.lease else {
                return Err(ProviderError::invalid_request(
                    "state events need the state's lock: send stateLockRequest first",
                ));
            };
            lease.check(&store.client)?;
            if store.log.is_none() {
                store.log = Some(log::read(&store.client, layout)?);
            }
            let log = store.log.as_mut().expect("read above");
            log::append(&store.client, layout, log, event)
        })
    }

    fn state_lock(
        &self,
        resource: Extant<ObjectInputs, ObjectOutputs>,
        holder: &LockHolder,
    ) -> Result<()> {
        let lease_seconds = resource.inputs.lease_seconds;
        if lease_seconds < 2 {
            return Err(
                ProviderError::invalid_input("lease_seconds must be at least 2")
                    .at(InputPath::key("lease_seconds")),
            );
        }
        self.with_store(&resource.inputs, |store, layout| {
            if store.lease.is_some() {
                return Err(ProviderError::invalid_request(
                    "this process already holds the state's lock",
                ));
            }
            let lease = lock::acquire(
                &store.client,
                layout,
                holder,
                Duration::from_secs(lease_seconds),
            )?;
            store.lease = Some(lease);
            // What was read before the lock may be stale.
            store.log = None;
            Ok(())
        })
    }

    fn state_lock_status(
        &self,
        resource: Extant<ObjectInputs, ObjectOutputs>,
    ) -> Result<Vec<LockHolder>> {
        self.with_store(&resource.inputs, |store, layout| {
            lock::holders(&store.client, layout)
        })
    }

    fn state_unlock(
        &self,
        resource: Extant<ObjectInputs, ObjectOutputs>,
        force: bool,
    ) -> Result<Vec<LockHolder>> {
        self.with_store(&resource.inputs, |store, layout| {
            if force {
                if let Some(lease) = store.lease.take() {
                    drop(lease);
                }
                return lock::break_all(&store.client, layout);
            }
            match store.lease.take() {
                Some(lease) => {
                    lease.release(&store.client)?;
                    Ok(Vec::new())
                }
                None => Err(ProviderError::invalid_request(
                    "this process holds no lock on the state",
                )),
            }
        })
    }
}

impl S3Object {
    fn with_store<T>(
        &self,
        inputs: &ObjectInputs,
        work: impl FnOnce(&mut Store, &Layout) -> Result<T>,
    ) -> Result<T> {
        let id = StoreId {
            endpoint: inputs.endpoint.clone(),
            bucket: inputs.bucket.clone(),
            layout: Layout::new(&inputs.prefix),
        };
        let mut stores = self.stores.lock().unwrap_or_else(|e| e.into_inner());
        if !stores.contains_key(&id) {
            let client = Client::new(
                &inputs.endpoint,
                &inputs.bucket,
                &inputs.region,
                credentials::find()?,
            )
            .map_err(|e| e.at(InputPath::key("endpoint")))?;
            stores.insert(
                id.clone(),
                Store {
                    client: Arc::new(client),
                    log: None,
                    lease: None,
                },
            );
        }
        let store = stores.get_mut(&id).expect("inserted above");
        work(store, &id.layout)
    }
}

fn outputs(inputs: &ObjectInputs) -> ObjectOutputs {
    let layout = Layout::new(&inputs.prefix);
    ObjectOutputs {
        url: format!(
            "s3://{}/{}",
            inputs.bucket,
            layout.events().trim_end_matches("events/")
        ),
    }
}
