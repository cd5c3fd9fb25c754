//! Validation of `order` specifications (`"name asc, id desc"`).

use super::{DomainError, ModelInfo};

/// Parse an order specification into `(field, descending)` pairs. Each item is `field`,
/// `field asc` or `field desc` (case-insensitive direction); the field must be `id` or a stored
/// field of `model` that is not an x2many, binary or json field. An empty string is an empty
/// order. `NULLS FIRST/LAST`, dotted paths and anything else are errors.
pub fn parse_order(order: &str, model: &ModelInfo) -> Result<Vec<(String, bool)>, DomainError> {
    parse_order_inner(order, model).map_err(DomainError::clipped)
}

fn parse_order_inner(order: &str, model: &ModelInfo) -> Result<Vec<(String, bool)>, DomainError> {
    let mut out = Vec::new();
    if order.trim().is_empty() {
        return Ok(out);
    }
    for item in order.split(',') {
        let words: Vec<&str> = item.split_whitespace().collect();
        let (name, desc) = match words.as_slice() {
            [name] => (*name, false),
            [name, dir] => match dir.to_ascii_lowercase().as_str() {
                "asc" => (*name, false),
                "desc" => (*name, true),
                _ => {
                    return Err(DomainError::InvalidValue(format!(
                        "invalid order direction {dir:?}"
                    )));
                }
            },
            [] => {
                return Err(DomainError::InvalidValue(
                    "empty item in order specification".into(),
                ));
            }
            _ => {
                return Err(DomainError::InvalidValue(format!(
                    "invalid order item {:?}",
                    item.trim()
                )));
            }
        };
        if name != "id" {
            let Some(f) = model.fields.get(name) else {
                return Err(DomainError::UnknownField {
                    model: model.model.clone(),
                    field: name.to_string(),
                });
            };
            let sortable = f.store
                && !matches!(
                    f.ttype.as_str(),
                    "one2many"
                        | "many2many"
                        | "binary"
                        | "json"
                        | "properties"
                        | "properties_definition"
                );
            if !sortable {
                return Err(DomainError::NotSearchable {
                    model: model.model.clone(),
                    field: name.to_string(),
                });
            }
        }
        out.push((name.to_string(), desc));
    }
    Ok(out)
}
