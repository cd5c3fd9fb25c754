//! create / write / unlink with Odoo's checks: the access right first, then the record rules
//! (write/unlink: on the record before the change; create: on the new row after the insert,
//! rolling back when it does not match). Values go through `jsonb_populate_record`, so
//! PostgreSQL converts and validates every value; no value is ever spliced into SQL text.
use crate::data::context::{self, UserContext};
use crate::data::meta::ModelMeta;
use crate::data::read::{Models, id_domain, visible_rows};
use crate::data::{Operation, params};
use crate::error::{ident, raise, spi};
use api_gateway_core::domain::Param;
use api_gateway_core::field_values::{self, Command, ValueError, Values, WriteField, Writer};
use pgrx::prelude::*;
use serde_json::Value;
use std::collections::HashMap;

fn invalid(msg: String) -> ! {
    raise(PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE, msg, None)
}

/// A value refused by `api_gateway_core::field_values`, with its SQLSTATE.
fn refuse_value(e: &ValueError) -> ! {
    let code = match e.sqlstate() {
        "22003" => PgSqlErrorCode::ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE,
        "22001" => PgSqlErrorCode::ERRCODE_STRING_DATA_RIGHT_TRUNCATION,
        "42501" => PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        _ => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
    };
    raise(code, e.to_string(), None)
}

/// For the fields named in `names`: the `size` of sized char fields and the keys of selection
/// fields as `ir_model_fields_selection` lists them (none for a selection given by a method).
fn field_extras<'a>(
    model: &str,
    names: impl Iterator<Item = &'a String>,
) -> HashMap<String, (usize, Vec<String>)> {
    let names: Vec<String> = names.take(1000).cloned().collect();
    let sql = "SELECT f.name::text, coalesce(f.size, 0)::int8, \
         CASE WHEN f.ttype = 'selection' AND to_regclass('public.ir_model_fields_selection') IS NOT NULL \
              THEN coalesce((SELECT array_agg(s.value::text ORDER BY s.sequence, s.id) \
                               FROM public.ir_model_fields_selection s WHERE s.field_id = f.id), '{}') \
              ELSE '{}'::text[] END \
         FROM public.ir_model_fields f \
        WHERE f.model = $1 AND f.name = ANY($2::text[]) \
          AND (f.ttype = 'selection' OR (f.ttype = 'char' AND f.size > 0))";
    let p = [Param::Text(model.to_string()), Param::TextArray(names)];
    let args = params::datums(&p);
    Spi::connect(|c| {
        let t = spi(c.select(sql, None, &args));
        t.into_iter()
            .filter_map(|r| {
                let name = spi(r.get::<String>(1))?;
                let size = spi(r.get::<i64>(2)).unwrap_or(0).max(0) as usize;
                let keys = spi(r.get::<Vec<String>>(3)).unwrap_or_default();
                Some((name, (size, keys)))
            })
            .collect()
    })
}

/// Many2one values must name an existing record of the comodel: an error naming the field
/// instead of the foreign key's text (and company-dependent many2ones have no foreign key).
fn check_targets(model: &ModelMeta, targets: &[(String, String, i64)]) {
    for (field, comodel, id) in targets {
        let Ok(co) = crate::data::meta::try_model(comodel) else {
            continue;
        };
        let sql = format!(
            "SELECT EXISTS (SELECT 1 FROM public.{} WHERE id = $1::int8)",
            co.table_ident()
        );
        let p = [Param::Int(*id)];
        let args = params::datums(&p);
        let found = Spi::connect(|c| {
            spi(c
                .select(sql.as_str(), Some(1), &args)
                .and_then(|t| t.first().get::<bool>(1)))
            .unwrap_or(false)
        });
        if !found {
            // the SQLSTATE of the foreign key it stands for, with a message naming the field
            raise(
                PgSqlErrorCode::ERRCODE_FOREIGN_KEY_VIOLATION,
                format!(
                    "field {}.{field}: there is no {comodel} record with id {id}",
                    model.info.model
                ),
                None,
            );
        }
    }
}

/// Check and shape the caller's values (`core::field_values::shape`): only stored, writable
/// fields of the model.
fn values(user: &UserContext, model: &ModelMeta, vals: &Value) -> Values {
    let extras = match vals.as_object() {
        Some(obj) => field_extras(&model.info.model, obj.keys()),
        None => HashMap::new(),
    };
    let field = |name: &str| {
        let (info, meta) = (model.info.fields.get(name)?, model.fields.get(name)?);
        Some(WriteField {
            info,
            has_column: meta.has_column,
            readonly: meta.readonly,
            groups: &meta.groups,
        })
    };
    let writer = Writer {
        uid: user.uid,
        superuser: user.superuser,
        groups: &user.groups,
        lang: &user.lang,
        company_id: user.company_id,
    };
    field_values::shape(
        &model.info.model,
        &field,
        &|name| extras.get(name).cloned(),
        &writer,
        vals,
    )
    .unwrap_or_else(|e| refuse_value(&e))
}

