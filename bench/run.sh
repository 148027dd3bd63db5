#!/usr/bin/env bash
# Rerunnable benchmark of authledger (not a test). Prints the figures the
# foundation issue asks for:
#   P1  introspection req/s ÷ GET / req/s, same server, wrk, 64 connections, ≥ 1,000,000 live tokens; p99
#   P2  POST /api/V2/token req/s on PostgreSQL at 16 connections ÷ raw commit rate of one-event commands at 16 tasks
#   P3  full projection rebuild events/s ÷ raw sequential read rows/s of the same log (in the P1 part)
#   P4  server start-up from a checkpoint ÷ full rebuild time, same log (`replay rebuild` writes the checkpoint)
#   P5  memory per live token in the token index
#   and what durable commits cost (SQLite synchronous=FULL vs NORMAL; PostgreSQL).
#   contention: one account under load — PUT /api/V2/me by one user on 100 connections, on SQLite and (with
#        p2 or durability) PostgreSQL; reports req/s and how many answers were not 2xx (it must be none).
#   pages: web pages rendered per second at 16 connections (/me, /admin/user/{u}, /admin/user/{u}/tokens
#        listing 101 tokens) beside GET / (JSON) on the same SQLite server, with the session cookie.
#   logins: full provider logins per second (start → the provider's sign-in → the way back, straight in)
#        against a real OpenID Connect provider on loopback (node-oidc-provider, tests/oidc; needs node and
#        `npm ci --prefix tests/oidc`), beside local password logins on the same SQLite server (every stored
#        secret sealed under the key file), and what sealing and opening one secret costs beside an argon2id check;
#        then, on a fresh server, 256 simultaneous wrong passwords (against one account, and against names that
#        are no account from one address: password checks run, the most at once, RSS and its peak), an honest
#        client's password logins/s with its device mark alone and while 256 guessers run, and the median time
#        of a wrong password for an account and for a name that is none.
#   replicas: introspection req/s on one server vs two servers on one PostgreSQL database (half the
#        connections on each), tokens made on one and introspected on the other at once (success rate), and
#        revocation propagation p50/p99 in ms (LISTEN/NOTIFY), one revocation at a time.
#   ssh: SSH certificates per second (user certificates, host joins with a static token: new hosts, and
#        one host renewing its certificate 16 connections at a time) beside
#        POST /api/V2/token on the same SQLite server: what signing and recording a certificate cost.
#   forget: how long forgetting a person takes — one whose name is in FORGET_PERSON_TOKENS (10,000) token events
#        spread through a log of FORGET_EVENTS (1,000,000) — on SQLite and on PostgreSQL (where it includes the
#        VACUUM FULL), and what an introspection probe and a token-making probe (one request at a time each) waited
#        meanwhile. Not in the default PARTS (seeding two logs of a million events takes minutes).
# Needs wrk (apt-get install wrk) and a PostgreSQL reachable at $PG_BASE (trust auth).
# Knobs: TOKENS (1000000), DURATION (10s per wrk run), ROUNDS (5), PG_BASE (postgres://postgres@127.0.0.1:5432),
# PARTS ("p5 p1 p3 p4 p2 durability" by default: which measurements to run).
# Both wrk runs of P1 build requests with a Lua function (bench/root.lua,
# bench/introspect.lua), so the load generator costs the same in each.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

