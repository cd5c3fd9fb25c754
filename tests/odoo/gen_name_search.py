#!/usr/bin/env python3
"""Generate tests/fixtures/name_search/odoo19_demo.json: the records a running Odoo 19 (the real
demo database, ../shared/fixtures/odoo19_demo.sql.gz, served by ../shared/tools/odoo19-up.sh)
finds through JSON-2 `search` for domains on `display_name` and on relational fields compared
with strings (Odoo's name search), for four users in their own language.

The name-search suite (tests/sql/name_search.rs) replays every case against
api_gateway.search_read on the same database and compares the ids.

Usage: tests/odoo/gen_name_search.py [--url http://127.0.0.1:8069] [--db odoo19]
       [--keys ../shared/fixtures/odoo19_demo.keys.json] [--out tests/fixtures/name_search/odoo19_demo.json]
Only reads are sent (search, read): the Odoo database is not changed.
"""
import argparse
import json
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from gen_read_fidelity import ROOT, USERS, Odoo, refusal  # noqa: E402

# (model, domain): every operator Odoo's name search handles, on the models of the demo
# database whose name search differs (rec_names_search, _rec_name, overrides), directly on
# display_name and through many2one / x2many fields compared with strings.
CASES = [
    # res.partner: complete_name, email, ref, vat, company_registry; like = descendants too
    ("res.partner", [["display_name", "ilike", "azure"]]),
    ("res.partner", [["display_name", "not ilike", "azure"]]),
    ("res.partner", [["display_name", "like", "Wood"]]),
    ("res.partner", [["display_name", "not like", "Wood"]]),
    ("res.partner", [["display_name", "=ilike", "wood corner"]]),
    ("res.partner", [["display_name", "not =ilike", "wood corner"]]),
    ("res.partner", [["display_name", "=like", "Wood%"]]),
    ("res.partner", [["display_name", "=", "Azure Interior"]]),
    ("res.partner", [["display_name", "!=", "Azure Interior"]]),
    ("res.partner", [["display_name", "in", ["Azure Interior", "Gemini Furniture"]]]),
    ("res.partner", [["display_name", "not in", ["Azure Interior", "Gemini Furniture"]]]),
    ("res.partner", [["display_name", "ilike", "US12345672"]]),
    ("res.partner", [["display_name", "ilike", "@example.com"]]),
    ("res.partner", [["display_name", "=", "lumber-inv92@example.com"]]),
    ("res.partner", [["display_name", "ilike", ""]]),
    ("res.partner", [["display_name", "=like", ""]]),
    ("res.partner", ["!", ["display_name", "ilike", "gemini"]]),
    ("res.partner", [["parent_id", "ilike", "azure"]]),
    ("res.partner", [["parent_id", "not ilike", "azure"]]),
    ("res.partner", [["parent_id", "=", "Azure Interior"]]),
    ("res.partner", [["parent_id", "!=", "Azure Interior"]]),
    ("res.partner", [["parent_id", "in", ["Azure Interior", "Wood Corner"]]]),
    ("res.partner", [["parent_id", "not in", ["Azure Interior", "Wood Corner"]]]),
    ("res.partner", [["commercial_partner_id", "ilike", "gemini"]]),
    ("res.partner", [["country_id", "ilike", "united"]]),
    ("res.partner", [["country_id", "ilike", "Belgique"]]),
    ("res.partner", [["country_id", "=", "BE"]]),
    ("res.partner", [["country_id", "=", "Belgium"]]),
    ("res.partner", [["state_id", "ilike", "calif"]]),
    ("res.partner", [["state_id", "=", "California (US)"]]),
    ("res.partner", [["user_id", "ilike", "demo"]]),
    ("res.partner", [["user_id", "=", "Marc Demo"]]),
    ("res.partner", [["category_id", "ilike", "vip"]]),
    ("res.partner", [["category_id", "not ilike", "vip"]]),
    ("res.partner", [["child_ids", "ilike", "willie"]]),
    ("res.partner", [["child_ids", "not in", ["Wood Corner, Willie Burke"]]]),
    ("res.partner", [["parent_id", "in", ["Azure Interior", 14]]]),
    ("res.partner", [["parent_id", "not in", ["Azure Interior", 14, False]]]),
    ("res.partner", [["parent_id", "=?", "Wood Corner"]]),
    ("res.partner", [["id", "child_of", "Wood Corner"]]),
    ("res.partner", [["category_id", "child_of", "Vendor"]]),
    ("res.partner", [["display_name", "<", "B"]]),
    ("res.partner", [["display_name", ">=", "Wood Corner, Ron"]]),
    ("res.partner", [["user_id", "in", ["demo", "Mitchell Admin"]]]),
    # res.users: an exact login wins over the name
    ("res.users", [["display_name", "ilike", "demo"]]),
    ("res.users", [["display_name", "ilike", "mitchell"]]),
    ("res.users", [["display_name", "in", ["admin", "Marc Demo"]]]),
    ("res.users", [["display_name", "not ilike", "demo"]]),
    # products: template name (translated), internal reference, barcode, variants
    ("product.product", [["display_name", "ilike", "desk"]]),
    ("product.product", [["display_name", "not ilike", "desk"]]),
    ("product.product", [["display_name", "ilike", "FURN_78"]]),
    ("product.product", [["display_name", "ilike", "40164785534112"]]),
    ("product.product", [["display_name", "=", "[FURN_7800] Desk Combination"]]),
    ("product.product", [["display_name", "in", ["Office Chair", "[FURN_9999] x"]]]),
    ("product.product", [["display_name", "ilike", "bureau"]]),
    ("product.template", [["display_name", "ilike", "desk"]]),
    ("product.template", [["display_name", "not ilike", "desk"]]),
    ("product.template", [["display_name", "ilike", "FURN_0097"]]),
    ("product.template", [["display_name", "ilike", "chaise"]]),
    ("product.template", [["categ_id", "ilike", "saleable"]]),
    ("product.template", [["uom_id", "=", "Units"]]),
    ("sale.order.line", [["product_id", "ilike", "desk"]]),
    ("sale.order.line", [["product_id", "not ilike", "desk"]]),
    ("sale.order.line", [["display_name", "ilike", "S00001"]]),
    ("sale.order.line", [["order_id", "=", "S00002"]]),
    ("sale.order", [["partner_id", "ilike", "azure"]]),
    ("sale.order", [["partner_id", "not ilike", "azure"]]),
    ("sale.order", [["display_name", "ilike", "S0000"]]),
    # accounting: name, partner's name and ref of a move; the move and product of a line
    ("account.move", [["display_name", "ilike", "INV/2026/0000"]]),
    ("account.move", [["display_name", "ilike", "azure"]]),
    ("account.move", [["display_name", "not ilike", "azure"]]),
    ("account.move", [["partner_id", "ilike", "azure"]]),
    ("account.move", [["journal_id", "ilike", "INV"]]),
    ("account.move", [["journal_id", "=", "Sales"]]),
    ("account.move.line", [["move_id", "ilike", "INV/2026/00001"]]),
    ("account.move.line", [["display_name", "ilike", "INV/2026/00001"]]),
    ("account.move.line", [["product_id", "=", "[FURN_8888] Office Lamp"]]),
    ("account.move.line", [["account_id", "ilike", "400000"]]),
    ("account.tax", [["display_name", "ilike", "15%"]]),
    ("account.journal", [["display_name", "=ilike", "bnk1"]]),
    # base models with rec_names_search or an explicit _rec_name
    ("res.country", [["display_name", "ilike", "be"]]),
    ("res.country", [["display_name", "=", "FR"]]),
    ("res.country.state", [["display_name", "ilike", "calif"]]),
    ("res.country.state", [["display_name", "=", "California (US)"]]),
    ("res.country.state", [["display_name", "in", ["Texas (US)", "Ohio"]]]),
    ("res.country.state", [["display_name", "!=", "California (US)"], ["country_id.code", "=", "US"]]),
    ("res.currency", [["display_name", "ilike", "euro"]]),
    ("res.currency", [["display_name", "=", "USD"]]),
    ("product.category", [["display_name", "ilike", "all / sal"]]),
    ("res.partner.category", [["display_name", "ilike", "service"]]),
    ("res.partner.category", [["display_name", "ilike", "vendor"]]),
    ("res.partner.category", [["display_name", "ilike", "fournisseur"]]),
    ("res.partner.category", [["display_name", "not ilike", "vendor"]]),
    ("res.partner.category", [["display_name", "=", "Vendor"]]),
    ("res.partner", [["category_id", "ilike", "vendor"]]),
    ("res.partner", [["category_id", "not ilike", "vendor"]]),
    ("res.partner", [["country_id", "ilike", "États"]]),
    ("res.partner.bank", [["display_name", "ilike", "BE"]]),
    ("res.company", [["display_name", "ilike", "company"]]),
    ("uom.uom", [["display_name", "ilike", "unit"]]),
    ("ir.model", [["display_name", "ilike", "res.partner"]]),
    ("ir.module.module", [["display_name", "=", "sale_management"]]),
    ("res.groups", [["display_name", "ilike", "sales"]]),
    ("account.account", [["display_name", "ilike", "4000"]]),
    ("account.account", [["display_name", "ilike", "product sales"]]),
    ("account.account", [["display_name", "not ilike", "4000"]]),
    ("account.account", [["display_name", "=", "400000 Product Sales"]]),
    ("account.account", [["display_name", "in", ["400000", "Bank"]]]),
    ("account.move.line", [["account_id", "=", "Product Sales"]]),
    ("account.move.line", [["account_id", "not ilike", "4000"]]),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8069")
    ap.add_argument("--db", default="odoo19")
    ap.add_argument("--keys", default=str(ROOT.parent / "shared/fixtures/odoo19_demo.keys.json"))
    ap.add_argument("--out", default=str(ROOT / "tests/fixtures/name_search/odoo19_demo.json"))
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
    cases = []
    for model, domain in CASES:
        for label, user in users.items():
            st, ids = odoo.call(user["uid"], model, "search", {
                "domain": domain, "order": "id", "context": {"lang": user["lang"]}})
            case = {"user": label, "model": model, "domain": domain}
            if st == 200:
                case["ids"] = ids
            else:
                case["refusal"] = refusal(st, ids)
            cases.append(case)
    out = {
        "about": "Odoo 19's own JSON-2 search answers on the real demo database; made by tests/odoo/gen_name_search.py",
        "users": users,
        "cases": cases,
    }
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(out, ensure_ascii=False, separators=(",", ":")) + "\n")
    found = sum(1 for c in cases if "ids" in c)
    print(f"{len(cases)} cases ({found} answered, {len(cases) - found} refused) -> {args.out}")


if __name__ == "__main__":
    sys.exit(main())
