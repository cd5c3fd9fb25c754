//! HMAC JSON Web Tokens (RFC 7519 / RFC 7515 compact form), HS256/HS384/HS512 only.
//!
//! Follows RFC 8725: the algorithm to verify with is chosen by the caller (from the key's
//! configuration), never by the token header; `none` is never accepted; signatures are compared
//! in constant time and checked before any claim is looked at.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::Serialize;
use serde_json::{Map, Number, Value};
use sha2::{Sha256, Sha384, Sha512};

/// Longest token accepted, in bytes. Anything longer is refused before decoding, so a hostile
/// header cannot make us decode or hash megabytes.
pub const MAX_TOKEN_LEN: usize = 64 * 1024;

/// Longest header `alg` value quoted back in an error message (it is attacker-controlled).
const MAX_QUOTED_ALG: usize = 32;

/// The HMAC algorithms we support.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    /// Every supported algorithm, strongest last.
    pub const ALL: [Algorithm; 3] = [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512];

    /// The JOSE name, as written in the header `alg`.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Algorithm {
    type Err = JwtError;

    /// Exact, case-sensitive JOSE names (RFC 7518 names are case-sensitive). `none` and every
    /// other name is refused.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "HS256" => Ok(Algorithm::HS256),
            "HS384" => Ok(Algorithm::HS384),
            "HS512" => Ok(Algorithm::HS512),
            other => Err(JwtError::UnsupportedAlgorithm(quote_limited(other))),
        }
    }
}

/// Why a token was refused (or could not be made). Messages are meant for logs and for the
/// `error_description` of a 401; they never contain the secret or the claims.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JwtError {
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("unsupported algorithm {0:?}")]
    UnsupportedAlgorithm(String),
    #[error("algorithm mismatch: expected {expected}, token header says {found:?}")]
    AlgorithmMismatch { expected: String, found: String },
    #[error("signature does not match")]
    BadSignature,
    #[error("token expired")]
    Expired,
    #[error("token not yet valid")]
    NotYetValid,
    /// The string holds the claim name and the reason, e.g. `"exp" is not a NumericDate`.
    #[error("claim {0}")]
    InvalidClaim(String),
    #[error("claims are not a JSON object")]
    ClaimsNotObject,
    #[error("secret is empty")]
    EmptySecret,
}

/// The JOSE header fields we care about. Returned unverified by [`decode_header`], so only
/// use it to pick a key (`kid`), never to decide trust.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    pub alg: String,
    pub kid: Option<String>,
    pub typ: Option<String>,
}

/// Header as we write it; field order gives `{"alg":..,"typ":..,"kid":..}`.
#[derive(Serialize)]
struct HeaderOut<'a> {
    alg: &'a str,
    typ: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
}

/// Signs `claims` (which must be a JSON object) into a compact JWS.
///
/// The header is `{"alg":..,"typ":..,"kid":..}`, `typ` defaulting to `"JWT"` and `kid` left out
/// when `None`. Claims are serialized as given; nothing is added.
pub fn sign(
    claims: &Value,
    secret: &[u8],
    alg: Algorithm,
    kid: Option<&str>,
    typ: Option<&str>,
) -> Result<String, JwtError> {
    if secret.is_empty() {
        return Err(JwtError::EmptySecret);
    }
    if !claims.is_object() {
        return Err(JwtError::ClaimsNotObject);
    }
    let header = HeaderOut {
        alg: alg.as_str(),
        typ: typ.unwrap_or("JWT"),
        kid,
    };
    // Serializing a struct of strings and a JSON Value cannot fail (no non-string map keys).
    let header_json = serde_json::to_vec(&header)
        .map_err(|e| JwtError::Malformed(format!("cannot serialize header: {e}")))?;
    let claims_json = serde_json::to_vec(claims)
        .map_err(|e| JwtError::Malformed(format!("cannot serialize claims: {e}")))?;

    let mut token = String::with_capacity((header_json.len() + claims_json.len()) * 4 / 3 + 96);
    URL_SAFE_NO_PAD.encode_string(&header_json, &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&claims_json, &mut token);
    let signature = mac(alg, secret, token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
    Ok(token)
}

/// Reads the header without verifying anything, so the caller can look up the key by `kid`.
///
/// Applies the same size, segment and encoding checks as [`verify`].
pub fn decode_header(token: &str) -> Result<Header, JwtError> {
    let (header_b64, _, _) = split_token(token)?;
    let obj = decode_header_object(header_b64)?;
    let alg = match obj.get("alg") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(malformed("header \"alg\" is not a string")),
        None => return Err(malformed("header has no \"alg\"")),
    };
    Ok(Header {
        alg,
        kid: optional_string(&obj, "kid")?,
        typ: optional_string(&obj, "typ")?,
    })
}

