//! Evaluation context of `ir.rule.domain_force` and the few operations rules use.

use std::collections::HashMap;

use super::parse::{Node, NodeKind};
use super::{DomainError, Value};

/// Resolves the names of a rule's evaluation context (`IrRule._eval_context`): `user.id`,
/// `user.ids`, `user.partner_id.id`, `user.commercial_partner_id.id`, `user.all_group_ids.ids`,
/// `company_ids`, `company_id`, ... `path` is the attribute chain (`["user", "partner_id", "id"]`).
/// Return `None` for anything unknown: evaluation then fails with
/// [`DomainError::UnknownName`].
pub trait EvalContext {
    fn resolve(&self, path: &[&str]) -> Option<Value>;
}

/// A map from dotted names (`"user.partner_id.id"`) to values.
impl EvalContext for HashMap<String, Value> {
    fn resolve(&self, path: &[&str]) -> Option<Value> {
        self.get(&path.join(".")).cloned()
    }
}

impl<T: EvalContext + ?Sized> EvalContext for &T {
    fn resolve(&self, path: &[&str]) -> Option<Value> {
        (**self).resolve(path)
    }
}

/// Python `a + b` on the values rules use: list concatenation (lists and tuples alike), numbers,
/// strings. Anything else is an error, as in Python.
pub(crate) fn add_nodes(a: Node, b: Node, pos: usize) -> Result<Node, DomainError> {
    let kind = match (a.kind, b.kind) {
        (NodeKind::List(mut x), NodeKind::List(y)) => {
            x.extend(y);
            NodeKind::List(x)
        }
        (NodeKind::Str(mut x), NodeKind::Str(y)) => {
            x.push_str(&y);
            NodeKind::Str(x)
        }
        (x, y) => match (num(&x), num(&y)) {
            (Some(Num::I(p)), Some(Num::I(q))) => {
                NodeKind::Int(p.checked_add(q).ok_or(DomainError::Syntax {
                    pos,
                    msg: "integer overflow".into(),
                })?)
            }
            (Some(p), Some(q)) => NodeKind::Float(p.as_f64() + q.as_f64()),
            _ => {
                return Err(DomainError::Syntax {
                    pos,
                    msg: "unsupported operand types for +".into(),
                });
            }
        },
    };
    Ok(Node { pos: a.pos, kind })
}

enum Num {
    I(i64),
    F(f64),
}

impl Num {
    fn as_f64(&self) -> f64 {
        match self {
            Num::I(i) => *i as f64,
            Num::F(f) => *f,
        }
    }
}

fn num(k: &NodeKind) -> Option<Num> {
    match k {
        NodeKind::Int(i) => Some(Num::I(*i)),
        NodeKind::Bool(b) => Some(Num::I(i64::from(*b))),
        NodeKind::Float(f) => Some(Num::F(*f)),
        _ => None,
    }
}
