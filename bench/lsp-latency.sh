#!/usr/bin/env bash
# Latency and memory of nixops4-lsp on a generated 2,000-resource deployment (see
# tests/benches/lsp_latency.rs). Set NIXOPS4_BENCH_NIL to a `nil` binary to measure that
# general Nix language server on the same file and keystrokes.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --quiet
cargo bench --quiet -p nixops4-tests --bench lsp_latency
