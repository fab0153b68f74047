//! Stable cursors: positions that follow the text through concurrent edits.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Dot;

/// Which neighbouring character a [`Cursor`] sticks to when text is inserted right at it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Bias {
    /// Stick to the character before the cursor: text inserted at the cursor goes after it
    /// (the usual choice for a caret at the end of what its user typed).
    Before,
    /// Stick to the character after the cursor: text inserted at the cursor goes before it
    /// (the usual choice for the start of a selection or a remote user's caret).
    After,
}

/// A position in a [`Text`](crate::Text) that survives edits made anywhere: it names the
/// character it is anchored to (the one at `index` in the version `heads`, or the one before it
/// with [`Bias::Before`]) and resolves to wherever that character is now, or where it was if it
/// has been deleted.
///
/// Cursors are plain data (serde), small enough to send as presence. Resolving one replays the
/// edits made since its version, so re-create cursors you keep for long (for example after each
/// resolution) to keep resolving cheap.
///
/// ```
/// use crdt_core::{Bias, ReplicaId, Text};
///
/// let mut alice = Text::new(ReplicaId::from_u128(1));
/// alice.insert(0, "hello world").unwrap();
/// let mut bob = alice.fork(ReplicaId::from_u128(2));
///
/// // Bob's caret is before "world".
/// let caret = bob.cursor(6, Bias::After).unwrap();
/// // Alice edits the start concurrently; Bob receives it.
/// alice.insert(0, "well, ").unwrap();
/// bob.merge(&alice).unwrap();
/// assert_eq!(bob.resolve_cursor(&caret), Ok(12));
/// assert_eq!(bob.slice(12..17).unwrap(), "world");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Cursor {
    pub(crate) heads: Vec<Dot>,
    pub(crate) index: usize,
    pub(crate) bias: Bias,
}

impl Cursor {
    /// The index (in chars) the cursor had in the version it was made at.
    pub fn original_index(&self) -> usize {
        self.index
    }

    /// Which side the cursor sticks to.
    pub fn bias(&self) -> Bias {
        self.bias
    }
}

/// Why a cursor could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CursorError {
    /// The cursor was made at a version including an event this replica has not received yet:
    /// resolve it again once synced.
    UnknownEvent(Dot),
    /// The cursor's index is past the end of the text at its version (it was not made by
    /// [`Text::cursor`](crate::Text::cursor), or for another text).
    OutOfRange,
    /// The document container named is not a list or text (or does not exist).
    NotASequence,
    /// The cursor was made before the base of the shallow snapshot this document was loaded
    /// from (or compacted to): the edits since then are not all here.
    HistoryTrimmed,
}

impl fmt::Display for CursorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CursorError::UnknownEvent(dot) => write!(
                f,
                "the cursor refers to event {dot:?}, which this replica has not received yet"
            ),
            CursorError::OutOfRange => {
                f.write_str("the cursor's index is past the end of the text at its version")
            }
            CursorError::NotASequence => f.write_str("the container is not a list or text"),
            CursorError::HistoryTrimmed => f.write_str(
                "the cursor was made before the history this document keeps (a shallow snapshot)",
            ),
        }
    }
}

impl std::error::Error for CursorError {}
