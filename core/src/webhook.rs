//! Outbound webhook signing per Standard Webhooks 1.0, and the retry schedule.
//!
//! Signature: `v1,` + base64(HMAC-SHA256(secret, "{msg_id}.{timestamp}.{body}")), where the
//! secret is the base64 part of `whsec_<base64>`. During key rotation the `webhook-signature`
//! header carries several space-separated signatures; any valid `v1` one is enough.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// Prefix of Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// Clock skew receivers are told to allow, in seconds (the spec's 5 minutes).
pub const TIMESTAMP_TOLERANCE_S: i64 = 300;

/// Seconds to wait before each retry: now, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
const BACKOFF: [u64; 7] = [5, 300, 1800, 7200, 18_000, 36_000, 36_000];

/// Total delivery attempts: the first one plus one per backoff step.
pub const MAX_ATTEMPTS: u32 = BACKOFF.len() as u32 + 1;

/// Secrets are decoded with or without `=` padding (other implementations differ).
const SECRET_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why a webhook secret is unusable.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum WebhookSecretError {
    #[error("webhook secret is not valid base64 (expected \"whsec_<base64>\")")]
    NotBase64,
    #[error("webhook secret is empty")]
    Empty,
}

/// Decodes `whsec_<base64>` to the HMAC key. Like the reference libraries, the prefix is
/// optional.
pub fn decode_secret(secret: &str) -> Result<Vec<u8>, WebhookSecretError> {
    let b64 = secret.strip_prefix(SECRET_PREFIX).unwrap_or(secret);
    let key = SECRET_B64
        .decode(b64)
        .map_err(|_| WebhookSecretError::NotBase64)?;
    if key.is_empty() {
        return Err(WebhookSecretError::Empty);
    }
    Ok(key)
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> [u8; 32] {
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m.finalize().into_bytes().into()
}

/// The `webhook-signature` value for one message: `v1,<base64>`.
pub fn sign(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> Result<String, WebhookSecretError> {
    let key = decode_secret(secret)?;
    Ok(format!(
        "v1,{}",
        STANDARD.encode(mac(&key, msg_id, timestamp, body))
    ))
}

/// Whether any `v1,` entry of the space-separated `signature_header` is valid for this message.
/// Compares in constant time. A bad secret gives `false`. Does not check the timestamp's age:
/// see [`timestamp_fresh`].
pub fn verify(
    secret: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
    signature_header: &str,
) -> bool {
    let Ok(key) = decode_secret(secret) else {
        return false;
    };
    let expected = mac(&key, msg_id, timestamp, body);
    let mut ok = false;
    for entry in signature_header.split_ascii_whitespace() {
        let Some(sig_b64) = entry.strip_prefix("v1,") else {
            continue;
        };
        if let Ok(sig) = STANDARD.decode(sig_b64) {
            ok |= bool::from(sig.ct_eq(&expected));
        }
    }
    ok
}

/// Whether `timestamp` is within [`TIMESTAMP_TOLERANCE_S`] of `now` (either direction), as a
/// receiver checks to refuse replays.
pub fn timestamp_fresh(now_unix: i64, timestamp: i64) -> bool {
    (i128::from(now_unix) - i128::from(timestamp)).abs() <= i128::from(TIMESTAMP_TOLERANCE_S)
}

/// Seconds to wait before retry number n+1 (index 0 is the wait after the first failure).
pub fn backoff_schedule() -> &'static [u64] {
    &BACKOFF
}

/// Delay before the next delivery attempt, given `attempt` = the number of attempts already
/// made (0: none yet, deliver now). `None` once all [`MAX_ATTEMPTS`] are used: give up.
///
/// `jitter_unit` in `[0, 1]` (clamped; NaN counts as 0.5) spreads the delay by ±10 %, so that
/// endpoints that failed together do not all retry in the same second.
pub fn next_delay(attempt: u32, jitter_unit: f64) -> Option<u64> {
    retry_delay(&BACKOFF, attempt, jitter_unit)
}

/// [`next_delay`] over another schedule (seconds to wait after failure 1, 2, ...), for
/// deployments and tests that shorten it. Total attempts are `schedule.len() + 1`.
pub fn retry_delay(schedule: &[u64], attempt: u32, jitter_unit: f64) -> Option<u64> {
    if attempt == 0 {
        return Some(0);
    }
    let base = *schedule.get(usize::try_from(attempt - 1).ok()?)?;
    let j = if jitter_unit.is_nan() {
        0.5
    } else {
        jitter_unit.clamp(0.0, 1.0)
    };
    let factor = 0.9 + 0.2 * j;
    Some((base as f64 * factor).round() as u64)
}

/// Where a webhook may be delivered, by the address its host resolves to (SSRF policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetClass {
    /// Never: link-local, cloud metadata, unspecified, multicast, broadcast, reserved.
    Forbidden(&'static str),
    /// Loopback, private (RFC 1918, unique-local, CGNAT), benchmarking: only when allowed.
    Private(&'static str),
    Public,
}

/// The class of one resolved address. IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible and
/// NAT64 (`64:ff9b::/96`) IPv6 addresses are judged by the IPv4 address they carry.
pub fn classify_target(ip: std::net::IpAddr) -> TargetClass {
    use std::net::{IpAddr, Ipv4Addr};
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            // NAT64 well-known prefix and the deprecated IPv4-compatible form (::a.b.c.d).
            if (s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0])
                || (s[..6] == [0, 0, 0, 0, 0, 0] && (s[6] != 0 || s[7] > 1))
            {
                let v4 =
                    Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
                return classify_v4(v4);
            }
            if v6.is_unspecified() {
                return TargetClass::Forbidden("unspecified address");
            }
            if v6 == std::net::Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                return TargetClass::Forbidden("cloud metadata address");
            }
            if s[0] & 0xffc0 == 0xfe80 {
                return TargetClass::Forbidden("link-local address");
            }
            if s[0] & 0xff00 == 0xff00 {
                return TargetClass::Forbidden("multicast address");
            }
            if s[0] & 0xffc0 == 0xfec0 {
                return TargetClass::Forbidden("site-local address (deprecated)");
            }
            if v6.is_loopback() {
                return TargetClass::Private("loopback address");
            }
            if s[0] & 0xfe00 == 0xfc00 {
                return TargetClass::Private("unique-local address");
            }
            if s[0] == 0x2001 && s[1] == 0x0db8 {
                return TargetClass::Forbidden("documentation address");
            }
            TargetClass::Public
        }
    }
}

