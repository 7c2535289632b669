#!/usr/bin/env bash
# Evaluator scale benchmark (see eval/benches/eval_scale.rs). With `--current-nix`, also
# against current Nix in the sid chroot (needs root; see scripts/setup-current-nix.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p nixops4-eval
export NIXOPS4_EVAL_PROGRAM=$PWD/target/release/nixops4-eval
cargo bench -q -p nixops4-eval --bench eval_scale
if [ "${1:-}" = --current-nix ]; then
  NIXOPS4_TEST_NIX=$(scripts/setup-current-nix.sh) cargo bench -q -p nixops4-eval --bench eval_scale
fi
