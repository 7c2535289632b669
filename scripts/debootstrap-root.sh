#!/usr/bin/env bash
# Makes a minimal Debian root in DIR (debootstrap's minbase, with ca-certificates and the
# machine's resolv.conf), from the mirror the machine's apt uses; installs debootstrap if
# needed. Used by setup-current-nix.sh and setup-test-hosts.sh. Needs root.
#
#   scripts/debootstrap-root.sh SUITE DIR
set -euo pipefail
suite=${1:?usage: debootstrap-root.sh SUITE DIR}
dir=${2:?usage: debootstrap-root.sh SUITE DIR}
command -v debootstrap >/dev/null || {
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2
}
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n 1)
mirror=${mirror:-http://deb.debian.org/debian}
# Never remove a root that still has something mounted in it (/dev, /tmp...).
if awk -v d="$(realpath -m "$dir")/" 'index($2 "/", d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
  echo "debootstrap-root: $dir has mounts inside; unmount them (umount -R) first" >&2
  exit 1
fi
rm -rf "$dir"
mkdir -p "$dir"
debootstrap --variant=minbase --include=ca-certificates "$suite" "$dir" "$mirror" >&2
cp /etc/resolv.conf "$dir/etc/" 2>/dev/null || true
