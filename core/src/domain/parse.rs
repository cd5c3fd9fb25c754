//! Expression parser/evaluator (literals, and in rule mode names, attribute chains and `+`),
//! and the conversion of the evaluated value into a [`Domain`].

use std::collections::VecDeque;

use super::eval::{EvalContext, add_nodes};
use super::lexer::{Lexer, Tok, Token};
use super::{Domain, DomainError, Leaf, LeafValue, MAX_DEPTH, Operator, Value};

/// An evaluated value with the byte position where it was written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub pos: usize,
    pub kind: NodeKind,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum NodeKind {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Node>),
}

impl Node {
    pub fn from_value(v: Value, pos: usize) -> Node {
        let kind = match v {
            Value::None => NodeKind::None,
            Value::Bool(b) => NodeKind::Bool(b),
            Value::Int(i) => NodeKind::Int(i),
            Value::Float(f) => NodeKind::Float(f),
            Value::Str(s) => NodeKind::Str(s),
            Value::List(l) => {
                NodeKind::List(l.into_iter().map(|v| Node::from_value(v, pos)).collect())
            }
        };
        Node { pos, kind }
    }

    pub fn into_value(self) -> Value {
        match self.kind {
            NodeKind::None => Value::None,
            NodeKind::Bool(b) => Value::Bool(b),
            NodeKind::Int(i) => Value::Int(i),
            NodeKind::Float(f) => Value::Float(f),
            NodeKind::Str(s) => Value::Str(s),
            NodeKind::List(l) => Value::List(l.into_iter().map(Node::into_value).collect()),
        }
    }

    pub fn describe(&self) -> &'static str {
        match self.kind {
            NodeKind::None => "None",
            NodeKind::Bool(_) => "a boolean",
            NodeKind::Int(_) => "an integer",
            NodeKind::Float(_) => "a float",
            NodeKind::Str(_) => "a string",
            NodeKind::List(_) => "a list",
        }
    }
}

fn syntax<T>(pos: usize, msg: impl Into<String>) -> Result<T, DomainError> {
    Err(DomainError::Syntax {
        pos,
        msg: msg.into(),
    })
}

struct Parser<'a, 'c> {
    lexer: Lexer<'a>,
    peeked: Option<Token>,
    ctx: Option<&'c dyn EvalContext>,
}

fn describe_tok(t: &Tok) -> String {
    match t {
        Tok::LBrack => "'['".into(),
        Tok::RBrack => "']'".into(),
        Tok::LParen => "'('".into(),
        Tok::RParen => "')'".into(),
        Tok::Comma => "','".into(),
        Tok::Dot => "'.'".into(),
        Tok::Plus => "'+'".into(),
        Tok::Minus => "'-'".into(),
        Tok::Str(_) => "a string".into(),
        Tok::Int(_) | Tok::Float(_) => "a number".into(),
        Tok::Name(n) => format!("name {n:?}"),
        Tok::Other(o) => format!("{o:?}"),
        Tok::Eof => "end of input".into(),
    }
}

impl<'a, 'c> Parser<'a, 'c> {
    fn peek(&mut self) -> Result<&Token, DomainError> {
        if self.peeked.is_none() {
            self.peeked = Some(self.lexer.next_token()?);
        }
        Ok(self.peeked.as_ref().expect("peeked token"))
    }

