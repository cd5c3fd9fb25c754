//! Nested reads: the JSON of a record with, for each relational field given sub-fields, the
//! related records read as the caller (that model's access rights, field groups and record
//! rules), all as correlated subqueries of the one statement `read.rs` runs. The field tree
//! comes from `api_gateway_core::nested` (a `fields` list or a `web_read` specification).
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
use crate::data::context::{self, UserContext};
use crate::data::meta::ModelMeta;
use crate::data::read;
use crate::data::values::{Resolved, Row, Shaper};
use crate::error::{ident, raise};
use api_gateway_core::domain::{self, Param};
use api_gateway_core::nested::{self, Node, SpecError};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

/// How values without sub-fields are shaped.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Style {
    /// `read()`: a many2one is `[id, display_name]`.
    Read,
    /// `web_read()`: a many2one is its id.
    Web,
}

fn bad(what: &str, e: &SpecError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("invalid {what}: {e}"),
        None,
    )
}

fn invalid(at: &str, message: String) -> ! {
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
pub fn fields_tree(fields: &Option<Vec<Option<String>>>) -> Option<Vec<Node>> {
    let list = fields.as_ref()?;
    if !list.iter().flatten().any(|f| nested::is_nested(f)) {
        return None;
    }
    let items: Vec<&str> = list.iter().flatten().map(String::as_str).collect();
    Some(nested::parse_fields(&items).unwrap_or_else(|e| bad("field list", &e)))
}

/// The tree of a `web_read` specification.
pub fn specification_tree(spec: &serde_json::Value) -> Vec<Node> {
    nested::parse_specification(spec).unwrap_or_else(|e| bad("specification", &e))
}

fn join(at: &str, name: &str) -> String {
    if at.is_empty() {
        name.to_string()
    } else {
        format!("{at}.{name}")
    }
}

pub struct Builder<'s, 'a, 'u> {
    pub shaper: &'s Shaper<'a, 'u>,
    pub user: &'u UserContext,
    pub style: Style,
    uid_param: std::cell::Cell<Option<usize>>,
    /// The row alias of the x2many being built and the LEFT JOINs its many2one sub-records
    /// add: joined, PostgreSQL reads a comodel (and checks its rules) for all the rows at once
    /// instead of one correlated subquery per row.
    joins: RefCell<Option<(String, Vec<String>)>>,
}

impl<'s, 'a, 'u> Builder<'s, 'a, 'u> {
    pub fn new(shaper: &'s Shaper<'a, 'u>, user: &'u UserContext, style: Style) -> Self {
        Builder {
            shaper,
            user,
            style,
            uid_param: std::cell::Cell::new(None),
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
    ) -> Vec<(String, String)> {
        let mut out = vec![("id".to_string(), format!("to_jsonb({alias}.id)"))];
        for node in nodes {
            if node.name == "id" && node.is_plain() {
                continue;
            }
            let value = self.value(model, alias, node, at);
            out.push((node.name.clone(), value));
        }
        out
    }

    fn check_field(&self, model: &Rc<ModelMeta>, name: &str, at: &str) {
        let here = join(at, name);
        if name != "display_name" && !model.info.fields.contains_key(name) {
            invalid(&here, format!("unknown field {}.{name}", model.info.model));
        }
        if !read::field_readable(self.user, model, name) {
            raise(
                PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
                format!(
                    "user {} may not read field {}.{name} (at {here}): it is restricted to groups the user is not in",
                    self.user.uid, model.info.model
                ),
                None,
            )
        }
        if let Err(why) = self.shaper.servable(model, name) {
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!(
                    "invalid field list: at {here}: {}.{name} is not stored in the database ({why})",
                    model.info.model
                ),
                Some("non-stored computed and binary fields need Odoo itself"),
            )
        }
    }

    fn value(&self, model: &Rc<ModelMeta>, alias: &str, node: &Node, at: &str) -> String {
        self.check_field(model, &node.name, at);
        let here = join(at, &node.name);
        if node.name == "display_name" {
            if !node.is_plain() {
                invalid(&here, "display_name has no sub-fields".into());
            }
            return self.shaper.value_at(model, alias, "display_name");
        }
        let r = self
            .shaper
            .resolve(model, &Row::Alias(alias.to_string()), &node.name, 0)
            .unwrap_or_else(|why| invalid(&here, why));
        let ttype = r.field.ttype.clone();
        let x2many = matches!(ttype.as_str(), "one2many" | "many2many");
        if (node.limit.is_some() || node.order.is_some()) && !x2many {
            invalid(
                &here,
                format!("limit and order apply to one2many and many2many fields, not to a {ttype}"),
            );
        }
        if node.fields.is_some() && ttype != "many2one" && !x2many {
            invalid(
                &here,
                format!(
                    "{}.{} is a {ttype}: it has no sub-fields",
                    model.info.model, node.name
                ),
            );
        }
        match (ttype.as_str(), &node.fields) {
            ("many2one", None) if self.style == Style::Web => {
                let id = self.shaper.m2o_id(&r);
                format!("coalesce(to_jsonb({id}), 'false'::jsonb)")
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
                let p = self.shaper.param(Param::Int(i64::from(self.user.uid)));
                self.uid_param.set(Some(p));
                p
            }
        };
        // Model names are validated identifiers (meta.rs): safe as a literal.
        format!("api_gateway._nested_read_refused(${uid}::int4, '{model}', ({id})::int4)")
    }

