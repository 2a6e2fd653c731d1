//! commentd's C ABI bridge to the `scylla` and `pulsar` Rust crates.
//!
//! Contract (docs/bridge.md, commentd_bridge.h): opaque handles, plain C types, and one
//! completion callback per asynchronous call, invoked exactly once. No Rust or tokio type
//! crosses the ABI. Every asynchronous call spawns one task on the process's runtime; the
//! task owns a `Completion`, whose `Drop` reports `CB_CANCELLED` if the task is dropped
//! before it completes (handle freed, runtime shut down), so "exactly once" holds by
//! construction.
#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)]

mod cql;
mod cql_rows;
#[path = "pulsar.rs"]
mod pulsar_ffi;
mod pulsar_message;
mod pulsar_seq;
mod runtime;

use std::ffi::{c_char, c_void, CStr};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use runtime::cb_runtime;

// Status codes: keep in sync with CB_* in commentd_bridge.h.
pub const CB_OK: i32 = 0;
pub const CB_CANCELLED: i32 = 1;
pub const CB_TIMEOUT: i32 = 2;
pub const CB_WRITE_TIMEOUT: i32 = 3;
pub const CB_UNAVAILABLE: i32 = 4;
pub const CB_OVERLOADED: i32 = 5;
pub const CB_SYNTAX: i32 = 6;
pub const CB_INVALID: i32 = 7;
pub const CB_ALREADY_EXISTS: i32 = 8;
pub const CB_SERVER: i32 = 9;
pub const CB_CONNECTION: i32 = 10;
pub const CB_BAD_ARGUMENT: i32 = 11;
pub const CB_AUTH: i32 = 12;
pub const CB_CLOSED: i32 = 13;
pub const CB_INTERNAL: i32 = 14;

/// `void (*)(void* user, int32_t code, const char* msg, size_t msg_len, void* result)`
pub type cb_done =
    Option<unsafe extern "C" fn(user: *mut c_void, code: i32, msg: *const c_char, len: usize, result: *mut c_void)>;

/// An error on its way to C: a CB_* code and a message.
#[derive(Debug, Clone)]
pub struct BErr {
    pub code: i32,
    pub msg: String,
}

impl BErr {
    pub fn new(code: i32, msg: impl Into<String>) -> Self {
        BErr { code, msg: msg.into() }
    }
}

pub type BResult<T> = Result<T, BErr>;

struct UserPtr(*mut c_void);
// SAFETY: the C caller promises that `user` may be used from any thread (header contract).
unsafe impl Send for UserPtr {}

/// A handle on the runtime plus its "shutting down" flag, shared by every object created on it.
#[derive(Clone)]
pub struct Rt {
    handle: tokio::runtime::Handle,
    closing: Arc<AtomicBool>,
}

impl Rt {
    pub fn new(handle: tokio::runtime::Handle) -> Self {
        Rt { handle, closing: Arc::new(AtomicBool::new(false)) }
    }
    pub fn spawn<F>(&self, f: F) -> tokio::task::JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(f)
    }
    pub fn tokio(&self) -> &tokio::runtime::Handle {
        &self.handle
    }
    pub fn set_closing(&self) {
        self.closing.store(true, Ordering::SeqCst);
    }
}

/// Owns one C completion. Exactly one call reaches C: `ok`, `err`, or CB_CANCELLED on drop.
pub struct Completion {
    cb: cb_done,
    user: UserPtr,
    done: bool,
    closing: Option<Arc<AtomicBool>>,
}

impl Completion {
    pub fn new(cb: cb_done, user: *mut c_void) -> Self {
        Completion { cb, user: UserPtr(user), done: false, closing: None }
    }

    /// Ties the completion to a runtime: once the runtime is shutting down, errors (the
    /// drivers' reaction to their tasks being dropped) are reported as CB_CANCELLED.
    pub fn on(mut self, rt: &Rt) -> Self {
        self.closing = Some(rt.closing.clone());
        self
    }

    fn call(&mut self, code: i32, msg: &str, result: *mut c_void) {
        if self.done {
            return;
        }
        self.done = true;
        if let Some(f) = self.cb {
            // SAFETY: the callback and user pointer come from the C caller (header contract).
            unsafe { f(self.user.0, code, msg.as_ptr() as *const c_char, msg.len(), result) };
        }
    }

    /// `result`: the operation's result pointer, as documented per call in the header.
    pub fn ok(mut self, result: *mut c_void) {
        self.call(CB_OK, "", result);
    }

    pub fn err(mut self, e: BErr) {
        if self.closing.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
            let msg = format!("cancelled: the bridge runtime is shutting down ({})", e.msg);
            return self.call(CB_CANCELLED, &msg, std::ptr::null_mut());
        }
        self.call(e.code, &e.msg, std::ptr::null_mut());
    }
}

impl Drop for Completion {
    fn drop(&mut self) {
        self.call(CB_CANCELLED, "cancelled: the handle or the bridge runtime was shut down", std::ptr::null_mut());
    }
}

/// What a finished operation hands to C.
pub enum Out {
    /// No result (`result` is NULL).
    Unit,
    /// An owned handle: C frees it with the matching cb_*_free.
    Owned(*mut c_void),
}
// SAFETY: `Owned` pointers are fresh `Box::into_raw` results, owned by nobody else yet.
unsafe impl Send for Out {}

