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
#
# Then, when ../shared has the real Odoo database (odoo19_demo.sql.gz; BENCH_DEMO_DUMP overrides;
# BENCH_HTTP_REAL=0 skips it), issue 14's query on it as the admin (uid 2):
# GET /api/v1/res.partner?domain=[["is_company","=",true]]&fields=name,email&limit=10 with the
# admin's Odoo API key and with a JWT, through `serve --single-statement false` (gate and data
# call in two transactions) and `--single-statement true` (one statement, the default when the
# counters are in shared memory), each against pgbench sending the same
# statements (bench/pgbench/http_real_search_read.sql, http_real_single.sql). And when ODOO_URL
# reaches an Odoo 19 (e.g. http://127.0.0.1:8069; ODOO_DATABASE, default odoo19, and ODOO_KEY, default
# the admin key of odoo19_demo.keys.json), the same query through its JSON-2 API
# (POST /json/2/res.partner/search_read, wrk with a Lua script) in the same rounds: read only.
# BENCH_HTTP_MINI=0 skips the mini-fixture part.
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
# The floor of any HTTP front on the real database (front/examples/http_floor.rs).
FLOOR_BIN=${CARGO_TARGET_DIR:-$BENCH_ROOT/target}/release/examples/http_floor
(cd "$BENCH_ROOT" && cargo build -q --release -p api_gateway_front --example http_floor >&2)

