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
    ("res.partner", "is_in_call", "base.group_system"),
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

/// Field-level `groups=` of the mail mixins (`mail.thread`, `mail.activity.mixin`): every model
/// that has the field got it from them.
pub const MIXIN_FIELD_GROUPS: &[(&str, &str)] = &[
    ("activity_ids", "base.group_user"),
    ("activity_state", "base.group_user"),
    ("activity_user_id", "base.group_user"),
    ("activity_type_id", "base.group_user"),
    ("activity_date_deadline", "base.group_user"),
    ("my_activity_date_deadline", "base.group_user"),
    ("activity_summary", "base.group_user"),
    ("message_follower_ids", "base.group_user"),
    ("message_partner_ids", "base.group_user"),
    ("message_attachment_count", "base.group_user"),
];

/// The group xml ids restricting the fields of `model`: the model's own list, then the mixins'
/// (the caller applies them to the fields the model has).
pub fn field_groups(model: &str) -> impl Iterator<Item = (&'static str, Vec<&'static str>)> + '_ {
    FIELD_GROUPS
        .iter()
        .filter(move |(m, _, _)| *m == model)
        .map(|(_, f, g)| (*f, g.split(',').map(str::trim).collect()))
        .chain(
            MIXIN_FIELD_GROUPS
                .iter()
                .filter(move |(f, _)| !FIELD_GROUPS.iter().any(|(m, g, _)| *m == model && g == f))
                .map(|(f, g)| (*f, g.split(',').map(str::trim).collect())),
        )
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

/// Where the gateway reads a field from: its own SQL, or Odoo (non-stored computed fields and
/// binaries: `api-gateway serve --odoo-url`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Read in SQL: a column, a path of columns (`_inherits`, related), or `display_name`.
    Sql,
    /// Filled by Odoo's own `read()` (with `--odoo-url`): binary fields (their bytes live in
    /// Odoo's filestore) and computed fields that are not stored.
    Odoo,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Sql => "sql",
            Source::Odoo => "odoo",
        }
    }
}

/// Odoo's `_has_field_access`: a field without groups is for everyone; one with groups for
/// their members (and the superuser). An xml id that resolves to no group is written `-1`.
pub fn visible(field_groups: &[i32], user_groups: &[i64], superuser: bool) -> bool {
    field_groups.is_empty()
        || superuser
        || field_groups
            .iter()
            .any(|g| user_groups.contains(&i64::from(*g)))
}

/// One field as `GET /api/v1/<model>/fields` and `api_gateway.fields_get` describe it: Odoo's
/// `fields_get` attributes the gateway knows, plus `source`.
#[derive(Debug, Clone)]
pub struct Description {
    pub name: String,
    pub ttype: String,
    /// Label, in the request's language (en_US fallback).
    pub string: String,
    pub help: Option<String>,
    pub required: bool,
    pub readonly: bool,
    /// `ir_model_fields.store` (false for `_inherits` and related fields, as Odoo says).
    pub store: bool,
    pub relation: Option<String>,
    pub relation_field: Option<String>,
    /// `[value, label]` pairs of a selection field, when `ir_model_fields_selection` has them
    /// (selections computed by a Python method are not recorded there).
    pub selection: Option<Vec<(String, String)>>,
    pub translate: bool,
    pub company_dependent: bool,
    pub related: Option<String>,
    pub source: Source,
}

const RELATIONAL: &[&str] = &["many2one", "one2many", "many2many"];
const TEXTUAL: &[&str] = &["char", "text", "html"];

/// The JSON object of one field, keyed like Odoo's `fields_get` (attributes that do not apply
/// to a type are left out, as Odoo leaves them out).
pub fn describe(d: &Description) -> serde_json::Value {
    use serde_json::{Value, json};
    let mut o = serde_json::Map::new();
    o.insert("name".into(), json!(d.name));
    o.insert("type".into(), json!(d.ttype));
    o.insert("string".into(), json!(d.string));
    if let Some(help) = d.help.as_deref().filter(|h| !h.is_empty()) {
        o.insert("help".into(), json!(help));
    }
    o.insert("required".into(), json!(d.required));
    o.insert("readonly".into(), json!(d.readonly));
    o.insert("store".into(), json!(d.store));
    o.insert("company_dependent".into(), json!(d.company_dependent));
    if RELATIONAL.contains(&d.ttype.as_str())
        && let Some(rel) = &d.relation
    {
        o.insert("relation".into(), json!(rel));
    }
    if d.ttype == "one2many"
        && let Some(inverse) = &d.relation_field
    {
        o.insert("relation_field".into(), json!(inverse));
    }
    if let Some(sel) = &d.selection {
        o.insert(
            "selection".into(),
            Value::Array(sel.iter().map(|(v, l)| json!([v, l])).collect()),
        );
    }
    if TEXTUAL.contains(&d.ttype.as_str()) {
        o.insert("translate".into(), json!(d.translate));
    }
    if let Some(related) = &d.related {
        o.insert("related".into(), json!(related));
    }
    o.insert("source".into(), json!(d.source.as_str()));
    Value::Object(o)
}

/// Ends the refusal of a flat read asking for a field whose source is Odoo (22023): the front
/// (`--odoo-url`) tells by it that a field list it read in SQL alone before now needs Odoo.
pub const ODOO_ONLY: &str = "only Odoo can give it";

/// The source of field `name` of type `ttype`; `sql_path` says whether SQL can reach its value.
pub fn source(name: &str, ttype: &str, sql_path: bool) -> Source {
    if name == "display_name" || (sql_path && ttype != "binary") {
        Source::Sql
    } else {
        Source::Odoo
    }
}

