//! Compilation of a domain into a parameterised PostgreSQL boolean condition.
//!
//! Follows Odoo 19 (`odoo/orm/domains.py` optimisations, `Field._condition_to_sql`,
//! `fields_relational.py`): every value is a parameter, identifiers come from [`ModelInfo`] only
//! (checked to be plain identifiers and double-quoted). Negations are pushed down where an exact
//! complement operator exists, otherwise compiled as `(...) IS NOT TRUE`, so SQL NULLs never make
//! a negation drop rows (Odoo's `DomainNot._to_sql`).

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Write as _;

use super::parse::{Node, node_to_domain};
use super::{
    Domain, DomainError, Leaf, LeafValue, MAX_DEPTH, MAX_PATH_HOPS, MAX_SUBQUERIES,
    MAX_SUBQUERY_NESTING, Operator, Value, or,
};

/// Metadata of a model, as reflected in `ir_model` / `ir_model_fields`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ModelInfo {
    pub model: String,
    pub table: String,
    pub fields: HashMap<String, FieldInfo>,
    /// `_rec_name`: the field searched for a name ("name" if present).
    pub rec_name: String,
    /// `_parent_name` ("parent_id" by default), used by `child_of` / `parent_of` on `id`.
    pub parent_name: String,
    /// Whether the model has an `active` (or `x_active`) field.
    pub has_active: bool,
}

impl ModelInfo {
    /// A model with the default `rec_name` ("name"), `parent_name` ("parent_id") and no field.
    pub fn new(model: &str, table: &str) -> Self {
        ModelInfo {
            model: model.to_string(),
            table: table.to_string(),
            fields: HashMap::new(),
            rec_name: "name".to_string(),
            parent_name: "parent_id".to_string(),
            has_active: false,
        }
    }

    /// Add a field (builder style); adding `active` sets `has_active`.
    pub fn with(mut self, field: FieldInfo) -> Self {
        if field.name == "active" || field.name == "x_active" {
            self.has_active = true;
        }
        self.fields.insert(field.name.clone(), field);
        self
    }

    fn active_name(&self) -> &str {
        if self.fields.contains_key("active") || !self.fields.contains_key("x_active") {
            "active"
        } else {
            "x_active"
        }
    }
}

/// Metadata of a field (`ir_model_fields`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldInfo {
    pub name: String,
    /// Odoo field type: char, text, html, boolean, integer, float, monetary, date, datetime,
    /// selection, reference, many2one, one2many, many2many, binary, json, ...
    pub ttype: String,
    pub store: bool,
    /// Comodel of a relational field.
    pub relation: Option<String>,
    /// Inverse many2one of a one2many.
    pub relation_field: Option<String>,
    /// Many2many table and its columns (column1 → this model, column2 → comodel).
    pub relation_table: Option<String>,
    pub column1: Option<String>,
    pub column2: Option<String>,
    /// Stored as jsonb `{"en_US": ..., "fr_FR": ...}`.
    pub translate: bool,
    /// Stored as jsonb `{"<company_id>": value}`.
    pub company_dependent: bool,
    /// Required (a NOT NULL column): the `IS NULL` alternatives are dropped, as Odoo does.
    pub required: bool,
    /// For a one2many: conditions `column = value` every line must meet, from the field's own
    /// domain (`child_ids` only counts active children; `message_ids` only the model's own
    /// messages through `res_id`). Odoo does not reflect these in `ir_model_fields`.
    pub line_filter: Vec<(String, Value)>,
}

impl FieldInfo {
    /// A stored, optional, non-relational field.
    pub fn new(name: &str, ttype: &str) -> Self {
        FieldInfo {
            name: name.to_string(),
            ttype: ttype.to_string(),
            store: true,
            ..Default::default()
        }
    }

    pub fn many2one(name: &str, comodel: &str) -> Self {
        FieldInfo {
            relation: Some(comodel.to_string()),
            ..FieldInfo::new(name, "many2one")
        }
    }

    pub fn one2many(name: &str, comodel: &str, inverse: &str) -> Self {
        FieldInfo {
            relation: Some(comodel.to_string()),
            relation_field: Some(inverse.to_string()),
            ..FieldInfo::new(name, "one2many")
        }
    }

    pub fn many2many(name: &str, comodel: &str, table: &str, column1: &str, column2: &str) -> Self {
        FieldInfo {
            relation: Some(comodel.to_string()),
            relation_table: Some(table.to_string()),
            column1: Some(column1.to_string()),
            column2: Some(column2.to_string()),
            ..FieldInfo::new(name, "many2many")
        }
    }
}

/// Access to the other models and to the current user's record rules.
pub trait Schema {
    fn model(&self, name: &str) -> Option<&ModelInfo>;
    /// The record-rule domain the current user has on `model` for reading; `None` means no
    /// restriction (superuser). Used for the comodels searched by `any`, paths and name searches.
    fn read_rule(&self, model: &str) -> Result<Option<Domain>, DomainError>;
    /// The `related` path (`ir_model_fields.related`, e.g. `"partner_id.name"` for the inherited
    /// `res.users.name`) of a field that is not stored. Such a field is searched through its
    /// path, as Odoo does for related and `_inherits` fields. The default knows none: the field
    /// is then [`DomainError::NotSearchable`].
    fn related(&self, model: &str, field: &str) -> Option<String> {
        let _ = (model, field);
        None
    }
}

/// A query parameter. In the SQL text each placeholder carries an explicit cast to the
/// parameter's own type (`$1::int8`, `$2::text`, `$3::float8`, `$4::bool`, `$5::int8[]`,
/// `$6::text[]`), so the statement is unambiguous however the caller binds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    Int(i64),
    Float(f64),
    Text(String),
    Bool(bool),
    IntArray(Vec<i64>),
    TextArray(Vec<String>),
}

/// A SQL fragment and its parameters (`$first_param`, `$first_param + 1`, ...).
#[derive(Debug, Clone, PartialEq)]
pub struct Sql {
    pub text: String,
    pub params: Vec<Param>,
}

/// Environment of the search: `lang` for translated fields, `company_id` (`env.company`) for
/// company-dependent fields, `active_test` (context key of the same name).
#[derive(Debug, Clone, Copy)]
pub struct CompileOptions<'a> {
    pub lang: &'a str,
    pub company_id: i64,
    pub active_test: bool,
}

/// Maximum depth of nested domains plus sub-queries while compiling.
const COMPILE_DEPTH: usize = 2 * MAX_DEPTH;
/// `in` lists longer than this use one array parameter (`= ANY($n::int8[])`).
const ARRAY_THRESHOLD: usize = 32;
/// PostgreSQL accepts at most 65535 parameters.
const MAX_PARAMS: usize = 65535;

/// Compile `domain` for `model` into a boolean condition over the row alias `alias`.
///
/// Adds `"alias"."active" IS TRUE` when `opts.active_test`, the model has `active` and the
/// domain has no condition on `active` (Odoo's `_search`). Sub-queries on comodels (`any`,
/// dotted paths, name searches) include the comodel's read rule from `schema`.
pub fn compile(
    domain: &Domain,
    model: &ModelInfo,
    schema: &dyn Schema,
    alias: &str,
    first_param: usize,
    opts: &CompileOptions,
) -> Result<Sql, DomainError> {
    compile_search(domain, None, model, schema, alias, first_param, opts)
}

/// What Odoo's `_search(domain)` puts in the WHERE clause: the active test (decided on `domain`
/// only), `domain`, and the model's record-rule domain `rule`, which is compiled as Odoo does it
/// (in sudo: sub-queries inside the rule do not apply the comodels' rules).
pub fn compile_search(
    domain: &Domain,
    rule: Option<&Domain>,
    model: &ModelInfo,
    schema: &dyn Schema,
    alias: &str,
    first_param: usize,
    opts: &CompileOptions,
) -> Result<Sql, DomainError> {
    compile_inner(
        domain,
        rule,
        model,
        schema,
        alias,
        Values::Params(first_param),
        opts,
    )
    .map_err(DomainError::clipped)
}

/// [`compile`] with every value written as a literal instead of a parameter (no parameters
/// left), for a condition stored and run later: a webhook's domain. The values go in where the
/// compiler puts its placeholders, so no SQL text is scanned afterwards.
pub fn compile_literal(
    domain: &Domain,
    model: &ModelInfo,
    schema: &dyn Schema,
    alias: &str,
    opts: &CompileOptions,
) -> Result<String, DomainError> {
    compile_inner(domain, None, model, schema, alias, Values::Literals, opts)
        .map(|sql| sql.text)
        .map_err(DomainError::clipped)
}

/// How a compiled condition carries its values.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Values {
    /// As parameters numbered from this one.
    Params(usize),
    /// As literals in the text.
    Literals,
}

fn compile_inner(
    domain: &Domain,
    rule: Option<&Domain>,
    model: &ModelInfo,
    schema: &dyn Schema,
    alias: &str,
    values: Values,
    opts: &CompileOptions,
) -> Result<Sql, DomainError> {
    if values == Values::Params(0) {
        return Err(DomainError::InvalidValue(
            "parameters are numbered from 1".into(),
        ));
    }
    if alias.len() > 40 {
        return Err(DomainError::InvalidValue("alias too long".into()));
    }
    ident(alias)?;
    let mut c = Compiler {
        schema,
        lang: opts.lang.to_string(),
        company_id: opts.company_id,
        params: Vec::new(),
        lang_marker: None,
        company_marker: None,
        alias_prefix: alias.to_string(),
        alias_count: 0,
    };
    let ctx = Ctx {
        sudo: false,
        active_test: opts.active_test,
        depth: 0,
        nesting: 0,
    };
    let mut parts = Vec::new();
    if opts.active_test && model.has_active && !domain.mentions_field(model.active_name()) {
        parts.push(c.active_condition(model, alias)?);
    }
    parts.push(c.domain(domain, model, alias, ctx, false)?);
    if let Some(rule) = rule {
        let sudo = Ctx { sudo: true, ..ctx };
        parts.push(c.domain(rule, model, alias, sudo, false)?);
    }
    let text = and_frags(parts).into_sql();
    c.finish(text, values)
}

