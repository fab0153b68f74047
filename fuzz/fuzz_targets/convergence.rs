//! Convergence under any delivery schedule: two to four replicas edit a `Document` (every
//! container kind, including transactions that fail halfway) and a set of state-based CRDTs;
//! their sync messages (document sessions) and deltas travel as bytes on links where the
//! input drops, duplicates and reorders them. After a full sync every replica must hold the
//! same document and the same states, and invariants hold all along: indices in range,
//! version vectors consistent with the history, deltas included after merging, every decode
//! equal to what was encoded.
#![no_main]

use std::collections::BTreeMap;
use std::fmt::Write;

use arbitrary::Arbitrary;
use crdt_core::codec::Encode;
use crdt_core::{
    AwSet, ContainerId, ContainerKind, CounterId, DocError, Document, DwFlag, EwFlag, GCounter,
    GSet, ListId, LwwRegister, MapId, Message, MvRegister, OrMap, PNCounter, RegisterId, ReplicaId,
    RwSet, StateCrdt, SyncError, SyncSession, TextId, Transaction, TwoPSet, Value,
};
use libfuzzer_sys::fuzz_target;

const KEYS: [&str; 4] = ["a", "b", "c", "d"];
const WORDS: [&str; 5] = ["x", "yz", "é", "🦀", "\n"];
const MAX_STEPS: usize = 256;

#[derive(Arbitrary, Debug)]
struct Scenario {
    replicas: u8,
    steps: Vec<Step>,
}

#[derive(Arbitrary, Debug)]
enum Step {
    /// A document change at a replica (its session messages go on the links).
    Change {
        at: u8,
        edits: Vec<DocEdit>,
        fail: bool,
    },
    /// A state-based edit at a replica (its delta goes on the links to every other).
    State { at: u8, edit: StateEdit },
    /// The `pick`-th message on the `link`-th non-empty link arrives (any order).
    Deliver { link: u8, pick: u8 },
    /// A message is duplicated.
    Duplicate { link: u8, pick: u8 },
    /// A message is lost.
    Drop { link: u8, pick: u8 },
    /// A replica says hello to a peer again (what a reconnect does).
    Hello { from: u8, to: u8 },
}

