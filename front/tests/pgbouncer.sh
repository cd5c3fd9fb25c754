#!/usr/bin/env bash
# The front through PgBouncer in transaction mode: two `api-gateway serve` processes share one
# PgBouncer (pool_mode = transaction, fewer server connections than clients) pointed at the
# fixture database, and real requests go through them: token, ping, search_read, create, write,
# unlink, introspection, errors, and bursts of concurrent requests; one rate limit across both;
# both deliver webhooks, and each event reaches the receiver exactly once. Nothing may fail, and
# PgBouncer's log must show no error (a named prepared statement or session state would).
#
# Usage: front/tests/pgbouncer.sh [DBNAME]   (default: $AGW_TEST_DB, else agw_test_mini)
# Environment: API_GATEWAY_BIN (default target/debug/api-gateway, built when missing),
#              PGBOUNCER_PORT (default 6432), PGHOST (default /var/run/postgresql).
# PgBouncer listens on 127.0.0.1 only with auth_type = trust, runs as the `postgres` OS user and
# reaches PostgreSQL over TCP on 127.0.0.1 (PGPORT) as the role `agw_front`: NOSUPERUSER, given
# only api_gateway.grant_front and grant_worker (created here when missing). Superuser psql
# (Unix socket) is for set-up and assertions only. The fronts' logs must never say "permission denied".
# Ends with one line "N passed, N failed"; exits non-zero on any failure.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DB=${1:-${AGW_TEST_DB:-agw_test_mini}}
PORT=${PGBOUNCER_PORT:-6432}
PGHOST=${PGHOST:-/var/run/postgresql}
export PGHOST
BIN=${API_GATEWAY_BIN:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/api-gateway}
if [ ! -x "$BIN" ]; then
    (cd "$ROOT" && cargo build -q -p api_gateway_front) || { echo "cannot build api-gateway"; exit 1; }
fi
command -v pgbouncer >/dev/null || { echo "pgbouncer is not installed (apt-get install pgbouncer)"; echo "0 passed, 1 failed"; exit 1; }

PGPORT=${PGPORT:-5432}
FRONT_ROLE=agw_front FRONT_PASSWORD=agw_front_pw
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" >/dev/null <<SQL || { echo "cannot set up the role $FRONT_ROLE"; echo "0 passed, 1 failed"; exit 1; }
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$FRONT_ROLE') THEN
    CREATE ROLE $FRONT_ROLE NOSUPERUSER NOCREATEDB NOCREATEROLE LOGIN PASSWORD '$FRONT_PASSWORD';
  END IF;
END \$\$;
ALTER ROLE $FRONT_ROLE NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS LOGIN PASSWORD '$FRONT_PASSWORD';
SELECT api_gateway.grant_front('$FRONT_ROLE'), api_gateway.grant_worker('$FRONT_ROLE');
SQL

WORK=$(mktemp -d /tmp/agw-pgbouncer.XXXXXX)
chmod 755 "$WORK"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null; done
    if [ -f "$WORK/pgbouncer.pid" ]; then kill "$(cat "$WORK/pgbouncer.pid")" 2>/dev/null; fi
    sleep 0.3
    rm -rf "$WORK"
}
trap cleanup EXIT

passed=0; failed=0
check() { # check NAME CONDITION-COMMAND...
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok   $name"; else failed=$((failed + 1)); echo "FAIL $name"; fi
}

