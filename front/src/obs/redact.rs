//! What never reaches the traffic log. Every text field of a log record goes through
//! [`Secrets::scrub`] (the credentials of this very request, wherever they appear); query strings
//! and bodies also lose the values of sensitive names (`password`, `client_secret`, `token`,
//! `api_key`, ...). The token routes' bodies are never captured at all (see `capture`).
use base64::Engine;
use serde_json::Value;

/// What a masked value is replaced with.
pub const MASK: &str = "**********";

/// Whether a parameter or JSON member of this name holds a secret. Separators are ignored
/// (`pass_word`, `api-key` and `apiKey` are `password`, `apikey`).
pub fn sensitive_name(name: &str) -> bool {
    let n: String = name
        .chars()
        .filter(|c| !matches!(c, '_' | '-' | '.' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    const PARTS: [&str; 12] = [
        "password",
        "passwd",
        "secret",
        "token",
        "apikey",
        "authorization",
        "credential",
        "privatekey",
        "bearer",
        "session",
        "cookie",
        "jwt",
    ];
    PARTS.iter().any(|p| n.contains(p))
        || matches!(
            n.as_str(),
            "key" | "pin" | "pwd" | "otp" | "pass" | "auth" | "t"
        )
}

/// Whether a word looks like a credential whatever its name: a JWT (`eyJ…` in three
/// base64url parts), an Odoo API key (40 hexadecimal digits; any hex run of 32 or more is
/// taken as one), a gateway client secret (32 or more letters and digits mixing upper case,
/// lower case and digits).
fn credential_word(w: &str) -> bool {
    let parts: Vec<&str> = w.split('.').collect();
    if parts.len() == 3 && parts[0].starts_with("eyJ") && parts.iter().all(|p| p.len() >= 2) {
        return true;
    }
    w.split(['.', '-', '_', '~']).any(|run| {
        run.len() >= 32
            && (run.bytes().all(|b| b.is_ascii_hexdigit())
                || (run.bytes().any(|b| b.is_ascii_uppercase())
                    && run.bytes().any(|b| b.is_ascii_lowercase())
                    && run.bytes().any(|b| b.is_ascii_digit())))
    })
}

/// `text` with every credential-shaped word masked (see [`credential_word`]): what a log keeps
/// of a secret it was not told about (a key pasted in a URL path, a token in `?t=`).
pub fn credentials(text: &str) -> String {
    let is_word = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '~');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_word) {
        out.push_str(&rest[..start]);
        let tail = &rest[start..];
        let end = tail.find(|c: char| !is_word(c)).unwrap_or(tail.len());
        let word = &tail[..end];
        if word.len() >= 32 && credential_word(word) {
            out.push_str(MASK);
        } else {
            out.push_str(word);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Percent-decoded text (`+` kept: only query strings give it a meaning).
fn decoded(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// A URL path as it may be logged: masked after percent-decoding (an encoded secret is
/// masked too), kept as sent when nothing in it is secret.
pub fn path(p: &str, secrets: &Secrets) -> String {
    let plain = decoded(p);
    let masked = secrets.scrub(&plain);
    if masked == plain {
        p.to_string()
    } else {
        masked
    }
}

/// `Authorization` as it may be recorded: the scheme, never the credential.
pub fn authorization(value: &str) -> String {
    let scheme = value.split_whitespace().next().unwrap_or("");
    if scheme.is_empty() {
        MASK.to_string()
    } else {
        format!("{scheme} {MASK}")
    }
}

/// The secret strings of one request, masked wherever they turn up in its log record.
#[derive(Debug, Default, Clone)]
pub struct Secrets(Vec<String>);

impl Secrets {
    /// From the Authorization header: the bearer credential (token or API key), or the Basic
    /// pair (encoded, decoded, and the client secret alone).
    pub fn from_authorization(value: Option<&str>) -> Secrets {
        let mut s = Secrets::default();
        let Some(value) = value else { return s };
        let value = value.trim();
        let (scheme, rest) = value.split_once(' ').unwrap_or(("", value));
        let rest = rest.trim();
        s.add(rest);
        if scheme.eq_ignore_ascii_case("basic")
            && let Some(decoded) = base64::engine::general_purpose::STANDARD
                .decode(rest)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
        {
            if let Some((_, secret)) = decoded.split_once(':') {
                s.add(secret);
                if let Ok(d) = percent_encoding::percent_decode_str(secret).decode_utf8() {
                    s.add(&d);
                }
            }
            s.add(&decoded);
        }
        s
    }

    /// Mask `secret` too (values shorter than 6 characters are not worth it and would mask
    /// ordinary words).
    pub fn add(&mut self, secret: &str) {
        let secret = secret.trim();
        if secret.chars().count() >= 6 && !self.0.iter().any(|s| s == secret) {
            self.0.push(secret.to_string());
            // Longest first, so that a secret containing another is masked whole.
            self.0.sort_by_key(|s| std::cmp::Reverse(s.len()));
        }
    }

    /// `text` without this request's secrets nor anything shaped like a credential.
    pub fn scrub(&self, text: &str) -> String {
        let mut out = text.to_string();
        for s in &self.0 {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), MASK);
            }
        }
        credentials(&out)
    }
}

/// A query string (or a form body) with the values of sensitive parameters masked; the rest is
/// kept as sent.
pub fn query(q: &str) -> String {
    query_with(q, &Secrets::default(), false)
}

/// [`query`], also masking, after percent-decoding each value, this request's secrets and
/// credential-shaped words (a masked value is logged decoded); `all`: every value is masked
/// (the OAuth routes, whose parameters are all credentials or about them).
pub fn query_with(q: &str, secrets: &Secrets, all: bool) -> String {
    q.split('&')
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let name = decoded(&k.replace('+', " "));
            if (all || sensitive_name(&name)) && pair.contains('=') {
                return format!("{k}={MASK}");
            }
            let value = decoded(&v.replace('+', " "));
            let masked = secrets.scrub(&value);
            if masked == value {
                pair.to_string()
            } else {
                format!("{k}={masked}")
            }
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Mask the values of sensitive members, at any depth.
pub fn json(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, v) in o.iter_mut() {
                if sensitive_name(k) && !v.is_null() {
                    *v = Value::String(MASK.to_string());
                } else {
                    json(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(json),
        _ => {}
    }
}

/// In JSON-looking text that did not parse (cut, malformed): mask the string values of
/// sensitive members, `"password": "..."` -> `"password": "**********"`.
pub fn json_text(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut copied = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let Some(end) = string_end(b, i) else { break };
        let key = &text[i + 1..end];
        let mut j = end + 1;
        while j < b.len() && b[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < b.len() && b[j] == b':' && sensitive_name(key) {
            j += 1;
            while j < b.len() && b[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < b.len() && b[j] == b'"' {
                let vend = string_end(b, j).unwrap_or(b.len());
                out.push_str(&text[copied..=j]);
                out.push_str(MASK);
                out.push('"');
                copied = (vend + 1).min(b.len());
                i = copied;
                continue;
            } else if j < b.len() && (b[j].is_ascii_alphanumeric() || b[j] == b'-') {
                // A bare number or literal.
                let mut k = j;
                while k < b.len() && (b[k].is_ascii_alphanumeric() || b"-+.".contains(&b[k])) {
                    k += 1;
                }
                out.push_str(&text[copied..j]);
                out.push('"');
                out.push_str(MASK);
                out.push('"');
                copied = k;
                i = k;
                continue;
            }
        }
        i = end + 1;
    }
    if copied < text.len() {
        out.push_str(&text[copied..]);
    }
    out
}

/// Index of the closing quote of the JSON string opening at `start`.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// A body as it may be logged: UTF-8 (lossy), sensitive members or parameters masked, the
/// request's secrets masked, cut to `limit` bytes. `complete` tells whether `bytes` is the whole
/// body (a cut body cannot be parsed as JSON, so it is masked as text).
pub fn body(
    bytes: &[u8],
    content_type: Option<&str>,
    secrets: &Secrets,
    limit: usize,
    complete: bool,
) -> Option<String> {
    if bytes.is_empty() || limit == 0 {
        return None;
    }
    let ct = content_type.unwrap_or("").to_ascii_lowercase();
    let text = String::from_utf8_lossy(bytes);
    let masked = if ct.starts_with("application/x-www-form-urlencoded") {
        query(&text)
    } else if let Some(mut v) = complete
        .then(|| serde_json::from_slice::<Value>(bytes).ok())
        .flatten()
    {
        json(&mut v);
        v.to_string()
    } else {
        json_text(&text)
    };
    let masked = secrets.scrub(&masked);
    Some(cut(
        &masked,
        limit,
        if complete { None } else { Some(bytes.len()) },
    ))
}

/// At most `limit` bytes of `s` (on a character boundary), with a marker when cut.
pub fn cut(s: &str, limit: usize, known_total: Option<usize>) -> String {
    if s.len() <= limit && known_total.is_none() {
        return s.to_string();
    }
    let mut end = limit.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    if end == s.len() && known_total.is_none() {
        return s.to_string();
    }
    format!("{}…[cut]", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "password",
            "new_password",
            "client_secret",
            "access_token",
            "refresh_token",
            "api_key",
            "X-Api-Key",
            "Authorization",
            "key",
            "token",
        ] {
            assert!(sensitive_name(n), "{n}");
        }
        for n in ["name", "email", "domain", "keyword", "limit", "fields"] {
            assert!(!sensitive_name(n), "{n}");
        }
        // the security review's names: separators do not hide a secret
        for n in [
            "pass_word",
            "Pass-Word",
            "bearer",
            "session",
            "session_id",
            "apiKey",
            "t",
        ] {
            assert!(sensitive_name(n), "{n}");
        }
    }

    #[test]
    fn credential_shaped_words_are_masked_anywhere() {
        let key = "0123456789abcdef0123456789abcdef01234567";
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIyIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ";
        let secret = "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";
        for s in [key, jwt, secret] {
            let out = credentials(&format!("/api/v1/{s}?x=({s})"));
            assert!(!out.contains(s), "{out}");
            assert_eq!(out.matches(MASK).count(), 2, "{out}");
        }
        // ordinary text, ids and model names stay
        for t in [
            "/api/v1/res.partner/42",
            "gw_0123456789ab",
            "[('name','ilike','Harbor Logistics')]",
            "averyveryverylongwordwithoutanydigitsatallinit",
        ] {
            assert_eq!(credentials(t), t);
        }
    }

    #[test]
    fn paths_and_queries_are_masked_after_percent_decoding() {
        let key = "0123456789abcdef0123456789abcdef01234567";
        let encoded: String = key.bytes().map(|b| format!("%{b:02X}")).collect();
        let none = Secrets::default();
        // a key in the path, plain or percent-encoded
        assert_eq!(
            path(&format!("/api/v1/{key}"), &none),
            format!("/api/v1/{MASK}")
        );
        assert_eq!(
            path(&format!("/api/v1/{encoded}"), &none),
            format!("/api/v1/{MASK}")
        );
        assert_eq!(
            path("/api/v1/res%2Epartner", &none),
            "/api/v1/res%2Epartner"
        );
        // a key percent-encoded inside ?domain=
        let q = format!("domain=%5B%28%27ref%27%2C%27%3D%27%2C%27{encoded}%27%29%5D&limit=1");
        let out = query_with(&q, &none, false);
        assert!(!out.contains(&encoded) && !out.contains(key), "{out}");
        assert!(out.ends_with("&limit=1") && out.contains(MASK), "{out}");
        // this request's own (short, non-hex) secret, encoded
        let mut own = Secrets::default();
        own.add("s3cr3t value");
        let out = query_with("domain=s3cr3t%20value&x=1", &own, false);
        assert_eq!(out, format!("domain={MASK}&x=1"));
        // ?t=<token>, and any value on the OAuth routes
        assert_eq!(query_with("t=abc.def", &none, false), format!("t={MASK}"));
        assert_eq!(
            query_with("x=anything&y", &none, true),
            format!("x={MASK}&y")
        );
    }

    #[test]
    fn authorization_is_masked() {
        assert_eq!(authorization("Bearer abc.def"), "Bearer **********");
        assert_eq!(authorization("Basic Zm9vOmJhcg=="), "Basic **********");
        assert_eq!(authorization(""), "**********");
    }

    #[test]
    fn secrets_are_scrubbed_everywhere() {
        let s = Secrets::from_authorization(Some("Bearer tok_1234567890"));
        assert_eq!(
            s.scrub("invalid token tok_1234567890 (tok_1234567890)"),
            "invalid token ********** (**********)"
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("gw_client:s3cr3t%2Bvalue");
        let s = Secrets::from_authorization(Some(&format!("Basic {basic}")));
        let text = format!("{basic} gw_client:s3cr3t%2Bvalue s3cr3t+value s3cr3t%2Bvalue");
        let out = s.scrub(&text);
        assert!(!out.contains("s3cr3t"), "{out}");
        assert!(!out.contains(&basic), "{out}");
    }

    #[test]
    fn queries_and_forms() {
        assert_eq!(
            query("limit=5&access_token=abc&client_secret=x%20y&domain=%5B%5D&flag"),
            "limit=5&access_token=**********&client_secret=**********&domain=%5B%5D&flag"
        );
        assert_eq!(
            query("grant_type=client_credentials&client_id=gw&client_secret=zzz"),
            "grant_type=client_credentials&client_id=gw&client_secret=**********"
        );
    }

    #[test]
    fn json_bodies() {
        let mut v = serde_json::json!({"name": "Ada", "password": "pw", "nested": [{"api_key": "k", "x": 1}], "token": null,
            "pass_word": "pw2", "bearer": "b", "session": "s"});
        json(&mut v);
        for k in ["pass_word", "bearer", "session"] {
            assert_eq!(v[k], MASK, "{k}");
        }
        assert_eq!(v["password"], MASK);
        assert_eq!(v["nested"][0]["api_key"], MASK);
        assert_eq!(v["nested"][0]["x"], 1);
        assert_eq!(v["name"], "Ada");
        assert!(v["token"].is_null());
    }

    #[test]
    fn cut_json_text() {
        let t = r#"{"name": "Ada", "password" : "p\"w", "pin": 1234, "client_secret": "abc"#;
        let out = json_text(t);
        assert_eq!(
            out,
            r#"{"name": "Ada", "password" : "**********", "pin": "**********", "client_secret": "**********""#
        );
        assert_eq!(json_text(r#"{"a": "b"}"#), r#"{"a": "b"}"#);
    }

    #[test]
    fn bodies_are_cut_on_char_boundaries() {
        let s = Secrets::default();
        let b = body("é".repeat(100).as_bytes(), None, &s, 11, false).unwrap();
        assert_eq!(b, format!("{}…[cut]", "é".repeat(5)));
        let b = body(
            br#"{"password":"x","a":1}"#,
            Some("application/json"),
            &s,
            100,
            true,
        );
        assert_eq!(b.unwrap(), r#"{"a":1,"password":"**********"}"#);
        let b = body(
            b"password=x&a=1",
            Some("application/x-www-form-urlencoded"),
            &s,
            100,
            true,
        );
        assert_eq!(b.unwrap(), "password=**********&a=1");
        assert_eq!(body(b"", None, &s, 10, true), None);
    }
}
