//! The bad-input and security list of issue 5: each gives the right 4xx with a problem body, and
//! nothing changes in the database.
use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn path_traversal_and_odd_model_names() {
    let s = start().await;
    let t = token(2, &["read", "write", "delete"]).await;
    let auth = format!("Authorization: Bearer {t}\r\n");
    let before = fingerprint().await;
    let paths = [
        ("GET", "/api/v1/../../etc/passwd"),
        ("GET", "/api/v1/%2e%2e/%2e%2e/etc/passwd"),
        ("GET", "/api/v1/..%2f..%2fetc%2fpasswd"),
        ("GET", "/api/v1/res.partner/..%2f..%2f1"),
        ("GET", "/api/v1/.."),
        ("GET", "/api/v1/."),
        ("GET", "/api/v1/RES.PARTNER"),
        ("GET", "/api/v1/res..partner"),
        ("GET", "/api/v1/res.partner."),
        ("GET", "/api/v1/res.partner%00"),
        ("GET", "/api/v1/res.partner;select%201"),
        ("GET", "/api/v1/res_partner'--"),
        ("GET", "/api/v1/res%20partner"),
        ("GET", "/api/v1/%ff%fe"),
        ("GET", "/api/v1/r%C3%A9s.partner"),
        ("GET", "/api/v1/pg_catalog.pg_authid"),
        ("GET", "/api/v1/api_gateway.client"),
        ("GET", "/api/v1/res.partner/0"),
        ("GET", "/api/v1/res.partner/-1"),
        ("GET", "/api/v1/res.partner/1e3"),
        ("GET", "/api/v1/res.partner/99999999999"),
        ("GET", "/api/v1/res.partner/1%20OR%201=1"),
        ("DELETE", "/api/v1/res.partner/1;DELETE"),
        ("DELETE", "/api/v1/..%2fres.partner/3"),
        ("GET", "/api/v1/res.partner/3/4"),
        ("GET", "/etc/passwd"),
        ("GET", "/api/v1/"),
    ];
    for (method, path) in paths {
        let r = raw(s.addr, &raw_request(method, path, &auth, b"")).await;
        assert!(
            (400..500).contains(&r.status),
            "{method} {path}: {} {}",
            r.status,
            r.body
        );
        assert_eq!(
            r.header("content-type").as_deref(),
            Some("application/problem+json"),
            "{method} {path}: {}",
            r.body
        );
        let body = r.json();
        assert_eq!(body["status"], r.status, "{path}");
        assert!(
            !r.body.contains("root:") && !r.body.contains("secret_hash"),
            "{path}: {}",
            r.body
        );
    }
    assert_eq!(fingerprint().await, before);
}

#[tokio::test]
async fn huge_deep_and_malformed_bodies() {
    let s = start_with(|a| a.body_limit = 64 * 1024).await;
    let t = token(2, &["read", "write"]).await;
    let auth = bearer(&t);
    let c = http();
    let before = fingerprint().await;
    let post = |body: Vec<u8>, ct: &str| {
        c.post(s.url("/api/v1/res.partner"))
            .header("authorization", &auth)
            .header("content-type", ct.to_string())
            .body(body)
    };
    // Over the body limit: 413.
    let big = format!(
        "{{\"name\": \"sec-big\", \"comment\": \"{}\"}}",
        "x".repeat(100 * 1024)
    );
    let r = send(post(big.into_bytes(), "application/json")).await;
    assert_problem(&r, 413);
    assert_eq!(kind(&r), "payload-too-large");
    // Deeply nested: refused by the parser's nesting limit.
    let deep = format!(
        "{{\"name\": \"sec-deep\", \"comment\": {}1{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let r = send(post(deep.into_bytes(), "application/json")).await;
    assert_problem(&r, 400);
    assert_eq!(kind(&r), "invalid-json");
    // Malformed: 400 with the position.
    let r = send(post(
        b"{\n \"name\": \"sec-x\",\n}".to_vec(),
        "application/json",
    ))
    .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["line"], 3);
    assert_eq!(r.body["column"], 1);
    // Invalid UTF-8.
    let r = send(post(
        b"{\"name\": \"sec-\xff\xfe\"}".to_vec(),
        "application/json",
    ))
    .await;
    assert_problem(&r, 400);
    assert_eq!(kind(&r), "invalid-json");
    assert_eq!(r.body["line"], 1);
    // Not JSON: 415; JSON but not an object: 400.
    let r = send(post(
        b"name=sec-form".to_vec(),
        "application/x-www-form-urlencoded",
    ))
    .await;
    assert_problem(&r, 415);
    let r = send(post(
        b"{\"name\":\"sec-latin\"}".to_vec(),
        "application/json; charset=latin1",
    ))
    .await;
    assert_problem(&r, 415);
    for body in ["[{\"name\": \"sec-array\"}]", "\"sec-string\"", "null", ""] {
        let r = send(post(body.as_bytes().to_vec(), "application/json")).await;
        assert_problem(&r, 400);
    }
    // No content type at all.
    let r = send(
        c.post(s.url("/api/v1/res.partner"))
            .header("authorization", &auth)
            .body("{\"name\": \"sec-noct\"}"),
    )
    .await;
    assert_problem(&r, 415);
    // Values the data layer refuses: unknown fields, wrong types.
    for body in [
        json!({"name": "sec-unknown", "no_such_field": 1}),
        json!({"name": "sec-type", "is_company": {"nested": [1, 2]}}),
    ] {
        let r = send(post(body.to_string().into_bytes(), "application/json")).await;
        assert!(
            r.status == 400 || r.status == 422,
            "{body}: {} {}",
            r.status,
            r.text
        );
        assert_problem(&r, r.status);
    }
    // A huge query string.
    let r = send(
        c.get(s.url(&format!(
            "/api/v1/res.partner?domain={}",
            "%5B".repeat(20000)
        )))
        .header("authorization", &auth),
    )
    .await;
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert_eq!(fingerprint().await, before);
}

