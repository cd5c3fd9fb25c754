//! Issue 18.1 over HTTP: `fields=` with sub-fields and `specification=` on lists and on one
//! record, the same tree the SQL functions read (tests/sql/nested.rs checks the values against
//! the plain reads; here the routes, the parameters and the problems).
use crate::common::*;
use serde_json::{Value, json};

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

#[tokio::test]
async fn lists_and_records_read_nested_fields_and_specifications() {
    let s = start().await;
    let auth = bearer(&token(2, &["read"]).await);
    let c = http();
    // The partner with the most children (every fixture has one with two or more).
    let parent: i32 = db()
        .await
        .query_one(
            "SELECT parent_id FROM public.res_partner WHERE parent_id IS NOT NULL AND active \
             GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let domain = enc(&format!("[('id', '=', {parent})]"));
    let fields = enc("name,company_id{name},child_ids(limit=1){name,parent_id{name}}");
    let r = send(
        c.get(s.url(&format!(
            "/api/v1/res.partner?domain={domain}&fields={fields}"
        )))
        .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let rec = &r.body["records"][0];
    let children = rec["child_ids"].as_array().unwrap();
    assert!(children.len() >= 2, "{}", r.text);
    assert_eq!(children[0]["parent_id"]["id"], json!(parent), "{}", r.text);
    assert_eq!(children[0]["parent_id"]["name"], rec["name"]);
    assert!(
        children[1..]
            .iter()
            .all(|c| c.as_object().unwrap().len() == 1)
    );
    assert!(rec["company_id"].is_object() || rec["company_id"] == json!(false));

    // The same as a web_read specification: a many2one without sub-fields is its id.
    let spec = enc(
        &json!({"name": {}, "company_id": {}, "child_ids": {"fields": {"name": {}, "parent_id": {"fields": {"name": {}}}}, "limit": 1}})
            .to_string(),
    );
    let w = send(
        c.get(s.url(&format!(
            "/api/v1/res.partner?domain={domain}&specification={spec}"
        )))
        .header("authorization", &auth),
    )
    .await;
    assert_eq!(w.status, 200, "{}", w.text);
    assert_eq!(w.body["records"][0]["child_ids"], rec["child_ids"]);
    assert!(matches!(
        w.body["records"][0]["company_id"],
        Value::Number(_) | Value::Bool(false)
    ));

    // One record, with fields= and with specification=, carrying an ETag.
    let one = send(
        c.get(s.url(&format!("/api/v1/res.partner/{parent}?fields={fields}")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(one.body["child_ids"], rec["child_ids"]);
    let web_one = send(
        c.get(s.url(&format!(
            "/api/v1/res.partner/{parent}?specification={spec}"
        )))
        .header("authorization", &auth),
    )
    .await;
    assert_eq!(web_one.status, 200, "{}", web_one.text);
    assert_eq!(web_one.body["child_ids"], rec["child_ids"]);
    assert!(web_one.header("etag").is_some());

    // Bad trees: 400 naming the part; fields with specification, specification with after.
    for bad in [
        format!("fields={}", enc("child_ids{parent_id{nope}}")),
        format!("fields={}", enc("a{b{c{d{e{f}}}}}")),
        format!("specification={}", enc(r#"{"child_ids": {"limit": -1}}"#)),
        format!("specification={}", enc("[1]")),
        format!("fields=name&specification={}", enc("{}")),
        format!("specification={}&after=", enc("{}")),
    ] {
        let r = send(
            c.get(s.url(&format!("/api/v1/res.partner?{bad}")))
                .header("authorization", &auth),
        )
        .await;
        assert_problem(&r, 400);
    }
    let r = send(
        c.get(s.url(&format!(
            "/api/v1/res.partner?fields={}",
            enc("child_ids{parent_id{nope}}")
        )))
        .header("authorization", &auth),
    )
    .await;
    assert!(r.text.contains("child_ids.parent_id"), "{}", r.text);
}
