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

/// 0.4.0's `search_read` (seven arguments, no language): the entry point a 0.4.0 schema names,
/// kept so that reads keep working between a library upgrade and `ALTER EXTENSION UPDATE`.
#[pg_extern(volatile, security_definer, sql = false)]
fn search_read(
    uid: Option<i32>,
    model: Option<&str>,
    domain: Option<&str>,
    fields: Option<Vec<Option<String>>>,
    limit: Option<i32>,
    offset: Option<i32>,
    order: Option<&str>,
) -> RawJsonb {
    search_read_in(uid, model, domain, fields, limit, offset, order, None)
}

/// `api_gateway.search_read(uid, model, domain DEFAULT '[]', fields DEFAULT NULL, "limit" DEFAULT NULL,
/// "offset" DEFAULT 0, "order" DEFAULT NULL, lang DEFAULT NULL) RETURNS jsonb`: the visible
/// records matching the domain; translated values and display names in `lang` (an installed
/// code, or a tag naming one: `fr`, `fr-FR`; NULL: the user's language).
#[pg_extern(volatile, security_definer, name = "search_read")]
#[search_path(pg_catalog, public, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn search_read_lang(
    uid: Option<i32>,
    model: Option<&str>,
    domain: default!(Option<&str>, "'[]'"),
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
    limit: default!(Option<i32>, "NULL"),
    offset: default!(Option<i32>, 0),
    order: default!(Option<&str>, "NULL"),
    lang: default!(Option<&str>, "NULL"),
) -> RawJsonb {
    search_read_in(uid, model, domain, fields, limit, offset, order, lang)
}

