//! Issue 15: writes and business methods forwarded to Odoo's JSON-2 (`--odoo-url`), against a
//! small JSON-2 stand-in served by the test itself (CI has no Odoo; tests/odoo/run.sh runs the
//! same routes against a real Odoo 19). The stand-in records every call (path, headers, body)
//! and answers like Odoo 19 does (addons/rpc/controllers/json2.py, odoo/http.py Json2Dispatcher):
//! a JSON result, or `{name, message, arguments, context, debug}` with Odoo's status.
use crate::common::*;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A PNG header and a few bytes, base64 as Odoo's `read` gives binary fields.
const STAND_IN_PNG_B64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    database: Option<String>,
    body: Value,
}

#[derive(Default)]
struct Odoo {
    seen: Mutex<Vec<Seen>>,
    release: tokio::sync::Notify,
}

struct StandIn {
    url: String,
    state: Arc<Odoo>,
    /// TCP connections the stand-in accepted.
    connections: Arc<AtomicUsize>,
}

impl StandIn {
    fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
    fn calls_to(&self, path: &str) -> usize {
        self.seen().iter().filter(|s| s.path == path).count()
    }
}

fn odoo_error(status: u16, name: &str, message: &str) -> Response {
    let code = StatusCode::from_u16(status).unwrap();
    let body = json!({
        "name": name,
        "message": message,
        "arguments": [message],
        "context": {},
        "debug": "Traceback (most recent call last):\n  File \"/odoo/odoo/http.py\", line 2273, in _serve_db\nSECRET_TRACEBACK_LINE",
    });
    (code, axum::Json(body)).into_response()
}

async fn json2(
    State(state): State<Arc<Odoo>>,
    Path((model, method)): Path<(String, String)>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    state.seen.lock().unwrap().push(Seen {
        path: format!("{model}/{method}"),
        authorization: h("authorization"),
        database: h("x-odoo-database"),
        body: body.clone(),
    });
    match (model.as_str(), method.as_str()) {
        ("res.partner", "create") => axum::Json(json!([4242])).into_response(),
        // Odoo's read of what only Odoo gives: a value per id and field, as Odoo would compute it.
        ("res.partner" | "ir.model.access", "read") => {
            let rows: Vec<Value> = body["ids"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_i64)
                .map(|id| {
                    let mut row = serde_json::Map::new();
                    row.insert("id".into(), json!(id));
                    for f in body["fields"].as_array().into_iter().flatten() {
                        let f = f.as_str().unwrap_or("");
                        let v = match f {
                            "email_formatted" => json!(format!("partner{id}@odoo.example")),
                            "company_type" => json!("person"),
                            "image_128" => json!(STAND_IN_PNG_B64),
                            "name" => json!(format!("Odoo's name of {id}")),
                            _ => json!(false),
                        };
                        row.insert(f.into(), v);
                    }
                    Value::Object(row)
                })
                .collect();
            axum::Json(Value::Array(rows)).into_response()
        }
        (_, "write" | "unlink" | "action_confirm") => axum::Json(json!(true)).into_response(),
        ("res.partner", "echo") => axum::Json(json!({"got": body})).into_response(),
        ("wait.model", _) => {
            state.release.notified().await;
            axum::Json(json!([77])).into_response()
        }
        ("hang.model", _) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            axum::Json(json!([1])).into_response()
        }
        ("err.user", _) => odoo_error(422, "odoo.exceptions.UserError", "You cannot do that."),
        ("err.validation", _) => odoo_error(
            422,
            "odoo.exceptions.ValidationError",
            "The dates are wrong.",
        ),
        ("err.access", _) => odoo_error(
            403,
            "odoo.exceptions.AccessError",
            "You are not allowed to modify 'Contact' (res.partner) records.",
        ),
        ("err.missing", _) => odoo_error(
            404,
            "odoo.exceptions.MissingError",
            "Record does not exist or has been deleted.",
        ),
        ("err.lock", _) => odoo_error(
            409,
            "odoo.exceptions.LockError",
            "Cannot lock the record, retry later.",
        ),
        ("err.args", _) => odoo_error(
            422,
            "werkzeug.exceptions.UnprocessableEntity",
            "got an unexpected keyword argument 'bogus'",
        ),
        ("err.crash", _) => odoo_error(500, "builtins.KeyError", "'secret_internal_column'"),
        ("err.html", _) => (StatusCode::BAD_GATEWAY, "<html>proxy error</html>").into_response(),
        _ => odoo_error(
            404,
            "werkzeug.exceptions.NotFound",
            &format!("the model '{model}' does not exist"),
        ),
    }
}