#[tokio::test]
async fn bad_query_parameters() {
    let s = start().await;
    let t = token(2, &["read"]).await;
    let auth = bearer(&t);
    for q in [
        "limit=-1",
        "limit=abc",
        "limit=99999999999",
        "offset=-5",
        "count=maybe",
        "limit=1&limit=2",
        "unknown=1",
        "domain=%ff",
        "domain=%00",
    ] {
        let r = send(
            http()
                .get(s.url(&format!("/api/v1/res.partner?{q}")))
                .header("authorization", &auth),
        )
        .await;
        assert_problem(&r, 400);
        assert_eq!(kind(&r), "invalid-parameter", "{q}");
    }
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner/3?limit=1"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 400);
}

#[tokio::test]
async fn requests_without_a_token_or_with_a_bad_one() {
    let s = start().await;
    let before = fingerprint().await;
    let c = http();
    let routes = [
        ("GET", "/api/v1/ping"),
        ("GET", "/api/v1/res.partner"),
        ("GET", "/api/v1/res.partner/3"),
        ("POST", "/api/v1/res.partner"),
        ("PUT", "/api/v1/res.partner/3"),
        ("PATCH", "/api/v1/res.partner/3"),
        ("DELETE", "/api/v1/res.partner/3"),
    ];
    for (method, path) in routes {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let r = send(
            c.request(m.clone(), s.url(path))
                .header("content-type", "application/json")
                .body("{\"name\": \"sec-anon\"}"),
        )
        .await;
        assert_problem(&r, 401);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"api\""),
            "{path}"
        );
        assert_eq!(kind(&r), "unauthorized");
        for (header, expect_kind) in [
            ("Bearer not-a-key", "invalid-token"),
            ("Bearer a.b.c", "invalid-token"),
            ("Basic YWxhZGRpbjpvcGVuc2VzYW1l", "invalid-authorization"),
            ("Bearer", "invalid-authorization"),
        ] {
            let r = send(
                c.request(m.clone(), s.url(path))
                    .header("authorization", header)
                    .header("content-type", "application/json")
                    .body("{\"name\": \"sec-bad\"}"),
            )
            .await;
            assert_problem(&r, 401);
            assert_eq!(
                kind(&r),
                expect_kind,
                "{method} {path} {header}: {}",
                r.text
            );
            let challenge = r.header("www-authenticate").unwrap();
            assert!(
                challenge.starts_with("Bearer realm=\"api\", error=\""),
                "{challenge}"
            );
        }
    }
    // Non-ASCII bytes in the header.
    let r = raw(
        s.addr,
        &raw_request(
            "GET",
            "/api/v1/ping",
            "Authorization: Bearer \u{ff}\u{fe}\r\n",
            b"",
        ),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(fingerprint().await, before);
}

