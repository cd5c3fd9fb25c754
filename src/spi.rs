//! SPI access with plans prepared once per backend and kept (`SPI_keepplan`): the gate runs on
//! every request, so it must not re-plan its statements each time.
use crate::error::spi;
use pgrx::prelude::*;
use pgrx::spi::{OwnedPreparedStatement, SpiClient};
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::CStr;

thread_local! {
    static PLANS: RefCell<HashMap<(&'static str, bool), &'static OwnedPreparedStatement>> = RefCell::new(HashMap::new());
}

/// The kept plan for `sql`, prepared on first use in this backend with the given argument types.
/// Plans live as long as the backend (leaked on purpose: a handful per backend). A mutating plan
/// also runs with a snapshot of its own (READ COMMITTED), not the calling statement's.
pub fn plan(
    client: &SpiClient<'_>,
    sql: &'static str,
    types: &[PgBuiltInOids],
    mutating: bool,
) -> &'static OwnedPreparedStatement {
    if let Some(p) = PLANS.with(|m| m.borrow().get(&(sql, mutating)).copied()) {
        return p;
    }
    let oids: Vec<PgOid> = types.iter().map(|t| PgOid::BuiltIn(*t)).collect();
    let prepared = if mutating {
        spi(client.prepare_mut(sql, &oids))
    } else {
        spi(client.prepare(sql, &oids))
    };
    let kept: &'static OwnedPreparedStatement = Box::leak(Box::new(prepared.keep()));
    PLANS.with(|m| m.borrow_mut().insert((sql, mutating), kept));
    kept
}

/// Runs `f` (which runs SQL) with `search_path = pg_catalog, pg_temp`, restored afterwards (and
/// by the abort path on ERROR), as a SET clause on a SECURITY DEFINER function would, but paid
/// only when SQL runs. `authenticate`, `verify_api_key` and `rate_limit_hit` are SECURITY
/// DEFINER without a SET clause: their usual answer (kept facts, a counter in shared memory)
/// runs no SQL, and a function's own settings are applied and undone on every call.
pub fn pinned<R>(f: impl FnOnce() -> R) -> R {
    with_settings(&[(c"search_path", c"pg_catalog, pg_temp")], f)
}

/// `pinned`, with `plan_cache_mode = force_generic_plan` too: the gate's kept plans are generic
/// (a custom plan is rarely better, and planning costs more than running them).
pub fn pinned_generic<R>(f: impl FnOnce() -> R) -> R {
    with_settings(
        &[
            (c"search_path", c"pg_catalog, pg_temp"),
            (c"plan_cache_mode", c"force_generic_plan"),
        ],
        f,
    )
}

fn with_settings<R>(settings: &[(&CStr, &CStr)], f: impl FnOnce() -> R) -> R {
    unsafe {
        let level = pg_sys::NewGUCNestLevel();
        for (name, value) in settings {
            pg_sys::set_config_option(
                name.as_ptr(),
                value.as_ptr(),
                pg_sys::GucContext::PGC_USERSET,
                pg_sys::GucSource::PGC_S_SESSION,
                pg_sys::GucAction::GUC_ACTION_SAVE,
                true,
                0,
                false,
            );
        }
        let r = f();
        pg_sys::AtEOXact_GUC(true, level);
        r
    }
}

const DYNAMIC_CAPACITY: usize = 256;

thread_local! {
    /// Plans of statements generated per request (search_read & co), keyed by their text: every
    /// placeholder carries its type cast, so the text determines the parameter types. The same
    /// domain shape gives the same text, so a repeated query is not planned again.
    static DYNAMIC: RefCell<HashMap<String, std::rc::Rc<OwnedPreparedStatement>>> =
        RefCell::new(HashMap::new());
}

/// A kept plan for generated `sql`, bounded: the cache is emptied when full (plans are freed
/// when their last user drops them).
pub fn plan_cached(
    client: &SpiClient<'_>,
    sql: &str,
    types: &[PgBuiltInOids],
    mutating: bool,
) -> std::rc::Rc<OwnedPreparedStatement> {
    if let Some(p) = DYNAMIC.with(|m| m.borrow().get(sql).cloned()) {
        return p;
    }
    let oids: Vec<PgOid> = types.iter().map(|t| PgOid::BuiltIn(*t)).collect();
    let prepared = if mutating {
        spi(client.prepare_mut(sql, &oids))
    } else {
        spi(client.prepare(sql, &oids))
    };
    let kept = std::rc::Rc::new(prepared.keep());
    DYNAMIC.with(|m| {
        let mut m = m.borrow_mut();
        if m.len() >= DYNAMIC_CAPACITY {
            m.clear();
        }
        m.insert(sql.to_string(), kept.clone());
    });
    kept
}

