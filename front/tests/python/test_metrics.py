"""/metrics read by the Prometheus client library's own text parser
(prometheus_client.parser.text_string_to_metric_families): every family parses, the expected ones
are there with their types, histograms are consistent, and the endpoint needs an admin
credential unless the front runs with --metrics-public."""
import json
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from agw_front_helpers import ROOT, ServerProcess

EXPECTED = {
    "api_gateway_http_requests": "counter",
    "api_gateway_http_request_duration_seconds": "histogram",
    "api_gateway_gate_decisions": "counter",
    "api_gateway_pool_connections": "gauge",
    "api_gateway_pipelined_connections": "gauge",
    "api_gateway_log_queue_dropped": "counter",
    "api_gateway_log_rows_written": "counter",
    "api_gateway_log_batches": "counter",
    "api_gateway_log_queue_length": "gauge",
    "api_gateway_database_up": "gauge",
    "api_gateway_maintenance_last_run_timestamp_seconds": "gauge",
    "api_gateway_live_streams": "gauge",
}


def admin_key():
    keys = json.loads((Path(ROOT) / "tests/fixtures/odoo19_mini.keys.json").read_text())
    return keys["admin"]["key"], keys["demo"]["key"]


@pytest.fixture(scope="module")
def public_server(db):
    s = ServerProcess(API_GATEWAY_METRICS_PUBLIC="true", API_GATEWAY_MAINTENANCE_INTERVAL_S="1",
                      API_GATEWAY_LOG_LEVEL="metadata", API_GATEWAY_LOG_BATCH_MS="50")
    yield s.base
    s.stop()


def families(text):
    return {f.name: f for f in text_string_to_metric_families(text)}


def test_metrics_parse_with_the_prometheus_parser(public_server, token):
    t = token(2, ["read"])
    for _ in range(3):
        assert requests.get(f"{public_server}/api/v1/ping", headers={"Authorization": f"Bearer {t}"}, timeout=10).status_code == 200
    assert requests.get(f"{public_server}/api/v1/res.partner/987654321", timeout=10).status_code == 401
    import time
    time.sleep(1.5)  # a batch written, a maintenance run done
    r = requests.get(f"{public_server}/metrics", timeout=10)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    fams = families(r.text)
    for name, kind in EXPECTED.items():
        assert name in fams, f"{name} missing from {sorted(fams)}"
        assert fams[name].type == kind, (name, fams[name].type)

    reqs = {(s.labels["route"], s.labels["method"], s.labels["status"]): s.value
            for s in fams["api_gateway_http_requests"].samples if s.name.endswith("_total")}
    assert reqs[("/api/v1/ping", "GET", "200")] >= 3
    assert reqs[("/api/v1/{model}/{id}", "GET", "401")] >= 1

    # Histogram: cumulative buckets, +Inf equal to the count, per route.
    hist = fams["api_gateway_http_request_duration_seconds"]
    by_route = {}
    for s in hist.samples:
        by_route.setdefault(s.labels["route"], []).append(s)
    for route, samples in by_route.items():
        buckets = [(float(s.labels["le"]), s.value) for s in samples if s.name.endswith("_bucket")]
        counts = [v for _, v in sorted(buckets)]
        assert counts == sorted(counts), route
        inf = [v for le, v in buckets if le == float("inf")][0]
        count = [s.value for s in samples if s.name.endswith("_count")][0]
        assert inf == count, route

    gate = {(s.labels["status"], s.labels["error"]) for s in fams["api_gateway_gate_decisions"].samples}
    assert ("200", "none") in gate
    pool = {s.labels["state"]: s.value for s in fams["api_gateway_pool_connections"].samples}
    assert set(pool) == {"max", "size", "available", "waiting"}
    assert pool["max"] >= 1
    jobs = {s.labels["job"] for s in fams["api_gateway_maintenance_last_run_timestamp_seconds"].samples}
    assert {"logs", "tokens", "throttles"} <= jobs
    assert fams["api_gateway_database_up"].samples[0].value == 1
    written = fams["api_gateway_log_rows_written"].samples[0].value
    assert written >= 4


def test_metrics_need_admin_by_default(server):
    admin, demo = admin_key()
    assert requests.get(f"{server}/metrics", timeout=10).status_code == 401
    assert requests.get(f"{server}/metrics", headers={"Authorization": f"Bearer {demo}"}, timeout=10).status_code == 403
    r = requests.get(f"{server}/metrics", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert r.status_code == 200
    assert "api_gateway_http_requests" in families(r.text)
