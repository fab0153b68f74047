//! Frontiers: a version named by its maximal events.

use smallvec::SmallVec;

/// A local version number: the index of an event in the order this replica learned of it.
///
/// Local versions are private to one replica (another replica numbers the same events
/// differently); on the wire events are named by [`Dot`](crate::Dot)s instead. Every event's
/// parents have smaller local versions, so ascending order is a topological order.
pub(crate) type Lv = usize;

/// A version given by its frontier: the events of the version that no other event of the version
/// descends from (Automerge calls them heads). Sorted ascending, no duplicates.
///
/// Almost always one or two entries, so they live inline.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
pub(crate) struct Frontier(pub(crate) SmallVec<[Lv; 2]>);

impl Frontier {
    /// The version before any event.
    pub(crate) fn root() -> Self {
        Frontier(SmallVec::new())
    }

    /// The version whose only head is `lv`.
    pub(crate) fn single(lv: Lv) -> Self {
        let mut heads = SmallVec::new();
        heads.push(lv);
        Frontier(heads)
    }

    /// A frontier from heads in any order (duplicates removed). The caller vouches that no head
    /// is an ancestor of another.
    pub(crate) fn from_unsorted(heads: &[Lv]) -> Self {
        let mut heads: SmallVec<[Lv; 2]> = heads.iter().copied().collect();
        heads.sort_unstable();
        heads.dedup();
        Frontier(heads)
    }

    /// The heads, ascending.
    pub(crate) fn as_slice(&self) -> &[Lv] {
        &self.0
    }

    /// True for the version before any event.
    pub(crate) fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The frontier after adding the events `span` (a chain, each the child of the previous)
    /// whose first event has `parents`: the parents stop being heads, the last event becomes one.
    pub(crate) fn advance(&mut self, parents: &[Lv], span_last: Lv) {
        if self.0.len() == 1 && parents.len() == 1 && self.0[0] == parents[0] {
            // The overwhelmingly common case: extending a linear history.
            self.0[0] = span_last;
            return;
        }
        self.0.retain(|head| !parents.contains(head));
        let at = self.0.partition_point(|&head| head < span_last);
        self.0.insert(at, span_last);
    }
}
