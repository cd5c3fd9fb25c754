//! The SQL of each value `read` returns, shaped as Odoo 19's `read()`: fields reached through
//! `_inherits` and related paths, `display_name` (Odoo's default or the model's rule from
//! [`crate::display`]), many2one as `[id, display_name]`, x2many filtered by the field's own
//! domain, the comodel's record rules and `active`, in the comodel's `_order`.
use super::meta::{ModelMeta, plain_identifier, valid_model_name};
use super::{Caller, ReadError, ReadFacts, ident};
use crate::display::{self, Piece};
use crate::domain::{self, CompileOptions, Domain, FieldInfo, Param};
use std::cell::{Cell, RefCell};
use std::rc::Rc;

/// How deep related paths and display names may nest (Odoo's own paths are short).
const MAX_DEPTH: usize = 6;

/// Where a record's columns are read from: a row alias in scope, or an id expression.
#[derive(Clone)]
pub enum Row {
    Alias(String),
    Id(String),
}

/// A field reached from a row: the model that stores it, its metadata, the SQL of its raw column
/// and of the id of the row holding it; `hops` > 0 when reached through a related path.
pub struct Resolved {
    pub model: Rc<ModelMeta>,
    pub field: FieldInfo,
    pub raw: String,
    pub row_id: String,
    pub hops: usize,
}

/// Builds the value expressions of one statement, numbering the parameters it adds after the
/// caller's.
pub struct Shaper<'a> {
    pub facts: &'a dyn ReadFacts,
    pub caller: Caller<'a>,
    pub lang_param: usize,
    pub company_param: usize,
    /// The statement's parameters: the caller's, then those x2many rule domains add.
    params: RefCell<Vec<Param>>,
    next_alias: Cell<usize>,
}

/// The rows an x2many reads, as `FROM ... WHERE ...` over `alias`, and the comodel's order.
pub struct X2manyRows {
    pub comodel: Rc<ModelMeta>,
    pub alias: String,
    /// `FROM ...` of the rows (the comodel's table as `alias`, and for a many2many its relation
    /// table): joins to the row alias go after it.
    pub from: String,
    /// The rows' condition (after `WHERE`).
    pub condition: String,
    pub order: String,
}

/// A rule of `co` the compiler refused, no single rule named (the comodel's combined rules).
fn unenforceable(co: &ModelMeta, e: domain::DomainError) -> ReadError {
    ReadError::Unenforceable {
        model: co.info.model.clone(),
        rule_id: 0,
        rule_name: "record rules".into(),
        why: e.to_string(),
    }
}

impl X2manyRows {
    /// `FROM ... <joins> WHERE ...`.
    pub fn rows_sql(&self, joins: &str) -> String {
        format!("{}{joins} WHERE {}", self.from, self.condition)
    }
}

impl<'a> Shaper<'a> {
    /// `params` are the caller's; `lang_param` and `company_param` number the reader's language
    /// and company among them.
    pub fn new(
        facts: &'a dyn ReadFacts,
        caller: Caller<'a>,
        params: Vec<Param>,
        lang_param: usize,
        company_param: usize,
    ) -> Self {
        Shaper {
            facts,
            caller,
            lang_param,
            company_param,
            params: RefCell::new(params),
            next_alias: Cell::new(0),
        }
    }

