#!/usr/bin/env bash
# Webhook delivery of this build against an earlier one, in the same run (issue 16: delivery
# throughput at 1, 10 and 100 endpoints "at least what it is today"). Figures taken on different
# days cannot say that on a shared machine; this alternates the two builds round by round:
#
#   for each round, for each build (this one, then the baseline, then the other way round in
#   the next round): install that build's extension, restart the cluster, make a database from
#   the mini fixture, and let that build's webhook_bench drain BENCH_EVENTS queued events at
#   1, 10 and 100 endpoints (bench/webhooks.sh's part D).
#
#   BENCH_BASELINE_REV=856a07d bench/webhooks_baseline.sh      # 0.4.0, the release before 16
#
# The baseline is built in a worktree (target/bench-baseline/<rev>, reusing this checkout's
# release dependencies) unless BASELINE_PACKAGE (its `cargo pgrx package` output directory) and
# BASELINE_BENCH (its webhook_bench) are given. It replaces the installed extension while it runs
# and puts this build's back at the end, also when it fails, so make bench runs it only when
# BENCH_BASELINE_REV is set. Knobs: BENCH_ROUNDS (3, quick 1), BENCH_EVENTS (20000, quick 3000),
# BENCH_ENDPOINTS ("1 10 100"), BENCH_DB (agw_bench_whb).
# Output: JSON lines in target/bench/webhooks_baseline.jsonl (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ROOT=$BENCH_ROOT
REV=${BENCH_BASELINE_REV:-}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 3)}
EVENTS=${BENCH_EVENTS:-$(quick_or 3000 20000)}
ENDPOINT_COUNTS=(${BENCH_ENDPOINTS:-1 10 100})
DB=${BENCH_DB:-agw_bench_whb}
PG_CONFIG=${PG_CONFIG:-$PG_BIN/pg_config}
PG_MAJOR=$("$PG_CONFIG" --version | sed -E 's/^PostgreSQL ([0-9]+).*/\1/')
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
URL="postgresql:///$DB?host=$PGHOST${PGPORT:+&port=$PGPORT}"

