//! Wire types of the NixOps4 resource provider protocol, version 0.
//!
//! A provider is a program that NixOps4 starts and talks to over its standard streams.
//! The framing, the message set and the compatibility rules are documented for provider
//! authors in `docs/provider-protocol.md`; in short:
//!
//! - Every message is one JSON object on one line, terminated by `\n`. Requests go to the
//!   provider's stdin, responses come from its stdout. Stderr carries the provider's logs.
//! - The client sends one request and waits for its response before sending the next; a
//!   process serves any number of requests until its stdin closes.
//! - Each message is an object with exactly one key that names it (`createResourceRequest`,
//!   `errorResponse`, ...). The messages of upstream NixOps4 v0 keep their names and shapes;
//!   everything else here is an addition that a client uses only after a successful
//!   [`HandshakeRequest`].
//!
//! Messages are read strictly (unknown fields are refused), as the schema says.
//!
//! This crate holds data only: no I/O, no process handling. `schema/provider-protocol-v0.json`
//! describes the same messages for other languages, and the tests keep the two in step.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this crate speaks.
pub const PROTOCOL_VERSION: u32 = 0;

/// Input or output properties of a resource: a JSON object.
pub type Properties = Map<String, Value>;

/// A message from NixOps4 to a provider.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    /// Addition: agree on a protocol version and learn which additions the provider answers.
    HandshakeRequest(HandshakeRequest),
    /// Addition: the resource types with their schemas and operations.
    DescribeRequest(DescribeRequest),
    /// Upstream v0: create a resource.
    CreateResourceRequest(CreateResourceRequest),
    /// Addition: observe an existing resource (refresh, drift detection).
    ReadResourceRequest(ReadResourceRequest),
    /// Upstream v0: bring an existing resource in line with new inputs.
    UpdateResourceRequest(UpdateResourceRequest),
    /// Addition: delete an existing resource. The name is the one upstream's unreleased
    /// `destroy` work uses, so that providers written for it answer ours.
    DestroyResourceRequest(DestroyResourceRequest),
    /// Addition: run a named custom operation on an existing resource.
    OperationRequest(OperationRequest),
    /// Upstream v0, state providers only: read the whole state document.
    StateResourceReadRequest(StateResourceReadRequest),
    /// Upstream v0, state providers only: record a change to the state document.
    StateResourceEvent(StateResourceEvent),
    /// Addition, state providers with the `stateLock` capability: take the state's lock
    /// for this client, and keep its lease renewed until it is released or the provider
    /// process ends.
    StateLockRequest(StateLockRequest),
    /// Addition (`stateLock`): who holds the state's lock, if anyone.
    StateLockStatusRequest(StateLockStatusRequest),
    /// Addition (`stateLock`): release this client's lock, or with `force` every holder's.
    StateUnlockRequest(StateUnlockRequest),
}

/// A message from a provider to NixOps4.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Response {
    HandshakeResponse(HandshakeResponse),
    DescribeResponse(DescribeResponse),
    CreateResourceResponse(CreateResourceResponse),
    ReadResourceResponse(ReadResourceResponse),
    UpdateResourceResponse(UpdateResourceResponse),
    DestroyResourceResponse(DestroyResourceResponse),
    OperationResponse(OperationResponse),
    StateResourceReadResponse(StateResourceReadResponse),
    StateResourceEventResponse(StateResourceEventResponse),
    StateLockResponse(StateLockResponse),
    StateLockStatusResponse(StateLockStatusResponse),
    StateUnlockResponse(StateUnlockResponse),
    ErrorResponse(ErrorResponse),
}

impl Request {
    /// The message's key on the wire, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Request::HandshakeRequest(_) => "handshakeRequest",
            Request::DescribeRequest(_) => "describeRequest",
            Request::CreateResourceRequest(_) => "createResourceRequest",
            Request::ReadResourceRequest(_) => "readResourceRequest",
            Request::UpdateResourceRequest(_) => "updateResourceRequest",
            Request::DestroyResourceRequest(_) => "destroyResourceRequest",
            Request::OperationRequest(_) => "operationRequest",
            Request::StateResourceReadRequest(_) => "stateResourceReadRequest",
            Request::StateResourceEvent(_) => "stateResourceEvent",
            Request::StateLockRequest(_) => "stateLockRequest",
            Request::StateLockStatusRequest(_) => "stateLockStatusRequest",
            Request::StateUnlockRequest(_) => "stateUnlockRequest",
        }
    }

    /// The key of the response that answers this request (besides `errorResponse`).
    pub fn response_name(&self) -> &'static str {
        match self {
            Request::HandshakeRequest(_) => "handshakeResponse",
            Request::DescribeRequest(_) => "describeResponse",
            Request::CreateResourceRequest(_) => "createResourceResponse",
            Request::ReadResourceRequest(_) => "readResourceResponse",
            Request::UpdateResourceRequest(_) => "updateResourceResponse",
            Request::DestroyResourceRequest(_) => "destroyResourceResponse",
            Request::OperationRequest(_) => "operationResponse",
            Request::StateResourceReadRequest(_) => "stateResourceReadResponse",
            Request::StateResourceEvent(_) => "stateResourceEventResponse",
            Request::StateLockRequest(_) => "stateLockResponse",
            Request::StateLockStatusRequest(_) => "stateLockStatusResponse",
            Request::StateUnlockRequest(_) => "stateUnlockResponse",
        }
    }
}

