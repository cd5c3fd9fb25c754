//! What the webhook configuration needs from Rust: secrets, and the validation and compilation
//! of a webhook row (payload fields, domain filter) against Odoo's model metadata. Everything
//! else (tables, capture trigger, delivery bookkeeping) is SQL in `src/sql/webhooks.sql`.
use crate::data::context::{SUPERUSER_ID, UserContext};
use crate::data::meta;
use crate::data::read::Models;
use crate::error::{raise, spi};
use api_gateway_core::domain::{self, CompileOptions};
use api_gateway_core::webhook;
use pgrx::prelude::*;

/// `api_gateway._new_webhook_secret()`: `whsec_` + base64 of 32 bytes from the OS CSPRNG.
#[pg_extern(volatile, parallel_safe)]
fn _new_webhook_secret() -> String {
    api_gateway_core::secrets::new_webhook_secret()
}

/// `api_gateway._webhook_secret_valid(secret)`: `whsec_` + standard base64 of 24 to 64 bytes
/// (the Standard Webhooks range).
#[pg_extern(immutable, parallel_safe, strict)]
fn _webhook_secret_valid(secret: &str) -> bool {
    secret.starts_with(webhook::SECRET_PREFIX)
        && webhook::decode_secret(secret).is_ok_and(|k| (24..=64).contains(&k.len()))
}

/// Field names that look like credentials are never sent unless listed explicitly.
fn secret_like(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n.contains("password")
        || n.contains("passwd")
        || n.contains("secret")
        || n.ends_with("token")
        || n.ends_with("_key")
        || n == "key"
}

fn bad(message: String, hint: Option<&str>) -> ! {
    raise(
        PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        message,
        hint,
    )
}

/// `api_gateway._webhook_fields(model, fields)`: the columns a webhook's payload carries, `id`
/// first. NULL or empty `fields`: every field stored in a column of the model's table except
/// binaries and credential-like names. Listed fields must exist and have a column (x2many,
/// computed and related fields live elsewhere); 22023 otherwise. Unknown models: 42P01.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn _webhook_fields(model: &str, fields: Option<Vec<Option<String>>>) -> Vec<String> {
    crate::odoo::require_odoo("webhook", &["ir_model", "ir_model_fields"]);
    let m = meta::model(model);
    let has_column = |name: &str| m.fields.get(name).is_some_and(|f| f.has_column);
    let listed: Vec<String> = fields.unwrap_or_default().into_iter().flatten().collect();
    let mut out: Vec<String> = vec!["id".into()];
    if listed.is_empty() {
        let mut names: Vec<String> = m
            .info
            .fields
            .values()
            .filter(|f| {
                f.store && f.ttype != "binary" && has_column(&f.name) && !secret_like(&f.name)
            })
            .map(|f| f.name.clone())
            .filter(|n| n != "id")
            .collect();
        names.sort();
        out.extend(names);
        return out;
    }
    for name in listed {
        let shown: String = name.chars().take(64).collect();
        if !m.info.fields.contains_key(&name) {
            bad(format!("unknown field {model}.{shown}"), None);
        }
        if !has_column(&name) {
            bad(
                format!(
                    "field {model}.{shown} has no column in table {}: a webhook payload carries stored columns only",
                    m.table()
                ),
                Some(
                    "one2many, many2many, computed and related fields are not in the model's table",
                ),
            );
        }
        if !out.contains(&name) {
            out.push(name);
        }
    }
    out
}

