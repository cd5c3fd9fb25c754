//! Odoo-faithful reads and writes on any model, as the given Odoo user:
//! `search_read`, `search_count`, `read`, `create`, `write`, `unlink`, `check_access`.
use crate::data::{self, Operation, context, read};
use crate::error::{raise, spi};
use crate::spi::RawJsonb;
use pgrx::prelude::*;

fn required<T>(v: Option<T>, what: &str) -> T {
    v.unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("{what} must not be NULL"),
            None,
        )
    })
}

/// `api_gateway.search_read(uid, model, domain DEFAULT '[]', fields DEFAULT NULL, "limit" DEFAULT NULL,
/// "offset" DEFAULT 0, "order" DEFAULT NULL) RETURNS jsonb`: the visible records matching the domain.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn search_read(
    uid: Option<i32>,
    model: Option<&str>,
    domain: default!(Option<&str>, "'[]'"),
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
    limit: default!(Option<i32>, "NULL"),
    offset: default!(Option<i32>, 0),
    order: default!(Option<&str>, "NULL"),
) -> RawJsonb {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let key = (
        uid,
        model.to_string(),
        domain.map(str::to_string),
        fields.clone(),
        limit,
        offset,
        order.map(str::to_string),
        false,
    );
    let parsed = read::parse_domain(domain);
    data::cache::optimistic(|| {
        data::cache::remembered(key.clone(), || {
            read::search_read(read::Request {
                uid,
                model,
                domain: parsed.clone(),
                fields: fields.clone(),
                page: Some((limit, offset)),
                order,
                active_test: true,
                single: false,
                version: false,
            })
        })
    })
    .unwrap_or_else(|| {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "search_read returned no row",
            None,
        )
    })
}

/// `api_gateway.search_page(uid, model, domain DEFAULT '[]', fields DEFAULT NULL, "limit" DEFAULT
/// NULL, "order" DEFAULT NULL, after DEFAULT NULL) RETURNS jsonb`: keyset pagination,
/// `{"records": [...], "next": <cursor of the next page, or null>}`; `after` is the `next` of
/// the previous page (signed: it only resumes the same query for the same user).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn search_page(
    uid: Option<i32>,
    model: Option<&str>,
    domain: default!(Option<&str>, "'[]'"),
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
    limit: default!(Option<i32>, "NULL"),
    order: default!(Option<&str>, "NULL"),
    after: default!(Option<&str>, "NULL"),
) -> RawJsonb {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    read::search_page(read::PageRequest {
        uid,
        model,
        domain_text: domain.unwrap_or("[]"),
        fields,
        limit,
        order,
        after: after.filter(|a| !a.is_empty()),
    })
}

/// `api_gateway.changes(uid, model, since DEFAULT NULL, fields DEFAULT NULL, "limit" DEFAULT
/// NULL) RETURNS jsonb`: the change feed of a model the DBA enabled (`feed_enable`):
/// `{"records": [...], "deleted": [ids], "next": "<cursor>", "more": bool}`, the records created
/// or updated since the cursor `since` with their current values as `search_read` returns them,
/// the ids deleted since, and the cursor of the next poll. Without `since`: a new feed (no
/// change, a cursor at this moment).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn changes(
    uid: Option<i32>,
    model: Option<&str>,
    since: default!(Option<&str>, "NULL"),
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
    limit: default!(Option<i32>, "NULL"),
) -> RawJsonb {
    data::feed::changes(data::feed::Request {
        uid: required(uid, "uid"),
        model: required(model, "model"),
        since: since.filter(|s| !s.is_empty()),
        fields,
        limit,
    })
}

/// `api_gateway.search_count(uid, model, domain DEFAULT '[]') RETURNS bigint`
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn search_count(
    uid: Option<i32>,
    model: Option<&str>,
    domain: default!(Option<&str>, "'[]'"),
) -> i64 {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    read::search_count(uid, model, read::parse_domain(domain))
}

/// `api_gateway.read(uid, model, id, fields DEFAULT NULL) RETURNS jsonb`: the record, or NULL
/// when it does not exist or the user may not see it. Archived records are readable by id.
#[pg_extern(volatile, security_definer, name = "read")]
#[search_path(pg_catalog, public, pg_temp)]
fn data_read(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
) -> Option<RawJsonb> {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let id = id?;
    data::cache::optimistic(|| {
        read::search_read(read::Request {
            uid,
            model,
            domain: read::id_domain(id),
            fields: fields.clone(),
            page: None,
            order: None,
            active_test: false,
            single: true,
            version: false,
        })
    })
}

