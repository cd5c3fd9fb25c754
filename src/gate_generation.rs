//! The gate's generation: a number in shared memory that moves forward after the commit of every
//! transaction that changed what `authenticate` and `verify_api_key` keep per backend (the
//! gateway's gate tables, and in Odoo the users' active flag, group memberships and API key
//! rows). Facts kept under generation G are current while the generation is still G, so a
//! request on kept facts costs one atomic read and runs no statement.
//!
//! Why that is exact:
//! - Writers: statement-level triggers mark their transaction (`note_change`); the bump happens in
//!   the commit callback, which PostgreSQL runs after the commit became visible to new snapshots
//!   (`ProcArrayEndTransaction` comes first in `CommitTransaction`). A rolled-back transaction
//!   never bumps.
//! - Readers: `before_read` is called before the statement that reads the facts, and that
//!   statement takes a snapshot of its own (READ COMMITTED and a mutating plan: SPI takes a new
//!   snapshot for it). A change whose bump the reader saw is visible to that snapshot; a change
//!   whose bump it did not see bumps later, and the kept facts are not current any more.
//!
//! Not used (callers then re-read, as without shared memory): without `shared_preload_libraries`;
//! on a standby (replay runs no trigger); in REPEATABLE READ or SERIALIZABLE (no fresh snapshot);
//! in a transaction that changed those tables itself (it may still roll back); and, until the
//! server restarts, once a transaction with such a change was prepared for two-phase commit on
//! it (COMMIT PREPARED may come from any session, and runs no callback of ours).
use pgrx::pg_sys;
use pgrx::prelude::*;
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Kept facts are read again at least this often whatever the generation says: a bound on what
/// a change made with the triggers disabled (`session_replication_role = replica`) can hide.
const MAX_AGE: Duration = Duration::from_secs(60);

#[repr(C)]
struct Shared {
    generation: AtomicU64,
    /// A prepared transaction changed the facts: generations can no longer be trusted.
    prepared: AtomicBool,
}

// Set once in the postmaster's shmem_startup_hook (inherited by every forked backend).
static mut SHARED: *const Shared = std::ptr::null();
static mut PREV_REQUEST_HOOK: pg_sys::shmem_request_hook_type = None;
static mut PREV_STARTUP_HOOK: pg_sys::shmem_startup_hook_type = None;

const NAME: &std::ffi::CStr = c"api_gateway_gate_generation";

thread_local! {
    /// This backend's transaction changed the facts (set by the triggers, cleared at its end).
    static CHANGED: Cell<bool> = const { Cell::new(false) };
    static CALLBACK: Cell<bool> = const { Cell::new(false) };
}

