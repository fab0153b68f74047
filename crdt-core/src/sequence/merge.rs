//! Bringing new events into the current document: Eg-walker's merge.
//!
//! New events whose parents are exactly the document's version apply as they are: their
//! positions are positions in the current text ("fast-forward"; all of a sequential history).
//! The first event that was made concurrently with something in the document ends the fast path:
//! from there the conflict zone (everything after the last common point of the document and the
//! new events) is replayed in a [`Tracker`], old events only to rebuild the CRDT state, new ones
//! also transformed into edits of the text.
//!
//! Every edit made to the text is logged, so a merge that meets an impossible operation (from a
//! corrupt or malicious peer) is undone completely.

use std::ops::Range;

use crate::causal_graph::{CausalGraph, ConflictZone, Frontier, Lv, Side};
use crate::sequence::content::Content;
use crate::sequence::lanes::{Effect, Lanes, MergeCache};
use crate::sequence::oplog::{OpKind, OpLog, OpRun};
use crate::sequence::tracker::{OutOfRange, Tracker, VersionDiff};

/// An edit made to the document during a merge, with what is needed to take it back (and to
/// tell listeners what changed).
pub(crate) enum Edit<C: Content> {
    /// `len` units inserted at `at`: the units `content` of the log's arena.
    Inserted {
        at: usize,
        len: usize,
        content: std::ops::Range<usize>,
    },
    /// `units` removed at `at`.
    Removed { at: usize, units: C::Units },
}

/// Takes back `edits` (made in order) from `doc`, newest first.
pub(crate) fn roll_back<C: Content>(doc: &mut C::Doc, edits: Vec<Edit<C>>) {
    for edit in edits.into_iter().rev() {
        match edit {
            Edit::Inserted { at, len, .. } => {
                C::doc_remove(doc, at, len);
            }
            Edit::Removed { at, units } => {
                C::doc_insert(doc, at, C::as_slice(&units));
            }
        }
    }
}

/// The document being edited by a merge, with its undo log.
struct Edits<'a, C: Content> {
    doc: &'a mut C::Doc,
    undo: Vec<Edit<C>>,
    /// Whether to log the edits (a checkout builds a throwaway document and needs no undo).
    logged: bool,
    /// Where the last insert's content ended in the log's arena (unit, storage offset).
    near: (usize, usize),
}

impl<C: Content> Edits<'_, C> {
    /// Inserts the content of insert run `op` at `at`.
    fn insert(&mut self, at: usize, log: &OpLog<C>, op: &OpRun) -> Result<(), OutOfRange> {
        if at > C::doc_len(self.doc) {
            return Err(OutOfRange);
        }
        C::doc_insert(self.doc, at, log.content_slice_near(op, &mut self.near));
        if self.logged {
            self.undo.push(Edit::Inserted {
                at,
                len: op.span.len(),
                content: op.content.clone(),
            });
        }
        Ok(())
    }

    fn remove(&mut self, at: usize, len: usize) -> Result<(), OutOfRange> {
        let end = at.checked_add(len).ok_or(OutOfRange)?;
        if end > C::doc_len(self.doc) {
            return Err(OutOfRange);
        }
        if self.logged {
            let units = C::doc_remove(self.doc, at, len);
            self.undo.push(Edit::Removed { at, units });
        } else {
            C::doc_delete(self.doc, at, len);
        }
        Ok(())
    }
}

/// Applies `op`, made in the version the document is at now, to the document.
fn apply_directly<C: Content>(
    edits: &mut Edits<'_, C>,
    log: &OpLog<C>,
    op: &OpRun,
) -> Result<(), OutOfRange> {
    match op.kind {
        OpKind::Insert => edits.insert(op.pos, log, op),
        OpKind::Delete => {
            let range = op.range();
            edits.remove(range.start, range.len())
        }
    }
}

