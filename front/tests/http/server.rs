//! Server behaviour: CORS, statement timeout, graceful shutdown, OpenAPI, the docs page, --help.
use crate::common::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn cors_is_off_by_default_and_configurable() {
    let s = start().await;
    let c = http();
    let r = send(
        c.get(s.url("/health/live"))
            .header("origin", "https://app.example"),
    )
    .await;
    assert!(r.header("access-control-allow-origin").is_none());

    let s = start_with(|a| a.cors_origins = vec!["https://app.example".into()]).await;
    let r = send(
        c.request(reqwest::Method::OPTIONS, s.url("/api/v1/res.partner"))
            .header("origin", "https://app.example")
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("authorization")
    );
    let t = token(2, &["read"]).await;
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("origin", "https://app.example")
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert!(
        r.header("access-control-expose-headers")
            .unwrap()
            .to_lowercase()
            .contains("ratelimit")
    );
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("origin", "https://evil.example")
            .header("authorization", bearer(&t)),
    )
    .await;
    assert!(r.header("access-control-allow-origin").is_none());
}

/// Hold a row lock on a new partner in another session, so that a write to it blocks.
async fn locked_partner(name: &str) -> (i32, tokio_postgres::Client) {
    let c = db().await;
    let id: i32 = c
        .query_one(
            "INSERT INTO res_partner (name, type, active, company_id) VALUES ($1, 'contact', true, 1) RETURNING id",
            &[&name],
        )
        .await
        .unwrap()
        .get(0);
    c.batch_execute(&format!(
        "BEGIN; SELECT 1 FROM res_partner WHERE id = {id} FOR UPDATE"
    ))
    .await
    .unwrap();
    (id, c)
}

async fn drop_partner(id: i32) {
    db().await
        .execute("DELETE FROM res_partner WHERE id = $1", &[&id])
        .await
        .unwrap();
}

