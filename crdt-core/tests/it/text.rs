//! Randomized properties of `Text`: convergence, agreement with a reference list CRDT, no
//! interleaving, encoding round trips, and untrusted bytes.

use std::collections::HashSet;

use crdt_core::{Bias, Dot, List, ReplicaId, Text, VersionVector};
use quickcheck::{Arbitrary, Gen};

use crate::harness::check;

fn replica(index: usize) -> ReplicaId {
    ReplicaId::from_u128(0x100 + index as u128)
}

// ---------------------------------------------------------------------------------------------
// A reference CRDT: the plain YjsMod / FugueMax list, one item per char, with tombstones.
// Eg-walker replays with exactly this integration rule, so texts must match it char for char.

#[derive(Clone, Debug)]
struct RefItem {
    id: Dot,
    left: Option<Dot>,
    right: Option<Dot>,
    ch: char,
    deleted: bool,
}

#[derive(Clone, Debug)]
enum RefOp {
    Insert(RefItem),
    Delete { op: Dot, target: Dot },
}

impl RefOp {
    fn id(&self) -> Dot {
        match self {
            RefOp::Insert(item) => item.id,
            RefOp::Delete { op, .. } => *op,
        }
    }
}

#[derive(Clone, Debug)]
struct RefList {
    replica: ReplicaId,
    next_counter: u64,
    items: Vec<RefItem>,
    log: Vec<RefOp>,
    known: HashSet<Dot>,
}

impl RefList {
    fn new(replica: ReplicaId) -> Self {
        RefList {
            replica,
            next_counter: 1,
            items: Vec::new(),
            log: Vec::new(),
            known: HashSet::new(),
        }
    }

    fn text(&self) -> String {
        self.items
            .iter()
            .filter(|i| !i.deleted)
            .map(|i| i.ch)
            .collect()
    }

    fn index_of(&self, id: Option<Dot>) -> Option<usize> {
        id.map(|id| {
            self.items
                .iter()
                .position(|i| i.id == id)
                .expect("origins are known")
        })
    }

    /// The index just after the `pos`-th visible item (0 for `pos == 0`).
    fn index_after_visible(&self, pos: usize) -> usize {
        if pos == 0 {
            return 0;
        }
        let mut seen = 0;
        for (index, item) in self.items.iter().enumerate() {
            if !item.deleted {
                seen += 1;
                if seen == pos {
                    return index + 1;
                }
            }
        }
        panic!("position out of range")
    }

    fn fresh_dot(&mut self) -> Dot {
        let dot = Dot::new(self.replica, self.next_counter);
        self.next_counter += 1;
        dot
    }

    fn local_insert(&mut self, pos: usize, text: &str) {
        for (i, ch) in text.chars().enumerate() {
            let index = self.index_after_visible(pos + i);
            let item = RefItem {
                id: self.fresh_dot(),
                left: index.checked_sub(1).map(|l| self.items[l].id),
                right: self.items.get(index).map(|r| r.id),
                ch,
                deleted: false,
            };
            self.apply(RefOp::Insert(item));
        }
    }

    fn local_delete(&mut self, pos: usize, len: usize) {
        for _ in 0..len {
            let index = self.index_after_visible(pos + 1) - 1;
            let op = RefOp::Delete {
                op: self.fresh_dot(),
                target: self.items[index].id,
            };
            self.apply(op);
        }
    }

    fn apply(&mut self, op: RefOp) {
        if !self.known.insert(op.id()) {
            return;
        }
        match &op {
            RefOp::Insert(item) => self.integrate(item.clone()),
            RefOp::Delete { target, .. } => {
                let index = self.index_of(Some(*target)).expect("target known");
                self.items[index].deleted = true;
            }
        }
        self.log.push(op);
    }

