//! Stable cursors in a document's lists and texts: positions that follow their element
//! through every later edit, local or remote.
//!
//! A [`Cursor`] names the version it was made at (its heads) and an index there; resolving
//! it transforms that index through everything that happened since (Eg-walker's tracker over
//! the container's own operations), exactly as for a standalone [`Text`](crate::Text).

use super::state::Container;
use super::{ContainerId, ContainerKind, DocError, Document, HistoryError};
use crate::sequence::{Bias, Cursor, CursorError, resolve_cursor_in};

impl Document {
    /// A stable cursor at `index` of list or text `container` (chars for texts, elements for
    /// lists), sticking to the neighbour on the side `bias`. Keep it, send it (it is plain
    /// serde data), and [`resolve_cursor`](Self::resolve_cursor) it after any edits.
    ///
    /// ```
    /// use crdt_core::{Bias, Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let text = doc.replace_with_new_text(MapId::ROOT, "t").unwrap();
    /// doc.text_insert(text, 0, "hello world").unwrap();
    /// let caret = doc.cursor(text.id(), 6, Bias::After).unwrap(); // before "world"
    ///
    /// // Someone else edits the start; we receive it.
    /// let mut other = doc.fork(ReplicaId::from_u128(2));
    /// other.text_insert(text, 0, "well, ").unwrap();
    /// doc.merge(&other).unwrap();
    /// assert_eq!(doc.resolve_cursor(text.id(), &caret), Ok(12));
    /// ```
    pub fn cursor(
        &self,
        container: ContainerId,
        index: usize,
        bias: Bias,
    ) -> Result<Cursor, DocError> {
        let len = match self.container(container)? {
            Container::Text(seq) => seq.doc.len_chars(),
            Container::List(seq) => seq.doc.len(),
            other => {
                return Err(DocError::WrongKind {
                    container,
                    expected: ContainerKind::Text,
                    found: other.kind(),
                });
            }
        };
        if index > len {
            return Err(DocError::OutOfRange { index, len });
        }
        Ok(Cursor {
            heads: self.heads(),
            index,
            bias,
        })
    }

    /// Where `cursor` (made by [`cursor`](Self::cursor) for `container`) is now: the index of
    /// the element it sticks to, or where that element was if it has been deleted.
    ///
    /// Resolving replays the container's edits since the cursor's version: re-create cursors
    /// kept for long (for example after each resolution) to keep it cheap.
    ///
    /// ```
    /// use crdt_core::{Bias, Document, MapId, ReplicaId};
    ///
    /// let mut doc = Document::new(ReplicaId::from_u128(1));
    /// let list = doc.replace_with_new_list(MapId::ROOT, "l").unwrap();
    /// doc.list_insert(list, 0, "a").unwrap();
    /// doc.list_insert(list, 1, "b").unwrap();
    /// let at_b = doc.cursor(list.id(), 1, Bias::After).unwrap();
    /// doc.list_insert(list, 0, "first").unwrap();
    /// assert_eq!(doc.resolve_cursor(list.id(), &at_b), Ok(2));
    /// ```
    pub fn resolve_cursor(
        &self,
        container: ContainerId,
        cursor: &Cursor,
    ) -> Result<usize, CursorError> {
        if let Some(base) = self.graph.shallow_base() {
            let version = self
                .version_of_heads(&cursor.heads)
                .map_err(|error| match error {
                    HistoryError::UnknownEvent(dot) => CursorError::UnknownEvent(dot),
                    _ => CursorError::OutOfRange,
                })?;
            if !version.includes(&base.version) {
                // Made before the base of a shallow snapshot: the edits since are not all here.
                return Err(CursorError::HistoryTrimmed);
            }
        }
        match self.containers.get(&container) {
            Some(Container::Text(seq)) => {
                resolve_cursor_in(&self.graph, &seq.log, seq.doc.len_chars(), cursor)
            }
            Some(Container::List(seq)) => {
                resolve_cursor_in(&self.graph, &seq.log, seq.doc.len(), cursor)
            }
            _ => Err(CursorError::NotASequence),
        }
    }
}
