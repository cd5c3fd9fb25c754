//! Issue 18, nested reads: `fields` entries such as `partner_id{name,email}` and `web_read`
//! specifications read related records in the same statement, with the related model's access
//! rights and record rules for the caller. Each nested answer is compared with the plain reads
//! it replaces (the extension's own flat `search_read`, whose fidelity to Odoo is tested
//! elsewhere), on every fixture; the sale-order case runs on the real demo database.
use api_gateway_tests::{connect, demo_only, sqlstate};
use postgres::GenericClient;
use serde_json::{Value, json};

/// `search_read(uid, model, domain, fields)` (Ok(records) or Err((SQLSTATE, message))).
fn read<C: GenericClient>(
    db: &mut C,
    uid: i32,
    model: &str,
    domain: &str,
    fields: &[&str],
) -> Result<Value, (String, String)> {
    let fields: Vec<String> = fields.iter().map(|s| s.to_string()).collect();
    let mut sp = db.transaction().expect("savepoint");
    let r = sp.query_one(
        "SELECT api_gateway.search_read($1, $2, $3, $4)",
        &[&uid, &model, &domain, &fields],
    );
    match r {
        Ok(row) => {
            sp.commit().unwrap();
            Ok(row.get(0))
        }
        Err(e) => {
            let msg = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_default();
            let code = sqlstate(&e);
            let _ = sp.rollback();
            Err((code, msg))
        }
    }
}

fn web<C: GenericClient>(
    db: &mut C,
    uid: i32,
    model: &str,
    domain: &str,
    spec: &Value,
) -> Result<Value, (String, String)> {
    let mut sp = db.transaction().expect("savepoint");
    let r = sp.query_one(
        "SELECT api_gateway.web_search_read($1, $2, $3, $4)",
        &[&uid, &model, &domain, spec],
    );
    match r {
        Ok(row) => {
            sp.commit().unwrap();
            Ok(row.get(0))
        }
        Err(e) => {
            let msg = e
                .as_db_error()
                .map(|d| d.message().to_string())
                .unwrap_or_default();
            let code = sqlstate(&e);
            let _ = sp.rollback();
            Err((code, msg))
        }
    }
}

fn ids_domain(ids: &[i64]) -> String {
    format!(
        "[('id', 'in', [{}])]",
        ids.iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn ids_of(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_i64().or_else(|| x["id"].as_i64()).unwrap())
        .collect()
}

/// The records of `model` with these ids (plain read), by id.
fn by_id<C: GenericClient>(
    db: &mut C,
    uid: i32,
    model: &str,
    ids: &[i64],
    fields: &[&str],
) -> std::collections::BTreeMap<i64, Value> {
    read(db, uid, model, &ids_domain(ids), fields)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r.clone()))
        .collect()
}

/// The parent partner with the most children (every fixture has one with at least two).
fn parent_with_children(db: &mut postgres::Client) -> i64 {
    let row = db
        .query_one(
            "SELECT parent_id::int8, count(*) FROM public.res_partner \
              WHERE parent_id IS NOT NULL AND active GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1",
            &[],
        )
        .unwrap();
    assert!(row.get::<_, i64>(1) >= 2, "a partner with two children");
    row.get(0)
}

