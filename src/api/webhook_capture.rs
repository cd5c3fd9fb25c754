//! `api_gateway._webhook_capture()`, the one trigger function of every watched table (AFTER
//! INSERT/UPDATE/DELETE FOR EACH STATEMENT, transition tables `agw_new`/`agw_old`).
//!
//! Capture is on the writer's hot path: a single-row INSERT into `res_partner` with a webhook
//! used to spend as much time in the PL/pgSQL trigger (SECURITY DEFINER and its GUC change,
//! the lookup of the table's webhooks, an INSERT … SELECT planned and started through SPI) as
//! in the INSERT itself. This function does the common cases directly:
//!
//! * the table's webhooks come from a per-backend cache, filled by one call of
//!   `_webhook_capture_config(table)` and dropped whenever a relation cache invalidation names
//!   `api_gateway.webhook` (sent by `_webhook_apply` with every saved, deleted or deactivated
//!   webhook, so committed changes are seen by the next statement of every backend), the
//!   outbox, or the watched table (ALTER TABLE);
//! * the events are serialised from the transition tables with the same code as
//!   `_webhook_row_json`/`_webhook_write_json`, and written straight into the outbox
//!   (heap insert and index entries, as the logical replication apply worker does): the same
//!   WAL-logged rows, in the same (sub)transaction, a rollback leaves nothing.
//!
//! Every other case goes to `_webhook_capture_sql()`, the PL/pgSQL implementation, called
//! with this trigger's own context (same transition tables): a table with a webhook that has a
//! domain (the trigger's argument 'filtered'), an UPDATE or DELETE in a transaction that already
//! queued an event (merging into it), and an outbox whose columns are not the ones this code
//! knows (a later version's schema: nothing is written that the table would not accept).
use crate::api::webhooks::{Row, mark_queued, queued, write_json};
use pgrx::pg_sys;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;

unsafe extern "C-unwind" {
    /// commands/sequence.c: the next value of a sequence. Called without the permission check:
    /// capture writes as the extension, whoever the writer is (as SECURITY DEFINER did).
    fn nextval_internal(relid: pg_sys::Oid, check_permissions: bool) -> i64;
}

/// The PostgreSQL entry point (V1 calling convention).
#[unsafe(no_mangle)]
pub extern "C" fn pg_finfo__webhook_capture_wrapper() -> &'static pg_sys::Pg_finfo_record {
    const V1: pg_sys::Pg_finfo_record = pg_sys::Pg_finfo_record { api_version: 1 };
    &V1
}

#[unsafe(no_mangle)]
#[pgrx::pg_guard]
pub unsafe extern "C-unwind" fn _webhook_capture_wrapper(
    fcinfo: pg_sys::FunctionCallInfo,
) -> pg_sys::Datum {
    unsafe { capture(fcinfo) }
}

/// One webhook of a table, as capture needs it (active, no domain).
struct Hook {
    id: i32,
    on_create: bool,
    on_write: bool,
    on_unlink: bool,
    payload: Vec<i16>,
    watched: Vec<i16>,
}

/// What `_webhook_capture_config` says, per backend.
struct Config {
    job_rel: pg_sys::Oid,
    job_seq: pg_sys::Oid,
    slow_fn: pg_sys::Oid,
    /// Per watched table (by name, as webhook.table_name): its webhooks without a domain.
    tables: HashMap<String, std::rc::Rc<Vec<Hook>>>,
}

thread_local! {
    static CONFIG: RefCell<Option<Config>> = const { RefCell::new(None) };
    /// Bumped by every relevant relation cache invalidation: the cache is valid while equal.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
    static CONFIG_GENERATION: Cell<u64> = const { Cell::new(u64::MAX) };
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
    /// The relations whose invalidation drops the cache (read by the callback).
    static WATCHED_RELS: RefCell<Vec<pg_sys::Oid>> = const { RefCell::new(Vec::new()) };
}