    /// YjsMod integration (the "punnet square" of diamond-types' reference CRDTs).
    fn integrate(&mut self, item: RefItem) {
        let left = self.index_of(item.left).map_or(-1, |i| i as isize);
        let right = self
            .index_of(item.right)
            .map_or(self.items.len() as isize, |i| i as isize);
        let mut destination = (left + 1) as usize;
        let mut scanning = false;
        let mut i = destination;
        loop {
            if !scanning {
                destination = i;
            }
            if i == self.items.len() || i as isize == right {
                break;
            }
            let other = &self.items[i];
            let other_left = self.index_of(other.left).map_or(-1, |x| x as isize);
            let other_right = self
                .index_of(other.right)
                .map_or(self.items.len() as isize, |x| x as isize);
            if other_left < left {
                break;
            } else if other_left == left {
                if other_right < right {
                    scanning = true;
                } else if other_right == right {
                    if item.id.replica < other.id.replica {
                        break;
                    }
                    scanning = false;
                } else {
                    scanning = false;
                }
            }
            i += 1;
        }
        self.items.insert(destination, item);
    }

    fn merge_from(&mut self, other: &RefList) {
        for op in &other.log {
            self.apply(op.clone());
        }
    }
}

// ---------------------------------------------------------------------------------------------

const PIECES: [&str; 7] = ["a", "bc", "xyz", "é", "😀", "hello ", "\n"];

#[derive(Clone, Debug)]
enum Step {
    Insert {
        at: u8,
        pos: u16,
        text: &'static str,
    },
    Delete {
        at: u8,
        pos: u16,
        len: u8,
    },
    Sync {
        from: u8,
        to: u8,
    },
}

#[derive(Clone, Debug)]
struct Scenario {
    replicas: usize,
    steps: Vec<Step>,
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        let at = u8::arbitrary(g) % 4;
        match u8::arbitrary(g) % 10 {
            0..=4 => Step::Insert {
                at,
                pos: u16::arbitrary(g),
                text: PIECES[usize::from(u8::arbitrary(g)) % PIECES.len()],
            },
            5..=6 => Step::Delete {
                at,
                pos: u16::arbitrary(g),
                len: 1 + u8::arbitrary(g) % 4,
            },
            _ => Step::Sync {
                from: u8::arbitrary(g) % 4,
                to: at,
            },
        }
    }
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        let replicas = 3 + usize::from(u8::arbitrary(g) % 2);
        let steps = (0..usize::arbitrary(g) % 50)
            .map(|_| Step::arbitrary(g))
            .collect();
        Scenario { replicas, steps }
    }

    fn shrink(&self) -> Box<dyn Iterator<Item = Self>> {
        let replicas = self.replicas;
        Box::new(
            self.steps
                .shrink()
                .map(move |steps| Scenario { replicas, steps }),
        )
    }
}

/// Runs the scenario on `Text` replicas and reference replicas side by side; syncs go through
/// encoded updates. Returns false at the first disagreement.
fn texts_match_the_reference_crdt(scenario: Scenario) -> bool {
    let n = scenario.replicas;
    let mut texts: Vec<Text> = (0..n).map(|i| Text::new(replica(i))).collect();
    let mut references: Vec<RefList> = (0..n).map(|i| RefList::new(replica(i))).collect();
    for step in &scenario.steps {
        match *step {
            Step::Insert { at, pos, text } => {
                let at = usize::from(at) % n;
                let pos = usize::from(pos) % (texts[at].len() + 1);
                texts[at].insert(pos, text).expect("in range");
                references[at].local_insert(pos, text);
            }
            Step::Delete { at, pos, len } => {
                let at = usize::from(at) % n;
                let len_now = texts[at].len();
                if len_now == 0 {
                    continue;
                }
                let pos = usize::from(pos) % len_now;
                let end = (pos + usize::from(len)).min(len_now);
                texts[at].delete(pos..end).expect("in range");
                references[at].local_delete(pos, end - pos);
            }
            Step::Sync { from, to } => {
                let (from, to) = (usize::from(from) % n, usize::from(to) % n);
                if from == to {
                    continue;
                }
                let update = texts[from].update_since(&texts[to].version());
                texts[to].apply_update(&update).expect("updates apply");
                let source = references[from].clone();
                references[to].merge_from(&source);
            }
        }
        if texts
            .iter()
            .zip(&references)
            .any(|(t, r)| t.to_string() != r.text())
        {
            return false;
        }
    }
    // Everyone syncs with everyone.
    for to in 0..n {
        for from in 0..n {
            if from != to {
                let update = texts[from].update_since(&texts[to].version());
                texts[to].apply_update(&update).expect("updates apply");
            }
        }
    }
    let first = texts[0].to_string();
    let references_final = {
        let mut all = references[0].clone();
        for other in &references[1..] {
            all.merge_from(other);
        }
        all.text()
    };
    texts
        .iter()
        .all(|t| t.to_string() == first && t.version() == texts[0].version())
        && first == references_final
}

