//! A counting global allocator: how many heap bytes are live now, and the most that were live at
//! once since the last [`reset_peak`].
//!
//! Memory is measured by counting rather than by asking the operating system (RSS) because RSS
//! is rounded to pages, never shrinks when the allocator keeps freed pages, and includes the
//! trace itself; counting requested bytes gives the heap a document really holds, the same way
//! for every library.
//!
//! The counters are process-wide: they see every thread's allocations. They count the sizes the
//! program requested (the `Layout`), not the allocator's rounding or bookkeeping.
//!
//! Cost: two relaxed atomic operations per allocation and one per free (plus a compare-and-swap
//! when a new peak is reached). This slows allocation-heavy code a little, equally for every
//! library measured.

// `GlobalAlloc` is an unsafe trait, so implementing it needs `unsafe`; this is the only module
// of the crate allowed to use it. Soundness: every method forwards its arguments unchanged to
// `std::alloc::System`, which upholds the `GlobalAlloc` contract, and returns its result
// unchanged. The only other thing done is arithmetic on atomic counters, which touches no
// memory handed out by the allocator and cannot fail (wrapping is impossible in practice: the
// live total never exceeds the address space, and `current` is only decreased by sizes that
// were added before). So these impls are exactly as sound as `System`'s.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes currently allocated and not yet freed.
static CURRENT: AtomicUsize = AtomicUsize::new(0);
/// The largest value `CURRENT` has had since the last [`reset_peak`].
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// The global allocator of the benchmark binary (installed in `main.rs`).
pub struct CountingAlloc;

impl CountingAlloc {
    /// Records `size` more live bytes and raises the peak if needed.
    fn grew(size: usize) {
        let now = CURRENT.fetch_add(size, Ordering::Relaxed) + size;
        // Cheap load first: most allocations do not set a new peak.
        if now > PEAK.load(Ordering::Relaxed) {
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
    }

    /// Records `size` fewer live bytes.
    fn shrank(size: usize) {
        CURRENT.fetch_sub(size, Ordering::Relaxed);
    }
}

// SAFETY: see the module comment: every method forwards to `System` unchanged and only updates
// atomic counters besides.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees (non-zero size layout).
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size());
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller guarantees `ptr` came from this allocator (hence from `System`)
        // with this layout.
        unsafe { System.dealloc(ptr, layout) };
        Self::shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees (`ptr` from this allocator with
        // `layout`, valid `new_size`).
        let new_ptr = unsafe { System.realloc(ptr, layout, new_size) };
        // On failure the old block stays allocated and nothing changes.
        if !new_ptr.is_null() {
            if new_size >= layout.size() {
                Self::grew(new_size - layout.size());
            } else {
                Self::shrank(layout.size() - new_size);
            }
        }
        new_ptr
    }
}

/// Heap bytes live right now.
pub fn current() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

/// The most heap bytes live at once since the last [`reset_peak`].
pub fn peak() -> usize {
    PEAK.load(Ordering::Relaxed)
}

/// Starts a new peak measurement from the current live total.
pub fn reset_peak() {
    PEAK.store(CURRENT.load(Ordering::Relaxed), Ordering::Relaxed);
}

/// What one measured region did to the heap, relative to the live total when it started.
#[derive(Debug, Clone, Copy)]
pub struct HeapUse {
    /// Peak live bytes during the region minus the live bytes at its start.
    pub peak: usize,
    /// Live bytes at the end of the region minus the live bytes at its start (0 if less).
    pub retained: usize,
}

/// Measures the heap used by `f`: resets the peak, runs `f`, and reports peak and retained
/// bytes above the baseline. The value `f` returns is still alive when `retained` is read, so
/// `retained` is what that value holds (plus anything `f` leaked).
pub fn measure<T>(f: impl FnOnce() -> T) -> (T, HeapUse) {
    let baseline = current();
    reset_peak();
    let value = f();
    let heap = HeapUse {
        peak: peak().saturating_sub(baseline),
        retained: current().saturating_sub(baseline),
    };
    (value, heap)
}