/// Verifies a compact HMAC JWT and returns its claims.
///
/// `alg` is the only trusted statement of the algorithm: the header's `alg` must equal it.
/// The signature is checked (in constant time) before the payload is even decoded. Then the
/// payload must be a JSON object; `exp`, `nbf` and `iat`, when present, must be finite JSON
/// numbers. The token is expired when `now >= exp + leeway` and not yet valid when
/// `now + leeway < nbf`. A negative leeway counts as 0.
pub fn verify(
    token: &str,
    secret: &[u8],
    alg: Algorithm,
    now_unix: i64,
    leeway_s: i64,
) -> Result<Map<String, Value>, JwtError> {
    let payload = signed_payload(token, secret, alg)?;
    let claims = match serde_json::from_slice::<Value>(&payload) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(JwtError::ClaimsNotObject),
        Err(_) => return Err(malformed("payload is not valid JSON")),
    };
    check_dates(
        [claims.get("exp"), claims.get("nbf"), claims.get("iat")],
        now_unix,
        leeway_s,
    )?;
    Ok(claims)
}

/// The date claims, read without building the claims object (every other member is only
/// lexed). A duplicated date claim is refused, as RFC 7519 §4 allows.
#[derive(serde::Deserialize)]
struct DateClaims {
    #[serde(default, deserialize_with = "present")]
    exp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    nbf: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    iat: Option<Value>,
}

/// A member that is there, even as `null` (which is then refused as not a NumericDate).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    <Value as serde::Deserialize>::deserialize(d).map(Some)
}

/// As [`verify`], returning the verified payload: the JSON text of the claims object, exactly
/// as signed, for callers that hand it on as JSON (`jwt_verify` makes it jsonb) without
/// needing its members.
pub fn verify_payload(
    token: &str,
    secret: &[u8],
    alg: Algorithm,
    now_unix: i64,
    leeway_s: i64,
) -> Result<Vec<u8>, JwtError> {
    let payload = signed_payload(token, secret, alg)?;
    // serde would also read a JSON array into the struct (by position): only an object is claims.
    let is_object = payload
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let dates = match serde_json::from_slice::<DateClaims>(&payload) {
        Ok(d) if is_object => d,
        _ => {
            return Err(match serde_json::from_slice::<Value>(&payload) {
                Ok(Value::Object(_)) => {
                    JwtError::InvalidClaim("a date claim (exp, nbf, iat) appears twice".to_owned())
                }
                Ok(_) => JwtError::ClaimsNotObject,
                Err(_) => malformed("payload is not valid JSON"),
            });
        }
    };
    check_dates(
        [dates.exp.as_ref(), dates.nbf.as_ref(), dates.iat.as_ref()],
        now_unix,
        leeway_s,
    )?;
    Ok(payload)
}

/// The header's `alg` must be `alg`, the signature must match (checked in constant time before
/// the payload is even decoded); returns the decoded payload bytes.
fn signed_payload(token: &str, secret: &[u8], alg: Algorithm) -> Result<Vec<u8>, JwtError> {
    if secret.is_empty() {
        return Err(JwtError::EmptySecret);
    }
    let (header_b64, payload_b64, signature_b64) = split_token(token)?;

    match header_alg(header_b64)? {
        Some(Value::String(found)) if found == alg.as_str() => {}
        Some(Value::String(found)) => {
            return Err(JwtError::AlgorithmMismatch {
                expected: alg.as_str().to_owned(),
                found: quote_limited(&found),
            });
        }
        Some(_) => return Err(malformed("header \"alg\" is not a string")),
        None => return Err(malformed("header has no \"alg\"")),
    }

    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| malformed("signature is not valid base64url"))?;
    // header_b64 and payload_b64 are adjacent slices of `token`, separated by one '.'.
    let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
    if !mac_verify(alg, secret, signing_input.as_bytes(), &signature) {
        return Err(JwtError::BadSignature);
    }
    URL_SAFE_NO_PAD
        .decode(payload_b64)
        .map_err(|_| malformed("payload is not valid base64url"))
}

/// `exp`, `nbf` and `iat` (in that order), when present, must be finite numbers; the token is
/// expired when `now >= exp + leeway` and not yet valid when `now + leeway < nbf`. Public for
/// callers that keep the claims of a token verified earlier and check its dates again.
pub fn check_dates(
    [exp, nbf, iat]: [Option<&Value>; 3],
    now_unix: i64,
    leeway_s: i64,
) -> Result<(), JwtError> {
    let leeway = i128::from(leeway_s.max(0));
    let now = i128::from(now_unix);
    let exp = numeric_date(exp, "exp")?;
    let nbf = numeric_date(nbf, "nbf")?;
    numeric_date(iat, "iat")?;
    if let Some(exp) = exp {
        // now >= exp + leeway  <=>  now - leeway >= exp
        if exp.le(now - leeway) {
            return Err(JwtError::Expired);
        }
    }
    if let Some(nbf) = nbf {
        // now + leeway < nbf
        if nbf.gt(now + leeway) {
            return Err(JwtError::NotYetValid);
        }
    }
    Ok(())
}

fn malformed(why: &str) -> JwtError {
    JwtError::Malformed(why.to_owned())
}

/// Keeps attacker-supplied names short in error messages.
fn quote_limited(s: &str) -> String {
    if s.chars().count() <= MAX_QUOTED_ALG {
        s.to_owned()
    } else {
        let mut out: String = s.chars().take(MAX_QUOTED_ALG).collect();
        out.push('…');
        out
    }
}

