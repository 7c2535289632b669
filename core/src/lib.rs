//! The NixOps4 engine, shared by the `nixops4` CLI and the language server.
//!
//! Today it holds the provider client ([`provider_client`]): starting provider programs
//! and talking the provider protocol to them. The deployment model, plans, the apply
//! scheduler, state and operations arrive with the engine issue.
//!
//! Invariant: this crate never prints; front ends render what it returns.

pub mod provider_client;
