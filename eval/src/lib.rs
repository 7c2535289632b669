//! The evaluator: a separate process that keeps one Nix evaluation alive for a whole
//! plan or apply, and the client the engine uses to talk to it.
//!
//! Empty until the evaluator issue lands; nothing here works yet.
