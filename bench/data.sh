#!/usr/bin/env bash
# api_gateway.search_read against the hand-written SQL that returns the same JSON (same rows,
# record rules, order and fields), at 10, 80 and 1,000 rows: pgbench, 4 clients, in rounds that
# alternate which of the two runs first (hand-written then ours, then ours then hand-written...),
# each round giving one ratio. Uses the extension as installed.
#   BENCH_SECONDS (5, quick 3), BENCH_ROUNDS (3, quick 1), BENCH_ROWS ("10 80 1000"),
#   BENCH_DB (agw_bench_data), BENCH_KEEP=1 keeps the database.
# Then, when ../shared has the real Odoo database (odoo19_demo.sql.gz; BENCH_DEMO_DUMP overrides),
# issue 14's query on it: res.partner [("is_company", "=", True)], name and email, 10 rows, for
# admin, demo, portal and jeff (second company), then 1,000 rows ([] with 2,000 more partners)
# for the internal users, each against the hand-written SQL of the same answer, and SELECT 1.
# On the real database too (issue 20): search_read of 80 partners with display_name and two
# many2one fields against the same 5 stored fields alone, as the demo user.
#   BENCH_DATA_MINI=0 skips the mini-fixture part, BENCH_DATA_REAL=0 the real one,
#   BENCH_DATA_REAL_USERS=0 the per-user comparisons with hand-written SQL on it.
# With BENCH_ODOO_URL (a running Odoo 19 on the demo database) and BENCH_ODOO_DATABASE_URL (that
# database, with the extension): the cost of a field Odoo fills, bench/odoo_fill.py through a
# release `api-gateway serve --odoo-url` (BENCH_ODOO_DATABASE names the database for Odoo).
#   Output: target/bench/data.jsonl (see bench/lib.sh).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
SECS=${BENCH_SECONDS:-$(quick_or 3 5)}
ROUNDS=${BENCH_ROUNDS:-$(quick_or 1 3)}
SIZES=(${BENCH_ROWS:-10 80 1000})
DB=${BENCH_DB:-agw_bench_data}
say() { echo "data.sh: $*" >&2; }
die() { say "error: $*"; exit 1; }
q() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$DB" "$@"; }
cleanup() {
    [ "${BENCH_KEEP:-0}" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" \
        -c "DROP DATABASE IF EXISTS ${DB}_real WITH (FORCE)" >/dev/null 2>&1
}
trap cleanup EXIT
results_open data
# One statement of a pgbench file (comments and the final semicolon dropped), for psql.
statement() { sed -e 's/--.*$//' "$1" | tr '\n' ' ' | sed -E 's/;[[:space:]]*$//'; }
# The same with pgbench's :variables as psql's quoted :'variables'.
quoted() { statement "$1" | sed -E "s/([^:]):([a-z_]+)/\1:'\2'/g"; }
OURS_REAL=$BENCH_DIR/pgbench/real_search_read.sql
DEMO_DUMP=${BENCH_DEMO_DUMP:-$BENCH_ROOT/../shared/fixtures/odoo19_demo.sql.gz}

if [ "${BENCH_DATA_MINI:-1}" = 1 ]; then
say "database $DB: the mini fixture and 2,000 more partners"
psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" >/dev/null
q -f "$BENCH_ROOT/tests/fixtures/odoo19_mini.sql" >/dev/null
q -c 'CREATE EXTENSION api_gateway' >/dev/null
q -c "UPDATE api_gateway.settings SET sql_write_models = '{res.partner}'" >/dev/null
q -f "$BENCH_DIR/sql/partners.sql" >/dev/null

OURS=$BENCH_DIR/pgbench/search_read.sql
HANDWRITTEN=$BENCH_DIR/pgbench/search_read_handwritten.sql
for n in "${SIZES[@]}"; do
    # Both answer the identical JSON, with n records, before either is timed.
    check=$(q -v limit="$n" <<SQL
SELECT (($(statement "$OURS"))::jsonb = ($(statement "$HANDWRITTEN"))::jsonb)
       || ' ' || jsonb_array_length(($(statement "$HANDWRITTEN"))::jsonb);
SQL
)
    [ "$check" = "true $n" ] || die "at $n rows: the two queries disagree or return another count ($check)"
    ours=() handwritten=()
    for round in $(seq 1 "$ROUNDS"); do
        say "$n rows, round $round of $ROUNDS: search_read and the hand-written SQL, 4 clients, ${SECS}s each"
        if [ $((round % 2)) = 1 ]; then
            handwritten+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$HANDWRITTEN" -D limit="$n")")
            ours+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$OURS" -D limit="$n")")
        else
            ours+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$OURS" -D limit="$n")")
            handwritten+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$HANDWRITTEN" -D limit="$n")")
        fi
        say "  ours ${ours[-1]} tps, hand-written ${handwritten[-1]} tps"
    done
    result_rounds "search_read_r$n" tps "${ours[@]}"
    result_rounds "handwritten_r$n" tps "${handwritten[@]}"