    fn options(&self) -> CompileOptions<'_> {
        CompileOptions {
            lang: self.caller.lang,
            company_id: self.caller.company_id,
            active_test: false,
        }
    }

    /// A fresh row alias (`prefix` and a number).
    pub fn alias(&self, prefix: &str) -> String {
        let n = self.next_alias.get() + 1;
        self.next_alias.set(n);
        format!("{prefix}{n}")
    }

    /// A comodel the gateway can serve.
    pub fn comodel(&self, model: Option<&str>) -> Option<Rc<ModelMeta>> {
        self.facts.meta(model?)
    }

    fn column(&self, model: &ModelMeta, row: &Row, name: &str) -> Result<String, String> {
        let name = ident(name).map_err(|e| e.to_string())?;
        Ok(match row {
            Row::Alias(a) => format!("{a}.{name}"),
            Row::Id(e) => {
                let x = self.alias("v");
                format!(
                    "(SELECT {x}.{name} FROM public.{} {x} WHERE {x}.id = {e})",
                    model.table_ident()
                )
            }
        })
    }

    fn row_id(row: &Row) -> String {
        match row {
            Row::Alias(a) => format!("{a}.id"),
            Row::Id(e) => e.clone(),
        }
    }

    /// The id a many2one holds (company-dependent ones hold `{"<company>": id}`, else the
    /// fallback default).
    pub fn m2o_id(&self, r: &Resolved) -> String {
        if r.field.company_dependent {
            format!(
                "coalesce((nullif({}->(${}::text), 'null'::jsonb))#>>'{{}}', {}#>>'{{}}')::int4",
                r.raw,
                self.company_param,
                self.company_fallback(r)
            )
        } else {
            r.raw.clone()
        }
    }

    /// Odoo's fallback for a company-dependent field without a value for `env.company`: the
    /// `ir.default` of the field (the superuser's, company-specific first), as jsonb or NULL.
    fn company_fallback(&self, r: &Resolved) -> String {
        if !self.facts.table_exists("ir_default") {
            return "NULL::jsonb".into();
        }
        // Model names are valid model names and field names plain identifiers (their metadata
        // is loaded only then): safe as literals.
        format!(
            "(SELECT d.json_value::jsonb FROM public.ir_default d \
               JOIN public.ir_model_fields f ON f.id = d.field_id \
              WHERE f.model = '{}' AND f.name = '{}' AND d.condition IS NULL \
                AND (d.user_id IS NULL OR d.user_id = 1) \
                AND (d.company_id IS NULL OR d.company_id = ${}::int4) \
              ORDER BY d.user_id, d.company_id, d.id LIMIT 1)",
            r.model.info.model, r.field.name, self.company_param
        )
    }

    /// Follow `path` (`name`, `partner_id.country_id.code`) from `row` of `model`, expanding
    /// related and `_inherits` fields. Err says why the path cannot be read in SQL.
    pub fn resolve(
        &self,
        model: &Rc<ModelMeta>,
        row: &Row,
        path: &str,
        depth: usize,
    ) -> Result<Resolved, String> {
        if depth > MAX_DEPTH {
            return Err(format!("the related path {path} nests too deep"));
        }
        let (head, rest) = match path.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (path, None),
        };
        let Some(info) = model.info.fields.get(head) else {
            return Err(format!("{}.{head} does not exist", model.info.model));
        };
        let meta = model.fields.get(head);
        let x2many = matches!(info.ttype.as_str(), "one2many" | "many2many");
        let first = if info.store && (x2many || meta.is_some_and(|m| m.has_column)) {
            Resolved {
                model: model.clone(),
                field: info.clone(),
                raw: if x2many {
                    String::new()
                } else {
                    self.column(model, row, head)?
                },
                row_id: Self::row_id(row),
                hops: 0,
            }
        } else if let Some(related) = meta.and_then(|m| m.related.clone()) {
            let mut r = self.resolve(model, row, &related, depth + 1)?;
            r.hops += 1;
            r
        } else {
            return Err(format!(
                "{}.{head} is not stored in the database",
                model.info.model
            ));
        };
        let Some(rest) = rest else { return Ok(first) };
        if first.field.ttype != "many2one" {
            return Err(format!(
                "{}.{head} is not a many2one",
                first.model.info.model
            ));
        }
        let Some(comodel) = self.comodel(first.field.relation.as_deref()) else {
            return Err(format!(
                "the comodel of {}.{head} cannot be served",
                model.info.model
            ));
        };
        let next = Row::Id(self.m2o_id(&first));
        let mut r = self.resolve(&comodel, &next, rest, depth + 1)?;
        r.hops += 1;
        Ok(r)
    }

    /// Text of a resolved field, NULL when empty or False (display-name templates' `{f:...}`).
    fn text(&self, r: &Resolved, depth: usize) -> String {
        let lang = self.lang_param;
        match r.field.ttype.as_str() {
            "many2one" => {
                let id = self.m2o_id(r);
                match self.comodel(r.field.relation.as_deref()) {
                    Some(co) => self.display(&co, &Row::Id(id), depth + 1),
                    None => "NULL::text".into(),
                }
            }
            _ if r.field.company_dependent => format!(
                "nullif(coalesce({}->>(${}::text), {}#>>'{{}}'), '')",
                r.raw,
                self.company_param,
                self.company_fallback(r)
            ),
            _ if r.field.translate => format!(
                "nullif(coalesce({raw}->>${lang}, {raw}->>'en_US'), '')",
                raw = r.raw
            ),
            "boolean" => format!("CASE WHEN {} THEN 'True' END", r.raw),
            _ => format!("nullif({}::text, '')", r.raw),
        }
    }

    /// SQL text of the display name of `row` of `model` (NULL when Odoo has False).
    pub fn display(&self, model: &Rc<ModelMeta>, row: &Row, depth: usize) -> String {
        if depth > MAX_DEPTH {
            return format!("('{},' || {})", model.info.model, Self::row_id(row));
        }
        let x = match row {
            Row::Alias(a) => a.clone(),
            Row::Id(_) => self.alias("d"),
        };
        let here = Row::Alias(x.clone());
        let rendered = match display::rule(&model.info.model) {
            Some(template)
                if display::tables(template)
                    .iter()
                    .all(|t| self.facts.table_exists(t)) =>
            {
                display::render(template, |p| match p {
                    Piece::Row => Some(x.clone()),
                    Piece::Lang => Some(format!("${}::text", self.lang_param)),
                    Piece::Field(path) => self
                        .resolve(model, &here, path, depth)
                        .ok()
                        .map(|r| self.text(&r, depth)),
                    Piece::Display(path) => self
                        .resolve(model, &here, path, depth)
                        .ok()
                        .filter(|r| r.field.ttype == "many2one")
                        .map(|r| self.text(&r, depth)),
                    Piece::Sql(s) => Some(s.to_string()),
                })
            }
            _ => None,
        };
        let expr = rendered.unwrap_or_else(|| self.default_display(model, &here, depth));
        match row {
            Row::Alias(_) => expr,
            Row::Id(e) => format!(
                "(SELECT {expr} FROM public.{} {x} WHERE {x}.id = {e})",
                model.table_ident()
            ),
        }
    }

    /// Odoo's default: the `_rec_name` field's value in the user's language, else "model,id".
    fn default_display(&self, model: &Rc<ModelMeta>, row: &Row, depth: usize) -> String {
        let rec = if model
            .fields
            .get("complete_name")
            .is_some_and(|f| f.has_column)
        {
            "complete_name"
        } else {
            model.info.rec_name.as_str()
        };
        if rec != "id"
            && let Ok(r) = self.resolve(model, row, rec, depth)
            && r.field.ttype != "many2one"
        {
            return self.text(&r, depth);
        }
        format!("('{},' || {})", model.info.model, Self::row_id(row))
    }

    /// Whether `name` can be read in SQL on `model` (stored, related through stored fields, or
    /// `display_name`); Err names why not.
    pub fn servable(&self, model: &Rc<ModelMeta>, name: &str) -> Result<(), String> {
        if name == "display_name" {
            return Ok(());
        }
        let r = self.resolve(model, &Row::Alias("t".into()), name, 0)?;
        match r.field.ttype.as_str() {
            "binary" => Err(format!("{}.{name} is a binary field", model.info.model)),
            "one2many" => match (&r.field.relation, &r.field.relation_field) {
                (Some(rel), Some(inverse))
                    if self
                        .facts
                        .meta(rel)
                        .is_some_and(|co| co.fields.get(inverse).is_some_and(|i| i.has_column)) =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "{}.{name} cannot be read: its inverse is not a column",
                    model.info.model
                )),
            },
            _ => Ok(()),
        }
    }

    /// The JSON value of field `name` for the row `t` of `model`.
    pub fn value(&self, model: &Rc<ModelMeta>, name: &str) -> Result<String, ReadError> {
        self.value_at(model, "t", name)
    }

    /// The JSON value of field `name` for the row `alias` of `model`.
    pub fn value_at(
        &self,
        model: &Rc<ModelMeta>,
        alias: &str,
        name: &str,
    ) -> Result<String, ReadError> {
        if name == "display_name" {
            let d = self.display(model, &Row::Alias(alias.into()), 0);
            return Ok(format!("coalesce(to_jsonb({d}), 'false'::jsonb)"));
        }
        let r = self
            .resolve(model, &Row::Alias(alias.into()), name, 0)
            .map_err(|why| ReadError::invalid(format!("invalid field list: {why}")))?;
        let col = r.raw.clone();
        let f = &r.field;
        let lang = self.lang_param;
        Ok(match f.ttype.as_str() {
            "many2one" => {
                let id = self.m2o_id(&r);
                let display = match f.relation.as_deref().map(|rel| (rel, self.facts.meta(rel))) {
                    Some((_, Some(co))) => self.display(&co, &Row::Id(id.clone()), 1),
                    Some((rel, None)) => format!("('{}' || ',' || {id})", rel.replace('\'', "")),
                    None => format!("{id}::text"),
                };
                format!(
                    "CASE WHEN {id} IS NULL THEN 'false'::jsonb \
                     ELSE jsonb_build_array({id}, coalesce(to_jsonb({display}), 'false'::jsonb)) END"
                )
            }
            "many2many" | "one2many" => self.x2many(&r)?,
            _ if f.company_dependent => {
                let empty = match f.ttype.as_str() {
                    "integer" | "float" | "monetary" => "'0'::jsonb",
                    _ => "'false'::jsonb",
                };
                format!(
                    "coalesce(nullif({col}->(${}::text), 'null'::jsonb), {}, {empty})",
                    self.company_param,
                    self.company_fallback(&r)
                )
            }
            _ if f.translate => format!(
                "coalesce(to_jsonb(coalesce({col}->>${lang}, {col}->>'en_US')), 'false'::jsonb)"
            ),
            "integer" | "float" | "monetary" => format!("to_jsonb(coalesce({col}, 0))"),
            "boolean" => format!("to_jsonb(coalesce({col}, false))"),
            "date" => format!("coalesce(to_jsonb(to_char({col}, 'YYYY-MM-DD')), 'false'::jsonb)"),
            "datetime" => format!(
                "coalesce(to_jsonb(to_char({col}, 'YYYY-MM-DD HH24:MI:SS')), 'false'::jsonb)"
            ),
            _ => format!("coalesce(to_jsonb({col}), 'false'::jsonb)"),
        })
    }

    /// x2many ids as Odoo's `read` gives them: the field's own domain, the comodel's read rules
    /// (the user must be allowed to read the comodel at all), active lines only, comodel order.
    fn x2many(&self, r: &Resolved) -> Result<String, ReadError> {
        Ok(match self.x2many_rows(r)? {
            Some(rows) => format!(
                "coalesce((SELECT jsonb_agg({c}.id ORDER BY {order}) {from}), '[]'::jsonb)",
                c = rows.alias,
                order = rows.order,
                from = rows.rows_sql("")
            ),
            None => "'[]'::jsonb".into(),
        })
    }

    /// The related rows an x2many reads for its record (alias, FROM ... WHERE ..., the
    /// comodel's order), None when the field has no table to read.
    pub fn x2many_rows(&self, r: &Resolved) -> Result<Option<X2manyRows>, ReadError> {
        let f = &r.field;
        let Some(co) = self.comodel(f.relation.as_deref()) else {
            return Ok(None);
        };
        let c = self.alias("c");
        let mut filter = String::new();
        if co.info.has_active {
            filter.push_str(&format!(" AND {c}.active IS TRUE"));
        }
        for (column, value) in &f.line_filter {
            let literal = match value {
                domain::Value::Str(v) if valid_model_name(v) => format!("'{v}'"),
                domain::Value::Bool(b) => b.to_string(),
                _ => continue,
            };
            filter.push_str(&format!(" AND {c}.{} = {literal}", ident(column)?));
        }
        filter.push_str(&self.x2many_where(r, &co, &c, true)?);
        // A one2many's rows share their inverse field (the parent): a sort key on it is constant.
        let constant = match f.ttype.as_str() {
            "many2many" => None,
            _ => f.relation_field.as_deref(),
        };
        let order = self.order_sql(&co, &c, constant);
        let (from, condition) = match f.ttype.as_str() {
            "many2many" => {
                let (Some(rel), Some(c1), Some(c2)) = (&f.relation_table, &f.column1, &f.column2)
                else {
                    return Ok(None);
                };
                let rr = self.alias("r");
                (
                    format!(
                        "FROM public.{rel} {rr} JOIN public.{t} {c} ON {c}.id = {rr}.{c2}",
                        rel = ident(rel)?,
                        c2 = ident(c2)?,
                        t = co.table_ident(),
                    ),
                    format!("{rr}.{c1} = {id}", c1 = ident(c1)?, id = r.row_id),
                )
            }
            _ => {
                let Some(inverse) = f.relation_field.as_ref() else {
                    return Ok(None);
                };
                (
                    format!("FROM public.{t} {c}", t = co.table_ident()),
                    format!(
                        "{c}.{inverse} = {id}",
                        inverse = ident(inverse)?,
                        id = r.row_id
                    ),
                )
            }
        };
        Ok(Some(X2manyRows {
            comodel: co,
            from,
            condition: format!("{condition}{filter}"),
            order,
            alias: c,
        }))
    }

    /// ORDER BY of `model`'s `_order` on row alias `a`, as Odoo sorts: a many2one by its
    /// comodel's `_order` (reversed by `desc`), related fields through their path, `id` last.
    /// `constant` names a field all the rows share, left out.
    fn order_sql(&self, model: &Rc<ModelMeta>, a: &str, constant: Option<&str>) -> String {
        let mut terms: Vec<String> = self
            .order_terms(model, &Row::Alias(a.to_string()), 0, constant)
            .into_iter()
            .map(|(e, desc)| format!("{e} {}", if desc { "DESC" } else { "ASC" }))
            .collect();
        let names_id = model
            .order
            .split(',')
            .any(|item| item.split_whitespace().next() == Some("id"));
        if !names_id {
            terms.push(format!("{a}.id ASC"));
        }
        terms.join(", ")
    }

    fn order_terms(
        &self,
        model: &Rc<ModelMeta>,
        row: &Row,
        depth: usize,
        constant: Option<&str>,
    ) -> Vec<(String, bool)> {
        // `_order` may name related fields, which the caller-facing `order` parser refuses.
        let parsed: Vec<(String, bool)> = model
            .order
            .split(',')
            .filter_map(|item| {
                let mut words = item.split_whitespace();
                let name = words.next()?.to_string();
                let desc = words.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
                (plain_identifier(&name) && Some(name.as_str()) != constant).then_some((name, desc))
            })
            .collect();
        let mut out = vec![];
        for (name, desc) in parsed {
            let Ok(r) = self.resolve(model, row, &name, depth) else {
                continue;
            };
            match r.field.ttype.as_str() {
                "one2many" | "many2many" => {}
                "many2one" => {
                    let id = self.m2o_id(&r);
                    let Some(co) = self.comodel(r.field.relation.as_deref()) else {
                        continue;
                    };
                    if depth >= 2 || co.order.trim() == "id" {
                        out.push((id, desc));
                        continue;
                    }
                    let x = self.alias("o");
                    for (e, d) in self.order_terms(&co, &Row::Alias(x.clone()), depth + 1, None) {
                        out.push((
                            format!(
                                "(SELECT {e} FROM public.{} {x} WHERE {x}.id = {id})",
                                co.table_ident()
                            ),
                            d != desc,
                        ));
                    }
                    out.push((id, desc));
                }
                _ if r.field.translate => out.push((
                    format!(
                        "coalesce({raw}->>${l}, {raw}->>'en_US')",
                        raw = r.raw,
                        l = self.lang_param
                    ),
                    desc,
                )),
                _ => out.push((r.raw.clone(), desc)),
            }
        }
        out
    }

    /// The field's own domain and the comodel's read rules on alias `c`, as SQL to AND (empty
    /// when none). Related x2many are computed as the superuser in Odoo: no rules then. With
    /// `keep` false nothing is added to the parameters (a trial).
    fn x2many_where(
        &self,
        r: &Resolved,
        co: &Rc<ModelMeta>,
        c: &str,
        keep: bool,
    ) -> Result<String, ReadError> {
        let rule = if self.caller.superuser || r.hops > 0 {
            None
        } else {
            let (allowed, rule) = self.comodel_rule(co);
            if !allowed {
                return Err(ReadError::Denied(format!(
                    "user {} may not read field {}.{} (no read access to {})",
                    self.caller.uid, r.model.info.model, r.field.name, co.info.model
                )));
            }
            rule
        };
        let own = crate::fields::x2many_domain(&r.model.info.model, &r.field.name)
            .and_then(|d| domain::parse(d).ok())
            .unwrap_or(Domain::True);
        if rule.is_none() && own == Domain::True {
            return Ok(String::new());
        }
        let first = self.params.borrow().len() + 1;
        let sql = domain::compile_search(
            &own,
            rule.as_ref(),
            &co.info,
            self.facts,
            c,
            first,
            &self.options(),
        )
        .map_err(|e| unenforceable(co, e))?;
        if keep {
            self.params.borrow_mut().extend(sql.params);
        }
        Ok(format!(" AND ({})", sql.text))
    }

    /// Whether the reader may read `co` at all (`ir.model.access`) and its read rule (the
    /// superuser: allowed, no rule).
    pub fn comodel_rule(&self, co: &ModelMeta) -> (bool, Option<Domain>) {
        if self.caller.superuser {
            return (true, None);
        }
        self.facts.read_access(&co.info.model)
    }

    /// `rule` compiled on row `alias` of `co` as SQL (its parameters kept); Err when the gateway
    /// cannot enforce it.
    pub fn rule_sql(
        &self,
        co: &ModelMeta,
        rule: &Domain,
        alias: &str,
    ) -> Result<String, ReadError> {
        let first = self.params.borrow().len() + 1;
        let sql = domain::compile_search(
            &Domain::True,
            Some(rule),
            &co.info,
            self.facts,
            alias,
            first,
            &self.options(),
        )
        .map_err(|e| unenforceable(co, e))?;
        self.params.borrow_mut().extend(sql.params);
        Ok(sql.text)
    }

    /// A parameter added to the statement; its number.
    pub fn param(&self, p: Param) -> usize {
        let mut params = self.params.borrow_mut();
        params.push(p);
        params.len()
    }

    /// Whether the x2many `name` can be read by this user (comodel readable, rules enforceable):
    /// the default field list leaves out the ones that cannot.
    pub fn x2many_readable(&self, model: &Rc<ModelMeta>, name: &str) -> bool {
        let Ok(r) = self.resolve(model, &Row::Alias("t".into()), name, 0) else {
            return false;
        };
        if !matches!(r.field.ttype.as_str(), "one2many" | "many2many") {
            return true;
        }
        let Some(co) = self.comodel(r.field.relation.as_deref()) else {
            return false;
        };
        self.x2many_where(&r, &co, "c0", false).is_ok()
    }

    pub fn into_params(self) -> Vec<Param> {
        self.params.into_inner()
    }
}
