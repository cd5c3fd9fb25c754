"""The admin console (/api/gateway/admin/) in headless Chromium, driven over the DevTools protocol,
the way an operator uses it: sign in once with the admin key; create an OAuth2 client and see its
secret once (it works, then it is nowhere on the page or in the API); revoke a token and see the
next API call with it refused; create a webhook, send a test event to a local receiver and check
its Standard Webhooks signature; replay a dead job and then all dead jobs of the webhook; settings
validated field by field; traffic logs filtered, grouped and opened; a non-admin key refused.
Screenshots of every page go to $AGW_DASHBOARD_SCREENSHOTS (a directory; default: a temporary one;
docs/images/admin-*.png in the repository were made this way)."""
import base64
import hashlib
import hmac
import json
import os
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from agw_front_helpers import ROOT, Browser, ServerProcess

ADMIN = "/api/gateway/admin"
PAGES = ["settings", "profiles", "clients", "tokens", "throttles", "webhooks", "queue", "logs"]


def keys():
    return json.loads((Path(ROOT) / "tests/fixtures/odoo19_mini.keys.json").read_text())


@pytest.fixture(scope="module")
def console(db):
    s = ServerProcess(API_GATEWAY_LOG_LEVEL="metadata", API_GATEWAY_LOG_BATCH_MS="100")
    yield s.base
    s.stop()


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


class Receiver:
    """A local HTTP endpoint that records the webhook requests it gets and answers 204."""

    def __init__(self):
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()


def screenshot(browser, name, height=None, width=1400):
    target_dir = Path(os.environ.get("AGW_DASHBOARD_SCREENSHOTS") or tempfile.gettempdir())
    target_dir.mkdir(parents=True, exist_ok=True)
    height = height or browser.js("Math.min(document.documentElement.scrollHeight, 2000)")
    shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                        clip={"x": 0, "y": 0, "width": width, "height": height, "scale": 1})
    path = target_dir / f"admin-{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    assert path.stat().st_size > 5_000
    return path


def open_page(browser, base, path, loads_at_least=1):
    # The old document is marked, so that waiting cannot be satisfied by it while the new one
    # is still loading (Page.navigate returns before that).
    browser.js("window.agwStale = true")
    browser.call("Page.navigate", url=f"{base}{ADMIN}/{path}")
    browser.wait_for(f"!window.agwStale && window.agwAdmin && window.agwAdmin.loads >= {loads_at_least}",
                     what=f"the {path or 'home'} page")
    # Confirmations are accepted (window.confirm would block the headless page).
    browser.js("window.confirm = () => true")


def loads(browser):
    return browser.js("window.agwAdmin.loads")


def set_value(browser, selector, value):
    browser.js(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); e.value = {json.dumps(value)};"
               " e.dispatchEvent(new Event('input')); e.dispatchEvent(new Event('change')); })()")


def row_button(browser, row_selector, text):
    browser.js(f"Array.from(document.querySelector({json.dumps(row_selector)}).querySelectorAll('button'))"
               f".find(b => b.textContent === {json.dumps(text)}).click()")


def secret_shown(browser):
    browser.wait_for("document.getElementById('secret-dialog').open && document.getElementById('secret-value').textContent.length > 0",
                     what="the one-time secret")
    return browser.js("document.getElementById('secret-value').textContent")