/// What a search answers for a user whom no access right lets read the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WithoutAccess {
    /// Odoo's AccessError (42501).
    Refuse,
    /// No records: the model's `_search` filters the rows instead of checking the right.
    Empty,
}

/// `ir.attachment._search` checks the access right only when the domain pins `res_model` to one
/// to five models (it then searches through `super()._search`); otherwise it fetches as superuser
/// and keeps what `_filtered_access('read')` allows, which is nothing without the right.
pub fn search_without_access(model: &str, domain: &Domain) -> WithoutAccess {
    if model != "ir.attachment" {
        return WithoutAccess::Refuse;
    }
    let pinned = pinned_values(domain, "res_model");
    if pinned.as_ref().is_some_and(|v| (1..=5).contains(&v.len())) {
        WithoutAccess::Refuse
    } else {
        WithoutAccess::Empty
    }
}

/// The values a domain pins `field` to at its top level (Odoo's `condition_values`): the
/// intersection of its `=`/`in` conditions on the field, None when none constrains it.
fn pinned_values(domain: &Domain, field: &str) -> Option<Vec<String>> {
    let leaves: Vec<&Leaf> = match domain {
        Domain::Leaf(l) => vec![l],
        Domain::And(v) => v
            .iter()
            .filter_map(|d| match d {
                Domain::Leaf(l) => Some(l),
                _ => None,
            })
            .collect(),
        _ => vec![],
    };
    let mut out: Option<Vec<String>> = None;
    for l in leaves.iter().filter(|l| l.path == field) {
        let values: Vec<String> = match (&l.op, &l.value) {
            (Operator::Eq, LeafValue::Value(Value::Str(s))) => vec![s.clone()],
            (Operator::In, LeafValue::Value(Value::List(items))) => items
                .iter()
                .filter_map(|v| match v {
                    Value::Str(s) => Some(s.clone()),
                    _ => None,
                })
                .collect(),
            _ => continue,
        };
        out = Some(match out {
            None => values,
            Some(prev) => prev.into_iter().filter(|v| values.contains(v)).collect(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse;

    #[test]
    fn fields_with_groups_are_for_their_members() {
        assert!(visible(&[], &[], false));
        assert!(visible(&[3, 4], &[1, 4], false));
        assert!(!visible(&[3], &[1, 4], false));
        assert!(!visible(&[-1], &[1, 4], false));
        assert!(visible(&[-1], &[], true));
    }

    #[test]
    fn descriptions_keep_only_the_attributes_of_their_type() {
        let d = Description {
            name: "name".into(),
            ttype: "char".into(),
            string: "Name".into(),
            help: Some(String::new()),
            required: true,
            readonly: false,
            store: false,
            relation: Some("ignored".into()),
            relation_field: None,
            selection: None,
            translate: true,
            company_dependent: false,
            related: Some("product_tmpl_id.name".into()),
            source: Source::Sql,
        };
        let v = describe(&d);
        assert_eq!(v["string"], "Name");
        assert_eq!(v["translate"], true);
        assert_eq!(v["source"], "sql");
        assert!(v.get("help").is_none() && v.get("relation").is_none());
        let m2o = describe(&Description {
            ttype: "many2one".into(),
            relation: Some("res.partner".into()),
            help: Some("Who".into()),
            source: Source::Odoo,
            ..d
        });
        assert_eq!(m2o["relation"], "res.partner");
        assert_eq!(m2o["help"], "Who");
        assert_eq!(m2o["source"], "odoo");
        assert!(m2o.get("translate").is_none());
    }

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
        let product: Vec<_> = field_groups("product.product").collect();
        assert!(
            product
                .iter()
                .any(|(f, g)| *f == "activity_ids" && g == &["base.group_user"])
        );
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

    #[test]
    fn sources() {
        assert_eq!(source("display_name", "char", false), Source::Sql);
        assert_eq!(source("name", "char", true), Source::Sql);
        assert_eq!(source("lst_price", "float", false), Source::Odoo);
        assert_eq!(source("image_128", "binary", true), Source::Odoo);
        assert_eq!(source("image_128", "binary", false), Source::Odoo);
    }

    #[test]
    fn attachment_searches_without_the_right_are_empty_unless_res_model_is_pinned() {
        let d = |s: &str| parse(s).unwrap();
        let w = |m: &str, s: &str| search_without_access(m, &d(s));
        assert_eq!(w("res.partner", "[]"), WithoutAccess::Refuse);
        assert_eq!(w("ir.attachment", "[]"), WithoutAccess::Empty);
        assert_eq!(w("ir.attachment", "[('id','>',0)]"), WithoutAccess::Empty);
        assert_eq!(
            w("ir.attachment", "[('res_model','=','res.partner')]"),
            WithoutAccess::Refuse
        );
        assert_eq!(
            w(
                "ir.attachment",
                "[('res_model','in',['a','b']),('name','=','x')]"
            ),
            WithoutAccess::Refuse
        );
        assert_eq!(
            w(
                "ir.attachment",
                "[('res_model','in',['a','b','c','d','e','f'])]"
            ),
            WithoutAccess::Empty
        );
        assert_eq!(
            w("ir.attachment", "['|',('res_model','=','a'),('id','=',1)]"),
            WithoutAccess::Empty
        );
        assert_eq!(
            w("ir.attachment", "[('res_model','!=','a')]"),
            WithoutAccess::Empty
        );
    }
}
