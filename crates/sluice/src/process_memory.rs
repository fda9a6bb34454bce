//! The process's allocator and memory settings applied before any thread
//! starts, so that memory freed after a wide row goes back to the system
//! instead of staying in caches sized by the largest rows seen (the memory
//! budget counts rows in flight; these keep what is *not* in flight small):
//!
//! - the allocator is mimalloc: the snapshot and CDC paths allocate and free
//!   a few small blocks per value on several threads, where glibc's `malloc`
//!   spent a fifth of Sluice's CPU (README "Benchmarks", profile). mimalloc
//!   returns freed pages to the system shortly after they are freed, and
//!   serves blocks above its large-object size from their own mappings;
//! - glibc's `malloc`, still used by C code, gets a fixed mmap threshold of
//!   256 KiB (its default raises the threshold to the largest block freed,
//!   after which large blocks come from arenas that keep their pages);
//! - mysql_async keeps up to 128 packet buffers of up to 4 MiB each for
//!   reuse; buffers above 256 KiB are trimmed before they are kept
//!   (`MYSQL_ASYNC_BUFFER_SIZE_CAP`, unless the environment already sets it).

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Applies the settings; must run before the runtime's threads exist.
pub fn apply() {
    const LARGE_BLOCK: usize = 256 << 10;
    if std::env::var_os("MYSQL_ASYNC_BUFFER_SIZE_CAP").is_none() {
        // SAFETY: called first thing in `main`, while the process has one thread,
        // so no other thread can read the environment concurrently.
        unsafe { std::env::set_var("MYSQL_ASYNC_BUFFER_SIZE_CAP", LARGE_BLOCK.to_string()) };
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes the allocator's tuning; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, LARGE_BLOCK as libc::c_int);
    }
}
