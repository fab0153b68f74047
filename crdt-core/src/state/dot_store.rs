//! Dot stores and the causal join: the shared machinery of the causal delta CRDTs.
//!
//! Following Almeida, Shoker and Baquero (2018, section 7), a causal CRDT is a pair of a *dot
//! store* (data tagged with the dots of the events that wrote it) and a [`CausalContext`] (every
//! dot the replica has seen). The join of two such pairs keeps a tagged datum if both sides have
//! it, or if one side has it and the other side has *not seen* its dot; a datum whose dot the
//! other side has seen and dropped was removed there, so it goes. This one rule gives
//! observed-remove sets, multi-value registers and flags without tombstones.
//!
//! Two store shapes cover every type here:
//! - [`DotFun`]: dots mapped to values, sorted by dot (a multi-value register's concurrent
//!   values; a flag's enable or disable events);
//! - `BTreeMap<K, S>`: keys mapped to nested stores, keys with empty stores removed (sets).

use std::collections::BTreeMap;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{CausalContext, Dot, ReplicaId};

/// Dots mapped to values, sorted by dot with no dot twice.
pub(crate) type DotFun<V> = Vec<(Dot, V)>;

/// The data half of a causal CRDT. `join` is the causal join of two stores, given both contexts.
pub(crate) trait DotStore: Clone + Default + PartialEq {
    /// True for the empty store.
    fn is_bottom(&self) -> bool;
    /// Joins `theirs` (with context `their_context`) into `self` (with context `my_context`).
    fn join(&mut self, my_context: &CausalContext, theirs: &Self, their_context: &CausalContext);
    /// Calls `f` with every dot in the store.
    fn for_each_dot(&self, f: &mut dyn FnMut(Dot));
    /// True if the store is in canonical form (sorted, no empty nested stores).
    fn is_canonical(&self) -> bool;
}

impl<V: Clone + PartialEq> DotStore for DotFun<V> {
    fn is_bottom(&self) -> bool {
        self.is_empty()
    }

    fn join(&mut self, my_context: &CausalContext, theirs: &Self, their_context: &CausalContext) {
        if theirs.is_empty() {
            // Only the removal half of the rule applies; the common case for removes.
            self.retain(|(dot, _)| !their_context.contains(*dot));
            return;
        }
        let mut mine = std::mem::take(self).into_iter().peekable();
        let mut theirs = theirs.iter().peekable();
        loop {
            let order = match (mine.peek(), theirs.peek()) {
                (None, None) => break,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some((a, _)), Some((b, _))) => a.cmp(b),
            };
            match order {
                std::cmp::Ordering::Equal => {
                    // Both have it: keep it once.
                    theirs.next();
                    self.extend(mine.next());
                }
                std::cmp::Ordering::Less => {
                    // Only mine: it stays unless they have seen it, which means they removed it.
                    if let Some((dot, value)) = mine.next()
                        && !their_context.contains(dot)
                    {
                        self.push((dot, value));
                    }
                }
                std::cmp::Ordering::Greater => {
                    // Only theirs: it comes in unless I have seen it, which means I removed it.
                    if let Some((dot, value)) = theirs.next()
                        && !my_context.contains(*dot)
                    {
                        self.push((*dot, value.clone()));
                    }
                }
            }
        }
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(Dot)) {
        self.iter().for_each(|(dot, _)| f(*dot));
    }

    fn is_canonical(&self) -> bool {
        self.windows(2).all(|w| w[0].0 < w[1].0)
    }
}

impl<K: Ord + Clone, S: DotStore> DotStore for BTreeMap<K, S> {
    fn is_bottom(&self) -> bool {
        self.is_empty()
    }

    fn join(&mut self, my_context: &CausalContext, theirs: &Self, their_context: &CausalContext) {
        let bottom = S::default();
        // Keys of mine: join with theirs, or with nothing (which drops what they have seen).
        for (key, store) in self.iter_mut() {
            store.join(
                my_context,
                theirs.get(key).unwrap_or(&bottom),
                their_context,
            );
        }
        // Keys only theirs: what survives of theirs against my context. No key has been removed
        // yet, so `contains_key` still tells the keys mine had.
        for (key, their_store) in theirs {
            if !self.contains_key(key) {
                let mut store = S::default();
                store.join(my_context, their_store, their_context);
                if !store.is_bottom() {
                    self.insert(key.clone(), store);
                }
            }
        }
        self.retain(|_, store| !store.is_bottom());
    }

    fn for_each_dot(&self, f: &mut dyn FnMut(Dot)) {
        self.values().for_each(|store| store.for_each_dot(f));
    }

    fn is_canonical(&self) -> bool {
        self.values().all(|s| !s.is_bottom() && s.is_canonical())
    }
}

/// A dot store with the causal context of the replica that holds it.
///
/// Invariants (checked when decoding): the store is canonical, every dot in the store is in the
/// context, and no dot appears twice in the store.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug, Serialize)]
pub(crate) struct Causal<S> {
    pub(crate) store: S,
    pub(crate) context: CausalContext,
}