/// Brings the events `from..graph.len()` into `doc`, which is at version `version` (every
/// event before `from`). Returns the edits made, in order (to take back with [`roll_back`] if
/// a larger batch fails, and to report). On error the document is unchanged.
///
/// The replay state of a merge that needed one is kept in `log` ([`MergeCache`]); the next
/// merge resumes from it when it can, so a replica receiving concurrent changes one at a time
/// replays each change once instead of everything since the last common point.
pub(crate) fn merge_new_events<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    doc: &mut C::Doc,
    version: &Frontier,
    from: Lv,
) -> Result<Vec<Edit<C>>, OutOfRange> {
    let new = from..graph.len();
    let cached = log.take_merge_cache();
    if new.is_empty() {
        log.store_merge_cache(cached);
        return Ok(Vec::new());
    }
    // New events that follow the document's version exactly fast-forward, and the document
    // moves without the trackers: the cache is dropped.
    let resumed = cached
        .filter(|_| graph.parents_of(from) != *version)
        .and_then(|cache| cache.resume(graph, log, version, from, C::doc_len(doc)));
    let mut edits = Edits {
        doc,
        undo: Vec::new(),
        logged: true,
        near: (0, 0),
    };
    let outcome = match resumed {
        Some((mut lanes, common)) => {
            replay_new(graph, log, &mut edits, &mut lanes, new).map(|()| Some((lanes, common)))
        }
        None => merge_logged(
            graph,
            log,
            &mut edits,
            version,
            std::slice::from_ref(&new),
            graph.frontier(),
        ),
    };
    match outcome {
        Ok(kept) => {
            if let Some((lanes, common)) = kept {
                let doc_len = C::doc_len(edits.doc);
                log.store_merge_cache(MergeCache::keep(lanes, common, graph, doc_len));
            }
            Ok(edits.undo)
        }
        Err(error) => {
            roll_back(edits.doc, edits.undo);
            Err(error)
        }
    }
}

/// Replays the events `new`, all new to the document, in `lanes`, which hold every event
/// before them: each chain's edits go to the document.
fn replay_new<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    edits: &mut Edits<'_, C>,
    lanes: &mut Lanes,
    new: Range<Lv>,
) -> Result<(), OutOfRange> {
    for chain in graph.runs_in(new) {
        lanes.replay_chain(graph, log, &chain, |effect| {
            apply_effect(edits, log, effect)
        })?;
    }
    Ok(())
}

/// Makes a replayed change to the effect document in the document itself.
fn apply_effect<C: Content>(
    edits: &mut Edits<'_, C>,
    log: &OpLog<C>,
    effect: Effect<'_>,
) -> Result<(), OutOfRange> {
    match effect {
        Effect::Insert { at, op } => edits.insert(at, log, op),
        Effect::Delete { at, len } => edits.remove(at, len),
    }
}

/// The document as it was at version `target`, whose events are `events` (ascending spans,
/// causally closed): the merge of those events into an empty document. Only the history
/// within `target` is read; sequential stretches cost plain document edits, concurrent ones a
/// replay of their conflict zone.
pub(crate) fn checkout<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    events: &[Range<Lv>],
    target: &Frontier,
) -> Result<C::Doc, OutOfRange> {
    let mut doc = C::Doc::default();
    let mut edits = Edits {
        doc: &mut doc,
        undo: Vec::new(),
        logged: false,
        near: (0, 0),
    };
    merge_logged(graph, log, &mut edits, &Frontier::root(), events, target)?;
    Ok(doc)
}

