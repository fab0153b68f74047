//! Version vectors: how much of each replica's history a replica has seen.

use core::cmp::Ordering;
use core::fmt;

use serde::{Deserialize, Serialize};

use super::{Dot, DotRange, ReplicaId};

/// For each replica, how many of its events have been seen: a summary of a causally closed set
/// of events.
///
/// Yjs calls this a state vector; the papers call it a version vector or vector clock. An entry
/// `r: n` means "the events `1..=n` of replica `r`, and nothing later". Replicas without an entry
/// have count 0.
///
/// The entries are kept sorted by replica in one vector, so equal vectors have equal memory
/// layouts: hashing, comparing and encoding are single linear passes (what server-to-server
/// anti-entropy needs, see `ROADMAP.md`).
///
/// ```
/// use crdt_core::{Causality, Dot, ReplicaId, VersionVector};
///
/// let (a, b) = (ReplicaId::from_u128(1), ReplicaId::from_u128(2));
/// let mut mine = VersionVector::new();
/// mine.increment(a);
/// mine.increment(a);
/// let mut theirs = VersionVector::new();
/// theirs.increment(b);
///
/// assert_eq!(mine.compare(&theirs), Causality::Concurrent);
/// assert!(mine.contains(Dot::new(a, 2)));
///
/// // What do they lack of what I have? a's events 1 and 2.
/// let missing: Vec<_> = mine.missing_from(&theirs).collect();
/// assert_eq!(missing[0].counters, 1..3);
///
/// mine.merge(&theirs);
/// assert_eq!(mine.compare(&theirs), Causality::After);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<(ReplicaId, u64)>", into = "Vec<(ReplicaId, u64)>")]
pub struct VersionVector {
    /// Sorted by replica, each replica once, every count above zero.
    entries: Vec<(ReplicaId, u64)>,
}

/// How two versions relate in the happened-before order.
///
/// ```
/// use crdt_core::{Causality, ReplicaId, VersionVector};
///
/// let mut old = VersionVector::new();
/// old.increment(ReplicaId::from_u128(1));
/// let mut new = old.clone();
/// new.increment(ReplicaId::from_u128(1));
/// assert_eq!(old.compare(&new), Causality::Before);
/// assert_eq!(new.compare(&old), Causality::After);
/// assert_eq!(new.compare(&new), Causality::Equal);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Causality {
    /// Every event of the first is in the second, which has more.
    Before,
    /// The same events.
    Equal,
    /// Every event of the second is in the first, which has more.
    After,
    /// Each has events the other lacks.
    Concurrent,
}

impl VersionVector {
    /// The empty version: no events seen.
    pub const fn new() -> Self {
        VersionVector {
            entries: Vec::new(),
        }
    }

    fn position(&self, replica: ReplicaId) -> Result<usize, usize> {
        self.entries.binary_search_by(|(r, _)| r.cmp(&replica))
    }

    /// How many of `replica`'s events have been seen.
    pub fn get(&self, replica: ReplicaId) -> u64 {
        match self.position(replica) {
            Ok(i) => self.entries[i].1,
            Err(_) => 0,
        }
    }

    /// True if the event `dot` has been seen.
    pub fn contains(&self, dot: Dot) -> bool {
        dot.counter != 0 && dot.counter <= self.get(dot.replica)
    }

    /// True if every event in `other` has been seen here.
    pub fn includes(&self, other: &VersionVector) -> bool {
        other.entries.iter().all(|&(r, n)| self.get(r) >= n)
    }

    /// Records that `replica`'s events up to `counter` have been seen (never lowers an entry).
    pub fn advance(&mut self, replica: ReplicaId, counter: u64) {
        if counter == 0 {
            return;
        }
        match self.position(replica) {
            Ok(i) => {
                let entry = &mut self.entries[i].1;
                *entry = (*entry).max(counter);
            }
            Err(i) => self.entries.insert(i, (replica, counter)),
        }
    }

    /// Records that `dot`, and so every earlier event of its replica, has been seen.
    pub fn observe(&mut self, dot: Dot) {
        self.advance(dot.replica, dot.counter);
    }

