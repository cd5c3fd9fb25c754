//! The one counter path of the gate and of `rate_limit_hit`: where a subject's counter lives
//! (shared memory or a row of `api_gateway.throttle`) and how it is locked. What a hit does to
//! it is `core::counter`'s.
//!
//! Shared memory (only when the library is in `shared_preload_libraries`): a fixed number of
//! slots (`api_gateway.rate_limit_shared_subjects`, set at server start) split into
//! [`PARTITIONS`] partitions, each behind its own LWLock, so that subjects hashing to different
//! partitions never wait on each other. A subject's slot is found by linear probing over at most
//! [`PROBE`] slots from its home; a slot is reused only when its counter is idle (nothing left in
//! its window), so a limit is never reset early. When no slot is free the subject is counted in
//! the table, and it stays there while its row still counts something (a miss in shared memory
//! looks at the table first), so a subject is never counted in both places at once.
//!
//! Atomicity: a slot is read, computed and written back under its partition's exclusive lock,
//! with no query and no interrupt check in between (LWLocks hold interrupts off), so a backend
//! cancelled or terminated mid-call leaves either the old state or the new one; an ERROR inside
//! releases the lock (LWLockReleaseAll at abort) before anything was written back. A backend
//! that crashes makes the postmaster reinitialise shared memory: the counters start again.
//! Counts in shared memory are not transactional: a hit counts even if the caller's transaction
//! rolls back (the table's row does not).
use crate::error::spi;
use api_gateway_core::counter::{Algorithm, Counter};
use api_gateway_core::sliding_window::{Outcome, SUB_BUCKETS, Sliding};
use pgrx::prelude::*;
use pgrx::{GucContext, GucFlags, GucRegistry, GucSetting};
use std::hash::{DefaultHasher, Hasher};

/// Partitions of the shared counters, each with its own lock.
pub const PARTITIONS: usize = 64;
/// Slots looked at from a subject's home slot.
pub const PROBE: usize = 32;
/// Bytes of the subject kept for listings (`active_throttles`); lookups use a 128-bit hash.
const SUBJECT_BYTES: usize = 30;

static SHARED_SUBJECTS: GucSetting<i32> = GucSetting::<i32>::new(65_536);
static USE_SHARED_MEMORY: GucSetting<bool> = GucSetting::<bool>::new(true);

/// One subject's counter in shared memory. `key == [0, 0]`: never used.
#[repr(C)]
#[derive(Clone, Copy)]
struct Slot {
    key: [u64; 2],
    database: u32,
    head: i64,
    window_s: i32,
    limit: i32,
    algorithm: u8,
    subject_len: u8,
    subject: [u8; SUBJECT_BYTES],
    counts: [i32; SUB_BUCKETS + 1],
}

struct Shared {
    slots: *mut Slot,
    per_partition: usize,
    locks: *mut pg_sys::LWLockPadded,
}

// Set once in the postmaster's shmem_startup_hook (inherited by every forked backend), read-only
// afterwards.
static mut SHARED: Shared = Shared {
    slots: std::ptr::null_mut(),
    per_partition: 0,
    locks: std::ptr::null_mut(),
};
static mut PREV_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

const TRANCHE: &std::ffi::CStr = c"api_gateway_rate_limit";

fn per_partition() -> usize {
    (SHARED_SUBJECTS.get().max(0) as usize).div_ceil(PARTITIONS)
}

fn shared_size() -> usize {
    PARTITIONS * per_partition() * std::mem::size_of::<Slot>()
}

