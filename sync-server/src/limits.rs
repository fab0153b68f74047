//! Rate limiting (token buckets) and the per-IP connection count.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A token bucket: `rate` tokens per second, holding at most `burst`.
///
/// ```
/// use std::time::{Duration, Instant};
/// use sync_server::limits::TokenBucket;
///
/// let start = Instant::now();
/// let mut bucket = TokenBucket::new(10.0, 20.0, start);
/// assert!(bucket.take(20.0, start));
/// assert!(!bucket.take(1.0, start));
/// assert!(bucket.take(5.0, start + Duration::from_millis(500)));
/// ```
#[derive(Clone, Debug)]
pub struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(rate: f64, burst: f64, now: Instant) -> TokenBucket {
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            last: now,
        }
    }

    /// Takes `amount` tokens if there are enough; otherwise takes none.
    pub fn take(&mut self, amount: f64, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= amount {
            self.tokens -= amount;
            true
        } else {
            false
        }
    }
}

/// Counts open connections per client IP address; a [`IpSlot`] releases its count when dropped.
#[derive(Debug, Default)]
pub struct IpLimiter {
    max_per_ip: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in the per-IP count.
#[derive(Debug)]
pub struct IpSlot {
    limiter: Arc<IpLimiter>,
    ip: IpAddr,
}

impl IpLimiter {
    /// A limiter allowing `max_per_ip` connections per address.
    pub fn new(max_per_ip: usize) -> Arc<IpLimiter> {
        Arc::new(IpLimiter {
            max_per_ip,
            open: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a slot for `ip`, or `None` if the address is at its limit.
    ///
    /// ```
    /// use sync_server::limits::IpLimiter;
    ///
    /// let limiter = IpLimiter::new(1);
    /// let ip = "127.0.0.1".parse().unwrap();
    /// let slot = limiter.acquire(ip);
    /// assert!(slot.is_some());
    /// assert!(limiter.acquire(ip).is_none());
    /// drop(slot);
    /// assert!(limiter.acquire(ip).is_some());
    /// ```
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Option<IpSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return None;
        }
        *count += 1;
        Some(IpSlot {
            limiter: Arc::clone(self),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut open = self.limiter.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}
