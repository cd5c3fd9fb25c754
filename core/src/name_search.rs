//! Odoo 19's name search as data: what a condition on `display_name` (and a relational field
//! compared with a string, which Odoo turns into `(field, 'any', [('display_name', op, v)])`)
//! searches, model by model. The default is `BaseModel._search_display_name`: the fields of
//! `_rec_names_search`, else `_rec_name`, ORed for a positive operator and ANDed for a negative
//! one, a relational field being searched on its own display name. The models of the shipped
//! Odoo modules that override `_search_display_name` are listed in [`special`]; the compiler
//! (`domain::compile`) turns both into SQL.

/// `_rec_names_search` of the models that define it (Odoo 19, the modules of a standard
/// database: base, account, analytic, mail, payment, product, sale, ...).
pub const REC_NAMES_SEARCH: &[(&str, &[&str])] = &[
    ("account.analytic.account", &["name", "code"]),
    ("account.journal", &["name", "code"]),
    ("account.move", &["name", "partner_id.name", "ref"]),
    ("account.move.line", &["name", "move_id", "product_id"]),
    ("account.tax", &["name", "description", "invoice_label"]),
    (
        "discuss.channel.member",
        &["channel_id", "partner_id", "guest_id"],
    ),
    ("ir.model", &["name", "model"]),
    ("ir.module.module", &["name", "shortdesc", "summary"]),
    ("mail.alias", &["alias_name", "alias_domain"]),
    (
        "payment.token",
        &["payment_details", "partner_id", "provider_id"],
    ),
    ("product.pricelist", &["name", "currency_id"]),
    (
        "product.template.attribute.line",
        &["attribute_id", "value_ids"],
    ),
    ("res.bank", &["name", "bic"]),
    ("res.country", &["name", "code"]),
    ("res.country.state", &["name", "code"]),
    ("res.currency", &["name", "full_name"]),
    ("res.currency.rate", &["name", "rate"]),
    ("res.device.log", &["platform", "browser"]),
    ("res.device", &["platform", "browser"]),
    (
        "res.partner",
        &["complete_name", "email", "ref", "vat", "company_registry"],
    ),
    ("sale.order.line", &["name", "order_id.name"]),
];

/// Explicit `_rec_name` of the models that set one (the others use `name`, else `x_name`).
pub const REC_NAME: &[(&str, &str)] = &[
    ("account.analytic.distribution.model", "create_date"),
    ("account.analytic.plan", "complete_name"),
    ("account.fiscal.position.account", "position_id"),
    ("account.invoice.report", "invoice_date"),
    ("account.report.expression", "report_line_name"),
    ("base.module.install.request", "module_id"),
    ("base.module.install.review", "module_id"),
    ("crm.team.member", "user_id"),
    ("discuss.channel.rtc.session", "channel_member_id"),
    ("ir.actions.act_window.view", "view_id"),
    ("ir.actions.todo", "action_id"),
    ("ir.config_parameter", "key"),
    ("ir.cron.progress", "cron_id"),
    ("ir.cron.trigger", "cron_id"),
    ("ir.default", "field_id"),
    ("ir.model.fields", "field_description"),
    ("ir.module.module", "shortdesc"),
    ("ir.sequence.date_range", "sequence_id"),
    ("ir.ui.view.custom", "user_id"),
    ("mail.activity", "summary"),
    ("mail.activity.plan.template", "summary"),
    ("mail.activity.schedule.line", "activity_schedule_id"),
    ("mail.alias", "alias_name"),
    ("mail.blacklist", "email"),
    ("mail.canned.response", "source"),
    ("mail.ice.server", "uri"),
    ("mail.mail", "subject"),
    ("mail.message", "subject"),
    ("mail.message.schedule", "mail_message_id"),
    ("mail.notification", "res_partner_id"),
    ("mail.tracking.value", "field_id"),
    ("onboarding.onboarding.step", "title"),
    ("onboarding.progress", "onboarding_id"),
    ("onboarding.progress.step", "step_id"),
    ("payment.transaction", "reference"),
    ("phone.blacklist", "number"),
    ("privacy.log", "user_id"),
    ("product.category", "complete_name"),
    ("product.supplierinfo", "partner_id"),
    ("product.template.attribute.line", "attribute_id"),
    ("product.uom", "barcode"),
    ("res.groups", "full_name"),
    ("res.partner.bank", "acc_number"),
    ("res.users.deletion", "user_id"),
    ("res.users.settings", "user_id"),
    ("sale.report", "date"),
    ("sms.sms", "number"),
    ("utm.campaign", "title"),
];

/// The fields Odoo's default `_search_display_name` searches on `model`, or None when the model
/// declares neither `_rec_names_search` nor an explicit `_rec_name` (then `name` / `x_name`).
pub fn search_fields(model: &str) -> Option<Vec<&'static str>> {
    if let Some((_, f)) = REC_NAMES_SEARCH.iter().find(|(m, _)| *m == model) {
        return Some(f.to_vec());
    }
    REC_NAME
        .iter()
        .find(|(m, _)| *m == model)
        .map(|(_, f)| vec![*f])
}

