"""Helpers of the front's Python checks (a module name of its own, so that it never collides
with another suite's conftest when several run in one pytest session)."""
import collections
import itertools
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[3]


def database_url():
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    host = os.environ.get("PGHOST", "/var/run/postgresql")
    return f"postgresql:///{os.environ.get('AGW_TEST_DB', 'agw_test_mini')}?host={host}"


# The front runs as the role a DBA following the docs creates: NOSUPERUSER, given only
# api_gateway.grant_front and grant_worker (database_url() stays the superuser, for set-up and
# for assertions that read tables).
FRONT_ROLE = "agw_front"
FRONT_PASSWORD = "agw_front_pw"


def front_database_url(with_password=True):
    """The fixture database over TCP on 127.0.0.1 as the front's role (peer authentication on
    the Unix socket lets no other role in, as in a real deployment). Without the password in the
    URL the front takes it from PGPASSWORD (front_env)."""
    from psycopg.conninfo import conninfo_to_dict

    info = conninfo_to_dict(database_url())
    port = info.get("port") or os.environ.get("PGPORT") or "5432"
    secret = f":{FRONT_PASSWORD}" if with_password else ""
    return f"postgresql://{FRONT_ROLE}{secret}@127.0.0.1:{port}/{info['dbname']}"


def ensure_front_role(db):
    """Create the front's role when missing and grant it what the front and worker call."""
    for attempt in range(20):
        try:
            db.execute(
                f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{FRONT_ROLE}') THEN "
                f"CREATE ROLE {FRONT_ROLE} NOSUPERUSER NOCREATEDB NOCREATEROLE LOGIN PASSWORD '{FRONT_PASSWORD}'; "
                "END IF; END $$"
            )
            # Whatever an earlier run left: an ordinary role with this password.
            db.execute(f"ALTER ROLE {FRONT_ROLE} NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS LOGIN PASSWORD '{FRONT_PASSWORD}'")
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(hashtext('agw test grants'))")
                db.execute(f"SELECT api_gateway.grant_front('{FRONT_ROLE}'), api_gateway.grant_worker('{FRONT_ROLE}')")
            break
        except Exception:  # another process raced us: again
            if attempt == 19:
                raise
            time.sleep(0.1)
    su, = db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (FRONT_ROLE,)).fetchone()
    assert not su


def assert_no_permission_denied(log_path):
    """The front's captured log must never say "permission denied" (a missing grant)."""
    text = Path(log_path).read_text(errors="replace")
    bad = [l for l in text.splitlines() if "permission denied" in l.lower()]
    assert not bad, "the front's log says permission denied:\n" + "\n".join(bad)


def mini():
    return os.environ.get("AGW_TEST_FIXTURE", "mini") == "mini"


def binary():
    if os.environ.get("API_GATEWAY_BIN"):
        return Path(os.environ["API_GATEWAY_BIN"])
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    path = target / "debug" / "api-gateway"
    if not path.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "api_gateway_front"], cwd=ROOT, check=True)
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_token(db, uid, scopes):
    client_id, secret = db.execute(
        "SELECT client_id, client_secret FROM api_gateway.create_client('python test', %s, %s)",
        (uid, scopes),
    ).fetchone()
    status, body = db.execute(
        "SELECT status, body FROM api_gateway.issue_token(%s, %s, NULL, '127.0.0.1'::inet)",
        (client_id, secret),
    ).fetchone()
    assert status == 200, body
    return body["access_token"]


def fingerprint(db):
    """The fixture's Odoo data that no check may change."""
    return db.execute(
        "SELECT concat_ws('|', "
        "(SELECT md5(string_agg(p::text, ',' ORDER BY p.id)) FROM res_partner p), "
        "(SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM product_template t), "
        "(SELECT md5(string_agg(u::text, ',' ORDER BY u.id)) FROM res_users u), "
        "(SELECT md5(string_agg(c::text, ',' ORDER BY c.id)) FROM res_company c), "
        "(SELECT md5(string_agg(g::text, ',' ORDER BY g.id)) FROM res_groups g), "
        "(SELECT md5(string_agg(t::text, ',' ORDER BY t.id)) FROM res_partner_category t))"
    ).fetchone()[0]


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--window-size=1400,1100",
]


class Browser:
    """A minimal DevTools-protocol client for one page (headless Chromium, Debian's package)."""

    def __init__(self):
        import websocket  # websocket-client, only needed by the browser checks

        exe = chromium()
        if exe is None:
            pytest.skip("chromium is not installed (apt-get install chromium)")
        self.profile = tempfile.TemporaryDirectory(ignore_cleanup_errors=True)
        self.proc = subprocess.Popen(
            [exe, *FLAGS, f"--user-data-dir={self.profile.name}", "--remote-debugging-port=0",
             "--remote-allow-origins=*", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile.name) / "DevToolsActivePort"
        deadline = time.time() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.time() > deadline:
                raise RuntimeError("chromium did not start")
            time.sleep(0.1)
        port = int(port_file.read_text().split()[0])
        pages = []
        while not pages:
            pages = [t for t in requests.get(f"http://127.0.0.1:{port}/json", timeout=5).json() if t["type"] == "page"]
        self.ws = websocket.create_connection(pages[0]["webSocketDebuggerUrl"], timeout=30, suppress_origin=True)
        self.ids = itertools.count(1)
        self.events = collections.deque(maxlen=500)  # DevTools events, for failure reports
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"{expression}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout=30, what=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what or expression}")

    def type_into(self, selector, text):
        self.js(f"document.querySelector({json.dumps(selector)}).focus()")
        self.call("Input.insertText", text=text)

    def click(self, selector):
        found = self.js(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return false; e.scrollIntoView(); e.click(); return true; }})()"
        )
        assert found, f"nothing matches {selector}"

    def close(self):
        try:
            self.ws.close()
        finally:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.profile.cleanup()


class ServerProcess:
    """`api-gateway serve` on a free port with extra environment (flags), until stop()."""

    def __init__(self, **env_overrides):
        import signal  # noqa: F401  (used in stop)

        self.port = free_port()
        env = dict(os.environ)
        env.update(
            # The README's way: no password in the URL, PGPASSWORD in the environment.
            DATABASE_URL=front_database_url(with_password=False),
            PGPASSWORD=FRONT_PASSWORD,
            API_GATEWAY_LISTEN=f"127.0.0.1:{self.port}",
            RUST_LOG=os.environ.get("RUST_LOG", "warn"),
        )
        env.update({k: str(v) for k, v in env_overrides.items()})
        import psycopg

        with psycopg.connect(database_url(), autocommit=True) as db:
            ensure_front_role(db)
        self.log = tempfile.NamedTemporaryFile(prefix="agw-front-", suffix=".log", delete=False)
        self.proc = subprocess.Popen([str(binary()), "serve"], env=env, stderr=self.log, stdout=self.log)
        self.base = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(f"{self.base}/health/ready", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                self.proc.kill()
                raise RuntimeError("api-gateway serve did not become ready")
            time.sleep(0.2)

    def stop(self):
        import signal

        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = None
        self.log.close()
        assert_no_permission_denied(self.log.name)
        return code
