#!/usr/bin/env bash
# The cost of the traffic log: throughput of `api-gateway serve` (release build) with wrk, at log
# level `errors` (successful requests are not logged: the baseline), `metadata` (every request,
# one row each) and `payloads` (every request with its bodies), on two workloads: GET /api/v1/ping
# (the cheapest gated call, so the log's share is largest) and GET /api/v1/res.partner (five
# records). The levels are interleaved over BENCH_ROUNDS rounds and the median is kept; the
# report gives ratios to the `errors` level of the same run (the machine is shared and noisy).
#
#   bench/http_logging.sh                    # about 4 minutes (+ a release build if missing)
#   BENCH_QUICK=1 bench/http_logging.sh      # about a minute
#   BENCH_SECONDS=5 BENCH_ROUNDS=1 bench/http_logging.sh
#
# Knobs: BENCH_SECONDS (10 per run, quick 3), BENCH_ROUNDS (3, quick 1), BENCH_CONNECTIONS (16),
# BENCH_THREADS (2), BENCH_DB (agw_bench_logging), BENCH_KEEP=1 (keep the database),
# API_GATEWAY_BIN (a release binary; default: built with cargo under $CARGO_TARGET_DIR or target/).
# Output: JSON lines in target/bench/http_logging.jsonl (see bench/lib.sh); progress on stderr.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$BENCH_ROOT
SECS=${BENCH_SECONDS:-$(quick_or 3 10)}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 3)}
CONNS=${BENCH_CONNECTIONS:-16}
THREADS=${BENCH_THREADS:-2}
DB=${BENCH_DB:-agw_bench_logging}
KEEP=${BENCH_KEEP:-0}
FIXTURE=$ROOT/tests/fixtures/odoo19_mini.sql
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
say() { echo "http_logging.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lowercase identifier"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"
wait_for_postgres || die "cannot connect to PostgreSQL at $PGHOST"

BIN=${API_GATEWAY_BIN:-$TARGET/release/api-gateway}
if [ -z "${API_GATEWAY_BIN:-}" ]; then
    say "building the release binary"
    (cd "$ROOT" && cargo build -q --release -p api_gateway_front >&2)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

say "database $DB from the project fixture"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -f "$FIXTURE" >/dev/null
psql -X -q -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<'SQL'
CREATE EXTENSION api_gateway;
INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window, active)
VALUES (2, 100000000, 'minute', true)
ON CONFLICT (user_id) DO UPDATE SET rate_limit = 100000000, rate_limit_window = 'minute', active = true;
SQL
KEY=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['admin']['key'])" "$ROOT/tests/fixtures/odoo19_mini.keys.json")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL="postgresql:///$DB?host=$PGHOST"
work=$(mktemp -d)
SERVER=
cleanup() {
    [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null && wait "$SERVER" 2>/dev/null
    rm -rf "$work"
    [ "$KEEP" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

start() { # start LEVEL
    RUST_LOG=warn "$BIN" serve --database-url "$URL" --listen "127.0.0.1:$PORT" --log-level "$1" \
        --metrics-public true --maintenance-interval-s 0 --pool-size 8 >"$work/server.log" 2>&1 &
    SERVER=$!
    for _ in $(seq 1 100); do
        curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    die "the server did not start: $(tail -5 "$work/server.log")"
}
stop() {
    kill -TERM "$SERVER"
    wait "$SERVER" 2>/dev/null || true
    SERVER=
}
metric() { # metric NAME: a counter of the running server
    curl -fs "http://127.0.0.1:$PORT/metrics" | awk -v n="$1" '$1 == n { print $2 }'
}
# wrk prints "Requests/sec: N"
bench() { # bench PATH -> requests per second
    wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT$1" \
        | awk '/^Requests\/sec:/ { print $2 }'
}

declare -A PATHS=([ping]="/api/v1/ping" [list]="/api/v1/res.partner?limit=5&fields=name,email")
LEVELS=(errors metadata payloads)
: >"$work/results"
for round in $(seq 1 "$ROUNDS"); do
    # Each round starts at the next level, so that no level is always the first after a restart.
    for i in 0 1 2; do
        level=${LEVELS[$(( (round - 1 + i) % 3 ))]}
        start "$level"
        for w in ping list; do
            wrk -t1 -c2 -d1s -H "Authorization: Bearer $KEY" "http://127.0.0.1:$PORT${PATHS[$w]}" >/dev/null # warm-up
            sleep 0.5 # its last batch
            before=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM api_gateway.request_log")
            rps=$(bench "${PATHS[$w]}")
            sleep 0.5 # the last batch
            after=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM api_gateway.request_log")
            dropped=$(metric api_gateway_log_queue_dropped_total)
            say "round $round, $level, $w: $rps req/s, $((after - before)) rows, ${dropped:-0} dropped in all"
            echo "$level $w $rps $((after - before)) ${dropped:-0}" >>"$work/results"
        done
        stop
    done
done

results_open http_logging
python3 - "$work/results" "$SECS" >>"$BENCH_RESULTS" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
secs = int(sys.argv[2])
res = {}
for level, w, rps, logged, dropped in rows:
    res.setdefault((level, w), []).append((float(rps), int(logged), int(float(dropped))))
def out(id, value, unit):
    print(json.dumps({"id": id, "value": value, "unit": unit}))
for (level, w), runs in sorted(res.items()):
    # each round's figure (id@round) and their median, as bench/lib.sh's result_rounds
    for k, r in enumerate(runs, 1):
        out(f"logging_{level}_{w}_rps@{k}", r[0], "req/s")
    out(f"logging_{level}_{w}_rps", statistics.median(r[0] for r in runs), "req/s")
    out(f"logging_{level}_{w}_rows_per_request",
        round(sum(r[1] for r in runs) / max(1, sum(r[0] * secs for r in runs)), 3), "count")
    out(f"logging_{level}_{w}_dropped", max(r[2] for r in runs), "count")
out("logging_rounds", len(next(iter(res.values()))), "count")
PY
say "results in ${BENCH_RESULTS#"$ROOT"/}"
