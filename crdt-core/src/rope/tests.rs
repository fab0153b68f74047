//! The rope against a `String` model, with text mixing ASCII, accents, combining marks, CJK
//! and astral-plane emoji (two UTF-16 units, four UTF-8 bytes).

use quickcheck::{Arbitrary, Gen, QuickCheck};

use super::{Metrics, Rope, Unit};

const SAMPLES: [&str; 8] = ["a", "hello ", "é", "e\u{301}", "日本語", "😀", "👩‍👩‍👧", "\n"];

#[derive(Clone, Debug)]
enum Edit {
    Insert { at: u16, text: String },
    Remove { at: u16, len: u16 },
}

impl Arbitrary for Edit {
    fn arbitrary(g: &mut Gen) -> Self {
        if u8::arbitrary(g) % 3 == 0 {
            Edit::Remove {
                at: u16::arbitrary(g),
                len: u16::arbitrary(g) % 1500,
            }
        } else {
            let repeat = 1 + usize::from(u8::arbitrary(g)) % 300;
            let sample = SAMPLES[usize::from(u8::arbitrary(g)) % SAMPLES.len()];
            Edit::Insert {
                at: u16::arbitrary(g),
                text: sample.repeat(repeat),
            }
        }
    }
}

fn char_count(s: &str) -> usize {
    s.chars().count()
}

fn byte_of_char(s: &str, at: usize) -> usize {
    s.char_indices().nth(at).map_or(s.len(), |(b, _)| b)
}

fn apply(rope: &mut Rope, model: &mut String, edit: &Edit) {
    let len = char_count(model);
    match edit {
        Edit::Insert { at, text } => {
            let at = usize::from(*at) % (len + 1);
            rope.insert(at, text);
            model.insert_str(byte_of_char(model, at), text);
        }
        Edit::Remove { at, len: n } => {
            let at = usize::from(*at) % (len + 1);
            let end = (at + usize::from(*n)).min(len);
            rope.remove(at, end);
            let (from, to) = (byte_of_char(model, at), byte_of_char(model, end));
            model.replace_range(from..to, "");
        }
    }
}

#[test]
fn edits_match_a_string() {
    fn property(edits: Vec<Edit>) -> bool {
        let mut rope = Rope::new();
        let mut model = String::new();
        for edit in &edits {
            apply(&mut rope, &mut model, edit);
            if rope.metrics() != Metrics::of(&model) {
                return false;
            }
        }
        rope.to_string() == model && Rope::from_text(&model).to_string() == model
    }
    QuickCheck::new()
        .tests(300)
        .quickcheck(property as fn(Vec<Edit>) -> bool);
}

#[test]
fn conversions_match_a_string() {
    fn property(edits: Vec<Edit>, probes: Vec<u16>) -> bool {
        let mut rope = Rope::new();
        let mut model = String::new();
        for edit in &edits {
            apply(&mut rope, &mut model, edit);
        }
        let chars = char_count(&model);
        probes.iter().all(|&probe| {
            let c = usize::from(probe) % (chars + 1);
            let byte = byte_of_char(&model, c);
            let utf16: usize = model[..byte].chars().map(char::len_utf16).sum();
            let slice_ok = rope.slice(c, chars) == model[byte..];
            rope.convert(c, Unit::Chars, Unit::Bytes) == byte
                && rope.convert(c, Unit::Chars, Unit::Utf16) == utf16
                && rope.convert(utf16, Unit::Utf16, Unit::Chars) == c
                && rope.convert(byte, Unit::Bytes, Unit::Chars) == c
                && rope.to_chars(utf16, Unit::Utf16) == Some(c)
                && rope.to_chars(byte, Unit::Bytes) == Some(c)
                && slice_ok
        })
    }
    QuickCheck::new()
        .tests(200)
        .quickcheck(property as fn(Vec<Edit>, Vec<u16>) -> bool);
}

#[test]
fn the_middle_of_a_surrogate_pair_is_not_a_boundary() {
    let rope = Rope::from_text("a😀b");
    assert_eq!(rope.to_chars(1, Unit::Utf16), Some(1));
    assert_eq!(rope.to_chars(2, Unit::Utf16), None);
    assert_eq!(rope.to_chars(3, Unit::Utf16), Some(2));
    assert_eq!(rope.to_chars(4, Unit::Utf16), Some(3));
    assert_eq!(rope.to_chars(5, Unit::Utf16), None); // out of range
    assert_eq!(rope.convert(3, Unit::Utf16, Unit::Chars), 2);
}
