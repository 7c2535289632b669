//! The engine's side of the provider protocol: starts a provider program, agrees on a
//! protocol version, and sends one request at a time with a deadline.
//!
//! A provider that does not understand the handshake (one written for upstream NixOps4
//! v0) is restarted and spoken to in upstream's subset: create, update and the state
//! requests. Whatever goes wrong (the program cannot start, crashes, prints something
//! that is not a protocol line, or hangs) becomes a [`ProviderError`] that names the
//! provider and, for crashes, ends with the tail of its stderr.

use std::collections::VecDeque;
use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nixops4_provider_protocol::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::secrets::Secrets;

/// How to start a provider program.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProviderCommand {
    pub executable: PathBuf,
    pub args: Vec<String>,
    /// Working directory; relative paths in inputs are relative to it.
    pub working_directory: Option<PathBuf>,
    /// How messages name the provider (`local`); the executable when absent.
    pub label: Option<String>,
    /// The secrets hidden in what the provider prints on its stderr.
    pub redaction: Option<Secrets>,
}

impl ProviderCommand {
    pub fn new(executable: impl Into<PathBuf>) -> ProviderCommand {
        ProviderCommand {
            executable: executable.into(),
            args: Vec::new(),
            working_directory: None,
            label: None,
            redaction: None,
        }
    }

    pub fn in_directory(mut self, directory: impl Into<PathBuf>) -> ProviderCommand {
        self.working_directory = Some(directory.into());
        self
    }

    pub fn labelled(mut self, label: &str) -> ProviderCommand {
        self.label = Some(label.to_owned());
        self
    }

    /// Hides these secrets in the provider's stderr before it is logged or quoted.
    pub fn redacting(mut self, secrets: &Secrets) -> ProviderCommand {
        self.redaction = Some(secrets.clone());
        self
    }

    pub(crate) fn display_name(&self) -> String {
        match &self.label {
            Some(label) => format!("`{label}`"),
            None => self.executable.display().to_string(),
        }
    }
}

/// Which protocol the provider speaks.
#[derive(Clone, Debug, PartialEq)]
pub enum Dialect {
    /// It answered the handshake: our additions are available as announced.
    Extended(HandshakeResponse),
    /// An upstream v0 provider: create, update and state requests only.
    UpstreamV0,
}

/// Why a request to a provider failed.
#[derive(Debug)]
pub enum ProviderError {
    /// The provider answered with an `errorResponse`.
    Refused {
        provider: String,
        error: ErrorResponse,
    },
    /// The program could not be started.
    Spawn {
        provider: String,
        error: std::io::Error,
    },
    /// The program ended without answering.
    Exited {
        provider: String,
        status: Option<ExitStatus>,
        stderr_tail: Vec<String>,
    },
    /// It printed a line that is not a protocol response.
    Garbage {
        provider: String,
        line: String,
        problem: String,
    },
    /// It answered with a response of another request.
    Mismatch {
        provider: String,
        expected: &'static str,
        got: &'static str,
    },
    /// No answer within the deadline; the process was killed.
    Timeout { provider: String, after: Duration },
    /// The request is one of our additions and this provider does not offer it.
    Unsupported {
        provider: String,
        request: &'static str,
    },
    /// Writing to or reading from the provider failed.
    Io {
        provider: String,
        error: std::io::Error,
    },
}

