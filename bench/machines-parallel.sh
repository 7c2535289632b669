#!/usr/bin/env bash
# Machine deployment benchmark: `nixops4 apply --parallelism 4` of 8 NixOS machines on
# sshd test hosts (scripts/test-host.sh, 127.0.3.1-8), one of them broken (its sshd is
# stopped), against the same apply to one machine. Each machine gets its own fake system
# (tests/fixtures/machines/fake-system.nix): copy, activation and confirmation, with the
# new connections these take. With 4 at a time, 8 machines should take about twice one
# machine, not eight times. Prints the ratio. Needs root.
# Usage: bench/machines-parallel.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
cargo build --release -q -p nixops4 -p nixops4-eval -p nixops4-resources-local -p nixops4-resources-ssh
bin=$repo/target/release
scripts/setup-test-hosts.sh >/dev/null
work=$(mktemp -d /tmp/machines-bench-XXXXXX)
hosts=()
cleanup() {
  local kept=
  for h in "${hosts[@]}"; do scripts/test-host.sh stop "$h" || kept=1; done
  # A host that could not be unmounted keeps the directory: /dev is mounted in it.
  [ -n "$kept" ] || rm -rf "$work"
}
trap cleanup EXIT
export NIX_CONFIG="substituters =
sandbox = false"
ssh-keygen -q -t ed25519 -N '' -C bench -f "$work/key"
for n in 1 2 3 4 5 6 7 8; do
  hosts+=("$work/host$n")
  scripts/test-host.sh start "$work/host$n" "127.0.3.$n" "$work/key.pub"
done
for n in 1 2 3 4 5 6 7 8; do
  until [ -s "$work/host$n/root/run/sshd.pid" ]; do sleep 0.1; done
done
kill "$(cat "$work/host8/root/run/sshd.pid")"
now() { date +%s.%N; }
# deployment <dir> <first host> <last host>
deployment() {
  local dir=$1
  mkdir -p "$dir"
  cp "$repo/nix/lib.nix" "$dir/nixops4-lib.nix"
  cp "$repo/tests/fixtures/machines/fake-system.nix" "$dir/"
  {
    echo '{ outputs = { self }: let nixops4 = import ./nixops4-lib.nix; fake = import ./fake-system.nix; in {'
    echo "  nixops4Deployments.default = { resources, ... }: {"
    echo "    providers.ssh = { executable = \"$bin/nixops4-resources-ssh\"; };"
    echo "    resources = {"
    for ((n = $2; n <= $3; n++)); do
      echo "      m$n = nixops4.nixos { ssh = { host = \"127.0.3.$n\"; privateKey = ''$(cat "$work/key")''; hostPublicKey = \"$(cut -d' ' -f1,2 "$work/host$n/root/etc/ssh/ssh_host_ed25519_key.pub")\"; }; system = fake { label = \"bench-${dir##*/}-$n\"; }; };"
    done
    echo '    }; }; }; }'
  } > "$dir/flake.nix"
}
# apply <dir>: seconds; a failure is expected where a host is broken
seconds() { local start; start=$(now); (cd "$1" && "$bin/nixops4" apply --yes --parallelism 4 > "$1.log" 2>&1 || true); echo "$(now) - $start" | bc; }
deployment "$work/one" 1 1
deployment "$work/eight" 1 8
one=$(seconds "$work/one")
eight=$(seconds "$work/eight")
deployed=$(for n in 1 2 3 4 5 6 7; do [ -e "$work/host$n/root/nix/var/nix/profiles/system" ] && echo "$n"; done | wc -l)
grep -q 'could not create m8' "$work/eight.log" || { echo "the broken host did not fail:"; cat "$work/eight.log"; exit 1; }
printf 'one machine: %.2f s; 8 machines at --parallelism 4, one broken: %.2f s (%d of 7 deployed); ratio %.2f\n' \
  "$one" "$eight" "$deployed" "$(echo "$eight / $one" | bc -l)"
