//! Odoo 19 domains: parsing (JSON or Python-literal text), evaluation of `ir.rule.domain_force`
//! expressions, canonical JSON, and compilation to parameterised PostgreSQL.
//!
//! * [`parse`] reads a domain sent by an API caller (literals only).
//! * [`parse_rule`] evaluates a record-rule `domain_force` with an [`EvalContext`].
//! * [`compile`] / [`compile_search`] turn a domain into a boolean SQL condition over a row alias,
//!   following `odoo/orm/domains.py` and `Field._condition_to_sql` (NULL/False semantics, paths,
//!   `any`, `child_of`, translated and company-dependent columns).
//! * [`parse_order`] validates an `order` string.
//!
//! The shape of a parsed domain is canonical: `And`/`Or` have at least two children, never contain
//! `True`/`False` or a node of their own kind (they are flattened, as Odoo's `Domain.AND/OR` do).
//! `Not` is kept as written; [`compile`] pushes negations down. [`to_json`] writes this canonical
//! form back in prefix notation, and `parse(&to_json(d).to_string()) == d`.

mod compile;
mod eval;
mod lexer;
mod literal;
mod order;
mod parse;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use compile::{
    CompileOptions, FieldInfo, ModelInfo, Param, Schema, Sql, compile, compile_literal,
    compile_search,
};
pub use eval::EvalContext;
pub use order::parse_order;

/// Maximum nesting accepted anywhere: brackets in the text, depth of the domain tree, and
/// sub-queries while compiling. Deeper inputs are errors, never stack overflows.
pub const MAX_DEPTH: usize = 64;

/// Relations one dotted path may follow (`parent_id.country_id.code` follows 2). Each hop is a
/// sub-query, and PostgreSQL's planning time grows steeply with nested sub-queries (60 hops
/// planned for seconds), so a longer path is refused with a "too complex" error (SQLSTATE 22023,
/// HTTP 400). Odoo's own record rules and views rarely go past 3.
pub const MAX_PATH_HOPS: usize = 8;

/// Sub-queries nested in one another in one compiled search: path hops, `any`, `child_of` /
/// `parent_of` walks, and the record rules of the comodels they reach (which may bring their
/// own). Bounds nested `any` the way [`MAX_PATH_HOPS`] bounds dotted paths.
pub const MAX_SUBQUERY_NESTING: usize = 16;

/// Tables one search may add in sub-queries (every sub-query, x2many relation table and
/// hierarchy walk counts), the caller's domain and all record rules together.
pub const MAX_SUBQUERIES: usize = 128;

/// A value as it appears in a domain. Python tuples become lists.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
}

impl Value {
    /// Python truthiness.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::None => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::List(l) => !l.is_empty(),
        }
    }

    /// `False` or `None` ("not set" in a domain).
    pub fn is_null(&self) -> bool {
        matches!(self, Value::None | Value::Bool(false))
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::None => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
        }
    }
}

/// A domain in canonical form (see the module documentation).
#[derive(Debug, Clone, PartialEq)]
pub enum Domain {
    True,
    False,
    And(Vec<Domain>),
    Or(Vec<Domain>),
    Not(Box<Domain>),
    Leaf(Leaf),
}

/// A condition `(path, operator, value)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    /// Field name or dotted path (`partner_id.country_id.code`).
    pub path: String,
    pub op: Operator,
    pub value: LeafValue,
}

/// The right side of a condition: a value, or a sub-domain for `any` / `not any`.
#[derive(Debug, Clone, PartialEq)]
pub enum LeafValue {
    Value(Value),
    Domain(Box<Domain>),
}

/// Condition operators accepted from domains (Odoo 19 `CONDITION_OPERATORS`, the deprecated
/// spellings `==` and `<>` being folded into `Eq` and `Ne`). The internal `any!`/`not any!`
/// are not accepted from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    /// `=?`
    EqOpt,
    In,
    NotIn,
    Like,
    NotLike,
    ILike,
    NotILike,
    /// `=like`
    EqLike,
    /// `=ilike`
    EqILike,
    /// `not =like`
    NotEqLike,
    /// `not =ilike`
    NotEqILike,
    ChildOf,
    ParentOf,
    Any,
    NotAny,
}

impl Operator {
    pub const ALL: [Operator; 21] = [
        Operator::Eq,
        Operator::Ne,
        Operator::Lt,
        Operator::Gt,
        Operator::Le,
        Operator::Ge,
        Operator::EqOpt,
        Operator::In,
        Operator::NotIn,
        Operator::Like,
        Operator::NotLike,
        Operator::ILike,
        Operator::NotILike,
        Operator::EqLike,
        Operator::EqILike,
        Operator::NotEqLike,
        Operator::NotEqILike,
        Operator::ChildOf,
        Operator::ParentOf,
        Operator::Any,
        Operator::NotAny,
    ];

