//! Changes delivered one at a time: a replica that applies every change by itself, in any
//! causal order, ends exactly where batch delivery ends.
//!
//! Merges keep their replay state between nearby deliveries (`sequence::lanes`), so these tests
//! aim at what could make kept state stale: alternating writers, deletions of text the other
//! branch typed next to, duplicates, the receiver's own edits in between, and (in documents)
//! events of other containers and of map keys between two merges into one text.

use crdt_core::{Document, MapId, ReplicaId, Text, TextId, VersionVector};
use quickcheck::{Arbitrary, Gen};

use crate::harness::check;

fn replica(index: usize) -> ReplicaId {
    ReplicaId::from_u128(0x500 + index as u128)
}

/// A replica of either public type, with the edits the tests make.
trait Subject: Sized {
    fn base() -> Self;
    fn fork(&self, index: usize) -> Self;
    fn version(&self) -> VersionVector;
    fn update_since(&self, version: &VersionVector) -> Vec<u8>;
    fn apply(&mut self, update: &[u8]);
    /// Inserts `text` at `pos` (modulo the length + 1) of text number `which`.
    fn insert(&mut self, which: usize, pos: usize, text: &str);
    /// Deletes up to `len` chars at `pos` (modulo the length) of text number `which`.
    fn delete(&mut self, which: usize, pos: usize, len: usize);
    /// An edit that touches no text (documents only; texts insert instead).
    fn other(&mut self, n: usize);
    /// Everything visible, for comparison.
    fn state(&self) -> String;
}

impl Subject for Text {
    fn base() -> Self {
        let mut text = Text::new(replica(0));
        text.insert(0, "shared base\n").expect("in range");
        text
    }
    fn fork(&self, index: usize) -> Self {
        Text::fork(self, replica(index))
    }
    fn version(&self) -> VersionVector {
        Text::version(self)
    }
    fn update_since(&self, version: &VersionVector) -> Vec<u8> {
        Text::update_since(self, version)
    }
    fn apply(&mut self, update: &[u8]) {
        self.apply_update(update).expect("a genuine update applies");
    }
    fn insert(&mut self, _which: usize, pos: usize, text: &str) {
        let pos = pos % (self.len() + 1);
        Text::insert(self, pos, text).expect("in range");
    }
    fn delete(&mut self, _which: usize, pos: usize, len: usize) {
        if self.is_empty() {
            return;
        }
        let pos = pos % self.len();
        let end = (pos + len).min(self.len());
        Text::delete(self, pos..end).expect("in range");
    }
    fn other(&mut self, n: usize) {
        Subject::insert(self, 0, n, "#");
    }
    fn state(&self) -> String {
        self.to_string()
    }
}

/// A document with two texts and a map key written now and then.
struct Doc {
    doc: Document,
    texts: [TextId; 2],
}

impl Doc {
    fn text(&self, which: usize) -> TextId {
        self.texts[which % 2]
    }
}

impl Subject for Doc {
    fn base() -> Self {
        let mut doc = Document::new(replica(0));
        let first = doc
            .replace_with_new_text(MapId::ROOT, "a")
            .expect("new text");
        let second = doc
            .replace_with_new_text(MapId::ROOT, "b")
            .expect("new text");
        doc.text_insert(first, 0, "shared base\n")
            .expect("in range");
        doc.text_insert(second, 0, "other\n").expect("in range");
        Doc {
            doc,
            texts: [first, second],
        }
    }
    fn fork(&self, index: usize) -> Self {
        Doc {
            doc: self.doc.fork(replica(index)),
            texts: self.texts,
        }
    }
    fn version(&self) -> VersionVector {
        self.doc.version()
    }
    fn update_since(&self, version: &VersionVector) -> Vec<u8> {
        self.doc.update_since(version)
    }
    fn apply(&mut self, update: &[u8]) {
        self.doc
            .apply_update(update)
            .expect("a genuine update applies");
    }
    fn insert(&mut self, which: usize, pos: usize, text: &str) {
        let id = self.text(which);
        let len = self.doc.text_len(id).expect("a text");
        self.doc
            .text_insert(id, pos % (len + 1), text)
            .expect("in range");
    }
    fn delete(&mut self, which: usize, pos: usize, len: usize) {
        let id = self.text(which);
        let now = self.doc.text_len(id).expect("a text");
        if now == 0 {
            return;
        }
        let pos = pos % now;
        let end = (pos + len).min(now);
        self.doc.text_delete(id, pos..end).expect("in range");
    }
    fn other(&mut self, n: usize) {
        self.doc
            .set(MapId::ROOT, "key", n as i64)
            .expect("a scalar write");
    }
    fn state(&self) -> String {
        let a = self.doc.text(self.texts[0]).expect("a text");
        let b = self.doc.text(self.texts[1]).expect("a text");
        let key = format!("{:?}", self.doc.get(MapId::ROOT, "key").ok().flatten());
        format!("{a}|{b}|{key}")
    }
}

