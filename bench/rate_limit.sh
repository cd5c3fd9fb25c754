#!/usr/bin/env bash
# Rate limiting as it grows with concurrency, and against Redis (issue 8):
#
#  * api_gateway.rate_limit_hit at 1, 16 and 64 pgbench clients, over 10,000 random subjects and
#    on one hot subject, each next to `SELECT 1` at the same client count (the floor of a round
#    trip at that concurrency);
#  * the same two workloads on Debian's redis-server, the fixed-window pattern users add Redis
#    for: one Lua script (EVALSHA, atomic like MULTI/EXEC) doing INCR, EXPIRE on the first hit of
#    a window, TTL, and returning (allowed, remaining, reset_s) as rate_limit_hit does; driven by
#    redis-benchmark with the same number of clients, no pipelining.
#
# rate_limit_hit counts in shared memory when api_gateway is in shared_preload_libraries
# (scripts/setup.sh, which `make bench` runs, puts it there; recorded as `shared_memory`), else in
# the UNLOGGED table; at 16 clients the table fallback is measured too (the session setting
# api_gateway.rate_limit_shared_memory = off), next to the default.
# Both servers are reached over a Unix socket (pgbench's default here), so the transport is the
# same; one extra Redis run over TCP 127.0.0.1 at 16 clients (next to another rate_limit_hit run)
# shows what a loopback TCP hop adds.
# Redis runs with persistence off: our counters are an UNLOGGED table (not crash-safe either), so
# neither side pays for durability. Redis is started by this script on a free port in a temporary
# directory and shut down at the end. Every client count runs once per round (interleaved).
#
#   bench/rate_limit.sh                 # about 3 minutes
#   BENCH_QUICK=1 bench/rate_limit.sh   # about 1 minute
#
# Knobs: BENCH_SECONDS (4, quick 3), BENCH_ROUNDS (3, quick 1), BENCH_CLIENTS ("1 16 64"), BENCH_DB (agw_bench_rl),
# BENCH_KEEP=1. Output: JSON lines in target/bench/rate_limit.jsonl (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS=${BENCH_SECONDS:-$(quick_or 3 4)}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 3)}
CLIENT_COUNTS=(${BENCH_CLIENTS:-1 16 64})
DB=${BENCH_DB:-agw_bench_rl}
KEEP=${BENCH_KEEP:-0}
SUBJECTS=10000
say() { echo "rate_limit.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lowercase identifier"
[ -x "$PGBENCH" ] || die "pgbench not found at $PGBENCH"
for tool in redis-server redis-cli redis-benchmark; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install redis-server redis-tools; make bench does it)"
done
wait_for_postgres || die "cannot connect to PostgreSQL at $PGHOST"

