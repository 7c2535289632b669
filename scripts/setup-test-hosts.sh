#!/usr/bin/env bash
# Makes the base root of the test hosts that machine deployments are tested on: a Debian
# bookworm root with OpenSSH's server and Nix, made once with debootstrap (about 1.5 min)
# and kept in a fixed directory. Each test host is an overlay over it
# (scripts/test-host.sh). Needs root. Prints the base's path on stdout.
#
#   NIXOPS4_TEST_HOSTS_BASE=$(scripts/setup-test-hosts.sh) cargo test -p nixops4-tests --test machines
set -euo pipefail
base=${NIXOPS4_TEST_HOSTS_BASE:-/var/cache/nixops4/test-hosts/base}

if [ "$(id -u)" -ne 0 ]; then
  echo "setup-test-hosts: needs root (debootstrap, chroot, mount)" >&2
  exit 1
fi
# The deployer's side: ssh, ssh-keygen and ssh-keyscan.
command -v ssh-keyscan >/dev/null || {
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-client >&2
}
if [ ! -e "$base/.complete" ]; then
  "$(dirname "$0")/debootstrap-root.sh" bookworm "$base"
  mount -t proc proc "$base/proc"
  mount --rbind /dev "$base/dev"
  trap 'umount -R "$base/dev"; umount "$base/proc"' EXIT
  chroot "$base" apt-get update -qq >&2
  # nix-bin through debootstrap's --include fails on a virtual dependency; apt-get resolves it.
  DEBIAN_FRONTEND=noninteractive chroot "$base" apt-get install -y -qq --no-install-recommends \
    openssh-server nix-bin procps sudo >&2
  chroot "$base" apt-get clean
  # Root in a chroot builds without build users; deployments copy unsigned paths.
  mkdir -p "$base/etc/nix"
  printf 'build-users-group =\nexperimental-features = nix-command\nsandbox = false\n' > "$base/etc/nix/nix.conf"
  # A user that is not root, for deployments through sudo (Nix, too, runs as root through
  # sudo, so the user need not be trusted by Nix).
  chroot "$base" useradd --create-home --shell /bin/sh deployer
  echo 'deployer ALL=(ALL) NOPASSWD: ALL' > "$base/etc/sudoers.d/deployer"
  chmod 0440 "$base/etc/sudoers.d/deployer"
  # Each host makes its own host keys.
  rm -f "$base"/etc/ssh/ssh_host_*
  touch "$base/.complete"
fi
echo "$base"
