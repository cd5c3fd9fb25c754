//! `api_gateway.changes`: the change feed of a model (src/sql/feed.sql logs the writes; the
//! cursor and its expiry are decided by `api_gateway_core::feed`). One statement reads the log
//! window and the changed records' current values, shaped and filtered exactly as
//! `search_read` does (same field selection, values, access rights and record rules).
use crate::data::context;
use crate::data::read::{self, Models};
use crate::data::{Operation, params};
use crate::error::{raise, spi};
use crate::spi::RawJsonb;
use api_gateway_core::domain::{Domain, Param};
use api_gateway_core::odoo::select;
use api_gateway_core::{cursor, feed};
use pgrx::prelude::*;

pub struct Request<'a> {
    pub uid: i32,
    pub model: &'a str,
    pub since: Option<&'a str>,
    pub fields: Option<Vec<Option<String>>>,
    pub limit: Option<i32>,
}

/// The model's feed: (id, purge horizon, triggers intact, table).
fn feed_row(model: &str) -> Option<(i64, u64, bool, String)> {
    Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            "SELECT f.id, f.purged_below::text, api_gateway._feed_intact(f.table_name, f.id), f.table_name \
               FROM api_gateway.feed f WHERE f.model = $1",
            &[PgBuiltInOids::TEXTOID],
            false,
        );
        let t = spi(c.select(plan, Some(1), &[model.into()]));
        if t.is_empty() {
            return None;
        }
        let row = t.first();
        Some((
            spi(row.get::<i64>(1)).unwrap_or_default(),
            spi(row.get::<String>(2))
                .and_then(|s| s.parse().ok())
                .unwrap_or(u64::MAX),
            spi(row.get::<bool>(3)).unwrap_or(false),
            spi(row.get::<String>(4)).unwrap_or_default(),
        ))
    })
}

fn bad_cursor(e: impl std::fmt::Display) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("invalid cursor: {e}"),
        Some("pass back the next of the previous answer unchanged, for the same model and user"),
    )
}

fn snapshot(text: Option<String>) -> feed::Snapshot {
    text.as_deref()
        .and_then(feed::Snapshot::parse)
        .unwrap_or_else(|| {
            raise(
                PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                "changes: unreadable snapshot",
                None,
            )
        })
}

/// `{"records": [...], "deleted": [ids], "next": "<cursor>", "more": bool}`.
pub fn changes(req: Request) -> RawJsonb {
    crate::odoo::require_odoo("changes", crate::data::TABLES);
    let user = context::load(req.uid, req.model, Operation::Read);
    let models = Models::new(&user, req.model);
    let model = models.get(req.model);
    user.require_access(req.model, Operation::Read);
    let limit = select::page(user.limits, req.limit, None)
        .unwrap_or_else(|e| crate::data::refuse(e))
        .limit;
    if limit == 0 {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "invalid limit 0: a change feed page holds at least one change",
            None,
        );
    }
    let Some((feed_id, purged_below, intact, table)) = feed_row(req.model) else {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "the change feed of model {m} is not enabled: a database administrator must enable it (feed_enable('{m}'))",
                m = req.model
            ),
            Some(&format!(
                "a DBA enables it with SELECT api_gateway.feed_enable('{}')",
                req.model
            )),
        )
    };
    if !intact || table != model.table() {
        raise(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            format!(
                "the change feed of model {} lost its triggers on table {table} (dropped, disabled, or the table was re-created): changes may be missing",
                req.model
            ),
            Some(&format!(
                "a DBA repairs it with SELECT api_gateway.feed_enable('{}'); its cursors then expire and clients read everything once",
                req.model
            )),
        )
    }
    let keys = read::signing_keys();
    let Some((kid, secret)) = keys.first().cloned() else {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "api_gateway.settings has no row",
            None,
        )
    };
    let sign = |c: &feed::FeedCursor| feed::sign(c, &cursor::derive_key(&secret));
    let Some(token) = req.since else {
        // A new feed: no change yet, a cursor at this moment. Changes committed from now on
        // (and those of transactions still running) come with the next poll.
        let now = snapshot(
            Spi::get_one::<String>("SELECT pg_current_snapshot()::text")
                .ok()
                .flatten(),
        );
        let c = feed::FeedCursor::at(&kid, req.model, req.uid, feed_id, &now);
        return finish(None, false, &sign(&c));
    };
    let claimed = cursor::claimed_kid(token).unwrap_or_else(|e| bad_cursor(e));
    let key = keys
        .iter()
        .find(|(k, _)| *k == claimed)
        .map(|(_, s)| cursor::derive_key(s))
        .unwrap_or_else(|| bad_cursor(cursor::CursorError::BadSignature));
    let (c, since, upto) = feed::open(token, &key, req.model, req.uid, feed_id, purged_below)
        .unwrap_or_else(|e| match e {
            feed::FeedError::Expired | feed::FeedError::Reenabled => raise(
                PgSqlErrorCode::ERRCODE_SNAPSHOT_TOO_OLD,
                format!("cursor expired: {e}"),
                Some("call again without since to start a new feed"),
            ),
            _ => bad_cursor(e),
        });

    // The records: every readable record of the model (archived ones too: archiving is a
    // change), restricted below to the ids of the window.
    let q = read::visible_rows(&user, &models, &model, &Domain::True, false);
    let shaper = read::shaper_over(&models, &user, q.params);
    let pairs =
        select::flat_pairs(&shaper, &model, req.fields).unwrap_or_else(|e| crate::data::refuse(e));
    let mut params = shaper.into_params();
    let mut param = |p: Param| {
        params.push(p);
        params.len()
    };
    let window = feed::Window {
        feed: param(Param::Int(feed_id)),
        since: param(Param::Text(since.to_string())),
        upto: param(Param::Text(
            upto.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        )),
        after: param(Param::Int(c.after.unwrap_or(i64::MIN))),
        limit: param(Param::Int(limit)),
    };
    let sql = feed::changes_sql(
        &select::object_sql(&pairs),
        &q.from_where,
        model.table_ident(),
        &window,
    );
    let args = params::datums(&params);
    let (body, hi, last, more) = Spi::connect(|client| {
        let plan = crate::spi::plan_cached(client, &sql, &params::types(&params), false);
        let t = spi(client.select(&*plan, Some(1), &args)).first();
        let hi: Option<String> = spi(t.get::<String>(2));
        let last: Option<i64> = spi(t.get::<i64>(3));
        let more = spi(t.get::<bool>(4)).unwrap_or(false);
        (crate::spi::jsonb_at(&t, 1), hi, last, more)
    });
    let hi = snapshot(hi);
    let body = body.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "changes returned no row",
            None,
        )
    });
    let next = c.next(&hi, if more { last } else { None });
    finish(Some(body), more, &sign(&next))
}

/// The answer: `body` (records, deleted; empty lists without one) with `more` and `next`.
fn finish(body: Option<RawJsonb>, more: bool, next: &str) -> RawJsonb {
    crate::spi::one_jsonb(
        "SELECT coalesce($1::jsonb, '{\"records\": [], \"deleted\": []}'::jsonb) \
                || jsonb_build_object('next', $3::text, 'more', $2::boolean)",
        &[
            PgBuiltInOids::JSONBOID,
            PgBuiltInOids::BOOLOID,
            PgBuiltInOids::TEXTOID,
        ],
        vec![body.into(), more.into(), next.into()],
        "changes",
    )
}
