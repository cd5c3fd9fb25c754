#!/usr/bin/env bash
# Benchmark of webhooks (issue 6), on a scratch database made from the mini fixture:
#
#  A. capture cost: pgbench single-row INSERTs into res_partner with no webhook vs one active
#     webhook, interleaved rounds in the same run (the machine is shared and noisy: medians and
#     their ratio are reported, nothing is asserted), no worker running.
#  B. the same with the delivery worker really running and POSTing every event to a local
#     receiver on this machine (they take CPU from PostgreSQL: the realistic single-box case).
#  C. the same with an idle worker: it runs (polling for due jobs every 25 ms) but its requests
#     hang on an endpoint that never answers, so it delivers nothing during the run.
#  D. delivery at 1, 10 and 100 endpoints (webhooks on res.partner, each its own URL on the
#     local receiver): BENCH_EVENTS queued events drained by the worker (events/s), then
#     single-row commits at a steady BENCH_RATE events/s in all (so BENCH_RATE / endpoints rows
#     per second) with the commit-to-receipt latency of every event.
#
#   bench/webhooks.sh                       # about 4 minutes
#   BENCH_QUICK=1 bench/webhooks.sh         # about a minute
#   BENCH_SECONDS=10 BENCH_ROUNDS=7 bench/webhooks.sh
#
# Knobs: BENCH_DB (agw_bench_wh), BENCH_SECONDS (5 per pgbench run, quick 2), BENCH_ROUNDS (5,
# quick 1), BENCH_CLIENTS (4), BENCH_EVENTS (20000, quick 3000), BENCH_RATE (200 events/s),
# BENCH_LATENCY_S (10, quick 3), BENCH_ENDPOINTS ("1 10 100"), BENCH_KEEP=1 (keep the database),
# PGBENCH, BENCH_COMPARE_SQL=1 (each round of A, B and C also measures the PL/pgSQL capture,
# _webhook_capture_sql, which was the trigger function before 0.5.0: a same-run before/after).
# The cluster is PGHOST/PGPORT (default: the system one). Builds the webhook_bench example
# (release) unless WEBHOOK_BENCH points at a binary.
# Output: JSON lines in target/bench/webhooks.jsonl (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$BENCH_ROOT
DB=${BENCH_DB:-agw_bench_wh}
SECS=${BENCH_SECONDS:-$(quick_or 2 5)}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 5)}
CLIENTS=${BENCH_CLIENTS:-4}
EVENTS=${BENCH_EVENTS:-$(quick_or 3000 20000)}
RATE=${BENCH_RATE:-200}
LAT_S=${BENCH_LATENCY_S:-$(quick_or 3 10)}
ENDPOINT_COUNTS=(${BENCH_ENDPOINTS:-1 10 100})
KEEP=${BENCH_KEEP:-0}
FIXTURE=$ROOT/tests/fixtures/odoo19_mini.sql
COMPARE_SQL=${BENCH_COMPARE_SQL:-0}
URL="postgresql:///$DB?host=$PGHOST${PGPORT:+&port=$PGPORT}"

die() { echo "webhooks.sh: error: $*" >&2; exit 1; }
say() { echo "webhooks.sh: $*" >&2; }