    fn next(&mut self) -> Result<Token, DomainError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lexer.next_token(),
        }
    }

    fn rule_mode(&self) -> bool {
        self.ctx.is_some()
    }

    /// expr := unary ('+' unary)*
    fn expr(&mut self, depth: usize) -> Result<Node, DomainError> {
        let mut left = self.unary(depth)?;
        while matches!(self.peek()?.tok, Tok::Plus) {
            let plus = self.next()?;
            if !self.rule_mode() {
                return syntax(plus.pos, "operators are not allowed in a literal domain");
            }
            let right = self.unary(depth)?;
            left = add_nodes(left, right, plus.pos)?;
        }
        Ok(left)
    }

    fn unary(&mut self, depth: usize) -> Result<Node, DomainError> {
        let tok = self.peek()?.clone();
        match tok.tok {
            Tok::Minus | Tok::Plus => {
                if depth >= MAX_DEPTH {
                    return syntax(tok.pos, format!("nesting deeper than {MAX_DEPTH}"));
                }
                self.next()?;
                let negative = matches!(tok.tok, Tok::Minus);
                // `-9223372036854775808` must not overflow: fold the sign into the literal
                if negative && let Tok::Int(digits) = &self.peek()?.tok {
                    let text = format!("-{digits}");
                    let t = self.next()?;
                    let v: i64 = text.parse().map_err(|_| DomainError::Syntax {
                        pos: t.pos,
                        msg: "integer literal out of range".into(),
                    })?;
                    return Ok(Node {
                        pos: tok.pos,
                        kind: NodeKind::Int(v),
                    });
                }
                let inner = self.unary(depth + 1)?;
                let kind = match inner.kind {
                    NodeKind::Int(i) if negative => {
                        NodeKind::Int(i.checked_neg().ok_or(DomainError::Syntax {
                            pos: tok.pos,
                            msg: "integer overflow".into(),
                        })?)
                    }
                    NodeKind::Float(f) if negative => NodeKind::Float(-f),
                    NodeKind::Bool(b) if negative => NodeKind::Int(-i64::from(b)),
                    k @ (NodeKind::Int(_) | NodeKind::Float(_)) => k,
                    NodeKind::Bool(b) => NodeKind::Int(i64::from(b)),
                    _ => {
                        return syntax(
                            tok.pos,
                            format!("bad operand type for unary sign: {}", inner.describe()),
                        );
                    }
                };
                Ok(Node { pos: tok.pos, kind })
            }
            _ => self.postfix(depth),
        }
    }

    fn postfix(&mut self, depth: usize) -> Result<Node, DomainError> {
        let tok = self.next()?;
        let pos = tok.pos;
        let node = match tok.tok {
            Tok::LBrack | Tok::LParen => {
                if depth >= MAX_DEPTH {
                    return syntax(pos, format!("nesting deeper than {MAX_DEPTH}"));
                }
                let is_tuple = matches!(tok.tok, Tok::LParen);
                self.sequence(pos, is_tuple, depth + 1)?
            }
            Tok::Str(mut s) => {
                // adjacent string literals are concatenated, as in Python
                while let Tok::Str(_) = self.peek()?.tok {
                    if let Tok::Str(more) = self.next()?.tok {
                        s.push_str(&more);
                    }
                }
                Node {
                    pos,
                    kind: NodeKind::Str(s),
                }
            }
            Tok::Int(digits) => {
                let v: i64 = digits.parse().map_err(|_| DomainError::Syntax {
                    pos,
                    msg: "integer literal out of range".into(),
                })?;
                Node {
                    pos,
                    kind: NodeKind::Int(v),
                }
            }
            Tok::Float(f) => Node {
                pos,
                kind: NodeKind::Float(f),
            },
            Tok::Name(name) => {
                let node = self.name(name, pos)?;
                let next = self.peek()?;
                return match next.tok {
                    Tok::LParen => syntax(next.pos, "function calls are not allowed"),
                    Tok::LBrack => syntax(next.pos, "subscripts are not allowed"),
                    _ => Ok(node),
                };
            }
            Tok::Eof => return syntax(pos, "unexpected end of input"),
            other => return syntax(pos, format!("unexpected {}", describe_tok(&other))),
        };
        // attribute access is only valid on names (handled in `name`)
        let next = self.peek()?;
        match next.tok {
            Tok::Dot => syntax(next.pos, "attribute access on a literal"),
            _ => Ok(node),
        }
    }

    fn name(&mut self, name: String, pos: usize) -> Result<Node, DomainError> {
        let keyword = match name.as_str() {
            "True" => Some(NodeKind::Bool(true)),
            "False" => Some(NodeKind::Bool(false)),
            "None" => Some(NodeKind::None),
            // JSON spellings, only for API domains (in Python they would be unknown names)
            "true" if !self.rule_mode() => Some(NodeKind::Bool(true)),
            "false" if !self.rule_mode() => Some(NodeKind::Bool(false)),
            "null" if !self.rule_mode() => Some(NodeKind::None),
            _ => None,
        };
        if let Some(kind) = keyword {
            return Ok(Node { pos, kind });
        }
        let mut chain = vec![name];
        while matches!(self.peek()?.tok, Tok::Dot) {
            let dot = self.next()?;
            match self.next()?.tok {
                Tok::Name(attr) => chain.push(attr),
                _ => return syntax(dot.pos, "expected an attribute name after '.'"),
            }
            if chain.len() > MAX_DEPTH {
                return syntax(dot.pos, "attribute chain too long");
            }
        }
        let dotted = chain.join(".");
        let Some(ctx) = self.ctx else {
            return Err(DomainError::UnknownName(dotted));
        };
        let parts: Vec<&str> = chain.iter().map(String::as_str).collect();
        match ctx.resolve(&parts) {
            Some(v) => Ok(Node::from_value(v, pos)),
            None => Err(DomainError::UnknownName(dotted)),
        }
    }

    /// Items of a list or tuple, after the opening bracket.
    fn sequence(&mut self, open: usize, is_tuple: bool, depth: usize) -> Result<Node, DomainError> {
        let close = if is_tuple { Tok::RParen } else { Tok::RBrack };
        let mut items = Vec::new();
        let mut saw_comma = false;
        loop {
            let t = self.peek()?;
            if t.tok == close {
                self.next()?;
                break;
            }
            if t.tok == Tok::Eof {
                let what = if is_tuple { "'('" } else { "'['" };
                return syntax(open, format!("{what} is never closed"));
            }
            if matches!(t.tok, Tok::RBrack | Tok::RParen) {
                let pos = t.pos;
                return syntax(pos, format!("unbalanced {}", describe_tok(&t.tok)));
            }
            items.push(self.expr(depth)?);
            let t = self.next()?;
            if t.tok == close {
                break;
            }
            match t.tok {
                Tok::Comma => saw_comma = true,
                Tok::Eof => {
                    let what = if is_tuple { "'('" } else { "'['" };
                    return syntax(open, format!("{what} is never closed"));
                }
                other => {
                    return syntax(
                        t.pos,
                        format!(
                            "expected ',' or the closing bracket, found {}",
                            describe_tok(&other)
                        ),
                    );
                }
            }
        }
        if is_tuple && items.len() == 1 && !saw_comma {
            // a parenthesised expression, not a tuple
            return Ok(items.pop().expect("one item"));
        }
        Ok(Node {
            pos: open,
            kind: NodeKind::List(items),
        })
    }
}

