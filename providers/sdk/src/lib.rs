//! Write a NixOps4 resource provider in Rust: implement [`ResourceType`] for each type
//! the provider offers, list them in a [`Provider`], and call [`run`] from `main`.
//!
//! The SDK does the protocol work: line framing, the handshake, `describe` (schemas are
//! generated from the `Inputs` and `Outputs` types), validation of inputs and operation
//! arguments against those schemas (errors name the input path), structured errors,
//! logging to stderr, and keeping stdout for protocol messages only.
//!
//! ```no_run
//! use nixops4_provider_sdk::{Provider, ResourceType, TypeInfo, Extant, Context, Result};
//! # #[derive(serde::Deserialize, schemars::JsonSchema)] struct In { name: String }
//! # #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)] struct Out {}
//! struct Greeting;
//! impl ResourceType for Greeting {
//!     type Inputs = In;
//!     type Outputs = Out;
//!     fn info(&self) -> TypeInfo { TypeInfo::new("Says hello.") }
//!     fn create(&self, inputs: In, _: &Context) -> Result<Out> { Ok(Out {}) }
//!     fn update(&self, _: Extant<In, Out>, inputs: In, _: &Context) -> Result<Out> { Ok(Out {}) }
//!     fn destroy(&self, _: Extant<In, Out>) -> Result<()> { Ok(()) }
//! }
//! fn main() -> std::process::ExitCode {
//!     nixops4_provider_sdk::run(Provider::new("greeter", "1.0.0", "Greetings.").with_type("greeting", Greeting))
//! }
//! ```

#![deny(clippy::print_stdout)]

mod error;
mod schema;
mod serve;
mod stdio;

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::OnceLock;

use nixops4_provider_protocol::{
    DescribeResponse, ExtantResource, LockHolder, OperationDescription, Properties, ProviderInfo,
    ResourceTypeDescription, StateResourceEvent,
};
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub use error::{Context as ErrorContext, ProviderError, Result};
pub use nixops4_provider_protocol as protocol;
pub use schema::{did_you_mean, no_arguments, schema_for};
pub use serve::{ServeEnd, serve};

use schema::InputValidator;

/// One resource type of a provider.
///
/// Inputs arrive already validated against the schema of `Inputs`; `Outputs` is what the
/// deployment can refer to as `resources.<name>.<output>`.
pub trait ResourceType: Send + Sync + 'static {
    type Inputs: DeserializeOwned + JsonSchema;
    type Outputs: Serialize + DeserializeOwned + JsonSchema;

    /// Documentation and behaviour that `describe` announces.
    fn info(&self) -> TypeInfo;

    fn create(&self, inputs: Self::Inputs, context: &Context) -> Result<Self::Outputs>;

    /// Observes the resource as it is now: `Some(outputs)`, or `None` when it is gone.
    /// The default, for resources with nothing to observe, returns the recorded outputs.
    fn read(&self, resource: Extant<Self::Inputs, Self::Outputs>) -> Result<Option<Self::Outputs>> {
        resource.outputs.map(Some).ok_or_else(|| {
            ProviderError::unsupported("this resource type cannot read outputs it did not record")
        })
    }

    fn update(
        &self,
        previous: Extant<Self::Inputs, Self::Outputs>,
        inputs: Self::Inputs,
        context: &Context,
    ) -> Result<Self::Outputs>;

    /// Deletes the resource. Deleting what is already gone succeeds.
    fn destroy(&self, resource: Extant<Self::Inputs, Self::Outputs>) -> Result<()>;

    /// Runs one of the operations listed in [`TypeInfo::operations`]; the name is checked and
    /// the arguments are validated before this is called.
    fn operation(
        &self,
        name: &str,
        resource: Extant<Self::Inputs, Self::Outputs>,
        arguments: Properties,
        context: &Context,
    ) -> Result<OperationOutcome<Self::Outputs>> {
        let _ = (resource, arguments, context);
        Err(ProviderError::unsupported(format!(
            "operation `{name}` is declared but not implemented"
        )))
    }

    /// For state storage resources: the whole state document.
    fn state_read(&self, resource: Extant<Self::Inputs, Self::Outputs>) -> Result<Properties> {
        let _ = resource;
        Err(ProviderError::unsupported(
            "this resource type does not store state",
        ))
    }

    /// For state storage resources: records one change of the state document.
    fn state_event(
        &self,
        resource: Extant<Self::Inputs, Self::Outputs>,
        event: &StateResourceEvent,
    ) -> Result<()> {
        let _ = (resource, event);
        Err(ProviderError::unsupported(
            "this resource type does not store state",
        ))
    }

    /// For state storage resources that lock ([`TypeInfo::locks_state`]): takes the
    /// state's lock for `holder` and keeps its lease renewed until [`Self::state_unlock`]
    /// or the end of the process. Fails with [`ProviderError::locked`] naming the holder
    /// when another one has it.
    fn state_lock(
        &self,
        resource: Extant<Self::Inputs, Self::Outputs>,
        holder: &LockHolder,
    ) -> Result<()> {
        let _ = (resource, holder);
        Err(ProviderError::unsupported(
            "this resource type does not lock state",
        ))
    }

    /// For state storage resources that lock: every holder the store records.
    fn state_lock_status(
        &self,
        resource: Extant<Self::Inputs, Self::Outputs>,
    ) -> Result<Vec<LockHolder>> {
        let _ = resource;
        Err(ProviderError::unsupported(
            "this resource type does not lock state",
        ))
    }

    /// For state storage resources that lock: releases this process's lock, or with
    /// `force` every holder's; returns the holders released.
    fn state_unlock(
        &self,
        resource: Extant<Self::Inputs, Self::Outputs>,
        force: bool,
    ) -> Result<Vec<LockHolder>> {
        let _ = (resource, force);
        Err(ProviderError::unsupported(
            "this resource type does not lock state",
        ))
    }
}

