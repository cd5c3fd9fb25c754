//! Issue 18, the change feed over HTTP: `GET /api/v1/<model>/changes[?since=]`.
use crate::common::*;
use serde_json::{Value, json};

/// A copy of the first company contact, committed: its id.
async fn add_partner(c: &tokio_postgres::Client, name: &str) -> i32 {
    let cols: Vec<String> = c
        .query(
            "SELECT quote_ident(column_name) FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = 'res_partner' AND column_name NOT IN ('id', 'name')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let cols = cols.join(", ");
    c.query_one(
        &format!(
            "INSERT INTO public.res_partner (name, {cols}) SELECT $1, {cols} FROM public.res_partner \
              WHERE id = (SELECT min(id) FROM public.res_partner WHERE active AND partner_share IS NOT TRUE) RETURNING id"
        ),
        &[&name],
    )
    .await
    .unwrap()
    .get(0)
}

fn ids(v: &Value) -> Vec<i64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("id").unwrap_or(r).as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn changes_start_a_feed_then_return_writes_and_deletions_once() {
    prepare().await;
    let c = db().await;
    c.query_one("SELECT api_gateway.feed_enable('res.partner')", &[])
        .await
        .unwrap();
    let s = start().await;
    let t = token(2, &["read"]).await;
    let get = |q: String| {
        http()
            .get(s.url(&format!("/api/v1/res.partner/changes{q}")))
            .header("authorization", bearer(&t))
    };
    let first = send(get(String::new())).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["records"], json!([]));
    assert_eq!(first.body["deleted"], json!([]));
    assert_eq!(first.body["more"], false);
    assert!(first.header("ratelimit").is_some());
    let since = first.body["next"].as_str().unwrap().to_string();
    let id = add_partner(&c, "it-http-feed").await;
    let enc = |s: &str| {
        percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
    };
    let second = send(get(format!(
        "?since={}&fields=name&limit=1000",
        enc(&since)
    )))
    .await;
    assert_eq!(second.status, 200, "{}", second.text);
    let mine: Vec<&Value> = second.body["records"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == id)
        .collect();
    assert_eq!(mine, [&json!({"id": id, "name": "it-http-feed"})]);
    c.execute("DELETE FROM public.res_partner WHERE id = $1", &[&id])
        .await
        .unwrap();
    let next = second.body["next"].as_str().unwrap().to_string();
    let third = send(get(format!("?since={}", enc(&next)))).await;
    assert_eq!(third.status, 200, "{}", third.text);
    assert!(ids(&third.body["deleted"]).contains(&i64::from(id)));
    assert!(!ids(&third.body["records"]).contains(&i64::from(id)));
    let after = third.body["next"].as_str().unwrap().to_string();
    let fourth = send(get(format!("?since={}", enc(&after)))).await;
    assert!(!ids(&fourth.body["deleted"]).contains(&i64::from(id)));
    // The same cursor for another user: refused.
    let other = token(5, &["read"]).await;
    let r = send(
        http()
            .get(s.url(&format!(
                "/api/v1/res.partner/changes?since={}",
                enc(&after)
            )))
            .header("authorization", bearer(&other)),
    )
    .await;
    assert_problem(&r, 400);
    let r = send(get("?since=forged.cursor".into())).await;
    assert_problem(&r, 400);
    let r = send(get("?limit=-1".into())).await;
    assert_problem(&r, 400);
    let r = send(get("?offset=3".into())).await;
    assert_problem(&r, 400);
    // The gate applies: no read scope, no feed.
    let writer = token(2, &["write"]).await;
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner/changes"))
            .header("authorization", bearer(&writer)),
    )
    .await;
    assert_problem(&r, 403);
    let r = send(http().get(s.url("/api/v1/res.partner/changes"))).await;
    assert_problem(&r, 401);
}

#[tokio::test]
async fn changes_of_a_model_without_a_feed_or_with_an_expired_cursor() {
    prepare().await;
    let c = db().await;
    let s = start().await;
    let t = token(2, &["read"]).await;
    let r = send(
        http()
            .get(s.url("/api/v1/res.company/changes"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_problem(&r, 409);
    assert_eq!(kind(&r), "not-enabled");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("administrator must enable it"),
        "{}",
        r.text
    );
    // Enabled again after a cursor was handed out: the cursor is gone (410).
    c.query_one(
        "SELECT api_gateway.feed_enable('res.partner.category')",
        &[],
    )
    .await
    .unwrap();
    let first = send(
        http()
            .get(s.url("/api/v1/res.partner.category/changes"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text);
    let since = first.body["next"].as_str().unwrap().to_string();
    c.query_one(
        "SELECT api_gateway.feed_disable('res.partner.category')",
        &[],
    )
    .await
    .unwrap();
    c.query_one(
        "SELECT api_gateway.feed_enable('res.partner.category')",
        &[],
    )
    .await
    .unwrap();
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner.category/changes"))
            .query(&[("since", since.as_str())])
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_problem(&r, 410);
    assert_eq!(kind(&r), "cursor-expired");
    assert_eq!(r.body["sqlstate"], "72000");
}
