//! The language of a request: `Accept-Language` (RFC 9110 §12.5.4: language ranges with
//! q-values) or an explicit code, matched against the languages installed in Odoo (`res_lang`
//! codes such as `fr_FR`, `es_419`, `sr@latin`; `en_US` always exists, as in Odoo).
//!
//! Matching is RFC 4647 "lookup" over basic filtering: a range names a code exactly (`fr-CH`,
//! `fr_CH`), or is truncated subtag by subtag until it does; a bare language (`fr`) picks the
//! code Odoo and Babel map it to (`fr_FR`, `en_US`, `pt_PT`...) when installed, else the first
//! installed code of that language. Ranges with `q=0` exclude the codes they match. Malformed
//! members of the header are ignored one by one (RFC 9110 lets a server disregard what it cannot
//! parse), so a bad header never fails a request.

/// Odoo's own language, always available.
pub const DEFAULT: &str = "en_US";

/// Bounds on what is looked at: longer headers or more members are cut, never an error.
const MAX_HEADER: usize = 4096;
const MAX_MEMBERS: usize = 32;

/// Babel's `LOCALE_ALIASES` (what Odoo's `best_lang` maps a bare language to).
const ALIASES: &[(&str, &str)] = &[
    ("ar", "ar_SY"),
    ("bg", "bg_BG"),
    ("bs", "bs_BA"),
    ("ca", "ca_ES"),
    ("cs", "cs_CZ"),
    ("da", "da_DK"),
    ("de", "de_DE"),
    ("el", "el_GR"),
    ("en", "en_US"),
    ("es", "es_ES"),
    ("et", "et_EE"),
    ("fa", "fa_IR"),
    ("fi", "fi_FI"),
    ("fr", "fr_FR"),
    ("gl", "gl_ES"),
    ("he", "he_IL"),
    ("hu", "hu_HU"),
    ("id", "id_ID"),
    ("is", "is_IS"),
    ("it", "it_IT"),
    ("ja", "ja_JP"),
    ("km", "km_KH"),
    ("ko", "ko_KR"),
    ("lt", "lt_LT"),
    ("lv", "lv_LV"),
    ("mk", "mk_MK"),
    ("nl", "nl_NL"),
    ("nn", "nn_NO"),
    ("no", "nb_NO"),
    ("pl", "pl_PL"),
    ("pt", "pt_PT"),
    ("ro", "ro_RO"),
    ("ru", "ru_RU"),
    ("sk", "sk_SK"),
    ("sl", "sl_SI"),
    ("sv", "sv_SE"),
    ("th", "th_TH"),
    ("tr", "tr_TR"),
    ("uk", "uk_UA"),
];

/// One member of `Accept-Language`: a range, lower-cased with `-` between subtags (`*` for
/// any), and its weight in thousandths (RFC 9110 qvalues have at most three decimals).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preference {
    pub range: String,
    pub q: u16,
}

/// `1*8ALPHA *("-" 1*8alphanum)` (with `_` accepted for `-`, as Odoo writes codes), an optional
/// `@variant` (`sr@latin`), or `*`; normalized. None when malformed.
pub fn normalize_range(text: &str) -> Option<String> {
    let text = text.trim();
    if text == "*" {
        return Some("*".into());
    }
    let (tag, variant) = match text.split_once('@') {
        Some((t, v)) => (t, Some(v)),
        None => (text, None),
    };
    let mut out = String::with_capacity(text.len());
    for (i, sub) in tag.split(['-', '_']).enumerate() {
        let ok = !sub.is_empty()
            && sub.len() <= 8
            && if i == 0 {
                sub.bytes().all(|b| b.is_ascii_alphabetic())
            } else {
                sub.bytes().all(|b| b.is_ascii_alphanumeric())
            };
        if !ok {
            return None;
        }
        if i > 0 {
            out.push('-');
        }
        out.push_str(&sub.to_ascii_lowercase());
    }
    if let Some(v) = variant {
        if v.is_empty() || v.len() > 8 || !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return None;
        }
        out.push('@');
        out.push_str(&v.to_ascii_lowercase());
    }
    Some(out)
}