/// One step of the writers' history.
#[derive(Clone, Debug)]
enum Step {
    Insert {
        writer: u8,
        which: u8,
        pos: u16,
        text: &'static str,
    },
    Delete {
        writer: u8,
        which: u8,
        pos: u16,
        len: u8,
    },
    Other {
        writer: u8,
    },
    /// `to` learns everything `from` has (no change of its own: merges are not events).
    Sync {
        from: u8,
        to: u8,
    },
}

const PIECES: &[&str] = &["a", "b", "c", "xy", "héllo", "🙂", "\n"];

/// Writers' histories and a delivery order for their changes.
#[derive(Clone, Debug)]
struct Case {
    writers: usize,
    steps: Vec<Step>,
    /// Choices among the deliverable changes, one per delivery (wrapping); a choice above 230
    /// also makes the receiver type before that delivery, one above 245 delivers a duplicate.
    order: Vec<u8>,
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        let writer = u8::arbitrary(g) % 3;
        let which = u8::arbitrary(g) % 2;
        match u8::arbitrary(g) % 20 {
            0..=10 => Step::Insert {
                writer,
                which,
                pos: u16::arbitrary(g),
                text: PIECES[usize::from(u8::arbitrary(g)) % PIECES.len()],
            },
            11..=15 => Step::Delete {
                writer,
                which,
                pos: u16::arbitrary(g),
                len: 1 + u8::arbitrary(g) % 3,
            },
            16 => Step::Other { writer },
            _ => Step::Sync {
                from: u8::arbitrary(g) % 3,
                to: writer,
            },
        }
    }
}

impl Arbitrary for Case {
    fn arbitrary(g: &mut Gen) -> Self {
        let writers = 2 + usize::from(u8::arbitrary(g) % 2);
        let steps = (0..usize::arbitrary(g) % 80)
            .map(|_| Step::arbitrary(g))
            .collect();
        let mut order: Vec<u8> = Vec::arbitrary(g);
        if order.is_empty() {
            order.push(0);
        }
        Case {
            writers,
            steps,
            order,
        }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let (writers, order) = (self.writers, self.order.clone());
        Box::new(self.steps.shrink().map(move |steps| Case {
            writers,
            steps,
            order: order.clone(),
        }))
    }
}

/// One local change: the update holding it and the version it was made at.
struct Change {
    before: VersionVector,
    update: Vec<u8>,
}

