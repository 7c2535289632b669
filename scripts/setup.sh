#!/usr/bin/env bash
# Installs what building and testing NixOps4 needs on a fresh Debian machine (Nix among
# it: Debian's nix-bin), and checks the Rust toolchain (which the machine image provides).
# Safe to run again.
set -euo pipefail

missing=()
command -v nix >/dev/null || missing+=(nix-bin)
command -v cc >/dev/null || missing+=(build-essential)
command -v python3 >/dev/null || missing+=(python3)
command -v git >/dev/null || missing+=(git)
command -v npm >/dev/null || missing+=(nodejs npm)
if ((${#missing[@]})); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: please install: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

# Create the Nix store's database now: tests start many Nix processes at once, and on a
# fresh store they race to create it ("SQLite database is busy").
NIX_CONFIG="experimental-features = nix-command flakes" nix eval --expr 1 >/dev/null

if ! command -v cargo >/dev/null; then
  echo "setup: cargo not found: install Rust 1.89 or later (https://rustup.rs), then run this again" >&2
  exit 1
fi
for tool in clippy fmt; do
  if ! cargo "$tool" --version >/dev/null 2>&1; then
    echo "setup: cargo $tool is missing: rustup component add clippy rustfmt" >&2
    exit 1
  fi
done
