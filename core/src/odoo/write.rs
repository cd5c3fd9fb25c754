//! The statements of a SQL create, write and unlink as Odoo's ORM would store the record: the
//! columns the caller's values fill (passed as one jsonb through `jsonb_populate_record`, so
//! PostgreSQL converts and checks every value and none is spliced into SQL text), the log
//! columns Odoo sets itself, company-dependent values merged per company, many2many commands,
//! and the partner fields Odoo computes in Python that rules and display names read. The
//! extension runs them in order with the values and ids as parameters.
use super::meta::ModelMeta;
use super::{ReadError, ident};
use crate::field_values::{Command, MAGIC, Values};
use serde_json::Value;

/// Whether `model` stores `field` in a column of its table.
fn has_column(model: &ModelMeta, field: &str) -> bool {
    model.fields.get(field).is_some_and(|f| f.has_column)
}

/// The first required column of `model` the values leave empty (Odoo's NOT NULL check), the
/// fields Odoo fills itself aside.
pub fn missing_required(model: &ModelMeta, values: &Values) -> Option<String> {
    model
        .fields
        .iter()
        .filter(|(name, meta)| {
            meta.required
                && meta.has_column
                && !MAGIC.contains(&name.as_str())
                && values.columns.get(*name).is_none_or(Value::is_null)
        })
        .map(|(name, _)| name)
        .min()
        .cloned()
}

/// `INSERT ... RETURNING id` of a new record: $1 the values (jsonb), $2 the uid. The second
/// part is false when the statement takes no parameter (`DEFAULT VALUES`).
pub fn insert_sql(model: &ModelMeta, values: &Values) -> Result<(String, bool), ReadError> {
    let mut names: Vec<&String> = values.columns.keys().collect();
    names.sort();
    let mut cols = vec![];
    let mut exprs = vec![];
    for n in names {
        let c = ident(n)?;
        exprs.push(format!("r.{c}"));
        cols.push(c.to_string());
    }
    for n in ["create_uid", "write_uid", "create_date", "write_date"] {
        if !has_column(model, n) {
            continue;
        }
        cols.push(ident(n)?.to_string());
        exprs.push(
            if n.ends_with("uid") {
                "$2::int4"
            } else {
                "(now() AT TIME ZONE 'utc')"
            }
            .to_string(),
        );
    }
    let t = model.table_ident();
    Ok(if cols.is_empty() {
        (
            format!("INSERT INTO public.{t} DEFAULT VALUES RETURNING id"),
            false,
        )
    } else {
        (
            format!(
                "INSERT INTO public.{t} ({}) SELECT {} FROM jsonb_populate_record(NULL::public.{t}, $1::jsonb) r RETURNING id",
                cols.join(", "),
                exprs.join(", ")
            ),
            true,
        )
    })
}

/// `UPDATE` of record $3 with the values $1 (jsonb) by uid $2; None when nothing is set. A
/// company-dependent value is merged into the other companies' ones, and a null drops the
/// company's (no company left: NULL), as Odoo's company-dependent UPDATE does.
pub fn update_sql(model: &ModelMeta, values: &Values) -> Result<Option<String>, ReadError> {
    let mut names: Vec<&String> = values.columns.keys().collect();
    names.sort();
    let mut sets = vec![];
    for n in names {
        let c = ident(n)?;
        sets.push(if values.company_dependent.contains(n) {
            format!(
                "{c} = (SELECT jsonb_object_agg(d.key, d.value) \
                   FROM jsonb_each(coalesce(t.{c}, '{{}}'::jsonb) || r.{c}) d \
                  WHERE d.value <> 'null'::jsonb)"
            )
        } else {
            format!("{c} = r.{c}")
        });
    }
    if has_column(model, "write_uid") {
        sets.push("write_uid = $2::int4".into());
    }
    if has_column(model, "write_date") {
        sets.push("write_date = (now() AT TIME ZONE 'utc')".into());
    }
    if sets.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "UPDATE public.{t} t SET {sets} FROM jsonb_populate_record(NULL::public.{t}, $1::jsonb) r WHERE t.id = $3::int4",
        t = model.table_ident(),
        sets = sets.join(", ")
    )))
}

/// One statement of a many2many command on record $1; `ids` is bound as $2 (int8[]) when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub sql: String,
    pub ids: Option<Vec<i64>>,
}

