#!/usr/bin/env bash
# Runs the real, unmodified third-party batch clients against the demo server:
#   graph-js       @microsoft/microsoft-graph-client (npm), Graph JSON batching
#   google-python  google-api-python-client (PyPI), multipart/mixed batching
#   socketio-python  python-socketio (PyPI), Flask-SocketAPI's events at /socket.io/
# Builds and starts the demo on a free 127.0.0.1 port, installs each client from its
# registry (node/npm with apt-get when missing, pip packages into a venv), runs
# each, stops the server, and exits non-zero on any failure.
# Set CAPTURE=1 to save each client's traffic under batch-core/tests/fixtures/.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

passed=0
failed=0
note() { printf '\n== %s\n' "$*"; }
result() { # name status
    if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); echo "FAILED: $1"; fi
}

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

note "toolchains"
if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
fi
node --version
python3 --version
if ! python3 -m venv --help >/dev/null 2>&1; then
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

note "install the clients"
work=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
(cd clients/graph-js && npm ci --no-audit --no-fund --loglevel=error) || { echo "npm ci failed"; exit 1; }
# A venv outside the tree: python3 -m venv needs ensurepip (Debian: python3-venv).
python3 -m venv "$work/venv" && "$work/venv/bin/pip" install --quiet -r clients/google-python/requirements.txt \
    || { echo "pip install failed"; exit 1; }

note "build and start the demo server"
cargo build --quiet -p demo || { echo "cargo build -p demo failed"; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
# The binary itself, not `cargo run`: killing cargo would leave the server running.
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
"$target_dir/debug/demo" --addr "127.0.0.1:$port" >"$work/demo.log" 2>&1 &
server=$!
up() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)' "$base" 2>/dev/null; }
for _ in $(seq 1 600); do
    if up; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then echo "the demo server exited:"; cat "$work/demo.log"; exit 1; fi
    sleep 0.2
done
up || { echo "the demo server did not answer on $base"; cat "$work/demo.log"; exit 1; }
echo "demo on $base"

capture() { # format directory, when CAPTURE=1
    if [ "${CAPTURE:-0}" = 1 ]; then mkdir -p "$root/batch-core/tests/fixtures/$1"; echo "$root/batch-core/tests/fixtures/$1"; fi
}

note "graph-js: Microsoft Graph JS SDK, Graph JSON"
CAPTURE_DIR=$(capture graph) node clients/graph-js/test.js "$base"
result graph-js $?

note "google-python: google-api-python-client, multipart/mixed"
CAPTURE_DIR=$(capture multipart) "$work/venv/bin/python" clients/google-python/test.py "$base"
result google-python $?

note "socketio-python: python-socketio, real-time resources at /socket.io/"
if "$work/venv/bin/pip" install --quiet -r clients/socketio-python/requirements.txt; then
    "$work/venv/bin/python" clients/socketio-python/test.py "$base"
    result socketio-python $?
else
    result socketio-python 1
fi

echo
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
