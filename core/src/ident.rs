//! SQL identifiers of generated statements (Odoo's tables and columns): checked once, quoted one
//! way. Every statement the extension builds names tables and columns through [`Ident`], so a
//! name can never end a quoted identifier early, whatever Odoo's metadata holds.
use std::fmt;

/// PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1).
pub const MAX_LEN: usize = 63;

/// A table or column name, shown (`Display`) as a double-quoted SQL identifier.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ident(String);

/// Why a name cannot be an identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdentError {
    Empty,
    TooLong(usize),
    Nul,
}

impl fmt::Display for IdentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentError::Empty => write!(f, "an empty name"),
            IdentError::TooLong(n) => write!(f, "a name of {n} bytes (at most {MAX_LEN})"),
            IdentError::Nul => write!(f, "a name with a NUL character"),
        }
    }
}

impl Ident {
    pub fn new(name: &str) -> Result<Ident, IdentError> {
        if name.is_empty() {
            Err(IdentError::Empty)
        } else if name.len() > MAX_LEN {
            Err(IdentError::TooLong(name.len()))
        } else if name.contains('\0') {
            Err(IdentError::Nul)
        } else {
            Ok(Ident(name.to_string()))
        }
    }

    /// The table of an Odoo model: `res.partner` -> `res_partner`.
    pub fn table_of(model: &str) -> Result<Ident, IdentError> {
        Ident::new(&model.replace('.', "_"))
    }

    /// The name as given (for messages and parameters, never for SQL text).
    pub fn name(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Ident {
    /// `"name"`, a `"` inside doubled (what `quote_ident` gives, always quoted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{}\"", self.0.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn odoo_names_and_refusals() {
        assert_eq!(Ident::new("name").unwrap().to_string(), "\"name\"");
        assert_eq!(
            Ident::table_of("res.partner").unwrap().to_string(),
            "\"res_partner\""
        );
        assert_eq!(Ident::new("a\"b").unwrap().to_string(), "\"a\"\"b\"");
        assert_eq!(Ident::new(""), Err(IdentError::Empty));
        assert_eq!(Ident::new("a\0b"), Err(IdentError::Nul));
        assert_eq!(Ident::new(&"x".repeat(64)), Err(IdentError::TooLong(64)));
        assert!(Ident::new(&"x".repeat(63)).is_ok());
    }

    /// Unquote the way PostgreSQL's scanner reads a quoted identifier: the name comes back
    /// whole and the identifier ends exactly where the text ends.
    fn unquote(sql: &str) -> Option<String> {
        let inner = sql.strip_prefix('"')?;
        let mut out = String::new();
        let mut chars = inner.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    out.push('"');
                } else {
                    return chars.next().is_none().then_some(out);
                }
            } else {
                out.push(c);
            }
        }
        None
    }

    proptest! {
        #[test]
        fn quoting_round_trips_and_never_ends_early(name in "\\PC{1,40}") {
            if let Ok(id) = Ident::new(&name) {
                prop_assert_eq!(unquote(&id.to_string()), Some(name.clone()));
            } else {
                prop_assert!(name.len() > MAX_LEN || name.contains('\0'));
            }
        }
    }
}