#[pgrx::pg_guard]
unsafe extern "C-unwind" fn on_relcache_invalidation(_arg: pg_sys::Datum, relid: pg_sys::Oid) {
    let relevant = relid == pg_sys::InvalidOid
        // Before the first load (an empty list) every invalidation counts: one that arrives
        // while the first load runs must not be missed.
        || WATCHED_RELS.with(|w| {
            w.try_borrow()
                .map(|w| w.is_empty() || w.contains(&relid))
                .unwrap_or(true)
        });
    if relevant {
        GENERATION.with(|g| g.set(g.get().wrapping_add(1)));
    }
}

/// `api_gateway._webhook_invalidate(rel)`: tell every backend (at commit) and this one (at the
/// next command) that the webhooks changed: a relation cache invalidation of `rel`, the
/// webhook table.
#[pgrx::pg_extern(volatile, parallel_unsafe, strict)]
fn _webhook_invalidate(rel: pg_sys::Oid) {
    unsafe { pg_sys::CacheInvalidateRelcacheByRelid(rel) };
}

/// Which operation fired the trigger.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    Insert,
    Update,
    Delete,
}

unsafe fn capture(fcinfo: pg_sys::FunctionCallInfo) -> pg_sys::Datum {
    unsafe {
        let context = (*fcinfo).context;
        if context.is_null() || (*context).type_ != pg_sys::NodeTag::T_TriggerData {
            crate::error::raise(
                pgrx::PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "api_gateway._webhook_capture() must be called as a trigger",
                None,
            );
        }
        let trigdata = context as *mut pg_sys::TriggerData;
        let event = (*trigdata).tg_event;
        if event & pg_sys::TRIGGER_EVENT_ROW != 0
            || event & pg_sys::TRIGGER_EVENT_TIMINGMASK != pg_sys::TRIGGER_EVENT_AFTER
        {
            crate::error::raise(
                pgrx::PgSqlErrorCode::ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED,
                "api_gateway._webhook_capture() must be an AFTER … FOR EACH STATEMENT trigger",
                None,
            );
        }
        let op = match event & pg_sys::TRIGGER_EVENT_OPMASK {
            pg_sys::TRIGGER_EVENT_INSERT => Op::Insert,
            pg_sys::TRIGGER_EVENT_UPDATE => Op::Update,
            pg_sys::TRIGGER_EVENT_DELETE => Op::Delete,
            _ => return pg_sys::Datum::from(0usize),
        };
        // Committed changes of the webhooks reach this backend's cache before it is used.
        pg_sys::AcceptInvalidationMessages();
        let fn_oid = (*(*fcinfo).flinfo).fn_oid;
        let table = relation_name((*trigdata).tg_relation);
        let (cfg_slow, hooks) = config_for(fn_oid, &table, (*(*trigdata).tg_relation).rd_id);
        let filtered = (*(*trigdata).tg_trigger).tgnargs > 0;
        if filtered || (op != Op::Insert && queued()) {
            return call_slow(fcinfo, cfg_slow);
        }
        let hooks: Vec<&Hook> = hooks
            .iter()
            .filter(|h| match op {
                Op::Insert => h.on_create,
                Op::Update => h.on_write,
                Op::Delete => h.on_unlink,
            })
            .collect();
        if hooks.is_empty() {
            return pg_sys::Datum::from(0usize);
        }
        let (new_rows, old_rows) = ((*trigdata).tg_newtable, (*trigdata).tg_oldtable);
        let rows = if op == Op::Delete { old_rows } else { new_rows };
        if rows.is_null() || pg_sys::tuplestore_tuple_count(rows) == 0 {
            return pg_sys::Datum::from(0usize);
        }
        let tupdesc = (*(*trigdata).tg_relation).rd_att;
        // An `id` that is not an int4 column (or none at all): the SQL path, which writes or
        // refuses such rows as the outbox's `record_id` does, never drops them silently.
        let Some(id_attnum) = attnum_of(tupdesc, c"id").filter(|a| {
            (*(*tupdesc).attrs.as_ptr().add((*a - 1) as usize)).atttypid == pg_sys::INT4OID
        }) else {
            return call_slow(fcinfo, cfg_slow);
        };
        let Some(mut outbox) = Outbox::open() else {
            return call_slow(fcinfo, cfg_slow);
        };
        let captured_at = pg_sys::GetCurrentTimestamp();
        let mut written = 0u64;
        match op {
            Op::Insert => scan(rows, tupdesc, |row| {
                let Some(record_id) = row.int4(id_attnum) else {
                    return;
                };
                for h in &hooks {
                    let mut data = String::with_capacity(256);
                    row.push_object(&mut data, &h.payload);
                    outbox.insert(h.id, "create", record_id, Some(&data), captured_at);
                    written += 1;
                }
            }),
            Op::Delete => scan(rows, tupdesc, |row| {
                let Some(record_id) = row.int4(id_attnum) else {
                    return;
                };
                for h in &hooks {
                    outbox.insert(h.id, "unlink", record_id, None, captured_at);
                    written += 1;
                }
            }),
            Op::Update => {
                if old_rows.is_null() {
                    return pg_sys::Datum::from(0usize);
                }
                // The old rows by id (copies: the tuplestore's slot is reused).
                let mut old: HashMap<i32, pg_sys::HeapTuple> = HashMap::new();
                scan_slots(old_rows, tupdesc, |slot| {
                    let row = Row::from_slot(slot);
                    if let Some(id) = row.int4(id_attnum) {
                        old.insert(id, pg_sys::ExecCopySlotHeapTuple(slot));
                    }
                });
                scan(rows, tupdesc, |row| {
                    let Some(record_id) = row.int4(id_attnum) else {
                        return;
                    };
                    let Some(&before) = old.get(&record_id) else {
                        return;
                    };
                    let before = Row::from_heap_tuple(tupdesc, before);
                    for h in &hooks {
                        if let Some(data) = write_json(row, &before, &h.payload, &h.watched) {
                            outbox.insert(h.id, "write", record_id, Some(&data), captured_at);
                            written += 1;
                        }
                    }
                });
            }
        }
        outbox.close();
        if written > 0 {
            // Later statements of this transaction merge into what this one queued.
            mark_queued();
        }
        pg_sys::Datum::from(0usize)
    }
}

