//! Tokenizer shared by JSON and Python-literal domains (and `domain_force` expressions).
//! Positions are byte offsets into the input.

use super::DomainError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    LBrack,
    RBrack,
    LParen,
    RParen,
    Comma,
    Dot,
    Plus,
    Minus,
    /// A string literal (adjacent literals are joined by the parser).
    Str(String),
    /// Integer literal as decimal digits (without `_`; hex/octal/binary already converted).
    Int(String),
    Float(f64),
    Name(String),
    /// Any other operator character sequence, kept for error messages.
    Other(String),
    Eof,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

pub(crate) struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// JSON-only escapes (`\/`) are accepted when true (API mode).
    json_escapes: bool,
}

fn err<T>(pos: usize, msg: impl Into<String>) -> Result<T, DomainError> {
    Err(DomainError::Syntax {
        pos,
        msg: msg.into(),
    })
}

fn is_ident_start(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic() || (!c.is_ascii() && c.is_alphabetic())
}

fn is_ident_continue(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric() || (!c.is_ascii() && c.is_alphanumeric())
}

impl<'a> Lexer<'a> {
    pub fn new(src: &'a str, json_escapes: bool) -> Self {
        Lexer {
            src,
            bytes: src.as_bytes(),
            pos: 0,
            json_escapes,
        }
    }

