//! Causal contexts: the set of events a replica has seen, kept compact.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Dot, ReplicaId, VersionVector};

/// A set of dots, stored as a version vector for the gap-free prefix of each replica's events
/// plus the few dots seen beyond a gap (the "dot cloud").
///
/// The delta-state CRDTs carry one of these next to their data (Almeida, Shoker and Baquero,
/// "Delta State Replicated Data Types", 2018). It is what lets an observed-remove set forget a
/// removed element completely: the context still remembers the element's dot, so a stale copy of
/// the add arriving later is recognised as already seen and ignored. No tombstone is needed.
///
/// A full replica's context is normally gap-free, so it costs one version vector. Deltas carry
/// small contexts made only of cloud dots. Every operation keeps the set compact: a dot joins the
/// version vector as soon as the events before it are present.
///
/// ```
/// use crdt_core::{CausalContext, Dot, ReplicaId};
///
/// let r = ReplicaId::from_u128(1);
/// let mut seen = CausalContext::new();
/// seen.insert(Dot::new(r, 1));
/// seen.insert(Dot::new(r, 3)); // a gap: 2 is missing
/// assert!(!seen.contains(Dot::new(r, 2)));
/// assert_eq!(seen.version().get(r), 1);
///
/// seen.insert(Dot::new(r, 2)); // fills the gap: all three move into the version vector
/// assert_eq!(seen.version().get(r), 3);
/// assert_eq!(seen.next_dot(r), Dot::new(r, 4));
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "CausalContextRepr", into = "CausalContextRepr")]
pub struct CausalContext {
    /// For each replica, the gap-free prefix of its events that has been seen.
    version: VersionVector,
    /// Dots seen beyond a gap; none is covered by or adjacent to `version`.
    cloud: BTreeSet<Dot>,
}

impl CausalContext {
    /// The empty context.
    pub const fn new() -> Self {
        CausalContext {
            version: VersionVector::new(),
            cloud: BTreeSet::new(),
        }
    }

    /// True if `dot` has been seen.
    pub fn contains(&self, dot: Dot) -> bool {
        self.version.contains(dot) || self.cloud.contains(&dot)
    }

    /// True if no dot has been seen.
    pub fn is_empty(&self) -> bool {
        self.version.is_empty() && self.cloud.is_empty()
    }

    /// The gap-free part of the context.
    pub fn version(&self) -> &VersionVector {
        &self.version
    }

    /// The dots seen beyond a gap, in order.
    pub fn dots_beyond_version(&self) -> impl Iterator<Item = Dot> + '_ {
        self.cloud.iter().copied()
    }

    /// The highest counter of `replica` seen, gaps or not.
    pub fn max_counter(&self, replica: ReplicaId) -> u64 {
        let in_cloud = self
            .cloud
            .range(Dot::new(replica, 0)..=Dot::new(replica, u64::MAX))
            .next_back()
            .map_or(0, |d| d.counter);
        self.version.get(replica).max(in_cloud)
    }

    /// The dot `replica`'s next event takes: one past every dot of it seen so far.
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        Dot::new(replica, self.max_counter(replica).saturating_add(1))
    }

    /// Adds `dot`; returns false if it was already present.
    pub fn insert(&mut self, dot: Dot) -> bool {
        if dot.counter == 0 || self.contains(dot) {
            return false;
        }
        let prefix = self.version.get(dot.replica);
        if dot.counter == prefix + 1 {
            self.version.observe(dot);
            self.absorb_cloud_of(dot.replica);
        } else {
            self.cloud.insert(dot);
        }
        true
    }

    /// Joins `other` into this context (set union).
    pub fn join(&mut self, other: &CausalContext) {
        self.version.merge(&other.version);
        if self.cloud.is_empty() && other.cloud.is_empty() {
            return;
        }
        let cloud = std::mem::take(&mut self.cloud);
        let mut all: Vec<Dot> = cloud
            .into_iter()
            .chain(other.cloud.iter().copied())
            .collect();
        all.sort_unstable();
        all.dedup();
        // In (replica, counter) order, each dot either extends the prefix or stays beyond a gap.
        for dot in all {
            let prefix = self.version.get(dot.replica);
            if dot.counter <= prefix {
                continue;
            }
            if dot.counter == prefix + 1 {
                self.version.observe(dot);
            } else {
                self.cloud.insert(dot);
            }
        }
    }

    /// Moves the cloud dots of `replica` that now continue the prefix into the version vector.
    fn absorb_cloud_of(&mut self, replica: ReplicaId) {
        loop {
            let next = self.version.next_dot(replica);
            if !self.cloud.remove(&next) {
                break;
            }
            self.version.observe(next);
        }
    }
}

