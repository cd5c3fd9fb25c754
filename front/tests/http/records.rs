//! Happy paths of the REST routes, with a JWT and with an Odoo API key.
use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn ping_is_authenticated_and_answered_by_the_database() {
    let s = start().await;
    let anon = send(http().get(s.url("/api/v1/ping"))).await;
    assert_problem(&anon, 401);
    assert_eq!(
        anon.header("www-authenticate"),
        Some("Bearer realm=\"api\"")
    );

    let t = token(2, &["read"]).await;
    let r = send(
        http()
            .get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["pong"], true);
    assert_eq!(r.body["user"], 2);
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"));
    assert!(r.body["time"].as_str().unwrap().ends_with('Z'));
    assert!(
        r.header("ratelimit-policy")
            .unwrap()
            .starts_with("\"default\";q=")
    );
    assert!(r.header("ratelimit").unwrap().contains(";r="));
    assert_eq!(r.header("cache-control"), Some("no-store"));
}

#[tokio::test]
async fn an_odoo_api_key_works_as_a_bearer_token() {
    if !mini() {
        return;
    }
    let s = start().await;
    let r = send(
        http()
            .get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&api_key("demo"))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"], 5);
}

#[tokio::test]
async fn search_read_with_domain_fields_limit_offset_order_and_count() {
    let s = start().await;
    let t = token(2, &["read"]).await;
    let get = |q: &str| {
        http()
            .get(s.url(&format!("/api/v1/res.partner{q}")))
            .header("authorization", bearer(&t))
    };
    // Python-literal domain.
    let r = send(get("?domain=%5B('is_company'%2C'%3D'%2CTrue)%5D&fields=name,is_company&order=name%20asc&count=true")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let records = r.body["records"].as_array().unwrap();
    assert!(!records.is_empty());
    assert!(records.iter().all(|p| p["is_company"] == true));
    assert!(
        records.iter().all(|p| p.as_object().unwrap().len() <= 3),
        "{}",
        r.text
    );
    let names: Vec<&str> = records
        .iter()
        .map(|p| p["name"].as_str().unwrap_or(""))
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(r.body["count"], records.len());
    assert!(r.header("ratelimit").is_some());

    // JSON domain, limit and offset.
    let r = send(get("?domain=%5B%5B%22is_company%22%2C%22%3D%22%2Ctrue%5D%5D&fields=name&order=id&limit=2&offset=1&count=1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["records"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["count"], records.len());

    // No count unless asked.
    let r = send(get("?limit=1")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("count").is_none());
    assert_eq!(r.body["records"].as_array().unwrap().len(), 1);

    if mini() {
        let r = send(get("?domain=%5B('id'%2C'%3D'%2C3)%5D&fields=name,email")).await;
        assert_eq!(
            r.body["records"],
            json!([{"id": 3, "name": "Ada Admin", "email": "admin@minicorp.example"}])
        );
    }
}

#[tokio::test]
async fn create_read_update_delete_one_record() {
    let s = start().await;
    let t = token(2, &["read", "write", "delete"]).await;
    let auth = bearer(&t);
    let c = http();

    let r = send(
        c.post(s.url("/api/v1/res.partner"))
            .header("authorization", &auth)
            .json(&json!({"name": "it-crud Ada", "email": "it-crud@example.com"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    assert_eq!(
        r.header("location").unwrap(),
        format!("/api/v1/res.partner/{id}")
    );
    assert!(r.header("ratelimit").is_some());

    let r = send(
        c.get(s.url(&format!("/api/v1/res.partner/{id}?fields=name,email")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], "it-crud Ada");
    assert_eq!(r.body["email"], "it-crud@example.com");

    let r = send(
        c.patch(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth)
            .json(&json!({"phone": "+1 555 0100"})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(
        c.put(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth)
            .json(&json!({"name": "it-crud Ada Lovelace"})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(
        c.get(s.url(&format!("/api/v1/res.partner/{id}?fields=name,phone")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.body["name"], "it-crud Ada Lovelace");
    assert_eq!(r.body["phone"], "+1 555 0100");

    let r = send(
        c.delete(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(r.text.is_empty());
    let r = send(
        c.get(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 404);
    assert!(
        r.header("ratelimit").is_some(),
        "gated 404 carries the RateLimit headers"
    );
    let r = send(
        c.delete(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 404);
    let r = send(
        c.patch(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth)
            .json(&json!({"name": "ghost"})),
    )
    .await;
    assert_problem(&r, 404);
}

#[tokio::test]
async fn database_errors_map_to_documented_statuses() {
    let s = start().await;
    let t = token(2, &["read", "write"]).await;
    let auth = bearer(&t);
    let c = http();
    // 42P01: unknown model.
    let r = send(
        c.get(s.url("/api/v1/no.such.model"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 404);
    assert_eq!(r.body["sqlstate"], "42P01");
    assert_eq!(kind(&r), "unknown-model");
    // 22023: bad domain, unknown field, bad order.
    for q in ["domain=%5B('nope'", "fields=nope", "order=name%3Bdrop"] {
        let r = send(
            c.get(s.url(&format!("/api/v1/res.partner?{q}")))
                .header("authorization", &auth),
        )
        .await;
        assert_problem(&r, 400);
        assert_eq!(r.body["sqlstate"], "22023", "{}", r.text);
        assert_eq!(kind(&r), "invalid-input");
    }
    // 23503: a many2one to a record that does not exist.
    let r = send(
        c.post(s.url("/api/v1/res.partner"))
            .header("authorization", &auth)
            .json(&json!({"name": "sec-fk", "parent_id": 999999})),
    )
    .await;
    assert_problem(&r, 409);
    assert_eq!(r.body["sqlstate"], "23503");
    // naming the field, not the foreign key's raw text (issue 19)
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("res.partner.parent_id") && !detail.contains("fkey"),
        "{detail}"
    );
    // 23502: a required field missing.
    if mini() {
        let r = send(
            c.post(s.url("/api/v1/product.template"))
                .header("authorization", &auth)
                .json(&json!({"list_price": 3})),
        )
        .await;
        assert_problem(&r, 422);
        assert_eq!(r.body["sqlstate"], "23502");
        assert_eq!(kind(&r), "constraint-violation");
    }
    // 42501: Odoo access rights (demo may not read ir.rule).
    if mini() {
        let r = send(
            c.get(s.url("/api/v1/ir.rule"))
                .header("authorization", bearer(&api_key("demo"))),
        )
        .await;
        assert_problem(&r, 403);
        assert_eq!(r.body["sqlstate"], "42501");
        assert_eq!(kind(&r), "forbidden");
    }
}

#[tokio::test]
async fn health_endpoints_answer() {
    let s = start().await;
    let live = send(http().get(s.url("/health/live"))).await;
    assert_eq!(live.status, 200);
    assert_eq!(live.body["status"], "ok");
    let ready = send(http().get(s.url("/health/ready"))).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["extension"], env!("CARGO_PKG_VERSION"));
}

#[tokio::test]
async fn a_database_that_is_down_gives_503_not_a_hang() {
    let mut args = args();
    args.database_url = "postgresql://nobody@127.0.0.1:1/none".into();
    let pool = api_gateway_front::db::pool(&args, false).unwrap();
    let app = api_gateway_front::app(api_gateway_front::AppState::new(pool, &args));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
        .unwrap();
    });
    let r = send(http().get(format!("http://{addr}/health/ready"))).await;
    assert_problem(&r, 503);
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = send(
        http()
            .get(format!("http://{addr}/api/v1/res.partner"))
            .header("authorization", "Bearer abc"),
    )
    .await;
    assert_problem(&r, 503);
}

/// A list's records are PostgreSQL's JSON text of `search_read`, put in the body as they are
/// (never parsed and serialised again by the front), with the count after them.
#[tokio::test]
async fn a_list_passes_search_read_json_through_unchanged() {
    let s = start().await;
    let t = token(2, &["read"]).await;
    let r = send(
        http()
            .get(s.url(
                "/api/v1/res.partner?domain=%5B%5B%22is_company%22%2C%22%3D%22%2Ctrue%5D%5D&fields=name,email&limit=3&count=true",
            ))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let db = db().await;
    let row = db
        .query_one(
            "SELECT api_gateway.search_read(2, 'res.partner', '[[\"is_company\",\"=\",true]]', '{name,email}', 3)::text,
                    api_gateway.search_count(2, 'res.partner', '[[\"is_company\",\"=\",true]]')",
            &[],
        )
        .await
        .unwrap();
    let (records, count): (String, i64) = (row.get(0), row.get(1));
    assert_eq!(
        r.text,
        format!("{{\"records\": {records}, \"count\": {count}}}"),
        "the body is the database's JSON text"
    );
}
