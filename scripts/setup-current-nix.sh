#!/usr/bin/env bash
# Makes current Nix (Debian sid's nix-bin, 2.34 at the time of writing) available for
# tests, next to the machine's Nix 2.8: a minimal sid chroot with nix-bin, and a wrapper
# that runs it with the temporary directory shared, so the evaluator's tests can drive it
# exactly like the host's `nix`. Needs root. Prints the wrapper's path on stdout.
#
#   NIXOPS4_TEST_NIX=$(scripts/setup-current-nix.sh) cargo test -p nixops4-eval
set -euo pipefail
root=${NIXOPS4_SID_ROOT:-/var/cache/nixops4/sid}
wrapper=$root.nix
tmp=${TMPDIR:-/tmp}

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-current-nix: needs root (debootstrap, chroot, mount)" >&2
  exit 1
fi
if [ ! -x "$root/usr/bin/nix" ]; then
  "$(dirname "$0")/debootstrap-root.sh" sid "$root"
  chroot "$root" apt-get -o Acquire::Check-Valid-Until=false update -qq >&2
  DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -qq --no-install-recommends nix-bin git >&2
fi
mountpoint -q "$root/proc" || mount -t proc proc "$root/proc"
mountpoint -q "$root/dev" || mount --rbind /dev "$root/dev"
mkdir -p "$root$tmp"
mountpoint -q "$root$tmp" || mount --bind "$tmp" "$root$tmp"
cat > "$wrapper" <<WRAPPER
#!/bin/sh
# Nix from the sid chroot $root; paths under $tmp are shared with the host.
exec chroot "$root" /usr/bin/nix --option build-users-group '' "\$@"
WRAPPER
chmod +x "$wrapper"
"$wrapper" --version >&2
# Create the store's database now: tests start many Nix processes at once, and on a
# fresh store they race to create it ("SQLite database is busy").
NIX_CONFIG="experimental-features = nix-command flakes" "$wrapper" eval --expr 1 >/dev/null
echo "$wrapper"
