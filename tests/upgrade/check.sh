#!/usr/bin/env bash
# Upgrade equals fresh install: for every released version frozen under sql/released/, install it,
# ALTER EXTENSION UPDATE to the current version, and diff the schema fingerprint against a fresh
# CREATE EXTENSION. Prints "upgrade: N passed, N failed".
set -uo pipefail
source "$(dirname "$0")/../../scripts/lib.sh"
current=$(sed -nE "/^\[workspace.package\]/,/^\[/ s/^version = \"([^\"]+)\"/\1/p" "$ROOT/Cargo.toml" | head -1)
mkdir -p "$ROOT/target"
extdir=$($PG_CONFIG --sharedir)/extension
passed=0; failed=0
fingerprint() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -f "$ROOT/tests/upgrade/fingerprint.sql"; }
UP=${AGW_DB_PREFIX:-agw}_upgrade
recreate() { psql -q -X -d postgres -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null; }

recreate ${UP}_fresh
psql -q -X -v ON_ERROR_STOP=1 -d ${UP}_fresh -c "CREATE EXTENSION api_gateway" >/dev/null
fingerprint ${UP}_fresh > "$ROOT/target/fingerprint-fresh.txt" || { echo "upgrade: 0 passed, 1 failed"; exit 1; }
echo "fresh install of $current: $(wc -l < "$ROOT/target/fingerprint-fresh.txt") schema facts"

shopt -s nullglob
released=("$ROOT"/sql/released/api_gateway--*.sql)
if [ ${#released[@]} -eq 0 ]; then
    echo "no released version under sql/released yet: nothing to upgrade from"
fi
for script in "${released[@]}"; do
    old=$(basename "$script" .sql); old=${old#api_gateway--}
    [ "$old" = "$current" ] && continue
    as_root install -m 644 "$script" "$extdir/"
    recreate ${UP}_old
    if psql -q -X -v ON_ERROR_STOP=1 -d ${UP}_old -c "CREATE EXTENSION api_gateway VERSION '$old'" \
        -c "ALTER EXTENSION api_gateway UPDATE" >/dev/null; then
        if fingerprint ${UP}_old > "$ROOT/target/fingerprint-from-$old.txt" &&
            diff -u "$ROOT/target/fingerprint-fresh.txt" "$ROOT/target/fingerprint-from-$old.txt"; then
            echo "upgrade $old -> $current equals a fresh install"; passed=$((passed + 1))
        else
            echo "upgrade $old -> $current DIFFERS from a fresh install (diff above)"; failed=$((failed + 1))
        fi
    else
        echo "upgrade $old -> $current failed to run"; failed=$((failed + 1))
    fi
done

# The library is replaced before ALTER EXTENSION UPDATE runs: the gate must keep answering with
# the previous version's SQL objects (authenticate without the 0.3.0 gate epoch), then with them.
gate_answers() { # DB -> "200 200" when a JWT of a fresh client passes twice
    psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" <<'SQL' 2>&1 | tr '\n' ' ' | sed 's/ $//'
CREATE TABLE IF NOT EXISTS public.res_users (id integer PRIMARY KEY, active boolean);
-- Odoo's group membership: the gate re-reads the settings group on every request.
CREATE TABLE IF NOT EXISTS public.res_groups_users_rel (gid integer, uid integer);
INSERT INTO public.res_users VALUES (2, true) ON CONFLICT DO NOTHING;
SELECT c.client_id, c.client_secret FROM api_gateway.create_client('upgrade check', 2) c \gset
SELECT body->>'access_token' AS tok FROM api_gateway.issue_token(:'client_id', :'client_secret') \gset
SELECT status FROM api_gateway.authenticate('Bearer ' || :'tok', '127.0.0.1', 'GET');
SELECT status FROM api_gateway.authenticate('Bearer ' || :'tok', '127.0.0.1', 'GET');
SQL
}
for script in "${released[@]}"; do
    old=$(basename "$script" .sql); old=${old#api_gateway--}
    [ "$old" = "$current" ] && continue
    case "$old" in 0.1.*) continue ;; esac  # 0.1.0 had no Odoo-free gate to call
    recreate ${UP}_old
    psql -q -X -v ON_ERROR_STOP=1 -d ${UP}_old -c "CREATE EXTENSION api_gateway VERSION '$old'" >/dev/null
    before=$(gate_answers ${UP}_old)
    psql -q -X -v ON_ERROR_STOP=1 -d ${UP}_old -c "ALTER EXTENSION api_gateway UPDATE" >/dev/null
    after=$(gate_answers ${UP}_old)
    if [ "$before" = "200 200" ] && [ "$after" = "200 200" ]; then
        echo "the $current library serves a $old database before and after ALTER EXTENSION UPDATE"; passed=$((passed + 1))
    else
        echo "the $current library with a $old database: before update '$before', after '$after'"; failed=$((failed + 1))
    fi
done
# 0.5.0 gives the reads a `lang` argument (a new signature) and re-creates authenticate (a named
# row type): a role granted them by grant_front may execute the new ones after the update,
# before grant_front runs again.
if [ -f "$ROOT/sql/released/api_gateway--0.4.0.sql" ]; then
    probe=${UP}_probe_role
    recreate ${UP}_old
    psql -q -X -d postgres -c "DROP ROLE IF EXISTS $probe" -c "CREATE ROLE $probe" >/dev/null
    kept=$(psql -X -qAt -v ON_ERROR_STOP=1 -d ${UP}_old -c "CREATE EXTENSION api_gateway VERSION '0.4.0'" \
        -c "SELECT api_gateway.grant_front('$probe')" -c "ALTER EXTENSION api_gateway UPDATE" \
        -c "SELECT has_function_privilege('$probe', 'api_gateway.search_read(integer, text, text, text[], integer, integer, text, text)', 'EXECUTE') \
              AND has_function_privilege('$probe', 'api_gateway.read_versioned(integer, text, integer, text[], text)', 'EXECUTE') \
              AND has_function_privilege('$probe', 'api_gateway.authenticate(text, inet, text)', 'EXECUTE') \
              AND NOT has_function_privilege('public', 'api_gateway.read(integer, text, integer, text[], text)', 'EXECUTE') \
              AND NOT has_function_privilege('public', 'api_gateway.authenticate(text, inet, text)', 'EXECUTE')" 2>&1 | tail -1)
    psql -q -X -d postgres -c "DROP DATABASE IF EXISTS ${UP}_old WITH (FORCE)" -c "DROP ROLE IF EXISTS $probe" >/dev/null
    if [ "$kept" = t ]; then
        echo "a role granted the 0.4.0 reads and gate may execute the 0.5.0 ones after the update"; passed=$((passed + 1))
    else
        echo "the 0.4.0 grants on the reads were lost by the update to 0.5.0 ($kept)"; failed=$((failed + 1))
    fi
fi
psql -q -X -d postgres -c "DROP DATABASE IF EXISTS ${UP}_old WITH (FORCE)" -c "DROP DATABASE IF EXISTS ${UP}_fresh WITH (FORCE)" >/dev/null
echo "upgrade: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