#[derive(Arbitrary, Debug)]
enum DocEdit {
    MapSet {
        target: u8,
        key: u8,
        value: i8,
    },
    MapDelete {
        target: u8,
        key: u8,
    },
    MapNew {
        target: u8,
        key: u8,
        kind: u8,
    },
    ListInsert {
        target: u8,
        index: u8,
        value: i8,
    },
    ListInsertNew {
        target: u8,
        index: u8,
        kind: u8,
    },
    ListDelete {
        target: u8,
        index: u8,
        len: u8,
    },
    TextInsert {
        target: u8,
        index: u8,
        word: u8,
    },
    TextDelete {
        target: u8,
        index: u8,
        len: u8,
    },
    Increment {
        target: u8,
        by: i8,
    },
    RegisterSet {
        target: u8,
        value: i8,
    },
    RegisterClear {
        target: u8,
    },
    /// Opens the named container of a kind at a key (`text_at`, ...).
    MapNamed {
        target: u8,
        key: u8,
        kind: u8,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum StateEdit {
    GCounter(u8),
    PnAdd(i8),
    Lww(u8),
    MvWrite(u8),
    MvClear,
    GSetInsert(u8),
    TwoPInsert(u8),
    TwoPRemove(u8),
    AwAdd(u8),
    AwRemove(u8),
    AwClear,
    RwAdd(u8),
    RwRemove(u8),
    EwEnable,
    EwDisable,
    DwEnable,
    DwDisable,
    MapAdd { key: u8, element: u8 },
    MapRemoveElement { key: u8, element: u8 },
    MapRemove { key: u8 },
}

/// Every state-based type of `crdt_core::state`, one of each per replica.
#[derive(Clone, Debug, Default, PartialEq)]
struct States {
    g_counter: GCounter,
    pn_counter: PNCounter,
    lww: LwwRegister<u8>,
    mv: MvRegister<u8>,
    g_set: GSet<u8>,
    two_p: TwoPSet<u8>,
    aw: AwSet<u8>,
    rw: RwSet<u8>,
    ew: EwFlag,
    dw: DwFlag,
    map: OrMap<u8, AwSet<u8>>,
}

/// What travels on a link.
#[derive(Clone, Debug)]
enum Packet {
    /// An encoded sync message.
    Sync(Vec<u8>),
    /// An encoded delta (or whole state) of the field `field` of `States`.
    Delta { field: u8, bytes: Vec<u8> },
}

/// Encodes `value`, checks the bytes decode to an equal value, and returns them.
fn encoded<T: Encode + PartialEq + std::fmt::Debug>(value: &T) -> Vec<u8> {
    let bytes = value.encode();
    assert_eq!(
        T::decode(&bytes).as_ref(),
        Ok(value),
        "decode(encode(x)) != x"
    );
    bytes
}

/// Decodes `bytes` as a `T` and merges it into `state`, checking the join includes both.
fn merge_into<T: Encode + StateCrdt + std::fmt::Debug>(state: &mut T, bytes: &[u8]) {
    let delta = T::decode(bytes).expect("what we encoded decodes");
    let before = state.clone();
    state.merge(&delta);
    assert!(state.includes(&delta), "merge result lacks the delta");
    assert!(state.includes(&before), "merge result lacks the old state");
}

impl States {
    /// Applies an edit as `replica`; returns the delta as a packet.
    fn edit(&mut self, replica: ReplicaId, edit: StateEdit) -> Packet {
        let (field, bytes) = match edit {
            StateEdit::GCounter(n) => (0, encoded(&self.g_counter.increment(replica, n.into()))),
            StateEdit::PnAdd(n) => (1, encoded(&self.pn_counter.add(replica, n.into()))),
            StateEdit::Lww(v) => (2, encoded(&self.lww.set(replica, v))),
            StateEdit::MvWrite(v) => (3, encoded(&self.mv.set(replica, v))),
            StateEdit::MvClear => (3, encoded(&self.mv.clear())),
            StateEdit::GSetInsert(v) => (4, encoded(&self.g_set.insert(v))),
            StateEdit::TwoPInsert(v) => (5, encoded(&self.two_p.insert(v))),
            StateEdit::TwoPRemove(v) => (5, encoded(&self.two_p.remove(&v))),
            StateEdit::AwAdd(v) => (6, encoded(&self.aw.insert(replica, v))),
            StateEdit::AwRemove(v) => (6, encoded(&self.aw.remove(&v))),
            StateEdit::AwClear => (6, encoded(&self.aw.clear())),
            StateEdit::RwAdd(v) => (7, encoded(&self.rw.insert(replica, v))),
            StateEdit::RwRemove(v) => (7, encoded(&self.rw.remove(replica, &v))),
            StateEdit::EwEnable => (8, encoded(&self.ew.enable(replica))),
            StateEdit::EwDisable => (8, encoded(&self.ew.disable())),
            StateEdit::DwEnable => (9, encoded(&self.dw.enable(replica))),
            StateEdit::DwDisable => (9, encoded(&self.dw.disable(replica))),
            StateEdit::MapAdd { key, element } => (
                10,
                encoded(
                    &self
                        .map
                        .update(replica, key % 4, |set| set.insert(replica, element)),
                ),
            ),
            StateEdit::MapRemoveElement { key, element } => (
                10,
                encoded(
                    &self
                        .map
                        .update(replica, key % 4, |set| set.remove(&element)),
                ),
            ),
            StateEdit::MapRemove { key } => (10, encoded(&self.map.remove(&(key % 4)))),
        };
        Packet::Delta { field, bytes }
    }

    /// Every field as a whole-state packet (what a full sync sends).
    fn full(&self) -> Vec<Packet> {
        let fields = [
            encoded(&self.g_counter),
            encoded(&self.pn_counter),
            encoded(&self.lww),
            encoded(&self.mv),
            encoded(&self.g_set),
            encoded(&self.two_p),
            encoded(&self.aw),
            encoded(&self.rw),
            encoded(&self.ew),
            encoded(&self.dw),
            encoded(&self.map),
        ];
        fields
            .into_iter()
            .enumerate()
            .map(|(field, bytes)| Packet::Delta {
                field: field as u8,
                bytes,
            })
            .collect()
    }

    fn merge(&mut self, field: u8, bytes: &[u8]) {
        match field {
            0 => merge_into(&mut self.g_counter, bytes),
            1 => merge_into(&mut self.pn_counter, bytes),
            2 => merge_into(&mut self.lww, bytes),
            3 => merge_into(&mut self.mv, bytes),
            4 => merge_into(&mut self.g_set, bytes),
            5 => merge_into(&mut self.two_p, bytes),
            6 => merge_into(&mut self.aw, bytes),
            7 => merge_into(&mut self.rw, bytes),
            8 => merge_into(&mut self.ew, bytes),
            9 => merge_into(&mut self.dw, bytes),
            _ => merge_into(&mut self.map, bytes),
        }
    }
}

struct Replica {
    id: ReplicaId,
    doc: Document,
    /// Sessions with every other replica, by index.
    sessions: BTreeMap<usize, SyncSession>,
    states: States,
}

struct World {
    replicas: Vec<Replica>,
    /// Messages in flight per (from, to).
    links: BTreeMap<(usize, usize), Vec<Packet>>,
}

impl World {
    fn new(count: usize) -> World {
        let mut world = World {
            replicas: (0..count)
                .map(|i| Replica {
                    id: ReplicaId::from_u128(i as u128 + 1),
                    doc: Document::new(ReplicaId::from_u128(i as u128 + 1)),
                    sessions: (0..count)
                        .filter(|j| *j != i)
                        .map(|j| (j, SyncSession::new("doc")))
                        .collect(),
                    states: States::default(),
                })
                .collect(),
            links: BTreeMap::new(),
        };
        for from in 0..count {
            for to in 0..count {
                if from != to {
                    world.hello(from, to);
                }
            }
        }
        world
    }

    fn send(&mut self, from: usize, to: usize, packet: Packet) {
        self.links.entry((from, to)).or_default().push(packet);
    }

    fn send_message(&mut self, from: usize, to: usize, message: &Message) {
        let bytes = message.encode();
        assert_eq!(Message::decode(&bytes).as_ref(), Ok(message));
        self.send(from, to, Packet::Sync(bytes));
    }

    fn hello(&mut self, from: usize, to: usize) {
        let replica = &mut self.replicas[from];
        let Some(session) = replica.sessions.get_mut(&to) else {
            return;
        };
        let hello = session.hello(&replica.doc);
        self.send_message(from, to, &hello);
    }

    /// Sends every peer of `at` the changes its session says it lacks.
    fn poll_all(&mut self, at: usize) {
        let replica = &mut self.replicas[at];
        let mut out = Vec::new();
        for (peer, session) in &mut replica.sessions {
            if let Some(message) = session.poll(&replica.doc) {
                out.push((*peer, message));
            }
        }
        for (peer, message) in out {
            self.send_message(at, peer, &message);
        }
    }

    fn deliver(&mut self, from: usize, to: usize, packet: Packet) {
        match packet {
            Packet::Delta { field, bytes } => self.replicas[to].states.merge(field, &bytes),
            Packet::Sync(bytes) => {
                let message = Message::decode(&bytes).expect("our messages decode");
                let replica = &mut self.replicas[to];
                let session = replica.sessions.get_mut(&from).expect("a session per peer");
                let before = replica.doc.version();
                match session.receive(&mut replica.doc, message) {
                    Ok(replies) => {
                        for reply in replies {
                            self.send_message(to, from, &reply);
                        }
                    }
                    Err(SyncError::BufferFull) => {
                        session.reset();
                        let hello = session.hello(&replica.doc);
                        self.send_message(to, from, &hello);
                    }
                    Err(error) => panic!("a genuine message was refused: {error}"),
                }
                let after = self.replicas[to].doc.version();
                assert!(after.includes(&before), "a version went back");
                if after != before {
                    self.poll_all(to);
                }
            }
        }
        check_document(&self.replicas[to].doc);
    }

    /// The `pick`-th message of the `link`-th non-empty link, removed.
    fn take(&mut self, link: u8, pick: u8) -> Option<(usize, usize, Packet)> {
        let busy: Vec<(usize, usize)> = self
            .links
            .iter()
            .filter(|(_, queue)| !queue.is_empty())
            .map(|(key, _)| *key)
            .collect();
        if busy.is_empty() {
            return None;
        }
        let (from, to) = busy[usize::from(link) % busy.len()];
        let queue = self.links.get_mut(&(from, to))?;
        let packet = queue.remove(usize::from(pick) % queue.len());
        Some((from, to, packet))
    }

    fn step(&mut self, step: Step) {
        let n = self.replicas.len();
        match step {
            Step::Change { at, edits, fail } => {
                let at = usize::from(at) % n;
                let doc = &mut self.replicas[at].doc;
                let before = (doc.version(), canonical(doc));
                let result = doc.transact(|tx| {
                    for edit in edits.iter().take(8) {
                        apply_edit(tx, edit)?;
                    }
                    if fail {
                        return Err(DocError::OutOfRange { index: 1, len: 0 });
                    }
                    Ok(())
                });
                let doc = &self.replicas[at].doc;
                match result {
                    Ok(()) => self.poll_all(at),
                    Err(error) => {
                        assert!(fail, "an edit computed from the state failed: {error}");
                        assert_eq!(
                            (doc.version(), canonical(doc)),
                            before,
                            "a failed change left a trace"
                        );
                    }
                }
                check_document(&self.replicas[at].doc);
            }
            Step::State { at, edit } => {
                let at = usize::from(at) % n;
                let replica = &mut self.replicas[at];
                let before = replica.states.clone();
                let packet = replica.states.edit(replica.id, edit);
                if let Packet::Delta { field, bytes } = &packet {
                    // The mutator's result is the old state joined with its delta.
                    let mut joined = before;
                    joined.merge(*field, bytes);
                    assert_eq!(joined, replica.states, "mutated != old ⊔ delta");
                }
                for to in (0..n).filter(|to| *to != at) {
                    self.send(at, to, packet.clone());
                }
            }
            Step::Deliver { link, pick } => {
                if let Some((from, to, packet)) = self.take(link, pick) {
                    self.deliver(from, to, packet);
                }
            }
            Step::Duplicate { link, pick } => {
                if let Some((from, to, packet)) = self.take(link, pick) {
                    self.send(from, to, packet.clone());
                    self.send(from, to, packet);
                }
            }
            Step::Drop { link, pick } => {
                let _ = self.take(link, pick);
            }
            Step::Hello { from, to } => {
                let (from, to) = (usize::from(from) % n, usize::from(to) % n);
                if from != to {
                    self.hello(from, to);
                }
            }
        }
    }

    /// Delivers everything in flight, oldest first, until the links are empty.
    fn drain(&mut self) {
        for _ in 0..10_000 {
            let Some((&(from, to), _)) = self.links.iter().find(|(_, queue)| !queue.is_empty())
            else {
                return;
            };
            let packet = self.links.get_mut(&(from, to)).expect("found").remove(0);
            self.deliver(from, to, packet);
        }
        panic!("the full sync does not quiesce");
    }

    /// A full sync without faults: everything in flight arrives, every pair says hello again
    /// and exchanges whole states.
    fn full_sync(&mut self) {
        self.drain();
        let n = self.replicas.len();
        for from in 0..n {
            for to in 0..n {
                if from != to {
                    self.hello(from, to);
                    for packet in self.replicas[from].states.full() {
                        self.send(from, to, packet);
                    }
                }
            }
        }
        self.drain();
    }
}

// ---- documents ------------------------------------------------------------------------------

/// The containers reachable from the root, the root first.
fn containers(doc: &Document) -> Vec<(ContainerKind, ContainerId)> {
    let mut found = vec![(ContainerKind::Map, ContainerId::Root)];
    let mut i = 0;
    while i < found.len() && found.len() < 64 {
        let (kind, id) = found[i];
        if kind == ContainerKind::Map {
            for key in doc.keys(MapId(id)).expect("a map") {
                if let Ok(Some(value)) = doc.get(MapId(id), key) {
                    found.extend(value.as_container());
                }
            }
        } else if kind == ContainerKind::List {
            for value in doc.list(ListId(id)).expect("a list") {
                found.extend(value.as_container());
            }
        }
        i += 1;
    }
    found
}

fn pick(doc: &Document, kind: ContainerKind, target: u8) -> Option<ContainerId> {
    let of_kind: Vec<ContainerId> = containers(doc)
        .into_iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, id)| id)
        .collect();
    (!of_kind.is_empty()).then(|| of_kind[usize::from(target) % of_kind.len()])
}

