//! The evaluator: `nixops4-eval`, a separate process that keeps one Nix evaluation alive
//! for a whole plan or apply, and [`client::EvalClient`], which the engine uses to talk
//! to it.
//!
//! The process drives `nix repl` (see `src/bin/nixops4-eval/` and `src/driver.nix`):
//! values that were evaluated stay evaluated, and a resource that needs another one's
//! outputs answers "waiting for" until the engine provides them. How this works on each
//! Nix version is described in `docs/evaluation.md`.

pub mod client;
pub mod protocol;