#[test]
fn texts_converge_and_match_the_reference_crdt() {
    check(300, texts_match_the_reference_crdt);
}

/// Two or three replicas fork from a shared text and each types a run char by char at the same
/// place; after merging, each run is contiguous in the result.
#[derive(Clone, Debug)]
struct ConcurrentTyping {
    base: String,
    pos: u8,
    runs: Vec<String>,
    merge_order: Vec<u8>,
}

impl Arbitrary for ConcurrentTyping {
    fn arbitrary(g: &mut Gen) -> Self {
        let runs = (0..2 + usize::from(u8::arbitrary(g) % 2))
            .map(|i| {
                let letter = ['a', 'b', 'c'][i];
                (0..1 + usize::from(u8::arbitrary(g) % 6))
                    .map(|k| format!("{letter}{k}"))
                    .collect::<String>()
            })
            .collect();
        ConcurrentTyping {
            base: "0123456789"
                .chars()
                .take(usize::from(u8::arbitrary(g) % 10))
                .collect(),
            pos: u8::arbitrary(g),
            runs,
            merge_order: Arbitrary::arbitrary(g),
        }
    }
}

fn concurrent_runs_never_interleave(case: ConcurrentTyping) -> bool {
    let mut base = Text::new(replica(99));
    base.insert(0, &case.base).expect("in range");
    let pos = usize::from(case.pos) % (base.len() + 1);
    let mut replicas: Vec<Text> = (0..case.runs.len())
        .map(|i| base.fork(replica(i)))
        .collect();
    for (text, run) in replicas.iter_mut().zip(&case.runs) {
        for (i, ch) in run.chars().enumerate() {
            text.insert(pos + i, &ch.to_string()).expect("in range");
        }
    }
    // Merge in a random order into the first, then everywhere.
    let mut order: Vec<usize> = case
        .merge_order
        .iter()
        .map(|&i| usize::from(i) % replicas.len())
        .collect();
    order.extend(0..replicas.len());
    // Only merges and is read, never edits.
    let mut merged = replicas[0].duplicate_same_replica();
    for i in order {
        merged.merge(&replicas[i]).expect("merges");
    }
    let result = merged.to_string();
    case.runs.iter().all(|run| result.contains(run.as_str()))
}

#[test]
fn concurrent_runs_at_one_place_never_interleave() {
    check(500, concurrent_runs_never_interleave);
}

