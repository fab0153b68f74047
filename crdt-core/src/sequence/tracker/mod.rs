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
//! Items are stored as runs (a typing burst is one run) in a B-tree ([`items`]) that finds
//! positions in either version and items by id in O(log n).

mod items;

use std::ops::Range;

use items::Items;

use crate::causal_graph::{CausalGraph, Lv};
use crate::sequence::oplog::{OpKind, OpRun};

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

/// Where [`Tracker::insert_placed`] put new items: their raw position (items of any state
/// before them) and the run as another tracker, whose prepare version lacks them, stores it.
#[derive(Clone, Debug)]
pub(crate) struct Placed {
    raw: usize,
    run: ItemRun,
}

/// One stretch of [`Tracker::compare`]'s answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum VersionDiff {
    /// This many items in both versions.
    Both(usize),
    /// This many items only in the effect version.
    OnlyEffect(usize),
    /// Items `index..index + len` of the prepare version, not in the effect version.
    OnlyPrepare { index: usize, len: usize },
}

/// An operation that cannot be replayed: it refers to text that is not there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct OutOfRange;

/// The replay state. See the module documentation.
///
/// Cloning gives an independent copy, which [`crate::sequence::lanes`] uses to keep the same
/// items at several prepare versions at once.
#[derive(Clone)]
pub(crate) struct Tracker {
    items: Items,
    /// Which items each delete event deleted, sorted by event.
    deletes: Vec<DeleteTarget>,
}

impl Tracker {
    /// A tracker for replaying events after a version whose document the placeholder stands for.
    pub(crate) fn new() -> Tracker {
        Tracker {
            items: Items::new(ItemRun {
                lv: PLACEHOLDER_START,
                len: PLACEHOLDER_LEN,
                origin_left: NONE,
                origin_right: NONE,
                prepare: INSERTED,
                deleted: false,
            }),
            deletes: Vec::new(),
        }
    }

    /// The position of item `lv` among all items, `None` for the document start (NONE).
    fn raw_position(&self, lv: Lv) -> Option<usize> {
        if lv == NONE {
            return None;
        }
        self.items.cursor_at(lv).map(|c| self.items.raw_position(c))
    }

    /// Replays the insert run `op` (events `op.span`) at its prepare position; returns where
    /// its text goes in the effect state, and where the new items went, so that trackers
    /// holding the same items at other prepare versions can take them too
    /// ([`Tracker::mirror_insert`]).
    pub(crate) fn insert_placed(
        &mut self,
        graph: &CausalGraph,
        op: &OpRun,
    ) -> Result<(usize, Placed), OutOfRange> {
        let (cursor, effect_at_cursor, origin_left) =
            self.items.after_prepare_pos(op.pos).ok_or(OutOfRange)?;
        // The right origin: the first item from the cursor on that exists in the prepare version.
        let probe = self.items.next_present(cursor);
        let origin_right = if self.items.is_end(probe) {
            NONE
        } else {
            self.items.run(probe).lv + probe.offset
        };

        // FugueMax / YjsMod: order among the concurrent items (not yet inserted in the prepare
        // version) that lie between the cursor and the right origin.
        let left_position = self.raw_position(origin_left);
        let right_position = self
            .raw_position(origin_right)
            .unwrap_or_else(|| self.items.total_raw());
        let my_replica = graph.lv_to_dot(op.span.start).replica;
        let mut scan = cursor;
        let mut scan_position = self.items.raw_position(cursor);
        let mut scan_effect = effect_at_cursor;
        let (mut destination, mut destination_effect) = (cursor, effect_at_cursor);
        let mut scanning = false;
        while !self.items.is_end(scan) && scan_position < right_position {
            let other = self.items.run(scan);
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
                .unwrap_or_else(|| self.items.total_raw());
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
            scan = self.items.next_run(scan);
            if !scanning {
                destination = scan;
                destination_effect = scan_effect;
            }
        }

        let run = ItemRun {
            lv: op.span.start,
            len: op.span.len(),
            origin_left,
            origin_right,
            prepare: INSERTED,
            deleted: false,
        };
        let placed = Placed {
            raw: self.items.raw_position(destination),
            run: ItemRun {
                prepare: NOT_INSERTED,
                ..run.clone()
            },
        };
        self.items.insert(destination, run);
        Ok((destination_effect, placed))
    }