/// `qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] )`, in thousandths.
fn qvalue(text: &str) -> Option<u16> {
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => (text, ""),
    };
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths: u16 = format!("{frac:0<3}").parse().ok()?;
    match int {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The members of an `Accept-Language` value (several field lines joined with `,`), best first
/// (a stable sort: equal weights keep their order). Malformed members are left out.
pub fn parse_accept_language(header: &str) -> Vec<Preference> {
    let header = match header.char_indices().nth(MAX_HEADER) {
        Some((cut, _)) => &header[..cut],
        None => header,
    };
    let mut out: Vec<Preference> = header
        .split(',')
        .filter(|m| !m.trim().is_empty())
        .take(MAX_MEMBERS)
        .filter_map(|member| {
            let mut parts = member.split(';');
            let range = normalize_range(parts.next()?)?;
            let mut q = 1000;
            for param in parts {
                // `OWS ";" OWS "q=" qvalue`: no space around `=`.
                let (name, value) = param.trim_start().split_once('=')?;
                if name.eq_ignore_ascii_case("q") {
                    q = qvalue(value.trim_end())?;
                } else {
                    // RFC 9110 defines no other parameter here.
                    return None;
                }
            }
            Some(Preference { range, q })
        })
        .collect();
    out.sort_by_key(|p| std::cmp::Reverse(p.q));
    out
}

/// A `res_lang` code as a range compares with it: `fr_FR` → `fr-fr`, `sr@latin` → `sr@latin`.
fn code_tag(code: &str) -> String {
    code.replace('_', "-").to_ascii_lowercase()
}

/// Whether range `range` matches the tag of `code` (RFC 4647 basic filtering: equal, or a
/// prefix ending at a subtag boundary).
fn matches(range: &str, code: &str) -> bool {
    let tag = code_tag(code);
    range == "*"
        || tag == range
        || (tag.starts_with(range) && matches!(tag.as_bytes().get(range.len()), Some(b'-' | b'@')))
}

/// The installed code one range names, if any (lookup with truncation, then the bare
/// language's usual code, then its first installed one).
fn lookup<'a>(
    range: &str,
    installed: &[&'a str],
    acceptable: impl Fn(&str) -> bool,
) -> Option<&'a str> {
    let candidates: Vec<&'a str> = installed
        .iter()
        .copied()
        .filter(|c| acceptable(c))
        .collect();
    let mut current = range.to_string();
    loop {
        if let Some(code) = candidates.iter().find(|c| code_tag(c) == current) {
            return Some(code);
        }
        match current.rfind(['-', '@']) {
            Some(cut) => current.truncate(cut),
            None => break,
        }
    }
    let language = current;
    let usual = ALIASES
        .iter()
        .find(|(l, _)| *l == language)
        .map(|(_, c)| c.to_string())
        .unwrap_or_else(|| format!("{language}_{}", language.to_ascii_uppercase()));
    if let Some(code) = candidates.iter().find(|c| **c == usual) {
        return Some(code);
    }
    let mut same: Vec<&'a str> = candidates
        .into_iter()
        .filter(|c| matches(&language, c))
        .collect();
    same.sort_unstable();
    same.first().copied()
}

/// `installed` with `en_US` added when missing.
fn with_default<'a>(installed: &[&'a str]) -> Vec<&'a str> {
    let mut all = installed.to_vec();
    if !all.contains(&DEFAULT) {
        all.push(DEFAULT);
    }
    all
}

/// The installed code `Accept-Language` prefers, or None: the header asks for none of them,
/// names any language (`*`), or cannot be read. None means "the user's own language".
pub fn negotiate<'a>(header: &str, installed: &[&'a str]) -> Option<&'a str> {
    let prefs = parse_accept_language(header);
    let all = with_default(installed);
    let excluded: Vec<&str> = prefs
        .iter()
        .filter(|p| p.q == 0)
        .map(|p| p.range.as_str())
        .collect();
    let acceptable = |code: &str| !excluded.iter().any(|r| *r != "*" && matches(r, code));
    for p in prefs.iter().filter(|p| p.q > 0) {
        if p.range == "*" {
            return None;
        }
        if let Some(code) = lookup(&p.range, &all, acceptable) {
            return Some(code);
        }
    }
    None
}

