//! `nixops4-resources-local`, the local provider: resources on the machine that runs
//! NixOps4. Deployments use them as `local.file`, `local.exec`, `local.memo` and
//! `local.state_file`; the inputs and outputs match upstream NixOps4's local provider, so
//! deployments written for it keep working.
//!
//! Each type lives in its own module; the SDK does the protocol.

#![deny(clippy::print_stdout)]

mod exec;
mod file;
mod memo;
mod paths;
mod state_file;
mod timestamp;

use std::process::ExitCode;

use nixops4_provider_sdk::{Provider, run};

fn main() -> ExitCode {
    run(Provider::new(
        "nixops4-resources-local",
        env!("CARGO_PKG_VERSION"),
        "Resources on the machine that runs NixOps4: files, commands, remembered values and state files.",
    )
    .with_type("file", file::LocalFile)
    .with_type("exec", exec::LocalExec)
    .with_type("memo", memo::LocalMemo)
    .with_type("state_file", state_file::LocalStateFile::default()))
}
