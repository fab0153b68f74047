//! Remove-wins set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::StateCrdt;
use super::dot_store::{Causal, DotFun};
use crate::ReplicaId;

/// A set in which a remove wins over a concurrent add.
///
/// Adds and removes are both events: each replaces the events it has seen for that element with
/// a new one tagged "added" or "removed", and the element is present when every surviving event
/// is an add. A concurrent add and remove both survive, so the element is absent. The price of
/// remove-wins is one small record per removed element (its latest remove event): without it a
/// stale concurrent add could not be beaten.
///
/// ```
/// use crdt_core::{ReplicaId, RwSet, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = RwSet::default();
/// at_a.insert(a, "guest");
/// let mut at_b = at_a.clone();
///
/// at_a.remove(a, &"guest");
/// at_b.insert(b, "guest"); // concurrent: the remove wins
/// at_a.merge(&at_b);
/// assert!(!at_a.contains(&"guest"));
///
/// at_a.insert(a, "guest"); // an insert that has seen the remove brings it back
/// assert!(at_a.contains(&"guest"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: serde::de::DeserializeOwned + Ord + Clone"
))]
pub struct RwSet<T> {
    /// Per element, its surviving events: `true` for an add, `false` for a remove.
    inner: Causal<BTreeMap<T, DotFun<bool>>>,
}

impl<T> Default for RwSet<T> {
    fn default() -> Self {
        RwSet {
            inner: Causal {
                store: BTreeMap::new(),
                context: Default::default(),
            },
        }
    }
}

impl<T: Ord + Clone> RwSet<T> {
    /// Inserts `element` on behalf of `replica`; returns the delta.
    ///
    /// ```
    /// use crdt_core::{ReplicaId, RwSet};
    ///
    /// let mut set = RwSet::default();
    /// set.insert(ReplicaId::from_u128(1), 7);
    /// assert!(set.contains(&7));
    /// ```
    pub fn insert(&mut self, replica: ReplicaId, element: T) -> Self {
        RwSet {
            inner: self.inner.write_key(replica, element, true),
        }
    }

    /// Removes `element` on behalf of `replica`, winning over concurrent inserts; returns the
    /// delta. The replica is needed because a winning remove is an event of its own (the record
    /// a stale concurrent insert loses against).
    ///
    /// ```
    /// use crdt_core::{ReplicaId, RwSet, StateCrdt};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut set = RwSet::default();
    /// set.insert(a, 7);
    /// let delta = set.remove(a, &7);
    /// let mut elsewhere = RwSet::default();
    /// elsewhere.insert(ReplicaId::from_u128(2), 7); // concurrent with the remove
    /// elsewhere.merge(&delta);
    /// assert!(!elsewhere.contains(&7));
    /// ```
    pub fn remove(&mut self, replica: ReplicaId, element: &T) -> Self {
        RwSet {
            inner: self.inner.write_key(replica, element.clone(), false),
        }
    }

    /// True if `element` is present.
    pub fn contains(&self, element: &T) -> bool {
        self.inner.store.get(element).is_some_and(all_adds)
    }
}

fn all_adds(events: &DotFun<bool>) -> bool {
    !events.is_empty() && events.iter().all(|&(_, added)| added)
}

impl<T> RwSet<T> {
    /// The present elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.inner
            .store
            .iter()
            .filter(|(_, events)| all_adds(events))
            .map(|(element, _)| element)
    }

    /// How many elements are present.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// True if no element is present.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl<T: Ord + Clone> StateCrdt for RwSet<T> {
    fn merge(&mut self, other: &Self) {
        self.inner.merge(&other.inner);
    }

    fn reset_delta(&self) -> Self {
        RwSet {
            inner: self.inner.clear_delta(),
        }
    }
}