results_open rate_limit
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agw-bench-rl.XXXXXX")
SOCK=$WORK/redis.sock
PORT=$(free_port)
REDIS_PID=
cleanup() {
    local rc=$?
    if [ -n "$REDIS_PID" ]; then
        redis-cli -s "$SOCK" shutdown nosave >/dev/null 2>&1 || kill "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    [ "$KEEP" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

say "database $DB (the extension alone: rate_limit_hit needs no Odoo table)"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -c 'CREATE EXTENSION api_gateway' >/dev/null

say "redis-server $(redis-server --version | sed -nE 's/.*v=([0-9.]+).*/\1/p') on 127.0.0.1:$PORT and $SOCK"
redis-server --bind 127.0.0.1 --port "$PORT" --unixsocket "$SOCK" --unixsocketperm 700 \
    --dir "$WORK" --save '' --appendonly no --daemonize no --logfile "$WORK/redis.log" &
REDIS_PID=$!
for _ in $(seq 1 50); do redis-cli -s "$SOCK" ping >/dev/null 2>&1 && break; sleep 0.1; done
[ "$(redis-cli -s "$SOCK" ping 2>/dev/null)" = PONG ] || die "redis-server did not start: $(tail -3 "$WORK/redis.log")"

# The fixed window with Redis: the key is the subject; the first hit of a window creates it with
# a TTL of one window. Returns what rate_limit_hit returns.
LUA='local hits = redis.call("INCR", KEYS[1])
if hits == 1 then redis.call("EXPIRE", KEYS[1], ARGV[2]) end
local limit = tonumber(ARGV[1])
local ttl = redis.call("TTL", KEYS[1])
return {hits <= limit and 1 or 0, math.max(limit - hits, 0), ttl}'
SHA=$(redis-cli -s "$SOCK" script load "$LUA")
[[ $SHA =~ ^[0-9a-f]{40}$ ]] || die "SCRIPT LOAD answered '$SHA'"
# Sanity: both sides allow under the limit and refuse over it.
got=$(for _ in 1 2 3; do redis-cli -s "$SOCK" evalsha "$SHA" 1 check 2 60 | head -n 2 | tr '\n' ' '; done)
[ "$got" = "1 1 1 0 0 0 " ] || die "the Redis script answered (allowed remaining)...: $got"
got=$(psql -X -At -d "$DB" -c "SELECT string_agg(allowed::text, ' ') FROM (SELECT (api_gateway.rate_limit_hit('check', 2, 60)).allowed FROM generate_series(1, 3)) x")
[ "$got" = "true true false" ] || die "rate_limit_hit answered: $got"
redis-cli -s "$SOCK" flushall >/dev/null

preloaded=$(psql -X -At -d "$DB" -c "SELECT (current_setting('shared_preload_libraries') ~ 'api_gateway')::int")
say "counters in $([ "$preloaded" = 1 ] && echo "shared memory (api_gateway is preloaded)" || echo "the table (api_gateway is NOT in shared_preload_libraries)")"
result shared_memory "$preloaded" flag

HOT_SQL=$BENCH_DIR/pgbench/rate_limit_one.sql
RANDOM_SQL=$BENCH_DIR/pgbench/rate_limit_10k.sql
SELECT1_SQL=$BENCH_DIR/pgbench/select1.sql
FLOOR_SQL=$BENCH_DIR/pgbench/c_function_floor.sql

# redis_rps CLIENTS KEY [TRANSPORT...]: sets REDIS_RPS to the calls per second of the script at
# CLIENTS connections for about SECS seconds (default transport: the Unix socket).
# redis-benchmark counts requests, not time: the first run of a workload estimates its rate with
# a short run, later rounds reuse the last rate measured. KEY may contain __rand_int__ (-r picks
# one of SUBJECTS values per call). No subshell, so that the estimates are remembered.
declare -A REDIS_RATE
redis_rps() {
    local clients=$1 key=$2
    shift 2
    local transport=(-s "$SOCK")
    [ $# -eq 0 ] || transport=("$@")
    local threads
    threads=$(client_threads "$clients")
    local slot="$clients $key ${transport[*]}"
    redis_run() { # redis_run N -> requests per second
        redis-benchmark "${transport[@]}" -c "$clients" --threads "$threads" -n "$1" -r "$SUBJECTS" --csv \
            evalsha "$SHA" 1 "$key" 1000000000 60 | awk -F'"' 'NR == 2 { print $4 }'
    }
    if [ -z "${REDIS_RATE[$slot]:-}" ]; then
        REDIS_RATE[$slot]=$(redis_run $((clients * 500 > 5000 ? clients * 500 : 5000)))
        [ -n "${REDIS_RATE[$slot]}" ] || die "redis-benchmark gave no result"
    fi
    REDIS_RPS=$(redis_run "$(awk -v r="${REDIS_RATE[$slot]}" -v s="$SECS" 'BEGIN { printf "%d", r * s }')")
    [ -n "$REDIS_RPS" ] || die "redis-benchmark gave no result"
    REDIS_RATE[$slot]=$REDIS_RPS
}

# 64 clients need 64 connections of the shared cluster: check there is room for them first.
free_slots() {
    psql -X -At -d postgres -c "SELECT current_setting('max_connections')::int
        - current_setting('superuser_reserved_connections')::int - count(*) FROM pg_stat_activity"
}

# Rounds: every workload at every client count once per round, so that each is compared with the
# SELECT 1 (and the Redis run) of its own round.
declare -A ROUND_TPS
add() { ROUND_TPS[$1]+=" $2"; say "  $1: $2"; }
for round in $(seq 1 "$ROUNDS"); do
    for c in "${CLIENT_COUNTS[@]}"; do
        if [ "$(free_slots)" -lt $((c + 4)) ]; then
            say "round $round: skipping $c clients: only $(free_slots) free connections on the cluster"
            continue
        fi
        say "round $round, $c clients: SELECT 1, rate_limit_hit (random, hot), a built-in C function, Redis (random, hot), ${SECS}s each"
        add "select1_c$c" "$(pgbench_tps "$DB" "$c" "$SECS" prepared "$SELECT1_SQL")"
        add "rl_random_c$c" "$(pgbench_tps "$DB" "$c" "$SECS" prepared "$RANDOM_SQL")"
        add "rl_hot_c$c" "$(pgbench_tps "$DB" "$c" "$SECS" prepared "$HOT_SQL")"
        add "c_floor_c$c" "$(pgbench_tps "$DB" "$c" "$SECS" prepared "$FLOOR_SQL")"
        redis_rps "$c" 'rl:__rand_int__'
        add "redis_random_c$c" "$REDIS_RPS"
        redis_rps "$c" 'rl:hot'
        add "redis_hot_c$c" "$REDIS_RPS"
        if [ "$c" = 16 ]; then
            redis_rps "$c" 'rl:__rand_int__' -h 127.0.0.1 -p "$PORT"
            add "redis_random_tcp_c$c" "$REDIS_RPS"
            add "rl_random_for_tcp_c$c" "$(pgbench_tps "$DB" "$c" "$SECS" prepared "$RANDOM_SQL")"
            # The table fallback (what a cluster without the preload runs).
            add "rl_table_random_c$c" "$(PGOPTIONS="${PGOPTIONS:-} -c api_gateway.rate_limit_shared_memory=off" \
                pgbench_tps "$DB" "$c" "$SECS" prepared "$RANDOM_SQL")"
            add "rl_table_hot_c$c" "$(PGOPTIONS="${PGOPTIONS:-} -c api_gateway.rate_limit_shared_memory=off" \
                pgbench_tps "$DB" "$c" "$SECS" prepared "$HOT_SQL")"
        fi
    done
done
for name in "${!ROUND_TPS[@]}"; do
    result_rounds "$name" tps ${ROUND_TPS[$name]}
done
result rounds "$ROUNDS" count
# Nothing was refused: the limits were out of reach, so both sides counted every call.
[ "$(redis-cli -s "$SOCK" get rl:hot)" -gt 0 ] || die "Redis counted nothing on the hot key"
say "results in ${BENCH_RESULTS#"$BENCH_ROOT"/}"
