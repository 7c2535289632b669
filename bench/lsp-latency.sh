#!/usr/bin/env bash
# Latency and memory of nixops4-lsp while a user types into generated deployments of 2,000
# and 10,000 resources (see tests/benches/lsp_latency/ for the cases). Set
# NIXOPS4_BENCH_NIL to a `nil` binary to measure that general Nix language server on the
# same files and keystrokes, and NIXOPS4_BENCH_BASELINE to a nixops4-lsp built from another
# commit to measure it too, in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --quiet
cargo bench --quiet -p nixops4-tests --bench lsp_latency