/// A jsonb value computed by an SPI query and returned to the SQL caller as is: converting it
/// to serde_json and back would cost more than the query itself for a page of records.
pub struct RawJsonb(pgrx::pg_sys::Datum);

impl RawJsonb {
    /// jsonb parsed by PostgreSQL (jsonb_in) from JSON text already checked by serde_json (so it
    /// holds no NUL byte); jsonb_in's own refusals (e.g. `\u0000`) raise its usual errors.
    pub fn from_json_text(text: Vec<u8>) -> RawJsonb {
        let text = std::ffi::CString::new(text).unwrap_or_else(|_| {
            crate::error::raise(
                PgSqlErrorCode::ERRCODE_INVALID_TEXT_REPRESENTATION,
                "JSON text contains a NUL byte",
                None,
            )
        });
        // SAFETY: jsonb_in takes a NUL-terminated C string and returns a jsonb varlena allocated
        // in the current memory context; errors are raised through pgrx's guarded call.
        RawJsonb(unsafe {
            pgrx::fcinfo::direct_function_call_as_datum(
                pgrx::pg_sys::jsonb_in,
                &[Some(pgrx::pg_sys::Datum::from(text.as_ptr()))],
            )
            .expect("jsonb_in returns a value")
        })
    }
}

impl pgrx::IntoDatum for RawJsonb {
    fn into_datum(self) -> Option<pgrx::pg_sys::Datum> {
        Some(self.0)
    }
    fn type_oid() -> pgrx::pg_sys::Oid {
        pgrx::pg_sys::JSONBOID
    }
}

impl_sql_translatable!(RawJsonb, "jsonb");

/// Column `ordinal` of the first row as a jsonb datum copied out of SPI's memory, or None.
pub fn first_jsonb(table: pgrx::spi::SpiTupleTable<'_>) -> Option<RawJsonb> {
    let datum = spi(table.first().get_datum_by_ordinal(1))?;
    // SAFETY: a varlena datum of the result row; SPI_datumTransfer copies it into the memory
    // context that was current before SPI_connect, which outlives this SPI connection.
    Some(RawJsonb(unsafe {
        pgrx::pg_sys::SPI_datumTransfer(datum, false, -1)
    }))
}

/// The jsonb of a one-row statement kept as a plan (`types` of its `args`); a statement that
/// returns none is an internal error naming `what`.
pub fn one_jsonb(
    sql: &'static str,
    types: &[pgrx::pg_sys::PgBuiltInOids],
    args: Vec<pgrx::datum::DatumWithOid>,
    what: &str,
) -> RawJsonb {
    pgrx::Spi::connect(|c| {
        let plan = plan(c, sql, types, false);
        first_jsonb(spi(c.select(plan, Some(1), &args)))
    })
    .unwrap_or_else(|| {
        crate::error::raise(
            pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("{what} returned no row"),
            None,
        )
    })
}

/// Column `ordinal` of the current row of `table` when it is a jsonb, copied out of SPI's
/// memory (as `first_jsonb` does); None when NULL or of another type.
pub fn jsonb_at(table: &pgrx::spi::SpiTupleTable<'_>, ordinal: usize) -> Option<RawJsonb> {
    if spi(table.column_type_oid(ordinal)).value() != pgrx::pg_sys::JSONBOID {
        return None;
    }
    let datum = spi(table.get_datum_by_ordinal(ordinal))?;
    // SAFETY: a jsonb varlena of the current result row (its type checked above); copied into
    // the memory context that was current before SPI_connect.
    Some(RawJsonb(unsafe {
        pgrx::pg_sys::SPI_datumTransfer(datum, false, -1)
    }))
}

// SAFETY: the datum is a valid jsonb varlena living in the function's caller memory context.
unsafe impl pgrx::callconv::BoxRet for RawJsonb {
    unsafe fn box_into<'fcx>(
        self,
        fcinfo: &mut pgrx::callconv::FcInfo<'fcx>,
    ) -> pgrx::datum::Datum<'fcx> {
        unsafe { fcinfo.return_raw_datum(self.0) }
    }
}
