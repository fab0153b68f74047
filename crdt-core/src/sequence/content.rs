//! What a sequence holds: characters of text, or elements of a list.
//!
//! The sequence CRDT (causal graph, operation log, merge tracker, encoding) never looks inside
//! its content; it only cuts it into runs, stores it, and moves it into the current document.
//! [`Content`] is that interface, implemented once for text ([`TextContent`]: a `String` arena
//! and a [`Rope`]) and once for lists ([`ListContent`]: a `Vec` arena and a `Vec` document).

use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::rope::Rope;

/// The content side of a sequence. See the module documentation.
pub(crate) trait Content: 'static {
    /// Identifies encodings of this kind of sequence.
    const MAGIC: [u8; 4];
    /// A run of content: the inserted text of an operation, or the arena of all of them.
    /// Offsets into it ("storage offsets") are bytes for text and elements for lists.
    type Units: Clone + Default + fmt::Debug + PartialEq;
    /// A borrowed run: `str` or `[T]`.
    type Slice: ?Sized;
    /// The current document.
    type Doc: Clone + Default;

    /// How many units (chars, elements) a run holds.
    fn count(units: &Self::Units) -> usize;
    /// The storage length of a run.
    fn storage_len(units: &Self::Units) -> usize;
    /// The storage offset `n` units after the storage offset `start`.
    fn offset_after(units: &Self::Units, start: usize, n: usize) -> usize;
    /// The storage range `range` (empty if out of range).
    fn sub(units: &Self::Units, range: Range<usize>) -> &Self::Slice;
    /// A copy of the storage range `range`.
    fn slice(units: &Self::Units, range: Range<usize>) -> Self::Units;
    /// Appends `more`.
    fn push(units: &mut Self::Units, more: &Self::Slice);
    /// The whole run, borrowed.
    fn as_slice(units: &Self::Units) -> &Self::Slice;
    /// Keeps the first `storage_len` of storage.
    fn truncate(units: &mut Self::Units, storage_len: usize);

    /// The document's length in units.
    fn doc_len(doc: &Self::Doc) -> usize;
    /// Inserts `items` at unit index `at`.
    fn doc_insert(doc: &mut Self::Doc, at: usize, items: &Self::Slice);
    /// Removes `len` units at `at`, returning them.
    fn doc_remove(doc: &mut Self::Doc, at: usize, len: usize) -> Self::Units;
    /// A document holding `units`.
    fn doc_from_units(units: Self::Units) -> Self::Doc;
    /// The document's units.
    fn doc_to_units(doc: &Self::Doc) -> Self::Units;

    /// The wire form of a run.
    fn encode_units(units: &Self::Units) -> Vec<u8>;
    /// Reads the wire form of a run.
    fn decode_units(bytes: &[u8]) -> Result<Self::Units, &'static str>;
}

/// Plain text: chars in a `String` arena, the document in a [`Rope`].
pub(crate) struct TextContent;

impl Content for TextContent {
    const MAGIC: [u8; 4] = [0xC7, b'T', b'X', b'T'];
    type Units = String;
    type Slice = str;
    type Doc = Rope;

    fn count(units: &String) -> usize {
        units.chars().count()
    }

    fn storage_len(units: &String) -> usize {
        units.len()
    }

    fn offset_after(units: &String, start: usize, n: usize) -> usize {
        let rest = units.get(start..).unwrap_or("");
        if rest.len() == n {
            // All the rest: no need to look for char boundaries.
            return units.len();
        }
        start + rest.char_indices().nth(n).map_or(rest.len(), |(b, _)| b)
    }

    fn sub(units: &String, range: Range<usize>) -> &str {
        units.get(range).unwrap_or("")
    }

    fn slice(units: &String, range: Range<usize>) -> String {
        Self::sub(units, range).to_owned()
    }

    fn push(units: &mut String, more: &str) {
        units.push_str(more);
    }

    fn as_slice(units: &String) -> &str {
        units
    }

    fn truncate(units: &mut String, storage_len: usize) {
        units.truncate(storage_len);
    }

    fn doc_len(doc: &Rope) -> usize {
        doc.len_chars()
    }

    fn doc_insert(doc: &mut Rope, at: usize, items: &str) {
        doc.insert(at, items);
    }

    fn doc_remove(doc: &mut Rope, at: usize, len: usize) -> String {
        let removed = doc.slice(at, at + len);
        doc.remove(at, at + len);
        removed
    }

    fn doc_from_units(units: String) -> Rope {
        Rope::from_text(&units)
    }

    fn doc_to_units(doc: &Rope) -> String {
        doc.to_string()
    }

    fn encode_units(units: &String) -> Vec<u8> {
        units.as_bytes().to_vec()
    }

    fn decode_units(bytes: &[u8]) -> Result<String, &'static str> {
        String::from_utf8(bytes.to_vec()).map_err(|_| "text is not UTF-8")
    }
}

/// A list of elements of type `T`: a `Vec` arena, and the document as a `Vec`.
///
/// Inserting or removing in the document moves the elements after it, which is cheap for the
/// lists apps keep (thousands of elements); the operation log and merge are as for text.
pub(crate) struct ListContent<T>(PhantomData<T>);

impl<T> Content for ListContent<T>
where
    T: Clone + fmt::Debug + PartialEq + Serialize + DeserializeOwned + 'static,
{
    const MAGIC: [u8; 4] = [0xC7, b'L', b'S', b'T'];
    type Units = Vec<T>;
    type Slice = [T];
    type Doc = Vec<T>;

    fn count(units: &Vec<T>) -> usize {
        units.len()
    }

    fn storage_len(units: &Vec<T>) -> usize {
        units.len()
    }

    fn offset_after(units: &Vec<T>, start: usize, n: usize) -> usize {
        (start + n).min(units.len())
    }

    fn sub(units: &Vec<T>, range: Range<usize>) -> &[T] {
        units.get(range).unwrap_or(&[])
    }

    fn slice(units: &Vec<T>, range: Range<usize>) -> Vec<T> {
        Self::sub(units, range).to_vec()
    }

    fn push(units: &mut Vec<T>, more: &[T]) {
        units.extend_from_slice(more);
    }

    fn as_slice(units: &Vec<T>) -> &[T] {
        units
    }

    fn truncate(units: &mut Vec<T>, storage_len: usize) {
        units.truncate(storage_len);
    }

    fn doc_len(doc: &Vec<T>) -> usize {
        doc.len()
    }

    fn doc_insert(doc: &mut Vec<T>, at: usize, items: &[T]) {
        doc.splice(at..at, items.iter().cloned());
    }

    fn doc_remove(doc: &mut Vec<T>, at: usize, len: usize) -> Vec<T> {
        doc.drain(at..at + len).collect()
    }

    fn doc_from_units(units: Vec<T>) -> Vec<T> {
        units
    }

    fn doc_to_units(doc: &Vec<T>) -> Vec<T> {
        doc.clone()
    }

    fn encode_units(units: &Vec<T>) -> Vec<u8> {
        // Only a custom `Serialize` of `T` can fail; such an element is written as nothing and
        // the receiver refuses the update (its element count does not match).
        postcard::to_allocvec(units).unwrap_or_default()
    }

    fn decode_units(bytes: &[u8]) -> Result<Vec<T>, &'static str> {
        match postcard::take_from_bytes::<Vec<T>>(bytes) {
            Ok((units, [])) => Ok(units),
            _ => Err("list elements do not decode"),
        }
    }
}
