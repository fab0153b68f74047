//! The merge tracker: the temporary CRDT state Eg-walker builds while replaying concurrent
//! events, and throws away afterwards.
//!
//! Each inserted character is an *item*, kept in document order, with two states:
//! - the **prepare** state: is the item in the version the event being replayed was made in
//!   (not inserted yet, inserted, or deleted by `n` events)? Moving between versions means
//!   retreating and advancing events, which only changes these counters;
//! - the **effect** state: is the item in the document as it is now (the text being built)?
//!   Once deleted there, it stays deleted.
//!
//! An insert finds its place in the prepare version by index, takes the item before it as its
//! left origin and the next item existing in the prepare version as its right origin, and then
//! orders itself among concurrent insertions at that place with the FugueMax rule (the YjsMod
//! integration of diamond-types, shown equivalent to FugueMax in Weidner, Gentle and Kleppmann,
//! "The Art of the Fugue", 2023). That rule never interleaves two runs of concurrently typed
//! text. The document before the replayed events is one placeholder run of items that exist in
//! every version replayed.
//!
//! Items are stored as runs (a typing burst is one run), in a plain vector. Every operation is
//! linear in the number of runs, which is fine for the concurrent sections replayed so far;
//! a B-tree can replace the vector behind the same methods.

use std::ops::Range;

use crate::causal_graph::{CausalGraph, Lv};
use crate::text::oplog::{OpKind, OpRun};

/// "No item": the start or end of the document as an origin.
const NONE: Lv = Lv::MAX;
/// The local versions standing for the characters of the document before the replay.
const PLACEHOLDER_START: Lv = Lv::MAX / 2;
const PLACEHOLDER_LEN: usize = Lv::MAX / 4;

/// Prepare state: not in the prepare version yet.
const NOT_INSERTED: u32 = 0;
/// Prepare state: in the prepare version and not deleted; higher values count deletions.
const INSERTED: u32 = 1;

/// Items `lv..lv + len`, each the left origin of the next, all with the same right origin and
/// states.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ItemRun {
    lv: Lv,
    len: usize,
    /// The left origin of the first item; later items' left origin is the item before.
    origin_left: Lv,
    origin_right: Lv,
    prepare: u32,
    deleted: bool,
}

impl ItemRun {
    /// Cuts the run after `at` items, returning the rest.
    fn split(&mut self, at: usize) -> ItemRun {
        let rest = ItemRun {
            lv: self.lv + at,
            len: self.len - at,
            origin_left: self.lv + at - 1,
            origin_right: self.origin_right,
            prepare: self.prepare,
            deleted: self.deleted,
        };
        self.len = at;
        rest
    }

    fn contains(&self, lv: Lv) -> bool {
        self.lv <= lv && lv < self.lv + self.len
    }

    fn visible_in_prepare(&self) -> bool {
        self.prepare == INSERTED
    }
}

/// Events `event..event + len` deleted items `target..target + len`; if `reversed`, event
/// `event + i` deleted item `target + len - 1 - i` (backspacing).
#[derive(Clone, Debug, PartialEq, Eq)]
struct DeleteTarget {
    event: Lv,
    len: usize,
    target: Lv,
    reversed: bool,
}

impl DeleteTarget {
    /// The items deleted by the events `events` (a sub-range of this record's).
    fn targets_of(&self, events: Range<Lv>) -> Range<Lv> {
        let (from, to) = (events.start - self.event, events.end - self.event);
        if self.reversed {
            self.target + self.len - to..self.target + self.len - from
        } else {
            self.target + from..self.target + to
        }
    }
}

/// An operation that cannot be replayed: it refers to text that is not there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutOfRange;

/// The replay state. See the module documentation.
#[derive(Clone, Debug)]
pub(crate) struct Tracker {
    items: Vec<ItemRun>,
    deletes: Vec<DeleteTarget>,
}

/// A place between items: before item `offset` of run `run` (`offset` < its length), or at the
/// very end when `run == items.len()`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cursor {
    run: usize,
    offset: usize,
}

impl Tracker {
    /// A tracker for replaying events after a version whose document the placeholder stands for.
    pub(crate) fn new() -> Tracker {
        Tracker {
            items: vec![ItemRun {
                lv: PLACEHOLDER_START,
                len: PLACEHOLDER_LEN,
                origin_left: NONE,
                origin_right: NONE,
                prepare: INSERTED,
                deleted: false,
            }],
            deletes: Vec::new(),
        }
    }

