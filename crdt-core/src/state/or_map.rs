//! Observed-remove map of nested CRDTs.

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Deserializer};
use serde::{Deserialize, Serialize};

use super::{AwSet, StateCrdt};
use crate::ReplicaId;

/// A map from keys to nested CRDTs of any type here (including other maps), with observed-remove
/// keys.
///
/// # Semantics
/// - **Presence** is an add-wins set of keys ([`AwSet`]): updating a key makes it present; a
///   remove hides the key as far as the remover has seen it; an update concurrent with a remove
///   wins, so nothing a peer was editing disappears under it.
/// - **Values** merge with their own type's join, whatever the keys' presence.
/// - **Removing a key resets its value** by merging the value's
///   [`reset_delta`](StateCrdt::reset_delta): for the causal types ([`AwSet`],
///   [`RwSet`](super::RwSet), [`MvRegister`](super::MvRegister), the flags, nested `OrMap`s) this
///   is an observed-remove of everything the remover had seen, so a key removed and later
///   re-added starts empty, while concurrent updates survive the remove; a
///   [`TwoPSet`](super::TwoPSet) value has its present elements removed. Counters,
///   [`LwwRegister`](super::LwwRegister) and [`GSet`](super::GSet) values cannot forget a
///   contribution without tombstones, so they are kept hidden: if the key comes back, so do
///   their totals and latest value. Use a nested type of the first kind where "remove then
///   re-add starts fresh" matters.
/// - Memory: a removed key keeps its (reset) value's small causal context, or its hidden value
///   for types without one, so that late deltas for it are still recognised as already seen.
///
/// ```
/// use crdt_core::{AwSet, OrMap, ReplicaId, StateCrdt};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// // Shopping lists by shop.
/// let mut at_a: OrMap<&str, AwSet<&str>> = OrMap::default();
/// at_a.update(a, "market", |list| list.insert(a, "bread"));
/// let mut at_b = at_a.clone();
///
/// at_a.remove(&"market");
/// at_b.update(b, "market", |list| list.insert(b, "eggs")); // concurrent with the remove
/// at_a.merge(&at_b);
/// // The update wins; the bread the remover had seen is gone, b's eggs stay.
/// let list = at_a.get(&"market").expect("present");
/// assert_eq!(list.iter().collect::<Vec<_>>(), [&"eggs"]);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize)]
#[serde(bound(serialize = "K: Serialize, V: Serialize"))]
pub struct OrMap<K, V> {
    keys: AwSet<K>,
    /// Every present key has an entry; absent keys have one only if their value is not bottom.
    values: BTreeMap<K, V>,
}

impl<K, V> Default for OrMap<K, V> {
    fn default() -> Self {
        OrMap {
            keys: AwSet::default(),
            values: BTreeMap::new(),
        }
    }
}

impl<K: Ord + Clone, V: StateCrdt> OrMap<K, V> {
    /// Applies a mutation to the value under `key` on behalf of `replica`, making the key
    /// present; returns the delta.
    ///
    /// `mutate` receives the current value (the bottom if there was none) and must return the
    /// delta of its own mutation, as every mutator here does.
    ///
    /// ```
    /// use crdt_core::{GCounter, OrMap, ReplicaId, StateCrdt};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut map: OrMap<&str, GCounter> = OrMap::default();
    /// let delta = map.update(a, "visits", |count| count.increment(a, 1));
    /// let mut elsewhere = OrMap::default();
    /// elsewhere.merge(&delta);
    /// assert_eq!(elsewhere.get(&"visits").map(GCounter::value), Some(1));
    /// ```
    pub fn update<F>(&mut self, replica: ReplicaId, key: K, mutate: F) -> Self
    where
        F: FnOnce(&mut V) -> V,
    {
        let key_delta = self.keys.insert(replica, key.clone());
        let value = self.values.entry(key.clone()).or_default();
        let value_delta = mutate(value);
        // The key is present in the delta, so (canonical form) it carries a value, even bottom.
        OrMap {
            keys: key_delta,
            values: BTreeMap::from([(key, value_delta)]),
        }
    }

    /// Removes `key` as far as this replica has seen it, resetting its value (see the type's
    /// documentation); returns the delta.
    ///
    /// ```
    /// use crdt_core::{AwSet, OrMap, ReplicaId};
    ///
    /// let a = ReplicaId::from_u128(1);
    /// let mut map: OrMap<&str, AwSet<u8>> = OrMap::default();
    /// map.update(a, "k", |set| set.insert(a, 1));
    /// map.remove(&"k");
    /// assert!(!map.contains_key(&"k") && map.is_empty());
    /// ```
    pub fn remove(&mut self, key: &K) -> Self {
        let key_delta = self.keys.remove(key);
        let mut values = BTreeMap::new();
        if let Some(value) = self.values.get_mut(key) {
            let reset = value.reset_delta();
            value.merge(&reset);
            if *value == V::default() {
                self.values.remove(key);
            }
            if reset != V::default() {
                values.insert(key.clone(), reset);
            }
        }
        OrMap {
            keys: key_delta,
            values,
        }
    }

    /// The value under `key`, if the key is present.
    pub fn get(&self, key: &K) -> Option<&V> {
        if self.keys.contains(key) {
            self.values.get(key)
        } else {
            None
        }
    }

    /// True if `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.keys.contains(key)
    }

    /// The present keys and their values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.keys
            .iter()
            .filter_map(|key| self.values.get(key).map(|value| (key, value)))
    }

    /// The present keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.keys.iter()
    }

    /// How many keys are present.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if no key is present.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Restores the canonical form: present keys have a value, absent keys only a non-bottom
    /// one.
    fn normalize(&mut self) {
        let bottom = V::default();
        let keys = &self.keys;
        self.values
            .retain(|key, value| keys.contains(key) || *value != bottom);
        for key in self.keys.iter() {
            if !self.values.contains_key(key) {
                self.values.insert(key.clone(), V::default());
            }
        }
    }
}

impl<K: Ord + Clone, V: StateCrdt> StateCrdt for OrMap<K, V> {
    fn merge(&mut self, other: &Self) {
        self.keys.merge(&other.keys);
        for (key, value) in &other.values {
            match self.values.get_mut(key) {
                Some(mine) => mine.merge(value),
                None => {
                    self.values.insert(key.clone(), value.clone());
                }
            }
        }
        self.normalize();
    }

    fn reset_delta(&self) -> Self {
        OrMap {
            keys: self.keys.reset_delta(),
            values: self
                .values
                .iter()
                .map(|(key, value)| (key.clone(), value.reset_delta()))
                .filter(|(_, reset)| *reset != V::default())
                .collect(),
        }
    }
}

impl<'de, K, V> Deserialize<'de> for OrMap<K, V>
where
    K: DeserializeOwned + Ord + Clone,
    V: DeserializeOwned + StateCrdt,
{
    /// Decodes and restores the canonical form, so equal maps always compare equal.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(bound(deserialize = "K: DeserializeOwned + Ord + Clone, V: DeserializeOwned"))]
        struct Unchecked<K, V> {
            keys: AwSet<K>,
            values: BTreeMap<K, V>,
        }
        let Unchecked { keys, values } = Unchecked::<K, V>::deserialize(deserializer)?;
        let mut map = OrMap { keys, values };
        map.normalize();
        Ok(map)
    }
}
