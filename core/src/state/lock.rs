//! The lock on a deployment's state, held for a whole apply: who holds it, and how.
//!
//! A local state file is locked by the engine with `flock` on a file beside it, which the
//! operating system releases when the holder ends, however it ends. Any other storage is
//! locked by its provider (`stateLockRequest`): the provider keeps the lease renewed
//! while its process serves, and a lease whose holder died expires and can be taken
//! over. A storage whose provider offers no lock is not changed at all.

use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use nixops4_provider_protocol::*;

use super::StateStorage;
use crate::error::EngineError;
use crate::provider_client::{ProviderError, ProviderProcess};

/// A lock this process holds.
pub(super) enum Held {
    File { _file: File },
    Provider,
}

/// This process as a lock holder, doing `operation`.
pub(super) fn holder(operation: &str) -> LockHolder {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    LockHolder {
        user: var("USER")
            .or_else(|| var("LOGNAME"))
            .unwrap_or_else(|| "unknown".into()),
        host: std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .or_else(|| var("HOSTNAME"))
            .unwrap_or_else(|| "unknown".into()),
        pid: std::process::id(),
        since: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        operation: operation.to_owned(),
    }
}

impl Held {
    /// Locks the state file `state_file` with a lock file beside it that names the holder.
    pub(super) fn file(state_file: &Path, holder: &LockHolder) -> Result<Held, EngineError> {
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
                let mut named = String::new();
                let _ = file.read_to_string(&mut named);
                let named = named.trim();
                return Err(EngineError::locked(format!(
                    "the state {} is locked by {}",
                    state_file.display(),
                    if named.is_empty() {
                        "another NixOps4 process"
                    } else {
                        named
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
        let written = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(format!("{holder}\n").as_bytes()));
        written.map_err(|e| EngineError::state(format!("writing {}: {e}", lock_path.display())))?;
        Ok(Held::File { _file: file })
    }

    /// Refuses a storage whose provider cannot lock it, before anything is sent to it.
    pub(super) fn require_provider_lock(
        provider: &ProviderProcess,
        storage: &StateStorage,
    ) -> Result<(), EngineError> {
        let probe = Request::StateLockStatusRequest(StateLockStatusRequest {
            resource: storage.resource(Properties::new()),
        });
        if provider.supports(&probe) {
            Ok(())
        } else {
            Err(no_lock(storage))
        }
    }

    /// Has the storage's provider lock the state for `holder` (checked with
    /// [`Held::require_provider_lock`] first).
    pub(super) async fn provider(
        provider: &mut ProviderProcess,
        storage: &StateStorage,
        resource: &ExtantResource,
        holder: LockHolder,
    ) -> Result<Held, EngineError> {
        let request = Request::StateLockRequest(StateLockRequest {
            resource: resource.clone(),
            holder,
        });
        match provider.request(&request).await {
            Ok(_) => Ok(Held::Provider),
            Err(error) => Err(lock_error(storage, error)),
        }
    }

    /// Releases the lock. A provider's lease that cannot be removed expires by itself.
    pub(super) async fn release(self, provider: &mut ProviderProcess, resource: &ExtantResource) {
        if let Held::Provider = self {
            let released = provider
                .request(&Request::StateUnlockRequest(StateUnlockRequest {
                    resource: resource.clone(),
                    force: false,
                }))
                .await;
            if let Err(error) = released {
                tracing::warn!(
                    "releasing the state's lock failed (its lease will expire): {error}"
                );
            }
        }
    }
}

/// Who holds the storage's lock, as its provider records it. A state file's lock is the
/// operating system's: it is held exactly while its holder runs.
pub async fn lock_holders(
    storage: &StateStorage,
    timeout: Duration,
) -> Result<Vec<LockHolder>, EngineError> {
    let resource = storage.resource(Properties::new());
    let request = Request::StateLockStatusRequest(StateLockStatusRequest { resource });
    match provider_lock_request(storage, timeout, &request).await? {
        Response::StateLockStatusResponse(status) => Ok(status.holders),
        other => Err(unexpected(other)),
    }
}

/// Removes every holder's lease: `nixops4 state unlock`, after the user confirmed.
pub async fn force_unlock(
    storage: &StateStorage,
    timeout: Duration,
) -> Result<Vec<LockHolder>, EngineError> {
    let resource = storage.resource(Properties::new());
    let request = Request::StateUnlockRequest(StateUnlockRequest {
        resource,
        force: true,
    });
    match provider_lock_request(storage, timeout, &request).await? {
        Response::StateUnlockResponse(unlocked) => Ok(unlocked.released),
        other => Err(unexpected(other)),
    }
}

async fn provider_lock_request(
    storage: &StateStorage,
    timeout: Duration,
    request: &Request,
) -> Result<Response, EngineError> {
    if let Some(file) = &storage.file {
        return Err(EngineError::usage(format!(
            "the state file {} is locked with the operating system's file lock ({}), which is released when its holder ends; there is nothing to unlock",
            file.display(),
            lock_path(file).display()
        )));
    }
    let mut provider = ProviderProcess::start(&storage.provider, timeout).await?;
    if !provider.supports(request) {
        let _ = provider.close().await;
        return Err(no_lock(storage));
    }
    let answer = provider.request(request).await;
    let _ = provider.close().await;
    answer.map_err(|e| lock_error(storage, e))
}

fn no_lock(storage: &StateStorage) -> EngineError {
    EngineError::state(format!(
        "{} cannot be locked: its provider does not offer the state lock (`stateLockRequest`), so nixops4 does not change it (plans still read it)",
        storage.label
    ))
}

fn lock_error(storage: &StateStorage, error: ProviderError) -> EngineError {
    let locked = error.kind() == Some(ErrorKind::Locked);
    let error = super::in_storage(storage, error.into());
    if locked {
        EngineError::locked(error.message)
    } else {
        error
    }
}

fn unexpected(response: Response) -> EngineError {
    EngineError::internal(format!(
        "unexpected answer to a state lock request: {}",
        response.name()
    ))
}

pub fn lock_path(state_file: &Path) -> PathBuf {
    let mut name = state_file
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    state_file.with_file_name(name)
}