/// The installed code an explicit request names (`fr_FR`, `fr-FR`, `fr`), or None when it is
/// malformed or names no installed language.
pub fn resolve<'a>(requested: &str, installed: &[&'a str]) -> Option<&'a str> {
    let range = normalize_range(requested)?;
    if range == "*" {
        return None;
    }
    lookup(&range, &with_default(installed), |_| true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const DEMO: &[&str] = &["en_US", "fr_FR"];

    #[test]
    fn q_values_order_the_ranges_and_ties_keep_their_order() {
        let p = parse_accept_language("da, en-GB;q=0.8, en;q=0.7, fr;Q=0.8");
        let ranges: Vec<_> = p.iter().map(|p| (p.range.as_str(), p.q)).collect();
        assert_eq!(
            ranges,
            [("da", 1000), ("en-gb", 800), ("fr", 800), ("en", 700)]
        );
    }

    #[test]
    fn malformed_members_are_dropped_one_by_one() {
        let p = parse_accept_language(
            "fr;q=2, de;q=0.5.1, ;;, 123, en-;q=1, it;q=1.000, es;x=1, nl ; q = 0.3, ja;q=0.0001",
        );
        let ranges: Vec<_> = p.iter().map(|p| (p.range.as_str(), p.q)).collect();
        assert_eq!(ranges, [("it", 1000)]);
        assert!(parse_accept_language("").is_empty());
        assert!(parse_accept_language("toolongtag").is_empty());
    }

    #[test]
    fn optional_whitespace_around_the_weight_is_allowed() {
        let p = parse_accept_language("fr ;q=0.5,en\t; q=0.4");
        assert_eq!(p.len(), 2);
        assert_eq!(
            p[0],
            Preference {
                range: "fr".into(),
                q: 500
            }
        );
    }

    #[test]
    fn bare_languages_map_to_their_usual_code() {
        assert_eq!(negotiate("fr", DEMO), Some("fr_FR"));
        assert_eq!(negotiate("en", DEMO), Some("en_US"));
        assert_eq!(negotiate("en_US", DEMO), Some("en_US"));
        assert_eq!(negotiate("fr-CA", DEMO), Some("fr_FR"));
        assert_eq!(negotiate("pt", &["pt_BR", "pt_PT"]), Some("pt_PT"));
        assert_eq!(negotiate("pt", &["pt_BR"]), Some("pt_BR"));
        assert_eq!(negotiate("pt-BR", &["pt_BR", "pt_PT"]), Some("pt_BR"));
        assert_eq!(negotiate("es-419", &["es_419", "es_ES"]), Some("es_419"));
        assert_eq!(negotiate("sr-Latn", &["sr@latin"]), Some("sr@latin"));
        assert_eq!(
            negotiate("sr@latin", &["sr@latin", "sr@Cyrl"]),
            Some("sr@latin")
        );
        assert_eq!(negotiate("sw", &["sw"]), Some("sw"));
    }

    #[test]
    fn uninstalled_wildcards_and_exclusions() {
        assert_eq!(negotiate("de, *;q=0.5", DEMO), None);
        assert_eq!(negotiate("de;q=0.9, fr;q=0.8", DEMO), Some("fr_FR"));
        assert_eq!(negotiate("*", DEMO), None);
        assert_eq!(negotiate("fr;q=0, en", DEMO), Some("en_US"));
        assert_eq!(
            negotiate("fr-FR;q=0, fr", &["fr_FR", "fr_BE"]),
            Some("fr_BE")
        );
        assert_eq!(negotiate("en;q=0, fr;q=0", DEMO), None);
        // en_US exists even where res_lang does not list it.
        assert_eq!(negotiate("en-US", &[]), Some("en_US"));
    }

    #[test]
    fn explicit_codes_resolve_or_fail() {
        assert_eq!(resolve("fr_FR", DEMO), Some("fr_FR"));
        assert_eq!(resolve("fr", DEMO), Some("fr_FR"));
        assert_eq!(resolve("FR-fr", DEMO), Some("fr_FR"));
        assert_eq!(resolve("en_US", &[]), Some("en_US"));
        assert_eq!(resolve("de_DE", DEMO), None);
        assert_eq!(resolve("*", DEMO), None);
        assert_eq!(resolve("fr;q=1", DEMO), None);
        assert_eq!(resolve("", DEMO), None);
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_weights_stay_in_range(s in "\\PC{0,200}") {
            let p = parse_accept_language(&s);
            prop_assert!(p.len() <= MAX_MEMBERS);
            prop_assert!(p.iter().all(|p| p.q <= 1000));
            prop_assert!(p.windows(2).all(|w| w[0].q >= w[1].q));
            let _ = negotiate(&s, DEMO);
        }

        #[test]
        fn answers_are_always_installed(s in "[a-zA-Z_*;=.,0-9 -]{0,60}") {
            let installed = ["en_US", "fr_FR", "fr_BE", "pt_BR"];
            if let Some(code) = negotiate(&s, &installed) {
                prop_assert!(installed.contains(&code));
            }
            if let Some(code) = resolve(&s, &installed) {
                prop_assert!(installed.contains(&code));
            }
        }

        #[test]
        fn well_formed_headers_round_trip(
            members in proptest::collection::vec(("[a-z]{1,8}(-[a-z0-9]{1,8}){0,2}", 0u16..=1000), 1..10)
        ) {
            let header: Vec<String> = members
                .iter()
                .map(|(r, q)| format!("{r};q={}", format_q(*q)))
                .collect();
            let parsed = parse_accept_language(&header.join(", "));
            prop_assert_eq!(parsed.len(), members.len());
            let mut expected: Vec<(String, u16)> = members.clone();
            expected.sort_by_key(|m| std::cmp::Reverse(m.1));
            let got: Vec<(String, u16)> = parsed.into_iter().map(|p| (p.range, p.q)).collect();
            prop_assert_eq!(got, expected);
        }

        #[test]
        fn an_installed_code_named_exactly_wins(i in 0usize..4, q in 1u16..=1000) {
            let installed = ["en_US", "fr_FR", "fr_BE", "pt_BR"];
            let header = format!("de;q=1, {};q={}", installed[i].replace('_', "-"), format_q(q));
            prop_assert_eq!(negotiate(&header, &installed), Some(installed[i]));
        }
    }

    fn format_q(q: u16) -> String {
        if q == 1000 {
            "1".into()
        } else {
            format!("0.{q:03}")
        }
    }
}