#[test]
fn nested_many2one_and_one2many_equal_the_plain_reads() {
    let mut db = connect();
    let parent = parent_with_children(&mut db);
    let domain = format!("[('id', '=', {parent})]");
    let nested = read(
        &mut db,
        2,
        "res.partner",
        &domain,
        &[
            "name",
            "company_id{name}",
            "child_ids{name,email,parent_id{name}}",
        ],
    )
    .unwrap();
    let flat = read(
        &mut db,
        2,
        "res.partner",
        &domain,
        &["name", "company_id", "child_ids"],
    )
    .unwrap();
    let (n, f) = (&nested[0], &flat[0]);
    assert_eq!(n["name"], f["name"]);
    assert_eq!(n["id"], json!(parent));
    match &f["company_id"] {
        Value::Bool(false) => assert_eq!(n["company_id"], json!(false)),
        pair => {
            let company = pair[0].as_i64().unwrap();
            let c = by_id(&mut db, 2, "res.company", &[company], &["name"]);
            assert_eq!(n["company_id"], c[&company]);
        }
    }
    let child_ids = ids_of(&f["child_ids"]);
    assert!(child_ids.len() >= 2);
    assert_eq!(
        ids_of(&n["child_ids"]),
        child_ids,
        "same children, same order"
    );
    let children = by_id(
        &mut db,
        2,
        "res.partner",
        &child_ids,
        &["name", "email", "parent_id"],
    );
    let parents = by_id(&mut db, 2, "res.partner", &[parent], &["name"]);
    for child in n["child_ids"].as_array().unwrap() {
        let plain = &children[&child["id"].as_i64().unwrap()];
        assert_eq!(child["name"], plain["name"]);
        assert_eq!(child["email"], plain["email"]);
        assert_eq!(child["parent_id"], parents[&parent]);
        assert_eq!(
            child.as_object().unwrap().len(),
            4,
            "id and the three sub-fields: {child}"
        );
    }
    // The same tree as a web_read specification: a many2one without sub-fields is its id.
    let w = web(
        &mut db,
        2,
        "res.partner",
        &domain,
        &json!({"name": {}, "company_id": {}, "child_ids": {"fields": {"name": {}, "email": {}, "parent_id": {"fields": {"name": {}}}}}}),
    )
    .unwrap();
    assert_eq!(w[0]["child_ids"], n["child_ids"]);
    assert_eq!(
        w[0]["company_id"],
        match &f["company_id"] {
            Value::Bool(false) => json!(false),
            pair => pair[0].clone(),
        }
    );
    // Cursor paging reads the same tree.
    let page: Value = db
        .query_one(
            "SELECT api_gateway.search_page(2, 'res.partner', $1, ARRAY['name', 'company_id{name}', 'child_ids{name,email,parent_id{name}}'], 10, 'id')",
            &[&domain],
        )
        .unwrap()
        .get(0);
    assert_eq!(page["records"], nested);
    // web_read by id, and its versioned twin for ETags.
    let one: Value = db
        .query_one(
            "SELECT api_gateway.web_read(2, 'res.partner', $1, '{\"child_ids\": {\"fields\": {\"name\": {}}}}')",
            &[&(parent as i32)],
        )
        .unwrap()
        .get(0);
    assert_eq!(ids_of(&one["child_ids"]), child_ids);
    let versioned: Value = db
        .query_one(
            "SELECT api_gateway.web_read_versioned(2, 'res.partner', $1, '{\"name\": {}}')",
            &[&(parent as i32)],
        )
        .unwrap()
        .get(0);
    assert_eq!(versioned["record"]["name"], f["name"]);
    assert!(versioned["version"].is_string());
}

#[test]
fn x2many_limit_and_order_follow_web_read() {
    let mut db = connect();
    let parent = parent_with_children(&mut db);
    let domain = format!("[('id', '=', {parent})]");
    let sorted = read(
        &mut db,
        2,
        "res.partner",
        &format!("[('parent_id', '=', {parent})]"),
        &["name"],
    )
    .unwrap();
    // the children by name descending, as a plain search_read with that order sorts them
    let expected: Vec<i64> = {
        let rows: Vec<Value> = db
            .query_one(
                "SELECT api_gateway.search_read(2, 'res.partner', $1, ARRAY['name'], NULL, 0, 'name desc')",
                &[&format!("[('parent_id', '=', {parent})]")],
            )
            .unwrap()
            .get::<_, Value>(0)
            .as_array()
            .unwrap()
            .clone();
        rows.iter().map(|r| r["id"].as_i64().unwrap()).collect()
    };
    assert_eq!(expected.len(), sorted.as_array().unwrap().len());
    let nested = read(
        &mut db,
        2,
        "res.partner",
        &domain,
        &["child_ids(limit=1, order='name desc'){name}"],
    )
    .unwrap();
    let lines = nested[0]["child_ids"].as_array().unwrap();
    assert_eq!(ids_of(&nested[0]["child_ids"]), expected, "all ids, sorted");
    // the first `limit` read in full, the others as {"id": N} (Odoo's web_read)
    assert_eq!(
        lines[0].as_object().unwrap().len(),
        2,
        "id and name: {}",
        lines[0]
    );
    for rest in &lines[1..] {
        assert_eq!(rest.as_object().unwrap().len(), 1, "{rest}");
    }
    // order alone sorts the id list; the web specification gives the same
    let ids_only = read(
        &mut db,
        2,
        "res.partner",
        &domain,
        &["child_ids(order='name desc')"],
    )
    .unwrap();
    assert_eq!(ids_only[0]["child_ids"], json!(expected));
    let w = web(
        &mut db,
        2,
        "res.partner",
        &domain,
        &json!({"child_ids": {"fields": {"name": {}}, "limit": 1, "order": "name desc"}}),
    )
    .unwrap();
    assert_eq!(w[0]["child_ids"], nested[0]["child_ids"]);
    // limit 0: every record as its id only
    let none = read(
        &mut db,
        2,
        "res.partner",
        &domain,
        &["child_ids(limit=0){name}"],
    )
    .unwrap();
    assert!(
        none[0]["child_ids"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.as_object().unwrap().len() == 1)
    );
}