    /// Takes items another tracker with the same items placed ([`Tracker::insert_placed`]),
    /// as not yet in this tracker's prepare version (its version lacks the inserting events).
    pub(crate) fn mirror_insert(&mut self, placed: &Placed) {
        let cursor = self.items.cursor_at_raw(placed.raw);
        self.items.insert(cursor, placed.run.clone());
    }

    /// How many delete records there are: the records from here on are those of later
    /// [`Tracker::delete`] calls, which [`Tracker::mirror_deletes`] copies.
    pub(crate) fn delete_records(&self) -> usize {
        self.deletes.len()
    }

    /// Takes the deletes another tracker with the same items replayed from its record
    /// `from` on: the items leave the effect version, and this tracker's prepare version
    /// (which lacks the deleting events) is unchanged.
    pub(crate) fn mirror_deletes(&mut self, other: &Tracker, from: usize) {
        for record in &other.deletes[from..] {
            let items = record.targets_of(record.event..record.event + record.len);
            let mut at = items.start;
            while at < items.end {
                match self
                    .items
                    .change_one_run(at..items.end, |run| run.deleted = true)
                {
                    Some(next) => at = next,
                    None => break,
                }
            }
            self.deletes.push(record.clone());
        }
    }

    /// Replays the delete run `op`: marks the items it deletes in the prepare version, and
    /// returns the effect ranges `(position, length)` newly deleted, to apply in order.
    pub(crate) fn delete(&mut self, op: &OpRun) -> Result<Vec<(usize, usize)>, OutOfRange> {
        let range = op.range();
        let (mut cursor, mut effect, _) = self
            .items
            .after_prepare_pos(range.start)
            .ok_or(OutOfRange)?;
        let mut remaining = range.len();
        let mut pieces: Vec<(Lv, usize)> = Vec::new(); // item runs deleted, in document order
        let mut effect_ranges: Vec<(usize, usize)> = Vec::new();
        while remaining > 0 {
            if self.items.is_end(cursor) {
                return Err(OutOfRange);
            }
            let run = self.items.run(cursor);
            if !run.visible_in_prepare() {
                // Not in the prepare version: skip it (but count it if it is in the text).
                if !run.deleted {
                    effect += run.len - cursor.offset;
                }
                cursor = self.items.next_run(cursor);
                continue;
            }
            let take = (run.len - cursor.offset).min(remaining);
            let first = run.lv + cursor.offset;
            let was_deleted = run.deleted;
            self.items.change_one_run(first..first + take, |item| {
                item.prepare += 1;
                item.deleted = true;
            });
            pieces.push((first, take));
            if !was_deleted {
                // Deleted items leave the effect text, so the next piece starts at `effect` too.
                match effect_ranges.last_mut() {
                    Some((at, len)) if *at == effect => *len += take,
                    _ => effect_ranges.push((effect, take)),
                }
            }
            remaining -= take;
            let last = self.items.cursor_at(first + take - 1).ok_or(OutOfRange)?;
            cursor = self.items.next_run(last);
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

    /// Where the char at `index` of the prepare version is in the effect version (its position
    /// there, or where it would be if deleted). With `after_char`, the char before `index`
    /// instead, and the position just after it. The placeholder stands for an endless text, so
    /// an index at the end resolves to the end.
    pub(crate) fn resolve(&self, index: usize, after_char: bool) -> Result<usize, OutOfRange> {
        let (cursor, _, before) = self.items.after_prepare_pos(index).ok_or(OutOfRange)?;
        if after_char {
            if before == NONE {
                return Ok(0);
            }
            let at = self.items.cursor_at(before).ok_or(OutOfRange)?;
            let visible = !self.items.run(at).deleted;
            return Ok(self.items.effect_position(at) + usize::from(visible));
        }
        // The next item visible in the prepare version.
        let mut probe = cursor;
        while !self.items.is_end(probe) && !self.items.run(probe).visible_in_prepare() {
            probe = self.items.next_run(probe);
        }
        Ok(self.items.effect_position(probe))
    }

    /// How the effect version differs from the prepare version, in document order: runs of
    /// items in both, items only in the effect version, items only in the prepare version
    /// (with their index there). `prepare_len` and `effect_len` are the lengths of the two
    /// versions (the placeholder stands for an endless text).
    pub(crate) fn compare(&self, prepare_len: usize, effect_len: usize) -> Vec<VersionDiff> {
        let mut out: Vec<VersionDiff> = Vec::new();
        let (mut p, mut e) = (0, 0);
        let mut cursor = self.items.first();
        while (p < prepare_len || e < effect_len) && !self.items.is_end(cursor) {
            let run = self.items.run(cursor);
            let len = run.len - cursor.offset;
            let step = match (run.visible_in_prepare(), !run.deleted) {
                (true, true) => {
                    let n = len.min(prepare_len - p).min(effect_len - e);
                    p += n;
                    e += n;
                    VersionDiff::Both(n)
                }
                (true, false) => {
                    let n = len.min(prepare_len - p);
                    p += n;
                    VersionDiff::OnlyPrepare {
                        index: p - n,
                        len: n,
                    }
                }
                (false, true) => {
                    let n = len.min(effect_len - e);
                    e += n;
                    VersionDiff::OnlyEffect(n)
                }
                (false, false) => VersionDiff::Both(0),
            };
            match (out.last_mut(), step) {
                (_, VersionDiff::Both(0) | VersionDiff::OnlyEffect(0)) => {}
                (_, VersionDiff::OnlyPrepare { len: 0, .. }) => {}
                (Some(VersionDiff::Both(a)), VersionDiff::Both(b)) => *a += b,
                (Some(VersionDiff::OnlyEffect(a)), VersionDiff::OnlyEffect(b)) => *a += b,
                (
                    Some(VersionDiff::OnlyPrepare { index, len }),
                    VersionDiff::OnlyPrepare { index: i, len: n },
                ) if *index + *len == i => *len += n,
                (_, step) => out.push(step),
            }
            cursor = self.items.next_run(cursor);
        }
        out
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

    /// Every item in document order, each with whether it is in the effect version, for an
    /// effect version of `len` items: the placeholder's items are included as far as they are
    /// in that document or deleted from it (the placeholder stands for an endless text). Undo
    /// follows elements by identity with it.
    pub(crate) fn items_in_order(&self, len: usize) -> Vec<(Lv, bool)> {
        let mut out = Vec::new();
        let mut visible = 0;
        let mut cursor = self.items.first();
        while !self.items.is_end(cursor) {
            let run = self.items.run(cursor);
            let mut n = run.len - cursor.offset;
            if !run.deleted {
                if run.lv >= PLACEHOLDER_START {
                    n = n.min(len.saturating_sub(visible));
                }
                visible += n;
            }
            let start = run.lv + cursor.offset;
            out.extend((start..start + n).map(|lv| (lv, !run.deleted)));
            cursor = self.items.next_run(cursor);
        }
        out
    }

    /// The item at `index` of the prepare version (a placeholder item stands for the element
    /// at its index of the document the replay started from), `None` if there is none.
    pub(crate) fn prepare_item(&self, index: usize) -> Option<Lv> {
        let (_, _, item) = self.items.after_prepare_pos(index + 1)?;
        (item != NONE).then_some(item)
    }

    /// Every (delete event, item it deleted) pair, by event.
    pub(crate) fn delete_pairs(&self) -> Vec<(Lv, Lv)> {
        let mut out = Vec::new();
        for d in &self.deletes {
            for event in d.event..d.event + d.len {
                let target = d.targets_of(event..event + 1).start;
                out.push((event, target));
            }
        }
        out
    }

    /// Applies `change` to the prepare state of the items `lvs`, one run at a time.
    fn change_prepare(&mut self, lvs: Range<Lv>, change: impl Fn(&mut u32)) {
        let mut at = lvs.start;
        while at < lvs.end {
            match self
                .items
                .change_one_run(at..lvs.end, |run| change(&mut run.prepare))
            {
                Some(next) => at = next,
                None => return,
            }
        }
    }
}
