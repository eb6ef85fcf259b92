#!/usr/bin/env bash
# The `batch` command's throughput: 10,000 ops against the demo, sent in batches
# (split by the server's max_ops) and then as single requests by the same client
# (`--single`), at the same concurrency, in one run; prints ops/s and their ratio.
#
#   scripts/bench-client.sh [OPS] [CONCURRENCY] [FRAMEWORK]   # default 10000 4 axum
#
# Release builds of `demo` and `batch`; the demo on a free loopback port, stopped on
# exit. Every op is GET /items/{1..1000}; both runs must answer every op 200.
set -euo pipefail
cd "$(dirname "$0")/.."
ops=${1:-10000}
concurrency=${2:-4}
framework=${3:-axum}

cargo build --release --locked -q -p demo -p batch-cli
work=$(mktemp -d)
target/release/demo --addr 127.0.0.1:0 --framework "$framework" >"$work/demo.log" 2>&1 &
demo_pid=$!
# The demo is stopped and the files removed however the script ends.
trap 'kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
url=""
for _ in $(seq 1 100); do
    url=$(grep -o 'listening on http://[0-9.:]*' "$work/demo.log" | head -1 | cut -d' ' -f3 || true)
    if [ -n "$url" ]; then break; fi
    sleep 0.1
done
if [ -z "$url" ]; then echo "the demo did not start:"; cat "$work/demo.log"; exit 1; fi

for i in $(seq 0 $((ops - 1))); do printf '{"url":"/items/%d"}\n' $((i % 1000 + 1)); done >"$work/ops.jsonl"

# Runs `batch send` with extra arguments; prints its ops/s.
measure() {
    local started ended
    started=$(date +%s.%N)
    target/release/batch send --url "$url/batch" --concurrency "$concurrency" "$@" "$work/ops.jsonl" >"$work/out.jsonl"
    ended=$(date +%s.%N)
    local answered
    answered=$(grep -c '"status":200' "$work/out.jsonl")
    if [ "$answered" -ne "$ops" ]; then echo "only $answered of $ops ops answered 200"; exit 1; fi
    awk -v n="$ops" -v a="$started" -v b="$ended" 'BEGIN { printf "%.0f", n / (b - a) }'
}

target/release/batch send --url "$url/batch" "$work/ops.jsonl" >/dev/null # warm-up
batched=$(measure)
single=$(measure --single)
printf '%s ops, concurrency %s, %s demo\n' "$ops" "$concurrency" "$framework"
printf '  batched (max_ops 50)  %10.0f ops/s\n' "$batched"
printf '  single requests       %10.0f ops/s\n' "$single"
awk -v a="$batched" -v b="$single" 'BEGIN { printf "  ratio                 %10.1fx\n", a / b }'