impl FromIterator<Dot> for CausalContext {
    fn from_iter<I: IntoIterator<Item = Dot>>(iter: I) -> Self {
        let mut context = CausalContext::new();
        for dot in iter {
            context.insert(dot);
        }
        context
    }
}

impl From<VersionVector> for CausalContext {
    fn from(version: VersionVector) -> Self {
        CausalContext {
            version,
            cloud: BTreeSet::new(),
        }
    }
}

impl fmt::Debug for CausalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.cloud.is_empty() {
            write!(f, "{:?}", self.version)
        } else {
            write!(f, "{:?}+{:?}", self.version, self.cloud)
        }
    }
}

#[derive(Serialize, Deserialize)]
struct CausalContextRepr {
    version: VersionVector,
    cloud: Vec<Dot>,
}

impl From<CausalContext> for CausalContextRepr {
    fn from(context: CausalContext) -> Self {
        CausalContextRepr {
            version: context.version,
            cloud: context.cloud.into_iter().collect(),
        }
    }
}

/// Why a decoded causal context was refused: its dot cloud was not in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonCanonicalCausalContext;

impl fmt::Display for NonCanonicalCausalContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "causal context dots beyond the version vector must be sorted, unique, and separated from it by a gap",
        )
    }
}

impl std::error::Error for NonCanonicalCausalContext {}

impl TryFrom<CausalContextRepr> for CausalContext {
    type Error = NonCanonicalCausalContext;

    fn try_from(repr: CausalContextRepr) -> Result<Self, Self::Error> {
        let sorted = repr.cloud.windows(2).all(|w| w[0] < w[1]);
        let beyond_gap = repr
            .cloud
            .iter()
            .all(|d| d.counter > repr.version.get(d.replica).saturating_add(1));
        if !(sorted && beyond_gap) {
            return Err(NonCanonicalCausalContext);
        }
        Ok(CausalContext {
            version: repr.version,
            cloud: repr.cloud.into_iter().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(r: u128, c: u64) -> Dot {
        Dot::new(ReplicaId::from_u128(r), c)
    }

    #[test]
    fn join_compacts_dots_that_close_a_gap() {
        let mut a: CausalContext = [dot(1, 1), dot(1, 3), dot(2, 5)].into_iter().collect();
        let b: CausalContext = [dot(1, 2), dot(2, 1)].into_iter().collect();
        a.join(&b);
        assert_eq!(a.version().get(ReplicaId::from_u128(1)), 3);
        assert_eq!(a.version().get(ReplicaId::from_u128(2)), 1);
        assert_eq!(a.dots_beyond_version().collect::<Vec<_>>(), vec![dot(2, 5)]);
    }

    #[test]
    fn equal_sets_have_equal_representations() {
        let a: CausalContext = [dot(1, 3), dot(1, 1), dot(1, 2)].into_iter().collect();
        let mut b: CausalContext = [dot(1, 2)].into_iter().collect();
        b.join(&[dot(1, 3), dot(1, 1)].into_iter().collect());
        assert_eq!(a, b);
    }

    #[test]
    fn next_dot_skips_dots_beyond_a_gap() {
        let context: CausalContext = [dot(1, 1), dot(1, 7)].into_iter().collect();
        assert_eq!(context.next_dot(ReplicaId::from_u128(1)), dot(1, 8));
    }

    #[test]
    fn decoding_refuses_a_cloud_dot_adjacent_to_the_version() {
        let repr = CausalContextRepr {
            version: [(ReplicaId::from_u128(1), 2)].into_iter().collect(),
            cloud: vec![dot(1, 3)],
        };
        let bytes = postcard::to_allocvec(&repr).expect("encodes");
        assert!(postcard::from_bytes::<CausalContext>(&bytes).is_err());
    }
}
