//! Conditional requests (RFC 9110 §13): strong ETags on record and list reads, If-None-Match
//! (weak comparison, 304 without a body), If-Match (strong comparison, 412, checked with the
//! write on the locked row).
use crate::common::*;
use serde_json::json;

async fn new_partner(s: &Server, auth: &str, name: &str) -> i64 {
    let r = send(
        http()
            .post(s.url("/api/v1/res.partner"))
            .header("authorization", auth)
            .json(&json!({"name": name})),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn reads_carry_strong_etags_and_if_none_match_answers_304() {
    let s = start().await;
    let auth = bearer(&token(2, &["read", "write", "delete"]).await);
    let c = http();
    let id = new_partner(&s, &auth, "it-etag Grace").await;
    let url = s.url(&format!("/api/v1/res.partner/{id}?fields=name"));

    let r = send(c.get(&url).header("authorization", &auth)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let tag = r.header("etag").unwrap().to_string();
    assert!(tag.starts_with('"') && !tag.starts_with("W/"), "{tag}");
    // Same representation, same tag; another field selection, another tag.
    let again = send(c.get(&url).header("authorization", &auth)).await;
    assert_eq!(again.header("etag"), Some(tag.as_str()));
    let other = send(
        c.get(s.url(&format!("/api/v1/res.partner/{id}?fields=name,email")))
            .header("authorization", &auth),
    )
    .await;
    assert_ne!(other.header("etag"), Some(tag.as_str()));

    // If-None-Match: the tag, its weak form, a list holding it, or * → 304 with no body.
    for cond in [
        tag.clone(),
        format!("W/{tag}"),
        format!("\"nope\", {tag}"),
        "*".to_string(),
    ] {
        let r = send(
            c.get(&url)
                .header("authorization", &auth)
                .header("if-none-match", &cond),
        )
        .await;
        assert_eq!(r.status, 304, "{cond}: {}", r.text);
        assert!(r.text.is_empty());
        assert_eq!(r.header("etag"), Some(tag.as_str()));
        assert!(r.header("ratelimit").is_some());
    }
    let r = send(
        c.get(&url)
            .header("authorization", &auth)
            .header("if-none-match", "\"nope\""),
    )
    .await;
    assert_eq!(r.status, 200);

    // A change of the record changes its tag: the old one no longer gives 304.
    let w = send(
        c.patch(s.url(&format!("/api/v1/res.partner/{id}")))
            .header("authorization", &auth)
            .json(&json!({"name": "it-etag Grace Hopper"})),
    )
    .await;
    assert_eq!(w.status, 204, "{}", w.text);
    let r = send(
        c.get(&url)
            .header("authorization", &auth)
            .header("if-none-match", &tag),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_ne!(r.header("etag"), Some(tag.as_str()));

    // Lists: a strong tag over the body; 304 while nothing changes.
    let list = s.url("/api/v1/res.partner?domain=%5B('name'%2C'like'%2C'it-etag')%5D&fields=name");
    let r = send(c.get(&list).header("authorization", &auth)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let list_tag = r.header("etag").unwrap().to_string();
    let r = send(
        c.get(&list)
            .header("authorization", &auth)
            .header("if-none-match", &list_tag),
    )
    .await;
    assert_eq!(r.status, 304);
    new_partner(&s, &auth, "it-etag Another").await;
    let r = send(
        c.get(&list)
            .header("authorization", &auth)
            .header("if-none-match", &list_tag),
    )
    .await;
    assert_eq!(r.status, 200);

    // A malformed header is a 400 problem, not a silent 200.
    let r = send(
        c.get(&url)
            .header("authorization", &auth)
            .header("if-none-match", "unquoted"),
    )
    .await;
    assert_problem(&r, 400);
    assert_eq!(kind(&r), "invalid-precondition");
}

#[tokio::test]
async fn if_match_lets_a_write_through_only_from_the_current_version() {
    let s = start().await;
    let auth = bearer(&token(2, &["read", "write", "delete"]).await);
    let c = http();
    let id = new_partner(&s, &auth, "it-ifmatch Ada").await;
    let url = s.url(&format!("/api/v1/res.partner/{id}"));
    let tag = send(c.get(&url).header("authorization", &auth))
        .await
        .header("etag")
        .unwrap()
        .to_string();
    let patch = |cond: &str, name: &str| {
        c.patch(&url)
            .header("authorization", &auth)
            .header("if-match", cond)
            .json(&json!({"name": name}))
    };
    // Weak tags never match If-Match (strong comparison), nor do tags that are not ours.
    for cond in [format!("W/{tag}"), "\"abc\"".to_string()] {
        let r = send(patch(&cond, "it-ifmatch weak")).await;
        assert_problem(&r, 412);
        assert_eq!(kind(&r), "precondition-failed");
    }
    // The current tag (alone or in a list) lets the write through...
    let r = send(patch(&format!("\"x\", {tag}"), "it-ifmatch Ada B.")).await;
    assert_eq!(r.status, 204, "{}", r.text);
    // ...after which the same tag is stale: 412 and nothing written.
    let r = send(patch(&tag, "it-ifmatch lost update")).await;
    assert_problem(&r, 412);
    let now = send(
        c.get(s.url(&format!("/api/v1/res.partner/{id}?fields=name")))
            .header("authorization", &auth),
    )
    .await;
    assert_eq!(now.body["name"], "it-ifmatch Ada B.");
    // A tag of any representation of the current row version matches (the version decides).
    let fresh = now.header("etag").unwrap().to_string();
    let r = send(
        c.put(&url)
            .header("authorization", &auth)
            .header("if-match", &fresh)
            .json(&json!({"name": "it-ifmatch Ada C."})),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    // DELETE: stale → 412 and the record stays; * → deleted; * on a missing record → 404.
    let r = send(
        c.delete(&url)
            .header("authorization", &auth)
            .header("if-match", &fresh),
    )
    .await;
    assert_problem(&r, 412);
    let current = send(c.get(&url).header("authorization", &auth)).await;
    assert_eq!(current.status, 200);
    let r = send(
        c.delete(&url)
            .header("authorization", &auth)
            .header("if-match", current.header("etag").unwrap()),
    )
    .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = send(
        c.delete(&url)
            .header("authorization", &auth)
            .header("if-match", "*"),
    )
    .await;
    assert_problem(&r, 404);
    let r = send(
        c.patch(&url)
            .header("authorization", &auth)
            .header("if-match", "\"1.00000000000000000000000000000000\"")
            .json(&json!({"name": "ghost"})),
    )
    .await;
    assert_problem(&r, 404);
}

#[tokio::test]
async fn lists_page_with_a_signed_cursor_and_a_link_header() {
    let s = start().await;
    let auth = bearer(&token(2, &["read", "write", "delete"]).await);
    let c = http();
    let mut ids = vec![];
    for i in 0..5 {
        ids.push(new_partner(&s, &auth, &format!("it-page {i}")).await);
    }
    let first = s.url(
        "/api/v1/res.partner?domain=%5B('name'%2C'%3Dlike'%2C'it-page%20%25')%5D&fields=name&order=name%20asc&limit=2",
    );
    // Without `after`, a plain list: no cursor, no Link (the cached search_read path).
    let plain = send(c.get(&first).header("authorization", &auth)).await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert_eq!(plain.body["records"].as_array().map(Vec::len), Some(2));
    assert!(plain.body.get("next").is_none(), "{}", plain.text);
    assert!(plain.header("link").is_none());
    // `after=` (empty) starts a cursor walk.
    let mut url = format!("{first}&after=");
    let mut names = vec![];
    let mut pages = 0;
    loop {
        let r = send(c.get(&url).header("authorization", &auth)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        pages += 1;
        for rec in r.body["records"].as_array().unwrap() {
            names.push(rec["name"].as_str().unwrap().to_string());
        }
        match r.header("link") {
            Some(link) => {
                // RFC 8288: <target>; rel="next", the target relative to the API's origin.
                let target = link
                    .strip_prefix('<')
                    .and_then(|l| l.strip_suffix(">; rel=\"next\""))
                    .unwrap_or_else(|| panic!("{link}"));
                assert!(target.contains("&after="), "{target}");
                assert_eq!(
                    r.body["next"].as_str().map(|n| target.ends_with(
                        &percent_encoding::utf8_percent_encode(
                            n,
                            percent_encoding::NON_ALPHANUMERIC
                        )
                        .to_string()
                    )),
                    Some(true)
                );
                url = s.url(target);
            }
            None => {
                assert!(r.body["next"].is_null());
                break;
            }
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        names,
        (0..5).map(|i| format!("it-page {i}")).collect::<Vec<_>>()
    );
    // A cursor with offset, or a cursor that is not one: 400.
    let r = send(
        c.get(format!("{first}&offset=2&after=x"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 400);
    let r = send(
        c.get(format!("{first}&after=forged.cursor"))
            .header("authorization", &auth),
    )
    .await;
    assert_problem(&r, 400);
    for id in ids {
        send(
            c.delete(s.url(&format!("/api/v1/res.partner/{id}")))
                .header("authorization", &auth),
        )
        .await;
    }
}
