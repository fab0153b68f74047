//! The operation log of a text: what each event did, as the user did it (by index).
//!
//! Eg-walker keeps operations exactly as they were made, "insert `abc` at 17", "delete at 40",
//! with positions in the version the event's author saw (its parents). They are stored as runs:
//! typing forward is one insert run, pressing backspace repeatedly one backward delete run,
//! pressing delete repeatedly one forward delete run. Inserted content is kept in one arena in
//! event order, so an insert run's content is a contiguous range of it.

use std::ops::Range;
use std::sync::Mutex;

use crate::causal_graph::Lv;
use crate::rle::{HasLength, HasRleKey, MergeableSpan, RleVec, SplitableSpan};
use crate::sequence::content::{Arena, Content};
use crate::sequence::lanes::MergeCache;

/// Whether an operation inserts or deletes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpKind {
    Insert,
    Delete,
}

/// One operation per event of `span`.
///
/// - `Insert`: event `span.start + i` inserts char `i` of the run's text at `pos + i`.
/// - `Delete`, `forward`: every event deletes the char at `pos` (the delete key held down): the
///   run removes the chars `pos..pos + len` of the version before it.
/// - `Delete`, not `forward`: event `span.start + i` deletes at `pos - i` (backspace held down):
///   the run removes the chars `pos + 1 - len..pos + 1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OpRun {
    pub(crate) span: Range<Lv>,
    pub(crate) kind: OpKind,
    pub(crate) pos: usize,
    pub(crate) forward: bool,
    /// For inserts, the run's content as a unit range of the log's arena (one unit per
    /// event).
    pub(crate) content: Range<usize>,
}

impl OpRun {
    /// The chars the run covers in the version before it: where an insert run ends up, or what
    /// a delete run removes.
    pub(crate) fn range(&self) -> Range<usize> {
        let len = self.span.len();
        if self.forward {
            self.pos..self.pos + len
        } else {
            self.pos + 1 - len..self.pos + 1
        }
    }
}

impl HasLength for OpRun {
    fn len(&self) -> usize {
        self.span.len()
    }
}

impl HasRleKey for OpRun {
    fn rle_key(&self) -> usize {
        self.span.start
    }
}

impl MergeableSpan for OpRun {
    fn can_append(&self, next: &Self) -> bool {
        if next.span.start != self.span.end || next.kind != self.kind {
            return false;
        }
        let (len, next_len) = (self.span.len(), next.span.len());
        match self.kind {
            OpKind::Insert => next.pos == self.pos + len && next.content.start == self.content.end,
            OpKind::Delete => {
                let forward_run = (self.forward || len == 1)
                    && (next.forward || next_len == 1)
                    && next.pos == self.pos;
                let backward_run =
                    (!self.forward || len == 1) && next_len == 1 && next.pos + len == self.pos;
                forward_run || backward_run
            }
        }
    }

    fn append(&mut self, next: Self) {
        let len = self.span.len();
        if self.kind == OpKind::Delete && len == 1 {
            self.forward = next.pos == self.pos;
        }
        self.span.end = next.span.end;
        self.content.end = next.content.end;
    }
}

impl SplitableSpan for OpRun {
    /// Cuts after `at` events (and `at` units of content, for inserts).
    fn truncate(&mut self, at: usize) -> Self {
        let split = self.span.start + at;
        let pos = match (self.kind, self.forward) {
            (OpKind::Insert, _) => self.pos + at,
            (OpKind::Delete, true) => self.pos,
            (OpKind::Delete, false) => self.pos - at,
        };
        let rest = OpRun {
            span: split..self.span.end,
            kind: self.kind,
            pos,
            forward: self.forward,
            content: match self.kind {
                OpKind::Insert => self.content.start + at..self.content.end,
                OpKind::Delete => 0..0,
            },
        };
        self.span.end = split;
        if self.kind == OpKind::Insert {
            self.content.end = self.content.start + at;
        }
        rest
    }
}

/// Every operation of one sequence, and the content it inserted.
pub(crate) struct OpLog<C: Content> {
    pub(crate) ops: RleVec<OpRun>,
    /// Inserted content of every insert, in event order.
    pub(crate) content: Arena<C>,
    /// The replay state of the last merge into this sequence, for the next one
    /// ([`MergeCache`]). It lives here because the log is what every merge of the sequence
    /// (of a [`Text`](crate::Text), a [`List`](crate::List) or a document container) is given,
    /// by shared reference; hence the lock, which is only taken to take the cache out and put
    /// it back. Not part of the log's value: clones start without it.
    merge_cache: Mutex<Option<Box<MergeCache>>>,
}

impl<C: Content> Clone for OpLog<C> {
    fn clone(&self) -> Self {
        OpLog {
            ops: self.ops.clone(),
            content: self.content.clone(),
            merge_cache: Mutex::new(None),
        }
    }
}

impl<C: Content> Default for OpLog<C> {
    fn default() -> Self {
        OpLog {
            ops: RleVec::default(),
            content: Arena::default(),
            merge_cache: Mutex::new(None),
        }
    }
}

