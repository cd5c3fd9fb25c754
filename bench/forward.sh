#!/usr/bin/env bash
# Writes forwarded to Odoo (issue 15): what `api-gateway serve --odoo-url` adds to Odoo's own
# time. The same res.partner `create` (and `write` of one field on an existing partner) is sent
# with wrk (bench/wrk/forward.lua) to Odoo's JSON-2 directly and through the gateway's REST route,
# as the same Odoo user with the same API key, with the same number of connections:
#   direct       POST <odoo>/json/2/res.partner/{create,write}            (the baseline)
#   gateway      POST /api/v1/res.partner, PATCH /api/v1/res.partner/<id>  (caller's own API key)
#   gateway_idem the same with an Idempotency-Key on every request (a new key each time)
#   gateway_jwt  the same as an OAuth2 client (JWT; the gateway forwards the client's upstream key)
# in interleaved rounds (each round runs the four cases of one operation back to back); a case's
# time per request is connections / throughput, and the ratio to the direct call is taken round by
# round (median of the rounds). The target (issue 15): the gateway adds at most 15 % (ratio <= 1.15).
#
# It needs a real Odoo 19; CI and most machines have none, so without one this SKIPS with a
# clear line (and the report says so). With one:
#   ODOO_URL=http://127.0.0.1:8069 ODOO_DATABASE=odoo19 \
#   DATABASE_URL='postgresql:///odoo19?host=/var/run/postgresql' bench/forward.sh
# DATABASE_URL (default: ODOO_DATABASE on the local cluster) is Odoo's own database with
# `CREATE EXTENSION api_gateway` (the front connects to
# it). ODOO_API_KEY defaults to the demo database's admin key (../shared/fixtures/
# odoo19_demo.keys.json, uid 2). The run creates res.partner records named "Bench forward" in
# that database (it is for a benchmark database, not production), gives uid 2 a profile with a
# rate limit nobody reaches (restored at the end) and an OAuth2 client (deleted at the end, with
# its upstream key).
#
# Knobs: BENCH_SECONDS (5 per run, quick 3), BENCH_ROUNDS (5, quick 1), BENCH_CONNECTIONS (2:
# wrk connections = the front's pool size), API_GATEWAY_BIN (a release binary; default: built
# with cargo). Output: JSON lines in target/bench/forward.jsonl (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS=${BENCH_SECONDS:-$(quick_or 3 5)}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 5)}
CONNS=${BENCH_CONNECTIONS:-2}
ODOO_URL=${ODOO_URL:-}
ODOO_URL=${ODOO_URL%/}
ODOO_DATABASE=${ODOO_DATABASE:-}
say() { echo "forward.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }

results_open forward
if [ -z "$ODOO_URL" ] || ! curl -fs -m 5 -o /dev/null "$ODOO_URL/web/version"; then
    say "SKIPPED: no Odoo 19 answers at ODOO_URL='$ODOO_URL' (GET /web/version); forwarded writes were NOT measured"
    result skipped 1 flag
    exit 0
fi
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer"
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ $CONNS =~ ^[1-9][0-9]*$ ]] || die "BENCH_CONNECTIONS must be a positive integer"
# The Odoo database, with the extension: DATABASE_URL, as data.sh names it (BENCH_ODOO_DATABASE_URL),
# else the database Odoo serves (ODOO_DATABASE) on this cluster, as odoo19-up.sh sets it up.
DATABASE_URL=${DATABASE_URL:-${BENCH_ODOO_DATABASE_URL:-postgresql:///${ODOO_DATABASE:-odoo19}?host=$PGHOST}}
command -v wrk >/dev/null || die "wrk not found (apt-get install wrk)"
version=$(curl -fsS -m 5 "$ODOO_URL/web/version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
case "$version" in 19.*) ;; *) die "Odoo $version at $ODOO_URL is not 19.x" ;; esac
if [ -z "${ODOO_API_KEY:-}" ]; then
    KEYS=${AGW_SHARED:-$BENCH_ROOT/../shared}/fixtures/odoo19_demo.keys.json
    ODOO_API_KEY=$(python3 -c "import json, sys; print(next(k['key'] for k in json.load(open(sys.argv[1]))['keys'] if k['uid'] == 2 and k['scope'] is None and k['expiration_date'] is None))" "$KEYS") ||
        die "no ODOO_API_KEY and no admin key in $KEYS"
fi

BIN=${API_GATEWAY_BIN:-${CARGO_TARGET_DIR:-$BENCH_ROOT/target}/release/api-gateway}
if [ -z "${API_GATEWAY_BIN:-}" ]; then
    say "building the release binary"
    (cd "$BENCH_ROOT" && cargo build -q --release -p api_gateway_front --bin api-gateway >&2)
fi
[ -x "$BIN" ] || die "no binary at $BIN"

q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DATABASE_URL" "$@"; }
q -c 'SELECT api_gateway.version()' >/dev/null || die "no api_gateway extension in DATABASE_URL"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/agw-bench-forward.XXXXXX")
SERVER= CLIENT= PROFILE_SAVED=0
cleanup() {
    local rc=$?
    if [ -n "$SERVER" ]; then kill -TERM "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null; fi
    # The OAuth2 client goes (its upstream key leaves Odoo with it); uid 2's profile is put back.
    [ -z "$CLIENT" ] || q -v c="$CLIENT" <<<"DELETE FROM api_gateway.client WHERE client_id = :'c'" >/dev/null 2>&1 || true
    if [ "$PROFILE_SAVED" = 1 ]; then
        q -c "DELETE FROM api_gateway.profile WHERE user_id = 2" >/dev/null 2>&1 || true
        [ ! -s "$WORK/profile.json" ] || q -v p="$(cat "$WORK/profile.json")" \
            <<<"INSERT INTO api_gateway.profile SELECT * FROM jsonb_populate_record(NULL::api_gateway.profile, :'p')" >/dev/null 2>&1 || true
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

# uid 2 gets a rate limit no run reaches (its own profile, if any, is restored at the end), and an
# OAuth2 client acting as it.
q -c "SELECT to_jsonb(p) FROM api_gateway.profile p WHERE user_id = 2" >"$WORK/profile.json"
PROFILE_SAVED=1
q -c "INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window, active) VALUES (2, 1000000000, 'minute', true)
      ON CONFLICT (user_id) DO UPDATE SET rate_limit = 1000000000, rate_limit_window = 'minute', active = true" >/dev/null
read -r CLIENT JWT < <(q -F ' ' -c "SELECT c.client_id, i.body->>'access_token'
    FROM api_gateway.create_client('bench forward', 2, '{read,write}') AS c,
         LATERAL api_gateway.issue_token(c.client_id, c.client_secret) AS i WHERE i.status = 200")
[ -n "$JWT" ] || die "issue_token gave no access token"

PORT=$(free_port)
say "Odoo $version at $ODOO_URL${ODOO_DATABASE:+ (database $ODOO_DATABASE)}; api-gateway serve on 127.0.0.1:$PORT, pool of $CONNS, log level errors"
# Log level `errors` as in bench/http.sh (bench/http_logging.sh measures what logging costs); no
# maintenance jobs, no webhook delivery in this process.
RUST_LOG=warn "$BIN" serve --database-url "$DATABASE_URL" --listen "127.0.0.1:$PORT" \
    --pool-size "$CONNS" --log-level errors --maintenance-interval-s 0 --webhooks false \
    --odoo-url "$ODOO_URL" ${ODOO_DATABASE:+--odoo-database "$ODOO_DATABASE"} >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 1 100); do
    curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -fs "http://127.0.0.1:$PORT/health/ready" >/dev/null || die "the server did not start: $(tail -5 "$WORK/server.log")"
GW=http://127.0.0.1:$PORT

# One partner per connection for the writes (no two requests wait on one row lock), made by Odoo.
odoo_json2() { # METHOD BODY
    curl -fsS -m 30 -X POST "$ODOO_URL/json/2/res.partner/$1" -H "Authorization: bearer $ODOO_API_KEY" \
        ${ODOO_DATABASE:+-H "X-Odoo-Database: $ODOO_DATABASE"} -H 'Content-Type: application/json' -d "$2"
}
IDS=$(odoo_json2 create "{\"vals_list\": [$(for k in $(seq 1 "$CONNS"); do printf '%s{"name": "Bench forward write %d"}' "$([ "$k" = 1 ] || echo ,)" "$k"; done)]}" |
    python3 -c 'import json, sys; print(",".join(map(str, json.load(sys.stdin))))') || die "JSON-2 create failed at $ODOO_URL"
say "partners written to: $IDS"

# Sanity: each case answers as expected once, and a retried Idempotency-Key is replayed.
check() { # EXPECTED_STATUS CURL_ARGS...
    local want=$1 got
    shift
    got=$(curl -s -o "$WORK/check.out" -w '%{http_code}' -m 30 -H 'Content-Type: application/json' "$@")
    [ "$got" = "$want" ] || die "$* answered $got, expected $want: $(head -c 300 "$WORK/check.out")"
}
first=${IDS%%,*}
check 201 -X POST "$GW/api/v1/res.partner" -H "Authorization: Bearer $ODOO_API_KEY" -d '{"name": "Bench forward"}'
check 204 -X PATCH "$GW/api/v1/res.partner/$first" -H "Authorization: Bearer $JWT" -d '{"ref": "bench-forward"}'
check 201 -X POST "$GW/api/v1/res.partner" -H "Authorization: Bearer $ODOO_API_KEY" -H "Idempotency-Key: bench-check-$$-$RANDOM" -d '{"name": "Bench forward"}'
key="bench-check-$$-$RANDOM-2"
check 201 -X POST "$GW/api/v1/res.partner" -H "Authorization: Bearer $ODOO_API_KEY" -H "Idempotency-Key: $key" -d '{"name": "Bench forward"}'
check 201 -D "$WORK/replay.h" -X POST "$GW/api/v1/res.partner" -H "Authorization: Bearer $ODOO_API_KEY" -H "Idempotency-Key: $key" -d '{"name": "Bench forward"}'
grep -qi '^idempotent-replayed: true' "$WORK/replay.h" || die "a retried Idempotency-Key was not replayed"

# CPU time, when Odoo and PostgreSQL run on this host: the front's process and its PostgreSQL
# backends (application_name api-gateway), Odoo's processes and their backends (Odoo names its
# connections odoo-<pid>), in clock ticks, from /proc. Unlike wall time it hardly depends on what
# else the machine is doing, so it says what the gateway costs even when the load is noisy.
TICK_US=$((1000000 / $(getconf CLK_TCK)))
pids_of() { # gateway | odoo
    if [ "$1" = gateway ]; then
        echo "$SERVER"
        q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'api-gateway'"
    else
        q -c "SELECT DISTINCT substr(application_name, 6) FROM pg_stat_activity WHERE application_name ~ '^odoo-[0-9]+$'
              UNION ALL SELECT pid::text FROM pg_stat_activity WHERE application_name ~ '^odoo-[0-9]+$'"
    fi
}
ticks() { # PID... -> "pid ticks" lines
    local p
    for p in "$@"; do [ -r "/proc/$p/stat" ] && awk -v p="$p" '{ print p, $14 + $15 }' "/proc/$p/stat" 2>/dev/null; done
    return 0
}
# ticks_spent BEFORE AFTER: ticks between two snapshots (a process that appeared counts fully)
ticks_spent() {
    awk 'NR == FNR { before[$1] = $2; next } { spent += $2 - before[$1] } END { print spent + 0 }' "$1" "$2"
}
CPU=1
odoo_pids=$(pids_of odoo | tr '\n' ' ')
if [ -z "$(ticks $odoo_pids)" ] || [ -z "$(ticks $(pids_of gateway | tail -n +2))" ]; then
    CPU=0
    say "Odoo or PostgreSQL is not on this host: CPU time is not measured"
fi

# run_case OP CASE -> "requests/s p50_ms requests front_cpu_ticks odoo_cpu_ticks"
RUN_NO=0
run_case() {
    local op=$1 case=$2 url=$GW auth="Bearer $ODOO_API_KEY" target=gateway idem= gw_pids odoo_pids
    RUN_NO=$((RUN_NO + 1))
    case $case in
        direct) url=$ODOO_URL target=direct auth="bearer $ODOO_API_KEY" ;;
        gateway) ;;
        gateway_idem) idem="bench-$$-$RUN_NO-$(date +%s%N)" ;;
        gateway_jwt) auth="Bearer $JWT" ;;
    esac
    if [ "$CPU" = 1 ]; then
        gw_pids=$(pids_of gateway | tr '\n' ' ') odoo_pids=$(pids_of odoo | tr '\n' ' ')
        ticks $gw_pids >"$WORK/gw0"
        ticks $odoo_pids >"$WORK/odoo0"
    fi
    FWD_TARGET=$target FWD_OP=$op FWD_AUTH=$auth FWD_DATABASE=$ODOO_DATABASE FWD_IDS=$IDS FWD_IDEMPOTENCY=$idem \
        wrk -t"$CONNS" -c"$CONNS" -d"${SECS}s" --timeout 30s --latency -s "$BENCH_DIR/wrk/forward.lua" "$url" >"$WORK/wrk.out"
    local gw_ticks=-1 odoo_ticks=-1
    if [ "$CPU" = 1 ]; then
        ticks $gw_pids $(pids_of gateway) >"$WORK/gw1"
        ticks $odoo_pids $(pids_of odoo) >"$WORK/odoo1"
        gw_ticks=$(ticks_spent "$WORK/gw0" <(sort -u "$WORK/gw1"))
        odoo_ticks=$(ticks_spent "$WORK/odoo0" <(sort -u "$WORK/odoo1"))
    fi
    grep -qE 'Non-2xx|Socket errors' "$WORK/wrk.out" && { cat "$WORK/wrk.out" >&2; tail -5 "$WORK/server.log" >&2; die "wrk saw errors ($op, $case)"; }
    awk -v gt="$gw_ticks" -v ot="$odoo_ticks" '
         function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
         /^Requests\/sec:/ { rps = $2 } $1 == "50%" { p50 = ms($2) } / requests in / { n = $1 }
         END { print rps, p50, n, gt, ot }' "$WORK/wrk.out"
}

