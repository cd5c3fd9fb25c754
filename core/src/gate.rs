//! Request decision helpers: reading the `Authorization` header and mapping HTTP methods to
//! scopes.

use crate::ratelimit;
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

// ---------------------------------------------------------------------------------------------
// The gate's decision: SQL gathers the facts of one request, this decides (pass, or which denial
// and why, which scopes, which limit). `src/api/authenticate.rs` is the glue around it, and the
// front turns a denial's code back into its problem type with [`Denial::from_row`].
// ---------------------------------------------------------------------------------------------

/// Why the gate refused a request. `code()` is the `error` column of `authenticate` and the
/// `error` member of the front's problems: a public contract, never renamed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Denial {
    /// 405: the method needs a scope the gateway does not grant.
    MethodNotAllowed,
    /// 401: no `Authorization` header (RFC 6750: a bare challenge).
    MissingCredentials,
    /// 401: an `Authorization` header that gives no bearer credential.
    InvalidRequest,
    /// 401: a credential that is not (or no longer) valid.
    InvalidToken,
    /// 403: the client or the user is not allowed from the request's address.
    IpNotAllowed,
    /// 403: the user's gateway profile is deactivated.
    ProfileInactive,
    /// 403: the credential lacks the scope the method needs.
    InsufficientScope,
    /// 429: the limit that applies is spent.
    RateLimited,
}

impl Denial {
    pub const ALL: [Denial; 8] = [
        Denial::MethodNotAllowed,
        Denial::MissingCredentials,
        Denial::InvalidRequest,
        Denial::InvalidToken,
        Denial::IpNotAllowed,
        Denial::ProfileInactive,
        Denial::InsufficientScope,
        Denial::RateLimited,
    ];

    /// The HTTP status (the `status` column of `authenticate`).
    pub fn status(self) -> u16 {
        match self {
            Denial::MethodNotAllowed => 405,
            Denial::MissingCredentials | Denial::InvalidRequest | Denial::InvalidToken => 401,
            Denial::IpNotAllowed | Denial::ProfileInactive | Denial::InsufficientScope => 403,
            Denial::RateLimited => 429,
        }
    }

    /// The stable code (RFC 6750 where one fits).
    pub fn code(self) -> &'static str {
        match self {
            Denial::MethodNotAllowed | Denial::InvalidRequest => "invalid_request",
            Denial::MissingCredentials => "missing_credentials",
            Denial::InvalidToken => "invalid_token",
            Denial::IpNotAllowed => "ip_not_allowed",
            Denial::ProfileInactive => "profile_inactive",
            Denial::InsufficientScope => "insufficient_scope",
            Denial::RateLimited => "rate_limited",
        }
    }

    /// The denial an `authenticate` row names (status and code together: `invalid_request` is
    /// 401 or 405). Any other 401 is an invalid token; an unknown pair is `None`.
    pub fn from_row(status: i32, code: Option<&str>) -> Option<Denial> {
        let code = code.unwrap_or("");
        Denial::ALL
            .into_iter()
            .find(|d| i32::from(d.status()) == status && d.code() == code)
            .or(match status {
                401 => Some(Denial::InvalidToken),
                _ => None,
            })
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A refusal: which denial, why (the `detail` column), and whether the row names the caller
/// (a known caller refused for its scope or its quota; an unidentified one never is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub denial: Denial,
    pub detail: String,
    pub names_caller: bool,
}

impl Refusal {
    pub fn new(denial: Denial, detail: impl Into<String>) -> Self {
        Refusal {
            denial,
            detail: detail.into(),
            names_caller: false,
        }
    }

    fn naming_caller(mut self) -> Self {
        self.names_caller = true;
        self
    }
}

/// A limit as stored (a profile's or the global setting): requests per named window.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredLimit {
    pub requests: i32,
    /// `minute`, `hour` or `day`.
    pub window: String,
    /// `sliding` or `fixed`; `None` on a database older than 0.4.0, whose counters are fixed.
    pub algorithm: Option<String>,
}

