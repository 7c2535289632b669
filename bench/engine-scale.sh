#!/usr/bin/env bash
# Engine scale benchmark: `nixops4 apply` and `nixops4 plan` of 1,000 and 10,000
# independent local.file resources, against the physical limit: the same creates sent
# straight to one local provider process (core/benches/provider_roundtrip.rs).
# Prints seconds and the ratio engine/direct. Usage: bench/engine-scale.sh [N...]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p nixops4 -p nixops4-eval -p nixops4-resources-local
bin=$PWD/target/release/nixops4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
now() { date +%s.%N; }
for n in "${@:-1000 10000}"; do
  for count in $n; do
    dir=$work/n$count
    mkdir -p "$dir"
    {
      echo '{ outputs = { self }: { nixops4Deployments.default = { resources, ... }: { resources = {'
      for ((i = 0; i < count; i++)); do
        echo "  f$i = { type = \"local.file\"; inputs = { name = \"out/f$i.txt\"; contents = \"file $i\"; }; };"
      done
      echo '}; }; }; }'
    } > "$dir/flake.nix"
    start=$(now)
    (cd "$dir" && "$bin" apply --yes --log-format json > /dev/null)
    apply=$(echo "$(now) - $start" | bc)
    start=$(now)
    (cd "$dir" && "$bin" plan > /dev/null)
    plan=$(echo "$(now) - $start" | bc)
    direct=$(BENCH_COUNT=$count cargo bench -q -p nixops4-core --bench provider_roundtrip 2>/dev/null \
      | awk '/provider local.file create/ { print $6 / 1000 }')
    printf '%6d resources: apply %7.2f s, plan (no changes) %6.2f s, direct provider creates %6.2f s, apply/direct %.2f\n' \
      "$count" "$apply" "$plan" "$direct" "$(echo "$apply / $direct" | bc -l)"
  done
done
