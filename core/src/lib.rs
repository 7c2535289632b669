//! The NixOps4 engine, shared by the `nixops4` CLI and the language server: plans,
//! applies, destroys and custom operations over one deployment, with its state.
//!
//! - [`engine`]: the session: the evaluator, the providers, where the state is, and the
//!   lock around everything that changes it;
//! - `schedule` and `run`: the one loop every plan, apply, destroy and refresh runs, as a
//!   goal graph without I/O and the driver that performs what it decides;
//! - `apply` (plan, apply, destroy), `resume` (after a crash), `operations` (custom
//!   operations, refresh), `admin` (state show/list/rm/mv), [`scripts`] (what to run for
//!   a deployment's scripts, for a front end to run): what a session does;
//! - [`plan`]: deciding create / update / replace / delete / no change;
//! - [`state`]: the state document, its storage through a provider, and the lock;
//! - [`providers`] and [`provider_client`]: running provider programs, and `calls`, the
//!   requests made about resources;
//! - [`events`]: what front ends render while work runs;
//! - [`secrets`]: the one redaction step every text leaving the engine passes through.
//!
//! Invariant: this crate never prints; front ends render what it returns and emits.

#![deny(clippy::print_stdout, clippy::print_stderr, clippy::dbg_macro)]

mod admin;
mod apply;
mod calls;
pub mod engine;
pub mod error;
pub mod events;
mod operations;
pub mod plan;
pub mod provider_client;
pub mod providers;
mod resume;
mod run;
mod schedule;
pub mod scripts;
pub mod secrets;
pub mod state;
pub mod transfer;

pub use nixops4_eval::client::EvalOptions;
pub use nixops4_eval::protocol::{
    DeclaredScript, LockFileChange, ModuleOption, OptionDeclaration, Position, ResourcePath,
};