#[allow(clippy::too_many_arguments)]
fn search_read_in(
    uid: Option<i32>,
    model: Option<&str>,
    domain: Option<&str>,
    fields: Option<Vec<Option<String>>>,
    limit: Option<i32>,
    offset: Option<i32>,
    order: Option<&str>,
    lang: Option<&str>,
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
        lang.map(str::to_string),
    );
    data::cache::optimistic(|| {
        data::cache::remembered(key.clone(), || {
            read::search_read(read::Request {
                uid,
                model,
                // Parsed only when the statement is built (a remembered one needs no domain).
                domain: read::parse_domain(domain),
                fields: fields.clone(),
                page: Some((limit, offset)),
                order,
                active_test: true,
                single: false,
                version: false,
                lang: data::lang::explicit(lang),
                specification: None,
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

/// 0.4.0's `search_page` (no language), kept for a 0.4.0 schema (see `search_read`).
#[pg_extern(volatile, security_definer, sql = false)]
fn search_page(
    uid: Option<i32>,
    model: Option<&str>,
    domain: Option<&str>,
    fields: Option<Vec<Option<String>>>,
    limit: Option<i32>,
    order: Option<&str>,
    after: Option<&str>,
) -> RawJsonb {
    search_page_in(uid, model, domain, fields, limit, order, after, None)
}

/// `api_gateway.search_page(uid, model, domain DEFAULT '[]', fields DEFAULT NULL, "limit" DEFAULT
/// NULL, "order" DEFAULT NULL, after DEFAULT NULL, lang DEFAULT NULL) RETURNS jsonb`: keyset
/// pagination, `{"records": [...], "next": <cursor of the next page, or null>}`; `after` is the
/// `next` of the previous page (signed: it only resumes the same query for the same user, in the
/// same language).
#[pg_extern(volatile, security_definer, name = "search_page")]
#[search_path(pg_catalog, public, pg_temp)]
#[allow(clippy::too_many_arguments)]
fn search_page_lang(
    uid: Option<i32>,
    model: Option<&str>,
    domain: default!(Option<&str>, "'[]'"),
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
    limit: default!(Option<i32>, "NULL"),
    order: default!(Option<&str>, "NULL"),
    after: default!(Option<&str>, "NULL"),
    lang: default!(Option<&str>, "NULL"),
) -> RawJsonb {
    search_page_in(uid, model, domain, fields, limit, order, after, lang)
}

#[allow(clippy::too_many_arguments)]
fn search_page_in(
    uid: Option<i32>,
    model: Option<&str>,
    domain: Option<&str>,
    fields: Option<Vec<Option<String>>>,
    limit: Option<i32>,
    order: Option<&str>,
    after: Option<&str>,
    lang: Option<&str>,
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
        lang: data::lang::explicit(lang),
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

/// 0.4.0's `search_count` (no language), kept for a 0.4.0 schema (see `search_read`).
#[pg_extern(volatile, security_definer, sql = false)]
fn search_count(uid: Option<i32>, model: Option<&str>, domain: Option<&str>) -> i64 {
    search_count_lang(uid, model, domain, None)
}

/// `api_gateway.search_count(uid, model, domain DEFAULT '[]', lang DEFAULT NULL) RETURNS bigint`;
/// `lang` is the language conditions on translated fields compare in (NULL: the user's).
#[pg_extern(volatile, security_definer, name = "search_count")]
#[search_path(pg_catalog, public, pg_temp)]
fn search_count_lang(
    uid: Option<i32>,
    model: Option<&str>,
    domain: default!(Option<&str>, "'[]'"),
    lang: default!(Option<&str>, "NULL"),
) -> i64 {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    read::search_count(
        uid,
        model,
        read::parse_domain(domain),
        data::lang::explicit(lang),
    )
}

/// 0.4.0's `read` (no language), kept for a 0.4.0 schema (see `search_read`).
#[pg_extern(volatile, security_definer, sql = false)]
fn data_read(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    fields: Option<Vec<Option<String>>>,
) -> Option<RawJsonb> {
    read_one(uid, model, id, fields, None, false)
}

/// `api_gateway.read(uid, model, id, fields DEFAULT NULL, lang DEFAULT NULL) RETURNS jsonb`: the
/// record, or NULL when it does not exist or the user may not see it. Archived records are
/// readable by id. `lang` as in `search_read`.
#[pg_extern(volatile, security_definer, name = "read")]
#[search_path(pg_catalog, public, pg_temp)]
fn data_read_lang(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
    lang: default!(Option<&str>, "NULL"),
) -> Option<RawJsonb> {
    read_one(uid, model, id, fields, lang, false)
}

/// One record by id (`read`, `read_versioned`).
fn read_one(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    fields: Option<Vec<Option<String>>>,
    lang: Option<&str>,
    version: bool,
) -> Option<RawJsonb> {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let id = id?;
    let lang = data::lang::explicit(lang);
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
            version,
            lang: lang.clone(),
            specification: None,
        })
    })
}

/// The tree of a `specification` argument (NULL reads only `id`, as Odoo's `web_read({})`).
fn specification(spec: Option<&pgrx::JsonB>) -> Vec<api_gateway_core::nested::Node> {
    spec.map_or_else(Vec::new, |s| {
        api_gateway_core::odoo::nested_read::specification_tree(&s.0)
            .unwrap_or_else(|e| data::refuse(e))
    })
}

/// `api_gateway.web_search_read(uid, model, domain DEFAULT '[]', specification DEFAULT '{}',
/// "limit" DEFAULT NULL, "offset" DEFAULT 0, "order" DEFAULT NULL) RETURNS jsonb`: the visible
/// records matching the domain, each shaped by a `web_read` specification (nested records read
/// with their own model's access rights and rules), in one statement.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn web_search_read(
    uid: Option<i32>,
    model: Option<&str>,
    domain: default!(Option<&str>, "'[]'"),
    specification: default!(Option<pgrx::JsonB>, "'{}'"),
    limit: default!(Option<i32>, "NULL"),
    offset: default!(Option<i32>, 0),
    order: default!(Option<&str>, "NULL"),
) -> RawJsonb {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let spec_text = specification.as_ref().map(|s| s.0.to_string());
    // The remembered statement's key: a specification where a field list goes, behind a
    // control character no valid field list holds (an invalid one is never remembered).
    let key = (
        uid,
        model.to_string(),
        domain.map(str::to_string),
        Some(vec![Some(format!(
            "\u{1}spec {}",
            spec_text.unwrap_or_default()
        ))]),
        limit,
        offset,
        order.map(str::to_string),
        false,
        None,
    );
    data::cache::optimistic(|| {
        data::cache::remembered(key.clone(), || {
            // Parsed only when the statement is built (a remembered one needs neither).
            read::search_read(read::Request {
                uid,
                model,
                domain: read::parse_domain(domain),
                fields: None,
                page: Some((limit, offset)),
                order,
                active_test: true,
                single: false,
                version: false,
                specification: Some(self::specification(specification.as_ref())),
                lang: None,
            })
        })
    })
    .unwrap_or_else(|| {
        crate::error::raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            "web_search_read returned no row",
            None,
        )
    })
}

fn web_read_one(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    specification: Option<pgrx::JsonB>,
    version: bool,
) -> Option<RawJsonb> {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let tree = self::specification(specification.as_ref());
    let id = id?;
    data::cache::optimistic(|| {
        read::search_read(read::Request {
            uid,
            model,
            domain: read::id_domain(id),
            fields: None,
            page: None,
            order: None,
            active_test: false,
            single: true,
            version,
            specification: Some(tree.clone()),
            lang: None,
        })
    })
}

/// `api_gateway.web_read(uid, model, id, specification DEFAULT '{}') RETURNS jsonb`: the record
/// shaped by a `web_read` specification, or NULL like `read`.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn web_read(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    specification: default!(Option<pgrx::JsonB>, "'{}'"),
) -> Option<RawJsonb> {
    web_read_one(uid, model, id, specification, false)
}