#[tokio::test]
async fn expired_and_revoked_tokens_are_refused() {
    let s = start().await;
    let c = http();
    // Revoked through the RFC 7009 endpoint.
    let t = token(2, &["read"]).await;
    let ok = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_eq!(ok.status, 200);
    let r = send(
        c.post(s.url("/api/oauth/revoke"))
            .form(&[("token", t.as_str())]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.get(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_problem(&r, 401);
    assert_eq!(kind(&r), "invalid-token");
    assert!(
        r.body["detail"].as_str().unwrap().contains("revoked"),
        "{}",
        r.text
    );
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("error=\"invalid_token\"")
    );

    // Expired: a token of ours whose exp is past (signed like the gateway signs).
    let expired = expired_token().await;
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&expired)),
    )
    .await;
    assert_problem(&r, 401);
    assert_eq!(kind(&r), "invalid-token");
    assert!(
        r.body["detail"].as_str().unwrap().contains("expired"),
        "{}",
        r.text
    );

    // An expired Odoo API key.
    if mini() {
        let r = send(
            c.get(s.url("/api/v1/ping"))
                .header("authorization", bearer(&api_key("demo_expired"))),
        )
        .await;
        assert_problem(&r, 401);
        assert_eq!(kind(&r), "invalid-token");
    }
}

/// A JWT with `exp` two minutes ago, registered in api_gateway.token like an issued one.
async fn expired_token() -> String {
    use base64::Engine;
    let (client_id, _) = new_client(2, &["read"], None).await;
    let db = db().await;
    let row = db
        .query_one(
            "SELECT jwt_kid, jwt_secret, jwt_issuer FROM api_gateway.settings",
            &[],
        )
        .await
        .unwrap();
    let (kid, secret, iss): (String, String, String) = (row.get(0), row.get(1), row.get(2));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let jti = format!("it-expired-{now}-{}", std::process::id());
    let claims = json!({"iss": iss, "sub": "2", "client_id": client_id, "scope": "read",
                        "iat": now - 3720, "exp": now - 120, "jti": jti});
    let header = json!({"alg": "HS256", "typ": "at+jwt", "kid": kid});
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let signing_input = format!("{}.{}", b64(&header), b64(&claims));
    let sig = {
        use hmac::Mac;
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(signing_input.as_bytes());
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    };
    db.execute(
        "INSERT INTO api_gateway.token (jti, client_id, user_id, scopes, kid, issued_at, expires_at) \
         VALUES ($1, $2, 2, '{read}', $3, now() - interval '62 minutes', now() - interval '2 minutes')",
        &[&jti, &client_id, &kid],
    )
    .await
    .unwrap();
    format!("{signing_input}.{sig}")
}