CASES=(direct gateway gateway_idem gateway_jwt)
declare -A MS P50 GWCPU ODOOCPU
say "warm-up"
for op in create write; do for c in "${CASES[@]}"; do SECS=1 run_case "$op" "$c" >/dev/null; done; done
for round in $(seq 1 "$ROUNDS"); do
    for op in create write; do
        line="round $round, $op:"
        # The direct baseline runs first in odd rounds and last in even ones (load drifts).
        order=("${CASES[@]}")
        [ $((round % 2)) = 1 ] || order=(gateway gateway_idem gateway_jwt direct)
        for c in "${order[@]}"; do
            read -r rps p50 n gt ot <<<"$(run_case "$op" "$c")"
            [[ $rps =~ ^[0-9.]+$ ]] && [[ $n =~ ^[0-9]+$ ]] && [ "$n" -gt 0 ] || die "no throughput for $op $c"
            MS[$op.$c]+=" $(awk -v c="$CONNS" -v r="$rps" 'BEGIN { printf "%.3f", 1000 * c / r }')"
            P50[$op.$c]+=" $p50"
            line+=" $c $rps req/s (p50 $p50 ms"
            if [ "$CPU" = 1 ]; then
                # CPU microseconds per request: the gateway's (front + its backends), Odoo's
                GWCPU[$op.$c]+=" $((gt * TICK_US / n))"
                ODOOCPU[$op.$c]+=" $((ot * TICK_US / n))"
                line+=", CPU per request: gateway $((gt * TICK_US / n)) us, Odoo $((ot * TICK_US / n)) us"
            fi
            line+=")"
        done
        say "$line"
    done
done
for op in create write; do
    for c in "${CASES[@]}"; do
        # time per request (connections / throughput), per round and its median
        result_rounds "${op}_${c}_ms" ms ${MS[$op.$c]}
        result "${op}_${c}_p50_ms" "$(median ${P50[$op.$c]})" ms
        if [ "$CPU" = 1 ]; then
            result_rounds "${op}_${c}_gateway_cpu_us" us ${GWCPU[$op.$c]}
            result_rounds "${op}_${c}_odoo_cpu_us" us ${ODOOCPU[$op.$c]}
        fi
    done
done
result connections "$CONNS" count
result seconds "$SECS" s
result rounds "$ROUNDS" count
say "results in ${BENCH_RESULTS#"$BENCH_ROOT"/}"
