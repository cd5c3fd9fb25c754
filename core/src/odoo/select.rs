//! Which fields a read returns and how its statement is put together: requested fields checked
//! as Odoo checks them, the default field list, the ORDER BY of an `order` string, the page, and
//! the statements of `search_read` and of a keyset page.
use super::meta::{ModelMeta, plain_identifier};
use super::nested_read::{Builder, Style, fields_tree};
use super::shape::Shaper;
use super::{Caller, ReadError, ident};
use crate::cursor;
use crate::domain;
use crate::fields::{self, Source};
use crate::nested::Node;
use std::rc::Rc;

/// Whether the reader may read field `name` of `model` (its `groups`).
pub fn field_readable(reader: &Caller, model: &ModelMeta, name: &str) -> bool {
    model
        .fields
        .get(name)
        .is_none_or(|f| fields::visible(&f.groups, reader.groups, reader.superuser))
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// One requested field checked as Odoo checks it (unknown: invalid; restricted to groups the
/// reader is not in: denied), and where its value comes from (`fields::source`), with the
/// reason SQL cannot read it.
fn requested_field(
    shaper: &Shaper,
    model: &Rc<ModelMeta>,
    name: &str,
) -> Result<(Source, Option<String>), ReadError> {
    if name != "display_name" && !model.info.fields.contains_key(name) {
        return Err(ReadError::invalid(format!(
            "invalid field list: unknown field {}.{}",
            model.info.model,
            truncate(name)
        )));
    }
    // Odoo checks the field's groups before anything else (AccessError).
    if !field_readable(&shaper.caller, model, name) {
        return Err(ReadError::Denied(format!(
            "user {} may not read field {}.{name}: it is restricted to groups the user is not in",
            shaper.caller.uid, model.info.model
        )));
    }
    let servable = shaper.servable(model, name);
    let ttype = model
        .info
        .fields
        .get(name)
        .map(|f| f.ttype.as_str())
        .unwrap_or("char");
    Ok((
        fields::source(name, ttype, servable.is_ok()),
        servable.err(),
    ))
}

/// A non-empty field list split by source: (read in SQL, `id` first; filled by Odoo), in the
/// order asked, each checked once.
pub fn split_fields(
    shaper: &Shaper,
    model: &Rc<ModelMeta>,
    list: Vec<String>,
) -> Result<(Vec<String>, Vec<String>), ReadError> {
    let (mut sql, mut odoo) = (vec!["id".to_string()], vec![]);
    for name in list {
        // A nested read (`name{...}`) is SQL's (its sub-fields are checked there).
        if crate::nested::is_nested(&name) {
            sql.push(name);
            continue;
        }
        let target = match requested_field(shaper, model, &name)?.0 {
            Source::Sql => &mut sql,
            Source::Odoo => &mut odoo,
        };
        if !target.contains(&name) {
            target.push(name);
        }
    }
    Ok((sql, odoo))
}

/// The fields to return: the ones asked for (each checked), or every stored readable field.
pub fn select_fields(
    shaper: &Shaper,
    model: &Rc<ModelMeta>,
    fields: Option<Vec<Option<String>>>,
) -> Result<Vec<String>, ReadError> {
    match fields {
        Some(list) if !list.is_empty() => {
            let mut out: Vec<String> = vec![];
            for name in list.into_iter().flatten() {
                if let (Source::Odoo, why) = requested_field(shaper, model, &name)? {
                    return Err(ReadError::Invalid {
                        message: format!(
                            "invalid field list: {}: {}",
                            why.unwrap_or_else(|| format!(
                                "{}.{name} is not stored in the database",
                                model.info.model
                            )),
                            fields::ODOO_ONLY
                        ),
                        hint: Some(
                            "non-stored computed and binary fields need Odoo itself: start api-gateway serve with --odoo-url",
                        ),
                    });
                }
                if !out.contains(&name) {
                    out.push(name)
                }
            }
            if !out.iter().any(|f| f == "id") {
                out.insert(0, "id".into());
            }
            Ok(out)
        }
        _ => {
            let mut names: Vec<String> = model
                .info
                .fields
                .values()
                .filter(|f| {
                    f.store
                        && f.ttype != "binary"
                        && field_readable(&shaper.caller, model, &f.name)
                        && shaper.servable(model, &f.name).is_ok()
                        && shaper.x2many_readable(model, &f.name)
                })
                .map(|f| f.name.clone())
                .collect();
            names.sort_by(|a, b| (a != "id", a).cmp(&(b != "id", b)));
            Ok(names)
        }
    }
}

/// The (key, SQL value) pairs of each record of row `t`: a flat field list, or a nested tree (a
/// `fields` list with `{...}`, or a `web_read` specification).
pub fn record_pairs(
    shaper: &Shaper,
    model: &Rc<ModelMeta>,
    fields: Option<Vec<Option<String>>>,
    specification: Option<Vec<Node>>,
) -> Result<Vec<(String, String)>, ReadError> {
    let tree = match specification {
        Some(nodes) => Some((nodes, Style::Web)),
        None => fields_tree(&fields)?.map(|nodes| (nodes, Style::Read)),
    };
    if let Some((nodes, style)) = tree {
        return Builder::new(shaper, style).pairs(model, "t", &nodes, "");
    }
    flat_pairs(shaper, model, fields)
}

/// The (key, SQL value) pairs of a flat field list (every stored readable field when none).
pub fn flat_pairs(
    shaper: &Shaper,
    model: &Rc<ModelMeta>,
    fields: Option<Vec<Option<String>>>,
) -> Result<Vec<(String, String)>, ReadError> {
    select_fields(shaper, model, fields)?
        .into_iter()
        .map(|n| {
            let value = shaper.value(model, &n)?;
            Ok((n, value))
        })
        .collect()
}

/// `jsonb_build_object` takes at most 100 arguments: build in chunks and concatenate.
pub fn object_sql(pairs: &[(String, String)]) -> String {
    let chunks: Vec<String> = pairs
        .chunks(40)
        .map(|chunk| {
            let args: Vec<String> = chunk.iter().map(|(k, v)| format!("'{k}', {v}")).collect();
            format!("jsonb_build_object({})", args.join(", "))
        })
        .collect();
    if chunks.is_empty() {
        "'{}'::jsonb".into()
    } else {
        chunks.join(" || ")
    }
}

/// One term of ORDER BY: the field, its SQL expression over the row, descending or not.
#[derive(Debug, Clone, PartialEq)]
pub struct OrderTerm {
    pub name: String,
    pub expr: String,
    pub translated: bool,
    pub desc: bool,
}

/// The terms of a caller's `order` string (the model's `_order` when None or blank) on row
/// `alias`, `id` last. A bad `order` is invalid; a `_order` the parser refuses sorts by `id`.
pub fn order_terms(
    model: &ModelMeta,
    order: Option<&str>,
    alias: &str,
    lang_param: usize,
) -> Result<Vec<OrderTerm>, ReadError> {
    let parsed = match order.map(str::trim).filter(|o| !o.is_empty()) {
        Some(o) => domain::parse_order(o, &model.info)
            .map_err(|e| ReadError::invalid(format!("invalid order: {e}")))?,
        None => domain::parse_order(&model.order, &model.info).unwrap_or_default(),
    };
    let mut terms = vec![];
    for (name, desc) in &parsed {
        let column = ident(name)?;
        let translated = model.info.fields.get(name).is_some_and(|f| f.translate);
        let expr = if translated {
            format!("coalesce({alias}.{column}->>${lang_param}, {alias}.{column}->>'en_US')")
        } else {
            format!("{alias}.{column}")
        };
        terms.push(OrderTerm {
            name: name.clone(),
            expr,
            translated,
            desc: *desc,
        });
    }
    if !parsed.iter().any(|(n, _)| n == "id") {
        terms.push(OrderTerm {
            name: "id".into(),
            expr: format!("{alias}.{}", ident("id")?),
            translated: false,
            desc: false,
        });
    }
    Ok(terms)
}

pub fn order_by(terms: &[OrderTerm]) -> String {
    terms
        .iter()
        .map(|t| format!("{} {}", t.expr, if t.desc { "DESC" } else { "ASC" }))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The order as a cursor pins it: `name asc,id asc`.
pub fn order_signature(terms: &[OrderTerm]) -> String {
    terms
        .iter()
        .map(|t| format!("{} {}", t.name, if t.desc { "desc" } else { "asc" }))
        .collect::<Vec<_>>()
        .join(",")
}

/// How many rows from where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

/// `limit` None: the settings' default; capped by the settings' maximum (`limits` is both).
/// Negative limits and offsets are invalid.
pub fn page(
    limits: (i32, i32),
    limit: Option<i32>,
    offset: Option<i32>,
) -> Result<Page, ReadError> {
    let (default, max) = limits;
    let limit = match limit {
        None => default,
        Some(l) if l < 0 => {
            return Err(ReadError::invalid(format!(
                "invalid limit {l}: must be >= 0"
            )));
        }
        Some(l) => l.min(max),
    };
    let offset = offset.unwrap_or(0);
    if offset < 0 {
        return Err(ReadError::invalid(format!(
            "invalid offset {offset}: must be >= 0"
        )));
    }
    Ok(Page {
        limit: i64::from(limit),
        offset: i64::from(offset),
    })
}

/// The key a versioned read carries the row version under, removed before it is returned.
const VERSION_KEY: &str = "__agw_version";

/// How `search_read`'s statement returns its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The JSON array of the records.
    List,
    /// The first record, or NULL.
    Single,
    /// `{"record": <first record>, "version": "<its xmin>"}`, or NULL.
    Versioned,
}

/// The statement of `search_read`: the records of `from_where` (over row `t`) in `terms`' order
/// as one jsonb, `page` the numbers of its limit and offset parameters.
pub fn search_read_sql(
    mut pairs: Vec<(String, String)>,
    terms: &[OrderTerm],
    from_where: &str,
    page: Option<(usize, usize)>,
    shape: Shape,
) -> String {
    let order = order_by(terms);
    // The columns the page carries, before the row version (not a column of the table) joins.
    let columns = projection(&[&object_sql(&pairs), &order]);
    let version = shape == Shape::Versioned;
    if version {
        pairs.push((VERSION_KEY.into(), "t.\"__agw_xmin\"".into()));
    }
    let page_sql = page
        .map(|(l, o)| format!(" LIMIT ${l}::int8 OFFSET ${o}::int8"))
        .unwrap_or_default();
    let sql = format!(
        // The page's order again in the aggregate (it ends with id, so it is total): cheaper
        // than numbering the rows with a window function.
        "SELECT coalesce(jsonb_agg({obj} ORDER BY {order}), '[]'::jsonb) FROM ( \
           SELECT {columns}{xmin} {from_where} \
            ORDER BY {order}{page_sql}) t",
        obj = object_sql(&pairs),
        xmin = if version {
            ", t.xmin::text AS \"__agw_xmin\""
        } else {
            ""
        },
    );
    match shape {
        Shape::Versioned => format!(
            "SELECT CASE WHEN r IS NOT NULL THEN jsonb_build_object('record', r - '{VERSION_KEY}', \
             'version', r -> '{VERSION_KEY}') END FROM (SELECT ({sql}) -> 0 AS r) v"
        ),
        Shape::Single => format!("SELECT ({sql}) -> 0"),
        Shape::List => sql,
    }
}

/// The condition of the rows after a cursor's key (parameter `key_param`, a jsonb object of the
/// terms' values) in `terms`' order over row `t` of `model`; `not_null` lists the table's NOT
/// NULL columns (no NULL cases needed there).
pub fn keyset_sql(
    model: &ModelMeta,
    terms: &[OrderTerm],
    key_param: usize,
    not_null: &[String],
) -> Result<String, ReadError> {
    let k = key_param;
    let mut key_exprs = vec![];
    for t in terms {
        key_exprs.push(if t.translated {
            format!("(${k}::jsonb->>'{}')", t.name)
        } else {
            format!(
                "(SELECT k.{} FROM jsonb_populate_record(NULL::public.{}, ${k}::jsonb) k)",
                ident(&t.name)?,
                model.table_ident()
            )
        });
    }
    let cursor_terms: Vec<cursor::Term> = terms
        .iter()
        .zip(&key_exprs)
        .map(|(t, key)| cursor::Term {
            row: &t.expr,
            key,
            desc: t.desc,
            not_null: t.name == "id" || (!t.translated && not_null.contains(&t.name)),
        })
        .collect();
    Ok(cursor::keyset_sql(&cursor_terms))
}

/// The statement of one keyset page: column 1 the records (at most parameter `limit_param` of
/// them), column 2 the sort key of the last one as a jsonb text when more rows follow.
/// `keyset` is empty on the first page, else ` AND <keyset_sql>`.
pub fn page_sql(
    pairs: &[(String, String)],
    terms: &[OrderTerm],
    from_where: &str,
    keyset: &str,
    limit_param: usize,
) -> String {
    let l = limit_param;
    let key_obj = object_sql(
        &terms
            .iter()
            .map(|t| (t.name.clone(), format!("to_jsonb({})", t.expr)))
            .collect::<Vec<_>>(),
    );
    let order = order_by(terms);
    // LIMIT n + 1 tells whether there is a next page; the key of the n-th row starts it.
    format!(
        "SELECT coalesce(jsonb_agg({obj} ORDER BY t.\"__agw_n\") FILTER (WHERE t.\"__agw_n\" <= ${l}), '[]'::jsonb), \
                CASE WHEN count(*) > ${l} AND ${l} > 0 THEN \
                  ((array_agg(t.\"__agw_key\" ORDER BY t.\"__agw_n\"))[${l}::int4])::text END \
           FROM (SELECT t.*, row_number() OVER (ORDER BY {order}) AS \"__agw_n\" FROM ( \
             SELECT t.*, {key_obj} AS \"__agw_key\" {from_where}{keyset} \
              ORDER BY {order} LIMIT ${l}::int8 + 1) t) t",
        obj = object_sql(pairs),
    )
}

/// The columns of row `t` that the outer query's expressions name (`t."col"`, `t.id`, the alias
/// quoted or not), so the page carries only those through its sort; `t.*` if they name the row
/// any other way.
pub fn projection(texts: &[&str]) -> String {
    let mut columns: Vec<String> = vec![];
    for text in texts {
        // The alias may be written quoted, or as a row value: `"t".x`, `(t).x`.
        let text = &text.replace("\"t\".", "t.").replace("(t).", "t.");
        let bytes = text.as_bytes();
        let ident_byte = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
        // The whole row used as a value (`to_jsonb(t)`, `"t"`): every column.
        let whole_row = text.contains("\"t\"")
            || (0..bytes.len()).any(|k| {
                bytes[k] == b't'
                    && (k == 0 || !(ident_byte(bytes[k - 1]) || bytes[k - 1] == b'.'))
                    && bytes
                        .get(k + 1)
                        .is_none_or(|&n| !ident_byte(n) && n != b'.' && n != b'\'')
            });
        if whole_row {
            return "t.*".into();
        }
        let mut i = 0;
        while let Some(at) = text[i..].find("t.") {
            let at = i + at;
            i = at + 2;
            let starts_name = at == 0 || {
                let b = bytes[at - 1];
                !(b.is_ascii_alphanumeric() || b == b'_' || b == b'"' || b == b'.')
            };
            if !starts_name {
                continue;
            }
            let rest = &text[at + 2..];
            let column = if let Some(quoted) = rest.strip_prefix('"') {
                match quoted.find('"') {
                    Some(end) if plain_identifier(&quoted[..end]) => &quoted[..end],
                    _ => return "t.*".into(),
                }
            } else if rest.starts_with("id")
                && !rest[2..].starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
            {
                "id"
            } else {
                return "t.*".into();
            };
            if !columns.iter().any(|c| c == column) {
                columns.push(column.to_string());
            }
        }
    }
    if columns.is_empty() {
        return "t.id".into();
    }
    columns
        .iter()
        .map(|c| match ident(c) {
            Ok(c) => format!("t.{c}"),
            Err(_) => "t.*".into(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether `sql` reads a text parameter whose value is `value` (`$n` not followed by a digit).
pub fn reads_param(sql: &str, params: &[domain::Param], value: &str) -> bool {
    params.iter().enumerate().any(|(i, p)| {
        matches!(p, domain::Param::Text(v) if v == value) && {
            let tag = format!("${}", i + 1);
            sql.match_indices(&tag)
                .any(|(at, _)| !sql[at + tag.len()..].starts_with(|c: char| c.is_ascii_digit()))
        }
    })
}
