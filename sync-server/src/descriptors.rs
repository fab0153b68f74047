//! File descriptors: the process limit, the connection cap derived from it, and what the accept
//! loop does when the limit is reached anyway.
//!
//! Every connection holds one descriptor. If `max_connections` is at or above what the process
//! may open, the 503 answer that should shed load can never be sent: `accept` fails first
//! (`EMFILE`), the client waits in the kernel's backlog, and the loop retries at once. So the
//! server (1) raises its soft limit to the hard limit at start (the binary only: it is a
//! process-wide setting), (2) caps `max_connections` below the limit, keeping a reserve for
//! storage, listeners, logs and sockets still in their handshake, and (3) when `accept` fails
//! anyway (handshakes piling up, descriptors used elsewhere), backs off and logs once per
//! interval with the count of failures in between, instead of a line per failure. While out
//! of descriptors the accept loop also closes a spare descriptor it holds for the purpose,
//! accepts one waiting client with it, refuses it (503, or a bare close under TLS) and reopens
//! the spare: waiting clients learn at once that the server is full.

use std::time::{Duration, Instant};

/// Descriptors kept for everything but client sockets: stdio, the listener, the runtime's
/// epoll and wake-ups, signal pipes, the lock file, the SQLite files of the writer and the
/// read pool (database and WAL each), PostgreSQL sockets, certificate reloads.
pub const FIXED_RESERVE: u64 = 64;

/// Of the rest, one part in this many is kept for sockets not yet counted as connections
/// (HTTP requests, TLS and WebSocket handshakes, refusals being written).
pub const HANDSHAKE_SHARE: u64 = 10;

/// The process's soft descriptor limit (`RLIMIT_NOFILE`), `None` if unlimited or unknown.
pub fn soft_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Raises the soft descriptor limit to the hard limit, as servers commonly do (many systems
/// start processes at 1024 soft with a much higher hard limit). Returns the soft limit in
/// force afterwards. Failure is harmless: the old limit stays, and the cap follows it.
pub fn raise_soft_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            if let Err(error) = setrlimit(Resource::Nofile, raised) {
                tracing::debug!(%error, "cannot raise the descriptor limit");
            }
        }
        soft_limit()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// The connection cap for a descriptor limit: the configured one, lowered so that the
/// reserve ([`FIXED_RESERVE`] plus a [`HANDSHAKE_SHARE`]th of the limit) stays free.
/// At least 1, so that a tiny limit still serves someone.
///
/// ```
/// use sync_server::descriptors::connection_cap;
///
/// assert_eq!(connection_cap(20_000, Some(20_000)), 17_943); // 20000 - 64 - 19936 / 10
/// assert_eq!(connection_cap(100, Some(1_000_000)), 100);   // the configured cap holds
/// assert_eq!(connection_cap(20_000, None), 20_000);         // no limit known
/// ```
pub fn connection_cap(configured: usize, limit: Option<u64>) -> usize {
    let Some(limit) = limit else {
        return configured;
    };
    let reserve = FIXED_RESERVE + limit.saturating_sub(FIXED_RESERVE) / HANDSHAKE_SHARE;
    let available = usize::try_from(limit.saturating_sub(reserve)).unwrap_or(usize::MAX);
    configured.min(available).max(1)
}

/// Is this `accept` error the process or the system running out of descriptors (or of the
/// memory a socket needs)? Those mean "wait for a connection to close"; others are per
/// connection (the peer reset it before it was accepted) and need no pause.
pub fn is_resource_exhaustion(error: &std::io::Error) -> bool {
    // EMFILE 24, ENFILE 23, ENOBUFS 105, ENOMEM 12 on Linux; checked through the kind where
    // std has one, raw numbers otherwise.
    if error.kind() == std::io::ErrorKind::OutOfMemory {
        return true;
    }
    #[cfg(unix)]
    {
        use rustix::io::Errno;
        let raw = error.raw_os_error();
        [Errno::MFILE, Errno::NFILE, Errno::NOBUFS, Errno::NOMEM]
            .iter()
            .any(|e| Some(e.raw_os_error()) == raw)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Accept failures: how long to pause, and whether to log (once per [`LOG_INTERVAL`], with
/// the number of failures since the last line).
#[derive(Debug)]
pub struct AcceptErrors {
    consecutive: u32,
    suppressed: u64,
    last_log: Option<Instant>,
}

/// At most one accept-failure log line per this interval.
pub const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// Pause after the first failure in a row; doubles per failure up to [`MAX_PAUSE`].
pub const FIRST_PAUSE: Duration = Duration::from_millis(10);

/// Longest pause between accept attempts while failing.
pub const MAX_PAUSE: Duration = Duration::from_secs(1);

/// What to do after a failed `accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcceptFailure {
    /// Wait this long before accepting again.
    pub pause: Duration,
    /// Log now, mentioning this many failures not logged since the last line (`None`: stay
    /// quiet).
    pub log: Option<u64>,
}

impl Default for AcceptErrors {
    fn default() -> Self {
        Self::new()
    }
}

impl AcceptErrors {
    /// No failures yet.
    pub fn new() -> AcceptErrors {
        AcceptErrors {
            consecutive: 0,
            suppressed: 0,
            last_log: None,
        }
    }

    /// Records a failure at `now`.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// use sync_server::descriptors::AcceptErrors;
    ///
    /// let mut errors = AcceptErrors::new();
    /// let t = Instant::now();
    /// assert_eq!(errors.failed(t).log, Some(0));          // the first is logged
    /// assert_eq!(errors.failed(t).log, None);             // then quiet...
    /// let later = t + Duration::from_secs(11);
    /// assert_eq!(errors.failed(later).log, Some(1));      // ...until the interval passed
    /// ```
    pub fn failed(&mut self, now: Instant) -> AcceptFailure {
        let pause = FIRST_PAUSE
            .saturating_mul(1u32 << self.consecutive.min(16))
            .min(MAX_PAUSE);
        self.consecutive = self.consecutive.saturating_add(1);
        let due = self
            .last_log
            .is_none_or(|at| now.saturating_duration_since(at) >= LOG_INTERVAL);
        let log = if due {
            self.last_log = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        };
        AcceptFailure { pause, log }
    }

    /// An `accept` succeeded: the next failure pauses briefly again (the log interval stays).
    pub fn succeeded(&mut self) {
        self.consecutive = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_reset() {
        let mut errors = AcceptErrors::new();
        let t = Instant::now();
        let pauses: Vec<_> = (0..10).map(|_| errors.failed(t).pause).collect();
        assert_eq!(pauses[0], FIRST_PAUSE);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(pauses[9], MAX_PAUSE);
        errors.succeeded();
        assert_eq!(errors.failed(t).pause, FIRST_PAUSE);
    }

    #[test]
    fn the_cap_keeps_a_reserve() {
        assert_eq!(connection_cap(20_000, Some(256)), 256 - 64 - 19);
        assert_eq!(connection_cap(20_000, Some(10)), 1);
    }

    #[cfg(unix)]
    #[test]
    fn emfile_is_exhaustion_and_a_reset_is_not() {
        assert!(is_resource_exhaustion(&std::io::Error::from_raw_os_error(
            24
        )));
        assert!(!is_resource_exhaustion(&std::io::Error::from_raw_os_error(
            104
        )));
    }
}
