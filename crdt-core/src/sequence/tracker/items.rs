//! The tracker's items in document order: a B-tree of item runs with an index by local version.
//!
//! Each internal node keeps, beside each child, the child's [`Counts`]: items in total, items
//! visible in the prepare version, items visible in the effect version. That finds "the n-th
//! item visible in the prepare version" in O(log n). An index from local versions to leaves, and
//! parent pointers, find an item by id and its position in O(log n). Leaves are linked, so
//! scanning forward from a cursor is cheap.
//!
//! This is generic plumbing for the merge algorithm in the parent module; the only thing it
//! knows of CRDTs is the shape of [`ItemRun`].

use std::collections::BTreeMap;

use super::{INSERTED, ItemRun, NONE, NOT_INSERTED};
use crate::causal_graph::Lv;

const LEAF_CAPACITY: usize = 32;
const NODE_CAPACITY: usize = 16;
const NO_PARENT: usize = usize::MAX;

/// How many items a subtree holds, in total and visible in each version.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(super) struct Counts {
    pub(super) raw: usize,
    pub(super) prepare: usize,
    pub(super) effect: usize,
    /// Items inserted in the prepare version, deleted there or not: finds an insert's right
    /// origin without walking over every concurrent item after it.
    pub(super) present: usize,
}

impl Counts {
    fn of(run: &ItemRun) -> Counts {
        Counts {
            raw: run.len,
            prepare: if run.prepare == INSERTED { run.len } else { 0 },
            effect: if run.deleted { 0 } else { run.len },
            present: if run.prepare == NOT_INSERTED {
                0
            } else {
                run.len
            },
        }
    }

    fn add(&mut self, other: Counts) {
        self.raw += other.raw;
        self.prepare += other.prepare;
        self.effect += other.effect;
        self.present += other.present;
    }
}

#[derive(Clone)]
struct Leaf {
    runs: Vec<ItemRun>,
    parent: usize,
    next: Option<usize>,
}

#[derive(Clone)]
struct Node {
    /// Leaf ids if `over_leaves`, otherwise node ids.
    children: Vec<usize>,
    counts: Vec<Counts>,
    parent: usize,
    over_leaves: bool,
}

/// A place in the sequence: run `run` of leaf `leaf`, before item `offset` of that run. A
/// cursor with `run == runs.len()` is the end of the leaf (only at the end of the sequence).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Cursor {
    pub(super) leaf: usize,
    pub(super) run: usize,
    pub(super) offset: usize,
}

/// The B-tree. See the module documentation.
#[derive(Clone)]
pub(super) struct Items {
    leaves: Vec<Leaf>,
    nodes: Vec<Node>,
    /// The root: a node id, or `None` while the whole tree is leaf 0.
    root: Option<usize>,
    /// Run start → (run end, leaf), for every run.
    index: BTreeMap<Lv, (Lv, usize)>,
}

impl Items {
    /// A sequence holding one run.
    pub(super) fn new(first: ItemRun) -> Items {
        let mut index = BTreeMap::new();
        index.insert(first.lv, (first.lv + first.len, 0));
        Items {
            leaves: vec![Leaf {
                runs: vec![first],
                parent: NO_PARENT,
                next: None,
            }],
            nodes: Vec::new(),
            root: None,
            index,
        }
    }

    pub(super) fn run(&self, cursor: Cursor) -> &ItemRun {
        &self.leaves[cursor.leaf].runs[cursor.run]
    }

    /// The cursor at the first item.
    pub(super) fn first(&self) -> Cursor {
        Cursor {
            leaf: self.first_leaf(),
            run: 0,
            offset: 0,
        }
    }

    /// True if the cursor is past the last item.
    pub(super) fn is_end(&self, cursor: Cursor) -> bool {
        cursor.run >= self.leaves[cursor.leaf].runs.len()
    }

    /// The cursor at the start of the run after the one `cursor` is in.
    pub(super) fn next_run(&self, cursor: Cursor) -> Cursor {
        let leaf = &self.leaves[cursor.leaf];
        if cursor.run + 1 < leaf.runs.len() {
            return Cursor {
                leaf: cursor.leaf,
                run: cursor.run + 1,
                offset: 0,
            };
        }
        match leaf.next {
            Some(next) => Cursor {
                leaf: next,
                run: 0,
                offset: 0,
            },
            None => Cursor {
                leaf: cursor.leaf,
                run: leaf.runs.len(),
                offset: 0,
            },
        }
    }

