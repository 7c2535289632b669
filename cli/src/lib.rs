//! The `nixops4` command-line program: plan, apply, destroy, operations and state
//! commands over the engine in `nixops4-core`.
//!
//! Empty until the engine and CLI issue lands; nothing here works yet.
