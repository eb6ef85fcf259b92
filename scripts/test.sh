#!/usr/bin/env bash
# The project's test command, on a fresh Debian machine as on a developer's:
#   1. installs redis-server when missing (apt-get; sudo only when not root),
#   2. starts a redis-server of its own on a free loopback port for the run and
#      exports REDIS_URL (tests that need a Redis they do not stop use it; the
#      replica tests start and stop their own), stopped again on exit,
#   3. runs every Rust test: cargo test --workspace --locked,
#   4. runs the real third-party clients against the demo (clients/run.sh, which
#      installs node/npm, a Python venv and Chromium itself when missing).
# Idempotent: what is installed is not installed again. Exits non-zero on the
# first failing step and prints how long each step took.
set -euo pipefail
cd "$(dirname "$0")/.."

started=$SECONDS
step_name=""
step_started=$SECONDS
timings=""
step() { # name; closes the step before, with its time
    if [ -n "$step_name" ]; then
        timings+=$(printf '\n  %5ss  %s' "$((SECONDS - step_started))" "$step_name")
    fi
    step_name=$1
    step_started=$SECONDS
    printf '\n== %s\n' "$1"
}
sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

step "redis-server"
if [ -z "${REDIS_SERVER:-}" ] && ! command -v redis-server >/dev/null 2>&1; then
    sudo_if_needed apt-get update -qq
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi
redis_server=${REDIS_SERVER:-$(command -v redis-server)}
# The tests find the same binary, whether it came from PATH or from REDIS_SERVER.
export REDIS_SERVER=$redis_server
"$redis_server" --version

work=$(mktemp -d)
redis_pid=""
cleanup() {
    if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi
    rm -rf "$work"
}
trap cleanup EXIT

# Answers PING on 127.0.0.1:$1? Plain bash: redis-cli may not be there.
pong() {
    local reply
    { exec 3<>"/dev/tcp/127.0.0.1/$1"; } 2>/dev/null || return 1
    printf 'PING\r\n' >&3
    IFS= read -r -t 2 reply <&3 || reply=""
    exec 3<&- 3>&-
    [ "${reply%$'\r'}" = "+PONG" ]
}
start_redis() { # port; succeeds once it answers
    "$redis_server" --port "$1" --bind 127.0.0.1 --save '' --appendonly no \
        --protected-mode no --logfile "$work/redis.log" </dev/null >/dev/null 2>&1 &
    redis_pid=$!
    for _ in $(seq 1 100); do
        if pong "$1"; then return 0; fi
        if ! kill -0 "$redis_pid" 2>/dev/null; then break; fi
        sleep 0.05
    done
    kill "$redis_pid" 2>/dev/null || true
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=""
    return 1
}
# A port nothing answers on, taken by our server: retried if another process wins it.
for _ in $(seq 1 20); do
    port=$((20000 + RANDOM % 40000))
    if { exec 3<>"/dev/tcp/127.0.0.1/$port"; } 2>/dev/null; then exec 3<&- 3>&-; continue; fi
    if start_redis "$port"; then break; fi
done
if [ -z "$redis_pid" ]; then
    echo "could not start redis-server on a free loopback port; its log:"
    cat "$work/redis.log" 2>/dev/null
    exit 1
fi
export REDIS_URL="redis://127.0.0.1:$port"
echo "redis-server on $REDIS_URL (pid $redis_pid)"

step "cargo test --workspace --locked"
cargo test --workspace --locked

step "real third-party clients against the demo (clients/run.sh)"
clients/run.sh

step "done"
printf 'all tests passed in %ss:%s\n' "$((SECONDS - started))" "$timings"
