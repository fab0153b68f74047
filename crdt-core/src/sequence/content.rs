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
    /// What an [`Arena`] keeps to turn unit offsets into storage offsets quickly.
    type Index: Clone + Default + fmt::Debug;

    /// How many units (chars, elements) a run holds.
    fn count(units: &Self::Units) -> usize;
    /// The storage length of a run.
    fn storage_len(units: &Self::Units) -> usize;
    /// The storage offset `n` units after the storage offset `start` (clamped to the end).
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
    /// Removes `len` units at `at` of the document, without returning them.
    fn doc_delete(doc: &mut Self::Doc, at: usize, len: usize) {
        Self::doc_remove(doc, at, len);
    }
    /// A document holding `units`.
    fn doc_from_units(units: Self::Units) -> Self::Doc;
    /// The document's units.
    fn doc_to_units(doc: &Self::Doc) -> Self::Units;

    /// The index of `units` (`count` units long).
    fn build_index(units: &Self::Units) -> Self::Index;
    /// Updates `index` after `pushed` was appended to an arena that held `before` (units,
    /// storage offset) before.
    fn index_push(index: &mut Self::Index, before: (usize, usize), pushed: &Self::Slice);
    /// Forgets what `index` knows past unit `units`.
    fn index_truncate(index: &mut Self::Index, units: usize);
    /// The storage offset of unit `unit` of `arena`.
    fn storage_offset(arena: &Self::Units, index: &Self::Index, unit: usize) -> usize;
    /// The storage range of the units `units` of `arena`.
    fn storage_range(
        arena: &Self::Units,
        index: &Self::Index,
        units: Range<usize>,
    ) -> Range<usize> {
        Self::storage_offset(arena, index, units.start)
            ..Self::storage_offset(arena, index, units.end)
    }
    /// Like [`Content::storage_range`], starting from `near` (a unit offset and its storage
    /// offset, from the previous lookup) when `units` starts shortly after it, as the
    /// operations replayed in order do; updates `near` to the end of `units`.
    fn storage_range_near(
        arena: &Self::Units,
        index: &Self::Index,
        units: Range<usize>,
        near: &mut (usize, usize),
    ) -> Range<usize> {
        let _ = near;
        Self::storage_range(arena, index, units)
    }

    /// The wire form of a run.
    fn encode_units(units: &Self::Units) -> Vec<u8>;
    /// Reads the wire form of a run.
    fn decode_units(bytes: Vec<u8>) -> Result<Self::Units, &'static str>;
}

/// Plain text: chars in a `String` arena, the document in a [`Rope`].
pub(crate) struct TextContent;

impl Content for TextContent {
    const MAGIC: [u8; 4] = [0xC7, b'T', b'X', b'T'];
    type Units = String;
    type Slice = str;
    type Doc = Rope;
    type Index = TextIndex;

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

    fn doc_delete(doc: &mut Rope, at: usize, len: usize) {
        doc.remove(at, at + len);
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

    fn build_index(units: &String) -> TextIndex {
        TextIndex::build(units)
    }

    fn index_push(index: &mut TextIndex, before: (usize, usize), pushed: &str) {
        index.push(before, pushed);
    }

    fn index_truncate(index: &mut TextIndex, units: usize) {
        index.truncate(units);
    }

    fn storage_offset(arena: &String, index: &TextIndex, unit: usize) -> usize {
        index.byte_of(arena, unit)
    }

    fn storage_range(arena: &String, index: &TextIndex, units: Range<usize>) -> Range<usize> {
        // Ranges are short (an operation's text): walk to the end from the start rather than
        // looking it up from the nearest mark again.
        let start = index.byte_of(arena, units.start);
        start..byte_after(arena, start, units.len())
    }

    fn storage_range_near(
        arena: &String,
        index: &TextIndex,
        units: Range<usize>,
        near: &mut (usize, usize),
    ) -> Range<usize> {
        let (near_char, near_byte) = *near;
        let start = match units.start.checked_sub(near_char) {
            // Close after the previous lookup: walk from there (within one spacing).
            Some(gap) if gap <= TextIndex::SPACING && near_byte <= arena.len() => {
                byte_after(arena, near_byte, gap)
            }
            _ => index.byte_of(arena, units.start),
        };
        let end = byte_after(arena, start, units.len());
        *near = (units.end, end);
        start..end
    }

    fn encode_units(units: &String) -> Vec<u8> {
        units.as_bytes().to_vec()
    }

    fn decode_units(bytes: Vec<u8>) -> Result<String, &'static str> {
        String::from_utf8(bytes).map_err(|_| "text is not UTF-8")
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
    type Index = ();

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

    fn build_index(_: &Vec<T>) {}

    fn index_push(_: &mut (), _: (usize, usize), _: &[T]) {}

    fn index_truncate(_: &mut (), _: usize) {}

    fn storage_offset(_: &Vec<T>, _: &(), unit: usize) -> usize {
        unit
    }

    fn encode_units(units: &Vec<T>) -> Vec<u8> {
        // Only a custom `Serialize` of `T` can fail; such an element is written as nothing and
        // the receiver refuses the update (its element count does not match).
        postcard::to_allocvec(units).unwrap_or_default()
    }

    fn decode_units(bytes: Vec<u8>) -> Result<Vec<T>, &'static str> {
        match postcard::take_from_bytes::<Vec<T>>(&bytes) {
            Ok((units, [])) => Ok(units),
            _ => Err("list elements do not decode"),
        }
    }
}