TOKENS=${TOKENS:-1000000}
DURATION=${DURATION:-10s}
ROUNDS=${ROUNDS:-5}
PG_BASE=${PG_BASE:-postgres://postgres@127.0.0.1:5432}
PORT=${PORT:-18181}
PARTS=${PARTS:-p5 p1 p3 p4 p2 durability ssh contention pages}   # p1, p3 and p4 share one seeded log
part() { [[ " $PARTS " == *" $1 "* ]]; }
command -v wrk >/dev/null || { echo "wrk is missing: apt-get install wrk" >&2; exit 1; }

cargo build --release --bin authledger --bin replay --bench ledger 2>&1 | tail -n 1
# The measurement tool, built once: editing the sources during a run does not change what runs.
BENCH_BIN=$(cargo bench --bench ledger --no-run --message-format=json 2>/dev/null \
    | grep '"kind":\["bench"\]' | grep -o '"executable":"[^"]*"' | tail -n 1 | cut -d'"' -f4)
[ -x "$BENCH_BIN" ] || { echo "cannot find the built bench binary" >&2; exit 1; }
WORK=$(mktemp -d)
cp "$BENCH_BIN" "$WORK/ledger-bench"
cp target/release/authledger "$WORK/authledger"
cp target/release/replay "$WORK/replay"
BENCH=("$WORK/ledger-bench")
SERVER_BIN=$WORK/authledger
SERVER=$SERVER_BIN
PGDB="authledger_bench_$$"
SERVER_PID=
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    [ -n "${B_PID:-}" ] && kill "$B_PID" 2>/dev/null || true
    psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS \"$PGDB\" WITH (FORCE)" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
# One key seals the stored secrets of every store the run makes (PostgreSQL has no default key).
"$WORK/authledger" secrets new-key --file "$WORK/secrets.key" 2>/dev/null
export AUTHLEDGER_SECRETS_KEY_FILE=$WORK/secrets.key

start_server() { # store [more serve flags]; sets SERVER_PID and STARTUP (seconds until the first answer)
    local started store=$1
    shift
    started=$(date +%s.%N)
    # shellcheck disable=SC2086
    RUST_LOG=${SERVER_LOG:-warn,authledger::app::duties=info} $SERVER serve --store "$store" --listen "127.0.0.1:$PORT" "$@" >/dev/null 2>"$WORK/server.log" &
    SERVER_PID=$!
    wait_until_serving "$SERVER_PID" "$PORT" "$WORK/server.log"
    STARTUP=$(echo "$(date +%s.%N) - $started" | bc)
}
stop_server() {
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=
}
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
# wrk output → "requests_per_second p99_ms non2xx"
wrk_figures() {
    awk '/Requests\/sec/ {rps=$2}
         /^ +99%/ {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; p99=v}
         /Non-2xx/ {bad=$5}
         END {printf "%s %s %s\n", rps, p99, (bad == "" ? 0 : bad)}'
}

if part p5; then
echo "== P5: memory per live token ($TOKENS tokens folded into the token index)"
"${BENCH[@]}" memory --tokens "$TOKENS"
fi

if part p1 || part p3 || part p4; then
echo "== Seeding $TOKENS live tokens (SQLite store); P3: full rebuild vs raw read of that log"
"${BENCH[@]}" seed --store "sqlite://$WORK/p1.db" --tokens "$TOKENS" --tokens-out "$WORK/tokens.txt" --login-out "$WORK/login.txt"
"${BENCH[@]}" catch-up --store "sqlite://$WORK/p1.db"
fi

if part p1; then
echo "== P1: introspection vs GET / with $TOKENS live tokens (SQLite store)"
p1_round() { # label, then the prefixes for server and wrk (taskset or nothing), wrk threads
    local label=$1 server_prefix=$2 wrk_prefix=$3 threads=$4
    SERVER="$server_prefix $SERVER_BIN" start_server "sqlite://$WORK/p1.db"
    echo "[$label] server start-up (fold $TOKENS+ events, then serve): ${STARTUP}s; RSS $(rss_kib) KiB"
    # shellcheck disable=SC2086
    $wrk_prefix wrk -t"$threads" -c64 -d5s -s bench/root.lua "http://127.0.0.1:$PORT/" >/dev/null   # warm-up
    # shellcheck disable=SC2086
    TOKENS_FILE="$WORK/tokens.txt" $wrk_prefix wrk -t"$threads" -c64 -d5s -s bench/introspect.lua "http://127.0.0.1:$PORT/api/V2/token" >/dev/null
    : > "$WORK/root.txt"; : > "$WORK/intro.txt"
    # Alternate the two, ROUNDS times: this host's speed drifts, so each
    # figure is the median of its rounds and both saw the same drift.
    for round in $(seq 1 "$ROUNDS"); do
        # shellcheck disable=SC2086
        $wrk_prefix wrk -t"$threads" -c64 -d"$DURATION" --latency -s bench/root.lua "http://127.0.0.1:$PORT/" | wrk_figures >> "$WORK/root.txt"
        # shellcheck disable=SC2086
        TOKENS_FILE="$WORK/tokens.txt" $wrk_prefix wrk -t"$threads" -c64 -d"$DURATION" --latency -s bench/introspect.lua \
            "http://127.0.0.1:$PORT/api/V2/token" | wrk_figures >> "$WORK/intro.txt"
        echo "[$label] round $round: GET / $(tail -n1 "$WORK/root.txt" | awk '{print $1 " req/s p99 " $2 " ms"}');" \
             "introspection $(tail -n1 "$WORK/intro.txt" | awk '{print $1 " req/s p99 " $2 " ms non-2xx " $3}')"
    done
    stop_server
    local root_rps root_p99 intro_rps intro_p99
    root_rps=$(awk '{print $1}' "$WORK/root.txt" | median); root_p99=$(awk '{print $2}' "$WORK/root.txt" | median)
    intro_rps=$(awk '{print $1}' "$WORK/intro.txt" | median); intro_p99=$(awk '{print $2}' "$WORK/intro.txt" | median)
    echo "[$label] median GET /            : $root_rps req/s, p99 $root_p99 ms"
    echo "[$label] median GET /api/V2/token: $intro_rps req/s, p99 $intro_p99 ms, non-2xx total $(awk '{s+=$3} END {print s}' "$WORK/intro.txt")"
    echo "[$label] P1 ratio of medians: $(echo "scale=3; $intro_rps / $root_rps" | bc)  (target >= 0.8, p99 <= 2 ms)"
}
# Shared: server and wrk (2 threads) compete for both cores.
p1_round shared "" "" 2
# Pinned: the server (one runtime thread) on core 0, wrk (one thread) on core 1.
if [ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null; then
    TOKIO_WORKER_THREADS=1 p1_round pinned "taskset -c 0" "taskset -c 1" 1
fi
fi

if part p4; then
echo "== P4: start-up from a checkpoint vs a full rebuild ($TOKENS+ events, SQLite)"
# Without any checkpoint (earlier parts' servers wrote one at shutdown), and writing none.
sqlite3 "$WORK/p1.db" "DELETE FROM checkpoints"
printf 'checkpoint_every = 0\n' > "$WORK/no-checkpoints.toml"
start_server "sqlite://$WORK/p1.db" --config "$WORK/no-checkpoints.toml"
FULL_STARTUP=$STARTUP
stop_server
REBUILD=$("$WORK/replay" --store "sqlite://$WORK/p1.db" --format json rebuild)
REBUILD_SECONDS=$(echo "$REBUILD" | sed -E 's/.*"seconds":([0-9.]+).*/\1/')
echo "replay rebuild: $REBUILD"
start_server "sqlite://$WORK/p1.db"
echo "start-up without a checkpoint: ${FULL_STARTUP}s; with replay's checkpoint: ${STARTUP}s; RSS $(rss_kib) KiB"
echo "P4 ratio: $(echo "scale=3; $STARTUP / $REBUILD_SECONDS" | bc)  (start-up from the checkpoint ÷ full rebuild; target <= 0.1)"
# The server's own checkpoint: one more event, then a shutdown writes it; the next start folds from it.
LOGIN=$(cat "$WORK/login.txt")
curl -sf -o /dev/null -X POST -H "Authorization: $LOGIN" -H 'Content-Type: application/json' -d '{"name":"p4"}' "http://127.0.0.1:$PORT/api/V2/token"
stop_server
SHUTDOWN_CHECKPOINT=$(sed 's/\x1b\[[0-9;]*m//g' "$WORK/server.log" | grep 'wrote a checkpoint' | tail -n 1)
echo "checkpoint written at shutdown: $(echo "$SHUTDOWN_CHECKPOINT" | grep -o 'bytes=[0-9]*') in $(echo "$SHUTDOWN_CHECKPOINT" | grep -o 'ms=[0-9]*')"
start_server "sqlite://$WORK/p1.db"
echo "start-up from the server's own shutdown checkpoint: ${STARTUP}s"
stop_server
fi

if part p2 || part durability; then
psql -q "$PG_BASE/postgres" -c "CREATE DATABASE \"$PGDB\""
PG="$PG_BASE/$PGDB"
fi

if part p2; then
echo "== P2: token creation on PostgreSQL at 16 connections vs raw commit rate at 16 tasks"
"${BENCH[@]}" seed --store "$PG" --tokens 0 --tokens-out "$WORK/none.txt" --login-out "$WORK/pglogin.txt" >/dev/null
RAW_BEFORE=$("${BENCH[@]}" commit-rate --store "$PG" --tasks 16 --commands 20000 | sed -E 's/.*rate=([0-9]+).*/\1/')
start_server "$PG"
LOGIN_FILE="$WORK/pglogin.txt" wrk -t2 -c16 -d3s -s bench/create_token.lua "http://127.0.0.1:$PORT/api/V2/token" >/dev/null
read -r CREATE_RPS CREATE_P99 CREATE_BAD < <(LOGIN_FILE="$WORK/pglogin.txt" wrk -t2 -c16 -d"$DURATION" --latency -s bench/create_token.lua "http://127.0.0.1:$PORT/api/V2/token" | wrk_figures)
stop_server
RAW_AFTER=$("${BENCH[@]}" commit-rate --store "$PG" --tasks 16 --commands 20000 | sed -E 's/.*rate=([0-9]+).*/\1/')
RAW=$(( (RAW_BEFORE + RAW_AFTER) / 2 ))
echo "POST /api/V2/token: $CREATE_RPS req/s, p99 ${CREATE_P99} ms, non-2xx $CREATE_BAD"
echo "raw commit rate   : $RAW commands/s (mean of $RAW_BEFORE before and $RAW_AFTER after the HTTP run)"
echo "P2 ratio: $(echo "scale=3; $CREATE_RPS / $RAW" | bc)  (target >= 0.6)"
fi

if part durability; then
echo "== Durability: what acknowledged-write durability costs (commands/s, one-event token issues)"
for tasks in 1 16; do
    "${BENCH[@]}" commit-rate --store "sqlite://$WORK/full-$tasks.db" --tasks "$tasks" --commands 4000
    "${BENCH[@]}" commit-rate --store "sqlite://$WORK/normal-$tasks.db" --tasks "$tasks" --commands 4000 --sqlite-normal
    "${BENCH[@]}" commit-rate --store "$PG" --tasks "$tasks" --commands 4000
done
fi

if part ssh; then
echo "== SSH: certificates per second vs token creation, same SQLite server, 16 connections"
JOIN_TOKEN=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf 'static_tokens = ["node:%s"]\ncluster_name = "bench.internal"\n' "$JOIN_TOKEN" > "$WORK/ssh.toml"
"${BENCH[@]}" seed --store "sqlite://$WORK/ssh.db" --tokens 0 --tokens-out "$WORK/none.txt" --login-out "$WORK/sshlogin.txt" >/dev/null
start_server "sqlite://$WORK/ssh.db" --config "$WORK/ssh.toml"
ssh_run() { # label script url [env]
    LOGIN_FILE="$WORK/sshlogin.txt" JOIN_TOKEN=$JOIN_TOKEN wrk -t2 -c16 -d3s -s "$2" "$3" >/dev/null
    read -r rps p99 bad < <(LOGIN_FILE="$WORK/sshlogin.txt" JOIN_TOKEN=$JOIN_TOKEN wrk -t2 -c16 -d"$DURATION" --latency -s "$2" "$3" | wrk_figures)
    echo "$1: $rps req/s, p99 $p99 ms, non-2xx $bad"
}
ssh_run "POST /api/V2/token (baseline)" bench/create_token.lua "http://127.0.0.1:$PORT/api/V2/token"
ssh_run "POST /api/V2/certs/ssh        " bench/user_cert.lua "http://127.0.0.1:$PORT/api/V2/certs/ssh"
ssh_run "POST /api/V2/hosts/join (new)  " bench/host_join.lua "http://127.0.0.1:$PORT/api/V2/hosts/join"
export HOST_MODE=renew
ssh_run "POST /api/V2/hosts/join (renew)" bench/host_join.lua "http://127.0.0.1:$PORT/api/V2/hosts/join"
unset HOST_MODE
stop_server
fi

if part contention; then
echo "== Contention: one account, 100 connections, SQLite and PostgreSQL"
for store in "sqlite://$WORK/busy.db" "${PG:-}"; do
    [ -n "$store" ] || { echo "(PostgreSQL part skipped: run with p2 or durability to create its database)"; continue; }
    "${BENCH[@]}" seed --store "$store" --tokens 0 --tokens-out "$WORK/none.txt" --login-out "$WORK/busylogin.txt" >/dev/null
    start_server "$store"
    read -r rps p99 bad < <(LOGIN_FILE="$WORK/busylogin.txt" wrk -t2 -c100 -d"$DURATION" --latency -s bench/update_me.lua \
        "http://127.0.0.1:$PORT/api/V2/me" | wrk_figures)
    echo "[${store%%:*}] PUT /api/V2/me by one user, 100 connections: $rps req/s, p99 $p99 ms, non-2xx $bad"
    stop_server
done
fi

if part pages; then
echo "== Pages: server-rendered HTML per second, 16 connections, SQLite (the user has 101 tokens)"
"${BENCH[@]}" seed --store "sqlite://$WORK/pages.db" --tokens 100 --tokens-out "$WORK/none.txt" --login-out "$WORK/pageslogin.txt" --admin >/dev/null
start_server "sqlite://$WORK/pages.db"
page_run() { # label path
    LOGIN_FILE="$WORK/pageslogin.txt" wrk -t2 -c16 -d3s -s bench/page.lua "http://127.0.0.1:$PORT$2" >/dev/null
    read -r rps p99 bad < <(LOGIN_FILE="$WORK/pageslogin.txt" wrk -t2 -c16 -d"$DURATION" --latency -s bench/page.lua "http://127.0.0.1:$PORT$2" | wrk_figures)
    echo "$1: $rps req/s, p99 $p99 ms, non-2xx $bad"
}
read -r rps p99 _ < <(wrk -t2 -c16 -d"$DURATION" --latency -s bench/root.lua "http://127.0.0.1:$PORT/" | wrk_figures)
echo "GET / (JSON, baseline)          : $rps req/s, p99 $p99 ms"
page_run "GET /me                         " /me
page_run "GET /admin/user/bench           " /admin/user/bench
page_run "GET /admin/user/bench/tokens    " /admin/user/bench/tokens
stop_server
fi

if part forget; then
FORGET_EVENTS=${FORGET_EVENTS:-1000000}
FORGET_PERSON_TOKENS=${FORGET_PERSON_TOKENS:-10000}
echo "== Forget: one person named in $FORGET_PERSON_TOKENS token events spread through $FORGET_EVENTS, on SQLite and PostgreSQL"
FPGDB="authledger_forget_$$"
psql -q "$PG_BASE/postgres" -c "CREATE DATABASE \"$FPGDB\""
for store in "sqlite://$WORK/forget.db" "$PG_BASE/$FPGDB"; do
    "${BENCH[@]}" seed --store "$store" --tokens "$FORGET_EVENTS" --tokens-out "$WORK/none.txt" --sample 0 \
        --login-out "$WORK/forgetlogin.txt" --admin --person zelda --person-tokens "$FORGET_PERSON_TOKENS"
    SERVER_LOG=warn,authledger::app::forgetting=info,authledger::app::ledger=info start_server "$store"
    echo "[${store%%:*}]"
    "${BENCH[@]}" forget --base "http://127.0.0.1:$PORT" --admin-token-file "$WORK/forgetlogin.txt" --person zelda
    grep -E "a person was forgotten|written anew|folded afresh" "$WORK/server.log" | sed -E 's/\x1b\[[0-9;]*m//g; s/^/  server: /'
    stop_server
done
psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS \"$FPGDB\" WITH (FORCE)"
fi

if part replicas; then
echo "== Replicas: one vs two servers on one PostgreSQL database (introspection), cross-server reads, revocation propagation"
RPGDB="authledger_replicas_$$"
psql -q "$PG_BASE/postgres" -c "CREATE DATABASE \"$RPGDB\""
RPG="$PG_BASE/$RPGDB"
REPLICA_TOKENS=${REPLICA_TOKENS:-100000}
"${BENCH[@]}" seed --store "$RPG" --tokens "$REPLICA_TOKENS" --tokens-out "$WORK/rtokens.txt" --login-out "$WORK/rlogin.txt"
start_server "$RPG"
B_PORT=$((PORT + 1))
intro() { # port [threads connections]
    TOKENS_FILE="$WORK/rtokens.txt" wrk -t"${2:-2}" -c"${3:-64}" -d"$DURATION" --latency -s bench/introspect.lua "http://127.0.0.1:$1/api/V2/token" | wrk_figures
}
TOKENS_FILE="$WORK/rtokens.txt" wrk -t2 -c64 -d3s -s bench/introspect.lua "http://127.0.0.1:$PORT/api/V2/token" >/dev/null
# The same load generator both times: two wrk processes, one thread and 32 connections each.
intro "$PORT" 1 32 > "$WORK/r1.txt" &
ONE_LOAD=$!
intro "$PORT" 1 32 > "$WORK/r2.txt"
wait "$ONE_LOAD"
ONE_RPS=$(cat "$WORK/r1.txt" "$WORK/r2.txt" | awk '{s+=$1} END {print s}')
echo "one server : $ONE_RPS req/s (p99 $(awk '{print $2}' "$WORK/r1.txt") / $(awk '{print $2}' "$WORK/r2.txt") ms), non-2xx $(cat "$WORK/r1.txt" "$WORK/r2.txt" | awk '{s+=$3} END {print s}')"
RUST_LOG=warn $SERVER_BIN serve --store "$RPG" --listen "127.0.0.1:$B_PORT" >/dev/null 2>"$WORK/server-b.log" &
B_PID=$!
until curl -sf -o /dev/null "http://127.0.0.1:$B_PORT/readyz"; do
    kill -0 "$B_PID" 2>/dev/null || { cat "$WORK/server-b.log" >&2; exit 1; }
    sleep 0.05
done
# Round-robin load: half the connections on each server, at once.
intro "$PORT" 1 32 > "$WORK/ra.txt" &
A_LOAD=$!
intro "$B_PORT" 1 32 > "$WORK/rb.txt"
wait "$A_LOAD"
read -r A_RPS A_P99 A_BAD < "$WORK/ra.txt"; read -r B_RPS B_P99 B_BAD < "$WORK/rb.txt"
echo "two servers: $(echo "$A_RPS + $B_RPS" | bc) req/s (A $A_RPS, p99 $A_P99 ms; B $B_RPS, p99 $B_P99 ms), non-2xx $((A_BAD + B_BAD))"
echo "two ÷ one: $(echo "scale=3; ($A_RPS + $B_RPS) / $ONE_RPS" | bc)  (this machine has $(nproc) cores for both servers and wrk)"
"${BENCH[@]}" replicas --a "http://127.0.0.1:$PORT" --b "http://127.0.0.1:$B_PORT" --login-file "$WORK/rlogin.txt"
kill "$B_PID"; wait "$B_PID" 2>/dev/null || true
stop_server
psql -q "$PG_BASE/postgres" -c "DROP DATABASE IF EXISTS \"$RPGDB\" WITH (FORCE)" 2>/dev/null || true
fi

if part logins; then
echo "== Logins: full provider logins per second (a real OpenID Connect provider on loopback) and password logins"
{ command -v node >/dev/null && [ -d tests/oidc/node_modules/oidc-provider ]; } \
    || { echo "logins: needs node and npm ci --prefix tests/oidc" >&2; exit 1; }
node tests/oidc/provider.mjs --redirect-uri "http://127.0.0.1:$PORT/login/complete/OIDC" > "$WORK/peer.txt" 2>/dev/null &
PEER_PID=$!
for _ in $(seq 100); do [ -s "$WORK/peer.txt" ] && break; sleep 0.1; done
ISSUER=$(sed -E 's/.*"issuer":"([^"]+)".*/\1/' "$WORK/peer.txt")
cat > "$WORK/logins.toml" <<TOML
public_url = "http://127.0.0.1:$PORT"
[providers.OIDC]
kind = "oidc"
issuer = "$ISSUER"
client_id = "authledger"
client_secret = "authledger-secret"
TOML
"${BENCH[@]}" seed --store "sqlite://$WORK/logins.db" --tokens 0 --tokens-out "$WORK/none.txt" --login-out "$WORK/loginslogin.txt" --admin >/dev/null
"${BENCH[@]}" secrets --count 100000
start_server "sqlite://$WORK/logins.db" --config "$WORK/logins.toml"
"${BENCH[@]}" logins --base "http://127.0.0.1:$PORT" --admin-token-file "$WORK/loginslogin.txt" --seconds "${DURATION%s}" --concurrency 4
stop_server
kill "$PEER_PID" 2>/dev/null || true
echo "== Logins under attack: 256 simultaneous wrong passwords (checks run, RSS), an honest client with its device mark while 256 guessers run, and what a wrong password costs for an account and for a name that is none"
"${BENCH[@]}" seed --store "sqlite://$WORK/guesses.db" --tokens 0 --tokens-out "$WORK/none.txt" --login-out "$WORK/guesseslogin.txt" --admin >/dev/null
start_server "sqlite://$WORK/guesses.db"
"${BENCH[@]}" guesses --base "http://127.0.0.1:$PORT" --admin-token-file "$WORK/guesseslogin.txt" --pid "$SERVER_PID" --seconds "${DURATION%s}" --guessers 256
stop_server
fi
