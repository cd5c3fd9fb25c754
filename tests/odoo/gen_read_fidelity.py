#!/usr/bin/env python3
"""Generate tests/fixtures/read_fidelity/odoo19_demo.json: what a running Odoo 19 (the real demo
database, ../shared/fixtures/odoo19_demo.sql.gz, served by ../shared/tools/odoo19-up.sh) answers
through JSON-2 when four users read common models with the fields integrators ask for.

The read-fidelity suite (tests/sql/read_fidelity.rs) replays every case against
api_gateway.search_read on the same database and compares every value.

Usage: tests/odoo/gen_read_fidelity.py [--url http://127.0.0.1:8069] [--db odoo19]
       [--keys ../shared/fixtures/odoo19_demo.keys.json] [--out tests/fixtures/read_fidelity/odoo19_demo.json]
Only reads are sent (fields_get, search, search_read): the Odoo database is not changed.
"""
import argparse
import json
import pathlib
import sys
import urllib.error
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]

USERS = {  # label: uid; the language is the user's own (read from res.users)
    "admin": 2,
    "demo": 5,
    "portal": 6,
    "jeff": 7,
}

# The fields integrators ask for: stored ones, display_name, inherited (_inherits) and related
# fields, many2one and x2many. Non-stored computed fields and binaries are left out (they need
# Odoo itself: issue 20 part 3).
MODELS = {
    "res.partner": ["display_name", "name", "complete_name", "is_company", "type", "parent_id",
                    "commercial_partner_id", "commercial_company_name", "email", "phone", "street",
                    "city", "zip", "state_id", "country_id", "country_code", "parent_name", "lang",
                    "active", "category_id", "child_ids", "company_id", "user_id", "vat", "ref",
                    "function", "customer_rank", "supplier_rank", "barcode", "credit_limit",
                    "property_payment_term_id", "create_date"],
    "res.users": ["display_name", "name", "login", "email", "partner_id", "company_id",
                  "company_ids", "active", "lang", "tz", "share", "phone", "city", "country_id",
                  "commercial_partner_id"],
    "product.product": ["display_name", "name", "default_code", "barcode", "product_tmpl_id",
                        "list_price", "uom_id", "categ_id", "type", "sale_ok", "purchase_ok",
                        "description_sale", "active", "company_id", "standard_price",
                        "product_template_attribute_value_ids", "taxes_id", "invoice_policy"],
    "product.template": ["display_name", "name", "default_code", "list_price", "categ_id",
                         "uom_id", "type", "sale_ok", "purchase_ok", "description_sale", "active",
                         "company_id", "product_variant_ids", "taxes_id", "invoice_policy",
                         "sequence", "uom_name"],
    "res.country.state": ["display_name", "name", "code", "country_id"],
    "account.move": ["display_name", "name", "move_type", "state", "partner_id", "invoice_date",
                     "invoice_date_due", "date", "journal_id", "currency_id", "amount_untaxed",
                     "amount_tax", "amount_total", "amount_residual", "payment_state",
                     "invoice_line_ids", "line_ids", "company_id", "ref", "invoice_origin",
                     "invoice_partner_display_name", "commercial_partner_id", "invoice_user_id"],
    "account.move.line": ["display_name", "name", "move_id", "account_id", "partner_id",
                          "product_id", "quantity", "price_unit", "price_subtotal", "price_total",
                          "debit", "credit", "balance", "tax_ids", "date", "move_name",
                          "parent_state", "display_type", "currency_id", "company_id",
                          "product_uom_id", "amount_currency", "account_name"],
    "sale.order": ["display_name", "name", "partner_id", "date_order", "state", "amount_untaxed",
                   "amount_tax", "amount_total", "order_line", "user_id", "team_id",
                   "pricelist_id", "company_id", "currency_id", "invoice_status", "validity_date",
                   "tag_ids", "client_order_ref", "partner_invoice_id", "partner_shipping_id"],
    "sale.order.line": ["display_name", "name", "order_id", "product_id", "product_uom_qty",
                        "product_uom_id", "price_unit", "price_subtotal", "price_total",
                        "tax_ids", "discount", "state", "qty_delivered", "qty_invoiced",
                        "company_id", "currency_id", "order_partner_id", "salesman_id",
                        "display_type", "sequence"],
    "uom.uom": ["display_name", "name", "active", "factor", "relative_factor", "relative_uom_id",
                "sequence"],
    "product.category": ["display_name", "name", "complete_name", "parent_id", "child_id",
                         "property_account_income_categ_id"],
    "res.partner.category": ["display_name", "name", "color", "parent_id", "child_ids", "active",
                             "partner_ids"],
    "res.company": ["display_name", "name", "partner_id", "currency_id", "parent_id", "child_ids",
                    "email", "phone", "sequence", "active", "company_registry"],
}

