#!/usr/bin/env bash
# The statistics functions on a million traffic-log rows: each must answer in under 100 ms
# (a requirement, not a ratio: they read the hourly rollups, not the raw rows). Also reports the
# cost of logging: rows per second through the partitioned request_log with its rollup trigger vs
# a plain INSERT of the same rows into an unpartitioned table without the trigger.
#   BENCH_LOG_ROWS (1000000, quick 200000), BENCH_DB (agw_bench_stats), BENCH_KEEP=1.
#   Output: target/bench/stats.jsonl (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROWS=${BENCH_LOG_ROWS:-$(quick_or 200000 1000000)}
DB=${BENCH_DB:-agw_bench_stats}
say() { echo "stats.sh: $*" >&2; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
cleanup() { [ "${BENCH_KEEP:-0}" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1; }
trap cleanup EXIT
results_open stats
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
q -c 'CREATE EXTENSION api_gateway' -c 'SELECT api_gateway.ensure_log_partitions(1)' >/dev/null
q >/dev/null <<'SQL'
CREATE FUNCTION time_ms(stmt text) RETURNS double precision LANGUAGE plpgsql AS $$
DECLARE t timestamptz := clock_timestamp();
BEGIN EXECUTE stmt; RETURN extract(epoch FROM clock_timestamp() - t) * 1000; END $$;
SQL
# time_ms SQL: one run of a statement, in ms, timed inside the server
time_ms() { q -v s="$1" <<'SQL'
SELECT time_ms(:'s');
SQL
}
# best_ms SQL: the best of three runs
best_ms() { q -v s="$1" <<'SQL'
SELECT min(time_ms(:'s')) FROM generate_series(1, 3);
SQL
}
gen="SELECT now() - (g % 86400) * interval '1 second' AS at, (ARRAY['GET','POST','PUT','DELETE'])[1 + g % 4] AS method,
       '/api/v1/res.partner/' || (g % 1000) AS path, 'res.partner' AS model, (ARRAY[200,200,200,201,404,429,500,403])[1 + g % 8]::smallint AS status,
       (g % 700)::real AS latency_ms, ('10.0.' || (g % 50) || '.' || (g % 200))::inet AS client_ip, 2 + g % 5 AS uid
  FROM generate_series(1, $ROWS) g"
cols="at, method, path, model, status, latency_ms, client_ip, uid"
q -c "CREATE TABLE plain_log (LIKE api_gateway.request_log INCLUDING DEFAULTS)" >/dev/null
say "inserting $ROWS log rows into request_log, then into a plain table"
ours=$(time_ms "INSERT INTO api_gateway.request_log ($cols) $gen")
plain=$(time_ms "INSERT INTO plain_log ($cols) $gen")
q -c 'ANALYZE' >/dev/null
result log_rows "$ROWS" count
result log_insert_rows_per_s "$(awk -v r="$ROWS" -v t="$ours" 'BEGIN { printf "%.1f", r / t * 1000 }')" rows/s
result plain_insert_rows_per_s "$(awk -v r="$ROWS" -v t="$plain" 'BEGIN { printf "%.1f", r / t * 1000 }')" rows/s
range="now() - interval '24 hours', now()"
# id and call of each statistics function (bench/report.py names them)
calls=("traffic_hour stats_traffic($range, 'hour')"
       "traffic_day stats_traffic(now() - interval '30 days', now(), 'day')"
       "traffic_month stats_traffic(now() - interval '1 year', now(), 'month')"
       "top_endpoints stats_top_endpoints($range)"
       "slowest_endpoints stats_slowest_endpoints($range)"
       "top_ips stats_top_ips($range)"
       "latency_histogram stats_latency_histogram($range)"
       "methods stats_methods($range)"
       "status stats_status($range)"
       "health stats_health($range)"
       "kpis stats_kpis($range)"
       "traffic_user_4xx stats_traffic($range, 'hour', 3, '4xx')")
say "timing ${#calls[@]} statistics functions, best of three each"
for entry in "${calls[@]}"; do
    id=${entry%% *} call=${entry#* }
    result "stats_${id}_ms" "$(best_ms "SELECT count(*) FROM (SELECT api_gateway.$call AS v) x WHERE v::text IS NOT NULL")" ms
done
say "results in ${BENCH_RESULTS#"$BENCH_ROOT"/}"