/// Called from `_PG_init`: requests the shared memory when preloaded.
pub fn init() {
    unsafe {
        if !pg_sys::process_shared_preload_libraries_in_progress {
            return;
        }
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
        pg_sys::RequestAddinShmemSpace(std::mem::size_of::<Shared>());
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_shmem_startup() {
    unsafe {
        if let Some(prev) = PREV_STARTUP_HOOK {
            prev();
        }
        // AddinShmemInitLock, as in src/counter.rs.
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let base = pg_sys::ShmemInitStruct(NAME.as_ptr(), std::mem::size_of::<Shared>(), &mut found)
            as *mut Shared;
        if !found {
            base.write(Shared {
                generation: AtomicU64::new(1),
                prepared: AtomicBool::new(false),
            });
        }
        SHARED = base;
        pg_sys::LWLockRelease(init_lock);
    }
}

fn shared() -> Option<&'static Shared> {
    unsafe { SHARED.as_ref() }
}

/// Marks the calling transaction as one that changes the facts: the generation moves when it
/// commits. Called by the triggers.
pub fn note_change() {
    CHANGED.with(|c| c.set(true));
    if !CALLBACK.with(|c| c.replace(true)) {
        unsafe { pg_sys::RegisterXactCallback(Some(on_xact), std::ptr::null_mut()) };
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_xact(event: pg_sys::XactEvent::Type, _arg: *mut std::ffi::c_void) {
    use pg_sys::XactEvent::*;
    if !CHANGED.with(|c| c.get()) {
        return;
    }
    match event {
        XACT_EVENT_COMMIT => bump(),
        XACT_EVENT_PREPARE => {
            if let Some(s) = shared() {
                s.prepared.store(true, Ordering::SeqCst);
            }
            bump();
        }
        XACT_EVENT_ABORT => {}
        _ => return,
    }
    CHANGED.with(|c| c.set(false));
}

fn bump() {
    if let Some(s) = shared() {
        s.generation.fetch_add(1, Ordering::SeqCst);
    }
}

/// The generation, when this backend may use kept facts now (see the module's text), given
/// whether the triggers are in place.
fn usable(triggers: bool) -> Option<u64> {
    let s = shared()?;
    let fresh_snapshots = unsafe { pg_sys::XactIsoLevel } < pg_sys::XACT_REPEATABLE_READ as i32;
    if !fresh_snapshots
        || CHANGED.with(|c| c.get())
        || s.prepared.load(Ordering::SeqCst)
        || unsafe { pg_sys::RecoveryInProgress() }
        || !triggers
    {
        return None;
    }
    Some(s.generation.load(Ordering::SeqCst))
}

/// How long a backend goes without kept facts before looking for the triggers again.
const RETRY_AFTER: Duration = Duration::from_secs(60);

thread_local! {
    /// Whether the triggers were found in place (or installed), and when that was last asked.
    static TRIGGERS: Cell<Option<(bool, Instant)>> = const { Cell::new(None) };
}

/// Whether every table behind the kept facts has its trigger: asked once per backend (the
/// installer adds what is missing, e.g. when Odoo was installed after the extension), again
/// after `RETRY_AFTER` while the answer is no. An extension not yet updated to a version with
/// `_gate_change` answers no.
fn triggers_in_place() -> bool {
    match TRIGGERS.with(Cell::get) {
        Some((true, _)) => return true,
        Some((false, at)) if at.elapsed() < RETRY_AFTER => return false,
        _ => {}
    }
    // `select`, not `update`: pgrx's update takes a transaction id, and a request that is only
    // authenticated must not (the installer's own DDL, when it has any, runs as it would anyway).
    let ok = Spi::connect(|c| {
        let has = c
            .select(
                "SELECT to_regprocedure('api_gateway._gate_change()') IS NOT NULL",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1))
            .ok()
            .flatten()
            .unwrap_or(false);
        has && c
            .select(
                "SELECT api_gateway._install_security_triggers()",
                Some(1),
                &[],
            )
            .and_then(|t| t.first().get::<bool>(1))
            .ok()
            .flatten()
            .unwrap_or(false)
    });
    TRIGGERS.with(|t| t.set(Some((ok, Instant::now()))));
    ok
}

/// When facts were read: the generation then, and the time.
#[derive(Clone, Copy, Debug)]
pub struct Stamp {
    generation: u64,
    at: Instant,
}

impl Stamp {
    /// Whether facts read under this stamp are still current: no change committed since and
    /// younger than `MAX_AGE`. Runs no SQL (a stamp exists only once the triggers were found).
    pub fn current(self) -> bool {
        let triggers = TRIGGERS.with(Cell::get).is_some_and(|(ok, _)| ok);
        usable(triggers) == Some(self.generation) && self.at.elapsed() < MAX_AGE
    }
}

/// The stamp to keep facts under, taken before the statement that reads them; that statement
/// must run with a mutating plan (a snapshot of its own). None: do not keep them under a stamp.
/// May run SQL (the trigger check, once per backend): call it under `crate::spi::pinned_generic`.
pub fn before_read() -> Option<Stamp> {
    shared()?;
    usable(triggers_in_place()).map(|generation| Stamp {
        generation,
        at: Instant::now(),
    })
}

/// Whether facts kept under `stamp` (None: not stamped) are still current. Runs no SQL.
pub fn current(stamp: Option<Stamp>) -> bool {
    stamp.is_some_and(Stamp::current)
}

/// `api_gateway._gate_change()`: the trigger on the tables of the kept facts (statement level,
/// after the change).
#[pg_trigger]
fn _gate_change<'a>(
    _trigger: &'a pgrx::PgTrigger<'a>,
) -> Result<Option<PgHeapTuple<'a, pgrx::AllocatedByPostgres>>, std::convert::Infallible> {
    note_change();
    Ok(None)
}

/// `api_gateway._note_gate_change()`: the same, for the gate's PL/pgSQL triggers that also bump
/// the epoch table (which serves backends without shared memory).
#[pg_extern(volatile, parallel_unsafe)]
fn _note_gate_change() {
    note_change();
}