/// Char to byte offsets of a text arena in O(log n + 256 B): nothing while the text is ASCII,
/// then marks (char offset, byte offset) at least every [`TextIndex::SPACING`] bytes after
/// the ASCII prefix.
#[derive(Clone, Debug, Default)]
pub(crate) struct TextIndex {
    /// Chars before the first non-ASCII one; `None` while everything is ASCII.
    ascii_prefix: Option<usize>,
    /// Sorted; the first is at the end of the ASCII prefix.
    marks: Vec<(usize, usize)>,
}

impl TextIndex {
    /// Bytes between marks: a lookup walks half of it on average (reading operations' text,
    /// as merges and time travel do, is dominated by it), for 16 bytes of marks per spacing.
    const SPACING: usize = 256;

    fn build(text: &str) -> TextIndex {
        let Some(first) = first_non_ascii(text.as_bytes()) else {
            return TextIndex::default();
        };
        let mut index = TextIndex {
            ascii_prefix: Some(first),
            marks: vec![(first, first)],
        };
        index.mark_within(first, first, &text[first..]);
        index
    }

    /// Adds marks inside `text`, which starts at (`chars`, `bytes`), every `SPACING` bytes.
    fn mark_within(&mut self, mut chars: usize, bytes: usize, text: &str) {
        let mut at = 0;
        while text.len() - at > Self::SPACING {
            let mut next = at + Self::SPACING;
            while !text.is_char_boundary(next) {
                next += 1;
            }
            chars += text[at..next].chars().count();
            self.marks.push((chars, bytes + next));
            at = next;
        }
    }

    fn push(&mut self, (chars, bytes): (usize, usize), pushed: &str) {
        match self.ascii_prefix {
            None if pushed.is_ascii() => {}
            None => {
                let first = first_non_ascii(pushed.as_bytes()).unwrap_or(0);
                self.ascii_prefix = Some(chars + first);
                self.marks.push((chars + first, bytes + first));
                self.mark_within(chars + first, bytes + first, &pushed[first..]);
            }
            Some(_) => {
                let last_byte = self.marks.last().map_or(0, |&(_, b)| b);
                if bytes - last_byte >= Self::SPACING {
                    self.marks.push((chars, bytes));
                }
                self.mark_within(chars, bytes, pushed);
            }
        }
    }

    fn truncate(&mut self, chars: usize) {
        match self.ascii_prefix {
            Some(prefix) if chars <= prefix => *self = TextIndex::default(),
            Some(_) => self.marks.retain(|&(c, _)| c <= chars),
            None => {}
        }
    }

    fn byte_of(&self, text: &str, char_offset: usize) -> usize {
        match self.ascii_prefix {
            Some(prefix) if char_offset > prefix => {
                let at = self.marks.partition_point(|&(c, _)| c <= char_offset);
                let (mark_chars, mark_byte) = self.marks[at.saturating_sub(1)];
                let rest = text.get(mark_byte..).unwrap_or("");
                mark_byte
                    + rest
                        .char_indices()
                        .nth(char_offset - mark_chars)
                        .map_or(rest.len(), |(b, _)| b)
            }
            _ => char_offset.min(text.len()),
        }
    }
}

/// The byte offset `chars` chars after byte offset `from` of `text` (its end if shorter).
fn byte_after(text: &str, from: usize, chars: usize) -> usize {
    let rest = text.get(from..).unwrap_or("");
    from + rest
        .char_indices()
        .nth(chars)
        .map_or(rest.len(), |(b, _)| b)
}

