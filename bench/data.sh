#!/usr/bin/env bash
# Benchmark of api_gateway.search_read against the hand-written SQL that returns the same JSON
# (same rows, rules, order and fields), pgbench, same run, 4 clients. Prints a Markdown table and
# writes target/bench/data.md. Uses the extension as installed.
#   BENCH_SECONDS (default 10), BENCH_DB (agw_bench_data), BENCH_KEEP=1 keeps the database.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBENCH=${PGBENCH:-/usr/lib/postgresql/15/bin/pgbench}
SECS=${BENCH_SECONDS:-10}
DB=${BENCH_DB:-agw_bench_data}
export PGHOST=${PGHOST:-/var/run/postgresql}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
OUT=$ROOT/target/bench; mkdir -p "$OUT"
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1; }
trap cleanup EXIT

psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
q -f "$ROOT/tests/fixtures/odoo19_mini.sql" >/dev/null
q -c 'CREATE EXTENSION api_gateway' >/dev/null
# 2,000 more partners over both companies and none, a tenth archived, some sharing partners.
q >/dev/null <<'SQL'
INSERT INTO res_partner (name, complete_name, email, phone, city, is_company, active, company_id, partner_share, type, commercial_partner_id)
SELECT 'Bench ' || g, 'Bench ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'b' || g || '@bench.example' END,
       '+1 555 ' || g, 'City ' || (g % 50), g % 5 = 0, g % 10 <> 0,
       CASE g % 3 WHEN 0 THEN 1 WHEN 1 THEN 2 ELSE NULL END, g % 4 <> 0, 'contact', NULL
  FROM generate_series(1, 2000) g;
ANALYZE;
SQL
ours=$(q -c "SELECT api_gateway.search_read(5, 'res.partner', '[]', '{name,email,phone,city,is_company}', 80)")
theirs=$(q -f "$ROOT/bench/pgbench/search_read_handwritten.sql")
[ "$(q -c "SELECT '$ours'::jsonb = '$theirs'::jsonb")" = t ] || { echo "data.sh: the two queries disagree" >&2; exit 1; }
[ "$(q -c "SELECT jsonb_array_length('$ours'::jsonb)")" = 80 ] || { echo "data.sh: expected 80 records" >&2; exit 1; }

tps() { "$PGBENCH" -n -M prepared -T "$SECS" -c 4 -j 2 -f "$ROOT/bench/pgbench/$1" "$DB" 2>&1 | sed -nE 's/^tps = ([0-9.]+).*/\1/p'; }
a=$(tps search_read_handwritten.sql); b=$(tps search_read.sql); a2=$(tps search_read_handwritten.sql)
base=$(python3 -c "print(($a + $a2) / 2)")
ratio=$(python3 -c "print(f'{$b / $base:.2f}')")
met=$(python3 -c "print('yes' if $b / $base >= 0.7 else '**NO**')")
{
    echo "| workload | ours | baseline | ratio | target | met? |"
    echo "|---|---|---|---|---|---|"
    printf '| search_read, 80 partners x 5 fields, demo user (record rules), 4 clients vs hand-written SQL | %.0f tps | %.0f tps | %sx | >= 0.7x | %s |\n' "$b" "$base" "$ratio" "$met"
} | tee "$OUT/data.md"
