"""Webhooks fired by a real Odoo 19 server (issue 16): every JSON-2 call gives exactly the events
the ORM call implies, one per record, in order, whatever statements the ORM flushes.

Needs a running Odoo on a database that has the extension (see docs/webhooks.md, "Tests"):
AGW_ODOO_URL (e.g. http://127.0.0.1:8269), AGW_ODOO_DB (odoo19), AGW_ODOO_KEY (an API key of an
administrator), PGHOST/PGPORT reaching that database as a superuser, and a worker: the command in
AGW_WEBHOOK_WORKER, or `$API_GATEWAY_BIN worker`. Skipped without AGW_ODOO_URL.
"""
import json
import os
import shlex
import signal
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import pytest

ODOO = os.environ.get("AGW_ODOO_URL")
pytestmark = pytest.mark.skipif(not ODOO, reason="no real Odoo (set AGW_ODOO_URL, AGW_ODOO_DB, AGW_ODOO_KEY)")
DB = os.environ.get("AGW_ODOO_DB", "odoo19")
KEY = os.environ.get("AGW_ODOO_KEY", "")
HOST = os.environ.get("PGHOST", "/var/run/postgresql")
PORT = os.environ.get("PGPORT", "5432")
ROOT = Path(__file__).resolve().parents[2]


def call(model, method, **kwargs):
    req = urllib.request.Request(
        f"{ODOO}/json/2/{model}/{method}",
        data=json.dumps(kwargs).encode(),
        headers={"Authorization": f"bearer {KEY}", "Content-Type": "application/json", "X-Odoo-Database": DB},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read() or b"null")