    /// The cursor just after the `pos`-th item visible in the prepare version, and how many
    /// items are visible in the effect state before it.
    fn find_prepare_pos(&self, pos: usize) -> Result<(Cursor, usize), OutOfRange> {
        if pos == 0 {
            return Ok((Cursor { run: 0, offset: 0 }, 0));
        }
        let (mut seen, mut effect) = (0, 0);
        for (i, run) in self.items.iter().enumerate() {
            if run.visible_in_prepare() && seen + run.len >= pos {
                let offset = pos - seen;
                if !run.deleted {
                    effect += offset;
                }
                return Ok((self.normalize(Cursor { run: i, offset }), effect));
            }
            if run.visible_in_prepare() {
                seen += run.len;
            }
            if !run.deleted {
                effect += run.len;
            }
        }
        Err(OutOfRange)
    }

    /// A cursor at the end of a run becomes the cursor at the start of the next.
    fn normalize(&self, cursor: Cursor) -> Cursor {
        if cursor.run < self.items.len() && cursor.offset == self.items[cursor.run].len {
            Cursor {
                run: cursor.run + 1,
                offset: 0,
            }
        } else {
            cursor
        }
    }

    /// The position of item `lv` among all items (for comparing origins), or `None` for NONE.
    fn raw_position(&self, lv: Lv) -> Option<usize> {
        if lv == NONE {
            return None;
        }
        let mut position = 0;
        for run in &self.items {
            if run.contains(lv) {
                return Some(position + (lv - run.lv));
            }
            position += run.len;
        }
        None
    }

    fn raw_position_of_cursor(&self, cursor: Cursor) -> usize {
        self.items[..cursor.run]
            .iter()
            .map(|r| r.len)
            .sum::<usize>()
            + cursor.offset
    }

    fn total_items(&self) -> usize {
        self.items.iter().map(|r| r.len).sum()
    }

    /// Splits runs so that `cursor` falls on a run boundary; returns the run index it is before.
    fn split_at(&mut self, cursor: Cursor) -> usize {
        if cursor.offset == 0 {
            return cursor.run;
        }
        let rest = self.items[cursor.run].split(cursor.offset);
        self.items.insert(cursor.run + 1, rest);
        cursor.run + 1
    }

    /// Replays the insert run `op` (events `op.span`) at its prepare position; returns where
    /// its text goes in the effect state.
    pub(crate) fn insert(&mut self, graph: &CausalGraph, op: &OpRun) -> Result<usize, OutOfRange> {
        let (cursor, effect_at_cursor) = self.find_prepare_pos(op.pos)?;
        let origin_left = if cursor.run == 0 && cursor.offset == 0 {
            NONE
        } else if cursor.offset > 0 {
            self.items[cursor.run].lv + cursor.offset - 1
        } else {
            let before = &self.items[cursor.run - 1];
            before.lv + before.len - 1
        };
        // The right origin: the first item from the cursor on that exists in the prepare version.
        let mut origin_right = NONE;
        let mut probe = cursor;
        while probe.run < self.items.len() {
            let run = &self.items[probe.run];
            if run.prepare != NOT_INSERTED {
                origin_right = run.lv + probe.offset;
                break;
            }
            probe = Cursor {
                run: probe.run + 1,
                offset: 0,
            };
        }

        // FugueMax / YjsMod: order among the concurrent items (not yet inserted in the prepare
        // version) that lie between the cursor and the right origin.
        let left_position = self.raw_position(origin_left);
        let right_position = self
            .raw_position(origin_right)
            .unwrap_or_else(|| self.total_items());
        let my_replica = graph.lv_to_dot(op.span.start).replica;
        let mut scan = cursor;
        let mut scan_position = self.raw_position_of_cursor(cursor);
        let mut scan_effect = effect_at_cursor;
        let (mut destination, mut destination_effect) = (cursor, effect_at_cursor);
        let mut scanning = false;
        while scan.run < self.items.len() && scan_position < right_position {
            let other = &self.items[scan.run];
            if other.prepare != NOT_INSERTED {
                break;
            }
            // Only the first item of a run needs the rule: every later one has the item before
            // it as left origin, which lies after our left origin, so it is skipped.
            let other_lv = other.lv + scan.offset;
            let other_left = if scan.offset == 0 {
                other.origin_left
            } else {
                other_lv - 1
            };
            let other_left_position = self.raw_position(other_left);
            let other_right_position = self
                .raw_position(other.origin_right)
                .unwrap_or_else(|| self.total_items());
            if other_left_position < left_position {
                break;
            }
            if other_left_position == left_position {
                if other_right_position < right_position {
                    scanning = true;
                } else if other_right_position == right_position {
                    if my_replica < graph.lv_to_dot(other_lv).replica {
                        break;
                    }
                    scanning = false;
                } else {
                    scanning = false;
                }
            }
            // Skip the rest of this run.
            let skipped = other.len - scan.offset;
            scan_position += skipped;
            if !other.deleted {
                scan_effect += skipped;
            }
            scan = Cursor {
                run: scan.run + 1,
                offset: 0,
            };
            if !scanning {
                destination = scan;
                destination_effect = scan_effect;
            }
        }

        let at = self.split_at(destination);
        self.items.insert(
            at,
            ItemRun {
                lv: op.span.start,
                len: op.span.len(),
                origin_left,
                origin_right,
                prepare: INSERTED,
                deleted: false,
            },
        );
        Ok(destination_effect)
    }