    fn peek_char(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn char_at(&self, pos: usize) -> Option<char> {
        self.src.get(pos..).and_then(|s| s.chars().next())
    }

    fn skip_ws(&mut self) -> Result<(), DomainError> {
        while self.pos < self.bytes.len() {
            match self.bytes[self.pos] {
                b' ' | b'\t' | b'\n' | b'\r' | 0x0c => self.pos += 1,
                b'#' => {
                    while self.pos < self.bytes.len() && self.bytes[self.pos] != b'\n' {
                        self.pos += 1;
                    }
                }
                b'\\' => {
                    // explicit line continuation
                    let rest = &self.bytes[self.pos + 1..];
                    if rest.starts_with(b"\n") {
                        self.pos += 2;
                    } else if rest.starts_with(b"\r\n") {
                        self.pos += 3;
                    } else {
                        return err(self.pos, "unexpected backslash");
                    }
                }
                _ => {
                    // non-ASCII whitespace (e.g. no-break space) is accepted too
                    match self.peek_char() {
                        Some(c) if c.is_whitespace() => self.pos += c.len_utf8(),
                        _ => break,
                    }
                }
            }
        }
        Ok(())
    }

    pub fn next_token(&mut self) -> Result<Token, DomainError> {
        self.skip_ws()?;
        let start = self.pos;
        let Some(c) = self.peek_char() else {
            return Ok(Token {
                tok: Tok::Eof,
                pos: start,
            });
        };
        let simple = match c {
            '[' => Some(Tok::LBrack),
            ']' => Some(Tok::RBrack),
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            ',' => Some(Tok::Comma),
            '+' => Some(Tok::Plus),
            '-' => Some(Tok::Minus),
            _ => None,
        };
        if let Some(tok) = simple {
            self.pos += 1;
            return Ok(Token { tok, pos: start });
        }
        if c == '.' {
            if matches!(self.char_at(start + 1), Some(d) if d.is_ascii_digit()) {
                return self.number(start);
            }
            self.pos += 1;
            return Ok(Token {
                tok: Tok::Dot,
                pos: start,
            });
        }
        if c.is_ascii_digit() {
            return self.number(start);
        }
        if c == '\'' || c == '"' {
            let s = self.string(start, false)?;
            return Ok(Token {
                tok: Tok::Str(s),
                pos: start,
            });
        }
        if is_ident_start(c) {
            let mut end = start;
            for ch in self.src[start..].chars() {
                if is_ident_continue(ch) {
                    end += ch.len_utf8();
                } else {
                    break;
                }
            }
            let ident = &self.src[start..end];
            // string prefixes: u'..', r'..', b'..', f'..'
            if matches!(self.char_at(end), Some('\'' | '"')) {
                let lower = ident.to_ascii_lowercase();
                match lower.as_str() {
                    "u" | "r" | "ur" | "ru" => {
                        self.pos = end;
                        let s = self.string(end, lower.contains('r'))?;
                        return Ok(Token {
                            tok: Tok::Str(s),
                            pos: start,
                        });
                    }
                    "b" | "br" | "rb" => return err(start, "bytes literals are not supported"),
                    "f" | "fr" | "rf" => return err(start, "f-strings are not supported"),
                    _ => {}
                }
            }
            self.pos = end;
            return Ok(Token {
                tok: Tok::Name(ident.to_string()),
                pos: start,
            });
        }
        // anything else: read a run of operator characters for the error message
        let mut end = start;
        for ch in self.src[start..].chars() {
            if end - start < 8
                && ch.is_ascii_punctuation()
                && !matches!(ch, '[' | ']' | '(' | ')' | ',' | '\'' | '"')
            {
                end += ch.len_utf8();
            } else {
                break;
            }
        }
        if end == start {
            end += c.len_utf8();
        }
        self.pos = end;
        Ok(Token {
            tok: Tok::Other(self.src[start..end].to_string()),
            pos: start,
        })
    }

    fn number(&mut self, start: usize) -> Result<Token, DomainError> {
        let b = self.bytes;
        let mut i = start;
        // radix literals
        if b[i] == b'0'
            && i + 1 < b.len()
            && matches!(b[i + 1], b'x' | b'X' | b'o' | b'O' | b'b' | b'B')
        {
            let radix = match b[i + 1] {
                b'x' | b'X' => 16,
                b'o' | b'O' => 8,
                _ => 2,
            };
            i += 2;
            let digits_start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            let digits: String = self.src[digits_start..i]
                .chars()
                .filter(|&c| c != '_')
                .collect();
            let value = i64::from_str_radix(&digits, radix).map_err(|_| DomainError::Syntax {
                pos: start,
                msg: "invalid integer literal".into(),
            })?;
            self.pos = i;
            return Ok(Token {
                tok: Tok::Int(value.to_string()),
                pos: start,
            });
        }
        let digits = |i: &mut usize| {
            while *i < b.len() && (b[*i].is_ascii_digit() || b[*i] == b'_') {
                *i += 1;
            }
        };
        digits(&mut i);
        let mut is_float = false;
        if i < b.len() && b[i] == b'.' {
            // `1.` is a float in Python; `1..x` is not our business
            is_float = true;
            i += 1;
            digits(&mut i);
        }
        if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
            let mut j = i + 1;
            if j < b.len() && (b[j] == b'+' || b[j] == b'-') {
                j += 1;
            }
            if j < b.len() && b[j].is_ascii_digit() {
                is_float = true;
                i = j;
                digits(&mut i);
            } else {
                return err(i, "invalid number exponent");
            }
        }
        if let Some(ch) = self.char_at(i)
            && (is_ident_continue(ch) || ch == '.')
        {
            return err(i, "invalid number literal");
        }
        let text = &self.src[start..i];
        if text.contains("__") || text.ends_with('_') || text.contains("_.") || text.contains("._")
        {
            return err(start, "invalid number literal");
        }
        let clean: String = text.chars().filter(|&c| c != '_').collect();
        self.pos = i;
        if is_float {
            let v: f64 = clean.parse().map_err(|_| DomainError::Syntax {
                pos: start,
                msg: "invalid float literal".into(),
            })?;
            if !v.is_finite() {
                return err(start, "float literal out of range");
            }
            Ok(Token {
                tok: Tok::Float(v),
                pos: start,
            })
        } else {
            let int_text = clean.as_str();
            if int_text.len() > 1
                && int_text.starts_with('0')
                && int_text.bytes().any(|d| d != b'0')
            {
                return err(start, "leading zeros in integer literal");
            }
            Ok(Token {
                tok: Tok::Int(int_text.to_string()),
                pos: start,
            })
        }
    }

