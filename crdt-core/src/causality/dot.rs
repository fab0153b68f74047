//! Dots: the unique name of one event.

use core::fmt;
use core::ops::Range;

use serde::{Deserialize, Serialize};

use super::ReplicaId;

/// One event: the `counter`-th event made by `replica`.
///
/// Counters start at 1, so a version vector entry of `n` covers the dots `1..=n` of its replica.
/// Dots are how the causal CRDTs tag what they add, so that a remove can name exactly what it
/// observed (the "dotted" in dotted version vectors).
///
/// ```
/// use crdt_core::{Dot, ReplicaId};
///
/// let dot = Dot::new(ReplicaId::from_u128(1), 3);
/// assert_eq!(dot.counter, 3);
/// assert_eq!(format!("{dot:?}"), "R1@3");
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that made the event.
    pub replica: ReplicaId,
    /// Its position among that replica's events, from 1.
    pub counter: u64,
}

impl Dot {
    /// The dot of the `counter`-th event of `replica`.
    pub const fn new(replica: ReplicaId, counter: u64) -> Self {
        Dot { replica, counter }
    }
}

impl fmt::Debug for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}@{}", self.replica, self.counter)
    }
}

/// A run of consecutive events of one replica: the dots `counters.start..counters.end`.
///
/// This is what [`VersionVector::missing_from`](crate::VersionVector::missing_from) reports, and
/// what a sync step asks for: "send me R's events 5 to 9".
///
/// ```
/// use crdt_core::{Dot, DotRange, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let range = DotRange { replica: r, counters: 5..10 };
/// assert_eq!(range.len(), 5);
/// assert!(range.contains(Dot::new(r, 9)));
/// assert!(!range.contains(Dot::new(r, 10)));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DotRange {
    /// The replica whose events these are.
    pub replica: ReplicaId,
    /// The half-open range of counters.
    pub counters: Range<u64>,
}

impl DotRange {
    /// How many events the range holds.
    pub fn len(&self) -> u64 {
        self.counters.end.saturating_sub(self.counters.start)
    }

    /// True if the range holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// True if `dot` lies in this range.
    pub fn contains(&self, dot: Dot) -> bool {
        dot.replica == self.replica && self.counters.contains(&dot.counter)
    }

    /// The dots of the range, in counter order.
    pub fn dots(&self) -> impl Iterator<Item = Dot> + '_ {
        self.counters.clone().map(|c| Dot::new(self.replica, c))
    }
}

impl fmt::Debug for DotRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?}@{}..{}",
            self.replica, self.counters.start, self.counters.end
        )
    }
}
