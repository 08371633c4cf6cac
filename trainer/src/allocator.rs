//! glibc malloc tuning for training. Every step allocates and frees the same large activation and
//! gradient buffers; by default glibc returns them to the kernel (mmap for large blocks, trimming
//! the heap top), so each step pays page faults again (~25% of a bench-17m step when profiled).
//! Keeping freed memory in the heap removes that cost. Call once at process start.

/// Raises glibc's mmap and trim thresholds so freed buffers are reused. No-op elsewhere.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before other threads start.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
        libc::mallopt(libc::M_TOP_PAD, 256 << 20);
    }
}
