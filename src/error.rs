//! Errors raised to SQL callers, each with a precise SQLSTATE (never the generic 22000/XX000).
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::*;

/// Raise `ERROR` with `code` and `message` (and an optional hint). Never returns.
pub fn raise(code: PgSqlErrorCode, message: impl Into<String>, hint: Option<&str>) -> ! {
    let mut report = ErrorReport::new(code, message.into(), "api_gateway");
    if let Some(hint) = hint {
        report = report.set_hint(hint.to_string());
    }
    report.report(PgLogLevel::ERROR);
    unreachable!("ERROR does not return")
}

/// SPI failures are internal errors; their text is safe for the SQL caller (no secrets in our queries).
pub fn spi<T>(result: Result<T, pgrx::spi::SpiError>) -> T {
    match result {
        Ok(v) => v,
        Err(e) => raise(
            PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
            format!("api_gateway: {e}"),
            None,
        ),
    }
}