async fn stand_in() -> StandIn {
    let state = Arc::new(Odoo::default());
    let app = Router::new()
        .route("/json/2/{model}/{method}", post(json2))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    let listener = axum::serve::ListenerExt::tap_io(listener, move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
    });
    // Like Odoo behind a proxy that keeps connections alive (Odoo's own server closes them).
    tokio::spawn(async move { axum::serve(listener, app).await });
    StandIn {
        url: format!("http://{addr}"),
        state,
        connections,
    }
}

async fn gateway(odoo: &StandIn) -> Server {
    let url = odoo.url.clone();
    start_with(move |a| {
        a.odoo_url = Some(url);
        a.odoo_database = Some("odoo19".into());
        a.odoo_timeout_ms = 5000;
    })
    .await
}

fn no_traceback(r: &Resp) {
    for leak in [
        "Traceback",
        "SECRET_TRACEBACK_LINE",
        "debug",
        "secret_internal_column",
    ] {
        assert!(!r.text.contains(leak), "{leak} leaked: {}", r.text);
    }
}

#[tokio::test]
async fn forwarded_writes_keep_todays_shapes_and_send_json2_calls() {
    if !mini() {
        return;
    }
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let key = api_key("demo");
    let c = http();
    let r = send(
        c.post(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&key))
            .json(&json!({"name": "fwd", "is_company": true})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body, json!({"id": 4242}));
    assert_eq!(r.header("location"), Some("/api/v1/res.partner/4242"));
    assert!(r.header("ratelimit").is_some(), "the gate's headers");
    let r = send(
        c.patch(s.url("/api/v1/res.partner/7"))
            .header("authorization", bearer(&key))
            .json(&json!({"comment": "x"})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(
        c.put(s.url("/api/v1/res.partner/7"))
            .header("authorization", bearer(&key))
            .json(&json!({"comment": "y"})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(
        c.delete(s.url("/api/v1/res.partner/7"))
            .header("authorization", bearer(&key)),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let seen = odoo.seen();
    let shapes: Vec<(&str, &Value)> = seen.iter().map(|s| (s.path.as_str(), &s.body)).collect();
    assert_eq!(
        shapes,
        vec![
            (
                "res.partner/create",
                &json!({"vals_list": [{"name": "fwd", "is_company": true}]})
            ),
            (
                "res.partner/write",
                &json!({"ids": [7], "vals": {"comment": "x"}})
            ),
            (
                "res.partner/write",
                &json!({"ids": [7], "vals": {"comment": "y"}})
            ),
            ("res.partner/unlink", &json!({"ids": [7]})),
        ]
    );
    for call in &seen {
        // The caller's own Odoo API key, as the scheme Odoo parses; the database header.
        assert_eq!(
            call.authorization.as_deref(),
            Some(format!("bearer {key}").as_str())
        );
        assert_eq!(call.database.as_deref(), Some("odoo19"));
    }
}

#[tokio::test]
async fn forwarded_calls_reuse_a_kept_alive_connection_to_odoo() {
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let t = token(2, &["read", "write"]).await;
    for n in 0..6 {
        let r = send(
            http()
                .patch(s.url("/api/v1/res.partner/7"))
                .header("authorization", bearer(&t))
                .json(&json!({"comment": n})),
        )
        .await;
        assert_eq!(r.status, 204, "{}", r.text);
    }
    assert_eq!(odoo.calls_to("res.partner/write"), 6);
    // One after the other: the pooled connection is reused (a second one only if the first was
    // not back in the pool yet), never one per call.
    let opened = odoo.connections.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&opened),
        "{opened} connections for 6 calls"
    );
}

#[tokio::test]
async fn the_gate_runs_before_anything_reaches_odoo() {
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let c = http();
    // No credentials, bad credentials, read-only scope: Odoo never sees the call.
    let r = send(
        c.post(s.url("/api/v1/res.partner"))
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_problem(&r, 401);
    let r = send(
        c.post(s.url("/api/v1/res.partner"))
            .header(
                "authorization",
                bearer("0123456789abcdef0123456789abcdef01234567"),
            )
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_problem(&r, 401);
    let read_only = token(2, &["read"]).await;
    let r = send(
        c.post(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&read_only))
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_problem(&r, 403);
    assert_eq!(kind(&r), "insufficient-scope");
    let r = send(
        c.post(s.url("/api/v1/res.partner/3/call/action_confirm"))
            .header("authorization", bearer(&read_only))
            .json(&json!({})),
    )
    .await;
    assert_problem(&r, 403);
    let no_delete = token(2, &["read", "write"]).await;
    let r = send(
        c.delete(s.url("/api/v1/res.partner/3"))
            .header("authorization", bearer(&no_delete)),
    )
    .await;
    assert_problem(&r, 403);
    assert!(odoo.seen().is_empty(), "{:?}", odoo.seen());
}

#[tokio::test]
async fn an_oauth2_client_forwards_its_own_upstream_key_which_goes_with_the_client() {
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let (client_id, secret) = new_client(2, &["read", "write"], None).await;
    let t = token_for(&client_id, &secret).await;
    let r = send(
        http()
            .post(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&t))
            .json(&json!({"name": "via client"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let db = db().await;
    let key: String = db
        .query_one(
            "SELECT key FROM api_gateway.upstream_key WHERE client_id = $1 AND key IS NOT NULL",
            &[&client_id],
        )
        .await
        .unwrap()
        .get(0);
    let seen = odoo.seen();
    assert_eq!(seen.len(), 1);
    let sent = seen[0].authorization.clone().unwrap();
    assert_eq!(sent, format!("bearer {key}"));
    assert!(!sent.contains(&t), "the access token never goes to Odoo");
    // The key is an Odoo key of the client's user.
    let uid: Option<i32> = db
        .query_one("SELECT api_gateway.verify_api_key($1, 'rpc')", &[&key])
        .await
        .unwrap()
        .get(0);
    assert_eq!(uid, Some(2));
    // Not in the response, not in the admin console's client list.
    assert!(!r.text.contains(&key));
    let listed: Value = db
        .query_one("SELECT api_gateway.admin_clients()", &[])
        .await
        .map(|row| row.get(0))
        .unwrap_or(Value::Null);
    assert!(!listed.to_string().contains(&key));
    // Deactivated: the key is gone from Odoo, and the gate refuses the token.
    db.execute(
        "UPDATE api_gateway.client SET active = false WHERE client_id = $1",
        &[&client_id],
    )
    .await
    .unwrap();
    let left: i64 = db
        .query_one(
            "SELECT count(*) FROM public.res_users_apikeys WHERE name LIKE 'api_gateway: OAuth2 client ' || $1 || ' %'",
            &[&client_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let r = send(
        http()
            .post(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&t))
            .json(&json!({"name": "after"})),
    )
    .await;
    assert_problem(&r, 401);
    assert_eq!(odoo.seen().len(), 1);
}

#[tokio::test]
async fn odoo_errors_become_problems_with_odoos_message_and_no_traceback() {
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let t = token(2, &["read", "write", "delete"]).await;
    for (model, status, kind_, detail) in [
        ("err.user", 422, "odoo-refused", Some("You cannot do that.")),
        (
            "err.validation",
            422,
            "odoo-refused",
            Some("The dates are wrong."),
        ),
        (
            "err.access",
            403,
            "forbidden",
            Some("You are not allowed to modify 'Contact' (res.partner) records."),
        ),
        (
            "err.missing",
            404,
            "not-found",
            Some("Record does not exist or has been deleted."),
        ),
        (
            "err.lock",
            409,
            "conflict",
            Some("Cannot lock the record, retry later."),
        ),
        (
            "err.args",
            400,
            "invalid-input",
            Some("got an unexpected keyword argument 'bogus'"),
        ),
        ("err.crash", 502, "upstream-error", None),
        ("err.html", 502, "upstream-error", None),
        (
            "no.such.model",
            404,
            "not-found",
            Some("the model 'no.such.model' does not exist"),
        ),
    ] {
        let r = send(
            http()
                .post(s.url(&format!("/api/v1/{model}")))
                .header("authorization", bearer(&t))
                .json(&json!({"name": "x"})),
        )
        .await;
        assert_problem(&r, status);
        assert_eq!(kind(&r), kind_, "{model}: {}", r.text);
        if let Some(d) = detail {
            assert_eq!(r.body["detail"], d, "{model}");
        }
        no_traceback(&r);
        assert!(
            r.header("ratelimit").is_some(),
            "{model}: the gate's headers"
        );
    }
}

#[tokio::test]
async fn odoo_down_is_503_with_retry_after_and_too_slow_is_504() {
    // A port nothing listens on.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = start_with(move |a| a.odoo_url = Some(url)).await;
    let t = token(2, &["read", "write"]).await;
    let r = send(
        http()
            .post(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&t))
            .header("idempotency-key", "down-1")
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_problem(&r, 503);
    assert_eq!(kind(&r), "upstream-unavailable");
    assert_eq!(r.header("retry-after"), Some("5"));
    // Nothing was written, so the key was released: a retry will run.
    let held: i64 = db()
        .await
        .query_one(
            "SELECT count(*) FROM api_gateway.idempotency WHERE key = 'down-1'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(held, 0);

    let odoo = stand_in().await;
    let url = odoo.url.clone();
    let s = start_with(move |a| {
        a.odoo_url = Some(url);
        a.odoo_timeout_ms = 300;
    })
    .await;
    let r = send(
        http()
            .post(s.url("/api/v1/hang.model"))
            .header("authorization", bearer(&t))
            .json(&json!({"name": "x"})),
    )
    .await;
    assert_problem(&r, 504);
    assert_eq!(kind(&r), "upstream-timeout");
}

#[tokio::test]
async fn business_methods_on_records_and_models() {
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let t = token(2, &["read", "write"]).await;
    let c = http();
    let r = send(
        c.post(s.url("/api/v1/sale.order/12/call/action_confirm"))
            .header("authorization", bearer(&t))
            .json(&json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body, json!({"result": true}));
    let r = send(
        c.post(s.url("/api/v1/res.partner/call/echo"))
            .header("authorization", bearer(&t))
            .json(&json!({"name": "Ada", "limit": 3, "context": {"lang": "fr_FR"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let seen = odoo.seen();
    assert_eq!(seen[0].path, "sale.order/action_confirm");
    assert_eq!(seen[0].body, json!({"ids": [12]}));
    assert_eq!(seen[1].path, "res.partner/echo");
    assert_eq!(
        seen[1].body,
        json!({"name": "Ada", "limit": 3, "context": {"lang": "fr_FR"}})
    );
    assert_eq!(r.body["result"]["got"], seen[1].body);
    // Refused before Odoo: ids in the body, a context that is not an object, a bad name.
    for (path, body, status) in [
        ("/api/v1/res.partner/call/echo", json!({"ids": [1]}), 400),
        (
            "/api/v1/res.partner/call/echo",
            json!({"context": [1]}),
            400,
        ),
        ("/api/v1/res.partner/call/echo", json!([1]), 400),
        ("/api/v1/res.partner/call/a.b", json!({}), 404),
        ("/api/v1/res.partner/call/a%2Fb", json!({}), 404),
    ] {
        let r = send(
            c.post(s.url(path))
                .header("authorization", bearer(&t))
                .json(&body),
        )
        .await;
        assert_problem(&r, status);
    }
    assert_eq!(odoo.seen().len(), 2);
    // Private methods are Odoo's to refuse: forwarded, and Odoo's AccessError comes back.
    let r = send(
        c.post(s.url("/api/v1/err.access/call/_private"))
            .header("authorization", bearer(&t))
            .json(&json!({})),
    )
    .await;
    assert_problem(&r, 403);
    // Without --odoo-url: 501.
    let plain = start().await;
    let r = send(
        c.post(plain.url("/api/v1/sale.order/12/call/action_confirm"))
            .header("authorization", bearer(&t))
            .json(&json!({})),
    )
    .await;
    assert_problem(&r, 501);
}

#[tokio::test]
async fn idempotency_keys_replay_refuse_mismatches_and_in_flight_duplicates() {
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let t = token(2, &["read", "write"]).await;
    let key = format!("idem-{}", std::process::id());
    let post = |body: Value, k: &str| {
        http()
            .post(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&t))
            .header("idempotency-key", format!("\"{k}\""))
            .json(&body)
    };
    let first = send(post(json!({"name": "once"}), &key)).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let again = send(post(json!({"name": "once"}), &key)).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("location"), first.header("location"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(odoo.calls_to("res.partner/create"), 1, "written once");
    let other = send(post(json!({"name": "twice"}), &key)).await;
    assert_problem(&other, 422);
    assert_eq!(kind(&other), "idempotency-key-reused");
    assert_eq!(odoo.calls_to("res.partner/create"), 1);
    // Another caller with the same key is another key.
    let t2 = token(2, &["read", "write"]).await;
    let r = send(
        http()
            .post(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&t2))
            .header("idempotency-key", key.as_str())
            .json(&json!({"name": "twice"})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(odoo.calls_to("res.partner/create"), 2);
    // Errors are stored too: the same answer, Odoo called once.
    for _ in 0..2 {
        let r = send(
            http()
                .post(s.url("/api/v1/err.user"))
                .header("authorization", bearer(&t))
                .header("idempotency-key", format!("{key}-err"))
                .json(&json!({})),
        )
        .await;
        assert_problem(&r, 422);
        assert_eq!(r.body["detail"], "You cannot do that.");
        no_traceback(&r);
    }
    assert_eq!(odoo.calls_to("err.user/create"), 1);
    // A duplicate while the first is in flight: 409, and Odoo sees one call.
    let in_flight = format!("{key}-wait");
    let first = tokio::spawn(send(
        http()
            .post(s.url("/api/v1/wait.model"))
            .header("authorization", bearer(&t))
            .header("idempotency-key", in_flight.as_str())
            .json(&json!({"name": "w"})),
    ));
    while odoo.calls_to("wait.model/create") == 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let dup = send(
        http()
            .post(s.url("/api/v1/wait.model"))
            .header("authorization", bearer(&t))
            .header("idempotency-key", in_flight.as_str())
            .json(&json!({"name": "w"})),
    )
    .await;
    assert_problem(&dup, 409);
    assert_eq!(kind(&dup), "idempotency-key-in-flight");
    odoo.state.release.notify_one();
    let first = first.await.unwrap();
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.body, json!({"id": 77}));
    let replay = send(
        http()
            .post(s.url("/api/v1/wait.model"))
            .header("authorization", bearer(&t))
            .header("idempotency-key", in_flight.as_str())
            .json(&json!({"name": "w"})),
    )
    .await;
    assert_eq!(replay.body, json!({"id": 77}));
    assert_eq!(odoo.calls_to("wait.model/create"), 1);
    // A malformed key: 400 before anything.
    let r = send(post(json!({"name": "x"}), "has space")).await;
    assert_problem(&r, 400);
}

#[tokio::test]
async fn idempotency_keys_belong_to_the_api_key_user_or_the_oauth2_client() {
    if !mini() {
        return;
    }
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let db = db().await;
    let key = api_key("demo");
    let uid: i32 = db
        .query_one("SELECT api_gateway.verify_api_key($1, 'rpc')", &[&key])
        .await
        .unwrap()
        .get(0);
    let (client_id, secret) = new_client(2, &["read", "write"], None).await;
    let t = token_for(&client_id, &secret).await;
    let idem = format!("owner-{}", std::process::id());
    for credential in [&key, &t] {
        for _ in 0..2 {
            let r = send(
                http()
                    .post(s.url("/api/v1/res.partner"))
                    .header("authorization", bearer(credential))
                    .header("idempotency-key", idem.as_str())
                    .json(&json!({"name": "owned"})),
            )
            .await;
            assert_eq!(r.status, 201, "{}", r.text);
        }
    }
    // One call per caller; each caller's key is its own row, named as docs/sql.md says.
    assert_eq!(odoo.calls_to("res.partner/create"), 2);
    let rows = db
        .query(
            "SELECT caller, status FROM api_gateway.idempotency WHERE key = $1 ORDER BY caller",
            &[&idem],
        )
        .await
        .unwrap();
    let owners: Vec<(String, Option<i32>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        owners,
        vec![
            (format!("client:{client_id}"), Some(201)),
            (format!("user:{uid}"), Some(201)),
        ]
    );
    // The client's upstream key went to Odoo, the API key user's own key for the other call.
    let sent: Vec<String> = odoo
        .seen()
        .iter()
        .filter_map(|c| c.authorization.clone())
        .collect();
    assert_eq!(sent[0], format!("bearer {key}"));
    assert_ne!(sent[1], format!("bearer {key}"));
    assert!(!sent[1].contains(&t));
}

#[tokio::test]
async fn without_odoo_sql_writes_to_unlisted_models_say_they_go_through_odoo() {
    if !mini() {
        return;
    }
    let s = start().await;
    let t = token(2, &["read", "write"]).await;
    // res.partner.category is not in the fixture's sql_write_models (scripts/lib.sh).
    let r = send(
        http()
            .post(s.url("/api/v1/res.partner.category"))
            .header("authorization", bearer(&t))
            .json(&json!({"name": "agw-tag"})),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["sqlstate"], "0A000");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("res.partner.category") && detail.contains("through Odoo"),
        "{detail}"
    );
}

#[tokio::test]
async fn reads_fill_odoo_only_fields_with_one_json2_read_as_the_caller() {
    if !mini() {
        return;
    }
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let key = api_key("admin");
    let c = http();
    let get = |path: &str, auth: String| send(c.get(s.url(path)).header("authorization", auth));
    // Stored fields only: SQL alone, Odoo is not asked.
    let r = get(
        "/api/v1/res.partner?domain=[(\"id\",\"in\",[1,3])]&fields=name",
        bearer(&key),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(odoo.calls_to("res.partner/read"), 0);
    // A computed field that is not stored and a selection computed in Python: one read for both
    // records, as the caller, in the user's language; merged into SQL's records.
    let r = get(
        "/api/v1/res.partner?domain=[(\"id\",\"in\",[1,3])]&fields=name,email_formatted,company_type&order=id",
        bearer(&key),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["records"],
        json!([
            {"id": 1, "name": "Mini Corp", "email_formatted": "partner1@odoo.example", "company_type": "person"},
            {"id": 3, "name": "Ada Admin", "email_formatted": "partner3@odoo.example", "company_type": "person"},
        ])
    );
    let reads: Vec<Seen> = odoo
        .seen()
        .into_iter()
        .filter(|x| x.path == "res.partner/read")
        .collect();
    assert_eq!(reads.len(), 1, "{reads:?}");
    assert_eq!(
        reads[0].body,
        json!({"ids": [1, 3], "fields": ["email_formatted", "company_type"], "context": {"lang": "en_US"}})
    );
    assert_eq!(
        reads[0].authorization.as_deref(),
        Some(format!("bearer {key}").as_str())
    );
    // One record, with its ETag over the merged body; and a cursor page.
    let r = get("/api/v1/res.partner/3?fields=email_formatted", bearer(&key)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body,
        json!({"id": 3, "email_formatted": "partner3@odoo.example"})
    );
    let tag = r.header("etag").unwrap().to_string();
    let r = send(
        c.get(s.url("/api/v1/res.partner/3?fields=email_formatted"))
            .header("authorization", bearer(&key))
            .header("if-none-match", &tag),
    )
    .await;
    assert_eq!(r.status, 304);
    let r = get(
        "/api/v1/res.partner?domain=[(\"id\",\"=\",3)]&fields=image_128&after=",
        bearer(&key),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["records"][0]["image_128"], json!(STAND_IN_PNG_B64));
    // No record: nothing to ask Odoo.
    let before = odoo.calls_to("res.partner/read");
    let r = get(
        "/api/v1/res.partner?domain=[(\"id\",\"=\",-1)]&fields=email_formatted",
        bearer(&key),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["records"], json!([]));
    assert_eq!(odoo.calls_to("res.partner/read"), before);
    // An OAuth2 client: its upstream key, never the access token.
    let (client_id, secret) = new_client(2, &["read"], None).await;
    let t = token_for(&client_id, &secret).await;
    let r = get("/api/v1/res.partner/3?fields=email_formatted", bearer(&t)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let last = odoo.seen().pop().unwrap();
    assert_eq!(last.path, "res.partner/read");
    let sent = last.authorization.unwrap();
    assert!(!sent.contains(&t) && sent.starts_with("bearer "), "{sent}");
    // A nested read stays in SQL (Odoo fills flat field lists only).
    let before = odoo.seen().len();
    let r = get(
        "/api/v1/res.partner?domain=[(\"id\",\"=\",3)]&fields=name,parent_id{name}",
        bearer(&key),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["records"][0]["name"], "Ada Admin");
    assert_eq!(odoo.seen().len(), before);
    // Unknown fields are still the caller's mistake, before Odoo is asked.
    let before = odoo.seen().len();
    let r = get(
        "/api/v1/res.partner?fields=email_formatted,nope",
        bearer(&key),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(odoo.seen().len(), before);
}

/// Calls of `api_gateway.<function>` counted by the backends of `role` (track_functions is set
/// for that role alone), once none of them is left: a backend flushes its counts as it exits,
/// before it leaves pg_stat_activity.
async fn tracked_calls(role: &str, function: &str) -> i64 {
    let c = db().await;
    for _ in 0..200 {
        let left: i64 = c
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
                &[&role],
            )
            .await
            .unwrap()
            .get(0);
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    c.batch_execute("SELECT pg_stat_clear_snapshot()")
        .await
        .unwrap();
    c.query_one(
        "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_user_functions \
          WHERE schemaname = 'api_gateway' AND funcname = $1",
        &[&function],
    )
    .await
    .unwrap()
    .get(0)
}

/// With --odoo-url, a flat field list SQL reads whole runs the split (`fields_in_sql`,
/// `odoo_fill`: each a check of the security cache) once; later reads of it are the plain
/// statement. A field of it that stops being stored makes the plain read fail once inside the
/// front: the list is forgotten and the read runs split, with Odoo's value.
#[tokio::test]
async fn a_field_list_sql_reads_whole_is_split_once_until_a_field_stops_being_stored() {
    if !mini() {
        return;
    }
    // A role of its own whose backends count their function calls (no other test's do).
    const TRACKED: &str = "agw_front_tracked";
    least_privilege::set_up_role(&database_url(), TRACKED).await;
    let su = db().await;
    su.batch_execute(&format!(
        "ALTER ROLE {TRACKED} SET track_functions = 'all'; \
         UPDATE ir_model_fields SET store = true WHERE model = 'ir.model.access' AND name = 'name'"
    ))
    .await
    .unwrap();
    let url = least_privilege::front_url_as(&database_url(), TRACKED);
    assert!(url.contains(TRACKED), "{url}");
    let odoo = stand_in().await;
    let key = api_key("admin");
    let c = http();
    let path = "/api/v1/ir.model.access?domain=[(\"id\",\"in\",[1,2])]&fields=name&order=id";
    let (split_before, fill_before) = (
        tracked_calls(TRACKED, "fields_in_sql").await,
        tracked_calls(TRACKED, "odoo_fill").await,
    );
    let mut bodies = vec![];
    let (mut front, base) = spawn_front(
        &["--odoo-url", &odoo.url, "--odoo-database", "odoo19"],
        &[("DATABASE_URL", url.as_str())],
    );
    for _ in 0..3 {
        let r = send(
            c.get(format!("{base}{path}"))
                .header("authorization", bearer(&key)),
        )
        .await;
        bodies.push((r.status, r.body["records"].clone(), r.text));
    }
    let _ = front.kill();
    let _ = front.wait();
    for (status, _, text) in &bodies {
        assert_eq!(*status, 200, "{text}");
    }
    let bodies: Vec<Value> = bodies.into_iter().map(|(_, b, _)| b).collect();
    // The front's process is gone: its backends exit and flush what they counted.
    assert_eq!(
        tracked_calls(TRACKED, "fields_in_sql").await - split_before,
        1
    );
    assert_eq!(tracked_calls(TRACKED, "odoo_fill").await - fill_before, 1);
    assert!(bodies.iter().all(|b| *b == bodies[0]), "{bodies:?}");
    assert_eq!(bodies[0][0]["id"], 1);
    assert!(
        bodies[0][0]["name"]
            .as_str()
            .is_some_and(|n| !n.starts_with("Odoo"))
    );
    assert_eq!(odoo.calls_to("ir.model.access/read"), 0);

    // The same list on a front that remembers it, then the field stops being stored.
    let s = gateway(&odoo).await;
    let r = send(c.get(s.url(path)).header("authorization", bearer(&key))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    su.batch_execute(
        "UPDATE ir_model_fields SET store = false WHERE model = 'ir.model.access' AND name = 'name'",
    )
    .await
    .unwrap();
    let r = send(c.get(s.url(path)).header("authorization", bearer(&key))).await;
    su.batch_execute(
        "UPDATE ir_model_fields SET store = true WHERE model = 'ir.model.access' AND name = 'name'",
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.body["records"],
        json!([{"id": 1, "name": "Odoo's name of 1"}, {"id": 2, "name": "Odoo's name of 2"}])
    );
    assert_eq!(odoo.calls_to("ir.model.access/read"), 1);
}

#[tokio::test]
async fn without_odoo_fields_only_odoo_gives_are_refused_naming_them_and_files_are_501() {
    if !mini() {
        return;
    }
    let s = start().await;
    let key = api_key("admin");
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner?fields=name,email_formatted"))
            .header("authorization", bearer(&key)),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["sqlstate"], "22023");
    assert!(r.text.contains("email_formatted"), "{}", r.text);
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner/3/image_128"))
            .header("authorization", bearer(&key)),
    )
    .await;
    assert_problem(&r, 501);
}

#[tokio::test]
async fn odoo_down_while_filling_a_read_is_503() {
    if !mini() {
        return;
    }
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let s = start_with(move |a| a.odoo_url = Some(url)).await;
    let key = api_key("admin");
    for path in [
        "/api/v1/res.partner?fields=name,email_formatted",
        "/api/v1/res.partner/3?fields=email_formatted",
        "/api/v1/res.partner/3/image_128",
    ] {
        let r = send(
            http()
                .get(s.url(path))
                .header("authorization", bearer(&key)),
        )
        .await;
        assert_problem(&r, 503);
        assert_eq!(kind(&r), "upstream-unavailable");
        assert_eq!(r.header("retry-after"), Some("5"));
    }
    // Stored fields need no Odoo.
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner?fields=name"))
            .header("authorization", bearer(&key)),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn binary_fields_download_as_bytes_with_type_name_and_etag() {
    if !mini() {
        return;
    }
    use base64::Engine as _;
    let odoo = stand_in().await;
    let s = gateway(&odoo).await;
    let key = api_key("admin");
    let c = http();
    let r = c
        .get(s.url("/api/v1/res.partner/3/image_128"))
        .header("authorization", bearer(&key))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let bytes = r.bytes().await.unwrap();
    let expected = base64::engine::general_purpose::STANDARD
        .decode(STAND_IN_PNG_B64)
        .unwrap();
    assert_eq!(&bytes[..], &expected[..]);
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(
        h["content-disposition"],
        "attachment; filename=\"image_128\"; filename*=UTF-8''image_128"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-length"], expected.len().to_string().as_str());
    let tag = h["etag"].to_str().unwrap().to_string();
    assert!(tag.starts_with('"'), "{tag}");
    let calls = odoo.seen();
    assert_eq!(calls.last().unwrap().body["fields"], json!(["image_128"]));
    assert_eq!(calls.last().unwrap().body["ids"], json!([3]));
    let r = c
        .get(s.url("/api/v1/res.partner/3/image_128"))
        .header("authorization", bearer(&key))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), tag);
    // Not a binary field, an unknown field, a record that does not exist: Odoo is not asked.
    let before = odoo.seen().len();
    for (path, status) in [
        ("/api/v1/res.partner/3/name", 400),
        ("/api/v1/res.partner/3/no_such_field", 400),
        ("/api/v1/res.partner/999999/image_128", 404),
        ("/api/v1/res.partner/3/Bad-Name", 404),
    ] {
        let r = send(c.get(s.url(path)).header("authorization", bearer(&key))).await;
        assert_problem(&r, status);
    }
    let r = send(c.get(s.url("/api/v1/res.partner/3/image_128"))).await;
    assert_problem(&r, 401);
    assert_eq!(odoo.seen().len(), before);
    // The method routes next to it still route.
    let r = send(
        c.post(s.url("/api/v1/res.partner/3/call/action_confirm"))
            .header("authorization", bearer(&key))
            .json(&json!({})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.post(s.url("/api/v1/res.partner/call/echo"))
            .header("authorization", bearer(&key))
            .json(&json!({"x": 1})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}
