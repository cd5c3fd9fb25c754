"""Webhook deliveries verified by an independent implementation: the `standardwebhooks` package.

A receiver on 127.0.0.1 gets what the delivery worker sends for changes made with SQL and checks
every request with `standardwebhooks.Webhook(secret).verify(body, headers)` (signature and
timestamp tolerance). The worker is, in order of preference: the command in AGW_WEBHOOK_WORKER;
`$API_GATEWAY_BIN worker` when that binary has the subcommand; the `webhook_worker` example
(`cargo build -p api_gateway_front --example webhook_worker`). The test commits a webhook on
res.partner.category and removes it, its jobs and its records at the end.
"""
import json
import os
import shlex
import signal
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

standardwebhooks = pytest.importorskip("standardwebhooks")

ROOT = Path(__file__).resolve().parents[2]
DB = os.environ.get("AGW_TEST_DB", "agw_test_mini")
HOST = os.environ.get("PGHOST", "/var/run/postgresql")
PORT = os.environ.get("PGPORT", "5432")


def database_url():
    return f"postgresql:///{DB}?host={HOST}&port={PORT}"


def worker_command():
    if os.environ.get("AGW_WEBHOOK_WORKER"):
        return shlex.split(os.environ["AGW_WEBHOOK_WORKER"])
    binary = os.environ.get("API_GATEWAY_BIN", str(ROOT / "target/debug/api-gateway"))
    if os.path.exists(binary):
        helped = subprocess.run([binary, "--help"], capture_output=True, text=True)
        if " worker" in helped.stdout:
            return [binary, "worker", "--database-url", database_url()]
    for target in [os.environ.get("CARGO_TARGET_DIR"), str(ROOT / "target")]:
        if target and os.path.exists(os.path.join(target, "debug/examples/webhook_worker")):
            return [os.path.join(target, "debug/examples/webhook_worker")]
    return None