[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lowercase identifier"
[ -x "$PGBENCH" ] || die "pgbench not found at $PGBENCH"
wait_for_postgres || die "cannot connect to PostgreSQL at $PGHOST"

if [ -n "${WEBHOOK_BENCH:-}" ]; then
    BIN=$WEBHOOK_BENCH
else
    say "building the webhook_bench example (release)"
    (cd "$ROOT" && cargo build -q --release -p api_gateway_front --example webhook_bench) ||
        die "cargo build of the webhook_bench example failed"
    BIN=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/webhook_bench
fi
[ -x "$BIN" ] || die "no webhook_bench binary at $BIN"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agw-bench-wh.XXXXXX")
PIDS=()
cleanup() {
    local rc=$?
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$KEEP" != 1 ]; then
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
results_open webhooks
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

say "creating database $DB from $(basename "$FIXTURE")"
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
q -f "$FIXTURE" >/dev/null
q -c 'CREATE EXTENSION api_gateway' >/dev/null
q -c "UPDATE api_gateway.webhook_settings SET allow_private_targets = true, ddl_lock_timeout = '30s'" >/dev/null

cat >"$WORK/insert.sql" <<'EOF'
INSERT INTO res_partner (name, type, active, email, is_company) VALUES ('pgbench ' || :client_id, 'contact', true, 'bench@example.com', false);
EOF

# tps of one pgbench run.
tps() {
    local log=$WORK/pgbench.log
    "$PGBENCH" -n -T "$SECS" -c "$CLIENTS" -j "$(client_threads "$CLIENTS")" \
        -f "$WORK/insert.sql" "$DB" >"$log" 2>&1 || { cat "$log" >&2; die "pgbench failed"; }
    grep -q aborted "$log" && { cat "$log" >&2; die "pgbench clients aborted"; }
    sed -nE 's/^tps = ([0-9.]+) .*/\1/p' "$log" | head -1
}
# The INSERT trigger of res_partner runs the PL/pgSQL capture instead of the Rust entry point
# (until the webhook's next save recreates it).
sql_capture() {
    q -c "CREATE OR REPLACE TRIGGER api_gateway_webhook_insert AFTER INSERT ON res_partner REFERENCING NEW TABLE AS agw_new FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._webhook_capture_sql()" >/dev/null
}
rust_capture() {
    q -c "CREATE OR REPLACE TRIGGER api_gateway_webhook_insert AFTER INSERT ON res_partner REFERENCING NEW TABLE AS agw_new FOR EACH STATEMENT EXECUTE FUNCTION api_gateway._webhook_capture()" >/dev/null
}
reset_rows() { q -c "DELETE FROM res_partner WHERE name LIKE 'pgbench %'" -c "TRUNCATE api_gateway.webhook_job" >/dev/null; }

# ---------------------------------------------------------------- A: capture cost, no worker
say "A: $ROUNDS rounds of ${SECS}s, $CLIENTS clients: no webhook vs one webhook, no worker running"
A_NONE=(); A_HOOK=(); A_SQL=()
for r in $(seq "$ROUNDS"); do
    q -c "DELETE FROM api_gateway.webhook WHERE name = 'pgbench'" >/dev/null
    A_NONE+=("$(tps)")
    q -c "INSERT INTO api_gateway.webhook (name, model, url) VALUES ('pgbench', 'res.partner', 'https://hooks.example.com/pgbench')" >/dev/null
    A_HOOK+=("$(tps)")
    if [ "$COMPARE_SQL" = 1 ]; then sql_capture; A_SQL+=("$(tps)"); rust_capture; fi
    reset_rows
done
q -c "DELETE FROM api_gateway.webhook WHERE name = 'pgbench'" >/dev/null
say "A: none ${A_NONE[*]} | webhook ${A_HOOK[*]}${A_SQL[*]:+ | SQL capture ${A_SQL[*]}}"

# ---------------------------------------------------------------- C: an idle worker
# An endpoint that accepts connections and never answers: the worker's 8 requests for the
# webhook hang (timeout 5 min), so it polls and delivers nothing while pgbench runs.
say "C: $ROUNDS rounds: no webhook vs one webhook, an idle worker running"
python3 -c "
import socket, time
s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(64); print(s.getsockname()[1], flush=True)
held = []
while True:
    c, _ = s.accept(); held.append(c)
" >"$WORK/hang.port" &
HANG=$!; PIDS+=("$HANG")
for _ in $(seq 50); do [ -s "$WORK/hang.port" ] && break; sleep 0.1; done
HANG_URL="http://127.0.0.1:$(cat "$WORK/hang.port")/hook"
DATABASE_URL=$URL BENCH_WEBHOOK=serve "$BIN" serve >"$WORK/idle.out" 2>"$WORK/idle.err" &
IDLE=$!; PIDS+=("$IDLE")
for _ in $(seq 100); do [ -s "$WORK/idle.out" ] && break; sleep 0.1; done
[ -s "$WORK/idle.out" ] || { cat "$WORK/idle.err" >&2; die "webhook_bench serve did not start"; }
q -c "UPDATE api_gateway.webhook SET active = false WHERE name = 'serve'" >/dev/null
q -c "INSERT INTO api_gateway.webhook (name, model, url, timeout, active) VALUES ('pgbench', 'res.partner', '$HANG_URL', '5 minutes', false)" >/dev/null
C_NONE=(); C_HOOK=(); C_SQL=()
for r in $(seq "$ROUNDS"); do
    q -c "UPDATE api_gateway.webhook SET active = false WHERE name = 'pgbench'" >/dev/null
    C_NONE+=("$(tps)")
    q -c "UPDATE api_gateway.webhook SET active = true WHERE name = 'pgbench'" >/dev/null
    C_HOOK+=("$(tps)")
    if [ "$COMPARE_SQL" = 1 ]; then sql_capture; C_SQL+=("$(tps)"); rust_capture; fi
    reset_rows
done
kill -TERM "$IDLE" 2>/dev/null || true; wait "$IDLE" 2>/dev/null || true
kill "$HANG" 2>/dev/null || true; wait "$HANG" 2>/dev/null || true
q -c "DELETE FROM api_gateway.webhook WHERE name IN ('pgbench', 'serve')" >/dev/null
say "C: none ${C_NONE[*]} | webhook ${C_HOOK[*]}${C_SQL[*]:+ | SQL capture ${C_SQL[*]}}"

# ---------------------------------------------------------------- B: with deliveries
say "B: $ROUNDS rounds: no webhook vs one webhook delivered by the worker to a local receiver"
DATABASE_URL=$URL BENCH_WEBHOOK=serve "$BIN" serve >"$WORK/serve.out" 2>"$WORK/serve.err" &
SERVER=$!; PIDS+=("$SERVER")
for _ in $(seq 100); do [ -s "$WORK/serve.out" ] && break; sleep 0.1; done
[ -s "$WORK/serve.out" ] || { cat "$WORK/serve.err" >&2; die "webhook_bench serve did not start"; }
B_NONE=(); B_HOOK=(); B_BACKLOG=(); B_SQL=()
drain_backlog() {
    for _ in $(seq 300); do
        [ "$(q -c "SELECT count(*) FROM api_gateway.webhook_job WHERE state <> 'delivered'")" = 0 ] && break
        sleep 0.1
    done
}
for r in $(seq "$ROUNDS"); do
    q -c "UPDATE api_gateway.webhook SET active = false WHERE name = 'serve'" >/dev/null
    B_NONE+=("$(tps)")
    q -c "UPDATE api_gateway.webhook SET active = true WHERE name = 'serve'" >/dev/null
    B_HOOK+=("$(tps)")
    B_BACKLOG+=("$(q -c "SELECT count(*) FROM api_gateway.webhook_job WHERE state <> 'delivered'")")
    drain_backlog
    if [ "$COMPARE_SQL" = 1 ]; then sql_capture; B_SQL+=("$(tps)"); rust_capture; drain_backlog; fi
    reset_rows
done
kill -TERM "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true
say "B: none ${B_NONE[*]} | webhook ${B_HOOK[*]} | backlog at the end of each run ${B_BACKLOG[*]}${B_SQL[*]:+ | SQL capture ${B_SQL[*]}}"

# ---------------------------------------------------------------- D: delivery
j() { python3 -c "import json,sys; print(json.loads(sys.argv[1])[sys.argv[2]])" "$1" "$2"; }
result_rounds capture_none_a tps "${A_NONE[@]}"
result_rounds capture_hook_a tps "${A_HOOK[@]}"
result_rounds capture_none_b tps "${B_NONE[@]}"
result_rounds capture_hook_b tps "${B_HOOK[@]}"
result_rounds capture_none_c tps "${C_NONE[@]}"
result_rounds capture_hook_c tps "${C_HOOK[@]}"
if [ "$COMPARE_SQL" = 1 ]; then
    result_rounds capture_sql_a tps "${A_SQL[@]}"
    result_rounds capture_sql_b tps "${B_SQL[@]}"
    result_rounds capture_sql_c tps "${C_SQL[@]}"
fi
for e in "${ENDPOINT_COUNTS[@]}"; do
    say "D: $e endpoint(s): draining $EVENTS queued events"
    DRAIN=$(DATABASE_URL=$URL BENCH_ENDPOINTS=$e BENCH_EVENTS=$EVENTS "$BIN" drain) || die "drain failed"
    say "D: $DRAIN"
    say "D: $e endpoint(s): latency at $RATE events/s for ${LAT_S}s"
    LAT=$(DATABASE_URL=$URL BENCH_ENDPOINTS=$e BENCH_RATE=$RATE BENCH_SECONDS=$LAT_S "$BIN" latency) ||
        die "latency run failed"
    say "D: $LAT"
    [ "$(j "$LAT" received)" = "$(j "$LAT" events)" ] || die "latency run: not every event arrived: $LAT"
    result "drain_events_e$e" "$(j "$DRAIN" events)" count
    result "drain_events_per_s_e$e" "$(j "$DRAIN" events_per_s)" events/s
    result "latency_events_e$e" "$(j "$LAT" events)" count
    for p in median p95 p99 max; do
        result "latency_${p}_ms_e$e" "$(j "$LAT" "${p}_ms")" ms
    done
    reset_rows
done
result latency_rate "$RATE" events/s
result capture_rounds "$ROUNDS" count
say "results in ${BENCH_RESULTS#"$ROOT"/}"
