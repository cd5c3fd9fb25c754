//! SPI access with plans prepared once per backend and kept (`SPI_keepplan`): the gate runs on
//! every request, so it must not re-plan its statements each time.
use crate::error::spi;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use std::cell::RefCell;
use std::collections::HashMap;

thread_local! {
    static PLANS: RefCell<HashMap<&'static str, &'static OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// The kept plan for `sql`, prepared on first use in this backend with the given argument types.
/// Plans live as long as the backend (leaked on purpose: a handful per backend).
pub fn plan(
    client: &SpiClient<'_>,
    sql: &'static str,
    types: &[PgBuiltInOids],
    mutating: bool,
) -> &'static OwnedPreparedStatement {
    if let Some(p) = PLANS.with(|m| m.borrow().get(sql).copied()) {
        return p;
    }
    let oids: Vec<PgOid> = types.iter().map(|t| PgOid::BuiltIn(*t)).collect();
    let prepared = if mutating {
        spi(client.prepare_mut(sql, &oids))
    } else {
        spi(client.prepare(sql, &oids))
    };
    let kept: &'static OwnedPreparedStatement = Box::leak(Box::new(prepared.keep()));
    PLANS.with(|m| m.borrow_mut().insert(sql, kept));
    kept
}

thread_local! {
    static OWNED_PLANS: RefCell<HashMap<String, &'static OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// Like [`plan`] for statement text built at run time (once per backend), always mutating.
pub fn plan_owned(
    client: &SpiClient<'_>,
    sql: &str,
    types: &[PgBuiltInOids],
) -> &'static OwnedPreparedStatement {
    if let Some(p) = OWNED_PLANS.with(|m| m.borrow().get(sql).copied()) {
        return p;
    }
    let oids: Vec<PgOid> = types.iter().map(|t| PgOid::BuiltIn(*t)).collect();
    let kept: &'static OwnedPreparedStatement =
        Box::leak(Box::new(spi(client.prepare_mut(sql, &oids)).keep()));
    OWNED_PLANS.with(|m| m.borrow_mut().insert(sql.to_string(), kept));
    kept
}
