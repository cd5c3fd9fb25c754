#!/usr/bin/env python3
"""Generate tests/fixtures/fields_get/odoo19_demo.json: what a running Odoo 19 (the real demo
database, ../shared/fixtures/odoo19_demo.sql.gz, served by ../shared/tools/odoo19-up.sh) answers
to `fields_get` through JSON-2 for a few users, models and languages.

The fields_get suite (tests/sql/fields_get.rs) replays every case against api_gateway.fields_get
on the same database and compares the fields listed and their attributes.

Usage: tests/odoo/gen_fields_get.py [--url http://127.0.0.1:8069] [--db odoo19]
       [--keys ../shared/fixtures/odoo19_demo.keys.json] [--out tests/fixtures/fields_get/odoo19_demo.json]
Only fields_get is called: the Odoo database is not changed.
"""
import argparse
import json
import pathlib
import sys
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]

# The attributes the gateway describes (Odoo gives more: depends, groupable, sortable...).
ATTRIBUTES = ["type", "string", "help", "required", "readonly", "selection", "relation",
              "relation_field", "store", "translate", "company_dependent", "related"]

# (label, uid, model, language): admin and demo read in English, jeff is the French user of the
# second company (also asked for English), portal lacks the internal user's groups.
CASES = [
    ("admin", 2, "product.product", "en_US"),
    ("jeff", 7, "product.product", "fr_FR"),
    ("jeff", 7, "product.product", "en_US"),
    ("portal", 6, "product.product", "en_US"),
    ("admin", 2, "res.partner", "en_US"),
    ("demo", 5, "res.partner", "en_US"),
    ("jeff", 7, "res.partner", "fr_FR"),
    ("admin", 2, "sale.order", "en_US"),
    ("jeff", 7, "sale.order", "fr_FR"),
]


def call(url, db, key, model, method, body):
    req = urllib.request.Request(
        f"{url}/json/2/{model}/{method}", data=json.dumps(body).encode(),
        headers={"Authorization": f"bearer {key}", "X-Odoo-Database": db,
                 "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8069")
    ap.add_argument("--db", default="odoo19")
    ap.add_argument("--keys", default=str(ROOT.parent / "shared/fixtures/odoo19_demo.keys.json"))
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/fields_get/odoo19_demo.json"))
    args = ap.parse_args()
    keys = {}
    for k in json.loads(pathlib.Path(args.keys).read_text())["keys"]:
        if k["scope"] is None and k["expiration_date"] is None and k["uid"] not in keys:
            keys[k["uid"]] = k["key"]
    cases = []
    for label, uid, model, lang in CASES:
        fields = call(args.url, args.db, keys[uid], model, "fields_get",
                      {"attributes": ATTRIBUTES, "context": {"lang": lang}})
        cases.append({"user": label, "uid": uid, "model": model, "lang": lang, "fields": fields})
    out = {
        "about": "Odoo 19's own fields_get answers (JSON-2) on the real demo database; made by tests/odoo/gen_fields_get.py",
        "attributes": ATTRIBUTES,
        "cases": cases,
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(out, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"{len(cases)} cases, {sum(len(c['fields']) for c in cases)} fields -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
