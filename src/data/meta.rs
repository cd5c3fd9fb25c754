//! Model metadata, read from `ir_model` and `ir_model_fields` (never guessed from table names
//! alone) and cached per backend. Each use re-checks a cheap fingerprint of the model's
//! `ir_model_fields` rows (row count and the sum of their xmin), so a module install or a
//! changed field is seen on the next call.
use crate::error::{raise, spi};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use api_gateway_core::domain::FieldInfo;
pub use api_gateway_core::odoo::meta::ModelMeta;
use api_gateway_core::odoo::meta::valid_model_name;
use api_gateway_core::odoo::meta::{self, FieldMeta, FieldRow, ModelRow};

thread_local! {
    static CACHE: RefCell<HashMap<String, Rc<ModelMeta>>> = RefCell::new(HashMap::new());
}

const FINGERPRINT: &str = "SELECT count(*), coalesce(sum(xmin::text::bigint), 0)::bigint \
  FROM public.ir_model_fields WHERE model = $1";

const MODEL: &str = "SELECT m.id, coalesce(m.name->>'en_US', m.model), coalesce(m.\"order\", 'id'), \
       coalesce(m.abstract, false), to_regclass('public.' || quote_ident(replace(m.model, '.', '_'))) IS NOT NULL \
  FROM public.ir_model m WHERE m.model = $1";

const FIELDS: &str = "SELECT f.id, f.name, f.ttype, coalesce(f.store, false), f.relation, f.relation_field, \
       f.relation_table, f.column1, f.column2, coalesce(f.translate::text, '') NOT IN ('', 'false'), \
       coalesce(f.company_dependent, false), coalesce(f.required, false), coalesce(f.readonly, false), \
       a.attname IS NOT NULL, a.attnotnull IS TRUE, \
       coalesce(f.field_description->>'en_US', f.name), \
       GROUPS, f.related, \
       CASE WHEN f.ttype = 'one2many' AND f.relation_field = 'res_id' THEN \
            (SELECT min(c.name) FROM public.ir_model_fields c \
              WHERE c.model = f.relation AND c.name IN ('model', 'res_model') AND c.store) END \
  FROM public.ir_model_fields f \
  LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = to_regclass('public.' || quote_ident($2)) \
       AND a.attname = f.name AND a.attnum > 0 AND NOT a.attisdropped \
 WHERE f.model = $1";

fn fingerprint(model: &str) -> (i64, i64) {
    // A backend that caches keys metadata on the cache generation (checked in this statement).
    if let Some(generation) = crate::data::cache::generation() {
        return (generation as i64, -1);
    }
    Spi::connect(|c| {
        let plan = crate::spi::plan(c, FINGERPRINT, &[PgBuiltInOids::TEXTOID], false);
        let t = spi(c.select(plan, Some(1), &[model.into()]));
        let r = t.first();
        (
            spi(r.get::<i64>(1)).unwrap_or(0),
            spi(r.get::<i64>(2)).unwrap_or(0),
        )
    })
}

/// The metadata of `model`, fresh as of this call. Unknown or unservable models raise 42P01.
pub fn model(model: &str) -> Rc<ModelMeta> {
    match try_model(model) {
        Ok(m) => m,
        Err(why) => raise(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, why, None),
    }
}

/// Like [`model`], but says why instead of raising (for comodels that may not be served).
pub fn try_model(model: &str) -> Result<Rc<ModelMeta>, String> {
    if !valid_model_name(model) {
        return try_model_with(model, (0, 0));
    }
    try_model_with(model, fingerprint(model))
}

/// The metadata of `model` given its current fingerprint (read by the caller's own query).
pub fn model_with(model: &str, print: (i64, i64)) -> Rc<ModelMeta> {
    match try_model_with(model, print) {
        Ok(m) => m,
        Err(why) => raise(PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE, why, None),
    }
}

