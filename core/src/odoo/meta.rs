//! What the gateway knows of a model: its `ir_model` row, its `ir_model_fields` rows and the
//! facts of its table, as the extension loads them. The names rules live here.
use crate::domain::{FieldInfo, ModelInfo, Value};
use crate::ident::{Ident, IdentError};
use std::collections::HashMap;

/// What the gateway knows about one field beyond what the domain compiler needs.
#[derive(Debug, Clone, Default)]
pub struct FieldMeta {
    /// A column of the model's table holds it (false for x2many, attachments, non-stored).
    pub has_column: bool,
    pub readonly: bool,
    pub required: bool,
    /// Groups allowed to access it (`groups=` on the field); empty = everyone.
    pub groups: Vec<i32>,
    /// `ir_model_fields.related` of a non-stored related field (e.g. `partner_id.name`).
    pub related: Option<String>,
}

#[derive(Debug)]
pub struct ModelMeta {
    pub info: ModelInfo,
    /// `_order`.
    pub order: String,
    pub fields: HashMap<String, FieldMeta>,
    /// What the metadata was loaded at (the extension re-checks it before reuse).
    pub fingerprint: (i64, i64),
    table: Ident,
}

impl ModelMeta {
    /// Err when the model's table cannot be named in SQL.
    pub fn new(
        info: ModelInfo,
        order: String,
        fields: HashMap<String, FieldMeta>,
        fingerprint: (i64, i64),
    ) -> Result<ModelMeta, IdentError> {
        let table = Ident::new(&info.table)?;
        Ok(ModelMeta {
            info,
            order,
            fields,
            fingerprint,
            table,
        })
    }

    pub fn table(&self) -> &str {
        &self.info.table
    }

    /// The table as the quoted identifier generated statements use (`public.{}`).
    pub fn table_ident(&self) -> &Ident {
        &self.table
    }
}

/// Model names are lower-case dotted identifiers; anything else cannot name a model.
pub fn valid_model_name(model: &str) -> bool {
    !model.is_empty()
        && model.len() <= 128
        && model
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        && !model.starts_with('.')
        && !model.ends_with('.')
}