/// Size check and split into exactly three segments.
fn split_token(token: &str) -> Result<(&str, &str, &str), JwtError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(JwtError::Malformed(format!(
            "token longer than {MAX_TOKEN_LEN} bytes"
        )));
    }
    let mut parts = token.split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => Ok((h, p, s)),
        _ => Err(JwtError::Malformed(format!(
            "expected 3 dot-separated segments, found {}",
            token.split('.').count()
        ))),
    }
}

/// The header's `alg` member (None when absent), read without building the header object; the
/// header must be a JSON object, and a duplicated `alg` is refused.
fn header_alg(header_b64: &str) -> Result<Option<Value>, JwtError> {
    #[derive(serde::Deserialize)]
    struct AlgOnly {
        #[serde(default, deserialize_with = "present")]
        alg: Option<Value>,
    }
    let bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| malformed("header is not valid base64url"))?;
    let is_object = bytes
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    match serde_json::from_slice::<AlgOnly>(&bytes) {
        Ok(h) if is_object => Ok(h.alg),
        _ => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(_)) => Err(malformed("header has \"alg\" twice")),
            _ => Err(malformed("header is not a JSON object")),
        },
    }
}

fn decode_header_object(header_b64: &str) -> Result<Map<String, Value>, JwtError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(header_b64)
        .map_err(|_| malformed("header is not valid base64url"))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(malformed("header is not a JSON object")),
    }
}

fn optional_string(obj: &Map<String, Value>, name: &str) -> Result<Option<String>, JwtError> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(JwtError::Malformed(format!(
            "header {name:?} is not a string"
        ))),
    }
}

/// A NumericDate claim, kept exact when it is an integer.
#[derive(Clone, Copy, Debug)]
enum NumericDate {
    Int(i128),
    Float(f64),
}

impl NumericDate {
    /// self <= t
    fn le(self, t: i128) -> bool {
        match self {
            NumericDate::Int(v) => v <= t,
            NumericDate::Float(v) => v <= t as f64,
        }
    }

    /// self > t
    fn gt(self, t: i128) -> bool {
        match self {
            NumericDate::Int(v) => v > t,
            NumericDate::Float(v) => v > t as f64,
        }
    }
}

fn numeric_date(claim: Option<&Value>, name: &str) -> Result<Option<NumericDate>, JwtError> {
    match claim {
        None => Ok(None),
        Some(Value::Number(n)) => number_to_date(n)
            .map(Some)
            .ok_or_else(|| JwtError::InvalidClaim(format!("{name:?} is not a finite number"))),
        Some(_) => Err(JwtError::InvalidClaim(format!(
            "{name:?} is not a NumericDate"
        ))),
    }
}

fn number_to_date(n: &Number) -> Option<NumericDate> {
    if let Some(i) = n.as_i64() {
        Some(NumericDate::Int(i128::from(i)))
    } else if let Some(u) = n.as_u64() {
        Some(NumericDate::Int(i128::from(u)))
    } else {
        n.as_f64().filter(|f| f.is_finite()).map(NumericDate::Float)
    }
}

fn mac(alg: Algorithm, secret: &[u8], data: &[u8]) -> Vec<u8> {
    match alg {
        Algorithm::HS256 => mac_with::<Hmac<Sha256>>(secret, data),
        Algorithm::HS384 => mac_with::<Hmac<Sha384>>(secret, data),
        Algorithm::HS512 => mac_with::<Hmac<Sha512>>(secret, data),
    }
}

fn mac_verify(alg: Algorithm, secret: &[u8], data: &[u8], signature: &[u8]) -> bool {
    match alg {
        Algorithm::HS256 => mac_verify_with::<Hmac<Sha256>>(secret, data, signature),
        Algorithm::HS384 => mac_verify_with::<Hmac<Sha384>>(secret, data, signature),
        Algorithm::HS512 => mac_verify_with::<Hmac<Sha512>>(secret, data, signature),
    }
}

fn new_mac<M: Mac + hmac::digest::KeyInit>(secret: &[u8]) -> M {
    // HMAC accepts keys of any length, so this cannot fail.
    <M as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length")
}

fn mac_with<M: Mac + hmac::digest::KeyInit>(secret: &[u8], data: &[u8]) -> Vec<u8> {
    let mut m = new_mac::<M>(secret);
    m.update(data);
    m.finalize().into_bytes().to_vec()
}