#[test]
fn malformed_trees_are_22023_naming_the_bad_part() {
    let mut db = connect();
    let d = "[('id', '=', 3)]";
    for (fields, part) in [
        ("child_ids{name,nope}", "child_ids"),
        ("child_ids{parent_id{na-me}}", "child_ids.parent_id"),
        ("name{x}", "name"),
        ("company_id(limit=2){name}", "company_id"),
        ("child_ids(order='nope desc'){name}", "child_ids"),
        ("child_ids(limit=2)", "child_ids"),
        ("child_ids{name", "child_ids"),
        (
            "child_ids{parent_id{child_ids{parent_id{child_ids{name}}}}}",
            "child_ids.parent_id.child_ids.parent_id.child_ids",
        ),
    ] {
        let (code, msg) = read(&mut db, 2, "res.partner", d, &[fields]).unwrap_err();
        assert_eq!(code, "22023", "{fields}: {msg}");
        assert!(msg.contains(part), "{fields}: {msg}");
    }
    let (code, msg) = read(
        &mut db,
        2,
        "res.partner",
        d,
        &["child_ids{parent_id{child_ids{parent_id{child_ids{name}}}}}"],
    )
    .unwrap_err();
    assert!(code == "22023" && msg.contains("deeper than 4"), "{msg}");
    for (spec, part) in [
        (json!({"child_ids": {"fields": {"nope": {}}}}), "child_ids"),
        (json!({"child_ids": {"limit": -1}}), "child_ids"),
        (
            json!({"child_ids": {"context": {"lang": "fr_FR"}}}),
            "child_ids",
        ),
        (json!({"name": []}), "name"),
        (json!(["name"]), "object"),
    ] {
        let (code, msg) = web(&mut db, 2, "res.partner", d, &spec).unwrap_err();
        assert_eq!(code, "22023", "{spec}: {msg}");
        assert!(msg.contains(part), "{spec}: {msg}");
    }
    // A flat list is read as before: no brace, no change.
    let flat = read(&mut db, 2, "res.partner", d, &["name", "parent_id"]).unwrap();
    assert!(flat[0]["parent_id"].is_array() || flat[0]["parent_id"] == json!(false));
}

