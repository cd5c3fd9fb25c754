//! Facts about Odoo 19 models that `ir_model_fields` does not record but that change what a read
//! returns: one2many domains written in Python and conditions a model's `_search` adds.
use crate::domain::{Domain, Leaf, LeafValue, Operator, Value};

/// Field domains Odoo keeps in Python (`fields.One2many(..., domain=...)`): (model, field,
/// domain). Reading the field returns only the lines matching it.
pub const X2MANY_DOMAINS: &[(&str, &str, &str)] = &[
    (
        "account.move",
        "invoice_line_ids",
        "[('display_type', 'in', ('product', 'line_section', 'line_subsection', 'line_note'))]",
    ),
    (
        "account.move",
        "journal_line_ids",
        "[('display_type', 'not in', ('line_section', 'line_subsection', 'line_note'))]",
    ),
];

/// Field-level `groups=` of the models the read-fidelity suite covers (Odoo registers them in
/// Python only; `ir_model_fields_group_rel` holds the groups of custom fields): (model, field,
/// comma-separated group xml ids). A user in none of the groups is refused the field.
pub const FIELD_GROUPS: &[(&str, &str, &str)] = &[
    ("account.move", "invoice_has_outstanding", INVOICING),
    (
        "account.move",
        "invoice_outstanding_credits_debits_widget",
        INVOICING,
    ),
    ("account.move", "invoice_payments_widget", INVOICING),
    ("account.move", "partner_credit_warning", INVOICING),
    ("product.product", "standard_price", "base.group_user"),
    ("product.template", "standard_price", "base.group_user"),
    ("res.partner", "account_move_count", INVOICING),
    ("res.partner", "credit", INVOICING),
    ("res.partner", "credit_limit", INVOICING),
    ("res.partner", "credit_to_invoice", INVOICING),
    ("res.partner", "debit", INVOICING),
    (
        "res.partner",
        "sale_order_count",
        "sales_team.group_sale_salesman",
    ),
    ("res.partner", "show_credit_limit", INVOICING),
    ("res.partner", "signup_type", "base.group_erp_manager"),
    ("res.partner", "total_invoiced", INVOICING),
    ("res.partner", "use_partner_credit_limit", INVOICING),
    ("res.users", "outgoing_mail_server_id", "base.group_user"),
    ("res.users", "outgoing_mail_server_type", "base.group_user"),
    ("res.users", "presence_ids", "base.group_system"),
    (
        "sale.order",
        "authorized_transaction_ids",
        "account.group_account_invoice",
    ),
    ("sale.order", "tag_ids", "sales_team.group_sale_salesman"),
    (
        "sale.order",
        "transaction_ids",
        "account.group_account_invoice",
    ),
];

const INVOICING: &str = "account.group_account_invoice,account.group_account_readonly";

/// The group xml ids restricting `model.field`, if listed.
pub fn field_groups(model: &str) -> impl Iterator<Item = (&'static str, Vec<&'static str>)> + '_ {
    FIELD_GROUPS
        .iter()
        .filter(move |(m, _, _)| *m == model)
        .map(|(_, f, g)| (*f, g.split(',').map(str::trim).collect()))
}

/// The domain of `model.field` as text, if Odoo gives it one.
pub fn x2many_domain(model: &str, field: &str) -> Option<&'static str> {
    X2MANY_DOMAINS
        .iter()
        .find(|(m, f, _)| *m == model && *f == field)
        .map(|(_, _, d)| *d)
}

fn names_field(domain: &Domain, names: &[&str]) -> bool {
    match domain {
        Domain::True | Domain::False => false,
        Domain::And(v) | Domain::Or(v) => v.iter().any(|d| names_field(d, names)),
        Domain::Not(d) => names_field(d, names),
        Domain::Leaf(l) => {
            names.contains(&l.path.as_str())
                || matches!(&l.value, LeafValue::Domain(d) if names_field(d, names))
        }
    }
}

/// What a model's `_search` adds to every search: `ir.attachment` hides the attachments of binary
/// fields (`res_field = False`) unless the domain names `res_field` or `id` at its top level.
/// (Other `_search` overrides of the demo database's modules add access checks, not defaults:
/// `mail.message`, `mail.activity`, `mail.scheduled.message`; or rewrite names: `account.tax`.)
pub fn search_default(model: &str, domain: &Domain) -> Option<Domain> {
    match model {
        "ir.attachment" if !names_field(domain, &["res_field", "id"]) => Some(Domain::Leaf(Leaf {
            path: "res_field".into(),
            op: Operator::Eq,
            value: LeafValue::Value(Value::Bool(false)),
        })),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse;

    #[test]
    fn attachments_of_binary_fields_are_hidden_unless_asked_for() {
        let d = |s: &str| parse(s).unwrap();
        assert!(search_default("ir.attachment", &d("[]")).is_some());
        assert!(search_default("ir.attachment", &d("[('res_model','=','res.partner')]")).is_some());
        assert!(search_default("ir.attachment", &d("[('res_field','!=',False)]")).is_none());
        assert!(
            search_default("ir.attachment", &d("['|',('id','=',3),('name','=','x')]")).is_none()
        );
        assert!(search_default("res.partner", &d("[]")).is_none());
    }

    #[test]
    fn field_groups_are_listed_once_with_xml_ids() {
        for (i, (m, f, g)) in FIELD_GROUPS.iter().enumerate() {
            assert!(
                FIELD_GROUPS[i + 1..]
                    .iter()
                    .all(|(n, h, _)| (n, h) != (m, f)),
                "{m}.{f}"
            );
            assert!(
                g.split(',').all(|x| x.trim().split_once('.').is_some()),
                "{m}.{f}"
            );
        }
        let partner: Vec<_> = field_groups("res.partner").collect();
        assert!(
            partner
                .iter()
                .any(|(f, g)| *f == "credit_limit" && g.len() == 2)
        );
    }

    #[test]
    fn x2many_domains_parse() {
        for (m, f, text) in X2MANY_DOMAINS {
            assert!(parse(text).is_ok(), "{m}.{f}");
        }
        assert!(x2many_domain("account.move", "invoice_line_ids").is_some());
        assert!(x2many_domain("account.move", "line_ids").is_none());
    }
}