    /// The first item at or after `cursor` that is in the prepare version (deleted there or
    /// not), or the end: a scan of the cursor's leaf, then a walk up to the first later
    /// subtree holding such an item and down into it, O(log n) however many items not in the
    /// prepare version lie between.
    pub(super) fn next_present(&self, cursor: Cursor) -> Cursor {
        let present = |run: &ItemRun| run.prepare != NOT_INSERTED;
        if self.is_end(cursor) {
            return cursor;
        }
        if present(self.run(cursor)) {
            return cursor;
        }
        let runs = &self.leaves[cursor.leaf].runs;
        if let Some(i) = runs[cursor.run + 1..].iter().position(present) {
            return Cursor {
                leaf: cursor.leaf,
                run: cursor.run + 1 + i,
                offset: 0,
            };
        }
        // Up to the first ancestor with a later child holding a present item.
        let mut child = cursor.leaf;
        let mut parent = self.leaves[cursor.leaf].parent;
        let found = loop {
            if parent == NO_PARENT {
                break None;
            }
            let node = &self.nodes[parent];
            let slot = node.children.iter().position(|&c| c == child);
            let later = slot.and_then(|slot| {
                (slot + 1..node.children.len()).find(|&i| node.counts[i].present > 0)
            });
            if let Some(i) = later {
                break Some((node.children[i], node.over_leaves));
            }
            child = parent;
            parent = node.parent;
        };
        let Some((mut id, mut is_leaf)) = found else {
            return self.end();
        };
        // Down to the first present item of that subtree.
        while !is_leaf {
            let node = &self.nodes[id];
            let Some(i) = node.counts.iter().position(|c| c.present > 0) else {
                return self.end();
            };
            is_leaf = node.over_leaves;
            id = node.children[i];
        }
        match self.leaves[id].runs.iter().position(present) {
            Some(run) => Cursor {
                leaf: id,
                run,
                offset: 0,
            },
            None => self.end(),
        }
    }

    /// The cursor past the last item.
    fn end(&self) -> Cursor {
        let mut leaf = 0;
        if let Some(mut node) = self.root {
            loop {
                let n = &self.nodes[node];
                let last = n.children[n.children.len() - 1];
                if n.over_leaves {
                    leaf = last;
                    break;
                }
                node = last;
            }
        }
        Cursor {
            leaf,
            run: self.leaves[leaf].runs.len(),
            offset: 0,
        }
    }

    /// Moves a cursor at the end of a run to the start of the next run.
    pub(super) fn normalize(&self, cursor: Cursor) -> Cursor {
        if !self.is_end(cursor) && cursor.offset == self.run(cursor).len {
            self.next_run(cursor)
        } else {
            cursor
        }
    }

    /// The cursor just after the `pos`-th item visible in the prepare version (the start for
    /// `pos == 0`), with the number of effect-visible items before it and the id of that
    /// `pos`-th item (`NONE` for the start); `None` if there are fewer than `pos` visible items.
    pub(super) fn after_prepare_pos(&self, pos: usize) -> Option<(Cursor, usize, Lv)> {
        let mut effect = 0;
        let mut remaining = pos;
        let mut leaf = 0;
        if let Some(mut node) = self.root {
            loop {
                let n = &self.nodes[node];
                let mut chosen = None;
                for (i, counts) in n.counts.iter().enumerate() {
                    // Stop in the first child holding the `remaining`-th visible item.
                    if remaining <= counts.prepare && (remaining > 0 || i == 0) {
                        chosen = Some(i);
                        break;
                    }
                    remaining -= counts.prepare;
                    effect += counts.effect;
                }
                let i = chosen?;
                if n.over_leaves {
                    leaf = n.children[i];
                    break;
                }
                node = n.children[i];
            }
        }
        if remaining == 0 && pos == 0 {
            // The very start of the sequence: the first leaf's first run.
            return Some((
                Cursor {
                    leaf: self.first_leaf(),
                    run: 0,
                    offset: 0,
                },
                0,
                NONE,
            ));
        }
        for (i, run) in self.leaves[leaf].runs.iter().enumerate() {
            let visible = if run.prepare == INSERTED { run.len } else { 0 };
            if visible > 0 && remaining <= visible {
                if !run.deleted {
                    effect += remaining;
                }
                let cursor = Cursor {
                    leaf,
                    run: i,
                    offset: remaining,
                };
                return Some((self.normalize(cursor), effect, run.lv + remaining - 1));
            }
            remaining -= visible;
            if !run.deleted {
                effect += run.len;
            }
        }
        None
    }

