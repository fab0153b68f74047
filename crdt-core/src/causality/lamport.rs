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
///
/// A clock is deliberately neither `Copy` nor `Clone`: two copies would issue the same
/// timestamp to different events, so the total order would no longer tell them apart. A clock
/// for another replica comes from [`fork`](LamportClock::fork) (or [`new`](LamportClock::new)).
///
/// ```compile_fail,E0599
/// use crdt_core::{LamportClock, ReplicaId};
/// let clock = LamportClock::new(ReplicaId::from_u128(1));
/// let copy = clock.clone(); // error: `LamportClock` is not `Clone`; use `fork`
/// ```
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
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

    /// A clock for `replica` that has observed everything this one issued or observed, so its
    /// timestamps exceed them: the clock of a second writer forked from this one.
    ///
    /// ```
    /// use crdt_core::{LamportClock, ReplicaId};
    ///
    /// let mut clock = LamportClock::new(ReplicaId::from_u128(1));
    /// let first = clock.tick();
    /// let mut other = clock.fork(ReplicaId::from_u128(2));
    /// let (a, b) = (clock.tick(), other.tick());
    /// assert!(a > first && b > first);
    /// assert_ne!(a, b); // same counter, different replicas
    /// ```
    pub const fn fork(&self, replica: ReplicaId) -> Self {
        LamportClock {
            replica,
            counter: self.counter,
        }
    }

    /// A copy that still issues timestamps for **this** replica.
    ///
    /// Right only when the copy and the original will never both issue timestamps: a backup, or a
    /// checkpoint to roll back to (drop the original and carry on with the copy, provided no
    /// timestamp the original issued since the copy left this process). Two live copies would give
    /// different events equal timestamps. For a second writer use [`fork`](LamportClock::fork).
    ///
    /// ```
    /// use crdt_core::{LamportClock, ReplicaId};
    ///
    /// let mut clock = LamportClock::new(ReplicaId::from_u128(1));
    /// clock.tick();
    /// let saved = clock.duplicate_same_replica();
    /// assert_eq!(saved, clock);
    /// ```
    pub const fn duplicate_same_replica(&self) -> Self {
        self.fork(self.replica)
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
