//! How the front's process takes memory from the kernel.

/// Transparent huge pages off for this process (Linux; elsewhere nothing changes). The front
/// allocates and frees small buffers at a high rate (mimalloc, main.rs), and its allocator gives
/// idle memory back to the kernel and takes it again. Where the kernel's THP setting is "always"
/// (the default of many distributions), every such return fault-in zeroes a 2 MiB page. Measured
/// on issue 14's request (docs/http.md, "Memory"): 56 µs of CPU per request with huge pages,
/// 36 µs without, and 1.3x the requests per second on two cores. The front holds a few tens of
/// MiB, where huge pages save nothing. Children and threads inherit the setting.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integers only and sets a flag of this process; a kernel
    // that refuses it (before 3.15) leaves everything as it was.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}