/// Stored fields of res.partner that Odoo computes in Python and that rules and display names
/// depend on: commercial_partner_id, complete_name, commercial_company_name (as
/// `_compute_commercial_partner`, `_compute_complete_name`, `_compute_commercial_company_name`).
fn recompute(model: &ModelMeta, id: i64) {
    if model.info.model != "res.partner" {
        return;
    }
    let has = |f: &str| model.fields.get(f).is_some_and(|m| m.has_column);
    if !(has("commercial_partner_id")
        && has("complete_name")
        && has("parent_id")
        && has("is_company"))
    {
        return;
    }
    exec(
        "UPDATE public.res_partner p SET \
           commercial_partner_id = CASE WHEN coalesce(p.is_company, false) OR p.parent_id IS NULL THEN p.id \
               ELSE coalesce((SELECT q.commercial_partner_id FROM public.res_partner q WHERE q.id = p.parent_id), p.parent_id) END, \
           complete_name = CASE WHEN p.parent_id IS NOT NULL AND NOT coalesce(p.is_company, false) \
               THEN btrim(coalesce((SELECT q.name FROM public.res_partner q WHERE q.id = p.parent_id), '') || ', ' || coalesce(p.name, '')) \
               ELSE btrim(coalesce(p.name, '')) END \
         WHERE p.id = $1::int4",
        &[Param::Int(id)],
    );
    if has("commercial_company_name") {
        exec(
            "UPDATE public.res_partner p SET commercial_company_name = \
               (SELECT c.name FROM public.res_partner c WHERE c.id = p.commercial_partner_id AND c.is_company) \
             WHERE p.id = $1::int4",
            &[Param::Int(id)],
        );
    }
}

fn quoted(names: &[&String]) -> String {
    names
        .iter()
        .map(|n| ident(n).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn apply_many2many(model: &ModelMeta, id: i64, m2m: &[(String, Vec<Command>)]) {
    for (field, cmds) in m2m {
        let f = &model.info.fields[field];
        let (Some(rel), Some(c1), Some(c2)) = (&f.relation_table, &f.column1, &f.column2) else {
            invalid(format!(
                "field {}.{field} has no relation table",
                model.info.model
            ));
        };
        let (rel, c1, c2) = (ident(rel), ident(c1), ident(c2));
        for cmd in cmds {
            let (sql, arg): (String, Option<Vec<i64>>) = match cmd {
                Command::Replace(ids) => {
                    exec(
                        &format!("DELETE FROM public.{rel} WHERE {c1} = $1::int4"),
                        &[Param::Int(id)],
                    );
                    (
                        format!(
                            "INSERT INTO public.{rel} ({c1}, {c2}) SELECT $1::int4, unnest($2::int4[]) ON CONFLICT DO NOTHING"
                        ),
                        Some(ids.clone()),
                    )
                }
                Command::Link(x) => (
                    format!(
                        "INSERT INTO public.{rel} ({c1}, {c2}) VALUES ($1::int4, ($2::int8[])[1]) ON CONFLICT DO NOTHING"
                    ),
                    Some(vec![*x]),
                ),
                Command::Unlink(x) => (
                    format!(
                        "DELETE FROM public.{rel} WHERE {c1} = $1::int4 AND {c2} = ($2::int8[])[1]"
                    ),
                    Some(vec![*x]),
                ),
                Command::Clear => (
                    format!("DELETE FROM public.{rel} WHERE {c1} = $1::int4"),
                    None,
                ),
            };
            let mut p = vec![Param::Int(id)];
            if let Some(a) = arg {
                p.push(Param::IntArray(a));
            }
            exec(&sql, &p);
        }
    }
}

fn exec(sql: &str, p: &[Param]) -> usize {
    let args = params::datums(p);
    Spi::connect_mut(|c| spi(c.update(sql, None, &args)).len())
}

/// Whether record `id` passes the user's rules for the operation the context was loaded for
/// (archived records included, as Odoo's check uses `active_test=False`).
fn record_matches(user: &UserContext, models: &Models, model: &ModelMeta, id: i64) -> bool {
    let q = visible_rows(user, models, model, &id_domain(id as i32), false);
    let sql = format!("SELECT EXISTS (SELECT 1 {})", q.from_where);
    let args = params::datums(&q.params);
    Spi::connect(|c| {
        spi(c
            .select(sql.as_str(), Some(1), &args)
            .and_then(|t| t.first().get::<bool>(1)))
        .unwrap_or(false)
    })
}

fn refuse_rules(user: &UserContext, model: &str, op: Operation, id: i64) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
        format!(
            "user {} may not {} record {model}({id}): the record rules do not allow it",
            user.uid,
            op.as_str()
        ),
        None,
    )
}

