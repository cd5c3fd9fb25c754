#!/usr/bin/env bash
# Benchmark of the gate's SQL functions (jwt_verify, rate_limit_hit, authenticate, verify_api_key)
# against baselines measured in the same run: the machine is shared and noisy, so the report
# gives ratios and never asserts a timing. Uses the extension as installed (no build here).
#
#   bench/gate.sh                   # about 4 minutes
#   BENCH_QUICK=1 bench/gate.sh     # about a minute: shorter runs, fewer keys and calls
#   BENCH_SECONDS=5 bench/gate.sh   # length of each pgbench run (default 5, quick 3)
#   BENCH_ROUNDS=3 bench/gate.sh    # interleaved rounds of the pgbench runs (default 3, quick 1)
#   BENCH_KEEP=1 bench/gate.sh      # keep the agw_bench database afterwards
#
# Other knobs: BENCH_DB (agw_bench), BENCH_KEYS (200 keys for the uncached verify_api_key run),
# BENCH_LOOP (10000 calls per jwt_verify loop), PGBENCH (path of pgbench).
# Output: JSON lines in target/bench/gate.jsonl (see bench/lib.sh; bench/report.py turns them
# into docs/benchmarks.md); progress goes to stderr.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$BENCH_ROOT
BENCH=$BENCH_DIR
SECS=${BENCH_SECONDS:-$(quick_or 3 5)}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 3)}
DB=${BENCH_DB:-agw_bench}
KEEP=${BENCH_KEEP:-0}
NKEYS=${BENCH_KEYS:-$(quick_or 40 200)}
LOOP_N=${BENCH_LOOP:-$(quick_or 2000 10000)}
LOOP_REPS=5          # timed repetitions of each loop (after one warm-up); the median is used
KEY_TRIALS=3         # fresh backends for the uncached verify_api_key run; the median is used
FIXTURE=$ROOT/tests/fixtures/odoo19_mini.sql
KEYS_JSON=$ROOT/tests/fixtures/odoo19_mini.keys.json
JWT_SECRET='bench-hs256-secret-0123456789abcdef0123456789abcdef'

die() { echo "gate.sh: error: $*" >&2; exit 1; }
say() { echo "gate.sh: $*" >&2; }
trap 'echo "gate.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

# ---------------------------------------------------------------------------------------------
# Checks before touching anything
# ---------------------------------------------------------------------------------------------
[[ $SECS =~ ^[1-9][0-9]*$ ]] || die "BENCH_SECONDS must be a positive integer (got '$SECS')"
[[ $NKEYS =~ ^[1-9][0-9]*$ ]] || die "BENCH_KEYS must be a positive integer (got '$NKEYS')"
[[ $LOOP_N =~ ^[1-9][0-9]*$ ]] || die "BENCH_LOOP must be a positive integer (got '$LOOP_N')"
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lowercase identifier (got '$DB')"
[ -x "$PGBENCH" ] || die "pgbench not found at $PGBENCH (package postgresql-15, or set PGBENCH)"
command -v psql >/dev/null || die "psql not found"
command -v python3 >/dev/null || die "python3 not found"
[ -f "$FIXTURE" ] || die "fixture $FIXTURE not found"
[ -f "$KEYS_JSON" ] || die "fixture keys $KEYS_JSON not found"
wait_for_postgres ||
    die "cannot connect to PostgreSQL at $PGHOST as $(id -un) (run scripts/setup.sh first)"
