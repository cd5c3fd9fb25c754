# Shared settings for the project's scripts (sourced, not run).
PG_MAJOR=15
PG_CONFIG=${PG_CONFIG:-/usr/lib/postgresql/$PG_MAJOR/bin/pg_config}
# The binaries next to that pg_config (initdb, pg_ctl of the chaos cluster).
PG_BIN=$(dirname "$PG_CONFIG")
PGRX_VERSION=0.18.1
PGHOST=${PGHOST:-/var/run/postgresql}
export PGHOST
export PGOPTIONS="${PGOPTIONS:-} -c client_min_messages=warning"
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARED=${API_GATEWAY_SHARED:-$ROOT/../shared}
VENV=$ROOT/.venv

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else sudo -u postgres "$@"; fi; }
step() { printf '\n==> %s\n' "$*"; }

# Drop and create database $1, then load the SQL file $2 (plain or .gz).
load_fixture_db() {
    local db=$1 file=$2
    psql -q -X -d postgres -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null
    psql -q -X -d postgres -c "CREATE DATABASE \"$db\"" >/dev/null
    case "$file" in
        *.gz) zcat "$file" | psql -q -X -v ON_ERROR_STOP=1 -d "$db" >/dev/null ;;
        *) psql -q -X -v ON_ERROR_STOP=1 -d "$db" -f "$file" >/dev/null ;;
    esac
    psql -q -X -v ON_ERROR_STOP=1 -d "$db" -c "CREATE EXTENSION api_gateway" >/dev/null
    # The suites write partners and products through the SQL writes (opt-in per model since 0.4.0).
    psql -q -X -v ON_ERROR_STOP=1 -d "$db" \
        -c "UPDATE api_gateway.settings SET sql_write_models = '{${SQL_WRITE_MODELS:-res.partner,product.template}}'" >/dev/null
}
