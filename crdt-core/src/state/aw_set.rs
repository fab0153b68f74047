//! Add-wins observed-remove set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::StateCrdt;
use super::dot_store::{Causal, DotFun};
use crate::ReplicaId;

/// An observed-remove set in which an add wins over a concurrent remove (an "OR-Set").
///
/// Every add tags its element with a fresh dot; a remove drops the dots it has seen. An element
/// added concurrently with its removal keeps the unseen dot, so it stays. Thanks to the causal
/// context, a removed element leaves nothing behind: no tombstone, however many adds and removes.
///
/// ```
/// use crdt_core::{AwSet, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut at_a = AwSet::default();
/// at_a.insert(a, "milk");
/// let mut at_b = at_a.clone();
///
/// at_a.remove(&"milk");
/// at_b.insert(b, "milk"); // concurrent: b still wants milk
/// at_a.merge(&at_b);
/// assert!(at_a.contains(&"milk"));
///
/// at_a.remove(&"milk"); // now a has seen b's add: the remove takes it
/// at_b.merge(&at_a);
/// assert!(!at_b.contains(&"milk"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: serde::de::DeserializeOwned + Ord + Clone"
))]
pub struct AwSet<T> {
    inner: Causal<BTreeMap<T, DotFun<()>>>,
}

impl<T> Default for AwSet<T> {
    fn default() -> Self {
        AwSet {
            inner: Causal {
                store: BTreeMap::new(),
                context: Default::default(),
            },
        }
    }
}

impl<T: Ord + Clone> AwSet<T> {
    /// Inserts `element` on behalf of `replica` (a fresh tag that a concurrent remove has not
    /// seen, so it wins); returns the delta.
    ///
    /// ```
    /// use crdt_core::{AwSet, ReplicaId, StateCrdt};
    ///
    /// let mut set = AwSet::default();
    /// let delta = set.insert(ReplicaId::from_u128(1), "milk");
    /// let mut elsewhere = AwSet::default();
    /// elsewhere.merge(&delta);
    /// assert!(elsewhere.contains(&"milk"));
    /// ```
    pub fn insert(&mut self, replica: ReplicaId, element: T) -> Self {
        AwSet {
            inner: self.inner.write_key(replica, element, ()),
        }
    }

    /// Removes `element` as far as this replica has seen it; returns the delta. No replica is
    /// needed: an observed-remove makes no event of its own, it drops the tags it has seen.
    ///
    /// ```
    /// use crdt_core::{AwSet, ReplicaId, StateCrdt};
    ///
    /// let mut set = AwSet::default();
    /// set.insert(ReplicaId::from_u128(1), "milk");
    /// let mut elsewhere = set.clone();
    /// let delta = set.remove(&"milk");
    /// elsewhere.merge(&delta);
    /// assert!(!elsewhere.contains(&"milk"));
    /// ```
    pub fn remove(&mut self, element: &T) -> Self {
        AwSet {
            inner: self.inner.clear_key(element),
        }
    }

    /// Removes every element seen; returns the delta.
    ///
    /// ```
    /// use crdt_core::{AwSet, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut set = AwSet::default();
    /// set.insert(a, 1);
    /// set.insert(a, 2);
    /// set.clear();
    /// assert!(set.is_empty());
    /// ```
    pub fn clear(&mut self) -> Self {
        AwSet {
            inner: self.inner.clear(),
        }
    }

    /// True if `element` is present.
    pub fn contains(&self, element: &T) -> bool {
        self.inner.store.contains_key(element)
    }
}

impl<T> AwSet<T> {
    /// The present elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.inner.store.keys()
    }

    /// How many elements are present.
    pub fn len(&self) -> usize {
        self.inner.store.len()
    }

    /// True if no element is present.
    pub fn is_empty(&self) -> bool {
        self.inner.store.is_empty()
    }
}

impl<T: Ord + Clone> StateCrdt for AwSet<T> {
    fn merge(&mut self, other: &Self) {
        self.inner.merge(&other.inner);
    }

    fn reset_delta(&self) -> Self {
        AwSet {
            inner: self.inner.clear_delta(),
        }
    }
}
