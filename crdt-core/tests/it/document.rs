//! Documents: random edits on every container kind at 3-4 replicas, synced over a network that
//! delays, reorders, duplicates and partitions; replicas converge to the same JSON, and every
//! replica's events, applied to its previous JSON, give its new JSON.

use std::sync::{Arc, Mutex};

use crdt_core::{
    ContainerId, ContainerKind, CounterId, Document, ListId, LoadError, MapId, Origin, Patch,
    PatchAction, PathSegment, RegisterId, ReplicaId, TextId, Value,
};
use quickcheck::{Arbitrary, Gen};
use serde_json::{Value as Json, json};

use crate::harness::check;

fn replica(index: usize) -> ReplicaId {
    ReplicaId::from_u128(0x200 + index as u128)
}

// ---- applying patches to JSON ------------------------------------------------------------

fn empty_json(kind: ContainerKind) -> Json {
    match kind {
        ContainerKind::Map => json!({}),
        ContainerKind::List => json!([]),
        ContainerKind::Text => json!(""),
        ContainerKind::Counter => json!(0),
        ContainerKind::Register => Json::Null,
    }
}

fn value_json(value: &Value) -> Json {
    match value {
        Value::Null => Json::Null,
        Value::Bool(b) => json!(b),
        Value::Int(i) => json!(i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::String(s) => json!(s),
        Value::Bytes(b) => json!(b),
        Value::Container(kind, _) => empty_json(*kind),
    }
}

fn locate<'a>(json: &'a mut Json, path: &[PathSegment]) -> Option<&'a mut Json> {
    let mut node = json;
    for segment in path {
        node = match segment {
            PathSegment::Key(key) => node.get_mut(key)?,
            PathSegment::Index(i) => node.get_mut(*i)?,
        };
    }
    Some(node)
}

/// Applies a patch; false if it does not fit the JSON (which fails the property).
pub(crate) fn apply_patch(json: &mut Json, patch: &Patch) -> bool {
    let Some(path) = &patch.path else {
        return true; // not reachable: nothing visible changes
    };
    let Some(target) = locate(json, &path.to_vec()) else {
        return false;
    };
    match &patch.action {
        PatchAction::MapSet { key, value } => match target.as_object_mut() {
            Some(object) => {
                object.insert(key.clone(), value_json(value));
                true
            }
            None => false,
        },
        PatchAction::MapDelete { key } => target
            .as_object_mut()
            .is_some_and(|o| o.remove(key).is_some()),
        PatchAction::ListInsert { index, values } => match target.as_array_mut() {
            Some(array) if *index <= array.len() => {
                array.splice(index..index, values.iter().map(value_json));
                true
            }
            _ => false,
        },
        PatchAction::ListDelete { index, len } => match target.as_array_mut() {
            Some(array) if index + len <= array.len() => {
                array.drain(*index..index + len);
                true
            }
            _ => false,
        },
        PatchAction::TextInsert { index, text } => match target.as_str() {
            Some(s) => {
                let mut chars: Vec<char> = s.chars().collect();
                if *index > chars.len() {
                    return false;
                }
                chars.splice(index..index, text.chars());
                *target = Json::String(chars.into_iter().collect());
                true
            }
            None => false,
        },
        PatchAction::TextDelete { index, len, .. } => match target.as_str() {
            Some(s) => {
                let mut chars: Vec<char> = s.chars().collect();
                if index + len > chars.len() {
                    return false;
                }
                chars.drain(*index..index + len);
                *target = Json::String(chars.into_iter().collect());
                true
            }
            None => false,
        },
        PatchAction::Increment { by } => match target.as_i64() {
            Some(n) => {
                *target = json!(n.wrapping_add(*by));
                true
            }
            None => false,
        },
        PatchAction::RegisterSet { value } => {
            *target = value.as_ref().map_or(Json::Null, value_json);
            true
        }
    }
}

// ---- random edits ------------------------------------------------------------------------

const KEYS: [&str; 4] = ["a", "b", "c", "d"];
const WORDS: [&str; 5] = ["x", "yz", "é", "😀", "hello "];