/// `api_gateway._webhook_condition(model, domain)`: the domain as a boolean SQL condition over
/// the row alias `t`, with every value inlined as a quoted literal (so the capture trigger can
/// run it with EXECUTE over its transition table), or NULL when the domain is empty. Compiled
/// as the superuser with `active_test = False`: no record rule, no implicit active filter. The
/// condition is tried once against the table, so a saved webhook cannot fail at capture time.
#[pg_extern(stable, security_definer)]
#[search_path(pg_catalog, public, pg_temp)]
fn _webhook_condition(model: &str, domain: Option<&str>) -> Option<String> {
    let text = domain.map(str::trim).filter(|d| !d.is_empty())?;
    crate::odoo::require_odoo("webhook", &["ir_model", "ir_model_fields", "res_company"]);
    if text.len() > 64 * 1024 {
        bad("invalid webhook domain: longer than 64 KiB".into(), None);
    }
    let parsed =
        domain::parse(text).unwrap_or_else(|e| bad(format!("invalid webhook domain: {e}"), None));
    if parsed.is_true() {
        return None;
    }
    let m = meta::model(model);
    let company_id: i64 = Spi::connect(|c| {
        spi(c
            .select("SELECT min(id)::int8 FROM public.res_company", Some(1), &[])
            .and_then(|t| t.first().get::<i64>(1)))
    })
    .unwrap_or(1);
    let user = UserContext {
        uid: SUPERUSER_ID,
        superuser: true,
        company_id,
        company_ids: vec![company_id],
        partner_id: None,
        commercial_partner_id: None,
        lang: "en_US".into(),
        groups: vec![],
        allowed: true,
        rules: vec![],
        fingerprint: m.fingerprint,
        limits: (80, 1000),
    };
    let models = Models::new(&user, model);
    let opts = CompileOptions {
        lang: "en_US",
        company_id,
        active_test: false,
    };
    let condition = domain::compile_literal(&parsed, &m.info, &models, "t", &opts)
        .map(|sql| format!("({sql})"))
        .unwrap_or_else(|e| bad(format!("invalid webhook domain: {e}"), None));
    // Run it once (no row read) so that a condition the table cannot evaluate is refused now.
    let probe = format!(
        "SELECT count(*) FROM (SELECT 1 FROM public.{} t WHERE {condition} LIMIT 0) s",
        m.table_ident()
    );
    Spi::connect(|c| spi(c.select(probe.as_str(), Some(1), &[]).map(|_| ())));
    Some(condition)
}

// ----------------------------------------------------------------- capture-time serialization
//
// The capture trigger turns every captured row into JSON text with these two functions. They
// read the tuple directly (no jsonb tree, no key sorting) and write the same values to_jsonb
// would: numbers and booleans as JSON, dates and timestamps in ISO 8601 (JsonEncodeDateTime,
// as to_jsonb), json/jsonb as JSON, everything else as its text output in a JSON string
// (arrays and composite values included: Odoo's tables have none). NULLs are left out; the
// payload is completed with them when it is rendered for delivery.

use api_gateway_core::webhook_merge::{push_json_string, push_write};
use pgrx::pg_sys;
use std::cell::RefCell;
use std::collections::HashMap;

unsafe extern "C-unwind" {
    /// utils/adt/datum.c: equality of the binary images (detoasting as needed). Called through
    /// pg_guard_ffi_boundary, since detoasting may raise an ERROR.
    fn datum_image_eq(value1: pg_sys::Datum, value2: pg_sys::Datum, by_val: bool, len: i32)
    -> bool;
}

thread_local! {
    /// Output functions by type, looked up once per backend (in TopMemoryContext).
    static OUTPUT: RefCell<HashMap<pg_sys::Oid, *mut pg_sys::FmgrInfo>> = RefCell::new(HashMap::new());
}

fn output_text(typid: pg_sys::Oid, value: pg_sys::Datum) -> String {
    let flinfo = OUTPUT.with(|m| {
        *m.borrow_mut().entry(typid).or_insert_with(|| unsafe {
            let mut func = pg_sys::InvalidOid;
            let mut varlena = false;
            pg_sys::getTypeOutputInfo(typid, &mut func, &mut varlena);
            let f = pg_sys::MemoryContextAllocZero(
                pg_sys::TopMemoryContext,
                std::mem::size_of::<pg_sys::FmgrInfo>(),
            ) as *mut pg_sys::FmgrInfo;
            pg_sys::fmgr_info_cxt(func, f, pg_sys::TopMemoryContext);
            f
        })
    });
    unsafe {
        let c = pg_sys::OutputFunctionCall(flinfo, value);
        let s = std::ffi::CStr::from_ptr(c).to_string_lossy().into_owned();
        pg_sys::pfree(c.cast());
        s
    }
}

