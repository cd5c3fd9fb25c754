"""How the `api-gateway serve` process itself runs: its request threads (--worker-threads, by
default half the cores and at least one), where its statement timeout is set (once per
connection when it reaches PostgreSQL directly, --connection-settings) and how many connections
its requests share (--pipelined-connections)."""
import os
import subprocess
from pathlib import Path

import pytest
import requests

from agw_front_helpers import ServerProcess, binary, database_url


def request_threads(pid):
    """The tokio worker threads of a process (named tokio-rt-worker by the runtime)."""
    names = [(t / "comm").read_text().strip() for t in Path(f"/proc/{pid}/task").iterdir()]
    return sum(1 for n in names if n == "tokio-rt-worker")


def log_of(server):
    server.log.flush()
    return Path(server.log.name).read_text()


@pytest.mark.parametrize("given", [None, 1, 3])
def test_worker_threads(given):
    env = {} if given is None else {"API_GATEWAY_WORKER_THREADS": given}
    server = ServerProcess(**env)
    try:
        assert requests.get(f"{server.base}/health/ready", timeout=5).status_code == 200
        # the cores this process may run on, as Rust's available_parallelism counts them
        want = given if given is not None else max(1, len(os.sched_getaffinity(0)) // 2)
        assert request_threads(server.proc.pid) == want
    finally:
        assert server.stop() == 0


def pipelined_backends():
    """Backends of shared (pipelined) connections on the test database."""
    import psycopg
    with psycopg.connect(database_url(), autocommit=True) as c:
        return c.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'api-gateway pipelined' AND datname = current_database()"
        ).fetchone()[0]


@pytest.mark.parametrize("given,settings,want", [
    (None, None, "default"), ("3", None, 3), ("0", None, 0), ("2", "false", 0)])
def test_pipelined_connections(given, settings, want):
    env = {"RUST_LOG": "info"}
    if given is not None:
        env["API_GATEWAY_PIPELINED_CONNECTIONS"] = given
    if settings is not None:
        env["API_GATEWAY_CONNECTION_SETTINGS"] = settings
    if want == "default":
        want = max(1, len(os.sched_getaffinity(0)) // 2)  # as many as the worker threads
    others = pipelined_backends()  # other fronts of this test session
    server = ServerProcess(**env)
    try:
        assert requests.get(f"{server.base}/health/ready", timeout=5).status_code == 200
        log = log_of(server)
        if want:
            assert f"{want} pipelined connections are shared" in log, log
        else:
            assert "no pipelined connections" in log, log
        assert pipelined_backends() - others == want
        if given == "2" and settings == "false":
            assert "--pipelined-connections 2: not used" in log, log
    finally:
        assert server.stop() == 0


def test_zero_worker_threads_is_refused():
    run = subprocess.run(
        [str(binary()), "serve", "--worker-threads", "0", "--database-url", "postgresql:///x"],
        capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "--worker-threads" in run.stderr and "not in 1.." in run.stderr


@pytest.mark.parametrize("connection_settings", [None, "false"])
def test_where_the_statement_timeout_is_set(connection_settings):
    env = {"RUST_LOG": "info", "API_GATEWAY_STATEMENT_TIMEOUT_MS": 1234}
    if connection_settings is not None:
        env["API_GATEWAY_CONNECTION_SETTINGS"] = connection_settings
    server = ServerProcess(**env)
    try:
        assert requests.get(f"{server.base}/health/ready", timeout=5).status_code == 200
        log = log_of(server)
        if connection_settings is None:
            assert "statement timeout is set once per connection" in log, log
        else:
            assert "statement timeout is set in each request's transaction" in log, log
    finally:
        assert server.stop() == 0
