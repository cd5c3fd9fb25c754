#!/usr/bin/env bash
# The HTTP front against the database work it does: `api-gateway serve` (release build) under wrk,
# GET /api/v1/res.partner?limit=80 with 5 fields as the demo user (record rules apply), with a JWT
# access token and with a cached Odoo API key as the bearer credential; the baseline is pgbench
# sending the same SQL with the same round trips straight to PostgreSQL
# (bench/pgbench/http_search_read.sql), the same number of connections. The ratio is what the
# HTTP layer (parsing, pool, JSON, response) costs on top of the database.
#
#   bench/http.sh                  # about 3 minutes (+ a release build if missing)
#   BENCH_QUICK=1 bench/http.sh    # about 30 s
#
# Knobs: BENCH_SECONDS (6, quick 3), BENCH_ROUNDS (3, quick 1; interleaved: each round's HTTP run
# is compared with that round's pgbench run and the median of those ratios is reported),
# BENCH_CONNECTIONS (8: wrk connections = pgbench clients = the front's pool size),
# BENCH_DB (agw_bench_http), BENCH_KEEP=1, API_GATEWAY_BIN (a release binary; default: built with
# cargo). Output: JSON lines in target/bench/http.jsonl (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS=${BENCH_SECONDS:-$(quick_or 3 6)}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 3)}
CONNS=${BENCH_CONNECTIONS:-8}
DB=${BENCH_DB:-agw_bench_http}
KEEP=${BENCH_KEEP:-0}
UID_DEMO=5
PATH_LIST='/api/v1/res.partner?limit=80&fields=name,email,phone,city,is_company'
say() { echo "http.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lowercase identifier"
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
command -v curl >/dev/null || die "curl not found"
wait_for_postgres || die "cannot connect to PostgreSQL at $PGHOST"

BIN=${API_GATEWAY_BIN:-${CARGO_TARGET_DIR:-$BENCH_ROOT/target}/release/api-gateway}
if [ -z "${API_GATEWAY_BIN:-}" ]; then
    say "building the release binary"
    (cd "$BENCH_ROOT" && cargo build -q --release -p api_gateway_front --bin api-gateway >&2)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

results_open http
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agw-bench-http.XXXXXX")
SERVER=
cleanup() {
    local rc=$?
    if [ -n "$SERVER" ]; then kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; fi
    [ "$KEEP" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

say "database $DB: the mini fixture and 2,000 more partners"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
q -f "$BENCH_ROOT/tests/fixtures/odoo19_mini.sql" >/dev/null
q -c 'CREATE EXTENSION api_gateway' >/dev/null
q -c "UPDATE api_gateway.settings SET sql_write_models = '{res.partner}'" >/dev/null
q -f "$BENCH_DIR/sql/partners.sql" >/dev/null
# The demo user gets a limit nobody reaches in a run (no 429), and an OAuth2 client acting as it.
JWT=$(q <<SQL
INSERT INTO api_gateway.profile (user_id, rate_limit) VALUES ($UID_DEMO, 1000000000)
    ON CONFLICT (user_id) DO UPDATE SET rate_limit = EXCLUDED.rate_limit;
SELECT i.body->>'access_token'
  FROM api_gateway.create_client('bench http', $UID_DEMO, '{read}') AS c,
       LATERAL api_gateway.issue_token(c.client_id, c.client_secret) AS i
 WHERE i.status = 200;
SQL
)
[ -n "$JWT" ] || die "issue_token gave no access token"
KEY=$(fixture_key demo)

PORT=$(free_port)
say "api-gateway serve on 127.0.0.1:$PORT, pool of $CONNS connections, log level errors"
# Log level `errors`: these successful requests are not logged (bench/http_logging.sh measures
# what logging costs); no maintenance jobs, no webhook delivery in this process.
RUST_LOG=warn "$BIN" serve --database-url "postgresql:///$DB?host=$PGHOST" --listen "127.0.0.1:$PORT" \
    --pool-size "$CONNS" --log-level errors --maintenance-interval-s 0 --webhooks false \
    >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null || die "the server did not start: $(tail -5 "$WORK/server.log")"

# Sanity: both credentials get the same 80 records over HTTP, and pgbench's script passes the gate.
for cred in "$JWT" "$KEY"; do
    n=$(curl -fs -H "Authorization: Bearer $cred" "http://127.0.0.1:$PORT$PATH_LIST" |
        python3 -c 'import json, sys; v = json.load(sys.stdin); print(len(v if isinstance(v, list) else v["records"]))') ||
        die "GET $PATH_LIST failed"
    [ "$n" = 80 ] || die "GET $PATH_LIST returned $n records, expected 80"
done
status=$(q -v c="$KEY" <<'SQL'
SELECT status FROM api_gateway.authenticate('Bearer ' || :'c', '127.0.0.1', 'GET');
SQL
)
[ "$status" = 200 ] || die "authenticate with the demo key answered $status"

# wrk_run CRED -> "requests/s p50_ms p99_ms"
wrk_run() {
    wrk -t2 -c"$CONNS" -d"${SECS}s" --latency -H "Authorization: Bearer $1" "http://127.0.0.1:$PORT$PATH_LIST" >"$WORK/wrk.out"
    grep -qE 'Non-2xx|Socket errors' "$WORK/wrk.out" && { cat "$WORK/wrk.out" >&2; die "wrk saw errors"; }
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         /^Requests\/sec:/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
         END { print rps, p50, p99 }' "$WORK/wrk.out"
}
declare -A RPS P50 P99 SQLTPS
for kind in jwt key; do RPS[$kind]=; P50[$kind]=; P99[$kind]=; SQLTPS[$kind]=; done
for round in $(seq 1 "$ROUNDS"); do
    for kind in jwt key; do
        if [ "$kind" = jwt ]; then cred=$JWT; else cred=$KEY; fi
        # Warm-up: every pooled connection verifies the key once (PBKDF2) and plans its statements.
        wrk -t1 -c"$CONNS" -d1s -H "Authorization: Bearer $cred" "http://127.0.0.1:$PORT$PATH_LIST" >/dev/null
        read -r rps p50 p99 <<<"$(wrk_run "$cred")"
        tps=$(pgbench_tps "$DB" "$CONNS" "$SECS" extended "$BENCH_DIR/pgbench/http_search_read.sql" \
            -D cred="$cred" -D uid="$UID_DEMO")
        say "round $round, $kind: HTTP $rps req/s (p50 $p50 ms, p99 $p99 ms), same SQL via pgbench $tps tps"
        RPS[$kind]+=" $rps"; P50[$kind]+=" $p50"; P99[$kind]+=" $p99"; SQLTPS[$kind]+=" $tps"
    done
done
for kind in jwt key; do
    result_rounds "http_${kind}_rps" req/s ${RPS[$kind]}
    result "http_${kind}_p50_ms" "$(median ${P50[$kind]})" ms
    result "http_${kind}_p99_ms" "$(median ${P99[$kind]})" ms
    result_rounds "sql_${kind}_tps" tps ${SQLTPS[$kind]}
done
result http_connections "$CONNS" count
say "results in ${BENCH_RESULTS#"$BENCH_ROOT"/}"
