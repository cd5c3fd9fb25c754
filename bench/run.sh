#!/usr/bin/env bash
# `make bench`: set up what is missing, run every benchmark of the project with its baseline in
# the same run, and write docs/benchmarks.md from their results (bench/report.py): tables of
# workload / ours / baseline / ratio / target, growth tables, machine facts. Ratios, not absolute
# times, are what the document promises: the machine may be shared and noisy.
#
#   make bench                         # about 20 minutes
#   BENCH_QUICK=1 make bench           # about 6 minutes, short runs (for working on the scripts)
#   BENCH_ONLY="gate data" make bench  # some scripts only (the others' sections say not measured)
#   SETUP_SKIP_EXTENSION=1 make bench  # measure the extension already installed (no build+install)
#   BENCH_BASELINE_REV=856a07d make bench  # also webhook delivery against that build (0.4.0)
#
# Each script's output goes to target/bench/<script>.log, its results to <script>.jsonl and its
# exit status and duration to <script>.status. Exits non-zero when a script failed, after writing
# the document (whose section for that script says so).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source "$ROOT/bench/lib.sh"
SCRIPTS=(${BENCH_ONLY:-gate rate_limit data http webhooks stats http_logging forward})
# Delivery against an earlier build swaps the installed extension: only when asked for.
[ -z "${BENCH_ONLY:-}" ] && [ -n "${BENCH_BASELINE_REV:-}" ] && SCRIPTS+=(webhooks_baseline)
started=$SECONDS

step() { printf '\n==> %s\n' "$*" >&2; }

step "set-up (scripts/setup.sh)"
"$ROOT/scripts/setup.sh" >"$BENCH_OUT/setup.log" 2>&1 || { cat "$BENCH_OUT/setup.log" >&2; exit 1; }
tail -n 1 "$BENCH_OUT/setup.log" >&2

# What only the benchmarks need: Redis, the baseline of rate limiting (scripts/setup.sh's style:
# install what is missing, once).
step "bench packages"
pkgs=(redis-server redis-tools wrk python3-venv)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "all present" >&2
fi

step "release build of the front and the webhook benchmark"
(cd "$ROOT" && cargo build -q --release -p api_gateway_front --bin api-gateway --example webhook_bench) >&2
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
export API_GATEWAY_BIN=$TARGET/release/api-gateway
export WEBHOOK_BENCH=$TARGET/release/examples/webhook_bench

rm -f "$BENCH_OUT"/*.jsonl "$BENCH_OUT"/*.status
# Facts of the start, for the report (the machine and the installed extension are shared).
{
    echo "started=$(date -u '+%Y-%m-%d %H:%M UTC')"
    # the code that ran (the report may be rendered again later from the same results)
    commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
    [ -z "$(git -C "$ROOT" status --porcelain --untracked-files=no -- . ':!docs/benchmarks.md' 2>/dev/null)" ] ||
        commit="$commit (with uncommitted changes)"
    echo "commit=$commit"
    echo "quick=$BENCH_QUICK"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "extension_start=$(psql -X -At -d postgres -c "SELECT default_version FROM pg_available_extensions WHERE name = 'api_gateway'")"
} >"$BENCH_OUT/run.env"
failed=()
for name in "${SCRIPTS[@]}"; do
    script=$ROOT/bench/$name.sh
    [ -x "$script" ] || { echo "bench: no script $script" >&2; exit 2; }
    step "$name ($(date -u +%H:%M:%S) UTC)"
    t0=$SECONDS
    set +e
    "$script" 2>&1 | tee "$BENCH_OUT/$name.log" | sed -u 's/^/    /' >&2
    rc=${PIPESTATUS[0]}
    set -e
    echo "$rc $((SECONDS - t0))" >"$BENCH_OUT/$name.status"
    [ "$rc" = 0 ] || failed+=("$name")
done

step "report"
{
    echo "elapsed_s=$((SECONDS - started))"
    echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)"
} >>"$BENCH_OUT/run.env"
python3 "$ROOT/bench/report.py" "$BENCH_OUT" "$ROOT/docs/benchmarks.md"
echo "make bench: $(( (SECONDS - started) / 60 )) min $(( (SECONDS - started) % 60 )) s in all" >&2
if [ ${#failed[@]} -gt 0 ]; then
    echo "make bench: failed: ${failed[*]} (see target/bench/<name>.log)" >&2
    exit 1
fi
