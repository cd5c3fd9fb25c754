//! Issue 19, findings of the security review of the running front: long domain paths, slow and
//! idle connections, the connection cap, two credentials, problem bodies on hyper's own
//! answers, the unknown-parameter message. No timed assertions: bounds are generous and only
//! tell a closed connection from one kept open forever.
use crate::common::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Read until the server closes the connection (or `within` passes: None).
async fn read_until_closed(s: &mut TcpStream, within: Duration) -> Option<String> {
    let mut buf = Vec::new();
    match tokio::time::timeout(within, s.read_to_end(&mut buf)).await {
        Ok(Ok(_)) => Some(String::from_utf8_lossy(&buf).into_owned()),
        // a reset is a close too
        Ok(Err(_)) => Some(String::from_utf8_lossy(&buf).into_owned()),
        Err(_) => None,
    }
}

#[tokio::test]
async fn a_domain_path_beyond_the_depth_limit_is_400_naming_the_limit() {
    if !mini() {
        return;
    }
    // the review's reproduction, with a statement timeout long enough that the old code
    // answered 200 (or 504) after planning for seconds
    let s = start_with(|a| a.statement_timeout_ms = 60_000).await;
    let path = "child_ids.parent_id.".repeat(30);
    let domain = format!("[('{path}name','=','x')]");
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner"))
            .query(&[("domain", domain.as_str())])
            .header("authorization", bearer(&api_key("portal"))),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(r.body["sqlstate"], "22023", "{}", r.text);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("60 relations") && detail.contains("at most 8"),
        "{detail}"
    );
    // nested `any` is bounded the same way
    let mut nested = "('name','=','x')".to_string();
    for k in 0..20 {
        let field = if k % 2 == 0 { "parent_id" } else { "child_ids" };
        nested = format!("('{field}','any',[{nested}])");
    }
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner"))
            .query(&[("domain", format!("[{nested}]").as_str())])
            .header("authorization", bearer(&api_key("portal"))),
    )
    .await;
    assert_problem(&r, 400);
    assert!(r.text.contains("too complex"), "{}", r.text);
    // a path within the limit still works
    let r = send(
        http()
            .get(s.url("/api/v1/res.partner"))
            .query(&[("domain", "[('parent_id.parent_id.name','!=','x')]")])
            .header("authorization", bearer(&api_key("portal"))),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}

#[tokio::test]
async fn a_slow_header_is_cut_off_after_the_header_timeout() {
    let s = start_with(|a| {
        a.header_timeout_ms = 300;
        a.idle_timeout_s = 0;
    })
    .await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    // one byte of a request line, then nothing: the old front waited forever
    c.write_all(b"G").await.unwrap();
    let got = read_until_closed(&mut c, Duration::from_secs(20)).await;
    assert!(got.is_some(), "the connection is still open after 20 s");
    // an idle keep-alive connection is closed too, after a complete request
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let got = read_until_closed(&mut c, Duration::from_secs(20))
        .await
        .expect("closed after the keep-alive wait");
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
}

#[tokio::test]
async fn a_connection_where_nothing_moves_is_closed_after_the_idle_timeout() {
    let s = start_with(|a| {
        a.header_timeout_ms = 0;
        a.idle_timeout_s = 1;
    })
    .await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    c.write_all(b"GET /health/live HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert!(
        read_until_closed(&mut c, Duration::from_secs(20))
            .await
            .is_some(),
        "the idle connection is still open after 20 s"
    );
}

#[tokio::test]
async fn a_body_slower_than_the_body_timeout_gets_408() {
    let s = start_with(|a| a.body_timeout_ms = 300).await;
    let mut c = TcpStream::connect(s.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/res.partner HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"name\":",
        api_key("admin")
    );
    c.write_all(head.as_bytes()).await.unwrap();
    let got = read_until_closed(&mut c, Duration::from_secs(20))
        .await
        .expect("answered and closed");
    assert!(got.starts_with("HTTP/1.1 408"), "{got}");
    assert!(got.contains("application/problem+json"), "{got}");
    assert!(got.contains("request-timeout"), "{got}");
}

