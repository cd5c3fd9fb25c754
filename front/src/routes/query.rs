//! Strict query-string and path parsing: unknown or repeated parameters, bad percent-encoding,
//! invalid UTF-8 and NUL bytes are 400s; bad model names and ids are 404s.
use crate::error::Problem;
use percent_encoding::percent_decode;
use std::collections::BTreeMap;

/// Why an `application/x-www-form-urlencoded` string (a query string, an OAuth2 form body) was
/// refused.
#[derive(Debug, PartialEq, Eq)]
pub enum FormError {
    /// A name or value that is not UTF-8 once percent-decoded, or holds NUL.
    Encoding { name: String, detail: &'static str },
    /// A name given twice.
    Repeated(String),
}

/// Decode `a=1&b=2` (`+` is a space) into names and values; bad encodings, NUL characters and
/// repeated names are refused.
pub fn decode_pairs(raw: &str) -> Result<BTreeMap<String, String>, FormError> {
    let mut out = BTreeMap::new();
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let encoding = |name: &str, detail| FormError::Encoding {
            name: name.to_string(),
            detail,
        };
        let k = decode(k).map_err(|e| encoding(k, e))?;
        let v = decode(v).map_err(|e| encoding(&k, e))?;
        if out.contains_key(&k) {
            return Err(FormError::Repeated(k));
        }
        out.insert(k, v);
    }
    Ok(out)
}

/// A query string's parameters, refusing those outside `allowed`, repeats and bad encodings.
pub fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<BTreeMap<String, String>, Problem> {
    let out = decode_pairs(raw.unwrap_or("")).map_err(|e| match e {
        FormError::Encoding { name, detail } => Problem::invalid_parameter(&name, detail),
        FormError::Repeated(k) => Problem::invalid_parameter(
            &k,
            format!("the query parameter {k:?} is given more than once"),
        ),
    })?;
    if let Some(k) = out.keys().find(|k| !allowed.contains(&k.as_str())) {
        let takes = if allowed.is_empty() {
            "this route takes no query parameters".to_string()
        } else {
            format!("this route takes: {}", allowed.join(", "))
        };
        return Err(Problem::invalid_parameter(
            k,
            format!(
                "unknown query parameter {:?}; {takes}",
                crate::error::truncate(k, 40)
            ),
        ));
    }
    Ok(out)
}

/// One `application/x-www-form-urlencoded` name or value (`+` is a space); NUL is refused.
pub fn decode(s: &str) -> Result<String, &'static str> {
    let plus = s.replace('+', " ");
    let v = percent_decode(plus.as_bytes())
        .decode_utf8()
        .map_err(|_| "the query string is not valid UTF-8 once percent-decoded")?;
    if v.contains('\0') {
        return Err("NUL characters are not allowed");
    }
    Ok(v.into_owned())
}

/// `^[a-z_][a-z0-9_]*(\.[a-z0-9_]+)*$`, at most 128 characters.
pub fn valid_model(name: &str) -> bool {
    if name.is_empty() || name.len() > 128 {
        return false;
    }
    let mut segments = name.split('.');
    let first = segments.next().unwrap_or("");
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let starts_ok = first
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    starts_ok && word(first) && segments.all(word)
}

/// A model path segment, or 404.
pub fn model(name: &str) -> Result<String, Problem> {
    if valid_model(name) {
        Ok(name.to_string())
    } else {
        Err(Problem::unknown_model(name))
    }
}

/// A record id path segment (1..=2^31-1), or 404.
pub fn record_id(s: &str) -> Result<i32, Problem> {
    match s.parse::<i32>() {
        Ok(id) if id > 0 && s.bytes().all(|b| b.is_ascii_digit()) => Ok(id),
        _ => Err(Problem::not_found(format!(
            "{:?} is not a record id (a positive integer)",
            crate::error::truncate(s, 40)
        ))),
    }
}

/// `fields=a,b,c`: None when absent or empty (all fields).
pub fn fields(q: &BTreeMap<String, String>) -> Result<Option<Vec<String>>, Problem> {
    let Some(raw) = q.get("fields") else {
        return Ok(None);
    };
    let list: Vec<String> = raw
        .split(',')
        .map(|f| f.trim().to_string())
        .filter(|f| !f.is_empty())
        .collect();
    if list.len() > 1000 {
        return Err(Problem::invalid_parameter("fields", "at most 1000 fields"));
    }
    Ok((!list.is_empty()).then_some(list))
}

/// RFC 8288 `Link: <...>; rel="next"` for a list: the same query string without `after`, plus
/// `after=<cursor>`, relative to the list's path.
pub fn next_link(model: &str, raw: Option<&str>, cursor: &str) -> Option<axum::http::HeaderValue> {
    let mut pairs: Vec<&str> = raw
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty() && p.split('=').next() != Some("after"))
        .collect();
    let after = format!(
        "after={}",
        percent_encoding::utf8_percent_encode(cursor, percent_encoding::NON_ALPHANUMERIC)
    );
    pairs.push(&after);
    axum::http::HeaderValue::from_str(&format!(
        "</api/v1/{model}?{}>; rel=\"next\"",
        pairs.join("&")
    ))
    .ok()
}

