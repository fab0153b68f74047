//! Reconnect delays: exponential backoff with full jitter, so that clients cut off together do
//! not come back together.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Delays between reconnect attempts: a random duration between zero and
/// `min(max, base * 2^attempt)`.
///
/// ```
/// use std::time::Duration;
/// use sync_client::Backoff;
///
/// let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(30));
/// for _ in 0..20 {
///     assert!(backoff.next_delay() <= Duration::from_secs(30));
/// }
/// backoff.reset();
/// assert!(backoff.next_delay() <= Duration::from_millis(100));
/// ```
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempt: u32,
    rng: u64,
}

impl Backoff {
    /// Backoff from `base` doubling up to `max`.
    pub fn new(base: Duration, max: Duration) -> Backoff {
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ (u64::from(std::process::id()) << 32)
            ^ (&base as *const Duration as u64);
        Backoff {
            base,
            max,
            attempt: 0,
            rng: seed | 1,
        }
    }

    /// The next delay, and one more attempt counted.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32 << self.attempt.min(20))
            .min(self.max);
        self.attempt = self.attempt.saturating_add(1);
        // xorshift64: jitter needs spread, not cryptographic quality.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let fraction = (self.rng >> 11) as f64 / (1u64 << 53) as f64;
        ceiling.mul_f64(fraction)
    }

    /// Back to the first delay (after a connection succeeded).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
