//! `local.memo`: remembers the value it was created with, whatever the inputs say later.
//!
//! Useful for values that must not change once chosen (an initial version, a generated
//! name). Needs state, which is where the value lives.

use nixops4_provider_sdk::{Context, Extant, ProviderError, ResourceType, Result, TypeInfo};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub struct LocalMemo;

/// Inputs of `local.memo`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoInputs {
    /// The value to remember. Only the value at creation counts; later changes are ignored.
    pub initialize_with: Value,
}

/// Outputs of `local.memo`.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct MemoOutputs {
    /// The value the resource was created with.
    pub value: Value,
}

impl ResourceType for LocalMemo {
    type Inputs = MemoInputs;
    type Outputs = MemoOutputs;

    fn info(&self) -> TypeInfo {
        TypeInfo::new(
            "Remembers the value it was created with; later changes of the input are ignored.",
        )
        .requires_state()
    }

    fn create(&self, inputs: MemoInputs, _: &Context) -> Result<MemoOutputs> {
        Ok(MemoOutputs {
            value: inputs.initialize_with,
        })
    }

    fn update(
        &self,
        previous: Extant<MemoInputs, MemoOutputs>,
        _: MemoInputs,
        _: &Context,
    ) -> Result<MemoOutputs> {
        previous.outputs.ok_or_else(|| {
            ProviderError::invalid_request("memo was updated without its recorded value")
        })
    }

    fn destroy(&self, _: Extant<MemoInputs, MemoOutputs>) -> Result<()> {
        Ok(())
    }
}
