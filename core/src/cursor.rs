//! Opaque, signed cursors for keyset pagination, and the keyset condition they resume from.
//!
//! A cursor is `base64url(payload JSON) "." base64url(HMAC-SHA256(key, payload))`. The payload
//! names the model, the user, the normalised order, a digest of the domain, the user's language
//! and the sort key of the last record returned; the key is derived from a JWT signing secret the
//! extension keeps (`kid` says which, so cursors survive a key rotation while the retired key is
//! still valid). A cursor therefore cannot be forged, nor replayed for another model, user, order
//! or domain.
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// What a cursor pins: a page of one query resumes only that query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cursor {
    /// Format version.
    pub v: u8,
    /// The signing key's id.
    pub kid: String,
    pub model: String,
    pub uid: i32,
    /// The order, normalised (`name asc,id asc`).
    pub order: String,
    /// `domain_digest` of the domain text.
    pub domain: String,
    pub lang: String,
    /// The sort key of the last record returned: field name → value (`id` included).
    pub key: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("malformed cursor")]
    Malformed,
    #[error(
        "the cursor's signature does not verify (forged, altered, or signed with a retired key)"
    )]
    BadSignature,
    #[error("the cursor belongs to another query ({0} differs): start again without it")]
    OtherQuery(&'static str),
}

/// The HMAC key for cursors, derived from a signing secret (never the secret itself).
pub fn derive_key(secret: &str) -> Vec<u8> {
    let mut m = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    m.update(b"api_gateway cursor v1");
    m.finalize().into_bytes().to_vec()
}

/// A short digest of the domain text, as the cursor carries it.
pub fn domain_digest(domain: &str) -> String {
    let d = Sha256::digest(domain.trim().as_bytes());
    B64.encode(&d[..16])
}

pub fn sign(cursor: &Cursor, key: &[u8]) -> String {
    seal(
        &serde_json::to_vec(cursor).expect("a cursor serialises"),
        key,
    )
}

/// `base64url(payload) "." base64url(HMAC-SHA256(key, payload))`: the signed form of every
/// cursor the gateway hands out (pages here, change feeds in `feed`).
pub(crate) fn seal(payload: &[u8], key: &[u8]) -> String {
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(payload);
    format!(
        "{}.{}",
        B64.encode(payload),
        B64.encode(m.finalize().into_bytes())
    )
}

/// The payload of a sealed token, its signature checked with `key` in constant time.
pub(crate) fn unseal(token: &str, key: &[u8]) -> Result<Vec<u8>, CursorError> {
    let (bytes, sig) = split(token)?;
    let mut m = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    m.update(&bytes);
    m.verify_slice(&sig)
        .map_err(|_| CursorError::BadSignature)?;
    Ok(bytes)
}

/// The `kid` a token claims, to look its key up (unverified: only a lookup hint).
pub fn claimed_kid(token: &str) -> Result<String, CursorError> {
    #[derive(Deserialize)]
    struct Kid {
        kid: String,
    }
    let (bytes, _) = split(token)?;
    serde_json::from_slice::<Kid>(&bytes)
        .map(|k| k.kid)
        .map_err(|_| CursorError::Malformed)
}

fn split(token: &str) -> Result<(Vec<u8>, Vec<u8>), CursorError> {
    if token.len() > 8192 {
        return Err(CursorError::Malformed);
    }
    let (p, s) = token.split_once('.').ok_or(CursorError::Malformed)?;
    let bytes = B64.decode(p).map_err(|_| CursorError::Malformed)?;
    let sig = B64.decode(s).map_err(|_| CursorError::Malformed)?;
    Ok((bytes, sig))
}

/// Verify the signature (constant time) with `key`, then that the cursor is for this query.
pub fn open(
    token: &str,
    key: &[u8],
    model: &str,
    uid: i32,
    order: &str,
    domain: &str,
    lang: &str,
) -> Result<Cursor, CursorError> {
    let bytes = unseal(token, key)?;
    let cursor: Cursor = serde_json::from_slice(&bytes).map_err(|_| CursorError::Malformed)?;
    if cursor.v != 1 {
        return Err(CursorError::Malformed);
    }
    let checks = [
        (cursor.model == model, "model"),
        (cursor.uid == uid, "user"),
        (cursor.order == order, "order"),
        (cursor.domain == domain_digest(domain), "domain"),
        (cursor.lang == lang, "language"),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(CursorError::OtherQuery(what));
    }
    if !cursor.key.contains_key("id") {
        return Err(CursorError::Malformed);
    }
    Ok(cursor)
}

