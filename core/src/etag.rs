//! Entity tags (RFC 9110 §8.8.3, §13.1.1-2) for record and list reads, and the conditional
//! request headers `If-None-Match` (weak comparison) and `If-Match` (strong comparison).
//!
//! A list's tag is a digest of its JSON body. A record's tag is `"<version>.<digest>"`: the
//! version is the row version the database reports (it changes with every update of the row),
//! the digest that of the body, so two field selections of one record get different tags while
//! `If-Match` can be checked against the row alone, atomically with the write.
use sha2::{Digest, Sha256};

/// A parsed `If-Match`/`If-None-Match` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `*`
    Any,
    /// The listed tags, in order: (weak, opaque-tag without quotes).
    Tags(Vec<(bool, String)>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid entity-tag list: {0}")]
pub struct EtagError(pub String);

/// The opaque part (no quotes) of a body's digest: 32 hex digits of SHA-256.
fn digest(body: &[u8]) -> String {
    crate::secrets::to_hex(&Sha256::digest(body)[..16])
}

/// The strong tag of a list body, quoted.
pub fn list_tag(body: &[u8]) -> String {
    format!("\"{}\"", digest(body))
}

/// The strong tag of a record body at row version `version` (digits only), quoted.
pub fn record_tag(version: &str, body: &[u8]) -> String {
    format!("\"{version}.{}\"", digest(body))
}

/// The row version a record tag carries, if `opaque` is one of ours.
pub fn version_of(opaque: &str) -> Option<&str> {
    let (version, digest) = opaque.split_once('.')?;
    let ok = !version.is_empty()
        && version.len() <= 20
        && version.bytes().all(|b| b.is_ascii_digit())
        && digest.len() == 32
        && digest.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then_some(version)
}

/// Parse `*` or `1#entity-tag` (`W/"x", "y"`); empty list elements are allowed (RFC 9110 §5.6.1).
pub fn parse(value: &str) -> Result<Condition, EtagError> {
    let v = value.trim_matches([' ', '\t']);
    if v == "*" {
        return Ok(Condition::Any);
    }
    let mut tags = vec![];
    let mut rest = v;
    loop {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        let Some(body) = rest.strip_prefix('"') else {
            return Err(EtagError("an entity-tag is a quoted string".into()));
        };
        let Some(end) = body.find('"') else {
            return Err(EtagError("unterminated entity-tag".into()));
        };
        let opaque = &body[..end];
        // etagc = %x21 / %x23-7E / obs-text
        if opaque.bytes().any(|b| b < 0x21 || b == 0x7f) {
            return Err(EtagError("invalid character in an entity-tag".into()));
        }
        tags.push((weak, opaque.to_string()));
        rest = body[end + 1..].trim_start_matches([' ', '\t']);
        if !rest.is_empty() && !rest.starts_with(',') {
            return Err(EtagError("entity-tags are separated by commas".into()));
        }
        if tags.len() > 64 {
            return Err(EtagError("at most 64 entity-tags".into()));
        }
    }
    if tags.is_empty() {
        return Err(EtagError("empty entity-tag list".into()));
    }
    Ok(Condition::Tags(tags))
}

/// `If-None-Match` against the current tag (quoted): true when the condition is false, i.e.
/// the client's copy is current and the answer is 304 (weak comparison, §13.1.2).
pub fn none_match_fails(cond: &Condition, current: &str) -> bool {
    let current = current.trim_matches('"');
    match cond {
        Condition::Any => true,
        Condition::Tags(tags) => tags.iter().any(|(_, t)| t == current),
    }
}

/// `If-Match` for a record: the row versions a write may proceed from (strong comparison: weak
/// tags and tags that are not ours never match). None for `*` (any existing record).
pub fn match_versions(cond: &Condition) -> Option<Vec<String>> {
    match cond {
        Condition::Any => None,
        Condition::Tags(tags) => Some(
            tags.iter()
                .filter(|(weak, _)| !weak)
                .filter_map(|(_, t)| version_of(t).map(str::to_string))
                .collect(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags_and_versions() {
        let t = record_tag("1234", b"{}");
        let opaque = t.trim_matches('"');
        assert_eq!(version_of(opaque), Some("1234"));
        assert_ne!(record_tag("1234", b"{}"), record_tag("1235", b"{}"));
        assert_ne!(record_tag("1234", b"{}"), record_tag("1234", b"[]"));
        assert_eq!(version_of(list_tag(b"[]").trim_matches('"')), None);
        assert_eq!(version_of("x.0123"), None);
    }

    #[test]
    fn parsing() {
        assert_eq!(parse("*").unwrap(), Condition::Any);
        assert_eq!(
            parse(" W/\"a\", \"b\" ,,").unwrap(),
            Condition::Tags(vec![(true, "a".into()), (false, "b".into())])
        );
        for bad in ["", "a", "\"a", "\"a\" \"b\"", "W/a", "\"a b\"", ",,"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn comparisons() {
        let tag = record_tag("7", b"{\"id\":1}");
        let opaque = tag.trim_matches('"').to_string();
        // Weak comparison: W/ matches for If-None-Match.
        assert!(none_match_fails(&parse(&format!("W/{tag}")).unwrap(), &tag));
        assert!(none_match_fails(&parse("*").unwrap(), &tag));
        assert!(!none_match_fails(&parse("\"other\"").unwrap(), &tag));
        // Strong comparison: W/ never matches for If-Match.
        assert_eq!(
            match_versions(&parse(&format!("W/{tag}")).unwrap()),
            Some(vec![])
        );
        assert_eq!(
            match_versions(&parse(&format!("\"zz\", {tag}")).unwrap()),
            Some(vec!["7".to_string()])
        );
        assert_eq!(match_versions(&parse("*").unwrap()), None);
        assert_eq!(version_of(&opaque), Some("7"));
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,80}") {
            let _ = parse(&s);
        }

        #[test]
        fn printed_lists_round_trip(tags in proptest::collection::vec((any::<bool>(), "[!#-~]{0,12}"), 1..5)) {
            let text: Vec<String> = tags.iter()
                .map(|(w, t)| format!("{}\"{t}\"", if *w { "W/" } else { "" }))
                .collect();
            prop_assert_eq!(parse(&text.join(", ")).unwrap(), Condition::Tags(tags.iter().map(|(w, t)| (*w, t.clone())).collect()));
        }
    }
}
