//! The NixOps4 engine, shared by the `nixops4` CLI and the language server: plans,
//! applies, destroys and custom operations over one deployment, with its state.
//!
//! - [`engine`]: the session (evaluator, providers, state) and the apply scheduler;
//! - [`plan`]: deciding create / update / replace / delete / no change;
//! - [`state`]: the state document, its storage through a provider, and the lock;
//! - [`providers`] and [`provider_client`]: running provider programs;
//! - [`events`]: what front ends render while work runs.
//!
//! Invariant: this crate never prints; front ends render what it returns and emits.

#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

pub mod engine;
pub mod error;
pub mod events;
pub mod plan;
pub mod provider_client;
pub mod providers;
pub mod state;

pub use nixops4_eval::client::EvalOptions;
pub use nixops4_eval::protocol::{Position, ResourcePath};
