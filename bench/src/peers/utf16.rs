//! Code point to UTF-16 offsets, for libraries that index text by UTF-16 units.
//!
//! The traces count code points. A character outside the Basic Multilingual Plane is one code
//! point but two UTF-16 units, so in a text containing such characters a code point position
//! `p` is UTF-16 position `p + (number of them before p)`. [`AstralIndex`] keeps the code point
//! positions of those characters in the current text, updated edit by edit, so the conversion
//! costs a binary search instead of a scan of the text. For traces without such characters
//! (all sequential ones) libraries skip it entirely.

/// Sorted code point positions of the non-BMP characters of a text.
#[derive(Debug, Clone, Default)]
pub struct AstralIndex {
    positions: Vec<usize>,
}

impl AstralIndex {
    /// The index of an existing text (after a load or a merge of remote changes).
    pub fn of(text: &str) -> AstralIndex {
        let positions = text
            .chars()
            .enumerate()
            .filter(|(_, c)| c.len_utf16() == 2)
            .map(|(i, _)| i)
            .collect();
        AstralIndex { positions }
    }

    /// The UTF-16 offset of code point offset `pos`.
    pub fn to_utf16(&self, pos: usize) -> usize {
        pos + self.positions.partition_point(|&p| p < pos)
    }

    /// Records the deletion of code points `pos..pos + len`.
    pub fn delete(&mut self, pos: usize, len: usize) {
        let start = self.positions.partition_point(|&p| p < pos);
        let end = self.positions.partition_point(|&p| p < pos + len);
        self.positions.drain(start..end);
        for p in &mut self.positions[start..] {
            *p -= len;
        }
    }

    /// Records the insertion of `text` at code point `pos`.
    pub fn insert(&mut self, pos: usize, text: &str) {
        let start = self.positions.partition_point(|&p| p < pos);
        let len = text.chars().count();
        for p in &mut self.positions[start..] {
            *p += len;
        }
        let new = text
            .chars()
            .enumerate()
            .filter(|(_, c)| c.len_utf16() == 2)
            .map(|(i, _)| pos + i);
        self.positions.splice(start..start, new);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The UTF-16 offset of a code point offset, by scanning.
    fn scan(text: &str, pos: usize) -> usize {
        text.chars().take(pos).map(char::len_utf16).sum()
    }

    #[test]
    fn conversion_matches_a_scan_through_edits() {
        let mut text: Vec<char> = "a𝛝b".chars().collect();
        let mut index = AstralIndex::of(&text.iter().collect::<String>());
        let edits: [(usize, usize, &str); 4] =
            [(1, 0, "x😀"), (0, 2, ""), (2, 0, "🎉y🎉"), (3, 2, "z")];
        for (pos, delete, insert) in edits {
            text.splice(pos..pos + delete, insert.chars());
            index.delete(pos, delete);
            index.insert(pos, insert);
            let s: String = text.iter().collect();
            for p in 0..=text.len() {
                assert_eq!(index.to_utf16(p), scan(&s, p), "{s:?} at {p}");
            }
        }
    }
}
