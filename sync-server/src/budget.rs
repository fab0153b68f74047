//! Memory shared by every connection for one purpose, with an upper bound.
//!
//! Why: each connection bounds what it buffers, but many connections within their own bounds can
//! still add up to more than the machine has. A pool is the server-wide bound: a connection takes
//! bytes from it before buffering them and gives them back when they are freed.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A count of bytes in use, never above its limit.
///
/// ```
/// use sync_server::budget::BytePool;
/// let pool = BytePool::new(100);
/// assert!(pool.try_take(60));
/// assert!(!pool.try_take(60));
/// pool.give_back(60);
/// assert!(pool.try_take(100));
/// assert_eq!(pool.used(), 100);
/// ```
#[derive(Debug)]
pub struct BytePool {
    limit: usize,
    used: AtomicUsize,
}

impl BytePool {
    /// An empty pool of `limit` bytes.
    pub fn new(limit: usize) -> BytePool {
        BytePool {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Takes `bytes` if that keeps the pool within its limit; otherwise takes nothing.
    pub fn try_take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Returns bytes taken earlier.
    pub fn give_back(&self, bytes: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(bytes))
            });
    }

    /// Bytes in use.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}