def test_console_runs_the_gateway_from_the_browser(console, db, browser):
    marker = uuid.uuid4().hex[:8]
    admin = keys()["admin"]["key"]
    browser.call("Emulation.setEmulatedMedia", features=[{"name": "prefers-color-scheme", "value": "light"}])

    # Sign in once on the overview; the credential stays in this tab, no cookie.
    browser.call("Page.navigate", url=f"{console}{ADMIN}/")
    browser.wait_for("(() => { const l = document.getElementById('login'); return !!l && !l.hidden; })()", what="the sign-in form")
    browser.js("localStorage.clear()")
    browser.type_into("#credential", admin)
    browser.click("#login-form button[type=submit]")
    browser.wait_for("window.agwAdmin.loads >= 1", what="the overview")
    assert browser.js("document.cookie") == ""
    assert browser.js("document.querySelectorAll('.cards a.card').length") == 9
    screenshot(browser, "home")

    # ---- OAuth2 client: created, secret shown once, then never again.
    open_page(browser, console, "clients")
    browser.click(".page-head button.primary")
    browser.wait_for("document.getElementById('form-dialog').open", what="the new-client form")
    assert browser.js("document.activeElement.id") == "f-name", "the form takes the keyboard focus"
    browser.type_into("#f-name", f"console client {marker}")
    set_value(browser, "#f-user_id", "2")
    browser.js("document.querySelector('#f-scopes input[value=write]').checked = true")
    before = loads(browser)
    browser.click("#dialog-submit")
    secret = secret_shown(browser)
    client_id = browser.js("document.querySelector('#secret-facts dd').textContent")
    assert client_id.startswith("gw_") and len(secret) == 32
    # It works for the OAuth2 token endpoint.
    r = requests.post(f"{console}/api/oauth/token", auth=(client_id, secret), data={"grant_type": "client_credentials"}, timeout=10)
    assert r.status_code == 200, r.text
    access = r.json()["access_token"]
    browser.click("#secret-done")
    browser.wait_for(f"window.agwAdmin.loads > {before}", what="the list after creation")
    assert not browser.js("document.getElementById('secret-dialog').open")
    assert browser.js(f"!!document.querySelector('tr[data-client={json.dumps(client_id)}]')")
    assert secret not in browser.js("document.documentElement.outerHTML")
    listed = requests.get(f"{console}{ADMIN}/api/clients", headers={"Authorization": f"Bearer {admin}"}, timeout=10)
    assert client_id in listed.text and secret not in listed.text
    screenshot(browser, "clients")

    # ---- Token: listed, revoked in the console, refused on its next use.
    ok = requests.get(f"{console}/api/v1/res.partner", params={"limit": 1, "fields": "name"},
                      headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert ok.status_code == 200, ok.text
    open_page(browser, console, f"tokens?client={client_id}")
    jti = browser.js("document.querySelector('tr[data-jti]').dataset.jti")
    assert browser.js(f"document.querySelector('tr[data-jti={json.dumps(jti)}] .badge').textContent") == "live"
    screenshot(browser, "tokens")
    before = loads(browser)
    row_button(browser, f"tr[data-jti='{jti}']", "Revoke")
    browser.wait_for(f"window.agwAdmin.loads > {before}", what="the list after revocation")
    assert browser.js(f"document.querySelector('tr[data-jti={json.dumps(jti)}] .badge').textContent") == "revoked"
    refused = requests.get(f"{console}/api/v1/res.partner", params={"limit": 1},
                           headers={"Authorization": f"Bearer {access}"}, timeout=10)
    assert refused.status_code == 401, refused.text
    assert refused.headers["content-type"] == "application/problem+json"

    # ---- Webhook: created (secret once), test event to a local receiver, signature checked.
    # The receiver is on loopback: private targets are allowed from the Settings page.
    db.execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = false")
    open_page(browser, console, "settings")
    browser.js("document.getElementById('w-private').checked = true")
    before = loads(browser)
    browser.click("#webhook-settings-form button[type=submit]")
    browser.wait_for(f"window.agwAdmin.loads > {before}", what="the settings after saving")
    assert db.execute("SELECT allow_private_targets FROM api_gateway.webhook_settings").fetchone()[0] is True
    receiver = Receiver()
    try:
        open_page(browser, console, "webhooks")
        browser.click(".page-head button.primary")
        browser.wait_for("document.getElementById('form-dialog').open", what="the new-webhook form")
        browser.type_into("#f-name", f"console hook {marker}")
        browser.type_into("#f-model", "res.partner.category")
        browser.type_into("#f-url", receiver.url)
        set_value(browser, "#f-headers", json.dumps({"X-Console": marker}))
        browser.type_into("#f-fields", "name")
        browser.js("document.getElementById('f-active').checked = false")  # no worker runs here
        # A bad domain is refused next to its field, the form stays open.
        browser.type_into("#f-domain", "[('name', 'frobnicate', 1)]")
        browser.click("#dialog-submit")
        browser.wait_for("document.getElementById('f-domain-error').textContent.length > 0 || document.getElementById('dialog-error').textContent.length > 0",
                         what="the domain error")
        assert browser.js("document.getElementById('form-dialog').open")
        set_value(browser, "#f-domain", "")
        before = loads(browser)
        browser.click("#dialog-submit")
        wh_secret = secret_shown(browser)
        assert wh_secret.startswith("whsec_")
        browser.click("#secret-done")
        browser.wait_for(f"window.agwAdmin.loads > {before}", what="the list after creation")
        webhook_id = db.execute("SELECT id FROM api_gateway.webhook WHERE name = %s", (f"console hook {marker}",)).fetchone()[0]
        assert wh_secret not in browser.js("document.documentElement.outerHTML")
        row_button(browser, f"tr[data-webhook='{webhook_id}']", "Send test event")
        browser.wait_for("Array.from(document.querySelectorAll('.toast')).some(t => t.textContent.includes('Test event delivered'))",
                         what="the delivered toast")
        assert len(receiver.requests) == 1
        headers, body = receiver.requests[0]
        assert headers["x-console"] == marker
        signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
        expected = base64.b64encode(hmac.new(base64.b64decode(wh_secret.removeprefix("whsec_")), signed, hashlib.sha256).digest()).decode()
        assert f"v1,{expected}" in headers["webhook-signature"].split()
        payload = json.loads(body)
        assert payload["action"] == "test" and payload["model"] == "res.partner.category"
        screenshot(browser, "webhooks")
    finally:
        receiver.close()

    # ---- Queue: a dead job replayed, then every dead job of the webhook.
    jobs = [r[0] for r in db.execute(
        "INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, state, attempts, last_error, last_status) "
        "SELECT gen_random_uuid(), %s, 'create', n, 'dead', 8, 'HTTP 500: synthetic', 500 FROM generate_series(1, 3) n RETURNING id",
        (webhook_id,)).fetchall()]
    open_page(browser, console, f"queue?webhook={webhook_id}&state=dead")
    assert browser.js("document.querySelectorAll('tr[data-job]').length") == 3
    assert "synthetic" in browser.js("document.querySelector('tr[data-job]').textContent")
    screenshot(browser, "queue")
    before = loads(browser)
    row_button(browser, f"tr[data-job='{jobs[0]}']", "Replay")
    browser.wait_for(f"window.agwAdmin.loads > {before}", what="the queue after the replay")
    state = db.execute("SELECT state, attempts FROM api_gateway.webhook_job WHERE id = %s", (jobs[0],)).fetchone()
    assert state == ("pending", 0)
    assert browser.js("document.querySelectorAll('tr[data-job]').length") == 2
    before = loads(browser)
    browser.click(".page-head button.danger")
    browser.wait_for(f"window.agwAdmin.loads > {before}", what="the queue after replaying all dead")
    left = db.execute("SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = %s AND state = 'dead'", (webhook_id,)).fetchone()[0]
    assert left == 0
    audit = [r[0] for r in db.execute(
        "SELECT action FROM api_gateway.audit WHERE target = %s ORDER BY id", (f"webhook:{webhook_id}",)).fetchall()]
    assert audit == ["webhook.create", "webhook.test_event", "webhook.replay_dead"], audit
    # Deleted from the console (after its confirmation), with its jobs, and audited.
    open_page(browser, console, "webhooks")
    browser.js("window.confirm = () => true")
    before = loads(browser)
    row_button(browser, f"tr[data-webhook='{webhook_id}']", "Delete")
    browser.wait_for(f"window.agwAdmin.loads > {before}", what="the list after the deletion")
    assert not browser.js(f"!!document.querySelector('tr[data-webhook=\"{webhook_id}\"]')")
    assert db.execute("SELECT count(*) FROM api_gateway.webhook WHERE id = %s", (webhook_id,)).fetchone()[0] == 0
    assert db.execute("SELECT count(*) FROM api_gateway.webhook_job WHERE webhook_id = %s", (webhook_id,)).fetchone()[0] == 0
    last = db.execute("SELECT action FROM api_gateway.audit WHERE target = %s ORDER BY id DESC LIMIT 1",
                      (f"webhook:{webhook_id}",)).fetchone()[0]
    assert last == "webhook.delete"

    # ---- Settings: a bad value is named next to its field; a good one is saved and audited.
    open_page(browser, console, "settings")
    level = db.execute("SELECT log_level FROM api_gateway.settings").fetchone()[0]
    set_value(browser, "#s-default_limit", "0")
    browser.click("#settings-form button[type=submit]")
    browser.wait_for("document.getElementById('s-default_limit-error').textContent.includes('between 1 and 10000')",
                     what="the field error")
    assert browser.js("document.getElementById('s-default_limit').getAttribute('aria-invalid')") == "true"
    screenshot(browser, "settings")
    open_page(browser, console, "settings")
    set_value(browser, "#s-log_level", "payloads")
    before = loads(browser)
    browser.click("#settings-form button[type=submit]")
    browser.wait_for(f"window.agwAdmin.loads > {before}", what="the settings after saving")
    assert db.execute("SELECT log_level FROM api_gateway.settings").fetchone()[0] == "payloads"
    db.execute("SELECT api_gateway.admin_update_settings(NULL, NULL, %s::jsonb)", (json.dumps({"log_level": level}),))

    # ---- Profiles, throttles: rendered with their data.
    db.execute("SELECT api_gateway.admin_save_profile(NULL, NULL, %s::jsonb)",
               (json.dumps({"user_id": 8, "rate_limit": 500, "allowed_ips": ["10.0.0.0/8", "127.0.0.1"], "note": "console test"}),))
    open_page(browser, console, "profiles")
    assert "10.0.0.0/8" in browser.js("document.querySelector('tr[data-user=\"8\"]').textContent")
    assert browser.js("document.querySelector('tr[data-user=\"8\"] a').getAttribute('href')") == f"{ADMIN}/logs?user=8"
    screenshot(browser, "profiles")
    open_page(browser, console, "throttles")
    browser.wait_for("document.querySelectorAll('tr[data-subject]').length > 0", what="a throttle row")
    first = loads(browser)
    browser.wait_for(f"window.agwAdmin.loads > {first}", timeout=15, what="the live refresh")
    screenshot(browser, "throttles")

    # ---- Traffic logs: filtered by path, grouped by endpoint, one record opened.
    time.sleep(0.5)  # the front's batch of the requests above
    open_page(browser, console, "logs?path=res.partner")
    assert browser.js("document.querySelectorAll('tr[data-log]').length") >= 2
    assert browser.js("Array.from(document.querySelectorAll('tr[data-log] td.path')).every(td => td.textContent.includes('res.partner'))")
    screenshot(browser, "logs")
    browser.js("document.querySelector('tr[data-log]').click()")
    browser.wait_for("document.getElementById('inspect').open", what="the log record")
    assert access not in browser.js("document.getElementById('inspect').innerText")
    browser.click("#inspect-close")
    open_page(browser, console, "logs?by=endpoint")
    assert browser.js("document.querySelector('.section tbody tr td').textContent").startswith(("GET ", "POST "))

    # ---- Dark theme (shared with the dashboard) and a phone-sized screen.
    browser.js("document.getElementById('theme').value = 'dark'; document.getElementById('theme').dispatchEvent(new Event('change'))")
    assert browser.js("localStorage.getItem('agw_dashboard_theme')") == "dark"
    open_page(browser, console, "clients")
    assert browser.js("document.documentElement.dataset.theme") == "dark"
    screenshot(browser, "dark")
    browser.call("Emulation.setDeviceMetricsOverride", width=390, height=844, deviceScaleFactor=1, mobile=True)
    open_page(browser, console, "clients")
    assert browser.js("document.documentElement.scrollWidth <= window.innerWidth + 1"), "no sideways scrolling of the page"
    screenshot(browser, "phone", height=844, width=390)
    browser.call("Emulation.clearDeviceMetricsOverride")


def test_every_page_loads_and_a_non_admin_key_is_refused(console, browser):
    # Each page renders for the admin.
    browser.call("Page.navigate", url=f"{console}{ADMIN}/settings")
    browser.wait_for("!!document.getElementById('login')", what="the page")
    browser.js(f"sessionStorage.setItem('agw_dashboard_credential', {json.dumps(keys()['admin']['key'])})")
    for page in PAGES:
        open_page(browser, console, page)
        assert browser.js("!document.querySelector('#view > p.error')"), page
        assert browser.js(f"document.querySelector('#nav a[data-page={json.dumps(page)}]').getAttribute('aria-current')") == "page"
    # A non-admin's key: the sign-in form comes back with the reason; the API says 403.
    browser.js(f"sessionStorage.setItem('agw_dashboard_credential', {json.dumps(keys()['demo']['key'])})")
    browser.call("Page.navigate", url=f"{console}{ADMIN}/clients")
    browser.wait_for("(() => { const l = document.getElementById('login'); return !!l && !l.hidden"
                     " && document.getElementById('login-error').textContent.includes('admin scope'); })()",
                     what="the refusal")
    assert browser.js("document.querySelectorAll('tr[data-client]').length") == 0
    r = requests.get(f"{console}{ADMIN}/api/clients", headers={"Authorization": f"Bearer {keys()['demo']['key']}"}, timeout=10)
    assert r.status_code == 403
