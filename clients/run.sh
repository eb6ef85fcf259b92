#!/usr/bin/env bash
# Runs the real, unmodified third-party clients against the demo server, one
# directory of clients/ each:
#   graph-js       @microsoft/microsoft-graph-client (npm), Graph JSON batching
#   google-python  google-api-python-client (PyPI), multipart/mixed batching
#   socketio-python  python-socketio (PyPI), Flask-SocketAPI's events at /socket.io/
#   browser-page   the demo's live page (GET /) in Debian's Chromium, driven by
#                  playwright-core (npm)
# A client directory holds `test.js` with a package.json (installed with `npm ci`)
# or `test.py` with a requirements.txt (installed into a venv of its own); each is
# run as `node test.js BASE_URL` or `python test.py BASE_URL` and exits non-zero on
# a failure. Debian packages a client needs beyond those (a browser) are listed in
# its `apt-packages`, one a line. A new client is a new directory: nothing here
# changes.
# Builds and starts the demo on a free 127.0.0.1 port (with `--redis $REDIS_URL`
# when REDIS_URL is set, as scripts/test.sh does), installs node/npm, python3-venv
# and the clients' apt-packages with apt-get when missing, runs every client, stops
# the server, and exits non-zero on any failure.
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

clients=()
for dir in clients/*/; do
    dir=${dir%/}
    if [ -f "$dir/test.js" ] || [ -f "$dir/test.py" ]; then clients+=("$dir"); fi
done
needs() { # file: does some client have it?
    local dir
    for dir in "${clients[@]}"; do if [ -f "$dir/$1" ]; then return 0; fi; done
    return 1
}

note "toolchains"
if needs test.js; then
    if ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
        sudo_if_needed apt-get update -qq
        sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    fi
    node --version
fi
python3 --version
if needs test.py && ! python3 -m venv --help >/dev/null 2>&1; then
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
missing=()
for dir in "${clients[@]}"; do
    if [ ! -f "$dir/apt-packages" ]; then continue; fi
    while read -r package; do
        case $package in '' | '#'*) continue ;; esac
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed'; then missing+=("$package"); fi
    done <"$dir/apt-packages"
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing ${missing[*]}"
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

note "install the clients"
work=$(mktemp -d)
server=""
cleanup() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; fi
    rm -rf "$work"
}
trap cleanup EXIT
for dir in "${clients[@]}"; do
    name=$(basename "$dir")
    if [ -f "$dir/test.js" ]; then
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error) || { echo "$name: npm ci failed"; exit 1; }
    else
        # A venv outside the tree: python3 -m venv needs ensurepip (Debian: python3-venv).
        python3 -m venv "$work/venv-$name" && "$work/venv-$name/bin/pip" install --quiet -r "$dir/requirements.txt" \
            || { echo "$name: pip install failed"; exit 1; }
    fi
done

note "build and start the demo server"
cargo build --quiet -p demo || { echo "cargo build -p demo failed"; exit 1; }
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
demo_args=(--addr "127.0.0.1:$port")
if [ -n "${REDIS_URL:-}" ]; then demo_args+=(--redis "$REDIS_URL"); fi
# The binary itself, not `cargo run`: killing cargo would leave the server running.
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
"$target_dir/debug/demo" "${demo_args[@]}" >"$work/demo.log" 2>&1 &
server=$!
up() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1] + "/health", timeout=2)' "$base" 2>/dev/null; }
for _ in $(seq 1 600); do
    if up; then break; fi
    if ! kill -0 "$server" 2>/dev/null; then echo "the demo server exited:"; cat "$work/demo.log"; exit 1; fi
    sleep 0.2
done
up || { echo "the demo server did not answer on $base"; cat "$work/demo.log"; exit 1; }
echo "demo on $base${REDIS_URL:+, change events through Redis}"

capture() { # client directory: where its traffic is saved, when CAPTURE=1
    local format
    case $1 in
        graph-js) format=graph ;;
        google-python) format=multipart ;;
        *) return 0 ;;
    esac
    if [ "${CAPTURE:-0}" = 1 ]; then mkdir -p "$root/batch-core/tests/fixtures/$format"; echo "$root/batch-core/tests/fixtures/$format"; fi
}

for dir in "${clients[@]}"; do
    name=$(basename "$dir")
    note "$name"
    if [ -f "$dir/test.js" ]; then
        CAPTURE_DIR=$(capture "$name") node "$dir/test.js" "$base"
    else
        CAPTURE_DIR=$(capture "$name") "$work/venv-$name/bin/python" "$dir/test.py" "$base"
    fi
    result "$name" $?
done

echo
echo "clients: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