/// The statements of `commands` on many2many `field` of record $1 of `model`.
pub fn many2many_steps(
    model: &ModelMeta,
    field: &str,
    commands: &[Command],
) -> Result<Vec<Step>, ReadError> {
    let f = model.info.fields.get(field);
    let Some((Some(rel), Some(c1), Some(c2))) =
        f.map(|f| (&f.relation_table, &f.column1, &f.column2))
    else {
        return Err(ReadError::invalid(format!(
            "field {}.{field} has no relation table",
            model.info.model
        )));
    };
    let (rel, c1, c2) = (ident(rel)?, ident(c1)?, ident(c2)?);
    let clear = format!("DELETE FROM public.{rel} WHERE {c1} = $1::int4");
    let mut steps = vec![];
    for cmd in commands {
        match cmd {
            Command::Replace(ids) => {
                steps.push(Step {
                    sql: clear.clone(),
                    ids: None,
                });
                steps.push(Step {
                    sql: format!(
                        "INSERT INTO public.{rel} ({c1}, {c2}) SELECT $1::int4, unnest($2::int4[]) ON CONFLICT DO NOTHING"
                    ),
                    ids: Some(ids.clone()),
                });
            }
            Command::Link(x) => steps.push(Step {
                sql: format!(
                    "INSERT INTO public.{rel} ({c1}, {c2}) VALUES ($1::int4, ($2::int8[])[1]) ON CONFLICT DO NOTHING"
                ),
                ids: Some(vec![*x]),
            }),
            Command::Unlink(x) => steps.push(Step {
                sql: format!("DELETE FROM public.{rel} WHERE {c1} = $1::int4 AND {c2} = ($2::int8[])[1]"),
                ids: Some(vec![*x]),
            }),
            Command::Clear => steps.push(Step {
                sql: clear.clone(),
                ids: None,
            }),
        }
    }
    Ok(steps)
}

/// Stored fields of res.partner that Odoo computes in Python and that rules and display names
/// depend on (`_compute_commercial_partner`, `_compute_complete_name`,
/// `_compute_commercial_company_name`): the statements that set them for record $1, in order;
/// none for other models or a partner table without them.
pub fn partner_recompute(model: &ModelMeta) -> Vec<&'static str> {
    if model.info.model != "res.partner"
        || ![
            "commercial_partner_id",
            "complete_name",
            "parent_id",
            "is_company",
        ]
        .iter()
        .all(|f| has_column(model, f))
    {
        return vec![];
    }
    let mut out = vec![
        "UPDATE public.res_partner p SET \
           commercial_partner_id = CASE WHEN coalesce(p.is_company, false) OR p.parent_id IS NULL THEN p.id \
               ELSE coalesce((SELECT q.commercial_partner_id FROM public.res_partner q WHERE q.id = p.parent_id), p.parent_id) END, \
           complete_name = CASE WHEN p.parent_id IS NOT NULL AND NOT coalesce(p.is_company, false) \
               THEN btrim(coalesce((SELECT q.name FROM public.res_partner q WHERE q.id = p.parent_id), '') || ', ' || coalesce(p.name, '')) \
               ELSE btrim(coalesce(p.name, '')) END \
         WHERE p.id = $1::int4",
    ];
    if has_column(model, "commercial_company_name") {
        out.push(
            "UPDATE public.res_partner p SET commercial_company_name = \
               (SELECT c.name FROM public.res_partner c WHERE c.id = p.commercial_partner_id AND c.is_company) \
             WHERE p.id = $1::int4",
        );
    }
    out
}

/// What a write or unlink conditioned on the row version did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NotFound,
    Changed,
}

impl Outcome {
    /// As `write_if_match`/`unlink_if_match` return it: `done`, `not_found` (missing or not
    /// visible: the plain function's false) or `changed` (the row version is none of those
    /// given; nothing done).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Done => "done",
            Outcome::NotFound => "not_found",
            Outcome::Changed => "changed",
        }
    }
}

/// The row version of record $1, locked `FOR <lock>` as the change will lock it (so the
/// version compared is the one the change replaces).
pub fn version_sql(model: &ModelMeta, lock: &str) -> String {
    format!(
        "SELECT xmin::text FROM public.{} WHERE id = $1::int4 FOR {lock}",
        model.table_ident()
    )
}

