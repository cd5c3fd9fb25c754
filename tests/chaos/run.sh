#!/usr/bin/env bash
# `make chaos`: the fault tests of docs/deployment.md#failure-behaviour, on a throwaway
# PostgreSQL cluster of their own (never the machine's shared cluster, which one scenario
# restarts): PostgreSQL restarted under load, the front killed with SIGKILL under load,
# misbehaving webhook receivers, an exhausted connection pool, and a flood of invalid tokens.
#
# The cluster is created with initdb in a temporary directory owned by `postgres`, listens only
# on a private Unix socket (port $AGW_CHAOS_PG_PORT, default 5499), gets a superuser role for the
# current OS user, the project fixture tests/fixtures/odoo19_mini.sql,
# `CREATE EXTENSION api_gateway` and the role `agw_front` the fronts and workers run as (the extension files installed machine-wide by
# `cargo pgrx install` serve every cluster of the same PostgreSQL binaries). Everything is removed
# on exit, whatever happens.
#
# Every scenario is bounded in time; each check prints `ok` or `FAIL`, and the run ends with one
# line "chaos: N passed, N failed" (exit status non-zero on any failure). About 2-3 minutes.
# Environment: API_GATEWAY_BIN (default target/debug/api-gateway, built when missing),
#              AGW_CHAOS_PG_PORT (default 5499), AGW_CHAOS_ONLY (comma-separated scenario names).
set -uo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
PORT=${AGW_CHAOS_PG_PORT:-5499}
BIN=${API_GATEWAY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/api-gateway}
if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build -q -p api_gateway_front --bins) || { echo "cannot build api-gateway"; echo "chaos: 0 passed, 1 failed"; exit 1; }
fi
PY=$VENV/bin/python
[ -x "$PY" ] || PY=python3

# $WORK (this user): the fronts' logs and pids. $WORK/pg (the postgres user): the cluster's
# data directory, its socket directory and its log.
WORK=$(mktemp -d /tmp/agw-chaos.XXXXXX)
SOCK=$WORK/pg/sock
PGDATA=$WORK/pg/data
PGLOG=$WORK/pg/pg.log
mkdir -p "$SOCK"
chmod 755 "$WORK" "$WORK/pg" "$SOCK"
as_root chown -R postgres "$WORK/pg"
pg_ctl_() { as_postgres "$PG_BIN/pg_ctl" -D "$PGDATA" "$@"; }
cleanup() {
    # Fronts and workers are the Python driver's children: it kills them itself; this is for a
    # driver that was itself killed.
    if [ -f "$WORK/pids" ]; then
        while read -r pid; do kill -9 "$pid" 2>/dev/null; done < "$WORK/pids"
    fi
    if [ -f "$PGDATA/postmaster.pid" ]; then pg_ctl_ stop -m immediate -w >/dev/null 2>&1; fi
    as_root rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

fail_setup() { echo "FAIL chaos set-up: $*"; [ -f "$PGLOG" ] && tail -20 "$PGLOG"; echo "chaos: 0 passed, 1 failed"; exit 1; }

step "chaos: throwaway PostgreSQL cluster in $PGDATA (port $PORT, socket $SOCK)"
as_postgres "$PG_BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$WORK/initdb.log" 2>&1 \
    || fail_setup "initdb: $(tail -3 "$WORK/initdb.log")"
# fsync off: this cluster is thrown away and the OS does not crash during the run, so every
# committed transaction survives an immediate shutdown anyway (its WAL is in the page cache);
# the crash-recovery path that replays it is the one a real crash takes.
PGOPTS="-p $PORT -k $SOCK -c listen_addresses='' -c max_connections=60 -c fsync=off -c shared_buffers=32MB"
pg_ctl_ start -w -t 60 -l "$PGLOG" -o "$PGOPTS" >/dev/null || fail_setup "pg_ctl start"
export PGHOST=$SOCK PGPORT=$PORT
DB=agw_chaos
# A superuser role for this OS user (the fronts and the driver connect as it over the socket).
as_postgres psql -q -X -h "$SOCK" -p "$PORT" -d postgres -c "CREATE ROLE \"$(id -un)\" SUPERUSER LOGIN" >/dev/null 2>&1 || true
psql -q -X -d postgres -c "CREATE DATABASE $DB" >/dev/null || fail_setup "CREATE DATABASE"
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" -f "$ROOT/tests/fixtures/odoo19_mini.sql" >/dev/null || fail_setup "fixture"
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" -c "CREATE EXTENSION api_gateway" >/dev/null || fail_setup "CREATE EXTENSION api_gateway"
# The faults are injected around partner writes through the SQL writes (opt-in per model).
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" -c "UPDATE api_gateway.settings SET sql_write_models = '{res.partner}'" >/dev/null || fail_setup "sql_write_models"
# The fronts and workers connect as the role a DBA following the docs creates: NOSUPERUSER, given
# only api_gateway.grant_front and grant_worker (the driver's own checks use the superuser).
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" -c "CREATE ROLE agw_front NOSUPERUSER LOGIN" \
    -c "SELECT api_gateway.grant_front('agw_front'), api_gateway.grant_worker('agw_front')" >/dev/null \
    || fail_setup "the front's role"
echo "cluster ready: extension $(psql -X -At -d "$DB" -c 'SELECT api_gateway.version()')"

export AGW_CHAOS_BIN=$BIN AGW_CHAOS_DB=$DB AGW_CHAOS_SOCK=$SOCK AGW_CHAOS_PORT=$PORT \
    AGW_CHAOS_WORK=$WORK AGW_CHAOS_PGDATA=$PGDATA AGW_CHAOS_PG_CTL="$PG_BIN/pg_ctl" \
    AGW_CHAOS_PG_OPTS="$PGOPTS" AGW_CHAOS_PG_LOG=$PGLOG
timeout --kill-after=10 420 "$PY" -u "$ROOT/tests/chaos/chaos.py"
rc=$?
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "FAIL chaos run exceeded its 7-minute bound"
    echo "chaos: 0 passed, 1 failed"
fi
exit $rc
