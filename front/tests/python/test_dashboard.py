"""The dashboard (/api/gateway/dashboard) in headless Chromium, driven over the DevTools protocol:
traffic is generated (real requests through the front, plus log rows for what a test cannot
easily provoke: 5xx, 429, slow calls, other client addresses, older days), the admin key is
entered once, all nine charts render (each canvas has drawn pixels), the KPIs and the fault feed
are filled, a request made afterwards appears live (through the Server-Sent Events stream, not
polling), a 5xx raises a toast, the inspect view shows the full record, and the dark theme works.
Screenshots go to $AGW_DASHBOARD_SCREENSHOTS (a directory; default: a temporary one;
docs/images/dashboard-*.png in the repository were made this way)."""
import base64
import json
import os
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

from agw_front_helpers import ROOT, Browser, ServerProcess

CHARTS = ["chart-traffic", "chart-health", "chart-top-endpoints", "chart-slowest", "chart-top-ips",
          "chart-latency", "chart-methods", "chart-status", "chart-webhooks"]


def keys():
    return json.loads((Path(ROOT) / "tests/fixtures/odoo19_mini.keys.json").read_text())


@pytest.fixture(scope="module")
def dash(db):
    s = ServerProcess(API_GATEWAY_LOG_LEVEL="metadata", API_GATEWAY_LOG_BATCH_MS="100")
    yield s.base
    s.stop()


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


def synthetic(db, rows):
    """Log rows written as the front writes them (api_gateway.log_requests)."""
    db.execute("SELECT api_gateway.log_requests(%s::jsonb)", (json.dumps(rows),))