class Receiver:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait(self, n, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError(f"expected {n} deliveries, got {len(self.requests)}")

    def close(self):
        self.server.shutdown()


@pytest.fixture
def admin():
    conn = psycopg.connect(dbname=DB, host=HOST, autocommit=True)
    yield conn
    conn.close()


def test_deliveries_verify_with_the_standardwebhooks_package(admin):
    command = worker_command()
    if command is None:
        pytest.skip("no webhook worker binary (build the webhook_worker example or wire `api-gateway worker`)")
    tag = f"py-wh-{os.getpid()}-{int(time.time())}"
    receiver = Receiver()
    old = admin.execute("SELECT allow_private_targets FROM api_gateway.webhook_settings").fetchone()[0]
    admin.execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = true")
    webhook_id = admin.execute(
        "INSERT INTO api_gateway.webhook (name, model, url, fields, headers) "
        "VALUES (%s, 'res.partner.category', %s, '{name,color}', '{\"X-Test\": \"interop\"}') RETURNING id",
        (tag, receiver.url),
    ).fetchone()[0]
    secret = admin.execute("SELECT api_gateway.webhook_secret(%s)", (webhook_id,)).fetchone()[0]
    env = dict(os.environ, DATABASE_URL=database_url(), WEBHOOK_SWEEP_S="1", RUST_LOG="warn")
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        cid = admin.execute(
            "INSERT INTO res_partner_category (name, color, active) VALUES (jsonb_build_object('en_US', %s::text), 2, true) RETURNING id",
            (tag,),
        ).fetchone()[0]
        admin.execute("UPDATE res_partner_category SET color = 9 WHERE id = %s", (cid,))
        with admin.transaction():
            admin.execute("UPDATE res_partner_category SET color = 10 WHERE id = %s", (cid,))
        with admin.transaction():  # rolled back: nothing is sent
            admin.execute("UPDATE res_partner_category SET color = 99 WHERE id = %s", (cid,))
            raise psycopg.Rollback()
        admin.execute("DELETE FROM res_partner_category WHERE id = %s", (cid,))
        got = receiver.wait(4)
        time.sleep(0.5)
        got = receiver.requests
        assert len(got) == 4, [json.loads(b) for _, b in got]
        hook = standardwebhooks.Webhook(secret)
        bodies = []
        for headers, body in got:
            lower = {k.lower(): v for k, v in headers.items()}
            payload = hook.verify(body, lower)  # raises on a bad signature or a stale timestamp
            assert payload == json.loads(body)
            assert lower["webhook-id"] == payload["event_id"]
            assert lower["x-test"] == "interop"
            assert lower["content-type"] == "application/json"
            bodies.append(payload)
            with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
                hook.verify(body.replace(b'"res.partner.category"', b'"res.partner.evil"'), lower)
            with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
                standardwebhooks.Webhook("whsec_" + "A" * 43 + "=").verify(body, lower)
        by_action = {}
        for b in bodies:
            by_action.setdefault(b["action"], []).append(b)
        assert by_action["create"][0]["record"] == {"id": cid, "name": {"en_US": tag}, "color": 2}
        writes = sorted(by_action["write"], key=lambda b: b["record"]["color"])
        assert [w["record"]["color"] for w in writes] == [9, 10]
        assert writes[0]["changed"] == ["color"] and writes[0]["previous"] == {"color": 2}
        assert by_action["unlink"][0]["record"] == {"id": cid}
        assert all(b["model"] == "res.partner.category" for b in bodies)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.close()
        admin.execute("DELETE FROM api_gateway.webhook WHERE id = %s", (webhook_id,))
        admin.execute("DELETE FROM res_partner_category WHERE name->>'en_US' = %s", (tag,))
        admin.execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = %s", (old,))


def test_a_rotated_secret_verifies_with_the_old_and_the_new_secret_during_the_overlap(admin):
    """Standard Webhooks key rotation: while the overlap lasts every delivery carries
    `v1,<new> v1,<old>`, and a receiver still on the old secret verifies it as well as one
    already on the new secret; after an overlap of 0 only the newest secret verifies."""
    command = worker_command()
    if command is None:
        pytest.skip("no webhook worker binary (build the webhook_worker example or wire `api-gateway worker`)")
    tag = f"py-wh-rot-{os.getpid()}-{int(time.time())}"
    receiver = Receiver()
    old_private = admin.execute("SELECT allow_private_targets FROM api_gateway.webhook_settings").fetchone()[0]
    admin.execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = true")
    webhook_id = admin.execute(
        "INSERT INTO api_gateway.webhook (name, model, url, fields) "
        "VALUES (%s, 'res.partner.category', %s, '{name,color}') RETURNING id",
        (tag, receiver.url),
    ).fetchone()[0]
    first = admin.execute("SELECT api_gateway.webhook_secret(%s)", (webhook_id,)).fetchone()[0]
    second = admin.execute("SELECT api_gateway.rotate_webhook_secret(%s)", (webhook_id,)).fetchone()[0]
    assert second != first
    env = dict(os.environ, DATABASE_URL=database_url(), WEBHOOK_SWEEP_S="1", RUST_LOG="warn")
    worker = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        admin.execute(
            "INSERT INTO res_partner_category (name, color, active) VALUES (jsonb_build_object('en_US', %s::text), 1, true)",
            (tag,),
        )
        headers, body = receiver.wait(1)[0]
        lower = {k.lower(): v for k, v in headers.items()}
        signatures = lower["webhook-signature"].split(" ")
        assert len(signatures) == 2 and all(x.startswith("v1,") for x in signatures)
        for secret in (first, second):  # a receiver on either secret accepts it
            assert standardwebhooks.Webhook(secret).verify(body, lower) == json.loads(body)
        # Each signature is the one of its secret (new first), not two copies.
        for secret, signature in ((second, signatures[0]), (first, signatures[1])):
            alone = dict(lower, **{"webhook-signature": signature})
            standardwebhooks.Webhook(secret).verify(body, alone)
        with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
            standardwebhooks.Webhook("whsec_" + "A" * 43 + "=").verify(body, lower)

        third = admin.execute(
            "SELECT api_gateway.rotate_webhook_secret(%s, interval '0')", (webhook_id,)
        ).fetchone()[0]
        admin.execute(
            "INSERT INTO res_partner_category (name, color, active) VALUES (jsonb_build_object('en_US', %s::text), 2, true)",
            (tag,),
        )
        headers, body = receiver.wait(2)[1]
        lower = {k.lower(): v for k, v in headers.items()}
        assert len(lower["webhook-signature"].split(" ")) == 1
        assert standardwebhooks.Webhook(third).verify(body, lower)["record"]["color"] == 2
        for stale in (first, second):
            with pytest.raises(standardwebhooks.webhooks.WebhookVerificationError):
                standardwebhooks.Webhook(stale).verify(body, lower)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.close()
        admin.execute("DELETE FROM api_gateway.webhook WHERE id = %s", (webhook_id,))
        admin.execute("DELETE FROM res_partner_category WHERE name->>'en_US' = %s", (tag,))
        admin.execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = %s", (old_private,))
