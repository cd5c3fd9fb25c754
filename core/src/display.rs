//! Odoo's `display_name` as data: for the models whose `_compute_display_name` differs from the
//! default (the `_rec_name` value in the user's language), the rule Odoo 19 applies, written as a
//! SQL template over the record's row. The extension resolves the placeholders with the model's
//! metadata (translations, `_inherits` and related paths, many2one targets):
//!
//! - `{t}`: the record's row alias;
//! - `{lang}`: the user's language (a text parameter);
//! - `{f:path}`: the text of a field or a many2one path (`name`, `country_id.code`), translated
//!   with Odoo's fallback to en_US, NULL when empty or False;
//! - `{d:path}`: the display name of the record a many2one path points to, NULL when none.
//!
//! Everything else is SQL, copied as is. The templates are constants of this file (never input).
//! A model without a rule here gets Odoo's default (docs/sql.md, "Display names").

/// (model, template). The behaviour reproduced is the one with the context keys the web client
/// sends by default (`lang`, `tz`, `uid`, `allowed_company_ids`); context keys that change a
/// display name (`show_address`, `formatted_display_name`, `partner_id`, ...) are not sent.
pub const RULES: &[(&str, &str)] = &[
    // res.partner: `_get_complete_name`, i.e. the stored `complete_name` ("Company, Contact").
    ("res.partner", "btrim({f:complete_name})"),
    // "California (US)"; Odoo writes False when the country has no code.
    (
        "res.country.state",
        "{f:name} || ' (' || coalesce({f:country_id.code}, 'False') || ')'",
    ),
    // "[CODE] Name"; False without a name.
    (
        "product.template",
        "CASE WHEN {f:name} IS NULL THEN NULL \
              WHEN {f:default_code} IS NULL THEN {f:name} \
              ELSE '[' || {f:default_code} || '] ' || {f:name} END",
    ),
    // "[CODE] Name (Value, Value)": the variant's attribute values, without `no_variant`
    // attributes and without lines that have a single active value (`_get_combination_name`).
    (
        "product.product",
        "concat('[' || {f:default_code} || '] ', {f:name}, \
           (SELECT ' (' || string_agg(coalesce(pav.name->>{lang}, pav.name->>'en_US'), ', ' \
                            ORDER BY ptal.sequence, ptal.attribute_id, ptal.id, pav.sequence, pav.id, ptav.id) || ')' \
              FROM public.product_variant_combination vc \
              JOIN public.product_template_attribute_value ptav ON ptav.id = vc.product_template_attribute_value_id \
              JOIN public.product_attribute_value pav ON pav.id = ptav.product_attribute_value_id \
              JOIN public.product_attribute pa ON pa.id = ptav.attribute_id \
              JOIN public.product_template_attribute_line ptal ON ptal.id = ptav.attribute_line_id \
             WHERE vc.product_product_id = {t}.id AND pa.create_variant IS DISTINCT FROM 'no_variant' \
               AND (SELECT count(*) FROM public.product_template_attribute_value o \
                     WHERE o.attribute_line_id = ptav.attribute_line_id AND o.ptav_active) > 1))",
    ),
    // `_get_move_display_name(show_ref=True)`: "Draft Invoice" while draft, the number when there
    // is one, the reference in parentheses.
    (
        "account.move",
        "concat(btrim(concat( \
             CASE WHEN {t}.state = 'draft' THEN CASE {t}.move_type \
                  WHEN 'out_invoice' THEN 'Draft Invoice' WHEN 'out_refund' THEN 'Draft Credit Note' \
                  WHEN 'in_invoice' THEN 'Draft Bill' WHEN 'in_refund' THEN 'Draft Vendor Credit Note' \
                  WHEN 'out_receipt' THEN 'Draft Sales Receipt' WHEN 'in_receipt' THEN 'Draft Purchase Receipt' \
                  ELSE 'Draft Entry' END END, \
             CASE WHEN {t}.name IS NOT NULL AND {t}.name <> '/' THEN ' ' || {t}.name END)), \
           CASE WHEN {t}.ref IS NOT NULL AND {t}.ref <> '' THEN ' (' || {t}.ref || ')' END)",
    ),
    // `_format_aml_name(line.name or product display name, ref, move name)`.
    (
        "account.move.line",
        "(SELECT coalesce(nullif(concat_ws(' ', \
                    CASE WHEN x.mn <> '/' THEN x.mn END, \
                    CASE WHEN x.rf <> '/' THEN '(' || x.rf || ')' END, \
                    CASE WHEN x.ln <> '/' AND x.ln IS DISTINCT FROM x.mn AND x.ln IS DISTINCT FROM x.rf \
                          AND x.ln IS DISTINCT FROM (x.rf || ' - ' || x.mn) THEN x.ln END), ''), 'Draft Entry') \
            FROM (SELECT {f:move_id.name} AS mn, {f:move_id.ref} AS rf, \
                         coalesce(nullif({t}.name, ''), {d:product_id}) AS ln) x)",
    ),
    // "S00012 - [CODE] Product (Customer)": the order, the product's display name (or the line's
    // second description line when the description was edited) and the customer's reference or
    // name (`_additional_name_per_id`).
    (
        "sale.order.line",
        "(SELECT concat({f:order_id.name}, ' - ', \
                 CASE WHEN coalesce(x.pd, '') <> '' THEN \
                      CASE WHEN split_part(coalesce(x.ln, ''), E'\\n', 1) = x.pd THEN x.pd \
                           ELSE coalesce(nullif(split_part(coalesce(x.ln, ''), E'\\n', 2), ''), x.pd) END \
                      ELSE split_part(coalesce(x.ln, ''), E'\\n', 1) END, \
                 ' (' || coalesce(nullif(cp.ref, ''), cp.name) || ')') \
            FROM (SELECT {d:product_id} AS pd, {t}.name AS ln) x \
            LEFT JOIN public.sale_order so ON so.id = {t}.order_id \
            LEFT JOIN public.res_partner op ON op.id = so.partner_id \
            LEFT JOIN public.res_partner cp ON cp.id = coalesce(op.commercial_partner_id, op.id))",
    ),
    // Tags show their parents: "Services / Consulting" (names in the user's language).
    (
        "res.partner.category",
        "(SELECT string_agg(coalesce(c.name->>{lang}, c.name->>'en_US', ''), ' / ' \
                            ORDER BY array_position(p.path, c.id)) \
            FROM (SELECT string_to_array(rtrim({t}.parent_path, '/'), '/')::int4[] AS path) p \
            JOIN public.res_partner_category c ON c.id = ANY(p.path))",
    ),
];