done
# The cost of display names (issue 20): the same 80 rows with display_name and two many2one
# fields, against search_read.sql without them, in alternating rounds.
DISPLAY=$BENCH_DIR/pgbench/search_read_display.sql
plain=() display=()
for round in $(seq 1 "$ROUNDS"); do
    say "80 rows, round $round of $ROUNDS: without and with display_name + 2 many2one, 4 clients, ${SECS}s each"
    if [ $((round % 2)) = 1 ]; then
        plain+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$OURS" -D limit=80)")
        display+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$DISPLAY" -D limit=80)")
    else
        display+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$DISPLAY" -D limit=80)")
        plain+=("$(pgbench_tps "$DB" 4 "$SECS" prepared "$OURS" -D limit=80)")
    fi
    say "  without ${plain[-1]} tps, with ${display[-1]} tps"
done
result_rounds "search_read_plain_r80" tps "${plain[@]}"
result_rounds "search_read_display_r80" tps "${display[@]}"
fi

# compare ID DB ROWS HANDWRITTEN_SCRIPT PGBENCH_ARGS...: check that search_read and the
# hand-written script answer the same JSON, then time both in interleaved rounds.
compare() {
    local id=$1 db=$2 rows=$3 hand=$4
    shift 4
    local vars=("$@") a=() b=() v check
    for v in "${vars[@]}"; do [ "$v" = -D ] || a+=(-v "$v"); done
    check=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$db" "${a[@]}" <<SQL
SELECT (($(quoted "$OURS_REAL"))::jsonb = ($(quoted "$hand"))::jsonb)
       || ' ' || jsonb_array_length(($(quoted "$hand"))::jsonb);
SQL
)
    [ "${check%% *}" = true ] || die "$id: search_read and the hand-written SQL disagree ($check)"
    [ "$rows" = 10 ] || [ "${check#* }" = "$rows" ] || die "$id: $rows rows expected, got ${check#* }"
    local ours=() hw=() one=()
    for round in $(seq 1 "$ROUNDS"); do
        say "$id (${check#* } rows), round $round of $ROUNDS, 4 clients, ${SECS}s each"
        if [ $((round % 2)) = 1 ]; then
            hw+=("$(pgbench_tps "$db" 4 "$SECS" prepared "$hand" "${vars[@]}")")
            ours+=("$(pgbench_tps "$db" 4 "$SECS" prepared "$OURS_REAL" "${vars[@]}")")
        else
            ours+=("$(pgbench_tps "$db" 4 "$SECS" prepared "$OURS_REAL" "${vars[@]}")")
            hw+=("$(pgbench_tps "$db" 4 "$SECS" prepared "$hand" "${vars[@]}")")
        fi
        say "  ours ${ours[-1]} tps, hand-written ${hw[-1]} tps"
    done
    result_rounds "real_sr_$id" tps "${ours[@]}"
    result_rounds "real_hw_$id" tps "${hw[@]}"
}

