//! The request loop: reads one JSON line, answers with one JSON line, until input ends.
//!
//! Every failure, from a malformed line to a panicking resource type, becomes an
//! `errorResponse` and the loop goes on with the next line; only input that ends in the
//! middle of a message ends it early.

use std::io::{BufRead, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};

use nixops4_provider_protocol::*;
use serde_json::Value;

use crate::{Context, Provider, ProviderError, Result};

/// How serving ended.
#[derive(Debug, PartialEq, Eq)]
pub enum ServeEnd {
    /// Input closed after a complete message: the normal end.
    InputClosed,
    /// Input closed in the middle of a message; an error response was sent for it.
    Truncated,
}

/// Serves requests from `input` until it ends. Fails only when `output` cannot be written.
pub fn serve(
    provider: &Provider,
    mut input: impl BufRead,
    mut output: impl Write,
) -> std::io::Result<ServeEnd> {
    let mut session = Session {
        provider,
        handshake_done: false,
    };
    let mut line = Vec::new();
    loop {
        line.clear();
        input.read_until(b'\n', &mut line)?;
        if line.is_empty() {
            return Ok(ServeEnd::InputClosed);
        }
        let complete = line.ends_with(b"\n");
        if line.iter().all(u8::is_ascii_whitespace) {
            if complete {
                continue;
            }
            return Ok(ServeEnd::InputClosed);
        }
        let (response, unreadable) = match session.parse(&line, complete) {
            Ok(request) => (session.answer(request), false),
            Err(error) => (session.error(error), true),
        };
        output.write_all(to_line(&response).as_bytes())?;
        output.flush()?;
        if !complete {
            // The input ended on this line: a complete message was served as usual, a
            // partial one ends the session as truncated.
            return Ok(if unreadable {
                ServeEnd::Truncated
            } else {
                ServeEnd::InputClosed
            });
        }
    }
}

struct Session<'a> {
    provider: &'a Provider,
    /// After a handshake the client is known to read our additions to `errorResponse`.
    handshake_done: bool,
}