/// SQL writes are opt-in per model (`settings.sql_write_models`): they skip Odoo's Python
/// (defaults, computed fields, sequences, constraints, business rules), so any other model is
/// refused with 0A000 before anything is checked or written.
fn require_sql_writes(model: &str) {
    let listed: Option<bool> = spi(Spi::connect(|c| {
        c.select(
            // Read through to_jsonb: between the library's replacement and ALTER EXTENSION
            // UPDATE to 0.4.0 the column does not exist yet, and writes keep working as before.
            "SELECT CASE WHEN to_jsonb(s) ? 'sql_write_models' \
                         THEN (to_jsonb(s) -> 'sql_write_models') ? $1 ELSE true END \
               FROM api_gateway.settings s",
            Some(1),
            &[model.into()],
        )?
        .first()
        .get_one::<bool>()
    }));
    if listed != Some(true) {
        raise(
            PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
            format!(
                "SQL writes to {model} are off: its writes must go through Odoo (its JSON-2 API, or api-gateway serve --odoo-url)"
            ),
            Some(
                "a SQL write skips Odoo's Python (defaults, computed fields, sequences, constraints, business rules); to allow it anyway for a model, add the model to api_gateway.settings.sql_write_models",
            ),
        )
    }
}

/// `api_gateway.read_versioned(uid, model, id, fields DEFAULT NULL) RETURNS jsonb`:
/// `{"record": <as read returns it>, "version": "<row version>"}`, or NULL like `read`. The
/// version changes with every update of the row; `write_if_match`/`unlink_if_match` take it.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn read_versioned(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
) -> Option<RawJsonb> {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let id = id?;
    data::cache::optimistic(|| {
        read::search_read(read::Request {
            uid,
            model,
            domain: read::id_domain(id),
            fields: fields.clone(),
            page: None,
            order: None,
            active_test: false,
            single: true,
            version: true,
        })
    })
}

/// What a conditional write or unlink did: `done`, `not_found` (missing or not visible: as the
/// plain function's false) or `changed` (the row version is none of `versions`; nothing done).
fn outcome(o: data::write::Outcome) -> &'static str {
    match o {
        data::write::Outcome::Done => "done",
        data::write::Outcome::NotFound => "not_found",
        data::write::Outcome::Changed => "changed",
    }
}

fn versions(v: Option<Vec<Option<String>>>) -> Vec<String> {
    required(v, "versions").into_iter().flatten().collect()
}

/// `api_gateway.write_if_match(uid, model, id, vals jsonb, versions text[]) RETURNS text`:
/// `write` when the record's row version (from `read_versioned`) is one of `versions`, checked
/// on the row locked for the update, so no other write can come in between.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn write_if_match(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    vals: Option<pgrx::JsonB>,
    versions: Option<Vec<Option<String>>>,
) -> &'static str {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let id = required(id, "id");
    let vals = required(vals, "vals");
    let versions = self::versions(versions);
    require_sql_writes(model);
    outcome(data::write::write_checked(
        uid,
        model,
        id,
        &vals.0,
        Some(&versions),
    ))
}

/// `api_gateway.unlink_if_match(uid, model, id, versions text[]) RETURNS text`: `unlink` under
/// the same condition as `write_if_match`.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn unlink_if_match(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    versions: Option<Vec<Option<String>>>,
) -> &'static str {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let id = required(id, "id");
    let versions = self::versions(versions);
    require_sql_writes(model);
    outcome(data::write::unlink_checked(uid, model, id, Some(&versions)))
}

/// `api_gateway.create(uid, model, vals jsonb) RETURNS integer`: the new record's id.
#[pg_extern(volatile, security_definer, name = "create")]
#[search_path(pg_catalog, public, pg_temp)]
fn data_create(uid: Option<i32>, model: Option<&str>, vals: Option<pgrx::JsonB>) -> i32 {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let vals = required(vals, "vals");
    require_sql_writes(model);
    data::write::create(uid, model, &vals.0)
}

/// `api_gateway.write(uid, model, id, vals jsonb) RETURNS boolean`: false when the record does
/// not exist or is not visible to the user.
#[pg_extern(volatile, security_definer, name = "write")]
#[search_path(pg_catalog, public, pg_temp)]
fn data_write(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    vals: Option<pgrx::JsonB>,
) -> bool {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let Some(id) = id else { return false };
    let vals = required(vals, "vals");
    require_sql_writes(model);
    data::write::write(uid, model, id, &vals.0)
}

/// `api_gateway.unlink(uid, model, id) RETURNS boolean`: false when not found or not visible.
#[pg_extern(volatile, security_definer, name = "unlink")]
#[search_path(pg_catalog, public, pg_temp)]
fn data_unlink(uid: Option<i32>, model: Option<&str>, id: Option<i32>) -> bool {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let Some(id) = id else { return false };
    require_sql_writes(model);
    data::write::unlink(uid, model, id)
}

/// `api_gateway.check_access(uid, model, operation) RETURNS boolean`: whether the access rights
/// (`ir.model.access`) grant `operation` (read, write, create, unlink) on `model`.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn check_access(uid: Option<i32>, model: Option<&str>, operation: Option<&str>) -> bool {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let op = Operation::parse(required(operation, "operation")).unwrap_or_else(|| {
        raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            "operation must be one of read, write, create, unlink",
            None,
        )
    });
    crate::odoo::require_odoo("check_access", data::TABLES);
    let _ = data::meta::model(model);
    context::load(uid, model, op).allowed
}
