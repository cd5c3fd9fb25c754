//! Odoo's record rules for one user and one operation, combined as `ir.rule._compute_domain`
//! does (odoo/addons/base/models/ir_rule.py): global rules ANDed; group rules ORed, then ANDed
//! with them; the rules of an `_inherits` parent applied through the delegation field.
use crate::domain::{self, Domain, DomainError, EvalContext, Value};
use std::collections::HashMap;

/// `_inherits` delegations whose parent rules apply to the child: (child, parent, field).
/// `ir_model` does not record them, so the well-known ones are listed here.
pub const INHERITS: &[(&str, &str, &str)] = &[
    ("res.users", "res.partner", "partner_id"),
    ("product.product", "product.template", "product_tmpl_id"),
];

/// One `ir.rule` row: (model, id, name, domain_force, global).
pub type Rule = (String, i32, String, String, bool);

/// What a rule's domain may read of the user (`user.*`, `company_id`, `company_ids`).
pub struct RuleUser<'a> {
    pub uid: i32,
    pub partner_id: Option<i64>,
    pub commercial_partner_id: Option<i64>,
    pub company_id: i64,
    pub company_ids: &'a [i64],
    pub groups: &'a [i64],
}

/// The names a rule's domain is evaluated with (`safe_eval` context of `_compute_domain`).
pub fn eval_context(u: &RuleUser) -> HashMap<String, Value> {
    let int = |v: Option<i64>| v.map(Value::Int).unwrap_or(Value::Bool(false));
    let ints = |v: &[i64]| Value::List(v.iter().copied().map(Value::Int).collect());
    let mut m = HashMap::new();
    m.insert("user.id".into(), Value::Int(i64::from(u.uid)));
    m.insert("user.ids".into(), ints(&[i64::from(u.uid)]));
    for (name, v) in [
        ("partner_id", u.partner_id),
        ("commercial_partner_id", u.commercial_partner_id),
    ] {
        m.insert(format!("user.{name}.id"), int(v));
        m.insert(
            format!("user.{name}.ids"),
            ints(&v.into_iter().collect::<Vec<_>>()),
        );
    }
    m.insert("user.company_id.id".into(), Value::Int(u.company_id));
    m.insert("user.company_ids.ids".into(), ints(u.company_ids));
    m.insert("user.all_group_ids.ids".into(), ints(u.groups));
    m.insert("company_ids".into(), ints(u.company_ids));
    m.insert("company_id".into(), Value::Int(u.company_id));
    m
}

/// A rule the gateway cannot evaluate: the operation fails closed, naming it.
#[derive(Debug, PartialEq)]
pub struct Unenforceable {
    pub id: i32,
    pub name: String,
    pub why: String,
}

/// The record-rule domain of `model` from `rules` (the model's and its `_inherits` parents').
/// `adjust(rule_model, domain)` may rewrite each parsed rule (the caller resolves company
/// hierarchies there).
pub fn combine(
    model: &str,
    rules: &[Rule],
    ctx: &dyn EvalContext,
    mut adjust: impl FnMut(&str, Domain) -> Domain,
) -> Result<Domain, Unenforceable> {
    let mut globals = vec![];
    let mut parents: Vec<(&str, Vec<Domain>, Vec<Domain>)> = vec![];
    let mut groups = vec![];
    for (rule_model, id, name, text, global) in rules {
        let dom = domain::parse_rule(text, ctx).map_err(|e| Unenforceable {
            id: *id,
            name: name.clone(),
            why: e.to_string(),
        })?;
        let dom = adjust(rule_model, dom);
        let (g, grp) = if rule_model == model {
            (&mut globals, &mut groups)
        } else {
            let at = match parents.iter().position(|p| p.0 == rule_model) {
                Some(i) => i,
                None => {
                    parents.push((rule_model, vec![], vec![]));
                    parents.len() - 1
                }
            };
            let p = &mut parents[at];
            (&mut p.1, &mut p.2)
        };
        if *global { g.push(dom) } else { grp.push(dom) }
    }
    for (parent, g, grp) in parents {
        let field = INHERITS
            .iter()
            .find(|(m, p, _)| *m == model && *p == parent)
            .map_or("id", |x| x.2);
        let mut parts = g;
        if !grp.is_empty() {
            parts.push(domain::or(grp));
        }
        globals.push(Domain::Leaf(domain::Leaf {
            path: field.to_string(),
            op: domain::Operator::Any,
            value: domain::LeafValue::Domain(Box::new(domain::and(parts))),
        }));
    }
    if !groups.is_empty() {
        globals.push(domain::or(groups));
    }
    Ok(domain::and(globals))
}

