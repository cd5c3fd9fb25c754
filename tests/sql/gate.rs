//! The gate: JWT, Odoo API keys, IP lists, rate limits, OAuth2 clients and `authenticate`.
use api_gateway_tests::{connect, connect_plain, key_cases, sqlstate};
use postgres::Client;
use serde_json::{Value, json};

fn secret_of(db: &mut Client) -> String {
    db.query_one("SELECT jwt_secret FROM api_gateway.settings", &[])
        .unwrap()
        .get(0)
}

fn verify_err(db: &mut Client, token: &str, secret: &str, alg: &str) -> String {
    let err = db
        .query_one(
            "SELECT api_gateway.jwt_verify($1, $2, $3)",
            &[&token, &secret, &alg],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "28000", "{err:?}");
    err.as_db_error().unwrap().message().to_string()
}

#[test]
fn jwt_round_trip_in_sql_for_every_algorithm() {
    let mut db = connect_plain();
    for alg in ["HS256", "HS384", "HS512"] {
        let token: String = db
            .query_one(
                "SELECT api_gateway.jwt_sign('{\"sub\":\"42\",\"n\":[1,2]}'::jsonb, 's3cr3t-s3cr3t-s3cr3t-s3cr3t!', $1)",
                &[&alg],
            )
            .unwrap()
            .get(0);
        let claims: Value = db
            .query_one(
                "SELECT api_gateway.jwt_verify($1, 's3cr3t-s3cr3t-s3cr3t-s3cr3t!', $2)",
                &[&token, &alg],
            )
            .unwrap()
            .get(0);
        assert_eq!(claims, json!({"sub": "42", "n": [1, 2]}));
    }
}

