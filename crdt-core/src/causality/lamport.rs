//! Lamport timestamps: a total order consistent with causality.

use core::fmt;

use serde::{Deserialize, Serialize};

use super::ReplicaId;

/// A Lamport timestamp: a logical time plus the replica that issued it as a tie-break.
///
/// Ordered by `counter`, then by `replica`, so any two timestamps compare, and a timestamp issued
/// after seeing another is always greater than it. Last-writer-wins registers and map keys use it
/// to pick one winner among concurrent writes, the same on every replica.
///
/// ```
/// use crdt_core::{LamportTimestamp, ReplicaId};
///
/// let early = LamportTimestamp::new(1, ReplicaId::from_u128(9));
/// let late = LamportTimestamp::new(2, ReplicaId::from_u128(1));
/// assert!(early < late);
/// // Equal counters: the replica id breaks the tie, deterministically.
/// assert!(LamportTimestamp::new(2, ReplicaId::from_u128(2)) > late);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct LamportTimestamp {
    /// The logical time.
    pub counter: u64,
    /// The replica that issued the timestamp.
    pub replica: ReplicaId,
}

impl LamportTimestamp {
    /// The timestamp `counter` issued by `replica`.
    pub const fn new(counter: u64, replica: ReplicaId) -> Self {
        LamportTimestamp { counter, replica }
    }
}

impl fmt::Debug for LamportTimestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{:?}", self.counter, self.replica)
    }
}

/// A replica's Lamport clock: issues timestamps greater than any it has issued or observed.
///
/// ```
/// use crdt_core::{LamportClock, LamportTimestamp, ReplicaId};
///
/// let mut clock = LamportClock::new(ReplicaId::from_u128(1));
/// let first = clock.tick();
/// clock.observe(LamportTimestamp::new(10, ReplicaId::from_u128(2)));
/// let next = clock.tick();
/// assert!(next > first);
/// assert_eq!(next.counter, 11);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LamportClock {
    replica: ReplicaId,
    counter: u64,
}

impl LamportClock {
    /// A clock for `replica` that has issued nothing yet.
    pub const fn new(replica: ReplicaId) -> Self {
        LamportClock {
            replica,
            counter: 0,
        }
    }

    /// The replica this clock issues timestamps for.
    pub const fn replica(&self) -> ReplicaId {
        self.replica
    }

    /// The latest logical time issued or observed.
    pub const fn now(&self) -> u64 {
        self.counter
    }

    /// Issues a new timestamp, greater than everything issued or observed so far.
    pub fn tick(&mut self) -> LamportTimestamp {
        self.counter = self.counter.saturating_add(1);
        LamportTimestamp::new(self.counter, self.replica)
    }

    /// Records a timestamp seen from elsewhere so that later ticks exceed it.
    pub fn observe(&mut self, seen: LamportTimestamp) {
        self.counter = self.counter.max(seen.counter);
    }
}