/// Brings the events `new` (ascending spans, none of them in `version`) into the document at
/// `version`, ending at version `target` (which includes `version` and `new`). Returns the
/// replay state and the version it started from if the conflict zone had to be replayed.
fn merge_logged<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    edits: &mut Edits<'_, C>,
    version: &Frontier,
    new: &[Range<Lv>],
    target: &Frontier,
) -> Result<Option<(Lanes, Frontier)>, OutOfRange> {
    let mut version = version.clone();
    let mut spans = new.iter().filter(|span| !span.is_empty());
    let mut current = spans.next().cloned();

    // Fast-forward while the new events follow the text's version exactly.
    while let Some(span) = current.as_mut() {
        let next = span.start;
        let Some(chain) = graph.run_containing(next) else {
            break;
        };
        if graph.parents_of(next) != version {
            break;
        }
        let chain_end = chain.span.end.min(span.end);
        for op in log.runs_in(next..chain_end) {
            apply_directly(edits, log, &op)?;
        }
        version = Frontier::single(chain_end - 1);
        span.start = chain_end;
        if span.start == span.end {
            current = spans.next().cloned();
        }
    }
    if current.is_none() {
        return Ok(None);
    }

    // Replay the conflict zone; only the new events edit the text.
    let zone = graph.conflict_zone(&version, target);
    let common = zone.common.clone();
    let lanes = replay(graph, log, zone, |side, effect| {
        if side != Side::Theirs {
            return Ok(());
        }
        apply_effect(edits, log, effect)
    })?;
    Ok(Some((lanes, common)))
}

/// Replays the events of `zone` in fresh [`Lanes`], calling `effect` with each change to the
/// effect text and the side of the event that made it.
fn replay<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    zone: ConflictZone,
    mut effect: impl FnMut(Side, Effect<'_>) -> Result<(), OutOfRange>,
) -> Result<Lanes, OutOfRange> {
    let mut lanes = Lanes::new(zone.common.clone());
    for (span, side) in zone.spans {
        for chain in graph.runs_in(span) {
            lanes.replay_chain(graph, log, &chain, |e| effect(side, e))?;
        }
    }
    Ok(lanes)
}

/// Where the position `index` of the document at version `from` is in the current one: the
/// position of the char that was at `index` (or, with `after_char`, just after the char before
/// it), following it through every edit since. Costs a replay of the events since the last
/// common point of `from` and the current version.
pub(crate) fn transform_position<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    from: &Frontier,
    index: usize,
    after_char: bool,
) -> Result<usize, OutOfRange> {
    tracker_from(graph, log, from)?.resolve(index, after_char)
}

/// A tracker whose prepare version is `from` and whose effect version is the current one.
/// Costs a replay of the events since the last common point of `from` and the current version.
pub(crate) fn tracker_from<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    from: &Frontier,
) -> Result<Tracker, OutOfRange> {
    let zone = graph.conflict_zone(from, graph.frontier());
    let lanes = replay(graph, log, zone, |_, _| Ok(()))?;
    Ok(lanes.into_tracker(graph, log, from))
}

/// How the current document differs from the document at version `from` (of length
/// `from_len`), element by element: what both have, what is new since, and what was deleted
/// since (with its index at `from`).
pub(crate) fn compare_with_version<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    from: &Frontier,
    from_len: usize,
    current_len: usize,
) -> Result<Vec<VersionDiff>, OutOfRange> {
    Ok(tracker_from(graph, log, from)?.compare(from_len, current_len))
}

/// Retreats and advances events so that the tracker's prepare version becomes `target`.
pub(crate) fn move_prepare_version<C: Content>(
    graph: &CausalGraph,
    log: &OpLog<C>,
    tracker: &mut Tracker,
    prepare: &mut Frontier,
    target: &Frontier,
) {
    if prepare == target {
        return;
    }
    let (retreat, advance) = graph.diff(prepare, target);
    // Newest first when retreating, oldest first when advancing: an insert must exist before
    // the delete of the same item is counted, and stop existing after it is uncounted.
    for span in retreat.iter().rev() {
        let ops: Vec<OpRun> = log.runs_in(span.clone()).collect();
        for op in ops.iter().rev() {
            tracker.retreat_or_advance(op, false);
        }
    }
    for span in advance {
        for op in log.runs_in(span) {
            tracker.retreat_or_advance(&op, true);
        }
    }
    *prepare = target.clone();
}