/// Spawns `fut` on `handle` and reports its outcome to `done`. The task is abandoned (and
/// CB_CANCELLED reported) when `cancel` fires (its grace plays no part here).
pub fn spawn_op<F>(
    rt: &Rt,
    cancel: Option<StopRx>,
    done: Completion,
    fut: F,
) where
    F: Future<Output = BResult<Out>> + Send + 'static,
{
    let done = done.on(rt);
    rt.spawn(async move {
        let outcome = match cancel {
            None => Some(fut.await),
            Some(rx) => tokio::select! {
                r = fut => Some(r),
                _ = fired(rx) => None,
            },
        };
        match outcome {
            Some(Ok(Out::Unit)) => done.ok(std::ptr::null_mut()),
            Some(Ok(Out::Owned(p))) => done.ok(p),
            Some(Err(e)) => done.err(e),
            None => drop(done), // CB_CANCELLED
        }
    });
}

/// A stop's state: `None` until it fires, then the end of its grace, the instant until which
/// sends on producers that exist may still be acknowledged. What waits on a server to get
/// going (a connect, a producer's creation, a subscribe, a CQL statement on a closed session)
/// ends when it fires; a send in flight fails when the grace is over.
pub type StopState = Option<tokio::time::Instant>;
pub type StopRx = tokio::sync::watch::Receiver<StopState>;

pub fn new_stop() -> tokio::sync::watch::Sender<StopState> {
    tokio::sync::watch::channel(None).0
}

/// Fires `stop` with `grace` for sends; the first fire wins (idempotent, never blocks).
pub fn fire(stop: &tokio::sync::watch::Sender<StopState>, grace: Duration) {
    stop.send_if_modified(|v| {
        let first = v.is_none();
        if first {
            *v = Some(tokio::time::Instant::now() + grace);
        }
        first
    });
}

/// Completes with the grace's end once the stop has fired. Never completes if the stop is
/// dropped unfired: only a fire cancels.
pub async fn fired(mut rx: StopRx) -> tokio::time::Instant {
    let end = rx.wait_for(|v| v.is_some()).await.map(|v| *v);
    match end {
        Ok(end) => end.unwrap_or_else(tokio::time::Instant::now),
        Err(_) => std::future::pending().await,
    }
}

/// Completes when the stop has fired and its grace is over.
pub async fn grace_over(rx: StopRx) {
    let end = fired(rx).await;
    tokio::time::sleep_until(end).await;
}

/// A stop signal the caller owns (cb_stop_new), given to clients (cb_pulsar_config.stop).
/// Shared with every handle made with it, so freeing the caller's copy never fires it.
pub struct cb_stop(pub Arc<tokio::sync::watch::Sender<StopState>>);

impl cb_stop {
    /// The signal behind `p`, or a fresh one that only the holder could fire (NULL).
    pub unsafe fn shared(p: *const cb_stop) -> Arc<tokio::sync::watch::Sender<StopState>> {
        if p.is_null() {
            Arc::new(new_stop())
        } else {
            (*p).0.clone()
        }
    }
}

#[no_mangle]
pub extern "C" fn cb_stop_new() -> *mut cb_stop {
    Box::into_raw(Box::new(cb_stop(Arc::new(new_stop()))))
}

/// Fires the signal: what waits on a server to get going ends now with CB_CANCELLED, later
/// calls at once; sends on producers that exist, in flight or issued later, that the broker
/// has not acknowledged within `send_grace_ms` of this fail with CB_CANCELLED. The first fire
/// wins (idempotent); thread-safe; never blocks.
#[no_mangle]
pub unsafe extern "C" fn cb_stop_fire(p: *const cb_stop, send_grace_ms: u32) {
    if !p.is_null() {
        fire(&(*p).0, Duration::from_millis(send_grace_ms as u64));
    }
}

#[no_mangle]
pub unsafe extern "C" fn cb_stop_free(p: *mut cb_stop) {
    if !p.is_null() {
        drop(Box::from_raw(p));
    }
}

/// Reads an optional NUL-terminated UTF-8 string; NULL and "" are `None`.
pub unsafe fn opt_str(p: *const c_char) -> BResult<Option<String>> {
    if p.is_null() {
        return Ok(None);
    }
    let s = CStr::from_ptr(p).to_str().map_err(|_| BErr::new(CB_BAD_ARGUMENT, "string is not UTF-8"))?;
    Ok(if s.is_empty() { None } else { Some(s.to_owned()) })
}

pub unsafe fn req_str(p: *const c_char, what: &str) -> BResult<String> {
    opt_str(p)?.ok_or_else(|| BErr::new(CB_BAD_ARGUMENT, format!("{what} is required")))
}

pub unsafe fn bytes<'a>(p: *const u8, len: usize) -> &'a [u8] {
    if p.is_null() || len == 0 {
        &[]
    } else {
        std::slice::from_raw_parts(p, len)
    }
}

/// Writes a borrowed (pointer, length) pair to C out-parameters.
pub unsafe fn put_bytes(data: &[u8], out: *mut *const u8, out_len: *mut usize) {
    if !out.is_null() {
        *out = data.as_ptr();
    }
    if !out_len.is_null() {
        *out_len = data.len();
    }
}
