//! Two-phase set: add once, remove for good.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::StateCrdt;

/// A set where a removed element can never come back.
///
/// Each element ever seen is stored once with a flag saying whether it has been removed; merge
/// is the union with "removed" winning. The removal record is a tombstone by design: it is what
/// makes removal permanent. Removing an element never added records the removal in advance, so
/// the element can then never be added.
///
/// ```
/// use crdt_core::{StateCrdt, TwoPSet};
///
/// let mut left = TwoPSet::default();
/// left.insert("ticket-1");
/// let mut right = left.clone();
/// right.remove(&"ticket-1");
/// left.insert("ticket-1"); // concurrent re-add: the removal still wins
/// left.merge(&right);
/// assert!(!left.contains(&"ticket-1"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
#[serde(transparent)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: serde::de::DeserializeOwned + Ord"
))]
pub struct TwoPSet<T> {
    /// Every element ever added or removed; `true` if removed.
    elements: BTreeMap<T, bool>,
}

impl<T> Default for TwoPSet<T> {
    fn default() -> Self {
        TwoPSet {
            elements: BTreeMap::new(),
        }
    }
}

impl<T: Ord + Clone> TwoPSet<T> {
    /// Adds `element` (no effect if it was removed); returns the delta.
    ///
    /// ```
    /// use crdt_core::TwoPSet;
    ///
    /// let mut set = TwoPSet::default();
    /// set.insert(1);
    /// assert!(set.contains(&1) && set.len() == 1);
    /// ```
    pub fn insert(&mut self, element: T) -> Self {
        self.elements.entry(element.clone()).or_insert(false);
        TwoPSet {
            elements: BTreeMap::from([(element, false)]),
        }
    }

    /// Removes `element` for good; returns the delta.
    ///
    /// ```
    /// use crdt_core::TwoPSet;
    ///
    /// let mut set = TwoPSet::default();
    /// set.insert("ticket-1");
    /// set.remove(&"ticket-1");
    /// set.insert("ticket-1"); // no effect: removed for good
    /// assert!(!set.contains(&"ticket-1"));
    /// ```
    pub fn remove(&mut self, element: &T) -> Self {
        self.elements.insert(element.clone(), true);
        TwoPSet {
            elements: BTreeMap::from([(element.clone(), true)]),
        }
    }

    /// True if `element` was added and not removed.
    pub fn contains(&self, element: &T) -> bool {
        self.elements.get(element) == Some(&false)
    }
}

impl<T> TwoPSet<T> {
    /// The present elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.elements
            .iter()
            .filter(|(_, removed)| !**removed)
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

impl<T: Ord + Clone> StateCrdt for TwoPSet<T> {
    fn merge(&mut self, other: &Self) {
        for (element, &removed) in &other.elements {
            let mine = self.elements.entry(element.clone()).or_insert(removed);
            *mine |= removed;
        }
    }

    fn includes(&self, other: &Self) -> bool {
        other
            .elements
            .iter()
            .all(|(element, &removed)| self.elements.get(element).is_some_and(|&r| r >= removed))
    }

    /// Removes every present element.
    fn reset_delta(&self) -> Self {
        TwoPSet {
            elements: self.iter().map(|e| (e.clone(), true)).collect(),
        }
    }
}
