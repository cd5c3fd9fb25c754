//! The language a call reads in: the user's own by default, or one the caller names (an explicit
//! code, or `Accept-Language` negotiated). The matching is `api_gateway_core::lang`; this module
//! reads the installed languages (`res_lang`, active ones; `en_US` always exists).
use crate::error::{raise, spi};
use api_gateway_core::lang;
use pgrx::prelude::*;

/// The active `res_lang` codes (none when the table is missing: then only `en_US`).
pub fn installed() -> Vec<String> {
    if !crate::odoo::has_table("res_lang") {
        return vec![];
    }
    Spi::connect(|c| {
        let t = spi(c.select(
            "SELECT code::text FROM public.res_lang WHERE active ORDER BY code",
            None,
            &[],
        ));
        t.filter_map(|r| spi(r.get::<String>(1))).collect()
    })
}

/// The installed code `requested` names (`fr_FR`, `fr-FR`, `fr`); None for None. A code that is
/// malformed or not installed is refused with 22023, as Odoo refuses a context `lang` it does not
/// know ("Invalid language code").
pub fn explicit(requested: Option<&str>) -> Option<String> {
    let requested = requested.map(str::trim).filter(|l| !l.is_empty())?;
    let codes = installed();
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    match lang::resolve(requested, &refs) {
        Some(code) => Some(code.to_string()),
        None => {
            let shown: String = requested.chars().take(64).collect();
            let mut listed = refs.clone();
            if !listed.contains(&lang::DEFAULT) {
                listed.push(lang::DEFAULT);
            }
            listed.sort_unstable();
            raise(
                PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
                format!("invalid language code \"{shown}\": it names no installed language"),
                Some(&format!("installed: {}", listed.join(", "))),
            )
        }
    }
}

/// The installed code an `Accept-Language` value prefers, or None (then the user's language).
pub fn negotiate(accept_language: Option<&str>) -> Option<String> {
    let header = accept_language.filter(|h| !h.trim().is_empty())?;
    let codes = installed();
    let refs: Vec<&str> = codes.iter().map(String::as_str).collect();
    lang::negotiate(header, &refs).map(str::to_string)
}
