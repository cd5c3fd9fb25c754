//! Issue 18, part 4: `GET /api/v1/<model>/fields` (Odoo's `fields_get` for the caller) and the
//! language of a request (`lang=` or `Accept-Language`, else the user's). On the project's
//! fixture and, with AGW_TEST_FIXTURE=demo, on the real demo database (where the labels and help
//! are compared with Odoo 19's own answers, tests/fixtures/fields_get/odoo19_demo.json).
use crate::common::*;
use serde_json::Value;

/// The French user (his own language is fr_FR): jeff, uid 8 in the project's fixture, 7 in the
/// demo database.
fn jeff() -> i32 {
    if mini() { 8 } else { 7 }
}

fn odoo_fields(user: &str, model: &str, lang: &str) -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/fields_get/odoo19_demo.json"
    );
    let all: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["user"] == user && c["model"] == model && c["lang"] == lang)
        .map(|c| c["fields"].clone())
        .expect("case in the fixture")
}

#[tokio::test]
async fn the_fields_route_answers_like_fields_get() {
    let s = start().await;
    let t = token(2, &["read"]).await;
    let model = if mini() {
        "res.partner"
    } else {
        "product.product"
    };
    let r = send(
        http()
            .get(s.url(&format!("/api/v1/{model}/fields")))
            .header("authorization", bearer(&t))
            .header("accept-language", "en-US"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("etag").is_some());
    assert_eq!(r.header("vary"), Some("Accept-Language"));
    let f = &r.body;
    assert_eq!(f["display_name"]["string"], "Display Name");
    assert_eq!(f["display_name"]["source"], "sql");
    assert_eq!(f["name"]["source"], "sql");
    if mini() {
        assert_eq!(f["name"]["string"], "Name");
        assert_eq!(f["type"]["selection"][0][0], "contact");
    } else {
        // name, lst_price and display_name as Odoo 19 describes them on this database.
        let odoo = odoo_fields("admin", "product.product", "en_US");
        for name in ["name", "lst_price", "display_name"] {
            for attr in ["type", "string", "help", "required", "readonly", "store"] {
                assert_eq!(
                    f[name].get(attr).unwrap_or(&Value::Null),
                    odoo[name].get(attr).unwrap_or(&Value::Null),
                    "{name}.{attr}"
                );
            }
        }
        assert!(f["lst_price"]["help"].as_str().unwrap().len() > 20);
        assert_eq!(f["lst_price"]["source"], "odoo");
    }
    // Revalidation: the same description, 304.
    let etag = r.header("etag").unwrap().to_string();
    let again = send(
        http()
            .get(s.url(&format!("/api/v1/{model}/fields")))
            .header("authorization", bearer(&t))
            .header("accept-language", "en-US")
            .header("if-none-match", &etag),
    )
    .await;
    assert_eq!(again.status, 304);
    // The gate applies: no credentials, a scope without read, an unknown model.
    let anon = send(http().get(s.url(&format!("/api/v1/{model}/fields")))).await;
    assert_problem(&anon, 401);
    let writer = token(2, &["write"]).await;
    let r = send(
        http()
            .get(s.url(&format!("/api/v1/{model}/fields")))
            .header("authorization", bearer(&writer)),
    )
    .await;
    assert_problem(&r, 403);
    let r = send(
        http()
            .get(s.url("/api/v1/no.such.model/fields"))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_problem(&r, 404);
    let r = send(
        http()
            .get(s.url(&format!("/api/v1/{model}/fields?lang=xx_XX")))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_problem(&r, 400);
    let r = send(
        http()
            .get(s.url(&format!("/api/v1/{model}/fields?fields=name")))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_problem(&r, 400);
}

/// (path of one record's translated name, its English and French names).
async fn translated_record() -> (String, String, String) {
    let c = db().await;
    let r = c
        .query_one(
            "SELECT id, name->>'en_US', name->>'fr_FR' FROM public.product_template \
              WHERE name ? 'fr_FR' AND name->>'fr_FR' <> name->>'en_US' ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let id: i32 = r.get(0);
    (
        format!("/api/v1/product.template/{id}?fields=name,display_name"),
        r.get(1),
        r.get(2),
    )
}

#[tokio::test]
async fn accept_language_en_us_gives_a_french_user_english_names() {
    let _jeff = JEFF.lock().await;
    let s = start().await;
    let t = token(jeff(), &["read"]).await;
    let (path, en, fr) = translated_record().await;
    let get = |path: String, accept: Option<&'static str>| {
        let mut req = http().get(s.url(&path)).header("authorization", bearer(&t));
        if let Some(a) = accept {
            req = req.header("accept-language", a);
        }
        send(req)
    };
    // His own language by default...
    let r = get(path.clone(), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], fr.as_str());
    assert_eq!(r.header("vary"), Some("Accept-Language"));
    let french_tag = r.header("etag").unwrap().to_string();
    // ...English when the request asks for it (Odoo's code, a tag, q-values)...
    for accept in ["en_US", "en-US", "en", "de;q=1, en;q=0.5, fr;q=0.1"] {
        let r = get(path.clone(), Some(accept)).await;
        assert_eq!(r.status, 200, "{accept}: {}", r.text);
        assert_eq!(r.body["name"], en.as_str(), "{accept}");
        assert!(
            r.body["display_name"].as_str().unwrap().contains(&en),
            "{accept}"
        );
        assert_ne!(r.header("etag").unwrap(), french_tag, "{accept}");
    }
    // ...and lists too; lang= wins over Accept-Language.
    let domain = format!("[('name', '=', {en:?})]");
    let list = format!(
        "/api/v1/product.template?fields=name&domain={}",
        percent_encoding::utf8_percent_encode(&domain, percent_encoding::NON_ALPHANUMERIC)
    );
    let r = get(list.clone(), Some("en_US")).await;
    assert_eq!(r.body["records"][0]["name"], en.as_str(), "{}", r.text);
    let r = get(format!("{list}&lang=fr"), Some("en_US")).await;
    assert_eq!(r.body["records"].as_array().unwrap().len(), 0, "{}", r.text);
    let r = get(format!("{path}&lang=en"), Some("fr")).await;
    assert_eq!(r.body["name"], en.as_str());
    // Keyset pages in English.
    let r = get(
        "/api/v1/product.template?fields=name&after=&limit=1".into(),
        Some("en"),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.header("link").is_some());
    // Labels follow the request too.
    let r = get("/api/v1/product.template/fields".into(), None).await;
    let french_label = r.body["name"]["string"].as_str().unwrap().to_string();
    let r = get("/api/v1/product.template/fields".into(), Some("en_US")).await;
    assert_eq!(r.body["name"]["string"], "Name");
    assert_ne!(french_label, "Name");
}

#[tokio::test]
async fn bad_or_unmet_accept_language_values_are_ignored() {
    let _jeff = JEFF.lock().await;
    let s = start().await;
    let t = token(jeff(), &["read"]).await;
    let (path, _, fr) = translated_record().await;
    // Unreadable members, languages that are not installed, any language: his own language.
    for accept in [
        ";;;q=x, 12, fr;q=2",
        "de-DE, de;q=0.9",
        "*",
        "en;q=0",
        "x-klingon",
    ] {
        let r = send(
            http()
                .get(s.url(&path))
                .header("authorization", bearer(&t))
                .header("accept-language", accept),
        )
        .await;
        assert_eq!(r.status, 200, "{accept}: {}", r.text);
        assert_eq!(r.body["name"], fr.as_str(), "{accept}");
    }
    // Not ASCII: ignored as well (raw request: reqwest would refuse to send it).
    let r = raw(
        s.addr,
        format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nAccept-Language: fr-\u{e9}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["name"], fr.as_str());
    // An explicit lang= naming no installed language is a client error.
    let r = send(
        http()
            .get(s.url(&format!("{path}&lang=de_DE")))
            .header("authorization", bearer(&t)),
    )
    .await;
    assert_problem(&r, 400);
    assert!(
        r.body["detail"].as_str().unwrap().contains("de_DE"),
        "{}",
        r.text
    );
}