impl<S: DotStore> Causal<S> {
    /// The causal join.
    pub(crate) fn merge(&mut self, other: &Self) {
        self.store.join(&self.context, &other.store, &other.context);
        self.context.join(&other.context);
    }

    /// The dots of the store, as a context: what a remove of everything has observed.
    pub(crate) fn store_dots(&self) -> CausalContext {
        let mut dots = Vec::new();
        self.store.for_each_dot(&mut |dot| dots.push(dot));
        dots.into_iter().collect()
    }

    /// The delta that removes everything this replica has observed; concurrent additions survive.
    pub(crate) fn clear_delta(&self) -> Self {
        Causal {
            store: S::default(),
            context: self.store_dots(),
        }
    }

    /// Removes everything observed, returning the delta.
    pub(crate) fn clear(&mut self) -> Self {
        let delta = self.clear_delta();
        self.store = S::default();
        delta
    }

    fn check_invariants(&self) -> Result<(), &'static str> {
        if !self.store.is_canonical() {
            return Err("dot store is not in canonical form");
        }
        let mut dots = Vec::new();
        self.store.for_each_dot(&mut |dot| dots.push(dot));
        if !dots.iter().all(|&dot| self.context.contains(dot)) {
            return Err("dot store holds a dot its causal context does not");
        }
        dots.sort_unstable();
        if dots.windows(2).any(|w| w[0] == w[1]) {
            return Err("dot store holds the same dot twice");
        }
        Ok(())
    }
}

impl<V: Clone + PartialEq> Causal<DotFun<V>> {
    /// Replaces every observed value with `value`, written as a new event of `replica`.
    pub(crate) fn write(&mut self, replica: ReplicaId, value: V) -> Self {
        let dot = self.context.next_dot(replica);
        let mut observed = self.store_dots();
        observed.insert(dot);
        self.store = vec![(dot, value.clone())];
        self.context.insert(dot);
        Causal {
            store: vec![(dot, value)],
            context: observed,
        }
    }
}

impl<K: Ord + Clone, V: Clone + PartialEq> Causal<BTreeMap<K, DotFun<V>>> {
    /// Replaces the observed values under `key` with `value`, written as a new event of `replica`.
    pub(crate) fn write_key(&mut self, replica: ReplicaId, key: K, value: V) -> Self {
        let dot = self.context.next_dot(replica);
        let mut observed = self.key_dots(&key);
        observed.insert(dot);
        self.store.insert(key.clone(), vec![(dot, value.clone())]);
        self.context.insert(dot);
        Causal {
            store: BTreeMap::from([(key, vec![(dot, value)])]),
            context: observed,
        }
    }

    /// Removes the observed values under `key`, returning the delta.
    pub(crate) fn clear_key(&mut self, key: &K) -> Self {
        let observed = self.key_dots(key);
        self.store.remove(key);
        Causal {
            store: BTreeMap::new(),
            context: observed,
        }
    }

    fn key_dots(&self, key: &K) -> CausalContext {
        self.store
            .get(key)
            .map(|values| values.iter().map(|(dot, _)| *dot).collect())
            .unwrap_or_default()
    }
}

impl<'de, S: DotStore + DeserializeOwned> Deserialize<'de> for Causal<S> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Unchecked<S> {
            store: S,
            context: CausalContext,
        }
        let Unchecked { store, context } = Unchecked::<S>::deserialize(deserializer)?;
        let causal = Causal { store, context };
        causal.check_invariants().map_err(D::Error::custom)?;
        Ok(causal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(r: u128, c: u64) -> Dot {
        Dot::new(ReplicaId::from_u128(r), c)
    }

    #[test]
    fn join_keeps_unseen_and_drops_seen_and_removed() {
        // Mine has dot 1@1 and has seen 2@1 (and dropped it); theirs has 2@1 and 2@2, has seen 1@1.
        let mut mine: DotFun<char> = vec![(dot(1, 1), 'a')];
        let my_context: CausalContext = [dot(1, 1), dot(2, 1)].into_iter().collect();
        let theirs: DotFun<char> = vec![(dot(2, 1), 'b'), (dot(2, 2), 'c')];
        let their_context: CausalContext = [dot(1, 1), dot(2, 1), dot(2, 2)].into_iter().collect();
        mine.join(&my_context, &theirs, &their_context);
        assert_eq!(mine, vec![(dot(2, 2), 'c')]);
    }

    #[test]
    fn decoding_refuses_a_dot_outside_the_context() {
        let bad = Causal {
            store: vec![(dot(1, 5), ())],
            context: CausalContext::new(),
        };
        let bytes = postcard::to_allocvec(&bad).expect("encodes");
        assert!(postcard::from_bytes::<Causal<DotFun<()>>>(&bytes).is_err());
    }

    #[test]
    fn decoding_refuses_a_dot_under_two_keys() {
        let bad = Causal {
            store: BTreeMap::from([(1u8, vec![(dot(1, 1), ())]), (2u8, vec![(dot(1, 1), ())])]),
            context: [dot(1, 1)].into_iter().collect(),
        };
        let bytes = postcard::to_allocvec(&bad).expect("encodes");
        assert!(postcard::from_bytes::<Causal<BTreeMap<u8, DotFun<()>>>>(&bytes).is_err());
    }
}
