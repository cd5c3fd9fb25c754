//! Random identifiers and secrets from the operating system's CSPRNG, plus small hashing and
//! comparison helpers.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Lowercase hexadecimal digits.
pub const HEX_LOWER: &[u8] = b"0123456789abcdef";
/// `[A-Za-z0-9]`.
pub const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Fills `buf` from the OS CSPRNG.
///
/// # Panics
/// If the operating system cannot supply randomness; there is no safe fallback for secrets.
pub fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("operating system random number generator failed");
}

/// `len` characters drawn uniformly from `alphabet`, using rejection sampling so that no
/// character is more likely than another.
///
/// # Panics
/// If `alphabet` is empty, longer than 256 bytes, or not all ASCII (programming errors), or if
/// the OS CSPRNG fails.
pub fn random_token(len: usize, alphabet: &[u8]) -> String {
    assert!(
        !alphabet.is_empty() && alphabet.len() <= 256 && alphabet.is_ascii(),
        "alphabet must be 1..=256 ASCII bytes"
    );
    let n = alphabet.len();
    // Bytes >= limit would favour the first (256 % n) characters; they are thrown away.
    let limit = 256 - (256 % n);
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        fill_random(&mut buf);
        for &b in &buf {
            if out.len() == len {
                break;
            }
            if usize::from(b) < limit {
                out.push(char::from(alphabet[usize::from(b) % n]));
            }
        }
    }
    out
}

/// A public OAuth client id: `gw_` and 12 lowercase hex characters (48 bits; not a secret).
pub fn new_client_id() -> String {
    format!("gw_{}", random_token(12, HEX_LOWER))
}

/// An OAuth client secret: 32 characters of `[A-Za-z0-9]` (about 190 bits).
pub fn new_client_secret() -> String {
    random_token(32, ALPHANUMERIC)
}

/// A JWT HMAC signing key: 64 hex characters (256 bits, full entropy as RFC 8725 asks).
pub fn new_signing_secret() -> String {
    random_token(64, HEX_LOWER)
}

/// A Standard Webhooks endpoint secret: `whsec_` and standard, padded base64 of 32 random
/// bytes (padded because Python's `standardwebhooks` decodes with `b64decode`).
pub fn new_webhook_secret() -> String {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes);
    format!("whsec_{}", STANDARD.encode(bytes))
}

/// Lowercase hex SHA-256 of the UTF-8 text.
pub fn sha256_hex(s: &str) -> String {
    to_hex(&Sha256::digest(s.as_bytes()))
}

/// Lowercase hex of bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX_LOWER[usize::from(b >> 4)]));
        out.push(char::from(HEX_LOWER[usize::from(b & 0x0f)]));
    }
    out
}

/// Equality whose time does not depend on where the inputs differ (it does depend on whether
/// the lengths differ, which is not secret for our fixed-length digests).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    #[test]
    fn shapes() {
        let id = new_client_id();
        assert_eq!(id.len(), 15);
        assert!(id.starts_with("gw_"));
        assert!(id[3..].bytes().all(|b| HEX_LOWER.contains(&b)));

        let s = new_client_secret();
        assert_eq!(s.len(), 32);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));

        let k = new_signing_secret();
        assert_eq!(k.len(), 64);
        assert!(k.bytes().all(|b| HEX_LOWER.contains(&b)));

        let w = new_webhook_secret();
        assert!(w.starts_with("whsec_"));
        assert_eq!(w.len(), 6 + 44);
        assert_eq!(STANDARD.decode(&w[6..]).unwrap().len(), 32);
    }

    #[test]
    fn tokens_differ() {
        let set: HashSet<String> = (0..100).map(|_| new_signing_secret()).collect();
        assert_eq!(set.len(), 100);
        assert_ne!(new_client_id(), new_client_id());
        assert_ne!(new_webhook_secret(), new_webhook_secret());
    }

    #[test]
    fn random_token_edges() {
        assert_eq!(random_token(0, b"ab"), "");
        assert_eq!(random_token(50, b"x"), "x".repeat(50));
        let all: Vec<u8> = (0u8..128).collect();
        let t = random_token(1000, &all);
        assert_eq!(t.len(), 1000);
        assert!(t.is_ascii());
    }

    #[test]
    #[should_panic(expected = "alphabet")]
    fn empty_alphabet_panics() {
        random_token(1, b"");
    }

    #[test]
    #[should_panic(expected = "alphabet")]
    fn non_ascii_alphabet_panics() {
        random_token(1, "é".as_bytes());
    }

    #[test]
    fn roughly_uniform() {
        // 62 characters: 256 % 62 = 8, so without rejection 'A'..'H' would be ~25% likelier.
        let t = random_token(62_000, ALPHANUMERIC);
        let mut counts = [0u32; 256];
        for b in t.bytes() {
            counts[usize::from(b)] += 1;
        }
        for &c in ALPHANUMERIC {
            let n = counts[usize::from(c)];
            // Expected 1000 each; a 25% bias would put 'A'..'H' near 1240.
            assert!((850..1150).contains(&n), "{} appeared {n} times", c as char);
        }
    }

    #[test]
    fn hashing_and_comparison() {
        assert_eq!(
            sha256_hex(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(to_hex(&[0x00, 0xff, 0x0a]), "00ff0a");
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    proptest! {
        #[test]
        fn token_uses_alphabet(len in 0usize..200, alphabet in prop::collection::vec(0u8..128, 1..100)) {
            let t = random_token(len, &alphabet);
            prop_assert_eq!(t.len(), len);
            prop_assert!(t.bytes().all(|b| alphabet.contains(&b)));
        }

        #[test]
        fn ct_eq_matches_eq(a in prop::collection::vec(any::<u8>(), 0..40), b in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(constant_time_eq(&a, &b), a == b);
            prop_assert!(constant_time_eq(&a, &a.clone()));
        }
    }
}
