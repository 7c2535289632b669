//! The SSH provider as a library: [`provider`] is what the `nixops4-resources-ssh`
//! program serves: `ssh.keypair` (`keypair.rs`) and `ssh.nixos` (`nixos.rs`, with the
//! SSH session in `session.rs`, the deployment steps in `deploy.rs` and `activate.sh`, and
//! the uploaded keys in `keys.rs`).

#![deny(clippy::print_stdout)]

mod deploy;
mod keypair;
mod keys;
mod nixos;
mod session;

use nixops4_provider_sdk::Provider;

pub fn provider() -> Provider {
    Provider::new(
        "nixops4-resources-ssh",
        env!("CARGO_PKG_VERSION"),
        "SSH key pairs, and NixOS machines deployed over SSH.",
    )
    .with_type("keypair", keypair::KeyPair)
    .with_type("nixos", nixos::Nixos)
}
