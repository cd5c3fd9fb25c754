//! The admin console over HTTP: every page and every action refuses non-admin credentials
//! (403, nothing changed, nothing audited); the JSON API round-trips through the admin_*
//! functions with problems naming the bad field; secrets appear once; the audit row names the
//! actor; a revoked token is refused on its next call; a test event reaches a local receiver
//! signed per Standard Webhooks.
use crate::common::*;
use api_gateway_front::routes::admin::{ACTIONS, PAGES, READS};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "/api/gateway/admin";

#[tokio::test]
async fn every_page_and_every_action_refuses_non_admin_credentials() {
    let s = start().await;
    let c = http();
    // An Odoo user who is not an administrator, and an administrator's token without the admin
    // scope: both authenticate, neither is an admin.
    let demo_key = api_key("demo");
    let (read_client, read_secret) = new_client(2, &["read", "write", "delete"], None).await;
    let read_token = token_for(&read_client, &read_secret).await;
    let mut pages: Vec<String> = vec![format!("{ADMIN}/"), ADMIN.to_string()];
    pages.extend(PAGES.iter().map(|p| format!("{ADMIN}/{p}")));
    for path in &pages {
        for credential in [&demo_key, &read_token] {
            let r = send(
                c.get(s.url(path))
                    .header("authorization", bearer(credential)),
            )
            .await;
            assert_problem(&r, 403);
            assert_eq!(kind(&r), "insufficient-scope", "{path}");
        }
        let r = send(
            c.get(s.url(path))
                .header("authorization", "Bearer not-a-credential"),
        )
        .await;
        assert_problem(&r, 401);
        // A browser navigating here sends no credential: it gets the shell, which holds no
        // data and asks for one.
        let r = send(c.get(s.url(path))).await;
        assert_eq!(r.status, 200, "{path}");
        assert!(r.text.contains("admin.js") && r.text.contains("Sign in"));
        let csp = r.header("content-security-policy").unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{csp}"
        );
    }
    for read in READS {
        let path = format!("{ADMIN}/api/{read}");
        for credential in [&demo_key, &read_token] {
            let r = send(
                c.get(s.url(&path))
                    .header("authorization", bearer(credential)),
            )
            .await;
            assert_problem(&r, 403);
        }
        let r = send(c.get(s.url(&path))).await;
        assert_problem(&r, 401);
    }
    for action in ACTIONS {
        let path = format!("{ADMIN}/api/{action}");
        for credential in [&demo_key, &read_token] {
            // A body that would be valid for an admin where one is needed.
            let r = send(
                c.post(s.url(&path))
                    .header("authorization", bearer(credential))
                    .json(&json!({"subject": "x"})),
            )
            .await;
            assert_problem(&r, 403);
            // Even with a body that is not JSON: the admin check comes first.
            let r = send(
                c.post(s.url(&path))
                    .header("authorization", bearer(credential))
                    .body("{"),
            )
            .await;
            assert_problem(&r, 403);
        }
        let r = send(c.post(s.url(&path))).await;
        assert_problem(&r, 401);
    }
    // Other tests change things at the same time: count only what these two callers did.
    let audited: i64 = db()
        .await
        .query_one(
            "SELECT count(*) FROM api_gateway.audit WHERE actor_uid = 5 OR actor_client = $1",
            &[&read_client],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(audited, 0, "a refused call changes nothing");
}