impl ProviderError {
    /// The error kind a provider reported, if it reported one.
    pub fn kind(&self) -> Option<ErrorKind> {
        match self {
            ProviderError::Refused { error, .. } => error.kind,
            _ => None,
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProviderError::Refused { provider, error } => {
                write!(f, "provider {provider}: {}", error.message)?;
                if let Some(path) = &error.input_path {
                    write!(f, " (at input {path})")?;
                }
                Ok(())
            }
            ProviderError::Spawn { provider, error } => {
                write!(f, "cannot start provider {provider}: {error}")
            }
            ProviderError::Exited {
                provider,
                status,
                stderr_tail,
            } => {
                match status {
                    Some(status) => {
                        write!(f, "provider {provider} ended without answering ({status})")?
                    }
                    None => write!(f, "provider {provider} closed its output without answering")?,
                }
                if !stderr_tail.is_empty() {
                    write!(f, "; its stderr ended with:\n{}", stderr_tail.join("\n"))?;
                }
                Ok(())
            }
            ProviderError::Garbage {
                provider,
                line,
                problem,
            } => {
                let shown: String = line.chars().take(200).collect();
                write!(
                    f,
                    "provider {provider} printed something that is not a protocol message ({problem}): {shown}"
                )
            }
            ProviderError::Mismatch {
                provider,
                expected,
                got,
            } => {
                write!(
                    f,
                    "provider {provider} answered {got} to a request that expects {expected}"
                )
            }
            ProviderError::Timeout { provider, after } => {
                write!(
                    f,
                    "provider {provider} did not answer within {} s and was stopped",
                    after.as_secs_f64()
                )
            }
            ProviderError::Unsupported { provider, request } => write!(
                f,
                "provider {provider} speaks upstream's protocol v0, which has no {request}"
            ),
            ProviderError::Io { provider, error } => {
                write!(f, "talking to provider {provider}: {error}")
            }
        }
    }
}

impl std::error::Error for ProviderError {}

/// How many lines of a provider's stderr are kept for error messages.
const STDERR_TAIL_LINES: usize = 20;

/// A running provider process. Requests are answered one at a time, in order.
pub struct ProviderProcess {
    command: ProviderCommand,
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_reader: Option<tokio::task::JoinHandle<()>>,
    dialect: Dialect,
    timeout: Duration,
}

impl ProviderProcess {
    /// Starts the provider and agrees on a protocol. Each request must be answered within
    /// `timeout`.
    pub async fn start(
        command: &ProviderCommand,
        timeout: Duration,
    ) -> Result<ProviderProcess, ProviderError> {
        let mut process = ProviderProcess::spawn(command, timeout)?;
        let handshake = Request::HandshakeRequest(HandshakeRequest {
            protocol_versions: vec![PROTOCOL_VERSION],
            client: format!("nixops4 {}", env!("CARGO_PKG_VERSION")),
        });
        match process.round_trip(&handshake).await {
            Ok(Response::HandshakeResponse(response))
                if response.protocol_version == PROTOCOL_VERSION =>
            {
                process.dialect = Dialect::Extended(response);
                Ok(process)
            }
            // A provider that took the handshake for garbage has either exited or
            // answered with an error; a timeout or a failure to start is not that.
            Err(error @ (ProviderError::Spawn { .. } | ProviderError::Timeout { .. })) => {
                Err(error)
            }
            Ok(_) | Err(_) => {
                tracing::debug!(
                    "provider {} did not answer the handshake; using upstream v0",
                    process.name
                );
                process.kill().await;
                let mut process = ProviderProcess::spawn(command, timeout)?;
                process.dialect = Dialect::UpstreamV0;
                Ok(process)
            }
        }
    }