/// The limit a request is counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limit {
    pub requests: i32,
    pub window_s: i32,
    pub algorithm: crate::counter::Algorithm,
}

impl Limit {
    /// The 429 for this limit once its counter refused a hit.
    pub fn exceeded(&self) -> Refusal {
        let unit = ratelimit::WINDOWS
            .iter()
            .find(|(_, s)| *s == self.window_s)
            .map_or("minute", |(n, _)| *n);
        Refusal::new(
            Denial::RateLimited,
            format!(
                "rate limit of {} requests per {unit} exceeded",
                self.requests
            ),
        )
        .naming_caller()
    }
}

/// The user's gateway profile (`api_gateway.profile`), when there is one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileFacts {
    pub active: bool,
    /// The request's address is within the profile's list (an empty list allows all).
    pub ip_allowed: bool,
    /// The profile's own limit; `None`: the global one applies.
    pub limit: Option<StoredLimit>,
}

/// What the database says about an access token whose signature verified (`api_gateway.token`
/// and its client, the client's Odoo user).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenFacts {
    /// The key named by the token's `kid` is current, or retired but still valid.
    pub signing_key_valid: bool,
    /// The `client_id` claim of the token.
    pub claimed_client: Option<String>,
    /// The token's row; `None` when its `jti` is unknown (not issued here, or purged).
    pub row: Option<TokenRow>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRow {
    pub client_id: String,
    pub revoked: bool,
    pub client_active: bool,
    /// The request's address is within the client's list (an empty list allows all).
    pub client_ip_allowed: bool,
    pub user_active: bool,
    /// The scopes the token was issued with.
    pub scopes: Vec<String>,
    /// The client's Odoo user is a settings administrator (`base.group_system`) now.
    pub user_is_admin: bool,
}

/// Who is calling, as far as the database can tell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CallerFacts {
    /// An access token of ours.
    Token(TokenFacts),
    /// An Odoo API key that verified (key row valid, user active).
    ApiKey {
        /// The key's user is a settings administrator (`base.group_system`) now.
        user_is_admin: bool,
    },
}

/// Everything the decision needs, gathered by one statement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Facts {
    pub caller: CallerFacts,
    pub profile: Option<ProfileFacts>,
    /// The global limit (`api_gateway.settings`).
    pub global_limit: StoredLimit,
}

/// A request the gate lets through: the scopes the caller holds now, and the limit to count it
/// against (`None`: no limit applies, nothing is counted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pass {
    pub scopes: Vec<Scope>,
    pub limit: Option<Limit>,
}

/// The limit that applies: the profile's when it sets one, else the global one; a limit of 0
/// means no limit (`counter::UNLIMITED`). An unknown window name counts per minute.
pub fn limit_that_applies(profile: Option<&ProfileFacts>, global: &StoredLimit) -> Option<Limit> {
    let stored = profile.and_then(|p| p.limit.as_ref()).unwrap_or(global);
    if crate::counter::is_unlimited(stored.requests) {
        return None;
    }
    Some(Limit {
        requests: stored.requests,
        window_s: ratelimit::window_seconds(&stored.window).unwrap_or(60),
        algorithm: match stored.algorithm.as_deref() {
            None => crate::counter::Algorithm::Fixed,
            Some(name) => crate::counter::Algorithm::parse(name).unwrap_or_default(),
        },
    })
}

/// The scopes an Odoo API key grants: every scope but `admin`, and `admin` to a settings
/// administrator (Odoo keys carry no scope of ours).
pub fn api_key_scopes(user_is_admin: bool) -> Vec<Scope> {
    Scope::ALL
        .into_iter()
        .filter(|s| *s != Scope::Admin || user_is_admin)
        .collect()
}

/// A token's scopes as they hold now: `admin` only while its user is a settings administrator.
/// Names that are not scopes are dropped.
pub fn token_scopes(stored: &[String], user_is_admin: bool) -> Vec<Scope> {
    let mut scopes: Vec<Scope> = Scope::ALL
        .into_iter()
        .filter(|s| stored.iter().any(|n| n == s.as_str()))
        .collect();
    if !user_is_admin {
        scopes.retain(|s| *s != Scope::Admin);
    }
    scopes
}