fn classify_v4(ip: std::net::Ipv4Addr) -> TargetClass {
    let o = ip.octets();
    if o == [100, 100, 100, 200] || o == [169, 254, 169, 254] || o == [169, 254, 170, 2] {
        return TargetClass::Forbidden("cloud metadata address");
    }
    if o[0] == 169 && o[1] == 254 {
        return TargetClass::Forbidden("link-local address");
    }
    if o[0] == 0 {
        return TargetClass::Forbidden("unspecified address (0.0.0.0/8)");
    }
    if o[0] >= 224 {
        return TargetClass::Forbidden("multicast, reserved or broadcast address");
    }
    if o[0] == 192 && o[1] == 0 && o[2] == 0 {
        return TargetClass::Forbidden("IETF protocol assignment (192.0.0.0/24)");
    }
    if o[0] == 127 {
        return TargetClass::Private("loopback address");
    }
    if o[0] == 10 || (o[0] == 172 && (16..32).contains(&o[1])) || (o[0] == 192 && o[1] == 168) {
        return TargetClass::Private("private address (RFC 1918)");
    }
    if o[0] == 100 && (64..128).contains(&o[1]) {
        return TargetClass::Private("shared address space (100.64.0.0/10)");
    }
    if o[0] == 198 && (o[1] == 18 || o[1] == 19) {
        return TargetClass::Private("benchmarking address (198.18.0.0/15)");
    }
    TargetClass::Public
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Standard Webhooks spec example; also checked with Python standardwebhooks 1.1.0.
    const SPEC_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const SPEC_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const SPEC_TS: i64 = 1_614_265_330;
    const SPEC_BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SPEC_SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn spec_vector() {
        assert_eq!(
            sign(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY).unwrap(),
            SPEC_SIG
        );
        assert!(verify(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG));
        // Prefix is optional.
        assert_eq!(
            sign(&SPEC_SECRET[6..], SPEC_ID, SPEC_TS, SPEC_BODY).unwrap(),
            SPEC_SIG
        );
    }

    #[test]
    fn python_standardwebhooks_vector_padded_secret() {
        // Webhook("whsec_" + b64encode(bytes(range(32)))).sign("msg_1", ts 1700000000, '{"event":"x"}')
        let secret = "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let sig = "v1,Pt0i832MH68o9hN7MNg8xK8HpCiJ3mQZiDpsNh2sQjg=";
        assert_eq!(
            sign(secret, "msg_1", 1_700_000_000, br#"{"event":"x"}"#).unwrap(),
            sig
        );
        // Unpadded form of the same secret works too.
        assert!(verify(
            secret.trim_end_matches('='),
            "msg_1",
            1_700_000_000,
            br#"{"event":"x"}"#,
            sig
        ));
    }

    #[test]
    fn verify_rejects() {
        let v = |secret: &str, id: &str, ts: i64, body: &[u8], header: &str| {
            verify(secret, id, ts, body, header)
        };
        assert!(!v(SPEC_SECRET, SPEC_ID, SPEC_TS + 1, SPEC_BODY, SPEC_SIG));
        assert!(!v(SPEC_SECRET, "msg_other", SPEC_TS, SPEC_BODY, SPEC_SIG));
        assert!(!v(SPEC_SECRET, SPEC_ID, SPEC_TS, b"{}", SPEC_SIG));
        assert!(!v("whsec_AAAA", SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG));
        assert!(!v("whsec_!!", SPEC_ID, SPEC_TS, SPEC_BODY, SPEC_SIG));
        assert!(!v(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, ""));
        assert!(!v(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, &SPEC_SIG[3..]));
        assert!(!v(
            SPEC_SECRET,
            SPEC_ID,
            SPEC_TS,
            SPEC_BODY,
            &SPEC_SIG.replace("v1,", "v2,")
        ));
        assert!(!v(
            SPEC_SECRET,
            SPEC_ID,
            SPEC_TS,
            SPEC_BODY,
            &SPEC_SIG.replace("v1,", "v1a,")
        ));
        // Truncated signature.
        assert!(!v(
            SPEC_SECRET,
            SPEC_ID,
            SPEC_TS,
            SPEC_BODY,
            &SPEC_SIG[..SPEC_SIG.len() - 4]
        ));
    }

    #[test]
    fn rotation_lists() {
        let other = "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for header in [
            format!("{other} {SPEC_SIG}"),
            format!("{SPEC_SIG} {other}"),
            format!("v1a,xyz  {SPEC_SIG}"),
            format!("v1,@@@ {SPEC_SIG}"),
            format!(" {SPEC_SIG} "),
        ] {
            assert!(
                verify(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, &header),
                "{header}"
            );
        }
        assert!(!verify(SPEC_SECRET, SPEC_ID, SPEC_TS, SPEC_BODY, other));
    }

    #[test]
    fn secret_errors() {
        assert_eq!(sign("whsec_", "m", 0, b""), Err(WebhookSecretError::Empty));
        assert_eq!(sign("", "m", 0, b""), Err(WebhookSecretError::Empty));
        assert_eq!(
            sign("whsec_not base64!", "m", 0, b""),
            Err(WebhookSecretError::NotBase64)
        );
        assert_eq!(decode_secret("whsec_AAECAw==").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(decode_secret("whsec_AAECAw").unwrap(), vec![0, 1, 2, 3]);
    }

    #[test]
    fn generated_secret_signs() {
        let s = crate::secrets::new_webhook_secret();
        let sig = sign(&s, "msg_x", 42, b"body").unwrap();
        assert!(verify(&s, "msg_x", 42, b"body", &sig));
        assert_eq!(decode_secret(&s).unwrap().len(), 32);
    }

    #[test]
    fn freshness() {
        assert!(timestamp_fresh(1000, 1000));
        assert!(timestamp_fresh(1300, 1000));
        assert!(timestamp_fresh(700, 1000));
        assert!(!timestamp_fresh(1301, 1000));
        assert!(!timestamp_fresh(699, 1000));
        assert!(!timestamp_fresh(i64::MAX, i64::MIN));
    }

    #[test]
    fn schedule() {
        assert_eq!(
            backoff_schedule(),
            &[5, 300, 1800, 7200, 18_000, 36_000, 36_000]
        );
        assert_eq!(MAX_ATTEMPTS, 8);
        assert_eq!(next_delay(0, 0.3), Some(0));
        assert_eq!(next_delay(1, 0.5), Some(5));
        assert_eq!(next_delay(2, 0.5), Some(300));
        assert_eq!(next_delay(2, 0.0), Some(270));
        assert_eq!(next_delay(2, 1.0), Some(330));
        assert_eq!(next_delay(7, 0.5), Some(36_000));
        assert_eq!(next_delay(7, 1.0), Some(39_600));
        assert_eq!(next_delay(8, 0.5), None);
        assert_eq!(next_delay(u32::MAX, 0.5), None);
        // Out-of-range jitter is clamped.
        assert_eq!(next_delay(2, -3.0), Some(270));
        assert_eq!(next_delay(2, 7.0), Some(330));
        assert_eq!(next_delay(2, f64::NAN), Some(300));
        assert_eq!(next_delay(2, f64::INFINITY), Some(330));
    }

    #[test]
    fn custom_schedule() {
        assert_eq!(retry_delay(&[1, 2], 0, 0.5), Some(0));
        assert_eq!(retry_delay(&[1, 2], 1, 0.5), Some(1));
        assert_eq!(retry_delay(&[1, 2], 2, 0.5), Some(2));
        assert_eq!(retry_delay(&[1, 2], 3, 0.5), None);
        assert_eq!(retry_delay(&[], 1, 0.5), None);
        assert_eq!(retry_delay(&[100], 1, 1.0), Some(110));
    }

    #[test]
    fn targets() {
        use std::net::IpAddr;
        let class = |s: &str| classify_target(s.parse::<IpAddr>().unwrap());
        for forbidden in [
            "169.254.169.254",
            "169.254.0.1",
            "100.100.100.200",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "fe80::1",
            "febf::1",
            "fd00:ec2::254",
            "::",
            "ff02::1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "::169.254.169.254",
        ] {
            assert!(
                matches!(class(forbidden), TargetClass::Forbidden(_)),
                "{forbidden}"
            );
        }
        for private in [
            "127.0.0.1",
            "127.5.5.5",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "::1",
            "fd12::1",
            "fc00::1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
        ] {
            assert!(
                matches!(class(private), TargetClass::Private(_)),
                "{private}"
            );
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(class(public), TargetClass::Public, "{public}");
        }
    }

    proptest! {
        #[test]
        fn sign_verify_round_trip(
            key in prop::collection::vec(any::<u8>(), 1..64),
            id in ".{0,30}",
            ts in any::<i64>(),
            body in prop::collection::vec(any::<u8>(), 0..200),
        ) {
            let secret = format!("whsec_{}", STANDARD.encode(&key));
            let sig = sign(&secret, &id, ts, &body).unwrap();
            prop_assert!(verify(&secret, &id, ts, &body, &sig));
            prop_assert!(!verify(&secret, &id, ts.wrapping_add(1), &body, &sig));
        }

        #[test]
        fn verify_never_panics(secret in ".{0,60}", header in ".{0,200}", ts in any::<i64>()) {
            let _ = verify(&secret, "id", ts, b"body", &header);
            let _ = sign(&secret, "id", ts, b"body");
        }

        #[test]
        fn delay_within_jitter(attempt in 1u32..=7, j in any::<f64>()) {
            let base = backoff_schedule()[attempt as usize - 1] as f64;
            let d = next_delay(attempt, j).unwrap() as f64;
            prop_assert!(d >= (base * 0.9).floor() && d <= (base * 1.1).ceil());
        }
    }
}
