//! Odoo-faithful reads and writes on any model, as the given Odoo user:
//! `search_read`, `search_count`, `read`, `create`, `write`, `unlink`, `check_access`.
use crate::data::{self, Operation, context, read};
use crate::error::raise;
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
        })
    })
}

/// `api_gateway.create(uid, model, vals jsonb) RETURNS integer`: the new record's id.
#[pg_extern(volatile, security_definer, name = "create")]
#[search_path(pg_catalog, public, pg_temp)]
fn data_create(uid: Option<i32>, model: Option<&str>, vals: Option<pgrx::JsonB>) -> i32 {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let vals = required(vals, "vals");
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
    data::write::write(uid, model, id, &vals.0)
}

/// `api_gateway.unlink(uid, model, id) RETURNS boolean`: false when not found or not visible.
#[pg_extern(volatile, security_definer, name = "unlink")]
#[search_path(pg_catalog, public, pg_temp)]
fn data_unlink(uid: Option<i32>, model: Option<&str>, id: Option<i32>) -> bool {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let Some(id) = id else { return false };
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
