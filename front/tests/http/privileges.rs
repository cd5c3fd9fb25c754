//! Issue 19 over HTTP: the front runs as a NOSUPERUSER role set up only with grant_front and
//! grant_worker (common.rs), and every kind of route works that way: data, OAuth2 revocation
//! and introspection by a client, the dashboard's statistics, /metrics, the console, the traffic
//! log and maintenance; the `admin` scope follows Odoo's settings group; an expired API key is
//! named; the console deletes clients, profiles and webhooks (audited).
use crate::common::least_privilege::{self, ROLE};
use crate::common::*;
use serde_json::json;
use std::time::Duration;

#[cfg(feature = "admin")]
const ADMIN: &str = "/api/gateway/admin";

#[tokio::test]
async fn the_front_role_is_ordinary_and_reads_no_table_of_the_schema() {
    let _s = start().await;
    let (c, conn) = tokio_postgres::connect(
        &least_privilege::front_url(&database_url()),
        tokio_postgres::NoTls,
    )
    .await
    .expect("the front's role logs in with its password");
    tokio::spawn(conn);
    let row = c
        .query_one(
            "SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), ROLE);
    assert!(!row.get::<_, bool>(1));
    for table in ["client", "token", "settings", "request_log", "webhook_job"] {
        let err = c
            .query_one(&format!("SELECT count(*) FROM api_gateway.{table}"), &[])
            .await
            .unwrap_err();
        assert_eq!(
            err.code().map(|c| c.code()),
            Some("42501"),
            "{table}: {err:?}"
        );
    }
}

/// Every kind of route, called as a DBA's front would be, with the traffic log on: nothing
/// fails and the log never says "permission denied" (checked when the server is dropped, and
/// here after the log writer and maintenance have run).
#[tokio::test]
async fn every_kind_of_route_works_under_the_least_privileged_role() {
    let ua = format!("least-privilege-{}", std::process::id());
    let s = start_with(|a| {
        a.log_level = Some("metadata".into());
        a.log_batch_ms = 20;
        a.maintenance_interval_s = 1;
    })
    .await;
    let c = reqwest::Client::builder()
        .user_agent(ua.clone())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let admin = bearer(&api_key("admin"));
    let (id, secret) = new_client(2, &["read", "write", "delete"], None).await;
    // OAuth2: token, introspection and revocation by the client.
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tok = r.body["access_token"].as_str().unwrap().to_string();
    let r = send(
        c.get(s.url("/api/v1/res.partner?limit=2&fields=name&count=true"))
            .header("authorization", bearer(&tok)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", tok.as_str())]),
    )
    .await;
    assert_eq!(
        (r.status, &r.body["active"]),
        (200, &json!(true)),
        "{}",
        r.text
    );
    let r = send(
        c.post(s.url("/api/oauth/revoke"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", tok.as_str())]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&tok)),
    )
    .await;
    assert_problem(&r, 401);
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", tok.as_str())]),
    )
    .await;
    assert_eq!(r.body, json!({"active": false}));
    // A fault for the statistics.
    let r = send(
        c.get(s.url("/api/v1/no.such.model"))
            .header("authorization", admin.clone()),
    )
    .await;
    assert_problem(&r, 404);
    // The traffic log reaches the table (written by log_requests as the front's role).
    let db = db().await;
    let mut logged = 0i64;
    for _ in 0..200 {
        logged = db
            .query_one(
                "SELECT count(*) FROM api_gateway.request_log WHERE user_agent = $1",
                &[&ua],
            )
            .await
            .unwrap()
            .get(0);
        if logged >= 7 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(logged >= 7, "traffic log rows: {logged}");
    // Statistics, metrics, dashboard and console reads (the plain REST build has /metrics only).
    let console = [
        "/api/gateway/stats/overview?range=24h",
        "/api/gateway/stats/users",
        "/api/gateway/stats/faults",
        "/api/gateway/stats/kpis",
        "/api/gateway/stats/faults.csv",
        "/api/gateway/dashboard",
        "/api/gateway/admin/api/settings",
        "/api/gateway/admin/api/clients",
        "/api/gateway/admin/api/logs",
        "/api/gateway/admin/api/audit",
        "/api/gateway/admin/api/webhooks",
        "/api/gateway/admin/api/queue",
    ];
    let served = if cfg!(feature = "admin") {
        &console[..]
    } else {
        &[]
    };
    for path in served.iter().chain(&["/metrics"]) {
        let r = send(c.get(s.url(path)).header("authorization", admin.clone())).await;
        assert_eq!(r.status, 200, "{path}: {}", r.text);
    }
    #[cfg(feature = "admin")]
    console_statistics_name_the_fault(&c, &s, &admin).await;
    // Maintenance ran as the front's role (every second here) and /metrics shows it.
    let mut metrics = String::new();
    for _ in 0..100 {
        let r = send(
            c.get(s.url("/metrics"))
                .header("authorization", admin.clone()),
        )
        .await;
        metrics = r.text;
        if metrics.contains("api_gateway_maintenance_last_run_timestamp_seconds{job=\"logs\"}")
            && metrics.contains("api_gateway_maintenance_runs_total{job=\"logs\",outcome=\"ran\"}")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        metrics.contains("api_gateway_maintenance_runs_total{job=\"logs\",outcome=\"ran\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("api_gateway_database_up 1"), "{metrics}");
    assert!(
        metrics.contains("api_gateway_webhook_jobs{state=\"pending\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("api_gateway_log_write_errors_total 0"),
        "{metrics}"
    );
    least_privilege::assert_no_permission_denied();
}

/// The dashboard's statistics name the fault the test made, and a log record opens.
#[cfg(feature = "admin")]
async fn console_statistics_name_the_fault(c: &reqwest::Client, s: &Server, admin: &str) {
    let r = send(
        c.get(s.url("/api/gateway/stats/overview"))
            .header("authorization", admin),
    )
    .await;
    let fault = r.body["faults"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "/api/v1/no.such.model")
        .cloned()
        .expect("the 404 is among the faults");
    assert!(r.body["log_level"].is_string());
    let r = send(
        c.get(s.url(&format!("/api/gateway/stats/log/{}", fault["id"])))
            .query(&[("at", fault["at"].as_str().unwrap())])
            .header("authorization", admin),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["path"], "/api/v1/no.such.model");
    let r = send(
        c.get(s.url("/api/gateway/stats/users"))
            .header("authorization", admin),
    )
    .await;
    assert!(
        r.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["uid"] == 2 && u["login"] == "admin"),
        "{}",
        r.text
    );
}

/// The review's reproduction: a client of the portal user holding `admin` (made before 0.4.0
/// checked it) created, through the console, a client for the administrator with every scope.
#[cfg(feature = "admin")]
#[tokio::test]
async fn the_admin_scope_of_a_non_administrator_grants_nothing() {
    let s = start().await;
    let c = http();
    let db = db().await;
    let portal: i32 = db
        .query_one("SELECT id FROM res_users WHERE login = 'portal'", &[])
        .await
        .unwrap()
        .get(0);
    // Refused at creation, by SQL and by the console.
    let err = db
        .query_one(
            "SELECT * FROM api_gateway.create_client('x', $1, '{admin}')",
            &[&portal],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code().map(|c| c.code()), Some("22023"));
    let message = err
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("base.group_system"), "{err:?}");
    let r = send(
        c.post(s.url(&format!("{ADMIN}/api/clients")))
            .header("authorization", bearer(&api_key("admin")))
            .json(&json!({"name": "portal admin", "user_id": portal, "scopes": ["read", "admin"]})),
    )
    .await;
    assert_problem(&r, 400);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("base.group_system"),
        "{}",
        r.text
    );
    assert_eq!(r.body["field"], "scopes");
    // One made before the check (triggers off for that statement, as an old dump would be).
    let (pc, _) = new_client(portal, &["read"], None).await;
    db.batch_execute(&format!(
        "BEGIN; SET LOCAL session_replication_role = replica; \
         UPDATE api_gateway.client SET scopes = '{{admin}}' WHERE client_id = '{pc}'; COMMIT;"
    ))
    .await
    .unwrap();
    let secret: String = db
        .query_one(
            "SELECT api_gateway.admin_rotate_client_secret(NULL, NULL, $1)",
            &[&pc],
        )
        .await
        .unwrap()
        .get(0);
    let portal_admin = token_for(&pc, &secret).await;
    let before: i64 = db
        .query_one(
            "SELECT count(*) FROM api_gateway.client WHERE user_id = 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let r = send(
        c.post(s.url(&format!("{ADMIN}/api/clients")))
            .header("authorization", bearer(&portal_admin))
            .json(&json!({"name": "escalation", "user_id": 2, "scopes": ["read", "write", "delete", "admin"]})),
    )
    .await;
    assert_problem(&r, 403);
    let r = send(
        c.get(s.url("/api/gateway/stats/overview"))
            .header("authorization", bearer(&portal_admin)),
    )
    .await;
    assert_problem(&r, 403);
    let r = send(
        c.get(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&portal_admin)),
    )
    .await;
    assert_problem(&r, 403);
    let after: i64 = db
        .query_one(
            "SELECT count(*) FROM api_gateway.client WHERE user_id = 2",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(before, after, "no client was created");
    db.execute(
        "DELETE FROM api_gateway.client WHERE client_id = $1",
        &[&pc],
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_expired_api_key_is_named_as_such() {
    if !mini() {
        return;
    }
    let s = start().await;
    let c = http();
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&api_key("demo_expired"))),
    )
    .await;
    assert_problem(&r, 401);
    assert_eq!(r.body["detail"], "the API key has expired", "{}", r.text);
    let r = send(c.get(s.url("/api/v1/ping")).header(
        "authorization",
        bearer("0123456789abcdef0123456789abcdef01234567"),
    ))
    .await;
    assert_problem(&r, 401);
    assert_eq!(r.body["detail"], "invalid API key", "{}", r.text);
}

#[cfg(feature = "admin")]
#[tokio::test]
async fn the_console_deletes_clients_profiles_and_webhooks_with_an_audit_row_each() {
    let s = start().await;
    let c = http();
    let admin = bearer(&api_key("admin"));
    let db = db().await;
    let post = |path: String| {
        c.post(s.url(&format!("{ADMIN}/api/{path}")))
            .header("authorization", admin.clone())
    };
    let before: i64 = db
        .query_one("SELECT coalesce(max(id), 0) FROM api_gateway.audit", &[])
        .await
        .unwrap()
        .get(0);
    // A client and its token.
    let (id, secret) = new_client(2, &["read"], None).await;
    let tok = token_for(&id, &secret).await;
    let r = send(post(format!("clients/{id}/delete"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"client_id": id, "deleted": true}));
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&tok)),
    )
    .await;
    assert_problem(&r, 401);
    let r = send(post(format!("clients/{id}/delete"))).await;
    assert_problem(&r, 404);
    // A profile (of a user no other test sets).
    let user: i32 = db
        .query_one(
            "SELECT id FROM res_users WHERE active AND NOT share AND id NOT IN (2, 5, 8) ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .map(|r| r.get(0))
        .unwrap_or(8);
    let r = send(post("profiles".into()).json(&json!({"user_id": user, "rate_limit": 9}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(post(format!("profiles/{user}/delete"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(post(format!("profiles/{user}/delete"))).await;
    assert_problem(&r, 404);
    // A webhook.
    let r = send(post("webhooks".into()).json(&json!({
        "name": format!("lp delete {}", std::process::id()),
        "model": "res.partner.category",
        "url": "https://example.com/hook",
        "active": false,
    })))
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let wid = r.body["id"].as_i64().unwrap();
    let r = send(post(format!("webhooks/{wid}/delete"))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM api_gateway.webhook WHERE id = $1",
            &[&(wid as i32)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let audit: Vec<(String, Option<i32>)> = db
        .query(
            "SELECT action, actor_uid FROM api_gateway.audit WHERE id > $1 AND action LIKE '%.delete' \
              AND (target = $2 OR target = $3 OR target = $4) ORDER BY id",
            &[
                &before,
                &format!("client:{id}"),
                &format!("profile:{user}"),
                &format!("webhook:{wid}"),
            ],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        audit,
        vec![
            ("client.delete".to_string(), Some(2)),
            ("profile.delete".to_string(), Some(2)),
            ("webhook.delete".to_string(), Some(2)),
        ]
    );
}