impl Response {
    /// The message's key on the wire, for logs and error messages.
    pub fn name(&self) -> &'static str {
        match self {
            Response::HandshakeResponse(_) => "handshakeResponse",
            Response::DescribeResponse(_) => "describeResponse",
            Response::CreateResourceResponse(_) => "createResourceResponse",
            Response::ReadResourceResponse(_) => "readResourceResponse",
            Response::UpdateResourceResponse(_) => "updateResourceResponse",
            Response::DestroyResourceResponse(_) => "destroyResourceResponse",
            Response::OperationResponse(_) => "operationResponse",
            Response::StateResourceReadResponse(_) => "stateResourceReadResponse",
            Response::StateResourceEventResponse(_) => "stateResourceEventResponse",
            Response::StateLockResponse(_) => "stateLockResponse",
            Response::StateLockStatusResponse(_) => "stateLockStatusResponse",
            Response::StateUnlockResponse(_) => "stateUnlockResponse",
            Response::ErrorResponse(_) => "errorResponse",
        }
    }
}

/// The additions a provider may answer, announced in its [`HandshakeResponse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Capability {
    Describe,
    Read,
    Destroy,
    Operation,
    /// `stateLockRequest`, `stateLockStatusRequest`, `stateUnlockRequest`.
    StateLock,
}