    /// The dot `replica`'s next event would take.
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        Dot::new(replica, self.get(replica).saturating_add(1))
    }

    /// Takes the next dot of `replica` and records it as seen.
    pub fn increment(&mut self, replica: ReplicaId) -> Dot {
        let dot = self.next_dot(replica);
        self.observe(dot);
        dot
    }

    /// Joins `other` into this version: the entry-wise maximum.
    pub fn merge(&mut self, other: &VersionVector) {
        if other.entries.is_empty() {
            return;
        }
        if self.entries.is_empty() {
            self.entries.clone_from(&other.entries);
            return;
        }
        let mut merged = Vec::with_capacity(self.entries.len().max(other.entries.len()));
        let (mut i, mut j) = (0, 0);
        while i < self.entries.len() && j < other.entries.len() {
            let (a, b) = (self.entries[i], other.entries[j]);
            match a.0.cmp(&b.0) {
                Ordering::Less => {
                    merged.push(a);
                    i += 1;
                }
                Ordering::Greater => {
                    merged.push(b);
                    j += 1;
                }
                Ordering::Equal => {
                    merged.push((a.0, a.1.max(b.1)));
                    i += 1;
                    j += 1;
                }
            }
        }
        merged.extend_from_slice(&self.entries[i..]);
        merged.extend_from_slice(&other.entries[j..]);
        self.entries = merged;
    }

    /// The events seen by both: the entry-wise minimum.
    ///
    /// Once every replica has acknowledged a version, the meet of those versions is causally
    /// stable: no replica can still send an event concurrent with it.
    pub fn meet(&self, other: &VersionVector) -> VersionVector {
        VersionVector {
            entries: self
                .entries
                .iter()
                .filter_map(|&(r, n)| {
                    let m = n.min(other.get(r));
                    (m > 0).then_some((r, m))
                })
                .collect(),
        }
    }

    /// How this version relates to `other`.
    pub fn compare(&self, other: &VersionVector) -> Causality {
        let (mut some_less, mut some_greater) = (false, false);
        let (mut i, mut j) = (0, 0);
        let (a, b) = (&self.entries, &other.entries);
        while i < a.len() || j < b.len() {
            let order = match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) => x.0.cmp(&y.0),
                (Some(_), None) => Ordering::Less,
                (None, _) => Ordering::Greater,
            };
            match order {
                // Only `self` has this replica.
                Ordering::Less => {
                    some_greater = true;
                    i += 1;
                }
                // Only `other` has this replica.
                Ordering::Greater => {
                    some_less = true;
                    j += 1;
                }
                Ordering::Equal => {
                    match a[i].1.cmp(&b[j].1) {
                        Ordering::Less => some_less = true,
                        Ordering::Greater => some_greater = true,
                        Ordering::Equal => {}
                    }
                    i += 1;
                    j += 1;
                }
            }
            if some_less && some_greater {
                return Causality::Concurrent;
            }
        }
        match (some_less, some_greater) {
            (false, false) => Causality::Equal,
            (true, false) => Causality::Before,
            (false, true) => Causality::After,
            (true, true) => Causality::Concurrent,
        }
    }

    /// The events this version has and `other` lacks, as one run per replica.
    ///
    /// This is what to send a peer whose version is `other`.
    pub fn missing_from<'a>(
        &'a self,
        other: &'a VersionVector,
    ) -> impl Iterator<Item = DotRange> + 'a {
        self.entries.iter().filter_map(move |&(replica, n)| {
            let theirs = other.get(replica);
            (theirs < n).then(|| DotRange {
                replica,
                counters: theirs + 1..n + 1,
            })
        })
    }

    /// The entries `(replica, count)` in replica order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (ReplicaId, u64)> + '_ {
        self.entries.iter().copied()
    }

    /// How many replicas have an entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if no event has been seen.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The number of events covered (the sum of the entries).
    pub fn total_events(&self) -> u64 {
        self.entries
            .iter()
            .fold(0u64, |sum, &(_, n)| sum.saturating_add(n))
    }
}

