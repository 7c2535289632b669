//! The provider requests the engine makes about resources, one function each. Those that
//! can change the world (create, update, delete, operation) take the [`Mutation`]
//! capability, which only a run holding the state lock has; a read needs none.

use nixops4_eval::protocol::{ProviderSpec, ResourceSpec};
use nixops4_provider_protocol::*;
use serde_json::{Map, Value};

use crate::provider_client::{ProviderCommand, ProviderError};
use crate::providers::ProviderPool;
use crate::state::{Mutation, RecordMeta, ResourceRecord};

pub(crate) async fn create(
    providers: &ProviderPool,
    spec: &ResourceSpec,
    _: Mutation,
) -> Result<Properties, ProviderError> {
    let command = providers.command(&spec.provider);
    let request = Request::CreateResourceRequest(CreateResourceRequest {
        resource_type: spec.resource_type.clone(),
        input_properties: spec.inputs.clone(),
        is_stateful: true,
    });
    match providers.request(&command, &request).await? {
        Response::CreateResourceResponse(response) => Ok(response.output_properties),
        other => Err(mismatch(&command, &request, &other)),
    }
}

pub(crate) async fn update(
    providers: &ProviderPool,
    spec: &ResourceSpec,
    record: &ResourceRecord,
    _: Mutation,
) -> Result<Properties, ProviderError> {
    let command = providers.command(&spec.provider);
    let request = Request::UpdateResourceRequest(UpdateResourceRequest {
        resource: record.as_extant(),
        input_properties: spec.inputs.clone(),
    });
    match providers.request(&command, &request).await? {
        Response::UpdateResourceResponse(response) => Ok(response.output_properties),
        other => Err(mismatch(&command, &request, &other)),
    }
}

pub(crate) async fn delete(
    providers: &ProviderPool,
    record: &ResourceRecord,
    _: Mutation,
) -> Result<(), ProviderError> {
    let command = providers.command(&provider_of(record));
    let request = Request::DestroyResourceRequest(DestroyResourceRequest {
        resource: record.as_extant(),
    });
    providers.request(&command, &request).await.map(drop)
}

/// Reads a resource back. With `known_outputs`, the provider is given the recorded
/// outputs; a create that may not have happened has none worth giving.
pub(crate) async fn read(
    providers: &ProviderPool,
    record: &ResourceRecord,
    known_outputs: bool,
) -> Result<ReadResourceResponse, ProviderError> {
    let command = providers.command(&provider_of(record));
    let request = Request::ReadResourceRequest(ReadResourceRequest {
        resource: ExtantResource {
            output_properties: known_outputs.then(|| record.output_properties.clone()),
            ..record.as_extant()
        },
    });
    match providers.request(&command, &request).await? {
        Response::ReadResourceResponse(response) => Ok(response),
        other => Err(mismatch(&command, &request, &other)),
    }
}

pub(crate) async fn operation(
    providers: &ProviderPool,
    record: &ResourceRecord,
    name: &str,
    arguments: Map<String, Value>,
    _: Mutation,
) -> Result<OperationResponse, ProviderError> {
    let command = providers.command(&provider_of(record));
    let request = Request::OperationRequest(OperationRequest {
        resource: record.as_extant(),
        operation: name.to_owned(),
        arguments,
        is_stateful: true,
    });
    match providers.request(&command, &request).await? {
        Response::OperationResponse(response) => Ok(response),
        other => Err(mismatch(&command, &request, &other)),
    }
}

/// The provider a record was made by. Records written by upstream NixOps4 do not say:
/// they are taken to be the local provider's.
pub(crate) fn provider_of(record: &ResourceRecord) -> ProviderSpec {
    record
        .nixops4
        .as_ref()
        .map(|meta| meta.provider.clone())
        .unwrap_or_else(local)
}

/// The metadata of a record, or what is assumed for one written by upstream NixOps4.
pub(crate) fn meta_of(record: &ResourceRecord) -> RecordMeta {
    record.nixops4.clone().unwrap_or_else(|| RecordMeta {
        type_name: format!("local.{}", record.resource_type),
        provider: local(),
        depends_on: Vec::new(),
        secret_outputs: None,
        sensitive_inputs: Vec::new(),
        pending: None,
    })
}

fn local() -> ProviderSpec {
    ProviderSpec {
        name: "local".into(),
        executable: None,
        args: Vec::new(),
    }
}

/// The client checks that a response answers its request; this keeps that promise
/// without a panic should it ever be broken.
fn mismatch(command: &ProviderCommand, request: &Request, got: &Response) -> ProviderError {
    ProviderError::Mismatch {
        provider: command.display_name(),
        expected: request.response_name(),
        got: got.name(),
    }
}
