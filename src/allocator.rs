//! The process' allocator, tuned once at start.
//!
//! glibc's malloc serves a block above its mmap threshold with a mapping of
//! its own and unmaps it when freed, but the threshold is dynamic: once
//! such a block is freed, blocks of that size come from the heap arenas
//! instead (one arena per thread that allocates, up to eight per core),
//! and memory freed there mostly stays with the process. Each password
//! check allocates argon2's 19 MiB and frees it, on whichever blocking
//! thread runs it, so a login spray spread them over many arenas and the
//! resident memory never came back down. A fixed threshold of 1 MiB keeps
//! every large block a mapping of its own, returned to the system the
//! moment it is freed; blocks below it are unaffected.

/// Blocks of at least this many bytes are mapped and unmapped on their own.
pub const MMAP_THRESHOLD: usize = 1024 * 1024;

/// Applies the tuning above (glibc only; elsewhere it does nothing).
/// Returns whether it was applied.
pub fn tune() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let threshold = i32::try_from(MMAP_THRESHOLD).unwrap_or(i32::MAX);
        // SAFETY: mallopt only sets a malloc parameter; it is safe to call
        // at any time, from any thread.
        unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, threshold) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn glibc_takes_the_threshold() {
        assert!(super::tune());
    }
}
