#!/usr/bin/env bash
# Starts or stops one test host for machine deployments: an overlay root over the base of
# scripts/setup-test-hosts.sh, with its own Nix store, fresh host keys, and
# its sshd on ADDRESS:22 (a loopback address), so every byte stays on this machine. Needs
# root. The tests call it; by hand:
#
#   scripts/test-host.sh start DIR 127.0.3.1 client_key.pub   # the root is DIR/root
#   scripts/test-host.sh stop DIR                             # stops it and removes DIR
#
# The host has no systemd: activation there runs without a transient unit
# (docs/machines.md says what differs on NixOS).
set -euo pipefail
base=${NIXOPS4_TEST_HOSTS_BASE:-/var/cache/nixops4/test-hosts/base}
command=${1:?usage: test-host.sh start DIR ADDRESS [AUTHORIZED_KEYS] | stop DIR}
dir=${2:?the host directory}
root=$dir/root

start() {
  local address=$1 authorized=${2:-}
  [ -e "$base/.complete" ] || { echo "test-host: no base at $base; run scripts/setup-test-hosts.sh" >&2; exit 1; }
  mkdir -p "$dir/upper" "$dir/work" "$root"
  mount -t overlay overlay -o "lowerdir=$base,upperdir=$dir/upper,workdir=$dir/work" "$root"
  mount -t proc proc "$root/proc"
  # A chroot cannot reboot: a stand-in `reboot` gives the host a new boot id (a file of
  # its own over /proc's) and restarts its sshd, which is what the deployer looks for.
  cp /proc/sys/kernel/random/boot_id "$dir/boot_id"
  mount --bind "$dir/boot_id" "$root/proc/sys/kernel/random/boot_id"
  mount --rbind /dev "$root/dev"
  mkdir -p "$root/run/sshd" "$root/root/.ssh"
  chmod 0700 "$root/root/.ssh"
  chroot "$root" ssh-keygen -A >/dev/null
  cat > "$root/usr/local/sbin/reboot" <<'REBOOT'
#!/bin/sh
# Stand-in for reboot on a test host (scripts/test-host.sh).
kill "$(cat /run/sshd.pid)"
sleep 1
cat /proc/sys/kernel/random/uuid > /proc/sys/kernel/random/boot_id
/usr/sbin/sshd
REBOOT
  chmod +x "$root/usr/local/sbin/reboot"
  printf '127.0.0.1 localhost %s\n' "$(hostname)" > "$root/etc/hosts"
  cat > "$root/etc/ssh/sshd_config.d/nixops4-test-host.conf" <<CONF
ListenAddress $address:22
PidFile /run/sshd.pid
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
CONF
  if [ -n "$authorized" ]; then
    install -m 0600 "$authorized" "$root/root/.ssh/authorized_keys"
    install -d -m 0700 -o 1000 -g 1000 "$root/home/deployer/.ssh"
    install -m 0600 -o 1000 -g 1000 "$authorized" "$root/home/deployer/.ssh/authorized_keys"
  fi
  chroot "$root" /usr/sbin/sshd
}

stop() {
  # Every process whose root is this host: sshd, sessions, activations.
  local real pids
  real=$(readlink -f "$root")
  for _ in 1 2 3; do
    pids=$(for p in /proc/[0-9]*; do [ "$(readlink "$p/root" 2>/dev/null)" = "$real" ] && echo "${p#/proc/}"; done || true)
    [ -z "$pids" ] && break
    kill -9 $pids 2>/dev/null || true
    sleep 0.2
  done
  umount -R "$root/dev" 2>/dev/null || true
  umount -R "$root/proc" 2>/dev/null || true
  umount "$root" 2>/dev/null || true
  # Never remove a directory that still has something mounted in it (/dev above all).
  if awk -v d="$(realpath -m "$dir")/" 'index($2 "/", d) == 1 { found = 1 } END { exit !found }' /proc/mounts; then
    echo "test-host: $dir still has mounts inside; not removing it" >&2
    exit 1
  fi
  rm -rf "$dir"
}

case $command in
  start) start "${3:?the host address}" "${4:-}" ;;
  stop) stop ;;
  *) echo "test-host: unknown command $command" >&2; exit 2 ;;
esac
