#!/usr/bin/env bash
# A deployment of three files, driven through the real local provider over the
# provider protocol, with state recorded in a local state file. Every request and
# response is printed, and the files are listed after each step.
#
# Until `nixops4 apply` exists (the engine issue), this script plays the engine's part:
# it sends what the engine will send. Run it from anywhere:
#   examples/local-files/run.sh [path/to/nixops4-resources-local]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
provider=${1:-$here/../../target/release/nixops4-resources-local}
# The script works in its output directory: make the provider's path absolute first.
case $provider in /*) ;; */*) provider=$PWD/$provider ;; esac
out=${NIXOPS4_EXAMPLE_OUT:-$here/out}
rm -rf "$out"
mkdir -p "$out"
cd "$out"

coproc PROVIDER { exec "$provider"; }
provider_pid=$PROVIDER_PID
bold='' plain=''
if [ -t 1 ]; then bold=$'\033[1m' plain=$'\033[0m'; fi
send() {
  printf '\n%s→ %s%s\n  %s\n' "$bold" "$1" "$plain" "$2"
  printf '%s\n' "$2" >&"${PROVIDER[1]}"
  IFS= read -r reply <&"${PROVIDER[0]}"
  printf '← %s\n' "$reply"
  case $reply in *'"errorResponse"'*) echo "unexpected error" >&2; exit 1 ;; esac
}
outputs_of() { # the outputProperties object of a create/update response
  local body=${reply#*'"outputProperties":'}
  printf '%s' "${body%\}\}}"
}
files() { printf '  files: %s\n' "$(cd "$out" && find . -type f | sort | tr '\n' ' ')"; }
state_resource='{"type":"state_file","inputProperties":{"name":"deployment.nixops4-state.jsonl"},"outputProperties":{}}'
record() { # event, patch
  send "record: $1" "{\"stateResourceEvent\":{\"resource\":$state_resource,\"event\":\"$1\",\"nixopsVersion\":\"0.1.0\",\"patch\":$2}}"
}

send "handshake" '{"handshakeRequest":{"protocolVersions":[0],"client":"examples/local-files"}}'
send "create the state file" '{"createResourceRequest":{"type":"state_file","inputProperties":{"name":"deployment.nixops4-state.jsonl"},"isStateful":false}}'
files

declare -A inputs=(
  [greeting]='{"name":"site/index.html","contents":"<h1>Hello from NixOps4</h1>\n"}'
  [config]='{"name":"site/config.json","contents":"{\"port\": 8080}\n","mode":"0600"}'
  [notes]='{"name":"notes.txt","contents":"Deployed by the local provider.\n"}'
)
declare -A outputs
for name in greeting config notes; do
  send "create resources.$name (local.file)" "{\"createResourceRequest\":{\"type\":\"file\",\"inputProperties\":${inputs[$name]},\"isStateful\":true}}"
  outputs[$name]=$(outputs_of)
  record create "[{\"op\":\"add\",\"path\":\"/resources/$name\",\"value\":{\"type\":\"file\",\"input_properties\":${inputs[$name]},\"output_properties\":${outputs[$name]}}}]"
done
files

new='{"name":"site/index.html","contents":"<h1>Hello again from NixOps4</h1>\n"}'
send "update resources.greeting: contents" "{\"updateResourceRequest\":{\"resource\":{\"type\":\"file\",\"inputProperties\":${inputs[greeting]},\"outputProperties\":${outputs[greeting]}},\"inputProperties\":$new}}"
outputs[greeting]=$(outputs_of)
inputs[greeting]=$new
record update "[{\"op\":\"replace\",\"path\":\"/resources/greeting\",\"value\":{\"type\":\"file\",\"input_properties\":$new,\"output_properties\":${outputs[greeting]}}}]"
printf '  site/index.html now: %s' "$(cat "$out/site/index.html")"; echo

send "operation backup on resources.config" "{\"operationRequest\":{\"resource\":{\"type\":\"file\",\"inputProperties\":${inputs[config]},\"outputProperties\":${outputs[config]}},\"operation\":\"backup\",\"isStateful\":true}}"
send "read resources.notes (refresh)" "{\"readResourceRequest\":{\"resource\":{\"type\":\"file\",\"inputProperties\":${inputs[notes]},\"outputProperties\":${outputs[notes]}}}}"

send "delete resources.notes" "{\"destroyResourceRequest\":{\"resource\":{\"type\":\"file\",\"inputProperties\":${inputs[notes]},\"outputProperties\":${outputs[notes]}}}}"
record destroy '[{"op":"remove","path":"/resources/notes"}]'
files

send "read the state" "{\"stateResourceReadRequest\":{\"resource\":$state_resource}}"
exec {PROVIDER[1]}>&-
wait "$provider_pid"
printf '\nThe deployment is in %s; its state log:\n' "$out"
cat "$out/deployment.nixops4-state.jsonl"
