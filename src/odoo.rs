//! Where the extension meets Odoo's own tables: they live in `public`, and functions that need them
//! say which one is missing when `CREATE EXTENSION` ran in a database that is not Odoo's.
use crate::error::{raise, spi};
use pgrx::prelude::*;
use std::cell::Cell;

thread_local! {
    static ODOO_CHECKED: Cell<bool> = const { Cell::new(false) };
}

/// The Odoo tables the gateway reads. Checked once per backend, then trusted.
const ODOO_TABLES: &[&str] = &[
    "res_users",
    "res_users_apikeys",
    "res_groups_users_rel",
    "res_groups_implied_rel",
    "res_company_users_rel",
    "ir_model",
    "ir_model_fields",
    "ir_model_access",
    "ir_rule",
    "rule_group_rel",
];

/// Raise 42P01 naming the first missing table, so `api_gateway.verify_api_key` in a plain database
/// says "needs Odoo's table public.res_users_apikeys" rather than a bare relation error.
pub fn require_odoo(function: &str, tables: &[&str]) {
    if ODOO_CHECKED.with(|c| c.get()) {
        return;
    }
    for table in tables {
        let qualified = format!("public.{table}");
        let found: Option<bool> = spi(Spi::connect(|c| {
            c.select(
                "SELECT to_regclass($1) IS NOT NULL",
                Some(1),
                &[qualified.as_str().into()],
            )?
            .first()
            .get_one::<bool>()
        }));
        if found != Some(true) {
            raise(
                PgSqlErrorCode::ERRCODE_UNDEFINED_TABLE,
                format!(
                    "api_gateway.{function} needs Odoo's table public.{table}, which this database does not have"
                ),
                Some(
                    "run it in an Odoo 19 database (CREATE EXTENSION api_gateway works anywhere, but this function reads Odoo's tables)",
                ),
            );
        }
    }
    if tables.len() >= ODOO_TABLES.len() || ODOO_TABLES.iter().all(|t| tables.contains(t)) {
        ODOO_CHECKED.with(|c| c.set(true));
    }
}