#[tokio::test]
async fn pages_and_assets_are_served_without_a_cdn_and_unknown_ones_are_404() {
    let s = start().await;
    let c = http();
    let admin = api_key("admin");
    for p in PAGES {
        let r = send(
            c.get(s.url(&format!("{ADMIN}/{p}")))
                .header("authorization", bearer(&admin)),
        )
        .await;
        assert_eq!(r.status, 200, "{p}");
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
        assert!(!r.text.contains("https://"), "no third-party asset");
    }
    let js = send(c.get(s.url(&format!("{ADMIN}/assets/admin.js")))).await;
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.text.contains("sessionStorage") && !js.text.contains("document.cookie"));
    assert!(
        !js.text.contains("innerHTML"),
        "server data is inserted as text"
    );
    let css = send(c.get(s.url(&format!("{ADMIN}/assets/admin.css")))).await;
    assert_eq!(css.status, 200);
    for missing in [
        format!("{ADMIN}/nope"),
        format!("{ADMIN}/assets/x.js"),
        format!("{ADMIN}/api/nope"),
    ] {
        let r = send(
            c.get(s.url(&missing))
                .header("authorization", bearer(&admin)),
        )
        .await;
        assert_problem(&r, 404);
    }
    let r = send(
        c.post(s.url(&format!("{ADMIN}/api/queue/abc/replay")))
            .header("authorization", bearer(&admin)),
    )
    .await;
    assert_problem(&r, 404);
}