/// A double-quoted identifier; only plain identifiers are accepted.
pub(crate) fn ident(name: &str) -> Result<String, DomainError> {
    let mut chars = name.chars();
    let ok = name.len() <= 63
        && matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric());
    if !ok {
        return Err(DomainError::InvalidValue(format!(
            "invalid SQL identifier {name:?}"
        )));
    }
    Ok(format!("\"{name}\""))
}

fn qualified(alias: &str, column: &str) -> Result<String, DomainError> {
    Ok(format!("{}.{}", ident(alias)?, ident(column)?))
}

/// A compiled condition, with constants kept apart so they can be folded.
#[derive(Debug, Clone, PartialEq)]
enum Frag {
    True,
    False,
    Sql(String),
}

impl Frag {
    fn into_sql(self) -> String {
        match self {
            Frag::True => "TRUE".into(),
            Frag::False => "FALSE".into(),
            Frag::Sql(s) => s,
        }
    }

    fn constant(b: bool) -> Frag {
        if b { Frag::True } else { Frag::False }
    }
}

fn nary_frags(parts: Vec<Frag>, is_and: bool) -> Frag {
    let (zero, absorbing, sep) = if is_and {
        (Frag::True, Frag::False, " AND ")
    } else {
        (Frag::False, Frag::True, " OR ")
    };
    let mut sqls = Vec::new();
    for p in parts {
        match p {
            Frag::Sql(s) => sqls.push(s),
            p if p == absorbing => return absorbing,
            _ => {}
        }
    }
    match sqls.len() {
        0 => zero,
        1 => Frag::Sql(sqls.pop().unwrap_or_default()),
        _ => Frag::Sql(format!("({})", sqls.join(sep))),
    }
}

fn and_frags(parts: Vec<Frag>) -> Frag {
    nary_frags(parts, true)
}

fn or_frags(parts: Vec<Frag>) -> Frag {
    nary_frags(parts, false)
}

fn not_frag(f: Frag) -> Frag {
    match f {
        Frag::True => Frag::False,
        Frag::False => Frag::True,
        Frag::Sql(s) => Frag::Sql(format!("({s}) IS NOT TRUE")),
    }
}

#[derive(Debug, Clone, Copy)]
struct Ctx {
    /// Inside a record rule: no record rules on sub-queries (Odoo optimises rules in sudo).
    sudo: bool,
    /// The context's `active_test`, used by sub-searches on x2many comodels and name searches.
    active_test: bool,
    depth: usize,
    /// Sub-queries this one is nested in (each hop of a path, `any`, hierarchy walk).
    nesting: usize,
}

impl Ctx {
    /// One level deeper in sub-queries.
    fn nested(self) -> Result<Ctx, DomainError> {
        if self.nesting >= MAX_SUBQUERY_NESTING {
            return Err(DomainError::TooComplex(format!(
                "sub-queries nested more than {MAX_SUBQUERY_NESTING} deep (paths, 'any', \
                 child_of and the record rules they bring)"
            )));
        }
        Ok(Ctx {
            nesting: self.nesting + 1,
            ..self.deeper()?
        })
    }

    fn deeper(self) -> Result<Ctx, DomainError> {
        if self.depth >= COMPILE_DEPTH {
            return Err(DomainError::TooComplex(format!(
                "more than {COMPILE_DEPTH} nested levels"
            )));
        }
        Ok(Ctx {
            depth: self.depth + 1,
            ..self
        })
    }
}

/// Column-typed kinds of scalar fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scalar {
    Text,
    Int,
    Float,
    Bool,
    Date,
    Datetime,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Scalar(Scalar),
    Many2one,
    One2many,
    Many2many,
}

impl Kind {
    fn is_relational(self) -> bool {
        matches!(self, Kind::Many2one | Kind::One2many | Kind::Many2many)
    }
}

fn field_kind(ttype: &str) -> Option<Kind> {
    Some(match ttype {
        "char" | "text" | "html" | "selection" | "reference" => Kind::Scalar(Scalar::Text),
        "integer" | "many2one_reference" => Kind::Scalar(Scalar::Int),
        "float" | "monetary" => Kind::Scalar(Scalar::Float),
        "boolean" => Kind::Scalar(Scalar::Bool),
        "date" => Kind::Scalar(Scalar::Date),
        "datetime" => Kind::Scalar(Scalar::Datetime),
        "many2one" => Kind::Many2one,
        "one2many" => Kind::One2many,
        "many2many" => Kind::Many2many,
        _ => return None,
    })
}

/// SQL type of the value of a company-dependent field (read from jsonb as text).
fn company_dependent_type(f: &FieldInfo) -> &'static str {
    match f.ttype.as_str() {
        "integer" | "many2one" | "many2one_reference" => "int4",
        "float" => "float8",
        "monetary" => "numeric",
        "boolean" => "bool",
        "date" => "date",
        "datetime" => "timestamp",
        _ => "text",
    }
}

/// A typed literal, converted from a domain value as `Field.convert_to_column` would.
#[derive(Debug, Clone, PartialEq)]
enum Lit {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Date(String),
    Datetime { text: String, day: bool, tz: bool },
}