/// The one message that tolerates unknown fields, so that later clients can say more
/// in it and still reach the version negotiation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HandshakeRequest {
    /// Protocol versions the client speaks, in any order.
    pub protocol_versions: Vec<u32>,
    /// Who is asking, for the provider's logs (`nixops4 0.1.0`).
    pub client: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HandshakeResponse {
    /// The version chosen from the request's list.
    pub protocol_version: u32,
    /// The provider program's name and version.
    pub provider: ProviderInfo,
    /// The additional requests this provider answers.
    pub capabilities: Vec<Capability>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderInfo {
    pub name: String,
    pub version: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeRequest {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DescribeResponse {
    pub provider: ProviderInfo,
    /// What the provider is for, in a sentence or two.
    pub description: String,
    /// Every resource type the provider supports, by the name used in `type`.
    pub resource_types: BTreeMap<String, ResourceTypeDescription>,
}

/// What a client needs to know about a resource type to plan, validate and document it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceTypeDescription {
    pub description: String,
    /// JSON Schema (2020-12) of the input properties: an object schema whose `properties`
    /// carry descriptions and whose `required` lists the mandatory inputs.
    pub inputs: Value,
    /// JSON Schema (2020-12) of the output properties.
    pub outputs: Value,
    /// Whether the resource only works with state (`isStateful` must be true).
    #[serde(default)]
    pub requires_state: bool,
    /// Inputs whose change cannot be applied by an update: the resource is deleted and
    /// created again.
    #[serde(default)]
    pub replace_on_change: Vec<String>,
    /// Outputs whose values must never be shown: not in logs, plans, hovers or errors.
    #[serde(default)]
    pub secret_outputs: Vec<String>,
    /// Custom operations, by name.
    #[serde(default)]
    pub operations: BTreeMap<String, OperationDescription>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationDescription {
    pub description: String,
    /// JSON Schema (2020-12) of the operation's arguments object.
    pub arguments: Value,
    /// Whether running it changes or removes something that cannot be brought back, so
    /// front ends ask for confirmation first.
    #[serde(default)]
    pub destructive: bool,
}

/// A resource that exists: what it was created or last updated with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtantResource {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub input_properties: Properties,
    /// Absent when the client does not know them (upstream sends none in read-only mode).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_properties: Option<Properties>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateResourceRequest {
    #[serde(rename = "type")]
    pub resource_type: String,
    pub input_properties: Properties,
    /// Whether the result is recorded in state. Resources that need state refuse `false`.
    pub is_stateful: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateResourceResponse {
    pub output_properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReadResourceRequest {
    pub resource: ExtantResource,
}

/// What a read found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase", deny_unknown_fields)]
pub enum ReadResourceResponse {
    /// The resource exists; these are its current outputs.
    #[serde(rename_all = "camelCase")]
    Present { output_properties: Properties },
    /// The resource no longer exists.
    Gone {},
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateResourceRequest {
    /// The resource as it was last created or updated.
    pub resource: ExtantResource,
    /// The new inputs.
    pub input_properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UpdateResourceResponse {
    pub output_properties: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestroyResourceRequest {
    pub resource: ExtantResource,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DestroyResourceResponse {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationRequest {
    pub resource: ExtantResource,
    /// The operation's name, as listed by `describe`.
    pub operation: String,
    /// Arguments, validated against the operation's schema.
    #[serde(default)]
    pub arguments: Properties,
    pub is_stateful: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OperationResponse {
    /// What the operation produced, shown to the user.
    pub result: Value,
    /// New outputs of the resource when the operation changed them; the client records
    /// them in state like the result of an update.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_properties: Option<Properties>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateResourceReadRequest {
    /// The state storage resource itself.
    pub resource: ExtantResource,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateResourceReadResponse {
    /// The whole state document (`{"_type": "nixopsState", ...}`).
    pub state: Properties,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateResourceEvent {
    /// The state storage resource itself.
    pub resource: ExtantResource,
    /// What produced the change: `create`, `update`, `destroy`, an operation name, ...
    pub event: String,
    pub nixops_version: String,
    /// RFC 6902 operations against the state document.
    pub patch: json_patch::Patch,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateResourceEventResponse {}

/// Who holds (or asks for) a state's lock, as people read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LockHolder {
    pub user: String,
    pub host: String,
    pub pid: u32,
    /// When the lock was taken, RFC 3339.
    pub since: String,
    /// What the holder does: `nixops4 apply of deployment \`default\``.
    pub operation: String,
}

impl fmt::Display for LockHolder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{} (process {}, {}) since {}",
            self.user, self.host, self.pid, self.operation, self.since
        )
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateLockRequest {
    /// The state storage resource itself.
    pub resource: ExtantResource,
    pub holder: LockHolder,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateLockResponse {}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateLockStatusRequest {
    /// The state storage resource itself.
    pub resource: ExtantResource,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateLockStatusResponse {
    /// Every holder whose lease the store records, expired ones included.
    pub holders: Vec<LockHolder>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateUnlockRequest {
    /// The state storage resource itself.
    pub resource: ExtantResource,
    /// Release every holder's lock, not only this client's: `nixops4 state unlock`.
    pub force: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StateUnlockResponse {
    /// The holders whose locks were removed.
    pub released: Vec<LockHolder>,
}

/// A failed request. Upstream v0 knows only `message`; the other fields are sent only to
/// clients that completed a handshake.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorResponse {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ErrorKind>,
    /// Where in the request's `inputProperties` (or an operation's `arguments`) the fault
    /// is: object keys and array indices from the top.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_path: Option<InputPath>,
}

/// What kind of failure an [`ErrorResponse`] reports, so that clients can react without
/// parsing messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The message could not be read: not JSON, not a known request, a missing field.
    InvalidRequest,
    /// The inputs or arguments are wrong: unknown type, unknown or missing input, wrong
    /// JSON type, unknown operation. Retrying the same request fails again.
    InvalidInput,
    /// The provider does not implement this request or protocol version.
    Unsupported,
    /// The resource the request is about does not exist.
    NotFound,
    /// A failure that may go away when retried (network, rate limit).
    Transient,
    /// Another client holds the state's lock; the message names it.
    Locked,
    /// A failure the provider cannot classify further: a command it ran failed, an I/O
    /// error, a bug.
    Internal,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::InvalidRequest => "invalid-request",
            ErrorKind::InvalidInput => "invalid-input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Transient => "transient",
            ErrorKind::Locked => "locked",
            ErrorKind::Internal => "internal",
        })
    }
}

/// A location inside a JSON value: object keys and array indices from the top.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InputPath(pub Vec<PathSegment>);

#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PathSegment {
    Key(String),
    Index(u64),
}

impl InputPath {
    pub fn root() -> InputPath {
        InputPath(Vec::new())
    }

    pub fn key(key: impl Into<String>) -> InputPath {
        InputPath(vec![PathSegment::Key(key.into())])
    }

    pub fn join(mut self, segment: PathSegment) -> InputPath {
        self.0.push(segment);
        self
    }
}

/// Renders as a Nix-like attribute path: `args[0]`, `env.HOME`, `"odd key"`.
impl fmt::Display for InputPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(the whole object)");
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                PathSegment::Index(index) => write!(f, "[{index}]")?,
                PathSegment::Key(key) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    let plain = !key.is_empty()
                        && key
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''))
                        && !key.starts_with(|c: char| c.is_ascii_digit() || c == '-');
                    if plain {
                        f.write_str(key)?;
                    } else {
                        write!(f, "{}", Value::String(key.clone()))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Serialises a message as one protocol line, newline included.
pub fn to_line<T: Serialize>(message: &T) -> String {
    let mut line = serde_json::to_string(message).expect("protocol messages are plain JSON values");
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_paths_render_like_nix_attribute_paths() {
        let path = InputPath::key("args").join(PathSegment::Index(2));
        assert_eq!(path.to_string(), "args[2]");
        let path = InputPath::key("env").join(PathSegment::Key("odd key".into()));
        assert_eq!(path.to_string(), "env.\"odd key\"");
        assert_eq!(InputPath::root().to_string(), "(the whole object)");
    }

    #[test]
    fn error_kind_display_matches_the_wire() {
        for kind in [
            ErrorKind::InvalidRequest,
            ErrorKind::InvalidInput,
            ErrorKind::Unsupported,
            ErrorKind::NotFound,
            ErrorKind::Transient,
            ErrorKind::Locked,
            ErrorKind::Internal,
        ] {
            assert_eq!(
                serde_json::to_value(kind).unwrap(),
                Value::String(kind.to_string())
            );
        }
    }
}
