//! The nodes of the rope's B-tree and the recursive edits on them.
//!
//! A parent stores each child's [`Metrics`] beside it, so a descent reads one small array per
//! level and never visits the siblings themselves. Every function here takes the node together
//! with a `&mut Metrics` that is the node's entry in its parent (or the rope's total), and keeps
//! it exact.

use super::{MAX_CHILDREN, MAX_LEAF, Metrics, Unit};

pub(super) enum Node {
    Leaf(String),
    Internal(Internal),
}

pub(super) struct Internal {
    pub(super) children: Vec<Node>,
    /// `metrics[i]` is the size of `children[i]`.
    pub(super) metrics: Vec<Metrics>,
}

impl Default for Node {
    fn default() -> Self {
        Node::Leaf(String::new())
    }
}

impl Clone for Node {
    fn clone(&self) -> Self {
        match self {
            Node::Leaf(text) => Node::Leaf(text.clone()),
            Node::Internal(internal) => Node::Internal(Internal {
                children: internal.children.clone(),
                metrics: internal.metrics.clone(),
            }),
        }
    }
}

/// The byte offset of char `at` in `text`, whose metrics are `metrics`.
fn char_to_byte(text: &str, metrics: Metrics, at: usize) -> usize {
    if metrics.is_ascii() {
        return at;
    }
    text.char_indices().nth(at).map_or(text.len(), |(b, _)| b)
}

/// The largest char boundary of `text` at or below `at`.
fn floor_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// `text` cut into pieces of at most `max` bytes, on char boundaries.
pub(super) fn pieces(text: &str, max: usize) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut cut = floor_boundary(rest, max.min(rest.len()));
        if cut == 0 {
            // A single char longer than `max` (impossible for max >= 4): take it whole.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let (piece, tail) = rest.split_at(cut);
        rest = tail;
        Some(piece)
    })
}

/// Inserts `text` (metrics `added`, at most `MAX_LEAF / 2` bytes) at char `at` of `node`.
/// If the node overflows it splits, and the right half is returned for the parent to adopt.
pub(super) fn insert_into(
    node: &mut Node,
    node_metrics: &mut Metrics,
    at: usize,
    text: &str,
    added: Metrics,
) -> Option<(Node, Metrics)> {
    match node {
        Node::Leaf(leaf) => {
            let byte = char_to_byte(leaf, *node_metrics, at);
            leaf.insert_str(byte, text);
            *node_metrics += added;
            if leaf.len() <= MAX_LEAF {
                return None;
            }
            let middle = floor_boundary(leaf, leaf.len() / 2);
            let right = leaf.split_off(middle);
            let right_metrics = Metrics::of(&right);
            *node_metrics -= right_metrics;
            Some((Node::Leaf(right), right_metrics))
        }
        Node::Internal(internal) => {
            // An index at a boundary between children goes to the left one (an append there).
            let last = internal.children.len() - 1;
            let mut offset = at;
            let mut i = 0;
            while i < last && offset > internal.metrics[i].chars {
                offset -= internal.metrics[i].chars;
                i += 1;
            }
            let split = insert_into(
                &mut internal.children[i],
                &mut internal.metrics[i],
                offset,
                text,
                added,
            );
            *node_metrics += added;
            let (right, right_metrics) = split?;
            internal.children.insert(i + 1, right);
            internal.metrics.insert(i + 1, right_metrics);
            if internal.children.len() <= MAX_CHILDREN {
                return None;
            }
            let half = internal.children.len() / 2;
            let children = internal.children.split_off(half);
            let metrics = internal.metrics.split_off(half);
            let mut moved = Metrics::default();
            for m in &metrics {
                moved += *m;
            }
            *node_metrics -= moved;
            Some((Node::Internal(Internal { children, metrics }), moved))
        }
    }
}

/// Removes chars `start..end` (non-empty, in range) from `node`.
pub(super) fn remove_from(node: &mut Node, node_metrics: &mut Metrics, start: usize, end: usize) {
    match node {
        Node::Leaf(leaf) => {
            let from = char_to_byte(leaf, *node_metrics, start);
            let to = char_to_byte(leaf, *node_metrics, end);
            let removed = Metrics::of(&leaf[from..to]);
            leaf.replace_range(from..to, "");
            *node_metrics -= removed;
        }
        Node::Internal(internal) => {
            let mut child_start = 0;
            let mut i = 0;
            while i < internal.children.len() && child_start < end {
                let child_len = internal.metrics[i].chars;
                let child_end = child_start + child_len;
                if child_end <= start {
                    child_start = child_end;
                    i += 1;
                    continue;
                }
                let from = start.max(child_start) - child_start;
                let to = end.min(child_end) - child_start;
                if from == 0 && to == child_len {
                    *node_metrics -= internal.metrics[i];
                    internal.children.remove(i);
                    internal.metrics.remove(i);
                } else {
                    let before = internal.metrics[i];
                    remove_from(
                        &mut internal.children[i],
                        &mut internal.metrics[i],
                        from,
                        to,
                    );
                    let mut removed = before;
                    removed -= internal.metrics[i];
                    *node_metrics -= removed;
                    if internal.metrics[i].chars == 0 {
                        internal.children.remove(i);
                        internal.metrics.remove(i);
                    } else {
                        i += 1;
                    }
                }
                child_start = child_end;
            }
            internal.merge_small_leaves();
        }
    }
}