#[tokio::test]
async fn another_users_records_are_invisible() {
    if !mini() {
        return;
    }
    let s = start().await;
    let before = fingerprint().await;
    let c = http();
    // demo (uid 5, company 1 only) cannot see partner 16 (Blue Fjord AS, company 2).
    let demo = token(5, &["read", "write", "delete"]).await;
    let auth = bearer(&demo);
    let r = send(
        c.get(s.url("/api/v1/res.partner/16"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 404);
    let r = send(
        c.get(s.url("/api/v1/res.partner?domain=%5B('id'%2C'%3D'%2C16)%5D"))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["records"], json!([]));
    let r = send(
        c.patch(s.url("/api/v1/res.partner/16"))
            .header("authorization", &auth)
            .json(&json!({"name": "sec-hijack"})),
    )
    .await;
    assert!(r.status == 403 || r.status == 404, "{}", r.text);
    assert_problem(&r, r.status);
    let r = send(
        c.delete(s.url("/api/v1/res.partner/16"))
            .header("authorization", &auth),
    )
    .await;
    assert!(r.status == 403 || r.status == 404, "{}", r.text);
    assert_problem(&r, r.status);
    // The admin still sees it, unchanged.
    let admin = token(2, &["read"]).await;
    let r = send(
        c.get(s.url("/api/v1/res.partner/16?fields=name"))
            .header("authorization", bearer(&admin)),
    )
    .await;
    assert_eq!(r.body["name"], "Blue Fjord AS");
    assert_eq!(fingerprint().await, before);
}

#[tokio::test]
async fn a_read_scope_cannot_write_or_delete() {
    let s = start().await;
    let before = fingerprint().await;
    let c = http();
    let t = token(2, &["read"]).await;
    let auth = bearer(&t);
    let r = send(
        c.delete(s.url("/api/v1/res.partner/3"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 403);
    assert_eq!(kind(&r), "insufficient-scope");
    let challenge = r.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    assert!(challenge.contains("scope=\"delete\""), "{challenge}");
    for (m, path) in [
        ("POST", "/api/v1/res.partner"),
        ("PATCH", "/api/v1/res.partner/3"),
        ("PUT", "/api/v1/res.partner/3"),
    ] {
        let r = send(
            c.request(
                reqwest::Method::from_bytes(m.as_bytes()).unwrap(),
                s.url(path),
            )
            .header("authorization", &auth)
            .json(&json!({"name": "sec-scope"})),
        )
        .await;
        assert_problem(&r, 403);
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("scope=\"write\"")
        );
    }
    // A write-only client cannot read.
    let w = token(2, &["write"]).await;
    let r = send(
        c.get(s.url("/api/v1/res.partner/3"))
            .header("authorization", bearer(&w)),
    )
    .await;
    assert_problem(&r, 403);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("scope=\"read\"")
    );
    assert_eq!(fingerprint().await, before);
}

#[tokio::test]
async fn a_client_outside_its_ip_list_is_refused() {
    // The front trusts X-Forwarded-For from 127.0.0.1 only.
    let s = start_with(|a| a.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let before = fingerprint().await;
    let c = http();
    let (id, secret) = new_client(2, &["read", "delete"], Some(&["203.0.113.0/24"])).await;
    // Token endpoint: from an allowed address via the proxy, then from elsewhere.
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.7")
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = r.body["access_token"].as_str().unwrap().to_string();
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.body["error"], "access_denied");

    let call = |xff: Option<&'static str>| {
        let mut req = c
            .delete(s.url("/api/v1/res.partner/3"))
            .header("authorization", bearer(&t));
        if let Some(x) = xff {
            req = req.header("x-forwarded-for", x);
        }
        req
    };
    // The socket address (127.0.0.1) is outside the list.
    let r = send(call(None)).await;
    assert_problem(&r, 403);
    assert_eq!(kind(&r), "ip-not-allowed");
    // A spoofed left-most X-Forwarded-For entry is not believed.
    let r = send(call(Some("203.0.113.9, 198.51.100.1"))).await;
    assert_problem(&r, 403);
    assert_eq!(kind(&r), "ip-not-allowed");
    // Read through the proxy from an allowed address works.
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&t))
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Without trusted proxies, X-Forwarded-For is ignored.
    let plain = start().await;
    let r = send(
        c.get(plain.url("/api/v1/ping"))
            .header("authorization", bearer(&t))
            .header("x-forwarded-for", "203.0.113.9"),
    )
    .await;
    assert_problem(&r, 403);
    assert_eq!(fingerprint().await, before);
}

#[tokio::test]
async fn rate_limit_gives_429_with_retry_after() {
    // uid 8 (jeff): a limit of 3 per minute, counter reset; no other test calls as him meanwhile.
    if !mini() {
        return;
    }
    let _jeff = JEFF.lock().await;
    let s = start().await;
    let db = db().await;
    db.batch_execute(
        "INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window) VALUES (8, 3, 'minute') \
         ON CONFLICT (user_id) DO UPDATE SET rate_limit = 3, rate_limit_window = 'minute', active = true, allowed_ips = NULL; \
         DELETE FROM api_gateway.throttle WHERE subject = 'user:8'; \
         SELECT api_gateway._forget_shared_counter('user:8')",
    )
    .await
    .unwrap();
    let t = token(8, &["read"]).await;
    let c = http();
    let mut statuses = vec![];
    let mut last = None;
    for _ in 0..4 {
        let r = send(
            c.get(s.url("/api/v1/ping"))
                .header("authorization", bearer(&t)),
        )
        .await;
        statuses.push(r.status);
        assert_eq!(r.header("ratelimit-policy"), Some("\"default\";q=3;w=60"));
        last = Some(r);
    }
    assert_eq!(statuses, vec![200, 200, 200, 429]);
    let r = last.unwrap();
    assert_problem(&r, 429);
    assert_eq!(
        r.body["type"],
        "https://iana.org/assignments/http-problem-types#quota-exceeded"
    );
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    // The sliding window: until the oldest request leaves, at most the window plus one
    // sub-bucket (1 s of a minute).
    assert!((1..=61).contains(&retry), "{retry}");
    assert!(
        r.header("ratelimit")
            .unwrap()
            .starts_with("\"default\";r=0;t=")
    );
    db.batch_execute(
        "DELETE FROM api_gateway.profile WHERE user_id = 8; DELETE FROM api_gateway.throttle WHERE subject = 'user:8'; \
         SELECT api_gateway._forget_shared_counter('user:8')",
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn an_inactive_profile_is_refused() {
    // uid 6 (portal) is used by this test only.
    if !mini() {
        return;
    }
    let s = start().await;
    let db = db().await;
    db.batch_execute(
        "INSERT INTO api_gateway.profile (user_id, active) VALUES (6, false) \
         ON CONFLICT (user_id) DO UPDATE SET active = false",
    )
    .await
    .unwrap();
    let r = send(
        http()
            .get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&api_key("portal"))),
    )
    .await;
    db.batch_execute("DELETE FROM api_gateway.profile WHERE user_id = 6")
        .await
        .unwrap();
    assert_problem(&r, 403);
    assert_eq!(kind(&r), "profile-inactive");
}

