//! Rate limits (issue 17): the sliding window by default, the cost per request, one meaning of a
//! limit of 0, and the counters in shared memory and in the table: exact under concurrency,
//! never more than N in any window, and never damaged by a backend dying mid-call.
//!
//! The shared-memory tests need the library in shared_preload_libraries (scripts/setup.sh puts
//! it there); they fail, not skip, when it is missing.
use api_gateway_tests::{connect, connect_plain, sqlstate};
use postgres::Client;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where a session counts: `Shared` is the default of a preloaded cluster.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Storage {
    Shared,
    Table,
}

fn session(storage: Storage) -> Client {
    let mut db = connect_plain();
    if storage == Storage::Table {
        db.batch_execute("SET api_gateway.rate_limit_shared_memory = off")
            .unwrap();
    } else {
        let preloaded: String = db
            .query_one("SELECT current_setting('shared_preload_libraries')", &[])
            .unwrap()
            .get(0);
        assert!(
            preloaded.contains("api_gateway"),
            "shared-memory counters need shared_preload_libraries = 'api_gateway' (scripts/setup.sh sets it), got {preloaded:?}"
        );
    }
    db
}

/// Forgets a subject's counter wherever it is.
pub fn reset_counter(db: &mut impl postgres::GenericClient, subject: &str) {
    db.execute(
        "DELETE FROM api_gateway.throttle WHERE subject = $1",
        &[&subject],
    )
    .unwrap();
    db.query_one("SELECT api_gateway._forget_shared_counter($1)", &[&subject])
        .unwrap();
}

fn subject(name: &str, storage: Storage) -> String {
    format!("{name}:{storage:?}:{}", std::process::id())
}

fn hit(db: &mut Client, subject: &str, max: i32, window: i32, cost: i32) -> (bool, i32, i32) {
    let r = db
        .query_one(
            "SELECT * FROM api_gateway.rate_limit_hit($1, $2, $3, $4)",
            &[&subject, &max, &window, &cost],
        )
        .unwrap();
    (r.get(0), r.get(1), r.get(2))
}

fn table_rows(db: &mut Client, subject: &str) -> i64 {
    db.query_one(
        "SELECT count(*) FROM api_gateway.throttle WHERE subject = $1",
        &[&subject],
    )
    .unwrap()
    .get(0)
}

#[test]
fn costs_count_and_a_refusal_costs_nothing_in_both_storages() {
    for storage in [Storage::Shared, Storage::Table] {
        let mut db = session(storage);
        let s = subject("cost", storage);
        reset_counter(&mut db, &s);
        assert!(hit(&mut db, &s, 10, 3600, 4).0);
        let (allowed, remaining, reset) = hit(&mut db, &s, 10, 3600, 5);
        assert!(allowed);
        assert_eq!(remaining, 1);
        assert!((1..=3660).contains(&reset), "{reset}");
        let (allowed, remaining, _) = hit(&mut db, &s, 10, 3600, 2);
        assert!(!allowed, "{storage:?}");
        assert_eq!(remaining, 1, "a refused request is not counted");
        assert!(hit(&mut db, &s, 10, 3600, 1).0);
        // Where it was counted, and the listing sees it either way.
        let rows = table_rows(&mut db, &s);
        assert_eq!(rows, if storage == Storage::Table { 1 } else { 0 });
        let (count, throttled): (i32, bool) = {
            let r = db
                .query_one(
                    "SELECT count, throttled FROM api_gateway.active_throttles WHERE subject = $1",
                    &[&s],
                )
                .unwrap();
            (r.get(0), r.get(1))
        };
        assert_eq!((count, throttled), (10, true), "{storage:?}");
        reset_counter(&mut db, &s);
        assert_eq!(hit(&mut db, &s, 10, 3600, 10).1, 0, "reset: a full budget");
    }
}

#[test]
fn a_limit_of_zero_means_no_limit_and_bad_input_is_refused() {
    let mut db = connect_plain();
    for _ in 0..3 {
        let r = db
            .query_one(
                "SELECT allowed, remaining, reset_s FROM api_gateway.rate_limit_hit('zero', 0, 60)",
                &[],
            )
            .unwrap();
        assert_eq!(
            (
                r.get::<_, bool>(0),
                r.get::<_, Option<i32>>(1),
                r.get::<_, Option<i32>>(2)
            ),
            (true, None, None)
        );
    }
    for (sql, code) in [
        (
            "SELECT * FROM api_gateway.rate_limit_hit('x', 5, 60, 0)",
            "22023",
        ),
        (
            "SELECT * FROM api_gateway.rate_limit_hit('x', 5, 60, -3)",
            "22023",
        ),
        (
            "SELECT * FROM api_gateway.rate_limit_hit('x', 5, 60, 1, 'gcra')",
            "22023",
        ),
        (
            "SELECT * FROM api_gateway.rate_limit_hit('x', 5, 60, NULL)",
            "22004",
        ),
        (
            "SELECT * FROM api_gateway.rate_limit_hit('x', 5, 60, 1, NULL)",
            "22004",
        ),
    ] {
        let err = db.query_one(sql, &[]).unwrap_err();
        assert_eq!(sqlstate(&err), code, "{sql}");
    }
}

