//! Nested reads: the JSON of a record with, for each relational field given sub-fields, the
//! related records read as the caller (that model's access rights, field groups and record
//! rules), all as correlated subqueries of one statement. The field tree comes from
//! [`crate::nested`] (a `fields` list or a `web_read` specification).
//!
//! What comes back follows Odoo 19's `web_read` (addons/web/models/models.py):
//! - many2one with sub-fields: `{"id": N, ...}` (False when empty). `id` and `display_name`
//!   alone are read without any access check (Odoo reads `display_name` as the superuser); any
//!   other sub-field on a record the caller may not read fails the whole request (42501), as
//!   Odoo's `read` raises AccessError;
//! - x2many with sub-fields: the records the caller may read (as the plain read lists them),
//!   sorted by `order`, the first `limit` read in full and the others as `{"id": N}`;
//! - in the `Web` style a many2one without sub-fields is its id (Odoo's `load=None`); in the
//!   `Read` style (`fields`) it stays `[id, display_name]` as `read` returns it.
use super::ReadError;
use super::meta::ModelMeta;
use super::select::{field_readable, object_sql, order_terms};
use super::shape::{Resolved, Row, Shaper};
use crate::domain::Param;
use crate::nested::{self, Node, SpecError};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// How values without sub-fields are shaped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Style {
    /// `read()`: a many2one is `[id, display_name]`.
    Read,
    /// `web_read()`: a many2one is its id.
    Web,
}

fn bad(what: &str, e: &SpecError) -> ReadError {
    ReadError::invalid(format!("invalid {what}: {e}"))
}

fn invalid(at: &str, message: String) -> ReadError {
    bad(
        "field list",
        &SpecError {
            at: at.to_string(),
            message,
        },
    )
}

/// The tree of a `fields` list that nests (a `{`, `(` or `,` in an item), else None: plain lists
/// keep the flat read.
pub fn fields_tree(fields: &Option<Vec<Option<String>>>) -> Result<Option<Vec<Node>>, ReadError> {
    let Some(list) = fields.as_ref() else {
        return Ok(None);
    };
    if !list.iter().flatten().any(|f| nested::is_nested(f)) {
        return Ok(None);
    }
    let items: Vec<&str> = list.iter().flatten().map(String::as_str).collect();
    nested::parse_fields(&items)
        .map(Some)
        .map_err(|e| bad("field list", &e))
}