/// The demo's user "demo" (uid 5) sees only his own orders and order lines ("Personal Orders",
/// "Personal Order Lines"). One line of his order S00001 is handed to another salesman for the
/// test (rolled back): the one nested request returns what the three plain reads return,
/// without that line.
#[test]
fn demo_sale_order_with_lines_and_products_in_one_request_equals_three_plain_reads() {
    demo_only();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let order: i64 = tx
        .query_one(
            "SELECT id::int8 FROM public.sale_order WHERE name = 'S00001' AND user_id = 5",
            &[],
        )
        .unwrap()
        .get(0);
    let all_lines: Vec<i64> = tx
        .query(
            "SELECT id::int8 FROM public.sale_order_line WHERE order_id = $1 ORDER BY id",
            &[&(order as i32)],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(all_lines.len() >= 3);
    let hidden = all_lines[1];
    tx.execute(
        "UPDATE public.sale_order_line SET salesman_id = 2 WHERE id = $1",
        &[&(hidden as i32)],
    )
    .unwrap();
    let domain = format!("[('id', '=', {order})]");
    let nested = read(
        &mut tx,
        5,
        "sale.order",
        &domain,
        &[
            "name,partner_id{name,email},amount_total",
            "order_line{product_id{name,default_code,list_price},name,product_uom_qty,price_subtotal}",
        ],
    )
    .unwrap();
    // 1. the order
    let o = read(
        &mut tx,
        5,
        "sale.order",
        &domain,
        &["name", "partner_id", "amount_total", "order_line"],
    )
    .unwrap();
    let o = &o[0];
    let line_ids = ids_of(&o["order_line"]);
    assert_eq!(
        line_ids.len(),
        all_lines.len() - 1,
        "the rule hides one line"
    );
    assert!(!line_ids.contains(&hidden));
    // 2. its lines
    let lines = by_id(
        &mut tx,
        5,
        "sale.order.line",
        &line_ids,
        &["product_id", "name", "product_uom_qty", "price_subtotal"],
    );
    // 3. their products (and the order's partner)
    let product_ids: Vec<i64> = lines
        .values()
        .filter_map(|l| l["product_id"][0].as_i64())
        .collect();
    let products = by_id(
        &mut tx,
        5,
        "product.product",
        &product_ids,
        &["name", "default_code", "list_price"],
    );
    let partner = o["partner_id"][0].as_i64().unwrap();
    let partners = by_id(&mut tx, 5, "res.partner", &[partner], &["name", "email"]);
    let expected_lines: Vec<Value> = line_ids
        .iter()
        .map(|id| {
            let mut l = lines[id].clone();
            let p = l["product_id"][0].as_i64().unwrap();
            l["product_id"] = products[&p].clone();
            l
        })
        .collect();
    let expected = json!([{
        "id": order,
        "name": o["name"],
        "amount_total": o["amount_total"],
        "partner_id": partners[&partner],
        "order_line": expected_lines,
    }]);
    assert_eq!(nested, expected);
    // The web_read specification returns the same tree (no plain many2one in it).
    let w = web(
        &mut tx,
        5,
        "sale.order",
        &domain,
        &json!({
            "name": {}, "amount_total": {}, "partner_id": {"fields": {"name": {}, "email": {}}},
            "order_line": {"fields": {
                "product_id": {"fields": {"name": {}, "default_code": {}, "list_price": {}}},
                "name": {}, "product_uom_qty": {}, "price_subtotal": {}}}
        }),
    )
    .unwrap();
    assert_eq!(w, expected);
    tx.rollback().unwrap();
}

/// Refusals as Odoo's web_read gives them, for the demo's portal user (uid 6, no access right
/// on product.product; sees only his own partner): `display_name` (and `id`) of any related
/// record come back (Odoo reads them as the superuser); any other sub-field of a record the
/// caller may not read fails the whole request with 42501 (Odoo's AccessError).
#[test]
fn demo_portal_refusals_are_odoos() {
    demo_only();
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let domain = "[('name', '=', 'S00019')]";
    // no access right on the comodel: refused
    let (code, msg) = read(
        &mut tx,
        6,
        "sale.order",
        domain,
        &["order_line{product_id{name}}"],
    )
    .unwrap_err();
    assert_eq!(code, "42501", "{msg}");
    assert!(msg.contains("product.product"), "{msg}");
    // display_name needs no access: equal to the plain read's [id, display_name]
    let shown = read(
        &mut tx,
        6,
        "sale.order",
        domain,
        &["order_line{product_id{display_name}}"],
    )
    .unwrap();
    let line_ids = ids_of(&shown[0]["order_line"]);
    let plain = by_id(&mut tx, 6, "sale.order.line", &line_ids, &["product_id"]);
    for l in shown[0]["order_line"].as_array().unwrap() {
        let p = &plain[&l["id"].as_i64().unwrap()]["product_id"];
        assert_eq!(l["product_id"], json!({"id": p[0], "display_name": p[1]}));
    }
    // a record hidden by a rule: the shipping address becomes the company's partner
    tx.execute(
        "UPDATE public.sale_order SET partner_shipping_id = (SELECT partner_id FROM public.res_company WHERE id = 1) WHERE name = 'S00019'",
        &[],
    )
    .unwrap();
    let (code, msg) = read(
        &mut tx,
        6,
        "sale.order",
        domain,
        &["partner_shipping_id{name}"],
    )
    .unwrap_err();
    assert_eq!(code, "42501", "{msg}");
    assert!(msg.contains("res.partner"), "{msg}");
    let (code, _) = web(
        &mut tx,
        6,
        "sale.order",
        domain,
        &json!({"partner_shipping_id": {"fields": {"email": {}}}}),
    )
    .unwrap_err();
    assert_eq!(code, "42501");
    let ok = web(
        &mut tx,
        6,
        "sale.order",
        domain,
        &json!({"partner_shipping_id": {"fields": {"display_name": {}}}, "partner_id": {"fields": {"name": {}}}}),
    )
    .unwrap();
    let flat = read(
        &mut tx,
        6,
        "sale.order",
        domain,
        &["partner_shipping_id", "partner_id"],
    )
    .unwrap();
    assert_eq!(
        ok[0]["partner_shipping_id"],
        json!({"id": flat[0]["partner_shipping_id"][0], "display_name": flat[0]["partner_shipping_id"][1]})
    );
    // his own partner is readable
    assert_eq!(ok[0]["partner_id"]["id"], flat[0]["partner_id"][0]);
    assert!(ok[0]["partner_id"]["name"].is_string());
    tx.rollback().unwrap();
}
