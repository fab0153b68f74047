//! Collaborative lists: the sequence CRDT of [`crate::sequence`] over elements of any type.

use std::fmt;
use std::ops::Range;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sequence::content::ListContent;
use crate::sequence::{Bias, Cursor, CursorError, IndexOutOfRange, LoadError, Sequence};
use crate::{Dot, ReplicaId, VersionVector};

/// What a [`List`] can hold: values that can be cloned, compared and encoded (with serde).
/// Implemented for every such type.
pub trait Element: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + 'static {}

impl<T: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + 'static> Element for T {}

/// A list that many replicas edit at once and that always converges: the same sequence CRDT
/// as [`Text`](crate::Text), with elements of type `T` instead of characters.
///
/// Concurrent insertions at one place never interleave: the elements each replica inserted
/// there stay together. A move is a delete and an insert (a movable list is a later feature).
///
/// ```
/// use crdt_core::{List, ReplicaId};
///
/// let mut alice = List::new(ReplicaId::from_u128(1));
/// alice.push("milk".to_string()).unwrap();
/// let mut bob = alice.fork(ReplicaId::from_u128(2));
///
/// alice.insert(0, "bread".to_string()).unwrap();
/// bob.push("eggs".to_string()).unwrap();
/// bob.remove(0).unwrap();
///
/// alice.apply_update(&bob.update_since(&alice.version())).unwrap();
/// bob.merge(&alice).unwrap();
/// assert_eq!(alice.to_vec(), ["bread", "eggs"]);
/// assert_eq!(alice.to_vec(), bob.to_vec());
/// ```
pub struct List<T: Element> {
    seq: Sequence<ListContent<T>>,
}

/// Why a list edit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ListError {
    /// The index is past the end of the list.
    OutOfRange {
        /// The index given.
        index: usize,
        /// The length of the list.
        len: usize,
    },
}

impl fmt::Display for ListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListError::OutOfRange { index, len } => {
                write!(
                    f,
                    "index {index} is out of range for a list of length {len}"
                )
            }
        }
    }
}

impl std::error::Error for ListError {}

impl<T: Element> List<T> {
    /// An empty list whose edits will be made as `replica`.
    pub fn new(replica: ReplicaId) -> Self {
        List {
            seq: Sequence::new(replica),
        }
    }

