#!/usr/bin/env bash
# Every check CI runs: formatting, lints (warnings are errors), the whole test suite
# against the machine's Nix (the Neovim plugin on Neovim 0.7.2 and 0.11.4, installed by
# setup-neovim.sh; state in object storage on a real Garage, installed once by
# setup-garage.sh, about 10 minutes), the VS Code extension's build, unit tests, .vsix
# and end-to-end test in code-server (editors/vscode/e2e, which refreshes docs/screenshots), and the
# evaluator's tests and the end-to-end tests of builds, scripts and lock files
# (tests/tests/{builds,cli_scripts,flake_lock}.rs, run inside the root) again against
# current Nix (a sid chroot, see setup-current-nix.sh;
# skipped with NIXOPS4_SKIP_CURRENT_NIX=1, for machines where you are not root).
# Machine deployments (tests/tests/machines.rs) run on sshd test hosts made over a
# debootstrap base that setup-test-hosts.sh caches; they need root, as CI is.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
NIXOPS4_NVIM=${NIXOPS4_NVIM:-$(scripts/setup-neovim.sh)}
export NIXOPS4_NVIM
# Garage, for state in object storage (tests/tests/state_s3.rs).
NIXOPS4_GARAGE=${NIXOPS4_GARAGE:-$(scripts/setup-garage.sh)}
export NIXOPS4_GARAGE
# sshd test hosts with their own Nix store, for machine deployments (tests/tests/machines.rs).
NIXOPS4_TEST_HOSTS_BASE=$(scripts/setup-test-hosts.sh)
export NIXOPS4_TEST_HOSTS_BASE
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests, with $(nix --version)"
# The end-to-end tests drive the binaries; `cargo test` builds only those of packages
# with integration tests, so build them all first.
cargo build --workspace --locked --bins
cargo test --workspace --locked
echo "== the VS Code extension: compile, unit tests, package"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
(
  cd editors/vscode
  npm ci --no-audit --no-fund
  npm run compile
  NIXOPS4_LSP="$target_dir/debug/nixops4-lsp" npm test
  npm run package
)
echo "== the VS Code extension in code-server and headless Chromium"
editors/vscode/e2e/run.sh editors/vscode/nixops4.vsix "$target_dir/debug/nixops4-lsp"
if [ "${NIXOPS4_SKIP_CURRENT_NIX:-}" = 1 ]; then
  echo "== skipped: the evaluator's tests against current Nix (NIXOPS4_SKIP_CURRENT_NIX=1)"
else
  current_nix=$(scripts/setup-current-nix.sh)
  echo "== evaluator tests, with $($current_nix --version)"
  NIXOPS4_TEST_NIX=$current_nix cargo test --locked -p nixops4-eval
  echo "== builds, scripts and lock files, inside the current Nix root"
  NIXOPS4_TEST_NIX_ROOT=${current_nix%.nix} cargo test --locked -p nixops4-tests \
    --test builds --test cli_scripts --test flake_lock
fi
