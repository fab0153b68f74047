//! A rope: text in a B-tree of small chunks, indexed by Unicode scalar values, UTF-16 code units
//! and UTF-8 bytes at once.
//!
//! The document text of every [`Text`](crate::Text) lives here. Each leaf holds up to
//! [`MAX_LEAF`] bytes of UTF-8; each internal node holds up to [`MAX_CHILDREN`] children and,
//! beside each child, its [`Metrics`]: its length in bytes, chars and UTF-16 units. Finding an
//! index in any of the three units is a descent summing those metrics (O(log n)) and a scan of
//! one small leaf, so converting between JavaScript's UTF-16 indices and ours never scans the
//! document. Pure ASCII leaves (the common case) skip even the leaf scan.
//!
//! This module knows nothing of CRDTs: it is plain, generic plumbing with its own tests.

mod node;

use std::fmt;

use node::{Node, insert_into, remove_from};

/// Most bytes a leaf holds. Small enough that inserting into a leaf is a short memmove, large
/// enough that the tree stays shallow (a 1 MB text is about 3 levels).
pub(crate) const MAX_LEAF: usize = 1024;
/// Most children an internal node holds.
pub(crate) const MAX_CHILDREN: usize = 16;

/// The size of a piece of text in each unit.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub(crate) struct Metrics {
    pub(crate) bytes: usize,
    pub(crate) chars: usize,
    pub(crate) utf16: usize,
}

impl Metrics {
    /// The metrics of `text`.
    pub(crate) fn of(text: &str) -> Metrics {
        if text.is_ascii() {
            return Metrics {
                bytes: text.len(),
                chars: text.len(),
                utf16: text.len(),
            };
        }
        let mut metrics = Metrics {
            bytes: text.len(),
            chars: 0,
            utf16: 0,
        };
        for c in text.chars() {
            metrics.chars += 1;
            metrics.utf16 += c.len_utf16();
        }
        metrics
    }

    fn is_ascii(&self) -> bool {
        self.bytes == self.chars
    }
}

impl std::ops::AddAssign for Metrics {
    fn add_assign(&mut self, other: Metrics) {
        self.bytes += other.bytes;
        self.chars += other.chars;
        self.utf16 += other.utf16;
    }
}

impl std::ops::SubAssign for Metrics {
    fn sub_assign(&mut self, other: Metrics) {
        self.bytes -= other.bytes;
        self.chars -= other.chars;
        self.utf16 -= other.utf16;
    }
}

/// One of the units a text index can be counted in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    Bytes,
    Chars,
    Utf16,
}

impl Unit {
    fn of(self, metrics: &Metrics) -> usize {
        match self {
            Unit::Bytes => metrics.bytes,
            Unit::Chars => metrics.chars,
            Unit::Utf16 => metrics.utf16,
        }
    }
}

/// The text of a document. Indices given to its methods must be in range and, for bytes and
/// UTF-16 units, on a character boundary; callers check (the public API returns errors).
#[derive(Clone, Default)]
pub(crate) struct Rope {
    root: Node,
    metrics: Metrics,
}

impl Rope {
    /// An empty rope.
    #[cfg(test)]
    pub(crate) fn new() -> Rope {
        Rope::default()
    }

    /// The rope holding `text`, built bottom-up in one pass.
    pub(crate) fn from_text(text: &str) -> Rope {
        let metrics = Metrics::of(text);
        Rope {
            root: Node::build(text),
            metrics,
        }
    }

    /// The length in each unit.
    pub(crate) fn metrics(&self) -> Metrics {
        self.metrics
    }

    /// The length in chars.
    pub(crate) fn len_chars(&self) -> usize {
        self.metrics.chars
    }

    /// Inserts `text` at char index `at`.
    pub(crate) fn insert(&mut self, at: usize, text: &str) {
        debug_assert!(at <= self.metrics.chars);
        if text.len() > MAX_LEAF / 2 {
            // Large inserts go in as leaf-sized pieces, so no leaf ever needs splitting twice.
            let mut at = at;
            for piece in node::pieces(text, MAX_LEAF / 2) {
                self.insert(at, piece);
                at += Metrics::of(piece).chars;
            }
            return;
        }
        let added = Metrics::of(text);
        if let Some((right, right_metrics)) =
            insert_into(&mut self.root, &mut self.metrics, at, text, added)
        {
            // The split already took the right half out of the total; put it back.
            let left = std::mem::take(&mut self.root);
            let left_metrics = self.metrics;
            self.metrics += right_metrics;
            self.root = Node::Internal(node::Internal {
                children: vec![left, right],
                metrics: vec![left_metrics, right_metrics],
            });
        }
    }

    /// Removes the chars `start..end`.
    pub(crate) fn remove(&mut self, start: usize, end: usize) {
        debug_assert!(start <= end && end <= self.metrics.chars);
        if start == end {
            return;
        }
        remove_from(&mut self.root, &mut self.metrics, start, end);
        self.root.collapse_root();
    }

    /// The text of the chars `start..end`.
    pub(crate) fn slice(&self, start: usize, end: usize) -> String {
        let mut out = String::new();
        self.root.collect(start, end, &mut out);
        out
    }

    /// Converts an index counted in `from` units to one counted in `to` units.
    pub(crate) fn convert(&self, index: usize, from: Unit, to: Unit) -> usize {
        if from == to || self.metrics.is_ascii() {
            return index;
        }
        self.root.convert(self.metrics, index, from, to)
    }

    /// The char index of `index` counted in `unit`, or `None` if it is out of range or inside
    /// a char (two descents: there and back).
    pub(crate) fn to_chars(&self, index: usize, unit: Unit) -> Option<usize> {
        if index > unit.of(&self.metrics) {
            return None;
        }
        let chars = self.convert(index, unit, Unit::Chars);
        (unit == Unit::Chars || self.convert(chars, Unit::Chars, unit) == index).then_some(chars)
    }

    /// Calls `f` with each leaf's text in order.
    pub(crate) fn for_each_chunk(&self, f: &mut impl FnMut(&str)) {
        self.root.for_each_chunk(f);
    }
}

impl fmt::Display for Rope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut result = Ok(());
        self.for_each_chunk(&mut |chunk| {
            if result.is_ok() {
                result = f.write_str(chunk);
            }
        });
        result
    }
}

impl fmt::Debug for Rope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rope({:?})", self.to_string())
    }
}

#[cfg(test)]
mod tests;