# How the ids are picked (as the administrator): the first records by id, plus a few with
# something particular (variants, sub-contacts, the second company, French translations).
PICKS = {
    "res.partner": [([], 6), ([["parent_id", "!=", False]], 4), ([["company_id", "=", 2]], 2),
                    ([["id", "in", [1, 3, 6, 7, 43]]], 5), ([["is_company", "=", True]], 3)],
    "res.users": [([["id", "in", [1, 2, 5, 6, 7]]], 5)],
    "product.product": [([], 5), ([["product_template_attribute_value_ids", "!=", False]], 4),
                        ([["default_code", "=", False]], 2)],
    "product.template": [([], 5), ([["attribute_line_ids", "!=", False]], 2)],
    "res.country.state": [([["country_id.code", "=", "US"]], 3), ([["country_id.code", "=", "FR"]], 2)],
    "account.move": [([["move_type", "=", "out_invoice"]], 4), ([["move_type", "=", "in_invoice"]], 2),
                     ([["move_type", "=", "entry"]], 2), ([["company_id", "=", 2]], 2)],
    "account.move.line": [([["move_id.move_type", "=", "out_invoice"]], 6), ([["display_type", "!=", "product"]], 3)],
    "sale.order": [([], 5), ([["state", "=", "sale"]], 2)],
    "sale.order.line": [([], 6), ([["product_id.product_template_attribute_value_ids", "!=", False]], 3)],
    "uom.uom": [([], 8)],
    "product.category": [([], 6)],
    "res.partner.category": [([], 6)],
    "res.company": [([], 3)],
}


# Searches whose count depends on defaults a model's `_search` adds (ir.attachment hides the
# attachments of binary fields unless the domain names res_field or id).
SEARCHES = [
    ("ir.attachment", []),
    ("ir.attachment", [["res_field", "!=", False]]),
    ("ir.attachment", [["res_model", "=", "res.partner"]]),
    ("ir.attachment", [["id", ">", 0]]),
]