/// One term of the order: its SQL expression over the row, the same expression over the cursor's
/// key, and the direction. PostgreSQL sorts NULLs last ascending and first descending.
pub struct Term<'a> {
    pub row: &'a str,
    pub key: &'a str,
    pub desc: bool,
    /// The column has a NOT NULL constraint (`id` always): plain comparisons suffice.
    pub not_null: bool,
}

/// The rows strictly after the key in this order: `OR` over the terms of (all earlier terms
/// equal AND this one after), NULL-aware. The last term must be unique (`id`). When the first
/// term is NOT NULL, a redundant range condition on it comes first, so an index on it serves
/// the page (a page costs the same wherever it is).
pub fn keyset_sql(terms: &[Term]) -> String {
    let after = |t: &Term| {
        if t.not_null {
            format!("{} {} {}", t.row, if t.desc { "<" } else { ">" }, t.key)
        } else if t.desc {
            format!(
                "({r} < {k} OR ({k} IS NULL AND {r} IS NOT NULL))",
                r = t.row,
                k = t.key
            )
        } else {
            format!(
                "({r} > {k} OR ({k} IS NOT NULL AND {r} IS NULL))",
                r = t.row,
                k = t.key
            )
        }
    };
    let mut ors = vec![];
    for (i, t) in terms.iter().enumerate() {
        let mut ands: Vec<String> = terms[..i]
            .iter()
            .map(|e| format!("{} IS NOT DISTINCT FROM {}", e.row, e.key))
            .collect();
        ands.push(after(t));
        ors.push(format!("({})", ands.join(" AND ")));
    }
    let range = match terms.first() {
        Some(t) if t.not_null && terms.len() > 1 => format!(
            "{} {} {} AND ",
            t.row,
            if t.desc { "<=" } else { ">=" },
            t.key
        ),
        _ => String::new(),
    };
    if ors.is_empty() {
        "true".into()
    } else if range.is_empty() {
        format!("({})", ors.join(" OR "))
    } else {
        format!("({range}({}))", ors.join(" OR "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn cursor() -> Cursor {
        Cursor {
            v: 1,
            kid: "k1".into(),
            model: "res.partner".into(),
            uid: 6,
            order: "name asc,id asc".into(),
            domain: domain_digest("[]"),
            lang: "en_US".into(),
            key: json!({"name": "Ada", "id": 7}).as_object().unwrap().clone(),
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let key = derive_key("a-secret-of-at-least-32-bytes-long!!");
        let t = sign(&cursor(), &key);
        let open_as = |t: &str, model, uid, order, domain, lang| {
            open(t, &key, model, uid, order, domain, lang)
        };
        assert_eq!(
            open_as(&t, "res.partner", 6, "name asc,id asc", " [] ", "en_US").unwrap(),
            cursor()
        );
        assert_eq!(claimed_kid(&t).unwrap(), "k1");
        assert_eq!(
            open_as(&t, "res.users", 6, "name asc,id asc", "[]", "en_US"),
            Err(CursorError::OtherQuery("model"))
        );
        assert_eq!(
            open_as(&t, "res.partner", 7, "name asc,id asc", "[]", "en_US"),
            Err(CursorError::OtherQuery("user"))
        );
        assert_eq!(
            open_as(&t, "res.partner", 6, "id asc", "[]", "en_US"),
            Err(CursorError::OtherQuery("order"))
        );
        assert_eq!(
            open_as(
                &t,
                "res.partner",
                6,
                "name asc,id asc",
                "[(1,'=',1)]",
                "en_US"
            ),
            Err(CursorError::OtherQuery("domain"))
        );
        assert_eq!(
            open_as(&t, "res.partner", 6, "name asc,id asc", "[]", "fr_FR"),
            Err(CursorError::OtherQuery("language"))
        );
        // Another key, or a payload rewritten for another user, does not verify.
        let other = derive_key("another-secret-of-at-least-32-bytes!");
        assert_eq!(
            open(
                &t,
                &other,
                "res.partner",
                6,
                "name asc,id asc",
                "[]",
                "en_US"
            ),
            Err(CursorError::BadSignature)
        );
        let (_, sig) = t.split_once('.').unwrap();
        let mut forged = cursor();
        forged.uid = 7;
        let forged = format!("{}.{sig}", B64.encode(serde_json::to_vec(&forged).unwrap()));
        assert_eq!(
            open_as(&forged, "res.partner", 7, "name asc,id asc", "[]", "en_US"),
            Err(CursorError::BadSignature)
        );
        for bad in ["", ".", "x.y", "e30.e30", &"a".repeat(9000)] {
            assert!(
                open_as(bad, "res.partner", 6, "name asc,id asc", "[]", "en_US").is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn keyset_conditions() {
        let term = |row, key, desc, not_null| Term {
            row,
            key,
            desc,
            not_null,
        };
        let terms = [
            term("t.a", "k.a", false, false),
            term("t.id", "k.id", true, true),
        ];
        assert_eq!(
            keyset_sql(&terms),
            "(((t.a > k.a OR (k.a IS NOT NULL AND t.a IS NULL))) OR (t.a IS NOT DISTINCT FROM k.a AND t.id < k.id))"
        );
        let terms = [
            term("t.a", "k.a", true, true),
            term("t.id", "k.id", false, true),
        ];
        assert_eq!(
            keyset_sql(&terms),
            "(t.a <= k.a AND ((t.a < k.a) OR (t.a IS NOT DISTINCT FROM k.a AND t.id > k.id)))"
        );
        assert_eq!(
            keyset_sql(&[term("t.id", "k.id", false, true)]),
            "((t.id > k.id))"
        );
    }

    /// The keyset condition selects exactly the rows after the key in the sort order, NULLs
    /// included (evaluated here with SQL's three-valued logic over Option).
    #[test]
    fn keyset_matches_the_sort_order() {
        fn cmp_term(a: Option<i32>, b: Option<i32>, desc: bool) -> std::cmp::Ordering {
            use std::cmp::Ordering::*;
            let o = match (a, b) {
                (None, None) => Equal,
                (None, Some(_)) => Greater, // NULLS LAST ascending
                (Some(_), None) => Less,
                (Some(x), Some(y)) => x.cmp(&y),
            };
            if desc { o.reverse() } else { o }
        }
        fn after(row: &[Option<i32>], key: &[Option<i32>], desc: &[bool]) -> bool {
            // The SQL of keyset_sql, evaluated: NULL comparisons are false.
            let gt = |r: Option<i32>, k: Option<i32>, d: bool| match (r, k) {
                (Some(r), Some(k)) => {
                    if d {
                        r < k
                    } else {
                        r > k
                    }
                }
                _ => false,
            };
            (0..row.len()).any(|i| {
                (0..i).all(|j| row[j] == key[j])
                    && (gt(row[i], key[i], desc[i])
                        || if desc[i] {
                            key[i].is_none() && row[i].is_some()
                        } else {
                            key[i].is_some() && row[i].is_none()
                        })
            })
        }
        proptest!(|(rows in proptest::collection::vec((proptest::option::of(0..3i32), proptest::option::of(0..3i32)), 1..20),
                    desc in proptest::collection::vec(any::<bool>(), 3))| {
            let rows: Vec<Vec<Option<i32>>> = rows.iter().enumerate()
                .map(|(i, (a, b))| vec![*a, *b, Some(i as i32)]).collect();
            let mut sorted = rows.clone();
            sorted.sort_by(|x, y| (0..3).map(|i| cmp_term(x[i], y[i], desc[i])).find(|o| o.is_ne()).unwrap_or(std::cmp::Ordering::Equal));
            for (pos, key) in sorted.iter().enumerate() {
                let expected: Vec<&Vec<Option<i32>>> = sorted[pos + 1..].iter().collect();
                let got: Vec<&Vec<Option<i32>>> = sorted.iter().filter(|r| after(r, key, &desc)).collect();
                prop_assert_eq!(got, expected);
            }
        });
    }

    proptest! {
        #[test]
        fn opening_garbage_never_panics(s in "\\PC{0,200}") {
            let _ = open(&s, b"k", "m", 1, "id asc", "[]", "en_US");
            let _ = claimed_kid(&s);
        }
    }
}