/// `api_gateway.web_read_versioned(uid, model, id, specification DEFAULT '{}') RETURNS jsonb`:
/// `{"record": <as web_read returns it>, "version": "<row version>"}`, or NULL.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn web_read_versioned(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    specification: default!(Option<pgrx::JsonB>, "'{}'"),
) -> Option<RawJsonb> {
    web_read_one(uid, model, id, specification, true)
}

/// `api_gateway._nested_read_refused(uid, model, id) RETURNS jsonb`: raises 42501. A nested
/// read's statement evaluates it for a related record the caller may not read (Odoo's `read`
/// raises AccessError there); it only ever raises, so it needs no grant.
#[pg_extern(volatile)]
#[search_path(pg_catalog, pg_temp)]
fn _nested_read_refused(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
) -> Option<pgrx::JsonB> {
    raise(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!(
            "user {} may not read record {} of model {} (reached by a nested read): its access rights or record rules hide it",
            uid.unwrap_or(0),
            id.unwrap_or(0),
            model.unwrap_or("?")
        ),
        Some(
            "read it without sub-fields (its id and display_name need no access), or ask for access to it",
        ),
    )
}

/// `api_gateway.fields_in_sql(uid, model, fields) RETURNS text[]`: the requested fields SQL
/// reads (`id` first), each checked as `search_read` checks it; NULL when `fields` is NULL or
/// empty (every stored field). With `odoo_fill`, the front's split of a field list when
/// Odoo fills the rest (`--odoo-url`); the decision is `api_gateway_core::fields::source`.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn fields_in_sql(
    uid: Option<i32>,
    model: Option<&str>,
    fields: Option<Vec<Option<String>>>,
) -> Option<Vec<String>> {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    read::split_fields(uid, model, fields).0
}

/// `api_gateway.odoo_fill(uid, model, fields) RETURNS jsonb`: what Odoo must fill, NULL when
/// nothing: `{"fields": [the requested fields only Odoo can give (binary, computed and not
/// stored), in the order asked], "context": {"lang": the user's language}}`; the front asks
/// Odoo's `read` for them with that context (the language SQL reads in).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn odoo_fill(
    uid: Option<i32>,
    model: Option<&str>,
    fields: Option<Vec<Option<String>>>,
) -> Option<pgrx::JsonB> {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let odoo = read::split_fields(uid, model, fields).1;
    if odoo.is_empty() {
        return None;
    }
    let lang = context::load(uid, model, data::Operation::Read)
        .lang
        .clone();
    Some(pgrx::JsonB(serde_json::json!({
        "fields": odoo,
        "context": {"lang": lang},
    })))
}

