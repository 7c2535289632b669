#!/usr/bin/env bash
# State encryption cost: `nixops4 apply` and `nixops4 plan` of N independent local.file
# resources with plain state, then with state encrypted for one age recipient, in one run,
# as a ratio; the state file's size both ways; and `nixops4 state rekey` of the encrypted
# state to a second recipient.
# The key pair below exists for this benchmark only; it protects nothing.
# Usage: bench/state-encryption.sh [N...]  (default 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p nixops4 -p nixops4-eval -p nixops4-resources-local
bin=$PWD/target/release/nixops4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
recipient=age1lufw6vzh496syu84l8n9h09ght36u4wdy37pekswq6jdcm3c4f9q7869n2
echo AGE-SECRET-KEY-1UL80F56CMY9SZ90LL3DKSM4NRAU9S5J66VYFSAH3UZ0E0MK0T6TSHHM4Z3 > "$work/identity.txt"
now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
# measure <count> <plain|encrypted>: prints "apply plan bytes"
measure() {
  local count=$1 how=$2 dir=$work/$2-$1
  mkdir -p "$dir"
  {
    echo '{ outputs = { self }: { nixops4Deployments.default = { resources, ... }: { resources = {'
    for ((i = 0; i < count; i++)); do
      echo "  f$i = { type = \"local.file\"; inputs = { name = \"out/f$i.txt\"; contents = \"file $i\"; }; };"
    done
    echo '}; }; }; }'
  } > "$dir/flake.nix"
  local -a env=()
  if [ "$how" = encrypted ]; then
    env=(NIXOPS4_STATE_RECIPIENTS="$recipient" NIXOPS4_STATE_IDENTITY_FILE="$work/identity.txt")
  fi
  local start apply plan
  start=$(now)
  (cd "$dir" && env "${env[@]}" "$bin" apply --yes --log-format json > /dev/null)
  apply=$(since "$start")
  start=$(now)
  (cd "$dir" && env "${env[@]}" "$bin" plan > /dev/null)
  plan=$(since "$start")
  echo "$apply $plan $(stat -c %s "$dir/.nixops4/default.state.jsonl")"
}
for count in ${@:-1000}; do
  read -r pa pp pb < <(measure "$count" plain)
  read -r ea ep eb < <(measure "$count" encrypted)
  printf '%6d resources: apply plain %6.2f s, encrypted %6.2f s (%.2fx); plan plain %5.2f s, encrypted %5.2f s (%.2fx); state %d bytes plain, %d encrypted (%.2fx)\n' \
    "$count" "$pa" "$ea" "$(echo "$ea / $pa" | bc -l)" "$pp" "$ep" "$(echo "$ep / $pp" | bc -l)" \
    "$pb" "$eb" "$(echo "$eb / $pb" | bc -l)"
  dir=$work/encrypted-$count
  events=$(wc -l < "$dir/.nixops4/default.state.jsonl")
  start=$(now)
  (cd "$dir" && NIXOPS4_STATE_RECIPIENTS="$recipient" NIXOPS4_STATE_IDENTITY_FILE="$work/identity.txt" "$bin" state rekey 2> /dev/null)
  printf '%6d resources: state rekey of %d events %.2f s\n' "$count" "$events" "$(since "$start")"
done