#[tokio::test]
async fn the_statement_timeout_gives_504_and_the_pool_recovers() {
    let s = start_with(|a| {
        a.statement_timeout_ms = 400;
        a.pool_size = 1;
    })
    .await;
    let (id, lock) = locked_partner("it-timeout").await;
    let t = token(2, &["read", "write"]).await;
    let c = http();
    let started = Instant::now();
    let r = send(
        c.patch(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", bearer(&t))
            .json(&json!({"name": "it-timeout-2"})),
    )
    .await;
    assert_problem(&r, 504);
    assert_eq!(r.body["sqlstate"], "57014");
    // Without the statement timeout the write would wait for the lock until the ROLLBACK below.
    assert!(started.elapsed() < Duration::from_secs(60));
    lock.batch_execute("ROLLBACK").await.unwrap();
    // The one pooled connection is usable again (not left inside a transaction).
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.patch(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", bearer(&t))
            .json(&json!({"name": "it-timeout-3"})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    drop_partner(id).await;
}

#[tokio::test]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut s = start().await;
    let (id, lock) = locked_partner("it-shutdown").await;
    let t = token(2, &["read", "write"]).await;
    let url = s.url(&format!("/api/v1/res.partner/{id}"));
    let in_flight = tokio::spawn(async move {
        send(
            http()
                .patch(url)
                .header("authorization", bearer(&t))
                .json(&json!({"name": "it-shutdown-done"})),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    s.signal_stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are refused while the old request is still running.
    assert!(tokio::net::TcpStream::connect(s.addr).await.is_err());
    lock.batch_execute("ROLLBACK").await.unwrap();
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 204, "{}", r.text);
    let ended = tokio::time::timeout(Duration::from_secs(5), s.handle.take().unwrap())
        .await
        .expect("server ends once the request is done");
    assert!(ended.unwrap().is_ok());
    let name: String = db()
        .await
        .query_one("SELECT name FROM res_partner WHERE id = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "it-shutdown-done");
    drop_partner(id).await;
}

#[tokio::test]
async fn graceful_shutdown_gives_up_after_the_grace_period() {
    let mut s = start_with(|a| a.shutdown_grace_s = 1).await;
    let (id, lock) = locked_partner("it-grace").await;
    let t = token(2, &["read", "write"]).await;
    let url = s.url(&format!("/api/v1/res.partner/{id}"));
    let _stuck = tokio::spawn(async move {
        http()
            .patch(url)
            .header("authorization", bearer(&t))
            .json(&json!({"name": "it-grace-2"}))
            .send()
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    s.signal_stop();
    let ended = tokio::time::timeout(Duration::from_secs(4), s.handle.take().unwrap()).await;
    assert!(ended.is_ok(), "server did not stop after the grace period");
    assert!(started.elapsed() >= Duration::from_millis(900));
    lock.batch_execute("ROLLBACK").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop_partner(id).await;
}

#[tokio::test]
async fn openapi_document_describes_the_models() {
    let s = start().await;
    let r = send(http().get(s.url("/api/openapi.json"))).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/api/v1/ping",
        "/api/v1/{model}",
        "/api/v1/{model}/{id}",
        "/api/oauth/token",
        "/api/oauth/revoke",
        "/api/oauth/introspect",
        "/health/live",
        "/health/ready",
    ] {
        assert!(paths.contains_key(p), "{p}");
    }
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(
        schemes["oauth2"]["flows"]["clientCredentials"]["tokenUrl"],
        "/api/oauth/token"
    );
    let scopes = schemes["oauth2"]["flows"]["clientCredentials"]["scopes"]
        .as_object()
        .unwrap();
    assert_eq!(scopes.len(), 4);
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    if mini() {
        assert!(paths.contains_key("/api/v1/res.partner"));
        assert!(paths.contains_key("/api/v1/res.partner/{id}"));
        let partner = &doc["components"]["schemas"]["res.partner"]["properties"];
        let type_enum = &partner["type"]["anyOf"][0]["enum"];
        assert!(
            type_enum.as_array().unwrap().contains(&json!("invoice")),
            "{type_enum}"
        );
        assert_eq!(partner["parent_id"]["x-odoo-relation"], "res.partner");
        assert_eq!(partner["create_date"]["readOnly"], true);
        let create = &doc["components"]["schemas"]["res.partner.create"]["properties"];
        assert!(create.get("create_date").is_none());
        assert!(create.get("name").is_some());
    }
}

#[tokio::test]
async fn openapi_exposed_models_are_configurable_and_refreshed() {
    if !mini() {
        return;
    }
    let s = start_with(|a| {
        a.expose_models = vec!["res.partner".into(), "product.*".into()];
        a.openapi_refresh_s = 1;
    })
    .await;
    let get = || async { send(http().get(s.url("/api/openapi.json"))).await.body };
    let doc = get().await;
    let paths: Vec<&String> = doc["paths"].as_object().unwrap().keys().collect();
    assert!(paths.iter().any(|p| *p == "/api/v1/res.partner"));
    assert!(paths.iter().any(|p| *p == "/api/v1/product.template"));
    assert!(
        !paths.iter().any(|p| *p == "/api/v1/res.users"),
        "{paths:?}"
    );

    // A label changes in ir_model_fields: the document follows within the refresh period.
    let c = db().await;
    let marker = format!("Reference it-{}", std::process::id());
    c.execute(
        "UPDATE ir_model_fields SET field_description = jsonb_set(field_description, '{en_US}', to_jsonb($1::text)) \
         WHERE model = 'res.partner' AND name = 'ref'",
        &[&marker],
    )
    .await
    .unwrap();
    let mut seen = false;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let doc: Value = get().await;
        if doc["components"]["schemas"]["res.partner"]["properties"]["ref"]["title"]
            == marker.as_str()
        {
            seen = true;
            break;
        }
    }
    c.execute(
        "UPDATE ir_model_fields SET field_description = jsonb_set(field_description, '{en_US}', '\"Reference\"') \
         WHERE model = 'res.partner' AND name = 'ref'",
        &[],
    )
    .await
    .unwrap();
    assert!(seen, "the OpenAPI document was not refreshed");
}

#[tokio::test]
async fn the_docs_page_and_its_assets_are_served() {
    let s = start().await;
    let c = http();
    let page = c.get(s.url("/api/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.headers().contains_key("content-security-policy"));
    let html = page.text().await.unwrap();
    assert!(html.contains("/api/docs/swagger-ui-bundle.js"));
    let js = c
        .get(s.url("/api/docs/swagger-ui-bundle.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(js.status(), 200);
    assert!(
        js.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.bytes().await.unwrap().len() > 500_000);
    for f in ["swagger-ui.css", "init.js", "LICENSE"] {
        let r = c
            .get(s.url(&format!("/api/docs/{f}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{f}");
    }
    let r = send(c.get(s.url("/api/docs/..%2f..%2fCargo.toml"))).await;
    assert_problem(&r, 404);

    let off = start_with(|a| a.docs = false).await;
    let r = send(c.get(off.url("/api/docs"))).await;
    assert_problem(&r, 404);
    let r = send(c.get(off.url("/api/openapi.json"))).await;
    assert_problem(&r, 404);
}

#[test]
fn help_documents_every_flag_and_variable() {
    use clap::CommandFactory;
    let mut cmd = api_gateway_front::config::Cli::command();
    let serve = cmd.find_subcommand_mut("serve").unwrap();
    let help = serve.render_long_help().to_string();
    for flag in [
        "--database-url",
        "--listen",
        "--pool-size",
        "--pool-timeout-ms",
        "--statement-timeout-ms",
        "--shutdown-grace-s",
        "--trusted-proxies",
        "--cors-origins",
        "--body-limit",
        "--expose-models",
        "--openapi-uid",
        "--openapi-refresh-s",
        "--docs",
        "--public-url",
        "--header-timeout-ms",
        "--body-timeout-ms",
        "--idle-timeout-s",
        "--max-connections",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    for var in [
        "DATABASE_URL",
        "API_GATEWAY_LISTEN",
        "API_GATEWAY_POOL_SIZE",
        "API_GATEWAY_POOL_TIMEOUT_MS",
        "API_GATEWAY_STATEMENT_TIMEOUT_MS",
        "API_GATEWAY_SHUTDOWN_GRACE_S",
        "API_GATEWAY_TRUSTED_PROXIES",
        "API_GATEWAY_CORS_ORIGINS",
        "API_GATEWAY_BODY_LIMIT",
        "API_GATEWAY_EXPOSE_MODELS",
        "API_GATEWAY_OPENAPI_UID",
        "API_GATEWAY_OPENAPI_REFRESH_S",
        "API_GATEWAY_DOCS",
        "API_GATEWAY_PUBLIC_URL",
        "API_GATEWAY_HEADER_TIMEOUT_MS",
        "API_GATEWAY_BODY_TIMEOUT_MS",
        "API_GATEWAY_IDLE_TIMEOUT_S",
        "API_GATEWAY_MAX_CONNECTIONS",
    ] {
        assert!(help.contains(var), "{var} missing from --help");
    }
}

#[tokio::test]
async fn a_slow_request_does_not_hold_up_the_same_users_other_requests() {
    let s = start().await;
    let (id, lock) = locked_partner("it-concurrency").await;
    let t = token(2, &["read", "write"]).await;
    let url = s.url(&format!("/api/v1/res.partner/{id}"));
    let t2 = t.clone();
    let blocked = tokio::spawn(async move {
        send(
            http()
                .patch(url)
                .header("authorization", bearer(&t2))
                .json(&json!({"name": "it-concurrency-2"})),
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let r = send(
        http()
            .get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The other request stays blocked until the ROLLBACK below: a ping queued behind it would
    // not have answered at all (the bound only catches a hang; the machine may be busy).
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "ping waited {:?} behind the same user's blocked request",
        started.elapsed()
    );
    lock.batch_execute("ROLLBACK").await.unwrap();
    assert_eq!(blocked.await.unwrap().status, 204);
    drop_partner(id).await;
}

/// Without `--single-statement` the front sends one statement per request exactly when the
/// counters live in shared memory (no counter row stays locked during the data call).
#[tokio::test]
async fn one_statement_is_the_default_when_counters_are_in_shared_memory() {
    let c = db().await;
    let preloaded: bool = c
        .query_one(
            "SELECT current_setting('shared_preload_libraries') ~ 'api_gateway'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        api_gateway_front::counters_in_shared_memory(&c).await,
        preloaded
    );
    // A session counting in the table (the setting a superuser may change) gets two statements.
    c.batch_execute("SET api_gateway.rate_limit_shared_memory = off")
        .await
        .unwrap();
    assert!(!api_gateway_front::counters_in_shared_memory(&c).await);
}

#[tokio::test]
async fn the_single_statement_mode_serves_the_same_answers() {
    let s = start_with(|a| a.single_statement = Some(true)).await;
    let t = token(2, &["read", "write", "delete"]).await;
    let auth = bearer(&t);
    let c = http();
    let r = send(c.get(s.url("/api/v1/ping")).header("authorization", &auth)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["user"], 2);
    assert!(r.header("ratelimit").is_some());
    let r = send(
        c.get(s.url("/api/v1/res.partner?limit=2&count=true&fields=name"))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["records"].as_array().unwrap().len(), 2);
    let r = send(
        c.post(s.url("/api/v1/res.partner"))
            .header("authorization", &auth)
            .json(&json!({"name": "it-single"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let r = send(
        c.patch(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth)
            .json(&json!({"name": "it-single-2"})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(
        c.get(s.url(&format!("/api/v1/res.partner/{id}?fields=name")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.body["name"], "it-single-2");
    let r = send(
        c.delete(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(
        c.get(s.url("/api/v1/no.such.model"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 404);
    let r = send(
        c.delete(s.url("/api/v1/res.partner/3"))
            .header("authorization", bearer(&token(2, &["read"]).await)),
    )
    .await;
    assert_problem(&r, 403);
}

/// The plain REST build (`--no-default-features`) serves no console, dashboard or statistics,
/// even with --dashboard true, and refuses to start a webhook worker it does not have.
#[cfg(not(feature = "admin"))]
#[tokio::test]
async fn the_plain_build_has_no_console_dashboard_or_worker() {
    let s = start_with(|a| a.dashboard = true).await;
    let c = http();
    let admin = bearer(&api_key("admin"));
    for path in [
        "/api/gateway/admin/",
        "/api/gateway/admin/api/settings",
        "/api/gateway/dashboard",
        "/api/gateway/stats/overview",
    ] {
        let r = send(c.get(s.url(path)).header("authorization", admin.clone())).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
    let r = send(c.get(s.url("/api/v1/ping")).header("authorization", admin)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut args = api_gateway_front::config::ServeArgs::with_database_url(&database_url());
    args.webhooks = true;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = api_gateway_front::serve_on(listener, args, async {})
        .await
        .expect_err("no webhook delivery in this build");
    assert!(e.contains("webhooks"), "{e}");
}

/// `--prepared-statements` not given: a direct connection prepares statements; a URL naming
/// another port than the server's own is taken for a pooler (front/tests/pgbouncer.sh sees it through a real PgBouncer).
#[tokio::test]
async fn statements_are_prepared_only_when_the_database_is_reached_directly() {
    let url = least_privilege::front_url(&database_url());
    let args = api_gateway_front::config::ServeArgs::with_database_url(&url);
    let pool = api_gateway_front::db::pool(&args, false).unwrap();
    let client = pool.get().await.unwrap();
    assert!(
        api_gateway_front::db::reaches_postgres_directly(&client, &url)
            .await
            .unwrap()
    );
    // Same connection, as if it had been made to a pooler's port.
    let port: i32 = client
        .query_one("SELECT current_setting('port')::int", &[])
        .await
        .unwrap()
        .get(0);
    let elsewhere = url.replace(&format!(":{port}/"), &format!(":{}/", port + 1));
    assert_ne!(elsewhere, url);
    assert!(
        !api_gateway_front::db::reaches_postgres_directly(&client, &elsewhere)
            .await
            .unwrap(),
        "{elsewhere}"
    );
}

/// The prepared path: the statement is kept on the connection; the statement timeout still
/// holds and stays local to the request's transaction; a statement whose result columns change
/// under it (a function replaced, as by ALTER EXTENSION UPDATE) fails once with 0A000 and is
/// prepared afresh for the next request.
#[tokio::test]
async fn a_prepared_statement_is_kept_timed_out_and_prepared_again_when_its_result_changes() {
    use api_gateway_front::db::{Timeout, query_prepared};
    let admin = db().await;
    let f = "public.agw_it_result_shape";
    admin
        .batch_execute(&format!(
            "DROP FUNCTION IF EXISTS {f}(); \
             CREATE FUNCTION {f}() RETURNS TABLE(a int) LANGUAGE sql AS 'SELECT 1'"
        ))
        .await
        .unwrap();
    let url = least_privilege::front_url(&database_url());
    let pool = api_gateway_front::db::pool(
        &api_gateway_front::config::ServeArgs::with_database_url(&url),
        false,
    )
    .unwrap();
    let client = pool.get().await.unwrap();
    let sql = format!("SELECT * FROM {f}()");
    let rows = query_prepared(&client, Timeout::own(5000), &sql, &[])
        .await
        .unwrap();
    assert_eq!(rows[0].len(), 1);
    let kept: i64 = client
        .query_typed(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement = $1",
            &[(&sql, tokio_postgres::types::Type::TEXT)],
        )
        .await
        .unwrap()[0]
        .get(0);
    assert_eq!(kept, 1, "kept on the connection");
    // The timeout is the request's own and ends with its transaction.
    let before: String = client
        .query_typed("SHOW statement_timeout", &[])
        .await
        .unwrap()[0]
        .get(0);
    let e = query_prepared(&client, Timeout::own(50), "SELECT pg_sleep(0.5)", &[])
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("57014"), "{e:?}");
    let after: String = client
        .query_typed("SHOW statement_timeout", &[])
        .await
        .unwrap()[0]
        .get(0);
    assert_eq!(before, after);
    admin
        .batch_execute(&format!(
            "DROP FUNCTION {f}(); \
             CREATE FUNCTION {f}() RETURNS TABLE(a int, b int) LANGUAGE sql AS 'SELECT 1, 2'"
        ))
        .await
        .unwrap();
    let e = query_prepared(&client, Timeout::own(5000), &sql, &[])
        .await
        .unwrap_err();
    assert_eq!(e.sqlstate.as_deref(), Some("0A000"), "{e:?}");
    let rows = query_prepared(&client, Timeout::own(5000), &sql, &[])
        .await
        .unwrap();
    assert_eq!(rows[0].len(), 2, "prepared again with the new columns");
    admin
        .batch_execute(&format!("DROP FUNCTION {f}()"))
        .await
        .unwrap();
}

/// `--connection-settings`: a connection opened with the statement timeout (a start-up
/// parameter added to the URL's own options) runs a request's statement alone, as its own
/// transaction, and the timeout still holds; a statement asking for another timeout gets its own
/// transaction around it, as every statement does on a connection opened without one; the
/// front's own jobs lift it.
#[tokio::test]
async fn a_connection_opened_with_the_timeout_sends_the_statement_alone() {
    use api_gateway_front::db::{Timeout, has_statement_timeout, query_prepared, query_unprepared};
    let url = least_privilege::front_url(&database_url());
    let mut args = api_gateway_front::config::ServeArgs::with_database_url(&format!(
        "{url}{}options=-c%20lock_timeout%3D1234",
        if url.contains('?') { "&" } else { "?" }
    ));
    args.statement_timeout_ms = 200;
    let pool = api_gateway_front::db::pool(&args, true).unwrap();
    let client = pool.get().await.unwrap();
    assert!(has_statement_timeout(&client, 200).await);
    assert!(!has_statement_timeout(&client, 15000).await);
    // the URL's own options are kept
    let kept: String = client
        .query_one("SELECT current_setting('lock_timeout')", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kept, "1234ms");
    let alone = "SELECT current_setting('statement_timeout') = '200ms'";
    let on_connection = Timeout::on_connection(200);
    for prepared in [true, false] {
        let query_on = async |timeout, sql| match prepared {
            true => query_prepared(&client, timeout, sql, &[]).await,
            false => query_unprepared(&client, timeout, sql, &[])
                .await
                .map_err(api_gateway_front::error::Problem::from),
        };
        let rows = query_on(on_connection, alone).await.unwrap();
        assert!(
            rows[0].get::<_, bool>(0),
            "prepared {prepared}: no SET LOCAL around it"
        );
        let rows = query_on(Timeout::own(5000), alone).await.unwrap();
        assert!(
            !rows[0].get::<_, bool>(0),
            "prepared {prepared}: its own SET LOCAL"
        );
        let e = query_on(on_connection, "SELECT pg_sleep(1)")
            .await
            .unwrap_err();
        assert_eq!(e.sqlstate.as_deref(), Some("57014"), "{e:?}");
    }
    // The front's own jobs (maintenance) run without the connection's timeout.
    let rows = query_unprepared(
        &client,
        on_connection.unbounded(),
        "SELECT pg_sleep(0.4), 1",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(rows[0].get::<_, i32>(1), 1);
    // A longer timeout for one statement is its own, and the connection's stays.
    let rows = query_prepared(&client, Timeout::own(5000), "SELECT pg_sleep(0.4), 1", &[])
        .await
        .unwrap();
    assert_eq!(rows[0].get::<_, i32>(1), 1);
    assert!(has_statement_timeout(&client, 200).await);
    // Without the start-up parameter the connection has the server's timeout.
    let plain = api_gateway_front::db::pool(&args, false).unwrap();
    assert!(!has_statement_timeout(&plain.get().await.unwrap(), 200).await);
}

/// `--pipelined-connections`: concurrent statements share a connection (one backend answers
/// them all, each its own answer); a connection takes at most DEPTH at once (more only when the
/// pool has nothing free) and none while its oldest has run longer than STALL (the caller then
/// takes a pooled connection); one
/// statement's timeout leaves the next unharmed; a lost connection is opened again.
#[tokio::test]
async fn pipelined_connections_share_step_aside_and_come_back() {
    use api_gateway_front::pipeline::{DEPTH, Pipeline};
    use tokio_postgres::types::Type;
    let mut args = api_gateway_front::config::ServeArgs::with_database_url(
        &least_privilege::front_url(&database_url()),
    );
    args.statement_timeout_ms = 600;
    let config = api_gateway_front::db::connection_config(&args, true).unwrap();
    let pipeline = Pipeline::open(config, 1, true).await.unwrap();
    assert_eq!(pipeline.connections(), 1);

    // Concurrent statements on the one connection: each gets its own answer, one backend.
    let answers = futures_util::future::join_all((0..DEPTH as i32).map(|i| {
        let p = pipeline.clone();
        async move {
            let t = p.take().expect("room on the shared connection");
            let row = t
                .query_one("SELECT $1::int4 * 2, pg_backend_pid()", &[(&i, Type::INT4)])
                .await
                .unwrap();
            (i, row.get::<_, i32>(0), row.get::<_, i32>(1))
        }
    }))
    .await;
    let pids: std::collections::HashSet<i32> = answers.iter().map(|a| a.2).collect();
    assert_eq!(pids.len(), 1, "one backend: {pids:?}");
    for (i, doubled, _) in &answers {
        assert_eq!(*doubled, i * 2);
    }
    assert_eq!(pipeline.status(), (1, 0), "every place given back");

    // DEPTH places at most.
    let held: Vec<_> = (0..DEPTH).map(|_| pipeline.take().unwrap()).collect();
    assert!(pipeline.take().is_none(), "a full connection takes no more");
    assert_eq!(pipeline.status(), (1, DEPTH));
    let beyond = pipeline
        .take_beyond_depth()
        .expect("beyond DEPTH when the pool has nothing free");
    assert_eq!(
        beyond
            .query_one("SELECT 7", &[])
            .await
            .unwrap()
            .get::<_, i32>(0),
        7
    );
    drop(beyond);
    drop(held);
    assert!(pipeline.take().is_some());

    // A slow statement: the connection takes no more once it has run longer than STALL, and
    // takes statements again when it is over.
    let slow = {
        let t = pipeline.take().unwrap();
        tokio::spawn(async move { t.query("SELECT pg_sleep(0.4)", &[]).await })
    };
    let mut stepped_aside = false;
    for _ in 0..200 {
        if pipeline.take().is_none() {
            stepped_aside = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(stepped_aside, "a stalled connection kept taking statements");
    assert!(
        pipeline.take_beyond_depth().is_none(),
        "not even beyond DEPTH"
    );
    assert!(
        !slow.is_finished(),
        "it stepped aside while the slow statement ran"
    );
    slow.await.unwrap().unwrap();
    let after = pipeline.take().expect("it takes statements again");

    // A statement's timeout is its own: the next one on the connection runs.
    let e = after
        .query("SELECT pg_sleep(2)", &[])
        .await
        .expect_err("the connection's timeout holds");
    assert_eq!(e.sqlstate.as_deref(), Some("57014"), "{e:?}");
    let pid: i32 = after
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    drop(after);

    // Lost (its backend terminated): opened again in the background.
    db().await
        .execute("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .unwrap();
    let mut new_pid = None;
    for _ in 0..200 {
        if let Some(t) = pipeline.take()
            && let Ok(row) = t.query_one("SELECT pg_backend_pid()", &[]).await
        {
            new_pid = Some(row.get::<_, i32>(0));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let new_pid = new_pid.expect("the shared connection was opened again");
    assert_ne!(new_pid, pid);
}

/// Through HTTP: with one pipelined connection and one pooled one, concurrent requests each get
/// their own records; /metrics shows the shared connection. Without the timeout on the
/// connection (`--connection-settings false`) none is opened, as with `0`.
#[tokio::test]
async fn requests_share_the_pipelined_connections() {
    let s = start_with(|a| {
        a.pipelined_connections = Some(1);
        a.pool_size = 1;
        a.metrics_public = true;
    })
    .await;
    let t = token(2, &["read"]).await;
    let ids: Vec<i64> = db()
        .await
        .query(
            "SELECT id::int8 FROM res_partner WHERE active ORDER BY id LIMIT 12",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(ids.len() >= 3);
    let answers = futures_util::future::join_all(ids.iter().map(|id| {
        let url = s.url(&format!(
            "/api/v1/res.partner?domain=[[\"id\",\"=\",{id}]]&fields=name"
        ));
        let t = t.clone();
        async move {
            (
                *id,
                send(http().get(url).header("authorization", bearer(&t))).await,
            )
        }
    }))
    .await;
    for (id, r) in &answers {
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["records"][0]["id"].as_i64(), Some(*id), "{}", r.text);
    }
    let metric = |text: &str, state: &str| -> Option<f64> {
        let head = format!("api_gateway_pipelined_connections{{state=\"{state}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&head))
            .and_then(|v| v.trim().parse().ok())
    };
    let m = send(http().get(s.url("/metrics"))).await;
    assert_eq!(m.status, 200);
    assert_eq!(metric(&m.text, "max"), Some(1.0), "{}", m.text);
    assert_eq!(metric(&m.text, "open"), Some(1.0));
    for (settings, given) in [(None, Some(0)), (Some(false), Some(2))] {
        let s = start_with(|a| {
            a.connection_settings = settings;
            a.pipelined_connections = given;
            a.metrics_public = true;
        })
        .await;
        let r = send(
            http()
                .get(s.url("/api/v1/ping"))
                .header("authorization", bearer(&t)),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let m = send(http().get(s.url("/metrics"))).await;
        assert_eq!(metric(&m.text, "max"), Some(0.0), "{settings:?} {given:?}");
    }
}

/// The front's process runs without transparent huge pages (src/memory.rs): with the kernel's
/// "always", its allocator's give-and-take of memory zeroed 2 MiB pages, 1.3x the CPU per request.
#[cfg(target_os = "linux")]
#[test]
fn the_front_process_runs_without_transparent_huge_pages() {
    let (mut child, _) = spawn_front(&["--pool-size", "1"], &[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    let thp = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .expect("this kernel reports THP_enabled in /proc/<pid>/status")
        .trim();
    assert_eq!(thp, "0", "transparent huge pages are on for the front");
    // and the test process itself (which never turned them off) has them as the machine says
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let machine =
        std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled").unwrap_or_default();
    if machine.contains("[always]") {
        assert!(
            own.contains("THP_enabled:\t1"),
            "the check would not see a difference: {own}"
        );
    }
}
