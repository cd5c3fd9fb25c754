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
}

# Puts api_gateway in shared_preload_libraries of the cluster at $PGHOST (keeping what is already
# listed) and restarts it with the command given as arguments, only when it is missing: the
# rate-limit counters then live in shared memory (docs/deployment.md). The library must already
# be installed. Idempotent: a second run changes nothing. PRELOAD_RESTART=1 restarts a cluster
# that already preloads it (a new build of a preloaded library is loaded only at start).
ensure_preloaded() {
    local current
    current=$(psql -X -At -d postgres -c "SHOW shared_preload_libraries")
    if printf '%s' "$current" | tr ',' '\n' | sed 's/^ *//; s/ *$//; s/^"//; s/"$//' | grep -qx api_gateway; then
        echo "api_gateway is in shared_preload_libraries ($current)"
        if [ "${PRELOAD_RESTART:-0}" = 1 ]; then
            echo "a new build was installed: restarting the cluster"
            "$@"
            for _ in $(seq 1 30); do psql -X -q -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
        fi
        return 0
    fi
    local wanted=api_gateway
    [ -z "$current" ] || wanted="$current, api_gateway"
    # One literal per library: a single 'a, b' literal would name one library "a, b".
    psql -X -q -v ON_ERROR_STOP=1 -d postgres -v libs="$wanted" >/dev/null <<'SQL'
SELECT format('ALTER SYSTEM SET shared_preload_libraries = %s',
              string_agg(quote_literal(btrim(btrim(lib), '"')), ', ' ORDER BY n))
  FROM unnest(string_to_array(:'libs', ',')) WITH ORDINALITY AS l(lib, n)
 WHERE btrim(lib) <> '' \gexec
SQL
    echo "shared_preload_libraries = '$wanted': restarting the cluster"
    "$@"
    for _ in $(seq 1 30); do psql -X -q -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
    current=$(psql -X -At -d postgres -c "SHOW shared_preload_libraries")
    printf '%s' "$current" | grep -q api_gateway || { echo "api_gateway is still not preloaded: $current"; return 1; }
    echo "api_gateway preloaded ($current)"
}