/// Whether the output of a numeric type is a JSON number (not NaN or an infinity).
fn json_number(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
        && b.iter().any(u8::is_ascii_digit)
}

/// One value as JSON, appended to `out`.
unsafe fn push_json_value(out: &mut String, typid: pg_sys::Oid, value: pg_sys::Datum) {
    match typid {
        pg_sys::BOOLOID => out.push_str(if value.value() != 0 { "true" } else { "false" }),
        pg_sys::INT2OID => out.push_str(&(value.value() as i16).to_string()),
        pg_sys::INT4OID => out.push_str(&(value.value() as i32).to_string()),
        pg_sys::INT8OID => out.push_str(&(value.value() as i64).to_string()),
        pg_sys::TEXTOID | pg_sys::VARCHAROID | pg_sys::BPCHAROID => {
            let v = unsafe { pg_sys::pg_detoast_datum_packed(value.cast_mut_ptr()) };
            let bytes = unsafe { pgrx::varlena::varlena_to_byte_slice(v) };
            push_json_string(out, &String::from_utf8_lossy(bytes));
        }
        pg_sys::JSONOID | pg_sys::JSONBOID => out.push_str(&output_text(typid, value)),
        pg_sys::NUMERICOID | pg_sys::FLOAT4OID | pg_sys::FLOAT8OID | pg_sys::OIDOID => {
            let s = output_text(typid, value);
            if json_number(&s) {
                out.push_str(&s);
            } else {
                push_json_string(out, &s);
            }
        }
        pg_sys::DATEOID | pg_sys::TIMESTAMPOID | pg_sys::TIMESTAMPTZOID => {
            let c = unsafe {
                pg_sys::JsonEncodeDateTime(std::ptr::null_mut(), value, typid, std::ptr::null())
            };
            let s = unsafe { std::ffi::CStr::from_ptr(c) }.to_string_lossy();
            push_json_string(out, &s);
        }
        _ => push_json_string(out, &output_text(typid, value)),
    }
}

/// A row taken apart: from a composite datum (a SQL argument) or from a tuple slot (the
/// capture trigger's transition tables, see `webhook_capture.rs`).
pub(crate) struct Row {
    tupdesc: pg_sys::TupleDesc,
    values: Vec<pg_sys::Datum>,
    nulls: Vec<bool>,
    /// Whether `tupdesc` came from lookup_rowtype_tupdesc (released on drop).
    looked_up: bool,
}

impl Row {
    unsafe fn new(datum: pg_sys::Datum) -> Row {
        unsafe {
            let header = pg_sys::pg_detoast_datum(datum.cast_mut_ptr()) as pg_sys::HeapTupleHeader;
            let tupdesc = pg_sys::lookup_rowtype_tupdesc(
                pgrx::heap_tuple_header_get_type_id(header),
                pgrx::heap_tuple_header_get_typmod(header),
            );
            let mut tuple: pg_sys::HeapTupleData = std::mem::zeroed();
            tuple.t_len = pgrx::heap_tuple_header_get_datum_length(header) as u32;
            tuple.t_data = header;
            let mut row = Row::from_heap_tuple(tupdesc, &mut tuple);
            row.looked_up = true;
            row
        }
    }

    /// The attributes of `tuple`, described by `tupdesc` (which must outlive the row).
    pub(crate) unsafe fn from_heap_tuple(
        tupdesc: pg_sys::TupleDesc,
        tuple: pg_sys::HeapTuple,
    ) -> Row {
        unsafe {
            let natts = usize::try_from((*tupdesc).natts).unwrap_or(0);
            let mut values = vec![pg_sys::Datum::from(0usize); natts];
            let mut nulls = vec![true; natts];
            pg_sys::heap_deform_tuple(tuple, tupdesc, values.as_mut_ptr(), nulls.as_mut_ptr());
            Row {
                tupdesc,
                values,
                nulls,
                looked_up: false,
            }
        }
    }