/// Models whose `_search_display_name` is overridden in a way that changes the result with the
/// context the API sends (`lang`, `uid`, `allowed_company_ids`, `active_test`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    /// res.partner.category: a `like` operator matches the tags found and all their descendants
    /// (`id child_of ...`); a negative `like` is the complement of the positive one.
    DescendantsOnLike,
    /// res.bank: `ilike`/`not ilike` search the BIC as a prefix (`=ilike v%`) and the name.
    BankBic,
    /// res.country.state: `=`/`in`/`ilike` also accept "Name (Country)" (country name `ilike`
    /// or country code `=`).
    StateWithCountry,
    /// res.users: `in`/`ilike` first look for users whose login is exactly the value; when any
    /// exist, those are the answer, else the default (the partner's name).
    UsersLoginFirst,
    /// product.product: the template's name, the variant's internal reference, its barcode
    /// (exact, positive operators) and `[CODE]` parts of the values of `in`.
    ProductVariant,
    /// product.template: the default, ORed (positive) or ANDed (negative) with the same
    /// condition on its variants, when the value is set.
    ProductTemplateVariants,
    /// account.account: positive operators only (a negative one is the complement): the code
    /// of the root company (`=like first_word%`, or `in` first words) | the name (translated)
    /// | the description (`ilike`).
    AccountCode,
    /// Overrides that read data the compiler does not model (the company-dependent account
    /// code of the root company, dates parsed in the user's format): refused, never guessed.
    Unsupported(&'static str),
}

pub fn special(model: &str) -> Option<Special> {
    Some(match model {
        "res.partner.category" => Special::DescendantsOnLike,
        "res.bank" => Special::BankBic,
        "res.country.state" => Special::StateWithCountry,
        "res.users" => Special::UsersLoginFirst,
        "product.product" => Special::ProductVariant,
        "product.template" => Special::ProductTemplateVariants,
        "account.account" => Special::AccountCode,
        "account.group" => Special::Unsupported("the code prefix search is not modelled"),
        "res.currency.rate" => Special::Unsupported("dates are parsed in the user's format"),
        _ => return None,
    })
}

/// `re.fullmatch(r"(?P<name>.+)\((?P<country>.+)\)", v)` of res.country.state, stripped:
/// "California (US)" gives ("California", "US").
pub fn state_and_country(v: &str) -> Option<(&str, &str)> {
    if v.contains('\n') {
        return None; // `.` does not match a newline
    }
    let body = v.strip_suffix(')')?;
    // greedy name: the last '(' that leaves a non-empty name and country
    body.match_indices('(')
        .rev()
        .map(|(open, _)| (&body[..open], &body[open + 1..]))
        .find(|(name, country)| !name.is_empty() && !country.is_empty())
        .map(|(name, country)| (name.trim(), country.trim()))
}

/// `re.search(r'(\[(.*?)\])', v).group(2)` of product.product: the first bracketed part.
pub fn bracketed_code(v: &str) -> Option<&str> {
    let open = v.find('[')?;
    let close = v[open + 1..].find(']')?;
    Some(&v[open + 1..open + 1 + close])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_model_once_and_fields_are_plain_paths() {
        for (i, (m, fields)) in REC_NAMES_SEARCH.iter().enumerate() {
            assert!(REC_NAMES_SEARCH[i + 1..].iter().all(|(n, _)| n != m), "{m}");
            assert!(!fields.is_empty(), "{m}");
            assert!(fields.iter().all(|f| crate::display::plain_path(f)), "{m}");
        }
        for (i, (m, f)) in REC_NAME.iter().enumerate() {
            assert!(REC_NAME[i + 1..].iter().all(|(n, _)| n != m), "{m}");
            assert!(crate::display::plain_path(f), "{m}");
        }
    }

    #[test]
    fn rec_names_search_wins_over_rec_name() {
        assert_eq!(
            search_fields("res.partner").unwrap(),
            vec!["complete_name", "email", "ref", "vat", "company_registry"]
        );
        assert_eq!(
            search_fields("ir.module.module").unwrap(),
            vec!["name", "shortdesc", "summary"]
        );
        assert_eq!(
            search_fields("product.category").unwrap(),
            vec!["complete_name"]
        );
        assert_eq!(search_fields("res.company"), None);
    }

    #[test]
    fn state_names_with_a_country_are_split_as_odoo_does() {
        assert_eq!(
            state_and_country("California (US)"),
            Some(("California", "US"))
        );
        assert_eq!(state_and_country("A (b) (c)"), Some(("A (b)", "c")));
        assert_eq!(state_and_country("(US)"), None);
        assert_eq!(state_and_country("California ()"), None);
        assert_eq!(state_and_country("A (b)()"), Some(("A", "b)(")));
        assert_eq!(state_and_country("California"), None);
        assert_eq!(state_and_country("Cal\n (US)"), None);
    }

    #[test]
    fn the_first_bracketed_code_is_found() {
        assert_eq!(bracketed_code("[FURN_7800] Desk"), Some("FURN_7800"));
        assert_eq!(bracketed_code("x [] y"), Some(""));
        assert_eq!(bracketed_code("[a] [b]"), Some("a"));
        assert_eq!(bracketed_code("no code"), None);
        assert_eq!(bracketed_code("[open"), None);
    }
}
