#!/usr/bin/env python3
"""The cost of a field Odoo fills (issue 20): GET /api/v1/product.product with `lst_price` (a
computed field that is not stored: the front asks Odoo's JSON-2 `read` for it, once per request)
against the same request without it (SQL alone), through one `api-gateway serve --odoo-url`, one
connection, sequential requests; and Odoo's own JSON-2 `read` of the same records and fields.

Rounds alternate which of the two runs first; each round gives a median latency per request.
Prints one line per figure: `<id> <round 1> <round 2> ...` (milliseconds), for bench/data.sh.
Environment: AGW_GATEWAY_URL, ODOO_URL, ODOO_API_KEY, BENCH_ROUNDS, BENCH_REQUESTS.
"""
import http.client
import json
import os
import statistics
import time
import urllib.parse

GW = urllib.parse.urlparse(os.environ["AGW_GATEWAY_URL"])
ODOO = urllib.parse.urlparse(os.environ["ODOO_URL"])
KEY = os.environ["ODOO_API_KEY"]
DB = os.environ.get("ODOO_DATABASE", "")
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
N = int(os.environ.get("BENCH_REQUESTS", "100"))
FIELDS = "name,default_code,list_price,uom_id"


class Conn:
    """One keep-alive connection, opened again when the server closed it (idle timeout)."""

    def __init__(self, u):
        self.u = u
        self.c = None

    def request(self, method, path, body, headers):
        for attempt in (1, 2):
            if self.c is None:
                self.c = http.client.HTTPConnection(self.u.hostname, self.u.port, timeout=60)
            try:
                self.c.request(method, path, body=body, headers=headers)
                r = self.c.getresponse()
                return r, r.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.c.close()
                self.c = None
                if attempt == 2:
                    raise


def conn(u):
    return Conn(u)


def timed(c, method, path, body=None, headers=None):
    t0 = time.perf_counter()
    r, data = c.request(method, path, body, headers or {})
    ms = (time.perf_counter() - t0) * 1000
    if r.status != 200:
        raise SystemExit(f"odoo_fill.py: {method} {path}: {r.status} {data[:300]!r}")
    return ms, data


def main():
    gw, odoo = conn(GW), conn(ODOO)
    auth = {"Authorization": f"Bearer {KEY}"}
    ids_path = "/api/v1/product.product?fields=id&limit=80&order=id"
    _, data = timed(gw, "GET", ids_path, headers=auth)
    ids = [r["id"] for r in json.loads(data)["records"]]
    plain = f"/api/v1/product.product?fields={FIELDS}&limit=80&order=id"
    filled = f"/api/v1/product.product?fields={FIELDS},lst_price&limit=80&order=id"
    o_headers = {"Authorization": f"bearer {KEY}", "Content-Type": "application/json"}
    if DB:
        o_headers["X-Odoo-Database"] = DB
    o_body = json.dumps({"ids": ids, "fields": FIELDS.split(",") + ["lst_price"]})
    # Same answer for lst_price, before timing.
    _, g = timed(gw, "GET", filled, headers=auth)
    _, o = timed(odoo, "POST", "/json/2/product.product/read", body=o_body, headers=o_headers)
    got = {r["id"]: r["lst_price"] for r in json.loads(g)["records"]}
    want = {r["id"]: r["lst_price"] for r in json.loads(o)}
    if got != want:
        raise SystemExit("odoo_fill.py: the gateway's lst_price differs from Odoo's read()")
    runs = {"plain": [], "filled": [], "json2": []}
    calls = {
        "plain": lambda: timed(gw, "GET", plain, headers=auth)[0],
        "filled": lambda: timed(gw, "GET", filled, headers=auth)[0],
        "json2": lambda: timed(odoo, "POST", "/json/2/product.product/read", body=o_body, headers=o_headers)[0],
    }
    for k in calls:  # warm-up
        for _ in range(5):
            calls[k]()
    for rnd in range(ROUNDS):
        order = ["plain", "filled", "json2"] if rnd % 2 == 0 else ["json2", "filled", "plain"]
        for k in order:
            runs[k].append(statistics.median(calls[k]() for _ in range(N)))
    print(f"odoo_fill_rows {len(ids)}")
    for k, v in runs.items():
        print(f"odoo_fill_{k}_ms " + " ".join(f"{x:.3f}" for x in v))


if __name__ == "__main__":
    main()
