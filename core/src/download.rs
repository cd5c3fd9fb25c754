//! A binary field served as a file (`GET /api/v1/<model>/<id>/<field>`): its entity tag, content
//! type and `Content-Disposition`, from the facts of the attachment that holds it (Odoo's
//! `ir_attachment`: `checksum`, `mimetype`, `name`) or from the bytes themselves.
use crate::etag;

/// The strong tag of a file: from the attachment's `checksum` (Odoo's SHA-1 of the bytes) when
/// there is one, so a 304 needs no bytes; else a digest of the bytes.
pub fn file_tag(checksum: Option<&str>, bytes: Option<&[u8]>) -> Option<String> {
    match checksum.filter(|c| !c.is_empty() && c.bytes().all(|b| b.is_ascii_hexdigit())) {
        Some(c) => Some(format!("\"sha1-{}\"", c.to_ascii_lowercase())),
        None => bytes.map(etag::list_tag),
    }
}

/// The content type: the attachment's `mimetype` when it is a well-formed `type/subtype`, else
/// what the first bytes show (the image formats Odoo's image fields hold, PDF), else
/// `application/octet-stream`.
pub fn content_type(mimetype: Option<&str>, head: &[u8]) -> String {
    if let Some(m) = mimetype.map(str::trim)
        && let Some((t, sub)) = m.split_once('/')
        && is_token(t)
        && is_token(sub.split(';').next().unwrap_or("").trim())
        && m.bytes().all(|b| (0x20..0x7f).contains(&b))
    {
        return m.to_string();
    }
    let sniffed = if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        "image/png"
    } else if head.starts_with(b"\xff\xd8\xff") {
        "image/jpeg"
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        "image/gif"
    } else if head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        "image/webp"
    } else if head.starts_with(b"%PDF-") {
        "application/pdf"
    } else {
        "application/octet-stream"
    };
    sniffed.to_string()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// `attachment; filename="..."; filename*=UTF-8''...` (RFC 6266): an ASCII fallback without
/// quotes, backslashes or controls, and the exact name percent-encoded (RFC 8187).
pub fn content_disposition(name: &str) -> String {
    let name: String = name.chars().filter(|c| !c.is_control()).collect();
    let name = if name.trim().is_empty() {
        "file".to_string()
    } else {
        name
    };
    let fallback: String = name
        .chars()
        .map(|c| {
            if c.is_ascii() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tags() {
        assert_eq!(
            file_tag(Some("AB12"), None).as_deref(),
            Some("\"sha1-ab12\"")
        );
        assert_eq!(file_tag(None, None), None);
        let t = file_tag(None, Some(b"abc")).unwrap();
        assert_eq!(t, etag::list_tag(b"abc"));
        assert_ne!(
            file_tag(Some("x\"y"), Some(b"abc")).unwrap(),
            "\"sha1-x\"y\""
        );
    }

    #[test]
    fn types() {
        assert_eq!(content_type(Some("image/png"), b""), "image/png");
        assert_eq!(
            content_type(Some("text/plain; charset=utf-8"), b""),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type(None, b"\x89PNG\r\n\x1a\nxxxx"), "image/png");
        assert_eq!(
            content_type(Some("bad\r\nx"), b"\xff\xd8\xff\xe0"),
            "image/jpeg"
        );
        assert_eq!(
            content_type(Some(""), b"RIFF\0\0\0\0WEBPVP8 "),
            "image/webp"
        );
        assert_eq!(content_type(None, b"hello"), "application/octet-stream");
    }

    #[test]
    fn dispositions() {
        assert_eq!(
            content_disposition("image_128"),
            "attachment; filename=\"image_128\"; filename*=UTF-8''image_128"
        );
        assert_eq!(
            content_disposition("Café \"x\".pdf"),
            "attachment; filename=\"Caf_ _x_.pdf\"; filename*=UTF-8''Caf%C3%A9%20%22x%22.pdf"
        );
        assert_eq!(
            content_disposition("\r\n"),
            "attachment; filename=\"file\"; filename*=UTF-8''file"
        );
    }

    proptest! {
        #[test]
        fn any_name_gives_a_valid_header_value(name in ".{0,80}") {
            let v = content_disposition(&name);
            prop_assert!(v.bytes().all(|b| (0x20..0x7f).contains(&b)), "{v}");
            prop_assert_eq!(v.matches('"').count(), 2);
        }

        #[test]
        fn any_mimetype_gives_a_header_value(m in ".{0,40}", head in proptest::collection::vec(any::<u8>(), 0..16)) {
            let v = content_type(Some(&m), &head);
            prop_assert!(v.bytes().all(|b| (0x20..0x7f).contains(&b)), "{v}");
        }
    }
}