avail() { psql -X -At -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = '$1'"; }
[ -n "$(avail api_gateway)" ] || die "extension api_gateway is not installed (run scripts/setup.sh first)"
[ -n "$(avail pgcrypto)" ] || die "extension pgcrypto is not available (install postgresql-contrib)"

# Python with passlib: the project's .venv if it has it, else our own target/bench-venv.
PY=
if [ -x "$ROOT/.venv/bin/python" ] && "$ROOT/.venv/bin/python" -c 'import passlib' 2>/dev/null; then
    PY=$ROOT/.venv/bin/python
else
    venv=$ROOT/target/bench-venv
    if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import passlib' 2>/dev/null; }; then
        say "creating $venv with passlib"
        python3 -m venv "$venv" || die "python3 -m venv failed (install python3-venv)"
        "$venv/bin/pip" install -q --disable-pip-version-check 'passlib==1.7.4' ||
            die "pip could not install passlib into $venv"
    fi
    PY=$venv/bin/python
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/agw-bench.XXXXXX")
results_open gate

cleanup() {
    local rc=$?
    if [ "$KEEP" = 1 ]; then
        say "keeping database $DB (BENCH_KEEP=1)"
    else
        psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 ||
            echo "gate.sh: warning: could not drop database $DB" >&2
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT

q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
# qv SQL [psql options]: SQL read from stdin, so that psql interpolates :'variables' (-c does not).
qv() { local sql=$1; shift; printf '%s\n' "$sql" | q "$@"; }
# record NAME VALUE: the unit follows from the name (tps, µs or a count).
record() {
    case $1 in
        *_us) result "$1" "$2" us ;;
        loop_n | nkeys) result "$1" "$2" count ;;
        *) result "$1" "$2" tps ;;
    esac
}
# Fails unless the value ($2) is what the sanity check ($1) expects ($3).
expect() { [ "$2" = "$3" ] || die "sanity check failed: $1: got '$2', expected '$3'"; }

# ---------------------------------------------------------------------------------------------
# Database
# ---------------------------------------------------------------------------------------------
say "creating database $DB from $(basename "$FIXTURE")"
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null
psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB" >/dev/null
q -f "$FIXTURE" >/dev/null
q -c 'CREATE EXTENSION api_gateway' -c 'CREATE EXTENSION pgcrypto' >/dev/null
q -f "$BENCH/sql/pgjwt_baseline.sql" >/dev/null
q -v jwt_secret="$JWT_SECRET" -f "$BENCH/sql/setup.sql" >/dev/null

EXT_VERSION=$(q -c "SELECT api_gateway.version() || ' (extversion ' || extversion || ')' FROM pg_extension WHERE extname = 'api_gateway'")
LOOP_TOKEN=$(q -c 'SELECT t FROM bench.tok')
AUTH_JWT=$(q -c "SELECT credential FROM bench.auth WHERE kind = 'jwt'")
DEMO_KEY=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["demo"]["key"])' "$KEYS_JSON")

# Sanity: every workload answers what it should before it is timed.
expect "jwt_verify sub" "$(qv "SELECT api_gateway.jwt_verify(:'t', :'s')->>'sub'" -v t="$LOOP_TOKEN" -v s="$JWT_SECRET")" 5
expect "pgjwt_verify sub" "$(qv "SELECT bench.pgjwt_verify(:'t', :'s')->>'sub'" -v t="$LOOP_TOKEN" -v s="$JWT_SECRET")" 5
expect "pgjwt_verify rejects a wrong secret" \
    "$(qv "SELECT bench.pgjwt_verify(:'t', 'another-secret-0123456789abcdef012345') IS NULL" -v t="$LOOP_TOKEN")" t
expect "authenticate JWT" "$(qv "SELECT status || ' ' || uid FROM api_gateway.authenticate('Bearer ' || :'t', '127.0.0.1', 'GET')" -v t="$AUTH_JWT")" "200 2"
expect "authenticate demo key" "$(qv "SELECT status || ' ' || uid FROM api_gateway.authenticate('Bearer ' || :'k', '127.0.0.1', 'GET')" -v k="$DEMO_KEY")" "200 5"
expect "verify_api_key demo" "$(qv "SELECT api_gateway.verify_api_key(:'k')" -v k="$DEMO_KEY")" 5
expect "rate_limit_hit" "$(q -c "SELECT allowed FROM api_gateway.rate_limit_hit('bench:check', 10, 60)")" t