/// Encoding a random history and loading it gives the same text and version; an update
/// between two versions brings a replica at the first exactly to the second.
fn encodings_round_trip(scenario: Scenario) -> bool {
    let mut text = Text::new(replica(0));
    let mut other = Text::new(replica(1));
    let mut versions: Vec<VersionVector> = vec![VersionVector::new()];
    for step in &scenario.steps {
        match *step {
            Step::Insert {
                at,
                pos,
                text: piece,
            } => {
                let target = if at % 2 == 0 { &mut text } else { &mut other };
                let pos = usize::from(pos) % (target.len() + 1);
                target.insert(pos, piece).expect("in range");
            }
            Step::Delete { at, pos, len } => {
                let target = if at % 2 == 0 { &mut text } else { &mut other };
                if target.is_empty() {
                    continue;
                }
                let pos = usize::from(pos) % target.len();
                let end = (pos + usize::from(len)).min(target.len());
                target.delete(pos..end).expect("in range");
            }
            Step::Sync { .. } => {
                text.merge(&other).expect("merges");
            }
        }
        versions.push(text.version());
    }
    let loaded = Text::load(&text.encode(), replica(5)).expect("loads");
    let round_trip = loaded.to_string() == text.to_string() && loaded.version() == text.version();
    let a = &versions[versions.len() / 3];
    let b = &versions[versions.len() * 2 / 3];
    let mut at_a = Text::new(replica(6));
    at_a.apply_update(&text.update_between(&VersionVector::new(), a))
        .expect("applies");
    at_a.apply_update(&text.update_between(a, b))
        .expect("applies");
    round_trip && at_a.version() == *b
}

#[test]
fn encodings_round_trip_and_updates_between_versions_are_exact() {
    check(200, encodings_round_trip);
}

fn random_bytes_are_refused_or_applied_whole(bytes: Vec<u8>) -> bool {
    let mut text = Text::new(replica(0));
    text.insert(0, "keep me").expect("in range");
    let before = (text.to_string(), text.version());
    match text.apply_update(&bytes) {
        Ok(_) => true,
        Err(_) => (text.to_string(), text.version()) == before,
    }
}

#[test]
fn random_bytes_never_panic_and_never_half_apply() {
    check(2000, random_bytes_are_refused_or_applied_whole);
}

/// Cursors follow their character: texts made of unique characters are edited concurrently by
/// three replicas; a cursor taken at some point resolves, at every replica that can see it, to
/// the current index of the character it was anchored to (or stays in range if it was deleted).
fn cursors_follow_their_character((scenario, probe, before): (Scenario, u16, bool)) -> bool {
    let n = scenario.replicas;
    let mut texts: Vec<Text> = (0..n).map(|i| Text::new(replica(i))).collect();
    let mut next_char = 0x4E00u32;
    let mut unique = |len: usize| -> String {
        (0..len)
            .map(|_| {
                next_char += 1;
                char::from_u32(next_char).expect("CJK block")
            })
            .collect()
    };
    let mut cursors: Vec<(usize, crdt_core::Cursor, Option<char>)> = Vec::new();
    let bias = if before { Bias::Before } else { Bias::After };
    for (step_index, step) in scenario.steps.iter().enumerate() {
        match *step {
            Step::Insert { at, pos, text } => {
                let at = usize::from(at) % n;
                let pos = usize::from(pos) % (texts[at].len() + 1);
                let piece = unique(text.chars().count());
                texts[at].insert(pos, &piece).expect("in range");
            }
            Step::Delete { at, pos, len } => {
                let at = usize::from(at) % n;
                let len_now = texts[at].len();
                if len_now > 0 {
                    let pos = usize::from(pos) % len_now;
                    let end = (pos + usize::from(len)).min(len_now);
                    texts[at].delete(pos..end).expect("in range");
                }
            }
            Step::Sync { from, to } => {
                let (from, to) = (usize::from(from) % n, usize::from(to) % n);
                if from != to {
                    let update = texts[from].update_since(&texts[to].version());
                    texts[to].apply_update(&update).expect("applies");
                }
            }
        }
        // Take a cursor at one replica now and then.
        if step_index % 3 == 0 {
            let owner = (step_index + usize::from(probe)) % n;
            let text = &texts[owner];
            let index = usize::from(probe) % (text.len() + 1);
            let anchored = if before {
                index
                    .checked_sub(1)
                    .and_then(|i| text.to_string().chars().nth(i))
            } else {
                text.to_string().chars().nth(index)
            };
            cursors.push((owner, text.cursor(index, bias).expect("in range"), anchored));
        }
    }
    for to in 0..n {
        for from in 0..n {
            if from != to {
                let update = texts[from].update_since(&texts[to].version());
                texts[to].apply_update(&update).expect("applies");
            }
        }
    }
    let final_text: Vec<char> = texts[0].to_string().chars().collect();
    cursors.iter().all(|(_, cursor, anchored)| {
        texts.iter().all(|text| {
            let Ok(position) = text.resolve_cursor(cursor) else {
                return false;
            };
            match anchored.and_then(|c| final_text.iter().position(|&x| x == c)) {
                Some(index) if before => position == index + 1,
                Some(index) => position == index,
                None => position <= final_text.len(),
            }
        })
    })
}

