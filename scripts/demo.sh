#!/usr/bin/env bash
# `make demo`: set up what is missing, create the demo database from the project's Odoo-shaped
# fixture (once), CREATE EXTENSION api_gateway, start `api-gateway serve` in the background
# and print the URL and a working curl line. Idempotent: a second run reuses what is there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
"$ROOT/scripts/setup.sh"
cd "$ROOT"
DB=${API_GATEWAY_DEMO_DB:-agw_demo}
LISTEN=${API_GATEWAY_LISTEN:-127.0.0.1:8070}
RUN=$ROOT/target/demo; mkdir -p "$RUN"

step "demo database $DB"
if psql -X -qAt -d "$DB" -c "SELECT 1 FROM pg_extension WHERE extname = 'api_gateway'" 2>/dev/null | grep -q 1; then
    psql -X -q -d "$DB" -c "ALTER EXTENSION api_gateway UPDATE" >/dev/null
    echo "reusing $DB"
else
    load_fixture_db "$DB" "$ROOT/tests/fixtures/odoo19_mini.sql"
    echo "created $DB from tests/fixtures/odoo19_mini.sql, extension installed"
fi

step "api-gateway serve on $LISTEN"
cargo build -q --release -p api_gateway_front
if [ -f "$RUN/api-gateway.pid" ] && kill -0 "$(cat "$RUN/api-gateway.pid")" 2>/dev/null; then
    kill "$(cat "$RUN/api-gateway.pid")"; sleep 1   # restart so the newest build serves
fi
DATABASE_URL="postgresql:///$DB?host=$PGHOST" API_GATEWAY_LISTEN="$LISTEN" \
    nohup "$ROOT/target/release/api-gateway" serve >"$RUN/api-gateway.log" 2>&1 &
echo $! > "$RUN/api-gateway.pid"
for _ in $(seq 1 50); do curl -fsS "http://$LISTEN/health/ready" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fsS "http://$LISTEN/health/ready" >/dev/null || { cat "$RUN/api-gateway.log"; exit 1; }

cat <<MSG

api_gateway is running: http://$LISTEN   (pid $(cat "$RUN/api-gateway.pid"), log $RUN/api-gateway.log)
Try it:
  curl -s http://$LISTEN/api/v1/ping
SQL console:
  psql $DB
Stop it:
  kill \$(cat $RUN/api-gateway.pid)
MSG