/// What `describe` says about a resource type beyond its input and output schemas.
#[derive(Clone, Debug)]
pub struct TypeInfo {
    pub description: String,
    pub requires_state: bool,
    pub replace_on_change: Vec<String>,
    pub secret_outputs: Vec<String>,
    pub operations: BTreeMap<String, OperationDescription>,
    /// Whether the type implements the state lock requests.
    pub locks_state: bool,
}

impl TypeInfo {
    pub fn new(description: impl Into<String>) -> TypeInfo {
        TypeInfo {
            description: description.into(),
            requires_state: false,
            replace_on_change: Vec::new(),
            secret_outputs: Vec::new(),
            operations: BTreeMap::new(),
            locks_state: false,
        }
    }

    /// Announces that the type implements [`ResourceType::state_lock`] and its companions.
    pub fn locks_state(mut self) -> TypeInfo {
        self.locks_state = true;
        self
    }

    pub fn requires_state(mut self) -> TypeInfo {
        self.requires_state = true;
        self
    }

    pub fn replace_on_change(mut self, input: &str) -> TypeInfo {
        self.replace_on_change.push(input.to_owned());
        self
    }

    pub fn secret_output(mut self, output: &str) -> TypeInfo {
        self.secret_outputs.push(output.to_owned());
        self
    }

    /// Declares an operation; `arguments` is its JSON Schema ([`schema_for`] or
    /// [`no_arguments`]).
    pub fn operation(mut self, name: &str, description: &str, arguments: Value) -> TypeInfo {
        self.operations.insert(
            name.to_owned(),
            OperationDescription {
                description: description.to_owned(),
                arguments,
                destructive: false,
            },
        );
        self
    }
}

/// An existing resource: the inputs it was last applied with and, when known and of the
/// type's shape, its outputs.
#[derive(Clone, Debug)]
pub struct Extant<I, O> {
    pub inputs: I,
    pub outputs: Option<O>,
}

/// What an operation produced: a result for the user, and new outputs when it changed them.
#[derive(Clone, Debug)]
pub struct OperationOutcome<O> {
    pub result: Value,
    pub outputs: Option<O>,
}

/// Facts about the request being served.
#[derive(Clone, Debug)]
pub struct Context {
    /// Whether the result will be recorded in state.
    pub is_stateful: bool,
}

/// A provider program: its name, version and resource types.
pub struct Provider {
    info: ProviderInfo,
    description: String,
    types: BTreeMap<String, Registered>,
    /// Whether some type locks state, so the handshake announces `stateLock`.
    locks_state: bool,
}

impl Provider {
    pub fn new(name: &str, version: &str, description: &str) -> Provider {
        Provider {
            info: ProviderInfo {
                name: name.to_owned(),
                version: version.to_owned(),
            },
            description: description.to_owned(),
            types: BTreeMap::new(),
            locks_state: false,
        }
    }

    /// Adds a resource type under the name deployments use after the provider's prefix
    /// (`file` in `local.file`).
    pub fn with_type<T: ResourceType>(mut self, name: &str, resource_type: T) -> Provider {
        let info = resource_type.info();
        self.locks_state |= info.locks_state;
        let description = ResourceTypeDescription {
            description: info.description,
            inputs: schema_for::<T::Inputs>(),
            outputs: schema_for::<T::Outputs>(),
            requires_state: info.requires_state,
            replace_on_change: info.replace_on_change,
            secret_outputs: info.secret_outputs,
            operations: info.operations,
        };
        self.types.insert(
            name.to_owned(),
            Registered {
                description,
                implementation: Box::new(resource_type),
                input_validator: OnceLock::new(),
                argument_validators: OnceLock::new(),
            },
        );
        self
    }

