//! The process's allocator (mimalloc) and the one knob the memory budget turns on it.
//!
//! mimalloc keeps freed memory resident for a short delay (10 ms by default) before returning
//! it to the OS, so that a buffer freed and allocated again soon costs no page faults. Under a
//! tight budget (set in the configuration or by a cgroup limit) the resident peak matters more:
//! [`purge_freed_memory_at_once`] makes it return freed memory immediately.

/// mimalloc's `mi_option_purge_delay` (the same index in its v2 and v3 headers).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the OS at once (see the module docs).
#[allow(unsafe_code)]
pub fn purge_freed_memory_at_once() {
    // SAFETY: mi_option_set only stores an integer option (no pointers); setting it while other
    // threads allocate is allowed by mimalloc (options are read atomically).
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}
