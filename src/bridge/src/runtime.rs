//! The one tokio runtime of the process (bounded worker threads), as an opaque C handle.
use std::ffi::c_char;
use std::time::Duration;

pub struct cb_runtime {
    rt: Option<tokio::runtime::Runtime>,
    shared: crate::Rt,
}

impl cb_runtime {
    pub fn handle(&self) -> &crate::Rt {
        &self.shared
    }
}

/// Creates the runtime with `worker_threads` (clamped to 1..=64) worker threads named
/// "commentd-bridge". Returns NULL on failure with a message in `err` (NUL-terminated,
/// truncated to `err_len`).
#[no_mangle]
pub unsafe extern "C" fn cb_runtime_new(worker_threads: u32, err: *mut c_char, err_len: usize) -> *mut cb_runtime {
    let n = worker_threads.clamp(1, 64) as usize;
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(n)
        .max_blocking_threads(4)
        .thread_name("commentd-bridge")
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let shared = crate::Rt::new(rt.handle().clone());
            Box::into_raw(Box::new(cb_runtime { rt: Some(rt), shared }))
        }
        Err(e) => {
            if !err.is_null() && err_len > 0 {
                let m = e.to_string();
                let n = m.len().min(err_len - 1);
                std::ptr::copy_nonoverlapping(m.as_ptr(), err as *mut u8, n);
                *err.add(n) = 0;
            }
            std::ptr::null_mut()
        }
    }
}

/// Shuts the runtime down: every task still pending is dropped on a bridge thread, which
/// reports CB_CANCELLED to its completion, before this returns (bounded wait of 10 s for
/// blocking work such as DNS lookups). REQUIRES: not called from a bridge thread or callback.
#[no_mangle]
pub unsafe extern "C" fn cb_runtime_free(rt: *mut cb_runtime) {
    if rt.is_null() {
        return;
    }
    let mut rt = Box::from_raw(rt);
    rt.shared.set_closing();
    if let Some(r) = rt.rt.take() {
        r.shutdown_timeout(Duration::from_secs(10));
    }
}

/// Number of worker threads (for tests and metrics).
#[no_mangle]
pub unsafe extern "C" fn cb_runtime_worker_count(rt: *const cb_runtime) -> u32 {
    if rt.is_null() {
        return 0;
    }
    (*rt).handle().tokio().metrics().num_workers() as u32
}
