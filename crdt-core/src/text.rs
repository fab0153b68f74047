//! Collaborative plain text: the sequence CRDT of [`crate::sequence`] over a rope.
//!
//! Indices are Unicode scalar values (Rust `char`s); the `_utf16` methods take the UTF-16 code
//! unit indices of JavaScript strings, and conversions are O(log n) (see [`crate::rope`]).

use std::fmt;
use std::ops::Range;

use crate::rope::Unit;
use crate::sequence::content::TextContent;
use crate::sequence::{Bias, Cursor, CursorError, IndexOutOfRange, LoadError, Sequence};
use crate::{Dot, ReplicaId, VersionVector};

/// A piece of plain text that many replicas edit at once and that always converges.
///
/// Indices are in Unicode scalar values (Rust `char`s) unless a method says otherwise; the
/// `_utf16` methods take the UTF-16 code unit indices of JavaScript strings, and
/// [`char_to_utf16`](Self::char_to_utf16) and friends convert, in O(log n).
///
/// ```
/// use crdt_core::{ReplicaId, Text};
///
/// let mut alice = Text::new(ReplicaId::from_u128(1));
/// alice.insert(0, "Hello world").unwrap();
/// let mut bob = Text::new(ReplicaId::from_u128(2));
/// bob.merge(&alice).unwrap();
///
/// // Concurrent edits...
/// alice.insert(5, ",").unwrap();
/// bob.delete(6..11).unwrap();
/// bob.insert(6, "there").unwrap();
///
/// // ...exchanged as updates (bytes), in either direction.
/// let update = bob.update_since(&alice.version());
/// alice.apply_update(&update).unwrap();
/// bob.merge(&alice).unwrap();
/// assert_eq!(alice.to_string(), "Hello, there");
/// assert_eq!(bob.to_string(), "Hello, there");
/// ```
pub struct Text {
    seq: Sequence<TextContent>,
}

/// Why an edit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TextError {
    /// The index is past the end of the text.
    OutOfRange {
        /// The index given.
        index: usize,
        /// The length of the text in the same unit.
        len: usize,
    },
    /// The UTF-16 or UTF-8 index falls inside a character.
    NotCharBoundary {
        /// The index given.
        index: usize,
    },
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::OutOfRange { index, len } => {
                write!(
                    f,
                    "index {index} is out of range for a text of length {len}"
                )
            }
            TextError::NotCharBoundary { index } => {
                write!(f, "index {index} falls inside a character")
            }
        }
    }
}

impl std::error::Error for TextError {}

impl Text {
    /// An empty text whose edits will be made as `replica`.
    pub fn new(replica: ReplicaId) -> Text {
        Text {
            seq: Sequence::new(replica),
        }
    }

    /// A copy of this text, with its whole history, whose edits will be made as `replica`.
    /// This is how to get a second writer: give it a replica id no other copy edits as (a
    /// fresh `ReplicaId::random()` is always right), edit both, and merge either way.
    ///
    /// `Text` is deliberately not `Clone`: a clone would edit as the same replica, and two
    /// places editing as one replica give different events the same id, so their edits
    /// collide. For a copy that keeps this replica's identity (a backup that will never edit
    /// while the original does), see [`duplicate_same_replica`](Text::duplicate_same_replica).
    ///
    /// ```
    /// use crdt_core::{ReplicaId, Text};
    /// let mut alice = Text::new(ReplicaId::from_u128(1));
    /// alice.insert(0, "ab").unwrap();
    /// let mut bob = alice.fork(ReplicaId::from_u128(2));
    /// assert_ne!(bob.replica(), alice.replica());
    /// alice.insert(0, "1").unwrap();
    /// bob.insert(2, "2").unwrap();
    /// alice.merge(&bob).unwrap();
    /// assert_eq!(alice.to_string(), "1ab2");
    /// ```
    ///
    /// A text cannot be cloned:
    ///
    /// ```compile_fail,E0599
    /// use crdt_core::{ReplicaId, Text};
    /// let text = Text::new(ReplicaId::from_u128(1));
    /// let copy = text.clone(); // error: `Text` is not `Clone`; use `fork`
    /// ```
    pub fn fork(&self, replica: ReplicaId) -> Text {
        Text {
            seq: self.seq.fork(replica),
        }
    }