/// The position of the first non-ASCII byte, checking 64 bytes at a time (`is_ascii` on a
/// block is vectorized; a byte-by-byte search is not).
fn first_non_ascii(bytes: &[u8]) -> Option<usize> {
    let mut offset = 0;
    for block in bytes.chunks(64) {
        if !block.is_ascii() {
            return block.iter().position(|b| !b.is_ascii()).map(|i| offset + i);
        }
        offset += block.len();
    }
    None
}

/// The inserted content of a sequence: its units, their count, and the index from unit
/// offsets (what operations refer to) to storage offsets.
pub(crate) struct Arena<C: Content> {
    units: C::Units,
    len: usize,
    index: C::Index,
}

impl<C: Content> Clone for Arena<C> {
    fn clone(&self) -> Self {
        Arena {
            units: self.units.clone(),
            len: self.len,
            index: self.index.clone(),
        }
    }
}

impl<C: Content> Default for Arena<C> {
    fn default() -> Self {
        Arena {
            units: C::Units::default(),
            len: 0,
            index: C::Index::default(),
        }
    }
}

impl<C: Content> fmt::Debug for Arena<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Arena({} units)", self.len)
    }
}

impl<C: Content> Arena<C> {
    /// An arena holding `units`, which hold `len` units.
    pub(crate) fn from_units(units: C::Units, len: usize) -> Self {
        let index = C::build_index(&units);
        Arena { units, len, index }
    }

    /// All the units.
    pub(crate) fn units(&self) -> &C::Units {
        &self.units
    }

    /// Appends `pushed` (holding `count` units); returns its unit range.
    pub(crate) fn push(&mut self, pushed: &C::Slice, count: usize) -> Range<usize> {
        let before = (self.len, C::storage_len(&self.units));
        C::push(&mut self.units, pushed);
        C::index_push(&mut self.index, before, pushed);
        self.len += count;
        before.0..self.len
    }

    /// Keeps the first `len` units.
    pub(crate) fn truncate(&mut self, len: usize) {
        if len >= self.len {
            return;
        }
        let storage = C::storage_offset(&self.units, &self.index, len);
        C::truncate(&mut self.units, storage);
        C::index_truncate(&mut self.index, len);
        self.len = len;
    }

    fn storage_range(&self, range: Range<usize>) -> Range<usize> {
        C::storage_range(&self.units, &self.index, range)
    }

    /// The units `range`, borrowed, found from `near` (see [`Content::storage_range_near`]).
    pub(crate) fn get_near(&self, range: Range<usize>, near: &mut (usize, usize)) -> &C::Slice {
        C::sub(
            &self.units,
            C::storage_range_near(&self.units, &self.index, range, near),
        )
    }

    /// A copy of the units `range`.
    pub(crate) fn copy(&self, range: Range<usize>) -> C::Units {
        C::slice(&self.units, self.storage_range(range))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quickcheck::QuickCheck;

    const PIECES: [&str; 5] = ["a", "héllo ", "😀", "日本", "plain ascii text "];

    #[test]
    fn text_arena_offsets_match_a_scan() {
        fn property(pushes: Vec<(u8, u16)>, cut: u16) -> bool {
            let mut arena = Arena::<TextContent>::default();
            let mut model = String::new();
            for (piece, repeat) in pushes {
                let text =
                    PIECES[usize::from(piece) % PIECES.len()].repeat(usize::from(repeat) % 300);
                arena.push(&text, text.chars().count());
                model.push_str(&text);
            }
            let chars = model.chars().count();
            let check = |arena: &Arena<TextContent>, model: &str| {
                let bytes: Vec<usize> = model
                    .char_indices()
                    .map(|(b, _)| b)
                    .chain([model.len()])
                    .collect();
                let n = bytes.len() - 1;
                (0..=n).step_by(7).chain([n]).all(|c| {
                    TextContent::storage_offset(arena.units(), &arena.index, c) == bytes[c]
                }) && Arena::<TextContent>::from_units(model.to_owned(), n).copy(0..n) == model
            };
            let ok = check(&arena, &model);
            let keep = usize::from(cut) % (chars + 1);
            arena.truncate(keep);
            let byte = model
                .char_indices()
                .nth(keep)
                .map_or(model.len(), |(b, _)| b);
            model.truncate(byte);
            ok && check(&arena, &model)
        }
        QuickCheck::new()
            .tests(300)
            .quickcheck(property as fn(Vec<(u8, u16)>, u16) -> bool);
    }
}
