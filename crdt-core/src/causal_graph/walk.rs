//! Walking the causal graph backwards from two versions at once.
//!
//! Both questions merging asks are answered by one walk: start from the heads of versions `a`
//! and `b`, repeatedly take the newest event still queued (local versions are a topological
//! order, so a max-heap visits children before parents), and mark it as reached from `a` only,
//! from `b` only, or from both. Whole runs are taken at once, stopping early only where another
//! queued event falls inside the run.

use std::collections::BinaryHeap;
use std::ops::Range;

use super::{CausalGraph, Frontier, Lv};

/// Which of the two versions of a walk an event belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Side {
    /// Only in the first version.
    Ours,
    /// Only in the second version.
    Theirs,
    /// In both.
    Shared,
}

/// What merging two versions must replay: everything after their last common point.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ConflictZone {
    /// A version every replayed event descends from (a single event, or the root).
    pub(crate) common: Frontier,
    /// The events after `common`, in ascending runs, each with the side it belongs to.
    pub(crate) spans: Vec<(Range<Lv>, Side)>,
}

impl CausalGraph {
    /// The walk itself. With `to_single_point`, it goes on until one shared event (or the root)
    /// is all that is left, reporting shared events on the way; otherwise it stops as soon as
    /// nothing but shared events is queued. Returns the last common point in the first mode.
    fn walk(
        &self,
        a: &[Lv],
        b: &[Lv],
        to_single_point: bool,
        mut visit: impl FnMut(Range<Lv>, Side),
    ) -> Frontier {
        let mut queue: BinaryHeap<(Lv, Side)> = BinaryHeap::with_capacity(a.len() + b.len() + 4);
        for &lv in a {
            queue.push((lv, Side::Ours));
        }
        for &lv in b {
            queue.push((lv, Side::Theirs));
        }
        let mut unshared = queue.len();
        // A branch that reached the root without meeting the other version: no event of the
        // graph is common to everything, so the walk must go down to the root.
        let mut reached_root = false;

        while let Some((lv, mut side)) = queue.pop() {
            if side != Side::Shared {
                unshared -= 1;
            }
            while let Some(&(next, next_side)) = queue.peek() {
                if next != lv {
                    break;
                }
                queue.pop();
                if next_side != Side::Shared {
                    unshared -= 1;
                }
                if next_side != side {
                    side = Side::Shared;
                }
            }
            if to_single_point
                && let Some(base) = &self.base
                && lv < base.len
            {
                // Below the base of a shallow graph (this is the newest event still queued):
                // what is left is in both versions (every version a shallow graph merges holds
                // the base) and its operations are gone. The base is the common point.
                return base.frontier.clone();
            }
            if side == Side::Shared {
                if to_single_point && queue.is_empty() && !reached_root {
                    return Frontier::single(lv);
                }
                if !to_single_point && unshared == 0 {
                    return Frontier::root();
                }
            }
            let Some(run) = self.run_containing(lv) else {
                // Not an event of this graph: callers only pass known versions.
                continue;
            };
            let low = match queue.peek() {
                Some(&(next, _)) if next >= run.span.start => next + 1,
                _ => run.span.start,
            };
            visit(low..lv + 1, side);
            if side != Side::Shared {
                unshared += if low > run.span.start {
                    1
                } else {
                    run.parents.as_slice().len()
                };
            }
            if low > run.span.start {
                queue.push((low - 1, side));
            } else {
                reached_root |= run.parents.is_root();
                // One by one: `extend` rebuilds the heap, which costs more for a few parents.
                for &parent in run.parents.as_slice() {
                    queue.push((parent, side));
                }
            }
        }
        Frontier::root()
    }

    /// The events in version `a` but not `b`, and in `b` but not `a`, as ascending runs.
    pub(crate) fn diff(&self, a: &Frontier, b: &Frontier) -> (Vec<Range<Lv>>, Vec<Range<Lv>>) {
        let (mut only_a, mut only_b) = (Vec::new(), Vec::new());
        if a == b {
            return (only_a, only_b);
        }
        self.walk(a.as_slice(), b.as_slice(), false, |span, side| match side {
            Side::Ours => push_descending(&mut only_a, span),
            Side::Theirs => push_descending(&mut only_b, span),
            Side::Shared => {}
        });
        only_a.reverse();
        only_b.reverse();
        (only_a, only_b)
    }

