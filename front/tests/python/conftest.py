"""Fixtures for the front's Python checks: a real `api-gateway serve` process on a free port
against the fixture database (DATABASE_URL, else AGW_TEST_DB on PGHOST), and tokens made with SQL.

The binary is $API_GATEWAY_BIN, else target/debug/api-gateway (under $CARGO_TARGET_DIR when set),
built with cargo when missing."""
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agw_front_helpers import (  # noqa: E402
    assert_no_permission_denied,
    binary,
    database_url,
    ensure_front_role,
    free_port,
    front_database_url,
    make_token,
)


@pytest.fixture(scope="session")
def db():
    conn = psycopg.connect(database_url(), autocommit=True)
    # The users the checks call as get a quota high enough for fuzzing (same as the Rust tests).
    conn.execute(
        "INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window, active, allowed_ips) "
        "VALUES (2, 1000000, 'minute', true, NULL), (5, 1000000, 'minute', true, NULL) "
        "ON CONFLICT (user_id) DO UPDATE SET rate_limit = 1000000, rate_limit_window = 'minute', "
        "active = true, allowed_ips = NULL"
    )
    ensure_front_role(conn)
    yield conn
    conn.close()


@pytest.fixture(scope="session")
def server(db):
    port = free_port()
    env = dict(os.environ)
    env.update(
        DATABASE_URL=front_database_url(),
        API_GATEWAY_LISTEN=f"127.0.0.1:{port}",
        API_GATEWAY_OPENAPI_REFRESH_S="5",
        RUST_LOG=os.environ.get("RUST_LOG", "warn"),
    )
    log = tempfile.NamedTemporaryFile(prefix="agw-front-", suffix=".log", delete=False)
    proc = subprocess.Popen([str(binary()), "serve"], env=env, stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(f"{base}/health/ready", timeout=2).status_code == 200:
                break
        except requests.ConnectionError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError("api-gateway serve did not become ready")
        time.sleep(0.2)
    yield base
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
    assert_no_permission_denied(log.name)


@pytest.fixture
def token(db):
    return lambda uid=2, scopes=("read",): make_token(db, uid, list(scopes))
