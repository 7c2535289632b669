//! `nixops4-resources-ssh`, the SSH provider: `ssh.keypair` makes key pairs, `ssh.nixos`
//! deploys NixOS systems to machines over SSH. Deployments declare it as
//! `providers.ssh = { executable = ".../bin/nixops4-resources-ssh"; };`.

#![deny(clippy::print_stdout)]

use std::process::ExitCode;

fn main() -> ExitCode {
    nixops4_provider_sdk::run(nixops4_resources_ssh::provider())
}
