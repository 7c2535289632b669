#!/usr/bin/env bash
# The main job: set up, build, and apply the example deployment in examples/hello with
# its local state (examples/hello/.nixops4/), then show that a second plan is empty.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release -q -p nixops4 -p nixops4-eval -p nixops4-resources-local
target=${CARGO_TARGET_DIR:-target}
case $target in /*) ;; *) target=$PWD/$target ;; esac
nixops4=$target/release/nixops4
cd examples/hello
"$nixops4" apply
"$nixops4" plan
echo "report: $("$nixops4" output report)"