    /// A copy with the whole history that still edits as **this** replica.
    ///
    /// Right only when the copy and the original will never both edit: a backup, a snapshot of this
    /// replica's state to read, merge into or encode elsewhere, or a checkpoint to roll back to
    /// (drop the original and carry on with the copy, provided nothing the original made since the
    /// copy was sent or saved anywhere: its dots would be issued twice; if it was, fork the
    /// checkpoint instead). Two live copies that both edit would give different edits the same
    /// dots: other replicas keep one and drop the other as already known (or refuse it), so the
    /// copies never converge. For a second writer use [`fork`](Text::fork).
    ///
    /// ```
    /// use crdt_core::{ReplicaId, Text};
    /// let mut text = Text::new(ReplicaId::from_u128(1));
    /// text.insert(0, "saved").unwrap();
    /// let checkpoint = text.duplicate_same_replica();
    /// text.insert(5, " draft").unwrap();
    /// // Roll back: the original is dropped, only the checkpoint edits from now on.
    /// let mut text = checkpoint;
    /// assert_eq!(text.to_string(), "saved");
    /// text.insert(5, "!").unwrap();
    /// assert_eq!(text.replica(), ReplicaId::from_u128(1));
    /// ```
    pub fn duplicate_same_replica(&self) -> Text {
        Text {
            seq: self.seq.clone(),
        }
    }

    /// The replica local edits are made as.
    pub fn replica(&self) -> ReplicaId {
        self.seq.replica()
    }

    /// The length in chars.
    pub fn len(&self) -> usize {
        self.seq.doc.metrics().chars
    }

    /// True if the text is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The length in UTF-16 code units (JavaScript's `string.length`).
    pub fn len_utf16(&self) -> usize {
        self.seq.doc.metrics().utf16
    }

    /// The length in UTF-8 bytes.
    pub fn len_utf8(&self) -> usize {
        self.seq.doc.metrics().bytes
    }

    /// The chars `range` as a string.
    pub fn slice(&self, range: Range<usize>) -> Result<String, TextError> {
        self.check_range(&range)?;
        Ok(self.seq.doc.slice(range.start, range.end))
    }

    fn check_index(&self, index: usize) -> Result<(), TextError> {
        if index > self.len() {
            Err(TextError::OutOfRange {
                index,
                len: self.len(),
            })
        } else {
            Ok(())
        }
    }

    fn check_range(&self, range: &Range<usize>) -> Result<(), TextError> {
        self.check_index(range.end)?;
        if range.start > range.end {
            return Err(TextError::OutOfRange {
                index: range.start,
                len: range.end,
            });
        }
        Ok(())
    }

    /// Inserts `content` before char `at`.
    pub fn insert(&mut self, at: usize, content: &str) -> Result<(), TextError> {
        self.check_index(at)?;
        let chars = content.chars().count();
        self.seq
            .insert(at, content, chars)
            .map_err(|IndexOutOfRange| self.out_of_range(at))
    }

    fn out_of_range(&self, index: usize) -> TextError {
        TextError::OutOfRange {
            index,
            len: self.len(),
        }
    }

    /// Deletes the chars `range`.
    pub fn delete(&mut self, range: Range<usize>) -> Result<(), TextError> {
        self.check_range(&range)?;
        let end = range.end;
        self.seq
            .delete(range)
            .map_err(|IndexOutOfRange| self.out_of_range(end))
    }

    /// Deletes `delete` chars at `at`, then inserts `content` there (JavaScript's `splice`).
    pub fn splice(&mut self, at: usize, delete: usize, content: &str) -> Result<(), TextError> {
        let end = at.checked_add(delete).ok_or(TextError::OutOfRange {
            index: at,
            len: self.len(),
        })?;
        self.delete(at..end)?;
        self.insert(at, content)
    }

    /// Converts a UTF-16 index (JavaScript) to a char index.
    pub fn utf16_to_char(&self, index: usize) -> Result<usize, TextError> {
        self.index_in_chars(index, Unit::Utf16)
    }

    /// Converts a char index to a UTF-16 index (JavaScript).
    pub fn char_to_utf16(&self, index: usize) -> Result<usize, TextError> {
        self.check_index(index)?;
        Ok(self.seq.doc.convert(index, Unit::Chars, Unit::Utf16))
    }

    /// Converts a UTF-8 byte index to a char index.
    pub fn utf8_to_char(&self, index: usize) -> Result<usize, TextError> {
        self.index_in_chars(index, Unit::Bytes)
    }

    /// Converts a char index to a UTF-8 byte index.
    pub fn char_to_utf8(&self, index: usize) -> Result<usize, TextError> {
        self.check_index(index)?;
        Ok(self.seq.doc.convert(index, Unit::Chars, Unit::Bytes))
    }