/// Whether the facts that passed may be kept and reused for the next request of the same
/// credential from the same address: everything but the scope and the quota passed (those two
/// are decided again on every request).
pub fn cacheable(facts: &Facts) -> bool {
    match decide(facts, Scope::Read) {
        Ok(_) => true,
        Err(r) => r.denial == Denial::InsufficientScope,
    }
}

/// The gate's decision for a request needing `needed`, given its facts. Checks run in a fixed
/// order and the first that fails is the answer: the credential (signing key, token known,
/// client claim, revocation, client and user active), the client's address list, the profile
/// (active, address list), the scope. The quota is counted by the caller on a pass, and a
/// refused hit is [`Limit::exceeded`].
pub fn decide(facts: &Facts, needed: Scope) -> Result<Pass, Refusal> {
    let scopes = match &facts.caller {
        CallerFacts::Token(t) => {
            let invalid = |why: &str| Err(Refusal::new(Denial::InvalidToken, why));
            if !t.signing_key_valid {
                return invalid("unknown or retired signing key");
            }
            let Some(row) = &t.row else {
                return invalid("token was not issued by this gateway");
            };
            if t.claimed_client.as_deref() != Some(row.client_id.as_str()) {
                return invalid("token does not match its client");
            }
            if row.revoked {
                return invalid("token has been revoked");
            }
            if !row.client_active {
                return invalid("the client has been deactivated");
            }
            if !row.user_active {
                return invalid("the client's Odoo user is archived");
            }
            if !row.client_ip_allowed {
                return Err(Refusal::new(
                    Denial::IpNotAllowed,
                    "the client is not allowed from this IP address",
                ));
            }
            token_scopes(&row.scopes, row.user_is_admin)
        }
        CallerFacts::ApiKey { user_is_admin } => api_key_scopes(*user_is_admin),
    };
    if let Some(p) = &facts.profile {
        if !p.active {
            return Err(Refusal::new(
                Denial::ProfileInactive,
                "API access is disabled for this user",
            ));
        }
        if !p.ip_allowed {
            return Err(Refusal::new(
                Denial::IpNotAllowed,
                "the user is not allowed from this IP address",
            ));
        }
    }
    if !scopes_allow(&scopes, needed) {
        return Err(Refusal::new(
            Denial::InsufficientScope,
            format!("this request needs the \"{}\" scope", needed.as_str()),
        )
        .naming_caller());
    }
    Ok(Pass {
        scopes,
        limit: limit_that_applies(facts.profile.as_ref(), &facts.global_limit),
    })
}