    pub fn info(&self) -> &ProviderInfo {
        &self.info
    }

    pub(crate) fn locks_state(&self) -> bool {
        self.locks_state
    }

    /// What the provider answers to `describe`; also for programs that embed a provider
    /// and need its schemas without running it.
    pub fn describe(&self) -> DescribeResponse {
        DescribeResponse {
            provider: self.info.clone(),
            description: self.description.clone(),
            resource_types: self
                .types
                .iter()
                .map(|(name, registered)| (name.clone(), registered.description.clone()))
                .collect(),
        }
    }

    pub(crate) fn resource_type(&self, name: &str) -> Result<&Registered> {
        self.types.get(name).ok_or_else(|| {
            let known: Vec<String> = self.types.keys().cloned().collect();
            let mut message = format!(
                "unknown resource type `{name}` for provider {}",
                self.info.name
            );
            match did_you_mean(name, &known) {
                Some(close) => message.push_str(&format!(" (did you mean `{close}`?)")),
                None => message.push_str(&format!(" (it has: {})", known.join(", "))),
            }
            ProviderError::invalid_input(message)
        })
    }
}

/// A resource type as the provider holds it: its description, its implementation behind
/// a JSON-level interface, and validators compiled on first use.
pub(crate) struct Registered {
    pub(crate) description: ResourceTypeDescription,
    pub(crate) implementation: Box<dyn JsonResourceType>,
    input_validator: OnceLock<InputValidator>,
    argument_validators: OnceLock<BTreeMap<String, InputValidator>>,
}

impl Registered {
    pub(crate) fn check_inputs(&self, inputs: &Properties) -> Result<()> {
        self.input_validator
            .get_or_init(|| InputValidator::new(&self.description.inputs))
            .check(&Value::Object(inputs.clone()), "input")
    }

    pub(crate) fn check_arguments(
        &self,
        type_name: &str,
        operation: &str,
        arguments: &Properties,
    ) -> Result<()> {
        let validators = self.argument_validators.get_or_init(|| {
            self.description
                .operations
                .iter()
                .map(|(name, op)| (name.clone(), InputValidator::new(&op.arguments)))
                .collect()
        });
        let Some(validator) = validators.get(operation) else {
            let known: Vec<String> = validators.keys().cloned().collect();
            let mut message =
                format!("unknown operation `{operation}` for resource type `{type_name}`");
            match did_you_mean(operation, &known) {
                Some(close) => message.push_str(&format!(" (did you mean `{close}`?)")),
                None if known.is_empty() => message.push_str(" (it has no operations)"),
                None => message.push_str(&format!(" (it has: {})", known.join(", "))),
            }
            return Err(ProviderError::invalid_input(message));
        };
        validator.check(&Value::Object(arguments.clone()), "argument")
    }
}

/// [`ResourceType`] with its typed values turned into JSON, so that types of different
/// `Inputs`/`Outputs` can live in one table.
pub(crate) trait JsonResourceType: Send + Sync {
    fn create(&self, inputs: &Properties, context: &Context) -> Result<Properties>;
    fn read(&self, resource: &ExtantResource) -> Result<Option<Properties>>;
    fn update(
        &self,
        previous: &ExtantResource,
        inputs: &Properties,
        context: &Context,
    ) -> Result<Properties>;
    fn destroy(&self, resource: &ExtantResource) -> Result<()>;
    fn operation(
        &self,
        name: &str,
        resource: &ExtantResource,
        arguments: Properties,
        context: &Context,
    ) -> Result<OperationOutcome<Properties>>;
    fn state_read(&self, resource: &ExtantResource) -> Result<Properties>;
    fn state_event(&self, resource: &ExtantResource, event: &StateResourceEvent) -> Result<()>;
    fn state_lock(&self, resource: &ExtantResource, holder: &LockHolder) -> Result<()>;
    fn state_lock_status(&self, resource: &ExtantResource) -> Result<Vec<LockHolder>>;
    fn state_unlock(&self, resource: &ExtantResource, force: bool) -> Result<Vec<LockHolder>>;
}

impl<T: ResourceType> JsonResourceType for T {
    fn create(&self, inputs: &Properties, context: &Context) -> Result<Properties> {
        let inputs = parse_inputs::<T::Inputs>(inputs, "inputProperties")?;
        to_properties(ResourceType::create(self, inputs, context)?)
    }

    fn read(&self, resource: &ExtantResource) -> Result<Option<Properties>> {
        ResourceType::read(self, parse_extant(resource)?)?
            .map(to_properties)
            .transpose()
    }