/// The relation's name (webhook.table_name is the name in `public`).
unsafe fn relation_name<'a>(rel: pg_sys::Relation) -> std::borrow::Cow<'a, str> {
    unsafe { CStr::from_ptr((*(*rel).rd_rel).relname.data.as_ptr()).to_string_lossy() }
}

/// The attribute number of the live column `name`, if any.
unsafe fn attnum_of(tupdesc: pg_sys::TupleDesc, name: &CStr) -> Option<i16> {
    unsafe {
        let natts = usize::try_from((*tupdesc).natts).unwrap_or(0);
        (0..natts).find_map(|i| {
            let a = &*(*tupdesc).attrs.as_ptr().add(i);
            (!a.attisdropped && CStr::from_ptr(a.attname.data.as_ptr()) == name).then_some(a.attnum)
        })
    }
}

/// Every tuple of a transition table, in a slot.
unsafe fn scan_slots(
    store: *mut pg_sys::Tuplestorestate,
    tupdesc: pg_sys::TupleDesc,
    mut f: impl FnMut(*mut pg_sys::TupleTableSlot),
) {
    unsafe {
        let slot = pg_sys::MakeSingleTupleTableSlot(tupdesc, &pg_sys::TTSOpsMinimalTuple);
        // Its own read pointer, as a NamedTuplestoreScan takes (other triggers read it too).
        let ptr = pg_sys::tuplestore_alloc_read_pointer(store, pg_sys::EXEC_FLAG_REWIND as i32);
        pg_sys::tuplestore_select_read_pointer(store, ptr);
        pg_sys::tuplestore_rescan(store);
        while pg_sys::tuplestore_gettupleslot(store, true, false, slot) {
            f(slot);
        }
        pg_sys::ExecDropSingleTupleTableSlot(slot);
    }
}

