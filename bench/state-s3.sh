#!/usr/bin/env bash
# State on Garage against local state: `nixops4 apply` of N files (default 1,000) with
# state in a bucket of a real Garage (scripts/setup-garage.sh) and with a local state
# file, in one run; prints both times, their ratio, and the S3 requests per resource
# counted in Garage's own request log (tests/tests/state_s3_bench.rs does the work).
# Usage: bench/state-s3.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
NIXOPS4_GARAGE=${NIXOPS4_GARAGE:-$(scripts/setup-garage.sh)}
export NIXOPS4_GARAGE
cargo build --release -q -p nixops4 -p nixops4-eval -p nixops4-resources-local -p nixops4-resources-s3
NIXOPS4_S3_BENCH_COUNT=${1:-1000} cargo test --release -q -p nixops4-tests --test state_s3_bench \
  -- --nocapture 2>&1 | grep -E 'resources: apply|panicked|FAILED'
