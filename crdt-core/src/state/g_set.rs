//! Grow-only set.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::StateCrdt;

/// A set that only grows: merge is union.
///
/// ```
/// use crdt_core::{GSet, StateCrdt};
///
/// let mut left = GSet::default();
/// let mut right = GSet::default();
/// left.insert("apple");
/// let delta = right.insert("pear");
/// left.merge(&delta);
/// assert!(left.contains(&"apple") && left.contains(&"pear"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: serde::de::DeserializeOwned + Ord"
))]
pub struct GSet<T> {
    elements: BTreeSet<T>,
}

impl<T> Default for GSet<T> {
    fn default() -> Self {
        GSet {
            elements: BTreeSet::new(),
        }
    }
}

impl<T: Ord + Clone> GSet<T> {
    /// Adds `element`; returns the delta.
    ///
    /// ```
    /// use crdt_core::{GSet, StateCrdt};
    ///
    /// let mut set = GSet::default();
    /// let delta = set.insert("apple");
    /// let mut elsewhere = GSet::default();
    /// elsewhere.merge(&delta);
    /// assert!(elsewhere.contains(&"apple"));
    /// ```
    pub fn insert(&mut self, element: T) -> Self {
        self.elements.insert(element.clone());
        GSet {
            elements: BTreeSet::from([element]),
        }
    }

    /// True if `element` was ever added.
    pub fn contains(&self, element: &T) -> bool {
        self.elements.contains(element)
    }
}

impl<T> GSet<T> {
    /// The elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.elements.iter()
    }

    /// How many elements there are.
    pub fn len(&self) -> usize {
        self.elements.len()
    }

    /// True if nothing was ever added.
    pub fn is_empty(&self) -> bool {
        self.elements.is_empty()
    }
}

impl<T: Ord + Clone> StateCrdt for GSet<T> {
    fn merge(&mut self, other: &Self) {
        self.elements.extend(other.elements.iter().cloned());
    }

    fn includes(&self, other: &Self) -> bool {
        other.elements.is_subset(&self.elements)
    }
}