    /// The canonical (Odoo) spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Operator::Eq => "=",
            Operator::Ne => "!=",
            Operator::Lt => "<",
            Operator::Gt => ">",
            Operator::Le => "<=",
            Operator::Ge => ">=",
            Operator::EqOpt => "=?",
            Operator::In => "in",
            Operator::NotIn => "not in",
            Operator::Like => "like",
            Operator::NotLike => "not like",
            Operator::ILike => "ilike",
            Operator::NotILike => "not ilike",
            Operator::EqLike => "=like",
            Operator::EqILike => "=ilike",
            Operator::NotEqLike => "not =like",
            Operator::NotEqILike => "not =ilike",
            Operator::ChildOf => "child_of",
            Operator::ParentOf => "parent_of",
            Operator::Any => "any",
            Operator::NotAny => "not any",
        }
    }

    /// Parse an operator as Odoo 19 does: lower-cased (upper case is deprecated but accepted),
    /// `==` means `=` and `<>` means `!=`. `any!`/`not any!` are internal and rejected.
    pub fn parse(text: &str) -> Result<Operator, DomainError> {
        let lower = text.to_lowercase();
        let op = match lower.as_str() {
            "=" | "==" => Operator::Eq,
            "!=" | "<>" => Operator::Ne,
            "<" => Operator::Lt,
            ">" => Operator::Gt,
            "<=" => Operator::Le,
            ">=" => Operator::Ge,
            "=?" => Operator::EqOpt,
            "in" => Operator::In,
            "not in" => Operator::NotIn,
            "like" => Operator::Like,
            "not like" => Operator::NotLike,
            "ilike" => Operator::ILike,
            "not ilike" => Operator::NotILike,
            "=like" => Operator::EqLike,
            "=ilike" => Operator::EqILike,
            "not =like" => Operator::NotEqLike,
            "not =ilike" => Operator::NotEqILike,
            "child_of" => Operator::ChildOf,
            "parent_of" => Operator::ParentOf,
            "any" => Operator::Any,
            "not any" => Operator::NotAny,
            "any!" | "not any!" => {
                return Err(DomainError::UnknownOperator(format!(
                    "{text} (internal operator, not allowed in a domain)"
                )));
            }
            _ => return Err(DomainError::UnknownOperator(text.to_string())),
        };
        Ok(op)
    }

    /// `not in`, `!=`, `not like`, ..., `not any`.
    pub fn is_negative(self) -> bool {
        matches!(
            self,
            Operator::Ne
                | Operator::NotIn
                | Operator::NotLike
                | Operator::NotILike
                | Operator::NotEqLike
                | Operator::NotEqILike
                | Operator::NotAny
        )
    }

    /// The operator whose result is the exact complement, when there is one that keeps the
    /// same value (Odoo's `_INVERSE_OPERATOR`, plus the `=like` pair).
    pub fn inverse(self) -> Option<Operator> {
        Some(match self {
            Operator::Eq => Operator::Ne,
            Operator::Ne => Operator::Eq,
            Operator::In => Operator::NotIn,
            Operator::NotIn => Operator::In,
            Operator::Like => Operator::NotLike,
            Operator::NotLike => Operator::Like,
            Operator::ILike => Operator::NotILike,
            Operator::NotILike => Operator::ILike,
            Operator::EqLike => Operator::NotEqLike,
            Operator::NotEqLike => Operator::EqLike,
            Operator::EqILike => Operator::NotEqILike,
            Operator::NotEqILike => Operator::EqILike,
            Operator::Any => Operator::NotAny,
            Operator::NotAny => Operator::Any,
            _ => return None,
        })
    }

    pub fn is_like(self) -> bool {
        matches!(
            self,
            Operator::Like
                | Operator::NotLike
                | Operator::ILike
                | Operator::NotILike
                | Operator::EqLike
                | Operator::EqILike
                | Operator::NotEqLike
                | Operator::NotEqILike
        )
    }
}

impl std::fmt::Display for Operator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Errors of parsing, evaluation and compilation. Callers must treat every error as "deny".
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DomainError {
    #[error("syntax error at byte {pos}: {msg}")]
    Syntax { pos: usize, msg: String },
    #[error("malformed domain: {0}")]
    Malformed(String),
    #[error("unknown operator {0:?}")]
    UnknownOperator(String),
    #[error("unknown name {0:?}")]
    UnknownName(String),
    #[error("unknown field {model}.{field}")]
    UnknownField { model: String, field: String },
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    #[error("invalid value: {0}")]
    InvalidValue(String),
    #[error("field {model}.{field} cannot be searched")]
    NotSearchable { model: String, field: String },
    #[error("domain too complex: {0}")]
    TooComplex(String),
}