#[test]
fn cursors_follow_their_character_through_concurrent_edits() {
    check(300, cursors_follow_their_character);
}

/// The same sequence CRDT backs `List`: a list of chars edited exactly like a text, synced
/// through encoded updates, holds the text's characters at every step, and its snapshots load.
fn lists_behave_like_texts(scenario: Scenario) -> bool {
    let n = scenario.replicas;
    let mut texts: Vec<Text> = (0..n).map(|i| Text::new(replica(i))).collect();
    let mut lists: Vec<List<char>> = (0..n).map(|i| List::new(replica(i))).collect();
    let same = |t: &Text, l: &List<char>| t.to_string().chars().eq(l.iter().copied());
    for step in &scenario.steps {
        match *step {
            Step::Insert { at, pos, text } => {
                let at = usize::from(at) % n;
                let pos = usize::from(pos) % (texts[at].len() + 1);
                texts[at].insert(pos, text).expect("in range");
                let chars: Vec<char> = text.chars().collect();
                lists[at].insert_many(pos, &chars).expect("in range");
            }
            Step::Delete { at, pos, len } => {
                let at = usize::from(at) % n;
                let len_now = texts[at].len();
                if len_now == 0 {
                    continue;
                }
                let pos = usize::from(pos) % len_now;
                let end = (pos + usize::from(len)).min(len_now);
                texts[at].delete(pos..end).expect("in range");
                lists[at].delete(pos..end).expect("in range");
            }
            Step::Sync { from, to } => {
                let (from, to) = (usize::from(from) % n, usize::from(to) % n);
                if from == to {
                    continue;
                }
                let update = texts[from].update_since(&texts[to].version());
                texts[to].apply_update(&update).expect("applies");
                let update = lists[from].update_since(&lists[to].version());
                lists[to].apply_update(&update).expect("applies");
            }
        }
        if !texts.iter().zip(&lists).all(|(t, l)| same(t, l)) {
            return false;
        }
    }
    lists.iter().all(|list| {
        List::<char>::load(&list.encode(), replica(9))
            .map(|loaded| loaded.to_vec() == list.to_vec() && loaded.version() == list.version())
            .unwrap_or(false)
    })
}

#[test]
fn lists_behave_like_texts_and_round_trip() {
    check(300, lists_behave_like_texts);
}

#[test]
fn list_updates_are_not_text_updates() {
    let mut list: List<u64> = List::new(replica(1));
    list.push(7).expect("in range");
    let mut text = Text::new(replica(2));
    assert_eq!(
        text.apply_update(&list.encode()),
        Err(crdt_core::LoadError::UnknownFormat)
    );
}

