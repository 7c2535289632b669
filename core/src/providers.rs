//! Provider processes for the engine: started on demand, reused between requests, one
//! per concurrent request, and asked for their `describe` once.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nixops4_eval::protocol::ProviderSpec;
use nixops4_provider_protocol::*;

use crate::error::EngineError;
use crate::provider_client::{ProviderCommand, ProviderError, ProviderProcess};
use crate::secrets::Secrets;

#[derive(Clone)]
pub struct ProviderPool {
    inner: Arc<Inner>,
}

struct Inner {
    local: PathBuf,
    working_directory: PathBuf,
    timeout: Duration,
    /// Hidden in what providers print on stderr.
    secrets: Secrets,
    idle: Mutex<HashMap<ProviderCommand, Vec<ProviderProcess>>>,
    described: tokio::sync::Mutex<HashMap<ProviderCommand, Option<DescribeResponse>>>,
}

impl ProviderPool {
    /// `local` is the built-in local provider's program; providers run in
    /// `working_directory` (the flake's directory), with `secrets` hidden in their stderr.
    pub fn new(
        local: PathBuf,
        working_directory: PathBuf,
        timeout: Duration,
        secrets: Secrets,
    ) -> ProviderPool {
        ProviderPool {
            inner: Arc::new(Inner {
                local,
                working_directory,
                timeout,
                secrets,
                idle: Mutex::default(),
                described: Default::default(),
            }),
        }
    }

    /// The command that runs a provider as the deployment declares it.
    pub fn command(&self, provider: &ProviderSpec) -> ProviderCommand {
        let mut command = match &provider.executable {
            Some(executable) => ProviderCommand::new(executable),
            None => ProviderCommand::new(&self.inner.local),
        };
        command.args = provider.args.clone();
        command
            .in_directory(&self.inner.working_directory)
            .labelled(&provider.name)
            .redacting(&self.inner.secrets)
    }

    pub fn local_command(&self) -> ProviderCommand {
        ProviderCommand::new(&self.inner.local)
            .in_directory(&self.inner.working_directory)
            .labelled("local")
            .redacting(&self.inner.secrets)
    }

    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Sends one request to a provider, on an idle process or a new one.
    pub async fn request(
        &self,
        command: &ProviderCommand,
        request: &Request,
    ) -> Result<Response, ProviderError> {
        let idle = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(command)
            .and_then(Vec::pop);
        let mut process = match idle {
            Some(process) => process,
            None => ProviderProcess::start(command, self.inner.timeout).await?,
        };
        let result = process.request(request).await;
        // A process that broke (crash, timeout, garbage) is not reused.
        let reusable = matches!(
            result,
            Ok(_) | Err(ProviderError::Refused { .. } | ProviderError::Unsupported { .. })
        );
        if reusable {
            self.inner
                .idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(command.clone())
                .or_default()
                .push(process);
        }
        result
    }

    /// The provider's `describe`, asked once; `None` for providers without it (upstream v0).
    pub async fn describe(
        &self,
        command: &ProviderCommand,
    ) -> Result<Option<DescribeResponse>, EngineError> {
        let mut described = self.inner.described.lock().await;
        if let Some(description) = described.get(command) {
            return Ok(description.clone());
        }
        let description = match self
            .request(command, &Request::DescribeRequest(DescribeRequest {}))
            .await
        {
            Ok(Response::DescribeResponse(description)) => Some(description),
            Err(ProviderError::Unsupported { .. }) => None,
            Ok(other) => {
                return Err(EngineError::internal(format!(
                    "unexpected answer to describe: {}",
                    other.name()
                )));
            }
            Err(error) => return Err(error.into()),
        };
        described.insert(command.clone(), description.clone());
        Ok(description)
    }

    /// Closes every idle provider process.
    pub async fn close(&self) {
        let processes: Vec<ProviderProcess> = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain()
            .flat_map(|(_, processes)| processes)
            .collect();
        for process in processes {
            let _ = process.close().await;
        }
    }
}