# ---------------------------------------------------------------------------------------------
# pgbench runs
# ---------------------------------------------------------------------------------------------
# pgbench_run NAME CLIENTS SCRIPT [pgbench options...]: one run, its tps added to NAME's rounds.
declare -A ROUND_TPS
pgbench_run() {
    local name=$1 clients=$2 script=$3
    shift 3
    say "pgbench $name: $clients clients, ${SECS}s"
    local tps
    tps=$(pgbench_tps "$DB" "$clients" "$SECS" prepared "$BENCH/pgbench/$script" "$@") ||
        die "pgbench $name failed"
    [ -n "$tps" ] || die "pgbench $name: no tps in its output"
    ROUND_TPS[$name]+=" $tps"
}

# ---------------------------------------------------------------------------------------------
# 2. jwt_verify vs the pgjwt way, N calls in one statement each, server-side stopwatch
# ---------------------------------------------------------------------------------------------
say "loops: jwt_verify vs pgjwt-style SQL, $LOOP_N calls x $LOOP_REPS"
loop_out=$(q -v n="$LOOP_N" -v reps="$LOOP_REPS" -v s="$JWT_SECRET" <<'SQL'
SET jit = off;  -- compile time is not what is measured
WITH runs AS (
    SELECT k.kind, g.rep, r.us, r.n
      FROM generate_series(0, :reps) AS g(rep)
     CROSS JOIN (VALUES ('bare', 't.t'),
                        ('ours', format('api_gateway.jwt_verify(t.t, %L)', :'s')),
                        ('pgjwt', format('bench.pgjwt_verify(t.t, %L)', :'s'))) AS k(kind, expr)
     CROSS JOIN LATERAL bench.time_us(
            format('SELECT count(%s) FROM generate_series(1, %s) AS g, bench.tok AS t /* rep %s */',
                   k.expr, :n, g.rep)) AS r
)
SELECT kind || ' ' || percentile_cont(0.5) WITHIN GROUP (ORDER BY us) || ' ' || min(n) || ' ' || max(n)
  FROM runs WHERE rep > 0 GROUP BY kind ORDER BY kind;
SQL
)
declare -A loop_us
while read -r kind med nmin nmax; do
    [ "$nmin" = "$LOOP_N" ] && [ "$nmax" = "$LOOP_N" ] ||
        die "loop $kind counted $nmin..$nmax valid tokens, expected $LOOP_N"
    loop_us[$kind]=$med
