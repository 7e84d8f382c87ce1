//! Software prefetch: start loading a cache line that will be needed soon,
//! so independent memory reads overlap instead of waiting one by one.

/// Hint that the cache line at `p` will be read soon. Never faults.
#[inline(always)]
pub fn read(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetch is a hint; it does not fault on any address.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Hint every cache line of the `len` bytes starting at `p`. Never faults.
#[inline]
pub fn lines(p: *const u8, len: usize) {
    let start = p as usize;
    for line in (start & !63..start + len).step_by(64) {
        read(line as *const u8);
    }
}
