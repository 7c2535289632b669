//! `nixops4-resources-testing`: a real provider for tests of what the local provider cannot
//! show. Its `secret` type has a secret output, to check that secrets stay out of plans
//! and messages. Not for deployments.

#![deny(clippy::print_stdout)]

use std::process::ExitCode;

use nixops4_provider_sdk::{Context, Extant, Provider, ResourceType, Result, TypeInfo, run};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

struct Secret;

/// Inputs of `testing.secret`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SecretInputs {
    /// What the secret is for; the token is derived from it.
    name: String,
}

/// Outputs of `testing.secret`.
#[derive(Serialize, Deserialize, JsonSchema)]
struct SecretOutputs {
    /// The secret token (marked secret).
    token: String,
    /// A value that may be shown.
    public: String,
}

fn outputs(inputs: &SecretInputs) -> SecretOutputs {
    SecretOutputs {
        token: format!("s3cr3t-token-for-{}", inputs.name),
        public: format!("public-{}", inputs.name),
    }
}

impl ResourceType for Secret {
    type Inputs = SecretInputs;
    type Outputs = SecretOutputs;

    fn info(&self) -> TypeInfo {
        TypeInfo::new("A made-up credential with a secret token.").secret_output("token")
    }

    fn create(&self, inputs: SecretInputs, _: &Context) -> Result<SecretOutputs> {
        Ok(outputs(&inputs))
    }

    fn update(
        &self,
        _: Extant<SecretInputs, SecretOutputs>,
        inputs: SecretInputs,
        _: &Context,
    ) -> Result<SecretOutputs> {
        Ok(outputs(&inputs))
    }

    fn destroy(&self, _: Extant<SecretInputs, SecretOutputs>) -> Result<()> {
        Ok(())
    }
}

fn main() -> ExitCode {
    run(Provider::new(
        "nixops4-resources-testing",
        env!("CARGO_PKG_VERSION"),
        "Resources for NixOps4's own tests.",
    )
    .with_type("secret", Secret))
}