impl<C: Content> OpLog<C> {
    /// Records that events `span` inserted `units` at `pos` (forward, one unit per event).
    pub(crate) fn push_insert(&mut self, span: Range<Lv>, pos: usize, units: &C::Slice) {
        let content = self.content.push(units, span.len());
        self.ops.push(OpRun {
            span,
            kind: OpKind::Insert,
            pos,
            forward: true,
            content,
        });
    }

    /// Appends a run whose content range points into the arena already, as its own entry:
    /// for runs that are maximal already (decoded snapshots), skipping the merge check.
    pub(crate) fn push_run_unmerged(&mut self, run: OpRun) {
        self.ops.0.push(run);
    }

    /// Records that events `span` deleted, as described on [`OpRun`].
    pub(crate) fn push_delete(&mut self, span: Range<Lv>, pos: usize, forward: bool) {
        self.ops.push(OpRun {
            span,
            kind: OpKind::Delete,
            pos,
            forward,
            content: 0..0,
        });
    }

    /// Takes the kept replay state out (see [`MergeCache`]); `None` if there is none.
    pub(crate) fn take_merge_cache(&self) -> Option<MergeCache> {
        // A panic while the lock was held cannot leave the cache half-changed (it is only
        // moved in and out), so a poisoned lock is used as it is.
        let mut slot = self.merge_cache.lock().unwrap_or_else(|p| p.into_inner());
        slot.take().map(|cache| *cache)
    }

    /// Keeps `cache` for the next merge (or drops the kept one, with `None`).
    pub(crate) fn store_merge_cache(&self, cache: Option<MergeCache>) {
        let mut slot = self.merge_cache.lock().unwrap_or_else(|p| p.into_inner());
        *slot = cache.map(Box::new);
    }

    /// Drops the kept replay state: the document is about to change without it (a local
    /// edit), so it would only hold memory until the next merge finds it stale.
    pub(crate) fn clear_merge_cache(&mut self) {
        *self
            .merge_cache
            .get_mut()
            .unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Forgets the operations of events from `lv` on (undoing a failed update).
    pub(crate) fn truncate(&mut self, lv: Lv) {
        // The kept replay state may hold the forgotten events.
        self.clear_merge_cache();
        if let Some(index) = self.ops.0.iter().rposition(|run| run.span.start < lv) {
            let run = &mut self.ops.0[index];
            if run.span.end > lv {
                run.truncate(lv - run.span.start);
            }
            self.ops.0.truncate(index + 1);
        } else {
            self.ops.0.clear();
        }
        let content_end = self
            .ops
            .0
            .iter()
            .rev()
            .find(|run| run.kind == OpKind::Insert)
            .map_or(0, |run| run.content.end);
        self.content.truncate(content_end);
    }

    /// The operation runs of the events `range` (events without an operation here are skipped),
    /// cut to the range, with insert runs' content ranges cut to match.
    pub(crate) fn runs_in(&self, range: Range<Lv>) -> impl Iterator<Item = OpRun> + '_ {
        let first = self
            .ops
            .0
            .partition_point(|run| run.span.end <= range.start);
        self.ops.0[first..]
            .iter()
            .take_while(move |run| run.span.start < range.end)
            .map(move |run| {
                let mut run = run.clone();
                if run.span.start < range.start {
                    run = run.truncate(range.start - run.span.start);
                }
                if run.span.end > range.end {
                    run.truncate(range.end - run.span.start);
                }
                if run.kind == OpKind::Delete {
                    run.content = 0..0;
                }
                run
            })
    }

    /// A copy of an insert run's content.
    pub(crate) fn content_of(&self, run: &OpRun) -> C::Units {
        self.content.copy(run.content.clone())
    }

    /// An insert run's content, borrowed, looked up from where the previous lookup ended
    /// (`near`): cheap when runs are read in the order they were logged, as replays do.
    pub(crate) fn content_slice_near(&self, run: &OpRun, near: &mut (usize, usize)) -> &C::Slice {
        self.content.get_near(run.content.clone(), near)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::sequence::content::TextContent;

    #[test]
    fn typing_and_backspacing_make_few_runs() {
        let mut log = OpLog::<TextContent>::default();
        log.push_insert(0..1, 0, "h");
        log.push_insert(1..2, 1, "é");
        log.push_insert(2..3, 2, "y");
        assert_eq!(log.ops.num_runs(), 1);
        log.push_delete(3..4, 2, true);
        log.push_delete(4..5, 1, true);
        log.push_delete(5..6, 0, true);
        assert_eq!(log.ops.num_runs(), 2);
        let runs: Vec<OpRun> = log.runs_in(1..5).collect();
        assert_eq!(log.content_of(&runs[0]), "éy");
        assert_eq!(runs[1].range(), 1..3);
        assert!(!runs[1].forward);
        log.push_delete(6..7, 0, true);
        log.push_delete(7..8, 0, true);
        assert_eq!(log.ops.num_runs(), 3);
    }
}
