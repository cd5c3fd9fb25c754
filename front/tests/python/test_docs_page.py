"""The docs page in headless Chromium (Debian's `chromium`), driven over the DevTools protocol:
it renders the operations, the token is entered once in Authorize, and a try-it-out call of
GET /api/v1/ping succeeds. A screenshot is written to $AGW_DOCS_SCREENSHOT (default: a temporary
file; docs/images/api-docs.png in the repository was made this way)."""
import base64
import itertools
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests
import websocket

from agw_front_helpers import chromium

FLAGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--mute-audio", "--hide-scrollbars",
    "--window-size=1400,1100",
]


class Browser:
    """A minimal DevTools-protocol client for one page."""

    def __init__(self):
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
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
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


@pytest.fixture
def browser():
    b = Browser()
    yield b
    b.close()


def test_docs_page_renders_and_try_it_out_works(server, token, browser):
    t = token(2, ["read"])
    browser.call("Page.navigate", url=f"{server}/api/docs")
    count = browser.wait_for("document.querySelectorAll('.opblock').length", what="the operations")
    assert count >= 8, count
    assert browser.js("document.body.innerText.includes('/api/v1/ping')")
    assert browser.js("document.body.innerText.includes('/api/oauth/token')")

    # Authorize once: the bearer scheme's field in the Authorize dialog.
    browser.click("button.authorize")
    browser.wait_for("!!document.querySelector('.modal-ux')", what="the Authorize dialog")
    section = (
        "Array.from(document.querySelectorAll('.modal-ux .auth-container'))"
        ".find(c => c.innerText.includes('bearer') && c.querySelector('input'))"
    )
    browser.wait_for(f"!!({section})", what="the bearer section")
    browser.js(f"{section}.setAttribute('data-agw', 'bearer')")
    browser.js("document.querySelector('[data-agw=bearer] input').setAttribute('id', 'agw-bearer-input')")
    browser.type_into("#agw-bearer-input", t)
    browser.js(
        "Array.from(document.querySelectorAll('[data-agw=bearer] button')).find(b => b.innerText.trim() === 'Authorize').click()"
    )
    browser.wait_for(
        "Array.from(document.querySelectorAll('.modal-ux .auth-container')).some(c => c.innerText.includes('bearer') && c.innerText.includes('Logout'))",
        what="the authorized state",
    )
    browser.click(".modal-ux button.btn-done, .modal-ux .close-modal")

    # Try it out: GET /api/v1/ping.
    browser.click("#operations-system-ping .opblock-summary-control")
    browser.wait_for("!!document.querySelector('#operations-system-ping .execute')", what="the Execute button")
    live = (
        "(() => { const e = document.querySelector('#operations-system-ping .live-responses-table tbody "
        ".response-col_status'); return e && e.innerText.trim(); })()"
    )
    status = None
    for _ in range(3):  # a click that lands before the UI is wired up is retried
        browser.click("#operations-system-ping .execute")
        try:
            status = browser.wait_for(live, timeout=15, what="the live response")
            break
        except AssertionError:
            continue
    assert status, browser.js("document.querySelector('#operations-system-ping').innerText.slice(0, 2000)")
    assert status.startswith("200"), status
    body = browser.js("document.querySelector('#operations-system-ping .live-responses-table tbody .response-col_description').innerText")
    assert '"pong": true' in body, body
    assert '"user": 2' in body, body

    # The top of the page: the Authorize button (locked) and the ping call with its response.
    browser.js("window.scrollTo(0, 0)")
    height = browser.js(
        "Math.ceil(document.querySelector('#operations-system-ping .live-responses-table').getBoundingClientRect().bottom) + 30"
    )
    shot = browser.call(
        "Page.captureScreenshot", format="png", captureBeyondViewport=True,
        clip={"x": 0, "y": 0, "width": 1400, "height": min(max(height, 600), 2400), "scale": 1},
    )
    target = Path(os.environ.get("AGW_DOCS_SCREENSHOT") or Path(tempfile.gettempdir()) / "api-docs.png")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(base64.b64decode(shot["data"]))
    assert target.stat().st_size > 10_000


def test_docs_page_dump_dom(server):
    """The plain `chromium --headless --dump-dom` view: the page loads the embedded viewer."""
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as profile:
        run = subprocess.run(
            [exe, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=15000", "--dump-dom",
             f"{server}/api/docs"],
            capture_output=True, text=True, timeout=120,
        )
    assert "swagger-ui" in run.stdout
    assert "opblock" in run.stdout, run.stdout[-2000:]
