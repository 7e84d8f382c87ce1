//! The thread pool for parallel engine work, safe across `fork()`.
//!
//! rayon's global pool does not survive `fork()`: a child inherits the
//! pool's bookkeeping but none of its threads, so its first parallel call
//! waits forever. This pool remembers the process that built it; a forked
//! child builds its own (the parent's is left alone: its threads do not
//! exist in the child). No lock is taken, so a fork at any moment is safe.

use std::sync::atomic::{AtomicPtr, Ordering};

struct Owned {
    pid: u32,
    pool: rayon::ThreadPool,
}

static POOL: AtomicPtr<Owned> = AtomicPtr::new(std::ptr::null_mut());

/// This process's pool, built on first use.
pub fn pool() -> pyo3::PyResult<&'static rayon::ThreadPool> {
    let pid = std::process::id();
    let cur = POOL.load(Ordering::Acquire);
    // SAFETY: a published pointer is never freed (pools are leaked), so it
    // stays valid for the life of the process.
    if let Some(owned) = unsafe { cur.as_ref() } {
        if owned.pid == pid {
            return Ok(&owned.pool);
        }
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .thread_name(|i| format!("vastdict-{i}"))
        .build()
        .map_err(|e| {
            pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start threads: {e}"))
        })?;
    let fresh = Box::into_raw(Box::new(Owned { pid, pool }));
    match POOL.compare_exchange(cur, fresh, Ordering::AcqRel, Ordering::Acquire) {
        // SAFETY: just published and never freed.
        Ok(_) => Ok(unsafe { &(*fresh).pool }),
        Err(winner) => {
            // Another thread published first; use its pool, drop ours.
            // SAFETY: `fresh` was never shared; `winner` is never freed.
            drop(unsafe { Box::from_raw(fresh) });
            Ok(unsafe { &(*winner).pool })
        }
    }
}