cat > "$WORK/pgbouncer.ini" <<EOF
[databases]
$DB = host=127.0.0.1 port=$PGPORT dbname=$DB user=$FRONT_ROLE password=$FRONT_PASSWORD

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
pool_mode = transaction
default_pool_size = 2
max_client_conn = 200
server_reset_query =
ignore_startup_parameters = extra_float_digits
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
EOF
echo '"agw_front" ""' > "$WORK/userlist.txt"
touch "$WORK/pgbouncer.log"
chown -R postgres "$WORK"
pgbouncer -d -u postgres "$WORK/pgbouncer.ini" || { echo "pgbouncer did not start"; echo "0 passed, 1 failed"; exit 1; }
for _ in $(seq 50); do
    (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && break
    sleep 0.1
done

URL="postgresql://agw_front@127.0.0.1:$PORT/$DB"
# Both fronts deliver webhooks too, as in production without a separate worker: claims go
# through PgBouncer, LISTEN over a direct connection (transaction mode does not carry it).
DIRECT_URL="postgresql://$FRONT_ROLE:$FRONT_PASSWORD@127.0.0.1:$PGPORT/$DB"
start_front() { # start_front PORT
    "$BIN" serve --database-url "$URL" --listen "127.0.0.1:$1" --pool-size 4 \
        --statement-timeout-ms 5000 --openapi-refresh-s 3600 \
        --webhooks true --webhook-listen-url "$DIRECT_URL" --webhook-sweep-s 1 >"$WORK/front-$1.log" 2>&1 &
    PIDS+=($!)
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
P1=$(free_port); start_front "$P1"
P2=$(free_port); start_front "$P2"
for p in "$P1" "$P2"; do
    for _ in $(seq 100); do
        curl -sf "http://127.0.0.1:$p/health/ready" >/dev/null && break
        sleep 0.1
    done
done
check "front 1 ready through pgbouncer" curl -sf "http://127.0.0.1:$P1/health/ready" -o /dev/null
check "front 2 ready through pgbouncer" curl -sf "http://127.0.0.1:$P2/health/ready" -o /dev/null
# --prepared-statements not given: PgBouncer's port is not PostgreSQL's, so no named statements
# (they would meet other clients' on PgBouncer's server connections).
check "front 1 saw the pooler: statements unprepared" grep -q "parsed for every request" "$WORK/front-$P1.log"
# --connection-settings not given either: the statement timeout is set in each request's
# transaction (a session setting would stay on a server connection other clients get).
check "front 1 saw the pooler: timeout per transaction" grep -q "statement timeout is set in each request's transaction" "$WORK/front-$P1.log"
# Hence no pipelined connections: statements of different requests would meet in one transaction.
check "front 1 saw the pooler: no pipelined connections" grep -q "no pipelined connections" "$WORK/front-$P1.log"
# Nor without a statement timeout (every statement then travels alone): a pooler may not keep
# one client's pipelined transactions apart.
P3=$(free_port)
"$BIN" serve --database-url "$URL" --listen "127.0.0.1:$P3" --pool-size 2 --statement-timeout-ms 0 \
    --openapi-refresh-s 3600 --webhooks false >"$WORK/front-$P3.log" 2>&1 &
P3_PID=$!
PIDS+=("$P3_PID")
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$P3/health/ready" >/dev/null && break; sleep 0.1; done
check "a front without a statement timeout behind the pooler: no pipelined connections" grep -q "no pipelined connections" "$WORK/front-$P3.log"
kill "$P3_PID" 2>/dev/null; wait "$P3_PID" 2>/dev/null || true

# A client for the admin (uid 2), made with SQL directly; a generous quota for the bursts.
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" -c "INSERT INTO api_gateway.profile (user_id, rate_limit) VALUES (2, 1000000) \
  ON CONFLICT (user_id) DO UPDATE SET rate_limit = 1000000, active = true, allowed_ips = NULL" >/dev/null
read -r CID SECRET < <(psql -X -At -F ' ' -d "$DB" -c "SELECT client_id, client_secret FROM api_gateway.create_client('pgbouncer test', 2, '{read,write,delete}')")

status() { curl -s -o "$WORK/body" -w '%{http_code}' "$@"; }
body_has() { grep -q -- "$1" "$WORK/body"; }

code=$(status -u "$CID:$SECRET" -d grant_type=client_credentials "http://127.0.0.1:$P1/api/oauth/token")
check "token (front 1)" [ "$code" = 200 ]
TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$WORK/body" 2>/dev/null)
AUTH="Authorization: Bearer $TOKEN"

code=$(status -H "$AUTH" "http://127.0.0.1:$P2/api/v1/ping")
check "ping with that token (front 2)" [ "$code" = 200 ]
check "ping answers the user" body_has '"user":2'
code=$(status -H "$AUTH" "http://127.0.0.1:$P1/api/v1/res.partner?limit=5&fields=name,email&count=true")
check "search_read" [ "$code" = 200 ]
check "search_read has records and a count" body_has '"count":'
code=$(status -H "$AUTH" -H 'Content-Type: application/json' -d '{"name":"pgbouncer-it"}' "http://127.0.0.1:$P2/api/v1/res.partner")
check "create" [ "$code" = 201 ]
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$WORK/body" 2>/dev/null)
code=$(status -X PATCH -H "$AUTH" -H 'Content-Type: application/json' -d '{"email":"pgb@example.com"}' "http://127.0.0.1:$P1/api/v1/res.partner/$ID")
check "write" [ "$code" = 204 ]
code=$(status -H "$AUTH" "http://127.0.0.1:$P2/api/v1/res.partner/$ID?fields=email")
check "read back" [ "$code" = 200 ]
check "read back sees the write" body_has 'pgb@example.com'
code=$(status -X DELETE -H "$AUTH" "http://127.0.0.1:$P1/api/v1/res.partner/$ID")
check "unlink" [ "$code" = 204 ]
code=$(status -H "$AUTH" "http://127.0.0.1:$P2/api/v1/res.partner/$ID")
check "gone: 404" [ "$code" = 404 ]
code=$(status -H "$AUTH" "http://127.0.0.1:$P1/api/v1/no.such.model")
check "database error through pgbouncer: 404 problem" [ "$code" = 404 ]
check "  with its sqlstate" body_has '"sqlstate":"42P01"'
code=$(status -u "$CID:$SECRET" --data-urlencode "token=$TOKEN" "http://127.0.0.1:$P2/api/oauth/introspect")
check "introspect" [ "$code" = 200 ]
check "  active" body_has '"active":true'
code=$(status "http://127.0.0.1:$P1/api/openapi.json")
check "openapi.json" [ "$code" = 200 ]

# Bursts: 200 requests, 16 at a time, spread over both fronts (8 front connections share 2
# server connections): every one must succeed.
seq 200 | xargs -P 16 -I{} sh -c '
    p=$(( {} % 2 == 0 ? '"$P1"' : '"$P2"' ))
    curl -s -o /dev/null -w "%{http_code}\n" -H "'"$AUTH"'" "http://127.0.0.1:$p/api/v1/res.partner?limit=3&fields=name"
' > "$WORK/burst"
ok=$(grep -c '^200$' "$WORK/burst")
check "burst of 200 concurrent requests all 200 (got $ok)" [ "$ok" = 200 ]

# One rate limit across both fronts: user 8 may make 10 requests an hour; 30 requests, 8 at a
# time, alternating between the fronts: exactly 10 pass, the rest get 429.
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" -c "INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window) VALUES (8, 10, 'hour') \
  ON CONFLICT (user_id) DO UPDATE SET rate_limit = 10, rate_limit_window = 'hour', active = true, allowed_ips = NULL" \
  -c "DELETE FROM api_gateway.throttle WHERE subject = 'user:8'" -c "SELECT api_gateway._forget_shared_counter('user:8')" >/dev/null
read -r CID8 SECRET8 < <(psql -X -At -F ' ' -d "$DB" -c "SELECT client_id, client_secret FROM api_gateway.create_client('pgbouncer limit test', 8, '{read}')")
status -u "$CID8:$SECRET8" -d grant_type=client_credentials "http://127.0.0.1:$P2/api/oauth/token" >/dev/null
TOKEN8=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["access_token"])' "$WORK/body" 2>/dev/null)
seq 30 | xargs -P 8 -I{} sh -c '
    p=$(( {} % 2 == 0 ? '"$P1"' : '"$P2"' ))
    curl -s -o /dev/null -w "%{http_code}\n" -H "Authorization: Bearer '"$TOKEN8"'" "http://127.0.0.1:$p/api/v1/ping"