if [ "${BENCH_DATA_REAL:-1}" = 1 ] && [ -f "$DEMO_DUMP" ]; then
    RDB=${DB}_real
    say "database $RDB: the real Odoo database ${DEMO_DUMP#"$BENCH_ROOT"/}"
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $RDB WITH (FORCE)" -c "CREATE DATABASE $RDB" >/dev/null
    zcat "$DEMO_DUMP" | psql -X -q -v ON_ERROR_STOP=1 -d "$RDB" >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -d "$RDB" -c 'CREATE EXTENSION api_gateway' -c 'ANALYZE' >/dev/null
    one=()
    for round in $(seq 1 "$ROUNDS"); do
        one+=("$(pgbench_tps "$RDB" 4 "$SECS" prepared "$BENCH_DIR/pgbench/select1.sql")")
    done
    result_rounds real_select1 tps "${one[@]}"
    # user facts: uid, the companies and their parents (for res_partner_rule), a portal user's
    # commercial partner (for the portal rule).
    facts() {
        psql -X -q -At -F ' ' -d "$RDB" -v login="$1" <<'SQL'
SELECT u.id, '{' || (SELECT string_agg(DISTINCT x, ',') FROM public.res_company c
                       CROSS JOIN unnest(string_to_array(rtrim(c.parent_path, '/'), '/')) x
                      WHERE c.id IN (SELECT r.cid FROM public.res_company_users_rel r WHERE r.user_id = u.id)) || '}',
       u.share, p.commercial_partner_id
  FROM public.res_users u JOIN public.res_partner p ON p.id = u.partner_id WHERE u.login = :'login';
SQL
    }
    run_users() { # ROWS DOMAIN COMPANY_ONLY LOGIN...
        local rows=$1 domain=$2 company_only=$3 login uid companies share commercial hand
        shift 3
        for login in "$@"; do
            read -r uid companies share commercial < <(facts "$login")
            [ -n "$uid" ] || die "no user $login in the real database"
            hand=$BENCH_DIR/pgbench/real_handwritten.sql
            [ "$share" = t ] && hand=$BENCH_DIR/pgbench/real_handwritten_portal.sql
            compare "${login}_r$rows" "$RDB" "$rows" "$hand" -D uid="$uid" -D limit="$rows" \
                -D domain="$domain" -D companies="$companies" -D company_only="$company_only" \
                -D commercial="$commercial"
        done
    }
    [ "${BENCH_DATA_REAL_USERS:-1}" = 1 ] && run_users 10 '[["is_company", "=", true]]' true admin demo portal jeff
    q_real() { psql -X -q -v ON_ERROR_STOP=1 -d "$RDB" "$@" >/dev/null; }
    q_real -c "INSERT INTO public.res_partner (name, complete_name, email, phone, city, is_company, active, company_id,
                   partner_share, type, commercial_partner_id, autopost_bills)
               SELECT 'Bench ' || g, 'Bench ' || g, CASE WHEN g % 7 = 0 THEN NULL ELSE 'b' || g || '@bench.example' END,
                      '+1 555 ' || g, 'City ' || (g % 50), g % 5 = 0, g % 10 <> 0,
                      CASE g % 3 WHEN 0 THEN 1 WHEN 1 THEN 2 ELSE NULL END, g % 4 <> 0, 'contact', NULL, 'ask'
                 FROM generate_series(1, 2000) g" -c ANALYZE
    [ "${BENCH_DATA_REAL_USERS:-1}" = 1 ] && run_users 1000 '[]' false admin demo jeff
    # The cost of display names on the real database (issue 20): 80 partners, demo user. The
    # added partners get a parent company and a country, as a list view of contacts shows them.
    q_real -c "UPDATE public.res_partner b SET parent_id = (SELECT min(id) FROM public.res_partner
                   WHERE is_company AND name NOT LIKE 'Bench %' AND company_id IS NULL),
                   country_id = (SELECT id FROM public.res_country WHERE code = 'BE')
                WHERE b.name LIKE 'Bench %' AND NOT b.is_company" -c ANALYZE
    uid=$(psql -X -q -At -d "$RDB" -c "SELECT id FROM public.res_users WHERE login = 'demo'")
    plain=() display=()
    for round in $(seq 1 "$ROUNDS"); do
        say "real database, 80 partners, round $round of $ROUNDS: without and with display_name + 2 many2one"
        if [ $((round % 2)) = 1 ]; then
            plain+=("$(pgbench_tps "$RDB" 4 "$SECS" prepared "$BENCH_DIR/pgbench/real_search_read_80.sql" -D uid="$uid")")
            display+=("$(pgbench_tps "$RDB" 4 "$SECS" prepared "$BENCH_DIR/pgbench/real_search_read_display_80.sql" -D uid="$uid")")
        else
            display+=("$(pgbench_tps "$RDB" 4 "$SECS" prepared "$BENCH_DIR/pgbench/real_search_read_display_80.sql" -D uid="$uid")")
            plain+=("$(pgbench_tps "$RDB" 4 "$SECS" prepared "$BENCH_DIR/pgbench/real_search_read_80.sql" -D uid="$uid")")
        fi
        say "  without ${plain[-1]} tps, with ${display[-1]} tps"
    done
    result_rounds "real_plain_r80" tps "${plain[@]}"
    result_rounds "real_display_r80" tps "${display[@]}"
fi

