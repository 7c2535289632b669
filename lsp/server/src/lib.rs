//! `nixops4-lsp`, the language server: completion, hover, diagnostics and plan previews
//! for deployment expressions, and the headless `--apply` mode for CI.
//!
//! Empty until the language server issues land: the static analysis it will serve lives
//! in `nixops4-analysis` (lsp/analysis) and works today; the server does not yet.
