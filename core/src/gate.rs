//! Request decision helpers: reading the `Authorization` header and mapping HTTP methods to
//! scopes.

use std::fmt;
use std::str::FromStr;

/// Longest `Authorization` header value accepted, in bytes.
pub const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;

/// What a bearer token looks like it is. Only a shape guess: the caller still verifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential<'a> {
    /// Three non-empty, dot-separated base64url segments.
    Jwt(&'a str),
    /// Anything else (an Odoo API key is 40 hex characters, but Odoo does not insist).
    ApiKey(&'a str),
}

/// Why the `Authorization` header gives no credential.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AuthHeaderError {
    #[error("no Authorization header")]
    Missing,
    #[error("authorization scheme is not Bearer")]
    NotBearer,
    #[error("bearer token is empty")]
    Empty,
    #[error("Authorization header longer than 8192 bytes")]
    TooLong,
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Parses `Authorization: Bearer <token>` (RFC 6750 §2.1).
///
/// The scheme is case-insensitive and followed by one or more spaces or tabs; surrounding
/// spaces and tabs are trimmed. A missing or blank header is `Missing` (RFC 6750 then wants a
/// bare challenge, no error code).
pub fn parse_authorization(header: Option<&str>) -> Result<Credential<'_>, AuthHeaderError> {
    let raw = header.ok_or(AuthHeaderError::Missing)?;
    if raw.len() > MAX_AUTHORIZATION_LEN {
        return Err(AuthHeaderError::TooLong);
    }
    let value = raw.trim_matches(is_ows);
    if value.is_empty() {
        return Err(AuthHeaderError::Missing);
    }
    let (scheme, rest) = match value.find(is_ows) {
        Some(i) => (&value[..i], &value[i..]),
        None => (value, ""),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthHeaderError::NotBearer);
    }
    let token = rest.trim_matches(is_ows);
    if token.is_empty() {
        return Err(AuthHeaderError::Empty);
    }
    Ok(if looks_like_jwt(token) {
        Credential::Jwt(token)
    } else {
        Credential::ApiKey(token)
    })
}

/// Three non-empty segments of base64url characters separated by dots.
pub fn looks_like_jwt(token: &str) -> bool {
    let mut n = 0;
    for seg in token.split('.') {
        n += 1;
        if n > 3
            || seg.is_empty()
            || !seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
    }
    n == 3
}

/// Gateway permissions. Declaration order is the canonical order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Read,
    Write,
    Delete,
    Admin,
}

impl Scope {
    /// Every scope, in canonical order.
    pub const ALL: [Scope; 4] = [Scope::Read, Scope::Write, Scope::Delete, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Delete => "delete",
            Scope::Admin => "admin",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Scope {
    /// The unknown name.
    type Err = String;

    /// Exact lowercase names: RFC 6749 scope tokens are case-sensitive.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "delete" => Ok(Scope::Delete),
            "admin" => Ok(Scope::Admin),
            other => Err(other.to_owned()),
        }
    }
}

/// Parses an RFC 6749 scope string (space-separated; runs of whitespace tolerated) into a
/// deduplicated list in canonical order. An empty string is an empty list. The first unknown
/// name is the error.
pub fn parse_scope_list(s: &str) -> Result<Vec<Scope>, String> {
    let mut seen = [false; Scope::ALL.len()];
    for name in s.split_ascii_whitespace() {
        seen[name.parse::<Scope>()? as usize] = true;
    }
    Ok(Scope::ALL
        .into_iter()
        .filter(|sc| seen[*sc as usize])
        .collect())
}

/// The inverse of [`parse_scope_list`]: canonical order, deduplicated, space-separated.
pub fn format_scope_list(scopes: &[Scope]) -> String {
    Scope::ALL
        .into_iter()
        .filter(|s| scopes.contains(s))
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The scope a request method needs: GET/HEAD/OPTIONS read, POST/PUT/PATCH write, DELETE
/// delete (case-insensitive). Other methods need something we do not grant: `None`.
pub fn required_scope(method: &str) -> Option<Scope> {
    const TABLE: [(&str, Scope); 7] = [
        ("GET", Scope::Read),
        ("HEAD", Scope::Read),
        ("OPTIONS", Scope::Read),
        ("POST", Scope::Write),
        ("PUT", Scope::Write),
        ("PATCH", Scope::Write),
        ("DELETE", Scope::Delete),
    ];
    TABLE
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(method))
        .map(|(_, s)| *s)
}