#[derive(Clone, Debug)]
pub(crate) enum Edit {
    MapSet {
        key: u8,
        value: i8,
    },
    MapDelete {
        key: u8,
    },
    MapNew {
        key: u8,
        kind: u8,
    },
    /// Opens the named container of a kind at a key (`text_at`, ...).
    MapNamed {
        key: u8,
        kind: u8,
    },
    ListInsert {
        index: u8,
        value: i8,
    },
    ListInsertNew {
        index: u8,
        kind: u8,
    },
    ListDelete {
        index: u8,
        len: u8,
    },
    TextInsert {
        index: u8,
        word: u8,
    },
    TextDelete {
        index: u8,
        len: u8,
    },
    Increment {
        by: i8,
    },
    RegisterSet {
        value: i8,
    },
    RegisterClear,
}

impl Arbitrary for Edit {
    fn arbitrary(g: &mut Gen) -> Self {
        let (a, b) = (u8::arbitrary(g), u8::arbitrary(g));
        match u8::arbitrary(g) % 16 {
            0 | 1 => Edit::MapSet {
                key: a,
                value: b as i8,
            },
            2 => Edit::MapDelete { key: a },
            3 => Edit::MapNew { key: a, kind: b },
            4 => Edit::MapNamed { key: a, kind: b },
            5 | 6 => Edit::ListInsert {
                index: a,
                value: b as i8,
            },
            7 => Edit::ListInsertNew { index: a, kind: b },
            8 => Edit::ListDelete { index: a, len: b },
            9 | 10 => Edit::TextInsert { index: a, word: b },
            11 => Edit::TextDelete { index: a, len: b },
            12 => Edit::Increment { by: a as i8 },
            13 | 14 => Edit::RegisterSet { value: a as i8 },
            _ => Edit::RegisterClear,
        }
    }
}

#[derive(Clone, Debug)]
enum Step {
    /// Replica `at` makes a transaction of these edits, each on container number `target` of
    /// the kind it needs (counted among its reachable containers).
    Transact { at: u8, edits: Vec<(u8, Edit)> },
    /// `from` sends `to` what it has that `to` had when the message was made; the message
    /// waits in the network.
    Send { from: u8, to: u8 },
    /// The network delivers one waiting message (any: reordering), keeping a copy sometimes.
    Deliver { pick: u16, duplicate: bool },
}

impl Arbitrary for Step {
    fn arbitrary(g: &mut Gen) -> Self {
        match u8::arbitrary(g) % 8 {
            0..=3 => Step::Transact {
                at: u8::arbitrary(g),
                edits: (0..1 + usize::from(u8::arbitrary(g) % 3))
                    .map(|_| (u8::arbitrary(g), Edit::arbitrary(g)))
                    .collect(),
            },
            4 | 5 => Step::Send {
                from: u8::arbitrary(g),
                to: u8::arbitrary(g),
            },
            _ => Step::Deliver {
                pick: u16::arbitrary(g),
                duplicate: bool::arbitrary(g),
            },
        }
    }
}

#[derive(Clone, Debug)]
struct Scenario {
    replicas: usize,
    steps: Vec<Step>,
}