/// `api_gateway.binary_file(uid, model, id, field) RETURNS jsonb`: before a binary field is
/// served as a file, Odoo's checks (access right and field groups: 42501; not a binary field:
/// 22023) and `{"attachment": {name, mimetype, checksum, store_fname, file_size, type} | null}`;
/// NULL when the record does not exist or the user may not read it.
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn binary_file(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    field: Option<&str>,
) -> Option<pgrx::JsonB> {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    let field = required(field, "field");
    let id = id?;
    data::binary::binary_file(uid, model, id, field).map(pgrx::JsonB)
}

/// SQL writes are opt-in per model (`settings.sql_write_models`): they skip Odoo's Python
/// (defaults, computed fields, sequences, constraints, business rules), so any other model is
/// refused with 0A000 before anything is checked or written.
fn require_sql_writes(model: &str) {
    let listed: Option<bool> = spi(Spi::connect(|c| {
        let plan = crate::spi::plan(
            c,
            // Read through to_jsonb: between the library's replacement and ALTER EXTENSION
            // UPDATE to 0.4.0 the column does not exist yet, and writes keep working as before.
            "SELECT CASE WHEN to_jsonb(s) ? 'sql_write_models' \
                         THEN (to_jsonb(s) -> 'sql_write_models') ? $1 ELSE true END \
               FROM api_gateway.settings s",
            &[PgBuiltInOids::TEXTOID],
            false,
        );
        c.select(plan, Some(1), &[model.into()])?
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

/// 0.4.0's `read_versioned` (no language), kept for a 0.4.0 schema (see `search_read`).
#[pg_extern(volatile, security_definer, sql = false)]
fn read_versioned(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    fields: Option<Vec<Option<String>>>,
) -> Option<RawJsonb> {
    read_one(uid, model, id, fields, None, true)
}

/// `api_gateway.read_versioned(uid, model, id, fields DEFAULT NULL, lang DEFAULT NULL) RETURNS
/// jsonb`: `{"record": <as read returns it>, "version": "<row version>"}`, or NULL like `read`.
/// The version changes with every update of the row; `write_if_match`/`unlink_if_match` take it.
#[pg_extern(volatile, security_definer, name = "read_versioned")]
#[search_path(pg_catalog, public, pg_temp)]
fn read_versioned_lang(
    uid: Option<i32>,
    model: Option<&str>,
    id: Option<i32>,
    fields: default!(Option<Vec<Option<String>>>, "NULL"),
    lang: default!(Option<&str>, "NULL"),
) -> Option<RawJsonb> {
    read_one(uid, model, id, fields, lang, true)
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
    data::write::write_checked(uid, model, id, &vals.0, Some(&versions)).as_str()
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
    data::write::unlink_checked(uid, model, id, Some(&versions)).as_str()
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

/// `api_gateway.fields_get(uid, model, lang DEFAULT NULL) RETURNS jsonb`: every field of the
/// model as Odoo's `fields_get` describes it to the user (stored or not; labels, help and
/// selection labels in `lang`, else the user's language, with en_US fallback; fields restricted
/// to groups the user lacks left out), each with `source`: `sql` (read by the gateway) or `odoo`
/// (needs Odoo itself: `api-gateway serve --odoo-url`).
#[pg_extern(volatile, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn fields_get(
    uid: Option<i32>,
    model: Option<&str>,
    lang: default!(Option<&str>, "NULL"),
) -> pgrx::JsonB {
    let uid = required(uid, "uid");
    let model = required(model, "model");
    pgrx::JsonB(data::fields::fields_get(uid, model, lang))
}

/// `api_gateway.negotiate_language(accept_language text) RETURNS text`: the installed language
/// (a `res_lang` code) an HTTP `Accept-Language` value prefers (RFC 9110 q-values; `fr` → `fr_FR`,
/// `en` → `en_US`), or NULL when it names none, names any (`*`) or cannot be read: the user's own
/// language then applies.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn negotiate_language(accept_language: Option<&str>) -> Option<String> {
    data::lang::negotiate(accept_language)
}