/// Every row of a transition table.
unsafe fn scan(
    store: *mut pg_sys::Tuplestorestate,
    tupdesc: pg_sys::TupleDesc,
    mut f: impl FnMut(&Row),
) {
    unsafe { scan_slots(store, tupdesc, |slot| f(&Row::from_slot(slot))) }
}

/// The cached webhooks of `table` (loading them when the cache is stale), and the oid of the
/// SQL implementation.
unsafe fn config_for(
    fn_oid: pg_sys::Oid,
    table: &str,
    relid: pg_sys::Oid,
) -> (pg_sys::Oid, std::rc::Rc<Vec<Hook>>) {
    unsafe {
        if !CALLBACK_REGISTERED.with(Cell::get) {
            pg_sys::CacheRegisterRelcacheCallback(
                Some(on_relcache_invalidation),
                pg_sys::Datum::from(0usize),
            );
            CALLBACK_REGISTERED.with(|c| c.set(true));
        }
        let generation = GENERATION.with(Cell::get);
        if CONFIG_GENERATION.with(Cell::get) != generation {
            CONFIG.with(|c| c.borrow_mut().take());
        }
        let cached = CONFIG.with(|c| {
            c.borrow().as_ref().and_then(|cfg| {
                cfg.tables
                    .get(table)
                    .map(|h| (cfg.slow_fn, std::rc::Rc::clone(h)))
            })
        });
        if let Some(found) = cached {
            return found;
        }
        let loaded = load(fn_oid, table);
        let result = (loaded.slow_fn, std::rc::Rc::clone(&loaded.hooks));
        WATCHED_RELS.with(|w| {
            let mut w = w.borrow_mut();
            for rel in [loaded.job_rel, loaded.webhook_rel, relid] {
                if !w.contains(&rel) {
                    w.push(rel);
                }
            }
        });
        CONFIG.with(|c| {
            let mut c = c.borrow_mut();
            let cfg = c.get_or_insert_with(|| Config {
                job_rel: loaded.job_rel,
                job_seq: loaded.job_seq,
                slow_fn: loaded.slow_fn,
                tables: HashMap::new(),
            });
            cfg.tables.insert(table.to_string(), loaded.hooks);
        });
        CONFIG_GENERATION.with(|g| g.set(generation));
        result
    }
}

struct Loaded {
    job_rel: pg_sys::Oid,
    job_seq: pg_sys::Oid,
    slow_fn: pg_sys::Oid,
    webhook_rel: pg_sys::Oid,
    hooks: std::rc::Rc<Vec<Hook>>,
}

/// One call of `api_gateway._webhook_capture_config(table)` (SECURITY DEFINER: the writer
/// needs no right on the schema; found by name in the namespace of this trigger function,
/// through the system cache, which checks no privilege). It reads with the latest snapshot,
/// not the statement's or the transaction's (REPEATABLE READ, as Odoo uses): what it returns
/// is kept for later transactions, so it must include every change whose invalidation this
/// backend has already seen.
unsafe fn load(fn_oid: pg_sys::Oid, table: &str) -> Loaded {
    unsafe {
        let nsp = pg_sys::get_func_namespace(fn_oid);
        let argtypes = pg_sys::buildoidvector(&pg_sys::TEXTOID, 1);
        let name = c"_webhook_capture_config";
        let config_fn = pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::PROCNAMEARGSNSP as i32,
            pg_sys::Anum_pg_proc_oid as i16,
            pg_sys::Datum::from(name.as_ptr()),
            pg_sys::Datum::from(argtypes),
            pg_sys::Datum::from(nsp),
            pg_sys::Datum::from(0usize),
        );
        if config_fn == pg_sys::InvalidOid {
            crate::error::raise(
                pgrx::PgSqlErrorCode::ERRCODE_UNDEFINED_FUNCTION,
                "api_gateway._webhook_capture_config(text) is missing: reinstall the extension",
                None,
            );
        }
        let arg = pg_sys::cstring_to_text_with_len(table.as_ptr().cast(), table.len() as i32);
        pg_sys::PushActiveSnapshot(pg_sys::GetLatestSnapshot());
        let out =
            pg_sys::OidFunctionCall1Coll(config_fn, pg_sys::InvalidOid, pg_sys::Datum::from(arg));
        pg_sys::PopActiveSnapshot();
        let text = CStr::from_ptr(pg_sys::text_to_cstring(out.cast_mut_ptr()))
            .to_string_lossy()
            .into_owned();
        parse_config(&text).unwrap_or_else(|e| {
            crate::error::raise(
                pgrx::PgSqlErrorCode::ERRCODE_DATA_CORRUPTED,
                format!("unexpected webhook capture configuration: {e}"),
                None,
            )
        })
    }
}

