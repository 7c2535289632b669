//! The NixOps4 engine: the deployment model, plans, the apply scheduler, state and
//! custom operations, shared by the `nixops4` CLI and the language server.
//!
//! Empty until the engine issue (plan/apply/destroy/operations) lands; nothing here works yet.