/// 8 connections x 50 concurrent hits on one subject, limit 50: exactly 50 pass.
fn exact_under_concurrency(storage: Storage, algorithm: &'static str) {
    let s = subject(&format!("concurrent-{algorithm}"), storage);
    reset_counter(&mut session(storage), &s);
    let limit = 50;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let mut db = session(storage);
                barrier.wait();
                (0..50)
                    .filter(|_| {
                        db.query_one(
                            "SELECT allowed FROM api_gateway.rate_limit_hit($1, $2, 3600, 1, $3)",
                            &[&s, &limit, &algorithm],
                        )
                        .unwrap()
                        .get::<_, bool>(0)
                    })
                    .count()
            })
        })
        .collect();
    let allowed: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(
        allowed, limit as usize,
        "{storage:?} {algorithm}: 400 calls, limit 50"
    );
}

#[test]
fn exact_under_concurrency_in_shared_memory() {
    exact_under_concurrency(Storage::Shared, "sliding");
    exact_under_concurrency(Storage::Shared, "fixed");
}

#[test]
fn exact_under_concurrency_in_the_table() {
    exact_under_concurrency(Storage::Table, "sliding");
    exact_under_concurrency(Storage::Table, "fixed");
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Sleeps until `offset_ms` into the current window of `window_ms` (the next one if passed).
fn sleep_until_offset(window_ms: i64, offset_ms: i64) {
    let now = now_ms();
    let mut target = now - now.rem_euclid(window_ms) + offset_ms;
    if target <= now {
        target += window_ms;
    }
    std::thread::sleep(Duration::from_millis((target - now) as u64));
}

/// The burst at a window boundary: N requests late in one fixed window and N right after it.
/// The fixed window admits all 2N within less than one window; the sliding window admits N.
#[test]
fn at_a_window_boundary_fixed_admits_twice_the_limit_sliding_does_not() {
    let (n, window_s) = (5, 4);
    let window_ms = i64::from(window_s) * 1000;
    for storage in [Storage::Shared, Storage::Table] {
        let mut db = session(storage);
        let mut admitted = Vec::new();
        for algorithm in ["fixed", "sliding"] {
            let s = subject(&format!("boundary-{algorithm}"), storage);
            reset_counter(&mut db, &s);
            let mut times = Vec::new();
            // 2N requests each time: before the boundary (from 3/4 of the window), after it.
            for offset in [3 * window_ms / 4, 0] {
                sleep_until_offset(window_ms, offset);
                for _ in 0..2 * n {
                    let ok: bool = db
                        .query_one(
                            "SELECT allowed FROM api_gateway.rate_limit_hit($1, $2, $3, 1, $4)",
                            &[&s, &n, &window_s, &algorithm],
                        )
                        .unwrap()
                        .get(0);
                    if ok {
                        times.push(now_ms());
                    }
                }
            }
            admitted.push((algorithm, times));
        }
        let most_in_a_window = |times: &[i64]| {
            times
                .iter()
                .map(|&t| {
                    times
                        .iter()
                        .filter(|&&u| u >= t && u < t + window_ms)
                        .count()
                })
                .max()
                .unwrap_or(0)
        };
        let (_, fixed) = &admitted[0];
        let (_, sliding) = &admitted[1];
        assert_eq!(fixed.len(), 2 * n as usize, "{storage:?}: fixed admits 2N");
        assert_eq!(
            most_in_a_window(fixed),
            2 * n as usize,
            "{storage:?}: all 2N within one window's length"
        );
        assert_eq!(sliding.len(), n as usize, "{storage:?}: sliding admits N");
        assert!(most_in_a_window(sliding) <= n as usize);
    }
}

/// A backend terminated while it loops over rate_limit_hit leaves a counter that still counts
/// exactly: in shared memory every hit it made stays counted (and the partition's lock is free),
/// in the table its transaction's hits roll back.
#[test]
fn a_backend_terminated_mid_loop_leaves_a_sound_counter() {
    for storage in [Storage::Shared, Storage::Table] {
        let s = subject("terminated", storage);
        let mut db = session(storage);
        reset_counter(&mut db, &s);
        assert!(hit(&mut db, &s, 1_000_000_000, 3600, 1).0);
        let mut victim = session(storage);
        let pid: i32 = victim
            .query_one("SELECT pg_backend_pid()", &[])
            .unwrap()
            .get(0);
        let loop_subject = s.clone();
        let looping = std::thread::spawn(move || {
            victim.execute(
                &format!(
                    "DO $$ BEGIN FOR i IN 1..100000000 LOOP \
                     PERFORM api_gateway.rate_limit_hit('{loop_subject}', 1000000000, 3600, 1); END LOOP; END $$"
                ),
                &[],
            )
        });
        // Let the loop count for a while (it hits the same subject and lock as we read below).
        let mut seen = 0;
        while seen < 200 {
            std::thread::sleep(Duration::from_millis(20));
            seen = db
                .query_one(
                    "SELECT coalesce(max(count), 0) FROM api_gateway.active_throttles WHERE subject = $1",
                    &[&s],
                )
                .unwrap()
                .get::<_, i32>(0);
            if storage == Storage::Table {
                break; // its hits are invisible until commit
            }
        }
        std::thread::sleep(Duration::from_millis(200));
        let terminated: bool = db
            .query_one("SELECT pg_terminate_backend($1, 10000)", &[&pid])
            .unwrap()
            .get(0);
        assert!(terminated);
        assert!(looping.join().unwrap().is_err(), "the loop was cut off");
        let used: i32 = db
            .query_one(
                "SELECT count FROM api_gateway.active_throttles WHERE subject = $1",
                &[&s],
            )
            .unwrap()
            .get(0);
        if storage == Storage::Table {
            assert_eq!(used, 1, "the table rolled the loop back");
        } else {
            assert!(used > 1, "shared memory kept the loop's hits: {used}");
        }
        // Exactly two more fit under a limit of used + 2.
        let results: Vec<bool> = (0..3)
            .map(|_| hit(&mut db, &s, used + 2, 3600, 1).0)
            .collect();
        assert_eq!(results, [true, true, false], "{storage:?}");
    }
}

/// authenticate counts on the same counter as rate_limit_hit('user:<uid>', ...).
#[test]
fn authenticate_and_rate_limit_hit_share_one_counter() {
    let mut db = connect();
    let case = api_gateway_tests::key_cases()
        .into_iter()
        .find(|c| c.uid.is_some() && c.scope == "rpc")
        .unwrap();
    let uid = case.uid.unwrap();
    let user = format!("user:{uid}");
    let bearer = format!("Bearer {}", case.key);
    db.execute(
        "INSERT INTO api_gateway.profile (user_id, rate_limit, rate_limit_window, rate_limit_algorithm) VALUES ($1, 3, 'hour', 'sliding') \
         ON CONFLICT (user_id) DO UPDATE SET rate_limit = 3, rate_limit_window = 'hour', rate_limit_algorithm = 'sliding', allowed_ips = NULL, active = true",
        &[&uid],
    )
    .unwrap();
    reset_counter(&mut db, &user);
    let limited = |db: &mut Client| -> (i32, Option<i32>) {
        let r = db
            .query_one(
                "SELECT status, remaining FROM api_gateway.authenticate($1, '127.0.0.1', 'GET')",
                &[&bearer],
            )
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(limited(&mut db), (200, Some(2)));
    let r = db
        .query_one(
            "SELECT allowed, remaining FROM api_gateway.rate_limit_hit($1, 3, 3600, 1, 'sliding')",
            &[&user],
        )
        .unwrap();
    assert_eq!((r.get::<_, bool>(0), r.get::<_, i32>(1)), (true, 1));
    assert_eq!(limited(&mut db), (200, Some(0)));
    assert_eq!(limited(&mut db).0, 429);
    reset_counter(&mut db, &user);
    db.execute(
        "DELETE FROM api_gateway.profile WHERE user_id = $1",
        &[&uid],
    )
    .unwrap();
}

/// `rate_limit_hit` and `authenticate` answer their one row in one call (src/one_row.rs, the
/// materialize protocol): every place SQL may call a set-returning function gets it, once per
/// call, and a place that takes no set is refused as PostgreSQL refuses one.
#[test]
fn one_row_answers_reach_every_place_a_set_is_taken() {
    let mut db = session(Storage::Shared);
    let s = subject("places", Storage::Shared);
    reset_counter(&mut db, &s);
    // FROM, then the select list (a row value), then a field of it: three calls, one hit each.
    let from: i32 = db
        .query_one(
            "SELECT remaining FROM api_gateway.rate_limit_hit($1, 10, 60)",
            &[&s],
        )
        .unwrap()
        .get(0);
    let listed: String = db
        .query_one("SELECT api_gateway.rate_limit_hit($1, 10, 60)::text", &[&s])
        .unwrap()
        .get(0);
    let field: i32 = db
        .query_one(
            "SELECT (api_gateway.rate_limit_hit($1, 10, 60, 2)).remaining",
            &[&s],
        )
        .unwrap()
        .get(0);
    assert_eq!(from, 9);
    assert!(listed.starts_with("(t,8,"), "{listed}");
    assert_eq!(field, 6);
    // LATERAL (the call names the outer row, so it runs for each), once per outer row; and two
    // calls in one select list (a ProjectSet), each once.
    let lateral: Vec<i32> = db
        .query(
            "SELECT r.remaining FROM generate_series(1, 3) g, \
             LATERAL api_gateway.rate_limit_hit($1 || left(g::text, 0), 10, 60) r ORDER BY g",
            &[&s],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(lateral, vec![5, 4, 3]);
    let pair = db
        .query(
            "SELECT (api_gateway.rate_limit_hit($1, 10, 60)).remaining, \
                    api_gateway.rate_limit_hit($1, 10, 60)",
            &[&s],
        )
        .unwrap();
    assert_eq!(pair.len(), 1, "one row per call");
    assert_eq!(pair[0].get::<_, i32>(0), 2);
    let err = db
        .query_one(
            "SELECT 1 WHERE (api_gateway.rate_limit_hit($1, 10, 60)).allowed",
            &[&s],
        )
        .unwrap_err();
    assert_eq!(sqlstate(&err), "0A000", "{err:?}");
    // authenticate, the same way (in an Odoo database): a refusal row from FROM, the select
    // list and LATERAL.
    let mut odoo = connect();
    let status: i32 = odoo
        .query_one(
            "SELECT status FROM api_gateway.authenticate('Bearer nope', '127.0.0.1', 'GET')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(status, 401);
    let listed: String = odoo
        .query_one(
            "SELECT api_gateway.authenticate(NULL, NULL, 'GET')::text",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(listed.starts_with("(401,"), "{listed}");
    let statuses: Vec<i32> = odoo
        .query(
            "SELECT a.status FROM (VALUES ('GET'), ('BREW')) m(method), \
             LATERAL api_gateway.authenticate('Bearer nope', NULL, m.method) a",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(statuses, vec![401, 405]);
    reset_counter(&mut db, &s);
}

/// The algorithm is a setting of profiles and of the global limit, validated like the others.
#[test]
fn profiles_and_settings_choose_their_algorithm() {
    let mut db = connect();
    let mut tx = db.transaction().unwrap();
    let uid = api_gateway_tests::key_cases()
        .into_iter()
        .find_map(|c| c.uid)
        .unwrap();
    let saved: serde_json::Value = tx
        .query_one(
            "SELECT api_gateway.admin_save_profile(NULL, NULL, jsonb_build_object('user_id', $1::int, 'rate_limit', 5))",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(saved["rate_limit_algorithm"], "sliding", "the default");
    let saved: serde_json::Value = tx
        .query_one(
            "SELECT api_gateway.admin_save_profile(NULL, NULL, jsonb_build_object('user_id', $1::int, 'rate_limit', 5, 'rate_limit_algorithm', 'fixed'))",
            &[&uid],
        )
        .unwrap()
        .get(0);
    assert_eq!(saved["rate_limit_algorithm"], "fixed");
    let settings: serde_json::Value = tx
        .query_one(
            "SELECT api_gateway.admin_update_settings(NULL, NULL, '{\"rate_limit_algorithm\": \"fixed\"}')",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(settings["rate_limit_algorithm"], "fixed");
    for sql in [
        "SELECT api_gateway.admin_update_settings(NULL, NULL, '{\"rate_limit_algorithm\": \"gcra\"}')",
        "SELECT api_gateway.admin_save_profile(NULL, NULL, '{\"user_id\": 2, \"rate_limit_algorithm\": \"leaky\"}')",
    ] {
        let mut sp = tx.transaction().unwrap();
        let err = sp.query_one(sql, &[]).unwrap_err();
        assert_eq!(sqlstate(&err), "22023", "{sql}");
        sp.rollback().unwrap();
    }
    tx.rollback().unwrap();
}
