#!/usr/bin/env bash
# Build benchmark: `nixops4 apply` of N local.file resources (default 1,000) whose
# contents name the outputs of D derivations (default 10, each shared by N/D resources),
# against the same deployment with plain strings instead. Realising adds one build per
# round, not per resource: the difference should be about the builds themselves, not
# grow with N. Also times a second apply of the derivation form (nothing to build).
# Usage: bench/builds-scale.sh [N] [D]
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-1000}
derivations=${2:-10}
cargo build --release -q -p nixops4 -p nixops4-eval -p nixops4-resources-local
bin=$PWD/target/release/nixops4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export NIX_CONFIG="substituters =
sandbox = false"
now() { date +%s.%N; }
# deployment <dir> <with derivations: 1|0>
deployment() {
  local dir=$1 built=$2
  mkdir -p "$dir"
  {
    echo '{ outputs = { self }: { nixops4Deployments.default = { resources, ... }: let'
    for ((d = 0; d < derivations; d++)); do
      echo "  d$d = builtins.derivation { name = \"bench-$d\"; system = \"$(uname -m)-linux\"; builder = \"/bin/sh\"; nonce = \"$dir\"; args = [ \"-c\" \"echo $d > \$out\" ]; };"
    done
    echo 'in { resources = {'
    for ((i = 0; i < count; i++)); do
      if [ "$built" = 1 ]; then contents="\"\${d$((i % derivations))}\""; else contents="\"file $i\""; fi
      echo "  f$i = { type = \"local.file\"; inputs = { name = \"out/f$i.txt\"; contents = $contents; }; };"
    done
    echo '}; }; }; }'
  } > "$dir/flake.nix"
}
seconds() { local start; start=$(now); (cd "$1" && "$bin" apply --yes --log-format json > "$1.log"); echo "$(now) - $start" | bc; }
deployment "$work/plain" 0
deployment "$work/built" 1
plain=$(seconds "$work/plain")
built=$(seconds "$work/built")
builds=$(grep -c '"event":"buildStarted"' "$work/built.log" || true)
again=$(seconds "$work/built")
printf '%d resources: apply without derivations %.2f s; with %d shared derivations %.2f s (%d built, +%.2f s); second apply %.2f s\n' \
  "$count" "$plain" "$derivations" "$built" "$builds" "$(echo "$built - $plain" | bc)" "$again"
