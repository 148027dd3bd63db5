#!/usr/bin/env bash
# Instructions per request (valgrind's callgrind), not seconds: repeatable for
# the same binary whatever else the machine does, so "did not slow down" can
# be checked to a percent where wrk's req/s vary by ten. Measures
#   introspection: GET /api/V2/token with a live agent token,
#   token creation: POST /api/V2/token (an agent token for a logged-in user),
# on the embedded SQLite store, server side only: instrumentation is switched on
# after start-up and login, and off before shutdown.
# Usage: bench/instructions.sh [BINARY] (default: builds target/release/authledger).
# Knobs: REQUESTS (2000 per measurement), PORT (18191).
set -euo pipefail
cd "$(dirname "$0")/.."

REQUESTS=${REQUESTS:-2000}
PORT=${PORT:-18191}
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }
BIN=${1:-}
if [ -z "$BIN" ]; then
    cargo build --release --bin authledger 2>&1 | tail -n 1
    BIN=target/release/authledger
fi
BIN=$(realpath "$BIN")
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
BASE="http://127.0.0.1:$PORT"
PASSWORD='an instruction-counting root 2026!'

cd "$WORK"
echo "$PASSWORD" | "$BIN" set-root-password >/dev/null 2>&1
valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$WORK/callgrind.out" \
    "$BIN" serve --listen "127.0.0.1:$PORT" >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
    curl -sf "$BASE/healthz" >/dev/null 2>&1 && break
    sleep 0.5
done
curl -sf "$BASE/healthz" >/dev/null || { echo "the server did not start under valgrind" >&2; cat "$WORK/server.log" >&2; exit 1; }

ROOT=$(curl -sf -X POST "$BASE/localaccount/login" -H 'Content-Type: application/json' \
    -d "{\"user\": \"***ROOT***\", \"pwd\": \"$PASSWORD\"}" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$ROOT" ] || { echo "no root token" >&2; exit 1; }
AGENT=$(curl -sf -X POST "$BASE/api/V2/token" -H "Authorization: $ROOT" -H 'Content-Type: application/json' \
    -d '{"name": "counted"}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
[ -n "$AGENT" ] || { echo "no agent token" >&2; exit 1; }

# One curl process, one connection, REQUESTS requests: the client is not measured.
urls() { for _ in $(seq 1 "$REQUESTS"); do printf 'url = "%s/api/V2/token"\noutput = "/dev/null"\n' "$BASE"; done; }
urls >"$WORK/urls"

# measure NAME CURL-ARGS...: instructions of the server per request while curl sends REQUESTS requests.
measure() {
    local name=$1
    shift
    callgrind_control --zero "$SERVER_PID" >/dev/null 2>&1
    callgrind_control --instr=on "$SERVER_PID" >/dev/null 2>&1
    curl -s -K "$WORK/urls" "$@"
    callgrind_control --instr=off "$SERVER_PID" >/dev/null 2>&1
    callgrind_control --dump="$name" "$SERVER_PID" >/dev/null 2>&1
    sleep 1
    local file
    file=$(ls -t "$WORK"/callgrind.out* | head -n 1)
    local total
    # A dump's own count is its `totals:` line (`summary:` counts from the last zeroing by the tool).
    total=$(sed -n 's/^totals: \([0-9]*\).*/\1/p' "$file" | head -n 1)
    echo "$name: $((total / REQUESTS)) instructions per request ($total over $REQUESTS)"
}

measure introspection -H "Authorization: $AGENT"
measure token-creation -X POST -H "Authorization: $ROOT" -H 'Content-Type: application/json' -d '{"name": "n"}'