/// The outcome of a change conditioned on `versions` given the row's `current` version (None:
/// no such row).
pub fn version_outcome(current: Option<&str>, versions: &[String]) -> Outcome {
    match current {
        None => Outcome::NotFound,
        Some(v) if versions.iter().any(|x| x == v) => Outcome::Done,
        Some(_) => Outcome::Changed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{FieldInfo, ModelInfo};
    use crate::odoo::meta::FieldMeta;
    use std::collections::HashMap;

    fn partner(extra: &[&str]) -> ModelMeta {
        let mut info = ModelInfo::new("res.partner", "res_partner");
        let mut fields = HashMap::new();
        for n in [
            "id",
            "name",
            "parent_id",
            "is_company",
            "commercial_partner_id",
            "complete_name",
        ]
        .iter()
        .chain(extra)
        {
            info = info.with(FieldInfo::new(n, "char"));
            fields.insert(
                n.to_string(),
                FieldMeta {
                    has_column: true,
                    required: *n == "name",
                    ..FieldMeta::default()
                },
            );
        }
        info = info.with(FieldInfo::many2many(
            "category_id",
            "res.partner.category",
            "res_partner_res_partner_category_rel",
            "partner_id",
            "category_id",
        ));
        ModelMeta::new(info, "id".into(), fields, (0, 0)).unwrap()
    }

    fn values(pairs: &[(&str, Value)]) -> Values {
        Values {
            columns: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            many2many: vec![],
            company_dependent: vec![],
            targets: vec![],
        }
    }

    #[test]
    fn a_required_column_left_empty_is_named() {
        let m = partner(&[]);
        assert_eq!(missing_required(&m, &values(&[])), Some("name".into()));
        assert_eq!(
            missing_required(&m, &values(&[("name", Value::Null)])),
            Some("name".into())
        );
        assert_eq!(missing_required(&m, &values(&[("name", "A".into())])), None);
    }

    #[test]
    fn an_insert_sets_the_log_columns_odoo_sets() {
        let m = partner(&["create_uid", "write_date"]);
        let (sql, takes_params) = insert_sql(&m, &values(&[("name", "A".into())])).unwrap();
        assert!(takes_params);
        assert_eq!(
            sql,
            "INSERT INTO public.\"res_partner\" (\"name\", \"create_uid\", \"write_date\") \
             SELECT r.\"name\", $2::int4, (now() AT TIME ZONE 'utc') \
             FROM jsonb_populate_record(NULL::public.\"res_partner\", $1::jsonb) r RETURNING id"
        );
        let bare = partner(&[]);
        assert_eq!(
            insert_sql(&bare, &values(&[])).unwrap(),
            (
                "INSERT INTO public.\"res_partner\" DEFAULT VALUES RETURNING id".into(),
                false
            )
        );
    }

    #[test]
    fn an_update_merges_company_dependent_values() {
        let m = partner(&["write_uid"]);
        let mut v = values(&[("name", "B".into()), ("ref", serde_json::json!({"1": "X"}))]);
        v.company_dependent.push("ref".into());
        let sql = update_sql(&m, &v).unwrap().unwrap();
        assert!(sql.contains("\"name\" = r.\"name\""), "{sql}");
        assert!(
            sql.contains("\"ref\" = (SELECT jsonb_object_agg(d.key, d.value)"),
            "{sql}"
        );
        assert!(
            sql.contains("write_uid = $2::int4") && sql.ends_with("WHERE t.id = $3::int4"),
            "{sql}"
        );
        assert_eq!(update_sql(&partner(&[]), &values(&[])).unwrap(), None);
    }

    #[test]
    fn many2many_commands_become_statements_on_the_relation_table() {
        let m = partner(&[]);
        let steps = many2many_steps(
            &m,
            "category_id",
            &[
                Command::Replace(vec![1, 2]),
                Command::Link(3),
                Command::Unlink(4),
                Command::Clear,
            ],
        )
        .unwrap();
        assert_eq!(steps.len(), 5);
        assert!(
            steps[0]
                .sql
                .starts_with("DELETE FROM public.\"res_partner_res_partner_category_rel\"")
        );
        assert_eq!(steps[1].ids, Some(vec![1, 2]));
        assert!(steps[2].sql.contains("ON CONFLICT DO NOTHING") && steps[2].ids == Some(vec![3]));
        assert!(steps[3].sql.contains("\"category_id\" = ($2::int8[])[1]"));
        assert_eq!(steps[4].ids, None);
        assert!(matches!(
            many2many_steps(&m, "name", &[Command::Clear]),
            Err(ReadError::Invalid { .. })
        ));
    }

    #[test]
    fn partners_are_recomputed_only_where_odoo_stores_the_computed_fields() {
        assert_eq!(partner_recompute(&partner(&[])).len(), 1);
        assert_eq!(
            partner_recompute(&partner(&["commercial_company_name"])).len(),
            2
        );
        let mut other = partner(&[]);
        other.info.model = "res.company".into();
        assert!(partner_recompute(&other).is_empty());
    }

    #[test]
    fn a_conditioned_change_compares_the_row_version() {
        let v = vec!["10".to_string(), "12".to_string()];
        assert_eq!(version_outcome(None, &v), Outcome::NotFound);
        assert_eq!(version_outcome(Some("12"), &v), Outcome::Done);
        assert_eq!(version_outcome(Some("11"), &v), Outcome::Changed);
        assert!(version_sql(&partner(&[]), "UPDATE").ends_with("FOR UPDATE"));
    }
}