' > "$WORK/limited"
ok=$(grep -c '^200$' "$WORK/limited"); limited=$(grep -c '^429$' "$WORK/limited")
check "one limit across two fronts: exactly 10 of 30 pass (got $ok, $limited refused with 429)" test "$ok" = 10 -a "$limited" = 20
psql -q -X -d "$DB" -c "DELETE FROM api_gateway.profile WHERE user_id = 8" -c "DELETE FROM api_gateway.throttle WHERE subject = 'user:8'" \
  -c "SELECT api_gateway._forget_shared_counter('user:8')" >/dev/null

# One webhook delivery per event with both fronts delivering: a receiver on 127.0.0.1 counts
# every request by webhook-id; 60 records created through the API alternating between the
# fronts (three at a time, so both workers race for the same jobs) must give 60 events, each
# received exactly once (at least once is the promise; twice would mean both fronts delivered
# the same job, which SKIP LOCKED and the lease rule out while nothing crashes).
cat > "$WORK/receiver.py" <<'PY'
import http.server, sys, threading
out = open(sys.argv[1], "a", buffering=1)
lock = threading.Lock()
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a): pass
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            out.write(self.headers.get("webhook-id", "-") + "\n")
        self.send_response(204); self.end_headers()
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
PY
touch "$WORK/receipts"
python3 "$WORK/receiver.py" "$WORK/receipts" > "$WORK/receiver.port" 2>"$WORK/receiver.log" &
PIDS+=($!)
for _ in $(seq 50); do [ -s "$WORK/receiver.port" ] && break; sleep 0.1; done
RPORT=$(cat "$WORK/receiver.port")
WH_PREFIX="pgb-wh-$$-"
psql -q -X -v ON_ERROR_STOP=1 -d "$DB" \
  -c "UPDATE api_gateway.webhook_settings SET allow_private_targets = true" \
  -c "DELETE FROM api_gateway.webhook WHERE name = 'pgbouncer two fronts'" \
  -c "INSERT INTO api_gateway.webhook (name, model, url, fields, domain, on_write, on_unlink) VALUES \
      ('pgbouncer two fronts', 'res.partner', 'http://127.0.0.1:$RPORT/hook', '{name}', \
       \$\$[('name', '=like', '$WH_PREFIX%')]\$\$, false, false)" >/dev/null
