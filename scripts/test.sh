#!/usr/bin/env bash
# `make test`: set up what is missing, then run every test: unit (core, front), SQL integration
# against a real cluster on every fixture available, HTTP over real sockets, interop with
# independent Python libraries, the upgrade-equals-fresh-install check, and the fault tests
# (`make chaos`, on a throwaway cluster of their own).
# Exits non-zero on any failure and ends with one line "N passed, N failed".
set -uo pipefail
source "$(dirname "$0")/lib.sh"
started=$(date +%s)
"$ROOT/scripts/setup.sh" || { echo "set-up failed"; exit 1; }
# Database names start with $AGW_DB_PREFIX so two checkouts can test on one cluster side by side.
DBP=${AGW_DB_PREFIX:-agw_test}
cd "$ROOT"
LOGS=$ROOT/target/test-logs
rm -rf "$LOGS"; mkdir -p "$LOGS"
failures=()

run() { # run NAME CMD... : output to the terminal and to $LOGS/NAME.log
    local name=$1; shift
    step "$name"
    if ! "$@" 2>&1 | tee "$LOGS/$name.log"; then failures+=("$name"); fi
}

fmt_check() { cargo fmt --all -- --check && echo "fmt: 1 passed, 0 failed"; }
run fmt fmt_check
# Lint warnings fail the run, as formatting does (issue 13).
lint_check() { cargo clippy -q --workspace --all-targets -- -D warnings && echo "clippy: 1 passed, 0 failed"; }
run clippy lint_check
run unit-core cargo test -q -p api_gateway_core
run unit-front cargo test -q -p api_gateway_front --lib

step "fixtures"
fixtures=(mini)
load_fixture_db ${DBP}_mini "$ROOT/tests/fixtures/odoo19_mini.sql"
echo "project fixture tests/fixtures/odoo19_mini.sql -> database ${DBP}_mini"
if [ -f "$SHARED/fixtures/odoo19_base.sql" ]; then
    load_fixture_db ${DBP}_base "$SHARED/fixtures/odoo19_base.sql"
    fixtures+=(base)
    echo "shared fixture $SHARED/fixtures/odoo19_base.sql -> database ${DBP}_base"
else
    echo "shared fixture odoo19_base.sql NOT FOUND at $SHARED/fixtures: the suite runs on the project fixture only"
fi
if [ -f "$SHARED/fixtures/odoo19_demo.sql.gz" ]; then
    load_fixture_db ${DBP}_demo "$SHARED/fixtures/odoo19_demo.sql.gz"
    fixtures+=(demo)
    echo "shared real Odoo database $SHARED/fixtures/odoo19_demo.sql.gz -> database ${DBP}_demo"
else
    echo "shared fixture odoo19_demo.sql.gz NOT FOUND at $SHARED/fixtures: skipping the real-Odoo runs"
fi
psql -q -X -d postgres -c "DROP DATABASE IF EXISTS ${DBP}_plain WITH (FORCE)" -c "CREATE DATABASE ${DBP}_plain" >/dev/null
psql -q -X -v ON_ERROR_STOP=1 -d ${DBP}_plain -c "CREATE EXTENSION api_gateway" >/dev/null

cargo build -q -p api_gateway_front --bins --examples
export API_GATEWAY_BIN="$ROOT/target/debug/api-gateway"
for fx in "${fixtures[@]}"; do
    # demo_* tests compare with Odoo's answers on the real demo database: run there only, so
    # the other fixtures' counts hold only what ran.
    only_demo=()
    [ "$fx" = demo ] || only_demo=(-- --skip demo_)
    run "sql-$fx" env AGW_TEST_FIXTURE="$fx" AGW_TEST_DB="${DBP}_$fx" AGW_SHARED="$SHARED" \
        cargo test -q -p api_gateway_tests --test sql "${only_demo[@]}"
    run "python-$fx" env AGW_TEST_FIXTURE="$fx" AGW_TEST_DB="${DBP}_$fx" AGW_SHARED="$SHARED" \
        "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/tests/python"
done
run http env DATABASE_URL="postgresql:///${DBP}_mini?host=$PGHOST" AGW_TEST_FIXTURE=mini \
    cargo test -q -p api_gateway_front --test http