#[tokio::test]
async fn methods_and_routes_that_do_not_exist() {
    let s = start().await;
    let c = http();
    let r = send(c.post(s.url("/api/v1/res.partner/3"))).await;
    assert_problem(&r, 405);
    assert!(r.header("allow").unwrap().contains("GET"));
    let r = send(c.request(reqwest::Method::OPTIONS, s.url("/api/v1/res.partner"))).await;
    assert_problem(&r, 405);
    let r = send(c.get(s.url("/nope"))).await;
    assert_problem(&r, 404);
    let r = send(c.get(s.url("/api/oauth/token"))).await;
    assert_problem(&r, 405);
}

/// `--auth-failure-limit`: once an address has failed authentication `limit` times, its requests
/// take turns (one in the gate at a time); one that cannot get its turn within the wait gets a
/// 429 problem without a database call, while other addresses are untouched. The test holds the
/// address's only turn itself, so no outcome depends on timing (durations are only checked to
/// be at least the configured waits).
#[tokio::test]
async fn an_address_that_keeps_failing_authentication_takes_turns() {
    use api_gateway_front::guard::AuthGuard;
    use std::sync::Arc;
    use std::time::Duration;
    prepare().await;
    let mut args = args();
    args.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    let pool = api_gateway_front::db::pool(&args, false).unwrap();
    let mut state = api_gateway_front::AppState::new(pool, &args);
    let wait = Duration::from_millis(300);
    let delay = Duration::from_millis(200);
    let guard = Arc::new(AuthGuard::new(3, Duration::from_secs(60), 1, wait, delay));
    state.auth_guard = guard.clone();
    let app = api_gateway_front::app(state);
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
    let flooding = "203.0.113.9";
    let get = |from: &str, credential: &str| {
        http()
            .get(format!("http://{addr}/api/v1/ping"))
            .header("x-forwarded-for", from)
            .header("authorization", format!("Bearer {credential}"))
    };
    for _ in 0..3 {
        let r = send(get(flooding, "not-a-token")).await;
        assert_problem(&r, 401);
        assert_eq!(kind(&r), "invalid-token");
    }
    // Its only turn is taken (as by a request still in the gate): the next one waits, then 429.
    let turn = guard
        .admit(Some(flooding.parse().unwrap()))
        .await
        .unwrap()
        .expect("the address is throttled after 3 failures");
    let started = std::time::Instant::now();
    let r = send(get(flooding, "not-a-token")).await;
    assert_problem(&r, 429);
    assert_eq!(kind(&r), "too-many-auth-failures");
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() >= wait,
        "refused only after waiting for its turn"
    );
    // Another address is not affected, valid or not.
    let valid = token(2, &["read"]).await;
    assert_eq!(send(get("198.51.100.1", &valid)).await.status, 200);
    assert_problem(&send(get("198.51.100.1", "not-a-token")).await, 401);
    // Once the turn is free, the throttled address is served again, one request at a time:
    // a valid client behind it gets through, and a failure keeps the turn `delay` longer
    // before its 401 goes out.
    drop(turn);
    assert_eq!(send(get(flooding, &valid)).await.status, 200);
    let started = std::time::Instant::now();
    assert_problem(&send(get(flooding, "not-a-token")).await, 401);
    assert!(started.elapsed() >= delay, "a throttled failure is delayed");
}