    /// The cursor with `pos` items (of any state) before it: the place an item inserted at
    /// raw position `pos` goes. Past the end, the end of the last leaf.
    pub(super) fn cursor_at_raw(&self, pos: usize) -> Cursor {
        let mut remaining = pos;
        let mut leaf = 0;
        if let Some(mut node) = self.root {
            loop {
                let n = &self.nodes[node];
                let last = n.counts.len() - 1;
                let mut chosen = last;
                for (i, counts) in n.counts.iter().enumerate() {
                    if remaining < counts.raw || i == last {
                        chosen = i;
                        break;
                    }
                    remaining -= counts.raw;
                }
                if n.over_leaves {
                    leaf = n.children[chosen];
                    break;
                }
                node = n.children[chosen];
            }
        }
        let runs = &self.leaves[leaf].runs;
        for (i, run) in runs.iter().enumerate() {
            if remaining < run.len {
                return Cursor {
                    leaf,
                    run: i,
                    offset: remaining,
                };
            }
            remaining -= run.len;
        }
        Cursor {
            leaf,
            run: runs.len(),
            offset: 0,
        }
    }

    fn first_leaf(&self) -> usize {
        let mut node = match self.root {
            None => return 0,
            Some(node) => node,
        };
        loop {
            let n = &self.nodes[node];
            if n.over_leaves {
                return n.children[0];
            }
            node = n.children[0];
        }
    }

    /// The leaf and run index holding item `lv`.
    fn locate(&self, lv: Lv) -> Option<(usize, usize)> {
        let (_, &(end, leaf)) = self.index.range(..=lv).next_back()?;
        if lv >= end {
            return None;
        }
        let run = self.leaves[leaf].runs.iter().position(|r| r.contains(lv))?;
        Some((leaf, run))
    }

    /// The cursor at item `lv`.
    pub(super) fn cursor_at(&self, lv: Lv) -> Option<Cursor> {
        let (leaf, run) = self.locate(lv)?;
        let offset = lv - self.leaves[leaf].runs[run].lv;
        Some(Cursor { leaf, run, offset })
    }

    /// How many items (of any state) come before `cursor`.
    pub(super) fn raw_position(&self, cursor: Cursor) -> usize {
        let leaf = &self.leaves[cursor.leaf];
        let in_leaf: usize = leaf.runs[..cursor.run].iter().map(|r| r.len).sum();
        in_leaf + cursor.offset + self.counts_before_leaf(cursor.leaf).raw
    }

    /// How many effect-visible items come before `cursor`.
    pub(super) fn effect_position(&self, cursor: Cursor) -> usize {
        let leaf = &self.leaves[cursor.leaf];
        let mut effect = self.counts_before_leaf(cursor.leaf).effect;
        for run in &leaf.runs[..cursor.run] {
            if !run.deleted {
                effect += run.len;
            }
        }
        if cursor.run < leaf.runs.len() && !leaf.runs[cursor.run].deleted {
            effect += cursor.offset;
        }
        effect
    }

    /// The counts of every leaf before `leaf`, summed up the parent chain.
    fn counts_before_leaf(&self, leaf: usize) -> Counts {
        let mut before = Counts::default();
        let mut child = leaf;
        let mut parent = self.leaves[leaf].parent;
        while parent != NO_PARENT {
            let node = &self.nodes[parent];
            for (&c, counts) in node.children.iter().zip(&node.counts) {
                if c == child {
                    break;
                }
                before.add(*counts);
            }
            child = parent;
            parent = node.parent;
        }
        before
    }

    /// How many items there are in total.
    pub(super) fn total_raw(&self) -> usize {
        match self.root {
            None => self.leaves[0].runs.iter().map(|r| r.len).sum(),
            Some(root) => self.nodes[root].counts.iter().map(|c| c.raw).sum(),
        }
    }

    /// Inserts `run` at `cursor`, splitting the run there if the cursor is inside it.
    pub(super) fn insert(&mut self, cursor: Cursor, run: ItemRun) {
        let (leaf, at) = if cursor.offset > 0 && !self.is_end(cursor) {
            self.split_run(cursor.leaf, cursor.run, cursor.offset);
            (cursor.leaf, cursor.run + 1)
        } else {
            (cursor.leaf, cursor.run)
        };
        self.index.insert(run.lv, (run.lv + run.len, leaf));
        self.leaves[leaf].runs.insert(at, run);
        self.after_leaf_change(leaf);
    }