    /// Read a string literal starting at `start` (the opening quote).
    fn string(&mut self, start: usize, raw: bool) -> Result<String, DomainError> {
        let b = self.bytes;
        let q = b[start];
        let triple = b.len() >= start + 3 && b[start + 1] == q && b[start + 2] == q;
        let mut i = start + if triple { 3 } else { 1 };
        let mut out = String::new();
        loop {
            if i >= b.len() {
                return err(start, "unterminated string");
            }
            let c = b[i];
            if c == q {
                if !triple {
                    i += 1;
                    break;
                }
                if b.len() >= i + 3 && b[i + 1] == q && b[i + 2] == q {
                    i += 3;
                    break;
                }
                out.push(q as char);
                i += 1;
                continue;
            }
            if c == b'\n' && !triple {
                return err(start, "unterminated string (end of line)");
            }
            if c == b'\\' {
                if i + 1 >= b.len() {
                    return err(start, "unterminated string");
                }
                if raw {
                    // raw strings keep the backslash; an escaped quote does not end the string
                    out.push('\\');
                    let ch = self.char_at(i + 1).unwrap_or('\\');
                    out.push(ch);
                    i += 1 + ch.len_utf8();
                    continue;
                }
                i = self.escape(i, &mut out)?;
                continue;
            }
            // copy one UTF-8 character
            let ch = self.char_at(i).unwrap_or('\u{fffd}');
            out.push(ch);
            i += ch.len_utf8();
        }
        self.pos = i;
        Ok(out)
    }

    fn hex_at(&self, pos: usize, n: usize) -> Result<u32, DomainError> {
        let s = self
            .src
            .get(pos..pos + n)
            .filter(|s| s.bytes().all(|c| c.is_ascii_hexdigit()))
            .ok_or(DomainError::Syntax {
                pos,
                msg: "invalid escape sequence".into(),
            })?;
        u32::from_str_radix(s, 16).map_err(|_| DomainError::Syntax {
            pos,
            msg: "invalid escape sequence".into(),
        })
    }

    /// Decode the escape at `i` (the backslash); return the position after it.
    fn escape(&self, i: usize, out: &mut String) -> Result<usize, DomainError> {
        let b = self.bytes;
        let e = b[i + 1];
        let simple = match e {
            b'\\' => Some('\\'),
            b'\'' => Some('\''),
            b'"' => Some('"'),
            b'n' => Some('\n'),
            b'r' => Some('\r'),
            b't' => Some('\t'),
            b'b' => Some('\u{8}'),
            b'f' => Some('\u{c}'),
            b'v' => Some('\u{b}'),
            b'a' => Some('\u{7}'),
            b'/' if self.json_escapes => Some('/'),
            _ => None,
        };
        if let Some(ch) = simple {
            out.push(ch);
            return Ok(i + 2);
        }
        match e {
            b'\n' => Ok(i + 2),
            b'\r' => Ok(if b.get(i + 2) == Some(&b'\n') {
                i + 3
            } else {
                i + 2
            }),
            b'x' => {
                let v = self.hex_at(i + 2, 2)?;
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                Ok(i + 4)
            }
            b'u' => {
                let v = self.hex_at(i + 2, 4)?;
                if (0xD800..0xDC00).contains(&v) {
                    // JSON surrogate pair
                    if b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u') {
                        let lo = self.hex_at(i + 8, 4)?;
                        if (0xDC00..0xE000).contains(&lo) {
                            let cp = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
                            if let Some(ch) = char::from_u32(cp) {
                                out.push(ch);
                                return Ok(i + 12);
                            }
                        }
                    }
                    return err(i, "lone surrogate in string");
                }
                match char::from_u32(v) {
                    Some(ch) => {
                        out.push(ch);
                        Ok(i + 6)
                    }
                    None => err(i, "lone surrogate in string"),
                }
            }
            b'U' => {
                let v = self.hex_at(i + 2, 8)?;
                match char::from_u32(v) {
                    Some(ch) => {
                        out.push(ch);
                        Ok(i + 10)
                    }
                    None => err(i, "invalid \\U escape"),
                }
            }
            b'0'..=b'7' => {
                let mut j = i + 1;
                let mut v = 0u32;
                while j < b.len() && j < i + 4 && (b'0'..=b'7').contains(&b[j]) {
                    v = v * 8 + u32::from(b[j] - b'0');
                    j += 1;
                }
                out.push(char::from_u32(v).unwrap_or('\u{fffd}'));
                Ok(j)
            }
            b'N' => err(i, "\\N{...} escapes are not supported"),
            _ => {
                // Python keeps unknown escapes as they are
                out.push('\\');
                let ch = self.char_at(i + 1).unwrap_or('\\');
                out.push(ch);
                Ok(i + 1 + ch.len_utf8())
            }
        }
    }
}
