#!/usr/bin/env bash
# Engine scale benchmark: `nixops4 apply` and `nixops4 plan` of 1,000 and 10,000
# independent local.file resources, and of a chain of 1,000 (each file's contents use the
# previous one's path, so the engine's loop goes round once per file: its worst case),
# against the physical limit: the same creates sent straight to one local provider
# process (core/benches/provider_roundtrip.rs).
# Prints seconds and the ratio engine/direct.
# Usage: bench/engine-scale.sh [N...]  (independent sizes; CHAIN=n sets the chain's length)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p nixops4 -p nixops4-eval -p nixops4-resources-local
bin=$PWD/target/release/nixops4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
# measure <shape> <count>: shape is `independent` or `chain`.
measure() {
  local shape=$1 count=$2 dir=$work/$1-$2
  mkdir -p "$dir"
  {
    echo '{ outputs = { self }: { nixops4Deployments.default = { resources, ... }: { resources = {'
    for ((i = 0; i < count; i++)); do
      if [ "$shape" = chain ] && [ "$i" -gt 0 ]; then
        contents="resources.f$((i - 1)).path"
      else
        contents="\"file $i\""
      fi
      echo "  f$i = { type = \"local.file\"; inputs = { name = \"out/f$i.txt\"; contents = $contents; }; };"
    done
    echo '}; }; }; }'
  } > "$dir/flake.nix"
  local start apply plan direct
  start=$(now)
  (cd "$dir" && "$bin" apply --yes --log-format json > /dev/null)
  apply=$(echo "$(now) - $start" | bc)
  start=$(now)
  (cd "$dir" && "$bin" plan > /dev/null)
  plan=$(echo "$(now) - $start" | bc)
  direct=$(BENCH_COUNT=$count cargo bench -q -p nixops4-core --bench provider_roundtrip 2>/dev/null \
    | awk '/provider local.file create/ { print $6 / 1000 }')
  printf '%6d resources (%-11s): apply %7.2f s, plan (no changes) %6.2f s, direct provider creates %6.2f s, apply/direct %.2f\n' \
    "$count" "$shape" "$apply" "$plan" "$direct" "$(echo "$apply / $direct" | bc -l)"
}
for count in ${@:-1000 10000}; do
  measure independent "$count"
done
measure chain "${CHAIN:-1000}"