fn parse_config(text: &str) -> Result<Loaded, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let oid = |k: &str| -> Result<pg_sys::Oid, String> {
        v.get(k)
            .and_then(|x| x.as_u64())
            .and_then(|x| u32::try_from(x).ok())
            .map(pg_sys::Oid::from)
            .ok_or_else(|| format!("no {k}"))
    };
    let attnums = |x: Option<&serde_json::Value>| -> Vec<i16> {
        x.and_then(|a| a.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|n| n.as_i64().and_then(|n| i16::try_from(n).ok()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut hooks = vec![];
    for h in v
        .get("hooks")
        .and_then(|h| h.as_array())
        .into_iter()
        .flatten()
    {
        let flag = |k: &str| h.get(k).and_then(|b| b.as_bool()).unwrap_or(false);
        hooks.push(Hook {
            id: h
                .get("id")
                .and_then(|i| i.as_i64())
                .and_then(|i| i32::try_from(i).ok())
                .ok_or("a webhook without id")?,
            on_create: flag("c"),
            on_write: flag("w"),
            on_unlink: flag("u"),
            payload: attnums(h.get("p")),
            watched: attnums(h.get("d")),
        });
    }
    Ok(Loaded {
        job_rel: oid("job")?,
        job_seq: oid("seq")?,
        slow_fn: oid("slow")?,
        webhook_rel: oid("webhook")?,
        hooks: std::rc::Rc::new(hooks),
    })
}

/// Calls `_webhook_capture_sql()` (PL/pgSQL, SECURITY DEFINER) as this trigger: the same
/// TriggerData, so the same transition tables and arguments.
unsafe fn call_slow(fcinfo: pg_sys::FunctionCallInfo, slow_fn: pg_sys::Oid) -> pg_sys::Datum {
    unsafe {
        let flinfo =
            pg_sys::palloc0(std::mem::size_of::<pg_sys::FmgrInfo>()) as *mut pg_sys::FmgrInfo;
        pg_sys::fmgr_info(slow_fn, flinfo);
        let size = std::mem::size_of::<pg_sys::FunctionCallInfoBaseData>();
        let call = pg_sys::palloc0(size) as pg_sys::FunctionCallInfo;
        (*call).flinfo = flinfo;
        (*call).context = (*fcinfo).context;
        (*call).resultinfo = std::ptr::null_mut();
        (*call).fncollation = pg_sys::InvalidOid;
        (*call).isnull = false;
        (*call).nargs = 0;
        let f = (*flinfo).fn_addr.expect("a function address");
        f(call)
    }
}

/// The outbox columns capture fills (attribute indexes, 0-based).
#[derive(Clone, Copy)]
struct JobLayout {
    natts: usize,
    id: usize,
    event_id: usize,
    webhook_id: usize,
    action: usize,
    record_id: usize,
    data: usize,
    state: usize,
    attempts: usize,
    next_attempt_at: usize,
    created_at: usize,
    updated_at: usize,
}

/// The outbox columns when they are exactly what this code fills: the listed columns with
/// these types, every other column nullable without a default (so that a row written here is
/// the row an INSERT of those columns would write).
unsafe fn job_layout(tupdesc: pg_sys::TupleDesc) -> Option<JobLayout> {
    unsafe {
        let natts = usize::try_from((*tupdesc).natts).ok()?;
        let expected: [(&str, pg_sys::Oid); 11] = [
            ("id", pg_sys::INT8OID),
            ("event_id", pg_sys::UUIDOID),
            ("webhook_id", pg_sys::INT4OID),
            ("action", pg_sys::TEXTOID),
            ("record_id", pg_sys::INT4OID),
            ("data", pg_sys::TEXTOID),
            ("state", pg_sys::TEXTOID),
            ("attempts", pg_sys::INT4OID),
            ("next_attempt_at", pg_sys::TIMESTAMPTZOID),
            ("created_at", pg_sys::TIMESTAMPTZOID),
            ("updated_at", pg_sys::TIMESTAMPTZOID),
        ];
        let mut found: [Option<usize>; 11] = [None; 11];
        for i in 0..natts {
            let a = &*(*tupdesc).attrs.as_ptr().add(i);
            if a.attisdropped {
                continue;
            }
            let name = CStr::from_ptr(a.attname.data.as_ptr()).to_bytes();
            match expected.iter().position(|(n, _)| n.as_bytes() == name) {
                Some(k) if expected[k].1 == a.atttypid => found[k] = Some(i),
                Some(_) => return None,
                None if a.attnotnull
                    || a.atthasdef
                    || a.attgenerated != 0
                    || a.attidentity != 0 =>
                {
                    return None;
                }
                None => {}
            }
        }
        Some(JobLayout {
            natts,
            id: found[0]?,
            event_id: found[1]?,
            webhook_id: found[2]?,
            action: found[3]?,
            record_id: found[4]?,
            data: found[5]?,
            state: found[6]?,
            attempts: found[7]?,
            next_attempt_at: found[8]?,
            created_at: found[9]?,
            updated_at: found[10]?,
        })
    }
}

/// The outbox opened for writing: heap inserts plus index entries, in the current
/// (sub)transaction and command.
struct Outbox {
    rel: pg_sys::Relation,
    estate: *mut pg_sys::EState,
    rri: *mut pg_sys::ResultRelInfo,
    slot: *mut pg_sys::TupleTableSlot,
    layout: JobLayout,
    seq: pg_sys::Oid,
    now: pg_sys::TimestampTz,
    pending: pg_sys::Datum,
}

impl Outbox {
    /// None when the outbox is not the table this code knows.
    unsafe fn open() -> Option<Outbox> {
        unsafe {
            let (job_rel, seq) = CONFIG.with(|c| {
                let c = c.borrow();
                let cfg = c.as_ref()?;
                Some((cfg.job_rel, cfg.job_seq))
            })?;
            let rel = pg_sys::table_open(job_rel, pg_sys::RowExclusiveLock as i32);
            // From the descriptor as it is now, under the lock (an ALTER TABLE of the outbox
            // that committed while this waited for it is seen here).
            let layout = if (*(*rel).rd_rel).relkind == pg_sys::RELKIND_RELATION as std::ffi::c_char
                && (*rel).trigdesc.is_null()
            {
                job_layout((*rel).rd_att)
            } else {
                None
            };
            let Some(layout) = layout else {
                pg_sys::table_close(rel, pg_sys::NoLock as i32);
                return None;
            };
            let estate = pg_sys::CreateExecutorState();
            let rri = pg_sys::palloc0(std::mem::size_of::<pg_sys::ResultRelInfo>())
                as *mut pg_sys::ResultRelInfo;
            (*rri).type_ = pg_sys::NodeTag::T_ResultRelInfo;
            pg_sys::InitResultRelInfo(rri, rel, 1, std::ptr::null_mut(), 0);
            pg_sys::ExecOpenIndices(rri, false);
            let slot = pg_sys::MakeSingleTupleTableSlot((*rel).rd_att, &pg_sys::TTSOpsVirtual);
            let pending = pg_sys::Datum::from(pg_sys::cstring_to_text(c"pending".as_ptr()));
            Some(Outbox {
                rel,
                estate,
                rri,
                slot,
                layout,
                seq,
                now: pg_sys::GetCurrentTransactionStartTimestamp(),
                pending,
            })
        }
    }

    /// One job: what `INSERT INTO webhook_job (event_id, webhook_id, action, record_id, data,
    /// created_at) VALUES (gen_random_uuid(), …)` writes, defaults included.
    unsafe fn insert(
        &mut self,
        webhook_id: i32,
        action: &str,
        record_id: i32,
        data: Option<&str>,
        captured_at: pg_sys::TimestampTz,
    ) {
        unsafe {
            let l = self.layout;
            let slot = self.slot;
            pg_sys::ExecClearTuple(slot);
            let values = std::slice::from_raw_parts_mut((*slot).tts_values, l.natts);
            let nulls = std::slice::from_raw_parts_mut((*slot).tts_isnull, l.natts);
            nulls.fill(true);
            let seq = self.seq;
            let id = pg_sys::ffi::pg_guard_ffi_boundary(|| nextval_internal(seq, false));
            let mut set = |i: usize, d: pg_sys::Datum| {
                values[i] = d;
                nulls[i] = false;
            };
            set(l.id, pg_sys::Datum::from(id));
            set(l.event_id, pg_sys::Datum::from(random_uuid()));
            set(l.webhook_id, pg_sys::Datum::from(webhook_id));
            set(l.action, text_datum(action));
            set(l.record_id, pg_sys::Datum::from(record_id));
            if let Some(d) = data {
                set(l.data, text_datum(d));
            }
            set(l.state, self.pending);
            set(l.attempts, pg_sys::Datum::from(0i32));
            set(l.next_attempt_at, pg_sys::Datum::from(self.now));
            set(l.created_at, pg_sys::Datum::from(captured_at));
            set(l.updated_at, pg_sys::Datum::from(self.now));
            pg_sys::ExecStoreVirtualTuple(slot);
            pg_sys::simple_table_tuple_insert(self.rel, slot);
            if (*self.rri).ri_NumIndices > 0 {
                pg_sys::ExecInsertIndexTuples(
                    self.rri,
                    slot,
                    self.estate,
                    false,
                    false,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                );
            }
            let econtext = (*self.estate).es_per_tuple_exprcontext;
            if !econtext.is_null() {
                pg_sys::MemoryContextReset((*econtext).ecxt_per_tuple_memory);
            }
        }
    }

    unsafe fn close(self) {
        unsafe {
            pg_sys::ExecDropSingleTupleTableSlot(self.slot);
            pg_sys::ExecCloseIndices(self.rri);
            pg_sys::FreeExecutorState(self.estate);
            pg_sys::table_close(self.rel, pg_sys::NoLock as i32);
        }
    }
}

unsafe fn text_datum(s: &str) -> pg_sys::Datum {
    unsafe {
        pg_sys::Datum::from(pg_sys::cstring_to_text_with_len(
            s.as_ptr().cast(),
            i32::try_from(s.len()).unwrap_or(i32::MAX),
        ))
    }
}

thread_local! {
    /// Random bytes from pg_strong_random, drawn 4 KiB at a time (one OpenSSL call per 256
    /// events instead of one per event: it cost as much as the outbox's heap insert).
    static RANDOM_POOL: RefCell<(Vec<u8>, usize)> = const { RefCell::new((Vec::new(), 0)) };
}

/// A version 4 UUID from PostgreSQL's strong random source (what gen_random_uuid() returns).
unsafe fn random_uuid() -> *mut u8 {
    unsafe {
        let p = pg_sys::palloc(16) as *mut u8;
        let bytes = std::slice::from_raw_parts_mut(p, 16);
        RANDOM_POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            let (buf, used) = &mut *pool;
            if *used + 16 > buf.len() {
                buf.resize(4096, 0);
                if !pg_sys::pg_strong_random(buf.as_mut_ptr().cast(), buf.len()) {
                    crate::error::raise(
                        pgrx::PgSqlErrorCode::ERRCODE_INTERNAL_ERROR,
                        "could not generate random values",
                        None,
                    );
                }
                *used = 0;
            }
            bytes.copy_from_slice(&buf[*used..*used + 16]);
            // Used bytes are not kept around.
            buf[*used..*used + 16].fill(0);
            *used += 16;
        });
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        p
    }
}