class Odoo:
    def __init__(self, url, db, keys):
        self.url, self.db, self.keys = url.rstrip("/"), db, keys

    def call(self, uid, model, method, body):
        req = urllib.request.Request(
            f"{self.url}/json/2/{model}/{method}",
            data=json.dumps(body).encode(),
            headers={"Authorization": f"bearer {self.keys[uid]}", "X-Odoo-Database": self.db,
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            body = json.loads(e.read() or b"null")
            return e.code, {"name": (body or {}).get("name"), "message": (body or {}).get("message")}


def refusal(status, body):
    """An Odoo refusal, reduced to what the suite compares (the class) and a hint (the message)."""
    return {"status": status, "name": body.get("name"), "message": (body.get("message") or "")[:300]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8069")
    ap.add_argument("--db", default="odoo19")
    ap.add_argument("--keys", default=str(ROOT.parent / "shared/fixtures/odoo19_demo.keys.json"))
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/read_fidelity/odoo19_demo.json"))
    args = ap.parse_args()
    keyfile = json.loads(pathlib.Path(args.keys).read_text())
    keys = {}
    for k in keyfile["keys"]:  # a key without scope nor expiry per user
        if k["scope"] is None and k["expiration_date"] is None and k["uid"] not in keys:
            keys[k["uid"]] = k["key"]
    odoo = Odoo(args.url, args.db, keys)
    st, langs = odoo.call(2, "res.users", "read", {"ids": list(USERS.values()), "fields": ["lang"]})
    assert st == 200, langs
    lang_of = {r["id"]: r["lang"] or "en_US" for r in langs}
    users = {label: {"uid": uid, "lang": lang_of[uid]} for label, uid in USERS.items()}

    cases, field_refusals = [], []
    for model, fields in MODELS.items():
        ids = []
        for domain, limit in PICKS[model]:
            st, found = odoo.call(2, model, "search", {"domain": domain, "limit": limit, "order": "id",
                                                       "context": {"active_test": False}})
            assert st == 200, (model, domain, found)
            ids += [i for i in found if i not in ids]
        ids.sort()
        for label, user in users.items():
            uid, ctx = user["uid"], {"lang": user["lang"]}
            st, meta = odoo.call(uid, model, "fields_get", {"attributes": ["type"], "context": ctx})
            allowed = [f for f in fields if st == 200 and f in meta]
            denied = [f for f in fields if f not in allowed] if st == 200 else []
            case = {"user": label, "model": model, "ids": ids, "fields": allowed or fields}
            st, rows = odoo.call(uid, model, "search_read", {
                "domain": [["id", "in", ids]], "fields": case["fields"], "order": "id", "context": ctx})
            if st == 200:
                case["records"] = rows
            else:
                case["refusal"] = refusal(st, rows)
            cases.append(case)
            if st != 200 and st == 403:
                # Which fields Odoo refuses on their own (groups, an unreadable comodel): the
                # others are read again together, so their values are compared too.
                readable, refused = [], []
                for f in case["fields"]:
                    st1, body = odoo.call(uid, model, "search_read", {
                        "domain": [["id", "in", ids]], "fields": [f], "context": ctx})
                    if st1 == 200:
                        readable.append(f)
                    else:
                        refused.append(f)
                if readable:  # else the model itself is refused: one refusal is enough
                    denied += refused
                if readable and len(readable) < len(case["fields"]):
                    st, rows = odoo.call(uid, model, "search_read", {
                        "domain": [["id", "in", ids]], "fields": readable, "order": "id", "context": ctx})
                    if st == 200:
                        cases.append({"user": label, "model": model, "ids": ids, "fields": readable,
                                      "records": rows})
            for f in denied:
                st, body = odoo.call(uid, model, "search_read", {
                    "domain": [["id", "in", ids]], "fields": [f], "context": ctx})
                field_refusals.append({"user": label, "model": model, "field": f,
                                       **({"refusal": refusal(st, body)} if st != 200 else {"records": body})})
    searches = []
    for model, domain in SEARCHES:
        for label, user in users.items():
            st, n = odoo.call(user["uid"], model, "search_count", {"domain": domain})
            searches.append({"user": label, "model": model, "domain": domain,
                             **({"count": n} if st == 200 else {"refusal": refusal(st, n)})})
    st, version = odoo.call(2, "ir.module.module", "search_read", {
        "domain": [["name", "=", "base"]], "fields": ["latest_version"]})
    out = {
        "about": "Odoo 19's own JSON-2 answers on the real demo database; made by tests/odoo/gen_read_fidelity.py",
        "odoo_base_version": version[0]["latest_version"] if st == 200 else None,
        "users": users,
        "cases": cases,
        "field_refusals": field_refusals,
        "searches": searches,
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n")
    n = sum(len(c.get("records", [])) * len(c["fields"]) for c in cases)
    print(f"{len(cases)} cases, {n} values, {len(field_refusals)} field refusals -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