#[tokio::test]
async fn clients_round_trip_with_the_secret_once_and_revocation_refuses_the_next_call() {
    let s = start().await;
    let c = http();
    // The actor of this test's changes is this token's client.
    let (actor_client, actor_secret) = new_client(2, &["read", "admin"], None).await;
    let admin_token = token_for(&actor_client, &actor_secret).await;
    let auth = bearer(&admin_token);
    let api = |p: &str| s.url(&format!("{ADMIN}/api/{p}"));
    let r = send(
        c.post(api("clients"))
            .header("authorization", &auth)
            .json(&json!({"name": "console http", "user_id": 2, "scopes": ["read"], "allowed_ips": ["10.0.0.1/8"]})),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["field"], json!("allowed_ips"));
    assert_eq!(r.body["sqlstate"], json!("22023"));
    assert!(r.body["detail"].as_str().unwrap().contains("10.0.0.1/8"));
    let r = send(
        c.post(api("clients"))
            .header("authorization", &auth)
            .header("content-type", "text/plain")
            .body("{}"),
    )
    .await;
    assert_problem(&r, 415);
    let r = send(
        c.post(api("clients"))
            .header("authorization", &auth)
            .json(&json!({"name": "console http", "user_id": 2, "scopes": ["read", "write"]})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let id = r.body["client_id"].as_str().unwrap().to_string();
    let secret = r.body["client_secret"].as_str().unwrap().to_string();
    let listed = send(c.get(api("clients")).header("authorization", &auth)).await;
    assert_eq!(listed.status, 200);
    assert!(listed.text.contains(&id) && !listed.text.contains(&secret));
    assert!(!listed.text.contains("secret_hash"));
    // Its token works, is listed, and once revoked from the console it is refused at once.
    let client_token = token_for(&id, &secret).await;
    let ping = |t: String| {
        let c = c.clone();
        let url = s.url("/api/v1/res.partner?limit=1&fields=name");
        async move { send(c.get(url).header("authorization", bearer(&t))).await }
    };
    assert_eq!(ping(client_token.clone()).await.status, 200);
    let tokens = send(
        c.get(api(&format!("tokens?client={id}")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let jti = tokens.body[0]["jti"].as_str().unwrap().to_string();
    assert_eq!(tokens.body[0]["state"], json!("live"));
    let r = send(
        c.post(api(&format!("tokens/{jti}/revoke")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!((r.status, &r.body), (200, &json!({"revoked": true})));
    let refused = ping(client_token).await;
    assert_problem(&refused, 401);
    // Scopes and IPs edited; a bad scope names its field.
    let r = send(
        c.post(api(&format!("clients/{id}")))
            .header("authorization", &auth)
            .json(&json!({"scopes": ["read", "sudo"]})),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["field"], json!("scopes"));
    let r = send(
        c.post(api(&format!("clients/{id}")))
            .header("authorization", &auth)
            .json(&json!({"scopes": ["read"], "allowed_ips": ["127.0.0.0/8", "::1"]})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["allowed_ips"], json!(["127.0.0.0/8", "::1/128"]));
    // A new secret replaces the old one.
    let r = send(
        c.post(api(&format!("clients/{id}/rotate-secret")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 200);
    let new_secret = r.body["client_secret"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);
    let old = db()
        .await
        .query_one(
            "SELECT status FROM api_gateway.issue_token($1, $2, NULL, '127.0.0.1'::inet)",
            &[&id, &secret],
        )
        .await
        .unwrap()
        .get::<_, i32>(0);
    assert_eq!(old, 401);
    let _ = token_for(&id, &new_secret).await;
    let r = send(
        c.post(api(&format!("clients/{id}/revoke-tokens")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.body, json!({"revoked": 1}));
    let r = send(
        c.post(api("clients/gw_ffffffffffff/rotate-secret"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 404);
    // Who did what: the token's client acting as user 2, one row per change, no secret.
    let rows = db()
        .await
        .query(
            "SELECT action, actor_uid, actor_client, details::text FROM api_gateway.audit \
              WHERE target = 'client:' || $1 OR details->>'client_id' = $1 ORDER BY id",
            &[&id],
        )
        .await
        .unwrap();
    let actions: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    assert_eq!(
        actions,
        [
            "client.create",
            "token.revoke",
            "client.update",
            "client.rotate_secret",
            "client.revoke_tokens"
        ]
    );
    for r in &rows {
        assert_eq!(r.get::<_, Option<i32>>(1), Some(2));
        assert_eq!(r.get::<_, Option<String>>(2), Some(actor_client.clone()));
        let details: String = r.get(3);
        assert!(!details.contains(&secret) && !details.contains(&new_secret));
    }
    let audit = send(c.get(api("audit?limit=5")).header("authorization", &auth)).await;
    assert_eq!(audit.status, 200);
    assert!(audit.body.as_array().unwrap().len() <= 5);
}

#[tokio::test]
async fn settings_profiles_throttles_and_logs_validate_their_input() {
    let s = start().await;
    let c = http();
    let auth = bearer(&api_key("admin"));
    let api = |p: &str| s.url(&format!("{ADMIN}/api/{p}"));
    let current = send(c.get(api("settings")).header("authorization", &auth)).await;
    assert_eq!(current.status, 200);
    assert!(current.body.get("jwt_secret").is_none());
    for (changes, field) in [
        (json!({"max_limit": 0}), "max_limit"),
        (json!({"log_level": "everything"}), "log_level"),
        (json!({"token_lifetime_s": 10}), "token_lifetime_s"),
        (json!({"rate_limit_window": "week"}), "rate_limit_window"),
    ] {
        let r = send(
            c.post(api("settings"))
                .header("authorization", &auth)
                .json(&changes),
        )
        .await;
        assert_problem(&r, 400);
        assert_eq!(r.body["field"], json!(field), "{changes}");
    }
    // Saving the current values back (other tests share these settings) answers the row.
    let same = json!({"rate_limit_window": current.body["rate_limit_window"], "log_retention_days": current.body["log_retention_days"]});
    let r = send(
        c.post(api("settings"))
            .header("authorization", &auth)
            .json(&same),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["jwt_kid"], current.body["jwt_kid"]);
    // Profiles: the user list comes from Odoo; CIDRs are checked.
    let users = send(c.get(api("users")).header("authorization", &auth)).await;
    assert!(
        users
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["login"] == json!("admin"))
    );
    let r = send(
        c.post(api("profiles"))
            .header("authorization", &auth)
            .json(&json!({"user_id": 6, "allowed_ips": "192.168.1.300"})),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["field"], json!("allowed_ips"));
    let r = send(
        c.post(api("profiles/2147483000/deactivate"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 404);
    // Throttles: a reset needs a subject; an unknown one is reported, not an error.
    let r = send(
        c.post(api("throttles/reset"))
            .header("authorization", &auth)
            .json(&json!({})),
    )
    .await;
    assert_problem(&r, 400);
    let r = send(
        c.post(api("throttles/reset"))
            .header("authorization", &auth)
            .json(&json!({"subject": "nobody:0"})),
    )
    .await;
    assert_eq!(r.body, json!({"reset": false}));
    let list = send(c.get(api("throttles")).header("authorization", &auth)).await;
    assert!(list.body.is_array());
    // Logs: filters and grouping are checked; the CSV is an attachment.
    for (q, field) in [
        ("logs?status=6xx", "status"),
        ("logs?from=soon", "from"),
        ("logs/grouped?by=ip", "group_by"),
    ] {
        let r = send(c.get(api(q)).header("authorization", &auth)).await;
        assert_problem(&r, 400);
        assert_eq!(r.body["field"], json!(field), "{q}");
    }
    let r = send(c.get(api("logs?method=GET")).header("authorization", &auth)).await;
    assert_problem(&r, 400);
    let r = send(
        c.get(api("logs/grouped?by=endpoint&status=4xx"))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.get(api("logs.csv?user=2&limit=5"))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-disposition")
            .unwrap()
            .contains("attachment")
    );
    assert!(r.text.starts_with("id,at,method,path,status,"));
}

/// A one-shot HTTP receiver on 127.0.0.1: returns its URL and the request it got (headers
/// lower-cased, body).
async fn receiver() -> (
    String,
    tokio::task::JoinHandle<(Vec<(String, String)>, String)>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = sock.read(&mut chunk).await.unwrap();
            buf.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&buf).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap())
                    })
                    .unwrap_or(0);
                if buf.len() >= end + 4 + length || n == 0 {
                    let headers = text[..end]
                        .lines()
                        .skip(1)
                        .filter_map(|l| l.split_once(':'))
                        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let body = String::from_utf8_lossy(&buf[end + 4..]).to_string();
                    sock.write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .await
                        .unwrap();
                    return (headers, body);
                }
            }
        }
    });
    (url, handle)
}

#[tokio::test]
async fn a_webhook_is_created_tested_against_a_local_receiver_and_its_dead_jobs_replayed() {
    let s = start().await;
    let c = http();
    let auth = bearer(&api_key("admin"));
    let api = |p: &str| s.url(&format!("{ADMIN}/api/{p}"));
    let d = db().await;
    // The receiver is on loopback, a private target.
    d.batch_execute("UPDATE api_gateway.webhook_settings SET allow_private_targets = true")
        .await
        .unwrap();
    let (url, got) = receiver().await;
    let name = format!("console http {}", std::process::id());
    let r = send(c.post(api("webhooks")).header("authorization", &auth).json(
        &json!({"name": name, "model": "res.partner.category", "events": ["create"], "url": url,
                          "headers": {"X-Console": "yes"}, "active": false}),
    ))
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_i64().unwrap();
    let secret = r.body["secret"].as_str().unwrap().to_string();
    let listed = send(c.get(api("webhooks")).header("authorization", &auth)).await;
    assert!(listed.text.contains(&name) && !listed.text.contains(&secret));
    let models = send(c.get(api("models")).header("authorization", &auth)).await;
    assert!(
        models
            .body
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["model"] == json!("res.partner.category"))
    );
    let r = send(
        c.post(api(&format!("webhooks/{id}/test")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["delivered"], json!(true), "{}", r.text);
    assert_eq!(r.body["status"], json!(204));
    let (headers, body) = got.await.unwrap();
    let header = |n: &str| {
        headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(header("x-console"), "yes");
    assert_eq!(header("webhook-id"), r.body["event_id"].as_str().unwrap());
    let ts: i64 = header("webhook-timestamp").parse().unwrap();
    assert!(api_gateway_core::webhook::verify(
        &secret,
        &header("webhook-id"),
        ts,
        body.as_bytes(),
        &header("webhook-signature")
    ));
    let payload: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&payload["action"], &payload["model"]),
        (&json!("test"), &json!("res.partner.category"))
    );
    // A bad edit names its field; a good one answers the webhook without its secret.
    let r = send(
        c.post(api(&format!("webhooks/{id}")))
            .header("authorization", &auth)
            .json(&json!({"events": ["delete"]})),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["field"], json!("events"));
    let r = send(
        c.post(api(&format!("webhooks/{id}")))
            .header("authorization", &auth)
            .json(&json!({"fields": "name", "domain": "[(\"name\", \"ilike\", \"x\")]"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body.get("secret").is_none());
    // Dead jobs: replay one, then all the others of the webhook.
    let jobs: Vec<i64> = d
        .query(
            "INSERT INTO api_gateway.webhook_job (event_id, webhook_id, action, record_id, state, attempts, last_error) \
             SELECT gen_random_uuid(), $1, 'create', n, 'dead', 8, 'HTTP 500' FROM generate_series(1, 3) n RETURNING id",
            &[&(id as i32)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let q = send(
        c.get(api(&format!("queue?state=dead&webhook={id}")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(q.body["counts"]["dead"], json!(3), "{}", q.text);
    let r = send(
        c.post(api(&format!("queue/{}/replay", jobs[0])))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.body, json!({"replayed": true}));
    let r = send(
        c.post(api(&format!("webhooks/{id}/replay-dead")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.body, json!({"replayed": 2}));
    let q = send(
        c.get(api(&format!("queue?webhook={id}")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(q.body["counts"], json!({"pending": 3}), "{}", q.text);
    let r = send(
        c.get(api("queue?state=lost"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 400);
    let r = send(
        c.post(api(&format!("webhooks/{id}/rotate-secret")))
            .header("authorization", &auth),
    )
    .await;
    assert!(r.body["secret"].as_str().unwrap().starts_with("whsec_"));
    // The previous secret stays valid 24 hours by default, or as long as asked.
    let until = |body: &serde_json::Value| -> Option<String> {
        body.as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == id)
            .and_then(|w| {
                w["previous_secret_valid_until"]
                    .as_str()
                    .map(str::to_string)
            })
    };
    let listed = send(c.get(api("webhooks")).header("authorization", &auth)).await;
    assert!(until(&listed.body).is_some(), "{}", listed.text);
    let r = send(
        c.post(api(&format!("webhooks/{id}/rotate-secret")))
            .header("authorization", &auth)
            .json(&json!({"overlap_hours": 2})),
    )
    .await;
    assert_eq!(
        r.body["previous_secret_valid_s"],
        json!(7200.0),
        "{}",
        r.text
    );
    let left: f64 = d
        .query_one(
            "SELECT extract(epoch FROM previous_secret_expires_at - now())::float8 FROM api_gateway.webhook WHERE id = $1",
            &[&(id as i32)],
        )
        .await
        .unwrap()
        .get(0);
    assert!((7000.0..=7200.0).contains(&left), "{left}");
    let r = send(
        c.post(api(&format!("webhooks/{id}/rotate-secret")))
            .header("authorization", &auth)
            .json(&json!({"overlap_hours": 0})),
    )
    .await;
    assert!(r.body["secret"].as_str().unwrap().starts_with("whsec_"));
    let listed = send(c.get(api("webhooks")).header("authorization", &auth)).await;
    assert_eq!(
        until(&listed.body),
        None,
        "overlap 0 ends the old secret at once"
    );
    for bad in [
        json!({"overlap_hours": -1}),
        json!({"overlap_hours": 100000}),
        json!({"overlap_hours": "soon"}),
    ] {
        let r = send(
            c.post(api(&format!("webhooks/{id}/rotate-secret")))
                .header("authorization", &auth)
                .json(&bad),
        )
        .await;
        assert_problem(&r, 400);
        assert_eq!(r.body["field"], "overlap_hours", "{}", r.text);
    }
    d.execute(
        "DELETE FROM api_gateway.webhook WHERE id = $1",
        &[&(id as i32)],
    )
    .await
    .unwrap();
}
