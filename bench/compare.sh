#!/usr/bin/env bash
# Two builds of authledger side by side, alternating, in one run (not a test):
# "did this change slow the hot paths down?" answered against the same seeded
# logs and the same drift of this host's speed. Measures, for each binary,
#   P1  introspection (GET /api/V2/token) and GET / req/s on SQLite with TOKENS live tokens, and their ratio;
#   P2  token creation (POST /api/V2/token) req/s on PostgreSQL at 16 connections.
# Each round runs A then B (then B then A in the next round), DURATION each; the
# figures are medians over ROUNDS. Each binary serves its own copy of the
# seeded logs (a newer build appends events an older one cannot read, such as
# the witness's); both must read what this tree's bench tool seeds.
# Usage: bench/compare.sh A_BINARY B_BINARY
# Knobs: TOKENS (1000000), DURATION (10s), ROUNDS (5), PARTS ("p1 p2"),
#        PG_BASE (postgres://postgres@127.0.0.1:5432), PORT (18182).
# Needs wrk (apt-get install wrk) and, for p2, a PostgreSQL at $PG_BASE (trust auth).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

[ $# -eq 2 ] || { echo "usage: bench/compare.sh A_BINARY B_BINARY" >&2; exit 2; }
A=$(realpath "$1")
B=$(realpath "$2")
TOKENS=${TOKENS:-1000000}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
PARTS=${PARTS:-p1 p2}
PG_BASE=${PG_BASE:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18182}
part() { [[ " $PARTS " == *" $1 "* ]]; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release --bench ledger 2>&1 | tail -n 1
BENCH=$(cargo bench --bench ledger --no-run --message-format=json 2>/dev/null \
    | grep '"kind":\["bench"\]' | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4)
[ -x "$BENCH" ] || { echo "cannot find the built bench binary" >&2; exit 1; }
WORK=$(mktemp -d)
PGDB="authledger_compare_$$"   # and ${PGDB}_A, ${PGDB}_B
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    for which in A B; do
        psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS \"${PGDB}_$which\" WITH (FORCE)" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
"$A" secrets new-key --file "$WORK/secrets.key" 2>/dev/null
export AUTHLEDGER_SECRETS_KEY_FILE=$WORK/secrets.key
# No checkpoints: each start folds the log itself, so neither binary reads the other's.
printf 'checkpoint_every = 0\n' > "$WORK/no-checkpoints.toml"

start() { # binary store
    RUST_LOG=warn "$1" serve --store "$2" --listen "127.0.0.1:$PORT" --config "$WORK/no-checkpoints.toml" \
        >/dev/null 2>"$WORK/server.log" &
    SERVER_PID=$!
    wait_until_serving "$SERVER_PID" "$PORT" "$WORK/server.log"
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=; }
rps() { awk '/Requests\/sec/ {print $2}'; }
order() { if [ $(($1 % 2)) -eq 1 ]; then echo "A B"; else echo "B A"; fi; }
binary() { if [ "$1" = A ]; then echo "$A"; else echo "$B"; fi; }
report() { # label file-prefix
    local a b
    a=$(median < "$WORK/$2.A"); b=$(median < "$WORK/$2.B")
    printf '%-34s A %10s  B %10s  B/A %s\n' "$1" "$a" "$b" "$(echo "scale=3; $b / $a" | bc)"
}

if part p1; then
    echo "== P1: introspection and GET / with $TOKENS live tokens (SQLite), $ROUNDS rounds of $DURATION"
    "$BENCH" seed --store "sqlite://$WORK/p1.db" --tokens "$TOKENS" --tokens-out "$WORK/tokens.txt" \
        --login-out "$WORK/login.txt" >/dev/null
    sqlite3 "$WORK/p1.db" "DELETE FROM checkpoints"
    for which in A B; do cp "$WORK/p1.db" "$WORK/p1-$which.db"; done
    for round in $(seq 1 "$ROUNDS"); do
        for which in $(order "$round"); do
            start "$(binary "$which")" "sqlite://$WORK/p1-$which.db"
            wrk -t2 -c64 -d3s -s bench/root.lua "http://127.0.0.1:$PORT/" >/dev/null
            wrk -t2 -c64 -d"$DURATION" -s bench/root.lua "http://127.0.0.1:$PORT/" | rps >> "$WORK/root.$which"
            TOKENS_FILE="$WORK/tokens.txt" wrk -t2 -c64 -d"$DURATION" -s bench/introspect.lua \
                "http://127.0.0.1:$PORT/api/V2/token" | rps >> "$WORK/intro.$which"
            stop
            echo "round $round $which: GET / $(tail -n1 "$WORK/root.$which") req/s, introspection $(tail -n1 "$WORK/intro.$which") req/s"
        done
    done
    for which in A B; do
        paste "$WORK/intro.$which" "$WORK/root.$which" | awk '{printf "%.4f\n", $1 / $2}' > "$WORK/ratio.$which"
    done
    report "GET / (req/s)" root
    report "introspection (req/s)" intro
    report "introspection / GET / (per round)" ratio
fi

if part p2; then
    echo "== P2: token creation on PostgreSQL at 16 connections, $ROUNDS rounds of $DURATION"
    for which in A B; do
        psql -q "$PG_BASE/postgres" -c "CREATE DATABASE \"${PGDB}_$which\""
        "$BENCH" seed --store "$PG_BASE/${PGDB}_$which" --tokens 0 --tokens-out "$WORK/none.txt" \
            --login-out "$WORK/pglogin-$which.txt" >/dev/null
    done
    for round in $(seq 1 "$ROUNDS"); do
        for which in $(order "$round"); do
            start "$(binary "$which")" "$PG_BASE/${PGDB}_$which"
            LOGIN_FILE="$WORK/pglogin-$which.txt" wrk -t2 -c16 -d3s -s bench/create_token.lua "http://127.0.0.1:$PORT/api/V2/token" >/dev/null
            LOGIN_FILE="$WORK/pglogin-$which.txt" wrk -t2 -c16 -d"$DURATION" -s bench/create_token.lua \
                "http://127.0.0.1:$PORT/api/V2/token" | rps >> "$WORK/create.$which"
            stop
            echo "round $round $which: POST /api/V2/token $(tail -n1 "$WORK/create.$which") req/s"
        done
    done
    report "token creation (req/s)" create
fi
echo "A = $A"
echo "B = $B"