fn mac_verify_with<M: Mac + hmac::digest::KeyInit>(
    secret: &[u8],
    data: &[u8],
    signature: &[u8],
) -> bool {
    let mut m = new_mac::<M>(secret);
    m.update(data);
    // verify_slice compares in constant time and refuses a wrong length.
    m.verify_slice(signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const JWT_IO_SECRET: &[u8] = b"your-256-bit-secret";
    /// The jwt.io sample token (HS256).
    const JWT_IO_TOKEN: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    /// RFC 7515 appendix A.1 (HS256, header and payload contain CR LF).
    const RFC7515_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const RFC7515_KEY_B64U: &str =
        "AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow";
    const NOW: i64 = 1_700_000_000;

    fn b64(s: &str) -> String {
        URL_SAFE_NO_PAD.encode(s)
    }

    /// Builds a token from raw header/payload JSON text, signed correctly with `secret`.
    fn raw_token(header: &str, payload: &str, alg: Algorithm, secret: &[u8]) -> String {
        let si = format!("{}.{}", b64(header), b64(payload));
        let sig = URL_SAFE_NO_PAD.encode(mac(alg, secret, si.as_bytes()));
        format!("{si}.{sig}")
    }

    fn hs256(payload: &str) -> String {
        raw_token(
            r#"{"alg":"HS256","typ":"JWT"}"#,
            payload,
            Algorithm::HS256,
            b"k",
        )
    }

    #[test]
    fn algorithm_names() {
        for a in Algorithm::ALL {
            assert_eq!(a.as_str().parse::<Algorithm>(), Ok(a));
            assert_eq!(a.to_string(), a.as_str());
        }
        for bad in ["none", "None", "hs256", "RS256", "", "HS256 "] {
            assert_eq!(
                bad.parse::<Algorithm>(),
                Err(JwtError::UnsupportedAlgorithm(bad.to_owned()))
            );
        }
        assert_eq!(
            "none".parse::<Algorithm>().unwrap_err().to_string(),
            "unsupported algorithm \"none\""
        );
    }

    #[test]
    fn jwt_io_vector_verifies() {
        let claims = verify(JWT_IO_TOKEN, JWT_IO_SECRET, Algorithm::HS256, NOW, 0).unwrap();
        assert_eq!(claims["sub"], "1234567890");
        assert_eq!(claims["name"], "John Doe");
        assert_eq!(claims["iat"], 1516239022);
        assert_eq!(
            verify(JWT_IO_TOKEN, b"wrong", Algorithm::HS256, NOW, 0),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn rfc7515_a1_vector_verifies() {
        let key = URL_SAFE_NO_PAD.decode(RFC7515_KEY_B64U).unwrap();
        let claims = verify(RFC7515_TOKEN, &key, Algorithm::HS256, 1_300_819_379, 0).unwrap();
        assert_eq!(claims["iss"], "joe");
        assert_eq!(claims["http://example.com/is_root"], true);
        // exp = 1300819380: expired at that instant, fine with leeway.
        assert_eq!(
            verify(RFC7515_TOKEN, &key, Algorithm::HS256, 1_300_819_380, 0),
            Err(JwtError::Expired)
        );
        assert!(verify(RFC7515_TOKEN, &key, Algorithm::HS256, 1_300_819_380, 1).is_ok());
        let h = decode_header(RFC7515_TOKEN).unwrap();
        assert_eq!(h.alg, "HS256");
        assert_eq!(h.typ.as_deref(), Some("JWT"));
        assert_eq!(h.kid, None);
    }

    #[test]
    fn pyjwt_hs384_hs512_vectors() {
        // Made with PyJWT 2.15: jwt.encode(claims, "your-256-bit-secret-for-HSxxx", algorithm=...)
        let hs384 = "eyJhbGciOiJIUzM4NCIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.et8r72tLtmtn_64bdWCiEgzOhWJvfUjdX3OatoPXwOZancO90qiFSgZKrxLxzG_l";
        let hs512 = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.x1jVQdpbAgjxxWlEp1xXaFW0I8DGRZKwSTIzRf49Dkt3zL2XrWubw_YOxm18CsCcPOY-7z5PYydr7CxSLbAdRQ";
        let c = verify(
            hs384,
            b"your-256-bit-secret-for-HS384",
            Algorithm::HS384,
            NOW,
            0,
        )
        .unwrap();
        assert_eq!(c["name"], "John Doe");
        let c = verify(
            hs512,
            b"your-256-bit-secret-for-HS512",
            Algorithm::HS512,
            NOW,
            0,
        )
        .unwrap();
        assert_eq!(c["sub"], "1234567890");
        assert!(matches!(
            verify(
                hs512,
                b"your-256-bit-secret-for-HS512",
                Algorithm::HS384,
                NOW,
                0
            ),
            Err(JwtError::AlgorithmMismatch { .. })
        ));
    }

    #[test]
    fn sign_matches_fixed_vectors() {
        // Expected values computed with python3 hmac/hashlib/base64 over the exact header text.
        let t = sign(
            &json!({"sub": "1234567890"}),
            JWT_IO_SECRET,
            Algorithm::HS256,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            t,
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
        );
        let t = sign(
            &json!({"exp": 2_000_000_000}),
            b"0123456789abcdef0123456789abcdef",
            Algorithm::HS512,
            Some("k1"),
            Some("at+jwt"),
        )
        .unwrap();
        assert_eq!(
            t,
            "eyJhbGciOiJIUzUxMiIsInR5cCI6ImF0K2p3dCIsImtpZCI6ImsxIn0.eyJleHAiOjIwMDAwMDAwMDB9.r_Wr3Vp_aBqMKdNrtfD1YrNrgxdqsyRajjwAejjCMLgPCqsaOibdqyDY0KVCIhwMqoG9yHS4YAdtkw5tIQr4vA"
        );
        let h = decode_header(&t).unwrap();
        assert_eq!(
            h,
            Header {
                alg: "HS512".into(),
                kid: Some("k1".into()),
                typ: Some("at+jwt".into())
            }
        );
    }

    #[test]
    fn sign_rejects_bad_input() {
        assert_eq!(
            sign(&json!({}), b"", Algorithm::HS256, None, None),
            Err(JwtError::EmptySecret)
        );
        for v in [json!([1]), json!("s"), json!(1), json!(null), json!(true)] {
            assert_eq!(
                sign(&v, b"k", Algorithm::HS256, None, None),
                Err(JwtError::ClaimsNotObject)
            );
        }
    }

    #[test]
    fn empty_secret_on_verify() {
        assert_eq!(
            verify(JWT_IO_TOKEN, b"", Algorithm::HS256, NOW, 0),
            Err(JwtError::EmptySecret)
        );
    }

    #[test]
    fn segment_count_and_size() {
        for t in [
            "",
            "a",
            "a.b",
            "a.b.c.d",
            "....",
            JWT_IO_TOKEN.replacen('.', "", 1).as_str(),
        ] {
            assert!(
                matches!(
                    verify(t, b"k", Algorithm::HS256, NOW, 0),
                    Err(JwtError::Malformed(_))
                ),
                "{t:?}"
            );
        }
        let long = format!("{}{}", JWT_IO_TOKEN, "A".repeat(MAX_TOKEN_LEN));
        let err = verify(&long, JWT_IO_SECRET, Algorithm::HS256, NOW, 0).unwrap_err();
        assert_eq!(
            err,
            JwtError::Malformed("token longer than 65536 bytes".into())
        );
        assert_eq!(decode_header(&long), Err(err));
    }

    #[test]
    fn strict_base64url() {
        let (h, p, s) = split_token(JWT_IO_TOKEN).unwrap();
        let cases = [
            // padding
            (format!("{h}=.{p}.{s}"), "header is not valid base64url"),
            (format!("{h}.{p}.{s}="), "signature is not valid base64url"),
            // standard-alphabet chars and junk
            (format!("{h}+.{p}.{s}"), "header is not valid base64url"),
            (format!("{h}.{p}.{s}/"), "signature is not valid base64url"),
            (format!("{h} .{p}.{s}"), "header is not valid base64url"),
            (format!("{h}.{p}.{s}é"), "signature is not valid base64url"),
        ];
        for (t, why) in cases {
            assert_eq!(
                verify(&t, JWT_IO_SECRET, Algorithm::HS256, NOW, 0),
                Err(JwtError::Malformed(why.into())),
                "{t}"
            );
        }
        assert!(
            verify(
                &format!("{h}.{p}.{s}"),
                JWT_IO_SECRET,
                Algorithm::HS256,
                NOW,
                0
            )
            .is_ok()
        );
    }

    #[test]
    fn header_checks() {
        let k = b"k";
        let bad_json = format!("{}.{}.{}", b64("not json"), b64("{}"), "AAAA");
        assert_eq!(
            verify(&bad_json, k, Algorithm::HS256, NOW, 0),
            Err(JwtError::Malformed("header is not a JSON object".into()))
        );
        let arr = format!("{}.{}.{}", b64("[1]"), b64("{}"), "AAAA");
        assert_eq!(
            decode_header(&arr),
            Err(JwtError::Malformed("header is not a JSON object".into()))
        );
        let no_alg = raw_token(r#"{"typ":"JWT"}"#, "{}", Algorithm::HS256, k);
        assert_eq!(
            verify(&no_alg, k, Algorithm::HS256, NOW, 0),
            Err(JwtError::Malformed("header has no \"alg\"".into()))
        );
        let num_alg = raw_token(r#"{"alg":256}"#, "{}", Algorithm::HS256, k);
        assert_eq!(
            verify(&num_alg, k, Algorithm::HS256, NOW, 0),
            Err(JwtError::Malformed("header \"alg\" is not a string".into()))
        );
        let num_kid = raw_token(r#"{"alg":"HS256","kid":1}"#, "{}", Algorithm::HS256, k);
        assert_eq!(
            decode_header(&num_kid),
            Err(JwtError::Malformed("header \"kid\" is not a string".into()))
        );
        // kid is not our business in verify.
        assert!(verify(&num_kid, k, Algorithm::HS256, NOW, 0).is_ok());
        // serde could read an array into the header struct by position: refused as not an object.
        let arr = format!("{}.{}.{}", b64(r#"["HS256"]"#), b64("{}"), "AAAA");
        assert_eq!(
            verify(&arr, k, Algorithm::HS256, NOW, 0),
            Err(JwtError::Malformed("header is not a JSON object".into()))
        );
        // A second alg cannot override the first (or the other way round).
        let twice = raw_token(r#"{"alg":"none","alg":"HS256"}"#, "{}", Algorithm::HS256, k);
        assert_eq!(
            verify(&twice, k, Algorithm::HS256, NOW, 0),
            Err(JwtError::Malformed("header has \"alg\" twice".into()))
        );
    }

    #[test]
    fn alg_none_and_mismatch_rejected() {
        // An unsigned "none" token, with and without a signature segment.
        let none = format!("{}.{}.", b64(r#"{"alg":"none"}"#), b64(r#"{"sub":"a"}"#));
        let err = verify(&none, b"k", Algorithm::HS256, NOW, 0).unwrap_err();
        assert_eq!(
            err,
            JwtError::AlgorithmMismatch {
                expected: "HS256".into(),
                found: "none".into()
            }
        );
        assert_eq!(
            err.to_string(),
            "algorithm mismatch: expected HS256, token header says \"none\""
        );
        // A token honestly signed with HS512 is refused when the key says HS256.
        let t = sign(&json!({}), b"k", Algorithm::HS512, None, None).unwrap();
        assert_eq!(
            verify(&t, b"k", Algorithm::HS256, NOW, 0),
            Err(JwtError::AlgorithmMismatch {
                expected: "HS256".into(),
                found: "HS512".into()
            })
        );
        // Case matters.
        let t = raw_token(r#"{"alg":"hs256"}"#, "{}", Algorithm::HS256, b"k");
        assert!(matches!(
            verify(&t, b"k", Algorithm::HS256, NOW, 0),
            Err(JwtError::AlgorithmMismatch { .. })
        ));
        // A very long alg is shortened in the message.
        let long_alg = format!(r#"{{"alg":"{}"}}"#, "X".repeat(1000));
        let t = raw_token(&long_alg, "{}", Algorithm::HS256, b"k");
        match verify(&t, b"k", Algorithm::HS256, NOW, 0) {
            Err(JwtError::AlgorithmMismatch { found, .. }) => {
                assert!(found.chars().count() <= MAX_QUOTED_ALG + 1)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_signature() {
        let t = sign(&json!({"a": 1}), b"secret", Algorithm::HS256, None, None).unwrap();
        assert_eq!(
            verify(&t, b"other", Algorithm::HS256, NOW, 0),
            Err(JwtError::BadSignature)
        );
        // Truncated signature (wrong length) and an empty one.
        let (h, p, s) = split_token(&t).unwrap();
        let short = format!("{h}.{p}.{}", &s[..40]); // 40 chars: canonical base64url, 30 bytes
        assert_eq!(
            verify(&short, b"secret", Algorithm::HS256, NOW, 0),
            Err(JwtError::BadSignature)
        );
        let empty = format!("{h}.{p}.");
        assert_eq!(
            verify(&empty, b"secret", Algorithm::HS256, NOW, 0),
            Err(JwtError::BadSignature)
        );
        // Claims from another token with this token's signature.
        let other = sign(&json!({"a": 2}), b"secret", Algorithm::HS256, None, None).unwrap();
        let (_, p2, _) = split_token(&other).unwrap();
        let spliced = format!("{h}.{p2}.{s}");
        assert_eq!(
            verify(&spliced, b"secret", Algorithm::HS256, NOW, 0),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn signature_checked_before_claims() {
        // Invalid claims but a bad signature: the signature error wins.
        let t = raw_token(
            r#"{"alg":"HS256"}"#,
            r#"{"exp":"soon"}"#,
            Algorithm::HS256,
            b"right",
        );
        assert_eq!(
            verify(&t, b"wrong", Algorithm::HS256, NOW, 0),
            Err(JwtError::BadSignature)
        );
        assert_eq!(
            verify(&t, b"right", Algorithm::HS256, NOW, 0),
            Err(JwtError::InvalidClaim(
                "\"exp\" is not a NumericDate".into()
            ))
        );
        // Payload that is not base64url JSON, but wrongly signed.
        let si = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), "@@@@");
        let t = format!("{si}.{}", URL_SAFE_NO_PAD.encode([0u8; 32]));
        assert_eq!(
            verify(&t, b"k", Algorithm::HS256, NOW, 0),
            Err(JwtError::BadSignature)
        );
        // Same, correctly signed: now the payload encoding is reported.
        let t = format!(
            "{si}.{}",
            URL_SAFE_NO_PAD.encode(mac(Algorithm::HS256, b"k", si.as_bytes()))
        );
        assert_eq!(
            verify(&t, b"k", Algorithm::HS256, NOW, 0),
            Err(JwtError::Malformed("payload is not valid base64url".into()))
        );
    }

    #[test]
    fn payload_must_be_object() {
        for p in ["[]", "1", "\"s\"", "null", "true"] {
            assert_eq!(
                verify(&hs256(p), b"k", Algorithm::HS256, NOW, 0),
                Err(JwtError::ClaimsNotObject),
                "{p}"
            );
        }
        assert_eq!(
            verify(&hs256("{"), b"k", Algorithm::HS256, NOW, 0),
            Err(JwtError::Malformed("payload is not valid JSON".into()))
        );
        assert_eq!(
            verify(&hs256("{} x"), b"k", Algorithm::HS256, NOW, 0),
            Err(JwtError::Malformed("payload is not valid JSON".into()))
        );
    }

    #[test]
    fn verify_payload_returns_the_signed_text_and_refuses_as_verify_does() {
        let text = r#"{"sub":"1", "exp":1700000100,"x":[1,{"y":null}]}"#;
        let t = hs256(text);
        assert_eq!(
            verify_payload(&t, b"k", Algorithm::HS256, NOW, 0).unwrap(),
            text.as_bytes()
        );
        for p in [
            "[]",
            "[1,2,3]",
            " [1700000000]",
            "1",
            "\"s\"",
            "null",
            "true",
        ] {
            assert_eq!(
                verify_payload(&hs256(p), b"k", Algorithm::HS256, NOW, 0),
                Err(JwtError::ClaimsNotObject),
                "{p}"
            );
        }
        for p in ["{", "{} x", "{\"a\":}"] {
            assert_eq!(
                verify_payload(&hs256(p), b"k", Algorithm::HS256, NOW, 0),
                Err(JwtError::Malformed("payload is not valid JSON".into())),
                "{p}"
            );
        }
        for name in ["exp", "nbf", "iat"] {
            let t = hs256(&format!(r#"{{"{name}":null}}"#));
            assert_eq!(
                verify_payload(&t, b"k", Algorithm::HS256, NOW, 0),
                Err(JwtError::InvalidClaim(format!(
                    "{name:?} is not a NumericDate"
                )))
            );
        }
        // A second exp cannot hide behind a first one.
        let t = hs256(r#"{"exp":1800000000,"exp":1}"#);
        assert!(matches!(
            verify_payload(&t, b"k", Algorithm::HS256, NOW, 0),
            Err(JwtError::InvalidClaim(_))
        ));
        assert_eq!(
            verify_payload(&hs256(r#"{"exp":1}"#), b"k", Algorithm::HS256, NOW, 0),
            Err(JwtError::Expired)
        );
        assert_eq!(
            verify_payload(&t, b"wrong", Algorithm::HS256, NOW, 0),
            Err(JwtError::BadSignature)
        );
    }

    #[test]
    fn time_claims_must_be_numbers() {
        for name in ["exp", "nbf", "iat"] {
            for v in ["\"1700000000\"", "null", "true", "[1]", "{}"] {
                let t = hs256(&format!(r#"{{"{name}":{v}}}"#));
                let err = verify(&t, b"k", Algorithm::HS256, NOW, 0).unwrap_err();
                assert_eq!(
                    err,
                    JwtError::InvalidClaim(format!("{name:?} is not a NumericDate"))
                );
                assert_eq!(
                    err.to_string(),
                    format!("claim \"{name}\" is not a NumericDate")
                );
            }
        }
        // Floats and negative numbers are NumericDates.
        let t = hs256(r#"{"exp":1700000000.5,"nbf":-1,"iat":1.5e9}"#);
        assert!(verify(&t, b"k", Algorithm::HS256, NOW, 0).is_ok());
        assert_eq!(
            verify(&t, b"k", Algorithm::HS256, NOW + 1, 0),
            Err(JwtError::Expired)
        );
        // Out-of-range numbers do not even parse as JSON in serde_json.
        let t = hs256(r#"{"exp":1e400}"#);
        assert!(verify(&t, b"k", Algorithm::HS256, NOW, 0).is_err());
        // u64 beyond i64.
        let t = hs256(r#"{"exp":18446744073709551615}"#);
        assert!(verify(&t, b"k", Algorithm::HS256, NOW, 0).is_ok());
    }

    #[test]
    fn exp_boundaries() {
        let exp = NOW + 10;
        let t = hs256(&format!(r#"{{"exp":{exp}}}"#));
        let v = |now, leeway| verify(&t, b"k", Algorithm::HS256, now, leeway);
        assert!(v(exp - 1, 0).is_ok());
        assert_eq!(v(exp, 0), Err(JwtError::Expired));
        assert_eq!(v(exp, 0).unwrap_err().to_string(), "token expired");
        assert!(v(exp, 30).is_ok());
        assert!(v(exp + 29, 30).is_ok());
        assert_eq!(v(exp + 30, 30), Err(JwtError::Expired));
        // Negative leeway is 0.
        assert!(v(exp - 1, -100).is_ok());
        assert_eq!(v(exp, -100), Err(JwtError::Expired));
        // Extreme inputs do not overflow.
        assert_eq!(v(i64::MAX, 0), Err(JwtError::Expired));
        assert!(v(i64::MAX, i64::MAX).is_ok());
        assert!(v(i64::MIN, i64::MAX).is_ok());
    }

    #[test]
    fn nbf_boundaries() {
        let nbf = NOW + 10;
        let t = hs256(&format!(r#"{{"nbf":{nbf}}}"#));
        let v = |now, leeway| verify(&t, b"k", Algorithm::HS256, now, leeway);
        assert_eq!(v(nbf - 1, 0), Err(JwtError::NotYetValid));
        assert_eq!(
            v(nbf - 1, 0).unwrap_err().to_string(),
            "token not yet valid"
        );
        assert!(v(nbf, 0).is_ok());
        assert!(v(nbf - 30, 30).is_ok());
        assert_eq!(v(nbf - 31, 30), Err(JwtError::NotYetValid));
        assert_eq!(v(nbf - 1, -5), Err(JwtError::NotYetValid));
        assert!(v(i64::MAX, i64::MAX).is_ok());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            JwtError::Malformed("header is not valid base64url".into()).to_string(),
            "malformed token: header is not valid base64url"
        );
        assert_eq!(
            JwtError::BadSignature.to_string(),
            "signature does not match"
        );
        assert_eq!(
            JwtError::ClaimsNotObject.to_string(),
            "claims are not a JSON object"
        );
        assert_eq!(JwtError::EmptySecret.to_string(), "secret is empty");
    }

    // ---- property tests ----

    fn json_leaf() -> impl Strategy<Value = Value> {
        // No floats: serde_json's default float parsing is not guaranteed bit-exact on round trip.
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            ".{0,12}".prop_map(Value::String),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        json_leaf().prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// Arbitrary claims objects; time claims, when present, are valid numbers around NOW.
    fn claims() -> impl Strategy<Value = Map<String, Value>> {
        (
            prop::collection::btree_map(".{0,10}", json_value(), 0..8),
            prop::option::of(1i64..1_000_000),
            prop::option::of(0i64..1_000_000),
            prop::option::of(any::<i32>()),
        )
            .prop_map(|(m, exp_in, nbf_ago, iat)| {
                let mut map: Map<String, Value> = m
                    .into_iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "exp" | "nbf" | "iat"))
                    .collect();
                if let Some(d) = exp_in {
                    map.insert("exp".into(), json!(NOW + d));
                }
                if let Some(d) = nbf_ago {
                    map.insert("nbf".into(), json!(NOW - d));
                }
                if let Some(i) = iat {
                    map.insert("iat".into(), json!(i));
                }
                map
            })
    }

    fn algorithm() -> impl Strategy<Value = Algorithm> {
        prop::sample::select(Algorithm::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn sign_verify_round_trip(
            claims in claims(),
            secret in prop::collection::vec(any::<u8>(), 1..80),
            alg in algorithm(),
            kid in prop::option::of(".{0,10}"),
            typ in prop::option::of(".{0,10}"),
        ) {
            let value = Value::Object(claims.clone());
            let token = sign(&value, &secret, alg, kid.as_deref(), typ.as_deref()).unwrap();
            prop_assert_eq!(verify(&token, &secret, alg, NOW, 0).unwrap(), claims);
            let h = decode_header(&token).unwrap();
            prop_assert_eq!(h.alg, alg.as_str());
            prop_assert_eq!(h.kid, kid);
            prop_assert_eq!(h.typ.unwrap(), typ.unwrap_or_else(|| "JWT".into()));
            for other in Algorithm::ALL.into_iter().filter(|a| *a != alg) {
                let is_mismatch = matches!(
                    verify(&token, &secret, other, NOW, 0),
                    Err(JwtError::AlgorithmMismatch { .. })
                );
                prop_assert!(is_mismatch);
            }
        }

        #[test]
        fn verify_never_panics_on_strings(s in ".{0,300}", alg in algorithm(), now in any::<i64>(), leeway in any::<i64>()) {
            let _ = verify(&s, b"k", alg, now, leeway);
            let _ = decode_header(&s);
        }

        #[test]
        fn verify_never_panics_on_token_like(
            h in "[A-Za-z0-9_-]{0,60}", p in "[A-Za-z0-9_-]{0,60}", s in "[A-Za-z0-9_-]{0,90}",
            now in any::<i64>(), leeway in any::<i64>(),
        ) {
            let t = format!("{h}.{p}.{s}");
            let _ = verify(&t, b"k", Algorithm::HS256, now, leeway);
            let _ = decode_header(&t);
        }

        #[test]
        fn verify_payload_agrees_with_verify(
            payload in prop_oneof![
                ".{0,60}",
                "\\{(\"(exp|nbf|iat|sub)\":(-?[0-9]{1,12}(\\.[0-9])?|null|\"x\"|\\[\\]),?){0,4}\\}",
            ],
            now in 1_600_000_000i64..1_800_000_000, leeway in 0i64..100,
        ) {
            let t = raw_token(r#"{"alg":"HS256"}"#, &payload, Algorithm::HS256, b"k");
            let full = verify(&t, b"k", Algorithm::HS256, now, leeway);
            let raw = verify_payload(&t, b"k", Algorithm::HS256, now, leeway);
            match (&full, &raw) {
                (Ok(claims), Ok(bytes)) => {
                    prop_assert_eq!(&serde_json::from_slice::<Value>(bytes).unwrap(), &Value::Object(claims.clone()));
                }
                // verify keeps the last of duplicated members; verify_payload refuses them.
                (_, Err(JwtError::InvalidClaim(why))) if why.contains("twice") => {}
                (Err(a), Err(b)) => prop_assert_eq!(a, b),
                _ => prop_assert!(false, "{:?} vs {:?}", full, raw),
            }
        }

        #[test]
        fn verify_never_panics_on_signed_junk(header in ".{0,40}", payload in ".{0,60}", now in any::<i64>(), leeway in any::<i64>()) {
            // Correctly signed, so every post-signature check is reached.
            let t = raw_token(&header, &payload, Algorithm::HS256, b"k");
            let _ = verify(&t, b"k", Algorithm::HS256, now, leeway);
            let t = raw_token(r#"{"alg":"HS256"}"#, &payload, Algorithm::HS256, b"k");
            let _ = verify(&t, b"k", Algorithm::HS256, now, leeway);
        }

        #[test]
        fn any_byte_flip_fails(
            claims in claims(),
            alg in algorithm(),
            idx in any::<prop::sample::Index>(),
            bit in 0u8..8,
        ) {
            let token = sign(&Value::Object(claims), b"secret", alg, None, None).unwrap();
            let mut bytes = token.clone().into_bytes();
            let i = idx.index(bytes.len());
            bytes[i] ^= 1 << bit;
            // A flip may produce invalid UTF-8, which can never reach verify as &str.
            if let Ok(tampered) = String::from_utf8(bytes) {
                prop_assert!(verify(&tampered, b"secret", alg, NOW, 0).is_err(), "{} -> {}", token, tampered);
            }
        }
    }
}
