//! The local provider as a library: [`provider`] is what the `nixops4-resources-local`
//! program serves, and what the language server asks for its schemas without starting a
//! process. [`read_document`] reads a state file for display.

#![deny(clippy::print_stdout)]

mod exec;
mod file;
mod memo;
mod paths;
mod state_file;
mod timestamp;

use nixops4_provider_sdk::Provider;

pub use state_file::read_document;

pub fn provider() -> Provider {
    Provider::new(
        "nixops4-resources-local",
        env!("CARGO_PKG_VERSION"),
        "Resources on the machine that runs NixOps4: files, commands, remembered values and state files.",
    )
    .with_type("file", file::LocalFile)
    .with_type("exec", exec::LocalExec)
    .with_type("memo", memo::LocalMemo)
    .with_type("state_file", state_file::LocalStateFile::default())
}