/// A peer can write bytes with a correct checksum around any content: corrupt the body of a
/// real snapshot or update, fix the checksum, and apply it to an empty and to a non-empty text.
/// It must never panic, and a refused update must leave the text as it was.
fn forged_updates_never_panic(
    (scenario, edits, cut, snapshot): (Scenario, Vec<(u16, u8)>, u16, bool),
) -> bool {
    let mut source = Text::new(replica(0));
    for step in &scenario.steps {
        if let Step::Insert { pos, text, .. } = *step {
            let pos = usize::from(pos) % (source.len() + 1);
            source.insert(pos, text).expect("in range");
        } else if let Step::Delete { pos, len, .. } = *step
            && !source.is_empty()
        {
            let pos = usize::from(pos) % source.len();
            let end = (pos + usize::from(len)).min(source.len());
            source.delete(pos..end).expect("in range");
        }
    }
    let mut bytes = if snapshot {
        source.encode()
    } else {
        source.update_since(&VersionVector::new())
    };
    const HEADER: usize = 10;
    for (position, value) in edits {
        if bytes.len() > HEADER {
            let at = HEADER + usize::from(position) % (bytes.len() - HEADER);
            bytes[at] = value;
        }
    }
    let keep = bytes.len() - usize::from(cut) % (bytes.len() / 3 + 1);
    bytes.truncate(keep.max(HEADER));
    let checksum = crc32fast::hash(&bytes[HEADER..]).to_le_bytes();
    bytes[6..10].copy_from_slice(&checksum);

    let mut empty = Text::new(replica(1));
    let mut busy = Text::new(replica(2));
    busy.insert(0, "already here").expect("in range");
    let before = (busy.to_string(), busy.version());
    let _ = empty.apply_update(&bytes);
    match busy.apply_update(&bytes) {
        Ok(_) => true,
        Err(_) => (busy.to_string(), busy.version()) == before,
    }
}

#[test]
fn forged_updates_with_valid_checksums_never_panic() {
    check(2000, forged_updates_never_panic);
}

/// Time travel: every (version, text) a replica went through reads back from the merge of
/// all replicas with `text_at`, whatever the concurrency.
fn every_past_version_reads_back(scenario: Scenario) -> bool {
    let n = scenario.replicas;
    let mut texts: Vec<Text> = (0..n).map(|i| Text::new(replica(i))).collect();
    let mut seen = Vec::new();
    for step in &scenario.steps {
        let at = match *step {
            Step::Insert { at, pos, text } => {
                let at = usize::from(at) % n;
                let pos = usize::from(pos) % (texts[at].len() + 1);
                texts[at].insert(pos, text).expect("in range");
                at
            }
            Step::Delete { at, pos, len } => {
                let at = usize::from(at) % n;
                let len_now = texts[at].len();
                if len_now == 0 {
                    continue;
                }
                let pos = usize::from(pos) % len_now;
                let end = (pos + usize::from(len)).min(len_now);
                texts[at].delete(pos..end).expect("in range");
                at
            }
            Step::Sync { from, to } => {
                let (from, to) = (usize::from(from) % n, usize::from(to) % n);
                if from == to {
                    continue;
                }
                let update = texts[from].update_since(&texts[to].version());
                texts[to].apply_update(&update).expect("updates apply");
                to
            }
        };
        seen.push((texts[at].version(), texts[at].to_string()));
    }
    // Only merges and is read, never edits.
    let mut all = texts[0].duplicate_same_replica();
    for other in &texts[1..] {
        all.merge(other).expect("merges");
    }
    seen.iter()
        .all(|(version, text)| all.text_at(version).ok().as_ref() == Some(text))
}

#[test]
fn every_past_version_reads_back_with_text_at() {
    check(300, every_past_version_reads_back);
}

#[test]
fn text_at_refuses_versions_it_does_not_have() {
    let mut a = Text::new(replica(1));
    a.insert(0, "ab").expect("in range");
    let mut b = a.fork(replica(2));
    b.insert(2, "c").expect("in range");
    let ahead = b.version();
    assert!(matches!(
        a.text_at(&ahead),
        Err(crdt_core::HistoryError::UnknownEvent(_))
    ));
    a.merge(&b).expect("merges");
    assert_eq!(a.text_at(&ahead).expect("known now"), "abc");
    // b's event without a's events it depends on.
    let not_closed: VersionVector = [(replica(2), 1)].into_iter().collect();
    assert!(matches!(
        a.text_at(&not_closed),
        Err(crdt_core::HistoryError::NotCausallyClosed { .. })
    ));
}