def generate_traffic(base, db, token, marker):
    admin = keys()["admin"]["key"]
    demo = keys()["demo"]["key"]
    ua = {"User-Agent": f"dashboard-test {marker}"}
    s = requests.Session()
    for _ in range(6):
        assert s.get(f"{base}/api/v1/ping", headers={**ua, "Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    for _ in range(4):
        r = s.get(f"{base}/api/v1/res.partner", params={"limit": 3, "fields": "name"},
                  headers={**ua, "Authorization": f"Bearer {admin}"}, timeout=10)
        assert r.status_code == 200, r.text
    assert s.get(f"{base}/api/v1/res.partner/1", headers={**ua, "Authorization": f"Bearer {demo}"}, timeout=10).status_code in (200, 404)
    assert s.get(f"{base}/api/v1/res.partner/987654321", headers={**ua, "Authorization": f"Bearer {token}"}, timeout=10).status_code == 404
    assert s.get(f"{base}/api/v1/res.partner", headers=ua, timeout=10).status_code == 401
    # A read-only token may not delete: 403 insufficient_scope (nothing is deleted).
    assert s.delete(f"{base}/api/v1/res.partner/1", headers={**ua, "Authorization": f"Bearer {token}"}, timeout=10).status_code == 403
    now = time.time()
    iso = lambda t: time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + "Z"  # noqa: E731
    rows = []
    for i in range(12):
        rows.append({"at": iso(now - 600 - i * 1800), "method": ["GET", "POST", "PUT", "DELETE"][i % 4],
                     "path": f"/api/v1/sale.order/{100 + i}" if i % 2 else "/api/v1/sale.order",
                     "model": "sale.order", "status": [200, 201, 200, 429, 500, 200][i % 6],
                     "latency_ms": [4, 35, 80, 240, 900, 12][i % 6], "client_ip": f"198.51.100.{10 + i % 3}",
                     "uid": 2, "user_agent": f"dashboard-test {marker}",
                     "error": "internal: synthetic failure" if i % 6 == 4 else None,
                     "error_chain": "database error XX000: synthetic" if i % 6 == 4 else None})
    for d in range(1, 6):  # older days, for the 30-day view
        rows.append({"at": iso(now - d * 86400), "method": "GET", "path": "/api/v1/res.partner", "status": 200,
                     "latency_ms": 20 + d, "client_ip": "203.0.113.5", "uid": 5, "user_agent": f"dashboard-test {marker}"})
    synthetic(db, rows)
    time.sleep(0.5)  # the front's own batch


def canvas_pixels(browser, cid):
    return browser.js(
        f"(() => {{ const c = document.getElementById('{cid}'); if (!c || !c.width) return 0;"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0;"
        " for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; })()"
    )


def screenshot(browser, name, height=None):
    target_dir = Path(os.environ.get("AGW_DASHBOARD_SCREENSHOTS") or tempfile.gettempdir())
    target_dir.mkdir(parents=True, exist_ok=True)
    height = height or browser.js("Math.min(document.documentElement.scrollHeight, 2600)")
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": 1400, "height": height, "scale": 1})
    path = target_dir / f"dashboard-{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 10_000
    return path


def test_dashboard_renders_live_and_inspects(dash, db, token, browser):
    marker = uuid.uuid4().hex[:8]
    t = token(2, ["read"])
    generate_traffic(dash, db, t, marker)
    admin = keys()["admin"]["key"]

    # The page alone is public; it asks for the credential once.
    r = requests.get(f"{dash}/api/gateway/dashboard", timeout=10)
    assert r.status_code == 200 and "default-src 'self'" in r.headers["content-security-policy"]
    browser.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "light"}])
    browser.call("Page.navigate", url=f"{dash}/api/gateway/dashboard")
    browser.wait_for("!!document.getElementById('login') && !document.getElementById('login').hidden", what="the sign-in form")
    browser.js("localStorage.clear()")
    browser.type_into("#credential", admin)
    browser.click("#login-form button[type=submit]")
    browser.wait_for("window.agwDashboard && window.agwDashboard.refreshes >= 1", what="the first refresh")
    assert browser.js("document.getElementById('login').hidden")
    assert browser.js(f"sessionStorage.getItem('agw_dashboard_credential') === {json.dumps(admin)}")
    assert browser.js("document.cookie") == ""

    # All nine charts render.
    browser.wait_for(f"Object.keys(window.agwDashboard.charts).length === {len(CHARTS)}", what="nine charts")
    for cid in CHARTS:
        assert canvas_pixels(browser, cid) > 200, f"{cid} drew nothing"
    requests_kpi = browser.js("document.querySelector('[data-kpi=\"Requests\"] .value').textContent")
    assert int(requests_kpi.replace(",", "").replace("\u202f", "").replace(" ", "")) >= 20, requests_kpi
    assert browser.js("document.querySelectorAll('#faults tbody tr').length") >= 3
    assert browser.js("window.agwDashboard.data.top_endpoints.length") >= 3
    assert browser.js("window.agwDashboard.data.top_ips.length") >= 2

    # Live: the stream is up, a new request appears without polling.
    browser.wait_for("document.getElementById('conn').dataset.state === 'live'", what="the live stream")
    events = browser.js("window.agwDashboard.liveEvents")
    live_path = f"/api/v1/res.partner/{900000000 + int(marker[:6], 16) % 99999999}"
    assert requests.get(f"{dash}{live_path}", headers={"Authorization": f"Bearer {t}"}, timeout=10).status_code == 404
    browser.wait_for(
        f"Array.from(document.querySelectorAll('#faults tbody tr td.path')).some(td => td.textContent === {json.dumps(live_path)})",
        timeout=30, what="the new request in the fault feed")
    assert browser.js("window.agwDashboard.liveEvents") > events
    assert browser.js(f"Array.from(document.querySelectorAll('#faults tbody tr.new td.path')).some(td => td.textContent === {json.dumps(live_path)})")

    # A 5xx arriving raises a toast.
    synthetic(db, [{"method": "POST", "path": f"/api/v1/res.partner?toast={marker}", "status": 503, "latency_ms": 5,
                    "client_ip": "127.0.0.1", "uid": 2, "error": "unavailable: synthetic outage"}])
    browser.wait_for("Array.from(document.querySelectorAll('.toast')).some(t => t.textContent.includes('Server error'))",
                     timeout=30, what="the 5xx toast")
    browser.js("window.scrollTo(0, 0)")
    screenshot(browser, "light")

    # Inspect: the full record of the live request.
    browser.js(f"Array.from(document.querySelectorAll('#faults tbody tr')).find(r => r.querySelector('td.path').textContent === {json.dumps(live_path)}).click()")
    browser.wait_for("document.getElementById('inspect').open && !!document.querySelector('#inspect dd[data-field=\"error\"]')",
                     what="the inspect view")
    assert browser.js("document.querySelector('#inspect dd[data-field=\"path\"]').textContent") == live_path
    assert "not-found" in browser.js("document.querySelector('#inspect dd[data-field=\"error\"]').textContent")
    assert browser.js("document.querySelector('#inspect dd[data-field=\"uid\"]').textContent") == "2"
    assert t not in browser.js("document.getElementById('inspect').innerText")
    screenshot(browser, "inspect", height=browser.js("window.innerHeight"))
    browser.click("#inspect-close")

    # Dark theme: the charts are drawn again.
    browser.js("document.getElementById('theme').value = 'dark'; document.getElementById('theme').dispatchEvent(new Event('change'))")
    assert browser.js("document.documentElement.dataset.theme") == "dark"
    browser.wait_for(f"Object.keys(window.agwDashboard.charts).length === {len(CHARTS)}", what="charts after the theme change")
    for cid in CHARTS:
        assert canvas_pixels(browser, cid) > 200, f"{cid} drew nothing in the dark theme"
    browser.js("window.scrollTo(0, 0)")
    screenshot(browser, "dark")

    # The status filter: 5xx only (the synthetic 500s are older than the latest 100 faults of a
    # busy test database, but not older than the latest 100 server errors).
    browser.js("document.getElementById('status').value = '5xx'; document.getElementById('status').dispatchEvent(new Event('change'))")
    browser.wait_for("window.agwDashboard.data && window.agwDashboard.data.filter.status === '5xx'", what="the 5xx filter")
    statuses = browser.js("Array.from(document.querySelectorAll('#faults tbody tr')).map(r => r.dataset.status)")
    assert "500" in statuses and all(x.startswith("5") for x in statuses), statuses
    browser.js("document.getElementById('status').value = ''; document.getElementById('status').dispatchEvent(new Event('change'))")

    # The 30-day range has the older days.
    browser.js("document.getElementById('range').value = '30d'; document.getElementById('range').dispatchEvent(new Event('change'))")
    browser.wait_for("window.agwDashboard.data && window.agwDashboard.data.range === '30d'", what="the 30-day view")
    assert browser.js("window.agwDashboard.data.traffic.length") == 30
    assert browser.js("window.agwDashboard.data.traffic.filter(b => b.requests > 0).length") >= 4


def test_dashboard_data_needs_admin(dash):
    demo = keys()["demo"]["key"]
    assert requests.get(f"{dash}/api/gateway/stats/overview", timeout=10).status_code == 401
    r = requests.get(f"{dash}/api/gateway/stats/overview", headers={"Authorization": f"Bearer {demo}"}, timeout=10)
    assert r.status_code == 403
    assert 'scope="admin"' in r.headers["www-authenticate"]
