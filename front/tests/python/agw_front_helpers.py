"""Helpers of the front's Python checks (a module name of its own, so that it never collides
with another suite's conftest when several run in one pytest session)."""
import os
import shutil
import socket
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def database_url():
    if os.environ.get("DATABASE_URL"):
        return os.environ["DATABASE_URL"]
    host = os.environ.get("PGHOST", "/var/run/postgresql")
    return f"postgresql:///{os.environ.get('AGW_TEST_DB', 'agw_test_mini')}?host={host}"


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