pub fn create(uid: i32, model_name: &str, vals: &Value) -> i32 {
    crate::odoo::require_odoo("create", crate::data::TABLES);
    let user = context::load(uid, model_name, Operation::Create);
    let models = Models::new(&user, model_name);
    let model = models.get(model_name);
    user.require_access(model_name, Operation::Create);
    let mut v = values(&user, &model, vals);
    check_targets(&model, &v.targets);
    // a new record has no other company's value: {company: null} is no value at all
    for name in &v.company_dependent {
        if let Some(Value::Object(per_company)) = v.columns.get(name)
            && per_company.values().all(Value::is_null)
        {
            v.columns.insert(name.clone(), Value::Null);
        }
    }
    field_values::orm_defaults(
        &model.info.model,
        &|f| model.fields.get(f).is_some_and(|m| m.has_column),
        &mut v.columns,
    );
    for (name, meta) in &model.fields {
        if meta.required
            && meta.has_column
            && !field_values::MAGIC.contains(&name.as_str())
            && v.columns.get(name).is_none_or(Value::is_null)
        {
            raise(
                PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION,
                format!("field {model_name}.{name} is required"),
                None,
            );
        }
    }
    let mut names: Vec<&String> = v.columns.keys().collect();
    names.sort();
    let log = ["create_uid", "write_uid", "create_date", "write_date"]
        .into_iter()
        .filter(|n| model.fields.get(*n).is_some_and(|f| f.has_column))
        .collect::<Vec<_>>();
    let mut cols = quoted(&names);
    let mut exprs = names
        .iter()
        .map(|n| format!("r.{}", ident(n)))
        .collect::<Vec<_>>()
        .join(", ");
    for n in &log {
        let e = if n.ends_with("uid") {
            "$2::int4"
        } else {
            "(now() AT TIME ZONE 'utc')"
        };
        if !cols.is_empty() {
            cols.push_str(", ");
            exprs.push_str(", ");
        }
        cols.push_str(&ident(n).to_string());
        exprs.push_str(e);
    }
    let sql = if cols.is_empty() {
        format!(
            "INSERT INTO public.{} DEFAULT VALUES RETURNING id",
            model.table_ident()
        )
    } else {
        format!(
            "INSERT INTO public.{t} ({cols}) SELECT {exprs} FROM jsonb_populate_record(NULL::public.{t}, $1::jsonb) r RETURNING id",
            t = model.table_ident()
        )
    };
    let payload = pgrx::JsonB(Value::Object(v.columns));
    let id: i64 = Spi::connect_mut(|c| {
        let t = if cols.is_empty() {
            spi(c.update(sql.as_str(), None, &[]))
        } else {
            spi(c.update(sql.as_str(), None, &[payload.into(), uid.into()]))
        };
        spi(t.first().get::<i32>(1)).map(i64::from).unwrap_or(0)
    });
    apply_many2many(&model, id, &v.many2many);
    recompute(&model, id);
    // Odoo checks the create rules on the new record after the insert; a failure here raises,
    // which rolls back the insert with the rest of the statement.
    if user.rule_domain(model_name).is_some() && !record_matches(&user, &models, &model, id) {
        refuse_rules(&user, model_name, Operation::Create, id);
    }
    id as i32
}

/// Whether the user can see the record at all (read rules, archived included).
fn visible(uid: i32, models: &Models, model: &ModelMeta, id: i64) -> bool {
    let reader = context::load(uid, &model.info.model, Operation::Read);
    record_matches(&reader, models, model, id)
}

/// What a write or unlink conditioned on the row version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NotFound,
    Changed,
}

/// Lock the row (as the write will) and compare its version with `versions`: the lock holds
/// until the transaction ends, so the version checked is the one the write replaces.
fn check_version(model: &ModelMeta, id: i32, versions: Option<&[String]>, lock: &str) -> Outcome {
    let Some(versions) = versions else {
        return Outcome::Done;
    };
    let sql = format!(
        "SELECT xmin::text FROM public.{} WHERE id = $1::int4 FOR {lock}",
        model.table_ident()
    );
    let current: Option<String> = Spi::connect_mut(|c| {
        let t = spi(c.update(sql.as_str(), Some(1), &[id.into()]));
        if t.is_empty() {
            None
        } else {
            spi(t.first().get::<String>(1))
        }
    });
    match current {
        None => Outcome::NotFound,
        Some(v) if versions.contains(&v) => Outcome::Done,
        Some(_) => Outcome::Changed,
    }
}

