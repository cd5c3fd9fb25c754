//! What only Odoo can give, with `--odoo-url`: values of computed fields that are not stored and
//! of binary fields in reads (filled into the SQL result), and binary fields as files.
//!
//! The extension decides which requested fields SQL reads (`api_gateway.fields_in_sql`) and which
//! Odoo fills (`api_gateway.odoo_fill`, from `api_gateway_core::fields::source`), in the read's own
//! statement. The front then makes ONE JSON-2 `read` call for the returned ids, as the caller
//! (the credential forwarding uses), and merges the values by field name. Odoo down or too slow
//! gives the forwarding problems (503 with `Retry-After`, 504); an Odoo refusal is Odoo's answer.
use super::forward;
use crate::AppState;
use crate::error::{Problem, kind};
use crate::gate::{Ctx, Gate};
use axum::http::StatusCode;
use serde_json::{Value, json};

/// What `api_gateway.odoo_fill` asked for: the fields and the context to read them with.
#[derive(Debug, Clone)]
pub struct Plan {
    pub fields: Vec<String>,
    pub context: Value,
}

impl Plan {
    /// The plan from the `odoo_fill` column (NULL: Odoo fills nothing).
    pub fn from_column(v: Option<Value>) -> Option<Plan> {
        let v = v?;
        let fields: Vec<String> = v["fields"]
            .as_array()?
            .iter()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        (!fields.is_empty()).then(|| Plan {
            fields,
            context: v.get("context").cloned().unwrap_or_else(|| json!({})),
        })
    }
}

fn bad_gateway(detail: String) -> Problem {
    Problem::new(StatusCode::BAD_GATEWAY, kind::UPSTREAM_ERROR).detail(detail)
}

/// Odoo's `read` of `fields` for `ids` as the caller: its records by id.
pub async fn odoo_read(
    state: &AppState,
    ctx: &Ctx,
    gate: &Gate,
    model: &str,
    ids: &[i64],
    fields: &[String],
    context: &Value,
) -> Result<Vec<Value>, Problem> {
    let Some(upstream) = state.odoo.clone() else {
        return Err(Problem::internal());
    };
    let key = forward::caller_credential(state, ctx, gate).await?;
    let body = json!({"ids": ids, "fields": fields, "context": context});
    let answer = upstream.call(&key, model, "read", body.to_string()).await;
    drop(key);
    let records = answer.map_err(|(problem, _)| problem)?;
    match records {
        Value::Array(rows) => Ok(rows),
        other => {
            // Record data, possibly personal: only its beginning reaches the log.
            tracing::error!(
                "Odoo's {model}.read answered {} instead of a list",
                crate::error::truncate(&other.to_string(), 120)
            );
            Err(bad_gateway(format!(
                "Odoo's {model}.read did not answer with a list of records"
            )))
        }
    }
}

/// Fill `records` (objects with an `id`, as SQL returned them) with Odoo's values of the plan's
/// fields: one call for all of them.
pub async fn fill(
    state: &AppState,
    ctx: &Ctx,
    gate: &Gate,
    model: &str,
    plan: &Plan,
    records: &mut [Value],
) -> Result<(), Problem> {
    let ids: Vec<i64> = records.iter().filter_map(|r| r["id"].as_i64()).collect();
    if ids.is_empty() {
        return Ok(());
    }
    let rows = odoo_read(state, ctx, gate, model, &ids, &plan.fields, &plan.context).await?;
    merge(model, records, &plan.fields, &rows)
}

/// Odoo's values into the SQL records, by id and field name. A record Odoo did not return (its
/// `read` raises rather than skip one) is Odoo's contract broken: 502.
pub fn merge(
    model: &str,
    records: &mut [Value],
    fields: &[String],
    rows: &[Value],
) -> Result<(), Problem> {
    let by_id: std::collections::HashMap<i64, &Value> = rows
        .iter()
        .filter_map(|r| Some((r["id"].as_i64()?, r)))
        .collect();
    for record in records.iter_mut() {
        let Some(id) = record["id"].as_i64() else {
            continue;
        };
        let Some(row) = by_id.get(&id) else {
            return Err(bad_gateway(format!(
                "Odoo's {model}.read did not return record {id}"
            )));
        };
        let Some(obj) = record.as_object_mut() else {
            continue;
        };
        for f in fields {
            obj.insert(f.clone(), row.get(f).cloned().unwrap_or(Value::Bool(false)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert!(Plan::from_column(None).is_none());
        assert!(Plan::from_column(Some(json!({"fields": []}))).is_none());
        let p = Plan::from_column(Some(
            json!({"fields": ["lst_price"], "context": {"lang": "fr_FR"}}),
        ))
        .unwrap();
        assert_eq!(p.fields, vec!["lst_price"]);
        assert_eq!(p.context["lang"], "fr_FR");
    }

    #[test]
    fn merged_by_id_and_name() {
        let mut records = vec![json!({"id": 2, "name": "b"}), json!({"id": 1, "name": "a"})];
        let rows = vec![
            json!({"id": 1, "lst_price": 10.0}),
            json!({"id": 2, "lst_price": 20.0}),
        ];
        merge(
            "product.product",
            &mut records,
            &["lst_price".into()],
            &rows,
        )
        .unwrap();
        assert_eq!(
            records,
            vec![
                json!({"id": 2, "name": "b", "lst_price": 20.0}),
                json!({"id": 1, "name": "a", "lst_price": 10.0})
            ]
        );
        let err = merge("x", &mut records, &["y".into()], &rows[..1]).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_GATEWAY);
    }
}
