# Shared by the bench/*.sh scripts (sourced, not run): paths, the quick mode, and the one output
# format every script writes, so that bench/report.py can build docs/benchmarks.md from all of
# them at once.
#
# Each script appends JSON lines to target/bench/<script>.jsonl (truncated when it starts):
#   {"id": "rl10k_c4", "value": 1234.5, "unit": "tps"}
# ids are defined by the script and interpreted by bench/report.py (which knows the workloads,
# baselines, ratios and targets); a script prints only progress, on stderr.
#
# BENCH_QUICK=1 shortens every run (a few seconds each) for iterating on the scripts; its ratios
# are much noisier and docs/benchmarks.md says when it was produced that way.
BENCH_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH_DIR=$BENCH_ROOT/bench
BENCH_OUT=$BENCH_ROOT/target/bench
BENCH_QUICK=${BENCH_QUICK:-0}
PG_BIN=/usr/lib/postgresql/15/bin
PGBENCH=${PGBENCH:-$PG_BIN/pgbench}
export PGHOST=${PGHOST:-/var/run/postgresql}
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
mkdir -p "$BENCH_OUT"

# quick_or QUICK FULL: the default of a knob in each mode.
quick_or() { if [ "$BENCH_QUICK" = 1 ]; then echo "$1"; else echo "$2"; fi; }

# results_open NAME: this script's results file, emptied (a rerun replaces its old figures).
results_open() {
    BENCH_RESULTS=$BENCH_OUT/$1.jsonl
    : >"$BENCH_RESULTS"
}

# result ID VALUE UNIT: one measurement. VALUE must be a number (a failed parse must not produce
# a report with an empty cell that looks like data).
result() {
    local id=$1 value=$2 unit=$3
    [[ $value =~ ^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$ ]] ||
        { echo "bench: result $id: '$value' is not a number" >&2; return 1; }
    printf '{"id": "%s", "value": %s, "unit": "%s"}\n' "$id" "$value" "$unit" >>"$BENCH_RESULTS"
}

# result_rounds ID UNIT V1 V2 ...: one figure measured in several interleaved rounds: each round's
# value as ID@1, ID@2, ... and their median as ID. bench/report.py divides two such figures round
# by round and takes the median of those ratios: a workload is compared with the baseline run
# next to it, so the load of the shared machine drifting between rounds cancels out.
result_rounds() {
    local id=$1 unit=$2
    shift 2
    local k=0 v
    for v in "$@"; do
        k=$((k + 1))
        result "$id@$k" "$v" "$unit"
    done
    result "$id" "$(median "$@")" "$unit"
}

# free_port: a TCP port on 127.0.0.1 that nothing listens on right now.
free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# median N...: the median of the numbers given.
median() {
    printf '%s\n' "$@" | sort -g |
        awk '{ a[NR] = $1 } END { print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2) }'
}

# client_threads CLIENTS: how many threads a load generator (pgbench -j, redis-benchmark
# --threads) runs for CLIENTS connections. Default: one per client, each client then waits on its
# own call as an application worker does. With fewer threads than clients on 2 cores, the
# scheduler pairs threads and backends across the cores at random and a run lands in one of two
# modes (measured: a function at 0.5x or 0.9x SELECT 1 in alternate runs), so that a median of
# three rounds says more about the pairing than about the function. BENCH_CLIENT_THREADS=cores
# gives the previous setting (up to one per core), a number fixes it.
client_threads() {
    local clients=$1 setting=${BENCH_CLIENT_THREADS:-clients} n
    case $setting in
    clients) n=$clients ;;
    cores) n=$(nproc) ;;
    *[!0-9]* | '' | 0) echo "bench: BENCH_CLIENT_THREADS must be clients, cores or a positive number (got '$setting')" >&2; return 1 ;;
    *) n=$setting ;;
    esac
    echo $((clients < n ? clients : n))
}

# pgbench_tps DB CLIENTS SECONDS MODE SCRIPT [pgbench options...]: prints the tps of one run.
# The cluster is shared: a run that fails (e.g. no free connection slot at that moment) is tried
# again twice before this fails, with pgbench's output on stderr.
pgbench_tps() {
    local db=$1 clients=$2 secs=$3 mode=$4 script=$5
    shift 5
    local jobs
    jobs=$(client_threads "$clients")
    local log attempt
    log=$(mktemp)
    for attempt in 1 2 3; do
        if "$PGBENCH" -n -M "$mode" -T "$secs" -c "$clients" -j "$jobs" -f "$script" "$@" "$db" >"$log" 2>&1 &&
            ! grep -q aborted "$log"; then
            awk '/^tps = / { print $3; exit }' "$log"
            rm -f "$log"
            return 0
        fi
        echo "bench: pgbench $(basename "$script") with $clients clients failed (attempt $attempt of 3)" >&2
        tail -n 3 "$log" >&2
        sleep 2
    done
    rm -f "$log"
    return 1
}

# wait_for_postgres: up to 10 s for a connection (the shared cluster may be full for a moment).
wait_for_postgres() {
    local _
    for _ in $(seq 1 20); do
        psql -X -q -d postgres -c 'SELECT 1' >/dev/null 2>&1 && return 0
        sleep 0.5
    done
    return 1
}

# The API keys of the project's fixture (tests/fixtures/odoo19_mini.keys.json) by name.
fixture_key() {
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]]["key"])' \
        "$BENCH_ROOT/tests/fixtures/odoo19_mini.keys.json" "$1"
}
