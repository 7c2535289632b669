//! `nixops4-resources-s3`, the S3 provider: `s3.object` keeps a deployment's state in
//! S3-compatible object storage (Garage, AWS S3, MinIO) and locks it with leases that
//! need no conditional writes (docs/architecture/004-state-in-object-storage.md).
//!
//! `sigv4` signs requests, `client` sends them, `credentials` finds the keys, `log` lays
//! the event log out in the bucket, `lock` is the lease lock, `codec` is where stored
//! bytes are encoded, and `object` is the resource type over them.

#![deny(clippy::print_stdout)]

mod client;
mod codec;
mod credentials;
mod lock;
mod log;
mod object;
mod sigv4;

use std::process::ExitCode;

use nixops4_provider_sdk::Provider;

fn main() -> ExitCode {
    nixops4_provider_sdk::run(
        Provider::new(
            "nixops4-resources-s3",
            env!("CARGO_PKG_VERSION"),
            "Deployment state in S3-compatible object storage.",
        )
        .with_type("object", object::S3Object::default()),
    )
}
