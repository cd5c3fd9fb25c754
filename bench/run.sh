#!/usr/bin/env bash
# `make bench`: set up what is missing, run every benchmark of the project with its baseline in
# the same run, and write docs/benchmarks.md (tables of ours / baseline / ratio, machine facts).
# Ratios, not absolute times, are what the document promises: the machine is shared and noisy.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$ROOT/scripts/setup.sh" >/dev/null
OUT=$ROOT/target/bench; mkdir -p "$OUT"
DOC=$ROOT/docs/benchmarks.md
sections=()
run() { # run TITLE SCRIPT: the script prints a Markdown table on stdout
    local title=$1 script=$2
    [ -x "$ROOT/bench/$script" ] || return 0
    echo "==> $title ($script)" >&2
    if "$ROOT/bench/$script" >"$OUT/${script%.sh}.section.md"; then
        sections+=("## $title"$'\n\n'"$(cat "$OUT/${script%.sh}.section.md")")
    else
        sections+=("## $title"$'\n\n'"(failed: see the output of bench/$script)")
    fi
}
run "The gate" gate.sh
run "Data access" data.sh
run "Traffic statistics" stats.sh
run "Webhooks" webhooks.sh
run "HTTP front" http.sh
run "Traffic log cost (HTTP front)" http_logging.sh
{
    echo "# Benchmarks"
    echo
    echo "Produced by \`make bench\` ($(date -u '+%Y-%m-%d %H:%M UTC')) on $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo),"
    echo "PostgreSQL $(psql -XAt -d postgres -c 'SHOW server_version'), commit $(git -C "$ROOT" rev-parse --short HEAD)."
    echo "Every figure is compared with a baseline measured in the same run; the machine is shared,"
    echo "so only the ratios are meaningful. Each section says how its numbers are computed."
    for s in "${sections[@]}"; do echo; echo "$s"; done
} >"$DOC"
echo "wrote ${DOC#"$ROOT"/}" >&2
