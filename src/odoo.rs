//! Where the extension meets Odoo's own tables: they live in `public`, and functions that need them
//! say which one is missing when `CREATE EXTENSION` ran in a database that is not Odoo's.
use crate::error::{raise, spi};
use pgrx::prelude::*;
use std::cell::RefCell;
use std::collections::HashSet;

thread_local! {
    /// Tables already found in this backend (a table does not vanish under a running Odoo).
    static PRESENT: RefCell<HashSet<&'static str>> = RefCell::new(HashSet::new());
}

/// Raise 42P01 naming the first missing table, so `api_gateway.verify_api_key` in a plain database
/// says "needs Odoo's table public.res_users_apikeys" rather than a bare relation error.
pub fn require_odoo(function: &str, tables: &[&'static str]) {
    for table in tables {
        if !has_table(table) {
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
}

/// Whether `public.<table>` exists; asked of the catalog until it does, then remembered.
pub fn has_table(table: &'static str) -> bool {
    if PRESENT.with(|p| p.borrow().contains(table)) {
        return true;
    }
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
    if found == Some(true) {
        PRESENT.with(|p| p.borrow_mut().insert(table));
    }
    found == Some(true)
}