/// Whether `granted` covers `needed`. `admin` covers everything; otherwise scopes are
/// independent (write does not imply read).
pub fn scopes_allow(granted: &[Scope], needed: Scope) -> bool {
    granted.contains(&Scope::Admin) || granted.contains(&needed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln";
    const KEY: &str = "e925e647b8f32ee3db87b5851c2a861d82e92548";

    #[test]
    fn bearer_parsing() {
        use AuthHeaderError::*;
        let p = parse_authorization;
        assert_eq!(p(None), Err(Missing));
        assert_eq!(p(Some("")), Err(Missing));
        assert_eq!(p(Some(" \t ")), Err(Missing));
        assert_eq!(
            p(Some(&format!("Bearer {KEY}"))),
            Ok(Credential::ApiKey(KEY))
        );
        assert_eq!(p(Some(&format!("bearer {JWT}"))), Ok(Credential::Jwt(JWT)));
        assert_eq!(
            p(Some(&format!("BEARER \t {JWT} "))),
            Ok(Credential::Jwt(JWT))
        );
        assert_eq!(
            p(Some(&format!("\tBeArEr\t{KEY}\t"))),
            Ok(Credential::ApiKey(KEY))
        );
        assert_eq!(p(Some("Bearer")), Err(Empty));
        assert_eq!(p(Some("Bearer   ")), Err(Empty));
        assert_eq!(p(Some("Basic dXNlcjpwYXNz")), Err(NotBearer));
        assert_eq!(p(Some("Bearerx abc")), Err(NotBearer));
        assert_eq!(p(Some(KEY)), Err(NotBearer));
        assert_eq!(p(Some("Token abc")), Err(NotBearer));
        // Only space and tab separate the scheme.
        assert_eq!(p(Some("Bearer\nabc")), Err(NotBearer));
    }

    #[test]
    fn length_limit() {
        let ok = format!("Bearer {}", "a".repeat(MAX_AUTHORIZATION_LEN - 7));
        assert_eq!(ok.len(), MAX_AUTHORIZATION_LEN);
        assert!(parse_authorization(Some(&ok)).is_ok());
        let long = format!("{ok}a");
        assert_eq!(
            parse_authorization(Some(&long)),
            Err(AuthHeaderError::TooLong)
        );
        // Checked before anything else.
        let junk = " ".repeat(MAX_AUTHORIZATION_LEN + 1);
        assert_eq!(
            parse_authorization(Some(&junk)),
            Err(AuthHeaderError::TooLong)
        );
    }

    #[test]
    fn jwt_shape() {
        assert!(looks_like_jwt(JWT));
        assert!(looks_like_jwt("a.b.c"));
        assert!(looks_like_jwt("a-_.B9.z"));
        for t in [
            "", "a", "a.b", "a.b.c.d", "a..c", ".b.c", "a.b.", "a.b+.c", "a.b=.c", "a b.c.d",
            "é.b.c", KEY,
        ] {
            assert!(!looks_like_jwt(t), "{t}");
        }
        assert_eq!(
            parse_authorization(Some("Bearer a.b.")),
            Ok(Credential::ApiKey("a.b."))
        );
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            AuthHeaderError::Missing.to_string(),
            "no Authorization header"
        );
        assert_eq!(
            AuthHeaderError::NotBearer.to_string(),
            "authorization scheme is not Bearer"
        );
        assert_eq!(AuthHeaderError::Empty.to_string(), "bearer token is empty");
    }

    #[test]
    fn scope_names() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        assert_eq!("Read".parse::<Scope>(), Err("Read".to_owned()));
        assert_eq!("".parse::<Scope>(), Err(String::new()));
    }

    #[test]
    fn scope_lists() {
        use Scope::*;
        assert_eq!(parse_scope_list(""), Ok(vec![]));
        assert_eq!(parse_scope_list("   "), Ok(vec![]));
        assert_eq!(parse_scope_list("read"), Ok(vec![Read]));
        assert_eq!(
            parse_scope_list("admin delete write read"),
            Ok(vec![Read, Write, Delete, Admin])
        );
        assert_eq!(
            parse_scope_list(" write  read write "),
            Ok(vec![Read, Write])
        );
        assert_eq!(parse_scope_list("read sudo write"), Err("sudo".to_owned()));
        assert_eq!(parse_scope_list("read,write"), Err("read,write".to_owned()));
        assert_eq!(parse_scope_list("READ"), Err("READ".to_owned()));
        assert_eq!(format_scope_list(&[Admin, Read, Read]), "read admin");
        assert_eq!(format_scope_list(&[]), "");
    }

    #[test]
    fn methods() {
        use Scope::*;
        for (m, s) in [
            ("GET", Read),
            ("get", Read),
            ("Head", Read),
            ("OPTIONS", Read),
            ("POST", Write),
            ("put", Write),
            ("PATCH", Write),
            ("DELETE", Delete),
            ("delete", Delete),
        ] {
            assert_eq!(required_scope(m), Some(s), "{m}");
        }
        for m in ["", "TRACE", "CONNECT", "GETX", " GET", "PROPFIND"] {
            assert_eq!(required_scope(m), None, "{m}");
        }
    }

    #[test]
    fn scope_checks() {
        use Scope::*;
        assert!(scopes_allow(&[Admin], Read));
        assert!(scopes_allow(&[Admin], Delete));
        assert!(scopes_allow(&[Read, Write], Write));
        assert!(!scopes_allow(&[Write], Read));
        assert!(!scopes_allow(&[Read, Write], Delete));
        assert!(!scopes_allow(&[], Read));
        assert!(scopes_allow(&[Read, Admin], Admin));
        assert!(!scopes_allow(&[Read, Write, Delete], Admin));
    }

    proptest! {
        #[test]
        fn parse_authorization_never_panics(s in ".{0,200}") {
            let _ = parse_authorization(Some(&s));
        }

        #[test]
        fn bearer_round_trip(token in "[!-~]{1,100}", spaces in "[ \t]{1,4}", scheme in "(?i)bearer") {
            let header = format!("{scheme}{spaces}{token}");
            let got = parse_authorization(Some(&header)).unwrap();
            let inner = match got { Credential::Jwt(t) | Credential::ApiKey(t) => t };
            prop_assert_eq!(inner, token.as_str());
            prop_assert_eq!(matches!(got, Credential::Jwt(_)), looks_like_jwt(&token));
        }

        #[test]
        fn scope_list_round_trip(v in prop::collection::vec(prop::sample::select(Scope::ALL.to_vec()), 0..8)) {
            let text = v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
            let parsed = parse_scope_list(&text).unwrap();
            prop_assert!(parsed.windows(2).all(|w| w[0] < w[1]));
            for s in &v { prop_assert!(parsed.contains(s)); }
            prop_assert_eq!(parse_scope_list(&format_scope_list(&parsed)).unwrap(), parsed);
        }

        #[test]
        fn scope_list_never_panics(s in ".{0,100}") {
            let _ = parse_scope_list(&s);
        }
    }
}
