//! SQL literals for a compiled condition that is stored and run later without parameters (a
//! webhook's domain): [`super::compile_literal`] writes them where placeholders would go.
use super::{DomainError, Param};

/// A SQL string literal for `s`, exactly as PostgreSQL's `quote_literal` writes it: quotes
/// doubled, and when there is a backslash the `E'...'` form with backslashes doubled, so the
/// result means the same whatever `standard_conforming_strings` is.
fn quote_literal(s: &str) -> Result<String, DomainError> {
    if s.contains('\0') {
        return Err(DomainError::InvalidValue(
            "a text value contains a NUL character".into(),
        ));
    }
    let body = s.replace('\'', "''");
    Ok(if s.contains('\\') {
        format!("E'{}'", body.replace('\\', "\\\\"))
    } else {
        format!("'{body}'")
    })
}

/// The literal of one parameter, parenthesised so that the cast after it applies to all of it.
pub(super) fn literal(p: &Param) -> Result<String, DomainError> {
    let float = |f: f64| {
        if f.is_nan() {
            "'NaN'".to_string()
        } else if f.is_infinite() {
            if f > 0.0 { "'Infinity'" } else { "'-Infinity'" }.to_string()
        } else {
            format!("{f:?}")
        }
    };
    let text = match p {
        Param::Int(i) => i.to_string(),
        Param::Float(f) => float(*f),
        Param::Text(s) => quote_literal(s)?,
        Param::Bool(b) => b.to_string(),
        Param::IntArray(v) if v.is_empty() => "'{}'".into(),
        Param::IntArray(v) => format!(
            "ARRAY[{}]",
            v.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
        ),
        Param::TextArray(v) if v.is_empty() => "'{}'".into(),
        Param::TextArray(v) => format!(
            "ARRAY[{}]",
            v.iter()
                .map(|s| quote_literal(s))
                .collect::<Result<Vec<_>, _>>()?
                .join(",")
        ),
    };
    Ok(format!("({text})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn literals() {
        let cases = [
            (Param::Text("it's".into()), "('it''s')"),
            (Param::Int(-5), "(-5)"),
            (Param::Float(1.5), "(1.5)"),
            (Param::Bool(true), "(true)"),
            (Param::IntArray(vec![1, 2]), "(ARRAY[1,2])"),
            (
                Param::TextArray(vec!["a'b".into(), "c\\d".into()]),
                "(ARRAY['a''b',E'c\\\\d'])",
            ),
            (Param::IntArray(vec![]), "('{}')"),
            (Param::Float(f64::NAN), "('NaN')"),
            (Param::Float(f64::NEG_INFINITY), "('-Infinity')"),
        ];
        for (p, want) in cases {
            assert_eq!(literal(&p).unwrap(), want);
        }
        assert!(literal(&Param::Text("a\0b".into())).is_err());
        assert_eq!(quote_literal("plain").unwrap(), "'plain'");
        assert_eq!(quote_literal("a\\'b").unwrap(), "E'a\\\\''b'");
    }

    proptest! {
        #[test]
        fn a_text_literal_never_escapes_its_quotes(s in "[^\\x00]{0,40}") {
            let lit = quote_literal(&s).unwrap();
            let (body, backslashes) = match lit.strip_prefix('E') {
                Some(rest) => (rest, true),
                None => (lit.as_str(), false),
            };
            prop_assert!(body.starts_with('\'') && body.ends_with('\''));
            let mut inner = body[1..body.len() - 1].replace("''", "");
            if backslashes { inner = inner.replace("\\\\", ""); }
            prop_assert!(!inner.contains('\''));
            if backslashes { prop_assert!(!inner.contains('\\')); }
        }
    }
}