    /// The events to replay to merge version `b` into version `a`: every event of either after
    /// their last single common point.
    pub(crate) fn conflict_zone(&self, a: &Frontier, b: &Frontier) -> ConflictZone {
        let mut spans: Vec<(Range<Lv>, Side)> = Vec::new();
        let common = self.walk(a.as_slice(), b.as_slice(), true, |span, side| {
            match spans.last_mut() {
                Some((last, last_side)) if *last_side == side && last.start == span.end => {
                    last.start = span.start;
                }
                _ => spans.push((span, side)),
            }
        });
        spans.reverse();
        ConflictZone { common, spans }
    }

    /// True if event `lv` is in version `frontier` (is one of its events or an ancestor).
    #[cfg(test)]
    pub(crate) fn version_contains(&self, frontier: &Frontier, lv: Lv) -> bool {
        let mut queue: BinaryHeap<Lv> = frontier.as_slice().iter().copied().collect();
        while let Some(top) = queue.pop() {
            while queue.peek() == Some(&top) {
                queue.pop();
            }
            if top < lv {
                return false;
            }
            let Some(run) = self.run_containing(top) else {
                continue;
            };
            if run.span.start <= lv {
                return true;
            }
            queue.extend(run.parents.as_slice().iter().copied());
        }
        false
    }
}

/// Adds `span` to runs collected in descending order, joining it to the previous if adjacent.
fn push_descending(runs: &mut Vec<Range<Lv>>, span: Range<Lv>) {
    match runs.last_mut() {
        Some(last) if last.start == span.end => last.start = span.start,
        _ => runs.push(span),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ReplicaId;

    /// a: 0..3, then b branches from 1 with 3..5, a continues from 2 with 5..7, merge 7 of both.
    fn forked() -> CausalGraph {
        let mut graph = CausalGraph::default();
        let a = graph.agent(ReplicaId::from_u128(1));
        let b = graph.agent(ReplicaId::from_u128(2));
        graph.add_local(a, 3, &Frontier::root());
        graph.add_local(b, 2, &Frontier::single(1));
        graph.add_local(a, 2, &Frontier::single(2));
        graph.add_local(a, 1, &Frontier::from_unsorted(&[4, 6]));
        graph
    }

    #[test]
    fn diff_of_two_branches() {
        let graph = forked();
        let (only_a, only_b) = graph.diff(&Frontier::single(6), &Frontier::single(4));
        assert_eq!(only_a, vec![2..3, 5..7]);
        assert_eq!(only_b, vec![3..5]);
        let (only_a, only_b) = graph.diff(&Frontier::single(7), &Frontier::single(4));
        assert_eq!(only_a, vec![2..3, 5..8]);
        assert!(only_b.is_empty());
    }

    #[test]
    fn conflict_zone_goes_back_to_the_fork() {
        let graph = forked();
        let zone = graph.conflict_zone(&Frontier::single(6), &Frontier::single(4));
        assert_eq!(zone.common, Frontier::single(1));
        assert_eq!(
            zone.spans,
            vec![(2..3, Side::Ours), (3..5, Side::Theirs), (5..7, Side::Ours)]
        );
        // Merging 7 into 4: the events 5..7 did not see 3..5, so replay goes back to the fork
        // and includes the shared 3..5 (needed to retreat them while replaying 5..7).
        let zone = graph.conflict_zone(&Frontier::single(4), &Frontier::single(7));
        assert_eq!(zone.common, Frontier::single(1));
        assert_eq!(
            zone.spans,
            vec![
                (2..3, Side::Theirs),
                (3..5, Side::Shared),
                (5..8, Side::Theirs)
            ]
        );
    }

    #[test]
    fn a_branch_from_the_root_makes_the_root_common() {
        let mut graph = CausalGraph::default();
        let a = graph.agent(ReplicaId::from_u128(1));
        let b = graph.agent(ReplicaId::from_u128(2));
        graph.add_local(a, 1, &Frontier::root()); // 0
        graph.add_local(b, 2, &Frontier::root()); // 1..3, concurrent with 0
        let zone = graph.conflict_zone(&Frontier::single(0), &Frontier::from_unsorted(&[0, 2]));
        assert_eq!(zone.common, Frontier::root());
        assert_eq!(zone.spans, vec![(0..1, Side::Shared), (1..3, Side::Theirs)]);
    }

    #[test]
    fn containment() {
        let graph = forked();
        assert!(graph.version_contains(&Frontier::single(4), 1));
        assert!(!graph.version_contains(&Frontier::single(4), 2));
        assert!(graph.version_contains(&Frontier::single(7), 3));
        assert!(!graph.version_contains(&Frontier::root(), 0));
    }
}