done <<<"$loop_out"
[ ${#loop_us[@]} = 3 ] || die "loop measurements incomplete: $loop_out"
record loop_n "$LOOP_N"
record loop_bare_us "$(awk -v b="${loop_us[bare]}" -v n="$LOOP_N" 'BEGIN { printf "%.4f", b / n }')"
for kind in ours pgjwt; do
    per=$(awk -v t="${loop_us[$kind]}" -v b="${loop_us[bare]}" -v n="$LOOP_N" 'BEGIN { printf "%.4f", (t - b) / n }')
    awk -v p="$per" 'BEGIN { exit !(p > 0) }' || die "loop $kind: no measurable cost over the bare loop ($per µs)"
    if [ "$kind" = ours ]; then record jwt_loop_us "$per"; else record pgjwt_loop_us "$per"; fi
done

# ---------------------------------------------------------------------------------------------
# 7. verify_api_key uncached vs passlib, the same N keys
# ---------------------------------------------------------------------------------------------
say "verify_api_key uncached: hashing $NKEYS keys with passlib"
q -c 'SELECT DISTINCT index FROM public.res_users_apikeys' >"$WORK/taken.txt"
"$PY" "$BENCH/apikeys.py" gen "$NKEYS" "$WORK/keys.tsv" "$WORK/taken.txt"
q -c "\\copy bench.keys (k, idx, h) FROM '$WORK/keys.tsv'"
q -c "INSERT INTO public.res_users_apikeys (name, user_id, scope, index, key)
      SELECT 'bench-gate', 5, NULL, idx, h FROM bench.keys" >/dev/null
key_trials=()
for trial in $(seq 1 "$KEY_TRIALS"); do
    say "verify_api_key uncached: fresh backend $trial/$KEY_TRIALS, $NKEYS keys"
    # The warm-up call has no candidate row (no PBKDF2) but loads the library and prepares the
    # candidate query, so the timed statement measures only the per-key cost.
    out=$(q -c "SELECT api_gateway.verify_api_key('00000000-no-such-key') IS NULL" \
            -c "SELECT n || ' ' || us FROM bench.time_us('SELECT count(api_gateway.verify_api_key(k)) FROM bench.keys') AS t(us, n)" |
          tail -n 1)
    read -r n total <<<"$out"
    [ "$n" = "$NKEYS" ] || die "verify_api_key verified $n of $NKEYS bench keys"
    key_trials+=("$(awk -v t="$total" -v n="$NKEYS" 'BEGIN { printf "%.2f", t / n }')")
done
record apikey_ours_us "$(printf '%s\n' "${key_trials[@]}" | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }')"
say "verify_api_key uncached: passlib ctx.verify over the same keys"
record apikey_passlib_us "$("$PY" "$BENCH/apikeys.py" time "$WORK/keys.tsv" "$KEY_TRIALS")"
record nkeys "$NKEYS"
q -c "DELETE FROM public.res_users_apikeys WHERE name = 'bench-gate'" -c 'TRUNCATE bench.keys' >/dev/null

# ---------------------------------------------------------------------------------------------
# pgbench workloads, in ROUNDS rounds; in each, SELECT 1 at 4 clients runs first and last and
# that round's baseline is their mean; each workload is compared with its round's baseline.
# ---------------------------------------------------------------------------------------------
for round in $(seq 1 "$ROUNDS"); do
    say "pgbench round $round of $ROUNDS"
    pgbench_run select1_c4_first 4 select1.sql
    pgbench_run jwt_verify_tps 4 jwt_verify.sql -D tok="$LOOP_TOKEN" -D secret="$JWT_SECRET"
    pgbench_run rl10k_tps 4 rate_limit_10k.sql
    pgbench_run upsert_unlogged_tps 4 upsert_unlogged.sql
    pgbench_run upsert_logged_tps 4 upsert_logged.sql
    pgbench_run select1_c16 16 select1.sql
    pgbench_run rl_hot16_tps 16 rate_limit_one.sql
    pgbench_run rl_one4_tps 4 rate_limit_one.sql
    # authenticate's own baselines right next to it (SELECT 1 moves by a third within a round
    # here): the JWT run between the next two SELECT 1, the key run between the second and the last
    pgbench_run select1_auth_a 4 select1.sql
    pgbench_run auth_jwt_tps 4 authenticate_jwt.sql -D tok="$AUTH_JWT"
    pgbench_run select1_auth_b 4 select1.sql
    pgbench_run auth_key_tps 4 authenticate_key.sql -D key="$DEMO_KEY"
    pgbench_run apikey_cached_tps 4 verify_api_key_cached.sql -D key="$DEMO_KEY"
    pgbench_run select1_c4_last 4 select1.sql
done
for name in "${!ROUND_TPS[@]}"; do
    result_rounds "$name" tps ${ROUND_TPS[$name]}
done
# round_means NAME A B: per round, the mean of runs A and B, as the rounds of NAME
round_means() {
    local name=$1 i means=()
    local -a a b
    read -ra a <<<"${ROUND_TPS[$2]}"
    read -ra b <<<"${ROUND_TPS[$3]}"
    for i in "${!a[@]}"; do
        means+=("$(awk -v a="${a[$i]}" -v b="${b[$i]}" 'BEGIN { printf "%.3f", (a + b) / 2 }')")
    done
    result_rounds "$name" tps "${means[@]}"
}
round_means select1_c4 select1_c4_first select1_c4_last
round_means select1_auth_jwt select1_auth_a select1_auth_b
round_means select1_auth_key select1_auth_b select1_c4_last
result rounds "$ROUNDS" count

# Nobody was throttled: the profiles' limits were out of reach.
expect "authenticate still 200 after the runs" \
    "$(qv "SELECT status FROM api_gateway.authenticate('Bearer ' || :'t', '127.0.0.1', 'GET')" -v t="$AUTH_JWT")" 200

say "results in ${BENCH_RESULTS#"$ROOT"/}"
