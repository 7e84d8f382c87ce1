//! Taking an object's lock without holding the GIL while waiting.
//!
//! Batch calls hold their object's lock while they run with the GIL
//! released, and take the GIL back before they let the lock go. A thread
//! that waited for that lock while holding the GIL would wait forever:
//! the holder needs the GIL to finish. So a lock that is taken is waited
//! for with the GIL released.

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use pyo3::Python;

/// `lock` for reading; waits (if it must) with the GIL released.
pub fn read<'a, T: Send + Sync>(py: Python<'_>, lock: &'a RwLock<T>) -> RwLockReadGuard<'a, T> {
    match lock.try_read() {
        Some(g) => g,
        None => py.detach(|| lock.read()),
    }
}

/// `lock` for writing; waits (if it must) with the GIL released.
pub fn write<'a, T: Send + Sync>(py: Python<'_>, lock: &'a RwLock<T>) -> RwLockWriteGuard<'a, T> {
    match lock.try_write() {
        Some(g) => g,
        None => py.detach(|| lock.write()),
    }
}