    /// Splits off the part of the run holding `lvs.start` before it and the part after
    /// `lvs.end`, then calls `change` on the part inside; returns the lv just past that part.
    /// Runs are changed one at a time: call again until the returned lv reaches `lvs.end`.
    pub(super) fn change_one_run(
        &mut self,
        lvs: std::ops::Range<Lv>,
        change: impl FnOnce(&mut ItemRun),
    ) -> Option<Lv> {
        let (leaf, mut run) = self.locate(lvs.start)?;
        let start = self.leaves[leaf].runs[run].lv;
        if start < lvs.start {
            self.split_run(leaf, run, lvs.start - start);
            run += 1;
        }
        let end = {
            let r = &self.leaves[leaf].runs[run];
            r.lv + r.len
        };
        if end > lvs.end {
            self.split_run(leaf, run, lvs.end - lvs.start);
        }
        let piece = &mut self.leaves[leaf].runs[run];
        change(piece);
        let done = piece.lv + piece.len;
        self.after_leaf_change(leaf);
        Some(done)
    }

    /// Splits run `run` of `leaf` after `at` items (within the same leaf; the leaf may overflow
    /// until `after_leaf_change`).
    fn split_run(&mut self, leaf: usize, run: usize, at: usize) {
        let rest = self.leaves[leaf].runs[run].split(at);
        let kept = &self.leaves[leaf].runs[run];
        self.index.insert(kept.lv, (kept.lv + kept.len, leaf));
        self.index.insert(rest.lv, (rest.lv + rest.len, leaf));
        self.leaves[leaf].runs.insert(run + 1, rest);
    }

    /// Restores the counts above `leaf` and splits it if it overflowed.
    fn after_leaf_change(&mut self, leaf: usize) {
        if self.leaves[leaf].runs.len() > LEAF_CAPACITY {
            self.split_leaf(leaf);
        } else {
            self.refresh_up(leaf, true);
        }
    }

    fn leaf_counts(&self, leaf: usize) -> Counts {
        let mut counts = Counts::default();
        for run in &self.leaves[leaf].runs {
            counts.add(Counts::of(run));
        }
        counts
    }

    fn node_counts(&self, node: usize) -> Counts {
        let mut counts = Counts::default();
        for c in &self.nodes[node].counts {
            counts.add(*c);
        }
        counts
    }

    /// Recomputes the counts stored for `child` (a leaf if `is_leaf`) in every ancestor.
    fn refresh_up(&mut self, mut child: usize, mut is_leaf: bool) {
        loop {
            let (parent, counts) = if is_leaf {
                (self.leaves[child].parent, self.leaf_counts(child))
            } else {
                (self.nodes[child].parent, self.node_counts(child))
            };
            if parent == NO_PARENT {
                return;
            }
            let node = &mut self.nodes[parent];
            if let Some(slot) = node.children.iter().position(|&c| c == child) {
                node.counts[slot] = counts;
            }
            child = parent;
            is_leaf = false;
        }
    }

    fn split_leaf(&mut self, leaf: usize) {
        let half = self.leaves[leaf].runs.len() / 2;
        let moved = self.leaves[leaf].runs.split_off(half);
        let new_leaf = self.leaves.len();
        for run in &moved {
            self.index.insert(run.lv, (run.lv + run.len, new_leaf));
        }
        let next = self.leaves[leaf].next;
        self.leaves.push(Leaf {
            runs: moved,
            parent: NO_PARENT,
            next,
        });
        self.leaves[leaf].next = Some(new_leaf);
        self.adopt_sibling(leaf, new_leaf, true);
    }

    /// Puts `new` right after `existing` (both leaves if `leaves`) under `existing`'s parent,
    /// creating a root or splitting parents as needed, and refreshes counts.
    fn adopt_sibling(&mut self, existing: usize, new: usize, leaves: bool) {
        let parent = if leaves {
            self.leaves[existing].parent
        } else {
            self.nodes[existing].parent
        };
        let counts_of = |items: &Items, id: usize| {
            if leaves {
                items.leaf_counts(id)
            } else {
                items.node_counts(id)
            }
        };
        if parent == NO_PARENT {
            let root = self.nodes.len();
            let counts = vec![counts_of(self, existing), counts_of(self, new)];
            self.nodes.push(Node {
                children: vec![existing, new],
                counts,
                parent: NO_PARENT,
                over_leaves: leaves,
            });
            self.set_parent(existing, leaves, root);
            self.set_parent(new, leaves, root);
            self.root = Some(root);
            return;
        }
        let existing_counts = counts_of(self, existing);
        let new_counts = counts_of(self, new);
        let node = &mut self.nodes[parent];
        let slot = node
            .children
            .iter()
            .position(|&c| c == existing)
            .unwrap_or(node.children.len() - 1);
        node.counts[slot] = existing_counts;
        node.children.insert(slot + 1, new);
        node.counts.insert(slot + 1, new_counts);
        self.set_parent(new, leaves, parent);
        if self.nodes[parent].children.len() > NODE_CAPACITY {
            self.split_node(parent);
        } else {
            self.refresh_up(parent, false);
        }
    }