fn try_model_with(model: &str, print: (i64, i64)) -> Result<Rc<ModelMeta>, String> {
    let shown: String = model.chars().take(64).collect();
    let unknown = || format!("unknown model \"{shown}\": it has no row in ir_model");
    if !valid_model_name(model) {
        return Err(unknown());
    }
    if let Some(m) = CACHE.with(|c| c.borrow().get(model).cloned())
        && m.fingerprint == print
    {
        return Ok(m);
    }
    if print.0 == 0 {
        return Err(unknown());
    }
    let loaded = Rc::new(load(model, print)?);
    CACHE.with(|c| {
        let mut cache = c.borrow_mut();
        if cache.len() > 512 {
            cache.clear();
        }
        cache.insert(model.to_string(), loaded.clone());
    });
    Ok(loaded)
}

/// The rows of `model` in `ir_model` and `ir_model_fields` (`odoo::meta::assemble` decides).
fn load(model: &str, fingerprint: (i64, i64)) -> Result<ModelMeta, String> {
    let table = model.replace('.', "_");
    let head = Spi::connect(|c| {
        let t = spi(c.select(MODEL, Some(1), &[model.into()]));
        if t.is_empty() {
            return None;
        }
        let r = t.first();
        Some(ModelRow {
            order: spi(r.get::<String>(3)).unwrap_or_else(|| "id".into()),
            is_abstract: spi(r.get::<bool>(4)).unwrap_or(false),
            has_table: spi(r.get::<bool>(5)).unwrap_or(false),
        })
    });
    if !head.as_ref().is_some_and(|h| h.has_table && !h.is_abstract) {
        return meta::assemble(model, head, vec![], &HashMap::new(), fingerprint);
    }
    // Field-level groups live in ir_model_fields_group_rel, absent from some databases.
    let has_group_rel = Spi::connect(|c| {
        spi(c
            .select(
                "SELECT to_regclass('public.ir_model_fields_group_rel') IS NOT NULL",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1)))
    })
    .unwrap_or(false);
    let groups = if has_group_rel {
        "ARRAY(SELECT g.group_id FROM public.ir_model_fields_group_rel g WHERE g.field_id = f.id)"
    } else {
        "'{}'::int[]"
    };
    let fields_sql = FIELDS.replace("GROUPS", groups);
    let rows = Spi::connect(|c| {
        let rows = spi(c.select(
            fields_sql.as_str(),
            None,
            &[model.into(), table.as_str().into()],
        ));
        rows.map(|r| {
            let text = |n: usize| spi(r.get::<String>(n));
            let flag = |n: usize| spi(r.get::<bool>(n)).unwrap_or(false);
            FieldRow {
                info: FieldInfo {
                    name: text(2).unwrap_or_default(),
                    ttype: text(3).unwrap_or_default(),
                    store: flag(4),
                    relation: text(5),
                    relation_field: text(6),
                    relation_table: text(7),
                    column1: text(8),
                    column2: text(9),
                    translate: flag(10),
                    company_dependent: flag(11),
                    // The compiler drops `IS NULL` branches only for real NOT NULL columns.
                    required: flag(15),
                    line_filter: vec![],
                },
                meta: FieldMeta {
                    has_column: flag(14),
                    readonly: flag(13),
                    required: flag(12),
                    groups: spi(r.get::<Vec<i32>>(17)).unwrap_or_default(),
                    related: text(18),
                },
                model_column: text(19),
            }
        })
        .collect::<Vec<_>>()
    });
    // Field-level groups Odoo keeps in Python, resolved to group ids.
    let mut python_groups = HashMap::new();
    let listed: Vec<(&str, Vec<&str>)> = api_gateway_core::fields::field_groups(model).collect();
    if !listed.is_empty() {
        Spi::connect(|c| {
            for (field, xmlids) in listed {
                let ids: Vec<String> = xmlids.iter().map(|x| x.to_string()).collect();
                let found = spi(c.select(
                    "SELECT coalesce(array_agg(res_id::int4), '{}') FROM public.ir_model_data \
                      WHERE model = 'res.groups' AND module || '.' || name = ANY($1)",
                    Some(1),
                    &[ids.into()],
                ))
                .first()
                .get::<Vec<i32>>(1);
                python_groups.insert(field.to_string(), spi(found).unwrap_or_default());
            }
        });
    }
    meta::assemble(model, head, rows, &python_groups, fingerprint)
}
