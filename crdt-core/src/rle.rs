//! Run-length encoding: the shared vocabulary of every compact structure in the crate.
//!
//! Editing histories are mostly runs: a user types forty characters in a row, each inserted
//! right after the previous one, each event the child of the previous one. Storing such a run
//! as one entry instead of forty is what keeps memory and encodings small. The causal graph,
//! the operation log and the merge tracker all store runs that implement these traits, and
//! [`RleVec`] is the sorted, auto-merging vector of runs most of them live in.

use std::ops::Range;

/// Something that covers a number of unit items (characters, events, ...).
pub(crate) trait HasLength {
    /// How many units; never zero for a stored run.
    fn len(&self) -> usize;
}

/// A run that can be cut in two.
pub(crate) trait SplitableSpan: HasLength + Sized {
    /// Keeps the first `at` units in `self` and returns the rest. `0 < at < len`.
    fn truncate(&mut self, at: usize) -> Self;
}

/// A run that can absorb the run right after it when they continue each other.
pub(crate) trait MergeableSpan: Sized {
    /// True if `next` continues `self` so that the two can be one run.
    fn can_append(&self, next: &Self) -> bool;
    /// Appends `next`; only called when `can_append` said yes.
    fn append(&mut self, next: Self);
}

/// A run that knows which keys (local versions, positions) it starts at.
pub(crate) trait HasRleKey {
    /// The key of the run's first unit; runs in an [`RleVec`] are sorted by it.
    fn rle_key(&self) -> usize;
}

/// A vector of runs sorted by key, covering keys without overlap; pushing a run that continues
/// the last one extends it instead of adding an entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RleVec<T>(pub(crate) Vec<T>);

impl<T> Default for RleVec<T> {
    fn default() -> Self {
        RleVec(Vec::new())
    }
}

impl<T: HasLength + MergeableSpan + HasRleKey> RleVec<T> {
    /// Appends `run`, merging it into the last run when it continues it.
    pub(crate) fn push(&mut self, run: T) {
        if let Some(last) = self.0.last_mut()
            && last.can_append(&run)
        {
            last.append(run);
            return;
        }
        self.0.push(run);
    }

    /// The index of the run containing `key`, if any.
    pub(crate) fn find_index(&self, key: usize) -> Option<usize> {
        let index = self.0.partition_point(|run| run.rle_key() <= key);
        let candidate = index.checked_sub(1)?;
        let run = &self.0[candidate];
        (key < run.rle_key() + run.len()).then_some(candidate)
    }

    /// The run containing `key` and the offset of `key` inside it.
    pub(crate) fn find(&self, key: usize) -> Option<(&T, usize)> {
        self.find_index(key).map(|i| {
            let run = &self.0[i];
            (run, key - run.rle_key())
        })
    }

    /// The key just past the last run (0 when empty).
    pub(crate) fn end(&self) -> usize {
        self.0.last().map_or(0, |run| run.rle_key() + run.len())
    }

    /// The runs overlapping `range`, each cut to fit inside it.
    pub(crate) fn iter_range(&self, range: Range<usize>) -> impl Iterator<Item = T> + '_
    where
        T: SplitableSpan + Clone,
    {
        let first = self
            .0
            .partition_point(|run| run.rle_key() + run.len() <= range.start);
        self.0[first..]
            .iter()
            .take_while(move |run| run.rle_key() < range.end)
            .map(move |run| {
                let mut run = run.clone();
                let start = run.rle_key();
                if start < range.start {
                    run = run.truncate(range.start - start);
                }
                let start = run.rle_key();
                if start + run.len() > range.end {
                    run.truncate(range.end - start);
                }
                run
            })
    }

    /// Removes every key from `end` on, cutting the run that straddles it.
    pub(crate) fn truncate_keys(&mut self, end: usize)
    where
        T: SplitableSpan,
    {
        while self.0.last().is_some_and(|run| run.rle_key() >= end) {
            self.0.pop();
        }
        if let Some(last) = self.0.last_mut() {
            let last_end = last.rle_key() + last.len();
            if last_end > end {
                last.truncate(end - last.rle_key());
            }
        }
    }

    /// How many runs are stored.
    #[cfg(test)]
    pub(crate) fn num_runs(&self) -> usize {
        self.0.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, PartialEq)]
    struct Span(Range<usize>);
    impl HasLength for Span {
        fn len(&self) -> usize {
            self.0.len()
        }
    }
    impl SplitableSpan for Span {
        fn truncate(&mut self, at: usize) -> Self {
            let rest = Span(self.0.start + at..self.0.end);
            self.0.end = self.0.start + at;
            rest
        }
    }
    impl MergeableSpan for Span {
        fn can_append(&self, next: &Self) -> bool {
            self.0.end == next.0.start
        }
        fn append(&mut self, next: Self) {
            self.0.end = next.0.end;
        }
    }
    impl HasRleKey for Span {
        fn rle_key(&self) -> usize {
            self.0.start
        }
    }

    #[test]
    fn push_merges_and_find_locates() {
        let mut runs = RleVec::default();
        runs.push(Span(0..3));
        runs.push(Span(3..5));
        runs.push(Span(7..9));
        assert_eq!(runs.num_runs(), 2);
        assert_eq!(runs.find(4), Some((&Span(0..5), 4)));
        assert_eq!(runs.find(5), None);
        assert_eq!(runs.find(8), Some((&Span(7..9), 1)));
        assert_eq!(
            runs.iter_range(2..8).collect::<Vec<_>>(),
            vec![Span(2..5), Span(7..8)]
        );
    }
}