    /// Whether reading `sub` needs read access to the records (anything but id/display_name).
    fn reads_records(sub: &[Node]) -> bool {
        sub.iter()
            .any(|n| !(n.is_plain() && (n.name == "id" || n.name == "display_name")))
    }

    /// The condition on row `alias` of `co` under which the caller may read it ("true" when no
    /// rule), or None when the caller may not read `co` at all.
    fn readable_rows(&self, co: &ModelMeta, alias: &str) -> Option<String> {
        let (allowed, rule) = self.shaper.comodel_rule(co);
        if !allowed {
            return None;
        }
        Some(match rule {
            None => "true".into(),
            Some(rule) => self
                .shaper
                .rule_sql(co, &rule, alias)
                .unwrap_or_else(|why| {
                    context::fail_closed(&co.info.model, 0, "record rules", &why)
                }),
        })
    }

    fn comodel(&self, r: &Resolved, at: &str) -> Rc<ModelMeta> {
        r.field
            .relation
            .as_deref()
            .and_then(|rel| self.shaper.models.try_get(rel))
            .unwrap_or_else(|| {
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
    fn many2one(&self, alias: &str, r: &Resolved, sub: &[Node], at: &str) -> String {
        let co = self.comodel(r, at);
        let id = self.shaper.m2o_id(r);
        let n = self.shaper.alias("n");
        let obj = read::object_sql(&self.pairs(&co, &n, sub, at));
        let table = co.table_ident();
        let (rule, missing) = if Self::reads_records(sub) {
            let refused = self.refusal(&co.info.model, &id);
            match self.readable_rows(&co, &n) {
                None => {
                    return format!(
                        "CASE WHEN {id} IS NULL THEN 'false'::jsonb ELSE {refused} END"
                    );
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
        format!(
            "CASE WHEN {id} IS NULL THEN 'false'::jsonb ELSE coalesce({related}, {missing}) END"
        )
    }

    /// The pairs of the x2many rows on `alias`, with the joins their many2one sub-records need.
    fn row_pairs(
        &self,
        co: &Rc<ModelMeta>,
        alias: &str,
        sub: &[Node],
        at: &str,
    ) -> (Vec<(String, String)>, String) {
        let outer = self.joins.replace(Some((alias.to_string(), vec![])));
        let pairs = self.pairs(co, alias, sub, at);
        let (_, joins) = self.joins.replace(outer).expect("set above");
        (pairs, joins.concat())
    }

    fn x2many(&self, r: &Resolved, node: &Node, at: &str) -> String {
        let Some(rows) = self.shaper.x2many_rows(r) else {
            return "'[]'::jsonb".into();
        };
        let co = rows.comodel.clone();
        let c = &rows.alias;
        let order = match &node.order {
            Some(o) => self.order(&co, c, o, at),
            None => rows.order.clone(),
        };
        let Some(sub) = &node.fields else {
            // `order` alone sorts the ids (Odoo applies `limit` only with sub-fields).
            if node.limit.is_some() && self.style == Style::Read {
                invalid(at, "limit needs sub-fields: name(limit=N){...}".into());
            }
            return format!(
                "coalesce((SELECT jsonb_agg({c}.id ORDER BY {order}) {}), '[]'::jsonb)",
                rows.rows_sql("")
            );
        };
        // With a limit the records are read from a second scan of the comodel (`e`), joined to
        // the numbered ids; without one, straight from the rows (`c`).
        let e = match node.limit {
            Some(_) => self.shaper.alias("e"),
            None => c.clone(),
        };
        let (pairs, joins) = self.row_pairs(&co, &e, sub, at);
        let mut obj = read::object_sql(&pairs);
        // A related x2many lists its ids as the superuser (values.rs): reading the records
        // themselves is the caller's read, refused when a rule hides one of them.
        if r.hops > 0 && Self::reads_records(sub) {
            let refused = self.refusal(&co.info.model, &format!("{e}.id"));
            obj = match self.readable_rows(&co, &e) {
                None => refused,
                Some(rule) => format!("CASE WHEN {rule} THEN {obj} ELSE {refused} END"),
            };
        }
        match node.limit {
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
        }
    }

    /// ORDER BY of a caller's `order` on row `alias` of `co`, `id` last.
    fn order(&self, co: &ModelMeta, alias: &str, order: &str, at: &str) -> String {
        let parsed = domain::parse_order(order, &co.info)
            .unwrap_or_else(|e| invalid(at, format!("invalid order: {e}")));
        let mut terms: Vec<String> = parsed
            .iter()
            .map(|(name, desc)| {
                let f = &co.info.fields[name];
                let column = ident(name);
                let expr = if f.translate {
                    format!(
                        "coalesce({alias}.{column}->>${l}, {alias}.{column}->>'en_US')",
                        l = self.shaper.lang_param
                    )
                } else {
                    format!("{alias}.{column}")
                };
                format!("{expr} {}", if *desc { "DESC" } else { "ASC" })
            })
            .collect();
        if !parsed.iter().any(|(n, _)| n == "id") {
            terms.push(format!("{alias}.id ASC"));
        }
        terms.join(", ")
    }
}
