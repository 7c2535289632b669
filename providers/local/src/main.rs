//! `nixops4-resources-local`, the local provider: resources on the machine that runs
//! NixOps4. Deployments use them as `local.file`, `local.exec`, `local.memo` and
//! `local.state_file`; the inputs and outputs match upstream NixOps4's local provider, so
//! deployments written for it keep working.
//!
//! Each type lives in its own module of the library; the SDK does the protocol.

#![deny(clippy::print_stdout)]

use std::process::ExitCode;

fn main() -> ExitCode {
    nixops4_provider_sdk::run(nixops4_resources_local::provider())
}