fn kind_of(code: u8) -> ContainerKind {
    [
        ContainerKind::Map,
        ContainerKind::List,
        ContainerKind::Text,
        ContainerKind::Counter,
        ContainerKind::Register,
    ][usize::from(code) % 5]
}

/// Applies one edit with positions reduced into range, so it must succeed.
fn apply_edit(tx: &mut Transaction<'_>, edit: &DocEdit) -> Result<(), DocError> {
    let doc = tx.doc();
    let key = |k: u8| KEYS[usize::from(k) % KEYS.len()];
    match *edit {
        DocEdit::MapSet {
            target,
            key: k,
            value,
        } => {
            if let Some(map) = pick(doc, ContainerKind::Map, target) {
                tx.set(MapId(map), key(k), i64::from(value))?;
            }
        }
        DocEdit::MapDelete { target, key: k } => {
            if let Some(map) = pick(doc, ContainerKind::Map, target) {
                tx.delete(MapId(map), key(k))?;
            }
        }
        DocEdit::MapNew {
            target,
            key: k,
            kind,
        } => {
            if let Some(map) = pick(doc, ContainerKind::Map, target) {
                let (map, k) = (MapId(map), key(k));
                match kind_of(kind) {
                    ContainerKind::Map => tx.replace_with_new_map(map, k).map(|_| ())?,
                    ContainerKind::List => tx.replace_with_new_list(map, k).map(|_| ())?,
                    ContainerKind::Text => tx.replace_with_new_text(map, k).map(|_| ())?,
                    ContainerKind::Counter => tx.replace_with_new_counter(map, k).map(|_| ())?,
                    ContainerKind::Register => tx.replace_with_new_register(map, k).map(|_| ())?,
                }
            }
        }
        DocEdit::MapNamed {
            target,
            key: k,
            kind,
        } => {
            if let Some(map) = pick(doc, ContainerKind::Map, target) {
                let (map, k) = (MapId(map), key(k));
                let opened = match kind_of(kind) {
                    ContainerKind::Map => tx.map_at(map, k).map(|_| ()),
                    ContainerKind::List => tx.list_at(map, k).map(|_| ()),
                    ContainerKind::Text => tx.text_at(map, k).map(|_| ()),
                    ContainerKind::Counter => tx.counter_at(map, k).map(|_| ()),
                    ContainerKind::Register => tx.register_at(map, k).map(|_| ()),
                };
                match opened {
                    // The key shows something else: refused, nothing written.
                    Err(DocError::KeyHolds { .. }) => {}
                    other => other?,
                }
            }
        }
        DocEdit::ListInsert {
            target,
            index,
            value,
        } => {
            if let Some(list) = pick(doc, ContainerKind::List, target) {
                let len = doc.list_len(ListId(list))?;
                tx.list_insert(
                    ListId(list),
                    usize::from(index) % (len + 1),
                    i64::from(value),
                )?;
            }
        }
        DocEdit::ListInsertNew {
            target,
            index,
            kind,
        } => {
            if let Some(list) = pick(doc, ContainerKind::List, target) {
                let len = doc.list_len(ListId(list))?;
                tx.list_insert_new(ListId(list), usize::from(index) % (len + 1), kind_of(kind))?;
            }
        }
        DocEdit::ListDelete {
            target,
            index,
            len: n,
        } => {
            if let Some(list) = pick(doc, ContainerKind::List, target) {
                let len = doc.list_len(ListId(list))?;
                if len > 0 {
                    let start = usize::from(index) % len;
                    let end = (start + 1 + usize::from(n) % 4).min(len);
                    tx.list_delete(ListId(list), start..end)?;
                }
            }
        }
        DocEdit::TextInsert {
            target,
            index,
            word,
        } => {
            if let Some(text) = pick(doc, ContainerKind::Text, target) {
                let len = doc.text_len(TextId(text))?;
                let word = WORDS[usize::from(word) % WORDS.len()];
                tx.text_insert(TextId(text), usize::from(index) % (len + 1), word)?;
            }
        }
        DocEdit::TextDelete {
            target,
            index,
            len: n,
        } => {
            if let Some(text) = pick(doc, ContainerKind::Text, target) {
                let len = doc.text_len(TextId(text))?;
                if len > 0 {
                    let start = usize::from(index) % len;
                    let end = (start + 1 + usize::from(n) % 5).min(len);
                    tx.text_delete(TextId(text), start..end)?;
                }
            }
        }
        DocEdit::Increment { target, by } => {
            if let Some(counter) = pick(doc, ContainerKind::Counter, target) {
                tx.counter_add(CounterId(counter), i64::from(by))?;
            }
        }
        DocEdit::RegisterSet { target, value } => {
            if let Some(register) = pick(doc, ContainerKind::Register, target) {
                tx.register_set(RegisterId(register), i64::from(value))?;
            }
        }
        DocEdit::RegisterClear { target } => {
            if let Some(register) = pick(doc, ContainerKind::Register, target) {
                tx.register_clear(RegisterId(register))?;
            }
        }
    }
    Ok(())
}

