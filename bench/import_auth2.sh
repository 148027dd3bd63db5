#!/usr/bin/env bash
# Rerunnable benchmark of `authledger import-auth2` (not a test): a synthetic
# auth2 dump (examples/auth2_dump.rs: USERS users, half local with a PBKDF2
# hash and half with a provider identity, and TOKENS live tokens) imported
# into an empty SQLite store and, when PG_BASE answers, an empty PostgreSQL
# database. Prints the dump's size, the import's wall time, events/s and
# peak RSS, then the server's start-up on the imported log (until GET /
# answers) and that an imported token introspects.
# Knobs: USERS (100000), TOKENS (1000000), PG_BASE (postgres://postgres@127.0.0.1:5432), PORT (18090).
set -euo pipefail
cd "$(dirname "$0")/.."
USERS=${USERS:-100000}
TOKENS=${TOKENS:-1000000}
PG_BASE=${PG_BASE:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18090}
WORK=$(mktemp -d)
PGDB="authledger_import_bench_$$"
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS \"$PGDB\" WITH (FORCE)" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q --bin authledger --example auth2_dump
BIN=target/release/authledger
"$BIN" secrets new-key --file "$WORK/secrets.key" 2>/dev/null
export AUTHLEDGER_SECRETS_KEY_FILE=$WORK/secrets.key

started=$(date +%s.%N)
target/release/examples/auth2_dump "$WORK/dump" "$USERS" "$TOKENS" >/dev/null
echo "== dump: $USERS users, $TOKENS tokens, $(du -sh "$WORK/dump" | cut -f1) of BSON, made in $(echo "$(date +%s.%N) - $started" | bc | cut -c1-5) s"

import_into() { # label store
    local label=$1 store=$2 wall rss events
    /usr/bin/time -f "%e %M" -o "$WORK/time.txt" "$BIN" import-auth2 "$WORK/dump" --store "$store" >"$WORK/report.txt"
    read -r wall rss <"$WORK/time.txt"
    events=$(sed -n 's/.* — \([0-9]*\) events$/\1/p' "$WORK/report.txt")
    echo "== import into $label: $events events in $wall s = $(echo "$events / $wall" | bc) events/s; peak RSS $((rss / 1024)) MiB"
    sed 's/^/   /' "$WORK/report.txt"
    started=$(date +%s.%N)
    RUST_LOG=warn "$BIN" serve --store "$store" --listen "127.0.0.1:$PORT" >/dev/null 2>"$WORK/server.log" &
    SERVER_PID=$!
    until curl -sf -o /dev/null "http://127.0.0.1:$PORT/"; do
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server.log" >&2; exit 1; }
        sleep 0.05
    done
    local startup rss_now
    startup=$(echo "$(date +%s.%N) - $started" | bc)
    rss_now=$(awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status")
    local token
    token=$(printf 'T%031d' $((TOKENS - 1)))
    local answer
    answer=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: $token" "http://127.0.0.1:$PORT/api/V2/token")
    echo "   server start-up on the imported log: $startup s (RSS $((rss_now / 1024)) MiB); the last token introspects: HTTP $answer"
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}

import_into SQLite "sqlite://$WORK/events.db"
if psql -q "$PG_BASE/postgres" -c "CREATE DATABASE \"$PGDB\"" 2>/dev/null; then
    import_into PostgreSQL "$PG_BASE/$PGDB"
else
    echo "== PostgreSQL at $PG_BASE is unreachable: its part is skipped"
fi