/// The first rule of `model` that `check` refuses (or that does not parse): (id, name, why).
/// None when no single rule is at fault.
pub fn culprit(
    model: &str,
    rules: &[Rule],
    ctx: &dyn EvalContext,
    check: impl Fn(&Domain) -> Option<DomainError>,
) -> Option<Unenforceable> {
    rules
        .iter()
        .filter(|r| r.0 == model)
        .find_map(|(_, id, name, text, _)| {
            let why = match domain::parse_rule(text, ctx) {
                Err(e) => Some(e.to_string()),
                Ok(d) => check(&d).map(|e| e.to_string()),
            }?;
            Some(Unenforceable {
                id: *id,
                name: name.clone(),
                why,
            })
        })
}

/// `(<many2one to res.company>, 'parent_of', ids)`, as multi-company rules write it, becomes
/// `(…, 'in', <ids and their ancestors>)`: the same records, without a recursive query in every
/// data statement. `field` gives a field of the rule's model (asked only for `parent_of`
/// leaves; None: unknown, left as it is); `ancestors` gives the companies and all their parents.
pub fn resolve_company_parents(
    d: Domain,
    field: &dyn Fn(&str) -> Option<domain::FieldInfo>,
    ancestors: &dyn Fn(&[i64]) -> Vec<i64>,
) -> Domain {
    let to_company = |name: &str| {
        field(name)
            .is_some_and(|f| f.ttype == "many2one" && f.relation.as_deref() == Some("res.company"))
    };
    let recurse = |x| resolve_company_parents(x, field, ancestors);
    match d {
        Domain::And(v) => Domain::And(v.into_iter().map(recurse).collect()),
        Domain::Or(v) => Domain::Or(v.into_iter().map(recurse).collect()),
        Domain::Not(x) => Domain::Not(Box::new(recurse(*x))),
        Domain::Leaf(leaf) if leaf.op == domain::Operator::ParentOf => {
            let ids: Option<Vec<i64>> = match &leaf.value {
                domain::LeafValue::Value(Value::Int(i)) => Some(vec![*i]),
                domain::LeafValue::Value(Value::List(l)) => l
                    .iter()
                    .map(|v| match v {
                        Value::Int(i) => Some(*i),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            };
            match ids {
                Some(ids) if !ids.is_empty() && to_company(&leaf.path) => {
                    Domain::Leaf(domain::Leaf {
                        path: leaf.path,
                        op: domain::Operator::In,
                        value: domain::LeafValue::Value(Value::List(
                            ancestors(&ids).into_iter().map(Value::Int).collect(),
                        )),
                    })
                }
                _ => Domain::Leaf(leaf),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(model: &str, id: i32, text: &str, global: bool) -> Rule {
        (model.into(), id, format!("rule {id}"), text.into(), global)
    }

    fn user() -> HashMap<String, Value> {
        eval_context(&RuleUser {
            uid: 7,
            partner_id: Some(30),
            commercial_partner_id: None,
            company_id: 1,
            company_ids: &[1, 3],
            groups: &[10, 11],
        })
    }

    fn text(d: &Domain) -> String {
        format!("{d:?}")
    }

    #[test]
    fn the_context_has_what_rules_read() {
        let c = user();
        assert_eq!(c["user.id"], Value::Int(7));
        assert_eq!(c["user.partner_id.id"], Value::Int(30));
        assert_eq!(c["user.commercial_partner_id.id"], Value::Bool(false));
        assert_eq!(c["user.commercial_partner_id.ids"], Value::List(vec![]));
        assert_eq!(
            c["company_ids"],
            Value::List(vec![Value::Int(1), Value::Int(3)])
        );
        assert_eq!(
            c["user.all_group_ids.ids"],
            Value::List(vec![Value::Int(10), Value::Int(11)])
        );
    }

    #[test]
    fn globals_are_anded_and_group_rules_ored() {
        let c = user();
        let rules = [
            rule("m", 1, "[('a', '=', 1)]", true),
            rule("m", 2, "[('b', '=', 2)]", false),
            rule("m", 3, "[('c', '=', user.id)]", false),
            rule("m", 4, "[('company_id', 'in', company_ids)]", true),
        ];
        let got = combine("m", &rules, &c, |_, d| d).unwrap();
        let want = domain::and(vec![
            domain::parse_rule("[('a', '=', 1)]", &c).unwrap(),
            domain::parse_rule("[('company_id', 'in', [1, 3])]", &c).unwrap(),
            domain::or(vec![
                domain::parse_rule("[('b', '=', 2)]", &c).unwrap(),
                domain::parse_rule("[('c', '=', 7)]", &c).unwrap(),
            ]),
        ]);
        assert_eq!(text(&got), text(&want));
    }

    #[test]
    fn parent_rules_apply_through_the_delegation_field() {
        let c = user();
        let rules = [
            rule("product.template", 5, "[('x', '=', 1)]", true),
            rule("product.template", 6, "[('y', '=', 2)]", false),
        ];
        let got = combine("product.product", &rules, &c, |_, d| d).unwrap();
        let Domain::Leaf(leaf) = &got else {
            panic!("{got:?}")
        };
        assert_eq!(leaf.path, "product_tmpl_id");
        assert_eq!(leaf.op, domain::Operator::Any);
        let inner = domain::and(vec![
            domain::parse_rule("[('x', '=', 1)]", &c).unwrap(),
            domain::or(vec![domain::parse_rule("[('y', '=', 2)]", &c).unwrap()]),
        ]);
        assert_eq!(
            text(&got),
            text(&Domain::Leaf(domain::Leaf {
                path: "product_tmpl_id".into(),
                op: domain::Operator::Any,
                value: domain::LeafValue::Domain(Box::new(inner)),
            }))
        );
    }

    #[test]
    fn adjust_sees_every_rule_with_its_model() {
        let c = user();
        let rules = [
            rule("res.partner", 1, "[('a', '=', 1)]", true),
            rule("res.users", 2, "[('b', '=', 2)]", true),
        ];
        let mut seen = vec![];
        combine("res.users", &rules, &c, |m, d| {
            seen.push(m.to_string());
            d
        })
        .unwrap();
        assert_eq!(seen, ["res.partner", "res.users"]);
    }

    #[test]
    fn a_rule_that_does_not_parse_is_named() {
        let c = user();
        let rules = [
            rule("m", 1, "[('a', '=', 1)]", true),
            rule("m", 9, "[('a', '=', env.nope)]", true),
        ];
        let e = combine("m", &rules, &c, |_, d| d).unwrap_err();
        assert_eq!((e.id, e.name.as_str()), (9, "rule 9"));
        assert!(!e.why.is_empty());
        let e = culprit("m", &rules, &c, |_| None).unwrap();
        assert_eq!(e.id, 9);
        // Rules of other models are not blamed; a check may name one that parses.
        assert!(culprit("other", &rules, &c, |_| None).is_none());
        let e = culprit("m", &rules[..1], &c, |_| {
            Some(DomainError::InvalidValue("no".into()))
        })
        .unwrap();
        assert_eq!(e.id, 1);
    }

    #[test]
    fn parent_of_a_company_becomes_in_its_ancestors() {
        let d = domain::parse(
            "['|', ('company_id', 'parent_of', [3]), '!', ('company_id', 'parent_of', 7), ('partner_id', 'parent_of', [3])]",
        )
        .unwrap();
        let model = domain::ModelInfo::new("x.doc", "x_doc")
            .with(domain::FieldInfo::many2one("company_id", "res.company"))
            .with(domain::FieldInfo::many2one("partner_id", "res.partner"));
        let ancestors = |ids: &[i64]| ids.iter().flat_map(|i| [*i, 1]).collect();
        let unknown = resolve_company_parents(d.clone(), &|_| None, &ancestors);
        assert_eq!(unknown, d, "an unknown model's rule is left as it is");
        let out = resolve_company_parents(d, &|f| model.fields.get(f).cloned(), &ancestors);
        let expected = domain::parse(
            "['|', ('company_id', 'in', [3, 1]), '!', ('company_id', 'in', [7, 1]), ('partner_id', 'parent_of', [3])]",
        )
        .unwrap();
        assert_eq!(out, expected);
    }
}