    /// Replays the delete run `op`: marks the items it deletes in the prepare version, and
    /// returns the effect ranges `(position, length)` newly deleted, to apply in order.
    pub(crate) fn delete(&mut self, op: &OpRun) -> Result<Vec<(usize, usize)>, OutOfRange> {
        let range = op.range();
        let (mut cursor, mut effect) = self.find_prepare_pos(range.start)?;
        // Skip items not visible in the prepare version up to the first visible one.
        let mut remaining = range.len();
        let mut pieces: Vec<(Lv, usize)> = Vec::new(); // item runs deleted, in document order
        let mut effect_ranges: Vec<(usize, usize)> = Vec::new();
        while remaining > 0 {
            if cursor.run >= self.items.len() {
                return Err(OutOfRange);
            }
            let run = &self.items[cursor.run];
            if !run.visible_in_prepare() {
                if !run.deleted {
                    effect += run.len - cursor.offset;
                }
                cursor = Cursor {
                    run: cursor.run + 1,
                    offset: 0,
                };
                continue;
            }
            let take = (run.len - cursor.offset).min(remaining);
            let index = self.split_at(cursor);
            if take < self.items[index].len {
                let rest = self.items[index].split(take);
                self.items.insert(index + 1, rest);
            }
            let item = &mut self.items[index];
            item.prepare += 1;
            pieces.push((item.lv, take));
            if !item.deleted {
                item.deleted = true;
                match effect_ranges.last_mut() {
                    Some((at, len)) if *at == effect => *len += take,
                    _ => effect_ranges.push((effect, take)),
                }
            }
            remaining -= take;
            cursor = Cursor {
                run: index + 1,
                offset: 0,
            };
        }
        // Which event deleted which item: forward runs in document order, backward reversed.
        let mut event = op.span.start;
        let ordered: Vec<(Lv, usize)> = if op.forward {
            pieces
        } else {
            pieces.into_iter().rev().collect()
        };
        for (target, len) in ordered {
            self.deletes.push(DeleteTarget {
                event,
                len,
                target,
                reversed: !op.forward,
            });
            event += len;
        }
        Ok(effect_ranges)
    }

    /// Takes the events of `op` out of the prepare version (retreat) or puts them back
    /// (advance).
    pub(crate) fn retreat_or_advance(&mut self, op: &OpRun, advance: bool) {
        match op.kind {
            OpKind::Insert => self.change_prepare(op.span.clone(), |state| {
                *state = if advance { INSERTED } else { NOT_INSERTED };
            }),
            OpKind::Delete => {
                let first = self
                    .deletes
                    .partition_point(|d| d.event + d.len <= op.span.start);
                let targets: Vec<Range<Lv>> = self.deletes[first..]
                    .iter()
                    .take_while(|d| d.event < op.span.end)
                    .map(|d| {
                        let events = d.event.max(op.span.start)..(d.event + d.len).min(op.span.end);
                        d.targets_of(events)
                    })
                    .collect();
                for items in targets {
                    self.change_prepare(items, |state| {
                        if advance {
                            *state += 1;
                        } else {
                            *state = state.saturating_sub(1);
                        }
                    });
                }
            }
        }
    }

    /// Applies `change` to the prepare state of the items `lvs`, splitting runs as needed.
    fn change_prepare(&mut self, lvs: Range<Lv>, change: impl Fn(&mut u32)) {
        let mut i = 0;
        while i < self.items.len() {
            let run = &self.items[i];
            let (start, end) = (run.lv, run.lv + run.len);
            if end <= lvs.start || start >= lvs.end {
                i += 1;
                continue;
            }
            if start < lvs.start {
                let rest = self.items[i].split(lvs.start - start);
                self.items.insert(i + 1, rest);
                i += 1;
                continue;
            }
            if end > lvs.end {
                let rest = self.items[i].split(lvs.end - start);
                self.items.insert(i + 1, rest);
            }
            change(&mut self.items[i].prepare);
            i += 1;
        }
    }
}
