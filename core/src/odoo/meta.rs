//! What the gateway knows of a model: its `ir_model` row, its `ir_model_fields` rows and the
//! facts of its table, as the extension loads them. The names rules live here.
use crate::domain::{ModelInfo, Value};
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
}
