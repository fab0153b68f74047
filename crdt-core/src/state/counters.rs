//! Counters: grow-only (`GCounter`) and increment/decrement (`PNCounter`).

use serde::{Deserialize, Serialize};

use super::StateCrdt;
use crate::{ReplicaId, VersionVector};

/// A grow-only counter: each replica counts its own increments, the value is their sum.
///
/// Its state has exactly the shape of a [`VersionVector`] (one count per replica, join by
/// entry-wise maximum), so it is stored as one. Counts saturate at `u64::MAX` rather than wrap.
///
/// ```
/// use crdt_core::{GCounter, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = GCounter::default();
/// let mut at_b = GCounter::default();
/// at_a.increment(a, 1);
/// let delta = at_b.increment(b, 2);
/// at_a.merge(&delta);
/// at_a.merge(&delta); // idempotent: delivering twice changes nothing
/// assert_eq!(at_a.value(), 3);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GCounter {
    counts: VersionVector,
}

impl GCounter {
    /// Adds `amount` on behalf of `replica`; returns the delta.
    ///
    /// ```
    /// use crdt_core::{GCounter, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut counter = GCounter::default();
    /// counter.increment(a, 2);
    /// let delta = counter.increment(a, 3);
    /// assert_eq!((delta.value(), counter.value()), (5, 5));
    /// ```
    pub fn increment(&mut self, replica: ReplicaId, amount: u64) -> GCounter {
        let count = self.counts.get(replica).saturating_add(amount);
        self.counts.advance(replica, count);
        GCounter {
            counts: [(replica, count)].into_iter().collect(),
        }
    }

    /// The total of all replicas' increments (saturating at `u64::MAX`).
    ///
    /// ```
    /// use crdt_core::{GCounter, ReplicaId, StateCrdt};
    ///
    /// let mut counter = GCounter::default();
    /// counter.increment(ReplicaId::from_u128(1), 2);
    /// let mut other = GCounter::default();
    /// other.increment(ReplicaId::from_u128(2), 3);
    /// counter.merge(&other);
    /// assert_eq!(counter.value(), 5);
    /// ```
    pub fn value(&self) -> u64 {
        self.counts.total_events()
    }

    /// What `replica` has contributed.
    ///
    /// ```
    /// use crdt_core::{GCounter, ReplicaId};
    ///
    /// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
    /// let mut counter = GCounter::default();
    /// counter.increment(a, 4);
    /// assert_eq!((counter.contribution(a), counter.contribution(b)), (4, 0));
    /// ```
    pub fn contribution(&self, replica: ReplicaId) -> u64 {
        self.counts.get(replica)
    }
}

impl StateCrdt for GCounter {
    fn merge(&mut self, other: &Self) {
        self.counts.merge(&other.counts);
    }

    fn includes(&self, other: &Self) -> bool {
        self.counts.includes(&other.counts)
    }
}

/// A counter that goes up and down: two grow-only counters, one for increments and one for
/// decrements.
///
/// ```
/// use crdt_core::{PNCounter, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = PNCounter::default();
/// let mut at_b = PNCounter::default();
/// at_a.increment(a, 5);
/// at_b.decrement(b, 7);
/// at_a.merge(&at_b);
/// assert_eq!(at_a.value(), -2);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct PNCounter {
    increments: GCounter,
    decrements: GCounter,
}

impl PNCounter {
    /// Adds `amount` on behalf of `replica`; returns the delta.
    ///
    /// Increments and decrements take unsigned amounts, so a negative increment is a type error;
    /// [`add`](Self::add) takes a signed one. [`OpCounter`](crate::OpCounter) has the same three.
    ///
    /// ```
    /// use crdt_core::{PNCounter, ReplicaId};
    ///
    /// let mut counter = PNCounter::default();
    /// counter.increment(ReplicaId::from_u128(1), 5);
    /// assert_eq!(counter.value(), 5);
    /// ```
    pub fn increment(&mut self, replica: ReplicaId, amount: u64) -> PNCounter {
        PNCounter {
            increments: self.increments.increment(replica, amount),
            decrements: GCounter::default(),
        }
    }

    /// Subtracts `amount` on behalf of `replica`; returns the delta.
    ///
    /// ```
    /// use crdt_core::{PNCounter, ReplicaId};
    ///
    /// let mut counter = PNCounter::default();
    /// counter.decrement(ReplicaId::from_u128(1), 5);
    /// assert_eq!(counter.value(), -5);
    /// ```
    pub fn decrement(&mut self, replica: ReplicaId, amount: u64) -> PNCounter {
        PNCounter {
            increments: GCounter::default(),
            decrements: self.decrements.increment(replica, amount),
        }
    }

    /// Adds a signed `amount` (negative to subtract) on behalf of `replica`; returns the delta.
    ///
    /// ```
    /// use crdt_core::{PNCounter, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut counter = PNCounter::default();
    /// counter.add(a, 10);
    /// counter.add(a, -3);
    /// assert_eq!(counter.value(), 7);
    /// ```
    pub fn add(&mut self, replica: ReplicaId, amount: i64) -> PNCounter {
        if amount >= 0 {
            self.increment(replica, amount.unsigned_abs())
        } else {
            self.decrement(replica, amount.unsigned_abs())
        }
    }

    /// Increments minus decrements, clamped to the range of `i64`.
    ///
    /// ```
    /// use crdt_core::{PNCounter, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut counter = PNCounter::default();
    /// counter.increment(a, u64::MAX);
    /// assert_eq!(counter.value(), i64::MAX);
    /// ```
    pub fn value(&self) -> i64 {
        let difference = i128::from(self.increments.value()) - i128::from(self.decrements.value());
        i64::try_from(difference).unwrap_or(if difference < 0 { i64::MIN } else { i64::MAX })
    }
}

impl StateCrdt for PNCounter {
    fn merge(&mut self, other: &Self) {
        self.increments.merge(&other.increments);
        self.decrements.merge(&other.decrements);
    }

    fn includes(&self, other: &Self) -> bool {
        self.increments.includes(&other.increments) && self.decrements.includes(&other.decrements)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_overflowing() {
        let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
        let mut counter = PNCounter::default();
        counter.increment(a, u64::MAX);
        counter.increment(a, 1);
        counter.increment(b, u64::MAX);
        assert_eq!(counter.value(), i64::MAX);
        counter.decrement(a, u64::MAX);
        counter.decrement(b, u64::MAX);
        assert_eq!(counter.value(), 0);
    }
}
