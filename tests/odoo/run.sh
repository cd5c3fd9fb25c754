#!/usr/bin/env bash
# `make test-odoo`: issue 15's scenarios against a REAL Odoo 19 (tests/odoo/odoo_suite.py).
# CI has no Odoo: when none answers at ODOO_URL this SKIPS, loudly, and exits 0 (the skip is
# reported as a skip, never as a pass). With one:
#   ODOO_URL=http://127.0.0.1:8069 ODOO_DATABASE=odoo19 ODOO_API_KEY=<key of uid 2> \
#   DATABASE_URL='postgresql:///odoo19?host=/var/run/postgresql' make test-odoo
# DATABASE_URL is Odoo's own database; the extension must be installed in it (CREATE EXTENSION
# api_gateway). ODOO_API_KEY defaults to the demo database's admin key
# (../shared/fixtures/odoo19_demo.keys.json, uid 2). The suite starts `api-gateway serve
# --odoo-url $ODOO_URL` on a free port, creates sale orders and partners in Odoo (as Odoo would
# through its own API), and an OAuth2 client it deactivates at the end.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ODOO_URL=${ODOO_URL:-}
if [ -z "$ODOO_URL" ] || ! curl -fs -m 5 -o /dev/null "${ODOO_URL%/}/web/version"; then
    echo "################################################################################"
    echo "# SKIPPED: no Odoo 19 answers at ODOO_URL='${ODOO_URL}' (GET /web/version)."
    echo "# The real-Odoo suite of issue 15 did NOT run. Start Odoo 19 on the demo database"
    echo "# (../shared/tools/odoo19-up.sh) and set ODOO_URL, ODOO_DATABASE, DATABASE_URL."
    echo "################################################################################"
    echo "odoo: 0 passed, 0 failed, SKIPPED"
    exit 0
fi
: "${DATABASE_URL:?DATABASE_URL is required: the Odoo database, with the api_gateway extension}"
version=$(curl -fsS -m 5 "${ODOO_URL%/}/web/version" | python3 -c 'import json,sys; print(json.load(sys.stdin)["version"])')
case "$version" in 19.*) ;; *) echo "odoo: 0 passed, 1 failed (Odoo $version at $ODOO_URL is not 19.x)"; exit 1 ;; esac
if [ -z "${ODOO_API_KEY:-}" ]; then
    KEYS=${AGW_SHARED:-$ROOT/../shared}/fixtures/odoo19_demo.keys.json
    ODOO_API_KEY=$(python3 -c "import json; print(next(k['key'] for k in json.load(open('$KEYS'))['keys'] if k['uid'] == 2 and k['scope'] is None and k['expiration_date'] is None))") \
        || { echo "odoo: 0 passed, 1 failed (no ODOO_API_KEY and no $KEYS)"; exit 1; }
fi
psql -X -qAt -d "$DATABASE_URL" -c "SELECT api_gateway.version()" >/dev/null \
    || { echo "odoo: 0 passed, 1 failed (no api_gateway extension in DATABASE_URL)"; exit 1; }
# The front runs as a least-privileged role, as a DBA following the docs sets it up (grant_front),
# over TCP with a password; the suite itself checks Odoo's tables with DATABASE_URL.
ROLE=agw_odoo_front PASSWORD=agw_odoo_front_pw
read -r DB DBPORT < <(psql -X -qAt -F ' ' -d "$DATABASE_URL" -c "SELECT current_database(), current_setting('port')")
psql -X -q -v ON_ERROR_STOP=1 -d "$DATABASE_URL" >/dev/null <<SQL || { echo "odoo: 0 passed, 1 failed (cannot set up the front's role)"; exit 1; }
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$ROLE') THEN
    CREATE ROLE $ROLE NOSUPERUSER LOGIN PASSWORD '$PASSWORD';
  END IF;
END \$\$;
ALTER ROLE $ROLE NOSUPERUSER NOCREATEDB NOCREATEROLE LOGIN PASSWORD '$PASSWORD';
SELECT api_gateway.grant_front('$ROLE');
SQL
FRONT_URL="postgresql://$ROLE:$PASSWORD@127.0.0.1:$DBPORT/$DB"
cd "$ROOT"
BIN=${API_GATEWAY_BIN:-$ROOT/target/debug/api-gateway}
[ -n "${API_GATEWAY_BIN:-}" ] || cargo build -q -p api_gateway_front --bin api-gateway || exit 1
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
LOG=$(mktemp)
DATABASE_URL="$FRONT_URL" "$BIN" serve --listen "127.0.0.1:$PORT" --odoo-url "$ODOO_URL" \
    ${ODOO_DATABASE:+--odoo-database "$ODOO_DATABASE"} --maintenance-interval-s 0 >"$LOG" 2>&1 &
GW_PID=$!
trap 'kill $GW_PID 2>/dev/null; wait $GW_PID 2>/dev/null; rm -f "$LOG"' EXIT
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health/ready" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health/ready" || { cat "$LOG"; echo "odoo: 0 passed, 1 failed (gateway did not start)"; exit 1; }
echo "Odoo $version at $ODOO_URL${ODOO_DATABASE:+ (database $ODOO_DATABASE)}; gateway on 127.0.0.1:$PORT"
ODOO_URL=$ODOO_URL ODOO_API_KEY=$ODOO_API_KEY DATABASE_URL=$DATABASE_URL AGW_GATEWAY_URL="http://127.0.0.1:$PORT" \
    python3 "$ROOT/tests/odoo/odoo_suite.py"
rc=$?
if grep -q 'Traceback' "$LOG"; then echo "FAIL an Odoo traceback reached the gateway's log"; rc=1; fi
if grep -qi 'permission denied' "$LOG"; then grep -i 'permission denied' "$LOG" | head -3; echo "FAIL the least-privileged front was refused something"; rc=1; fi
exit $rc