    /// A copy with the whole history whose edits will be made as `replica`. This is how to get
    /// a second writer: give it a replica id no other copy edits as (a fresh
    /// `ReplicaId::random()` is always right), edit both, and merge either way.
    ///
    /// `List` is deliberately not `Clone`: a clone would edit as the same replica, and two
    /// places editing as one replica give different events the same id, so their edits
    /// collide. For a copy that keeps this replica's identity (a backup that will never edit
    /// while the original does), see [`duplicate_same_replica`](List::duplicate_same_replica).
    ///
    /// ```
    /// use crdt_core::{List, ReplicaId};
    /// let mut alice: List<u32> = List::new(ReplicaId::from_u128(1));
    /// alice.push(1).unwrap();
    /// let mut bob = alice.fork(ReplicaId::from_u128(2));
    /// assert_ne!(bob.replica(), alice.replica());
    /// alice.push(2).unwrap();
    /// bob.push(3).unwrap();
    /// alice.merge(&bob).unwrap();
    /// assert_eq!(alice.len(), 3);
    /// ```
    ///
    /// A list cannot be cloned:
    ///
    /// ```compile_fail,E0599
    /// use crdt_core::{List, ReplicaId};
    /// let list: List<u32> = List::new(ReplicaId::from_u128(1));
    /// let copy = list.clone(); // error: `List` is not `Clone`; use `fork`
    /// ```
    pub fn fork(&self, replica: ReplicaId) -> Self {
        List {
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
    /// copies never converge. For a second writer use [`fork`](List::fork).
    ///
    /// ```
    /// use crdt_core::{List, ReplicaId};
    /// let mut list: List<u32> = List::new(ReplicaId::from_u128(1));
    /// list.push(1).unwrap();
    /// let checkpoint = list.duplicate_same_replica();
    /// list.push(2).unwrap();
    /// // Roll back: the original is dropped, only the checkpoint edits from now on.
    /// let list = checkpoint;
    /// assert_eq!(list.to_vec(), [1]);
    /// assert_eq!(list.replica(), ReplicaId::from_u128(1));
    /// ```
    pub fn duplicate_same_replica(&self) -> Self {
        List {
            seq: self.seq.clone(),
        }
    }

    /// The replica local edits are made as.
    pub fn replica(&self) -> ReplicaId {
        self.seq.replica()
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// True if the list is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The element at `index`.
    pub fn get(&self, index: usize) -> Option<&T> {
        self.seq.doc.get(index)
    }

    /// The elements in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.seq.doc.iter()
    }

    /// The elements as a vector.
    pub fn to_vec(&self) -> Vec<T> {
        self.seq.doc.clone()
    }

    fn out_of_range(&self, index: usize) -> ListError {
        ListError::OutOfRange {
            index,
            len: self.len(),
        }
    }

    /// Inserts `value` before `index`.
    pub fn insert(&mut self, index: usize, value: T) -> Result<(), ListError> {
        self.insert_many(index, &[value])
    }

    /// Inserts `values`, in order, before `index`.
    pub fn insert_many(&mut self, index: usize, values: &[T]) -> Result<(), ListError> {
        self.seq
            .insert(index, values, values.len())
            .map_err(|IndexOutOfRange| self.out_of_range(index))
    }

    /// Appends `value` at the end.
    pub fn push(&mut self, value: T) -> Result<(), ListError> {
        self.insert(self.len(), value)
    }

    /// Removes and returns the element at `index`.
    pub fn remove(&mut self, index: usize) -> Result<T, ListError> {
        let value = self.get(index).cloned().ok_or(self.out_of_range(index))?;
        self.delete(index..index + 1)?;
        Ok(value)
    }

    /// Deletes the elements `range`.
    pub fn delete(&mut self, range: Range<usize>) -> Result<(), ListError> {
        let end = range.end;
        self.seq
            .delete(range)
            .map_err(|IndexOutOfRange| self.out_of_range(end))
    }

    /// The version of the list: how many events of each replica it includes.
    pub fn version(&self) -> VersionVector {
        self.seq.version()
    }

    /// The heads of the history.
    pub fn heads(&self) -> Vec<Dot> {
        self.seq.heads()
    }

    /// Everything this replica has that a replica at `version` lacks, encoded.
    pub fn update_since(&self, version: &VersionVector) -> Vec<u8> {
        self.seq.update_since(version)
    }

    /// The events `until` has and `since` lacks, encoded (see
    /// [`Text::update_between`](crate::Text::update_between)).
    pub fn update_between(&self, since: &VersionVector, until: &VersionVector) -> Vec<u8> {
        self.seq.update_between(since, until)
    }

    /// Applies an update or snapshot from any replica; all or nothing. Returns how many events
    /// were new.
    pub fn apply_update(&mut self, bytes: &[u8]) -> Result<usize, LoadError> {
        self.seq.apply_update(bytes)
    }

    /// Brings in everything `other` has that this list lacks.
    pub fn merge(&mut self, other: &Self) -> Result<usize, LoadError> {
        self.seq.merge(&other.seq)
    }

    /// A cursor at `index`, sticking to the element on the side `bias`.
    pub fn cursor(&self, index: usize, bias: Bias) -> Result<Cursor, ListError> {
        self.seq
            .cursor(index, bias)
            .map_err(|IndexOutOfRange| self.out_of_range(index))
    }

    /// Where `cursor` is now.
    pub fn resolve_cursor(&self, cursor: &Cursor) -> Result<usize, CursorError> {
        self.seq.resolve_cursor(cursor)
    }

    /// The whole list with its history, encoded (a snapshot).
    pub fn encode(&self) -> Vec<u8> {
        self.seq.encode()
    }

    /// Loads a snapshot from [`encode`](Self::encode); edits will be made as `replica`.
    pub fn load(bytes: &[u8], replica: ReplicaId) -> Result<Self, LoadError> {
        let mut list = List::new(replica);
        list.apply_update(bytes)?;
        Ok(list)
    }
}

impl<T: Element> fmt::Debug for List<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("List")
            .field("replica", &self.replica())
            .field("version", &self.version())
            .field("elements", &self.seq.doc)
            .finish()
    }
}