#[tokio::test]
async fn connections_beyond_the_cap_get_503_while_the_cap_holds() {
    let s = start_with(|a| {
        a.max_connections = 2;
        a.header_timeout_ms = 60_000;
        a.idle_timeout_s = 0;
    })
    .await;
    let held1 = TcpStream::connect(s.addr).await.unwrap();
    let mut held2 = TcpStream::connect(s.addr).await.unwrap();
    // make sure both are accepted (the second answers a request and stays open)
    held2
        .write_all(b"GET /health/live HTTP/1.1\r\nHost: t\r\n\r\n")
        .await
        .unwrap();
    let mut first = [0u8; 12];
    held2.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let mut extra = TcpStream::connect(s.addr).await.unwrap();
    let got = read_until_closed(&mut extra, Duration::from_secs(20))
        .await
        .expect("refused and closed");
    assert!(got.starts_with("HTTP/1.1 503"), "{got}");
    let body = got.split_once("\r\n\r\n").unwrap().1;
    let v: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["status"], 503, "{body}");
    // once a held connection goes, a new one is served again
    drop(held1);
    let mut served = false;
    for _ in 0..100 {
        let r = raw(s.addr, &raw_request("GET", "/health/live", "", b"")).await;
        if r.status == 200 {
            served = true;
            break;
        }
        assert_eq!(r.status, 503, "{}", r.body);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "no connection was served after one was freed");
    drop(held2);
}

#[tokio::test]
async fn two_authorization_headers_are_refused_not_first_wins() {
    let s = start().await;
    let extra = format!(
        "Authorization: Bearer {}\r\nAuthorization: Bearer {}\r\n",
        api_key("admin"),
        api_key("portal")
    );
    let r = raw(s.addr, &raw_request("GET", "/api/v1/ping", &extra, b"")).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"], "invalid_request", "{}", r.body);
    assert!(
        v["detail"]
            .as_str()
            .unwrap()
            .contains("2 Authorization headers")
    );
    assert!(
        r.header("www-authenticate")
            .unwrap()
            .contains("invalid_request")
    );
}

#[tokio::test]
async fn uri_and_header_size_refusals_have_problem_bodies() {
    let s = start().await;
    let long = format!("/api/v1/res.partner?domain={}", "x".repeat(70_000));
    let r = raw(s.addr, &raw_request("GET", &long, "", b"")).await;
    assert_eq!(r.status, 414, "{}", r.head);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(r.json()["status"], 414, "{}", r.body);
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = raw(s.addr, &raw_request("GET", "/health/live", &many, b"")).await;
    assert_eq!(r.status, 431, "{}", r.head);
    assert_eq!(r.json()["status"], 431, "{}", r.body);
    assert!(
        r.json()["type"]
            .as_str()
            .unwrap()
            .ends_with("headers-too-large")
    );
}

#[tokio::test]
async fn an_unknown_parameter_on_create_says_the_route_takes_none() {
    let s = start().await;
    let r = send(
        http()
            .post(s.url("/api/v1/res.partner?nope=1"))
            .header("authorization", bearer(&api_key("admin")))
            .json(&serde_json::json!({"name": "sec-never-created"})),
    )
    .await;
    assert_problem(&r, 400);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.ends_with("this route takes no query parameters"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_900_kb_name_is_a_4xx_problem_never_500() {
    let s = start().await;
    // letters that do not compress, so the btree index on name cannot take them
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let name: String = (0..900 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let r = send(
        http()
            .post(s.url("/api/v1/res.partner"))
            .header("authorization", bearer(&api_key("admin")))
            .json(&serde_json::json!({ "name": format!("sec-{name}") })),
    )
    .await;
    assert!(
        (400..500).contains(&r.status),
        "{} {}",
        r.status,
        r.text.chars().take(300).collect::<String>()
    );
    assert_problem(&r, r.status);
}