/// The document's state as text, conflicts included: equal exactly when states are equal.
fn canonical(doc: &Document) -> String {
    fn value(doc: &Document, v: &Value, out: &mut String, depth: usize) {
        match v.as_container() {
            Some((kind, id)) => container(doc, kind, id, out, depth + 1),
            None => {
                let _ = write!(out, "{v:?}");
            }
        }
    }
    fn container(
        doc: &Document,
        kind: ContainerKind,
        id: ContainerId,
        out: &mut String,
        depth: usize,
    ) {
        assert_eq!(
            doc.kind_of(id),
            Some(kind),
            "a value names a container of another kind"
        );
        let _ = write!(out, "{kind:?}@{id:?}");
        match kind {
            ContainerKind::Map => {
                out.push('{');
                for key in doc.keys(MapId(id)).expect("a map") {
                    let values = doc.get_conflicts(MapId(id), key).expect("a map");
                    assert!(!values.is_empty(), "a key without a value");
                    let _ = write!(out, "{key:?}:");
                    for v in values {
                        value(doc, v, out, depth);
                        out.push(',');
                    }
                }
                out.push('}');
            }
            ContainerKind::List => {
                let items = doc.list(ListId(id)).expect("a list");
                assert_eq!(doc.list_len(ListId(id)), Ok(items.len()), "list length");
                out.push('[');
                for v in items {
                    value(doc, v, out, depth);
                    out.push(',');
                }
                out.push(']');
            }
            ContainerKind::Text => {
                let text = doc.text(TextId(id)).expect("a text");
                assert_eq!(
                    doc.text_len(TextId(id)),
                    Ok(text.chars().count()),
                    "text length"
                );
                assert_eq!(
                    doc.text_len_utf16(TextId(id)),
                    Ok(text.encode_utf16().count()),
                    "UTF-16 length"
                );
                let _ = write!(out, "{text:?}");
            }
            ContainerKind::Counter => {
                let _ = write!(out, "={}", doc.counter(CounterId(id)).expect("a counter"));
            }
            ContainerKind::Register => {
                out.push('<');
                for v in doc.register_conflicts(RegisterId(id)).expect("a register") {
                    value(doc, v, out, depth);
                    out.push(',');
                }
                out.push('>');
            }
        }
    }
    let mut out = String::new();
    container(doc, ContainerKind::Map, ContainerId::Root, &mut out, 0);
    out
}