/// Longest user-supplied text kept in an error (field names, operators, values).
const ERROR_TEXT_MAX: usize = 200;

fn clip(s: String) -> String {
    if s.len() <= ERROR_TEXT_MAX {
        return s;
    }
    let mut end = ERROR_TEXT_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

impl DomainError {
    /// The same error with every text shortened to a bounded length, so that a huge input never
    /// comes back whole in an error message. Applied by every public entry point.
    pub fn clipped(self) -> DomainError {
        match self {
            DomainError::Syntax { pos, msg } => DomainError::Syntax {
                pos,
                msg: clip(msg),
            },
            DomainError::Malformed(m) => DomainError::Malformed(clip(m)),
            DomainError::UnknownOperator(m) => DomainError::UnknownOperator(clip(m)),
            DomainError::UnknownName(m) => DomainError::UnknownName(clip(m)),
            DomainError::UnknownField { model, field } => DomainError::UnknownField {
                model: clip(model),
                field: clip(field),
            },
            DomainError::UnknownModel(m) => DomainError::UnknownModel(clip(m)),
            DomainError::InvalidValue(m) => DomainError::InvalidValue(clip(m)),
            DomainError::NotSearchable { model, field } => DomainError::NotSearchable {
                model: clip(model),
                field: clip(field),
            },
            DomainError::TooComplex(m) => DomainError::TooComplex(clip(m)),
        }
    }
}

impl Domain {
    /// A condition with a plain value.
    pub fn leaf(path: impl Into<String>, op: Operator, value: Value) -> Domain {
        Domain::Leaf(Leaf {
            path: path.into(),
            op,
            value: LeafValue::Value(value),
        })
    }

    /// `TRUE` or `FALSE`.
    pub fn constant(b: bool) -> Domain {
        if b { Domain::True } else { Domain::False }
    }

    /// An `any` / `not any` condition.
    pub fn any(path: impl Into<String>, negative: bool, sub: Domain) -> Domain {
        Domain::Leaf(Leaf {
            path: path.into(),
            op: if negative {
                Operator::NotAny
            } else {
                Operator::Any
            },
            value: LeafValue::Domain(Box::new(sub)),
        })
    }

    /// `!domain`, kept structurally (`Not(Not(x))` is not simplified).
    #[allow(clippy::should_implement_trait)]
    pub fn not(self) -> Domain {
        Domain::Not(Box::new(self))
    }

    pub fn is_true(&self) -> bool {
        matches!(self, Domain::True)
    }

    pub fn is_false(&self) -> bool {
        matches!(self, Domain::False)
    }

    /// Depth of the tree, counting sub-domains of `any` (a leaf or constant is 1). Iterative,
    /// so arbitrarily deep trees built in code are measured without recursion.
    pub fn depth(&self) -> usize {
        let mut max = 0;
        let mut stack = vec![(self, 1usize)];
        while let Some((d, level)) = stack.pop() {
            max = max.max(level);
            match d {
                Domain::True | Domain::False => {}
                Domain::Leaf(l) => {
                    if let LeafValue::Domain(sub) = &l.value {
                        stack.push((sub, level + 1));
                    }
                }
                Domain::Not(inner) => stack.push((inner, level + 1)),
                Domain::And(c) | Domain::Or(c) => stack.extend(c.iter().map(|x| (x, level + 1))),
            }
        }
        max
    }

    /// Whether a condition of this domain (not of its `any` sub-domains) is on `field` itself:
    /// Odoo's test deciding whether `_search` adds `(active, '=', True)`.
    pub fn mentions_field(&self, field: &str) -> bool {
        let mut stack = vec![self];
        while let Some(d) = stack.pop() {
            match d {
                Domain::True | Domain::False => {}
                Domain::Leaf(l) => {
                    if l.path == field {
                        return true;
                    }
                }
                Domain::Not(inner) => stack.push(inner),
                Domain::And(c) | Domain::Or(c) => stack.extend(c.iter()),
            }
        }
        false
    }
}

fn nary(ds: Vec<Domain>, is_and: bool) -> Domain {
    let (zero, absorbing) = if is_and {
        (Domain::True, Domain::False)
    } else {
        (Domain::False, Domain::True)
    };
    let mut out = Vec::with_capacity(ds.len());
    for d in ds {
        match d {
            d if d == zero => {}
            d if d == absorbing => return absorbing,
            Domain::And(children) if is_and => out.extend(children),
            Domain::Or(children) if !is_and => out.extend(children),
            other => out.push(other),
        }
    }
    match out.len() {
        0 => zero,
        1 => out.pop().unwrap_or(zero),
        _ if is_and => Domain::And(out),
        _ => Domain::Or(out),
    }
}

/// Conjunction in canonical form (flattened; `TRUE` dropped; any `FALSE` gives `FALSE`;
/// no child gives `TRUE`), like Odoo's `Domain.AND`.
pub fn and(ds: Vec<Domain>) -> Domain {
    nary(ds, true)
}

/// Disjunction in canonical form, like Odoo's `Domain.OR`.
pub fn or(ds: Vec<Domain>) -> Domain {
    nary(ds, false)
}

/// Parse a domain sent by an API caller: JSON (`[["is_company","=",true]]`) or Odoo's
/// Python-literal form (`[('is_company','=',True), '|', ('name','ilike','acme')]`). Both forms
/// are read by one lexer (`true`/`True`, `null`/`None`, both quote styles, tuples). Only literals
/// are allowed: names are [`DomainError::UnknownName`], `+` is a syntax error.
pub fn parse(text: &str) -> Result<Domain, DomainError> {
    parse::parse_text(text, None)
        .and_then(|node| parse::node_to_domain(node, 0))
        .map_err(DomainError::clipped)
}

/// Evaluate an `ir.rule.domain_force` expression with `ctx` and build the domain.
///
/// Supports list/tuple literals, `+` (list concatenation, number addition), attribute chains
/// resolved through `ctx` (`user.commercial_partner_id.id`), `True`/`False`/`None`, numbers,
/// both quote styles, triple-quoted and adjacent strings, comments, line breaks and trailing
/// commas. Anything else (calls, subscripts, comprehensions, ...) is an error; an unresolved name
/// is [`DomainError::UnknownName`]. Callers must fail closed on any error.
///
/// The domain is returned as written. When the rule is applied, compile it with
/// [`compile_search`], which (like Odoo's `_search`) evaluates rule sub-queries without the
/// comodels' own rules.
pub fn parse_rule(text: &str, ctx: &dyn EvalContext) -> Result<Domain, DomainError> {
    if text.trim().is_empty() {
        // an empty domain_force is TRUE (ir.rule._compute_domain)
        return Ok(Domain::True);
    }
    parse::parse_text(text, Some(ctx))
        .and_then(|node| parse::node_to_domain(node, 0))
        .map_err(DomainError::clipped)
}

/// Build a domain from an already decoded JSON value (same rules as [`parse`]; no positions).
pub fn from_json(value: &serde_json::Value) -> Result<Domain, DomainError> {
    parse::json_to_node(value, 0)
        .and_then(|node| parse::node_to_domain(node, 0))
        .map_err(|e| match e {
            DomainError::Syntax { msg, .. } => DomainError::Malformed(msg),
            other => other,
        })
        .map_err(DomainError::clipped)
}

/// Canonical JSON, in prefix notation: `["&", "&", a, b, c]`, leaves `[path, op, value]`,
/// `TRUE` as `[[1, "=", 1]]` and `FALSE` as `[[0, "=", 1]]`.
pub fn to_json(d: &Domain) -> serde_json::Value {
    let mut items = Vec::new();
    push_json(d, &mut items);
    serde_json::Value::Array(items)
}

fn push_json(d: &Domain, out: &mut Vec<serde_json::Value>) {
    use serde_json::json;
    // iterative pre-order walk (prefix notation is exactly the pre-order)
    let mut stack = vec![d];
    while let Some(d) = stack.pop() {
        match d {
            Domain::True => out.push(json!([1, "=", 1])),
            Domain::False => out.push(json!([0, "=", 1])),
            Domain::Not(inner) => {
                out.push(json!("!"));
                stack.push(inner);
            }
            Domain::And(children) | Domain::Or(children) => {
                let op = if matches!(d, Domain::And(_)) {
                    "&"
                } else {
                    "|"
                };
                for _ in 1..children.len() {
                    out.push(json!(op));
                }
                stack.extend(children.iter().rev());
            }
            Domain::Leaf(leaf) => {
                let value = match &leaf.value {
                    LeafValue::Value(v) => v.to_json(),
                    LeafValue::Domain(sub) => to_json(sub),
                };
                out.push(serde_json::Value::Array(vec![
                    serde_json::Value::String(leaf.path.clone()),
                    serde_json::Value::String(leaf.op.as_str().to_string()),
                    value,
                ]));
            }
        }
    }
}