class Receiver:
    def __init__(self):
        self.requests = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                with receiver.lock:
                    receiver.requests.append((self.path, json.loads(body)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path):
        return f"http://127.0.0.1:{self.server.server_address[1]}/{path}"

    def events(self):
        with self.lock:
            return list(self.requests)


def worker_command():
    if os.environ.get("AGW_WEBHOOK_WORKER"):
        return shlex.split(os.environ["AGW_WEBHOOK_WORKER"])
    binary = os.environ.get("API_GATEWAY_BIN", str(ROOT / "target/debug/api-gateway"))
    return [binary, "worker", "--database-url", f"postgresql:///{DB}?host={HOST}&port={PORT}"]


@pytest.fixture
def setup():
    db = psycopg.connect(dbname=DB, host=HOST, port=PORT, autocommit=True)
    receiver = Receiver()
    tag = f"wh-odoo-{os.getpid()}-{int(time.time())}"
    db.execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = true")
    hooks = {}
    for model in ("res.partner", "sale.order", "sale.order.line"):
        hooks[model] = db.execute(
            "INSERT INTO api_gateway.webhook (name, model, url) VALUES (%s, %s, %s) RETURNING id",
            (f"{tag} {model}", model, receiver.url(model)),
        ).fetchone()[0]
    worker = subprocess.Popen(worker_command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        yield db, receiver, hooks
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=20)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.server.shutdown()
        db.execute("DELETE FROM api_gateway.webhook WHERE name LIKE %s", (tag + "%",))
        db.execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = false")
        db.close()


def settle(db, receiver, hooks):
    """Wait until every job of the test's webhooks is delivered; return the events by path."""
    deadline = time.time() + 30
    while time.time() < deadline:
        left = db.execute(
            "SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = ANY(%s) AND state <> 'delivered'",
            (list(hooks.values()),),
        ).fetchone()[0]
        if left == 0:
            time.sleep(0.2)
            return receiver.events()
        time.sleep(0.05)
    raise AssertionError("deliveries did not finish")


def of(events, model, rid):
    return [b for path, b in events if path == "/" + model and b["record"]["id"] == rid]


def row(db, model, rid):
    return db.execute(f"SELECT to_jsonb(t) FROM public.{model.replace('.', '_')} t WHERE id = %s", (rid,)).fetchone()[0]


def test_json2_calls_give_one_event_per_record_in_order(setup):
    db, receiver, hooks = setup
    # res.partner: create, write, unlink.
    [pid] = call("res.partner", "create", vals_list=[{"name": "WH Odoo Partner", "email": "wh@odoo.example"}])
    events = settle(db, receiver, hooks)
    [create] = of(events, "res.partner", pid)
    assert create["action"] == "create"
    final = row(db, "res.partner", pid)
    # The record as the transaction left it (after the ORM's flush of computed fields).
    for k, v in create["record"].items():
        assert v == final.get(k), (k, v, final.get(k))
    assert create["record"]["email"] == "wh@odoo.example"
    call("res.partner", "write", ids=[pid], vals={"phone": "+32 2 555 01 02", "function": "Buyer"})
    events = settle(db, receiver, hooks)
    got = of(events, "res.partner", pid)
    assert [e["action"] for e in got] == ["create", "write"], [e["action"] for e in got]
    assert {"phone", "function"} <= set(got[1]["changed"])
    assert got[1]["previous"]["phone"] is None
    call("res.partner", "unlink", ids=[pid])
    events = settle(db, receiver, hooks)
    assert [e["action"] for e in of(events, "res.partner", pid)] == ["create", "write", "unlink"]

    # sale.order with two lines: one create for the order (with its final amounts), one per line.
    customer = db.execute("SELECT id FROM res_partner WHERE active AND customer_rank > 0 ORDER BY id LIMIT 1").fetchone()
    customer = customer[0] if customer else db.execute("SELECT min(id) FROM res_partner WHERE active").fetchone()[0]
    products = [r[0] for r in db.execute(
        "SELECT p.id FROM product_product p JOIN product_template t ON t.id = p.product_tmpl_id "
        "WHERE t.sale_ok AND p.active AND t.active ORDER BY p.id LIMIT 2")]
    assert len(products) == 2
    [oid] = call("sale.order", "create", vals_list=[{
        "partner_id": customer,
        "order_line": [[0, 0, {"product_id": products[0], "product_uom_qty": 2}],
                       [0, 0, {"product_id": products[1], "product_uom_qty": 1}]],
    }])
    events = settle(db, receiver, hooks)
    [order_create] = of(events, "sale.order", oid)
    assert order_create["action"] == "create"
    final = row(db, "sale.order", oid)
    assert float(order_create["record"]["amount_total"]) == float(final["amount_total"]) > 0
    lines = [r[0] for r in db.execute("SELECT id FROM sale_order_line WHERE order_id = %s ORDER BY id", (oid,))]
    assert len(lines) == 2
    for lid in lines:
        got = of(events, "sale.order.line", lid)
        assert [e["action"] for e in got] == ["create"], got
        assert got[0]["record"]["price_subtotal"] == row(db, "sale.order.line", lid)["price_subtotal"]
    call("sale.order", "write", ids=[oid], vals={"client_order_ref": "WH-REF"})
    call("sale.order", "action_confirm", ids=[oid])
    events = settle(db, receiver, hooks)
    got = of(events, "sale.order", oid)
    assert [e["action"] for e in got] == ["create", "write", "write"], [(e["action"], e.get("changed")) for e in got]
    assert "client_order_ref" in got[1]["changed"]
    assert "state" in got[2]["changed"] and got[2]["record"]["state"] == "sale"
    for lid in lines:  # the confirmation writes each line once (its state at least)
        got = of(events, "sale.order.line", lid)
        assert [e["action"] for e in got] == ["create", "write"], got
        assert "state" in got[1]["changed"]

    # A draft order unlinked: one unlink for it and one per line.
    [oid2] = call("sale.order", "create", vals_list=[{
        "partner_id": customer, "order_line": [[0, 0, {"product_id": products[0], "product_uom_qty": 1}]]}])
    lines2 = [r[0] for r in db.execute("SELECT id FROM sale_order_line WHERE order_id = %s", (oid2,))]
    call("sale.order", "unlink", ids=[oid2])
    events = settle(db, receiver, hooks)
    assert [e["action"] for e in of(events, "sale.order", oid2)] == ["create", "unlink"]
    for lid in lines2:
        assert [e["action"] for e in of(events, "sale.order.line", lid)] == ["create", "unlink"]
    # Nothing was delivered twice or out of order for any record.
    seen = {}
    for path, b in events:
        seen.setdefault((path, b["record"]["id"]), []).append(b["timestamp"])
    for k, ts in seen.items():
        assert ts == sorted(ts), k
    summary = {f"{p[1:]} {rid}": [b["action"] + ("(" + ",".join(b["changed"]) + ")" if "changed" in b else "")
                                  for q, b in events if q == p and b["record"]["id"] == rid]
               for p, rid in seen}
    print(json.dumps(summary, indent=1))