/// The refusal of a request whose method needs no scope we grant, or whose `Authorization`
/// header gives no credential: decided before any fact is read.
pub fn read_request<'a>(
    method: &str,
    authorization: Option<&'a str>,
) -> Result<(Scope, Credential<'a>), Refusal> {
    let Some(needed) = required_scope(method) else {
        return Err(Refusal::new(
            Denial::MethodNotAllowed,
            "unsupported HTTP method",
        ));
    };
    match parse_authorization(authorization) {
        Ok(c) => Ok((needed, c)),
        Err(AuthHeaderError::Missing) => Err(Refusal::new(
            Denial::MissingCredentials,
            "no credentials: send Authorization: Bearer <token or API key>",
        )),
        Err(e) => Err(Refusal::new(Denial::InvalidRequest, e.to_string())),
    }
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

    // -- the decision --------------------------------------------------------------------------

    #[test]
    fn denial_wire_strings() {
        // The public contract: (status, error) of every denial.
        let expected = [
            (Denial::MethodNotAllowed, 405, "invalid_request"),
            (Denial::MissingCredentials, 401, "missing_credentials"),
            (Denial::InvalidRequest, 401, "invalid_request"),
            (Denial::InvalidToken, 401, "invalid_token"),
            (Denial::IpNotAllowed, 403, "ip_not_allowed"),
            (Denial::ProfileInactive, 403, "profile_inactive"),
            (Denial::InsufficientScope, 403, "insufficient_scope"),
            (Denial::RateLimited, 429, "rate_limited"),
        ];
        assert_eq!(expected.len(), Denial::ALL.len());
        for (d, status, code) in expected {
            assert_eq!((d.status(), d.code()), (status, code), "{d:?}");
            assert_eq!(Denial::from_row(status.into(), Some(code)), Some(d));
        }
        assert_eq!(
            Denial::from_row(401, Some("whatever")),
            Some(Denial::InvalidToken)
        );
        assert_eq!(Denial::from_row(401, None), Some(Denial::InvalidToken));
        assert_eq!(Denial::from_row(403, Some("whatever")), None);
        assert_eq!(Denial::from_row(500, Some("rate_limited")), None);
    }

    fn minute(requests: i32) -> StoredLimit {
        StoredLimit {
            requests,
            window: "minute".into(),
            algorithm: Some("sliding".into()),
        }
    }

    fn good_token() -> Facts {
        Facts {
            caller: CallerFacts::Token(TokenFacts {
                signing_key_valid: true,
                claimed_client: Some("gw_1".into()),
                row: Some(TokenRow {
                    client_id: "gw_1".into(),
                    revoked: false,
                    client_active: true,
                    client_ip_allowed: true,
                    user_active: true,
                    scopes: vec!["read".into(), "write".into()],
                    user_is_admin: false,
                }),
            }),
            profile: None,
            global_limit: minute(60),
        }
    }

    fn token_row(f: &mut Facts) -> &mut TokenRow {
        match &mut f.caller {
            CallerFacts::Token(t) => t.row.as_mut().unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn token_checks_in_order() {
        let deny = |f: &Facts, needed| decide(f, needed).unwrap_err();
        let ok = good_token();
        let pass = decide(&ok, Scope::Read).unwrap();
        assert_eq!(pass.scopes, vec![Scope::Read, Scope::Write]);
        assert_eq!(
            pass.limit,
            Some(Limit {
                requests: 60,
                window_s: 60,
                algorithm: crate::counter::Algorithm::Sliding
            })
        );
        let mut f = ok.clone();
        if let CallerFacts::Token(t) = &mut f.caller {
            t.claimed_client = Some("gw_2".into());
        }
        assert_eq!(
            deny(&f, Scope::Read).detail,
            "token does not match its client"
        );
        let mut f = ok.clone();
        if let CallerFacts::Token(t) = &mut f.caller {
            t.claimed_client = None;
        }
        assert_eq!(deny(&f, Scope::Read).denial, Denial::InvalidToken);
        let mut f = ok.clone();
        token_row(&mut f).revoked = true;
        token_row(&mut f).client_ip_allowed = false;
        // The credential is refused before the address is looked at.
        let r = deny(&f, Scope::Read);
        assert_eq!(
            (r.denial, r.detail.as_str()),
            (Denial::InvalidToken, "token has been revoked")
        );
        assert!(!r.names_caller);
        let mut f = ok.clone();
        token_row(&mut f).client_ip_allowed = false;
        assert_eq!(deny(&f, Scope::Read).denial, Denial::IpNotAllowed);
        let r = deny(&ok, Scope::Delete);
        assert_eq!(r.denial, Denial::InsufficientScope);
        assert_eq!(r.detail, "this request needs the \"delete\" scope");
        assert!(r.names_caller);
    }

    #[test]
    fn admin_scope_holds_only_for_administrators() {
        let mut f = good_token();
        token_row(&mut f).scopes = vec!["admin".into()];
        assert_eq!(
            decide(&f, Scope::Read).unwrap_err().denial,
            Denial::InsufficientScope
        );
        token_row(&mut f).user_is_admin = true;
        assert_eq!(
            decide(&f, Scope::Delete).unwrap().scopes,
            vec![Scope::Admin]
        );
        let key = |admin| Facts {
            caller: CallerFacts::ApiKey {
                user_is_admin: admin,
            },
            ..good_token()
        };
        assert_eq!(
            decide(&key(false), Scope::Delete).unwrap().scopes,
            vec![Scope::Read, Scope::Write, Scope::Delete]
        );
        let r = decide(&key(false), Scope::Admin).unwrap_err();
        assert_eq!(r.detail, "this request needs the \"admin\" scope");
        assert!(decide(&key(true), Scope::Admin).is_ok());
    }

    #[test]
    fn limits() {
        let profile = |limit: Option<StoredLimit>| ProfileFacts {
            active: true,
            ip_allowed: true,
            limit,
        };
        let global = minute(60);
        // A limit of 0 is no limit, wherever it is stored.
        assert_eq!(limit_that_applies(None, &minute(0)), None);
        assert_eq!(
            limit_that_applies(Some(&profile(Some(minute(0)))), &global),
            None
        );
        // The profile's limit wins over the global one, even a bigger one...
        let day = StoredLimit {
            requests: 5000,
            window: "day".into(),
            algorithm: Some("fixed".into()),
        };
        assert_eq!(
            limit_that_applies(Some(&profile(Some(day))), &global),
            Some(Limit {
                requests: 5000,
                window_s: 86_400,
                algorithm: crate::counter::Algorithm::Fixed
            })
        );
        // ...and a profile without one leaves the global one.
        assert_eq!(
            limit_that_applies(Some(&profile(None)), &global).map(|l| l.requests),
            Some(60)
        );
        // Before 0.4.0 there was no algorithm column: fixed windows.
        let old = StoredLimit {
            algorithm: None,
            ..minute(10)
        };
        assert_eq!(
            limit_that_applies(None, &old).unwrap().algorithm,
            crate::counter::Algorithm::Fixed
        );
        let hour = Limit {
            requests: 7,
            window_s: 3600,
            algorithm: crate::counter::Algorithm::Sliding,
        };
        let r = hour.exceeded();
        assert_eq!(r.denial, Denial::RateLimited);
        assert_eq!(r.detail, "rate limit of 7 requests per hour exceeded");
        assert!(r.names_caller);
    }

    #[test]
    fn request_shape() {
        assert_eq!(
            read_request("TRACE", Some("Bearer x")).unwrap_err().denial,
            Denial::MethodNotAllowed
        );
        assert_eq!(
            read_request("GET", None).unwrap_err().denial,
            Denial::MissingCredentials
        );
        let r = read_request("GET", Some("Basic abc")).unwrap_err();
        assert_eq!(
            (r.denial, r.detail.as_str()),
            (Denial::InvalidRequest, "authorization scheme is not Bearer")
        );
        assert_eq!(
            read_request("delete", Some("Bearer k")),
            Ok((Scope::Delete, Credential::ApiKey("k")))
        );
    }

    fn arb_stored() -> impl Strategy<Value = StoredLimit> {
        (
            0..3i32,
            prop::sample::select(vec!["minute", "hour", "day"]),
            prop::option::of(prop::sample::select(vec!["sliding", "fixed"])),
        )
            .prop_map(|(requests, window, algorithm)| StoredLimit {
                requests,
                window: window.into(),
                algorithm: algorithm.map(Into::into),
            })
    }

    fn arb_facts() -> impl Strategy<Value = Facts> {
        let names = prop::collection::vec(
            prop::sample::select(vec!["read", "write", "delete", "admin", "sudo"]),
            0..4,
        );
        let row = (
            prop::bool::weighted(0.9),
            any::<bool>(),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.8),
            names,
            any::<bool>(),
        )
            .prop_map(
                |(
                    same_client,
                    revoked,
                    client_active,
                    client_ip_allowed,
                    user_active,
                    scopes,
                    admin,
                )| {
                    (
                        same_client,
                        TokenRow {
                            client_id: "gw_a".into(),
                            revoked,
                            client_active,
                            client_ip_allowed,
                            user_active,
                            scopes: scopes.into_iter().map(Into::into).collect(),
                            user_is_admin: admin,
                        },
                    )
                },
            );
        let token = (prop::bool::weighted(0.9), prop::option::weighted(0.9, row)).prop_map(
            |(signing_key_valid, row)| {
                let claimed = match &row {
                    Some((true, _)) | None => "gw_a",
                    Some((false, _)) => "gw_b",
                };
                CallerFacts::Token(TokenFacts {
                    signing_key_valid,
                    claimed_client: Some(claimed.into()),
                    row: row.map(|(_, r)| r),
                })
            },
        );
        let caller = prop_oneof![
            token,
            any::<bool>().prop_map(|user_is_admin| CallerFacts::ApiKey { user_is_admin }),
        ];
        let profile = prop::option::of(
            (
                prop::bool::weighted(0.8),
                prop::bool::weighted(0.8),
                prop::option::of(arb_stored()),
            )
                .prop_map(|(active, ip_allowed, limit)| ProfileFacts {
                    active,
                    ip_allowed,
                    limit,
                }),
        );
        (caller, profile, arb_stored()).prop_map(|(caller, profile, global_limit)| Facts {
            caller,
            profile,
            global_limit,
        })
    }

    proptest! {
        /// A pass means every fact holds and the scopes allow the method; a refusal names the
        /// first check that failed, in the documented order.
        #[test]
        fn decision_matches_its_rules(f in arb_facts(), needed in prop::sample::select(Scope::ALL.to_vec())) {
            let mut failed: Vec<Denial> = Vec::new();
            let scopes = match &f.caller {
                CallerFacts::Token(t) => {
                    match &t.row {
                        _ if !t.signing_key_valid => failed.push(Denial::InvalidToken),
                        None => failed.push(Denial::InvalidToken),
                        Some(r) => {
                            if t.claimed_client.as_deref() != Some(r.client_id.as_str())
                                || r.revoked || !r.client_active || !r.user_active {
                                failed.push(Denial::InvalidToken);
                            }
                            if !r.client_ip_allowed { failed.push(Denial::IpNotAllowed); }
                        }
                    }
                    t.row.as_ref().map(|r| token_scopes(&r.scopes, r.user_is_admin)).unwrap_or_default()
                }
                CallerFacts::ApiKey { user_is_admin } => api_key_scopes(*user_is_admin),
            };
            if let Some(p) = &f.profile {
                if !p.active { failed.push(Denial::ProfileInactive); }
                if !p.ip_allowed { failed.push(Denial::IpNotAllowed); }
            }
            if !scopes_allow(&scopes, needed) { failed.push(Denial::InsufficientScope); }
            match decide(&f, needed) {
                Ok(pass) => {
                    prop_assert!(failed.is_empty(), "passed despite {:?}", failed);
                    prop_assert!(scopes_allow(&pass.scopes, needed));
                    prop_assert_eq!(pass.scopes.contains(&Scope::Admin), match &f.caller {
                        CallerFacts::Token(t) => t.row.as_ref().is_some_and(|r| r.user_is_admin && r.scopes.iter().any(|s| s == "admin")),
                        CallerFacts::ApiKey { user_is_admin } => *user_is_admin,
                    });
                    let stored = f.profile.as_ref().and_then(|p| p.limit.as_ref()).unwrap_or(&f.global_limit);
                    prop_assert_eq!(pass.limit.is_none(), stored.requests == 0);
                    if let Some(l) = pass.limit { prop_assert_eq!(l.requests, stored.requests); }
                }
                Err(r) => {
                    prop_assert_eq!(Some(&r.denial), failed.first());
                    prop_assert_eq!(r.names_caller, r.denial == Denial::InsufficientScope);
                }
            }
            // Everything but the scope is independent of the method: what may be cached.
            prop_assert_eq!(cacheable(&f), failed.iter().all(|d| *d == Denial::InsufficientScope));
        }
    }
}