    fn spawn(
        command: &ProviderCommand,
        timeout: Duration,
    ) -> Result<ProviderProcess, ProviderError> {
        let name = command.display_name();
        let mut builder = Command::new(&command.executable);
        builder
            .args(&command.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(directory) = &command.working_directory {
            builder.current_dir(directory);
        }
        let mut child = builder.spawn().map_err(|error| ProviderError::Spawn {
            provider: name.clone(),
            error,
        })?;
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr_tail.clone();
        let provider = name.clone();
        let redaction = command.redaction.clone();
        let stderr_reader = tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let line = match &redaction {
                    Some(secrets) => secrets.redact(&line),
                    None => line,
                };
                tracing::info!(target: "nixops4::provider", "{provider}: {line}");
                let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        Ok(ProviderProcess {
            command: command.clone(),
            name,
            child,
            stdin,
            stdout,
            stderr_tail,
            stderr_reader: Some(stderr_reader),
            dialect: Dialect::UpstreamV0,
            timeout,
        })
    }

    pub fn dialect(&self) -> &Dialect {
        &self.dialect
    }

    pub fn command(&self) -> &ProviderCommand {
        &self.command
    }

    /// Whether the provider answers a request of this kind.
    pub fn supports(&self, request: &Request) -> bool {
        let needed = match request {
            Request::HandshakeRequest(_) => return false,
            Request::DescribeRequest(_) => Capability::Describe,
            Request::ReadResourceRequest(_) => Capability::Read,
            Request::DestroyResourceRequest(_) => Capability::Destroy,
            Request::OperationRequest(_) => Capability::Operation,
            Request::StateLockRequest(_)
            | Request::StateLockStatusRequest(_)
            | Request::StateUnlockRequest(_) => Capability::StateLock,
            Request::CreateResourceRequest(_)
            | Request::UpdateResourceRequest(_)
            | Request::StateResourceReadRequest(_)
            | Request::StateResourceEvent(_) => return true,
        };
        match &self.dialect {
            Dialect::Extended(handshake) => handshake.capabilities.contains(&needed),
            Dialect::UpstreamV0 => false,
        }
    }

    /// Sends a request and returns its response; an `errorResponse` becomes
    /// [`ProviderError::Refused`], and a response to another request a mismatch.
    pub async fn request(&mut self, request: &Request) -> Result<Response, ProviderError> {
        if !self.supports(request) {
            return Err(ProviderError::Unsupported {
                provider: self.name.clone(),
                request: request.name(),
            });
        }
        let response = self.round_trip(request).await?;
        let expected = request.response_name();
        match response {
            Response::ErrorResponse(error) => Err(ProviderError::Refused {
                provider: self.name.clone(),
                error,
            }),
            response if response.name() == expected => Ok(response),
            other => Err(ProviderError::Mismatch {
                provider: self.name.clone(),
                expected,
                got: other.name(),
            }),
        }
    }

    async fn round_trip(&mut self, request: &Request) -> Result<Response, ProviderError> {
        let line = to_line(request);
        let timeout = self.timeout;
        let exchange = async {
            let stdin = self.stdin.as_mut().ok_or_else(|| ProviderError::Io {
                provider: self.name.clone(),
                error: std::io::Error::other("the provider's input is closed"),
            })?;
            // A provider that died makes the write fail; report how it ended instead.
            let written = async {
                stdin.write_all(line.as_bytes()).await?;
                stdin.flush().await
            }
            .await;
            let answer = match written {
                Ok(()) => self.stdout.next_line().await,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(None),
                Err(e) => Err(e),
            };
            match answer {
                Ok(Some(line)) => parse_response(&self.name, line),
                Ok(None) => Err(self.exited().await),
                Err(error) => Err(ProviderError::Io {
                    provider: self.name.clone(),
                    error,
                }),
            }
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => {
                self.kill().await;
                Err(ProviderError::Timeout {
                    provider: self.name.clone(),
                    after: self.timeout,
                })
            }
        }
    }

    async fn exited(&mut self) -> ProviderError {
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .ok()
            .and_then(Result::ok);
        // Let the stderr reader reach the end before quoting the last lines. (A grandchild
        // may hold stderr open; do not wait for it long.)
        if let Some(reader) = self.stderr_reader.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), reader).await;
        }
        ProviderError::Exited {
            provider: self.name.clone(),
            status,
            stderr_tail: self
                .stderr_tail
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned()
                .collect(),
        }
    }

    async fn kill(&mut self) {
        let _ = self.child.kill().await;
    }

    /// Closes the provider's input and waits for it to exit.
    pub async fn close(mut self) -> Result<ExitStatus, ProviderError> {
        drop(self.stdin.take());
        match tokio::time::timeout(self.timeout, self.child.wait()).await {
            Ok(Ok(status)) => Ok(status),
            Ok(Err(error)) => Err(ProviderError::Io {
                provider: self.name.clone(),
                error,
            }),
            Err(_) => {
                self.kill().await;
                Err(ProviderError::Timeout {
                    provider: self.name.clone(),
                    after: self.timeout,
                })
            }
        }
    }
}

fn parse_response(provider: &str, line: String) -> Result<Response, ProviderError> {
    serde_json::from_str(&line).map_err(|e| ProviderError::Garbage {
        provider: provider.to_owned(),
        problem: e.to_string(),
        line,
    })
}
