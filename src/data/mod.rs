//! Odoo-faithful data access: model metadata from `ir_model`/`ir_model_fields`, the user's
//! access rights and record rules, and the SQL that reads and writes records. The domain
//! language itself (parsing, rule evaluation, compilation to SQL) is pure and lives in
//! `api_gateway_core::domain`; this module only fetches what it needs through SPI.
pub mod attachment;
pub mod binary;
pub mod cache;
pub mod context;
pub mod feed;
pub mod fields;
pub mod lang;
pub mod meta;
pub mod params;
pub mod read;
pub mod write;

use crate::error::raise;
use api_gateway_core::domain::DomainError;
use api_gateway_core::odoo::ReadError;
use pgrx::prelude::*;

/// The Odoo tables data access reads.
pub const TABLES: &[&str] = &[
    "res_users",
    "res_partner",
    "res_company",
    "res_groups_users_rel",
    "res_groups_implied_rel",
    "res_company_users_rel",
    "ir_model",
    "ir_model_fields",
    "ir_model_access",
    "ir_rule",
    "rule_group_rel",
];

/// Bad input in a domain, field list or order: SQLSTATE 22023 naming what is wrong.
pub fn bad_input(what: &str, err: &DomainError) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        format!("invalid {what}: {err}"),
        None,
    )
}

/// A read the gateway cannot build, as the SQLSTATE its kind maps to.
pub fn refuse(err: ReadError) -> ! {
    match err {
        ReadError::Invalid { message, hint } => raise(
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            message,
            hint,
        ),
        ReadError::Denied(message) => raise(
            PgSqlErrorCode::ERRCODE_INSUFFICIENT_PRIVILEGE,
            message,
            None,
        ),
        ReadError::Unenforceable {
            model,
            rule_id,
            rule_name,
            why,
        } => context::fail_closed(&model, rule_id, &rule_name, &why),
        ReadError::BadName(message) => raise(PgSqlErrorCode::ERRCODE_INVALID_NAME, message, None),
    }
}

/// The operations of `ir.model.access` and `ir.rule`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    Read,
    Write,
    Create,
    Unlink,
}

impl Operation {
    pub fn parse(s: &str) -> Option<Operation> {
        match s {
            "read" => Some(Operation::Read),
            "write" => Some(Operation::Write),
            "create" => Some(Operation::Create),
            "unlink" => Some(Operation::Unlink),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Read => "read",
            Operation::Write => "write",
            Operation::Create => "create",
            Operation::Unlink => "unlink",
        }
    }
}