/// Runs the writers' history, delivers every change alone to a receiver in the case's causal
/// order, and checks it against a replica that received everything as batches.
fn deliver_one_by_one<S: Subject>(case: &Case) -> bool {
    let base = S::base();
    let n = case.writers;
    let mut writers: Vec<S> = (0..n).map(|i| base.fork(i + 1)).collect();
    let mut changes: Vec<Change> = Vec::new();
    for (i, step) in case.steps.iter().enumerate() {
        let writer = match *step {
            Step::Insert { writer, .. } | Step::Delete { writer, .. } | Step::Other { writer } => {
                usize::from(writer) % n
            }
            Step::Sync { from, to } => {
                let (from, to) = (usize::from(from) % n, usize::from(to) % n);
                if from != to {
                    let update = writers[from].update_since(&writers[to].version());
                    writers[to].apply(&update);
                }
                continue;
            }
        };
        let writer = &mut writers[writer];
        let before = writer.version();
        match *step {
            Step::Insert {
                which, pos, text, ..
            } => writer.insert(usize::from(which), usize::from(pos), text),
            Step::Delete {
                which, pos, len, ..
            } => writer.delete(usize::from(which), usize::from(pos), usize::from(len)),
            Step::Other { .. } => writer.other(i),
            Step::Sync { .. } => {}
        }
        if writer.version() != before {
            changes.push(Change {
                update: writer.update_since(&before),
                before,
            });
        }
    }

    let mut receiver = base.fork(n + 1);
    let mut pending: Vec<usize> = (0..changes.len()).collect();
    let mut step = 0;
    let mut delivered: Vec<usize> = Vec::new();
    while !pending.is_empty() {
        let choice = case.order[step % case.order.len()];
        step += 1;
        if choice > 230 {
            receiver.insert(0, usize::from(choice), "r");
        }
        if choice > 245
            && let Some(&again) = delivered.last()
        {
            receiver.apply(&changes[again].update);
        }
        let version = receiver.version();
        let ready: Vec<usize> = pending
            .iter()
            .copied()
            .filter(|&c| version.includes(&changes[c].before))
            .collect();
        let Some(&next) = ready.get(usize::from(choice) % ready.len().max(1)) else {
            // Only reachable if a change depended on something never produced.
            return false;
        };
        receiver.apply(&changes[next].update);
        pending.retain(|&c| c != next);
        delivered.push(next);
    }

    let mut batch = base.fork(n + 2);
    for writer in &writers {
        batch.apply(&writer.update_since(&base.version()));
    }
    // The receiver's own edits, if it made any.
    batch.apply(&receiver.update_since(&batch.version()));
    batch.state() == receiver.state() && batch.version() == receiver.version()
}

#[test]
fn texts_receiving_changes_one_by_one_in_any_causal_order_equal_batch_delivery() {
    check(300, |case: Case| deliver_one_by_one::<Text>(&case));
}

#[test]
fn document_texts_receiving_changes_one_by_one_in_any_causal_order_equal_batch_delivery() {
    check(200, |case: Case| deliver_one_by_one::<Doc>(&case));
}

/// The pattern of issue 14: two writers type with no syncing and a third replica receives
/// their keystrokes alternately, one update each; here with deletions too.
fn alternating<S: Subject>(keystrokes: usize) -> (String, String) {
    let base = S::base();
    let mut a = base.fork(1);
    let mut b = base.fork(2);
    let mut deliveries = Vec::new();
    for i in 0..keystrokes {
        for (writer, piece) in [(&mut a, "a"), (&mut b, "B")] {
            let before = writer.version();
            if i % 7 == 6 {
                // Backspace over the last char typed, and a delete inside the base text.
                writer.delete(0, usize::MAX / 2, 1);
            } else if i % 11 == 10 {
                writer.delete(0, 3, 1);
            } else {
                writer.insert(0, 12 + i, piece);
            }
            deliveries.push(writer.update_since(&before));
        }
    }
    let mut one_by_one = base.fork(3);
    for update in &deliveries {
        one_by_one.apply(update);
    }
    let mut batch = base.fork(4);
    batch.apply(&a.update_since(&base.version()));
    batch.apply(&b.update_since(&base.version()));
    assert_eq!(one_by_one.version(), batch.version());
    (one_by_one.state(), batch.state())
}

#[test]
fn alternating_delivery_equals_batch_delivery_for_texts() {
    let (one_by_one, batch) = alternating::<Text>(300);
    assert_eq!(one_by_one, batch);
}

#[test]
fn alternating_delivery_equals_batch_delivery_for_document_texts() {
    let (one_by_one, batch) = alternating::<Doc>(300);
    assert_eq!(one_by_one, batch);
}