/// Invariants of one document: its version counts its history, and reading it in full finds
/// every index in range (checked inside `canonical`).
fn check_document(doc: &Document) {
    let events: u64 = doc.version().iter().map(|(_, count)| count).sum();
    assert_eq!(
        events,
        doc.history_len() as u64,
        "version and history disagree"
    );
    let _ = canonical(doc);
}

fuzz_target!(|scenario: Scenario| {
    let count = 2 + usize::from(scenario.replicas) % 3;
    let mut world = World::new(count);
    for step in scenario.steps.into_iter().take(MAX_STEPS) {
        world.step(step);
    }
    world.full_sync();
    let first = &world.replicas[0];
    let (version, form) = (first.doc.version(), canonical(&first.doc));
    for other in &world.replicas[1..] {
        assert_eq!(
            other.doc.version(),
            version,
            "document versions differ after full sync"
        );
        assert_eq!(
            canonical(&other.doc),
            form,
            "documents differ after full sync"
        );
        assert_eq!(
            other.states, first.states,
            "state-based CRDTs differ after full sync"
        );
    }
    // What every replica holds survives its own snapshot and update encodings.
    let snapshot = Document::load(&first.doc.encode(), ReplicaId::from_u128(99)).expect("loads");
    assert_eq!(
        (snapshot.version(), canonical(&snapshot)),
        (version.clone(), form.clone())
    );
    let mut fresh = Document::new(ReplicaId::from_u128(98));
    fresh
        .apply_update(&first.doc.update_since(&crdt_core::VersionVector::new()))
        .expect("its update applies");
    assert_eq!((fresh.version(), canonical(&fresh)), (version, form));
});
