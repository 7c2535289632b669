#!/usr/bin/env bash
# Provider round-trip benchmark: local.file create/update through one provider process,
# against the same atomic writes done in-process. BENCH_COUNT sets the number of files.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p nixops4-resources-local
cargo bench -q -p nixops4-core --bench provider_roundtrip
