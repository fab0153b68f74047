//! Last-writer-wins register.

use serde::{Deserialize, Serialize};

use super::StateCrdt;
use crate::{LamportTimestamp, ReplicaId};

/// A register holding one value: of concurrent writes, the one with the greatest
/// [`LamportTimestamp`] wins.
///
/// [`set`](Self::set) stamps a write one past the register's current timestamp, so a write always
/// wins over everything its replica has seen. [`set_at`](Self::set_at) takes a caller's timestamp
/// instead (for example wall-clock milliseconds as the counter, when "latest real time wins" is
/// wanted and clocks are trusted).
///
/// Ties are deterministic: the timestamp includes the replica id, and if two writes carry the
/// very same timestamp (only possible when a replica id is misused) the greater value wins, so
/// merge stays commutative even then. That is why `T` must be `Ord`.
///
/// ```
/// use crdt_core::{LwwRegister, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = LwwRegister::default();
/// let mut at_b = LwwRegister::default();
/// at_a.set(a, "draft");
/// at_b.set(b, "final"); // concurrent, same counter: replica b's id is greater, so it wins
/// at_a.merge(&at_b);
/// assert_eq!(at_a.value(), Some(&"final"));
///
/// at_a.set(a, "edited"); // a later write by a wins: it has seen b's
/// at_b.merge(&at_a);
/// assert_eq!(at_b.value(), Some(&"edited"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct LwwRegister<T> {
    timestamp: LamportTimestamp,
    value: Option<T>,
}

impl<T> Default for LwwRegister<T> {
    fn default() -> Self {
        LwwRegister {
            timestamp: LamportTimestamp::default(),
            value: None,
        }
    }
}

impl<T: Clone + Ord> LwwRegister<T> {
    /// Writes `value` on behalf of `replica`, stamped after everything seen; returns the delta.
    ///
    /// ```
    /// use crdt_core::{LwwRegister, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut register = LwwRegister::default();
    /// register.set(a, "draft");
    /// let delta = register.set(a, "final");
    /// assert_eq!((delta.value(), register.value()), (Some(&"final"), Some(&"final")));
    /// ```
    pub fn set(&mut self, replica: ReplicaId, value: T) -> Self {
        let timestamp = LamportTimestamp::new(self.timestamp.counter.saturating_add(1), replica);
        self.timestamp = timestamp;
        self.value = Some(value.clone());
        LwwRegister {
            timestamp,
            value: Some(value),
        }
    }

    /// Writes `value` with a caller-chosen `timestamp`; returns the delta. The write takes effect
    /// only if it wins against the current value.
    ///
    /// ```
    /// use crdt_core::{LamportTimestamp, LwwRegister, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut register = LwwRegister::default();
    /// register.set_at(LamportTimestamp::new(20, a), "newer");
    /// register.set_at(LamportTimestamp::new(10, a), "older"); // loses: earlier timestamp
    /// assert_eq!(register.value(), Some(&"newer"));
    /// assert_eq!(register.timestamp(), LamportTimestamp::new(20, a));
    /// ```
    pub fn set_at(&mut self, timestamp: LamportTimestamp, value: T) -> Self {
        let delta = LwwRegister {
            timestamp,
            value: Some(value),
        };
        if delta.beats(self) {
            self.clone_from(&delta);
        }
        delta
    }

    fn beats(&self, other: &Self) -> bool {
        (self.timestamp, &self.value) > (other.timestamp, &other.value)
    }
}

impl<T> LwwRegister<T> {
    /// The current value; `None` if never set.
    ///
    /// ```
    /// use crdt_core::{LwwRegister, ReplicaId};
    ///
    /// let mut register = LwwRegister::default();
    /// assert_eq!(register.value(), None);
    /// register.set(ReplicaId::from_u128(1), 42);
    /// assert_eq!(register.value(), Some(&42));
    /// ```
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// The timestamp of the current value.
    pub fn timestamp(&self) -> LamportTimestamp {
        self.timestamp
    }
}

impl<T: Clone + Ord> StateCrdt for LwwRegister<T> {
    fn merge(&mut self, other: &Self) {
        if other.beats(self) {
            self.clone_from(other);
        }
    }

    fn includes(&self, other: &Self) -> bool {
        !other.beats(self)
    }
}