    fn update(
        &self,
        previous: &ExtantResource,
        inputs: &Properties,
        context: &Context,
    ) -> Result<Properties> {
        let inputs = parse_inputs::<T::Inputs>(inputs, "inputProperties")?;
        to_properties(ResourceType::update(
            self,
            parse_extant(previous)?,
            inputs,
            context,
        )?)
    }

    fn destroy(&self, resource: &ExtantResource) -> Result<()> {
        ResourceType::destroy(self, parse_extant(resource)?)
    }

    fn operation(
        &self,
        name: &str,
        resource: &ExtantResource,
        arguments: Properties,
        context: &Context,
    ) -> Result<OperationOutcome<Properties>> {
        let outcome =
            ResourceType::operation(self, name, parse_extant(resource)?, arguments, context)?;
        Ok(OperationOutcome {
            result: outcome.result,
            outputs: outcome.outputs.map(to_properties).transpose()?,
        })
    }

    fn state_read(&self, resource: &ExtantResource) -> Result<Properties> {
        ResourceType::state_read(self, parse_extant(resource)?)
    }

    fn state_event(&self, resource: &ExtantResource, event: &StateResourceEvent) -> Result<()> {
        ResourceType::state_event(self, parse_extant(resource)?, event)
    }

    fn state_lock(&self, resource: &ExtantResource, holder: &LockHolder) -> Result<()> {
        ResourceType::state_lock(self, parse_extant(resource)?, holder)
    }

    fn state_lock_status(&self, resource: &ExtantResource) -> Result<Vec<LockHolder>> {
        ResourceType::state_lock_status(self, parse_extant(resource)?)
    }

    fn state_unlock(&self, resource: &ExtantResource, force: bool) -> Result<Vec<LockHolder>> {
        ResourceType::state_unlock(self, parse_extant(resource)?, force)
    }
}

fn parse_inputs<I: DeserializeOwned>(inputs: &Properties, field: &str) -> Result<I> {
    serde_json::from_value(Value::Object(inputs.clone()))
        .map_err(|e| ProviderError::invalid_input(format!("{field}: {e}")))
}

/// Reads a recorded resource. Its inputs were valid when it was applied; if they no longer
/// parse, the provider changed incompatibly, which the message says. Outputs that do not
/// fit (recorded by another provider version, or upstream's) count as unknown.
fn parse_extant<I: DeserializeOwned, O: DeserializeOwned>(
    resource: &ExtantResource,
) -> Result<Extant<I, O>> {
    let inputs =
        serde_json::from_value(Value::Object(resource.input_properties.clone())).map_err(|e| {
            ProviderError::invalid_request(format!(
                "the recorded inputs of this resource do not fit its type's schema: {e}"
            ))
        })?;
    let outputs = resource.output_properties.as_ref().and_then(|outputs| {
        serde_json::from_value(Value::Object(outputs.clone()))
            .inspect_err(|e| {
                tracing::warn!("ignoring recorded outputs that do not fit the type's schema: {e}")
            })
            .ok()
    });
    Ok(Extant { inputs, outputs })
}

fn to_properties<O: Serialize>(outputs: O) -> Result<Properties> {
    match serde_json::to_value(outputs) {
        Ok(Value::Object(properties)) => Ok(properties),
        Ok(other) => Err(ProviderError::internal(format!(
            "provider bug: outputs must be a JSON object, not {other}"
        ))),
        Err(e) => Err(ProviderError::internal(format!(
            "provider bug: outputs do not serialise: {e}"
        ))),
    }
}

/// Runs the provider on this process's stdin and stdout until stdin closes.
///
/// Before serving, stdout is set aside for protocol messages and file descriptor 1 is
/// pointed at stderr, so a stray `println!` or a child process's output becomes a log line
/// instead of corrupting the protocol. Logs go to stderr; `NIXOPS4_PROVIDER_LOG` sets the
/// level (`error`, `warn`, `info`, `debug`, `trace`; default `info`).
pub fn run(provider: Provider) -> ExitCode {
    stdio::init_logging();
    let (input, output) = match stdio::take_protocol_streams() {
        Ok(streams) => streams,
        Err(e) => {
            tracing::error!("cannot set up the protocol streams: {e}");
            return ExitCode::FAILURE;
        }
    };
    match serve(&provider, std::io::BufReader::new(input), output) {
        Ok(ServeEnd::InputClosed) => ExitCode::SUCCESS,
        Ok(ServeEnd::Truncated) => ExitCode::FAILURE,
        Err(e) => {
            tracing::error!("cannot write to the protocol stream: {e}");
            ExitCode::FAILURE
        }
    }
}