impl Arbitrary for Scenario {
    fn arbitrary(g: &mut Gen) -> Self {
        Scenario {
            replicas: 3 + usize::from(u8::arbitrary(g) % 2),
            steps: (0..usize::arbitrary(g) % 40)
                .map(|_| Step::arbitrary(g))
                .collect(),
        }
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

/// The containers reachable from the root, by kind.
pub(crate) fn containers(doc: &Document) -> Vec<(ContainerKind, ContainerId)> {
    let mut found = vec![(ContainerKind::Map, ContainerId::Root)];
    let mut i = 0;
    while i < found.len() {
        let (kind, id) = found[i];
        let mut children = Vec::new();
        match kind {
            ContainerKind::Map => {
                for key in doc.keys(MapId(id)).expect("a map") {
                    if let Some(v) = doc.get(MapId(id), key).expect("a map") {
                        children.extend(v.as_container());
                    }
                }
            }
            ContainerKind::List => {
                for v in doc.list(ListId(id)).expect("a list") {
                    children.extend(v.as_container());
                }
            }
            _ => {}
        }
        found.extend(children);
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

fn new_kind(code: u8) -> ContainerKind {
    [
        ContainerKind::Map,
        ContainerKind::List,
        ContainerKind::Text,
        ContainerKind::Counter,
        ContainerKind::Register,
    ][usize::from(code) % 5]
}

/// Applies one random edit inside a transaction, if it has a target. Errors only for ranges
/// computed from the current state, which are always valid here.
pub(crate) fn edit(
    tx: &mut crdt_core::Transaction<'_>,
    target: u8,
    edit: &Edit,
) -> Result<(), crdt_core::DocError> {
    let doc = tx.doc();
    let key = |k: u8| KEYS[usize::from(k) % KEYS.len()];
    match *edit {
        Edit::MapSet { key: k, value } => {
            if let Some(map) = pick(doc, ContainerKind::Map, target) {
                tx.set(MapId(map), key(k), i64::from(value))?;
            }
        }
        Edit::MapDelete { key: k } => {
            if let Some(map) = pick(doc, ContainerKind::Map, target) {
                tx.delete(MapId(map), key(k))?;
            }
        }
        Edit::MapNew { key: k, kind } => {
            // Keep trees shallow and small: new containers only at the root or one level down.
            let maps: Vec<ContainerId> = containers(doc)
                .into_iter()
                .filter(|(kd, _)| *kd == ContainerKind::Map)
                .map(|(_, id)| id)
                .take(3)
                .collect();
            let map = maps[usize::from(target) % maps.len()];
            let (map, k) = (MapId(map), key(k));
            match new_kind(kind) {
                ContainerKind::Map => tx.replace_with_new_map(map, k).map(|_| ())?,
                ContainerKind::List => tx.replace_with_new_list(map, k).map(|_| ())?,
                ContainerKind::Text => tx.replace_with_new_text(map, k).map(|_| ())?,
                ContainerKind::Counter => tx.replace_with_new_counter(map, k).map(|_| ())?,
                ContainerKind::Register => tx.replace_with_new_register(map, k).map(|_| ())?,
            }
        }
        Edit::MapNamed { key: k, kind } => {
            let maps: Vec<ContainerId> = containers(doc)
                .into_iter()
                .filter(|(kd, _)| *kd == ContainerKind::Map)
                .map(|(_, id)| id)
                .take(3)
                .collect();
            let map = maps[usize::from(target) % maps.len()];
            let (map, k) = (MapId(map), key(k));
            let opened = match new_kind(kind) {
                ContainerKind::Map => tx.map_at(map, k).map(|_| ()),
                ContainerKind::List => tx.list_at(map, k).map(|_| ()),
                ContainerKind::Text => tx.text_at(map, k).map(|_| ()),
                ContainerKind::Counter => tx.counter_at(map, k).map(|_| ()),
                ContainerKind::Register => tx.register_at(map, k).map(|_| ()),
            };
            match opened {
                // The key shows something else: refused, nothing written.
                Err(crdt_core::DocError::KeyHolds { .. }) => {}
                other => other?,
            }
        }
        Edit::ListInsert { index, value } => {
            if let Some(list) = pick(doc, ContainerKind::List, target) {
                let len = doc.list_len(ListId(list))?;
                tx.list_insert(
                    ListId(list),
                    usize::from(index) % (len + 1),
                    i64::from(value),
                )?;
            }
        }
        Edit::ListInsertNew { index, kind } => {
            if let Some(list) = pick(doc, ContainerKind::List, target) {
                let len = doc.list_len(ListId(list))?;
                tx.list_insert_new(ListId(list), usize::from(index) % (len + 1), new_kind(kind))?;
            }
        }
        Edit::ListDelete { index, len: n } => {
            if let Some(list) = pick(doc, ContainerKind::List, target) {
                let len = doc.list_len(ListId(list))?;
                if len > 0 {
                    let start = usize::from(index) % len;
                    let end = (start + 1 + usize::from(n) % 3).min(len);
                    tx.list_delete(ListId(list), start..end)?;
                }
            }
        }
        Edit::TextInsert { index, word } => {
            if let Some(text) = pick(doc, ContainerKind::Text, target) {
                let len = doc.text_len(TextId(text))?;
                let word = WORDS[usize::from(word) % WORDS.len()];
                tx.text_insert(TextId(text), usize::from(index) % (len + 1), word)?;
            }
        }
        Edit::TextDelete { index, len: n } => {
            if let Some(text) = pick(doc, ContainerKind::Text, target) {
                let len = doc.text_len(TextId(text))?;
                if len > 0 {
                    let start = usize::from(index) % len;
                    let end = (start + 1 + usize::from(n) % 4).min(len);
                    tx.text_delete(TextId(text), start..end)?;
                }
            }
        }
        Edit::Increment { by } => {
            if let Some(counter) = pick(doc, ContainerKind::Counter, target) {
                tx.counter_add(CounterId(counter), i64::from(by))?;
            }
        }
        Edit::RegisterSet { value } => {
            if let Some(register) = pick(doc, ContainerKind::Register, target) {
                tx.register_set(RegisterId(register), i64::from(value))?;
            }
        }
        Edit::RegisterClear => {
            if let Some(register) = pick(doc, ContainerKind::Register, target) {
                tx.register_clear(RegisterId(register))?;
            }
        }
    }
    Ok(())
}

/// A replica with the JSON it has rebuilt from its own events.
struct Replica {
    doc: Document,
    events: Arc<Mutex<Vec<Patch>>>,
    tracked: Json,
}

impl Replica {
    fn new(index: usize) -> Replica {
        let mut doc = Document::new(replica(index));
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        doc.subscribe(Box::new(move |_origin: Origin, patches: &[Patch]| {
            if let Ok(mut sink) = sink.lock() {
                sink.extend_from_slice(patches);
            }
        }));
        Replica {
            doc,
            events,
            tracked: json!({}),
        }
    }

    /// Applies the events received since the last call to the tracked JSON; true if they fit
    /// and give the document's JSON.
    fn explain(&mut self, verbose: bool) -> bool {
        let patches: Vec<Patch> = match self.events.lock() {
            Ok(mut events) => std::mem::take(&mut *events),
            Err(_) => return false,
        };
        let before = self.tracked.clone();
        let ok = patches.iter().all(|p| apply_patch(&mut self.tracked, p))
            && self.tracked == self.doc.to_json();
        if !ok && verbose {
            eprintln!(
                "before {before}\npatches {patches:#?}\ntracked {}\ndoc {}",
                self.tracked,
                self.doc.to_json()
            );
        }
        ok
    }
}

fn documents_converge_and_events_explain_json(scenario: Scenario) -> bool {
    run_scenario(scenario, false)
}

fn run_scenario(scenario: Scenario, verbose: bool) -> bool {
    let n = scenario.replicas;
    let mut replicas: Vec<Replica> = (0..n).map(Replica::new).collect();
    let mut network: Vec<(usize, Vec<u8>)> = Vec::new();
    for step in &scenario.steps {
        match step {
            Step::Transact { at, edits } => {
                let at = usize::from(*at) % n;
                let result = replicas[at].doc.transact(|tx| {
                    for (target, e) in edits {
                        edit(tx, *target, e)?;
                    }
                    Ok(())
                });
                if result.is_err() {
                    return false;
                }
            }
            Step::Send { from, to } => {
                let (from, to) = (usize::from(*from) % n, usize::from(*to) % n);
                let update = replicas[from].doc.update_since(&replicas[to].doc.version());
                network.push((to, update));
            }
            Step::Deliver { pick, duplicate } if !network.is_empty() => {
                let at = usize::from(*pick) % network.len();
                let (to, update) = if *duplicate {
                    network[at].clone()
                } else {
                    network.swap_remove(at)
                };
                match replicas[to].doc.apply_update(&update) {
                    // A message that depends on one not delivered yet waits for it.
                    Err(LoadError::MissingEvent(_)) => network.push((to, update)),
                    Err(_) => return false,
                    Ok(_) => {}
                }
            }
            Step::Deliver { .. } => {}
        }
        if verbose {
            eprintln!("step {step:?}");
        }
        if !replicas.iter_mut().all(|r| r.explain(verbose)) {
            return false;
        }
    }
    // The partitions heal: everyone syncs with everyone.
    for to in 0..n {
        for from in 0..n {
            let update = replicas[from].doc.update_since(&replicas[to].doc.version());
            if let Err(e) = replicas[to].doc.apply_update(&update) {
                if verbose {
                    eprintln!("sync {from} -> {to} failed: {e:?}");
                }
                return false;
            }
        }
    }
    for to in 0..n {
        let update = replicas[(to + 1) % n]
            .doc
            .update_since(&replicas[to].doc.version());
        if replicas[to].doc.apply_update(&update).is_err() {
            return false;
        }
    }
    let json = replicas[0].doc.to_json();
    let version = replicas[0].doc.version();
    replicas.iter_mut().all(|r| {
        let ok = r.explain(verbose) && r.doc.to_json() == json && r.doc.version() == version;
        if !ok && verbose {
            eprintln!("final: {} vs {}", r.doc.to_json(), json);
        }
        ok
    })
}

#[test]
fn documents_converge_and_their_events_explain_the_json() {
    check(300, documents_converge_and_events_explain_json);
}

/// Encoding and loading a random document gives the same JSON, version and history.
fn documents_round_trip(scenario: Scenario) -> bool {
    let mut a = Replica::new(0);
    let mut b = Replica::new(1);
    for (i, step) in scenario.steps.iter().enumerate() {
        if let Step::Transact { edits, .. } = step {
            let doc = if i % 2 == 0 { &mut a.doc } else { &mut b.doc };
            let ok = doc
                .transact(|tx| {
                    for (target, e) in edits {
                        edit(tx, *target, e)?;
                    }
                    Ok(())
                })
                .is_ok();
            if !ok {
                return false;
            }
        } else if a.doc.merge(&b.doc).is_err() {
            return false;
        }
    }
    let snapshot = a.doc.encode();
    let loaded = Document::load(&snapshot, replica(7));
    // A subscribed empty replica receiving the snapshot is told everything it now shows.
    let mut fresh = Replica::new(8);
    let adopted = fresh.doc.apply_update(&snapshot).is_ok() && fresh.explain(false);
    // The loaded replica goes on syncing: its history is complete.
    let mut other = Document::new(replica(9));
    let synced = loaded.as_ref().is_ok_and(|l| {
        other
            .apply_update(&l.update_since(&other.version()))
            .is_ok()
            && other.to_json() == l.to_json()
    });
    adopted
        && synced
        && loaded.is_ok_and(|l| {
            l.to_json() == a.doc.to_json()
                && l.version() == a.doc.version()
                && l.heads().len() == a.doc.heads().len()
        })
}

#[test]
fn documents_round_trip_through_encoding() {
    check(200, documents_round_trip);
}

fn random_bytes_never_panic(bytes: Vec<u8>) -> bool {
    let mut doc = Document::new(replica(0));
    doc.set(MapId::ROOT, "keep", 1).expect("a map");
    let before = doc.to_json();
    let mut forged = b"\xC7DOC\x01\x01".to_vec();
    forged.extend_from_slice(&crc32fast::hash(&bytes).to_le_bytes());
    forged.extend_from_slice(&bytes);
    let plain = doc.apply_update(&bytes);
    let with_header = doc.apply_update(&forged);
    let _ = Document::load(&forged, replica(1));
    forged[5] = 2; // the same body as a snapshot, into an empty replica
    let _ = Document::load(&forged, replica(1));
    (plain.is_ok() || doc.to_json() == before) && (with_header.is_ok() || doc.to_json() == before)
}

#[test]
fn random_bytes_into_the_document_decoder_never_panic() {
    check(3000, random_bytes_never_panic);
}

#[test]
fn concurrent_map_writes_keep_the_loser_as_a_conflict() {
    let mut a = Document::new(replica(1));
    let mut b = Document::new(replica(2));
    a.set(MapId::ROOT, "color", "red").expect("set");
    b.set(MapId::ROOT, "color", "blue").expect("set");
    a.merge(&b).expect("merge");
    b.merge(&a).expect("merge");
    assert_eq!(a.get(MapId::ROOT, "color"), b.get(MapId::ROOT, "color"));
    let conflicts = a.get_conflicts(MapId::ROOT, "color").expect("a map");
    assert_eq!(conflicts.len(), 2);
    // A later write resolves it.
    a.set(MapId::ROOT, "color", "green").expect("set");
    b.merge(&a).expect("merge");
    assert_eq!(
        b.get_conflicts(MapId::ROOT, "color").expect("a map"),
        [&Value::from("green")]
    );
}

#[test]
fn a_failed_transaction_changes_nothing() {
    let mut doc = Document::new(replica(1));
    let list = doc.replace_with_new_list(MapId::ROOT, "l").expect("set");
    let before = (doc.to_json(), doc.version());
    let result = doc.transact(|tx| {
        tx.list_insert(list, 0, 1)?;
        tx.set(MapId::ROOT, "x", "y")?;
        tx.list_insert(list, 5, 2) // out of range: the whole transaction is undone
    });
    assert!(result.is_err());
    assert_eq!((doc.to_json(), doc.version()), before);
    // And the replica can go on editing and syncing.
    doc.list_insert(list, 0, 3).expect("insert");
    let mut other = Document::new(replica(2));
    other.merge(&doc).expect("merge");
    assert_eq!(other.to_json(), json!({ "l": [3] }));
}

/// Regression (found by the simulation): a failed transaction whose first operation extended
/// the previous change's run of operations on the same text dropped that whole run, so the
/// earlier, committed events lost their operations: the document's own snapshot and updates
/// were refused ("a change has events without operations").
#[test]
fn a_failed_transaction_keeps_the_operations_of_earlier_changes() {
    let mut doc = Document::new(replica(1));
    let text = doc.replace_with_new_text(MapId::ROOT, "t").expect("set");
    doc.text_insert(text, 0, "ab").expect("insert");
    let failed = doc.transact(|tx| {
        tx.text_insert(text, 2, "c")?;
        tx.text_insert(text, 99, "x") // out of range: the transaction is undone
    });
    assert!(failed.is_err());
    assert_eq!(doc.text(text).expect("text"), "ab");
    let copy = Document::load(&doc.encode(), replica(2)).expect("its own snapshot loads");
    assert_eq!(copy.text(text).expect("text"), "ab");
    let mut other = Document::new(replica(3));
    other
        .apply_update(&doc.update_since(&crdt_core::VersionVector::new()))
        .expect("its own update applies");
    assert_eq!(other.to_json(), doc.to_json());
    // And editing goes on from there.
    doc.text_insert(text, 2, "d").expect("insert");
    let copy = Document::load(&doc.encode(), replica(2)).expect("its own snapshot loads");
    assert_eq!(copy.text(text).expect("text"), "abd");
}

/// Real snapshots and updates with corrupted bodies and recomputed checksums.
fn forged_documents_never_panic(
    (scenario, edits, snapshot): (Scenario, Vec<(u16, u8)>, bool),
) -> bool {
    let mut source = Replica::new(0);
    for step in &scenario.steps {
        if let Step::Transact { edits, .. } = step {
            let _ = source.doc.transact(|tx| {
                for (target, e) in edits {
                    edit(tx, *target, e)?;
                }
                Ok(())
            });
        }
    }
    let mut bytes = if snapshot {
        source.doc.encode()
    } else {
        source.doc.update_since(&crdt_core::VersionVector::new())
    };
    for (position, value) in edits {
        if bytes.len() > 10 {
            let at = 10 + usize::from(position) % (bytes.len() - 10);
            bytes[at] = value;
        }
    }
    let checksum = crc32fast::hash(&bytes[10..]).to_le_bytes();
    bytes[6..10].copy_from_slice(&checksum);
    let mut busy = Document::new(replica(2));
    busy.set(MapId::ROOT, "k", 1).expect("a map");
    let before = busy.to_json();
    let _ = Document::load(&bytes, replica(1));
    busy.apply_update(&bytes).is_ok() || busy.to_json() == before
}

#[test]
fn forged_documents_with_valid_checksums_never_panic() {
    check(1000, forged_documents_never_panic);
}

#[test]
fn documents_move_between_threads() {
    fn assert_send<T: Send>() {}
    assert_send::<Document>();
    let mut doc = Document::new(replica(1));
    doc.set(MapId::ROOT, "k", 1).expect("a map");
    let handle = std::thread::spawn(move || doc.to_json());
    assert_eq!(handle.join().expect("no panic"), json!({ "k": 1 }));
}

/// `transact_update` gives each change's own update: applied in order they rebuild the
/// document; one ahead of its dependency is refused (and changes nothing) until it arrives.
#[test]
fn transact_update_returns_exactly_the_change_made() {
    let mut doc = Document::new(replica(1));
    let (list, first) = doc
        .transact_update(|tx| {
            let list = tx.list_at(MapId::ROOT, "l")?;
            tx.list_insert(list, 0, 1)?;
            Ok(list)
        })
        .expect("a map");
    let ((), second) = doc
        .transact_update(|tx| tx.list_insert(list, 1, 2))
        .expect("in range");
    let ((), nothing) = doc
        .transact_update(|tx| tx.delete(MapId::ROOT, "absent"))
        .expect("a map");
    assert!(second.len() < first.len() + 16, "only the second change");

    let mut peer = Document::new(replica(2));
    assert!(matches!(
        peer.apply_update(&second),
        Err(LoadError::MissingEvent(_))
    ));
    assert_eq!(peer.history_len(), 0);
    assert_eq!(peer.apply_update(&first).expect("applies"), 2);
    assert_eq!(peer.apply_update(&second).expect("applies"), 1);
    assert_eq!(peer.apply_update(&nothing).expect("applies"), 0);
    assert!(peer == doc);
    // A failed edit returns its error and no update.
    assert!(
        doc.transact_update(|tx| tx.list_insert(list, 9, 0))
            .is_err()
    );
}

#[test]
fn an_open_transaction_is_one_change_or_nothing() {
    use crdt_core::{ChangeOptions, OpenTransaction};
    let doc = Document::new(ReplicaId::from_u128(1));
    let mut open = OpenTransaction::begin(doc, ChangeOptions::default());
    let text = open
        .edit(|tx| tx.text_at(MapId::ROOT, "t"))
        .expect("a text");
    open.edit(|tx| tx.text_insert(text, 0, "ab"))
        .expect("in range");
    // A failing operation changes nothing, and the edits before it stay.
    assert!(open.edit(|tx| tx.text_insert(text, 9, "x")).is_err());
    assert_eq!(open.doc().text(text).expect("a text"), "ab");
    let doc = open.commit();
    let all = |doc: &Document| {
        doc.changes_between(&crdt_core::VersionVector::new(), &doc.version())
            .expect("versions of this document")
            .len()
    };
    assert_eq!(all(&doc), 1);
    let mut peer = Document::new(ReplicaId::from_u128(2));
    // One change of three events: the text's creation and two chars.
    assert_eq!(
        peer.apply_update(&doc.update_since(&peer.version()))
            .expect("applies"),
        3
    );
    assert_eq!(peer.text(text).expect("a text"), "ab");

    let version = doc.version();
    let mut open = OpenTransaction::begin(doc, ChangeOptions::default());
    open.edit(|tx| tx.text_insert(text, 2, "c"))
        .expect("in range");
    open.edit(|tx| tx.set(MapId::ROOT, "k", 1)).expect("a map");
    let mut doc = open.roll_back();
    assert_eq!(doc.text(text).expect("a text"), "ab");
    assert_eq!(doc.get(MapId::ROOT, "k").expect("a map"), None);
    assert_eq!(doc.version(), version);
    assert_eq!(all(&doc), 1);
    // The document goes on as if the rolled-back transaction never was.
    doc.text_insert(text, 2, "!").expect("in range");
    assert_eq!(
        peer.apply_update(&doc.update_since(&peer.version()))
            .expect("applies"),
        1
    );
    assert!(peer == doc);
}

#[test]
fn an_open_transaction_notifies_once_on_commit() {
    use crdt_core::{ChangeOptions, OpenTransaction};
    use std::sync::{Arc, Mutex};
    let mut doc = Document::new(ReplicaId::from_u128(1));
    let calls = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&calls);
    doc.subscribe(Box::new(move |_, patches| {
        sink.lock().expect("not poisoned").push(patches.len());
    }));
    let mut open = OpenTransaction::begin(doc, ChangeOptions::default());
    open.edit(|tx| tx.set(MapId::ROOT, "a", 1)).expect("a map");
    open.edit(|tx| tx.set(MapId::ROOT, "b", 2)).expect("a map");
    assert!(calls.lock().expect("not poisoned").is_empty());
    let _doc = open.commit();
    assert_eq!(*calls.lock().expect("not poisoned"), [2]);
}

#[test]
fn text_delete_patches_carry_the_removed_text() {
    use std::sync::{Arc, Mutex};
    let mut doc = Document::new(ReplicaId::from_u128(1));
    let text = doc.text_at(MapId::ROOT, "t").expect("a text");
    doc.text_insert(text, 0, "a😀bc").expect("in range");
    let mut peer = doc.fork(ReplicaId::from_u128(2));
    let removed = Arc::new(Mutex::new(Vec::new()));
    for (target, sink) in [
        (&mut doc, Arc::clone(&removed)),
        (&mut peer, Arc::clone(&removed)),
    ] {
        target.subscribe(Box::new(move |_, patches| {
            for patch in patches {
                if let PatchAction::TextDelete { index, len, text } = &patch.action {
                    sink.lock()
                        .expect("not poisoned")
                        .push((*index, *len, text.clone()));
                }
            }
        }));
    }
    let before = doc.version();
    doc.text_delete(text, 1..3).expect("in range"); // local
    peer.apply_update(&doc.update_since(&before))
        .expect("applies"); // remote
    let removed = removed.lock().expect("not poisoned");
    assert_eq!(
        *removed,
        [(1, 2, "😀b".to_string()), (1, 2, "😀b".to_string())]
    );
}