/// Models whose override is Odoo's default behaviour with their `_rec_name` (so no rule needed):
/// listed so the docs and tests can tell "checked" from "unknown".
pub const DEFAULT_CHECKED: &[&str] = &[
    "res.users",        // no override: `name`, the partner's (through `_inherits`)
    "product.category", // `_rec_name = 'complete_name'` (hierarchical_naming defaults to True)
    "uom.uom",          // override only with `formatted_display_name`
    "sale.order",       // override only with `sale_show_partner_name`
    "res.company",      // no override: `name`
];

/// The tables a template reads by name (`public.<table>`), which must exist for it to be used.
pub fn tables(template: &str) -> Vec<&str> {
    let mut out: Vec<&str> = template
        .match_indices("public.")
        .map(|(i, _)| {
            let rest = &template[i + 7..];
            let end = rest
                .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// The rule of `model`, if Odoo overrides its display name.
pub fn rule(model: &str) -> Option<&'static str> {
    RULES.iter().find(|(m, _)| *m == model).map(|(_, r)| *r)
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece<'a> {
    Sql(&'a str),
    Row,
    Lang,
    Field(&'a str),
    Display(&'a str),
}

/// A dotted path of plain identifiers (`a_b.c`): the only names a template may splice.
pub fn plain_path(path: &str) -> bool {
    !path.is_empty()
        && path.split('.').all(|seg| {
            let mut b = seg.bytes();
            seg.len() <= 63
                && b.next()
                    .is_some_and(|c| c.is_ascii_lowercase() || c == b'_')
                && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        })
}

/// Split a template into pieces; unknown or malformed placeholders are an error.
pub fn parse(template: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut out = vec![];
    let mut rest = template;
    while let Some(start) = rest.find('{') {
        if start > 0 {
            out.push(Piece::Sql(&rest[..start]));
        }
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| format!("unclosed placeholder in {template:?}"))?;
        let inner = &rest[start + 1..end];
        out.push(match inner {
            "t" => Piece::Row,
            "lang" => Piece::Lang,
            _ => match inner.split_once(':') {
                Some(("f", p)) if plain_path(p) => Piece::Field(p),
                Some(("d", p)) if plain_path(p) => Piece::Display(p),
                _ => return Err(format!("bad placeholder {{{inner}}}")),
            },
        });
        rest = &rest[end + 1..];
    }
    if !rest.is_empty() {
        out.push(Piece::Sql(rest));
    }
    Ok(out)
}

/// Fill a template: `resolve` gives the SQL of each placeholder, or None when it cannot (then
/// the whole template cannot be used).
pub fn render(template: &str, mut resolve: impl FnMut(&Piece) -> Option<String>) -> Option<String> {
    let pieces = parse(template).ok()?;
    let mut sql = String::with_capacity(template.len() * 2);
    for p in &pieces {
        match p {
            Piece::Sql(s) => sql.push_str(s),
            other => sql.push_str(&format!("({})", resolve(other)?)),
        }
    }
    Some(format!("({sql})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_parses_and_names_plain_paths_only() {
        for (model, template) in RULES {
            let pieces = parse(template).unwrap_or_else(|e| panic!("{model}: {e}"));
            assert!(
                pieces
                    .iter()
                    .any(|p| matches!(p, Piece::Row | Piece::Field(_))),
                "{model}"
            );
            for p in pieces {
                if let Piece::Sql(s) = p {
                    assert!(!s.contains('$') && !s.contains(';'), "{model}: {s}");
                }
            }
        }
    }

    #[test]
    fn rules_and_checked_defaults_are_disjoint_and_unique() {
        for (i, (m, _)) in RULES.iter().enumerate() {
            assert!(!DEFAULT_CHECKED.contains(m), "{m}");
            assert!(RULES[i + 1..].iter().all(|(n, _)| n != m), "{m} twice");
        }
    }

    #[test]
    fn tables_named_by_a_rule_are_found() {
        assert_eq!(
            tables(rule("product.product").unwrap()),
            vec![
                "product_attribute",
                "product_attribute_value",
                "product_template_attribute_line",
                "product_template_attribute_value",
                "product_variant_combination"
            ]
        );
        assert!(tables(rule("res.country.state").unwrap()).is_empty());
    }

    #[test]
    fn placeholders_are_resolved_and_bad_ones_refused() {
        let got = render("{f:name} || ' (' || {f:country_id.code} || ')'", |p| {
            Some(match p {
                Piece::Field(path) => format!("F[{path}]"),
                _ => "?".into(),
            })
        });
        assert_eq!(
            got.as_deref(),
            Some("((F[name]) || ' (' || (F[country_id.code]) || ')')")
        );
        assert!(parse("{f:Name}").is_err());
        assert!(parse("{f:a;drop}").is_err());
        assert!(parse("{x:a}").is_err());
        assert!(parse("{f:a").is_err());
        assert_eq!(render("{d:a}", |_| None), None);
        assert_eq!(
            parse("{t}.id").unwrap(),
            vec![Piece::Row, Piece::Sql(".id")]
        );
    }
}