die() { echo "webhooks_baseline.sh: error: $*" >&2; exit 1; }
say() { echo "webhooks_baseline.sh: $*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "BENCH_ROUNDS must be a positive integer"
[[ $DB =~ ^[a-z_][a-z0-9_]*$ ]] || die "BENCH_DB must be a plain lowercase identifier"
if [ -z "${BASELINE_PACKAGE:-}" ] || [ -z "${BASELINE_BENCH:-}" ]; then
    [[ $REV =~ ^[0-9a-f]{7,40}$ ]] || die "set BENCH_BASELINE_REV (a commit) or BASELINE_PACKAGE and BASELINE_BENCH"
fi

# This build: its packaged extension (scripts/setup.sh makes it) and its webhook_bench.
say "this build: packaging the extension and building webhook_bench (release)"
(cd "$ROOT" && cargo pgrx package -p api_gateway --pg-config "$PG_CONFIG" >/dev/null 2>&1) ||
    die "cargo pgrx package of this build failed"
(cd "$ROOT" && cargo build -q --release -p api_gateway_front --example webhook_bench) ||
    die "cargo build of this build's webhook_bench failed"
OURS_PACKAGE=$TARGET/release/api_gateway-pg$PG_MAJOR
OURS_BENCH=$TARGET/release/examples/webhook_bench

if [ -z "${BASELINE_PACKAGE:-}" ] || [ -z "${BASELINE_BENCH:-}" ]; then
    WT=$TARGET/bench-baseline/$REV
    if [ ! -d "$WT" ]; then
        say "baseline $REV: worktree $WT"
        git -C "$ROOT" worktree add -f --detach "$WT" "$REV" >/dev/null
        # the registry dependencies are the same builds: start from this checkout's
        mkdir -p "$WT/target" && cp -a "$TARGET/release" "$WT/target/"
    fi
    say "baseline $REV: packaging the extension and building webhook_bench (release; minutes the first time)"
    (cd "$WT" && CARGO_TARGET_DIR="$WT/target" cargo pgrx package -p api_gateway --pg-config "$PG_CONFIG" >/dev/null 2>&1) ||
        die "cargo pgrx package of $REV failed"
    (cd "$WT" && CARGO_TARGET_DIR="$WT/target" cargo build -q --release -p api_gateway_front --example webhook_bench) ||
        die "cargo build of $REV's webhook_bench failed"
    BASELINE_PACKAGE=$WT/target/release/api_gateway-pg$PG_MAJOR
    BASELINE_BENCH=$WT/target/release/examples/webhook_bench
fi
for p in "$OURS_PACKAGE" "$BASELINE_PACKAGE"; do
    [ -f "$p$("$PG_CONFIG" --pkglibdir)/api_gateway.so" ] || die "no api_gateway.so in $p"
done

# install PACKAGE: its extension files in place (by rename, as scripts/setup.sh does), then a
# restart (the library is preloaded).
install_build() {
    local staged=$1 f dir
    for f in "$staged$("$PG_CONFIG" --sharedir)"/extension/* "$staged$("$PG_CONFIG" --pkglibdir)/api_gateway.so"; do
        dir=$("$PG_CONFIG" --sharedir)/extension
        [[ $f == *.so ]] && dir=$("$PG_CONFIG" --pkglibdir)
        as_root install -m 644 "$f" "$dir/.$(basename "$f").new"
        as_root mv -f "$dir/.$(basename "$f").new" "$dir/$(basename "$f")"
    done
    as_root pg_ctlcluster "$PG_MAJOR" main restart
    wait_for_postgres || die "PostgreSQL did not come back after installing $staged"
}
restore() {
    say "putting this build's extension back"
    install_build "$OURS_PACKAGE"
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true
}
trap restore EXIT

results_open webhooks_baseline
# drain BENCH: events per second of each endpoint count, one line "e:rate" each.
drain_all() {
    local bin=$1 e out
    psql -X -q -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
    psql -X -q -d "$DB" -v ON_ERROR_STOP=1 -f "$ROOT/tests/fixtures/odoo19_mini.sql" >/dev/null
    psql -X -q -d "$DB" -v ON_ERROR_STOP=1 -c 'CREATE EXTENSION api_gateway' \
        -c "UPDATE api_gateway.webhook_settings SET allow_private_targets = true, ddl_lock_timeout = '30s'" >/dev/null
    for e in "${ENDPOINT_COUNTS[@]}"; do
        out=$(DATABASE_URL=$URL BENCH_ENDPOINTS=$e BENCH_EVENTS=$EVENTS "$bin" drain) || die "drain with $bin failed"
        say "  $e endpoint(s): $out"
        echo "$e:$(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["events_per_s"])' "$out")"
    done
}
declare -A OURS BASE
for k in $(seq 1 "$ROUNDS"); do
    order=(ours base)
    [ $((k % 2)) = 0 ] && order=(base ours)
    for who in "${order[@]}"; do
        if [ "$who" = ours ]; then pkg=$OURS_PACKAGE bin=$OURS_BENCH; else pkg=$BASELINE_PACKAGE bin=$BASELINE_BENCH; fi
        say "round $k: $who ($(sed -nE "s/^default_version = '(.*)'/\1/p" "$pkg$("$PG_CONFIG" --sharedir)/extension/api_gateway.control"))"
        install_build "$pkg"
        while IFS=: read -r e rate; do
            if [ "$who" = ours ]; then OURS[$e]+="$rate "; else BASE[$e]+="$rate "; fi
        done < <(drain_all "$bin")
    done
done
for e in "${ENDPOINT_COUNTS[@]}"; do
    # shellcheck disable=SC2086
    result_rounds "drain_ours_e$e" events/s ${OURS[$e]}
    # shellcheck disable=SC2086
    result_rounds "drain_base_e$e" events/s ${BASE[$e]}
done
result baseline_rev_rounds "$ROUNDS" count
say "baseline ${REV:-$BASELINE_PACKAGE}: results in ${BENCH_RESULTS#"$ROOT"/}"