WHID=$(psql -X -At -d "$DB" -c "SELECT id FROM api_gateway.webhook WHERE name = 'pgbouncer two fronts'")
seq 60 | xargs -P 3 -I{} sh -c '
    p=$(( {} % 2 == 0 ? '"$P1"' : '"$P2"' ))
    curl -s -o /dev/null -w "%{http_code}\n" -H "'"$AUTH"'" -H "Content-Type: application/json" \
        -d "{\"name\":\"'"$WH_PREFIX"'{}\"}" "http://127.0.0.1:$p/api/v1/res.partner"
' > "$WORK/wh-creates"
check "60 creates alternating between the fronts" [ "$(grep -c '^201$' "$WORK/wh-creates")" = 60 ]
# Bound: 30 s for 60 deliveries to a local receiver (they take well under a second).
for _ in $(seq 150); do
    left=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = $WHID AND state <> 'delivered'")
    [ "$left" = 0 ] && break
    sleep 0.2
done
sleep 1.5  # room for a duplicate to arrive, were there one
events=$(psql -X -At -d "$DB" -c "SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = $WHID")
psql -X -At -d "$DB" -c "SELECT event_id FROM api_gateway.webhook_job WHERE webhook_id = $WHID ORDER BY 1" > "$WORK/wh-events"
sort "$WORK/receipts" > "$WORK/wh-received"
dups=$(uniq -d "$WORK/wh-received" | wc -l)
check "one event per create (got $events)" [ "$events" = 60 ]
check "every event delivered, none twice, nothing else ($(wc -l < "$WORK/wh-received") requests, $dups ids twice)" \
    cmp -s "$WORK/wh-events" "$WORK/wh-received"
check "both fronts ran a webhook worker" \
    test "$(grep -l 'webhook worker .* started' "$WORK"/front-*.log | wc -l)" = 2
psql -q -X -d "$DB" -c "DELETE FROM api_gateway.webhook WHERE id = $WHID" \
  -c "UPDATE api_gateway.webhook_settings SET allow_private_targets = false" \
  -c "DELETE FROM res_partner WHERE name LIKE '$WH_PREFIX%'" >/dev/null

code=$(status -X POST -u "$CID:$SECRET" --data-urlencode "token=$TOKEN" "http://127.0.0.1:$P1/api/oauth/revoke")
check "revoke" [ "$code" = 200 ]
code=$(status -H "$AUTH" "http://127.0.0.1:$P2/api/v1/ping")
check "revoked token refused on the other front" [ "$code" = 401 ]

if grep -Ei 'prepared statement|ERROR|FATAL|unsupported' "$WORK/pgbouncer.log" | grep -v 'LOG'; then
    check "no errors in the pgbouncer log" false
else
    check "no errors in the pgbouncer log" true
fi
if grep -i 'permission denied' "$WORK"/front-*.log; then
    check "no permission denied in the fronts' logs (grant_front/grant_worker suffice)" false
else
    check "no permission denied in the fronts' logs (grant_front/grant_worker suffice)" true
fi
if grep -Ei 'error|panic' "$WORK"/front-*.log | grep -vi 'warn'; then
    check "no errors in the fronts' logs" false
else
    check "no errors in the fronts' logs" true
fi

echo
echo "pgbouncer: $passed passed, $failed failed"
[ "$failed" = 0 ]
