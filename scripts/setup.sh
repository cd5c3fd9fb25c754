#!/usr/bin/env bash
# Idempotent machine set-up shared by `make demo` and `make test`: OS packages, cargo-pgrx,
# a running PostgreSQL 15 cluster with a superuser role for the caller, the Python test venv,
# and the extension built and installed. A second run reuses everything that is there.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

step "OS packages"
pkgs=(curl postgresql-15 postgresql-contrib postgresql-server-dev-15 libclang-dev clang pkg-config pgbouncer wrk chromium)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
    echo "all present"
fi

step "cargo-pgrx $PGRX_VERSION"
if [ "$(cargo pgrx --version 2>/dev/null | awk '{print $2}')" != "$PGRX_VERSION" ]; then
    cargo install cargo-pgrx --version "$PGRX_VERSION" --locked
else
    echo "present"
fi
if ! grep -qs "pg$PG_MAJOR = \"$PG_CONFIG\"" "${PGRX_HOME:-$HOME/.pgrx}/config.toml"; then
    cargo pgrx init --pg$PG_MAJOR "$PG_CONFIG"
fi

step "PostgreSQL $PG_MAJOR cluster"
if ! pg_lsclusters -h | awk '{print $1"/"$2}' | grep -qx "$PG_MAJOR/main"; then
    as_root pg_createcluster "$PG_MAJOR" main >/dev/null
fi
if ! pg_lsclusters -h | awk '$1=="'$PG_MAJOR'" && $2=="main" {print $4}' | grep -q online; then
    as_root pg_ctlcluster "$PG_MAJOR" main start
fi
for _ in $(seq 1 30); do as_postgres psql -X -q -d postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 1; done
me=$(id -un)
as_postgres psql -X -q -d postgres -v ON_ERROR_STOP=1 -v me="$me" <<'SQL' >/dev/null
SELECT format('CREATE ROLE %I SUPERUSER LOGIN', :'me') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'me') \gexec
SQL
echo "cluster $PG_MAJOR/main online, role $me is a superuser"

step "Python test tools ($VENV)"
if [ ! -x "$VENV/bin/python" ]; then python3 -m venv "$VENV"; fi
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/tests/python/requirements.txt" -r "$ROOT/front/tests/python/requirements.txt"
echo "ready"

# Rate-limit counters in shared memory (issue 17, docs/deployment.md): the library is loaded at
# server start. Runs once the library is installed; restarts the cluster only when it was missing.
# A preloaded library is not loaded again by new sessions: a new build needs a restart too.
preload() {
    step "shared_preload_libraries"
    PRELOAD_RESTART=${so_changed:-0} ensure_preloaded as_root pg_ctlcluster "$PG_MAJOR" main restart
}

# SETUP_SKIP_EXTENSION=1 keeps the extension already installed (e.g. `make bench` measuring a
# build someone else installed on a shared machine).
if [ "${SETUP_SKIP_EXTENSION:-0}" = 1 ]; then
    step "extension: keeping the installed build (SETUP_SKIP_EXTENSION=1)"
    preload
    exit 0
fi
step "build and install the extension (release)"
cd "$ROOT"
# `cargo pgrx package` builds into target/release/api_gateway-pg$PG_MAJOR/; each file is then put
# in place by rename, and only when it changed. Rewriting the loaded library in place (as
# `cargo pgrx install` does) kills every backend that has it mapped with SIGBUS, and with it
# the whole cluster's sessions (crash recovery).
cargo pgrx package -p api_gateway --pg-config "$PG_CONFIG" 2>&1 | grep -vE '^\s+(Compiling|Checking)' || { echo "extension build failed"; exit 1; }
staged="$ROOT/target/release/api_gateway-pg$PG_MAJOR"
put() { # put SRC DIR MODE: install SRC as DIR/<name> atomically unless identical
    local src=$1 dir=$2 name; name=$(basename "$1")
    cmp -s "$src" "$dir/$name" && return 0
    as_root install -m "$3" "$src" "$dir/.$name.new" && as_root mv -f "$dir/.$name.new" "$dir/$name"
}
for f in "$staged$($PG_CONFIG --sharedir)"/extension/*; do put "$f" "$($PG_CONFIG --sharedir)/extension" 644; done
so_changed=0
cmp -s "$staged$($PG_CONFIG --pkglibdir)/api_gateway.so" "$($PG_CONFIG --pkglibdir)/api_gateway.so" || so_changed=1
put "$staged$($PG_CONFIG --pkglibdir)/api_gateway.so" "$($PG_CONFIG --pkglibdir)" 755
echo "installed $(sed -nE "s/^default_version = '(.*)'/\1/p" "$($PG_CONFIG --sharedir)/extension/api_gateway.control")"
preload
