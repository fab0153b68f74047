//! Bringing new events into the document text: Eg-walker's merge.
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

use crate::causal_graph::{CausalGraph, ConflictZone, Frontier, Lv, Side};
use crate::rope::Rope;
use crate::text::oplog::{OpKind, OpLog, OpRun};
use crate::text::tracker::{OutOfRange, Tracker};

/// An edit made to the text during a merge, with what is needed to take it back.
enum Undo {
    Inserted { at: usize, chars: usize },
    Removed { at: usize, text: String },
}

/// The text being edited by a merge, with its undo log.
struct Edits<'a> {
    text: &'a mut Rope,
    undo: Vec<Undo>,
}

impl Edits<'_> {
    fn insert(&mut self, at: usize, content: &str, chars: usize) -> Result<(), OutOfRange> {
        if at > self.text.len_chars() {
            return Err(OutOfRange);
        }
        self.text.insert(at, content);
        self.undo.push(Undo::Inserted { at, chars });
        Ok(())
    }

    fn remove(&mut self, at: usize, len: usize) -> Result<(), OutOfRange> {
        let end = at.checked_add(len).ok_or(OutOfRange)?;
        if end > self.text.len_chars() {
            return Err(OutOfRange);
        }
        let removed = self.text.slice(at, end);
        self.text.remove(at, end);
        self.undo.push(Undo::Removed { at, text: removed });
        Ok(())
    }

    fn roll_back(mut self) {
        while let Some(undo) = self.undo.pop() {
            match undo {
                Undo::Inserted { at, chars } => self.text.remove(at, at + chars),
                Undo::Removed { at, text } => self.text.insert(at, &text),
            }
        }
    }
}

/// Applies `op`, made in the version the text is at now, to the text.
fn apply_directly(edits: &mut Edits<'_>, log: &OpLog, op: &OpRun) -> Result<(), OutOfRange> {
    match op.kind {
        OpKind::Insert => edits.insert(op.pos, log.text_of(op), op.span.len()),
        OpKind::Delete => {
            let range = op.range();
            edits.remove(range.start, range.len())
        }
    }
}

/// Brings the events `from..graph.len()` into `text`, which is at version `version` (every
/// event before `from`). On error the text is unchanged.
pub(crate) fn merge_new_events(
    graph: &CausalGraph,
    log: &OpLog,
    text: &mut Rope,
    version: &Frontier,
    from: Lv,
) -> Result<(), OutOfRange> {
    let mut edits = Edits {
        text,
        undo: Vec::new(),
    };
    match merge_logged(graph, log, &mut edits, version, from) {
        Ok(()) => Ok(()),
        Err(error) => {
            edits.roll_back();
            Err(error)
        }
    }
}

fn merge_logged(
    graph: &CausalGraph,
    log: &OpLog,
    edits: &mut Edits<'_>,
    version: &Frontier,
    from: Lv,
) -> Result<(), OutOfRange> {
    let end = graph.len();
    let mut version = version.clone();
    let mut next = from;

    // Fast-forward while the new events follow the text's version exactly.
    while next < end {
        let Some(chain) = graph.run_containing(next) else {
            break;
        };
        let parents = graph.parents_of(next);
        if parents != version {
            break;
        }
        let chain_end = chain.span.end;
        for op in log.runs_in(next..chain_end) {
            apply_directly(edits, log, &op)?;
        }
        version = Frontier::single(chain_end - 1);
        next = chain_end;
    }
    if next == end {
        return Ok(());
    }

    // Replay the conflict zone; only the new events edit the text.
    let zone = graph.conflict_zone(&version, graph.frontier());
    let mut tracker = Tracker::new();
    replay(graph, log, &mut tracker, zone, |side, effect| {
        if side != Side::Theirs {
            return Ok(());
        }
        match effect {
            Effect::Insert { at, op } => edits.insert(at, log.text_of(op), op.span.len()),
            Effect::Delete { at, len } => edits.remove(at, len),
        }
    })?;
    Ok(())
}

/// What replaying an operation does to the effect (current) text.
enum Effect<'a> {
    Insert { at: usize, op: &'a OpRun },
    Delete { at: usize, len: usize },
}

/// Replays the events of `zone` in `tracker`, calling `effect` with each change to the effect
/// text and the side of the event that made it. Returns the prepare version at the end.
fn replay(
    graph: &CausalGraph,
    log: &OpLog,
    tracker: &mut Tracker,
    zone: ConflictZone,
    mut effect: impl FnMut(Side, Effect<'_>) -> Result<(), OutOfRange>,
) -> Result<Frontier, OutOfRange> {
    let mut prepare = zone.common.clone();
    for (span, side) in zone.spans {
        for chain in graph.runs_in(span) {
            move_prepare_version(graph, log, tracker, &mut prepare, &chain.parents);
            for op in log.runs_in(chain.span.clone()) {
                match op.kind {
                    OpKind::Insert => {
                        let at = tracker.insert(graph, &op)?;
                        effect(side, Effect::Insert { at, op: &op })?;
                    }
                    OpKind::Delete => {
                        for (at, len) in tracker.delete(&op)? {
                            effect(side, Effect::Delete { at, len })?;
                        }
                    }
                }
            }
            prepare = Frontier::single(chain.span.end - 1);
        }
    }
    Ok(prepare)
}

/// Where the position `index` of the text at version `from` is in the current text: the
/// position of the char that was at `index` (or, with `after_char`, just after the char before
/// it), following it through every edit since. Costs a replay of the events since the last
/// common point of `from` and the current version.
pub(crate) fn transform_position(
    graph: &CausalGraph,
    log: &OpLog,
    from: &Frontier,
    index: usize,
    after_char: bool,
) -> Result<usize, OutOfRange> {
    let zone = graph.conflict_zone(from, graph.frontier());
    let mut tracker = Tracker::new();
    let mut prepare = replay(graph, log, &mut tracker, zone, |_, _| Ok(()))?;
    move_prepare_version(graph, log, &mut tracker, &mut prepare, from);
    tracker.resolve(index, after_char)
}

/// Retreats and advances events so that the tracker's prepare version becomes `target`.
fn move_prepare_version(
    graph: &CausalGraph,
    log: &OpLog,
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