results_open http
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agw-bench-http.XXXXXX")
SERVER=
SERVERS=()
RDB=${DB}_real
cleanup() {
    local rc=$? pid
    for pid in $SERVER "${SERVERS[@]}"; do kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
    if [ -n "${PGB:-}" ]; then
        [ -f "$PGB/pgbouncer.pid" ] && kill "$(cat "$PGB/pgbouncer.pid")" 2>/dev/null
        rm -rf "$PGB"
    fi
    [ "$KEEP" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
        -c "DROP DATABASE IF EXISTS $RDB WITH (FORCE)" >/dev/null 2>&1 || true
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }

# wrk_run CRED [URL [wrk options...]] -> "requests/s p50_ms p99_ms"
wrk_run() {
    local cred=$1 url=${2:-http://127.0.0.1:$PORT$PATH_LIST}
    shift $(($# < 2 ? $# : 2))
    wrk -t"$(client_threads "$CONNS")" -c"$CONNS" -d"${SECS}s" --latency -H "Authorization: Bearer $cred" "$@" "$url" >"$WORK/wrk.out"
    grep -qE 'Non-2xx|Socket errors' "$WORK/wrk.out" && { cat "$WORK/wrk.out" >&2; die "wrk saw errors"; }
    awk 'function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         /^Requests\/sec:/ { rps = $2 } $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
         END { print rps, p50, p99 }' "$WORK/wrk.out"
}
if [ "${BENCH_HTTP_MINI:-1}" = 1 ]; then
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
RUST_LOG=warn "$BIN" serve --database-url "postgresql:///$DB?host=$PGHOST${PGPORT:+&port=$PGPORT}" --listen "127.0.0.1:$PORT" \
    --pool-size "$CONNS" --log-level errors --maintenance-interval-s 0 --webhooks false \
    --single-statement false --connection-settings true >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null || die "the server did not start: $(tail -5 "$WORK/server.log")"
# pgbench's scripts send each statement alone, as the front does when its connections have the
# statement timeout from their start-up packet.
! grep -q "did not take" "$WORK/server.log" || die "the front sets the timeout per transaction: $(tail -3 "$WORK/server.log")"

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

declare -A RPS P50 P99 SQLTPS
for kind in jwt key; do RPS[$kind]=; P50[$kind]=; P99[$kind]=; SQLTPS[$kind]=; done
for round in $(seq 1 "$ROUNDS"); do
    for kind in jwt key; do
        if [ "$kind" = jwt ]; then cred=$JWT; else cred=$KEY; fi
        # Warm-up: every pooled connection verifies the key once (PBKDF2) and plans its statements.
        wrk -t1 -c"$CONNS" -d1s -H "Authorization: Bearer $cred" "http://127.0.0.1:$PORT$PATH_LIST" >/dev/null
        read -r rps p50 p99 <<<"$(wrk_run "$cred")"
        tps=$(pgbench_tps "$DB" "$CONNS" "$SECS" prepared "$BENCH_DIR/pgbench/http_search_read.sql" \
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
kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; SERVER=
fi

DEMO_DUMP=${BENCH_DEMO_DUMP:-$BENCH_ROOT/../shared/fixtures/odoo19_demo.sql.gz}
if [ "${BENCH_HTTP_REAL:-1}" = 1 ] && [ -f "$DEMO_DUMP" ]; then
    rq() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$RDB" "$@"; }
    say "database $RDB: the real Odoo database ${DEMO_DUMP#"$BENCH_ROOT"/}"
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $RDB WITH (FORCE)" -c "CREATE DATABASE $RDB" >/dev/null
    zcat "$DEMO_DUMP" | rq >/dev/null
    rq -c 'CREATE EXTENSION api_gateway' -c 'ANALYZE' >/dev/null
    KEYS_JSON=${DEMO_DUMP%.sql.gz}.keys.json
    ADMIN_KEY=$(python3 -c 'import json, sys
k = [k for k in json.load(open(sys.argv[1]))["keys"] if k["login"] == "admin" and not k["scope"] and not k["expiration_date"]]
print(k[0]["key"])' "$KEYS_JSON") || die "no admin key in $KEYS_JSON"
    ADMIN_JWT=$(rq <<SQL
INSERT INTO api_gateway.profile (user_id, rate_limit) VALUES (2, 1000000000)
    ON CONFLICT (user_id) DO UPDATE SET rate_limit = EXCLUDED.rate_limit;
SELECT i.body->>'access_token'
  FROM api_gateway.create_client('bench http real', 2, '{read}') AS c,
       LATERAL api_gateway.issue_token(c.client_id, c.client_secret) AS i
 WHERE i.status = 200;
SQL
)
    [ -n "$ADMIN_JWT" ] || die "issue_token gave no access token on $RDB"
    DOMAIN='[["is_company","=",true]]'
    PATH_REAL='/api/v1/res.partner?domain=%5B%5B%22is_company%22%2C%22%3D%22%2Ctrue%5D%5D&fields=name,email&limit=10'
    declare -A RPORT
    # unpiped: the one-statement front without pipelined connections (each request takes a
    # pooled connection of its own), a reference for what --pipelined-connections brings.
    for mode in two single unpiped; do
        RPORT[$mode]=$(free_port)
        # Each mode forced: the default depends on where the counters live (one statement when
        # they are in shared memory, as on a cluster set up by scripts/setup.sh).
        extra=(--single-statement false)
        [ "$mode" = single ] && extra=(--single-statement true)
        [ "$mode" = unpiped ] && extra=(--single-statement true --pipelined-connections 0)
        say "api-gateway serve on 127.0.0.1:${RPORT[$mode]} on $RDB (${mode} statement mode), pool of $CONNS"
        # (ODOO_URL is this script's, for the JSON-2 comparison: not the front's --odoo-url)
        env -u ODOO_URL -u ODOO_DATABASE RUST_LOG=warn "$BIN" serve --database-url "postgresql:///$RDB?host=$PGHOST${PGPORT:+&port=$PGPORT}" --listen "127.0.0.1:${RPORT[$mode]}" \
            --pool-size "$CONNS" --log-level errors --maintenance-interval-s 0 --webhooks false \
            --connection-settings true "${extra[@]}" \
            >"$WORK/server-$mode.log" 2>&1 &
        SERVERS+=($!)
    done
    for mode in two single unpiped; do
        for _ in $(seq 1 100); do
            curl -fs "http://127.0.0.1:${RPORT[$mode]}/health/ready" >/dev/null 2>&1 && break
            sleep 0.1
        done
        ! grep -q "did not take" "$WORK/server-$mode.log" || die "the front ($mode) sets the timeout per transaction"
        # The same 10 records as search_read answers in SQL, with either credential.
        want=$(rq -v d="$DOMAIN" <<<"SELECT api_gateway.search_read(2, 'res.partner', :'d', '{name,email}', 10)")
        for cred in "$ADMIN_KEY" "$ADMIN_JWT"; do
            curl -fs -H "Authorization: Bearer $cred" "http://127.0.0.1:${RPORT[$mode]}$PATH_REAL" >"$WORK/got.json" ||
                die "GET $PATH_REAL failed ($mode): $(tail -3 "$WORK/server-$mode.log")"
            python3 -c 'import json, sys
got = json.load(open(sys.argv[1]))["records"]; want = json.loads(sys.argv[2])
sys.exit(0 if got == want and len(got) == 10 else 1)' "$WORK/got.json" "$want" ||
                die "GET $PATH_REAL ($mode) does not answer search_read's 10 records"
        done
    done
    # The floor: a bare relay (hyper and tokio-postgres, the same statement on one pipelined
    # connection, its data column as the body; front/examples/http_floor.rs).
    FLOOR_PORT=$(free_port)
    DATABASE_URL="postgresql:///$RDB?host=$PGHOST${PGPORT:+&port=$PGPORT}" LISTEN="127.0.0.1:$FLOOR_PORT" \
        "$FLOOR_BIN" >"$WORK/floor.log" 2>&1 &
    SERVERS+=($!)
    for _ in $(seq 1 100); do grep -q listening "$WORK/floor.log" && break; sleep 0.1; done
    curl -fs -H "Authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:$FLOOR_PORT$PATH_REAL" >"$WORK/got.json" ||
        die "the floor relay does not answer: $(tail -3 "$WORK/floor.log")"
    python3 -c 'import json, sys
sys.exit(0 if json.load(open(sys.argv[1])) == json.loads(sys.argv[2]) else 1)' "$WORK/got.json" "$want" ||
        die "the floor relay does not answer search_read's 10 records"
    # JSON-2 on an Odoo, when one answers: the same query, read only.
    ODOO=
    if [ -n "${ODOO_URL:-}" ] && curl -fs -m 5 "${ODOO_URL%/}/web/health" >/dev/null 2>&1; then
        ODOO=${ODOO_URL%/}
        ODOO_KEY=${ODOO_KEY:-$ADMIN_KEY}
        cat >"$WORK/json2.lua" <<LUA
wrk.method = "POST"
wrk.body = '{"domain": [["is_company", "=", true]], "fields": ["name", "email"], "limit": 10}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["X-Odoo-Database"] = "${ODOO_DATABASE:-odoo19}"
LUA
        n=$(curl -fs -X POST -H "Authorization: Bearer $ODOO_KEY" -H "Content-Type: application/json" \
                -H "X-Odoo-Database: ${ODOO_DATABASE:-odoo19}" \
                -d '{"domain": [["is_company", "=", true]], "fields": ["name", "email"], "limit": 10}' \
                "$ODOO/json/2/res.partner/search_read" | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))') ||
            die "JSON-2 search_read on $ODOO failed"
        [ "$n" = 10 ] || die "JSON-2 search_read on $ODOO answered $n records, expected 10"
        say "Odoo at $ODOO answers JSON-2: measured in the same rounds"
        # And the one-statement front forwarding writes to that Odoo (--odoo-url): its reads of
        # stored fields send the same statement as without, once the field list is known.
        RPORT[odoo]=$(free_port)
        env -u ODOO_URL -u ODOO_DATABASE RUST_LOG=warn "$BIN" serve --database-url "postgresql:///$RDB?host=$PGHOST${PGPORT:+&port=$PGPORT}" \
            --listen "127.0.0.1:${RPORT[odoo]}" --pool-size "$CONNS" --log-level errors --maintenance-interval-s 0 \
            --webhooks false --connection-settings true --single-statement true \
            --odoo-url "$ODOO" --odoo-database "${ODOO_DATABASE:-odoo19}" >"$WORK/server-odoo.log" 2>&1 &
        SERVERS+=($!)
        for _ in $(seq 1 100); do
            curl -fs "http://127.0.0.1:${RPORT[odoo]}/health/ready" >/dev/null 2>&1 && break
            sleep 0.1
        done
        curl -fs -H "Authorization: Bearer $ADMIN_KEY" "http://127.0.0.1:${RPORT[odoo]}$PATH_REAL" >"$WORK/got.json" ||
            die "GET $PATH_REAL failed (--odoo-url): $(tail -3 "$WORK/server-odoo.log")"
        python3 -c 'import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["records"] == json.loads(sys.argv[2]) else 1)' "$WORK/got.json" "$want" ||
            die "GET $PATH_REAL (--odoo-url) does not answer search_read's 10 records"
    else
        say "ODOO_URL unset or unreachable: no JSON-2 comparison"
    fi
    # A reference for what any proxy in front of PostgreSQL costs on this machine: the front's
    # one-statement request sent by pgbench through PgBouncer (session mode, so -M prepared works
    # as it does straight to PostgreSQL) vs straight to PostgreSQL, in the same rounds.
    PGB=
    if command -v pgbouncer >/dev/null && [ -z "${PGPORT:-}" ] && [[ ${PGHOST:-/var/run/postgresql} == /* ]]; then
        # its own directory: PgBouncer runs as postgres, which cannot enter $WORK
        PGB=$(mktemp -d "${TMPDIR:-/tmp}/agw-bench-pgbouncer.XXXXXX") PGB_PORT=$(free_port)
        cat >"$PGB/pgbouncer.ini" <<INI
[databases]
$RDB = host=${PGHOST:-/var/run/postgresql} dbname=$RDB user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir = $PGB
auth_type = trust
auth_file = $PGB/userlist.txt
pool_mode = session
default_pool_size = $CONNS
max_client_conn = 100
logfile = $PGB/pgbouncer.log
pidfile = $PGB/pgbouncer.pid
INI
        echo "\"$(id -un)\" \"\"" >"$PGB/userlist.txt"
        chown -R postgres "$PGB"
        pgbouncer -d -u postgres "$PGB/pgbouncer.ini" || die "pgbouncer did not start"
        for _ in $(seq 1 50); do [ -S "$PGB/.s.PGSQL.$PGB_PORT" ] && break; sleep 0.1; done
        # (PgBouncer refuses the start-up parameter `options` that PGOPTIONS would send)
        PGOPTIONS= psql -X -q -At -h "$PGB" -p "$PGB_PORT" -d "$RDB" -c 'SELECT 1' >/dev/null || die "pgbouncer does not answer"
        say "PgBouncer $(pgbouncer --version | head -1 | awk '{print $2}') on $PGB: the proxy reference"
    else
        say "no pgbouncer (or a TCP PGHOST): no proxy reference"
    fi
    declare -A RR
    for round in $(seq 1 "$ROUNDS"); do
        if [ -n "$PGB" ]; then
            script=$BENCH_DIR/pgbench/http_real_single.sql
            tps=$(pgbench_tps "$RDB" "$CONNS" "$SECS" prepared "$script" -D cred="$ADMIN_KEY" -D domain="$DOMAIN")
            ptps=$(PGOPTIONS= pgbench_tps "$RDB" "$CONNS" "$SECS" prepared "$script" -D cred="$ADMIN_KEY" -D domain="$DOMAIN" \
                -h "$PGB" -p "$PGB_PORT")
            say "real, round $round: the one statement via pgbench $tps tps, through PgBouncer $ptps tps"
            RR[proxy_direct_tps]+=" $tps"; RR[proxy_pgbouncer_tps]+=" $ptps"
        fi
        for kind in key jwt; do
            if [ "$kind" = jwt ]; then cred=$ADMIN_JWT; else cred=$ADMIN_KEY; fi
            for mode in two single; do
                url="http://127.0.0.1:${RPORT[$mode]}$PATH_REAL"
                script=$BENCH_DIR/pgbench/http_real_search_read.sql
                [ "$mode" = single ] && script=$BENCH_DIR/pgbench/http_real_single.sql
                wrk -t1 -c"$CONNS" -d1s -H "Authorization: Bearer $cred" "$url" >/dev/null
                read -r rps p50 p99 <<<"$(wrk_run "$cred" "$url")"
                tps=$(pgbench_tps "$RDB" "$CONNS" "$SECS" prepared "$script" -D cred="$cred" -D uid=2 -D domain="$DOMAIN")
                say "real, round $round, $kind, $mode: HTTP $rps req/s (p50 $p50 ms), same SQL via pgbench $tps tps"
                RR[${kind}_${mode}_rps]+=" $rps"; RR[${kind}_${mode}_p50]+=" $p50"; RR[${kind}_${mode}_tps]+=" $tps"
                if [ "$kind" = key ] && [ "$mode" = single ]; then
                    url="http://127.0.0.1:${RPORT[unpiped]}$PATH_REAL"
                    wrk -t1 -c"$CONNS" -d1s -H "Authorization: Bearer $cred" "$url" >/dev/null
                    read -r rps _ _ <<<"$(wrk_run "$cred" "$url")"
                    say "real, round $round, key, single without pipelined connections: HTTP $rps req/s"
                    RR[key_unpiped_rps]+=" $rps"
                    url="http://127.0.0.1:$FLOOR_PORT$PATH_REAL"
                    wrk -t1 -c"$CONNS" -d1s -H "Authorization: Bearer $cred" "$url" >/dev/null
                    read -r rps _ _ <<<"$(wrk_run "$cred" "$url")"
                    say "real, round $round: the floor relay $rps req/s"
                    RR[floor_rps]+=" $rps"
                    if [ -n "$ODOO" ]; then
                        url="http://127.0.0.1:${RPORT[odoo]}$PATH_REAL"
                        wrk -t1 -c"$CONNS" -d1s -H "Authorization: Bearer $cred" "$url" >/dev/null
                        read -r rps _ _ <<<"$(wrk_run "$cred" "$url")"
                        say "real, round $round, key, single, --odoo-url: HTTP $rps req/s"
                        RR[key_odoo_rps]+=" $rps"
                    fi
                fi
            done
        done
        if [ -n "$ODOO" ]; then
            # Gateway (one statement: the default with the counters in shared memory; API key)
            # and JSON-2 back to back.
            read -r rps _ _ <<<"$(wrk_run "$ADMIN_KEY" "http://127.0.0.1:${RPORT[single]}$PATH_REAL")"
            wrk -t1 -c"$CONNS" -d1s -s "$WORK/json2.lua" -H "Authorization: Bearer $ODOO_KEY" \
                "$ODOO/json/2/res.partner/search_read" >/dev/null
            read -r orps op50 _ <<<"$(wrk_run "$ODOO_KEY" "$ODOO/json/2/res.partner/search_read" -s "$WORK/json2.lua")"
            say "real, round $round: gateway $rps req/s, Odoo JSON-2 $orps req/s (p50 $op50 ms)"
            RR[vs_gw_rps]+=" $rps"; RR[vs_odoo_rps]+=" $orps"; RR[vs_odoo_p50]+=" $op50"
        fi
    done
    for kind in key jwt; do
        for mode in two single; do
            result_rounds "real_http_${kind}_${mode}_rps" req/s ${RR[${kind}_${mode}_rps]}
            result "real_http_${kind}_${mode}_p50_ms" "$(median ${RR[${kind}_${mode}_p50]})" ms
            result_rounds "real_sql_${kind}_${mode}_tps" tps ${RR[${kind}_${mode}_tps]}
        done
    done
    result_rounds real_http_key_unpiped_rps req/s ${RR[key_unpiped_rps]}
    result_rounds real_floor_rps req/s ${RR[floor_rps]}
    if [ -n "$PGB" ]; then
        result_rounds real_proxy_direct_tps tps ${RR[proxy_direct_tps]}
        result_rounds real_proxy_pgbouncer_tps tps ${RR[proxy_pgbouncer_tps]}
    fi
    if [ -n "$ODOO" ]; then
        result_rounds real_http_key_odoo_rps req/s ${RR[key_odoo_rps]}
        result_rounds real_vs_gateway_rps req/s ${RR[vs_gw_rps]}
        result_rounds real_vs_odoo_rps req/s ${RR[vs_odoo_rps]}
        result real_vs_odoo_p50_ms "$(median ${RR[vs_odoo_p50]})" ms
    fi
fi
say "results in ${BENCH_RESULTS#"$BENCH_ROOT"/}"
