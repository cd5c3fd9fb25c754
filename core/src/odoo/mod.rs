//! Odoo 19's `read()` and `web_read()` as SQL: model metadata, which fields a reader may read,
//! the SQL of each value (related and `_inherits` paths, `display_name`, many2one pairs, x2many
//! ids under the comodel's rules), nested reads, and the order rows come in. Pure: what it needs
//! from the database (other models' metadata, which tables exist, the reader's rights on a
//! comodel) comes through [`ReadFacts`], which the extension answers with SPI and the tests
//! answer from memory.
pub mod meta;
pub mod nested_read;
pub mod select;
pub mod shape;
pub mod visible;
pub mod write;

#[cfg(test)]
mod tests;

use crate::domain::{Domain, Schema};
use meta::ModelMeta;
use std::rc::Rc;

/// What the reading code asks of the database.
pub trait ReadFacts: Schema {
    /// The metadata of `model` when the gateway can serve it (a table, a row in `ir_model`).
    fn meta(&self, model: &str) -> Option<Rc<ModelMeta>>;
    /// Whether `public.<table>` exists (rules and fallbacks read tables some databases lack).
    fn table_exists(&self, table: &str) -> bool;
    /// Whether the reader may read `model` at all (`ir.model.access`), and its read rule.
    fn read_access(&self, model: &str) -> (bool, Option<Domain>);
    /// A comodel the last compilation searched without read access ([`Schema::read_rule`]
    /// refused it): the search is then the caller's AccessError, not a bad domain.
    fn denied_comodel(&self) -> Option<String> {
        None
    }
}

/// The user a call runs as (`env.user`) and what of its environment reads and writes depend on
/// (translations and company-dependent values are read and stored for its language and company).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'u> {
    pub uid: i32,
    pub superuser: bool,
    pub lang: &'u str,
    pub company_id: i64,
    pub groups: &'u [i64],
}

/// Why a read cannot be built. The extension maps each to its SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReadError {
    /// Bad input in a field list, specification, order or page (22023).
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<&'static str>,
    },
    /// Odoo would raise AccessError (42501).
    #[error("{0}")]
    Denied(String),
    /// A record rule of `model` the gateway cannot enforce: the read is refused (fail closed).
    /// `rule_id` 0 when no single rule is at fault.
    #[error("record rule {rule_id} \"{rule_name}\" on {model} cannot be enforced: {why}")]
    Unenforceable {
        model: String,
        rule_id: i32,
        rule_name: String,
        why: String,
    },
    /// A name from the metadata that cannot be an SQL identifier (42602).
    #[error("{0}")]
    BadName(String),
}

impl ReadError {
    pub(crate) fn invalid(message: impl Into<String>) -> ReadError {
        ReadError::Invalid {
            message: message.into(),
            hint: None,
        }
    }
}

/// `name` as a quoted identifier of a generated statement.
pub(crate) fn ident(name: &str) -> Result<crate::ident::Ident, ReadError> {
    crate::ident::Ident::new(name).map_err(|e| {
        ReadError::BadName(format!("api_gateway: {e} cannot name a table or a column"))
    })
}