/// The tree of a `web_read` specification.
pub fn specification_tree(spec: &serde_json::Value) -> Result<Vec<Node>, ReadError> {
    nested::parse_specification(spec).map_err(|e| bad("specification", &e))
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

pub struct Builder<'s, 'a> {
    pub shaper: &'s Shaper<'a>,
    pub style: Style,
    uid_param: Cell<Option<usize>>,
    /// The row alias of the x2many being built and the LEFT JOINs its many2one sub-records
    /// add: joined, PostgreSQL reads a comodel (and checks its rules) for all the rows at once
    /// instead of one correlated subquery per row.
    joins: RefCell<Option<(String, Vec<String>)>>,
}

impl<'s, 'a> Builder<'s, 'a> {
    pub fn new(shaper: &'s Shaper<'a>, style: Style) -> Self {
        Builder {
            shaper,
            style,
            uid_param: Cell::new(None),
            joins: RefCell::new(None),
        }
    }

    /// (key, SQL of the JSON value) of each node for row `alias` of `model`, `id` first.
    pub fn pairs(
        &self,
        model: &Rc<ModelMeta>,
        alias: &str,
        nodes: &[Node],
        at: &str,
    ) -> Result<Vec<(String, String)>, ReadError> {
        let mut out = vec![("id".to_string(), format!("to_jsonb({alias}.id)"))];
        for node in nodes {
            if node.name == "id" && node.is_plain() {
                continue;
            }
            let value = self.value(model, alias, node, at)?;
            out.push((node.name.clone(), value));
        }
        Ok(out)
    }

    fn check_field(&self, model: &Rc<ModelMeta>, name: &str, at: &str) -> Result<(), ReadError> {
        let here = join(at, name);
        if name != "display_name" && !model.info.fields.contains_key(name) {
            return Err(invalid(
                &here,
                format!("unknown field {}.{name}", model.info.model),
            ));
        }
        let reader = &self.shaper.caller;
        if !field_readable(reader, model, name) {
            return Err(ReadError::Denied(format!(
                "user {} may not read field {}.{name} (at {here}): it is restricted to groups the user is not in",
                reader.uid, model.info.model
            )));
        }
        if let Err(why) = self.shaper.servable(model, name) {
            return Err(ReadError::Invalid {
                message: format!(
                    "invalid field list: at {here}: {}.{name} is not stored in the database ({why})",
                    model.info.model
                ),
                hint: Some("non-stored computed and binary fields need Odoo itself"),
            });
        }
        Ok(())
    }

    fn value(
        &self,
        model: &Rc<ModelMeta>,
        alias: &str,
        node: &Node,
        at: &str,
    ) -> Result<String, ReadError> {
        self.check_field(model, &node.name, at)?;
        let here = join(at, &node.name);
        if node.name == "display_name" {
            if !node.is_plain() {
                return Err(invalid(&here, "display_name has no sub-fields".into()));
            }
            return self.shaper.value_at(model, alias, "display_name");
        }
        let r = self
            .shaper
            .resolve(model, &Row::Alias(alias.to_string()), &node.name, 0)
            .map_err(|why| invalid(&here, why))?;
        let ttype = r.field.ttype.clone();
        let x2many = matches!(ttype.as_str(), "one2many" | "many2many");
        if (node.limit.is_some() || node.order.is_some()) && !x2many {
            return Err(invalid(
                &here,
                format!("limit and order apply to one2many and many2many fields, not to a {ttype}"),
            ));
        }
        if node.fields.is_some() && ttype != "many2one" && !x2many {
            return Err(invalid(
                &here,
                format!(
                    "{}.{} is a {ttype}: it has no sub-fields",
                    model.info.model, node.name
                ),
            ));
        }
        match (ttype.as_str(), &node.fields) {
            ("many2one", None) if self.style == Style::Web => {
                let id = self.shaper.m2o_id(&r);
                Ok(format!("coalesce(to_jsonb({id}), 'false'::jsonb)"))
            }
            ("many2one", Some(sub)) => self.many2one(alias, &r, sub, &here),
            _ if x2many && !node.is_plain() => self.x2many(&r, node, &here),
            _ => self.shaper.value_at(model, alias, &node.name),
        }
    }

    /// `api_gateway._nested_read_refused(uid, model, id)`: raises 42501 when evaluated.
    fn refusal(&self, model: &str, id: &str) -> String {
        let uid = match self.uid_param.get() {
            Some(p) => p,
            None => {
                let p = self
                    .shaper
                    .param(Param::Int(i64::from(self.shaper.caller.uid)));
                self.uid_param.set(Some(p));
                p
            }
        };
        // Model names are valid model names (meta.rs): safe as a literal.
        format!("api_gateway._nested_read_refused(${uid}::int4, '{model}', ({id})::int4)")
    }

    /// Whether reading `sub` needs read access to the records (anything but id/display_name).
    fn reads_records(sub: &[Node]) -> bool {
        sub.iter()
            .any(|n| !(n.is_plain() && (n.name == "id" || n.name == "display_name")))
    }

    /// The condition on row `alias` of `co` under which the caller may read it ("true" when no
    /// rule), or None when the caller may not read `co` at all.
    fn readable_rows(&self, co: &ModelMeta, alias: &str) -> Result<Option<String>, ReadError> {
        let (allowed, rule) = self.shaper.comodel_rule(co);
        if !allowed {
            return Ok(None);
        }
        Ok(Some(match rule {
            None => "true".into(),
            Some(rule) => self.shaper.rule_sql(co, &rule, alias)?,
        }))
    }

    fn comodel(&self, r: &Resolved, at: &str) -> Result<Rc<ModelMeta>, ReadError> {
        self.shaper
            .comodel(r.field.relation.as_deref())
            .ok_or_else(|| {
                invalid(
                    at,
                    format!(
                        "the comodel of {}.{} cannot be served",
                        r.model.info.model, r.field.name
                    ),
                )
            })
    }

    /// The related record of many2one `r` on row `alias`: a LEFT JOIN when `alias` is the row of
    /// the x2many being built, a correlated subquery otherwise (one record per row there).
    fn many2one(
        &self,
        alias: &str,
        r: &Resolved,
        sub: &[Node],
        at: &str,
    ) -> Result<String, ReadError> {
        let co = self.comodel(r, at)?;
        let id = self.shaper.m2o_id(r);
        let n = self.shaper.alias("n");
        let obj = object_sql(&self.pairs(&co, &n, sub, at)?);
        let table = co.table_ident();
        let (rule, missing) = if Self::reads_records(sub) {
            let refused = self.refusal(&co.info.model, &id);
            match self.readable_rows(&co, &n)? {
                None => {
                    return Ok(format!(
                        "CASE WHEN {id} IS NULL THEN 'false'::jsonb ELSE {refused} END"
                    ));
                }
                Some(rule) => (rule, refused),
            }
        } else {
            ("true".to_string(), "'false'::jsonb".to_string())
        };
        let related = match self.joins.borrow_mut().as_mut() {
            Some((row, joins)) if row == alias => {
                let j = self.shaper.alias("j");
                joins.push(format!(
                    " LEFT JOIN (SELECT {n}.id, {obj} AS obj FROM public.{table} {n} WHERE {rule}) {j} \
                     ON {j}.id = {id}"
                ));
                format!("{j}.obj")
            }
            _ => format!("(SELECT {obj} FROM public.{table} {n} WHERE {n}.id = {id} AND ({rule}))"),
        };
        Ok(format!(
            "CASE WHEN {id} IS NULL THEN 'false'::jsonb ELSE coalesce({related}, {missing}) END"
        ))
    }

    /// The pairs of the x2many rows on `alias`, with the joins their many2one sub-records need.
    fn row_pairs(
        &self,
        co: &Rc<ModelMeta>,
        alias: &str,
        sub: &[Node],
        at: &str,
    ) -> Result<(Vec<(String, String)>, String), ReadError> {
        let outer = self.joins.replace(Some((alias.to_string(), vec![])));
        let pairs = self.pairs(co, alias, sub, at);
        let joins = self
            .joins
            .replace(outer)
            .map(|(_, j)| j)
            .unwrap_or_default();
        Ok((pairs?, joins.concat()))
    }

    fn x2many(&self, r: &Resolved, node: &Node, at: &str) -> Result<String, ReadError> {
        let Some(rows) = self.shaper.x2many_rows(r)? else {
            return Ok("'[]'::jsonb".into());
        };
        let co = rows.comodel.clone();
        let c = &rows.alias;
        let order = match &node.order {
            Some(o) => self.order(&co, c, o, at)?,
            None => rows.order.clone(),
        };
        let Some(sub) = &node.fields else {
            // `order` alone sorts the ids (Odoo applies `limit` only with sub-fields).
            if node.limit.is_some() && self.style == Style::Read {
                return Err(invalid(
                    at,
                    "limit needs sub-fields: name(limit=N){...}".into(),
                ));
            }
            return Ok(format!(
                "coalesce((SELECT jsonb_agg({c}.id ORDER BY {order}) {}), '[]'::jsonb)",
                rows.rows_sql("")
            ));
        };
        // With a limit the records are read from a second scan of the comodel (`e`), joined to
        // the numbered ids; without one, straight from the rows (`c`).
        let e = match node.limit {
            Some(_) => self.shaper.alias("e"),
            None => c.clone(),
        };
        let (pairs, joins) = self.row_pairs(&co, &e, sub, at)?;
        let mut obj = object_sql(&pairs);
        // A related x2many lists its ids as the superuser (shape.rs): reading the records
        // themselves is the caller's read, refused when a rule hides one of them.
        if r.hops > 0 && Self::reads_records(sub) {
            let refused = self.refusal(&co.info.model, &format!("{e}.id"));
            obj = match self.readable_rows(&co, &e)? {
                None => refused,
                Some(rule) => format!("CASE WHEN {rule} THEN {obj} ELSE {refused} END"),
            };
        }
        Ok(match node.limit {
            None => format!(
                "coalesce((SELECT jsonb_agg({obj} ORDER BY {order}) {}), '[]'::jsonb)",
                rows.rows_sql(&joins)
            ),
            Some(limit) => {
                let k = self.shaper.alias("k");
                let table = co.table_ident();
                let l = self.shaper.param(Param::Int(i64::from(limit)));
                format!(
                    "coalesce((SELECT jsonb_agg(CASE WHEN {k}.n <= ${l}::int8 THEN {obj} \
                       ELSE jsonb_build_object('id', {e}.id) END ORDER BY {k}.n) \
                       FROM (SELECT {c}.id, row_number() OVER (ORDER BY {order}) AS n {from}) {k} \
                       JOIN public.{table} {e} ON {e}.id = {k}.id{joins}), '[]'::jsonb)",
                    from = rows.rows_sql("")
                )
            }
        })
    }

    /// ORDER BY of a caller's `order` on row `alias` of `co`, `id` last.
    fn order(
        &self,
        co: &ModelMeta,
        alias: &str,
        order: &str,
        at: &str,
    ) -> Result<String, ReadError> {
        let terms = order_terms(co, Some(order), alias, self.shaper.lang_param)
            .map_err(|e| invalid(at, e.to_string()))?;
        Ok(super::select::order_by(&terms))
    }
}
