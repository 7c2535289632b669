//! `nixops4-lsp`, the language server: completion, hover, diagnostics and plan previews
//! for deployment expressions, and the headless `--apply` mode for CI.
//!
//! Empty until the language server issues land; nothing here works yet.