/// A non-negative integer parameter.
pub fn non_negative(q: &BTreeMap<String, String>, name: &str) -> Result<Option<i32>, Problem> {
    match q.get(name) {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i32>() {
            Ok(n) if n >= 0 => Ok(Some(n)),
            _ => Err(Problem::invalid_parameter(
                name,
                format!("{name} must be an integer between 0 and 2147483647"),
            )),
        },
    }
}

/// `true`/`false`/`1`/`0`.
pub fn boolean(q: &BTreeMap<String, String>, name: &str) -> Result<bool, Problem> {
    match q
        .get(name)
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(_) => Err(Problem::invalid_parameter(
            name,
            format!("{name} must be true or false"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_parameters_name_what_the_route_takes() {
        let detail = |allowed: &[&str]| parse(Some("nope=1"), allowed).unwrap_err().detail.unwrap();
        let none = detail(&[]);
        assert!(
            none.ends_with("this route takes no query parameters"),
            "{none}"
        );
        let some = detail(&["fields", "limit"]);
        assert!(some.ends_with("this route takes: fields, limit"), "{some}");
    }

    #[test]
    fn form_pairs_decode_or_say_why_not() {
        let ok = decode_pairs("a=1&b=x+y%21&&c=&d").unwrap();
        let got: Vec<(&str, &str)> = ok.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, [("a", "1"), ("b", "x y!"), ("c", ""), ("d", "")]);
        assert_eq!(
            decode_pairs("a=1&a=2"),
            Err(FormError::Repeated("a".into()))
        );
        assert!(
            matches!(decode_pairs("a=%FF"), Err(FormError::Encoding { name, .. }) if name == "a")
        );
        assert!(matches!(
            decode_pairs("a=%00"),
            Err(FormError::Encoding { .. })
        ));
        assert!(matches!(
            decode_pairs("%C3=1"),
            Err(FormError::Encoding { .. })
        ));
    }

    /// Property: any input either decodes to pairs that encode back to themselves, or is refused;
    /// it never panics (a small deterministic generator over the characters that matter).
    #[test]
    fn form_pairs_round_trip_or_refuse() {
        const ALPHABET: &[u8] = b"ab=&+%0Fz\x00\xc3\xa9";
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let len = (seed % 12) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|i| ALPHABET[((seed >> (i * 5)) % ALPHABET.len() as u64) as usize])
                .collect();
            let Ok(raw) = std::str::from_utf8(&bytes) else {
                continue;
            };
            if let Ok(pairs) = decode_pairs(raw) {
                let encoded: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| {
                        let e = |s: &str| {
                            percent_encoding::utf8_percent_encode(
                                s,
                                percent_encoding::NON_ALPHANUMERIC,
                            )
                            .to_string()
                        };
                        format!("{}={}", e(k), e(v))
                    })
                    .collect();
                assert_eq!(decode_pairs(&encoded.join("&")).unwrap(), pairs, "{raw:?}");
                assert!(
                    pairs
                        .keys()
                        .chain(pairs.values())
                        .all(|s| !s.contains('\0'))
                );
            }
        }
    }

    #[test]
    fn model_names() {
        for ok in [
            "res.partner",
            "product.template",
            "_x",
            "x_custom.model_2",
            "a.b.c",
        ] {
            assert!(valid_model(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            ".",
            "res..partner",
            "Res.partner",
            "res.partner.",
            "1res",
            "res/partner",
            "res.partner;drop",
            "../etc/passwd",
            "res partner",
            "rés.partner",
            "res.-x",
        ] {
            assert!(!valid_model(bad), "{bad}");
        }
        assert!(!valid_model(&"a".repeat(129)));
    }

    #[test]
    fn ids() {
        assert_eq!(record_id("42").unwrap(), 42);
        for bad in ["0", "-1", "+1", "1.0", "abc", "2147483648", "", " 1"] {
            assert!(record_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn next_links_keep_the_query_and_replace_after() {
        let l = next_link(
            "res.partner",
            Some("limit=2&after=old&order=name%20asc"),
            "a.b-c_",
        )
        .unwrap();
        assert_eq!(
            l.to_str().unwrap(),
            "</api/v1/res.partner?limit=2&order=name%20asc&after=a%2Eb%2Dc%5F>; rel=\"next\""
        );
        let l = next_link("res.partner", None, "x").unwrap();
        assert_eq!(
            l.to_str().unwrap(),
            "</api/v1/res.partner?after=x>; rel=\"next\""
        );
    }

    #[test]
    fn query_strings() {
        let q = parse(
            Some("limit=5&domain=%5B%5D&fields=a,+b"),
            &["limit", "domain", "fields"],
        )
        .unwrap();
        assert_eq!(q["domain"], "[]");
        assert_eq!(fields(&q).unwrap().unwrap(), vec!["a", "b"]);
        assert!(parse(Some("limit=1&limit=2"), &["limit"]).is_err());
        assert!(parse(Some("nope=1"), &["limit"]).is_err());
        assert!(parse(Some("limit=%ff"), &["limit"]).is_err());
        assert!(parse(Some("limit=%00"), &["limit"]).is_err());
        let q = parse(Some("limit=-1"), &["limit"]).unwrap();
        assert!(non_negative(&q, "limit").is_err());
    }
}
