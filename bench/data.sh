#!/usr/bin/env bash
# api_gateway.search_read against the hand-written SQL that returns the same JSON (same rows,
# record rules, order and fields), at 10, 80 and 1,000 rows: pgbench, 4 clients, in rounds that
# alternate which of the two runs first (hand-written then ours, then ours then hand-written...),
# each round giving one ratio. Uses the extension as installed.
#   BENCH_SECONDS (5, quick 3), BENCH_ROUNDS (3, quick 1), BENCH_ROWS ("10 80 1000"),
#   BENCH_DB (agw_bench_data), BENCH_KEEP=1 keeps the database.
#   Output: target/bench/data.jsonl (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS=${BENCH_SECONDS:-$(quick_or 3 5)}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 3)}
SIZES=(${BENCH_ROWS:-10 80 1000})
DB=${BENCH_DB:-agw_bench_data}
say() { echo "data.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1; }
trap cleanup EXIT
results_open data

say "database $DB: the mini fixture and 2,000 more partners"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
q -f "$BENCH_ROOT/tests/fixtures/odoo19_mini.sql" >/dev/null
q -c 'CREATE EXTENSION api_gateway' >/dev/null
q -c "UPDATE api_gateway.settings SET sql_write_models = '{res.partner}'" >/dev/null
q -f "$BENCH_DIR/sql/partners.sql" >/dev/null

OURS=$BENCH_DIR/pgbench/search_read.sql
HANDWRITTEN=$BENCH_DIR/pgbench/search_read_handwritten.sql
# One statement of a pgbench file (comments and the final semicolon dropped), for psql.
statement() { sed -e 's/--.*$//' "$1" | tr '\n' ' ' | sed -E 's/;[[:space:]]*$//'; }
for n in "${SIZES[@]}"; do
    # Both answer the identical JSON, with n records, before either is timed.
    check=$(q -v limit="$n" <<SQL
SELECT (($(statement "$OURS"))::jsonb = ($(statement "$HANDWRITTEN"))::jsonb)
       || ' ' || jsonb_array_length(($(statement "$HANDWRITTEN"))::jsonb);
SQL
)
    [ "$check" = "true $n" ] || die "at $n rows: the two queries disagree or return another count ($check)"
    ours=() handwritten=()
    for round in $(seq 1 "$ROUNDS"); do
        say "$n rows, round $round of $ROUNDS: search_read and the hand-written SQL, 4 clients, ${SECS}s each"
        if [ $((round % 2)) = 1 ]; then
            handwritten+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$HANDWRITTEN" -D limit="$n")")
            ours+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$OURS" -D limit="$n")")
        else
            ours+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$OURS" -D limit="$n")")
            handwritten+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$HANDWRITTEN" -D limit="$n")")
        fi
        say "  ours ${ours[-1]} tps, hand-written ${handwritten[-1]} tps"
    done
    result_rounds "search_read_r$n" tps "${ours[@]}"
    result_rounds "handwritten_r$n" tps "${handwritten[@]}"
done
# The cost of display names (issue 20): the same 80 rows with display_name and two many2one
# fields, against search_read.sql without them, in alternating rounds.
DISPLAY=$BENCH_DIR/pgbench/search_read_display.sql
plain=() display=()
for round in $(seq 1 "$ROUNDS"); do
    say "80 rows, round $round of $ROUNDS: without and with display_name + 2 many2one, 4 clients, ${SECS}s each"
    if [ $((round % 2)) = 1 ]; then
        plain+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$OURS" -D limit=80)")
        display+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$DISPLAY" -D limit=80)")
    else
        display+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$DISPLAY" -D limit=80)")
        plain+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$OURS" -D limit=80)")
    fi
    say "  without ${plain[-1]} tps, with ${display[-1]} tps"
done
result_rounds "search_read_plain_r80" tps "${plain[@]}"
result_rounds "search_read_display_r80" tps "${display[@]}"
say "results in ${BENCH_RESULTS#"$BENCH_ROOT"/}"
