//! create / write / unlink with Odoo's checks: the access right first, then the record rules
//! (write/unlink: on the record before the change; create: on the new row after the insert,
//! rolling back when it does not match). Values go through `jsonb_populate_record`, so
//! PostgreSQL converts and validates every value; no value is ever spliced into SQL text.
use crate::data::context::{self, UserContext};
use crate::data::meta::ModelMeta;
use crate::data::read::{Models, id_domain, visible_rows};
use crate::data::{Operation, params, refuse};
use crate::error::{raise, spi};
use api_gateway_core::domain::Param;
use api_gateway_core::field_values::{self, Command, ValueError, Values, WriteField};
use api_gateway_core::odoo::write;
pub use api_gateway_core::odoo::write::Outcome;
use pgrx::prelude::*;
use serde_json::Value;
use std::collections::HashMap;

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
    field_values::shape(
        &model.info.model,
        &field,
        &|name| extras.get(name).cloned(),
        &user.caller(),
        vals,
    )
    .unwrap_or_else(|e| refuse_value(&e))
}

/// Odoo's stored partner fields computed in Python (`odoo::write::partner_recompute`).
fn recompute(model: &ModelMeta, id: i64) {
    for sql in write::partner_recompute(model) {
        exec(sql, &[Param::Int(id)]);
    }
}

fn apply_many2many(model: &ModelMeta, id: i64, m2m: &[(String, Vec<Command>)]) {
    for (field, cmds) in m2m {
        for step in write::many2many_steps(model, field, cmds).unwrap_or_else(|e| refuse(e)) {
            let mut p = vec![Param::Int(id)];
            if let Some(ids) = step.ids {
                p.push(Param::IntArray(ids));
            }
            exec(&step.sql, &p);
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
    if let Some(name) = write::missing_required(&model, &v) {
        raise(
            PgSqlErrorCode::ERRCODE_NOT_NULL_VIOLATION,
            format!("field {model_name}.{name} is required"),
            None,
        );
    }
    let (sql, takes_params) = write::insert_sql(&model, &v).unwrap_or_else(|e| refuse(e));
    let payload = pgrx::JsonB(Value::Object(v.columns));
    let id: i64 = Spi::connect_mut(|c| {
        let t = if takes_params {
            spi(c.update(sql.as_str(), None, &[payload.into(), uid.into()]))
        } else {
            spi(c.update(sql.as_str(), None, &[]))
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

/// Lock the row (as the write will) and compare its version with `versions`: the lock holds
/// until the transaction ends, so the version checked is the one the write replaces.
fn check_version(model: &ModelMeta, id: i32, versions: Option<&[String]>, lock: &str) -> Outcome {
    let Some(versions) = versions else {
        return Outcome::Done;
    };
    let sql = write::version_sql(model, lock);
    let current: Option<String> = Spi::connect_mut(|c| {
        let t = spi(c.update(sql.as_str(), Some(1), &[id.into()]));
        if t.is_empty() {
            None
        } else {
            spi(t.first().get::<String>(1))
        }
    });
    write::version_outcome(current.as_deref(), versions)
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
    if let Some(sql) = write::update_sql(&model, &v).unwrap_or_else(|e| refuse(e)) {
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