impl PartialOrd for VersionVector {
    /// The happened-before order; `None` for concurrent versions.
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.compare(other) {
            Causality::Before => Some(Ordering::Less),
            Causality::Equal => Some(Ordering::Equal),
            Causality::After => Some(Ordering::Greater),
            Causality::Concurrent => None,
        }
    }
}

impl FromIterator<(ReplicaId, u64)> for VersionVector {
    /// Builds a version from `(replica, count)` pairs in any order, keeping the highest count.
    fn from_iter<I: IntoIterator<Item = (ReplicaId, u64)>>(iter: I) -> Self {
        let mut vv = VersionVector::new();
        for (replica, counter) in iter {
            vv.advance(replica, counter);
        }
        vv
    }
}

impl fmt::Debug for VersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(r, n)| (r, n)))
            .finish()
    }
}

impl From<VersionVector> for Vec<(ReplicaId, u64)> {
    fn from(vv: VersionVector) -> Self {
        vv.entries
    }
}

/// Why a decoded version vector was refused: its entries were not in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NonCanonicalVersionVector;

impl fmt::Display for NonCanonicalVersionVector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("version vector entries must be sorted by replica, unique, and above zero")
    }
}

impl std::error::Error for NonCanonicalVersionVector {}

impl TryFrom<Vec<(ReplicaId, u64)>> for VersionVector {
    type Error = NonCanonicalVersionVector;

    /// Accepts only the canonical form, so that equal versions always have equal encodings.
    fn try_from(entries: Vec<(ReplicaId, u64)>) -> Result<Self, Self::Error> {
        let sorted = entries.windows(2).all(|w| w[0].0 < w[1].0);
        let positive = entries.iter().all(|&(_, n)| n > 0);
        if sorted && positive {
            Ok(VersionVector { entries })
        } else {
            Err(NonCanonicalVersionVector)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vv(pairs: &[(u128, u64)]) -> VersionVector {
        pairs
            .iter()
            .map(|&(r, n)| (ReplicaId::from_u128(r), n))
            .collect()
    }

    #[test]
    fn compare_covers_all_four_relations() {
        assert_eq!(vv(&[]).compare(&vv(&[])), Causality::Equal);
        assert_eq!(vv(&[]).compare(&vv(&[(1, 1)])), Causality::Before);
        assert_eq!(
            vv(&[(1, 2), (2, 1)]).compare(&vv(&[(1, 2)])),
            Causality::After
        );
        assert_eq!(
            vv(&[(1, 2)]).compare(&vv(&[(1, 1), (2, 1)])),
            Causality::Concurrent
        );
        assert_eq!(
            vv(&[(1, 2), (3, 1)]).partial_cmp(&vv(&[(2, 1), (3, 1)])),
            None
        );
    }

    #[test]
    fn missing_from_lists_runs_per_replica() {
        let mine = vv(&[(1, 5), (2, 3), (3, 1)]);
        let theirs = vv(&[(1, 2), (2, 3), (4, 9)]);
        let missing: Vec<_> = mine.missing_from(&theirs).collect();
        assert_eq!(
            missing,
            vec![
                DotRange {
                    replica: ReplicaId::from_u128(1),
                    counters: 3..6
                },
                DotRange {
                    replica: ReplicaId::from_u128(3),
                    counters: 1..2
                },
            ]
        );
    }

    #[test]
    fn meet_is_entrywise_minimum() {
        let a = vv(&[(1, 5), (2, 3)]);
        let b = vv(&[(1, 2), (3, 4)]);
        assert_eq!(a.meet(&b), vv(&[(1, 2)]));
    }

    #[test]
    fn decoding_refuses_non_canonical_entries() {
        let unsorted = vec![(ReplicaId::from_u128(2), 1), (ReplicaId::from_u128(1), 1)];
        let bytes = postcard::to_allocvec(&unsorted).expect("encodes");
        assert!(postcard::from_bytes::<VersionVector>(&bytes).is_err());
        let zero = vec![(ReplicaId::from_u128(1), 0)];
        let bytes = postcard::to_allocvec(&zero).expect("encodes");
        assert!(postcard::from_bytes::<VersionVector>(&bytes).is_err());
    }
}