    /// The attributes of the tuple in `slot` (valid while the slot keeps that tuple).
    pub(crate) unsafe fn from_slot(slot: *mut pg_sys::TupleTableSlot) -> Row {
        unsafe {
            pg_sys::slot_getallattrs(slot);
            let tupdesc = (*slot).tts_tupleDescriptor;
            let natts = usize::try_from((*tupdesc).natts).unwrap_or(0);
            Row {
                tupdesc,
                values: std::slice::from_raw_parts((*slot).tts_values, natts).to_vec(),
                nulls: std::slice::from_raw_parts((*slot).tts_isnull, natts).to_vec(),
                looked_up: false,
            }
        }
    }

    /// The value of attribute `attnum` as an integer, when it is a non-NULL int4.
    pub(crate) fn int4(&self, attnum: i16) -> Option<i32> {
        let (_, typid, _, _) = self.attr(attnum)?;
        let i = (attnum - 1) as usize;
        (typid == pg_sys::INT4OID && !self.nulls[i]).then(|| self.values[i].value() as i32)
    }

    /// The live attribute `attnum` (1-based): (name, type, by value, length), or None.
    fn attr(&self, attnum: i16) -> Option<(String, pg_sys::Oid, bool, i16)> {
        let i = usize::try_from(attnum).ok()?.checked_sub(1)?;
        if i >= self.values.len() {
            return None;
        }
        let a = unsafe { &*(*self.tupdesc).attrs.as_ptr().add(i) };
        if a.attisdropped {
            return None;
        }
        let name = unsafe { std::ffi::CStr::from_ptr(a.attname.data.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        Some((name, a.atttypid, a.attbyval, a.attlen))
    }

    /// `{"name": value, ...}` for the non-NULL attributes among `attnums`.
    pub(crate) fn push_object(&self, out: &mut String, attnums: &[i16]) {
        out.push('{');
        let mut first = true;
        for &n in attnums {
            let Some(i) = usize::try_from(n).ok().and_then(|n| n.checked_sub(1)) else {
                continue;
            };
            if i >= self.values.len() || self.nulls[i] {
                continue;
            }
            let a = unsafe { &*(*self.tupdesc).attrs.as_ptr().add(i) };
            if a.attisdropped {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let name = unsafe { std::ffi::CStr::from_ptr(a.attname.data.as_ptr()) };
            push_json_string(out, &name.to_string_lossy());
            out.push(':');
            unsafe { push_json_value(out, a.atttypid, self.values[i]) };
        }
        out.push('}');
    }
}

impl Drop for Row {
    fn drop(&mut self) {
        // ReleaseTupleDesc: only reference-counted descriptors are released.
        unsafe {
            if self.looked_up && (*self.tupdesc).tdrefcount >= 0 {
                pg_sys::DecrTupleDescRefCount(self.tupdesc);
            }
        }
    }
}

/// `api_gateway._webhook_row_json(row, attnums)`: the non-NULL columns `attnums` of `row` as
/// a JSON object (text).
#[pg_extern(stable, parallel_safe, strict)]
fn _webhook_row_json(row: pgrx::AnyElement, attnums: Vec<i16>) -> String {
    let r = unsafe { Row::new(row.datum()) };
    let mut out = String::with_capacity(256);
    r.push_object(&mut out, &attnums);
    out
}

/// `api_gateway._webhook_write_json(new, old, attnums, watched)`: NULL when no column of
/// `watched` differs between the two rows (binary images compared); else
/// `{"r": <new row's non-NULL attnums>, "c": [changed names], "p": {changed name: old value}}`.
#[pg_extern(stable, parallel_safe, strict)]
fn _webhook_write_json(
    new: pgrx::AnyElement,
    old: pgrx::AnyElement,
    attnums: Vec<i16>,
    watched: Vec<i16>,
) -> Option<String> {
    let n = unsafe { Row::new(new.datum()) };
    let o = unsafe { Row::new(old.datum()) };
    write_json(&n, &o, &attnums, &watched)
}

/// What `_webhook_write_json` returns, for two rows taken apart.
pub(crate) fn write_json(n: &Row, o: &Row, attnums: &[i16], watched: &[i16]) -> Option<String> {
    let mut changed: Vec<(String, i16)> = vec![];
    for &a in watched {
        let Some((name, _, by_val, len)) = n.attr(a) else {
            continue;
        };
        let i = (a - 1) as usize;
        if i >= o.values.len() {
            continue;
        }
        let same = match (n.nulls[i], o.nulls[i]) {
            (true, true) => true,
            (false, false) => unsafe {
                let (x, y) = (n.values[i], o.values[i]);
                pg_sys::ffi::pg_guard_ffi_boundary(|| datum_image_eq(x, y, by_val, i32::from(len)))
            },
            _ => false,
        };
        if !same {
            changed.push((name, a));
        }
    }
    if changed.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(512);
    push_write(
        &mut out,
        |out| n.push_object(out, attnums),
        &changed,
        |out, a| {
            let i = (*a - 1) as usize;
            if o.nulls[i] {
                out.push_str("null");
            } else {
                let typid = o.attr(*a).map(|x| x.1).unwrap_or(pg_sys::TEXTOID);
                unsafe { push_json_value(out, typid, o.values[i]) };
            }
        },
    );
    Some(out)
}

// ------------------------------------------------------ one event per record and transaction

/// `api_gateway._webhook_own(xmin)`: whether a row version was written by the current
/// transaction (or one of its live subtransactions). The capture trigger merges a change into
/// the pending event of the same record only when that event is its own transaction's.
#[pg_extern(stable, parallel_safe, strict)]
fn _webhook_own(xmin: pg_sys::TransactionId) -> bool {
    unsafe { pg_sys::TransactionIdIsCurrentTransactionId(xmin) }
}

/// `api_gateway._webhook_merge(prev_action, prev_data, new_write, new_row, rel)`: the data of
/// the pending create or write of a record once a later UPDATE of the same transaction is
/// merged into it (see `api_gateway_core::webhook_merge`); NULL when the merged write changes
/// nothing any more. `rel` is the table, for the column order of `changed`.
#[pg_extern(stable, parallel_safe)]
fn _webhook_merge(
    prev_action: &str,
    prev_data: &str,
    new_write: Option<&str>,
    new_row: Option<&str>,
    rel: pg_sys::Oid,
) -> Option<String> {
    let position = |name: &str| -> i32 {
        let Ok(c) = std::ffi::CString::new(name) else {
            return i32::MAX;
        };
        let n = unsafe { pg_sys::get_attnum(rel, c.as_ptr()) };
        if n <= 0 { i32::MAX } else { i32::from(n) }
    };
    api_gateway_core::webhook_merge::merge_write(
        prev_action,
        prev_data,
        new_write,
        new_row,
        &position,
    )
    .unwrap_or_else(|e| {
        raise(
            PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
            format!("cannot merge webhook events: {e}"),
            None,
        )
    })
}

thread_local! {
    /// The transaction that last queued a webhook event in this backend (see `_webhook_queued`).
    static QUEUED_IN: std::cell::Cell<pg_sys::FullTransactionId> =
        const { std::cell::Cell::new(pg_sys::FullTransactionId { value: 0 }) };
}

/// `api_gateway._webhook_queued()`: whether the current transaction may have queued a webhook
/// event already (so that a later UPDATE or DELETE must look for it to merge into). A hint
/// only: after a rollback to a savepoint it may say true when nothing is left, which costs a
/// lookup that finds nothing; it never says false when an event of this transaction exists.
#[pg_extern(volatile, parallel_unsafe)]
fn _webhook_queued() -> bool {
    queued()
}

/// Whether the current transaction may have queued a webhook event already.
pub(crate) fn queued() -> bool {
    let current = unsafe { pg_sys::GetTopFullTransactionIdIfAny() };
    current.value != 0 && QUEUED_IN.with(|q| q.get().value == current.value)
}

/// `api_gateway._webhook_mark_queued()`: the current transaction queued a webhook event.
#[pg_extern(volatile, parallel_unsafe)]
fn _webhook_mark_queued() {
    mark_queued()
}

/// The current transaction queued a webhook event.
pub(crate) fn mark_queued() {
    let current = unsafe { pg_sys::GetTopFullTransactionIdIfAny() };
    QUEUED_IN.with(|q| q.set(current));
}