pub fn write(uid: i32, model_name: &str, id: i32, vals: &Value) -> bool {
    write_checked(uid, model_name, id, vals, None) == Outcome::Done
}

/// `write`, done only when the row version is one of `versions` (None: unconditionally).
pub fn write_checked(
    uid: i32,
    model_name: &str,
    id: i32,
    vals: &Value,
    versions: Option<&[String]>,
) -> Outcome {
    crate::odoo::require_odoo("write", crate::data::TABLES);
    let user = context::load(uid, model_name, Operation::Write);
    let models = Models::new(&user, model_name);
    let model = models.get(model_name);
    user.require_access(model_name, Operation::Write);
    let v = values(&user, &model, vals);
    check_targets(&model, &v.targets);
    let needs_recompute = field_values::partner_recompute_needed(model_name, &v.columns);
    if !visible(uid, &models, &model, i64::from(id)) {
        return Outcome::NotFound;
    }
    if user.rule_domain(model_name).is_some()
        && !record_matches(&user, &models, &model, i64::from(id))
    {
        refuse_rules(&user, model_name, Operation::Write, i64::from(id));
    }
    let checked = check_version(&model, id, versions, "NO KEY UPDATE");
    if checked != Outcome::Done {
        return checked;
    }
    let mut names: Vec<&String> = v.columns.keys().collect();
    names.sort();
    let mut sets: Vec<String> = names
        .iter()
        .map(|n| {
            let c = ident(n);
            if v.company_dependent.contains(n) {
                // merge the current company's value into the others; null values drop out
                // (no row left: NULL), as Odoo's company-dependent UPDATE does
                format!(
                    "{c} = (SELECT jsonb_object_agg(d.key, d.value) \
                       FROM jsonb_each(coalesce(t.{c}, '{{}}'::jsonb) || r.{c}) d \
                      WHERE d.value <> 'null'::jsonb)"
                )
            } else {
                format!("{c} = r.{c}")
            }
        })
        .collect();
    if model.fields.get("write_uid").is_some_and(|f| f.has_column) {
        sets.push("write_uid = $2::int4".into());
    }
    if model.fields.get("write_date").is_some_and(|f| f.has_column) {
        sets.push("write_date = (now() AT TIME ZONE 'utc')".into());
    }
    if !sets.is_empty() {
        let sql = format!(
            "UPDATE public.{t} t SET {sets} FROM jsonb_populate_record(NULL::public.{t}, $1::jsonb) r WHERE t.id = $3::int4",
            t = model.table_ident(),
            sets = sets.join(", ")
        );
        let payload = pgrx::JsonB(Value::Object(v.columns));
        Spi::connect_mut(|c| {
            spi(c.update(sql.as_str(), None, &[payload.into(), uid.into(), id.into()]));
        });
    }
    apply_many2many(&model, i64::from(id), &v.many2many);
    if needs_recompute {
        recompute(&model, i64::from(id));
    }
    Outcome::Done
}

pub fn unlink(uid: i32, model_name: &str, id: i32) -> bool {
    unlink_checked(uid, model_name, id, None) == Outcome::Done
}

/// `unlink`, done only when the row version is one of `versions` (None: unconditionally).
pub fn unlink_checked(uid: i32, model_name: &str, id: i32, versions: Option<&[String]>) -> Outcome {
    crate::odoo::require_odoo("unlink", crate::data::TABLES);
    let user = context::load(uid, model_name, Operation::Unlink);
    let models = Models::new(&user, model_name);
    let model = models.get(model_name);
    user.require_access(model_name, Operation::Unlink);
    if !visible(uid, &models, &model, i64::from(id)) {
        return Outcome::NotFound;
    }
    if user.rule_domain(model_name).is_some()
        && !record_matches(&user, &models, &model, i64::from(id))
    {
        refuse_rules(&user, model_name, Operation::Unlink, i64::from(id));
    }
    let checked = check_version(&model, id, versions, "UPDATE");
    if checked != Outcome::Done {
        return checked;
    }
    let deleted = exec(
        &format!(
            "DELETE FROM public.{} WHERE id = $1::int4",
            model.table_ident()
        ),
        &[Param::Int(i64::from(id))],
    ) > 0;
    if deleted {
        Outcome::Done
    } else {
        Outcome::NotFound
    }
}