/// Called from `_PG_init`: the GUCs, and the shared memory hooks when preloaded.
pub fn init() {
    GucRegistry::define_bool_guc(
        c"api_gateway.rate_limit_shared_memory",
        c"Count rate limits in shared memory when the library is preloaded.",
        c"Off: this session counts in the api_gateway.throttle table (for tests and comparisons; sessions counting one subject in different places do not see each other's hits).",
        &USE_SHARED_MEMORY,
        GucContext::Suset,
        GucFlags::default(),
    );
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
    }
    GucRegistry::define_int_guc(
        c"api_gateway.rate_limit_shared_subjects",
        c"Rate-limit subjects kept in shared memory (0: none, the table only).",
        c"About 350 bytes each; set at server start. When full, new subjects are counted in the api_gateway.throttle table.",
        &SHARED_SUBJECTS,
        0,
        64 * 1024 * 1024,
        GucContext::Postmaster,
        GucFlags::default(),
    );
    if SHARED_SUBJECTS.get() <= 0 {
        return;
    }
    unsafe {
        PREV_REQUEST_HOOK = pg_sys::shmem_request_hook;
        pg_sys::shmem_request_hook = Some(on_shmem_request);
        PREV_STARTUP_HOOK = pg_sys::shmem_startup_hook;
        pg_sys::shmem_startup_hook = Some(on_shmem_startup);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_shmem_request() {
    unsafe {
        if let Some(prev) = PREV_REQUEST_HOOK {
            prev();
        }
        pg_sys::RequestAddinShmemSpace(shared_size());
        pg_sys::RequestNamedLWLockTranche(TRANCHE.as_ptr(), PARTITIONS as i32);
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_shmem_startup() {
    unsafe {
        if let Some(prev) = PREV_STARTUP_HOOK {
            prev();
        }
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let size = shared_size();
        let base = pg_sys::ShmemInitStruct(TRANCHE.as_ptr(), size, &mut found) as *mut Slot;
        if !found {
            std::ptr::write_bytes(base as *mut u8, 0, size);
        }
        SHARED = Shared {
            slots: base,
            per_partition: per_partition(),
            locks: pg_sys::GetNamedLWLockTranche(TRANCHE.as_ptr()),
        };
        pg_sys::LWLockRelease(init_lock);
    }
}

/// Whether this session counts in shared memory.
pub fn shared_memory_on() -> bool {
    unsafe { !SHARED.slots.is_null() && SHARED.per_partition > 0 && USE_SHARED_MEMORY.get() }
}

/// The slot key of a subject: counters are per database, as the table is.
fn key_of(subject: &str) -> [u64; 2] {
    let database = database_id();
    let half = |salt: u8| {
        let mut h = DefaultHasher::new();
        h.write_u8(salt);
        h.write_u32(database);
        h.write(subject.as_bytes());
        h.finish()
    };
    // Never [0, 0] (an unused slot).
    [half(1) | 1, half(2)]
}

fn database_id() -> u32 {
    unsafe { pg_sys::MyDatabaseId.to_u32() }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A partition held exclusively; released on drop (and by the abort path on ERROR).
struct Partition {
    lock: *mut pg_sys::LWLock,
    slots: *mut Slot,
    len: usize,
}

impl Partition {
    fn lock(key: &[u64; 2]) -> Self {
        unsafe {
            let p = (key[0] % PARTITIONS as u64) as usize;
            let lock = &raw mut (*SHARED.locks.add(p)).lock;
            pg_sys::LWLockAcquire(lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
            Partition {
                lock,
                slots: SHARED.slots.add(p * SHARED.per_partition),
                len: SHARED.per_partition,
            }
        }
    }

    fn slot(&mut self, i: usize) -> &mut Slot {
        unsafe { &mut *self.slots.add(i % self.len) }
    }

    /// The subject's slot, or None; and, when `want_free`, the first reusable slot on its probe
    /// path.
    fn find(
        &mut self,
        key: &[u64; 2],
        now: i64,
        want_free: bool,
    ) -> (Option<usize>, Option<usize>) {
        let home = (key[1] % self.len as u64) as usize;
        let mut free = None;
        for i in home..home + PROBE.min(self.len) {
            // read in place (the partition's lock is held): a slot is a few hundred bytes
            let s = self.slot(i);
            if s.key == *key {
                return (Some(i), free);
            }
            if s.key == [0, 0] {
                // Nothing was ever stored past an unused slot of this path.
                return (None, free.or(Some(i)));
            }
            if want_free && free.is_none() && load(s).idle(now) {
                free = Some(i);
            }
        }
        (None, free)
    }
}

impl Drop for Partition {
    fn drop(&mut self) {
        unsafe { pg_sys::LWLockRelease(self.lock) }
    }
}

fn load(s: &Slot) -> Counter {
    Counter {
        algorithm: Algorithm::from_code(s.algorithm).unwrap_or_default(),
        window_s: s.window_s,
        state: Sliding {
            head: s.head,
            counts: s.counts,
        },
    }
}

fn store(c: &Counter, limit: i32, s: &mut Slot) {
    s.algorithm = c.algorithm.code();
    s.window_s = c.window_s;
    s.limit = limit;
    s.head = c.state.head;
    s.counts = c.state.counts;
}

/// How a shared-memory attempt ended.
enum SharedOutcome {
    Counted(Outcome),
    /// Not there and no slot free: count in the table.
    Full,
}

/// One hit to count: when, under which algorithm, window and limit, and what it costs.
#[derive(Clone, Copy)]
struct Ask {
    now: i64,
    algorithm: Algorithm,
    window_s: i32,
    limit: i32,
    cost: i32,
}

/// Counts in the subject's slot; `insert`: take a free slot when it has none (else `None`).
fn shared_hit(key: &[u64; 2], subject: &str, insert: bool, ask: Ask) -> Option<SharedOutcome> {
    let Ask {
        now,
        algorithm,
        window_s,
        limit,
        cost,
    } = ask;
    let mut part = Partition::lock(key);
    let (found, free) = part.find(key, now, insert);
    let mut counter;
    let i = match (found, free) {
        (Some(i), _) => {
            counter = load(part.slot(i));
            i
        }
        (None, Some(i)) if insert => {
            counter = Counter::empty(algorithm, window_s);
            let s = part.slot(i);
            s.key = *key;
            s.database = database_id();
            let n = subject.len().min(SUBJECT_BYTES);
            let n = (0..=n)
                .rev()
                .find(|&n| subject.is_char_boundary(n))
                .unwrap_or(0);
            s.subject = [0; SUBJECT_BYTES];
            s.subject[..n].copy_from_slice(&subject.as_bytes()[..n]);
            s.subject_len = n as u8;
            i
        }
        (None, None) if insert => return Some(SharedOutcome::Full),
        (None, _) => return None,
    };
    let outcome = counter.hit(now, algorithm, window_s, limit, cost);
    store(&counter, limit, part.slot(i));
    Some(SharedOutcome::Counted(outcome))
}

const SELECT_ROW: &str = "SELECT algorithm, window_s, (extract(epoch FROM window_start) * 1000)::bigint, hits, head, counts \
       FROM api_gateway.throttle WHERE subject = $1";
const SELECT_ROW_FOR_UPDATE: &str = "SELECT algorithm, window_s, (extract(epoch FROM window_start) * 1000)::bigint, hits, head, counts \
       FROM api_gateway.throttle WHERE subject = $1 FOR UPDATE";
const UPDATE_ROW: &str = "UPDATE api_gateway.throttle SET algorithm = $2, window_s = $3, \
       window_start = to_timestamp($4 / 1000.0), hits = $5, max_requests = $6, head = $7, counts = $8 \
     WHERE subject = $1 RETURNING true";
const INSERT_ROW: &str = "INSERT INTO api_gateway.throttle (subject, algorithm, window_s, window_start, hits, max_requests, head, counts) \
     VALUES ($1, $2, $3, to_timestamp($4 / 1000.0), $5, $6, $7, $8) ON CONFLICT (subject) DO NOTHING RETURNING true";
/// Rows whose counts left their window more than an hour ago, removed a few hundred at a time by
/// roughly one call in 1024, so the table cleans itself without a scheduler.
const SWEEP: &str = "DELETE FROM api_gateway.throttle WHERE subject IN ( \
       SELECT subject FROM api_gateway.throttle \
        WHERE window_start + make_interval(secs => window_s) < now() - interval '1 hour' LIMIT 500)";

/// The same statements for a database not yet updated to 0.4.0 (the library is replaced before
/// ALTER EXTENSION UPDATE runs): its rows are fixed windows only, without the 0.4.0 columns.
const LEGACY_SELECT_ROW: &str = "SELECT 'fixed'::text, window_s, (extract(epoch FROM window_start) * 1000)::bigint, hits, 0::bigint, '{}'::integer[] \
       FROM api_gateway.throttle WHERE subject = $1";
const LEGACY_SELECT_ROW_FOR_UPDATE: &str = "SELECT 'fixed'::text, window_s, (extract(epoch FROM window_start) * 1000)::bigint, hits, 0::bigint, '{}'::integer[] \
       FROM api_gateway.throttle WHERE subject = $1 FOR UPDATE";
const LEGACY_UPDATE_ROW: &str = "UPDATE api_gateway.throttle SET window_s = $3, \
       window_start = to_timestamp($4 / 1000.0), hits = $5, max_requests = $6 WHERE subject = $1 RETURNING true";
const LEGACY_INSERT_ROW: &str = "INSERT INTO api_gateway.throttle (subject, window_s, window_start, hits, max_requests) \
     VALUES ($1, $3, to_timestamp($4 / 1000.0), $5, $6) ON CONFLICT (subject) DO NOTHING RETURNING true";

thread_local! {
    static LEGACY: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Whether this database's throttle table predates 0.4.0 (checked once per backend).
fn legacy_table() -> bool {
    if let Some(v) = LEGACY.with(|l| l.get()) {
        return v;
    }
    // A read (Spi::get_one would take a transaction id for it).
    let v = !Spi::connect(|c| {
        spi(c
            .select(
                "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute \
                  WHERE attrelid = 'api_gateway.throttle'::regclass AND attname = 'counts' AND NOT attisdropped)",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1)))
    })
    .unwrap_or(false);
    LEGACY.with(|l| l.set(Some(v)));
    v
}

type RowState = (
    Option<String>,
    Option<i32>,
    Option<i64>,
    Option<i32>,
    Option<i64>,
    Option<Vec<Option<i32>>>,
);

fn counter_of(row: RowState) -> Counter {
    let (algorithm, window_s, start_ms, hits, head, counts) = row;
    let window_s = window_s.unwrap_or(60);
    match algorithm.as_deref().and_then(Algorithm::parse) {
        Some(Algorithm::Sliding) => Counter {
            algorithm: Algorithm::Sliding,
            window_s,
            state: Sliding::from_parts(
                head.unwrap_or(0),
                &counts
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| c.unwrap_or(0))
                    .collect::<Vec<_>>(),
            ),
        },
        // 'fixed', and rows written before 0.4.0.
        _ => Counter::fixed_from_row(window_s, start_ms.unwrap_or(0), hits.unwrap_or(0)),
    }
}

fn read_row(c: &mut pgrx::spi::SpiClient<'_>, subject: &str, for_update: bool) -> Option<Counter> {
    let sql = match (for_update, legacy_table()) {
        (true, false) => SELECT_ROW_FOR_UPDATE,
        (false, false) => SELECT_ROW,
        (true, true) => LEGACY_SELECT_ROW_FOR_UPDATE,
        (false, true) => LEGACY_SELECT_ROW,
    };
    // A plain read neither takes a transaction id nor plans as a write.
    let plan = crate::spi::plan(c, sql, &[PgBuiltInOids::TEXTOID], for_update);
    let t = if for_update {
        spi(c.update(plan, None, &[subject.into()]))
    } else {
        spi(c.select(plan, None, &[subject.into()]))
    };
    if t.is_empty() {
        return None;
    }
    let r = t.first();
    Some(counter_of((
        spi(r.get::<String>(1)),
        spi(r.get::<i32>(2)),
        spi(r.get::<i64>(3)),
        spi(r.get::<i32>(4)),
        spi(r.get::<i64>(5)),
        spi(r.get::<Vec<Option<i32>>>(6)),
    )))
}

fn write_row(
    c: &mut pgrx::spi::SpiClient<'_>,
    update: bool,
    subject: &str,
    counter: &Counter,
    limit: i32,
    now: i64,
) -> u64 {
    let sql = match (update, legacy_table()) {
        (true, false) => UPDATE_ROW,
        (false, false) => INSERT_ROW,
        (true, true) => LEGACY_UPDATE_ROW,
        (false, true) => LEGACY_INSERT_ROW,
    };
    let plan = crate::spi::plan(
        c,
        sql,
        &[
            PgBuiltInOids::TEXTOID,
            PgBuiltInOids::TEXTOID,
            PgBuiltInOids::INT4OID,
            PgBuiltInOids::INT8OID,
            PgBuiltInOids::INT4OID,
            PgBuiltInOids::INT4OID,
            PgBuiltInOids::INT8OID,
            PgBuiltInOids::INT4ARRAYOID,
        ],
        true,
    );
    let window_ms = i64::from(counter.window_s.max(1)) * 1000;
    let start_ms = counter.clears_at_ms().saturating_sub(window_ms);
    let hits = counter.used(now).min(i64::from(i32::MAX)) as i32;
    spi(c.update(
        plan,
        None,
        &[
            subject.into(),
            counter.algorithm.as_str().into(),
            counter.window_s.into(),
            start_ms.into(),
            hits.into(),
            limit.into(),
            counter.state.head.into(),
            counter.state.counts.to_vec().into(),
        ],
    ))
    .len() as u64
}

/// Counts in the subject's row, locked for the rest of the caller's transaction: concurrent
/// callers of one subject wait for each other, so each sees the state the previous one left.
fn table_hit(
    subject: &str,
    now: i64,
    algorithm: Algorithm,
    window_s: i32,
    limit: i32,
    cost: i32,
) -> Outcome {
    // A table without the 0.4.0 columns holds fixed windows only.
    let algorithm = if legacy_table() {
        Algorithm::Fixed
    } else {
        algorithm
    };
    Spi::connect_mut(|c| {
        for _ in 0..2 {
            match read_row(c, subject, true) {
                Some(mut counter) => {
                    let before = counter;
                    let outcome = counter.hit(now, algorithm, window_s, limit, cost);
                    // A refusal that moved nothing writes no row version.
                    if outcome.allowed || counter != before {
                        write_row(c, true, subject, &counter, limit, now);
                    }
                    if now % 1024 == 0 {
                        let sweep = crate::spi::plan(c, SWEEP, &[], true);
                        spi(c.update(sweep, None, &[]));
                    }
                    return outcome;
                }
                None => {
                    let mut counter = Counter::empty(algorithm, window_s);
                    let outcome = counter.hit(now, algorithm, window_s, limit, cost);
                    // Another caller may insert the row first: then count again on its row.
                    if write_row(c, false, subject, &counter, limit, now) == 1 {
                        return outcome;
                    }
                }
            }
        }
        // The row was inserted by another caller and deleted again between our two looks: refuse
        // rather than count twice.
        Outcome {
            allowed: false,
            remaining: 0,
            reset_s: 1,
        }
    })
}

/// Counts one hit of `cost` on `subject` against `limit` per `window_s`, wherever the subject's
/// counter lives. `limit` must not be 0 (no limit: callers count nothing). Safe to call from a
/// SECURITY DEFINER function without a pinned search_path: every statement it runs is run
/// under one.
pub fn hit(subject: &str, limit: i32, window_s: i32, cost: i32, algorithm: Algorithm) -> Outcome {
    let now = now_ms();
    if shared_memory_on() {
        let key = key_of(subject);
        if let Some(SharedOutcome::Counted(o)) = shared_hit(
            &key,
            subject,
            false,
            Ask {
                now,
                algorithm,
                window_s,
                limit,
                cost,
            },
        ) {
            return o;
        }
    }
    crate::spi::pinned(|| hit_with_sql(subject, now, limit, window_s, cost, algorithm))
}

/// The rest of [`hit`]: the table, or a subject new to shared memory.
fn hit_with_sql(
    subject: &str,
    now: i64,
    limit: i32,
    window_s: i32,
    cost: i32,
    algorithm: Algorithm,
) -> Outcome {
    if !shared_memory_on() {
        return table_hit(subject, now, algorithm, window_s, limit, cost);
    }
    let key = key_of(subject);
    // Not in shared memory: a row that still counts keeps the subject in the table.
    let live_row = Spi::connect_mut(|c| read_row(c, subject, false)).is_some_and(|r| !r.idle(now));
    if live_row {
        return table_hit(subject, now, algorithm, window_s, limit, cost);
    }
    match shared_hit(
        &key,
        subject,
        true,
        Ask {
            now,
            algorithm,
            window_s,
            limit,
            cost,
        },
    ) {
        Some(SharedOutcome::Counted(o)) => o,
        _ => table_hit(subject, now, algorithm, window_s, limit, cost),
    }
}

/// Forgets a subject's counter in shared memory; what it counted, or None when it had none.
pub fn forget_shared(subject: &str) -> Option<i32> {
    if !shared_memory_on() {
        return None;
    }
    let key = key_of(subject);
    let now = now_ms();
    let mut part = Partition::lock(&key);
    let (found, _) = part.find(&key, now, false);
    let i = found?;
    let used = load(part.slot(i)).used(now).min(i64::from(i32::MAX)) as i32;
    // Keep the key (probe paths stay intact); an empty counter is idle, so the slot is free.
    let s = part.slot(i);
    s.counts = [0; SUB_BUCKETS + 1];
    Some(used)
}

/// Every counter in shared memory that still counts something.
pub fn shared_listing() -> Vec<(String, i32, i32, i32, i64)> {
    let mut out = Vec::new();
    if unsafe { SHARED.slots.is_null() } {
        return out;
    }
    let now = now_ms();
    let database = database_id();
    for p in 0..PARTITIONS {
        let key = [p as u64, 0];
        let mut part = Partition::lock(&key);
        for i in 0..part.len {
            let s = *part.slot(i);
            if s.key == [0, 0] || s.database != database {
                continue;
            }
            let counter = load(&s);
            let used = counter.used(now);
            if used > 0 {
                let subject =
                    String::from_utf8_lossy(&s.subject[..s.subject_len as usize]).into_owned();
                out.push((
                    subject,
                    used.min(i64::from(i32::MAX)) as i32,
                    s.limit,
                    s.window_s,
                    counter.clears_at_ms(),
                ));
            }
        }
    }
    out
}
