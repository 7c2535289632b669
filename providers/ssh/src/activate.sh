#!/bin/sh
# Activates a NixOS system on the machine itself, so that a dropped SSH session cannot stop
# it halfway: NixOps4 starts it detached (in a transient systemd unit where the machine
# has systemd) and reads its progress from DIR/status over new connections.
#
#   activate.sh DIR ACTION SYSTEM CONFIRM_TIMEOUT_SECONDS
#
# Status lines: `activating`, `confirm` (waiting for NixOps4 to delete DIR/canary, which
# proves a new connection got through), `done CODE GENERATION`, `rolled-back REASON CODE`.
# Rollback (deploy-rs's "magic rollback") happens when switch-to-configuration fails, or
# when nobody confirms within the timeout: the profile goes back to the generation it had,
# the new one is deleted, and the system that was active is activated again.
dir=$1 action=$2 system=$3 timeout=$4
exec >"$dir/log" 2>&1
profile=/nix/var/nix/profiles/system

status() {
  printf '%s\n' "$*" >"$dir/status.tmp" && mv "$dir/status.tmp" "$dir/status"
}
generation() {
  readlink "$profile" 2>/dev/null | sed -n 's/^system-\([0-9]*\)-link$/\1/p'
}

if [ "$action" = test ]; then
  previous=$(readlink -f /run/current-system 2>/dev/null)
else
  previous=$(readlink -f "$profile" 2>/dev/null)
fi
old_generation=$(generation)
status activating
if [ "$action" != test ]; then
  nix-env -p "$profile" --set "$system" || { status rolled-back profile 1; exit 0; }
fi
new_generation=$(generation)

rollback() {
  if [ "$action" != test ] && [ "$new_generation" != "$old_generation" ]; then
    if [ -n "$old_generation" ]; then
      nix-env -p "$profile" --switch-generation "$old_generation"
      nix-env -p "$profile" --delete-generations "$new_generation"
    else
      rm -f "$profile" "$profile-$new_generation-link"
    fi
  fi
  if [ -n "$previous" ] && [ -x "$previous/bin/switch-to-configuration" ]; then
    "$previous/bin/switch-to-configuration" "$action"
  fi
}

"$system/bin/switch-to-configuration" "$action"
code=$?
case $code in
  0) ;;
  100) status done 100 "$new_generation"; exit 0 ;;
  *) rollback; status rolled-back activation "$code"; exit 0 ;;
esac
if [ "$action" = boot ]; then
  status done 0 "$new_generation"
  exit 0
fi
: >"$dir/canary"
status confirm
ticks=0
while [ -e "$dir/canary" ]; do
  if [ "$ticks" -ge $((timeout * 5)) ]; then
    rm -f "$dir/canary"
    rollback
    status rolled-back unreachable 0
    exit 0
  fi
  sleep 0.2
  ticks=$((ticks + 1))
done
status done 0 "$new_generation"
