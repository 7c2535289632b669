#!/usr/bin/env bash
# The main job: set up, build, and run the example deployment in examples/local-files
# (three files created, updated, backed up and deleted through the real local provider,
# with state in a local state file).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p nixops4-resources-local
examples/local-files/run.sh "${CARGO_TARGET_DIR:-target}/release/nixops4-resources-local"