impl Session<'_> {
    fn parse(&self, line: &[u8], complete: bool) -> Result<Request> {
        let value: Value = serde_json::from_slice(line).map_err(|e| {
            if !complete && e.is_eof() {
                ProviderError::invalid_request(format!(
                    "input ended in the middle of a message ({} bytes without a terminating newline)",
                    line.len()
                ))
            } else {
                ProviderError::invalid_request(format!("malformed JSON: {e}"))
            }
        })?;
        let name = match &value {
            Value::Object(object) if object.len() == 1 => {
                object.keys().next().cloned().unwrap_or_default()
            }
            _ => {
                return Err(ProviderError::invalid_request(
                    "a message must be a JSON object with exactly one key, the message name",
                ));
            }
        };
        serde_json::from_value(value).map_err(|e| {
            // Only the message name itself being unknown means an unsupported request; an
            // unknown value further in (a patch `op`, say) is a malformed request.
            if e.to_string()
                .starts_with(&format!("unknown variant `{name}`"))
            {
                ProviderError::unsupported(format!("unknown request `{name}`"))
            } else {
                ProviderError::invalid_request(format!("malformed `{name}`: {e}"))
            }
        })
    }

    fn error(&self, error: ProviderError) -> Response {
        tracing::debug!("answering with an error: {error}");
        Response::ErrorResponse(error.into_response(self.handshake_done))
    }

    fn answer(&mut self, request: Request) -> Response {
        let name = request.name();
        tracing::debug!("handling {name}");
        let outcome =
            catch_unwind(AssertUnwindSafe(|| self.dispatch(request))).unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_owned());
                Err(ProviderError::internal(format!(
                    "provider bug: panicked while handling {name}: {what}"
                )))
            });
        outcome.unwrap_or_else(|error| self.error(error))
    }

    fn dispatch(&mut self, request: Request) -> Result<Response> {
        let provider = self.provider;
        Ok(match request {
            Request::HandshakeRequest(handshake) => {
                if !handshake.protocol_versions.contains(&PROTOCOL_VERSION) {
                    return Err(ProviderError::unsupported(format!(
                        "{} speaks protocol version {PROTOCOL_VERSION}; the client offered {:?}",
                        provider.info().name,
                        handshake.protocol_versions
                    )));
                }
                tracing::debug!("handshake with {}", handshake.client);
                self.handshake_done = true;
                Response::HandshakeResponse(HandshakeResponse {
                    protocol_version: PROTOCOL_VERSION,
                    provider: provider.info().clone(),
                    capabilities: [
                        Capability::Describe,
                        Capability::Read,
                        Capability::Destroy,
                        Capability::Operation,
                    ]
                    .into_iter()
                    .chain(provider.locks_state().then_some(Capability::StateLock))
                    .collect(),
                })
            }
            Request::DescribeRequest(_) => Response::DescribeResponse(provider.describe()),
            Request::CreateResourceRequest(create) => {
                let registered = provider.resource_type(&create.resource_type)?;
                registered.check_inputs(&create.input_properties)?;
                if registered.description.requires_state && !create.is_stateful {
                    return Err(ProviderError::invalid_input(format!(
                        "{} resources require state (isStateful must be true): give the resource a `state`",
                        create.resource_type
                    )));
                }
                let context = Context {
                    is_stateful: create.is_stateful,
                };
                let outputs = registered
                    .implementation
                    .create(&create.input_properties, &context)?;
                Response::CreateResourceResponse(CreateResourceResponse {
                    output_properties: outputs,
                })
            }
            Request::ReadResourceRequest(read) => {
                let registered = provider.resource_type(&read.resource.resource_type)?;
                Response::ReadResourceResponse(
                    match registered.implementation.read(&read.resource)? {
                        Some(output_properties) => {
                            ReadResourceResponse::Present { output_properties }
                        }
                        None => ReadResourceResponse::Gone {},
                    },
                )
            }
            Request::UpdateResourceRequest(update) => {
                let registered = provider.resource_type(&update.resource.resource_type)?;
                registered.check_inputs(&update.input_properties)?;
                // Upstream's update carries no isStateful: a resource with a previous record is
                // stateful by definition.
                let context = Context { is_stateful: true };
                let outputs = registered.implementation.update(
                    &update.resource,
                    &update.input_properties,
                    &context,
                )?;
                Response::UpdateResourceResponse(UpdateResourceResponse {
                    output_properties: outputs,
                })
            }
            Request::DestroyResourceRequest(destroy) => {
                let registered = provider.resource_type(&destroy.resource.resource_type)?;
                registered.implementation.destroy(&destroy.resource)?;
                Response::DestroyResourceResponse(DestroyResourceResponse {})
            }
            Request::OperationRequest(operation) => {
                let type_name = &operation.resource.resource_type;
                let registered = provider.resource_type(type_name)?;
                registered.check_arguments(
                    type_name,
                    &operation.operation,
                    &operation.arguments,
                )?;
                let context = Context {
                    is_stateful: operation.is_stateful,
                };
                let outcome = registered.implementation.operation(
                    &operation.operation,
                    &operation.resource,
                    operation.arguments,
                    &context,
                )?;
                Response::OperationResponse(OperationResponse {
                    result: outcome.result,
                    output_properties: outcome.outputs,
                })
            }
            Request::StateResourceReadRequest(read) => {
                let registered = provider.resource_type(&read.resource.resource_type)?;
                let state = registered.implementation.state_read(&read.resource)?;
                Response::StateResourceReadResponse(StateResourceReadResponse { state })
            }
            Request::StateResourceEvent(event) => {
                let registered = provider.resource_type(&event.resource.resource_type)?;
                registered
                    .implementation
                    .state_event(&event.resource, &event)?;
                Response::StateResourceEventResponse(StateResourceEventResponse {})
            }
            Request::StateLockRequest(lock) => {
                let registered = provider.resource_type(&lock.resource.resource_type)?;
                registered
                    .implementation
                    .state_lock(&lock.resource, &lock.holder)?;
                Response::StateLockResponse(StateLockResponse {})
            }
            Request::StateLockStatusRequest(status) => {
                let registered = provider.resource_type(&status.resource.resource_type)?;
                let holders = registered
                    .implementation
                    .state_lock_status(&status.resource)?;
                Response::StateLockStatusResponse(StateLockStatusResponse { holders })
            }
            Request::StateUnlockRequest(unlock) => {
                let registered = provider.resource_type(&unlock.resource.resource_type)?;
                let released = registered
                    .implementation
                    .state_unlock(&unlock.resource, unlock.force)?;
                Response::StateUnlockResponse(StateUnlockResponse { released })
            }
        })
    }
}