if [ -n "${BENCH_ODOO_URL:-}" ]; then
    : "${BENCH_ODOO_DATABASE_URL:?BENCH_ODOO_DATABASE_URL: the Odoo database, with the extension}"
    curl -fs -m 5 -o /dev/null "${BENCH_ODOO_URL%/}/web/version" || die "no Odoo answers at $BENCH_ODOO_URL"
    KEYS=${BENCH_ODOO_KEYS:-$BENCH_ROOT/../shared/fixtures/odoo19_demo.keys.json}
    OKEY=$(python3 -c "import json; print(next(k['key'] for k in json.load(open('$KEYS'))['keys'] if k['uid'] == 2 and k['scope'] is None and k['expiration_date'] is None))")
    psql -X -q -d "$BENCH_ODOO_DATABASE_URL" -c "INSERT INTO api_gateway.profile (user_id, rate_limit) VALUES (2, 100000000)
        ON CONFLICT (user_id) DO UPDATE SET rate_limit = 100000000, active = true, allowed_ips = NULL" >/dev/null
    BIN=${API_GATEWAY_BIN:-${CARGO_TARGET_DIR:-$BENCH_ROOT/target}/release/api-gateway}
    [ -n "${API_GATEWAY_BIN:-}" ] || (cd "$BENCH_ROOT" && cargo build -q --release -p api_gateway_front --bin api-gateway >&2)
    port=$(free_port)
    DATABASE_URL=$BENCH_ODOO_DATABASE_URL "$BIN" serve --listen "127.0.0.1:$port" --odoo-url "$BENCH_ODOO_URL" \
        ${BENCH_ODOO_DATABASE:+--odoo-database "$BENCH_ODOO_DATABASE"} --maintenance-interval-s 0 >/dev/null 2>&1 &
    gw_pid=$!
    for _ in $(seq 1 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/health/ready" && break; sleep 0.1; done
    say "a field Odoo fills: product.product with and without lst_price through the front, $ROUNDS rounds"
    out=$(AGW_GATEWAY_URL="http://127.0.0.1:$port" ODOO_URL=$BENCH_ODOO_URL ODOO_API_KEY=$OKEY \
          ODOO_DATABASE=${BENCH_ODOO_DATABASE:-} BENCH_ROUNDS=$ROUNDS BENCH_REQUESTS=${BENCH_REQUESTS:-$(quick_or 30 100)} \
          python3 "$BENCH_DIR/odoo_fill.py") || { kill "$gw_pid"; die "odoo_fill.py failed"; }
    kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true
    while read -r id values; do
        # shellcheck disable=SC2086
        if [ "$id" = odoo_fill_rows ]; then result "$id" "$values" rows; else result_rounds "$id" ms $values; fi
    done <<<"$out"
fi

# pair ID_A SCRIPT_A "VARS_A" ID_B SCRIPT_B "VARS_B" DB: two workloads (each with its own pgbench
# -D variables, words without spaces) in interleaved rounds, A first in odd rounds.
pair() {
    local ida=$1 a=$2 va=$3 idb=$4 b=$5 vb=$6 db=$7
    local xs=() ys=() round
    for round in $(seq 1 "$ROUNDS"); do
        say "$ida vs $idb, round $round of $ROUNDS, 4 clients, ${SECS}s each"
        if [ $((round % 2)) = 1 ]; then
            xs+=("$(pgbench_tps "$db" 4 "$SECS" prepared "$a" $va)")
            ys+=("$(pgbench_tps "$db" 4 "$SECS" prepared "$b" $vb)")
        else
            ys+=("$(pgbench_tps "$db" 4 "$SECS" prepared "$b" $vb)")
            xs+=("$(pgbench_tps "$db" 4 "$SECS" prepared "$a" $va)")
        fi
        say "  $ida ${xs[-1]} tps, $idb ${ys[-1]} tps"
    done
    result_rounds "$ida" tps "${xs[@]}"
    result_rounds "$idb" tps "${ys[@]}"
}

# Issue 18.1, nested reads, on the real Odoo database: a sale order with 20 lines (made here
# from the demo's S00001 and its lines), read flat and with its lines and their products, as the
# demo user (uid 5; his record rules apply to the order, the lines and the products).
#   BENCH_DATA_NESTED=0 skips it and the paging rows below.
if [ "${BENCH_DATA_NESTED:-1}" = 1 ] && [ "${BENCH_DATA_PAGING_ONLY:-0}" = 0 ] && [ -f "$DEMO_DUMP" ]; then
    NDB=${DB}_nested
    say "database $NDB: the real Odoo database and an order of 20 lines"
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $NDB WITH (FORCE)" -c "CREATE DATABASE $NDB" >/dev/null
    zcat "$DEMO_DUMP" | psql -X -q -v ON_ERROR_STOP=1 -d "$NDB" >/dev/null
    order=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$NDB" -f "$BENCH_DIR/sql/order_20_lines.sql" | tail -1)
    psql -X -q -v ON_ERROR_STOP=1 -d "$NDB" -c 'CREATE EXTENSION api_gateway' -c 'ANALYZE' >/dev/null
    lines=$(psql -X -q -At -d "$NDB" -v id="$order" -c "SELECT jsonb_array_length(api_gateway.search_read(5, 'sale.order', '[(\"id\", \"=\", $order)]', '{\"order_line{product_id{name}}\"}') -> 0 -> 'order_line')")
    [ "$lines" = 20 ] || die "nested read: order $order has $lines lines visible to the demo user, 20 expected"
    pair nested_read_l20 "$BENCH_DIR/pgbench/nested_read.sql" "-D uid=5 -D id=$order" \
        flat_read_l20 "$BENCH_DIR/pgbench/nested_flat.sql" "-D uid=5 -D id=$order" "$NDB"
    # the floor: the same two reads by hand-written SQL (no rights, rules or display names)
    pair hand_nested_l20 "$BENCH_DIR/pgbench/nested_handwritten.sql" "-D id=$order" \
        hand_flat_l20 "$BENCH_DIR/pgbench/nested_flat_handwritten.sql" "-D id=$order" "$NDB"
    # what an integrator does without nested reads
    pair nested_read_l20b "$BENCH_DIR/pgbench/nested_read.sql" "-D uid=5 -D id=$order" \
        three_reads_l20 "$BENCH_DIR/pgbench/nested_three_reads.sql" "-D uid=5 -D id=$order" "$NDB"
    [ "${BENCH_KEEP:-0}" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $NDB WITH (FORCE)" >/dev/null
fi

# Issue 18.2, cursor paging on the mini fixture with 10,050 more partners: page 1,000 (10 rows a
# page, order id) costs what page 1 costs by cursor; offset paging's page 1,000 next to it.
if [ "${BENCH_DATA_NESTED:-1}" = 1 ]; then
    PDB=${DB}_paging
    say "database $PDB: the mini fixture and 10,050 partners to page through"
    psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $PDB WITH (FORCE)" -c "CREATE DATABASE $PDB" >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -d "$PDB" -f "$BENCH_ROOT/tests/fixtures/odoo19_mini.sql" >/dev/null
    psql -X -q -v ON_ERROR_STOP=1 -d "$PDB" -c 'CREATE EXTENSION api_gateway' \
        -c "INSERT INTO public.res_partner (name, complete_name, email, active, partner_share, type)
            SELECT 'Page ' || g, 'Page ' || g, 'p' || g || '@bench.example', true, false, 'contact'
              FROM generate_series(1, 10050) g" -c ANALYZE >/dev/null
    # The cursor of page 1,000: the `next` after 9,990 records, in hops of at most max_limit.
    after=""
    for hop in 999 999 999 999 999 999 999 999 999 999; do
        after=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$PDB" -v after="$after" -v n="$hop" <<'SQL'
SELECT api_gateway.search_page(2, 'res.partner', '[("name", "=like", "Page %")]', '{name}', :n, 'id', nullif(:'after', '')) ->> 'next';
SQL
)
    done
    # Both ways give the same page 1,000 before either is timed.
    same=$(psql -X -q -At -v ON_ERROR_STOP=1 -d "$PDB" -v after="$after" -v offset=9990 -v uid=2 <<SQL
SELECT (($(quoted "$BENCH_DIR/pgbench/paging_cursor.sql")) -> 'records') = ($(quoted "$BENCH_DIR/pgbench/paging_offset.sql"))
       AND jsonb_array_length(($(quoted "$BENCH_DIR/pgbench/paging_offset.sql"))) = 10;
SQL
)
    [ "$same" = t ] || die "paging: page 1,000 by cursor and by offset differ"
    pair cursor_p1000 "$BENCH_DIR/pgbench/paging_cursor.sql" "-D uid=2 -D after=$after" \
        cursor_p1 "$BENCH_DIR/pgbench/paging_cursor_first.sql" "-D uid=2" "$PDB"
    pair offset_p1000 "$BENCH_DIR/pgbench/paging_offset.sql" "-D uid=2 -D offset=9990" \
        offset_p1 "$BENCH_DIR/pgbench/paging_offset.sql" "-D uid=2 -D offset=0" "$PDB"
    [ "${BENCH_KEEP:-0}" = 1 ] || psql -X -q -d postgres -c "DROP DATABASE IF EXISTS $PDB WITH (FORCE)" >/dev/null
fi
say "results in ${BENCH_RESULTS#"$BENCH_ROOT"/}"