impl Internal {
    /// Joins neighbouring leaves that fit in one, so deletions do not leave a trail of tiny
    /// leaves behind.
    fn merge_small_leaves(&mut self) {
        let mut i = 0;
        while i + 1 < self.children.len() {
            let fits = self.metrics[i].bytes + self.metrics[i + 1].bytes <= MAX_LEAF / 2;
            let both_leaves = matches!(self.children[i], Node::Leaf(_))
                && matches!(self.children[i + 1], Node::Leaf(_));
            if fits && both_leaves {
                let right = self.children.remove(i + 1);
                let right_metrics = self.metrics.remove(i + 1);
                if let (Node::Leaf(left), Node::Leaf(right)) = (&mut self.children[i], right) {
                    left.push_str(&right);
                }
                self.metrics[i] += right_metrics;
                continue;
            }
            i += 1;
        }
    }
}

impl Node {
    /// A tree holding `text`, built bottom-up: leaves about three quarters full, then levels of
    /// internal nodes.
    pub(super) fn build(text: &str) -> Node {
        let mut level: Vec<(Node, Metrics)> = pieces(text, MAX_LEAF * 3 / 4)
            .map(|piece| (Node::Leaf(piece.to_owned()), Metrics::of(piece)))
            .collect();
        if level.is_empty() {
            return Node::default();
        }
        while level.len() > 1 {
            let per_node = MAX_CHILDREN * 3 / 4;
            let mut next = Vec::with_capacity(level.len() / per_node + 1);
            let mut iter = level.into_iter().peekable();
            while iter.peek().is_some() {
                let mut children = Vec::with_capacity(per_node);
                let mut metrics = Vec::with_capacity(per_node);
                let mut total = Metrics::default();
                for (child, m) in iter.by_ref().take(per_node) {
                    children.push(child);
                    metrics.push(m);
                    total += m;
                }
                next.push((Node::Internal(Internal { children, metrics }), total));
            }
            level = next;
        }
        level.pop().map(|(node, _)| node).unwrap_or_default()
    }

    /// Replaces a root with a single child by that child, repeatedly.
    pub(super) fn collapse_root(&mut self) {
        loop {
            match self {
                Node::Internal(internal) if internal.children.len() <= 1 => {
                    *self = internal.children.pop().unwrap_or_default();
                }
                _ => return,
            }
        }
    }

    /// Appends the text of chars `start..end` of this node to `out`.
    pub(super) fn collect(&self, start: usize, end: usize, out: &mut String) {
        match self {
            Node::Leaf(leaf) => {
                let metrics = Metrics::of(leaf);
                let from = char_to_byte(leaf, metrics, start);
                let to = char_to_byte(leaf, metrics, end);
                out.push_str(&leaf[from..to]);
            }
            Node::Internal(internal) => {
                let mut child_start = 0;
                for (child, metrics) in internal.children.iter().zip(&internal.metrics) {
                    let child_end = child_start + metrics.chars;
                    if child_start >= end {
                        break;
                    }
                    if child_end > start {
                        let from = start.max(child_start) - child_start;
                        let to = end.min(child_end) - child_start;
                        child.collect(from, to, out);
                    }
                    child_start = child_end;
                }
            }
        }
    }

    /// Converts `index` counted in `from` units into `to` units (rounding down inside a char).
    /// `metrics` is this node's size: a leaf of ASCII text needs no scan (most leaves of a text
    /// with a few non-ASCII chars), which made UTF-16 edits of such texts 5 times slower.
    pub(super) fn convert(
        &self,
        metrics: Metrics,
        mut index: usize,
        from: Unit,
        to: Unit,
    ) -> usize {
        let mut node = self;
        let mut node_metrics = metrics;
        let mut converted = 0;
        loop {
            match node {
                Node::Internal(internal) => {
                    let last = internal.children.len() - 1;
                    let mut i = 0;
                    while i < last && index > from.of(&internal.metrics[i]) {
                        index -= from.of(&internal.metrics[i]);
                        converted += to.of(&internal.metrics[i]);
                        i += 1;
                    }
                    node = &internal.children[i];
                    node_metrics = internal.metrics[i];
                }
                Node::Leaf(_) if node_metrics.is_ascii() => {
                    return converted + index.min(node_metrics.chars);
                }
                Node::Leaf(leaf) => {
                    let mut position = Metrics::default();
                    for c in leaf.chars() {
                        let mut next = position;
                        next += Metrics {
                            bytes: c.len_utf8(),
                            chars: 1,
                            utf16: c.len_utf16(),
                        };
                        if from.of(&next) > index {
                            break;
                        }
                        position = next;
                    }
                    return converted + to.of(&position);
                }
            }
        }
    }

    pub(super) fn for_each_chunk(&self, f: &mut impl FnMut(&str)) {
        match self {
            Node::Leaf(leaf) => f(leaf),
            Node::Internal(internal) => {
                for child in &internal.children {
                    child.for_each_chunk(f);
                }
            }
        }
    }
}
