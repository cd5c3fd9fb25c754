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
    # 0.4.0 made SQL writes opt-in per model: the demo fixture keeps its partner and product writes.
    psql -X -q -d "$DB" -c "UPDATE api_gateway.settings SET sql_write_models = '{res.partner,product.template}' \
        WHERE sql_write_models = '{}'" >/dev/null
    echo "reusing $DB"
else
    load_fixture_db "$DB" "$ROOT/tests/fixtures/odoo19_mini.sql"
    # The operator (admin, uid 2) clicks through the console, which calls the API: give that
    # user a quota of its own instead of the global 60 a minute. Changeable in the console.
    psql -X -q -d "$DB" -c "INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window, note) \
        VALUES (2, 1200, 'minute', 'demo operator: console traffic') ON CONFLICT (user_id) DO NOTHING" >/dev/null
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
# The webhook worker, so that webhooks made in the admin console are delivered.
if [ -f "$RUN/worker.pid" ] && kill -0 "$(cat "$RUN/worker.pid")" 2>/dev/null; then
    kill "$(cat "$RUN/worker.pid")"; sleep 1
fi
DATABASE_URL="postgresql:///$DB?host=$PGHOST" \
    nohup "$ROOT/target/release/api-gateway" worker >"$RUN/worker.log" 2>&1 &
echo $! > "$RUN/worker.pid"

# A demo OAuth2 client, created once; its secret is kept (mode 600) next to the demo's log.
if [ ! -s "$RUN/client.env" ] || ! psql -X -qAt -d "$DB" -c "SELECT 1 FROM api_gateway.client WHERE client_id = '$(sed -n 's/^CLIENT_ID=//p' "$RUN/client.env")'" | grep -q 1; then
    umask 077
    psql -X -qAt -F ' ' -d "$DB" -c "SELECT * FROM api_gateway.create_client('demo client', 2, '{read,write,delete}')" |
        awk '{print "CLIENT_ID=" $1; print "CLIENT_SECRET=" $2}' > "$RUN/client.env"
fi
source "$RUN/client.env"
KEY=$(python3 -c "import json; print(json.load(open('$ROOT/tests/fixtures/odoo19_mini.keys.json'))['admin']['key'])")
URL="http://$LISTEN"
TOKEN=$(curl -fsS -u "$CLIENT_ID:$CLIENT_SECRET" -d grant_type=client_credentials "$URL/api/oauth/token" |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -fsS -H "Authorization: Bearer $TOKEN" "$URL/api/v1/res.partner?limit=1&fields=name" >/dev/null ||
    { echo "the demo API does not answer; see $RUN/api-gateway.log"; exit 1; }

cat <<MSG

api_gateway is running: $URL   (pid $(cat "$RUN/api-gateway.pid"), log $RUN/api-gateway.log)
API docs: $URL/api/docs
Admin console: $URL/api/gateway/admin/   (sign in with the admin API key below; dashboard: $URL/api/gateway/dashboard)
Webhook worker: pid $(cat "$RUN/worker.pid"), log $RUN/worker.log

Get a token (demo OAuth2 client acting as Odoo user 2, credentials in $RUN/client.env):
  TOKEN=\$(curl -s -u $CLIENT_ID:$CLIENT_SECRET -d grant_type=client_credentials $URL/api/oauth/token | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
List partners with a domain:
  curl -s -H "Authorization: Bearer \$TOKEN" "$URL/api/v1/res.partner?fields=name,email&domain=%5B%5B%22is_company%22,%22=%22,true%5D%5D"
Or with the fixture's Odoo API key of user admin (also the admin console's credential):
  curl -s -H "Authorization: Bearer $KEY" "$URL/api/v1/res.partner?limit=3&fields=name"
SQL console:
  psql $DB
Stop it:
  kill \$(cat $RUN/api-gateway.pid) \$(cat $RUN/worker.pid)
MSG