/// Parse and evaluate `text`. Without a context only literals are accepted.
pub(crate) fn parse_text(text: &str, ctx: Option<&dyn EvalContext>) -> Result<Node, DomainError> {
    let mut p = Parser {
        lexer: Lexer::new(text, ctx.is_none()),
        peeked: None,
        ctx,
    };
    if matches!(p.peek()?.tok, Tok::Eof) {
        return syntax(0, "empty domain text");
    }
    let node = p.expr(0)?;
    let t = p.next()?;
    if t.tok != Tok::Eof {
        return syntax(
            t.pos,
            format!("trailing {} after the domain", describe_tok(&t.tok)),
        );
    }
    Ok(node)
}

/// Convert a decoded JSON value (no positions: items are numbered by their index).
pub(crate) fn json_to_node(v: &serde_json::Value, depth: usize) -> Result<Node, DomainError> {
    if depth > MAX_DEPTH {
        return Err(DomainError::Malformed(format!(
            "nesting deeper than {MAX_DEPTH}"
        )));
    }
    let kind = match v {
        serde_json::Value::Null => NodeKind::None,
        serde_json::Value::Bool(b) => NodeKind::Bool(*b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                NodeKind::Int(i)
            } else if n.is_u64() {
                return Err(DomainError::InvalidValue(format!(
                    "integer out of range: {n}"
                )));
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() => NodeKind::Float(f),
                    _ => return Err(DomainError::InvalidValue(format!("invalid number {n}"))),
                }
            }
        }
        serde_json::Value::String(s) => NodeKind::Str(s.clone()),
        serde_json::Value::Array(a) => NodeKind::List(
            a.iter()
                .map(|x| json_to_node(x, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(_) => {
            return Err(DomainError::Malformed(
                "objects are not allowed in a domain".into(),
            ));
        }
    };
    Ok(Node { pos: 0, kind })
}

/// A domain being built from prefix notation; n-ary nodes keep a deque so that both
/// left- and right-nested chains of `&`/`|` are combined in linear time.
enum Building {
    Done(Domain),
    And(VecDeque<Domain>),
    Or(VecDeque<Domain>),
}

struct Item {
    b: Building,
    depth: usize,
}

impl Building {
    fn finish(self) -> Domain {
        match self {
            Building::Done(d) => d,
            Building::And(c) => Domain::And(c.into()),
            Building::Or(c) => Domain::Or(c.into()),
        }
    }
}

/// Combine `left` and `right` with AND (`is_and`) or OR, keeping the canonical form.
fn combine(left: Item, right: Item, is_and: bool) -> Item {
    let (zero, absorbing) = if is_and {
        (Domain::True, Domain::False)
    } else {
        (Domain::False, Domain::True)
    };
    let is_const = |b: &Building, c: &Domain| matches!(b, Building::Done(d) if d == c);
    if is_const(&left.b, &absorbing) || is_const(&right.b, &absorbing) {
        return Item {
            b: Building::Done(absorbing),
            depth: 1,
        };
    }
    if is_const(&left.b, &zero) {
        return right;
    }
    if is_const(&right.b, &zero) {
        return left;
    }
    // a side of the same kind is merged (its children move up), another side becomes a child
    let contribution = |i: &Item| match i.b {
        Building::And(_) if is_and => i.depth,
        Building::Or(_) if !is_and => i.depth,
        _ => i.depth + 1,
    };
    let depth = contribution(&left).max(contribution(&right));
    let into_deque = |b: Building| -> VecDeque<Domain> {
        match b {
            Building::And(c) if is_and => c,
            Building::Or(c) if !is_and => c,
            other => VecDeque::from([other.finish()]),
        }
    };
    let mut l = into_deque(left.b);
    let mut r = into_deque(right.b);
    let merged = if l.len() >= r.len() {
        l.extend(r);
        l
    } else {
        while let Some(d) = l.pop_back() {
            r.push_front(d);
        }
        r
    };
    Item {
        b: if is_and {
            Building::And(merged)
        } else {
            Building::Or(merged)
        },
        depth,
    }
}

fn item_depth(d: &Domain) -> usize {
    // only called on freshly built leaves and constants; bounded by MAX_DEPTH
    d.depth()
}

/// Convert an evaluated value into a domain (Odoo's `Domain.__new__` on a list).
pub(crate) fn node_to_domain(node: Node, depth: usize) -> Result<Domain, DomainError> {
    match node.kind {
        NodeKind::Bool(true) => return Ok(Domain::True),
        NodeKind::Bool(false) => return Ok(Domain::False),
        NodeKind::List(_) => {}
        _ => {
            return syntax(
                node.pos,
                format!("a domain must be a list, not {}", node.describe()),
            );
        }
    }
    let NodeKind::List(items) = node.kind else {
        unreachable!("checked above")
    };
    let list_pos = node.pos;
    let mut stack: Vec<Item> = Vec::new();
    for item in items.into_iter().rev() {
        let pos = item.pos;
        match item.kind {
            NodeKind::Str(s) if s == "&" || s == "|" => {
                let (Some(a), Some(b)) = (stack.pop(), stack.pop()) else {
                    return syntax(pos, format!("'{s}' is missing an operand"));
                };
                let c = combine(a, b, s == "&");
                if depth + c.depth > MAX_DEPTH {
                    return syntax(pos, format!("domain nested deeper than {MAX_DEPTH}"));
                }
                stack.push(c);
            }
            NodeKind::Str(s) if s == "!" => {
                let Some(a) = stack.pop() else {
                    return syntax(pos, "'!' is missing an operand");
                };
                let d = a.depth + 1;
                if depth + d > MAX_DEPTH {
                    return syntax(pos, format!("domain nested deeper than {MAX_DEPTH}"));
                }
                stack.push(Item {
                    b: Building::Done(Domain::Not(Box::new(a.b.finish()))),
                    depth: d,
                });
            }
            NodeKind::List(parts) if parts.len() == 3 => {
                let leaf = leaf_from_parts(parts, pos, depth)?;
                let d = item_depth(&leaf);
                stack.push(Item {
                    b: Building::Done(leaf),
                    depth: d,
                });
            }
            NodeKind::Str(s) => {
                return syntax(pos, format!("invalid item in domain: {s:?}"));
            }
            NodeKind::List(parts) => {
                return syntax(
                    pos,
                    format!(
                        "invalid item in domain: a condition has 3 elements, not {}",
                        parts.len()
                    ),
                );
            }
            _ => {
                return syntax(
                    pos,
                    format!(
                        "invalid item in domain: {}",
                        Node {
                            pos,
                            kind: item.kind
                        }
                        .describe()
                    ),
                );
            }
        }
    }
    // implicit AND of what remains, in order
    let mut acc: Option<Item> = None;
    while let Some(item) = stack.pop() {
        acc = Some(match acc {
            None => item,
            Some(left) => {
                let c = combine(left, item, true);
                if depth + c.depth > MAX_DEPTH {
                    return syntax(list_pos, format!("domain nested deeper than {MAX_DEPTH}"));
                }
                c
            }
        });
    }
    Ok(acc.map(|i| i.b.finish()).unwrap_or(Domain::True))
}

fn is_num(n: &Node, v: i64) -> bool {
    match n.kind {
        NodeKind::Int(i) => i == v,
        NodeKind::Bool(b) => i64::from(b) == v,
        NodeKind::Float(f) => f == v as f64,
        _ => false,
    }
}

fn leaf_from_parts(parts: Vec<Node>, pos: usize, depth: usize) -> Result<Domain, DomainError> {
    let mut it = parts.into_iter();
    let (Some(left), Some(op), Some(right)) = (it.next(), it.next(), it.next()) else {
        return syntax(pos, "a condition has 3 elements");
    };
    let op_text = match &op.kind {
        NodeKind::Str(s) => s.clone(),
        _ => {
            return syntax(
                op.pos,
                format!("the operator must be a string, not {}", op.describe()),
            );
        }
    };
    let path = match left.kind {
        NodeKind::Str(s) => s,
        _ => {
            // (1, '=', 1) and (0, '=', 1): the TRUE and FALSE leaves
            if op_text == "=" && is_num(&right, 1) {
                if is_num(&left, 1) {
                    return Ok(Domain::True);
                }
                if is_num(&left, 0) {
                    return Ok(Domain::False);
                }
            }
            return syntax(
                left.pos,
                format!("the field name must be a string, not {}", left.describe()),
            );
        }
    };
    if path.is_empty() {
        return syntax(left.pos, "empty field name");
    }
    let op = Operator::parse(&op_text)?;
    let value = if matches!(op, Operator::Any | Operator::NotAny) {
        match right.kind {
            NodeKind::List(_) | NodeKind::Bool(_) => {
                LeafValue::Domain(Box::new(node_to_domain(right, depth + 1)?))
            }
            _ => {
                return syntax(
                    right.pos,
                    format!("operator '{op}' expects a domain, not {}", right.describe()),
                );
            }
        }
    } else {
        LeafValue::Value(right.into_value())
    };
    Ok(Domain::Leaf(Leaf { path, op, value }))
}
