//! `fields_get`: every field of a model as Odoo's `fields_get` describes it to the caller (labels,
//! help and selection labels in the call's language with Odoo's en_US fallback; fields whose
//! `groups` the caller lacks left out), plus where the gateway reads it from. The facts come from
//! `ir_model_fields` (stored or not) and the model metadata; the decisions (visibility, source,
//! shape) are `api_gateway_core::fields`.
use crate::data::context::{self, INHERITS};
use crate::data::meta;
use crate::data::read::Models;
use crate::data::{Operation, lang};
use crate::error::spi;
use api_gateway_core::fields::{self, Description, Source};
use pgrx::prelude::*;

/// Labels and help of `_inherits` fields come from the parent's field (Odoo's `base_field`):
/// `$3` the parent model, `$4` the delegation field. `SELECTION` is replaced by the selection
/// labels' subquery, or NULL where the table is missing.
const FACTS: &str = "SELECT f.name::text, f.ttype::text, \
       coalesce(nullif(coalesce(b.field_description, f.field_description)->>$2, ''), \
                nullif(coalesce(b.field_description, f.field_description)->>'en_US', ''), f.name::text), \
       coalesce(nullif(coalesce(b.help, f.help)->>$2, ''), coalesce(b.help, f.help)->>'en_US'), \
       coalesce(f.required, false), coalesce(f.readonly, false), coalesce(f.store, false), \
       f.relation::text, f.relation_field::text, coalesce(f.translate::text, '') NOT IN ('', 'false'), \
       coalesce(f.company_dependent, false), f.related::text, SELECTION \
  FROM public.ir_model_fields f \
  LEFT JOIN public.ir_model_fields b ON b.model = $3 AND b.name = f.name AND f.related = $4 || '.' || f.name \
 WHERE f.model = $1 ORDER BY f.name";

/// A related selection has its target's values: those of the field itself when recorded, else
/// (an `_inherits` field) the parent's.
const SELECTION: &str = "coalesce((SELECT jsonb_agg(jsonb_build_array(s.value, \
            coalesce(nullif(s.name->>$2, ''), s.name->>'en_US', s.value)) ORDER BY s.sequence, s.id) \
          FROM public.ir_model_fields_selection s WHERE s.field_id = f.id), \
       (SELECT jsonb_agg(jsonb_build_array(s.value, \
            coalesce(nullif(s.name->>$2, ''), s.name->>'en_US', s.value)) ORDER BY s.sequence, s.id) \
          FROM public.ir_model_fields_selection s WHERE s.field_id = b.id))::text";

/// One row of `FACTS`.
struct Row {
    name: String,
    ttype: String,
    string: String,
    help: Option<String>,
    required: bool,
    readonly: bool,
    store: bool,
    relation: Option<String>,
    relation_field: Option<String>,
    translate: bool,
    company_dependent: bool,
    related: Option<String>,
    selection: Option<String>,
}

fn rows(model: &str, lang: &str) -> Vec<Row> {
    let (parent, delegate) = INHERITS
        .iter()
        .find(|(m, _, _)| *m == model)
        .map(|(_, p, f)| (Some(*p), Some(*f)))
        .unwrap_or((None, None));
    let sql = FACTS.replace(
        "SELECTION",
        if crate::odoo::has_table("ir_model_fields_selection") {
            SELECTION
        } else {
            "NULL::text"
        },
    );
    Spi::connect(|c| {
        let t = spi(c.select(
            sql.as_str(),
            None,
            &[model.into(), lang.into(), parent.into(), delegate.into()],
        ));
        t.map(|r| {
            let text = |n: usize| spi(r.get::<String>(n));
            let flag = |n: usize| spi(r.get::<bool>(n)).unwrap_or(false);
            Row {
                name: text(1).unwrap_or_default(),
                ttype: text(2).unwrap_or_default(),
                string: text(3).unwrap_or_default(),
                help: text(4),
                required: flag(5),
                readonly: flag(6),
                store: flag(7),
                relation: text(8).filter(|s| !s.is_empty()),
                relation_field: text(9).filter(|s| !s.is_empty()),
                translate: flag(10),
                company_dependent: flag(11),
                related: text(12).filter(|s| !s.is_empty()),
                selection: text(13),
            }
        })
        .collect()
    })
}

/// `{field: description}` of `model` for `uid`, in `lang` (an explicit code, else the user's).
pub fn fields_get(uid: i32, model: &str, lang: Option<&str>) -> serde_json::Value {
    crate::odoo::require_odoo("fields_get", crate::data::TABLES);
    let _ = meta::model(model); // 42P01 for a model the gateway cannot serve
    let user = context::load(uid, model, Operation::Read);
    let lang = lang::explicit(lang).unwrap_or_else(|| user.lang.clone());
    // Where a field is read from is decided as the reads decide it (`Shaper::servable`).
    let models = Models::new(&user, model);
    let main = models.get(model);
    let shaper = models.shaper(vec![], 1, 2);
    let mut out = serde_json::Map::new();
    for row in rows(model, &lang) {
        // Names the gateway cannot quote are not served (meta.rs), so not described either.
        let Some(field) = main.fields.get(&row.name) else {
            continue;
        };
        if !fields::visible(&field.groups, &user.groups, user.superuser) {
            continue;
        }
        let selection = row
            .selection
            .as_deref()
            .and_then(|s| serde_json::from_str::<Vec<(String, String)>>(s).ok());
        let ttype = main
            .info
            .fields
            .get(&row.name)
            .map_or("", |f| f.ttype.as_str());
        let source = fields::source(&row.name, ttype, shaper.servable(&main, &row.name).is_ok());
        let d = Description {
            name: row.name.clone(),
            ttype: row.ttype,
            string: row.string,
            help: row.help,
            required: row.required,
            readonly: row.readonly,
            store: row.store,
            relation: row.relation,
            relation_field: row.relation_field,
            selection,
            translate: row.translate,
            company_dependent: row.company_dependent,
            related: row.related,
            source,
        };
        out.insert(row.name, fields::describe(&d));
    }
    // Every model has a display name (computed in SQL), even where ir_model_fields lacks it.
    out.entry("display_name").or_insert_with(|| {
        fields::describe(&Description {
            name: "display_name".into(),
            ttype: "char".into(),
            string: "Display Name".into(),
            help: None,
            required: false,
            readonly: true,
            store: false,
            relation: None,
            relation_field: None,
            selection: None,
            translate: false,
            company_dependent: false,
            related: None,
            source: Source::Sql,
        })
    });
    serde_json::Value::Object(out)
}
