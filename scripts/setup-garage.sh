#!/usr/bin/env bash
# Installs Garage, the S3-compatible object store the tests of state in object storage
# run against (tests/tests/state_s3.rs, bench/state-s3.sh): `cargo install` of a pinned
# version with SQLite metadata and bundled C libraries, about 10 minutes on two cores,
# once; later runs find it and return at once. Prints the program's path, for
# NIXOPS4_GARAGE.
set -euo pipefail
version=2.5.0
root=${NIXOPS4_GARAGE_ROOT:-$HOME/.cargo}
garage=$root/bin/garage
if ! [ -x "$garage" ] || ! "$garage" --version 2>/dev/null | grep -q "$version"; then
  echo "== installing Garage $version into $root (once)" >&2
  cargo install garage --version "$version" --locked --root "$root" \
    --no-default-features --features bundled-libs,sqlite >&2
fi
echo "$garage"