    fn index_in_chars(&self, index: usize, unit: Unit) -> Result<usize, TextError> {
        let len = match unit {
            Unit::Utf16 => self.len_utf16(),
            Unit::Bytes => self.len_utf8(),
            Unit::Chars => self.len(),
        };
        if index > len {
            return Err(TextError::OutOfRange { index, len });
        }
        self.seq
            .doc
            .to_chars(index, unit)
            .ok_or(TextError::NotCharBoundary { index })
    }

    /// Inserts `content` at a UTF-16 index (JavaScript).
    pub fn insert_utf16(&mut self, at: usize, content: &str) -> Result<(), TextError> {
        let at = self.utf16_to_char(at)?;
        self.insert(at, content)
    }

    /// Deletes a range of UTF-16 indices (JavaScript).
    pub fn delete_utf16(&mut self, range: Range<usize>) -> Result<(), TextError> {
        let start = self.utf16_to_char(range.start)?;
        let end = self.utf16_to_char(range.end)?;
        self.delete(start..end)
    }

    /// The version of the text: how many events of each replica it includes.
    pub fn version(&self) -> VersionVector {
        self.seq.version()
    }

    /// The heads of the history: the latest events, which every other event precedes.
    pub fn heads(&self) -> Vec<Dot> {
        self.seq.heads()
    }

    /// The text as it was at `version` (time travel), computed from the history without
    /// changing or copying this replica: sequential stretches replay as plain edits,
    /// concurrent ones in a temporary tracker. `version` must be a version of this text
    /// (every event known here, causally closed), as any [`version`](Self::version) this
    /// replica or a replica it merged had is.
    ///
    /// ```
    /// use crdt_core::{ReplicaId, Text};
    ///
    /// let mut text = Text::new(ReplicaId::from_u128(1));
    /// text.insert(0, "draft").unwrap();
    /// let draft = text.version();
    /// text.splice(0, 5, "final text").unwrap();
    /// assert_eq!(text.text_at(&draft).unwrap(), "draft");
    /// ```
    pub fn text_at(&self, version: &VersionVector) -> Result<String, crate::HistoryError> {
        self.seq.doc_at(version).map(|rope| rope.to_string())
    }

    /// The number of events (one per inserted or deleted char) in the history.
    pub fn history_len(&self) -> usize {
        self.seq.history_len()
    }

    /// Everything this replica has that a replica at `version` lacks, encoded.
    pub fn update_since(&self, version: &VersionVector) -> Vec<u8> {
        self.seq.update_since(version)
    }

    /// The events that version `until` has and version `since` lacks, encoded: the changes
    /// between two versions. `until` must be a version of this text (causally closed, as every
    /// version from [`version`](Self::version) is); events of it this text lacks are left out.
    pub fn update_between(&self, since: &VersionVector, until: &VersionVector) -> Vec<u8> {
        self.seq.update_between(since, until)
    }

    /// Applies an update from [`update_since`](Self::update_since) or [`encode`](Self::encode)
    /// made by any replica. Events already present are skipped. Returns how many events were
    /// new. On error nothing is applied.
    pub fn apply_update(&mut self, bytes: &[u8]) -> Result<usize, LoadError> {
        self.seq.apply_update(bytes)
    }

    /// Brings in everything `other` has that this text lacks.
    pub fn merge(&mut self, other: &Text) -> Result<usize, LoadError> {
        self.seq.merge(&other.seq)
    }

    /// A cursor at char `index`, sticking to the character on the side `bias`.
    pub fn cursor(&self, index: usize, bias: Bias) -> Result<Cursor, TextError> {
        self.seq
            .cursor(index, bias)
            .map_err(|IndexOutOfRange| self.out_of_range(index))
    }

    /// Where `cursor` is now, in chars.
    pub fn resolve_cursor(&self, cursor: &Cursor) -> Result<usize, CursorError> {
        self.seq.resolve_cursor(cursor)
    }

    /// The whole text with its history, encoded (a snapshot). [`Text::load`] reads it back; it
    /// is also a valid update for [`apply_update`](Self::apply_update).
    pub fn encode(&self) -> Vec<u8> {
        self.seq.encode()
    }

    /// Loads a snapshot from [`encode`](Self::encode); edits will be made as `replica`.
    pub fn load(bytes: &[u8], replica: ReplicaId) -> Result<Text, LoadError> {
        let mut text = Text::new(replica);
        text.apply_update(bytes)?;
        Ok(text)
    }

    #[cfg(test)]
    pub(crate) fn sequence_mut(&mut self) -> &mut Sequence<TextContent> {
        &mut self.seq
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.seq.doc, f)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Text")
            .field("replica", &self.replica())
            .field("version", &self.version())
            .field("text", &self.to_string())
            .finish()
    }
}
