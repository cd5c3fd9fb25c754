//! OAuth2 endpoints: RFC 6749 client credentials, RFC 7009 revocation, RFC 7662 introspection.
use crate::common::*;

#[tokio::test]
async fn token_with_basic_and_with_body_credentials() {
    let s = start().await;
    let (id, secret) = new_client(2, &["read", "write"], None).await;
    let c = http();
    // client_secret_basic (RFC 6749 §2.3.1: id and secret form-encoded inside Basic).
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["token_type"], "Bearer");
    assert_eq!(r.body["scope"], "read write");
    assert!(r.body["expires_in"].as_i64().unwrap() > 0);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(r.header("pragma"), Some("no-cache"));
    let t = r.body["access_token"].as_str().unwrap().to_string();
    let ping = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_eq!(ping.status, 200);

    // client_secret_post, narrower scope.
    let r = send(c.post(s.url("/api/oauth/token")).form(&[
        ("grant_type", "client_credentials"),
        ("client_id", id.as_str()),
        ("client_secret", secret.as_str()),
        ("scope", "read"),
    ]))
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["scope"], "read");
}

#[tokio::test]
async fn token_errors_follow_rfc_6749() {
    let s = start().await;
    let (id, secret) = new_client(2, &["read"], None).await;
    let c = http();
    let token = |form: Vec<(&'static str, String)>| c.post(s.url("/api/oauth/token")).form(&form);
    let check = |r: &Resp, status: u16, error: &str| {
        assert_eq!(r.status, status, "{}", r.text);
        assert_eq!(r.body["error"], error, "{}", r.text);
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(r.header("cache-control"), Some("no-store"));
        let d = r.body["error_description"].as_str().unwrap_or("");
        assert!(
            d.chars()
                .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
            "{d}"
        );
    };
    // Wrong secret with Basic: 401 and WWW-Authenticate: Basic.
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some("wrong"))
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    check(&r, 401, "invalid_client");
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .starts_with("Basic realm=\"api\"")
    );
    // Wrong secret in the body.
    let r = send(token(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", id.clone()),
        ("client_secret", "wrong".into()),
    ]))
    .await;
    check(&r, 401, "invalid_client");
    // Unknown client, no credentials.
    let r = send(token(vec![("grant_type", "client_credentials".into())])).await;
    check(&r, 401, "invalid_client");
    // Both methods at once.
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", id.as_str()),
            ]),
    )
    .await;
    check(&r, 400, "invalid_request");
    // Missing / unsupported grant type.
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("scope", "read")]),
    )
    .await;
    check(&r, 400, "invalid_request");
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[("grant_type", "password")]),
    )
    .await;
    check(&r, 400, "unsupported_grant_type");
    // A scope beyond the client's.
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "read delete"),
            ]),
    )
    .await;
    check(&r, 400, "invalid_scope");
    // JSON instead of a form; a repeated parameter.
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .json(&serde_json::json!({"grant_type": "client_credentials"})),
    )
    .await;
    check(&r, 400, "invalid_request");
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .basic_auth(&id, Some(&secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials&grant_type=client_credentials"),
    )
    .await;
    check(&r, 400, "invalid_request");
    // Garbage Basic.
    let r = send(
        c.post(s.url("/api/oauth/token"))
            .header("authorization", "Basic !!!")
            .form(&[("grant_type", "client_credentials")]),
    )
    .await;
    check(&r, 401, "invalid_client");
}

#[tokio::test]
async fn revoke_answers_200_and_kills_the_token() {
    let s = start().await;
    let c = http();
    // Unknown tokens: 200 (RFC 7009 §2.2).
    let r = send(
        c.post(s.url("/api/oauth/revoke"))
            .form(&[("token", "nonsense")]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.post(s.url("/api/oauth/revoke"))
            .form(&[("token_type_hint", "access_token")]),
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.body["error"], "invalid_request");

    // A client may not revoke another client's token.
    let (id_a, secret_a) = new_client(2, &["read"], None).await;
    let (id_b, secret_b) = new_client(2, &["read"], None).await;
    let tb = token_for(&id_b, &secret_b).await;
    let r = send(
        c.post(s.url("/api/oauth/revoke"))
            .basic_auth(&id_a, Some(&secret_a))
            .form(&[("token", tb.as_str())]),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.body["error"], "unauthorized_client");
    let ok = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&tb)),
    )
    .await;
    assert_eq!(ok.status, 200);
    // Bad client credentials: 401.
    let r = send(
        c.post(s.url("/api/oauth/revoke"))
            .basic_auth(&id_b, Some("wrong"))
            .form(&[("token", tb.as_str())]),
    )
    .await;
    assert_eq!(r.status, 401);
    // Its own client may.
    let r = send(
        c.post(s.url("/api/oauth/revoke"))
            .basic_auth(&id_b, Some(&secret_b))
            .form(&[("token", tb.as_str())]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = send(
        c.get(s.url("/api/v1/ping"))
            .header("authorization", bearer(&tb)),
    )
    .await;
    assert_problem(&r, 401);
}

#[tokio::test]
async fn introspect_needs_authentication_and_answers_rfc_7662() {
    let s = start().await;
    let c = http();
    let (id, secret) = new_client(2, &["read", "write"], None).await;
    let t = token_for(&id, &secret).await;
    // No authentication: 401.
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .form(&[("token", t.as_str())]),
    )
    .await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(r.body["error"], "invalid_client");
    assert!(r.header("www-authenticate").is_some());
    // Client credentials.
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", t.as_str())]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], true);
    assert_eq!(r.body["client_id"], id.as_str());
    assert_eq!(r.body["sub"], "2");
    assert!(r.body["scope"].as_str().unwrap().contains("read"));
    assert!(r.body["exp"].as_i64().unwrap() > r.body["iat"].as_i64().unwrap());
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // A bearer token of any scope (here write only).
    let w = token(2, &["write"]).await;
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .header("authorization", bearer(&w))
            .form(&[("token", t.as_str())]),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["active"], true);
    // Unknown token: just active=false.
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", "garbage")]),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, serde_json::json!({"active": false}));
    // A bad bearer: 401 with the RFC 6750 challenge.
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .header("authorization", "Bearer nope")
            .form(&[("token", t.as_str())]),
    )
    .await;
    assert_eq!(r.status, 401);
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_token")
    );
    // Wrong client secret: 401.
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .basic_auth(&id, Some("nope"))
            .form(&[("token", t.as_str())]),
    )
    .await;
    assert_eq!(r.status, 401);
    // After revocation: inactive.
    send(
        c.post(s.url("/api/oauth/revoke"))
            .form(&[("token", t.as_str())]),
    )
    .await;
    let r = send(
        c.post(s.url("/api/oauth/introspect"))
            .basic_auth(&id, Some(&secret))
            .form(&[("token", t.as_str())]),
    )
    .await;
    assert_eq!(r.body, serde_json::json!({"active": false}));
}