fn lit_cmp(a: &Lit, b: &Lit) -> Option<Ordering> {
    match (a, b) {
        (Lit::Text(x), Lit::Text(y)) => Some(x.cmp(y)),
        (Lit::Int(x), Lit::Int(y)) => Some(x.cmp(y)),
        (Lit::Float(x), Lit::Float(y)) => x.partial_cmp(y),
        (Lit::Bool(x), Lit::Bool(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

fn compare_holds(a: &Lit, op: Operator, b: &Lit) -> bool {
    match lit_cmp(a, b) {
        Some(ord) => match op {
            Operator::Lt => ord == Ordering::Less,
            Operator::Gt => ord == Ordering::Greater,
            Operator::Le => ord != Ordering::Greater,
            Operator::Ge => ord != Ordering::Less,
            _ => false,
        },
        None => false,
    }
}

/// Python `str(value)` for the values a domain can hold.
fn py_str(v: &Value) -> Result<String, DomainError> {
    Ok(match v {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Float(f) => format!("{f:?}"),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::None => "None".into(),
        Value::List(_) => {
            return Err(DomainError::InvalidValue(
                "a list is not a valid pattern".into(),
            ));
        }
    })
}

/// Odoo's `str2bool(value, default=False)`.
fn str2bool(s: &str) -> bool {
    matches!(
        s.trim().to_ascii_lowercase().as_str(),
        "y" | "yes" | "1" | "true" | "t" | "on"
    )
}

fn bool_of(v: &Value) -> bool {
    match v {
        Value::Str(s) => str2bool(s),
        other => other.is_truthy(),
    }
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

fn digits(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn valid_ymd(y: i64, m: i64, d: i64) -> bool {
    (1..=9999).contains(&y) && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

/// `YYYY-MM-DD`, short forms such as `2024-1-5`, or a datetime (its date part).
fn parse_date(s: &str) -> Option<String> {
    if s.len() > 10 {
        let (text, _, _) = parse_datetime(s)?;
        return Some(text[..10].to_string());
    }
    let mut parts = s.split('-');
    let (y, m, d) = (
        digits(parts.next()?)?,
        digits(parts.next()?)?,
        digits(parts.next()?)?,
    );
    if parts.next().is_some() || !valid_ymd(y, m, d) {
        return None;
    }
    Some(format!("{y:04}-{m:02}-{d:02}"))
}

/// ISO datetime `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][Z|±HH[:MM]]`; returns the text, whether it
/// was a bare day, and whether it carries a UTC offset.
fn parse_datetime(s: &str) -> Option<(String, bool, bool)> {
    let b = s.as_bytes();
    if b.len() < 10 || !s.is_char_boundary(10) {
        return None;
    }
    let date = parse_date(&s[..10])?;
    if s.len() == 10 {
        return Some((format!("{date} 00:00:00"), true, false));
    }
    if b[10] != b' ' && b[10] != b'T' {
        return None;
    }
    let rest = &s[11..];
    // split off a timezone
    let (time, tz) = if let Some(t) = rest.strip_suffix('Z') {
        (t, Some("Z"))
    } else if let Some(i) = rest.rfind(['+', '-']) {
        (&rest[..i], Some(&rest[i..]))
    } else {
        (rest, None)
    };
    let mut hms = time.splitn(3, ':');
    let h = digits(hms.next()?)?;
    let mi = digits(hms.next()?)?;
    let sec = match hms.next() {
        None => 0,
        Some(sec) => {
            let (whole, frac) = match sec.split_once('.') {
                Some((w, f)) => (w, Some(f)),
                None => (sec, None),
            };
            if let Some(f) = frac
                && (f.is_empty() || f.len() > 6 || digits(f).is_none())
            {
                return None;
            }
            if whole.len() != 2 {
                return None;
            }
            digits(whole)?
        }
    };
    if h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    if let Some(tz) = tz
        && tz != "Z"
    {
        let body = &tz[1..];
        let (th, tm) = match body.split_once(':') {
            Some((a, b)) => (a, b),
            None if body.len() == 4 => body.split_at(2),
            None => (body, "00"),
        };
        if th.len() != 2 || tm.len() != 2 || digits(th)? > 23 || digits(tm)? > 59 {
            return None;
        }
    }
    Some((s.to_string(), false, tz.is_some()))
}

fn convert(kind: Scalar, v: &Value) -> Result<Lit, DomainError> {
    let invalid = |what: &str| {
        Err(DomainError::InvalidValue(format!(
            "{} is not a valid {what}",
            Value::to_json(v)
        )))
    };
    match kind {
        Scalar::Text => match v {
            Value::List(_) => invalid("string"),
            other => Ok(Lit::Text(py_str(other)?)),
        },
        Scalar::Int => match v {
            Value::Int(i) => Ok(Lit::Int(*i)),
            Value::Bool(b) => Ok(Lit::Int(i64::from(*b))),
            Value::Float(f) if f.is_finite() && f.abs() < 9.2e18 => Ok(Lit::Int(f.trunc() as i64)),
            Value::Str(s) => match s.trim().replace('_', "").parse::<i64>() {
                Ok(i) => Ok(Lit::Int(i)),
                Err(_) => invalid("integer"),
            },
            _ => invalid("integer"),
        },
        Scalar::Float => match v {
            Value::Int(i) => Ok(Lit::Float(*i as f64)),
            Value::Bool(b) => Ok(Lit::Float(if *b { 1.0 } else { 0.0 })),
            Value::Float(f) if f.is_finite() => Ok(Lit::Float(*f)),
            Value::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(Lit::Float(f)),
                _ => invalid("number"),
            },
            _ => invalid("number"),
        },
        Scalar::Bool => match v {
            Value::List(_) => invalid("boolean"),
            other => Ok(Lit::Bool(bool_of(other))),
        },
        Scalar::Date => match v {
            Value::Str(s) => match parse_date(s.trim()) {
                Some(d) => Ok(Lit::Date(d)),
                None => invalid("date (YYYY-MM-DD; relative dates are not supported)"),
            },
            _ => invalid("date"),
        },
        Scalar::Datetime => match v {
            Value::Str(s) => match parse_datetime(s.trim()) {
                Some((text, day, tz)) => Ok(Lit::Datetime { text, day, tz }),
                None => invalid("datetime (ISO 8601; relative dates are not supported)"),
            },
            _ => invalid("datetime"),
        },
    }
}

/// `Field.falsy_value`: the value that `= False` also matches.
fn falsy_of(kind: Scalar) -> Option<Lit> {
    match kind {
        Scalar::Text => Some(Lit::Text(String::new())),
        Scalar::Int => Some(Lit::Int(0)),
        Scalar::Float => Some(Lit::Float(0.0)),
        Scalar::Bool => Some(Lit::Bool(false)),
        Scalar::Date | Scalar::Datetime => None,
    }
}

/// A field of a model, resolved for compilation.
struct FieldRef<'m> {
    f: Cow<'m, FieldInfo>,
    kind: Kind,
    is_id: bool,
}

impl FieldRef<'_> {
    fn nullable(&self) -> bool {
        // a NOT NULL column: `id`, or a required plain column (a translated or
        // company-dependent value is read out of jsonb and may be missing)
        let not_null =
            self.is_id || (self.f.required && !self.f.company_dependent && !self.f.translate);
        !not_null
    }

    fn falsy(&self) -> Option<Lit> {
        match self.kind {
            Kind::Scalar(s) if !self.is_id => falsy_of(s),
            _ => None,
        }
    }
}

/// Where an x2many condition looks in the comodel.
enum X2m {
    /// Any line at all.
    All,
    /// Lines with these ids.
    Ids(Vec<i64>),
    /// Lines whose id is in this sub-select (parenthesised).
    IdsQuery(String),
    /// Lines of alias `.0` satisfying `.1` (never a constant).
    Where(String, String),
}

/// What a model's name search finds, before it is compiled.
enum NameSearch {
    Domain(Domain),
    /// The records matching the domain and all their descendants (`id child_of search(d)`).
    ChildOf(Domain),
    /// The complement (Odoo's `~domain` when an override only handles the positive operator).
    Not(Box<NameSearch>),
    /// res.users: the users whose login matches, if any exist; else `otherwise`.
    LoginFirst {
        login: Domain,
        otherwise: Domain,
    },
    /// account.account: `code` (the company-dependent `code_store` of the current company's
    /// root, searched in sudo) or `rest`.
    RootCompanyCode {
        code: Domain,
        rest: Domain,
    },
}

struct Compiler<'s> {
    schema: &'s dyn Schema,
    lang: String,
    company_id: i64,
    params: Vec<Param>,
    lang_marker: Option<String>,
    company_marker: Option<String>,
    alias_prefix: String,
    alias_count: usize,
}

impl<'s> Compiler<'s> {
    // ----------------------------------------------------------------- parameters and names

    /// Register a parameter; returns a placeholder marker with its cast. Markers (`\0n\0`) are
    /// renumbered in `finish`, so fragments can be dropped while folding constants.
    fn param(&mut self, p: Param) -> String {
        let cast = match p {
            Param::Int(_) => "int8",
            Param::Float(_) => "float8",
            Param::Text(_) => "text",
            Param::Bool(_) => "bool",
            Param::IntArray(_) => "int8[]",
            Param::TextArray(_) => "text[]",
        };
        let idx = self.params.len();
        self.params.push(p);
        format!("\0{idx}\0::{cast}")
    }

    fn lit(&mut self, lit: &Lit) -> String {
        match lit {
            Lit::Text(s) => self.param(Param::Text(s.clone())),
            Lit::Int(i) => self.param(Param::Int(*i)),
            Lit::Float(f) => format!("{}::numeric", self.param(Param::Float(*f))),
            Lit::Bool(b) => self.param(Param::Bool(*b)),
            Lit::Date(d) => format!("{}::date", self.param(Param::Text(d.clone()))),
            Lit::Datetime { text, tz, .. } => {
                let p = self.param(Param::Text(text.clone()));
                if *tz {
                    format!("({p}::timestamptz AT TIME ZONE 'UTC')")
                } else {
                    format!("{p}::timestamp")
                }
            }
        }
    }

    fn lang_param(&mut self) -> String {
        if let Some(m) = &self.lang_marker {
            return m.clone();
        }
        let m = self.param(Param::Text(self.lang.clone()));
        self.lang_marker = Some(m.clone());
        m
    }

    fn company_param(&mut self) -> String {
        if let Some(m) = &self.company_marker {
            return m.clone();
        }
        let m = self.param(Param::Text(self.company_id.to_string()));
        self.company_marker = Some(m.clone());
        m
    }

    /// A fresh alias for one more table in a sub-query. Every sub-query, join and recursive
    /// walk takes at least one, so their number bounds what the planner has to consider.
    fn new_alias(&mut self) -> Result<String, DomainError> {
        if self.alias_count >= MAX_SUBQUERIES {
            return Err(DomainError::TooComplex(format!(
                "the domain and the record rules need more than {MAX_SUBQUERIES} sub-queries \
                 (the limit of one search)"
            )));
        }
        self.alias_count += 1;
        Ok(format!("{}_{}", self.alias_prefix, self.alias_count))
    }

    /// Number the markers' parameters in order of appearance, or write each value.
    fn finish(self, text: String, values: Values) -> Result<Sql, DomainError> {
        let first_param = match values {
            Values::Params(first) => first,
            Values::Literals => 1,
        };
        let mut slots: Vec<Option<Param>> = self.params.into_iter().map(Some).collect();
        let mut numbers: HashMap<usize, usize> = HashMap::new();
        let mut params = Vec::new();
        let mut out = String::with_capacity(text.len());
        for (i, part) in text.split('\0').enumerate() {
            if i % 2 == 0 {
                out.push_str(part);
                continue;
            }
            let idx: usize = part
                .parse()
                .map_err(|_| DomainError::Malformed("internal placeholder error".into()))?;
            if values == Values::Literals {
                let p = slots
                    .get(idx)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| DomainError::Malformed("internal placeholder error".into()))?;
                out.push_str(&super::literal::literal(p)?);
                continue;
            }
            let n = match numbers.get(&idx) {
                Some(n) => *n,
                None => {
                    let p = slots.get_mut(idx).and_then(Option::take).ok_or_else(|| {
                        DomainError::Malformed("internal placeholder error".into())
                    })?;
                    params.push(p);
                    let n = first_param + params.len() - 1;
                    numbers.insert(idx, n);
                    n
                }
            };
            let _ = write!(out, "${n}");
        }
        if first_param + params.len() > MAX_PARAMS + 1 {
            return Err(DomainError::TooComplex(format!(
                "more than {MAX_PARAMS} parameters"
            )));
        }
        Ok(Sql { text: out, params })
    }

    fn model(&self, name: &str) -> Result<&'s ModelInfo, DomainError> {
        self.schema
            .model(name)
            .ok_or_else(|| DomainError::UnknownModel(name.to_string()))
    }

    fn comodel(&self, model: &ModelInfo, f: &FieldInfo) -> Result<&'s ModelInfo, DomainError> {
        match &f.relation {
            Some(r) => self.model(r),
            None => Err(DomainError::NotSearchable {
                model: model.model.clone(),
                field: f.name.clone(),
            }),
        }
    }

    /// Resolve a field name of `model` (`id` always exists; a non-stored `display_name` is
    /// handled by [`Compiler::display_name_leaf`] before this).
    fn field<'m>(&self, model: &'m ModelInfo, name: &str) -> Result<FieldRef<'m>, DomainError> {
        if name == "id" {
            return Ok(FieldRef {
                f: Cow::Owned(FieldInfo {
                    required: true,
                    ..FieldInfo::new("id", "integer")
                }),
                kind: Kind::Scalar(Scalar::Int),
                is_id: true,
            });
        }
        let not_searchable = || DomainError::NotSearchable {
            model: model.model.clone(),
            field: name.to_string(),
        };
        let f = match model.fields.get(name) {
            Some(f) if f.store => f,
            found => {
                return Err(match found {
                    Some(_) => not_searchable(),
                    None => DomainError::UnknownField {
                        model: model.model.clone(),
                        field: name.to_string(),
                    },
                });
            }
        };
        let kind = field_kind(&f.ttype).ok_or_else(not_searchable)?;
        Ok(FieldRef {
            f: Cow::Borrowed(f),
            kind,
            is_id: false,
        })
    }

    /// SQL expression of a stored column (translated: current language with en_US fallback;
    /// company-dependent: the value of the current company).
    fn column(&mut self, alias: &str, fr: &FieldRef) -> Result<String, DomainError> {
        let base = qualified(alias, &fr.f.name)?;
        if fr.f.company_dependent {
            let company = self.company_param();
            let ty = company_dependent_type(&fr.f);
            return Ok(format!("({base}->>{company})::{ty}"));
        }
        if fr.f.translate && fr.kind == Kind::Scalar(Scalar::Text) {
            if self.lang.is_empty() || self.lang == "en_US" {
                return Ok(format!("({base}->>'en_US')"));
            }
            let lang = self.lang_param();
            return Ok(format!("COALESCE({base}->>{lang}, {base}->>'en_US')"));
        }
        Ok(base)
    }

    fn active_condition(&mut self, model: &ModelInfo, alias: &str) -> Result<Frag, DomainError> {
        Ok(Frag::Sql(format!(
            "{} IS TRUE",
            qualified(alias, model.active_name())?
        )))
    }

    // ----------------------------------------------------------------- domains

    fn domain(
        &mut self,
        d: &Domain,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
        negate: bool,
    ) -> Result<Frag, DomainError> {
        match d {
            Domain::True => Ok(Frag::constant(!negate)),
            Domain::False => Ok(Frag::constant(negate)),
            Domain::Not(inner) => self.domain(inner, model, alias, ctx.deeper()?, !negate),
            Domain::And(children) | Domain::Or(children) => {
                let inner = ctx.deeper()?;
                let mut parts = Vec::with_capacity(children.len());
                for c in children {
                    parts.push(self.domain(c, model, alias, inner, negate)?);
                }
                // De Morgan when negated
                let is_and = matches!(d, Domain::And(_)) != negate;
                Ok(nary_frags(parts, is_and))
            }
            Domain::Leaf(leaf) => {
                if !negate {
                    return self.leaf(&leaf.path, leaf.op, &leaf.value, model, alias, ctx);
                }
                let simple = !leaf.path.contains('.');
                if simple && let Some(inv) = leaf.op.inverse() {
                    return self.leaf(&leaf.path, inv, &leaf.value, model, alias, ctx);
                }
                // not (a =? b) with b set is a != b; with b unset the generic path below still
                // checks the field (so !d compiles exactly when d does) and gives FALSE.
                if simple
                    && leaf.op == Operator::EqOpt
                    && let LeafValue::Value(v) = &leaf.value
                    && v.is_truthy()
                {
                    return self.leaf(&leaf.path, Operator::Ne, &leaf.value, model, alias, ctx);
                }
                let f = self.leaf(&leaf.path, leaf.op, &leaf.value, model, alias, ctx)?;
                Ok(not_frag(f))
            }
        }
    }

    /// The WHERE condition of a sub-search `comodel._search(domain)` under alias `a`: active
    /// test (per `ctx.active_test`), the domain, and the comodel's read rule unless in sudo.
    fn subquery_where(
        &mut self,
        co: &ModelInfo,
        a: &str,
        dom: &Domain,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        let ctx = ctx.nested()?;
        let mut parts = Vec::new();
        if ctx.active_test && co.has_active && !dom.mentions_field(co.active_name()) {
            parts.push(self.active_condition(co, a)?);
        }
        parts.push(self.domain(dom, co, a, ctx, false)?);
        if !ctx.sudo
            && let Some(rule) = self.schema.read_rule(&co.model)?
        {
            let sudo = Ctx { sudo: true, ..ctx };
            parts.push(self.domain(&rule, co, a, sudo, false)?);
        }
        Ok(and_frags(parts))
    }

    fn leaf(
        &mut self,
        path: &str,
        op: Operator,
        value: &LeafValue,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        let (head, rest) = match path.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (path, None),
        };
        if head == "display_name" && !model.fields.get(head).is_some_and(|f| f.store) {
            return match (rest, value) {
                (None, LeafValue::Value(v)) if !matches!(op, Operator::Any | Operator::NotAny) => {
                    self.display_name_leaf(op, v, model, alias, ctx)
                }
                (Some(_), _) => Err(DomainError::NotSearchable {
                    model: model.model.clone(),
                    field: path.to_string(),
                }),
                _ => Err(DomainError::InvalidValue(format!(
                    "operator '{op}' needs a relational field, display_name is not"
                ))),
            };
        }
        let fr = match self.field(model, head) {
            Err(DomainError::NotSearchable { .. })
                if model.fields.get(head).is_some_and(|f| !f.store) =>
            {
                match self.schema.related(&model.model, head) {
                    Some(related) if !related.is_empty() => {
                        return self.related_leaf(&related, rest, op, value, model, alias, ctx);
                    }
                    _ => {
                        return Err(DomainError::NotSearchable {
                            model: model.model.clone(),
                            field: head.to_string(),
                        });
                    }
                }
            }
            other => other?,
        };
        if let Some(rest) = rest {
            let hops = path.matches('.').count();
            if hops > MAX_PATH_HOPS {
                return Err(DomainError::TooComplex(format!(
                    "a path follows {hops} relations, at most {MAX_PATH_HOPS} are allowed: {path:?}"
                )));
            }
            // ('a.b', op, v)  =>  ('a', 'any', [('b', op, v)])
            if !fr.kind.is_relational() {
                return Err(DomainError::NotSearchable {
                    model: model.model.clone(),
                    field: path.to_string(),
                });
            }
            let sub = Domain::Leaf(Leaf {
                path: rest.to_string(),
                op,
                value: value.clone(),
            });
            return self.any(&fr, &sub, true, model, alias, ctx);
        }
        match (op, value) {
            (Operator::Any | Operator::NotAny, LeafValue::Domain(sub)) => {
                self.any(&fr, sub, op == Operator::Any, model, alias, ctx)
            }
            (Operator::Any | Operator::NotAny, LeafValue::Value(v)) => {
                let sub = match v {
                    Value::List(_) | Value::Bool(_) => {
                        node_to_domain(Node::from_value(v.clone(), 0), 0)?
                    }
                    _ => {
                        return Err(DomainError::InvalidValue(format!(
                            "operator '{op}' expects a domain"
                        )));
                    }
                };
                self.any(&fr, &sub, op == Operator::Any, model, alias, ctx)
            }
            (_, LeafValue::Domain(_)) => Err(DomainError::InvalidValue(format!(
                "operator '{op}' does not take a domain"
            ))),
            (_, LeafValue::Value(v)) => self.value_leaf(&fr, op, v, model, alias, ctx),
        }
    }

    /// A non-stored related (or `_inherits`) field: search through its path, in sudo (related
    /// fields are read with `compute_sudo`, inherited ones through an auto-join), accepting a
    /// null nullable many2one on the way when the condition is on "not set" (Odoo's
    /// `Field._search_related`).
    #[allow(clippy::too_many_arguments)]
    fn related_leaf(
        &mut self,
        related: &str,
        rest: Option<&str>,
        op: Operator,
        value: &LeafValue,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        let ctx = ctx.deeper()?;
        let full = match rest {
            Some(r) => format!("{related}.{r}"),
            None => related.to_string(),
        };
        let can_be_null = match value {
            LeafValue::Value(v) if rest.is_none() => {
                let falsy = self.path_falsy(model, related, 0);
                let is_null = |x: &Value| x.is_null() || falsy.as_ref() == Some(x);
                let value_is_null = match v {
                    Value::List(l) => l.iter().any(is_null),
                    other => is_null(other),
                };
                op.is_negative() != value_is_null
            }
            _ => false,
        };
        let d = self.related_domain(model, &full, op, value, can_be_null, ctx)?;
        let sudo = Ctx { sudo: true, ..ctx };
        self.domain(&d, model, alias, sudo, false)
    }

    fn related_domain(
        &self,
        model: &ModelInfo,
        path: &str,
        op: Operator,
        value: &LeafValue,
        can_be_null: bool,
        ctx: Ctx,
    ) -> Result<Domain, DomainError> {
        let ctx = ctx.deeper()?;
        let Some((head, rest)) = path.split_once('.') else {
            return Ok(Domain::Leaf(Leaf {
                path: path.to_string(),
                op,
                value: value.clone(),
            }));
        };
        let f = model
            .fields
            .get(head)
            .ok_or_else(|| DomainError::UnknownField {
                model: model.model.clone(),
                field: head.to_string(),
            })?;
        let co = self.comodel(model, f)?;
        let sub = self.related_domain(co, rest, op, value, can_be_null, ctx)?;
        let d = Domain::any(head, false, sub);
        if can_be_null && f.ttype == "many2one" && !f.required {
            return Ok(or(vec![
                d,
                Domain::leaf(head, Operator::Eq, Value::Bool(false)),
            ]));
        }
        Ok(d)
    }

    /// The value that `= False` also matches for the field at the end of `path`, as a domain
    /// value (`""`, `0`, `0.0`), if any.
    fn path_falsy(&self, model: &ModelInfo, path: &str, depth: usize) -> Option<Value> {
        if depth > MAX_DEPTH {
            return None;
        }
        match path.split_once('.') {
            Some((head, rest)) => {
                let f = model.fields.get(head)?;
                let co = self.schema.model(f.relation.as_deref()?)?;
                self.path_falsy(co, rest, depth + 1)
            }
            None => match field_kind(&model.fields.get(path)?.ttype)? {
                Kind::Scalar(Scalar::Text) => Some(Value::Str(String::new())),
                Kind::Scalar(Scalar::Int) => Some(Value::Int(0)),
                Kind::Scalar(Scalar::Float) => Some(Value::Float(0.0)),
                _ => None,
            },
        }
    }

    fn value_leaf(
        &mut self,
        fr: &FieldRef,
        op: Operator,
        v: &Value,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        let mut op = op;
        if op == Operator::EqOpt {
            // a =? b  <=>  not b or a = b
            if !v.is_truthy() {
                return Ok(Frag::True);
            }
            op = Operator::Eq;
        }
        match op {
            Operator::Eq | Operator::Ne | Operator::In | Operator::NotIn => {
                let positive = matches!(op, Operator::Eq | Operator::In);
                let values: Vec<Value> = match v {
                    Value::List(l) if l.is_empty() => {
                        if matches!(op, Operator::Eq | Operator::Ne) {
                            // ('x', '=', []) means "not set"
                            vec![Value::Bool(false)]
                        } else {
                            return Ok(Frag::constant(!positive));
                        }
                    }
                    Value::List(l) => l.clone(),
                    other => vec![other.clone()],
                };
                self.in_leaf(fr, &values, positive, model, alias, ctx)
            }
            Operator::Lt | Operator::Gt | Operator::Le | Operator::Ge => {
                self.cmp_leaf(fr, op, v, alias)
            }
            Operator::ChildOf | Operator::ParentOf => {
                self.hierarchy_leaf(fr, op == Operator::ChildOf, v, model, alias, ctx)
            }
            _ if op.is_like() => {
                if !v.is_truthy() {
                    // empty pattern: `like ''` is TRUE, `=like ''` means "not set"
                    let has_eq = matches!(
                        op,
                        Operator::EqLike
                            | Operator::EqILike
                            | Operator::NotEqLike
                            | Operator::NotEqILike
                    );
                    let result = op.is_negative() == has_eq;
                    if fr.kind.is_relational() || has_eq {
                        return self.in_leaf(fr, &[Value::Bool(false)], !result, model, alias, ctx);
                    }
                    return Ok(Frag::constant(result));
                }
                let pattern = match v {
                    Value::Str(s) => s.clone(),
                    Value::List(_) => {
                        return Err(DomainError::InvalidValue(
                            "a list is not a valid pattern".into(),
                        ));
                    }
                    other
                        if !matches!(
                            op,
                            Operator::Like
                                | Operator::NotLike
                                | Operator::ILike
                                | Operator::NotILike
                        ) =>
                    {
                        return Err(DomainError::InvalidValue(format!(
                            "the pattern to match must be a string, not {}",
                            other.to_json()
                        )));
                    }
                    other => py_str(other)?,
                };
                self.like_leaf(fr, op, pattern, model, alias, ctx)
            }
            _ => Err(DomainError::UnknownOperator(op.as_str().into())),
        }
    }

    // ----------------------------------------------------------------- in / not in

    fn in_leaf(
        &mut self,
        fr: &FieldRef,
        values: &[Value],
        positive: bool,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        if fr.kind.is_relational() && !fr.is_id {
            // names and other values (ids, False) are two conditions, as Odoo's
            // `_optimize_relational_name_search` splits them: ORed for `in`, ANDed for `not in`
            let (names, others): (Vec<Value>, Vec<Value>) = values
                .iter()
                .cloned()
                .partition(|v| matches!(v, Value::Str(_)));
            if !names.is_empty() && !others.is_empty() {
                let by_name = self.in_leaf(fr, &names, positive, model, alias, ctx)?;
                let rest = self.in_leaf(fr, &others, positive, model, alias, ctx)?;
                return Ok(if positive {
                    or_frags(vec![by_name, rest])
                } else {
                    and_frags(vec![by_name, rest])
                });
            }
        }
        match fr.kind {
            Kind::Scalar(Scalar::Bool) => {
                // express as (field in possible_values); IS TRUE / IS NOT TRUE
                let given: Vec<bool> = values.iter().map(bool_of).collect();
                let has = |b: bool| given.contains(&b) == positive;
                let (t, f) = (has(true), has(false));
                if t == f {
                    return Ok(Frag::constant(t));
                }
                let e = self.column(alias, fr)?;
                Ok(Frag::Sql(if t {
                    format!("{e} IS TRUE")
                } else {
                    format!("{e} IS NOT TRUE")
                }))
            }
            Kind::Scalar(kind) => {
                let e = self.column(alias, fr)?;
                let mut lits = Vec::new();
                let mut null_in = false;
                for v in values {
                    if v.is_null() {
                        null_in = true;
                    } else {
                        lits.push(convert(kind, v)?);
                    }
                }
                self.scalar_in(&e, kind, fr.falsy(), fr.nullable(), lits, null_in, positive)
            }
            Kind::Many2one => {
                let (ids, names, null_in) = split_ids(values)?;
                if !names.is_empty() {
                    // name search on the comodel (archived records included)
                    let co = self.comodel(model, &fr.f)?;
                    let a = self.new_alias()?;
                    let sub_ctx = Ctx {
                        active_test: false,
                        ..ctx
                    };
                    let w = self.name_search(co, &a, Operator::In, names, ids, sub_ctx)?;
                    return self.many2one_in_query(fr, alias, co, &a, w, positive);
                }
                let e = self.column(alias, fr)?;
                let lits = ids.into_iter().map(Lit::Int).collect();
                self.scalar_in(
                    &e,
                    Scalar::Int,
                    None,
                    fr.nullable(),
                    lits,
                    null_in,
                    positive,
                )
            }
            Kind::One2many | Kind::Many2many => {
                let (ids, names, null_in) = split_ids(values)?;
                if !names.is_empty() {
                    let co = self.comodel(model, &fr.f)?;
                    let a = self.new_alias()?;
                    let w = self.name_search(co, &a, Operator::In, names, ids, ctx)?;
                    return self.x2many_where(fr, model, alias, a, w, positive);
                }
                if null_in && !ids.is_empty() {
                    // [not] in (False, 1, ...): split in two conditions
                    let empty = self.x2many(fr, model, alias, X2m::All, !positive)?;
                    let some = self.x2many(fr, model, alias, X2m::Ids(ids), positive)?;
                    return Ok(if positive {
                        or_frags(vec![empty, some])
                    } else {
                        and_frags(vec![empty, some])
                    });
                }
                if null_in {
                    // in (False) => not any TRUE ; not in (False) => any TRUE
                    return self.x2many(fr, model, alias, X2m::All, !positive);
                }
                self.x2many(fr, model, alias, X2m::Ids(ids), positive)
            }
        }
    }

    /// `Field._condition_to_sql` for `in` / `not in` on a column.
    #[allow(clippy::too_many_arguments)]
    fn scalar_in(
        &mut self,
        e: &str,
        kind: Scalar,
        falsy: Option<Lit>,
        nullable: bool,
        mut lits: Vec<Lit>,
        mut null_in: bool,
        positive: bool,
    ) -> Result<Frag, DomainError> {
        if let Some(falsy) = falsy {
            if lits.contains(&falsy) {
                null_in = true;
            } else if null_in {
                lits.push(falsy);
            }
        }
        let sql = if lits.is_empty() {
            None
        } else {
            Some(self.in_list(e, kind, &lits, positive))
        };
        if positive == null_in {
            // field in {v, False} => field IN (v) OR field IS NULL
            // field not in {v}    => field NOT IN (v) OR field IS NULL
            if !nullable {
                return Ok(sql.map(Frag::Sql).unwrap_or(Frag::False));
            }
            let is_null = format!("{e} IS NULL");
            return Ok(Frag::Sql(match sql {
                Some(s) => format!("({s} OR {is_null})"),
                None => is_null,
            }));
        }
        if !positive && null_in && sql.is_none() {
            return Ok(if nullable {
                Frag::Sql(format!("{e} IS NOT NULL"))
            } else {
                Frag::True
            });
        }
        Ok(sql.map(Frag::Sql).unwrap_or(Frag::constant(!positive)))
    }

    fn in_list(&mut self, e: &str, kind: Scalar, lits: &[Lit], positive: bool) -> String {
        if lits.len() > ARRAY_THRESHOLD {
            let array = match kind {
                Scalar::Int => {
                    let v: Option<Vec<i64>> = lits
                        .iter()
                        .map(|l| if let Lit::Int(i) = l { Some(*i) } else { None })
                        .collect();
                    v.map(|v| self.param(Param::IntArray(v)))
                }
                Scalar::Text | Scalar::Date => {
                    let v: Option<Vec<String>> = lits
                        .iter()
                        .map(|l| match l {
                            Lit::Text(s) | Lit::Date(s) => Some(s.clone()),
                            _ => None,
                        })
                        .collect();
                    v.map(|v| {
                        let p = self.param(Param::TextArray(v));
                        if kind == Scalar::Date {
                            format!("{p}::date[]")
                        } else {
                            p
                        }
                    })
                }
                _ => None,
            };
            if let Some(p) = array {
                return if positive {
                    format!("{e} = ANY({p})")
                } else {
                    format!("{e} <> ALL({p})")
                };
            }
        }
        let items: Vec<String> = lits.iter().map(|l| self.lit(l)).collect();
        let op = if positive { "IN" } else { "NOT IN" };
        format!("{e} {op} ({})", items.join(", "))
    }

    /// `col IN (ids)` / `col = ANY($n::int8[])`.
    fn ids_match(&mut self, col: &str, ids: &[i64]) -> String {
        let lits: Vec<Lit> = ids.iter().map(|i| Lit::Int(*i)).collect();
        self.in_list(col, Scalar::Int, &lits, true)
    }

    // ----------------------------------------------------------------- inequalities, like

    fn cmp_leaf(
        &mut self,
        fr: &FieldRef,
        op: Operator,
        v: &Value,
        alias: &str,
    ) -> Result<Frag, DomainError> {
        let kind = match fr.kind {
            Kind::Scalar(s) => s,
            Kind::Many2one => {
                if matches!(v, Value::Str(_)) {
                    return Err(DomainError::InvalidValue(
                        "inequality not supported for a relational field with a string".into(),
                    ));
                }
                Scalar::Int
            }
            Kind::One2many | Kind::Many2many => {
                return Err(DomainError::InvalidValue(format!(
                    "operator '{op}' is not supported on x2many field {}",
                    fr.f.name
                )));
            }
        };
        let falsy = fr.falsy();
        let lit = if v.is_null() {
            match &falsy {
                Some(f) => f.clone(),
                // comparison to False: empty result (dates, many2one, id)
                None => return Ok(Frag::False),
            }
        } else {
            convert(kind, v)?
        };
        let accept_null =
            fr.nullable() && falsy.as_ref().is_some_and(|f| compare_holds(f, op, &lit));
        let e = self.column(alias, fr)?;
        let (mut op, mut plus_day) = (op, false);
        if let Lit::Datetime { day: true, .. } = lit {
            // a bare day on a datetime: '> day' is '>= day + 1', '<= day' is '< day + 1'
            match op {
                Operator::Gt => (op, plus_day) = (Operator::Ge, true),
                Operator::Le => (op, plus_day) = (Operator::Lt, true),
                _ => {}
            }
        }
        let mut p = self.lit(&lit);
        if plus_day {
            p = format!("({p} + interval '1 day')");
        }
        let sql = format!("{e} {} {p}", op.as_str());
        Ok(Frag::Sql(if accept_null {
            format!("({sql} OR {e} IS NULL)")
        } else {
            sql
        }))
    }

    fn like_leaf(
        &mut self,
        fr: &FieldRef,
        op: Operator,
        pattern: String,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        // relational fields: search the comodel's name with the positive operator
        let positive_op = match op {
            Operator::NotLike => Operator::Like,
            Operator::NotILike => Operator::ILike,
            Operator::NotEqLike => Operator::EqLike,
            Operator::NotEqILike => Operator::EqILike,
            other => other,
        };
        let positive = positive_op == op;
        match fr.kind {
            Kind::Scalar(kind) => {
                let e = self.column(alias, fr)?;
                let left = if kind == Scalar::Text {
                    e.clone()
                } else {
                    format!("{e}::text")
                };
                let wildcard = matches!(positive_op, Operator::Like | Operator::ILike);
                let value = if wildcard {
                    format!("%{pattern}%")
                } else {
                    pattern
                };
                let p = self.param(Param::Text(value));
                let sql_op = match op {
                    Operator::Like | Operator::EqLike => "LIKE",
                    Operator::ILike | Operator::EqILike => "ILIKE",
                    Operator::NotLike | Operator::NotEqLike => "NOT LIKE",
                    _ => "NOT ILIKE",
                };
                let sql = format!("{left} {sql_op} {p}");
                Ok(Frag::Sql(if !positive && fr.nullable() {
                    format!("({sql} OR {e} IS NULL)")
                } else {
                    sql
                }))
            }
            Kind::Many2one => {
                let co = self.comodel(model, &fr.f)?;
                let a = self.new_alias()?;
                let sub_ctx = Ctx {
                    active_test: false,
                    ..ctx
                };
                let w = self.name_search(co, &a, positive_op, vec![pattern], vec![], sub_ctx)?;
                self.many2one_in_query(fr, alias, co, &a, w, positive)
            }
            Kind::One2many | Kind::Many2many => {
                let co = self.comodel(model, &fr.f)?;
                let a = self.new_alias()?;
                let w = self.name_search(co, &a, positive_op, vec![pattern], vec![], ctx)?;
                self.x2many_where(fr, model, alias, a, w, positive)
            }
        }
    }

    /// `comodel._search([('display_name', op, names)])` (or `ids`): the WHERE condition of the
    /// sub-search (active test per `ctx`, rules unless sudo).
    fn name_search(
        &mut self,
        co: &ModelInfo,
        a: &str,
        op: Operator,
        names: Vec<String>,
        ids: Vec<i64>,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        let mut dom = if op == Operator::In {
            Domain::leaf(
                "display_name",
                Operator::In,
                Value::List(names.into_iter().map(Value::Str).collect()),
            )
        } else {
            or(names
                .into_iter()
                .map(|n| Domain::leaf("display_name", op, Value::Str(n)))
                .collect())
        };
        if !ids.is_empty() {
            let ids = Value::List(ids.into_iter().map(Value::Int).collect());
            dom = or(vec![dom, Domain::leaf("id", Operator::In, ids)]);
        }
        self.subquery_where(co, a, &dom, ctx)
    }

    // ----------------------------------------------------------------- display_name

    /// A condition on a non-stored `display_name`: Odoo's basic optimisations of the operator
    /// (`=` is `in`, `like ''`, ...), then the model's name search (`_search_display_name`).
    fn display_name_leaf(
        &mut self,
        op: Operator,
        v: &Value,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        let ctx = ctx.deeper()?;
        let as_list = |v: &Value| match v {
            Value::List(l) => l.clone(),
            other => vec![other.clone()],
        };
        let op = match op {
            // a =? b  <=>  not b or a = b
            Operator::EqOpt if !v.is_truthy() => return Ok(Frag::True),
            Operator::EqOpt => Operator::Eq,
            other => other,
        };
        let (op, value) = match op {
            Operator::Eq | Operator::Ne => {
                let values = match v {
                    Value::List(l) if l.is_empty() => vec![Value::Bool(false)],
                    other => as_list(other),
                };
                let op = if op == Operator::Eq {
                    Operator::In
                } else {
                    Operator::NotIn
                };
                (op, Value::List(values))
            }
            Operator::In | Operator::NotIn => match v {
                Value::List(l) if l.is_empty() => return Ok(Frag::constant(op == Operator::NotIn)),
                other => (op, Value::List(as_list(other))),
            },
            _ if op.is_like() => {
                let has_eq = matches!(
                    op,
                    Operator::EqLike
                        | Operator::EqILike
                        | Operator::NotEqLike
                        | Operator::NotEqILike
                );
                if !v.is_truthy() {
                    // `like ''` is everything; `=like ''` is "display_name = False"
                    let result = op.is_negative() == has_eq;
                    if !has_eq {
                        return Ok(Frag::constant(result));
                    }
                    let op = if result {
                        Operator::NotIn
                    } else {
                        Operator::In
                    };
                    (op, Value::List(vec![Value::Bool(false)]))
                } else {
                    match v {
                        Value::Str(_) => (op, v.clone()),
                        Value::List(_) => {
                            return Err(DomainError::InvalidValue(
                                "a list is not a valid pattern".into(),
                            ));
                        }
                        other if has_eq => {
                            return Err(DomainError::InvalidValue(format!(
                                "the pattern to match must be a string, not {}",
                                other.to_json()
                            )));
                        }
                        other => (op, Value::Str(py_str(other)?)),
                    }
                }
            }
            Operator::Lt | Operator::Gt | Operator::Le | Operator::Ge => (op, v.clone()),
            _ => {
                return Err(DomainError::InvalidValue(format!(
                    "operator '{op}' works only on relational fields and id, not display_name"
                )));
            }
        };
        let search = self.name_search_domain(model, op, &value)?;
        self.name_search_sql(&search, model, alias, ctx)
    }

    /// The fields of `model` Odoo's default name search looks at (`_rec_names_search`, else
    /// `_rec_name`); empty when the model has no name.
    fn name_fields(model: &ModelInfo) -> Vec<String> {
        match crate::name_search::search_fields(&model.model) {
            Some(f) => f.into_iter().map(str::to_string).collect(),
            None if model.rec_name.is_empty() || model.rec_name == "id" => vec![],
            None => vec![model.rec_name.clone()],
        }
    }

    /// The last field of a dotted path of `model`.
    fn path_field<'m>(
        &'m self,
        model: &'m ModelInfo,
        path: &str,
    ) -> Result<&'m FieldInfo, DomainError> {
        let mut m = model;
        let mut segments = path.split('.').peekable();
        while let Some(name) = segments.next() {
            let f = m
                .fields
                .get(name)
                .ok_or_else(|| DomainError::UnknownField {
                    model: m.model.clone(),
                    field: name.to_string(),
                })?;
            if segments.peek().is_none() {
                return Ok(f);
            }
            m = self.comodel(m, f)?;
        }
        Err(DomainError::UnknownField {
            model: model.model.clone(),
            field: path.to_string(),
        })
    }

    /// `BaseModel._search_display_name(op, value)`.
    fn default_name_domain(
        &self,
        model: &ModelInfo,
        op: Operator,
        value: &Value,
    ) -> Result<Domain, DomainError> {
        let fields = Self::name_fields(model);
        if fields.is_empty() {
            // Odoo logs a warning and does not restrain anything
            return Ok(Domain::True);
        }
        let plain_like = op.is_like()
            && !matches!(
                op,
                Operator::EqLike | Operator::EqILike | Operator::NotEqLike | Operator::NotEqILike
            );
        if plain_like && !value.is_truthy() {
            return Ok(Domain::constant(!op.is_negative()));
        }
        let mut domains = Vec::with_capacity(fields.len());
        for name in fields {
            // a field the database does not have (a fixture with fewer columns) is left out
            let f = match self.path_field(model, &name) {
                Ok(f) => f,
                Err(DomainError::UnknownField { .. }) => continue,
                Err(e) => return Err(e),
            };
            let kind = field_kind(&f.ttype);
            let typed = |v: &Value| match kind {
                // `field.convert_to_write(v)`: values that do not convert are left out
                Some(Kind::Scalar(k)) => v.is_null() || convert(k, v).is_ok(),
                _ => true,
            };
            match kind {
                Some(Kind::Many2one | Kind::One2many | Kind::Many2many) => domains.push(
                    Domain::leaf(format!("{name}.display_name"), op, value.clone()),
                ),
                _ if op.is_like() => domains.push(Domain::leaf(name, op, value.clone())),
                _ => match value {
                    Value::List(l) => domains.push(Domain::leaf(
                        name,
                        op,
                        Value::List(l.iter().filter(|v| typed(v)).cloned().collect()),
                    )),
                    v if typed(v) => domains.push(Domain::leaf(name, op, v.clone())),
                    _ => {}
                },
            }
        }
        Ok(if op.is_negative() {
            super::and(domains)
        } else {
            or(domains)
        })
    }

    /// The model's name search: the default, or Odoo's override for the models that have one
    /// (`crate::name_search::special`).
    fn name_search_domain(
        &self,
        model: &ModelInfo,
        op: Operator,
        value: &Value,
    ) -> Result<NameSearch, DomainError> {
        use crate::name_search::{Special, bracketed_code, special, state_and_country};
        let positive = !op.is_negative();
        let text = match value {
            Value::Str(s) => Some(s.as_str()),
            _ => None,
        };
        let strings = |v: &Value| -> Vec<String> {
            match v {
                Value::List(l) => l
                    .iter()
                    .filter_map(|x| match x {
                        Value::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
                Value::Str(s) => vec![s.clone()],
                _ => vec![],
            }
        };
        let default = || self.default_name_domain(model, op, value);
        Ok(match special(&model.model) {
            None => NameSearch::Domain(default()?),
            Some(Special::Unsupported(_)) => {
                return Err(DomainError::NotSearchable {
                    model: model.model.clone(),
                    field: "display_name".into(),
                });
            }
            Some(Special::DescendantsOnLike) if op.is_like() => {
                if positive {
                    NameSearch::ChildOf(default()?)
                } else {
                    // NotImplemented for a negative operator: Odoo negates the positive search
                    let inv = op.inverse().unwrap_or(op);
                    let d = self.default_name_domain(model, inv, value)?;
                    NameSearch::Not(Box::new(NameSearch::ChildOf(d)))
                }
            }
            Some(Special::BankBic)
                if matches!(op, Operator::ILike | Operator::NotILike) && value.is_truthy() =>
            {
                let v = text.unwrap_or_default();
                let d = or(vec![
                    Domain::leaf("bic", Operator::EqILike, Value::Str(format!("{v}%"))),
                    Domain::leaf("name", Operator::ILike, Value::Str(v.to_string())),
                ]);
                NameSearch::Domain(if positive { d } else { d.not() })
            }
            Some(Special::StateWithCountry) if positive && value.is_truthy() => {
                let with_country = |name: &str, op: Operator| {
                    state_and_country(name).map(|(n, c)| {
                        super::and(vec![
                            Domain::leaf("name", op, Value::Str(n.to_string())),
                            or(vec![
                                Domain::leaf(
                                    "country_id.name",
                                    Operator::ILike,
                                    Value::Str(c.into()),
                                ),
                                Domain::leaf("country_id.code", Operator::Eq, Value::Str(c.into())),
                            ]),
                        ])
                    })
                };
                let extra: Vec<Domain> = match op {
                    Operator::ILike => text.and_then(|t| with_country(t, op)).into_iter().collect(),
                    Operator::In => strings(value)
                        .iter()
                        .filter_map(|n| with_country(n, Operator::Eq))
                        .collect(),
                    _ => vec![],
                };
                let mut all = vec![default()?];
                all.extend(extra);
                NameSearch::Domain(or(all))
            }
            Some(Special::UsersLoginFirst)
                if matches!(op, Operator::In | Operator::ILike) && value.is_truthy() =>
            {
                let logins = match value {
                    Value::List(l) => l.clone(),
                    other => vec![other.clone()],
                };
                NameSearch::LoginFirst {
                    login: Domain::leaf("login", Operator::In, Value::List(logins)),
                    otherwise: default()?,
                }
            }
            Some(Special::ProductVariant) => {
                let name = Domain::leaf("name", op, value.clone());
                let code = Domain::leaf("default_code", op, value.clone());
                if !positive {
                    NameSearch::Domain(super::and(vec![name, code]))
                } else {
                    let mut all = vec![Domain::any("product_tmpl_id", false, name), code];
                    if op == Operator::In {
                        all.push(Domain::leaf("barcode", Operator::In, value.clone()));
                        for v in strings(value) {
                            if let Some(c) = bracketed_code(&v) {
                                all.push(Domain::leaf(
                                    "default_code",
                                    Operator::Eq,
                                    Value::Str(c.into()),
                                ));
                            }
                        }
                    } else if op.is_like() {
                        all.push(Domain::leaf(
                            "barcode",
                            Operator::In,
                            Value::List(vec![value.clone()]),
                        ));
                    }
                    NameSearch::Domain(or(all))
                }
            }
            Some(Special::AccountCode) => {
                if !positive {
                    // NotImplemented for a negative operator: Odoo negates the positive search
                    let inv = op.inverse().unwrap_or(op);
                    let inner = self.name_search_domain(model, inv, value)?;
                    return Ok(NameSearch::Not(Box::new(inner)));
                }
                let first_word = |v: &Value| match v {
                    Value::Str(s) => s.split(' ').next().unwrap_or_default().to_string(),
                    _ => String::new(),
                };
                match (op, value) {
                    (Operator::In, Value::List(l)) => NameSearch::RootCompanyCode {
                        code: Domain::leaf(
                            "code_store",
                            Operator::In,
                            Value::List(l.iter().map(|v| Value::Str(first_word(v))).collect()),
                        ),
                        rest: Domain::leaf("name", Operator::In, value.clone()),
                    },
                    (_, Value::Str(v)) => NameSearch::RootCompanyCode {
                        code: Domain::leaf(
                            "code_store",
                            Operator::EqLike,
                            Value::Str(format!("{}%", first_word(value))),
                        ),
                        rest: or(vec![
                            Domain::leaf("name", op, value.clone()),
                            Domain::leaf("description", Operator::ILike, Value::Str(v.clone())),
                        ]),
                    },
                    _ => {
                        return Err(DomainError::NotSearchable {
                            model: model.model.clone(),
                            field: "display_name".into(),
                        });
                    }
                }
            }
            Some(Special::ProductTemplateVariants) if value.is_truthy() => {
                let variants = Domain::leaf("product_variant_ids", op, value.clone());
                NameSearch::Domain(if positive {
                    or(vec![default()?, variants])
                } else {
                    super::and(vec![default()?, variants])
                })
            }
            Some(_) => NameSearch::Domain(default()?),
        })
    }

    fn name_search_sql(
        &mut self,
        search: &NameSearch,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        match search {
            NameSearch::Domain(d) => self.domain(d, model, alias, ctx, false),
            NameSearch::Not(inner) => {
                let f = self.name_search_sql(inner, model, alias, ctx.deeper()?)?;
                Ok(not_frag(f))
            }
            NameSearch::ChildOf(start) => {
                // `[('id', 'child_of', model._search(start))]`: the records found, then their
                // descendants walked in sudo with archived ones (Odoo's parent_path walk)
                let ctx = ctx.nested()?;
                let s = self.new_alias()?;
                let w = self.subquery_where(model, &s, start, ctx)?;
                match self.walk_down(model, &model.parent_name, &s, w)? {
                    None => Ok(Frag::False),
                    Some(q) => Ok(Frag::Sql(format!("{} IN {q}", qualified(alias, "id")?))),
                }
            }
            NameSearch::RootCompanyCode { code, rest } => {
                // `_search_code`: code_store read for `env.company.root_id`, in sudo
                let company = self.company_param();
                let saved = self.company_marker.replace(format!(
                    "(SELECT split_part(\"rc\".\"parent_path\", '/', 1) FROM \"res_company\" AS \"rc\" \
                     WHERE \"rc\".\"id\" = ({company})::int4)"
                ));
                let sudo = Ctx {
                    sudo: true,
                    ..ctx.deeper()?
                };
                let by_code = self.domain(code, model, alias, sudo, false);
                self.company_marker = saved;
                let by_rest = self.domain(rest, model, alias, ctx.deeper()?, false)?;
                Ok(or_frags(vec![by_code?, by_rest]))
            }
            NameSearch::LoginFirst { login, otherwise } => {
                let u = self.new_alias()?;
                let w = self.subquery_where(model, &u, login, ctx)?;
                let other = self.domain(otherwise, model, alias, ctx.deeper()?, false)?;
                let where_sql = match w {
                    Frag::False => return Ok(other),
                    Frag::True => String::new(),
                    Frag::Sql(s) => format!(" WHERE {s}"),
                };
                let q = format!(
                    "SELECT {} FROM {} AS {}{where_sql}",
                    qualified(&u, "id")?,
                    ident(&model.table)?,
                    ident(&u)?
                );
                let found = Frag::Sql(format!("{} IN ({q})", qualified(alias, "id")?));
                let none = Frag::Sql(format!("NOT EXISTS ({q})"));
                Ok(or_frags(vec![found, and_frags(vec![none, other])]))
            }
        }
    }

    // ----------------------------------------------------------------- relational

    /// `any` / `not any` (also dotted paths).
    fn any(
        &mut self,
        fr: &FieldRef,
        sub: &Domain,
        positive: bool,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        match fr.kind {
            _ if fr.is_id => {
                // ('id', 'any', D) <=> D
                self.domain(sub, model, alias, ctx.deeper()?, !positive)
            }
            Kind::Many2one => {
                // comodel searched with active_test=False
                let co = self.comodel(model, &fr.f)?;
                let a = self.new_alias()?;
                let sub_ctx = Ctx {
                    active_test: false,
                    ..ctx
                };
                let w = self.subquery_where(co, &a, sub, sub_ctx)?;
                self.many2one_in_query(fr, alias, co, &a, w, positive)
            }
            Kind::One2many | Kind::Many2many => {
                let co = self.comodel(model, &fr.f)?;
                let a = self.new_alias()?;
                let w = self.subquery_where(co, &a, sub, ctx)?;
                self.x2many_where(fr, model, alias, a, w, positive)
            }
            Kind::Scalar(_) => Err(DomainError::InvalidValue(format!(
                "operator 'any' needs a relational field, {} is not",
                fr.f.name
            ))),
        }
    }

    /// `col IN (SELECT id FROM comodel WHERE w)`; negative: `(col IS NULL OR col NOT IN (...))`.
    fn many2one_in_query(
        &mut self,
        fr: &FieldRef,
        alias: &str,
        co: &ModelInfo,
        a: &str,
        w: Frag,
        positive: bool,
    ) -> Result<Frag, DomainError> {
        let where_sql = match w {
            Frag::False => return Ok(Frag::constant(!positive)),
            Frag::True => String::new(),
            Frag::Sql(s) => format!(" WHERE {s}"),
        };
        let e = self.column(alias, fr)?;
        let sub = format!(
            "SELECT {} FROM {} AS {}{where_sql}",
            qualified(a, "id")?,
            ident(&co.table)?,
            ident(a)?
        );
        Ok(Frag::Sql(if positive {
            format!("{e} IN ({sub})")
        } else if fr.nullable() {
            format!("({e} IS NULL OR {e} NOT IN ({sub}))")
        } else {
            format!("{e} NOT IN ({sub})")
        }))
    }

    fn x2many_where(
        &mut self,
        fr: &FieldRef,
        model: &ModelInfo,
        alias: &str,
        a: String,
        w: Frag,
        positive: bool,
    ) -> Result<Frag, DomainError> {
        match w {
            Frag::False => Ok(Frag::constant(!positive)),
            Frag::True => self.x2many(fr, model, alias, X2m::All, positive),
            Frag::Sql(s) => self.x2many(fr, model, alias, X2m::Where(a, s), positive),
        }
    }

    /// `[NOT] EXISTS` over the lines of an x2many field.
    fn x2many(
        &mut self,
        fr: &FieldRef,
        model: &ModelInfo,
        alias: &str,
        cond: X2m,
        positive: bool,
    ) -> Result<Frag, DomainError> {
        let co = self.comodel(model, &fr.f)?;
        let not_searchable = || DomainError::NotSearchable {
            model: model.model.clone(),
            field: fr.f.name.clone(),
        };
        let own_id = qualified(alias, "id")?;
        let body = if fr.kind == Kind::One2many {
            let inverse = fr.f.relation_field.as_deref().ok_or_else(not_searchable)?;
            if !co.fields.get(inverse).is_some_and(|f| f.store) {
                return Err(not_searchable());
            }
            // lines are rows of the comodel whose inverse column points to us
            let (line, extra) = match cond {
                X2m::Where(a, w) => (a, Some(w)),
                other => {
                    let line = self.new_alias()?;
                    let line_id = qualified(&line, "id")?;
                    let w = match other {
                        X2m::Ids(ids) => Some(self.ids_match(&line_id, &ids)),
                        X2m::IdsQuery(q) => Some(format!("{line_id} IN {q}")),
                        _ => None,
                    };
                    (line, w)
                }
            };
            let mut s = format!(
                "SELECT 1 FROM {} AS {} WHERE {} = {own_id}",
                ident(&co.table)?,
                ident(&line)?,
                qualified(&line, inverse)?
            );
            for (column, value) in &fr.f.line_filter {
                let p = match value {
                    Value::Bool(b) => self.param(Param::Bool(*b)),
                    Value::Int(i) => self.param(Param::Int(*i)),
                    Value::Str(t) => self.param(Param::Text(t.clone())),
                    _ => return Err(not_searchable()),
                };
                let _ = write!(s, " AND {} = {p}", qualified(&line, column)?);
            }
            if let Some(w) = extra {
                let _ = write!(s, " AND {w}");
            }
            s
        } else {
            let (Some(rel), Some(c1), Some(c2)) = (
                fr.f.relation_table.as_deref(),
                fr.f.column1.as_deref(),
                fr.f.column2.as_deref(),
            ) else {
                return Err(not_searchable());
            };
            let r = self.new_alias()?;
            let col2 = qualified(&r, c2)?;
            let extra = match cond {
                X2m::All => None,
                X2m::Ids(ids) => Some(self.ids_match(&col2, &ids)),
                X2m::IdsQuery(q) => Some(format!("{col2} IN {q}")),
                X2m::Where(a, w) => Some(format!(
                    "{col2} IN (SELECT {} FROM {} AS {} WHERE {w})",
                    qualified(&a, "id")?,
                    ident(&co.table)?,
                    ident(&a)?
                )),
            };
            let mut s = format!(
                "SELECT 1 FROM {} AS {} WHERE {} = {own_id}",
                ident(rel)?,
                ident(&r)?,
                qualified(&r, c1)?
            );
            if let Some(w) = extra {
                let _ = write!(s, " AND {w}");
            }
            s
        };
        Ok(Frag::Sql(if positive {
            format!("EXISTS ({body})")
        } else {
            format!("NOT EXISTS ({body})")
        }))
    }

    // ----------------------------------------------------------------- child_of / parent_of

    fn hierarchy_leaf(
        &mut self,
        fr: &FieldRef,
        child: bool,
        v: &Value,
        model: &ModelInfo,
        alias: &str,
        ctx: Ctx,
    ) -> Result<Frag, DomainError> {
        let op = if child { "child_of" } else { "parent_of" };
        match fr.kind {
            _ if fr.is_id => {
                let sub = self.hierarchy(model, &model.parent_name, v, child, ctx, false)?;
                match sub {
                    None => Ok(Frag::False),
                    Some(q) => Ok(Frag::Sql(format!("{} IN {q}", qualified(alias, "id")?))),
                }
            }
            Kind::Many2one => {
                let co = self.comodel(model, &fr.f)?;
                let name_ctx = Ctx {
                    active_test: false,
                    ..ctx
                };
                if co.model == model.model {
                    // same model: walk this field, result on `id`
                    let parent = fr.f.name.clone();
                    let sub = self.hierarchy(co, &parent, v, child, name_ctx, false)?;
                    return match sub {
                        None => Ok(Frag::False),
                        Some(q) => Ok(Frag::Sql(format!("{} IN {q}", qualified(alias, "id")?))),
                    };
                }
                let sub = self.hierarchy(co, &co.parent_name, v, child, name_ctx, false)?;
                match sub {
                    None => Ok(Frag::False),
                    Some(q) => {
                        let e = self.column(alias, fr)?;
                        Ok(Frag::Sql(format!("{e} IN {q}")))
                    }
                }
            }
            Kind::One2many | Kind::Many2many => {
                let co = self.comodel(model, &fr.f)?;
                let restrict = fr.kind == Kind::Many2many;
                let sub = self.hierarchy(co, &co.parent_name, v, child, ctx, restrict)?;
                match sub {
                    None => Ok(Frag::False),
                    Some(q) => self.x2many(fr, model, alias, X2m::IdsQuery(q), true),
                }
            }
            Kind::Scalar(_) => Err(DomainError::InvalidValue(format!(
                "operator '{op}' works only on relational fields and id, not {}",
                fr.f.name
            ))),
        }
    }

    /// A parenthesised sub-select of the ids reached from the records designated by `v` (ids
    /// or names) by following `parent` downwards (`child`) or upwards, with a recursive CTE
    /// (sudo, archived records included, as Odoo walks the hierarchy). `None`: no start record.
    fn hierarchy(
        &mut self,
        co: &ModelInfo,
        parent: &str,
        v: &Value,
        child: bool,
        ctx: Ctx,
        restrict_start: bool,
    ) -> Result<Option<String>, DomainError> {
        let ctx = ctx.nested()?;
        match co.fields.get(parent) {
            Some(f) if f.store && f.ttype == "many2one" && !f.company_dependent => {}
            Some(_) => {
                return Err(DomainError::NotSearchable {
                    model: co.model.clone(),
                    field: parent.to_string(),
                });
            }
            None => {
                return Err(DomainError::UnknownField {
                    model: co.model.clone(),
                    field: parent.to_string(),
                });
            }
        }
        let values = match v {
            Value::List(l) => l.clone(),
            other => vec![other.clone()],
        };
        let (ids, names, _null) = split_ids(&values)?;
        let ids: Vec<i64> = ids.into_iter().filter(|i| *i != 0).collect();
        let s = self.new_alias()?;
        let start = if !names.is_empty() {
            // Odoo: `comodel.search(OR(display_name ilike v))`
            self.name_search(co, &s, Operator::ILike, names, ids, ctx)?
        } else if ids.is_empty() {
            return Ok(None);
        } else if restrict_start {
            let dom = Domain::leaf(
                "id",
                Operator::In,
                Value::List(ids.into_iter().map(Value::Int).collect()),
            );
            self.subquery_where(co, &s, &dom, ctx)?
        } else {
            Frag::Sql(self.ids_match(&qualified(&s, "id")?, &ids))
        };
        self.walk_down_or_up(co, parent, &s, start, child)
    }

    /// A parenthesised sub-select of the descendants of the records of `co` under alias `s`
    /// satisfying `start` (themselves included); `None` when `start` is FALSE.
    fn walk_down(
        &mut self,
        co: &ModelInfo,
        parent: &str,
        s: &str,
        start: Frag,
    ) -> Result<Option<String>, DomainError> {
        match co.fields.get(parent) {
            Some(f) if f.store && f.ttype == "many2one" && !f.company_dependent => {}
            _ => {
                return Err(DomainError::NotSearchable {
                    model: co.model.clone(),
                    field: "display_name".into(),
                });
            }
        }
        self.walk_down_or_up(co, parent, s, start, true)
    }

    fn walk_down_or_up(
        &mut self,
        co: &ModelInfo,
        parent: &str,
        s: &str,
        start: Frag,
        child: bool,
    ) -> Result<Option<String>, DomainError> {
        let start_where = match start {
            Frag::False => return Ok(None),
            Frag::True => String::new(),
            Frag::Sql(w) => format!(" WHERE {w}"),
        };
        let h = ident(&self.new_alias()?)?;
        let c_alias = self.new_alias()?;
        let (c, table, p) = (ident(&c_alias)?, ident(&co.table)?, ident(parent)?);
        let s = ident(s)?;
        Ok(Some(if child {
            format!(
                "(WITH RECURSIVE {h}(\"id\") AS (SELECT {s}.\"id\" FROM {table} AS {s}{start_where} \
                 UNION SELECT {c}.\"id\" FROM {table} AS {c} JOIN {h} ON {c}.{p} = {h}.\"id\") \
                 SELECT {h}.\"id\" FROM {h})"
            )
        } else {
            format!(
                "(WITH RECURSIVE {h}(\"id\", \"parent\") AS (SELECT {s}.\"id\", {s}.{p} FROM {table} AS {s}{start_where} \
                 UNION SELECT {c}.\"id\", {c}.{p} FROM {table} AS {c} JOIN {h} ON {c}.\"id\" = {h}.\"parent\") \
                 SELECT {h}.\"id\" FROM {h})"
            )
        }))
    }
}

/// Split the values of a relational condition into ids, names and "not set".
fn split_ids(values: &[Value]) -> Result<(Vec<i64>, Vec<String>, bool), DomainError> {
    let mut ids = Vec::new();
    let mut names = Vec::new();
    let mut null_in = false;
    for v in values {
        match v {
            Value::None | Value::Bool(false) => null_in = true,
            Value::Bool(true) => ids.push(1),
            Value::Int(i) => ids.push(*i),
            Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => ids.push(*f as i64),
            Value::Str(s) => names.push(s.clone()),
            other => {
                return Err(DomainError::InvalidValue(format!(
                    "{} is not a record id",
                    other.to_json()
                )));
            }
        }
    }
    Ok((ids, names, null_in))
}