# The plain REST gateway (no console, dashboard or webhook worker) passes the REST tests too,
# with unprepared statements (--prepared-statements false, as behind a transaction pooler).
run http-plain env DATABASE_URL="postgresql:///${DBP}_mini?host=$PGHOST" AGW_TEST_FIXTURE=mini \
    API_GATEWAY_PREPARED_STATEMENTS=false \
    cargo test -q -p api_gateway_front --no-default-features --test http
run webhooks env DATABASE_URL="postgresql:///${DBP}_mini?host=$PGHOST" AGW_TEST_FIXTURE=mini \
    cargo test -q -p api_gateway_front --test webhooks
run observability env DATABASE_URL="postgresql:///${DBP}_mini?host=$PGHOST" AGW_TEST_FIXTURE=mini \
    cargo test -q -p api_gateway_front --test observability
run front-python env DATABASE_URL="postgresql:///${DBP}_mini?host=$PGHOST" AGW_TEST_FIXTURE=mini AGW_TEST_DB=${DBP}_mini \
    API_GATEWAY_BIN="$ROOT/target/debug/api-gateway" "$VENV/bin/python" -m pytest -q -p no:cacheprovider "$ROOT/front/tests/python"
run pgbouncer env API_GATEWAY_BIN="$ROOT/target/debug/api-gateway" "$ROOT/front/tests/pgbouncer.sh" ${DBP}_mini
# Every SQL and shell example of README.md and docs/*.md, run as written on the project's fixture
# (conventions: docs/README.md). The README's `cargo build -p api_gateway_front` is built here
# first: without the dev-dependencies' features it is a build of its own (tokio, reqwest, axum...).
cargo build -q -p api_gateway_front
run docs env API_GATEWAY_BIN="$ROOT/target/debug/api-gateway" AGW_DOCS_DB_PREFIX=${DBP}_docs \
    "$VENV/bin/python" "$ROOT/tests/docs/run_docs.py"
run upgrade "$ROOT/tests/upgrade/check.sh"
# Fault tests (PostgreSQL restart, SIGKILL, bad receivers, pool, flood) on a throwaway cluster.
run chaos env API_GATEWAY_BIN="$ROOT/target/debug/api-gateway" "$ROOT/tests/chaos/run.sh"

# One closing line for the whole run, summed over every runner's own summary lines.
passed=$(cat "$LOGS"/*.log | sed -nE 's/^test result: [a-zA-Z]+\. ([0-9]+) passed.*/\1/p; s/^=* ?([0-9]+) passed.*/\1/p; s/^upgrade: ([0-9]+) passed.*/\1/p; s/^chaos: ([0-9]+) passed.*/\1/p; s/^docs: ([0-9]+) passed.*/\1/p; s/^pgbouncer: ([0-9]+) passed.*/\1/p; s/^fmt: ([0-9]+) passed.*/\1/p; s/^clippy: ([0-9]+) passed.*/\1/p' | awk '{s+=$1} END {print s+0}')
failed=$(cat "$LOGS"/*.log | sed -nE 's/^test result: [a-zA-Z]+\. [0-9]+ passed; ([0-9]+) failed.*/\1/p; s/^=* ?[0-9]+ passed, ([0-9]+) failed.*/\1/p; s/^=* ?([0-9]+) failed.*/\1/p; s/^upgrade: [0-9]+ passed, ([0-9]+) failed.*/\1/p; s/^chaos: [0-9]+ passed, ([0-9]+) failed.*/\1/p; s/^docs: [0-9]+ passed, ([0-9]+) failed.*/\1/p; s/^pgbouncer: [0-9]+ passed, ([0-9]+) failed.*/\1/p' | awk '{s+=$1} END {print s+0}')
passed=${passed:-0}; failed=${failed:-0}
if [ ${#failures[@]} -gt 0 ] && [ "$failed" = 0 ]; then failed=${#failures[@]}; fi
echo
echo "fixtures used: ${fixtures[*]}; wall time $(( $(date +%s) - started )) s"
[ ${#failures[@]} -gt 0 ] && echo "failed steps: ${failures[*]}"
echo "$passed passed, $failed failed"
[ ${#failures[@]} -eq 0 ]