#[test]
fn jwt_verify_rejects_each_bad_token_with_28000_and_a_reason() {
    let mut db = connect_plain();
    let sign = |db: &mut Client, claims: Value, alg: &str| -> String {
        db.query_one("SELECT api_gateway.jwt_sign($1, 'k', $2)", &[&claims, &alg])
            .unwrap()
            .get(0)
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let good = sign(&mut db, json!({"sub": "1"}), "HS256");
    assert!(verify_err(&mut db, &good, "other", "HS256").contains("signature"));
    assert!(verify_err(&mut db, &good, "k", "HS512").contains("alg"));
    let expired = sign(&mut db, json!({"exp": now - 100}), "HS256");
    assert!(verify_err(&mut db, &expired, "k", "HS256").contains("expired"));
    // Within the 30 s leeway an expired token still passes.
    let just_expired = sign(&mut db, json!({"exp": now - 5}), "HS256");
    db.query_one("SELECT api_gateway.jwt_verify($1, 'k')", &[&just_expired])
        .unwrap();
    let future = sign(&mut db, json!({"nbf": now + 3600}), "HS256");
    assert!(verify_err(&mut db, &future, "k", "HS256").contains("not"));
    let text_exp = sign(&mut db, json!({"exp": "tomorrow"}), "HS256");
    assert!(verify_err(&mut db, &text_exp, "k", "HS256").contains("exp"));
    // alg=none with an empty signature, as an attacker would send it.
    let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiIxIn0.";
    verify_err(&mut db, none, "k", "HS256");
    for garbage in ["", "a.b", "a.b.c.d", "!!!.???.***", "eyJ.eyJ.eyJ"] {
        verify_err(&mut db, garbage, "k", "HS256");
    }
    let huge = "a".repeat(1 << 20);
    verify_err(&mut db, &huge, "k", "HS256");
    let err = db
        .query_one("SELECT api_gateway.jwt_verify($1, 'k', 'none')", &[&good])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22023");
    let err = db
        .query_one("SELECT api_gateway.jwt_verify(NULL, 'k')", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "28000");
}

#[test]
fn api_keys_map_to_the_users_odoo_would_return() {
    let mut db = connect();
    let cases = key_cases();
    assert!(cases.len() >= 8, "the fixture has the documented keys");
    for case in &cases {
        let uid: Option<i32> = db
            .query_one(
                "SELECT api_gateway.verify_api_key($1, $2)",
                &[&case.key, &case.scope],
            )
            .unwrap()
            .get(0);
        assert_eq!(uid, case.uid, "key {} for scope {}", case.label, case.scope);
        // Second call goes through the cache and must agree.
        let again: Option<i32> = db
            .query_one(
                "SELECT api_gateway.verify_api_key($1, $2)",
                &[&case.key, &case.scope],
            )
            .unwrap()
            .get(0);
        assert_eq!(again, case.uid, "cached key {}", case.label);
    }
    for bad in [
        "",
        "short",
        "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
        &"f".repeat(1 << 20),
    ] {
        let uid: Option<i32> = db
            .query_one("SELECT api_gateway.verify_api_key($1)", &[&bad])
            .unwrap()
            .get(0);
        assert_eq!(uid, None);
    }
    let uid: Option<i32> = db
        .query_one("SELECT api_gateway.verify_api_key(NULL)", &[])
        .unwrap()
        .get(0);
    assert_eq!(uid, None);
}

#[test]
fn deleting_expiring_or_archiving_takes_effect_on_the_next_call() {
    let mut db = connect();
    let case = key_cases()
        .into_iter()
        .find(|c| c.uid.is_some() && c.scope == "rpc")
        .unwrap();
    let uid = case.uid.unwrap();
    let check = |db: &mut postgres::Transaction| -> Option<i32> {
        db.query_one("SELECT api_gateway.verify_api_key($1)", &[&case.key])
            .unwrap()
            .get(0)
    };
    // Warm the cache, then change the world inside a transaction and roll it back.
    let mut tx = db.transaction().unwrap();
    assert_eq!(check(&mut tx), Some(uid));
    tx.execute("UPDATE res_users SET active = false WHERE id = $1", &[&uid])
        .unwrap();
    assert_eq!(check(&mut tx), None, "archived user");
    tx.rollback().unwrap();
    let mut tx = db.transaction().unwrap();
    assert_eq!(check(&mut tx), Some(uid));
    tx.execute(
        "UPDATE res_users_apikeys SET expiration_date = now() AT TIME ZONE 'utc' - interval '1 minute' \
         WHERE index = left($1, 8)",
        &[&case.key],
    )
    .unwrap();
    assert_eq!(check(&mut tx), None, "expired key");
    tx.rollback().unwrap();
    let mut tx = db.transaction().unwrap();
    assert_eq!(check(&mut tx), Some(uid));
    tx.execute(
        "DELETE FROM res_users_apikeys WHERE index = left($1, 8)",
        &[&case.key],
    )
    .unwrap();
    assert_eq!(check(&mut tx), None, "deleted key");
    tx.rollback().unwrap();
    let mut tx = db.transaction().unwrap();
    assert_eq!(check(&mut tx), Some(uid));
    // The same row given another key's hash: the cached verification must not survive it.
    let other = api_gateway_core::apikey::hash_key(&"0".repeat(40), 6000, b"sixteen byte slt");
    tx.execute(
        "UPDATE res_users_apikeys SET key = $2 WHERE index = left($1, 8)",
        &[&case.key, &other],
    )
    .unwrap();
    assert_eq!(check(&mut tx), None, "changed key hash");
    tx.rollback().unwrap();
}

#[test]
fn verify_api_key_outside_odoo_names_the_missing_table() {
    let mut db = connect_plain();
    let err = db
        .query_one(
            "SELECT api_gateway.verify_api_key('e925e647b8f32ee3db87b5851c2a861d82e92548')",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "42P01");
    assert!(
        err.as_db_error().unwrap().message().contains("res_users"),
        "{err:?}"
    );
}

#[test]
fn ip_allowed_handles_v4_v6_ranges_and_empty_lists() {
    let mut db = connect_plain();
    let cases: &[(&str, &str, Option<bool>)] = &[
        ("10.1.2.3", "{10.0.0.0/8}", Some(true)),
        ("11.1.2.3", "{10.0.0.0/8}", Some(false)),
        ("192.168.1.7", "{192.168.1.7/32}", Some(true)),
        ("2001:db8::1", "{2001:db8::/32}", Some(true)),
        ("2001:db9::1", "{2001:db8::/32,10.0.0.0/8}", Some(false)),
        ("1.2.3.4", "{}", Some(true)),
    ];
    for (ip, list, expect) in cases {
        let got: Option<bool> = db
            .query_one(
                &format!("SELECT api_gateway.ip_allowed('{ip}'::inet, '{list}'::cidr[])"),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(got, *expect, "{ip} in {list}");
    }
    let any: bool = db
        .query_one("SELECT api_gateway.ip_allowed('1.2.3.4', NULL)", &[])
        .unwrap()
        .get(0);
    assert!(any);
    let unknown: bool = db
        .query_one("SELECT api_gateway.ip_allowed(NULL, '{10.0.0.0/8}')", &[])
        .unwrap()
        .get(0);
    assert!(!unknown, "an unknown address is refused by a list");
    let err = db
        .query_one(
            "SELECT api_gateway.ip_allowed('1.2.3.4', '{10.0.0.0/33}')",
            &[],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22P02");
}

fn hit(db: &mut Client, subject: &str, max: i32, window: i32) -> (bool, i32, i32) {
    let r = db
        .query_one(
            "SELECT * FROM api_gateway.rate_limit_hit($1, $2, $3)",
            &[&subject, &max, &window],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

#[test]
fn rate_limit_counts_and_refuses_past_the_limit() {
    let mut db = connect_plain();
    let subject = format!("test:{}", std::process::id());
    crate::rate_limit::reset_counter(&mut db, &subject);
    for i in 1..=3 {
        let (allowed, remaining, reset) = hit(&mut db, &subject, 3, 3600);
        assert!(allowed);
        assert_eq!(remaining, 3 - i);
        // The sliding window (the default): up to the window plus one sub-bucket (60 s).
        assert!((1..=3660).contains(&reset), "{reset}");
    }
    let (allowed, remaining, _) = hit(&mut db, &subject, 3, 3600);
    assert!(!allowed);
    assert_eq!(remaining, 0);
    let view: i64 = db
        .query_one(
            "SELECT count(*) FROM api_gateway.active_throttles WHERE subject = $1 AND throttled",
            &[&subject],
        )
        .unwrap()
        .get(0);
    assert_eq!(view, 1);
    for (max, window) in [(-1, 60), (10, 0), (10, -5)] {
        let err = db
            .query_one(
                "SELECT * FROM api_gateway.rate_limit_hit('x', $1, $2)",
                &[&max, &window],
            )
            .unwrap_err();
        assert_eq!(sqlstate(&err), "22023");
    }
    let err = db
        .query_one("SELECT * FROM api_gateway.rate_limit_hit(NULL, 1, 60)", &[])
        .unwrap_err();
    assert_eq!(sqlstate(&err), "22004");
}

#[test]
fn rate_limit_is_exact_under_concurrency() {
    let subject = format!("concurrent:{}", std::process::id());
    crate::rate_limit::reset_counter(&mut connect_plain(), &subject);
    let limit = 50;
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let subject = subject.clone();
            std::thread::spawn(move || {
                let mut db = connect_plain();
                (0..25)
                    .filter(|_| hit(&mut db, &subject, limit, 3600).0)
                    .count()
            })
        })
        .collect();
    let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        allowed, limit as usize,
        "200 calls, limit 50: exactly 50 pass"
    );
}

fn admin_uid() -> i32 {
    2
}

fn new_client(db: &mut Client, scopes: &str, ips: Option<&str>) -> (String, String) {
    let r = db
        .query_one(
            "SELECT * FROM api_gateway.create_client('test client', $1, $2::text::text[], $3::text::cidr[])",
            &[&admin_uid(), &scopes, &ips],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

/// A new client with the `read` scope and an access token issued to it: (client id, token).
fn read_token(db: &mut Client) -> (String, String) {
    let (id, secret) = new_client(db, "{read}", None);
    let token = issue(db, &id, &secret, None, None).1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    (id, token)
}

fn issue(
    db: &mut Client,
    id: &str,
    secret: &str,
    scope: Option<&str>,
    ip: Option<&str>,
) -> (i32, Value) {
    let r = db
        .query_one(
            "SELECT * FROM api_gateway.issue_token($1, $2, $3, $4::text::inet)",
            &[&id, &secret, &scope, &ip],
        )
        .unwrap();
    (r.get(0), r.get(1))
}

#[test]
fn clients_get_tokens_by_the_rules_of_rfc_6749() {
    let mut db = connect();
    let (id, secret) = new_client(&mut db, "{read,write}", None);
    assert!(id.starts_with("gw_") && id.len() == 15);
    assert_eq!(secret.len(), 32);
    let stored: String = db
        .query_one(
            "SELECT secret_hash FROM api_gateway.client WHERE client_id = $1",
            &[&id],
        )
        .unwrap()
        .get(0);
    assert_ne!(stored, secret, "only a hash is stored");
    let (status, body) = issue(&mut db, &id, &secret, None, None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read write");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap().to_string();
    let claims: Value = db
        .query_one(
            "SELECT api_gateway.jwt_verify($1, (SELECT jwt_secret FROM api_gateway.settings))",
            &[&token],
        )
        .unwrap()
        .get(0);
    for claim in ["iss", "sub", "client_id", "scope", "iat", "exp", "jti"] {
        assert!(claims.get(claim).is_some(), "claim {claim}");
    }
    assert_eq!(claims["sub"], admin_uid().to_string());
    let (status, body) = issue(&mut db, &id, "wrong-secret", None, None);
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let (status, _) = issue(&mut db, "gw_000000000000", &secret, None, None);
    assert_eq!(status, 401);
    let (status, body) = issue(&mut db, &id, &secret, Some("read delete"), None);
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (status, body) = issue(&mut db, &id, &secret, Some("read"), None);
    assert_eq!((status, body["scope"].as_str()), (200, Some("read")));
    let (ip_id, ip_secret) = new_client(&mut db, "{read}", Some("{10.0.0.0/8}"));
    assert_eq!(
        issue(&mut db, &ip_id, &ip_secret, None, Some("10.9.9.9")).0,
        200
    );
    let (status, body) = issue(&mut db, &ip_id, &ip_secret, None, Some("192.168.0.1")).clone();
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );
    for (scopes, user) in [("{}", 2), ("{root}", 2), ("{read}", 999_999)] {
        let err = db
            .query_one(
                "SELECT * FROM api_gateway.create_client('x', $1, $2::text::text[])",
                &[&user, &scopes],
            )
            .unwrap_err();
        assert_eq!(sqlstate(&err), "22023", "{scopes} {user}");
    }
}

fn authenticate(
    db: &mut Client,
    authorization: Option<&str>,
    ip: &str,
    method: &str,
) -> postgres::Row {
    db.query_one(
        "SELECT * FROM api_gateway.authenticate($1, $2::text::inet, $3)",
        &[&authorization, &ip, &method],
    )
    .unwrap()
}

/// The gate joined to a data call in one prepared statement, the shape of the front's
/// one-statement request (front/src/gate.rs `gated_sql!`) as an SQL caller writes it, with the
/// credential and the field list put together in SQL from parameters: after PostgreSQL's five trial executions it
/// must keep one generic plan instead of planning every call anew. With authenticate's default
/// estimate of 1000 rows, every expression on a parameter counted 1000 times in the generic
/// plan's cost and it planned every call: 0.7x the calls per second on the real Odoo database
/// (pgbench, same statement).
#[test]
fn a_gate_joined_to_a_data_call_keeps_one_generic_plan() {
    use postgres::types::Type;
    let mut db = connect();
    let (_, token) = read_token(&mut db);
    let gated = "WITH g AS MATERIALIZED (SELECT * FROM api_gateway.authenticate('Bearer ' || $1, $2::inet, $3::text)) \
         SELECT g.status, g.uid, g.client_id, g.scopes, g.error, g.rate_limit, g.remaining, g.reset_s, g.detail, g.window_s, \
         CASE WHEN g.status = 200 THEN api_gateway.search_read(g.uid, $4, $5, string_to_array($6, ','), $7, $8, $9) END, \
         CASE WHEN g.status = 200 AND $10 THEN api_gateway.search_count(g.uid, $4, $5) END FROM g";
    let statement = db
        .prepare_typed(
            gated,
            &[
                Type::TEXT,
                Type::INET,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::TEXT,
                Type::INT4,
                Type::INT4,
                Type::TEXT,
                Type::BOOL,
            ],
        )
        .unwrap();
    let ip: std::net::IpAddr = "127.0.0.1".parse().unwrap();
    for _ in 0..8 {
        let row = db
            .query_one(
                &statement,
                &[
                    &token,
                    &ip,
                    &"GET",
                    &"res.partner",
                    &"[]",
                    &"name,email",
                    &2i32,
                    &0i32,
                    &None::<String>,
                    &false,
                ],
            )
            .unwrap();
        assert_eq!(
            row.get::<_, i32>(0),
            200,
            "{:?}",
            row.get::<_, Option<String>>(8)
        );
        assert!(
            row.get::<_, Option<Value>>(10).is_some(),
            "the data call ran"
        );
    }
    let r = db
        .query_one(
            "SELECT generic_plans, custom_plans FROM pg_catalog.pg_prepared_statements WHERE statement = $1",
            &[&gated],
        )
        .unwrap();
    let (generic, custom): (i64, i64) = (r.get(0), r.get(1));
    assert!(
        generic >= 3 && custom <= 5,
        "{generic} generic and {custom} custom plans in 8 calls"
    );
    // The planner is told so: one row per call, for every gate function an SQL caller joins.
    for f in [
        "api_gateway.authenticate(text, inet, text)",
        "api_gateway.rate_limit_hit(text, integer, integer)",
        "api_gateway.rate_limit_hit(text, integer, integer, integer, text)",
    ] {
        let rows: f32 = db
            .query_one(
                "SELECT prorows FROM pg_catalog.pg_proc WHERE oid = $1::text::regprocedure",
                &[&f],
            )
            .unwrap()
            .get(0);
        assert_eq!(rows, 1.0, "{f}");
    }
}

#[test]
fn authenticate_passes_jwts_and_refuses_revoked_ones_on_the_next_call() {
    let mut db = connect();
    let (id, token) = read_token(&mut db);
    let bearer = format!("Bearer {token}");
    let row = authenticate(&mut db, Some(&bearer), "127.0.0.1", "GET");
    assert_eq!(
        row.get::<_, i32>("status"),
        200,
        "{:?}",
        row.get::<_, Option<String>>("detail")
    );
    assert_eq!(row.get::<_, Option<i32>>("uid"), Some(admin_uid()));
    assert_eq!(row.get::<_, Option<String>>("client_id"), Some(id.clone()));
    assert!(row.get::<_, Option<i32>>("remaining").is_some());
    let row = authenticate(&mut db, Some(&bearer), "127.0.0.1", "DELETE");
    assert_eq!(row.get::<_, i32>("status"), 403);
    assert_eq!(
        row.get::<_, Option<String>>("error").as_deref(),
        Some("insufficient_scope")
    );
    let revoked: bool = db
        .query_one("SELECT api_gateway.revoke_token($1)", &[&token])
        .unwrap()
        .get(0);
    assert!(revoked);
    let row = authenticate(&mut db, Some(&bearer), "127.0.0.1", "GET");
    assert_eq!(row.get::<_, i32>("status"), 401);
    assert!(
        row.get::<_, Option<String>>("detail")
            .unwrap()
            .contains("revoked")
    );
    let again: bool = db
        .query_one("SELECT api_gateway.revoke_token($1)", &[&token])
        .unwrap()
        .get(0);
    assert!(!again, "already revoked");
    let garbage: bool = db
        .query_one("SELECT api_gateway.revoke_token('x.y.z')", &[])
        .unwrap()
        .get(0);
    assert!(!garbage);
}

#[test]
fn tokens_signed_before_a_key_rotation_keep_working() {
    let mut db = connect();
    let (id, secret) = new_client(&mut db, "{read}", None);
    let old = issue(&mut db, &id, &secret, None, None).1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let before = secret_of(&mut db);
    db.query_one("SELECT api_gateway.rotate_signing_key()", &[])
        .unwrap();
    assert_ne!(secret_of(&mut db), before);
    let new = issue(&mut db, &id, &secret, None, None).1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    for token in [&old, &new] {
        let row = authenticate(
            &mut db,
            Some(&format!("Bearer {token}")),
            "127.0.0.1",
            "GET",
        );
        assert_eq!(row.get::<_, i32>("status"), 200);
    }
}

#[test]
fn authenticate_with_odoo_api_keys_and_bad_credentials() {
    let mut db = connect();
    for case in key_cases().iter().filter(|c| c.scope == "rpc") {
        let row = authenticate(
            &mut db,
            Some(&format!("bearer   {}", case.key)),
            "127.0.0.1",
            "GET",
        );
        let status: i32 = row.get("status");
        match case.uid {
            Some(uid) => {
                assert!(status == 200 || status == 429, "{}: {status}", case.label);
                assert_eq!(
                    row.get::<_, Option<i32>>("uid"),
                    Some(uid),
                    "{}",
                    case.label
                );
            }
            None => assert_eq!(status, 401, "{}", case.label),
        }
    }
    let row = authenticate(&mut db, None, "127.0.0.1", "GET");
    assert_eq!(row.get::<_, i32>("status"), 401);
    assert_eq!(
        row.get::<_, Option<String>>("error").as_deref(),
        Some("missing_credentials")
    );
    for bad in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer a.b.c",
        &format!("Bearer {}", "x".repeat(1 << 20)),
    ] {
        let row = authenticate(&mut db, Some(bad), "127.0.0.1", "GET");
        assert_eq!(
            row.get::<_, i32>("status"),
            401,
            "{}",
            &bad[..bad.len().min(40)]
        );
        assert_eq!(row.get::<_, Option<i32>>("uid"), None);
    }
    let row = authenticate(&mut db, Some("Bearer whatever"), "127.0.0.1", "BREW");
    assert_eq!(row.get::<_, i32>("status"), 405);
}

#[test]
fn profiles_apply_ip_lists_deactivation_and_their_own_limit() {
    let mut db = connect();
    let case = key_cases()
        .into_iter()
        .find(|c| c.uid.is_some() && c.scope == "rpc")
        .unwrap();
    let uid = case.uid.unwrap();
    let bearer = format!("Bearer {}", case.key);
    let mut tx = db.transaction().unwrap();
    tx.execute(
        "INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window, allowed_ips) VALUES ($1, 2, 'hour', '{10.0.0.0/8}') \
         ON CONFLICT (user_id) DO UPDATE SET rate_limit = 2, rate_limit_window = 'hour', allowed_ips = '{10.0.0.0/8}', active = true",
        &[&uid],
    )
    .unwrap();
    crate::rate_limit::reset_counter(&mut tx, &format!("user:{uid}"));
    let status = |tx: &mut postgres::Transaction, ip: &str| -> (i32, Option<String>) {
        let r = tx
            .query_one(
                "SELECT status, error FROM api_gateway.authenticate($1, $2::text::inet, 'GET')",
                &[&bearer, &ip],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(
        status(&mut tx, "192.168.1.1"),
        (403, Some("ip_not_allowed".into()))
    );
    assert_eq!(status(&mut tx, "10.1.1.1").0, 200);
    assert_eq!(status(&mut tx, "10.1.1.1").0, 200);
    let (code, error) = status(&mut tx, "10.1.1.1");
    assert_eq!((code, error.as_deref()), (429, Some("rate_limited")));
    tx.execute(
        "UPDATE api_gateway.profile SET active = false WHERE user_id = $1",
        &[&uid],
    )
    .unwrap();
    assert_eq!(
        status(&mut tx, "10.1.1.1"),
        (403, Some("profile_inactive".into()))
    );
    tx.rollback().unwrap();
}

#[test]
fn ordinary_roles_cannot_read_secrets_or_call_the_gate() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    tx.batch_execute("CREATE ROLE agw_probe NOLOGIN; SET LOCAL ROLE agw_probe;")
        .unwrap();
    for sql in [
        "SELECT secret_hash FROM api_gateway.client",
        "SELECT secret FROM api_gateway.signing_key",
        "SELECT * FROM api_gateway.authenticate('Bearer x', '127.0.0.1', 'GET')",
        "SELECT api_gateway.verify_api_key('x')",
        "SELECT * FROM api_gateway.create_client('x', 2)",
    ] {
        let mut sp = tx.transaction().unwrap();
        let err = sp.query(sql, &[]).unwrap_err();
        assert_eq!(sqlstate(&err), "42501", "{sql}");
        sp.rollback().unwrap();
    }
    // The pure helpers stay usable by anyone.
    let ok: bool = tx
        .query_one("SELECT api_gateway.ip_allowed('1.2.3.4', NULL)", &[])
        .unwrap()
        .get(0);
    assert!(ok);
    tx.rollback().unwrap();
}

/// `authenticate` keeps the facts of a credential that passed, per backend, under the gate epoch.
/// Every change to those facts must be seen by the very next call: made by another backend and
/// committed, or made in the caller's own transaction; and facts seen only inside a transaction
/// that rolled back must not survive it (epochs are never reused).
#[test]
fn cached_gate_facts_follow_every_change_on_the_next_call() {
    let mut db = connect();
    let mut other = connect();
    let status = |db: &mut Client, bearer: &str, method: &str| -> (i32, Option<String>) {
        let r = authenticate(db, Some(bearer), "127.0.0.1", method);
        (r.get("status"), r.get("error"))
    };
    let ok = |s: (i32, Option<String>)| s.0 == 200 || s.0 == 429;

    // JWT, changes committed by another backend.
    let (id, secret) = new_client(&mut db, "{read}", None);
    let token = issue(&mut db, &id, &secret, None, None).1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    for _ in 0..3 {
        assert!(ok(status(&mut db, &bearer, "GET")), "warm, then cached");
    }
    other
        .execute(
            "UPDATE api_gateway.client SET allowed_ips = '{10.0.0.0/8}' WHERE client_id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(
        status(&mut db, &bearer, "GET"),
        (403, Some("ip_not_allowed".into())),
        "client IP list"
    );
    other
        .execute(
            "UPDATE api_gateway.client SET allowed_ips = NULL WHERE client_id = $1",
            &[&id],
        )
        .unwrap();
    assert!(ok(status(&mut db, &bearer, "GET")));
    assert!(ok(status(&mut db, &bearer, "GET")));
    other
        .execute(
            "UPDATE api_gateway.client SET active = false WHERE client_id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(status(&mut db, &bearer, "GET").0, 401, "deactivated client");
    other
        .execute(
            "UPDATE api_gateway.client SET active = true WHERE client_id = $1",
            &[&id],
        )
        .unwrap();
    assert!(ok(status(&mut db, &bearer, "GET")));
    assert!(ok(status(&mut db, &bearer, "GET")));
    assert_eq!(
        status(&mut db, &bearer, "DELETE"),
        (403, Some("insufficient_scope".into())),
        "the cached scopes are the token's"
    );
    let revoked: bool = other
        .query_one("SELECT api_gateway.revoke_token($1)", &[&token])
        .unwrap()
        .get(0);
    assert!(revoked);
    assert_eq!(status(&mut db, &bearer, "GET").0, 401, "revoked token");

    // JWT, changes inside the caller's transaction, and a rollback.
    let token = issue(&mut db, &id, &secret, None, None).1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let bearer = format!("Bearer {token}");
    assert!(ok(status(&mut db, &bearer, "GET")));
    assert!(ok(status(&mut db, &bearer, "GET")));
    let mut tx = db.transaction().unwrap();
    tx.execute(
        "UPDATE res_users SET active = false WHERE id = $1",
        &[&admin_uid()],
    )
    .unwrap();
    let r = tx
        .query_one(
            "SELECT status FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
            &[&bearer],
        )
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 401, "archived Odoo user");
    tx.rollback().unwrap();
    assert!(ok(status(&mut db, &bearer, "GET")));
    let mut tx = db.transaction().unwrap();
    tx.execute(
        "UPDATE api_gateway.settings SET rate_limit = 1, rate_limit_window = 'day'",
        &[],
    )
    .unwrap();
    crate::rate_limit::reset_counter(&mut tx, &format!("user:{}", admin_uid()));
    tx.execute(
        "DELETE FROM api_gateway.profile WHERE user_id = $1",
        &[&admin_uid()],
    )
    .unwrap();
    let limited = |tx: &mut postgres::Transaction| -> (i32, Option<i32>) {
        let r = tx
            .query_one(
                "SELECT status, rate_limit FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
                &[&bearer],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(limited(&mut tx), (200, Some(1)), "the new global limit");
    assert_eq!(limited(&mut tx), (429, Some(1)), "counted under it");
    tx.rollback().unwrap();
    let (code, _) = status(&mut db, &bearer, "GET");
    let limit: Option<i32> =
        authenticate(&mut db, Some(&bearer), "127.0.0.1", "GET").get("rate_limit");
    assert!(code == 200 || code == 429);
    assert_ne!(
        limit,
        Some(1),
        "facts read in a rolled-back transaction are gone"
    );

    // The rolled-back epoch must not come back: cache facts inside a transaction, roll it back,
    // let another backend commit a change, and the facts must not be taken for current.
    let mut tx = db.transaction().unwrap();
    tx.execute(
        "UPDATE api_gateway.client SET allowed_ips = '{127.0.0.0/8}' WHERE client_id = $1",
        &[&id],
    )
    .unwrap();
    for _ in 0..2 {
        let r = tx
            .query_one(
                "SELECT status FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
                &[&bearer],
            )
            .unwrap();
        assert_eq!(r.get::<_, i32>(0), 200);
    }
    tx.rollback().unwrap();
    other
        .execute(
            "UPDATE api_gateway.client SET allowed_ips = '{10.0.0.0/8}' WHERE client_id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(
        status(&mut db, &bearer, "GET"),
        (403, Some("ip_not_allowed".into())),
        "a rolled-back epoch was reused"
    );
    other
        .execute(
            "DELETE FROM api_gateway.client WHERE client_id = $1",
            &[&id],
        )
        .unwrap();
    assert_eq!(status(&mut db, &bearer, "GET").0, 401, "deleted client");

    // Odoo API key: profile, admin group and key row, each seen on the next call.
    let case = key_cases()
        .into_iter()
        .find(|c| c.uid == Some(admin_uid()) && c.scope == "rpc")
        .expect("every fixture has an API key of the administrator");
    let uid = case.uid.unwrap();
    let bearer = format!("Bearer {}", case.key);
    assert!(ok(status(&mut db, &bearer, "GET")));
    assert!(ok(status(&mut db, &bearer, "GET")));
    let mut tx = db.transaction().unwrap();
    tx.execute(
        "INSERT INTO api_gateway.profile (user_id, active) VALUES ($1, false) \
         ON CONFLICT (user_id) DO UPDATE SET active = false",
        &[&uid],
    )
    .unwrap();
    let r = tx
        .query_one(
            "SELECT status, error FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
            &[&bearer],
        )
        .unwrap();
    assert_eq!(
        (r.get::<_, i32>(0), r.get::<_, Option<String>>(1)),
        (403, Some("profile_inactive".into()))
    );
    tx.rollback().unwrap();
    assert!(ok(status(&mut db, &bearer, "GET")));
    assert!(ok(status(&mut db, &bearer, "GET")));
    let mut tx = db.transaction().unwrap();
    tx.execute(
        "DELETE FROM res_users_apikeys WHERE index = left($1, 8)",
        &[&case.key],
    )
    .unwrap();
    let r = tx
        .query_one(
            "SELECT status FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
            &[&bearer],
        )
        .unwrap();
    assert_eq!(r.get::<_, i32>(0), 401, "deleted key");
    tx.rollback().unwrap();
    // The admin scope (what the console and the stats need) follows base.group_system.
    let grants_admin = |tx: &mut postgres::Transaction| -> bool {
        let r = tx
            .query_one(
                "SELECT scopes FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
                &[&bearer],
            )
            .unwrap();
        r.get::<_, Vec<String>>(0).iter().any(|s| s == "admin")
    };
    let mut tx = db.transaction().unwrap();
    assert!(grants_admin(&mut tx), "an administrator's key grants admin");
    assert!(grants_admin(&mut tx), "and so do the cached facts");
    let removed = tx
        .execute(
            "DELETE FROM res_groups_users_rel r USING ir_model_data d WHERE d.res_id = r.gid \
              AND d.module = 'base' AND d.name = 'group_system' AND d.model = 'res.groups' AND r.uid = $1",
            &[&uid],
        )
        .unwrap();
    assert_eq!(removed, 1, "the administrator is in base.group_system");
    assert!(!grants_admin(&mut tx), "admin group removed");
    tx.rollback().unwrap();
}

/// Reading the gate's facts writes nothing: a request refused before the counter, and with the
/// counters in shared memory any request, takes no transaction id (so no commit record, no WAL
/// writer wake-up), on the first call and on the cached one.
#[test]
fn authenticate_takes_no_transaction_id() {
    let mut db = connect();
    let shared: bool = db
        .query_one(
            "SELECT coalesce(current_setting('api_gateway.rate_limit_shared_subjects', true)::int, 0) > 0 \
                AND current_setting('api_gateway.rate_limit_shared_memory') = 'on'",
            &[],
        )
        .unwrap()
        .get(0);
    let (_, token) = read_token(&mut db);
    let jwt = format!("Bearer {token}");
    let key = key_cases()
        .into_iter()
        .find(|c| c.scope == "rpc" && c.uid.is_some())
        .expect("a valid API key in the fixture");
    let key = format!("Bearer {}", key.key);
    // Counted requests take no transaction id only with the counters in shared memory, as
    // `make test`'s cluster has them: without, this test fails rather than check less.
    assert!(
        shared,
        "needs shared_preload_libraries = 'api_gateway' (scripts/setup.sh sets it)"
    );
    let calls = vec![
        (jwt.clone(), "DELETE", 403),
        (jwt, "GET", 200),
        (key, "GET", 200),
    ];
    for (bearer, method, status) in calls {
        // A fresh backend: its first call reads and plans everything for the first time.
        let mut db = connect();
        for attempt in ["first", "cached"] {
            let mut tx = db.transaction().unwrap();
            let got: i32 = tx
                .query_one(
                    "SELECT status FROM api_gateway.authenticate($1, '127.0.0.1', $2)",
                    &[&bearer, &method],
                )
                .unwrap()
                .get(0);
            assert_eq!(got, status, "{method} {attempt}");
            let xid: Option<String> = tx
                .query_one("SELECT pg_current_xact_id_if_assigned()::text", &[])
                .unwrap()
                .get(0);
            assert_eq!(xid, None, "{method} {attempt}: a transaction id was taken");
            tx.rollback().unwrap();
        }
    }
}

/// Table reads (sequential and index scans) of the current transaction so far.
fn table_reads(tx: &mut postgres::Transaction) -> i64 {
    tx.query_one(
        "SELECT coalesce(sum(coalesce(seq_scan, 0) + coalesce(idx_scan, 0)), 0)::int8 \
           FROM pg_stat_xact_user_tables",
        &[],
    )
    .unwrap()
    .get(0)
}

fn shared_memory_on(db: &mut Client) -> bool {
    db.query_one(
        "SELECT coalesce(current_setting('api_gateway.rate_limit_shared_subjects', true)::int, 0) > 0",
        &[],
    )
    .unwrap()
    .get(0)
}

/// A database of its own with the Odoo tables the gate reads (users, API keys, group
/// memberships, `base.group_system`) and the extension: these tests commit changes to users,
/// which the tests running alongside on the fixture must not see.
fn gate_db(suffix: &str) -> (String, Client) {
    let name = api_gateway_tests::scratch_db(suffix);
    let mut admin = api_gateway_tests::connect_to("postgres");
    for statement in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.batch_execute(&statement).unwrap();
    }
    let mut db = api_gateway_tests::connect_to(&name);
    db.batch_execute(
        "CREATE TABLE res_users (id serial PRIMARY KEY, login varchar NOT NULL UNIQUE, \
                                 active bool DEFAULT true, share bool DEFAULT false);
         CREATE TABLE res_users_apikeys (id serial PRIMARY KEY, name varchar NOT NULL, \
             user_id int NOT NULL REFERENCES res_users ON DELETE CASCADE, scope varchar, \
             index varchar(8), key varchar, expiration_date timestamp, create_date timestamp);
         CREATE TABLE res_groups (id serial PRIMARY KEY, name jsonb);
         CREATE TABLE res_groups_users_rel (gid int, uid int, PRIMARY KEY (gid, uid));
         CREATE TABLE ir_model_data (id serial PRIMARY KEY, module varchar, name varchar, \
                                     model varchar, res_id int);
         INSERT INTO res_groups (name) VALUES ('{\"en_US\": \"Settings\"}');
         INSERT INTO ir_model_data (module, name, model, res_id) \
              SELECT 'base', 'group_system', 'res.groups', id FROM res_groups;
         CREATE EXTENSION api_gateway;",
    )
    .unwrap();
    (name, db)
}

fn drop_gate_db(name: &str, db: Client) {
    drop(db);
    api_gateway_tests::connect_to("postgres")
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .unwrap();
}

/// An Odoo user with an API key, and a JWT of a client acting as that user.
struct GateUser {
    uid: i32,
    key: String,
    jwt: String,
}

fn gate_user(db: &mut Client, login: &str) -> GateUser {
    let uid: i32 = db
        .query_one(
            "INSERT INTO res_users (login) VALUES ($1) RETURNING id",
            &[&login],
        )
        .unwrap()
        .get(0);
    // 40 hex characters, as Odoo makes them; the first 8 are the index.
    let key = format!("{:08x}{}", uid, "a1b2c3d4".repeat(4));
    let hash = api_gateway_core::apikey::hash_key(&key, 6000, b"sixteen byte slt");
    db.execute(
        "INSERT INTO res_users_apikeys (name, user_id, scope, index, key, create_date) \
         VALUES ('gate test', $1, 'rpc', left($2, 8), $3, now() AT TIME ZONE 'utc')",
        &[&uid, &key, &hash],
    )
    .unwrap();
    let r = db
        .query_one(
            "SELECT * FROM api_gateway.create_client($1, $2, '{read}'::text[], NULL)",
            &[&login, &uid],
        )
        .unwrap();
    let (id, secret): (String, String) = (r.get(0), r.get(1));
    let token = issue(db, &id, &secret, None, None).1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    GateUser {
        uid,
        key,
        jwt: format!("Bearer {token}"),
    }
}

/// With the library preloaded, a credential whose facts are kept is answered without reading
/// any table (the gate's generation in shared memory says nothing changed), for a JWT, an Odoo
/// API key and `verify_api_key`; in REPEATABLE READ it is read again on every call.
#[test]
fn kept_credentials_read_no_table_while_nothing_changes() {
    let (name, mut db) = gate_db("gate_kept");
    assert!(
        shared_memory_on(&mut db),
        "needs shared_preload_libraries = 'api_gateway' (scripts/setup.sh sets it)"
    );
    let user = gate_user(&mut db, "kept");
    let api_key = format!("Bearer {}", user.key);
    let statuses = |tx: &mut postgres::Transaction| -> (i32, i32, Option<i32>) {
        let a: i32 = tx
            .query_one(
                "SELECT status FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
                &[&user.jwt],
            )
            .unwrap()
            .get(0);
        let b: i32 = tx
            .query_one(
                "SELECT status FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
                &[&api_key],
            )
            .unwrap()
            .get(0);
        let c: Option<i32> = tx
            .query_one("SELECT api_gateway.verify_api_key($1)", &[&user.key])
            .unwrap()
            .get(0);
        (a, b, c)
    };
    // The generation is one for the whole server: the tests running alongside commit gate
    // changes (each moves it, and the next call reads again), so some window of three rounds
    // must read nothing.
    let mut tx = db.transaction().unwrap();
    assert_eq!(statuses(&mut tx), (200, 200, Some(user.uid)), "first calls");
    let quiet_window = (0..50).any(|_| {
        let before = table_reads(&mut tx);
        for _ in 0..3 {
            assert_eq!(statuses(&mut tx), (200, 200, Some(user.uid)));
        }
        table_reads(&mut tx) == before
    });
    assert!(quiet_window, "kept facts read no table");
    tx.commit().unwrap();

    let mut tx = db
        .build_transaction()
        .isolation_level(postgres::IsolationLevel::RepeatableRead)
        .start()
        .unwrap();
    assert_eq!(statuses(&mut tx), (200, 200, Some(user.uid)));
    let before = table_reads(&mut tx);
    assert_eq!(statuses(&mut tx), (200, 200, Some(user.uid)));
    assert!(
        table_reads(&mut tx) > before,
        "REPEATABLE READ has no fresh snapshot: the facts are read again"
    );
    tx.commit().unwrap();
    drop_gate_db(&name, db);
}

/// (JWT status, API key status, verify_api_key, the API key grants admin)
type GateState = (i32, i32, Option<i32>, bool);

/// Every change to a kept fact that lives in Odoo's tables, committed by another session, is
/// seen by the very next call of a backend that kept it, and a change rolled back never is:
/// the user's active flag, the admin group, the API key row (scope, expiry, hash, deletion).
/// An expiry reached by the clock alone, with no change at all, is seen too.
#[test]
fn kept_credentials_follow_odoo_changes_committed_elsewhere() {
    let (name, mut db) = gate_db("gate_follow");
    let mut other = api_gateway_tests::connect_to(&name);
    let user = gate_user(&mut db, "follow");
    let uid = user.uid;
    let jwt = user.jwt.clone();
    let api_key = format!("Bearer {}", user.key);
    let state = |db: &mut Client| -> GateState {
        let a = authenticate(db, Some(&jwt), "127.0.0.1", "GET");
        let b = authenticate(db, Some(&api_key), "127.0.0.1", "GET");
        let c: Option<i32> = db
            .query_one("SELECT api_gateway.verify_api_key($1)", &[&user.key])
            .unwrap()
            .get(0);
        let admin = b
            .get::<_, Option<Vec<String>>>("scopes")
            .unwrap_or_default()
            .iter()
            .any(|s| s == "admin");
        (a.get("status"), b.get("status"), c, admin)
    };
    let live = (200, 200, Some(uid), false);
    for _ in 0..3 {
        assert_eq!(state(&mut db), live, "warm, then kept");
    }
    let changes: &[(&str, &str, GateState)] = &[
        (
            "UPDATE res_users SET active = false WHERE id = $1",
            "UPDATE res_users SET active = true WHERE id = $1",
            (401, 401, None, false),
        ),
        (
            "UPDATE api_gateway.client SET active = false WHERE user_id = $1",
            "UPDATE api_gateway.client SET active = true WHERE user_id = $1",
            (401, 200, Some(uid), false),
        ),
        (
            "UPDATE res_users_apikeys SET scope = 'other' WHERE user_id = $1",
            "UPDATE res_users_apikeys SET scope = 'rpc' WHERE user_id = $1",
            (200, 401, None, false),
        ),
        (
            "UPDATE res_users_apikeys SET expiration_date = now() AT TIME ZONE 'utc' - interval '1 minute' WHERE user_id = $1",
            "UPDATE res_users_apikeys SET expiration_date = NULL WHERE user_id = $1",
            (200, 401, None, false),
        ),
        (
            "INSERT INTO res_groups_users_rel (gid, uid) SELECT d.res_id, $1 FROM ir_model_data d \
              WHERE d.module = 'base' AND d.name = 'group_system' AND d.model = 'res.groups'",
            "DELETE FROM res_groups_users_rel r USING ir_model_data d WHERE d.res_id = r.gid \
              AND d.module = 'base' AND d.name = 'group_system' AND d.model = 'res.groups' AND r.uid = $1",
            (200, 200, Some(uid), true),
        ),
    ];
    for (change, undo, seen) in changes {
        // Rolled back: never seen, and the facts stay kept.
        let mut tx = other.transaction().unwrap();
        tx.execute(*change, &[&uid]).unwrap();
        tx.rollback().unwrap();
        assert_eq!(state(&mut db), live, "rolled back: {change}");
        other.execute(*change, &[&uid]).unwrap();
        assert_eq!(state(&mut db), *seen, "committed: {change}");
        assert_eq!(state(&mut db), *seen, "and kept: {change}");
        other.execute(*undo, &[&uid]).unwrap();
        assert_eq!(state(&mut db), live, "undone: {undo}");
    }
    // A key's scope narrowed while a backend keeps it as verified with none: the backend must not
    // keep accepting it for another scope once a statement has read the row again.
    other
        .execute(
            "UPDATE res_users_apikeys SET scope = NULL WHERE user_id = $1",
            &[&uid],
        )
        .unwrap();
    let mut fresh = api_gateway_tests::connect_to(&name);
    let verify = |db: &mut Client, scope: &str| -> Option<i32> {
        db.query_one(
            "SELECT api_gateway.verify_api_key($1, $2)",
            &[&user.key, &scope],
        )
        .unwrap()
        .get(0)
    };
    assert_eq!(
        verify(&mut fresh, "other"),
        Some(uid),
        "no scope: any scope"
    );
    other
        .execute(
            "UPDATE res_users_apikeys SET scope = 'rpc' WHERE user_id = $1",
            &[&uid],
        )
        .unwrap();
    let status: i32 = authenticate(&mut fresh, Some(&api_key), "127.0.0.1", "GET").get("status");
    assert_eq!(status, 200, "the key row read again, scope rpc");
    assert_eq!(
        verify(&mut fresh, "other"),
        None,
        "scope rpc: not another scope"
    );
    assert_eq!(verify(&mut fresh, "rpc"), Some(uid));
    drop(fresh);
    assert_eq!(state(&mut db), live, "scope restored");
    // Another key's hash on the same row, then the row deleted.
    let other_hash = api_gateway_core::apikey::hash_key(&"0".repeat(40), 6000, b"sixteen byte slt");
    let kept_hash: String = db
        .query_one(
            "SELECT key FROM res_users_apikeys WHERE user_id = $1",
            &[&uid],
        )
        .unwrap()
        .get(0);
    other
        .execute(
            "UPDATE res_users_apikeys SET key = $2 WHERE user_id = $1",
            &[&uid, &other_hash],
        )
        .unwrap();
    assert_eq!(state(&mut db), (200, 401, None, false), "changed hash");
    other
        .execute(
            "UPDATE res_users_apikeys SET key = $2 WHERE user_id = $1",
            &[&uid, &kept_hash],
        )
        .unwrap();
    assert_eq!(state(&mut db), live, "hash restored");
    // Expiry by the clock: no change is committed when the time comes.
    other
        .execute(
            "UPDATE res_users_apikeys SET expiration_date = now() AT TIME ZONE 'utc' + interval '2 seconds' \
              WHERE user_id = $1",
            &[&uid],
        )
        .unwrap();
    assert_eq!(state(&mut db), live, "not expired yet");
    assert_eq!(state(&mut db), live, "kept");
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(
        state(&mut db),
        (200, 401, None, false),
        "expired by the clock"
    );
    other
        .execute("DELETE FROM res_users_apikeys WHERE user_id = $1", &[&uid])
        .unwrap();
    assert_eq!(state(&mut db), (200, 401, None, false), "deleted key");
    drop(other);
    drop_gate_db(&name, db);
}

/// `authenticate` and `verify_api_key` are SECURITY DEFINER without a SET clause (their usual
/// answer runs no SQL): every statement they do run is pinned to `pg_catalog, pg_temp`. A
/// caller's search path that puts its own `=` first (always true) must not change an answer: an
/// archived user stays refused although another user is active.
#[test]
fn a_callers_search_path_cannot_steer_the_gate() {
    let (name, mut db) = gate_db("gate_path");
    let archived = gate_user(&mut db, "archived");
    gate_user(&mut db, "active");
    db.execute(
        "UPDATE res_users SET active = false WHERE id = $1",
        &[&archived.uid],
    )
    .unwrap();
    db.batch_execute(
        "CREATE SCHEMA hostile;
         CREATE FUNCTION hostile.always(int, int) RETURNS boolean LANGUAGE sql IMMUTABLE AS 'SELECT true';
         CREATE OPERATOR hostile.= (LEFTARG = int, RIGHTARG = int, FUNCTION = hostile.always);",
    )
    .unwrap();
    let api_key = format!("Bearer {}", archived.key);
    for path in ["pg_catalog, public", "hostile, pg_catalog, public"] {
        // A new backend each time: nothing kept, every statement runs.
        let mut caller = api_gateway_tests::connect_to(&name);
        caller
            .batch_execute(&format!("SET search_path = {path}"))
            .unwrap();
        let steered: bool = caller.query_one("SELECT 1 = 2", &[]).unwrap().get(0);
        assert_eq!(
            steered,
            path.starts_with("hostile"),
            "the operator is in effect"
        );
        let jwt: i32 =
            authenticate(&mut caller, Some(&archived.jwt), "127.0.0.1", "GET").get("status");
        let key: i32 = authenticate(&mut caller, Some(&api_key), "127.0.0.1", "GET").get("status");
        let uid: Option<i32> = caller
            .query_one("SELECT api_gateway.verify_api_key($1)", &[&archived.key])
            .unwrap()
            .get(0);
        assert_eq!((jwt, key, uid), (401, 401, None), "search_path = {path}");
    }
    drop_gate_db(&name, db);
}

/// Facts a backend kept go with the extension: after DROP EXTENSION and CREATE EXTENSION (new
/// tables, no token), a JWT the backend kept facts for is unknown on its very next call.
#[test]
fn kept_facts_do_not_survive_the_extension() {
    let (name, mut db) = gate_db("gate_recreate");
    let user = gate_user(&mut db, "recreate");
    let mut caller = api_gateway_tests::connect_to(&name);
    for _ in 0..3 {
        let status: i32 =
            authenticate(&mut caller, Some(&user.jwt), "127.0.0.1", "GET").get("status");
        assert_eq!(status, 200, "warm, then kept");
    }
    db.batch_execute("DROP EXTENSION api_gateway; CREATE EXTENSION api_gateway;")
        .unwrap();
    let status: i32 = authenticate(&mut caller, Some(&user.jwt), "127.0.0.1", "GET").get("status");
    assert_eq!(status, 401, "a token of the dropped extension");
    drop(caller);
    drop_gate_db(&name, db);
}
