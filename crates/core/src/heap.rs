//! Giving freed heap memory back to the operating system.

/// Return the allocator's free pages to the OS. A batch insert frees tens
/// of MiB of scratch buffers that glibc otherwise keeps in its arenas,
/// where they count as the process's memory until reused.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