    fn set_parent(&mut self, child: usize, is_leaf: bool, parent: usize) {
        if is_leaf {
            self.leaves[child].parent = parent;
        } else {
            self.nodes[child].parent = parent;
        }
    }

    fn split_node(&mut self, node: usize) {
        let half = self.nodes[node].children.len() / 2;
        let children = self.nodes[node].children.split_off(half);
        let counts = self.nodes[node].counts.split_off(half);
        let over_leaves = self.nodes[node].over_leaves;
        let new_node = self.nodes.len();
        for &child in &children {
            self.set_parent(child, over_leaves, new_node);
        }
        self.nodes.push(Node {
            children,
            counts,
            parent: NO_PARENT,
            over_leaves,
        });
        self.adopt_sibling(node, new_node, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lv: Lv, len: usize) -> ItemRun {
        ItemRun {
            lv,
            len,
            origin_left: lv.wrapping_sub(1),
            origin_right: Lv::MAX,
            prepare: INSERTED,
            deleted: false,
        }
    }

    #[test]
    fn many_inserts_keep_positions_and_counts_right() {
        // Insert runs of 2 at the front, so later runs come first: run k ends up at position
        // (n - 1 - k) * 2.
        let mut items = Items::new(run(1_000_000, 10));
        let n = 500;
        for k in 0..n {
            let (cursor, _, _) = items.after_prepare_pos(0).expect("start");
            items.insert(cursor, run(k * 2, 2));
        }
        assert_eq!(items.total_raw(), n * 2 + 10);
        for k in 0..n {
            let cursor = items.cursor_at(k * 2 + 1).expect("present");
            assert_eq!(items.raw_position(cursor), (n - 1 - k) * 2 + 1);
        }
        // Hide every other run from the prepare version: positions skip them.
        for k in (0..n).step_by(2) {
            let mut at = k * 2;
            while at < k * 2 + 2 {
                at = items
                    .change_one_run(at..k * 2 + 2, |r| r.prepare = 0)
                    .expect("present");
            }
        }
        let (cursor, effect, before) = items.after_prepare_pos(3).expect("in range");
        assert_eq!(before, 497 * 2);
        assert_eq!(effect, items.effect_position(cursor));
        assert_eq!(items.raw_position(cursor), 5);
    }

    #[test]
    fn next_present_skips_items_not_in_the_prepare_version() {
        let mut items = Items::new(run(1_000_000, 10));
        let n = 400;
        for k in 0..n {
            let cursor = items.cursor_at_raw((k * 7) % (items.total_raw() + 1));
            let mut item = run(k, 1);
            // Every item but each 97th is not in the prepare version.
            if k % 97 != 0 {
                item.prepare = NOT_INSERTED;
            }
            items.insert(cursor, item);
        }
        let mut cursor = items.first();
        while !items.is_end(cursor) {
            let found = items.next_present(cursor);
            // The same answer as walking run by run.
            let mut walk = cursor;
            while !items.is_end(walk) && items.run(walk).prepare == NOT_INSERTED {
                walk = items.next_run(walk);
            }
            assert_eq!(items.is_end(found), items.is_end(walk));
            if !items.is_end(found) {
                assert_eq!(
                    items.run(found).lv + found.offset,
                    items.run(walk).lv + walk.offset
                );
            }
            cursor = items.next_run(cursor);
        }
    }

    #[test]
    fn cursor_at_raw_finds_every_position() {
        let mut items = Items::new(run(1_000_000, 10));
        for k in 0..300 {
            let (cursor, _, _) = items.after_prepare_pos(k % 7).expect("in range");
            items.insert(cursor, run(k * 3, 3));
        }
        let total = items.total_raw();
        for pos in 0..total {
            let cursor = items.cursor_at_raw(pos);
            assert_eq!(items.raw_position(cursor), pos);
            assert!(!items.is_end(cursor));
        }
        let end = items.cursor_at_raw(total);
        assert_eq!(items.raw_position(end), total);
        assert!(items.is_end(end));
    }
}