/// `[a-z_][a-z0-9_]*`, at most 63 bytes: the only field names spliced into SQL (quoted).
pub fn plain_identifier(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= crate::ident::MAX_LEN
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Conditions of a one2many's own domain that Odoo keeps in Python, not in `ir_model_fields`:
/// `res_id` lines (messages, attachments, followers) belong to this model only when their
/// `model`/`res_model` column (`model_column`) says so; a partner's `child_ids` are its active
/// contacts.
pub fn line_filter(model: &str, field: &str, model_column: Option<String>) -> Vec<(String, Value)> {
    let mut out = vec![];
    if let Some(column) = model_column {
        out.push((column, Value::Str(model.to_string())));
    }
    if model == "res.partner" && field == "child_ids" {
        out.push(("active".to_string(), Value::Bool(true)));
    }
    out
}

/// The `ir_model` row of a model as the extension reads it.
pub struct ModelRow {
    pub order: String,
    pub is_abstract: bool,
    /// `public.<model with dots as underscores>` exists.
    pub has_table: bool,
}

/// One `ir_model_fields` row of a model with the facts of its column, as the extension reads it:
/// `info.store` as Odoo says it, `info.required` whether the column is NOT NULL, empty texts
/// as they are; `model_column`, for a one2many through `res_id`, the comodel's
/// `model`/`res_model` column. [`assemble`] settles the rest.
#[derive(Debug, Clone, Default)]
pub struct FieldRow {
    pub info: FieldInfo,
    pub meta: FieldMeta,
    pub model_column: Option<String>,
}

/// What the gateway knows of `model` from its rows. `python_groups` holds, for the fields
/// whose `groups=` Odoo keeps in Python ([`crate::fields::field_groups`]), the group ids their
/// xml ids resolve to. Err says why the model cannot be served.
pub fn assemble(
    model: &str,
    head: Option<ModelRow>,
    rows: Vec<FieldRow>,
    python_groups: &HashMap<String, Vec<i32>>,
    fingerprint: (i64, i64),
) -> Result<ModelMeta, String> {
    let table = model.replace('.', "_");
    let Some(head) = head else {
        return Err(format!(
            "unknown model \"{model}\": it has no row in ir_model"
        ));
    };
    if head.is_abstract {
        return Err(format!(
            "model \"{model}\" cannot be served: it is abstract (no table)"
        ));
    }
    if !head.has_table {
        return Err(format!(
            "model \"{model}\" cannot be served: its table public.{table} does not exist (a custom _table is not supported)"
        ));
    }
    let mut info = ModelInfo::new(model, &table);
    let mut fields = HashMap::new();
    for FieldRow {
        info: mut f,
        meta: mut m,
        model_column,
    } in rows
    {
        if !plain_identifier(&f.name) {
            continue; // cannot be named safely in SQL, so it is not served
        }
        let x2many = f.ttype == "one2many" || f.ttype == "many2many";
        f.store = f.store && (m.has_column || x2many);
        if let Some(ids) = python_groups.get(&f.name) {
            // an xml id that does not resolve names a group nobody is in
            m.groups = if ids.is_empty() {
                vec![-1]
            } else {
                ids.clone()
            };
        }
        let nonempty = |v: &mut Option<String>| *v = v.take().filter(|s| !s.is_empty());
        for text in [
            &mut f.relation,
            &mut f.relation_field,
            &mut f.relation_table,
            &mut f.column1,
            &mut f.column2,
            &mut m.related,
        ] {
            nonempty(text);
        }
        if f.store {
            m.related = None;
        }
        f.line_filter = line_filter(model, &f.name, model_column);
        fields.insert(f.name.clone(), m);
        info.fields.insert(f.name.clone(), f);
    }
    // `id` is always there, even where ir_model_fields lacks it.
    info.fields.entry("id".into()).or_insert_with(|| FieldInfo {
        required: true,
        ..FieldInfo::new("id", "integer")
    });
    fields.entry("id".into()).or_insert(FieldMeta {
        has_column: true,
        readonly: true,
        ..FieldMeta::default()
    });
    let column = |n: &str| fields.get(n).is_some_and(|f| f.has_column);
    info.has_active = column("active") || column("x_active");
    if !column("active") && column("x_active") {
        info.fields.remove("active");
    }
    info.rec_name = ["name", "x_name"]
        .into_iter()
        .find(|n| info.fields.contains_key(*n))
        .unwrap_or("id")
        .to_string();
    ModelMeta::new(info, head.order, fields, fingerprint)
        .map_err(|e| format!("model \"{model}\" cannot be served: its table name is {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_are_dotted_lower_case_identifiers() {
        assert!(valid_model_name("res.partner"));
        assert!(valid_model_name("x_custom.model2"));
        for bad in [
            "",
            ".res",
            "res.",
            "Res.partner",
            "res partner",
            "res;drop",
            "a\"b",
        ] {
            assert!(!valid_model_name(bad), "{bad}");
        }
        assert!(!valid_model_name(&"a".repeat(129)));
    }

    #[test]
    fn only_plain_names_are_identifiers() {
        assert!(plain_identifier("partner_id"));
        assert!(plain_identifier("_x1"));
        for bad in ["", "1a", "Name", "a-b", "a\"", "a.b"] {
            assert!(!plain_identifier(bad), "{bad}");
        }
        assert!(plain_identifier(&"a".repeat(63)));
        assert!(!plain_identifier(&"a".repeat(64)));
    }

    #[test]
    fn lines_of_res_id_models_and_active_contacts_are_filtered() {
        assert_eq!(
            line_filter("sale.order", "message_ids", Some("model".into())),
            vec![("model".to_string(), Value::Str("sale.order".into()))]
        );
        assert_eq!(
            line_filter("res.partner", "child_ids", None),
            vec![("active".to_string(), Value::Bool(true))]
        );
        assert!(line_filter("res.partner", "bank_ids", None).is_empty());
    }

    #[test]
    fn a_table_that_cannot_be_named_is_refused() {
        let long = "a".repeat(64);
        assert!(
            ModelMeta::new(
                ModelInfo::new("x", &long),
                "id".into(),
                HashMap::new(),
                (0, 0)
            )
            .is_err()
        );
    }

    fn row(name: &str, ttype: &str) -> FieldRow {
        FieldRow {
            info: FieldInfo::new(name, ttype),
            meta: FieldMeta {
                has_column: true,
                ..FieldMeta::default()
            },
            model_column: None,
        }
    }

    fn head() -> Option<ModelRow> {
        Some(ModelRow {
            order: "name".into(),
            is_abstract: false,
            has_table: true,
        })
    }

    #[test]
    fn a_model_is_assembled_from_its_rows() {
        let mut groups = HashMap::new();
        groups.insert("secret".to_string(), vec![]);
        groups.insert("note".to_string(), vec![4, 5]);
        let mut related = row("partner_name", "char");
        related.info.store = false;
        related.meta.has_column = false;
        related.meta.related = Some("partner_id.name".into());
        let mut tags = row("tag_ids", "many2many");
        tags.meta.has_column = false;
        tags.info.relation = Some("x.tag".into());
        tags.info.relation_table = Some(String::new());
        let mut ghost = row("ghost", "char");
        ghost.meta.has_column = false;
        let m = assemble(
            "x.thing",
            head(),
            vec![
                row("x_name", "char"),
                row("x_active", "boolean"),
                row("secret", "char"),
                row("note", "text"),
                row("Bad Name", "char"),
                related,
                tags,
                ghost,
            ],
            &groups,
            (3, 4),
        )
        .unwrap();
        assert_eq!(m.table(), "x_thing");
        assert_eq!(m.info.rec_name, "x_name");
        assert!(m.info.has_active);
        assert!(m.info.fields.contains_key("id") && m.fields["id"].has_column);
        assert!(!m.info.fields.contains_key("Bad Name"));
        assert_eq!(m.fields["secret"].groups, vec![-1]);
        assert_eq!(m.fields["note"].groups, vec![4, 5]);
        assert_eq!(
            m.fields["partner_name"].related.as_deref(),
            Some("partner_id.name")
        );
        assert!(m.info.fields["tag_ids"].store, "an x2many has no column");
        assert_eq!(
            m.info.fields["tag_ids"].relation_table, None,
            "empty is none"
        );
        assert!(
            !m.info.fields["ghost"].store,
            "stored without a column is not stored"
        );
        assert_eq!(m.fingerprint, (3, 4));
    }

    #[test]
    fn models_without_a_row_a_table_or_with_none_are_refused() {
        let none = HashMap::new();
        let e = assemble("x.gone", None, vec![], &none, (0, 0)).unwrap_err();
        assert!(e.contains("no row in ir_model"), "{e}");
        let abstract_head = Some(ModelRow {
            is_abstract: true,
            ..head().unwrap()
        });
        assert!(
            assemble("x.mixin", abstract_head, vec![], &none, (0, 0))
                .unwrap_err()
                .contains("abstract")
        );
        let no_table = Some(ModelRow {
            has_table: false,
            ..head().unwrap()
        });
        assert!(
            assemble("x.custom", no_table, vec![], &none, (0, 0))
                .unwrap_err()
                .contains("custom _table")
        );
    }
}
